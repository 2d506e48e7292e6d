/* ctest: labels=unit timeout=300 */
/*
 * test_filelog.c - the file store: round trips, recovery of torn tails at
 * every byte, bit flips, corruption of older segments (quarantine), format
 * versions, locking, rotation and compaction against a reference fold
 * (tests/filelog_model.h). I/O failures are in test_filelog_faults.c.
 */
#include "testutil.h"

#include "filelog_model.h"

/* ---------------------------------------------------------------- tests */

static void
test_filelog_roundtrip_and_reopen(void **state)
{
	char dir[256];
	struct model m = {0};
	nv_store *s;
	nv_store_stats st;
	uint64_t job, sched;
	nv_rec batch[10];

	nv_test_tmpdir(dir, sizeof(dir), "fl-rt");
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	assert_string_equal(s->ops->name, "file");
	for (uint64_t id = 1; id <= 50; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, id * 3));
	for (uint64_t id = 1; id <= 40; id++)
		put(s, &m, mk(&m, NV_REC_JOB_STARTED, id, 1, 0));
	for (uint64_t id = 1; id <= 20; id++)
		put(s, &m, mk(&m, NV_REC_JOB_SUCCEEDED, id, 1, id));
	for (uint64_t id = 21; id <= 30; id++)
		put(s, &m, mk(&m, NV_REC_JOB_RETRY, id, 1, 5));
	for (uint64_t id = 31; id <= 35; id++)
		put(s, &m, mk(&m, NV_REC_JOB_FAILED, id, 1, 7));
	/* Job 5 enqueued again: it starts afresh. */
	put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, 5, 2, 4));
	/* Schedules: added, fired twice, one cancelled. */
	for (uint64_t id = 1; id <= 5; id++)
		put(s, &m, mk(&m, NV_REC_SCHED_ADDED, id, 0, 10));
	for (uint64_t id = 1; id <= 5; id++)
		put(s, &m, mk(&m, NV_REC_SCHED_FIRED, id, 0, 0));
	put(s, &m, mk(&m, NV_REC_SCHED_FIRED, 3, 0, 0));
	put(s, &m, mk(&m, NV_REC_SCHED_CANCELLED, 2, 0, 0));
	/* Records about unknown ids are dead on arrival. */
	put(s, &m, mk(&m, NV_REC_JOB_SUCCEEDED, 999, 1, 0));
	/* One batch of ten records in one write. */
	for (int i = 0; i < 10; i++) {
		batch[i] = mk(&m, NV_REC_JOB_ENQUEUED, 60 + (uint64_t)i, 0, 50);
		model_add(&m, &batch[i]);
	}
	assert_int_equal(s->ops->write(s, batch, 10), 0);
	assert_int_equal(s->ops->sync(s), 0);
	assert_fold(s, &m, 0);
	st = stats_of(s);
	assert_int_equal(st.records, m.n);
	assert_int_equal(st.batches, m.n - 9);
	assert_int_equal(st.last_seq, m.seq);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.quarantined, 0);
	s->ops->max_ids(s, &job, &sched);
	assert_int_equal(job, 999);
	assert_int_equal(sched, 5);
	/* Bad input is refused without failing the store. */
	{
		nv_rec old = mk(&m, NV_REC_JOB_STARTED, 1, 1, 0);
		nv_rec bad = mk(&m, 0, 1, 1, 0);
		old.seq = 3; /* not above the last seq */
		assert_int_equal(s->ops->write(s, &old, 1), NV_EINVAL);
		assert_int_equal(s->ops->write(s, &bad, 1), NV_EINVAL);
		m.seq -= 2;
		assert_int_equal(stats_of(s).failed, 0);
	}
	s->ops->close(s);

	s = store_open(dir, 0, 0, 0, NULL, NULL);
	assert_fold(s, &m, 0);
	st = stats_of(s);
	assert_int_equal(st.last_seq, m.seq);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.quarantined, 0);
	s->ops->max_ids(s, &job, &sched);
	assert_int_equal(job, 999);
	assert_int_equal(sched, 5);
	s->ops->close(s);
	model_free(&m);
	nv_test_rmrf(dir);
}

static void
test_filelog_bad_open_args(void **state)
{
	nv_store *s = NULL;
	nv_store_conf conf = {0};
	char dir[256], other[300];
	assert_int_equal(nv__file_store_ops.open(&s, NULL), NV_EINVAL);
	assert_int_equal(nv__file_store_ops.open(&s, &conf), NV_EINVAL);
	conf.path = "";
	assert_int_equal(nv__file_store_ops.open(&s, &conf), NV_EINVAL);
	/* A path below a regular file cannot be created. */
	nv_test_tmpdir(dir, sizeof(dir), "fl-args");
	snprintf(other, sizeof(other), "%s/file", dir);
	write_file(other, (const uint8_t *)"x", 1);
	snprintf(other, sizeof(other), "%s/file/store", dir);
	conf.path = other;
	assert_int_equal(nv__file_store_ops.open(&s, &conf), NV_EIO);
	assert_null(s);
	nv_test_rmrf(dir);
}

static void
test_filelog_lock_excludes_second_open(void **state)
{
	char dir[256];
	nv_store *a, *b;
	int rc;
	nv_test_tmpdir(dir, sizeof(dir), "fl-lock");
	a = store_open(dir, 0, 0, 0, NULL, NULL);
	b = store_open(dir, 0, 0, 0, NULL, &rc);
	assert_null(b);
	assert_int_equal(rc, NV_EBUSY);
	a->ops->close(a);
	b = store_open(dir, 0, 0, 0, NULL, NULL);
	b->ops->close(b);
	nv_test_rmrf(dir);
}

static void
test_filelog_torn_tail_every_offset(void **state)
{
	char src[256], dir[256], seg[512], path[600];
	struct model m = {0};
	size_t off[64], n, len;
	uint8_t *img;
	nv_store *s;

	g_fsync = NV_FSYNC_OFF; /* hundreds of opens: skip the fsyncs */
	nv__log_set_level(-1);	/* and their warnings */
	nv_test_tmpdir(src, sizeof(src), "fl-torn");
	s = store_open(src, 0, 0, 0, NULL, NULL);
	for (uint64_t id = 1; id <= 30; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, (id * 37) % 160));
	s->ops->close(s);
	img = read_file(only_segment(src, seg, sizeof(seg)), &len);
	n = record_offsets(img, len, off, 63);
	assert_int_equal(n, 30);
	assert_int_equal(off[n], len);

	nv_test_tmpdir(dir, sizeof(dir), "fl-torn-cut");
	snprintf(path, sizeof(path), "%s/%s", dir, strrchr(seg, '/') + 1);
	for (size_t k = n - 3; k < n; k++) {
		struct model want;
		model_prefix(&m, k, &want);
		for (size_t cut = off[k]; cut < off[k + 1]; cut++) {
			nv_store_stats st;
			write_file(path, img, cut);
			s = store_open(dir, 0, 0, 0, NULL, NULL);
			st = stats_of(s);
			assert_int_equal(st.truncated_bytes, cut - off[k]);
			assert_int_equal(st.quarantined, 0);
			assert_int_equal(st.last_seq, k);
			assert_fold(s, &want, 0);
			s->ops->close(s);
			/* The cut is durable: a second open finds nothing. */
			s = store_open(dir, 0, 0, 0, NULL, NULL);
			assert_int_equal(stats_of(s).truncated_bytes, 0);
			assert_fold(s, &want, 0);
			/* And the log goes on after the cut. */
			if (cut == off[k] + 1) {
				struct model more;
				model_prefix(&m, k, &more);
				put(s, &more,
				    mk(&more, NV_REC_JOB_ENQUEUED, 77, 0, 9));
				assert_fold(s, &more, 0);
				model_free(&more);
			}
			s->ops->close(s);
		}
		model_free(&want);
	}
	assert_int_equal(count_suffix(dir, ".corrupt", NULL), 0);
	free(img);
	model_free(&m);
	nv_test_rmrf(src);
	nv_test_rmrf(dir);
	g_fsync = NV_FSYNC_ALWAYS;
}

static void
test_filelog_bitflips_detected(void **state)
{
	char src[256], dir[256], seg[512], path[600];
	struct model m = {0};
	size_t off[16], n, len;
	uint8_t *img;
	nv_store *s;
	uint64_t trials = nv_test_scaled(60);

	g_fsync = NV_FSYNC_OFF;
	nv__log_set_level(-1);
	nv_test_tmpdir(src, sizeof(src), "fl-flip");
	s = store_open(src, 0, 0, 0, NULL, NULL);
	for (uint64_t id = 1; id <= 10; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 40));
	s->ops->close(s);
	img = read_file(only_segment(src, seg, sizeof(seg)), &len);
	n = record_offsets(img, len, off, 15);
	assert_int_equal(n, 10);

	rng_state = 42;
	for (uint64_t t = 0; t < trials; t++) {
		/* Odd trials hit the last record (a torn tail), even ones the
		 * middle record (corruption: records after it survive). */
		size_t k = t % 2 ? 9 : 5;
		uint64_t bit = off[k] * 8 + rng() % ((off[k + 1] - off[k]) * 8);
		struct model want = {0};
		nv_store_stats st;

		nv_test_tmpdir(dir, sizeof(dir), "fl-flip-t");
		snprintf(path, sizeof(path), "%s/%s", dir,
			 strrchr(seg, '/') + 1);
		write_file(path, img, len);
		flip_bit(path, bit);
		for (size_t i = 0; i < n; i++)
			if (i != k)
				model_add(&want, &m.v[i].r);
		s = store_open(dir, 0, 0, 0, NULL, NULL);
		st = stats_of(s);
		assert_fold(s, &want, 0);
		if (k == 9) {
			assert_int_equal(st.truncated_bytes, off[10] - off[9]);
			assert_int_equal(st.quarantined, 0);
			assert_int_equal(count_suffix(dir, ".corrupt", NULL),
					 0);
		} else {
			assert_int_equal(st.truncated_bytes, 0);
			assert_int_equal(st.quarantined, 1);
			assert_int_equal(st.compactions, 1);
			assert_int_equal(count_suffix(dir, ".corrupt", NULL),
					 1);
		}
		s->ops->close(s);
		s = store_open(dir, 0, 0, 0, NULL, NULL);
		st = stats_of(s);
		assert_int_equal(st.truncated_bytes + st.quarantined, 0);
		assert_fold(s, &want, 0);
		s->ops->close(s);
		model_free(&want);
		nv_test_rmrf(dir);
	}
	free(img);
	model_free(&m);
	nv_test_rmrf(src);
	g_fsync = NV_FSYNC_ALWAYS;
}

static void
test_filelog_corrupt_older_segment_quarantined(void **state)
{
	char dir[256], path[600];
	struct model m = {0}, want = {0};
	size_t off[64], len, n;
	uint8_t *img;
	nv_store *s;
	nv_store_stats st;

	nv_test_tmpdir(dir, sizeof(dir), "fl-old");
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	for (uint64_t id = 1; id <= 80; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 80));
	s->ops->close(s);
	assert_true(count_suffix(dir, ".log", NULL) >= 4);

	/* A bad record in the middle of segment 1. */
	snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", dir);
	img = read_file(path, &len);
	n = record_offsets(img, len, off, 63);
	assert_true(n > 6);
	free(img);
	flip_bit(path, off[3] * 8 + 8 * 20 + 3);
	for (size_t i = 0; i < m.n; i++)
		if (i != 3)
			model_add(&want, &m.v[i].r);
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	st = stats_of(s);
	assert_int_equal(st.quarantined, 1);
	assert_int_equal(st.compactions, 1);
	assert_int_equal(st.truncated_bytes, 0);
	assert_fold(s, &want, 0);
	s->ops->close(s);
	assert_int_equal(count_suffix(dir, ".corrupt", NULL), 1);
	assert_int_equal(access(strcat(path, ".corrupt"), F_OK),
			 0); /* seg 1 kept */

	/* A bad header on a (now) older segment: its records still count. */
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	assert_int_equal(stats_of(s).quarantined, 0);
	for (uint64_t id = 81; id <= 120; id++) {
		nv_rec r = mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 80);
		put(s, &m, r);
		model_add(&want, &r);
	}
	s->ops->close(s);
	{
		DIR *d = opendir(dir);
		struct dirent *de;
		char names[64][32];
		int k = 0;
		while ((de = readdir(d)) != NULL)
			if (strlen(de->d_name) == 24 &&
			    strncmp(de->d_name, "seg-", 4) == 0 && k < 64)
				strcpy(names[k++], de->d_name);
		closedir(d);
		qsort(names, (size_t)k, sizeof(names[0]),
		      (int (*)(const void *, const void *))strcmp);
		assert_true(k >= 3);
		snprintf(path, sizeof(path), "%s/%s", dir, names[1]);
		flip_bit(path, 20 * 8); /* the segment number */
	}
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	st = stats_of(s);
	assert_int_equal(st.quarantined, 1);
	assert_fold(s, &want, 0);
	s->ops->close(s);
	assert_int_equal(count_suffix(dir, ".corrupt", NULL), 2);
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	assert_int_equal(stats_of(s).quarantined, 0);
	assert_fold(s, &want, 0);
	s->ops->close(s);
	model_free(&m);
	model_free(&want);
	nv_test_rmrf(dir);
}

static void
test_filelog_newer_format_refused(void **state)
{
	char dir[256], path[600];
	uint8_t hdr[NV__SEG_HDR_LEN + 10];
	nv_seg_hdr h = {.segno = 1};
	size_t len;
	uint8_t *after;
	int rc;

	nv_test_tmpdir(dir, sizeof(dir), "fl-ver");
	nv__seg_hdr_encode(&h, hdr);
	nv__put_u32(hdr + 8, NV__SEG_VERSION + 1);
	memset(hdr + NV__SEG_HDR_LEN, 0x5a, 10);
	snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", dir);
	write_file(path, hdr, sizeof(hdr));
	assert_null(store_open(dir, 0, 0, 0, NULL, &rc));
	assert_int_equal(rc, NV_ECORRUPT);
	after = read_file(path, &len);
	assert_int_equal(len, sizeof(hdr));
	assert_memory_equal(after, hdr, len);
	free(after);
	nv_test_rmrf(dir);
}

static void
test_filelog_torn_segment_creation(void **state)
{
	char dir[256], path[600];
	struct model m = {0};
	nv_store *s;

	nv_test_tmpdir(dir, sizeof(dir), "fl-newseg");
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	for (uint64_t id = 1; id <= 5; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 10));
	s->ops->close(s);
	/* A crash right after creating segment 2: a few header bytes. */
	snprintf(path, sizeof(path), "%s/seg-0000000000000002.log", dir);
	write_file(path, (const uint8_t *)"NVL", 3);
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	assert_int_equal(stats_of(s).truncated_bytes, 3);
	assert_int_equal(stats_of(s).quarantined, 0);
	assert_fold(s, &m, 0);
	put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, 6, 0, 10));
	s->ops->close(s);
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	assert_fold(s, &m, 0);
	s->ops->close(s);
	model_free(&m);
	nv_test_rmrf(dir);
}

static void
rotation_compaction_case(uint64_t retain)
{
	const size_t seg = 4096, compact = 8192;
	char dir[256];
	struct wl w;
	nv_rec batch[8];
	nv_store *s;
	uint64_t steps = nv_test_scaled(1500), job, sched;

	nv_test_tmpdir(dir, sizeof(dir), "fl-compact");
	wl_init(&w, 1234 + retain);
	if (retain == 0)
		w.fire_pct = 60; /* enough dead data to compact */
	g_fsync = NV_FSYNC_OFF;
	s = store_open(dir, seg, compact, retain, NULL, NULL);
	for (uint64_t t = 1; t <= steps; t++) {
		size_t n = wl_batch(&w, batch, 8);
		assert_int_equal(s->ops->write(s, batch, n), 0);
		assert_int_equal(s->ops->sync(s), 0);
		assert_int_equal(s->ops->maintain(s), 0);
		if (t % 250 == 0 || t == steps) {
			uint64_t disk, live = fold_bytes(&w.m, retain);
			assert_fold(s, &w.m, retain);
			count_suffix(dir, ".log", &disk);
			if (retain)
				assert_true(disk <=
					    2 * live + compact + 3 * seg);
		}
	}
	assert_true(stats_of(s).compactions > 0);
	assert_int_equal(count_suffix(dir, ".tmp", NULL), 0);
	s->ops->close(s);
	s = store_open(dir, seg, compact, retain, NULL, NULL);
	assert_fold(s, &w.m, retain);
	s->ops->max_ids(s, &job, &sched);
	assert_int_equal(job, w.next_job);
	assert_int_equal(sched, w.next_sched);
	assert_int_equal(stats_of(s).last_seq, w.m.seq);
	s->ops->close(s);
	model_free(&w.m);
	nv_test_rmrf(dir);
	g_fsync = NV_FSYNC_ALWAYS;
}

static void
test_filelog_rotation_and_compaction_keep_live(void **state)
{
	rotation_compaction_case(0);
}

static void
test_filelog_retention_bounds_disk(void **state)
{
	rotation_compaction_case(20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_filelog_roundtrip_and_reopen, reset),
	    cmocka_unit_test_setup(test_filelog_bad_open_args, reset),
	    cmocka_unit_test_setup(test_filelog_lock_excludes_second_open,
				   reset),
	    cmocka_unit_test_setup(test_filelog_torn_tail_every_offset, reset),
	    cmocka_unit_test_setup(test_filelog_bitflips_detected, reset),
	    cmocka_unit_test_setup(
		test_filelog_corrupt_older_segment_quarantined, reset),
	    cmocka_unit_test_setup(test_filelog_newer_format_refused, reset),
	    cmocka_unit_test_setup(test_filelog_torn_segment_creation, reset),
	    cmocka_unit_test_setup(
		test_filelog_rotation_and_compaction_keep_live, reset),
	    cmocka_unit_test_setup(test_filelog_retention_bounds_disk, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
