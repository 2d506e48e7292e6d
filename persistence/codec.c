/*
 * codec.c - encode and decode segment headers and records (codec.h has
 * the layout and the version-bump steps).
 *
 * The decoder is the part that meets hostile bytes (torn tails, bit rot,
 * the fuzzer), so every read is preceded by a bound check against the end
 * of the record, which itself was checked against the bytes available
 * before anything else was read. The crc is checked before the payload is
 * parsed; a payload that parses badly under a good crc (a bug or a forged
 * record) is still rejected.
 */
#include "persistence/codec.h"

#include <stdbool.h>
#include <string.h>

#include "persistence/crc32c.h"

#define NV__VARINT_MAX 10

void
nv__seg_hdr_encode(const nv_seg_hdr *h, uint8_t *out)
{
	memset(out, 0, NV__SEG_HDR_LEN);
	memcpy(out, NV__SEG_MAGIC, 8);
	nv__put_u32(out + 8, NV__SEG_VERSION);
	nv__put_u32(out + 12, NV__SEG_HDR_LEN);
	nv__put_u64(out + 16, h->segno);
	nv__put_u64(out + 24, h->base_seq);
	nv__put_u64(out + 32, h->max_job_id);
	nv__put_u64(out + 40, h->max_sched_id);
	nv__put_u64(out + 48, h->compacted_upto);
	nv__put_u32(out + 60, nv__crc32c(out, 60));
}

int
nv__seg_hdr_decode(const uint8_t *p, size_t avail, nv_seg_hdr *h)
{
	uint32_t version;

	if (avail < 12)
		return NV__DEC_SHORT;
	if (memcmp(p, NV__SEG_MAGIC, 8) != 0)
		return NV__DEC_BAD;
	version = nv__get_u32(p + 8);
	if (version > NV__SEG_VERSION)
		return NV__DEC_NEWER;
	if (version == 0)
		return NV__DEC_BAD;
	if (avail < NV__SEG_HDR_LEN)
		return NV__DEC_SHORT;
	if (nv__get_u32(p + 12) != NV__SEG_HDR_LEN ||
	    nv__get_u32(p + 60) != nv__crc32c(p, 60))
		return NV__DEC_BAD;
	h->version = version;
	h->segno = nv__get_u64(p + 16);
	h->base_seq = nv__get_u64(p + 24);
	h->max_job_id = nv__get_u64(p + 32);
	h->max_sched_id = nv__get_u64(p + 40);
	h->compacted_upto = nv__get_u64(p + 48);
	return NV__DEC_OK;
}

/* Bytes of v as a uvarint: 7 bits a byte, at least one byte. */
static size_t
uvarint_len(uint64_t v)
{
	unsigned bits = 64u - (unsigned)__builtin_clzll(v | 1);
	return (bits + 6) / 7;
}

static size_t
put_uvarint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Reads a canonical uvarint from [*pp, end); false when truncated, longer
 * than 64 bits, or overlong (a final 0 byte after the first). */
static bool
get_uvarint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;

	for (unsigned i = 0; i < NV__VARINT_MAX; i++) {
		uint8_t b;
		if (p >= end)
			return false;
		b = *p++;
		if (i == 9 && b > 1)
			return false; /* more than 64 bits */
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			if (b == 0 && i > 0)
				return false; /* overlong */
			*pp = p;
			*out = v;
			return true;
		}
	}
	return false;
}

static uint64_t
zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t
unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static size_t
body_len(const nv_rec *r)
{
	return NV__REC_FIXED_LEN + uvarint_len(r->id) +
	       uvarint_len(zigzag(r->time_ms)) + uvarint_len(r->attempt) +
	       uvarint_len(r->task_len) + r->task_len +
	       uvarint_len(r->data_len) + r->data_len +
	       uvarint_len(r->aux_len) + r->aux_len;
}

size_t
nv__rec_size(const nv_rec *r)
{
	size_t body;

	if (r == NULL || r->type < 1 || r->type > NV_REC_TYPE_MAX)
		return 0;
	if ((r->task_len && r->task == NULL) ||
	    (r->data_len && r->data == NULL) || (r->aux_len && r->aux == NULL))
		return 0;
	/* Each length is at most 2^32-1, so the sum cannot overflow size_t
	 * on a 64-bit host; check it against the limit before using it. */
	body = body_len(r);
	if (body > NV__REC_MAX_BODY)
		return 0;
	return NV__REC_HDR_LEN + body;
}

bool
nv__rec_ok(const nv_rec *r)
{
	uint64_t sum;

	if (r == NULL || r->type < 1 || r->type > NV_REC_TYPE_MAX)
		return false;
	if ((r->task_len && r->task == NULL) ||
	    (r->data_len && r->data == NULL) || (r->aux_len && r->aux == NULL))
		return false;
	/* Seq, type and six varints of at most 10 bytes: far from the
	 * limit, the record fits; near it, count exactly. */
	sum = (uint64_t)r->task_len + r->data_len + r->aux_len;
	return sum + NV__REC_FIXED_LEN + 60 <= NV__REC_MAX_BODY ||
	       nv__rec_size(r) != 0;
}

size_t
nv__rec_encode(const nv_rec *r, uint8_t *out)
{
	return nv__rec_encode_sized(r, nv__rec_size(r), out);
}

size_t
nv__rec_encode_sized(const nv_rec *r, size_t size, uint8_t *out)
{
	uint8_t *p;

	if (size == 0)
		return 0;
	p = out + NV__REC_HDR_LEN;
	nv__put_u64(p, r->seq);
	p[8] = r->type;
	p += NV__REC_FIXED_LEN;
	p += put_uvarint(p, r->id);
	p += put_uvarint(p, zigzag(r->time_ms));
	p += put_uvarint(p, r->attempt);
	p += put_uvarint(p, r->task_len);
	if (r->task_len)
		memcpy(p, r->task, r->task_len);
	p += r->task_len;
	p += put_uvarint(p, r->data_len);
	if (r->data_len)
		memcpy(p, r->data, r->data_len);
	p += r->data_len;
	p += put_uvarint(p, r->aux_len);
	if (r->aux_len)
		memcpy(p, r->aux, r->aux_len);
	nv__put_u32(out, (uint32_t)(size - NV__REC_HDR_LEN));
	nv__put_u32(out + 4,
		    nv__crc32c(out + NV__REC_HDR_LEN, size - NV__REC_HDR_LEN));
	return size;
}

size_t
nv__rec_peek_size(const uint8_t *p)
{
	uint32_t len = nv__get_u32(p);
	if (len < NV__REC_MIN_BODY || len > NV__REC_MAX_BODY)
		return 0;
	return NV__REC_HDR_LEN + (size_t)len;
}

/* Reads a length-prefixed field; false when it runs past end or over
 * 32 bits. */
static bool
get_field(const uint8_t **pp, const uint8_t *end, const void **ptr,
	  uint32_t *len)
{
	uint64_t n;
	if (!get_uvarint(pp, end, &n) || n > UINT32_MAX ||
	    n > (uint64_t)(end - *pp))
		return false;
	*ptr = n ? *pp : NULL;
	*len = (uint32_t)n;
	*pp += n;
	return true;
}

int
nv__rec_decode(const uint8_t *p, size_t avail, nv_rec *out, size_t *used)
{
	size_t size;
	const uint8_t *q, *end;
	uint64_t v;
	const void *task;
	nv_rec r;

	*used = 0;
	if (avail < NV__REC_HDR_LEN)
		return NV__DEC_SHORT;
	size = nv__rec_peek_size(p);
	if (size == 0)
		return NV__DEC_BAD;
	*used = size;
	if (avail < size)
		return NV__DEC_SHORT;
	if (nv__get_u32(p + 4) !=
	    nv__crc32c(p + NV__REC_HDR_LEN, size - NV__REC_HDR_LEN))
		return NV__DEC_BAD;

	memset(&r, 0, sizeof(r));
	q = p + NV__REC_HDR_LEN;
	end = p + size;
	r.seq = nv__get_u64(q);
	r.type = q[8];
	q += NV__REC_FIXED_LEN;
	if (r.type < 1 || r.type > NV_REC_TYPE_MAX)
		return NV__DEC_BAD;
	if (!get_uvarint(&q, end, &r.id))
		return NV__DEC_BAD;
	if (!get_uvarint(&q, end, &v))
		return NV__DEC_BAD;
	r.time_ms = unzigzag(v);
	if (!get_uvarint(&q, end, &v) || v > UINT32_MAX)
		return NV__DEC_BAD;
	r.attempt = (uint32_t)v;
	if (!get_field(&q, end, &task, &r.task_len) ||
	    !get_field(&q, end, &r.data, &r.data_len) ||
	    !get_field(&q, end, &r.aux, &r.aux_len))
		return NV__DEC_BAD;
	if (q != end)
		return NV__DEC_BAD; /* trailing bytes: not our encoding */
	r.task = task;
	*out = r;
	return NV__DEC_OK;
}
