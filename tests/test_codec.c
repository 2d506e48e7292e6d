/* ctest: labels=unit timeout=60 */
/*
 * test_codec.c - crc32c (both implementations) and the record/segment
 * header codec: round trips of every record type, limits, and bad input
 * (truncations, bit flips, forged records with valid crcs, random bytes).
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "persistence/codec.h"
#include "persistence/crc32c.h"
#include "filelog_model.h" /* rng, assert_same_rec */

/* ---------------------------------------------------------------- crc */

struct vec {
	uint8_t data[32];
	size_t len;
	uint32_t crc;
};

/* RFC 3720 (iSCSI) B.4 vectors and the classic check value. */
static void
vectors(struct vec *v)
{
	memset(v, 0, 5 * sizeof(*v));
	memcpy(v[0].data, "123456789", 9);
	v[0].len = 9;
	v[0].crc = 0xE3069283u;
	v[1].len = 32;
	v[1].crc = 0x8A9136AAu; /* 32 zero bytes */
	memset(v[2].data, 0xff, 32);
	v[2].len = 32;
	v[2].crc = 0x62A8AB43u;
	for (int i = 0; i < 32; i++) {
		v[3].data[i] = (uint8_t)i;
		v[4].data[i] = (uint8_t)(31 - i);
	}
	v[3].len = v[4].len = 32;
	v[3].crc = 0x46DD794Eu;
	v[4].crc = 0x113FDB5Cu;
}

static void
test_codec_crc_vectors(void **state)
{
	struct vec v[5];
	vectors(v);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(nv__crc32c_sw(0, v[i].data, v[i].len),
				 v[i].crc);
		assert_int_equal(nv__crc32c(v[i].data, v[i].len), v[i].crc);
		if (nv__crc32c_hw_available())
			assert_int_equal(nv__crc32c_hw(0, v[i].data, v[i].len),
					 v[i].crc);
	}
	assert_int_equal(nv__crc32c("", 0), 0);
	if (!nv__crc32c_hw_available())
		print_message("no SSE4.2 here: hardware crc not tested\n");
}

static void
test_codec_crc_hw_matches_sw(void **state)
{
	uint8_t buf[4096 + 16];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rng();
	for (int t = 0; t < 2000; t++) {
		size_t off = rng() % 16, len = rng() % 4096;
		uint32_t sw = nv__crc32c_sw(0, buf + off, len);
		size_t cut = len ? rng() % len : 0;
		/* extend: crc(a||b) == extend(crc(a), b) */
		uint32_t ext = nv__crc32c_extend(nv__crc32c(buf + off, cut),
						 buf + off + cut, len - cut);
		assert_int_equal(ext, sw);
		if (nv__crc32c_hw_available())
			assert_int_equal(nv__crc32c_hw(0, buf + off, len), sw);
	}
}

/* ---------------------------------------------------------------- records */

static void
rec_random(nv_rec *r, uint8_t type, uint8_t *store, size_t cap)
{
	size_t tl = rng() % 40, dl = rng() % 300, al = rng() % 50;
	memset(r, 0, sizeof(*r));
	assert_true(tl + dl + al <= cap);
	for (size_t i = 0; i < tl + dl + al; i++)
		store[i] = (uint8_t)rng();
	r->type = type;
	r->seq = rng() >> (rng() % 64);
	r->id = rng() >> (rng() % 64);
	r->time_ms = (int64_t)rng() >> (rng() % 64);
	r->attempt = (uint32_t)(rng() >> (rng() % 64));
	r->task = tl ? (const char *)store : NULL;
	r->task_len = (uint32_t)tl;
	r->data = dl ? store + tl : NULL;
	r->data_len = (uint32_t)dl;
	r->aux = al ? store + tl + dl : NULL;
	r->aux_len = (uint32_t)al;
}

static void
test_codec_roundtrip_every_type(void **state)
{
	uint8_t store[512], buf[1024];
	for (int t = 0; t < 4000; t++) {
		uint8_t type = (uint8_t)(1 + t % NV_REC_TYPE_MAX);
		nv_rec r, d;
		size_t n, used;
		rec_random(&r, type, store, sizeof(store));
		if (t % 7 == 0) { /* extremes */
			r.seq = UINT64_MAX;
			r.id = UINT64_MAX;
			r.time_ms = t % 2 ? INT64_MIN : INT64_MAX;
			r.attempt = UINT32_MAX;
		}
		n = nv__rec_size(&r);
		assert_true(n >= NV__REC_HDR_LEN + NV__REC_MIN_BODY);
		assert_true(n <= sizeof(buf));
		assert_int_equal(nv__rec_encode(&r, buf), n);
		assert_int_equal(nv__rec_peek_size(buf), n);
		assert_int_equal(nv__rec_decode(buf, n, &d, &used), NV__DEC_OK);
		assert_int_equal(used, n);
		assert_same_rec(&r, &d);
		/* Extra bytes after a record are not part of it. */
		assert_int_equal(nv__rec_decode(buf, sizeof(buf), &d, &used),
				 NV__DEC_OK);
		assert_int_equal(used, n);
	}
}

static void
test_codec_limits(void **state)
{
	static uint8_t big[NV__REC_MAX_BODY];
	nv_rec r = {.seq = 1, .id = 1, .type = NV_REC_JOB_ENQUEUED};

	/* The smallest record. */
	assert_int_equal(nv__rec_size(&r), NV__REC_HDR_LEN + NV__REC_MIN_BODY);
	/* Types out of range. */
	r.type = 0;
	assert_int_equal(nv__rec_size(&r), 0);
	r.type = NV_REC_TYPE_MAX + 1;
	assert_int_equal(nv__rec_size(&r), 0);
	r.type = NV_REC_JOB_SUCCEEDED;
	/* A length with no bytes. */
	r.data_len = 10;
	assert_int_equal(nv__rec_size(&r), 0);
	assert_int_equal(nv__rec_encode(&r, big), 0);
	/* Exactly at the limit, and one byte over. */
	r.data = big;
	r.data_len = NV__REC_MAX_BODY - NV__REC_MIN_BODY - 3; /* varint: 4 */
	assert_int_equal(nv__rec_size(&r), NV__REC_HDR_LEN + NV__REC_MAX_BODY);
	r.data_len++;
	assert_int_equal(nv__rec_size(&r), 0);
	assert_int_equal(nv__rec_size(NULL), 0);
	assert_false(nv__rec_ok(NULL));
}

/* nv__rec_ok (the persister's cheap check) agrees with nv__rec_size for
 * every length around the limit and every type / NULL-pointer case. */
static void
test_codec_ok_matches_size(void **state)
{
	static uint8_t big[NV__REC_MAX_BODY];
	nv_rec r = {.seq = 1, .id = UINT64_MAX, .type = NV_REC_SCHED_ADDED};
	(void)state;

	r.time_ms = INT64_MIN;
	r.attempt = UINT32_MAX;
	r.task = (const char *)big;
	r.aux = big;
	r.data = big;
	for (uint32_t back = 0; back < 200; back++) {
		r.data_len = NV__REC_MAX_BODY - back;
		assert_int_equal(nv__rec_ok(&r), nv__rec_size(&r) != 0);
		r.task_len = back / 3;
		r.aux_len = back / 5;
		assert_int_equal(nv__rec_ok(&r), nv__rec_size(&r) != 0);
		r.task_len = r.aux_len = 0;
	}
	r.data_len = 16;
	for (int t = 0; t <= NV_REC_TYPE_MAX + 1; t++) {
		r.type = (uint8_t)t;
		assert_int_equal(nv__rec_ok(&r), nv__rec_size(&r) != 0);
		r.data = NULL;
		assert_int_equal(nv__rec_ok(&r), nv__rec_size(&r) != 0);
		r.data = big;
	}
}

static void
test_codec_truncation_and_bitflips(void **state)
{
	uint8_t store[512], buf[1024], bad[1024];
	for (int t = 0; t < 40; t++) {
		nv_rec r, d;
		size_t n, used;
		rec_random(&r, (uint8_t)(1 + t % NV_REC_TYPE_MAX), store,
			   sizeof(store));
		n = nv__rec_encode(&r, buf);
		for (size_t cut = 0; cut < n; cut++)
			assert_int_equal(nv__rec_decode(buf, cut, &d, &used),
					 NV__DEC_SHORT);
		for (size_t bit = 0; bit < n * 8; bit++) {
			memcpy(bad, buf, n);
			bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_not_equal(nv__rec_decode(bad, n, &d, &used),
					     NV__DEC_OK);
		}
	}
}

/* Builds [len | crc | body]: a record with a valid crc around any body. */
static size_t
forge(uint8_t *out, const uint8_t *body, size_t len)
{
	nv__put_u32(out, (uint32_t)len);
	nv__put_u32(out + 4, nv__crc32c(body, len));
	memcpy(out + 8, body, len);
	return len + 8;
}

static void
test_codec_forged_payloads(void **state)
{
	uint8_t body[64], buf[128];
	nv_rec d;
	size_t used, n;
	const uint8_t good[] = {
	    0x01, 0x02, 0x03, 0x00 /* task */, 0x00 /* data */, 0x00 /* aux */};

	memset(body, 0, sizeof(body));
	nv__put_u64(body, 7);
	body[8] = NV_REC_JOB_STARTED;
	memcpy(body + 9, good, sizeof(good));
	n = forge(buf, body, 9 + sizeof(good));
	assert_int_equal(nv__rec_decode(buf, n, &d, &used), NV__DEC_OK);
	assert_int_equal(d.id, 1);
	assert_int_equal(d.time_ms, 1); /* zigzag 2 -> 1 */
	assert_int_equal(d.attempt, 3);

	/* Trailing byte inside the record. */
	body[9 + sizeof(good)] = 0;
	n = forge(buf, body, 10 + sizeof(good));
	assert_int_equal(nv__rec_decode(buf, n, &d, &used), NV__DEC_BAD);

	/* Overlong varint: id 1 written as 0x81 0x00. */
	{
		uint8_t b2[] = {0x81, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00};
		memcpy(body + 9, b2, sizeof(b2));
		n = forge(buf, body, 9 + sizeof(b2));
		assert_int_equal(nv__rec_decode(buf, n, &d, &used),
				 NV__DEC_BAD);
	}
	/* Varint of 11 bytes, and one over 64 bits. */
	{
		uint8_t b3[16];
		memset(b3, 0xff, 10);
		b3[10] = 0x01;
		memcpy(body + 9, b3, 11);
		memset(body + 20, 0, 5);
		n = forge(buf, body, 9 + 16);
		assert_int_equal(nv__rec_decode(buf, n, &d, &used),
				 NV__DEC_BAD);
		b3[9] = 0x02; /* 10th byte may only hold bit 63 */
		memcpy(body + 9, b3, 10);
		n = forge(buf, body, 9 + 15);
		assert_int_equal(nv__rec_decode(buf, n, &d, &used),
				 NV__DEC_BAD);
	}
	/* A field length running past the end. */
	{
		uint8_t b4[] = {0x01, 0x02, 0x03, 0x20 /* task: 32 bytes */,
				'a',  0x00, 0x00};
		memcpy(body + 9, b4, sizeof(b4));
		n = forge(buf, body, 9 + sizeof(b4));
		assert_int_equal(nv__rec_decode(buf, n, &d, &used),
				 NV__DEC_BAD);
	}
	/* Unknown type under a valid crc. */
	memcpy(body + 9, good, sizeof(good));
	body[8] = 0;
	n = forge(buf, body, 9 + sizeof(good));
	assert_int_equal(nv__rec_decode(buf, n, &d, &used), NV__DEC_BAD);
	body[8] = NV_REC_TYPE_MAX + 1;
	n = forge(buf, body, 9 + sizeof(good));
	assert_int_equal(nv__rec_decode(buf, n, &d, &used), NV__DEC_BAD);
	/* Impossible lengths. */
	nv__put_u32(buf, NV__REC_MIN_BODY - 1);
	assert_int_equal(nv__rec_decode(buf, sizeof(buf), &d, &used),
			 NV__DEC_BAD);
	assert_int_equal(nv__rec_peek_size(buf), 0);
	nv__put_u32(buf, NV__REC_MAX_BODY + 1);
	assert_int_equal(nv__rec_decode(buf, sizeof(buf), &d, &used),
			 NV__DEC_BAD);
	nv__put_u32(buf, UINT32_MAX);
	assert_int_equal(nv__rec_decode(buf, sizeof(buf), &d, &used),
			 NV__DEC_BAD);
	/* A plausible length beyond the bytes we have: short, and the size
	 * it needs is reported. */
	nv__put_u32(buf, 100);
	assert_int_equal(nv__rec_decode(buf, 50, &d, &used), NV__DEC_SHORT);
	assert_int_equal(used, 108);
}

static void
test_codec_random_bytes_never_crash(void **state)
{
	uint64_t n = nv_test_scaled(200000), ok = 0;
	uint8_t *buf = malloc(256);
	for (uint64_t t = 0; t < n; t++) {
		size_t len = rng() % 256, used;
		nv_rec d;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rng();
		if (len >= 4 && t % 2) /* make the length plausible */
			nv__put_u32(buf, (uint32_t)(rng() % (len + 8)));
		if (nv__rec_decode(buf, len, &d, &used) == NV__DEC_OK)
			ok++;
		else
			continue;
		assert_true(used <= len);
	}
	/* A random record passing a 32-bit crc is a 1-in-4e9 event. */
	assert_true(ok <= 1);
	free(buf);
}

/* ---------------------------------------------------------------- header */

static void
test_codec_segment_header(void **state)
{
	uint8_t b[NV__SEG_HDR_LEN];
	nv_seg_hdr h = {.segno = 0x1234,
			.base_seq = 99,
			.max_job_id = 7,
			.max_sched_id = 8,
			.compacted_upto = 0x1234},
		   d;

	nv__seg_hdr_encode(&h, b);
	assert_memory_equal(b, NV__SEG_MAGIC, 8);
	assert_int_equal(nv__seg_hdr_decode(b, sizeof(b), &d), NV__DEC_OK);
	assert_int_equal(d.version, NV__SEG_VERSION);
	assert_int_equal(d.segno, h.segno);
	assert_int_equal(d.base_seq, h.base_seq);
	assert_int_equal(d.max_job_id, h.max_job_id);
	assert_int_equal(d.max_sched_id, h.max_sched_id);
	assert_int_equal(d.compacted_upto, h.compacted_upto);
	for (size_t cut = 0; cut < sizeof(b); cut++)
		assert_int_equal(nv__seg_hdr_decode(b, cut, &d), NV__DEC_SHORT);
	for (size_t bit = 0; bit < sizeof(b) * 8; bit++) {
		uint8_t c[NV__SEG_HDR_LEN];
		int rc;
		memcpy(c, b, sizeof(c));
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		rc = nv__seg_hdr_decode(c, sizeof(c), &d);
		/* A flip in the version may read as newer; never as OK. */
		assert_int_not_equal(rc, NV__DEC_OK);
		if (bit / 8 < 8 || bit / 8 >= 12)
			assert_int_equal(rc, NV__DEC_BAD);
	}
	/* A newer version is reported as such, before its crc is checked
	 * (its header may be laid out differently). */
	nv__put_u32(b + 8, NV__SEG_VERSION + 1);
	assert_int_equal(nv__seg_hdr_decode(b, sizeof(b), &d), NV__DEC_NEWER);
	assert_int_equal(nv__seg_hdr_decode(b, 12, &d), NV__DEC_NEWER);
}

int
main(void)
{
	rng_state = 0x9E3779B97F4A7C15ull; /* same seed as before */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_codec_crc_vectors),
	    cmocka_unit_test(test_codec_crc_hw_matches_sw),
	    cmocka_unit_test(test_codec_roundtrip_every_type),
	    cmocka_unit_test(test_codec_limits),
	    cmocka_unit_test(test_codec_ok_matches_size),
	    cmocka_unit_test(test_codec_truncation_and_bitflips),
	    cmocka_unit_test(test_codec_forged_payloads),
	    cmocka_unit_test(test_codec_random_bytes_never_crash),
	    cmocka_unit_test(test_codec_segment_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
