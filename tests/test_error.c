/* ctest: labels=unit timeout=30 */
/*
 * test_error.c - nv_strerror / nv_err_name (base/error.c) against the
 * NV_ERRNO_MAP X-macro table: every code has a distinct, non-empty message
 * and name, names match the enum, and 0 / unknown codes are handled.
 */
#include "testutil.h"

#include <limits.h>
#include <string.h>

struct entry {
	const char *name; /* "EINVAL" */
	int value;
	const char *msg;
};

static const struct entry table[] = {
#define E(name, val, msg) {#name, (val), (msg)},
    NV_ERRNO_MAP(E)
#undef E
};

#define NTABLE (sizeof(table) / sizeof(table[0]))

static void
test_error_every_code(void **state)
{
	(void)state;
	assert_true(NTABLE >= 16);
	for (size_t i = 0; i < NTABLE; i++) {
		const char *m = nv_strerror(table[i].value);
		const char *n = nv_err_name(table[i].value);
		assert_true(table[i].value < 0);
		assert_non_null(m);
		assert_non_null(n);
		assert_true(m[0] != '\0');
		assert_string_equal(m, table[i].msg);
		assert_string_equal(n, table[i].name);
		assert_string_not_equal(m, "unknown error");
		assert_string_not_equal(n, "UNKNOWN");
		for (size_t j = 0; j < i; j++) {
			assert_int_not_equal(table[i].value, table[j].value);
			assert_string_not_equal(m, nv_strerror(table[j].value));
			assert_string_not_equal(n, nv_err_name(table[j].value));
		}
	}
}

/* The codes the spec fixes exist under their names. */
static void
test_error_spec_codes(void **state)
{
	static const struct {
		int code;
		const char *name;
	} spec[] = {
	    {NV_EINVAL, "EINVAL"},	 {NV_ENOTASK, "ENOTASK"},
	    {NV_EEXIST, "EEXIST"},	 {NV_EFULL, "EFULL"},
	    {NV_ETIMEDOUT, "ETIMEDOUT"}, {NV_ESTOPPED, "ESTOPPED"},
	    {NV_ENOENT, "ENOENT"},	 {NV_E2BIG, "E2BIG"},
	    {NV_ENOMEM, "ENOMEM"},	 {NV_EIO, "EIO"},
	    {NV_ECRON, "ECRON"},	 {NV_EPLUGIN, "EPLUGIN"},
	    {NV_ECONFIG, "ECONFIG"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
		assert_true(spec[i].code < 0);
		assert_string_equal(nv_err_name(spec[i].code), spec[i].name);
	}
}

static void
test_error_success_and_unknown(void **state)
{
	static const int unknown[] = {1, 7, -1000, INT_MIN, INT_MAX};
	(void)state;
	assert_int_equal(NV_OK, 0);
	assert_string_equal(nv_strerror(0), "success");
	assert_string_equal(nv_err_name(0), "OK");
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_string_equal(nv_strerror(unknown[i]), "unknown error");
		assert_string_equal(nv_err_name(unknown[i]), "UNKNOWN");
	}
	/* One past the most negative code in the table is unknown too. */
	{
		int lowest = 0;
		for (size_t i = 0; i < NTABLE; i++)
			if (table[i].value < lowest)
				lowest = table[i].value;
		assert_string_equal(nv_strerror(lowest - 1), "unknown error");
		assert_string_equal(nv_err_name(lowest - 1), "UNKNOWN");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_every_code),
	    cmocka_unit_test(test_error_spec_codes),
	    cmocka_unit_test(test_error_success_and_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
