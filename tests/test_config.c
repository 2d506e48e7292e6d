/* ctest: labels=unit timeout=60 */
/*
 * test_config.c - nv_config_init defaults, every NUVOM_* variable with
 * valid and invalid values (the message must name the variable, the value
 * and the source), all-or-nothing application, the copy helper that
 * re-points strings, and the internal path/describe helpers. Loading from
 * a .env file is tested in test_dotenv.c.
 *
 * Every test starts and ends with no NUVOM_* variable in the environment.
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/config_int.h"


/* Fresh defaults + one variable from the environment. */
static int
load1(nv_config *c, const char *name, const char *value)
{
	nv_test_clear_env("NUVOM_");
	nv_config_init(c);
	assert_int_equal(setenv(name, value, 1), 0);
	return nv_config_from_env(c, NULL);
}

#define OK1(c, name, value) assert_int_equal(load1((c), (name), (value)), 0)

static bool
in_strbuf(const nv_config *c, const char *p)
{
	const char *lo = (const char *)c->nv__strbuf;
	return p >= lo && p < lo + sizeof(c->nv__strbuf);
}

/* ------------------------------------------------------------ defaults */

static void
test_config_defaults(void **state)
{
	nv_config c;
	(void)state;
	memset(&c, 0x5a, sizeof(c));
	nv_config_init(&c);
	assert_int_equal(c.workers, 0);
	assert_false(c.pin_workers);
	assert_int_equal(c.queue_capacity, 65536);
	assert_string_equal(c.queue_backend, "memory");
	assert_string_equal(c.result_backend, "memory");
	assert_string_equal(c.data_dir, ".nuvom");
	assert_int_equal(c.job_timeout_ms, 30000);
	assert_int_equal(c.retry_delay_ms, 1000);
	assert_int_equal(c.timeout_policy, NV_TIMEOUT_RETRY);
	assert_int_equal(c.batch_size, 32);
	assert_int_equal(c.enqueue_timeout_ms, 1000);
	assert_int_equal(c.max_args, 1024 * 1024);
	assert_int_equal(c.result_retention, 1000000);
	assert_int_equal(c.max_extra_workers, NV__CONFIG_AUTO);
	assert_int_equal(nv__config_extra_workers(&c, 6), 6);
	assert_int_equal(c.fsync, NV_FSYNC_BATCH);
	assert_int_equal(c.fsync_interval_ms, 2);
	assert_int_equal(c.misfire, NV_MISFIRE_ONCE);
	assert_int_equal(c.log_level, NV_LOG_WARN);
	assert_null(c.manifest_path);
	assert_null(c.sqlite_queue_path);
	assert_null(c.sqlite_result_path);
	assert_string_equal(c.environment, "dev");

	/* No NUVOM_* variable: from_env changes nothing. */
	{
		nv_config d;
		nv_config_init(&d);
		assert_int_equal(nv_config_from_env(&d, NULL), 0);
		assert_memory_equal(&c, &d, sizeof(c));
		assert_string_equal(nv_config_error(), "");
	}
	nv_config_init(NULL); /* no crash */
	assert_int_equal(nv_config_from_env(NULL, NULL), NV_EINVAL);
}

/* ----------------------------------------------------- valid variables */

static void
test_config_valid_numbers(void **state)
{
	nv_config c;
	(void)state;
	OK1(&c, "NUVOM_MAX_WORKERS", "8");
	assert_int_equal(c.workers, 8);
	OK1(&c, "NUVOM_MAX_WORKERS", "0");
	assert_int_equal(c.workers, 0);
	OK1(&c, "NUVOM_MAX_WORKERS", "1024");
	assert_int_equal(c.workers, 1024);
	OK1(&c, "NUVOM_MAX_WORKERS", "007");
	assert_int_equal(c.workers, 7);
	OK1(&c, "NUVOM_BATCH_SIZE", "1");
	assert_int_equal(c.batch_size, 1);
	OK1(&c, "NUVOM_BATCH_SIZE", "4096");
	assert_int_equal(c.batch_size, 4096);
	OK1(&c, "NUVOM_QUEUE_CAPACITY", "2");
	assert_int_equal(c.queue_capacity, 2);
	OK1(&c, "NUVOM_QUEUE_CAPACITY", "1073741824");
	assert_int_equal(c.queue_capacity, (size_t)1 << 30);
	OK1(&c, "NUVOM_QUEUE_CAPACITY", "1000"); /* the engine rounds up */
	assert_int_equal(c.queue_capacity, 1000);
	OK1(&c, "NUVOM_FSYNC_INTERVAL_MS", "0");
	assert_int_equal(c.fsync_interval_ms, 0);
	OK1(&c, "NUVOM_FSYNC_INTERVAL_MS", "60000");
	assert_int_equal(c.fsync_interval_ms, 60000);
	OK1(&c, "NUVOM_PERSIST_BACKLOG", "1");
	assert_int_equal(c.persist_backlog, 1);
	OK1(&c, "NUVOM_PERSIST_BACKLOG", "1073741824");
	assert_int_equal(c.persist_backlog, (size_t)1 << 30);
	OK1(&c, "NUVOM_ENQUEUE_TIMEOUT_MS", "0");
	assert_int_equal(c.enqueue_timeout_ms, 0);
	OK1(&c, "NUVOM_ENQUEUE_TIMEOUT_MS", "2147483647");
	assert_int_equal(c.enqueue_timeout_ms, INT32_MAX);
	OK1(&c, "NUVOM_MAX_ARGS_BYTES", "1");
	assert_int_equal(c.max_args, 1);
	OK1(&c, "NUVOM_MAX_ARGS_BYTES", "1073741824");
	assert_int_equal(c.max_args, (size_t)1 << 30);
	OK1(&c, "NUVOM_RESULT_RETENTION", "1");
	assert_int_equal(c.result_retention, 1);
	OK1(&c, "NUVOM_RESULT_RETENTION", "1099511627776");
	assert_true(c.result_retention == ((size_t)1 << 40));
	OK1(&c, "NUVOM_MAX_EXTRA_WORKERS", "0");
	assert_int_equal(c.max_extra_workers, 0);
	assert_int_equal(nv__config_extra_workers(&c, 6), 0);
	OK1(&c, "NUVOM_MAX_EXTRA_WORKERS", "1024");
	assert_int_equal(c.max_extra_workers, 1024);
	c.max_extra_workers = 3;
	assert_int_equal(setenv("NUVOM_MAX_EXTRA_WORKERS", "AUTO", 1), 0);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_int_equal(c.max_extra_workers, NV__CONFIG_AUTO);
}

static void
test_config_valid_seconds(void **state)
{
	static const struct {
		const char *v;
		uint32_t ms;
	} ok[] = {
	    {"30", 30000},
	    {"2.5", 2500},
	    {".25", 250},
	    {"2.", 2000},
	    {"0.001", 1},
	    {"0.0005", 1},
	    {"1.2344", 1234},
	    {"1.2345", 1235},
	    {"0.9995", 1000},
	    {"4294967.295", UINT32_MAX},
	    {"00001.500000000000000000000001", 1500},
	};
	nv_config c;
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		OK1(&c, "NUVOM_JOB_TIMEOUT_SECS", ok[i].v);
		if (c.job_timeout_ms != ok[i].ms)
			fail_msg("JOB_TIMEOUT_SECS=%s: %u ms, want %u", ok[i].v,
				 c.job_timeout_ms, ok[i].ms);
		OK1(&c, "NUVOM_RETRY_DELAY_SECS", ok[i].v);
		assert_int_equal(c.retry_delay_ms, ok[i].ms);
	}
	OK1(&c, "NUVOM_RETRY_DELAY_SECS", "0");
	assert_int_equal(c.retry_delay_ms, 0);
	OK1(&c, "NUVOM_RETRY_DELAY_SECS", "0.0004"); /* rounds to 0: allowed */
	assert_int_equal(c.retry_delay_ms, 0);
}

static void
test_config_valid_words(void **state)
{
	static const char *const pin_true[] = {"true", "1",   "yes", "on",
					       "TRUE", "Yes", "ON"};
	static const char *const pin_false[] = {"false", "0",	  "no",
						"off",	 "False", "NO"};
	nv_config c;
	(void)state;
	OK1(&c, "NUVOM_TIMEOUT_POLICY", "fail");
	assert_int_equal(c.timeout_policy, NV_TIMEOUT_FAIL);
	OK1(&c, "NUVOM_TIMEOUT_POLICY", "IGNORE");
	assert_int_equal(c.timeout_policy, NV_TIMEOUT_IGNORE);
	c.timeout_policy = NV_TIMEOUT_FAIL;
	assert_int_equal(setenv("NUVOM_TIMEOUT_POLICY", "Retry", 1), 0);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_int_equal(c.timeout_policy, NV_TIMEOUT_RETRY);

	OK1(&c, "NUVOM_LOG_LEVEL", "debug");
	assert_int_equal(c.log_level, NV_LOG_DEBUG);
	OK1(&c, "NUVOM_LOG_LEVEL", "INFO");
	assert_int_equal(c.log_level, NV_LOG_INFO);
	OK1(&c, "NUVOM_LOG_LEVEL", "Warning");
	assert_int_equal(c.log_level, NV_LOG_WARN);
	OK1(&c, "NUVOM_LOG_LEVEL", "error");
	assert_int_equal(c.log_level, NV_LOG_ERROR);
	c.log_level = NV_LOG_ERROR;
	assert_int_equal(setenv("NUVOM_LOG_LEVEL", "WARN", 1), 0);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_int_equal(c.log_level, NV_LOG_WARN);

	OK1(&c, "NUVOM_ENVIRONMENT", "PROD");
	assert_string_equal(c.environment, "prod");
	OK1(&c, "NUVOM_ENVIRONMENT", "test");
	assert_string_equal(c.environment, "test");
	OK1(&c, "NUVOM_ENVIRONMENT", "dev");
	assert_string_equal(c.environment, "dev");

	OK1(&c, "NUVOM_FSYNC", "always");
	assert_int_equal(c.fsync, NV_FSYNC_ALWAYS);
	OK1(&c, "NUVOM_FSYNC", "OFF");
	assert_int_equal(c.fsync, NV_FSYNC_OFF);
	c.fsync = NV_FSYNC_OFF;
	assert_int_equal(setenv("NUVOM_FSYNC", "batch", 1), 0);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_int_equal(c.fsync, NV_FSYNC_BATCH);

	OK1(&c, "NUVOM_MISFIRE_POLICY", "skip");
	assert_int_equal(c.misfire, NV_MISFIRE_SKIP);
	c.misfire = NV_MISFIRE_SKIP;
	assert_int_equal(setenv("NUVOM_MISFIRE_POLICY", "Once", 1), 0);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_int_equal(c.misfire, NV_MISFIRE_ONCE);

	for (size_t i = 0; i < sizeof(pin_true) / sizeof(pin_true[0]); i++) {
		OK1(&c, "NUVOM_PIN_WORKERS", pin_true[i]);
		assert_true(c.pin_workers);
	}
	for (size_t i = 0; i < sizeof(pin_false) / sizeof(pin_false[0]); i++) {
		c.pin_workers = true;
		nv_test_clear_env("NUVOM_");
		assert_int_equal(setenv("NUVOM_PIN_WORKERS", pin_false[i], 1),
				 0);
		assert_int_equal(nv_config_from_env(&c, NULL), 0);
		assert_false(c.pin_workers);
	}
}

static void
test_config_valid_strings(void **state)
{
	static const char *const vars[] = {
	    "NUVOM_MANIFEST_PATH", "NUVOM_SQLITE_QUEUE_PATH",
	    "NUVOM_SQLITE_RESULT_PATH", "NUVOM_DATA_DIR"};
	char longest[NV_CONFIG_STR];
	nv_config c;
	(void)state;

	OK1(&c, "NUVOM_QUEUE_BACKEND", "SQLite");
	assert_string_equal(c.queue_backend, "sqlite");
	OK1(&c, "NUVOM_QUEUE_BACKEND", "file");
	assert_string_equal(c.queue_backend, "file");
	OK1(&c, "NUVOM_RESULT_BACKEND", "Memory");
	assert_string_equal(c.result_backend, "memory");
	OK1(&c, "NUVOM_RESULT_BACKEND", "my-plugin.v2_x");
	assert_string_equal(c.result_backend, "my-plugin.v2_x");
	assert_true(in_strbuf(&c, c.result_backend));
	assert_string_equal(c.queue_backend, "memory");
	OK1(&c, "NUVOM_QUEUE_BACKEND", "redis");
	assert_string_equal(c.queue_backend, "redis");
	assert_true(in_strbuf(&c, c.queue_backend));

	memset(longest, 'p', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	nv_test_clear_env("NUVOM_");
	nv_config_init(&c);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		assert_int_equal(setenv(vars[i], "/srv/nuvom dir/é/x.db", 1),
				 0);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_string_equal(c.data_dir, "/srv/nuvom dir/é/x.db");
	assert_string_equal(c.manifest_path, "/srv/nuvom dir/é/x.db");
	assert_string_equal(c.sqlite_queue_path, "/srv/nuvom dir/é/x.db");
	assert_string_equal(c.sqlite_result_path, "/srv/nuvom dir/é/x.db");
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *got;
		assert_int_equal(setenv(vars[i], longest, 1), 0);
		assert_int_equal(nv_config_from_env(&c, NULL), 0);
		got = i == 0   ? c.manifest_path
		      : i == 1 ? c.sqlite_queue_path
		      : i == 2 ? c.sqlite_result_path
			       : c.data_dir;
		assert_string_equal(got, longest);
		assert_true(in_strbuf(&c, got));
	}
	/* Each field has its own storage. */
	assert_ptr_not_equal(c.manifest_path, c.sqlite_queue_path);
	assert_ptr_not_equal(c.sqlite_queue_path, c.sqlite_result_path);
	assert_true(in_strbuf(&c, c.manifest_path));
	assert_true(in_strbuf(&c, c.sqlite_result_path));
}

/* ---------------------------------------------------- invalid variables */

static const struct {
	const char *name, *value, *detail;
} bad_values[] = {
    {"NUVOM_MAX_WORKERS", "1025", "out of range"},
    {"NUVOM_MAX_WORKERS", "-1", "0..1024"},
    {"NUVOM_MAX_WORKERS", "abc", "not a plain integer"},
    {"NUVOM_MAX_WORKERS", "8x", "not a plain integer"},
    {"NUVOM_MAX_WORKERS", " 8", NULL},
    {"NUVOM_MAX_WORKERS", "8 ", NULL},
    {"NUVOM_MAX_WORKERS", "+8", NULL},
    {"NUVOM_MAX_WORKERS", "0x10", NULL},
    {"NUVOM_MAX_WORKERS", "4294967297", "out of range"},
    {"NUVOM_MAX_WORKERS", "99999999999999999999999", "out of range"},
    {"NUVOM_MAX_WORKERS", "99999999999999999999999x", "plain integer"},
    {"NUVOM_MAX_WORKERS", "", "empty value"},
    {"NUVOM_BATCH_SIZE", "0", "below 1"},
    {"NUVOM_PERSIST_BACKLOG", "0", "1..1073741824"},
    {"NUVOM_PERSIST_BACKLOG", "1073741825", "out of range"},
    {"NUVOM_PERSIST_BACKLOG", "lots", "not a plain integer"},
    {"NUVOM_BATCH_SIZE", "4097", "1..4096"},
    {"NUVOM_JOB_TIMEOUT_SECS", "0", "at least 0.001"},
    {"NUVOM_JOB_TIMEOUT_SECS", "0.0004", "at least 0.001"},
    {"NUVOM_JOB_TIMEOUT_SECS", "-1", "not a decimal number"},
    {"NUVOM_JOB_TIMEOUT_SECS", "1e3", NULL},
    {"NUVOM_JOB_TIMEOUT_SECS", ".", NULL},
    {"NUVOM_JOB_TIMEOUT_SECS", "1.2.3", NULL},
    {"NUVOM_JOB_TIMEOUT_SECS", "2,5", NULL},
    {"NUVOM_JOB_TIMEOUT_SECS", "inf", NULL},
    {"NUVOM_JOB_TIMEOUT_SECS", "4294967.296", "out of range"},
    {"NUVOM_JOB_TIMEOUT_SECS", "99999999999999999999", "out of range"},
    {"NUVOM_JOB_TIMEOUT_SECS", "30s", NULL},
    {"NUVOM_RETRY_DELAY_SECS", "-0.5", "seconds >= 0"},
    {"NUVOM_RETRY_DELAY_SECS", "4294967.2955", "out of range"},
    {"NUVOM_TIMEOUT_POLICY", "retries", "retry, fail or ignore"},
    {"NUVOM_TIMEOUT_POLICY", "default", NULL},
    {"NUVOM_LOG_LEVEL", "TRACE", "DEBUG, INFO, WARNING, WARN or ERROR"},
    {"NUVOM_LOG_LEVEL", "CRITICAL", NULL},
    {"NUVOM_ENVIRONMENT", "staging", "dev, test or prod"},
    {"NUVOM_QUEUE_CAPACITY", "1", "below 2"},
    {"NUVOM_QUEUE_CAPACITY", "0", NULL},
    {"NUVOM_QUEUE_CAPACITY", "1073741825", "out of range"},
    {"NUVOM_PIN_WORKERS", "2", "true, false"},
    {"NUVOM_PIN_WORKERS", "tru", NULL},
    {"NUVOM_FSYNC", "never", "always, batch or off"},
    {"NUVOM_FSYNC_INTERVAL_MS", "60001", "0..60000"},
    {"NUVOM_ENQUEUE_TIMEOUT_MS", "2147483648", "out of range"},
    {"NUVOM_MAX_ARGS_BYTES", "0", "below 1"},
    {"NUVOM_MAX_ARGS_BYTES", "1073741825", NULL},
    {"NUVOM_RESULT_RETENTION", "0", NULL},
    {"NUVOM_RESULT_RETENTION", "1099511627777", NULL},
    {"NUVOM_MAX_EXTRA_WORKERS", "1025", "or auto"},
    {"NUVOM_MAX_EXTRA_WORKERS", "autox", NULL},
    {"NUVOM_MISFIRE_POLICY", "twice", "once or skip"},
    {"NUVOM_QUEUE_BACKEND", "bad name!", "not a backend name"},
    {"NUVOM_QUEUE_BACKEND", "a/b", "plugin name"},
    {"NUVOM_RESULT_BACKEND", "../evil", NULL},
    {"NUVOM_RESULT_BACKEND", "", "empty value"},
    {"NUVOM_DATA_DIR", "", "empty value"},
    {"NUVOM_MANIFEST_PATH", "", NULL},
    {"NUVOM_SQLITE_QUEUE_PATH", "", NULL},
    {"NUVOM_SQLITE_RESULT_PATH", "", NULL},
};

static void
test_config_invalid_values(void **state)
{
	nv_config c, before;
	(void)state;
	nv_config_init(&before);
	for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]);
	     i++) {
		const char *msg;
		char quoted[128];
		int rc = load1(&c, bad_values[i].name, bad_values[i].value);
		msg = nv_config_error();
		snprintf(quoted, sizeof(quoted), "=\"%s\"",
			 bad_values[i].value);
		if (rc != NV_ECONFIG ||
		    strstr(msg, bad_values[i].name) == NULL ||
		    strstr(msg, quoted) == NULL ||
		    strstr(msg, "environment") == NULL ||
		    strstr(msg, "expected") == NULL ||
		    (bad_values[i].detail &&
		     strstr(msg, bad_values[i].detail) == NULL))
			fail_msg("%s=%s: rc %d, message '%s'",
				 bad_values[i].name, bad_values[i].value, rc,
				 msg);
		/* Nothing was applied. */
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

static void
test_config_invalid_long_and_binary(void **state)
{
	static const char *const vars[] = {
	    "NUVOM_MANIFEST_PATH", "NUVOM_SQLITE_QUEUE_PATH",
	    "NUVOM_SQLITE_RESULT_PATH", "NUVOM_DATA_DIR",
	    "NUVOM_QUEUE_BACKEND"};
	char toolong[NV_CONFIG_STR + 1];
	nv_config c;
	(void)state;
	memset(toolong, 'q', sizeof(toolong) - 1);
	toolong[sizeof(toolong) - 1] = '\0';
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		assert_int_equal(load1(&c, vars[i], toolong), NV_ECONFIG);
		assert_non_null(strstr(nv_config_error(), vars[i]));
		assert_non_null(strstr(nv_config_error(), "longer than 255"));
		/* The shown value is cut short. */
		assert_non_null(strstr(nv_config_error(), "qqqq..."));
	}
	/* Control bytes and quotes are escaped in the message. */
	assert_int_equal(load1(&c, "NUVOM_MAX_WORKERS", "1\x01\"\\"),
			 NV_ECONFIG);
	assert_non_null(strstr(nv_config_error(),
			       "NUVOM_MAX_WORKERS=\"1\\x01\\x22\\x5c\""));
}

static void
test_config_unknown_names(void **state)
{
	nv_config c, before;
	(void)state;
	nv_config_init(&before);
	assert_int_equal(load1(&c, "NUVOM_FOO", "1"), NV_ECONFIG);
	assert_non_null(
	    strstr(nv_config_error(), "unknown variable NUVOM_FOO"));
	assert_non_null(strstr(nv_config_error(), "environment"));
	assert_memory_equal(&c, &before, sizeof(c));

	assert_int_equal(load1(&c, "NUVOM_MAX_WORKER", "3"), NV_ECONFIG);
	assert_non_null(strstr(nv_config_error(), "NUVOM_MAX_WORKER "));
	assert_non_null(
	    strstr(nv_config_error(), "did you mean NUVOM_MAX_WORKERS?"));
	assert_int_equal(load1(&c, "NUVOM_", "3"), NV_ECONFIG);
	assert_non_null(strstr(nv_config_error(), "unknown variable NUVOM_ "));

	/* Not ours: other prefixes and other case are ignored. */
	nv_test_clear_env("NUVOM_");
	assert_int_equal(setenv("NUVOMX", "1", 1), 0);
	assert_int_equal(setenv("nuvom_max_workers", "zz", 1), 0);
	assert_int_equal(setenv("XNUVOM_MAX_WORKERS", "zz", 1), 0);
	nv_config_init(&c);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_memory_equal(&c, &before, sizeof(c));
	unsetenv("NUVOMX");
	unsetenv("nuvom_max_workers");
	unsetenv("XNUVOM_MAX_WORKERS");
}

/* A bad variable next to good ones: all or nothing, and the error clears
 * on the next successful call. */
static void
test_config_all_or_nothing(void **state)
{
	nv_config c, before;
	(void)state;
	nv_config_init(&c);
	assert_int_equal(setenv("NUVOM_MAX_WORKERS", "4", 1), 0);
	assert_int_equal(setenv("NUVOM_DATA_DIR", "/tmp/x", 1), 0);
	assert_int_equal(setenv("NUVOM_BATCH_SIZE", "nope", 1), 0);
	before = c;
	assert_int_equal(nv_config_from_env(&c, NULL), NV_ECONFIG);
	assert_memory_equal(&c, &before, sizeof(c));
	assert_non_null(strstr(nv_config_error(), "NUVOM_BATCH_SIZE"));
	assert_int_equal(setenv("NUVOM_BATCH_SIZE", "16", 1), 0);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_string_equal(nv_config_error(), "");
	assert_int_equal(c.workers, 4);
	assert_int_equal(c.batch_size, 16);
	assert_string_equal(c.data_dir, "/tmp/x");

	/* Reloading overrides only what is set. */
	assert_int_equal(setenv("NUVOM_DATA_DIR", "/tmp/y", 1), 0);
	unsetenv("NUVOM_MAX_WORKERS");
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_string_equal(c.data_dir, "/tmp/y");
	assert_int_equal(c.workers, 4);
}

static void *
error_thread(void *arg)
{
	nv_config c;
	(void)arg;
	nv_config_init(&c);
	/* The main thread set NUVOM_QUEUE_CAPACITY=1 before starting us. */
	assert_int_equal(nv_config_from_env(&c, NULL), NV_ECONFIG);
	assert_non_null(strstr(nv_config_error(), "NUVOM_QUEUE_CAPACITY"));
	return NULL;
}

static void
test_config_error_is_thread_local(void **state)
{
	pthread_t t;
	nv_config c;
	(void)state;
	OK1(&c, "NUVOM_MAX_WORKERS", "2");
	assert_int_equal(setenv("NUVOM_QUEUE_CAPACITY", "1", 1), 0);
	assert_int_equal(pthread_create(&t, NULL, error_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(nv_config_error(), "");
}

/* ---------------------------------------------------------- copy helper */

static void
test_config_copy_repoints(void **state)
{
	static char user_path[] = "/user/owned.db";
	nv_config c, d;
	(void)state;
	nv_config_init(&c);
	c.sqlite_queue_path = user_path;
	assert_int_equal(setenv("NUVOM_DATA_DIR", "/srv/data", 1), 0);
	assert_int_equal(setenv("NUVOM_QUEUE_BACKEND", "myq", 1), 0);
	assert_int_equal(setenv("NUVOM_MANIFEST_PATH", "/srv/m.json", 1), 0);
	assert_int_equal(setenv("NUVOM_ENVIRONMENT", "prod", 1), 0);
	assert_int_equal(nv_config_from_env(&c, NULL), 0);
	assert_true(in_strbuf(&c, c.data_dir));
	assert_true(in_strbuf(&c, c.queue_backend));
	assert_true(in_strbuf(&c, c.manifest_path));

	nv__config_copy(&d, &c);
	/* Strings read from the environment now live in d itself. */
	assert_true(in_strbuf(&d, d.data_dir));
	assert_true(in_strbuf(&d, d.queue_backend));
	assert_true(in_strbuf(&d, d.manifest_path));
	assert_ptr_equal(d.data_dir - (const char *)d.nv__strbuf,
			 c.data_dir - (const char *)c.nv__strbuf);
	/* Literals and the caller's own strings are shared as they are. */
	assert_ptr_equal(d.result_backend, c.result_backend);
	assert_ptr_equal(d.environment, c.environment);
	assert_ptr_equal(d.sqlite_queue_path, user_path);
	assert_null(d.sqlite_result_path);

	/* The copy survives the source being wiped. */
	memset(&c, 0xEE, sizeof(c));
	assert_string_equal(d.data_dir, "/srv/data");
	assert_string_equal(d.queue_backend, "myq");
	assert_string_equal(d.manifest_path, "/srv/m.json");
	assert_string_equal(d.environment, "prod");
	assert_string_equal(d.result_backend, "memory");
	assert_int_equal(d.workers, 0);

	/* Self-copy is a no-op; copying a copy works the same. */
	nv__config_copy(&d, &d);
	assert_string_equal(d.data_dir, "/srv/data");
	nv__config_copy(&c, &d);
	memset(&d, 0, sizeof(d));
	assert_string_equal(c.data_dir, "/srv/data");
	assert_true(in_strbuf(&c, c.manifest_path));
}

/* ------------------------------------------------------ other helpers */

static void
test_config_paths(void **state)
{
	nv_config c;
	char buf[64];
	(void)state;
	nv_config_init(&c);
	assert_int_equal(
	    nv__config_path(&c, NV__CFG_MANIFEST, buf, sizeof(buf)), 0);
	assert_string_equal(buf, ".nuvom/manifest.json");
	assert_int_equal(
	    nv__config_path(&c, NV__CFG_SQLITE_QUEUE, buf, sizeof(buf)), 0);
	assert_string_equal(buf, ".nuvom/queue.db");
	assert_int_equal(
	    nv__config_path(&c, NV__CFG_SQLITE_RESULT, buf, sizeof(buf)), 0);
	assert_string_equal(buf, ".nuvom/results.db");
	c.data_dir = "/srv/q/";
	assert_int_equal(
	    nv__config_path(&c, NV__CFG_SQLITE_QUEUE, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/srv/q/queue.db");
	c.sqlite_result_path = "/elsewhere/r.db";
	assert_int_equal(
	    nv__config_path(&c, NV__CFG_SQLITE_RESULT, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/elsewhere/r.db");
	assert_int_equal(nv__config_path(&c, NV__CFG_MANIFEST, buf, 8),
			 NV_EINVAL);
	assert_int_equal(nv__config_path(&c, (nv__cfg_path)7, buf, sizeof(buf)),
			 NV_EINVAL);
}

/* describe -> environment -> load gives back the same settings. */
static void
test_config_describe_round_trip(void **state)
{
	nv_config a, b;
	const char *name;
	char val[NV_CONFIG_STR + 32], val2[NV_CONFIG_STR + 32];
	size_t i, n = 0;
	(void)state;

	nv_config_init(&a);
	for (i = 0; nv__config_describe(&a, i, &name, val, sizeof(val)); i++) {
		if (strcmp(name, "NUVOM_JOB_TIMEOUT_SECS") == 0)
			assert_string_equal(val, "30");
		if (strcmp(name, "NUVOM_RETRY_DELAY_SECS") == 0)
			assert_string_equal(val, "1");
		if (strcmp(name, "NUVOM_MAX_EXTRA_WORKERS") == 0)
			assert_string_equal(val, "auto");
		if (strcmp(name, "NUVOM_MANIFEST_PATH") == 0)
			assert_string_equal(val, ".nuvom/manifest.json");
		if (strcmp(name, "NUVOM_LOG_LEVEL") == 0)
			assert_string_equal(val, "WARNING");
		if (strcmp(name, "NUVOM_PERSIST_BACKLOG") == 0)
			assert_string_equal(val, "262144");
	}
	assert_int_equal(i, 23); /* every variable of the docs table */

	assert_int_equal(setenv("NUVOM_JOB_TIMEOUT_SECS", "2.05", 1), 0);
	assert_int_equal(setenv("NUVOM_RETRY_DELAY_SECS", "0", 1), 0);
	assert_int_equal(setenv("NUVOM_RESULT_BACKEND", "plug.x", 1), 0);
	assert_int_equal(setenv("NUVOM_PIN_WORKERS", "on", 1), 0);
	assert_int_equal(setenv("NUVOM_MAX_EXTRA_WORKERS", "5", 1), 0);
	assert_int_equal(setenv("NUVOM_TIMEOUT_POLICY", "ignore", 1), 0);
	assert_int_equal(setenv("NUVOM_FSYNC", "off", 1), 0);
	assert_int_equal(nv_config_from_env(&a, NULL), 0);

	nv_test_clear_env("NUVOM_");
	for (i = 0; nv__config_describe(&a, i, &name, val, sizeof(val)); i++)
		assert_int_equal(setenv(name, val, 1), 0);
	nv_config_init(&b);
	assert_int_equal(nv_config_from_env(&b, NULL), 0);
	for (i = 0; nv__config_describe(&a, i, &name, val, sizeof(val)); i++) {
		const char *name2;
		assert_true(
		    nv__config_describe(&b, i, &name2, val2, sizeof(val2)));
		assert_string_equal(name, name2);
		assert_string_equal(val, val2);
		if (strcmp(name, "NUVOM_JOB_TIMEOUT_SECS") == 0) {
			assert_string_equal(val, "2.05");
			n++;
		}
	}
	assert_int_equal(n, 1);
	assert_int_equal(b.job_timeout_ms, 2050);
	assert_true(b.pin_workers);
	assert_int_equal(b.max_extra_workers, 5);
	assert_int_equal(b.timeout_policy, NV_TIMEOUT_IGNORE);
	assert_int_equal(b.fsync, NV_FSYNC_OFF);
	assert_string_equal(b.result_backend, "plug.x");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nv_test_env_reset, nv_test_env_reset)
	const struct CMUnitTest tests[] = {
	    T(test_config_defaults),
	    T(test_config_valid_numbers),
	    T(test_config_valid_seconds),
	    T(test_config_valid_words),
	    T(test_config_valid_strings),
	    T(test_config_invalid_values),
	    T(test_config_invalid_long_and_binary),
	    T(test_config_unknown_names),
	    T(test_config_all_or_nothing),
	    T(test_config_error_is_thread_local),
	    T(test_config_copy_repoints),
	    T(test_config_paths),
	    T(test_config_describe_round_trip),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
