/* ctest: labels=unit;concurrency timeout=300 */
/*
 * test_registry.c - the engine's task registry: registration errors, the
 * NV_EEXIST / NV_REG_SILENT / NV_REG_FORCE semantics, handle stability,
 * and races between registering, forced replacement, lookup and dispatch.
 *
 * Which function ran is observable: each task function bumps its own
 * counter, so a test can tell the old definition from the new one.
 */
#include "testutil.h"
#include "enginetest.h"

static int g_a, g_b, g_c; /* atomic: runs of fn_a, fn_b, fn_c */

static int
fn_a(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	__atomic_add_fetch(&g_a, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int
fn_b(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	__atomic_add_fetch(&g_b, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int
fn_c(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	__atomic_add_fetch(&g_c, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void
reset(void)
{
	__atomic_store_n(&g_a, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g_b, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g_c, 0, __ATOMIC_SEQ_CST);
}

static int
runs(void)
{
	return __atomic_load_n(&g_a, __ATOMIC_SEQ_CST) +
	       __atomic_load_n(&g_b, __ATOMIC_SEQ_CST) +
	       __atomic_load_n(&g_c, __ATOMIC_SEQ_CST);
}

static void
run_one(nv_engine *e, const char *name)
{
	nv_job_id id;
	assert_int_equal(nv_delay(e, name, NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
}

static void
test_registry_errors(void **state)
{
	nv_config cfg;
	nv_engine *e;
	char name[300];
	nv_task_opts bad = {.timeout_policy = (nv_timeout_policy)9};
	(void)state;

	et_cfg(&cfg, 1);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(NULL, "x", fn_a, NULL, 0), NV_EINVAL);
	assert_int_equal(nv_task_register(e, NULL, fn_a, NULL, 0), NV_EINVAL);
	assert_int_equal(nv_task_register(e, "x", NULL, NULL, 0), NV_EINVAL);
	assert_int_equal(nv_task_register(e, "", fn_a, NULL, 0), NV_EINVAL);
	assert_int_equal(nv_task_register(e, "a b", fn_a, NULL, 0), NV_EINVAL);
	assert_int_equal(nv_task_register(e, "tab\t", fn_a, NULL, 0),
			 NV_EINVAL);
	assert_int_equal(nv_task_register(e, "x", fn_a, NULL, 0x4), NV_EINVAL);
	assert_int_equal(nv_task_register(e, "x", fn_a, &bad, 0), NV_EINVAL);
	memset(name, 'n', sizeof(name));
	name[256] = '\0';
	assert_int_equal(nv_task_register(e, name, fn_a, NULL, 0), NV_EINVAL);
	name[255] = '\0'; /* 255 bytes: the longest name */
	assert_int_equal(nv_task_register(e, name, fn_a, NULL, 0), 0);
	assert_non_null(nv_task_lookup(e, name));
	assert_string_equal(nv_task_name(nv_task_lookup(e, name)), name);
	/* Nothing was registered by the failed calls. */
	assert_null(nv_task_lookup(e, "x"));
	assert_null(nv_task_lookup(e, ""));
	assert_null(nv_task_lookup(e, NULL));
	assert_null(nv_task_lookup(NULL, "x"));
	assert_null(nv_task_name(NULL));
	nv_engine_close(e);
}

/* EEXIST keeps the old function; SILENT keeps it quietly; FORCE swaps it
 * in place: the handle stays the same pointer and dispatches through a
 * handle taken before the swap use the new function. Names are exact
 * (no prefix or case folding). */
static void
test_registry_semantics(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_task *h, *h2;
	nv_task_opts desc = {.description = "first", .category = "cat"};
	(void)state;

	reset();
	et_cfg(&cfg, 1);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "job", fn_a, &desc, 0), 0);
	h = nv_task_lookup(e, "job");
	assert_non_null(h);
	assert_string_equal(nv_task_name(h), "job");
	assert_null(nv_task_lookup(e, "jo"));
	assert_null(nv_task_lookup(e, "JOB"));
	assert_null(nv_task_lookup(e, "job2"));
	et_start(e);

	assert_int_equal(nv_task_register(e, "job", fn_b, NULL, 0), NV_EEXIST);
	run_one(e, "job");
	assert_int_equal(g_a, 1);
	assert_int_equal(nv_task_register(e, "job", fn_b, NULL, NV_REG_SILENT),
			 0);
	run_one(e, "job");
	assert_int_equal(g_a, 2);
	assert_int_equal(g_b, 0);

	assert_int_equal(nv_task_register(e, "job", fn_b, NULL, NV_REG_FORCE),
			 0);
	h2 = nv_task_lookup(e, "job");
	assert_ptr_equal(h, h2);
	nv_job_id id;
	assert_int_equal(nv_task_delay(h, NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	assert_int_equal(g_b, 1);
	assert_int_equal(g_a, 2);
	/* FORCE on a new name simply registers it. */
	assert_int_equal(nv_task_register(e, "new", fn_c, NULL, NV_REG_FORCE),
			 0);
	run_one(e, "new");
	assert_int_equal(g_c, 1);
	nv_engine_close(e);
}

/* K threads register one name at the same moment: exactly one wins, the
 * others get NV_EEXIST (or 0 with NV_REG_SILENT), and one function runs. */
enum { K = 4 };

static struct {
	nv_engine *e;
	const char *name;
	unsigned flags;
	int go; /* atomic */
	int rc[K];
} g_same;

static void *
same_main(void *arg)
{
	static nv_task_fn const fns[K] = {fn_a, fn_b, fn_c, fn_a};
	int i = (int)(intptr_t)arg;
	while (!__atomic_load_n(&g_same.go, __ATOMIC_ACQUIRE))
		;
	g_same.rc[i] =
	    nv_task_register(g_same.e, g_same.name, fns[i], NULL, g_same.flags);
	return NULL;
}

static void
test_registry_same_name_race(void **state)
{
	nv_config cfg;
	nv_engine *e;
	(void)state;

	et_cfg(&cfg, 1);
	e = et_open(&cfg);
	et_start(e);
	for (int round = 0; round < 40; round++) {
		pthread_t th[K];
		char name[32];
		int wins = 0;

		reset();
		snprintf(name, sizeof(name), "same%d", round);
		memset(&g_same, 0, sizeof(g_same));
		g_same.e = e;
		g_same.name = name;
		g_same.flags = (round & 1) ? NV_REG_SILENT : 0;
		for (int i = 0; i < K; i++)
			assert_int_equal(pthread_create(&th[i], NULL, same_main,
							(void *)(intptr_t)i),
					 0);
		__atomic_store_n(&g_same.go, 1, __ATOMIC_RELEASE);
		for (int i = 0; i < K; i++) {
			pthread_join(th[i], NULL);
			if (g_same.rc[i] == 0)
				wins++;
			else
				assert_int_equal(g_same.rc[i], NV_EEXIST);
		}
		assert_int_equal(wins, (round & 1) ? K : 1);
		run_one(e, name);
		assert_int_equal(runs(), 1);
	}
	nv_engine_close(e);
}

/* Registrars add distinct names, a forcer keeps swapping the definition
 * of "hot" between fn_a and fn_b, and dispatchers look names up and
 * dispatch through names and handles all the while. Every dispatch that
 * succeeded runs exactly once (with one of the two definitions), handles
 * never change, and every registered name is there at the end. */
enum { NREG = 2, NDISP = 2, NAMES = 500, SWAPS = 1000 };

static struct {
	nv_engine *e;
	nv_task *hot;	     /* handle taken before the race */
	int go;		     /* atomic */
	int reg_done;	     /* atomic: registrars finished */
	int errors;	     /* atomic: unexpected return codes */
	uint64_t dispatched; /* atomic */
} g_race;

static void
race_error(void)
{
	__atomic_add_fetch(&g_race.errors, 1, __ATOMIC_SEQ_CST);
}

static void *
registrar_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	char name[32];
	while (!__atomic_load_n(&g_race.go, __ATOMIC_ACQUIRE))
		;
	for (int i = 0; i < NAMES; i++) {
		snprintf(name, sizeof(name), "r%d-%d", t, i);
		if (nv_task_register(g_race.e, name, fn_c, NULL, 0) != 0)
			race_error();
		/* A second plain registration is refused, a silent one
		 * accepted: the first definition stays. */
		if (nv_task_register(g_race.e, name, fn_a, NULL, 0) !=
		    NV_EEXIST)
			race_error();
		if (nv_task_register(g_race.e, name, fn_a, NULL,
				     NV_REG_SILENT) != 0)
			race_error();
	}
	__atomic_add_fetch(&g_race.reg_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *
forcer_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&g_race.go, __ATOMIC_ACQUIRE))
		;
	for (int i = 0; i < SWAPS; i++)
		if (nv_task_register(g_race.e, "hot", (i & 1) ? fn_a : fn_b,
				     NULL, NV_REG_FORCE) != 0)
			race_error();
	return NULL;
}

static void
dispatched(int rc)
{
	if (rc == 0)
		__atomic_add_fetch(&g_race.dispatched, 1, __ATOMIC_SEQ_CST);
	else
		race_error();
}

static void *
dispatcher_main(void *arg)
{
	int d = (int)(intptr_t)arg;
	char name[32];
	nv_task *seen[NREG][NAMES] = {{NULL}};
	unsigned x = (unsigned)d * 2654435761u + 1;

	while (!__atomic_load_n(&g_race.go, __ATOMIC_ACQUIRE))
		;
	while (__atomic_load_n(&g_race.reg_done, __ATOMIC_SEQ_CST) < NREG) {
		x = x * 1103515245u + 12345u;
		int t = (int)((x >> 8) % NREG), i = (int)((x >> 16) % NAMES);
		snprintf(name, sizeof(name), "r%d-%d", t, i);
		nv_task *h = nv_task_lookup(g_race.e, name);
		if (h != NULL) {
			/* Once visible, always the same handle. */
			if (seen[t][i] != NULL && seen[t][i] != h)
				race_error();
			seen[t][i] = h;
			dispatched(nv_task_delay(h, NULL, 0, NULL));
		} else if (seen[t][i] != NULL) {
			race_error(); /* a name disappeared */
		}
		if (nv_task_lookup(g_race.e, "hot") != g_race.hot)
			race_error();
		dispatched(nv_delay(g_race.e, "hot", NULL, 0, NULL));
		dispatched(nv_task_delay(g_race.hot, NULL, 0, NULL));
	}
	return NULL;
}

static void
test_registry_races(void **state)
{
	nv_config cfg;
	nv_engine *e;
	pthread_t reg[NREG], disp[NDISP], forcer;
	char name[32];
	(void)state;

	reset();
	et_cfg(&cfg, 2);
	cfg.queue_capacity = 65536;
	cfg.enqueue_timeout_ms = 600000;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "hot", fn_a, NULL, 0), 0);
	memset(&g_race, 0, sizeof(g_race));
	g_race.e = e;
	g_race.hot = nv_task_lookup(e, "hot");
	assert_non_null(g_race.hot);
	et_start(e);
	for (int i = 0; i < NREG; i++)
		assert_int_equal(pthread_create(&reg[i], NULL, registrar_main,
						(void *)(intptr_t)i),
				 0);
	for (int i = 0; i < NDISP; i++)
		assert_int_equal(pthread_create(&disp[i], NULL, dispatcher_main,
						(void *)(intptr_t)i),
				 0);
	assert_int_equal(pthread_create(&forcer, NULL, forcer_main, NULL), 0);
	__atomic_store_n(&g_race.go, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NREG; i++)
		pthread_join(reg[i], NULL);
	for (int i = 0; i < NDISP; i++)
		pthread_join(disp[i], NULL);
	pthread_join(forcer, NULL);

	assert_int_equal(g_race.errors, 0);
	assert_int_equal(nv_engine_stop(e, 60000), 0);
	assert_int_equal((uint64_t)runs(), g_race.dispatched);
	for (int t = 0; t < NREG; t++)
		for (int i = 0; i < NAMES; i++) {
			snprintf(name, sizeof(name), "r%d-%d", t, i);
			nv_task *h = nv_task_lookup(e, name);
			assert_non_null(h);
			assert_string_equal(nv_task_name(h), name);
		}
	/* The forcer's last definition (SWAPS - 1 is odd: fn_a) is live. */
	nv_engine_close(e);
	reset();
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "hot", fn_b, NULL, 0), 0);
	for (int i = 0; i < SWAPS; i++)
		assert_int_equal(nv_task_register(e, "hot",
						  (i & 1) ? fn_a : fn_b, NULL,
						  NV_REG_FORCE),
				 0);
	et_start(e);
	run_one(e, "hot");
	assert_int_equal(g_a, 1);
	assert_int_equal(g_b, 0);
	nv_engine_close(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry_errors),
	    cmocka_unit_test(test_registry_semantics),
	    cmocka_unit_test(test_registry_same_name_race),
	    cmocka_unit_test(test_registry_races),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
