/*
 * persistence/sqlite_schema.c - the on-disk schema of the SQLite store, its
 * migrations, and the checks and helpers its open runs.
 *
 * The database holds the folded state of the record stream, not the
 * stream: one row per job and per schedule, updated in place as records
 * arrive (sqlite_store.c), plus a small key/value `meta` table:
 *
 *   meta(key, value)   schema_version  version of this layout (below)
 *                      max_job_id      largest job id ever written
 *                      max_sched_id    largest schedule id ever written
 *   jobs               id, task, args, status (nv_status numbers),
 *                      attempts (attempts started or done), created_ms,
 *                      updated_ms (last event), due_ms (retry due; NULL
 *                      unless a retry is pending), result, error
 *   schedules          id, task, args, spec (encoded schedule, opaque
 *                      here), next_ms, fired_ms (last fire), cancelled
 *
 * The max ids live in meta, not in max(id), so that ids never repeat after
 * finished rows are deleted by retention.
 *
 * Version-bump workflow (on-disk format):
 *   1. Never edit a shipped migration; append a new one to `migrations`
 *      whose SQL turns version N-1 into N (ALTER TABLE, new index, data
 *      copy), and bump NV_SQLITE_SCHEMA_VERSION to N.
 *   2. Opening runs every missing migration in order inside one IMMEDIATE
 *      transaction, then stores the new version: a crash mid-upgrade leaves
 *      the old version intact.
 *   3. A file with a version newer than NV_SQLITE_SCHEMA_VERSION is refused
 *      (an older nuvom must not write a layout it does not know).
 *   4. Add a test that opens a file of the previous version.
 *
 * Threads: called by whoever opens the store, before the store is shared.
 */
#include "persistence/sqlite_schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "nuvom.h"

/* Migration i (0-based) takes the schema from version i to version i + 1. */
static const char *const migrations[] = {
    /* 0 -> 1: the first layout. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES('max_job_id', 0),"
    " ('max_sched_id', 0);"
    "CREATE TABLE jobs("
    " id INTEGER PRIMARY KEY,"
    " task TEXT NOT NULL,"
    " args BLOB,"
    " status INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " due_ms INTEGER,"
    " result BLOB,"
    " error TEXT);"
    "CREATE INDEX jobs_status ON jobs(status, updated_ms);"
    "CREATE INDEX jobs_due ON jobs(due_ms) WHERE due_ms IS NOT NULL;"
    "CREATE TABLE schedules("
    " id INTEGER PRIMARY KEY,"
    " task TEXT NOT NULL,"
    " args BLOB,"
    " spec BLOB,"
    " next_ms INTEGER NOT NULL,"
    " fired_ms INTEGER,"
    " cancelled INTEGER NOT NULL DEFAULT 0,"
    " updated_ms INTEGER NOT NULL);",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
		   NV_SQLITE_SCHEMA_VERSION,
	       "one migration per schema version");

int
nv__sqlite_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
		return 0;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return NV_ECORRUPT;
	case SQLITE_NOMEM:
		return NV_ENOMEM;
	default:
		return NV_EIO;
	}
}

int
nv__sqlite_fail(sqlite3 *db, const char *path, const char *what, int rc)
{
	nv__err("sqlite store %s: %s: %s (%s)", path, what, sqlite3_errmsg(db),
		sqlite3_errstr(rc));
	return nv__sqlite_err(rc);
}

/* Runs a query that yields one integer; *out = 0 when it yields no row.
 * Returns an SQLite result code. */
int
nv__sqlite_query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	*out = 0;
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Version of db's schema: 0 for an empty database, -1 for a database that
 * holds tables but no nuvom meta table (someone else's file). */
static int
read_version(sqlite3 *db, int64_t *version)
{
	int64_t n;
	int rc;

	rc = nv__sqlite_query_int(db,
				  "SELECT count(*) FROM sqlite_master"
				  " WHERE type = 'table' AND name = 'meta'",
				  &n);
	if (rc != SQLITE_OK)
		return rc;
	if (n == 0) {
		rc = nv__sqlite_query_int(
		    db, "SELECT count(*) FROM sqlite_master", &n);
		*version = n == 0 ? 0 : -1;
		return rc;
	}
	rc = nv__sqlite_query_int(db,
				  "SELECT coalesce((SELECT value FROM meta"
				  " WHERE key = 'schema_version'), -1)",
				  version);
	return rc;
}

int
nv__sqlite_schema_version(sqlite3 *db, int64_t *version)
{
	int rc = read_version(db, version);

	return rc == SQLITE_OK ? 0 : nv__sqlite_err(rc);
}

/* Checks a version read from the file; logs and returns NV_EIO when this
 * code cannot use it. */
static int
check_version(const char *path, int64_t v)
{
	if (v < 0) {
		nv__err("sqlite store %s: an SQLite database but not a nuvom "
			"store (no schema_version in a meta table)",
			path);
		return NV_EIO;
	}
	if (v > NV_SQLITE_SCHEMA_VERSION) {
		nv__err("sqlite store %s: schema version %lld is newer than "
			"this nuvom supports (%d); upgrade nuvom to open it",
			path, (long long)v, NV_SQLITE_SCHEMA_VERSION);
		return NV_EIO;
	}
	return 0;
}

int
nv__sqlite_schema_migrate(sqlite3 *db, const char *path)
{
	char sql[128];
	int64_t v, app_id;
	int rc, err;

	rc = nv__sqlite_query_int(db, "PRAGMA application_id", &app_id);
	if (rc != SQLITE_OK)
		return nv__sqlite_fail(db, path, "reading the application id",
				       rc);
	if (app_id != 0 && app_id != NV_SQLITE_APP_ID) {
		nv__err("sqlite store %s: application id 0x%llx: not a nuvom "
			"store",
			path, (unsigned long long)app_id);
		return NV_EIO;
	}
	/* Common case first, without the write lock: already current. */
	rc = read_version(db, &v);
	if (rc != SQLITE_OK)
		return nv__sqlite_fail(db, path, "reading the schema version",
				       rc);
	if ((err = check_version(path, v)) != 0)
		return err;
	if (v == NV_SQLITE_SCHEMA_VERSION)
		return 0;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return nv__sqlite_fail(db, path,
				       "locking for the schema upgrade", rc);
	/* Re-read under the lock: another process may have upgraded it. */
	rc = read_version(db, &v);
	if (rc != SQLITE_OK) {
		err =
		    nv__sqlite_fail(db, path, "reading the schema version", rc);
		goto rollback;
	}
	if ((err = check_version(path, v)) != 0)
		goto rollback;
	for (; v < NV_SQLITE_SCHEMA_VERSION; v++) {
		rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			snprintf(sql, sizeof(sql), "migration to version %lld",
				 (long long)v + 1);
			err = nv__sqlite_fail(db, path, sql, rc);
			goto rollback;
		}
	}
	snprintf(sql, sizeof(sql),
		 "INSERT OR REPLACE INTO meta(key, value)"
		 " VALUES('schema_version', %d);"
		 "PRAGMA application_id = %d;",
		 NV_SQLITE_SCHEMA_VERSION, NV_SQLITE_APP_ID);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		err =
		    nv__sqlite_fail(db, path, "storing the schema version", rc);
		goto rollback;
	}
	return 0;
rollback:
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

/* ------------------------------------------------- open-time helpers */

/* Creates the missing directories above path (mkdir -p of its dirname). */
int
nv__sqlite_make_parents(const char *path)
{
	char *buf = nv__strdup(path);
	int err = 0;

	if (!buf)
		return NV_ENOMEM;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
			nv__err("sqlite store %s: cannot create directory %s: "
				"%s",
				path, buf, strerror(errno));
			err = NV_EIO;
			break;
		}
		*p = '/';
	}
	nv__free(buf);
	return err;
}

/* fsyncs the directory holding path, so a newly created database (and its
 * WAL) keeps its directory entry across a power failure. */
int
nv__sqlite_sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, rc = 0;

	if (!slash)
		dir = nv__strdup(".");
	else if (slash == path)
		dir = nv__strdup("/");
	else
		dir = nv__memdup(path, (size_t)(slash - path) + 1);
	if (!dir)
		return NV_ENOMEM;
	if (slash && slash != path)
		dir[slash - path] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		nv__err("sqlite store %s: cannot sync directory %s: %s", path,
			dir, strerror(errno));
		rc = NV_EIO;
	}
	if (fd >= 0)
		close(fd);
	nv__free(dir);
	return rc;
}

/* Runs PRAGMA quick_check: the structural check of every page. */
int
nv__sqlite_check(sqlite3 *db, const char *path)
{
	sqlite3_stmt *st;
	int rc, err = 0;

	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return nv__sqlite_fail(db, path, "integrity check", rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *res = (const char *)sqlite3_column_text(st, 0);

		if (!res || strcmp(res, "ok") != 0) {
			nv__err("sqlite store %s: integrity check failed: %s",
				path, res ? res : "(null)");
			err = NV_ECORRUPT;
		}
	} else {
		err = nv__sqlite_fail(db, path, "integrity check", rc);
	}
	sqlite3_finalize(st);
	return err;
}

int
nv__sqlite_pragma(sqlite3 *db, const char *path, const char *sql,
		  const char *expect)
{
	sqlite3_stmt *st;
	int rc, err = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return nv__sqlite_fail(db, path, sql, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && expect) {
		const char *res = (const char *)sqlite3_column_text(st, 0);

		if (!res || strcmp(res, expect) != 0) {
			nv__err("sqlite store %s: %s gave '%s', not '%s'", path,
				sql, res ? res : "(null)", expect);
			err = NV_EIO;
		}
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		err = nv__sqlite_fail(db, path, sql, rc);
	}
	sqlite3_finalize(st);
	return err;
}
