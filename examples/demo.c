/*
 * demo.c - a tour of the nuvom API: register tasks, dispatch jobs with
 * nv_delay and nv_map, wait for them, read results and errors, watch a
 * retry and a timeout, then stop the engine and print its statistics.
 *
 *   ./build/examples/demo
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "nuvom.h"

/* args: two int64 values; result: their sum as text. */
static int
add(nv_ctx *ctx, const void *args, size_t len)
{
	int64_t v[2];
	char out[64];
	if (len != sizeof(v))
		return nv_ctx_set_error(ctx, "add: want 16 bytes, got %zu", len),
		       1;
	memcpy(v, args, sizeof(v));
	int n = snprintf(out, sizeof(out), "%" PRId64 " + %" PRId64 " = %" PRId64,
			 v[0], v[1], v[0] + v[1]);
	nv_ctx_set_result(ctx, out, (size_t)n + 1);
	return 0;
}

/* Fails on its first two attempts, succeeds on the third. */
static int
flaky(nv_ctx *ctx, const void *args, size_t len)
{
	(void)args;
	(void)len;
	if (nv_ctx_attempt(ctx) < 3) {
		nv_ctx_set_error(ctx, "transient failure on attempt %u",
				 nv_ctx_attempt(ctx));
		return 1;
	}
	nv_ctx_set_result(ctx, "made it", 8);
	return 0;
}

/* Never succeeds. */
static int
broken(nv_ctx *ctx, const void *args, size_t len)
{
	(void)args;
	(void)len;
	nv_ctx_set_error(ctx, "the disk is on fire");
	return 1;
}

/* Spins past its 50 ms timeout, stopping once cancelled. */
static int
slow(nv_ctx *ctx, const void *args, size_t len)
{
	(void)args;
	(void)len;
	while (!nv_ctx_cancelled(ctx)) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void
on_error(nv_ctx *ctx, const char *error)
{
	printf("  on_error hook: job %" PRIu64 " attempt %u: %s\n",
	       nv_ctx_job_id(ctx), nv_ctx_attempt(ctx), error);
}

static void
show(nv_engine *e, nv_job_id id)
{
	nv_status st;
	void *res;
	size_t len;
	char *err;
	int rc = nv_job_wait(e, id, 5000, &st);
	if (rc != 0) {
		printf("  job %" PRIu64 ": wait failed: %s\n", id, nv_strerror(rc));
		return;
	}
	if (nv_job_result(e, id, &res, &len) == 0) {
		printf("  job %" PRIu64 ": %s -> %.*s\n", id, nv_status_name(st),
		       (int)len, (const char *)res);
		nv_free(res);
	} else if (nv_job_error(e, id, &err) == 0) {
		printf("  job %" PRIu64 ": %s -> error: %s\n", id,
		       nv_status_name(st), err);
		nv_free(err);
	} else {
		printf("  job %" PRIu64 ": %s (no result)\n", id,
		       nv_status_name(st));
	}
}

int
main(void)
{
	nv_engine *e;
	nv_config cfg;
	nv_job_id id, ids[5];
	int64_t pairs[5][2];
	nv_args argv[5];
	nv_stats st;
	int rc;

	nv_config_init(&cfg);
	cfg.workers = 2;
	if ((rc = nv_engine_open(&e, &cfg)) != 0) {
		fprintf(stderr, "open: %s\n", nv_strerror(rc));
		return 1;
	}
	nv_task_opts retry3 = { .retries = 3, .retry_delay_ms = 20,
				.on_error = on_error };
	nv_task_opts once = { .retries = 1, .retry_delay_ms = 10,
			      .on_error = on_error };
	nv_task_opts quick = { .timeout_ms = 50,
			       .timeout_policy = NV_TIMEOUT_FAIL };
	nv_task_register(e, "add", add, NULL, 0);
	nv_task_register(e, "flaky", flaky, &retry3, 0);
	nv_task_register(e, "broken", broken, &once, 0);
	nv_task_register(e, "slow", slow, &quick, 0);
	if ((rc = nv_engine_start(e)) != 0) {
		fprintf(stderr, "start: %s\n", nv_strerror(rc));
		return 1;
	}

	printf("nv_delay: one job of task 'add'\n");
	int64_t one[2] = { 40, 2 };
	nv_delay(e, "add", one, sizeof(one), &id);
	show(e, id);

	printf("nv_map: five jobs of 'add' in one bulk dispatch\n");
	for (int i = 0; i < 5; i++) {
		pairs[i][0] = i;
		pairs[i][1] = i * i;
		argv[i].data = pairs[i];
		argv[i].len = sizeof(pairs[i]);
	}
	nv_map(e, "add", argv, 5, ids);
	for (int i = 0; i < 5; i++)
		show(e, ids[i]);

	printf("retries: 'flaky' fails twice, then succeeds\n");
	nv_delay(e, "flaky", NULL, 0, &id);
	show(e, id);

	printf("a failing job: 'broken' (1 retry)\n");
	nv_delay(e, "broken", NULL, 0, &id);
	show(e, id);

	printf("a timeout: 'slow' runs past its 50 ms limit (policy FAIL)\n");
	nv_delay(e, "slow", NULL, 0, &id);
	show(e, id);

	printf("bad input gets a clear error:\n");
	rc = nv_delay(e, "no-such-task", NULL, 0, NULL);
	printf("  unknown task -> %s (%s)\n", nv_err_name(rc), nv_strerror(rc));
	rc = nv_delay(e, "add", one, (size_t)2 << 20, NULL);
	printf("  2 MiB of args -> %s (%s)\n", nv_err_name(rc), nv_strerror(rc));

	rc = nv_engine_stop(e, 2000);
	nv_engine_stats(e, &st);
	printf("stopped (%s): enqueued %" PRIu64 ", started %" PRIu64
	       ", succeeded %" PRIu64 ", failed %" PRIu64 ", retried %" PRIu64
	       ", timed out %" PRIu64 "\n",
	       nv_strerror(rc), st.enqueued, st.started, st.succeeded,
	       st.failed, st.retried, st.timed_out);
	nv_engine_close(e);
	return 0;
}
