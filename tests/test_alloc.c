/* ctest: labels=unit timeout=30 */
/*
 * test_alloc.c - nv__grow (base/alloc.c), the array growth behind the
 * fold, the filelog's segment and directory lists, the reorder heap and
 * the scheduler's leftovers: the first capacity, doubling, contents kept,
 * no copy while there is room, and an impossible size refused with the
 * array left as it was.
 */
#include "testutil.h"

#include <stdint.h>

#include "base/alloc.h"

static void
test_grow_doubles_and_keeps(void **state)
{
	uint32_t *v = NULL;
	size_t cap = 0, n = 0;
	(void)state;

	for (uint32_t i = 0; i < 1000; i++) {
		size_t before = cap;
		uint32_t *p = nv__grow(v, &cap, n, sizeof(*p), 4);
		assert_non_null(p);
		if (n < before) {
			assert_ptr_equal(p, v); /* room: untouched */
			assert_int_equal(cap, before);
		} else {
			assert_int_equal(cap, before ? before * 2 : 4);
		}
		v = p;
		v[n++] = i * 7u;
	}
	assert_int_equal(cap, 1024);
	for (uint32_t i = 0; i < 1000; i++)
		assert_int_equal(v[i], i * 7u);
	nv__free(v);
}

static void
test_grow_refuses_overflow(void **state)
{
	size_t cap = 4;
	char *v = nv__malloc(4 * 64);
	(void)state;

	assert_non_null(v);
	memset(v, 'x', 4 * 64);
	/* 8 elements of SIZE_MAX / 4 bytes: the size overflows. */
	assert_null(nv__grow(v, &cap, 4, (size_t)-1 / 4, 1));
	assert_int_equal(cap, 4);
	assert_int_equal(v[255], 'x'); /* still ours, still whole */
	/* A capacity that cannot double. */
	cap = (size_t)1 << (sizeof(size_t) * 8 - 1);
	assert_null(nv__grow(v, &cap, cap, 1, 1));
	assert_int_equal(cap, (size_t)1 << (sizeof(size_t) * 8 - 1));
	nv__free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grow_doubles_and_keeps),
	    cmocka_unit_test(test_grow_refuses_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
