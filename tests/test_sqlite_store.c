/* ctest: labels=unit timeout=180 */
/*
 * tests/test_sqlite_store.c - the SQLite store: fold semantics through
 * write + reopen + replay (checked against an independent model), ids,
 * big batches, damaged files, newer schema, the failed state, two
 * instances on one file, retention, and a throughput print.
 */
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "persistence/sqlite_schema.h"
#include "persistence/store.h"

static const nv_store_ops *ops = &nv__sqlite_store_ops;

/* ------------------------------------------------------------ helpers */

typedef struct fixture {
	char dir[256];
	char path[320];
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	nv_test_tmpdir(f->dir, sizeof(f->dir), "sqlite");
	snprintf(f->path, sizeof(f->path), "%s/db/store.db", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;

	nv_test_rmrf(f->dir);
	free(f);
	return 0;
}

static nv_store *
open_ok(const char *path, nv_fsync_policy pol, uint64_t retain)
{
	nv_store_conf conf = {
	    .path = path, .fsync = pol, .retain_finished = retain};
	nv_store *s = NULL;

	assert_int_equal(ops->open(&s, &conf), 0);
	assert_non_null(s);
	assert_ptr_equal(s->ops, ops);
	return s;
}

/* Opens a file expected to be refused; checks *out is untouched, the code
 * and that the logged message names the file. */
static int
open_refused(const char *path, const char *expect)
{
	nv_store_conf conf = {.path = path, .fsync = NV_FSYNC_ALWAYS};
	nv_store *sentinel = (nv_store *)(uintptr_t)0x1234, *s = sentinel;
	char log[320], buf[4096];
	int saved, fd, rc;
	ssize_t n;

	snprintf(log, sizeof(log), "%s.log", path);
	fflush(stderr);
	saved = dup(2);
	fd = open(log, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	rc = ops->open(&s, &conf);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(log);
	buf[n > 0 ? n : 0] = '\0';
	fprintf(stderr, "(captured) %s", buf);
	assert_ptr_equal(s, sentinel);
	assert_true(rc == NV_ECORRUPT || rc == NV_EIO);
	assert_non_null(strstr(buf, path));
	if (expect)
		assert_non_null(strstr(buf, expect));
	return rc;
}

static nv_rec
rec(uint8_t type, uint64_t id, uint32_t attempt, int64_t t)
{
	nv_rec r = {.type = type, .id = id, .attempt = attempt, .time_ms = t};
	return r;
}

static nv_rec
with_task(nv_rec r, const char *task, const void *data, uint32_t len)
{
	r.task = task;
	r.task_len = task ? (uint32_t)strlen(task) : 0;
	r.data = data;
	r.data_len = len;
	return r;
}

static nv_rec
with_data(nv_rec r, const char *s)
{
	r.data = s;
	r.data_len = (uint32_t)strlen(s);
	return r;
}

/* Replayed records, deep-copied. */
typedef struct coll {
	nv_rec *v;
	size_t n, cap;
	int stop_after; /* > 0: return 77 from the callback after this many */
} coll;

static void *
dup_bytes(const void *p, uint32_t n)
{
	void *q;

	if (!n)
		return NULL;
	q = malloc(n);
	assert_non_null(q);
	memcpy(q, p, n);
	return q;
}

static int
collect_fn(const nv_rec *r, void *arg)
{
	coll *c = arg;
	nv_rec *d;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		assert_non_null(c->v);
	}
	assert_true(r->task_len == 0 || r->task != NULL);
	assert_true(r->data_len == 0 || r->data != NULL);
	assert_true(r->aux_len == 0 || r->aux != NULL);
	d = &c->v[c->n++];
	*d = *r;
	d->task = dup_bytes(r->task, r->task_len);
	d->data = dup_bytes(r->data, r->data_len);
	d->aux = dup_bytes(r->aux, r->aux_len);
	if (c->stop_after && (int)c->n == c->stop_after)
		return 77;
	return 0;
}

static void
coll_free(coll *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free((void *)c->v[i].task);
		free((void *)c->v[i].data);
		free((void *)c->v[i].aux);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static void
replay_all(nv_store *s, coll *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(ops->replay(s, collect_fn, c), 0);
	for (size_t i = 1; i < c->n; i++)
		assert_true(c->v[i].seq > c->v[i - 1].seq);
}

static void
assert_bytes(const void *a, uint32_t alen, const void *b, uint32_t blen)
{
	assert_int_equal(alen, blen);
	if (alen)
		assert_memory_equal(a, b, alen);
}

static void
assert_rec(const nv_rec *got, const nv_rec *want)
{
	assert_int_equal(got->type, want->type);
	assert_int_equal(got->id, want->id);
	assert_int_equal(got->time_ms, want->time_ms);
	if (want->type != NV_REC_SCHED_ADDED &&
	    want->type != NV_REC_SCHED_FIRED)
		assert_int_equal(got->attempt, want->attempt);
	assert_bytes(got->task, got->task_len, want->task, want->task_len);
	assert_bytes(got->data, got->data_len, want->data, want->data_len);
	assert_bytes(got->aux, got->aux_len, want->aux, want->aux_len);
}

static void
assert_stream(const coll *c, const nv_rec *want, size_t n)
{
	assert_int_equal(c->n, n);
	for (size_t i = 0; i < n; i++)
		assert_rec(&c->v[i], &want[i]);
}

static nv_store *
reopen(nv_store *s, const char *path, nv_fsync_policy pol)
{
	ops->close(s);
	return open_ok(path, pol, 0);
}

/* ------------------------------------------------ fold round trips */

static void
test_sqlite_store_roundtrip_each_type(void **state)
{
	fixture *f = *state;
	nv_store *s = open_ok(f->path, NV_FSYNC_ALWAYS, 0);
	const char spec[] = {1, 2, 3, 0, 4};
	nv_rec w[16];
	size_t n = 0;
	coll c;

	/* 1: success after a retry. 2: final failure. 3: retry pending.
	 * 4: running at the "crash". 5: only enqueued (empty args). */
	w[n++] =
	    with_task(rec(NV_REC_JOB_ENQUEUED, 1, 0, 100), "mail", "a1", 2);
	w[n++] = rec(NV_REC_JOB_STARTED, 1, 1, 110);
	w[n++] = with_data(rec(NV_REC_JOB_RETRY, 1, 1, 500), "boom");
	w[n++] = rec(NV_REC_JOB_STARTED, 1, 2, 510);
	w[n++] =
	    with_task(rec(NV_REC_JOB_SUCCEEDED, 1, 2, 520), NULL, "ok!", 3);
	w[n++] = with_task(rec(NV_REC_JOB_ENQUEUED, 2, 0, 200), "pay", "x", 1);
	w[n++] = rec(NV_REC_JOB_STARTED, 2, 1, 210);
	w[n++] = with_data(rec(NV_REC_JOB_FAILED, 2, 1, 220), "no funds");
	assert_int_equal(ops->write(s, w, n), 0);
	n = 0;
	w[n++] = with_task(rec(NV_REC_JOB_ENQUEUED, 3, 0, 300), "img", "y", 1);
	w[n++] = rec(NV_REC_JOB_STARTED, 3, 1, 310);
	w[n++] = with_data(rec(NV_REC_JOB_RETRY, 3, 1, 900), "later");
	w[n++] = with_task(rec(NV_REC_JOB_ENQUEUED, 4, 0, 400), "img", "z", 1);
	w[n++] = rec(NV_REC_JOB_STARTED, 4, 1, 410);
	w[n++] = with_task(rec(NV_REC_JOB_ENQUEUED, 5, 0, 450), "nop", NULL, 0);
	assert_int_equal(ops->write(s, w, n), 0);
	n = 0;
	w[n] = with_task(rec(NV_REC_SCHED_ADDED, 1, 0, 1000), "tick", "s", 1);
	w[n].aux = spec;
	w[n++].aux_len = sizeof(spec);
	w[n++] = rec(NV_REC_SCHED_FIRED, 1, 0, 1000);
	w[n++] =
	    with_task(rec(NV_REC_SCHED_ADDED, 2, 0, 2000), "gone", NULL, 0);
	w[n++] = rec(NV_REC_SCHED_CANCELLED, 2, 0, 1500);
	w[n++] = with_task(rec(NV_REC_SCHED_ADDED, 3, 0, 3000), "once", "o", 1);
	assert_int_equal(ops->write(s, w, n), 0);
	assert_int_equal(ops->sync(s), 0);

	s = reopen(s, f->path, NV_FSYNC_ALWAYS);
	replay_all(s, &c);
	{
		nv_rec want[] = {
		    with_task(rec(NV_REC_JOB_ENQUEUED, 1, 2, 100), "mail", "a1",
			      2),
		    with_task(rec(NV_REC_JOB_SUCCEEDED, 1, 2, 520), NULL, "ok!",
			      3),
		    with_task(rec(NV_REC_JOB_ENQUEUED, 2, 1, 200), "pay", "x",
			      1),
		    with_data(rec(NV_REC_JOB_FAILED, 2, 1, 220), "no funds"),
		    with_task(rec(NV_REC_JOB_ENQUEUED, 3, 1, 300), "img", "y",
			      1),
		    with_data(rec(NV_REC_JOB_RETRY, 3, 1, 900), "later"),
		    with_task(rec(NV_REC_JOB_ENQUEUED, 4, 1, 400), "img", "z",
			      1),
		    with_task(rec(NV_REC_JOB_ENQUEUED, 5, 0, 450), "nop", NULL,
			      0),
		    with_task(rec(NV_REC_SCHED_ADDED, 1, 0, 1000), "tick", "s",
			      1),
		    rec(NV_REC_SCHED_FIRED, 1, 0, 1000),
		    with_task(rec(NV_REC_SCHED_ADDED, 3, 0, 3000), "once", "o",
			      1),
		};
		want[8].aux = spec;
		want[8].aux_len = sizeof(spec);
		assert_stream(&c, want, sizeof(want) / sizeof(want[0]));
	}
	coll_free(&c);
	ops->close(s);
}

/* A job RUNNING at a crash counts its started attempt; a later attempt
 * number survives reopen; records for unknown ids are ignored but still
 * count for the max ids. */
static void
test_sqlite_store_attempts_kept(void **state)
{
	fixture *f = *state;
	nv_store *s = open_ok(f->path, NV_FSYNC_BATCH, 0);
	nv_rec w[] = {
	    with_task(rec(NV_REC_JOB_ENQUEUED, 7, 3, 70), "t", "a", 1),
	    rec(NV_REC_JOB_STARTED, 7, 4, 71),
	    rec(NV_REC_JOB_STARTED, 9, 1, 72), /* never enqueued */
	    rec(NV_REC_SCHED_CANCELLED, 4, 0, 73),
	};
	uint64_t mj, ms;
	coll c;

	assert_int_equal(ops->write(s, w, 4), 0);
	assert_int_equal(ops->sync(s), 0);
	s = reopen(s, f->path, NV_FSYNC_BATCH);
	replay_all(s, &c);
	assert_int_equal(c.n, 1);
	assert_rec(&c.v[0], &(nv_rec){.type = NV_REC_JOB_ENQUEUED,
				      .id = 7,
				      .attempt = 4,
				      .time_ms = 70,
				      .task = "t",
				      .task_len = 1,
				      .data = "a",
				      .data_len = 1});
	coll_free(&c);
	ops->max_ids(s, &mj, &ms);
	assert_int_equal(mj, 9);
	assert_int_equal(ms, 4);
	ops->close(s);
}

/* ---------------------------------------------- randomized vs a model */

#define MJOBS 120
#define MSCHED 20

typedef struct mjob {
	bool present, has_due;
	int status; /* 0 P, 1 R, 2 S, 3 F */
	uint32_t attempts;
	int64_t created, finished, due;
	char task[16];
	uint8_t args[40];
	uint32_t args_len;
	char text[24]; /* result or error */
	uint32_t text_len;
} mjob;

typedef struct msched {
	bool present, cancelled, fired;
	int64_t next, fired_ms;
	char task[16];
	uint8_t args[8], spec[12];
	uint32_t args_len, spec_len;
} msched;

typedef struct model {
	mjob j[MJOBS + 10];
	msched sc[MSCHED + 10];
	uint64_t max_job, max_sched;
} model;

static uint64_t rng = 88172645463325252ull;

static uint32_t
rnd(uint32_t n)
{
	return (uint32_t)(nv_test_rand(&rng) % n);
}

static void
cp(void *dst, const void *src, uint32_t n)
{
	if (n)
		memcpy(dst, src, n);
}

/* Applies r to the model, following the fold the store documents. */
static void
model_apply(model *m, const nv_rec *r)
{
	mjob *j = r->type <= NV_REC_JOB_RETRY ? &m->j[r->id] : NULL;
	msched *sc = r->type >= NV_REC_SCHED_ADDED ? &m->sc[r->id] : NULL;
	uint32_t att;

	if (j && r->id > m->max_job)
		m->max_job = r->id;
	if (sc && r->id > m->max_sched)
		m->max_sched = r->id;
	if (r->type == NV_REC_JOB_ENQUEUED) {
		memset(j, 0, sizeof(*j));
		j->present = true;
		j->attempts = r->attempt;
		j->created = r->time_ms;
		cp(j->task, r->task, r->task_len);
		cp(j->args, r->data, r->data_len);
		j->args_len = r->data_len;
		return;
	}
	if (sc && r->type == NV_REC_SCHED_ADDED) {
		memset(sc, 0, sizeof(*sc));
		sc->present = true;
		sc->next = r->time_ms;
		cp(sc->task, r->task, r->task_len);
		cp(sc->args, r->data, r->data_len);
		sc->args_len = r->data_len;
		cp(sc->spec, r->aux, r->aux_len);
		sc->spec_len = r->aux_len;
		return;
	}
	if ((j && !j->present) || (sc && !sc->present))
		return;
	att = j && r->attempt > j->attempts ? r->attempt : j ? j->attempts : 0;
	switch (r->type) {
	case NV_REC_JOB_STARTED:
		j->status = 1;
		j->attempts = r->attempt;
		j->has_due = false;
		break;
	case NV_REC_JOB_SUCCEEDED:
	case NV_REC_JOB_FAILED:
		j->status = r->type == NV_REC_JOB_SUCCEEDED ? 2 : 3;
		j->attempts = att;
		j->finished = r->time_ms;
		j->has_due = false;
		cp(j->text, r->data, r->data_len);
		j->text_len = r->data_len;
		break;
	case NV_REC_JOB_RETRY:
		j->status = 0;
		j->attempts = att;
		j->has_due = true;
		j->due = r->time_ms;
		cp(j->text, r->data, r->data_len);
		j->text_len = r->data_len;
		break;
	case NV_REC_SCHED_CANCELLED:
		sc->cancelled = true;
		break;
	case NV_REC_SCHED_FIRED:
		sc->fired = true;
		sc->fired_ms = r->time_ms;
		break;
	}
}

/* The stream the model expects from replay. */
static size_t
model_expect(const model *m, nv_rec *out)
{
	size_t n = 0;

	for (uint64_t id = 1; id < MJOBS + 10; id++) {
		const mjob *j = &m->j[id];

		if (!j->present)
			continue;
		out[n++] = with_task(
		    rec(NV_REC_JOB_ENQUEUED, id, j->attempts, j->created),
		    j->task, j->args, j->args_len);
		if (j->status == 2 || j->status == 3 ||
		    (j->status == 0 && j->has_due)) {
			uint8_t t = j->status == 2   ? NV_REC_JOB_SUCCEEDED
				    : j->status == 3 ? NV_REC_JOB_FAILED
						     : NV_REC_JOB_RETRY;
			out[n] = rec(t, id, j->attempts,
				     j->status ? j->finished : j->due);
			out[n].data = j->text;
			out[n++].data_len = j->text_len;
		}
	}
	for (uint64_t id = 1; id < MSCHED + 10; id++) {
		const msched *sc = &m->sc[id];

		if (!sc->present || sc->cancelled)
			continue;
		out[n] = with_task(rec(NV_REC_SCHED_ADDED, id, 0, sc->next),
				   sc->task, sc->args, sc->args_len);
		out[n].aux = sc->spec;
		out[n++].aux_len = sc->spec_len;
		if (sc->fired)
			out[n++] = rec(NV_REC_SCHED_FIRED, id, 0, sc->fired_ms);
	}
	return n;
}

/* One random record; its bytes live in buf (64 bytes). */
static nv_rec
random_rec(const model *m, char *buf)
{
	static const char *const tasks[] = {"alpha", "beta", "gamma"};
	uint64_t id;
	nv_rec r;
	uint32_t len = rnd(24);

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (char)('a' + rnd(26));
	if (rnd(5) == 0) { /* schedules */
		id = 1 + rnd(MSCHED + (rnd(10) == 0 ? 5 : 0));
		switch (m->sc[id].present ? rnd(4) : 0) {
		case 0:
		case 1:
			r = with_task(rec(NV_REC_SCHED_ADDED, id, 0, rnd(1e6)),
				      tasks[rnd(3)], buf, len % 8);
			r.aux = buf + 8;
			r.aux_len = rnd(12);
			return r;
		case 2:
			return rec(NV_REC_SCHED_CANCELLED, id, 0, rnd(1e6));
		default:
			return rec(NV_REC_SCHED_FIRED, id, 0, rnd(1e6));
		}
	}
	id = 1 + rnd(MJOBS + (rnd(20) == 0 ? 8 : 0));
	uint32_t a = m->j[id].attempts;
	switch (m->j[id].present ? rnd(12) : 0) {
	case 0:
		return with_task(rec(NV_REC_JOB_ENQUEUED, id, rnd(3), rnd(1e6)),
				 tasks[rnd(3)], len ? buf : NULL, len);
	case 1:
	case 2:
	case 3:
		return rec(NV_REC_JOB_STARTED, id, a + 1, rnd(1e6));
	case 4:
	case 5:
		r = rec(NV_REC_JOB_SUCCEEDED, id, a, rnd(1e6));
		r.data = len ? buf : NULL;
		r.data_len = len;
		return r;
	case 6:
	case 7:
		r = rec(NV_REC_JOB_FAILED, id, a + rnd(2), rnd(1e6));
		r.data = len ? buf : NULL;
		r.data_len = len;
		return r;
	default:
		r = rec(NV_REC_JOB_RETRY, id, a, rnd(1e6));
		r.data = len ? buf : NULL;
		r.data_len = len;
		return r;
	}
}

static void
test_sqlite_store_random_fold(void **state)
{
	fixture *f = *state;
	model *m = calloc(1, sizeof(*m));
	nv_store *s = open_ok(f->path, NV_FSYNC_OFF, 0);
	size_t total = nv_test_scaled(6000), done = 0, round = 0;
	nv_rec *batch = malloc(100 * sizeof(*batch));
	char(*bufs)[64] = malloc(100 * 64);
	nv_rec *want = malloc((MJOBS + MSCHED + 20) * 2 * sizeof(*want));
	uint64_t mj, ms;
	size_t nw;
	coll c;

	assert_true(m && batch && bufs && want);
	while (done < total) {
		size_t n = 1 + rnd(100);

		for (size_t i = 0; i < n; i++) {
			batch[i] = random_rec(m, bufs[i]);
			/* The model sees records in order inside a batch. */
			model_apply(m, &batch[i]);
		}
		assert_int_equal(ops->write(s, batch, n), 0);
		done += n;
		if (++round % 20 == 0) { /* reopen now and then */
			assert_int_equal(ops->sync(s), 0);
			s = reopen(s, f->path, NV_FSYNC_OFF);
			replay_all(s, &c);
			nw = model_expect(m, want);
			assert_stream(&c, want, nw);
			coll_free(&c);
		}
	}
	s = reopen(s, f->path, NV_FSYNC_OFF);
	replay_all(s, &c);
	nw = model_expect(m, want);
	assert_true(nw > 50);
	assert_stream(&c, want, nw);
	coll_free(&c);
	ops->max_ids(s, &mj, &ms);
	assert_int_equal(mj, m->max_job);
	assert_int_equal(ms, m->max_sched);
	ops->close(s);
	free(want);
	free(bufs);
	free(batch);
	free(m);
}

/* ------------------------------------------------ ids, batches, args */

static void
test_sqlite_store_max_ids_after_reopen(void **state)
{
	fixture *f = *state;
	nv_store *s = open_ok(f->path, NV_FSYNC_ALWAYS, 2);
	nv_rec w[40];
	uint64_t mj = 1, ms = 1;
	coll c;

	ops->max_ids(s, &mj, &ms);
	assert_int_equal(mj, 0);
	assert_int_equal(ms, 0);
	/* 100 finished jobs, retention keeps 2: deleted rows still count. */
	for (uint64_t id = 1; id <= 100; id += 20) {
		for (uint64_t k = 0; k < 20; k++) {
			w[2 * k] =
			    with_task(rec(NV_REC_JOB_ENQUEUED, id + k, 0, 1),
				      "t", NULL, 0);
			w[2 * k + 1] = rec(NV_REC_JOB_SUCCEEDED, id + k, 1, 2);
		}
		assert_int_equal(ops->write(s, w, 40), 0);
	}
	w[0] = with_task(rec(NV_REC_SCHED_ADDED, 31, 0, 5), "s", NULL, 0);
	assert_int_equal(ops->write(s, w, 1), 0);
	assert_int_equal(ops->maintain(s), 0);
	ops->max_ids(s, &mj, &ms);
	assert_int_equal(mj, 100);
	assert_int_equal(ms, 31);
	ops->close(s);
	s = open_ok(f->path, NV_FSYNC_ALWAYS, 2);
	ops->max_ids(s, &mj, &ms);
	assert_int_equal(mj, 100);
	assert_int_equal(ms, 31);
	replay_all(s, &c);
	assert_int_equal(c.n, 2 * 2 + 1); /* 2 kept jobs + 1 schedule */
	assert_int_equal(c.v[0].id, 99);
	assert_int_equal(c.v[2].id, 100);
	coll_free(&c);
	ops->close(s);
}

static void
test_sqlite_store_retention(void **state)
{
	fixture *f = *state;
	uint64_t retain = 50, jobs = nv_test_scaled(3000);
	nv_store *s = open_ok(f->path, NV_FSYNC_OFF, retain);
	nv_rec w[2];
	nv_store_stats st;
	size_t finished = 0, pending = 0;
	coll c;

	/* Every third job stays pending: retention deletes finished only. */
	for (uint64_t id = 1; id <= jobs; id++) {
		w[0] =
		    with_task(rec(NV_REC_JOB_ENQUEUED, id, 0, 1), "t", "a", 1);
		w[1] = with_data(rec(NV_REC_JOB_FAILED, id, 1, 2), "e");
		assert_int_equal(ops->write(s, w, id % 3 ? 2 : 1), 0);
		assert_int_equal(ops->maintain(s), 0);
	}
	ops->stats(s, &st);
	assert_true(st.compactions > 0);
	s = reopen(s, f->path, NV_FSYNC_OFF);
	replay_all(s, &c);
	for (size_t i = 0; i < c.n; i++) {
		if (c.v[i].type == NV_REC_JOB_FAILED)
			finished++;
		else if (i + 1 == c.n || c.v[i + 1].type != NV_REC_JOB_FAILED)
			pending++;
	}
	/* maintain trims lazily: at most retain + slack finished remain. */
	assert_true(finished >= retain && finished <= retain + retain / 8 + 64);
	assert_int_equal(pending, jobs / 3);
	/* The newest job is kept, finished or not. */
	assert_int_equal(c.v[c.n - 1].id, jobs);
	coll_free(&c);
	ops->close(s);
}

static void
test_sqlite_store_big_batches(void **state)
{
	fixture *f = *state;
	size_t n = 10000, batches = 3;
	nv_store *s = open_ok(f->path, NV_FSYNC_ALWAYS, 0);
	nv_rec *w = malloc(n * sizeof(*w));
	uint64_t args[1];
	nv_store_stats st;
	uint64_t mj;
	coll c;

	assert_non_null(w);
	for (size_t b = 0; b < batches; b++) {
		for (size_t i = 0; i < n; i++) {
			uint64_t id = b * n + i + 1;

			args[0] = id * 2654435761u;
			w[i] = with_task(
			    rec(NV_REC_JOB_ENQUEUED, id, 0, (int64_t)id),
			    "bulk", args, sizeof(args));
			w[i].data = dup_bytes(args, sizeof(args));
		}
		assert_int_equal(ops->write(s, w, n), 0);
		for (size_t i = 0; i < n; i++)
			free((void *)w[i].data);
	}
	assert_int_equal(ops->sync(s), 0);
	ops->stats(s, &st);
	assert_int_equal(st.records, n * batches);
	assert_int_equal(st.batches, batches);
	assert_int_equal(st.failed, 0);
	s = reopen(s, f->path, NV_FSYNC_ALWAYS);
	replay_all(s, &c);
	assert_int_equal(c.n, n * batches);
	for (size_t i = 0; i < c.n; i++) {
		uint64_t id = i + 1, a = id * 2654435761u;

		assert_int_equal(c.v[i].id, id);
		assert_int_equal(c.v[i].type, NV_REC_JOB_ENQUEUED);
		assert_bytes(c.v[i].data, c.v[i].data_len, &a, sizeof(a));
	}
	coll_free(&c);
	ops->max_ids(s, &mj, NULL);
	assert_int_equal(mj, n * batches);
	ops->close(s);
	free(w);
}

static void
test_sqlite_store_bad_input(void **state)
{
	fixture *f = *state;
	nv_store_conf conf = {.path = NULL};
	nv_store *s = NULL;
	char big[101];
	nv_rec w[2];
	coll c;

	assert_int_equal(ops->open(&s, &conf), NV_EINVAL);
	conf.path = "";
	assert_int_equal(ops->open(&s, &conf), NV_EINVAL);
	conf.path = f->dir; /* a directory */
	assert_int_equal(ops->open(&s, &conf), NV_EIO);
	assert_null(s);

	/* The parent directories are created. */
	s = open_ok(f->path, NV_FSYNC_ALWAYS, 0);
	w[0] = with_task(rec(NV_REC_JOB_ENQUEUED, 1, 0, 1), "t", NULL, 0);
	w[1] = rec(99, 1, 0, 1);
	assert_int_equal(ops->write(s, w, 2), NV_EINVAL);
	w[1] = rec(NV_REC_JOB_STARTED, 0, 1, 1); /* id 0 */
	assert_int_equal(ops->write(s, w, 2), NV_EINVAL);
	assert_int_equal(ops->write(s, NULL, 3), NV_EINVAL);
	assert_int_equal(ops->replay(s, NULL, NULL), NV_EINVAL);
	/* Over SQLite's length limit (lowered here): refused, not failed. */
	sqlite3_limit(nv__sqlite_store_db(s), SQLITE_LIMIT_LENGTH, 100);
	w[1] = with_task(rec(NV_REC_JOB_ENQUEUED, 2, 0, 1), "t",
			 memset(big, 'b', sizeof(big)), sizeof(big));
	assert_int_equal(ops->write(s, w, 2), NV_E2BIG);
	/* Refused batches wrote nothing and did not fail the store. */
	replay_all(s, &c);
	assert_int_equal(c.n, 0);
	coll_free(&c);
	assert_int_equal(ops->write(s, w, 1), 0);
	assert_int_equal(ops->write(s, w, 0), 0);
	assert_int_equal(ops->sync(s), 0);
	replay_all(s, &c);
	assert_int_equal(c.n, 1);
	coll_free(&c);
	ops->close(s);
}

static void
test_sqlite_store_replay_stop(void **state)
{
	fixture *f = *state;
	nv_store *s = open_ok(f->path, NV_FSYNC_ALWAYS, 0);
	nv_rec w[5];
	coll c = {.stop_after = 3};

	for (uint64_t i = 0; i < 5; i++)
		w[i] = with_task(rec(NV_REC_JOB_ENQUEUED, i + 1, 0, 1), "t",
				 NULL, 0);
	assert_int_equal(ops->write(s, w, 5), 0);
	assert_int_equal(ops->replay(s, collect_fn, &c), 77);
	assert_int_equal(c.n, 3);
	coll_free(&c);
	/* The store is usable after a stopped replay. */
	w[0] = rec(NV_REC_JOB_STARTED, 1, 1, 2);
	assert_int_equal(ops->write(s, w, 1), 0);
	replay_all(s, &c);
	assert_int_equal(c.n, 5);
	assert_int_equal(c.v[0].attempt, 1);
	coll_free(&c);
	ops->close(s);
}

/* The fsync policy maps onto PRAGMA synchronous; sync() succeeds on each. */
static void
test_sqlite_store_sync_policies(void **state)
{
	fixture *f = *state;
	static const struct {
		nv_fsync_policy pol;
		int level;
	} cases[] = {
	    {NV_FSYNC_ALWAYS, 2}, {NV_FSYNC_BATCH, 1}, {NV_FSYNC_OFF, 0}};

	for (size_t i = 0; i < 3; i++) {
		nv_store *s = open_ok(f->path, cases[i].pol, 0);
		sqlite3_stmt *st;
		nv_store_stats stats;
		nv_rec w = with_task(rec(NV_REC_JOB_ENQUEUED, i + 1, 0, 1), "t",
				     NULL, 0);

		assert_int_equal(sqlite3_prepare_v2(nv__sqlite_store_db(s),
						    "PRAGMA synchronous", -1,
						    &st, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), cases[i].level);
		sqlite3_finalize(st);
		assert_int_equal(sqlite3_prepare_v2(nv__sqlite_store_db(s),
						    "PRAGMA journal_mode", -1,
						    &st, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal(sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
		int64_t v = 0;

		assert_int_equal(
		    nv__sqlite_schema_version(nv__sqlite_store_db(s), &v), 0);
		assert_int_equal(v, NV_SQLITE_SCHEMA_VERSION);
		assert_int_equal(ops->write(s, &w, 1), 0);
		assert_int_equal(ops->sync(s), 0);
		assert_int_equal(ops->sync(s), 0);
		ops->stats(s, &stats);
		assert_int_equal(stats.syncs, 2);
		ops->close(s);
	}
}

/* ------------------------------------------------------ damaged files */

/* A closed store of n jobs with 100-byte args (the WAL is checkpointed
 * into the file and removed on close). Returns the file size. */
static size_t
make_db(const char *path, size_t n)
{
	nv_store *s = open_ok(path, NV_FSYNC_OFF, 0);
	char args[100];
	nv_rec w[100];
	struct stat sb;

	memset(args, 'q', sizeof(args));
	for (size_t id = 1; id <= n; id += 100) {
		for (size_t k = 0; k < 100; k++)
			w[k] = with_task(rec(NV_REC_JOB_ENQUEUED, id + k, 0, 1),
					 "t", args, sizeof(args));
		assert_int_equal(ops->write(s, w, 100), 0);
	}
	ops->close(s);
	assert_int_equal(stat(path, &sb), 0);
	return (size_t)sb.st_size;
}

static void
patch(const char *path, off_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

static void
test_sqlite_store_garbage_file(void **state)
{
	fixture *f = *state;
	char buf[8192];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)rnd(256);
	make_db(f->path, 1); /* creates the directory */
	unlink(f->path);
	{
		int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
		close(fd);
	}
	assert_int_equal(open_refused(f->path, NULL), NV_ECORRUPT);
}

static void
test_sqlite_store_bad_header(void **state)
{
	fixture *f = *state;

	make_db(f->path, 500);
	patch(f->path, 0, "garbage garbage!", 16);
	assert_int_equal(open_refused(f->path, NULL), NV_ECORRUPT);
}

static void
test_sqlite_store_truncated(void **state)
{
	fixture *f = *state;
	size_t size = make_db(f->path, 2000);

	assert_true(size > 16 * 4096);
	assert_int_equal(truncate(f->path, (off_t)size / 2), 0);
	open_refused(f->path, NULL);
	assert_int_equal(truncate(f->path, 1000), 0); /* inside page 1 */
	open_refused(f->path, NULL);
}

static size_t
page_size(const char *path)
{
	unsigned char h[18];
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	return h[16] == 0 && h[17] == 1 ? 65536 : (size_t)h[16] << 8 | h[17];
}

/* A flipped byte in a b-tree page header (pages 2.., first byte: the page
 * type) is found by the open-time check, for early, middle and last
 * pages (tables and indexes). */
static void
test_sqlite_store_flipped_page(void **state)
{
	fixture *f = *state;
	size_t size = make_db(f->path, 2000), pg = page_size(f->path);
	size_t pages = size / pg, which[] = {2, pages / 2, pages - 1, pages};

	for (size_t i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
		off_t off = (off_t)((which[i] - 1) * pg);
		unsigned char b;
		int fd = open(f->path, O_RDWR);

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, off), 1);
		b ^= 0xff;
		assert_int_equal(pwrite(fd, &b, 1, off), 1);
		close(fd);
		assert_int_equal(open_refused(f->path, NULL), NV_ECORRUPT);
		b ^= 0xff; /* repair: the next case damages one page only */
		patch(f->path, off, &b, 1);
	}
	nv_store *s = open_ok(f->path, NV_FSYNC_OFF, 0);
	ops->close(s);
}

static int
count_fn(const nv_rec *r, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

/* Random byte damage anywhere: SQLite has no page checksums, so damage
 * inside a value can go unseen, but open, replay and write must give a
 * clean result or a clean error - never a crash (run under ASan). */
static void
test_sqlite_store_random_damage(void **state)
{
	fixture *f = *state;
	size_t size = make_db(f->path, 1000), rounds = nv_test_scaled(40);
	unsigned char *orig = malloc(size);
	char side[400];
	int fd;

	assert_non_null(orig);
	fd = open(f->path, O_RDONLY);
	assert_int_equal(pread(fd, orig, size, 0), (ssize_t)size);
	close(fd);
	for (size_t i = 0; i < rounds; i++) {
		nv_store_conf conf = {.path = f->path, .fsync = NV_FSYNC_OFF};
		nv_store *s = NULL;
		unsigned char b;
		size_t off = rnd((uint32_t)size), seen = 0;
		int rc;

		patch(f->path, 0, orig, size);
		snprintf(side, sizeof(side), "%s-wal", f->path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", f->path);
		unlink(side);
		b = orig[off] ^ (unsigned char)(1 + rnd(255));
		patch(f->path, (off_t)off, &b, 1);
		rc = ops->open(&s, &conf);
		assert_true(rc == 0 || rc == NV_ECORRUPT || rc == NV_EIO);
		if (rc != 0)
			continue;
		rc = ops->replay(s, count_fn, &seen);
		assert_true(rc == 0 || rc == NV_ECORRUPT || rc == NV_EIO);
		nv_rec w = with_task(rec(NV_REC_JOB_ENQUEUED, 5000, 0, 1), "t",
				     NULL, 0);
		rc = ops->write(s, &w, 1);
		assert_true(rc == 0 || rc == NV_EIO);
		ops->close(s);
	}
	free(orig);
}

static void
test_sqlite_store_newer_schema(void **state)
{
	fixture *f = *state;
	sqlite3 *db;

	make_db(f->path, 100);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "UPDATE meta SET value = 999"
				      " WHERE key = 'schema_version'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(open_refused(f->path, "newer"), NV_EIO);
	/* Back to the known version: it opens again, data intact. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "UPDATE meta SET value = 1"
				      " WHERE key = 'schema_version'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	nv_store *s = open_ok(f->path, NV_FSYNC_OFF, 0);
	size_t seen = 0;

	assert_int_equal(ops->replay(s, count_fn, &seen), 0);
	assert_int_equal(seen, 100);
	ops->close(s);
}

static void
test_sqlite_store_foreign_db(void **state)
{
	fixture *f = *state;
	sqlite3 *db;

	make_db(f->path, 1);
	unlink(f->path);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "CREATE TABLE jobs(x)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(open_refused(f->path, "not a nuvom store"), NV_EIO);
	/* Nothing was added to someone else's file. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1,
			       &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* Another application's id, even on an empty database. */
	unlink(f->path);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "PRAGMA application_id = 42", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(open_refused(f->path, "not a nuvom store"), NV_EIO);
}

/* ------------------------------------------------------ failed state */

static void
test_sqlite_store_failed_state(void **state)
{
	fixture *f = *state;
	nv_store *s = open_ok(f->path, NV_FSYNC_BATCH, 0);
	size_t n = 2000, seen = 0;
	nv_rec *w = malloc(n * sizeof(*w));
	char args[200], sql[64];
	sqlite3_stmt *st;
	nv_store_stats stats;
	uint64_t mj;

	assert_non_null(w);
	memset(args, 'f', sizeof(args));
	for (size_t i = 0; i < n; i++)
		w[i] = with_task(rec(NV_REC_JOB_ENQUEUED, i + 1, 0, 1), "t",
				 args, sizeof(args));
	assert_int_equal(ops->write(s, w, 10), 0);
	assert_int_equal(ops->sync(s), 0);
	/* No more pages: the next big batch hits SQLITE_FULL. */
	assert_int_equal(sqlite3_prepare_v2(nv__sqlite_store_db(s),
					    "PRAGMA page_count", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %d",
		 sqlite3_column_int(st, 0));
	sqlite3_finalize(st);
	assert_int_equal(
	    sqlite3_exec(nv__sqlite_store_db(s), sql, NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(ops->write(s, w + 10, n - 10), NV_EIO);
	ops->stats(s, &stats);
	assert_int_equal(stats.failed, NV_EIO);
	assert_int_equal(stats.records, 10);
	/* Never a false success afterwards, even for a tiny batch. */
	assert_int_equal(ops->write(s, w + 10, 1), NV_EIO);
	assert_int_equal(ops->sync(s), NV_EIO);
	assert_int_equal(ops->maintain(s), NV_EIO);
	ops->max_ids(s, &mj, NULL);
	assert_int_equal(mj, 10);
	ops->close(s);

	/* The failed batch left nothing behind. */
	s = open_ok(f->path, NV_FSYNC_BATCH, 0);
	assert_int_equal(ops->replay(s, count_fn, &seen), 0);
	assert_int_equal(seen, 10);
	ops->max_ids(s, &mj, NULL);
	assert_int_equal(mj, 10);
	ops->close(s);
	free(w);
}

/* ------------------------------------------- two instances, one file */

#define TI_K 100

typedef struct two {
	const char *path;
	nv_store *writer;
	size_t batches;
	int write_rc, open_rc, bad;
	size_t replays, last_seen;
	bool done; /* __atomic: writer -> reader */
} two;

/* Checks one replay snapshot: whole batches only. Returns jobs seen, or
 * (size_t)-1 when inconsistent. */
static size_t
check_snapshot(const coll *c)
{
	size_t jobs = 0, i = 0, m;

	while (i < c->n) {
		if (c->v[i].type != NV_REC_JOB_ENQUEUED ||
		    c->v[i].id != jobs + 1)
			return (size_t)-1;
		jobs++;
		i++;
		if (i < c->n && c->v[i].type == NV_REC_JOB_SUCCEEDED)
			i++;
	}
	if (jobs % TI_K)
		return (size_t)-1;
	m = jobs;
	/* Jobs of every batch but the last succeeded, the last did not. */
	for (i = 0, jobs = 0; i < c->n; i++) {
		if (c->v[i].type != NV_REC_JOB_ENQUEUED)
			continue;
		jobs++;
		bool succ =
		    i + 1 < c->n && c->v[i + 1].type == NV_REC_JOB_SUCCEEDED;
		if (succ != (jobs + TI_K <= m))
			return (size_t)-1;
	}
	return m;
}

static void *
reader_main(void *arg)
{
	two *t = arg;
	nv_store_conf conf = {.path = t->path, .fsync = NV_FSYNC_BATCH};
	nv_store *s = NULL;
	bool last = false;

	t->open_rc = ops->open(&s, &conf);
	if (t->open_rc)
		return NULL;
	while (!last) {
		coll c = {0};
		size_t m;

		/* Acquire pairs with the writer's release after its last
		 * write: one more replay after it sees everything. */
		last = __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
		if (ops->replay(s, collect_fn, &c) != 0) {
			t->bad++;
			coll_free(&c);
			break;
		}
		m = check_snapshot(&c);
		if (m == (size_t)-1 || m < t->last_seen)
			t->bad++;
		else
			t->last_seen = m;
		t->replays++;
		coll_free(&c);
	}
	ops->close(s);
	return NULL;
}

static void *
writer_main(void *arg)
{
	two *t = arg;
	nv_rec w[2 * TI_K];

	for (size_t b = 0; b < t->batches && !t->write_rc; b++) {
		size_t n = 0;

		for (size_t k = 1; k <= TI_K; k++)
			w[n++] = with_task(
			    rec(NV_REC_JOB_ENQUEUED, b * TI_K + k, 0, 1), "t",
			    "x", 1);
		for (size_t k = 1; b > 0 && k <= TI_K; k++)
			w[n++] =
			    rec(NV_REC_JOB_SUCCEEDED, (b - 1) * TI_K + k, 1, 2);
		t->write_rc = ops->write(t->writer, w, n);
		if (!t->write_rc)
			t->write_rc = ops->sync(t->writer);
		if (!t->write_rc)
			t->write_rc = ops->maintain(t->writer);
	}
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void
test_sqlite_store_two_instances(void **state)
{
	fixture *f = *state;
	two t = {.path = f->path, .batches = nv_test_scaled(150)};
	pthread_t wt, rt;

	t.writer = open_ok(f->path, NV_FSYNC_BATCH, 0);
	assert_int_equal(pthread_create(&rt, NULL, reader_main, &t), 0);
	assert_int_equal(pthread_create(&wt, NULL, writer_main, &t), 0);
	pthread_join(wt, NULL);
	pthread_join(rt, NULL);
	ops->close(t.writer);
	assert_int_equal(t.write_rc, 0);
	assert_int_equal(t.open_rc, 0);
	assert_int_equal(t.bad, 0);
	assert_true(t.replays >= 1);
	assert_int_equal(t.last_seen, t.batches * TI_K);
	printf("two instances: %zu batches written, %zu consistent replays\n",
	       t.batches, t.replays);
}

/* A process killed (SIGKILL) between or inside writes: on reopen every
 * acknowledged batch is there, and only whole batches (fsync=off: a
 * process crash loses nothing the OS has; power loss is another matter). */
static void
test_sqlite_store_kill9(void **state)
{
	fixture *f = *state;
	size_t acked = 0, want = nv_test_scaled(30), m, b;
	int fds[2], status;
	coll c;
	pid_t pid;

	make_db(f->path, 1);
	unlink(f->path);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		nv_store_conf conf = {.path = f->path, .fsync = NV_FSYNC_OFF};
		nv_rec w[2 * TI_K];
		nv_store *s;

		close(fds[0]);
		if (ops->open(&s, &conf) != 0)
			_exit(1);
		for (b = 0; b < 100000; b++) {
			size_t n = 0;

			for (size_t k = 1; k <= TI_K; k++)
				w[n++] = with_task(rec(NV_REC_JOB_ENQUEUED,
						       b * TI_K + k, 0, 1),
						   "t", "x", 1);
			for (size_t k = 1; b > 0 && k <= TI_K; k++)
				w[n++] = rec(NV_REC_JOB_SUCCEEDED,
					     (b - 1) * TI_K + k, 1, 2);
			if (ops->write(s, w, n) != 0 ||
			    write(fds[1], &b, sizeof(b)) != sizeof(b))
				_exit(2);
		}
		_exit(3);
	}
	close(fds[1]);
	while (acked < want && read(fds[0], &b, sizeof(b)) == sizeof(b))
		acked = b + 1;
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	while (read(fds[0], &b, sizeof(b)) == sizeof(b))
		acked = b + 1;
	close(fds[0]);
	assert_true(acked >= want);

	nv_store *s = open_ok(f->path, NV_FSYNC_OFF, 0);
	replay_all(s, &c);
	m = check_snapshot(&c);
	assert_true(m != (size_t)-1);
	assert_true(m >= acked * TI_K);
	coll_free(&c);
	ops->close(s);
}

/* ------------------------------------------------------ throughput */

static double
rate(size_t n, uint64_t t0)
{
	return (double)n * 1e9 / (double)(nv__mono_ns() - t0 + 1);
}

/* Records/s in 1000-record transactions (printed, not asserted), beside
 * raw SQLite inserts into a plain table in the same run. */
static void
test_sqlite_store_throughput(void **state)
{
	fixture *f = *state;
	size_t n = nv_test_scaled(nv_test_sanitized() ? 20000 : 100000);
	static const struct {
		const char *name;
		nv_fsync_policy pol;
		bool lifecycle, sync_each;
	} cases[] = {
	    {"enqueue, fsync=off", NV_FSYNC_OFF, false, false},
	    {"enqueue+start+succeed, fsync=off", NV_FSYNC_OFF, true, false},
	    {"enqueue, fsync=batch, sync() per txn", NV_FSYNC_BATCH, false,
	     true},
	    {"enqueue, fsync=always", NV_FSYNC_ALWAYS, false, false},
	};
	nv_rec *w = malloc(1000 * sizeof(*w));
	char args[64], path[400];
	uint64_t t0;

	assert_non_null(w);
	memset(args, 'a', sizeof(args));
	/* Baseline: plain SQLite, WAL, synchronous=NORMAL, 1000-row txns. */
	{
		sqlite3 *db;
		sqlite3_stmt *ins;

		make_db(f->path, 1); /* creates the directory */
		snprintf(path, sizeof(path), "%s.raw", f->path);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(
		    sqlite3_exec(db,
				 "PRAGMA journal_mode=WAL;"
				 "PRAGMA synchronous=NORMAL;"
				 "CREATE TABLE t(id INTEGER PRIMARY KEY,"
				 " task TEXT, args BLOB)",
				 NULL, NULL, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db,
						    "INSERT INTO t VALUES(?,"
						    " 't', ?)",
						    -1, &ins, NULL),
				 SQLITE_OK);
		t0 = nv__mono_ns();
		for (size_t i = 0; i < n; i++) {
			if (i % 1000 == 0)
				sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
			sqlite3_bind_int64(ins, 1, (sqlite3_int64)i + 1);
			sqlite3_bind_blob(ins, 2, args, sizeof(args),
					  SQLITE_STATIC);
			assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
			sqlite3_reset(ins);
			if (i % 1000 == 999)
				sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		}
		printf("throughput: raw sqlite insert baseline: %.0f rows/s\n",
		       rate(n, t0));
		sqlite3_finalize(ins);
		sqlite3_close(db);
	}
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		nv_store *s;
		uint64_t id = 0, next_done = 1;

		snprintf(path, sizeof(path), "%s.%zu", f->path, c);
		s = open_ok(path, cases[c].pol, 0);
		t0 = nv__mono_ns();
		for (size_t done = 0; done < n; done += 1000) {
			for (size_t i = 0; i < 1000; i++) {
				if (cases[c].lifecycle && i % 3 == 1)
					w[i] = rec(NV_REC_JOB_STARTED,
						   next_done, 1, 2);
				else if (cases[c].lifecycle && i % 3 == 2)
					w[i] =
					    with_data(rec(NV_REC_JOB_SUCCEEDED,
							  next_done++, 1, 3),
						      "result");
				else
					w[i] = with_task(
					    rec(NV_REC_JOB_ENQUEUED, ++id, 0,
						1),
					    "task", args, sizeof(args));
			}
			assert_int_equal(ops->write(s, w, 1000), 0);
			if (cases[c].sync_each)
				assert_int_equal(ops->sync(s), 0);
			assert_int_equal(ops->maintain(s), 0);
		}
		assert_int_equal(ops->sync(s), 0);
		printf("throughput: %s: %.0f records/s\n", cases[c].name,
		       rate(n, t0));
		ops->close(s);
	}
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_sqlite_store_roundtrip_each_type),
	    T(test_sqlite_store_attempts_kept),
	    T(test_sqlite_store_random_fold),
	    T(test_sqlite_store_max_ids_after_reopen),
	    T(test_sqlite_store_retention),
	    T(test_sqlite_store_big_batches),
	    T(test_sqlite_store_bad_input),
	    T(test_sqlite_store_replay_stop),
	    T(test_sqlite_store_sync_policies),
	    T(test_sqlite_store_garbage_file),
	    T(test_sqlite_store_bad_header),
	    T(test_sqlite_store_truncated),
	    T(test_sqlite_store_flipped_page),
	    T(test_sqlite_store_random_damage),
	    T(test_sqlite_store_newer_schema),
	    T(test_sqlite_store_foreign_db),
	    T(test_sqlite_store_failed_state),
	    T(test_sqlite_store_two_instances),
	    T(test_sqlite_store_kill9),
	    T(test_sqlite_store_throughput),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
