/*
 * store.c - the engine's queue and result backends.
 *
 * "memory" for both keeps everything in the process: the ring is the
 * queue, the job table is the result store, nothing is written and
 * nv_flush returns at once.
 *
 * "file" or "sqlite" (for either backend) attaches one persistent store
 * behind a write-behind persister: every job event becomes a record that
 * the persister thread writes in batches (group commit). The store is
 * opened at nv_engine_open (so that ids continue after the largest stored
 * one even for jobs dispatched before start), replayed at nv_engine_start
 * (recovery.c), then the persister thread starts. With a persistent queue
 * backend unfinished jobs and schedules come back after a restart; with a
 * persistent result backend finished results are readable again. One
 * store serves both: naming two different persistent kinds is refused.
 *
 * Any other name is a plugin backend from the registry (nuvom/backend.h):
 * a plugin queue backend gets every dispatched job and a pump thread feeds
 * the ring from it; a plugin result backend gets every finished job
 * (pump.c). Built-in names keep the fast path above (docs/decisions.md).
 *
 * Where the data lives: file -> <data_dir>/log/ (segments); sqlite ->
 * NUVOM_SQLITE_QUEUE_PATH (default <data_dir>/queue.db), or the result
 * path when only the result backend is sqlite.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "engine/backend_int.h"
#include "engine/config_int.h"
#include "engine/recovery_int.h"
#include "engine/store_int.h"
#include "persistence/persister.h"

/*
 * Boot epochs keep ids unique across restarts. max_ids() only knows ids
 * that reached the disk; an id handed out for a job whose events were never
 * flushed could otherwise be handed out again after a crash. Each open of a
 * persistent engine increments a durable boot counter (a small file beside
 * the store, replaced atomically and fsynced) and ids start at
 * boot << NV__BOOT_SHIFT at least: 2^40 ids per boot, 2^24 boots.
 */

int
nv__store_next_boot(const char *store_path, uint64_t *boot)
{
	char path[4200], tmp[4300];
	unsigned long long prev = 0;
	FILE *f;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s.boot", store_path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%llu", &prev) != 1) {
			nv__err("boot counter '%s' is unreadable", path);
			fclose(f);
			return NV_ECORRUPT;
		}
		fclose(f);
	} else if (errno != ENOENT) {
		nv__err("cannot read '%s': %s", path, strerror(errno));
		return NV_EIO;
	}
	*boot = prev + 1;
	if ((f = fopen(tmp, "w")) == NULL) {
		nv__err("cannot write '%s': %s", tmp, strerror(errno));
		return NV_EIO;
	}
	if (fprintf(f, "%llu\n", (unsigned long long)*boot) < 0 ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = NV_EIO;
	if (fclose(f) != 0)
		rc = NV_EIO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = NV_EIO;
	if (rc == 0) {
		/* Make the rename durable: fsync the directory. */
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash != NULL)
			*slash = '\0';
		else
			snprintf(dir, sizeof(dir), ".");
		if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
			if (fsync(fd) != 0)
				rc = NV_EIO;
			close(fd);
		}
	}
	if (rc != 0)
		nv__err("cannot update the boot counter '%s': %s", path,
			strerror(errno));
	return rc;
}

static bool
is_memory(const char *name)
{
	return name == NULL || strcmp(name, "memory") == 0;
}

int
nv__store_location(const nv_config *cfg, const char *kind, bool queue_side,
		   char *path, size_t len)
{
	if (strcmp(kind, "file") == 0) {
		const char *dir = cfg->data_dir ? cfg->data_dir : ".nuvom";
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			nv__err("cannot create data dir '%s': %s", dir,
				strerror(errno));
			return NV_EIO;
		}
		if ((size_t)snprintf(path, len, "%s/log", dir) >= len)
			return NV_EINVAL;
		return 0;
	}
	/* One store per engine: with a sqlite queue it is the queue db. */
	bool q = queue_side || (cfg->queue_backend != NULL &&
				strcmp(cfg->queue_backend, "sqlite") == 0);
	return nv__config_path(
	    cfg, q ? NV__CFG_SQLITE_QUEUE : NV__CFG_SQLITE_RESULT, path, len);
}

static bool
is_store(const char *name)
{
	return strcmp(name, "file") == 0 || strcmp(name, "sqlite") == 0;
}

/* Opens the plugin backends (q / r not NULL) through the registry. */
static int
open_plugins(nv_engine *e, const char *q, const char *r)
{
	nv_backend_conf bc = {&e->cfg, NULL};
	char names[512];
	int rc;

	if (q != NULL) {
		if (nv_queue_backend_find(q) == NULL) {
			nv_queue_backend_names(names, sizeof(names));
			nv__err("unknown queue backend '%s' (registered: %s)",
				q, names);
			return NV_EINVAL;
		}
		if ((rc = nv_queue_open(q, &bc, &e->qbe)) != 0) {
			nv__err("queue backend '%s' failed to open: %s", q,
				nv_strerror(rc));
			return rc;
		}
		if ((rc = nv__pump_create(e)) != 0)
			return rc;
	}
	if (r != NULL) {
		if (nv_results_backend_find(r) == NULL) {
			nv_results_backend_names(names, sizeof(names));
			nv__err("unknown result backend '%s' (registered: %s)",
				r, names);
			return NV_EINVAL;
		}
		if ((rc = nv_results_open(r, &bc, &e->rbe)) != 0) {
			nv__err("result backend '%s' failed to open: %s", r,
				nv_strerror(rc));
			return rc;
		}
	}
	return 0;
}

int
nv__store_open(nv_engine *e)
{
	const char *q = e->cfg.queue_backend, *r = e->cfg.result_backend;
	const char *kind;
	const nv_store_ops *ops;
	nv_store_conf sc;
	nv_persister_conf pc;
	char path[4096];
	nv_store *store;
	int rc;

	bool pq = !is_memory(q) && !is_store(q),
	     pr = !is_memory(r) && !is_store(r);
	if ((pq || pr) &&
	    (rc = open_plugins(e, pq ? q : NULL, pr ? r : NULL)) != 0)
		return rc;
	/* A plugin backend leaves its side to the plugin: no store for it. */
	if (pq)
		q = NULL;
	if (pr)
		r = NULL;
	if (is_memory(q) && is_memory(r))
		return 0;
	if (!is_memory(q) && !is_memory(r) && strcmp(q, r) != 0) {
		nv__err(
		    "queue backend '%s' and result backend '%s': one engine "
		    "uses one persistent store; pick the same kind",
		    q, r);
		return NV_EINVAL;
	}
	kind = is_memory(q) ? r : q;
	if ((ops = nv__store_find(kind)) == NULL) {
		nv__err("unknown backend '%s' (built in: memory, file, sqlite)",
			kind);
		return NV_EINVAL;
	}
	memset(&sc, 0, sizeof(sc));
	sc.fsync = e->cfg.fsync;
	sc.retain_finished = e->cfg.result_retention;
	if ((rc = nv__store_location(&e->cfg, kind, !is_memory(q), path,
				     sizeof(path))) != 0)
		return rc;
	sc.path = path;
	if ((rc = ops->open(&store, &sc)) != 0) {
		nv__err("cannot open the %s store at '%s': %s", kind, path,
			nv_strerror(rc));
		return rc;
	}
	uint64_t mj = 0, ms = 0, boot = 0;
	if ((rc = nv__store_next_boot(path, &boot)) != 0) {
		ops->close(store);
		return rc;
	}
	ops->max_ids(store, &mj, &ms);
	e->next_id =
	    mj + 1 > boot << NV__BOOT_SHIFT ? mj + 1 : boot << NV__BOOT_SHIFT;
	nv__schedules_set_next_id(e, ms + 1 > boot << NV__BOOT_SHIFT
					 ? ms + 1
					 : boot << NV__BOOT_SHIFT);
	memset(&pc, 0, sizeof(pc)); /* byte bound: the default */
	pc.max_backlog = e->cfg.persist_backlog;
	pc.fsync = e->cfg.fsync;
	pc.interval_ms = e->cfg.fsync_interval_ms;
	/* Records per group commit. SQLite: large, so that a job's ENQUEUED
	 * and its outcome often share a batch and become one row write
	 * (sqlite_merge.h) even when the ring holds many jobs between them;
	 * a batch is one transaction (~0.3 s at 65536 records flat out; a
	 * paced load makes small ones). File: per-batch costs are small. */
	pc.max_batch = strcmp(kind, "sqlite") == 0 ? 65536 : 4096;
	if ((rc = nv__persister_create(&e->persister, store, &pc)) != 0) {
		ops->close(store);
		return rc;
	}
	e->store = store;
	e->requeue_stored = !is_memory(q);
	e->keep_results = !is_memory(r);
	return 0;
}

int
nv__store_start(nv_engine *e)
{
	int rc;
	if (e->persister != NULL) {
		rc = nv__recover(e, e->store, e->requeue_stored,
				 e->keep_results);
		if (rc != 0) {
			nv__err("recovery from the store failed: %s",
				nv_strerror(rc));
			return rc;
		}
		if ((rc = nv__persister_start(e->persister)) != 0)
			return rc;
		e->persister_started = true;
	}
	return e->pump != NULL ? nv__pump_start(e) : 0;
}

int
nv__store_stop(nv_engine *e)
{
	if (e->pump != NULL)
		nv__pump_stop(e); /* queued jobs back to the plugin queue */
	if (e->persister == NULL)
		return 0;
	/* Never started: events submitted before start (jobs dispatched to
	 * an engine that never ran) are still written, so that the next
	 * start finds them. Appending without a replay first is safe. */
	if (!e->persister_started) {
		int rc = nv__persister_start(e->persister);
		if (rc != 0)
			return rc;
		e->persister_started = true;
	}
	return nv__persister_stop(e->persister);
}

void
nv__store_close(nv_engine *e)
{
	nv__pump_destroy(e);
	nv_queue_close(e->qbe);
	e->qbe = NULL;
	nv_results_close(e->rbe);
	e->rbe = NULL;
	if (e->persister == NULL)
		return;
	nv__persister_destroy(e->persister); /* closes the store */
	e->persister = NULL;
	e->store = NULL;
}

int
nv__store_error(nv_engine *e)
{
	return e->persister ? nv__persister_error(e->persister) : 0;
}

int
nv_flush(nv_engine *e, int timeout_ms)
{
	if (e == NULL)
		return NV_EINVAL;
	if (e->persister == NULL)
		return 0;
	if (!e->persister_started)
		return NV_ESTOPPED; /* the persister runs from nv_engine_start
				     */
	return nv__persister_flush(e->persister, timeout_ms);
}
