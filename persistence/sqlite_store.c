/*
 * persistence/sqlite_store.c - the SQLite store ("sqlite").
 *
 * What it does. The store keeps the *folded* state of the record stream in
 * an SQLite database in WAL mode: each record updates the row of its job
 * or schedule in place (an upsert for JOB_ENQUEUED / SCHED_ADDED, an
 * UPDATE by primary key for the others; the layout is in sqlite_schema.c).
 * One write() call is one IMMEDIATE transaction, so a batch from the
 * persister is one group commit and readers in other processes see whole
 * batches or nothing. replay() does not return the original stream: it
 * synthesizes, per job in id order, the records that rebuild the folded
 * state (the same stream the file store's compaction produces), so the
 * engine recovers the same way from both stores:
 *
 *   JOB_ENQUEUED   task, args, attempt = attempts already started (a job
 *                  RUNNING at a crash counts that attempt), time = created
 *   JOB_SUCCEEDED  result, time = finished          when SUCCESS
 *   JOB_FAILED     error, time = finished           when FAILED
 *   JOB_RETRY      error, time = due                when a retry is pending
 *   SCHED_ADDED    task, args, aux = spec, time = next fire (not cancelled)
 *   SCHED_FIRED    time = last fire                 when it has fired
 *
 * Durability per conf->fsync (docs/sqlite-store.md has the details):
 * ALWAYS sets synchronous=FULL, so each COMMIT fsyncs the WAL and sync() has
 * nothing left to do; BATCH sets synchronous=NORMAL (COMMIT does not fsync)
 * and sync() fsyncs the WAL file itself, which makes every committed batch
 * durable; OFF sets synchronous=OFF and sync() does nothing.
 *
 * Threads. One instance owns one connection (opened NOMUTEX). The engine
 * opens and replays before the persister starts; afterwards the persister
 * thread is the only caller of write/sync/maintain/close, so the instance
 * needs no lock. Other instances, in this or other processes, may open the
 * same file: WAL lets readers run beside the writer, and a busy timeout
 * makes a writer wait for another writer's transaction instead of failing.
 *
 * Invariants.
 *  - Every sqlite call's result is checked. Once a write, commit, sync or
 *    checkpoint fails the store is failed: the transaction is rolled back,
 *    the error is logged once (naming the file), stats.failed = NV_EIO and
 *    every later write/sync/maintain returns NV_EIO - never a false success.
 *  - max_job/max_sched only grow, are stored in the meta table inside the
 *    same transaction as the rows, and are published in memory only after
 *    the COMMIT succeeded; retention never lowers them.
 *  - Record pointers handed to replay's callback borrow sqlite's column
 *    memory and are valid during that callback only.
 */
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/log.h"
#include "nuvom.h"
#include "persistence/sqlite_merge.h"
#include "persistence/sqlite_schema.h"
#include "persistence/store.h"

#define BUSY_TIMEOUT_MS 10000
/* maintain() checkpoints once the WAL holds this many frames (pages); the
 * WAL hook itself checkpoints at FORCE, for owners that never call
 * maintain(). sqlite's own default autocheckpoint is 1000. */
#define WAL_CHECKPOINT_FRAMES 1000
#define WAL_FORCE_FRAMES 8000
#define JOURNAL_SIZE_LIMIT (64 * 1024 * 1024)
/* Retention deletes at most this many rows per maintain() call, so that
 * one call never holds the write lock long. */
#define TRIM_CHUNK 10000

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_BEGIN_READ,
	ST_ENQ,
	ST_START,
	ST_SUCC,
	ST_FAIL,
	ST_RETRY,
	ST_SADD,
	ST_SCANCEL,
	ST_SFIRE,
	ST_META_SET,
	ST_SEL_JOBS,
	ST_SEL_SCHED,
	ST_TRIM,
	ST_COUNT_FIN,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_BEGIN_READ] = "BEGIN",
    /* A whole row: ENQUEUED alone (status 0, updated = created, the rest
     * NULL) or with the job's later records of the batch folded in
     * (sqlite_merge.h). */
    [ST_ENQ] = "INSERT INTO jobs(id, task, args, status, attempts,"
	       " created_ms, updated_ms, due_ms, result, error)"
	       " VALUES(?1, ?2, ?3, ?6, ?4, ?5, ?7, ?8, ?9, ?10)"
	       " ON CONFLICT(id) DO UPDATE SET task = excluded.task,"
	       " args = excluded.args, status = excluded.status,"
	       " attempts = excluded.attempts,"
	       " created_ms = excluded.created_ms,"
	       " updated_ms = excluded.updated_ms,"
	       " due_ms = excluded.due_ms, result = excluded.result,"
	       " error = excluded.error",
    [ST_START] = "UPDATE jobs SET status = 1, attempts = ?2,"
		 " updated_ms = ?3, due_ms = NULL WHERE id = ?1",
    [ST_SUCC] = "UPDATE jobs SET status = 2,"
		" attempts = max(attempts, ?2), updated_ms = ?3,"
		" due_ms = NULL, result = ?4, error = NULL WHERE id = ?1",
    [ST_FAIL] = "UPDATE jobs SET status = 3,"
		" attempts = max(attempts, ?2), updated_ms = ?3,"
		" due_ms = NULL, result = NULL, error = ?4 WHERE id = ?1",
    [ST_RETRY] = "UPDATE jobs SET status = 0,"
		 " attempts = max(attempts, ?2), due_ms = ?3,"
		 " result = NULL, error = ?4 WHERE id = ?1",
    [ST_SADD] = "INSERT INTO schedules(id, task, args, spec, next_ms,"
		" fired_ms, cancelled, updated_ms)"
		" VALUES(?1, ?2, ?3, ?4, ?5, NULL, 0, ?5)"
		" ON CONFLICT(id) DO UPDATE SET task = excluded.task,"
		" args = excluded.args, spec = excluded.spec,"
		" next_ms = excluded.next_ms, fired_ms = NULL,"
		" cancelled = 0, updated_ms = excluded.updated_ms",
    [ST_SCANCEL] = "UPDATE schedules SET cancelled = 1, updated_ms = ?2"
		   " WHERE id = ?1",
    [ST_SFIRE] = "UPDATE schedules SET fired_ms = ?2, updated_ms = ?2"
		 " WHERE id = ?1",
    [ST_META_SET] = "UPDATE meta SET value = max(value, ?2) WHERE key = ?1",
    [ST_SEL_JOBS] = "SELECT id, task, args, status, attempts, created_ms,"
		    " updated_ms, due_ms, result, error FROM jobs"
		    " ORDER BY id",
    [ST_SEL_SCHED] = "SELECT id, task, args, spec, next_ms, fired_ms"
		     " FROM schedules WHERE cancelled = 0 ORDER BY id",
    [ST_TRIM] = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
		" WHERE status IN (2, 3) ORDER BY id LIMIT ?1)",
    [ST_COUNT_FIN] = "SELECT count(*) FROM jobs WHERE status IN (2, 3)",
};

typedef struct sq_store {
	nv_store base; /* first: the ops pointer */
	sqlite3 *db;
	char *path;
	nv_fsync_policy fsync;
	uint64_t retain;   /* conf->retain_finished; 0 = keep all */
	uint64_t finished; /* finished rows (over-estimate; recounted) */
	uint64_t max_job, max_sched; /* committed maxima */
	int wal_frames; /* frames in the WAL after the last commit */
	int failed;	/* 0 or NV_EIO */
	nv_store_stats stats;
	sqlite3_stmt *st[ST_COUNT];
	struct sqm_plan plan; /* the row fold of the current batch */
} sq_store;

/* ------------------------------------------------------------ helpers */

/* Steps a statement that returns no row and resets it. */
static int
run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Binds text or bytes; an empty value binds NULL (or '' for NOT NULL
 * columns when notnull). SQLITE_STATIC: the caller's record outlives the
 * step (bindings are never used after write() returns). */
static int
bind_bytes(sqlite3_stmt *st, int i, const void *p, uint32_t len, bool text,
	   bool notnull)
{
	if (len == 0 || p == NULL) {
		if (notnull)
			return sqlite3_bind_text(st, i, "", 0, SQLITE_STATIC);
		return sqlite3_bind_null(st, i);
	}
	if (text)
		return sqlite3_bind_text64(st, i, p, len, SQLITE_STATIC,
					   SQLITE_UTF8);
	return sqlite3_bind_blob64(st, i, p, len, SQLITE_STATIC);
}

/* Puts the store in the failed state (logged once) and returns NV_EIO. */
static int
set_failed(sq_store *s, const char *what, int rc)
{
	if (!s->failed) {
		nv__err("sqlite store %s: %s failed: %s (%s); store is now "
			"failed, later writes return EIO",
			s->path, what, sqlite3_errmsg(s->db),
			sqlite3_errstr(rc));
		s->failed = NV_EIO;
		s->stats.failed = NV_EIO;
	}
	return s->failed;
}

static void
rollback(sq_store *s)
{
	/* After SQLITE_FULL/IOERR sqlite may already have rolled back. */
	if (!sqlite3_get_autocommit(s->db))
		(void)run(s->st[ST_ROLLBACK]);
}

/* Records the WAL size after each commit; checkpoints from here only when
 * the owner lets the WAL grow far (maintain() normally does it between
 * batches, off the commit path). Runs on the committing thread. */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int nframes)
{
	sq_store *s = arg;

	s->wal_frames = nframes;
	if (nframes >= WAL_FORCE_FRAMES) {
		/* Like sqlite's autocheckpoint: a busy reader only delays it.
		 */
		(void)sqlite3_wal_checkpoint_v2(
		    db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		s->wal_frames = 0;
	}
	return SQLITE_OK;
}

/* ------------------------------------------------------------ methods */

static void sq_close(nv_store *base);

static int
sq_open(nv_store **out, const nv_store_conf *conf)
{
	static const char *const sync_sql[] = {
	    [NV_FSYNC_BATCH] = "PRAGMA synchronous = NORMAL",
	    [NV_FSYNC_ALWAYS] = "PRAGMA synchronous = FULL",
	    [NV_FSYNC_OFF] = "PRAGMA synchronous = OFF",
	};
	char sql[64];
	struct stat sb;
	sq_store *s;
	bool created;
	int64_t v1, v2;
	int rc, err;

	if (!out || !conf || !conf->path || !conf->path[0] ||
	    (unsigned)conf->fsync > NV_FSYNC_OFF)
		return NV_EINVAL;
	s = nv__calloc(1, sizeof(*s));
	if (!s)
		return NV_ENOMEM;
	s->base.ops = &nv__sqlite_store_ops;
	s->fsync = conf->fsync;
	s->retain = conf->retain_finished;
	s->path = nv__strdup(conf->path);
	if (!s->path) {
		err = NV_ENOMEM;
		goto fail;
	}
	if ((err = nv__sqlite_make_parents(s->path)) != 0)
		goto fail;
	created = stat(s->path, &sb) != 0;
	if (!created && !S_ISREG(sb.st_mode)) {
		nv__err("sqlite store %s: not a regular file", s->path);
		err = NV_EIO;
		goto fail;
	}
	rc = sqlite3_open_v2(s->path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		err = nv__sqlite_fail(s->db, s->path, "cannot open", rc);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	if ((rc = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS)) != SQLITE_OK) {
		err = nv__sqlite_fail(s->db, s->path, "busy timeout", rc);
		goto fail;
	}
	if (sqlite3_db_readonly(s->db, "main") != 0) {
		nv__err("sqlite store %s: opened read-only (permissions?)",
			s->path);
		err = NV_EIO;
		goto fail;
	}
	/* The first read: a foreign file or a bad header fails here. */
	if ((err = nv__sqlite_check(s->db, s->path)) != 0 ||
	    (err = nv__sqlite_pragma(
		 s->db, s->path, "PRAGMA journal_mode = WAL", "wal")) != 0 ||
	    (err = nv__sqlite_pragma(s->db, s->path, sync_sql[s->fsync],
				     NULL)) != 0)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %d",
		 JOURNAL_SIZE_LIMIT);
	if ((err = nv__sqlite_pragma(s->db, s->path, sql, NULL)) != 0)
		goto fail;
	if ((err = nv__sqlite_schema_migrate(s->db, s->path)) != 0)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT, &s->st[i],
					NULL);
		if (rc != SQLITE_OK) {
			err = nv__sqlite_fail(s->db, s->path,
					      "preparing statements", rc);
			goto fail;
		}
	}
	/* max(meta, max(id)): ids never repeat even if meta lagged. */
	if ((rc = nv__sqlite_query_int(
		 s->db, "SELECT value FROM meta WHERE key='max_job_id'",
		 &v1)) != SQLITE_OK ||
	    (rc = nv__sqlite_query_int(s->db,
				       "SELECT coalesce(max(id), 0) FROM jobs",
				       &v2)) != SQLITE_OK) {
		err = nv__sqlite_fail(s->db, s->path, "reading max job id", rc);
		goto fail;
	}
	s->max_job = (uint64_t)(v1 > v2 ? v1 : v2);
	if ((rc = nv__sqlite_query_int(
		 s->db, "SELECT value FROM meta WHERE key='max_sched_id'",
		 &v1)) != SQLITE_OK ||
	    (rc = nv__sqlite_query_int(
		 s->db, "SELECT coalesce(max(id), 0) FROM schedules", &v2)) !=
		SQLITE_OK) {
		err = nv__sqlite_fail(s->db, s->path, "reading max schedule id",
				      rc);
		goto fail;
	}
	s->max_sched = (uint64_t)(v1 > v2 ? v1 : v2);
	if (s->retain) {
		rc = sqlite3_step(s->st[ST_COUNT_FIN]);
		v1 = sqlite3_column_int64(s->st[ST_COUNT_FIN], 0);
		sqlite3_reset(s->st[ST_COUNT_FIN]);
		if (rc != SQLITE_ROW) {
			err = nv__sqlite_fail(s->db, s->path,
					      "counting finished jobs", rc);
			goto fail;
		}
		s->finished = (uint64_t)v1;
	}
	if (created && (err = nv__sqlite_sync_parent(s->path)) != 0)
		goto fail;
	sqlite3_wal_hook(s->db, wal_hook, s);
	*out = &s->base;
	return 0;
fail:
	sq_close(&s->base);
	return err;
}

static void
sq_close(nv_store *base)
{
	sq_store *s = (sq_store *)base;
	int rc;

	if (!s)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	if (s->db) {
		/* The last connection checkpoints and removes the WAL here. */
		rc = sqlite3_close(s->db);
		if (rc != SQLITE_OK)
			nv__err("sqlite store %s: close: %s", s->path,
				sqlite3_errstr(rc));
	}
	nv__sqm_free(&s->plan);
	nv__free(s->path);
	nv__free(s);
}

/* Applies one record inside the open transaction (an ENQUEUED with the
 * folded row w when not NULL); SQLite result code. */
static int
apply(sq_store *s, const nv_rec *r, const struct sqm_row *w, uint64_t *max_job,
      uint64_t *max_sched)
{
	sqlite3_stmt *st;
	sqlite3_int64 id = (sqlite3_int64)r->id;
	int rc = SQLITE_OK;

	switch (r->type) {
	case NV_REC_JOB_ENQUEUED:
		st = s->st[ST_ENQ];
		rc = bind_bytes(st, 2, r->task, r->task_len, true, true);
		if (rc == SQLITE_OK)
			rc = bind_bytes(st, 3, r->data, r->data_len, false,
					false);
		if (rc == SQLITE_OK)
			rc = nv__sqm_bind(st, r, w);
		if (rc == SQLITE_OK && w != NULL)
			s->finished += w->finals;
		break;
	case NV_REC_JOB_STARTED:
		st = s->st[ST_START];
		rc = sqlite3_bind_int64(st, 2, r->attempt);
		break;
	case NV_REC_JOB_SUCCEEDED:
	case NV_REC_JOB_FAILED:
	case NV_REC_JOB_RETRY:
		st = s->st[r->type == NV_REC_JOB_SUCCEEDED ? ST_SUCC
			   : r->type == NV_REC_JOB_FAILED  ? ST_FAIL
							   : ST_RETRY];
		rc = sqlite3_bind_int64(st, 2, r->attempt);
		if (rc == SQLITE_OK)
			rc = bind_bytes(st, 4, r->data, r->data_len,
					r->type != NV_REC_JOB_SUCCEEDED, false);
		if (rc == SQLITE_OK && r->type != NV_REC_JOB_RETRY)
			s->finished++;
		break;
	case NV_REC_SCHED_ADDED:
		st = s->st[ST_SADD];
		rc = bind_bytes(st, 2, r->task, r->task_len, true, true);
		if (rc == SQLITE_OK)
			rc = bind_bytes(st, 3, r->data, r->data_len, false,
					false);
		if (rc == SQLITE_OK)
			rc =
			    bind_bytes(st, 4, r->aux, r->aux_len, false, false);
		break;
	case NV_REC_SCHED_CANCELLED:
		st = s->st[ST_SCANCEL];
		break;
	default: /* NV_REC_SCHED_FIRED (types were checked by write) */
		st = s->st[ST_SFIRE];
		break;
	}
	if (rc != SQLITE_OK)
		return rc;
	if (r->type >= NV_REC_SCHED_ADDED) {
		if (r->id > *max_sched)
			*max_sched = r->id;
		/* Time is ?5 in the insert, ?2 in the updates. */
		rc = sqlite3_bind_int64(
		    st, r->type == NV_REC_SCHED_ADDED ? 5 : 2, r->time_ms);
	} else {
		if (r->id > *max_job)
			*max_job = r->id;
		rc = sqlite3_bind_int64(
		    st, r->type == NV_REC_JOB_ENQUEUED ? 5 : 3, r->time_ms);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 1, id);
	if (rc == SQLITE_OK)
		rc = run(st);
	return rc;
}

/* Stores a grown max id in meta (inside the open transaction). */
static int
meta_set(sq_store *s, const char *key, uint64_t v)
{
	sqlite3_stmt *st = s->st[ST_META_SET];
	int rc;

	rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)v);
	return rc == SQLITE_OK ? run(st) : rc;
}

static int
sq_write(nv_store *base, const nv_rec *recs, size_t n)
{
	sq_store *s = (sq_store *)base;
	uint64_t max_job = s->max_job, max_sched = s->max_sched, bytes = 0;
	uint32_t limit;
	int rc;

	if (s->failed)
		return s->failed;
	if (n == 0)
		return 0;
	if (!recs)
		return NV_EINVAL;
	/* Bad input is refused whole, before the transaction, and does not
	 * fail the store. */
	limit = (uint32_t)sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1);
	for (size_t i = 0; i < n; i++) {
		const nv_rec *r = &recs[i];

		if (r->type < NV_REC_JOB_ENQUEUED ||
		    r->type > NV_REC_TYPE_MAX || r->id == 0 ||
		    r->id > INT64_MAX) {
			nv__err("sqlite store %s: bad record (type %u, id "
				"%llu) refused",
				s->path, r->type, (unsigned long long)r->id);
			return NV_EINVAL;
		}
		if (r->task_len > limit || r->data_len > limit ||
		    r->aux_len > limit) {
			nv__err("sqlite store %s: record of id %llu over the "
				"SQLite length limit (%u bytes) refused",
				s->path, (unsigned long long)r->id, limit);
			return NV_E2BIG;
		}
		bytes += (uint64_t)r->task_len + r->data_len + r->aux_len;
	}
	/* Without memory for the plan, every record is applied as is. */
	bool planned = nv__sqm_plan(&s->plan, recs, n) == 0;
	rc = run(s->st[ST_BEGIN]);
	if (rc != SQLITE_OK)
		return set_failed(s, "begin", rc);
	for (size_t i = 0; i < n; i++) {
		int32_t act = planned ? s->plan.act[i] : SQM_APPLY;
		if (act == SQM_SKIP)
			continue; /* folded into its job's row */
		rc = apply(s, &recs[i], act >= 0 ? &s->plan.rows[act] : NULL,
			   &max_job, &max_sched);
		if (rc != SQLITE_OK) {
			set_failed(s, "write", rc);
			rollback(s);
			return s->failed;
		}
	}
	if (max_job > s->max_job)
		rc = meta_set(s, "max_job_id", max_job);
	if (rc == SQLITE_OK && max_sched > s->max_sched)
		rc = meta_set(s, "max_sched_id", max_sched);
	if (rc == SQLITE_OK)
		rc = run(s->st[ST_COMMIT]);
	if (rc != SQLITE_OK) {
		set_failed(s, "commit", rc);
		rollback(s);
		return s->failed;
	}
	s->max_job = max_job;
	s->max_sched = max_sched;
	s->stats.records += n;
	s->stats.bytes += bytes;
	s->stats.batches++;
	return 0;
}

static int
sq_sync(nv_store *base)
{
	sq_store *s = (sq_store *)base;
	sqlite3_file *wal = NULL;
	int rc;

	if (s->failed)
		return s->failed;
	if (s->fsync == NV_FSYNC_BATCH) {
		/* synchronous=NORMAL commits do not fsync the WAL; do it now.
		 * No transaction is open (write() always ends its own), so
		 * the WAL holds only whole committed batches. */
		rc = sqlite3_file_control(s->db, "main",
					  SQLITE_FCNTL_JOURNAL_POINTER, &wal);
		if (rc == SQLITE_OK && wal && wal->pMethods)
			rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
		if (rc != SQLITE_OK)
			return set_failed(s, "sync of the WAL", rc);
	}
	/* ALWAYS: COMMIT already fsynced the WAL (synchronous=FULL).
	 * OFF: left to the OS by choice. */
	s->stats.syncs++;
	return 0;
}

/* Deletes the oldest finished jobs beyond conf->retain_finished. */
static int
trim(sq_store *s)
{
	sqlite3_stmt *st = s->st[ST_COUNT_FIN];
	int64_t count, del;
	int rc;

	rc = sqlite3_step(st);
	count = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return set_failed(s, "counting finished jobs", rc);
	s->finished = (uint64_t)count;
	if ((uint64_t)count <= s->retain)
		return 0;
	del = count - (int64_t)s->retain;
	if (del > TRIM_CHUNK)
		del = TRIM_CHUNK;
	st = s->st[ST_TRIM];
	rc = run(s->st[ST_BEGIN]);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 1, del);
	if (rc == SQLITE_OK)
		rc = run(st);
	del = rc == SQLITE_OK ? sqlite3_changes(s->db) : 0;
	if (rc == SQLITE_OK)
		rc = run(s->st[ST_COMMIT]);
	if (rc != SQLITE_OK) {
		set_failed(s, "retention delete", rc);
		rollback(s);
		return s->failed;
	}
	s->finished -= (uint64_t)del;
	s->stats.compactions++;
	return 0;
}

static int
sq_maintain(nv_store *base)
{
	sq_store *s = (sq_store *)base;
	int rc;

	if (s->failed)
		return s->failed;
	/* Recount only when the estimate passes the limit by some slack, so
	 * that a steady state costs no query per batch. */
	if (s->retain && s->finished > s->retain + s->retain / 8 + 64) {
		if ((rc = trim(s)) != 0)
			return rc;
	}
	if (s->wal_frames >= WAL_CHECKPOINT_FRAMES) {
		rc = sqlite3_wal_checkpoint_v2(
		    s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		/* BUSY: another connection is checkpointing; fine. */
		if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
			return set_failed(s, "checkpoint", rc);
		s->wal_frames = 0;
	}
	return 0;
}

/* Emits the records of the current jobs row; fn's non-zero value, or
 * NV_ECORRUPT for a damaged row. */
static int
emit_job(sq_store *s, sqlite3_stmt *st, uint64_t *seq, nv_rec_fn fn, void *arg)
{
	nv_rec r = {0};
	int status = sqlite3_column_int(st, 3);
	int ret;

	r.seq = ++*seq;
	r.type = NV_REC_JOB_ENQUEUED;
	r.id = (uint64_t)sqlite3_column_int64(st, 0);
	r.attempt = (uint32_t)sqlite3_column_int64(st, 4);
	r.time_ms = sqlite3_column_int64(st, 5);
	r.task = (const char *)sqlite3_column_text(st, 1);
	r.task_len = (uint32_t)sqlite3_column_bytes(st, 1);
	r.data = sqlite3_column_blob(st, 2);
	r.data_len = (uint32_t)sqlite3_column_bytes(st, 2);
	if (status < NV_SQLITE_PENDING || status > NV_SQLITE_FAILED ||
	    !r.task) {
		nv__err("sqlite store %s: job %llu: bad row (status %d)",
			s->path, (unsigned long long)r.id, status);
		return NV_ECORRUPT;
	}
	if ((ret = fn(&r, arg)) != 0)
		return ret;
	r.task = NULL;
	r.task_len = 0;
	r.seq = ++*seq;
	switch (status) {
	case NV_SQLITE_SUCCESS:
		r.type = NV_REC_JOB_SUCCEEDED;
		r.time_ms = sqlite3_column_int64(st, 6);
		r.data = sqlite3_column_blob(st, 8);
		r.data_len = (uint32_t)sqlite3_column_bytes(st, 8);
		break;
	case NV_SQLITE_FAILED:
		r.type = NV_REC_JOB_FAILED;
		r.time_ms = sqlite3_column_int64(st, 6);
		r.data = sqlite3_column_text(st, 9);
		r.data_len = (uint32_t)sqlite3_column_bytes(st, 9);
		break;
	case NV_SQLITE_PENDING:
		if (sqlite3_column_type(st, 7) == SQLITE_NULL)
			return 0;
		r.type = NV_REC_JOB_RETRY;
		r.time_ms = sqlite3_column_int64(st, 7);
		r.data = sqlite3_column_text(st, 9);
		r.data_len = (uint32_t)sqlite3_column_bytes(st, 9);
		break;
	default: /* RUNNING: its attempt is counted in ENQUEUED's attempt */
		--*seq;
		return 0;
	}
	if (r.data_len == 0)
		r.data = NULL;
	return fn(&r, arg);
}

static int
emit_sched(sqlite3_stmt *st, uint64_t *seq, nv_rec_fn fn, void *arg)
{
	nv_rec r = {0};
	int ret;

	r.seq = ++*seq;
	r.type = NV_REC_SCHED_ADDED;
	r.id = (uint64_t)sqlite3_column_int64(st, 0);
	r.time_ms = sqlite3_column_int64(st, 4);
	r.task = (const char *)sqlite3_column_text(st, 1);
	r.task_len = (uint32_t)sqlite3_column_bytes(st, 1);
	r.data = sqlite3_column_blob(st, 2);
	r.data_len = (uint32_t)sqlite3_column_bytes(st, 2);
	r.aux = sqlite3_column_blob(st, 3);
	r.aux_len = (uint32_t)sqlite3_column_bytes(st, 3);
	if ((ret = fn(&r, arg)) != 0)
		return ret;
	if (sqlite3_column_type(st, 5) == SQLITE_NULL)
		return 0;
	memset(&r, 0, sizeof(r));
	r.seq = ++*seq;
	r.type = NV_REC_SCHED_FIRED;
	r.id = (uint64_t)sqlite3_column_int64(st, 0);
	r.time_ms = sqlite3_column_int64(st, 5);
	return fn(&r, arg);
}

static int
sq_replay(nv_store *base, nv_rec_fn fn, void *arg)
{
	sq_store *s = (sq_store *)base;
	sqlite3_stmt *jobs = s->st[ST_SEL_JOBS], *scheds = s->st[ST_SEL_SCHED];
	uint64_t seq = 0;
	int rc, ret = 0;

	if (!fn)
		return NV_EINVAL;
	/* One read transaction: jobs and schedules from the same snapshot. */
	rc = run(s->st[ST_BEGIN_READ]);
	if (rc != SQLITE_OK)
		goto fail;
	while (ret == 0 && (rc = sqlite3_step(jobs)) == SQLITE_ROW)
		ret = emit_job(s, jobs, &seq, fn, arg);
	if (ret == 0 && rc == SQLITE_DONE) {
		while (ret == 0 && (rc = sqlite3_step(scheds)) == SQLITE_ROW)
			ret = emit_sched(scheds, &seq, fn, arg);
	}
	sqlite3_reset(jobs);
	sqlite3_reset(scheds);
	if (ret == 0 && rc != SQLITE_DONE)
		goto fail;
	(void)run(s->st[ST_COMMIT]); /* ends a read transaction: cannot fail */
	return ret;
fail:
	nv__err("sqlite store %s: replay: %s (%s)", s->path,
		sqlite3_errmsg(s->db), sqlite3_errstr(rc));
	rollback(s);
	return nv__sqlite_err(rc);
}

static void
sq_stats(nv_store *base, nv_store_stats *out)
{
	*out = ((sq_store *)base)->stats;
}

static void
sq_max_ids(nv_store *base, uint64_t *job_id, uint64_t *sched_id)
{
	sq_store *s = (sq_store *)base;

	if (job_id)
		*job_id = s->max_job;
	if (sched_id)
		*sched_id = s->max_sched;
}

sqlite3 *
nv__sqlite_store_db(nv_store *s)
{
	return ((sq_store *)s)->db;
}

const nv_store_ops nv__sqlite_store_ops = {
    .version = NV_STORE_OPS_VERSION,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .replay = sq_replay,
    .write = sq_write,
    .sync = sq_sync,
    .maintain = sq_maintain,
    .stats = sq_stats,
    .max_ids = sq_max_ids,
};
