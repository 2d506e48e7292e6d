/* ctest: labels=unit;concurrency timeout=120 */
/*
 * tests/test_engine_persist_errors.c - error paths of the engine with a
 * persistent backend ("file" and "sqlite"): nv_flush codes, stores that
 * cannot be opened (a clear code and a message naming the file), bad
 * backend names, and a store whose disk fills up at runtime.
 *
 * The full disk is real: a 256 KiB tmpfs mounted on the data directory
 * (the tests run as root in CI); where mount is refused the case is
 * skipped with a message.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_persist.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_engine_persist_flush_codes),
	    BOTH(test_engine_persist_open_errors),
	    BOTH(test_engine_persist_disk_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
