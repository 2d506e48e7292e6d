/* ctest: labels=unit;concurrency timeout=300 */
/*
 * tests/test_engine_persist.c - the engine with a persistent backend
 * ("file" and "sqlite") across restarts, through the public API only.
 * (Error paths - flush codes, stores that cannot be opened, a full disk -
 * are in test_engine_persist_errors.c; helpers in engine_persist.h.)
 *
 * Every case runs once per store kind (cmocka prestate). A "session" is
 * one nv_engine_open .. nv_engine_close on the same data directory; the
 * tasks count their runs per job id in a global table that is reset
 * between sessions, so "ran exactly once more" is a count, and every count
 * is read after nv_engine_stop (which drains: nothing can run later).
 *
 * A real crash (the process dies with work queued and running) is made by
 * re-executing this binary as a child (--child ...): it dispatches behind
 * a blocked worker, flushes, prints the ids and _exits without closing.
 */
#include "testutil.h"

#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_persist.h"

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
		assert_int_equal(g.attempt[IDX(ids[i])], 1);
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
	return __atomic_load_n(&g.count[IDX(id)], __ATOMIC_ACQUIRE) == 1;
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
	assert_int_equal(g.attempt[IDX(id)], 1);

	session_reset();
	e = open_kind(f->kind, f->dir, 1, 4096);
	assert_int_equal(nv_engine_start(e), 0);
	assert_int_equal(nv_job_wait(e, id, 20000, &st), 0);
	assert_int_equal(st, NV_SUCCESS);
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_int_equal(g.count[IDX(id)], 1);
	assert_int_equal(g.attempt[IDX(id)], 2);
	/* Due at failure + 1500 ms (epoch): never early (2 ms for the
	 * clocks' rounding), and not forgotten either. */
	if (g.run_ms[IDX(id)] < failed_at + 1500 - 2)
		fail_msg("attempt 2 ran %lld ms after attempt 1 (due 1500)",
			 (long long)(g.run_ms[IDX(id)] - failed_at));
	assert_true(g.run_ms[IDX(id)] < failed_at + 10000);
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

/* Stop with schedules firing: 0, or NV_ETIMEDOUT when a schedule fired
 * between stop's drained check and its joining the workers (a known race
 * of nv_engine_stop: the job runs on, after the persister stopped, and is
 * recovered by the next start). Neither changes what is checked here. */
static void
stop_firing(nv_engine *e, uint32_t grace_ms)
{
	int rc = nv_engine_stop(e, grace_ms);
	if (rc != 0 && rc != NV_ETIMEDOUT)
		fail_msg("nv_engine_stop: %s", nv_strerror(rc));
}

static void
test_engine_persist_schedules_survive(void **state)
{
	struct fix *f = *state;
	uint8_t tag_iv = 1, tag_cancel = 2, tag_once = 3;
	nv_schedule iv = {.interval_ms = 50}, once = {0};
	nv_schedule_id sid_iv, sid_cancel, sid_once;
	int64_t once_at = epoch_ms() + 1000; /* after session 1 closes, even
						 in a sanitizer build */
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
	stop_firing(e, 0);
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
		stop_firing(e, 5000);
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
	assert_int_equal(g.attempt[IDX(ids[0])], 2); /* it had started once */
	for (size_t i = 1; i <= n; i++) {
		void *buf = NULL;
		size_t len = 0, want = i - 1;
		assert_int_equal(g.attempt[IDX(ids[i])], 1);
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

/* ---------------------------------------------------------------- main */

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
	    BOTH(test_engine_persist_unstarted_jobs_run_once),
	    BOTH(test_engine_persist_prestart_jobs_kept),
	    BOTH(test_engine_persist_results_survive),
	    BOTH(test_engine_persist_ids_never_repeat),
	    BOTH(test_engine_persist_retry_state_kept),
	    BOTH(test_engine_persist_schedules_survive),
	    BOTH(test_engine_persist_requeue_after_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
