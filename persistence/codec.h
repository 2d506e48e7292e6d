/*
 * persistence/codec.h - the on-disk format of the file store: segment
 * headers and records (encode and decode, no I/O).
 *
 * A segment file is a header followed by records, all little-endian:
 *
 *   header (NV__SEG_HDR_LEN = 64 bytes)
 *     0  u8[8]  magic "NVLOG\r\n\x1a"
 *     8  u32    format version (NV__SEG_VERSION)
 *    12  u32    header length (64)
 *    16  u64    segment number (the 16 hex digits of seg-<n>.log)
 *    24  u64    base seq: highest seq written before this segment
 *    32  u64    highest job id ever written when the segment was made
 *    40  u64    highest schedule id ever written when the segment was made
 *    48  u64    compacted_upto: 0, or K when this segment is a compaction
 *               snapshot holding the live state of every segment <= K
 *    56  u32    reserved (0)
 *    60  u32    crc32c of bytes 0..59
 *
 *   record
 *     0  u32    length L of what follows the crc (9 + payload bytes)
 *     4  u32    crc32c of the L bytes that follow
 *     8  u64    seq
 *    16  u8     type (nv_rec_type)
 *    17  payload: uvarint id, zigzag varint time_ms, uvarint attempt,
 *                 uvarint task_len, task, uvarint data_len, data,
 *                 uvarint aux_len, aux
 *
 * Varints are LEB128 (7 bits a byte, low first) and must be canonical
 * (no overlong form), so a record has exactly one encoding.
 *
 * Decoding trusts nothing: a length is bounded by NV__REC_MAX_BODY and by
 * the bytes available, every varint and field length is checked against
 * the end of the record, the crc must match, and the payload must end
 * exactly at the end of the record.
 *
 * Changing the format (bump the version), in order:
 *   1. Never move the magic (offset 0) or the version (offset 8): every
 *      future reader finds the version there.
 *   2. Increase NV__SEG_VERSION and write the new layout only for the new
 *      version; keep the decoder of each older version (a segment's header
 *      says which decoder reads its records).
 *   3. A reader that meets a version newer than it knows refuses to open
 *      the store (NV_ECORRUPT with a message), never truncates or
 *      quarantines it: the data belongs to a newer nuvom.
 *   4. Compaction writes the current version, so old segments fade out;
 *      the decoders of old versions stay until a release notes their end.
 *   5. Add a golden segment of the old version to the tests and seeds of
 *      the new version to tests/fuzz/corpus/record/, and describe the
 *      change in docs/file-store.md.
 *
 * All functions are pure and thread-safe.
 */
#ifndef NV_PERSIST_CODEC_H
#define NV_PERSIST_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persistence/record.h"

#define NV__SEG_MAGIC "NVLOG\r\n\x1a"
#define NV__SEG_VERSION 1u
#define NV__SEG_HDR_LEN 64u

#define NV__REC_HDR_LEN 8u	     /* u32 length + u32 crc */
#define NV__REC_FIXED_LEN 9u	     /* seq + type, counted in the length */
#define NV__REC_MIN_BODY 15u	     /* seq, type, six one-byte varints */
#define NV__REC_MAX_BODY (64u << 20) /* bound on a record's length field */

typedef struct nv_seg_hdr {
	uint32_t version;
	uint64_t segno;
	uint64_t base_seq;
	uint64_t max_job_id;
	uint64_t max_sched_id;
	uint64_t compacted_upto;
} nv_seg_hdr;

/* Results of the decoders (internal: not NV_E* codes). */
enum {
	NV__DEC_OK = 0,
	NV__DEC_SHORT = 1, /* fewer bytes than the record or header needs */
	NV__DEC_BAD = 2,   /* impossible length, bad crc, malformed payload */
	NV__DEC_NEWER = 3  /* header of a format version newer than ours */
};

/* Writes a header (NV__SEG_HDR_LEN bytes) for h (its version is ignored:
 * the current one is written). */
void nv__seg_hdr_encode(const nv_seg_hdr *h, uint8_t *out);

/* Decodes a header from p[0..avail). NV__DEC_OK, _SHORT, _BAD, _NEWER. */
int nv__seg_hdr_decode(const uint8_t *p, size_t avail, nv_seg_hdr *h);

/* Bytes r takes on disk, or 0 when r cannot be encoded (unknown type, a
 * NULL pointer with a non-zero length, or a record over the limit). */
size_t nv__rec_size(const nv_rec *r);

/* nv__rec_size(r) != 0, cheaper (no varint is measured unless r is near
 * the size limit). */
bool nv__rec_ok(const nv_rec *r);

/* Encodes r into out, which has room for nv__rec_size(r) bytes; returns
 * that size (0 when r cannot be encoded, nothing written). */
size_t nv__rec_encode(const nv_rec *r, uint8_t *out);

/* nv__rec_encode for a size the caller got from nv__rec_size(r) (not
 * computed again; 0 encodes nothing and returns 0). */
size_t nv__rec_encode_sized(const nv_rec *r, size_t size, uint8_t *out);

/* Reads the length field at p (p has >= NV__REC_HDR_LEN bytes) and returns
 * the whole record size it claims (header included), or 0 when the length
 * is impossible (out of [NV__REC_MIN_BODY, NV__REC_MAX_BODY]). */
size_t nv__rec_peek_size(const uint8_t *p);

/* Decodes one record at p[0..avail). On NV__DEC_OK, *out borrows p (its
 * task/data/aux point into it) and *used is the record size. On
 * NV__DEC_SHORT, *used is the size needed when the header is readable
 * (0 otherwise). NV__DEC_BAD for everything else. */
int nv__rec_decode(const uint8_t *p, size_t avail, nv_rec *out, size_t *used);

/* Little-endian helpers shared with the store. */
static inline void
nv__put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void
nv__put_u64(uint8_t *p, uint64_t v)
{
	nv__put_u32(p, (uint32_t)v);
	nv__put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t
nv__get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t
nv__get_u64(const uint8_t *p)
{
	return (uint64_t)nv__get_u32(p) | (uint64_t)nv__get_u32(p + 4) << 32;
}

#endif
