/*
 * persistence/sqlite_schema.h - internal interface of the SQLite store:
 * the on-disk schema (tables, version, migrations) and test hooks.
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

/* Test hook: the connection of an open SQLite store (owned by the store;
 * use it only from the thread that owns the store). */
sqlite3 *nv__sqlite_store_db(nv_store *s);

#endif
