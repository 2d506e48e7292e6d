/* ctest: labels=unit;concurrency timeout=120 */
/*
 * test_asym.c - the asymmetric Dekker fence (lockfree/asym.h).
 *
 * Store-buffering litmus test, many rounds: thread F stores x = 1 and
 * loads y with only a compiler barrier between (the light side, when
 * membarrier is available; seq_cst otherwise, as in worker.c), thread R
 * stores y = 1, calls nv__asym_heavy and loads x. The outcome "both loads
 * saw 0" is forbidden. Without the heavy fence this machine showed it
 * 1-3 times per 100k rounds (store buffering), so the test can fail.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>

#include "lockfree/asym.h"

static uint64_t x, y;	  /* atomic: the two flags of a round */
static uint64_t go_round; /* atomic: round released by R */
static uint64_t done_f;	  /* atomic: round finished by F */
static uint64_t saw_f;	  /* F's load of y in its last round */
static uint64_t rounds;

static void
wait_for(const uint64_t *p, uint64_t v)
{
	unsigned spins = 0;
	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) < v)
		if (++spins % 256 == 0)
			sched_yield(); /* two cores: let the other side run */
}

static void *
frequent(void *arg)
{
	(void)arg;
	for (uint64_t r = 1; r <= rounds; r++) {
		wait_for(&go_round, r);
		if (nv__asym_ok) {
			__atomic_store_n(&x, r, __ATOMIC_RELAXED);
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			saw_f = __atomic_load_n(&y, __ATOMIC_RELAXED);
		} else {
			__atomic_store_n(&x, r, __ATOMIC_SEQ_CST);
			saw_f = __atomic_load_n(&y, __ATOMIC_SEQ_CST);
		}
		__atomic_store_n(&done_f, r, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void
test_asym_store_buffering_forbidden(void **state)
{
	pthread_t f;
	bool ok = true;
	uint64_t both_old = 0;
	(void)state;

	nv__asym_init();
	nv__asym_init(); /* idempotent */
	rounds = nv_test_scaled(100000);
	pthread_create(&f, NULL, frequent, NULL);
	/* This thread is R: release a round, store y, the heavy fence,
	 * load x; then read what F saw. Values of earlier rounds are < r. */
	for (uint64_t r = 1; r <= rounds; r++) {
		__atomic_store_n(&go_round, r, __ATOMIC_RELEASE);
		__atomic_store_n(&y, r, __ATOMIC_SEQ_CST);
		if (!nv__asym_heavy())
			ok = false;
		uint64_t saw_r = __atomic_load_n(&x, __ATOMIC_SEQ_CST);
		wait_for(&done_f, r);
		if (saw_f < r && saw_r < r)
			both_old++;
	}
	pthread_join(f, NULL);
	assert_true(ok);
	assert_int_equal(both_old, 0);
	print_message("membarrier %s; %llu rounds\n",
		      nv__asym_ok ? "in use" : "unavailable (seq_cst)",
		      (unsigned long long)rounds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_asym_store_buffering_forbidden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
