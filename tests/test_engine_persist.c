/* ctest: labels=unit;concurrency timeout=300 */
/*
 * tests/test_engine_persist.c - the engine with a persistent backend
 * ("file" and "sqlite"), through the public API only.
 *
 * Every behavioural case runs once per store kind (cmocka prestate). A
 * "session" is one nv_engine_open .. nv_engine_close on the same data
 * directory; the tasks count their runs per job id in a global table that
 * is reset between sessions, so "ran exactly once more" is a count, and
 * every count is read after nv_engine_stop (which drains: nothing can run
 * later).
 *
 * A real crash (the process dies with work queued and running) is made by
 * re-executing this binary as a child (--child ...): it dispatches behind
 * a blocked worker, flushes, prints the ids and _exits without closing.
 *
 * The runtime disk failure needs a full disk: a 256 KiB tmpfs mounted on
 * the data directory (we run as root in CI); where mount is refused the
 * case is skipped with a message.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXID 65536

static struct {
	uint32_t count[MAXID];	 /* runs per job id in this session */
	uint32_t attempt[MAXID]; /* attempt of the last run */
	int64_t run_ms[MAXID];	 /* epoch ms of the last run */
	uint64_t total;		 /* runs in this session */
	uint32_t ticks[8];	 /* schedule runs per tag */
	int gate;		 /* block_task waits while 0 */
	int blocked;		 /* block_task is waiting */
	int bad_id;		 /* a job id over MAXID was seen */
	int64_t fail_ms;	 /* flaky_task: epoch ms of attempt 1 */
} g;

static int64_t
epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void
session_reset(void)
{
	memset(&g, 0, sizeof(g));
}

static nv_job_id
note_run(nv_ctx *c)
{
	nv_job_id id = nv_ctx_job_id(c);
	if (id >= MAXID) {
		__atomic_store_n(&g.bad_id, 1, __ATOMIC_RELAXED);
		return 0;
	}
	__atomic_store_n(&g.attempt[id], nv_ctx_attempt(c), __ATOMIC_RELAXED);
	__atomic_store_n(&g.run_ms[id], epoch_ms(), __ATOMIC_RELAXED);
	__atomic_add_fetch(&g.count[id], 1, __ATOMIC_RELAXED);
	/* Release: the counts above are visible to whoever sees total. */
	__atomic_add_fetch(&g.total, 1, __ATOMIC_RELEASE);
	return id;
}

static int
count_task(nv_ctx *c, const void *args, size_t len)
{
	note_run(c);
	return nv_ctx_set_result(c, args, len);
}

static int
fail_task(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	nv_ctx_set_error(c, "boom %llu", (unsigned long long)note_run(c));
	return 1;
}

static int
flaky_task(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	if (nv_ctx_attempt(c) == 1)
		__atomic_store_n(&g.fail_ms, epoch_ms(), __ATOMIC_RELAXED);
	note_run(c);
	if (nv_ctx_attempt(c) == 1) {
		nv_ctx_set_error(c, "first attempt fails");
		return 1;
	}
	return 0;
}

static int
block_task(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	note_run(c);
	__atomic_store_n(&g.blocked, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&g.gate, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	return 0;
}

static int
tick_task(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	if (len == 1)
		__atomic_add_fetch(&g.ticks[*(const uint8_t *)args & 7], 1,
				   __ATOMIC_RELEASE);
	return 0;
}

static nv_engine *
open_kind(const char *kind, const char *dir, unsigned workers, size_t cap)
{
	nv_engine *e = NULL;
	nv_config cfg;
	nv_task_opts flaky = {.retries = 1, .retry_delay_ms = 1500};

	nv_config_init(&cfg);
	cfg.queue_backend = kind;
	cfg.result_backend = kind;
	cfg.data_dir = dir;
	cfg.workers = workers;
	cfg.queue_capacity = cap;
	cfg.log_level = NV_LOG_ERROR;
	assert_int_equal(nv_engine_open(&e, &cfg), 0);
	assert_int_equal(nv_task_register(e, "count", count_task, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "fail", fail_task, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "flaky", flaky_task, &flaky, 0),
			 0);
	assert_int_equal(nv_task_register(e, "block", block_task, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "tick", tick_task, NULL, 0), 0);
	return e;
}

static bool
total_reached(void *arg)
{
	return __atomic_load_n(&g.total, __ATOMIC_ACQUIRE) >= *(uint64_t *)arg;
}

static void
wait_total(uint64_t n)
{
	if (!nv_test_wait_until(total_reached, &n, 20000))
		fail_msg("only %llu of %llu runs happened",
			 (unsigned long long)g.total, (unsigned long long)n);
}

static bool
is_blocked(void *arg)
{
	(void)arg;
	return __atomic_load_n(&g.blocked, __ATOMIC_ACQUIRE) != 0;
}

static void
dispatch_n(nv_engine *e, const char *task, nv_job_id *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = i * 7919;
		assert_int_equal(nv_delay(e, task, &v, sizeof(v), &ids[i]), 0);
		assert_true(ids[i] > 0 && ids[i] < MAXID);
	}
}

/* Every id in ids ran exactly `times` times this session. */
static void
assert_counts(const nv_job_id *ids, size_t n, uint32_t times)
{
	assert_int_equal(g.bad_id, 0);
	for (size_t i = 0; i < n; i++)
		if (g.count[ids[i]] != times)
			fail_msg("job %llu ran %u times in this session, "
				 "expected %u",
				 (unsigned long long)ids[i], g.count[ids[i]],
				 times);
}

struct fix {
	const char *kind;
	char dir[256];
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->kind = *state;
	nv_test_tmpdir(f->dir, sizeof(f->dir), "engpersist");
	session_reset();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	nv_test_rmrf(f->dir);
	free(f);
	return 0;
}

/* ---------------------------------------------------------------- cases */

/* Jobs dispatched to an engine that never started are written at close;
 * the next start runs each exactly once, through a ring much smaller than
 * the backlog, and a third session runs nothing. */
static void
test_engine_persist_unstarted_jobs_run_once(void **state)
{
	struct fix *f = *state;
	size_t n = nv_test_scaled(2000);
	nv_job_id *ids = calloc(n, sizeof(*ids));
	nv_engine *e;
	assert_non_null(ids);

	e = open_kind(f->kind, f->dir, 2, 4096);
	dispatch_n(e, "count", ids, n);
	assert_int_equal(nv_flush(e, 1000), NV_ESTOPPED); /* before start */
	nv_engine_close(e);
	assert_int_equal(g.total, 0);

	e = open_kind(f->kind, f->dir, 2, 64); /* backlog > ring */
	assert_int_equal(nv_engine_start(e), 0);
	wait_total(n);
	assert_int_equal(nv_flush(e, 10000), 0);
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_counts(ids, n, 1);
	for (size_t i = 0; i < n; i += n / 16 + 1) {
		nv_status st;
		void *buf = NULL;
		size_t len = 0;
		uint64_t v = i * 7919;
		assert_int_equal(nv_job_status(e, ids[i], &st), 0);
		assert_int_equal(st, NV_SUCCESS);
		assert_int_equal(g.attempt[ids[i]], 1);
		assert_int_equal(nv_job_result(e, ids[i], &buf, &len), 0);
		assert_int_equal(len, sizeof(v));
		assert_memory_equal(buf, &v, sizeof(v));
		nv_free(buf);
	}
	nv_engine_close(e);

	session_reset();
	e = open_kind(f->kind, f->dir, 2, 64);
	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_int_equal(g.total, 0); /* all finished: nothing re-runs */
	nv_engine_close(e);
	free(ids);
}

/* Dispatches before and after start in one session: all run once, none
 * is lost or re-run, and no two jobs share an id. */
static void
test_engine_persist_prestart_jobs_kept(void **state)
{
	struct fix *f = *state;
	size_t n = nv_test_scaled(300);
	nv_job_id *ids = calloc(2 * n, sizeof(*ids));
	nv_engine *e;
	assert_non_null(ids);

	for (int round = 0; round < 2; round++) {
		session_reset();
		e = open_kind(f->kind, f->dir, 2, 4096);
		dispatch_n(e, "count", ids, n); /* before start */
		assert_int_equal(nv_engine_start(e), 0);
		dispatch_n(e, "count", ids + n, n);
		wait_total(2 * n);
		assert_int_equal(nv_flush(e, 10000), 0);
		assert_int_equal(nv_engine_stop(e, 5000), 0);
		assert_counts(ids, 2 * n, 1);
		for (size_t i = 0; i < 2 * n; i++) {
			nv_status st;
			assert_int_equal(nv_job_status(e, ids[i], &st), 0);
			assert_int_equal(st, NV_SUCCESS);
		}
		nv_engine_close(e);
	}
	session_reset();
	e = open_kind(f->kind, f->dir, 2, 4096);
	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_int_equal(g.total, 0);
	nv_engine_close(e);
	free(ids);
}

/* Finished results and errors are readable after a restart, and the
 * finished jobs do not run again. */
static void
test_engine_persist_results_survive(void **state)
{
	struct fix *f = *state;
	size_t n = nv_test_scaled(200);
	nv_job_id *ok = calloc(n, sizeof(*ok)), *bad = calloc(n, sizeof(*bad));
	nv_engine *e;
	assert_true(ok && bad);

	e = open_kind(f->kind, f->dir, 2, 4096);
	assert_int_equal(nv_engine_start(e), 0);
	dispatch_n(e, "count", ok, n);
	dispatch_n(e, "fail", bad, n);
	wait_total(2 * n);
	assert_int_equal(nv_engine_stop(e, 5000), 0); /* drains, flushes */
	nv_engine_close(e);

	session_reset();
	e = open_kind(f->kind, f->dir, 2, 4096);
	assert_int_equal(nv_engine_start(e), 0);
	for (size_t i = 0; i < n; i++) {
		nv_status st;
		void *buf = NULL;
		char *msg = NULL, want[64];
		size_t len = 0;
		uint64_t v = i * 7919;

		assert_int_equal(nv_job_status(e, ok[i], &st), 0);
		assert_int_equal(st, NV_SUCCESS);
		assert_int_equal(nv_job_result(e, ok[i], &buf, &len), 0);
		assert_int_equal(len, sizeof(v));
		assert_memory_equal(buf, &v, sizeof(v));
		nv_free(buf);
		assert_int_equal(nv_job_error(e, ok[i], &msg), NV_ENORESULT);

		assert_int_equal(nv_job_status(e, bad[i], &st), 0);
		assert_int_equal(st, NV_FAILED);
		assert_int_equal(nv_job_wait(e, bad[i], 0, &st), 0);
		assert_int_equal(st, NV_FAILED);
		assert_int_equal(nv_job_error(e, bad[i], &msg), 0);
		snprintf(want, sizeof(want), "boom %llu",
			 (unsigned long long)bad[i]);
		assert_string_equal(msg, want);
		nv_free(msg);
		assert_int_equal(nv_job_result(e, bad[i], &buf, &len),
				 NV_ENORESULT);
	}
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_int_equal(g.total, 0);
	nv_engine_close(e);
	free(ok);
	free(bad);
}

/* Job and schedule ids rise across sessions, dispatched before or after
 * start, from several threads. */
struct idthr {
	nv_engine *e;
	nv_job_id ids[64];
};

static void *
id_thread(void *arg)
{
	struct idthr *t = arg;
	for (int i = 0; i < 64; i++)
		if (nv_delay(t->e, "count", NULL, 0, &t->ids[i]) != 0)
			t->ids[i] = 0;
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	nv_job_id x = *(const nv_job_id *)a, y = *(const nv_job_id *)b;
	return (x > y) - (x < y);
}

static void
dispatch_threads(nv_engine *e, nv_job_id *out)
{
	struct idthr t[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		t[i].e = e;
		pthread_create(&th[i], NULL, id_thread, &t[i]);
	}
	for (int i = 0; i < 10; i++)
		assert_int_equal(nv_delay(e, "count", NULL, 0, &out[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		memcpy(&out[10 + i * 64], t[i].ids, sizeof(t[i].ids));
	}
}

static void
test_engine_persist_ids_never_repeat(void **state)
{
	struct fix *f = *state;
	enum { SESSIONS = 4, HALF = 4 * 64 + 10, PER = 2 * HALF };
	nv_job_id all[SESSIONS * PER];
	nv_schedule_id sched_prev = 0;
	size_t k = 0;

	for (int s = 0; s < SESSIONS; s++) {
		nv_schedule_id sid;
		nv_schedule when = {.in_ms = 3600 * 1000};
		nv_job_id lo = UINT64_MAX, prev_hi = 0;
		nv_engine *e = open_kind(f->kind, f->dir, 2, 4096);

		session_reset();
		/* Odd sessions dispatch half before start, from threads that
		 * still dispatch after it (their id caches live on). */
		if (s % 2 == 0)
			assert_int_equal(nv_engine_start(e), 0);
		dispatch_threads(e, &all[k]);
		if (s % 2 == 1)
			assert_int_equal(nv_engine_start(e), 0);
		dispatch_threads(e, &all[k + HALF]);
		assert_int_equal(
		    nv_schedule_add(e, "tick", NULL, 0, &when, &sid), 0);
		assert_true(sid > sched_prev);
		sched_prev = sid;
		for (int i = 0; i < PER; i++) {
			assert_true(all[k + i] != 0);
			lo = all[k + i] < lo ? all[k + i] : lo;
		}
		/* Ids continue after the largest stored one. */
		for (size_t i = 0; i < k; i++)
			prev_hi = all[i] > prev_hi ? all[i] : prev_hi;
		if (k > 0 && lo <= prev_hi)
			fail_msg("session %d handed out id %llu, not above "
				 "the earlier maximum %llu",
				 s, (unsigned long long)lo,
				 (unsigned long long)prev_hi);
		wait_total(PER);
		assert_int_equal(nv_engine_stop(e, 5000), 0);
		nv_engine_close(e);
		k += PER;
	}
	qsort(all, k, sizeof(all[0]), cmp_id);
	for (size_t i = 1; i < k; i++)
		if (all[i] == all[i - 1])
			fail_msg("job id %llu handed out twice",
				 (unsigned long long)all[i]);
}

/* A job that failed once with a retry left keeps attempt 1 and its retry
 * due time across a restart, and runs attempt 2 once, not before due. */
static bool
retry_pending(void *arg)
{
	nv_job_id id = *(nv_job_id *)arg;
	return __atomic_load_n(&g.count[id], __ATOMIC_ACQUIRE) == 1;
}

static void
test_engine_persist_retry_state_kept(void **state)
{
	struct fix *f = *state;
	nv_job_id id;
	nv_status st;
	int64_t failed_at;
	nv_engine *e = open_kind(f->kind, f->dir, 1, 4096);

	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_delay(e, "flaky", NULL, 0, &id), 0);
	assert_true(nv_test_wait_until(retry_pending, &id, 10000));
	/* The RETRY record follows the attempt on the worker thread: wait
	 * for the status to go back to PENDING, then flush. */
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(nv_job_status(e, id, &st), 0);
		if (st == NV_PENDING)
			break;
		sleep_ms(1);
	}
	assert_int_equal(st, NV_PENDING);
	assert_int_equal(nv_flush(e, 10000), 0);
	failed_at = g.fail_ms;
	assert_int_equal(nv_engine_stop(e, 0), 0);
	nv_engine_close(e);
	assert_int_equal(g.attempt[id], 1);

	session_reset();
	e = open_kind(f->kind, f->dir, 1, 4096);
	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_job_wait(e, id, 20000, &st), 0);
	assert_int_equal(st, NV_SUCCESS);
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_int_equal(g.count[id], 1);
	assert_int_equal(g.attempt[id], 2);
	/* Due at failure + 1500 ms (epoch): never early (2 ms for the
	 * clocks' rounding), and not forgotten either. */
	if (g.run_ms[id] < failed_at + 1500 - 2)
		fail_msg("attempt 2 ran %lld ms after attempt 1 (due 1500)",
			 (long long)(g.run_ms[id] - failed_at));
	assert_true(g.run_ms[id] < failed_at + 10000);
	nv_engine_close(e);
}

/* Schedules across restarts: an interval one keeps firing, a cancelled
 * one stays cancelled, a one-off missed while down fires once at start
 * and never again. */
static bool
ticks_at_least(void *arg)
{
	const uint32_t *want = arg; /* {tag, n} */
	return __atomic_load_n(&g.ticks[want[0]], __ATOMIC_ACQUIRE) >= want[1];
}

static bool
list_has(nv_engine *e, nv_schedule_id id)
{
	nv_schedule_info info[8];
	size_t n = 0;
	assert_int_equal(nv_schedule_list(e, info, 8, &n), 0);
	for (size_t i = 0; i < n && i < 8; i++)
		if (info[i].id == id)
			return true;
	return false;
}

static void
test_engine_persist_schedules_survive(void **state)
{
	struct fix *f = *state;
	uint8_t tag_iv = 1, tag_cancel = 2, tag_once = 3;
	nv_schedule iv = {.interval_ms = 50}, once = {0};
	nv_schedule_id sid_iv, sid_cancel, sid_once;
	int64_t once_at = epoch_ms() + 300;
	uint32_t want[2];
	nv_engine *e = open_kind(f->kind, f->dir, 2, 4096);

	once.at_ms = once_at;
	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_schedule_add(e, "tick", &tag_iv, 1, &iv, &sid_iv),
			 0);
	assert_int_equal(
	    nv_schedule_add(e, "tick", &tag_cancel, 1, &iv, &sid_cancel), 0);
	assert_int_equal(
	    nv_schedule_add(e, "tick", &tag_once, 1, &once, &sid_once), 0);
	assert_int_equal(nv_schedule_cancel(e, sid_cancel), 0);
	assert_int_equal(nv_flush(e, 10000), 0);
	assert_int_equal(nv_engine_stop(e, 0), 0);
	nv_engine_close(e);
	assert_int_equal(g.ticks[tag_once], 0); /* closed before it was due */

	/* Down until the one-off is past due. */
	while (epoch_ms() < once_at + 50)
		sleep_ms(10);

	for (int s = 0; s < 2; s++) {
		session_reset();
		e = open_kind(f->kind, f->dir, 2, 4096);
		assert_int_equal(nv_engine_start(e), 0);
		assert_true(list_has(e, sid_iv));
		assert_false(list_has(e, sid_cancel));
		if (s == 1)
			assert_false(list_has(e, sid_once));
		want[0] = tag_iv;
		want[1] = 4;
		assert_true(nv_test_wait_until(ticks_at_least, want, 10000));
		if (s == 0) {
			want[0] = tag_once;
			want[1] = 1;
			assert_true(
			    nv_test_wait_until(ticks_at_least, want, 10000));
		}
		assert_int_equal(nv_flush(e, 10000), 0);
		assert_int_equal(nv_engine_stop(e, 5000), 0);
		/* The cancelled interval would have fired as often as the
		 * live one; the missed one-off fires once, only in the
		 * first session after the miss. */
		assert_int_equal(g.ticks[tag_cancel], 0);
		assert_int_equal(g.ticks[tag_once], s == 0 ? 1 : 0);
		assert_false(list_has(e, sid_once));
		nv_engine_close(e);
	}
}

/* A process that dies (no close) with one job running and many queued
 * behind it: the next start runs each of them once more; the one that
 * was running gets attempt 2. The child is this binary (--child). */
static int
child_main(const char *kind, const char *dir, size_t n)
{
	nv_engine *e = open_kind(kind, dir, 1, 4096);
	nv_job_id blk, *ids = calloc(n, sizeof(*ids));
	if (ids == NULL || nv_engine_start(e) != 0 ||
	    nv_delay(e, "block", NULL, 0, &blk) != 0)
		return 3;
	if (!nv_test_wait_until(is_blocked, NULL, 10000))
		return 4;
	for (size_t i = 0; i < n; i++)
		if (nv_delay(e, "count", &i, sizeof(i), &ids[i]) != 0)
			return 5;
	if (nv_flush(e, 10000) != 0)
		return 6;
	printf("%llu\n", (unsigned long long)blk);
	for (size_t i = 0; i < n; i++)
		printf("%llu\n", (unsigned long long)ids[i]);
	fflush(stdout);
	_exit(0); /* no close: the engine dies with the process */
}

static char self_path[4096];

static void
test_engine_persist_requeue_after_crash(void **state)
{
	struct fix *f = *state;
	size_t n = nv_test_scaled(500), got = 0;
	nv_job_id *ids = calloc(n + 1, sizeof(*ids));
	char nbuf[32], line[64];
	char *argv[] = {self_path, "--child", (char *)f->kind,
			f->dir,	   nbuf,      NULL};
	posix_spawn_file_actions_t fa;
	int pfd[2], status;
	pid_t pid;
	FILE *in;
	nv_engine *e;
	nv_status st;
	extern char **environ;

	assert_non_null(ids);
	snprintf(nbuf, sizeof(nbuf), "%zu", n);
	assert_int_equal(pipe(pfd), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	assert_int_equal(posix_spawn(&pid, self_path, &fa, NULL, argv, environ),
			 0);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	in = fdopen(pfd[0], "r");
	assert_non_null(in);
	while (got <= n && fgets(line, sizeof(line), in) != NULL)
		ids[got++] = strtoull(line, NULL, 10);
	fclose(in);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child failed (status %d)", status);
	assert_int_equal(got, n + 1);

	g.gate = 1; /* here the block task returns at once */
	e = open_kind(f->kind, f->dir, 2, 64);
	assert_int_equal(nv_engine_start(e), 0);
	wait_total(n + 1);
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_counts(ids, n + 1, 1);
	assert_int_equal(g.attempt[ids[0]], 2); /* it had started once */
	for (size_t i = 1; i <= n; i++) {
		void *buf = NULL;
		size_t len = 0, want = i - 1;
		assert_int_equal(g.attempt[ids[i]], 1);
		assert_int_equal(nv_job_result(e, ids[i], &buf, &len), 0);
		assert_int_equal(len, sizeof(want));
		assert_memory_equal(buf, &want, sizeof(want));
		nv_free(buf);
	}
	assert_int_equal(nv_job_status(e, ids[0], &st), 0);
	assert_int_equal(st, NV_SUCCESS);
	nv_engine_close(e);
	free(ids);
}

/* ---------------------------------------------------------------- codes */

static void
test_engine_persist_flush_codes(void **state)
{
	struct fix *f = *state;
	nv_engine *e;
	nv_config cfg;

	assert_int_equal(nv_flush(NULL, 0), NV_EINVAL);
	nv_config_init(&cfg);
	cfg.workers = 1;
	cfg.data_dir = f->dir;
	assert_int_equal(nv_engine_open(&e, &cfg), 0); /* memory */
	assert_int_equal(nv_flush(e, 0), 0);
	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_flush(e, -1), 0);
	nv_engine_close(e);

	e = open_kind(f->kind, f->dir, 1, 1024);
	assert_int_equal(nv_flush(e, 0), NV_ESTOPPED);
	assert_int_equal(nv_flush(e, -1), NV_ESTOPPED);
	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_flush(e, -1), 0);
	nv_engine_close(e);
}

/* Runs nv_engine_open with stderr captured; returns its code and leaves
 * what it logged in log. */
static int
open_logged(const nv_config *cfg, char *log, size_t cap)
{
	char path[] = "/tmp/nvtest-log-XXXXXX";
	int fd = mkstemp(path), saved, rc;
	nv_engine *e = NULL;
	ssize_t got;

	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	rc = nv_engine_open(&e, cfg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	got = pread(fd, log, cap - 1, 0);
	log[got > 0 ? got : 0] = '\0';
	close(fd);
	unlink(path);
	if (rc == 0)
		nv_engine_close(e);
	assert_true(rc == 0 || e == NULL);
	return rc;
}

static void
expect_open_fails(const nv_config *cfg, const char *needle)
{
	char log[4096];
	int rc = open_logged(cfg, log, sizeof(log));
	if (rc >= 0)
		fail_msg("open succeeded; expected an error naming %s", needle);
	if (strstr(log, needle) == NULL)
		fail_msg("open failed (%s) but its message does not name "
			 "'%s': %s",
			 nv_strerror(rc), needle, log);
}

static void
test_engine_persist_open_errors(void **state)
{
	struct fix *f = *state;
	char file[320], sub[320];
	nv_config cfg;
	int fd;

	nv_config_init(&cfg);
	cfg.workers = 1;
	cfg.log_level = NV_LOG_ERROR;
	/* data_dir is a regular file. */
	snprintf(file, sizeof(file), "%s/plain", f->dir);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	cfg.queue_backend = cfg.result_backend = f->kind;
	cfg.data_dir = file;
	expect_open_fails(&cfg, file);

	if (strcmp(f->kind, "sqlite") == 0) {
		/* The database path is a directory. */
		snprintf(sub, sizeof(sub), "%s/dbdir", f->dir);
		assert_int_equal(mkdir(sub, 0755), 0);
		cfg.data_dir = f->dir;
		cfg.sqlite_queue_path = sub;
		expect_open_fails(&cfg, sub);
		/* A file that is not an SQLite database. */
		snprintf(sub, sizeof(sub), "%s/garbage.db", f->dir);
		fd = open(sub, O_CREAT | O_WRONLY, 0644);
		assert_true(fd >= 0);
		for (int i = 0; i < 64; i++)
			assert_int_equal(
			    write(fd, "not a database, garbage!", 24), 24);
		close(fd);
		cfg.sqlite_queue_path = sub;
		expect_open_fails(&cfg, sub);
		cfg.sqlite_queue_path = NULL;
	}

	/* Two different persistent kinds; an unknown name. */
	char log[4096];
	cfg.data_dir = f->dir;
	cfg.queue_backend = "file";
	cfg.result_backend = "sqlite";
	assert_int_equal(open_logged(&cfg, log, sizeof(log)), NV_EINVAL);
	cfg.queue_backend = "sqlite";
	cfg.result_backend = "file";
	assert_int_equal(open_logged(&cfg, log, sizeof(log)), NV_EINVAL);
	cfg.queue_backend = "postgres";
	cfg.result_backend = "memory";
	assert_int_equal(open_logged(&cfg, log, sizeof(log)), NV_EINVAL);
	assert_non_null(strstr(log, "postgres"));
	cfg.queue_backend = "memory";
	cfg.result_backend = "";
	assert_int_equal(open_logged(&cfg, log, sizeof(log)), NV_EINVAL);
	/* Nothing was created for the refused configurations. */
	struct stat sb;
	snprintf(sub, sizeof(sub), "%s/queue.db", f->dir);
	assert_int_equal(stat(sub, &sb), -1);
	snprintf(sub, sizeof(sub), "%s/log", f->dir);
	assert_int_equal(stat(sub, &sb), -1);
}

/* ---------------------------------------------------------------- disk */

/* The store's disk fills up at runtime (256 KiB tmpfs): nv_flush and new
 * dispatches fail with NV_EIO, jobs already queued still run. */
static void
test_engine_persist_disk_full(void **state)
{
	struct fix *f = *state;
	char mnt[320];
	static uint8_t big[4096];
	nv_job_id ids[2048];
	size_t ok = 0;
	int rc = 0;
	nv_engine *e;
	nv_stats st;

	snprintf(mnt, sizeof(mnt), "%s/small", f->dir);
	assert_int_equal(mkdir(mnt, 0755), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") != 0) {
		print_message("disk-full case skipped: cannot mount a tmpfs "
			      "(%s); it needs root\n",
			      strerror(errno));
		skip();
	}
	memset(big, 0xab, sizeof(big));
	e = open_kind(f->kind, mnt, 1, 4096);
	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_delay(e, "block", NULL, 0, &ids[ok++]), 0);
	assert_true(nv_test_wait_until(is_blocked, NULL, 10000));
	/* Fill the disk: 4 KiB per job, far more than 256 KiB in all. */
	while (ok < 2048) {
		rc = nv_delay(e, "count", big, sizeof(big), &ids[ok]);
		if (rc != 0)
			break;
		ok++;
		if (ok % 8 == 0 && (rc = nv_flush(e, 10000)) != 0)
			break;
	}
	assert_int_equal(rc, NV_EIO);
	assert_true(ok > 1 && ok < 2048);
	assert_int_equal(nv_flush(e, 10000), NV_EIO);
	assert_int_equal(nv_flush(e, 0), NV_EIO);
	assert_int_equal(nv_delay(e, "count", big, 8, NULL), NV_EIO);
	assert_int_equal(nv_engine_stats(e, &st), 0);
	assert_int_equal(st.store_error, NV_EIO);
	/* Jobs already in memory still run. */
	__atomic_store_n(&g.gate, 1, __ATOMIC_RELEASE);
	wait_total(ok);
	nv_engine_stop(e, 5000);
	assert_counts(ids, ok, 1);
	nv_engine_close(e);
	if (umount(mnt) != 0)
		print_error("umount %s: %s\n", mnt, strerror(errno));
}

/* ---------------------------------------------------------------- main */

#define BOTH(fn)                                                               \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,          \
						 (void *)"file"),              \
	    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,      \
						     (void *)"sqlite")

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2], argv[3],
				  (size_t)strtoull(argv[4], NULL, 10));
	ssize_t n =
	    readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n <= 0)
		return 2;
	self_path[n] = '\0';
	const struct CMUnitTest tests[] = {
	    BOTH(test_engine_persist_flush_codes),
	    BOTH(test_engine_persist_open_errors),
	    BOTH(test_engine_persist_unstarted_jobs_run_once),
	    BOTH(test_engine_persist_prestart_jobs_kept),
	    BOTH(test_engine_persist_results_survive),
	    BOTH(test_engine_persist_ids_never_repeat),
	    BOTH(test_engine_persist_retry_state_kept),
	    BOTH(test_engine_persist_schedules_survive),
	    BOTH(test_engine_persist_requeue_after_crash),
	    BOTH(test_engine_persist_disk_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
