/*
 * persistence/sqlite_schema.h - internal interface of the SQLite store:
 * the on-disk schema (tables, version, migrations), open-time checks and
 * helpers, and a test hook.
 *
 * Only persistence/sqlite_store.c and its tests include this header.
 */
#ifndef NV_PERSIST_SQLITE_SCHEMA_H
#define NV_PERSIST_SQLITE_SCHEMA_H

#include <sqlite3.h>
#include <stdint.h>

#include "persistence/store.h"

/* The schema version this code writes and understands. Bump it together
 * with a new entry at the end of the migration list in sqlite_schema.c
 * (see the workflow there). */
#define NV_SQLITE_SCHEMA_VERSION 1

/* `PRAGMA application_id` of a nuvom store ("nvum"), so that `file(1)` and
 * the open check can tell a nuvom store from another SQLite database. */
#define NV_SQLITE_APP_ID 0x6e76756d

/* Job status values in jobs.status: the same numbers as nv_status. */
#define NV_SQLITE_PENDING 0
#define NV_SQLITE_RUNNING 1
#define NV_SQLITE_SUCCESS 2
#define NV_SQLITE_FAILED 3

/* Brings the database behind db to NV_SQLITE_SCHEMA_VERSION: reads the
 * version from the meta table (0 when the file is empty), then applies the
 * missing migrations in order inside one IMMEDIATE transaction. Fails,
 * logging a message that names `path`, when the file is a foreign SQLite
 * database or its version is newer than this code knows.
 * Caller: the thread that owns db. Returns 0, NV_EIO or NV_ECORRUPT. */
int nv__sqlite_schema_migrate(sqlite3 *db, const char *path);

/* Reads the schema version of db into *version (0: no nuvom schema).
 * Returns 0 or a negative NV_E* code. */
int nv__sqlite_schema_version(sqlite3 *db, int64_t *version);

/* Maps an SQLite result code to NV_E* (NV_ECORRUPT for a damaged file,
 * NV_ENOMEM, otherwise NV_EIO). */
int nv__sqlite_err(int rc);

/* Logs "sqlite store <path>: <what>: <sqlite message>" and returns the
 * NV_E* code of rc. */
int nv__sqlite_fail(sqlite3 *db, const char *path, const char *what, int rc);

/* Runs a query yielding one integer (*out = 0 without a row); returns an
 * SQLite result code. */
int nv__sqlite_query_int(sqlite3 *db, const char *sql, int64_t *out);

/* Open-time helpers; each logs a message naming path and returns 0 or a
 * negative NV_E* code. mkdir -p of path's directory; fsync of that
 * directory; PRAGMA quick_check (NV_ECORRUPT on damage, a bad header or
 * a file that is not a database); a PRAGMA whose first result must equal
 * expect when expect is not NULL. */
int nv__sqlite_make_parents(const char *path);
int nv__sqlite_sync_parent(const char *path);
int nv__sqlite_check(sqlite3 *db, const char *path);
int nv__sqlite_pragma(sqlite3 *db, const char *path, const char *sql,
		      const char *expect);

/* Test hook: the connection of an open SQLite store (owned by the store;
 * use it only from the thread that owns the store). */
sqlite3 *nv__sqlite_store_db(nv_store *s);

#endif
