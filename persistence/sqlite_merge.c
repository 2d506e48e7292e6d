/*
 * sqlite_merge.c - the per-batch row fold of the SQLite store
 * (sqlite_merge.h has the why).
 *
 * One pass over the batch in seq order. A table maps a job id to the row
 * of its latest ENQUEUED in this batch (stamped with a generation, so it
 * is never cleared between batches). An ENQUEUED opens a row (its INSERT
 * values); a later STARTED / SUCCEEDED / FAILED / RETRY of the same id
 * is folded into that row and skipped, with the exact effect of its own
 * UPDATE in sqlite_store.c:
 *
 *   STARTED    status 1, attempts = a,            updated = t, due NULL
 *   SUCCEEDED  status 2, attempts = max(att, a),  updated = t, due NULL,
 *              result = data, error NULL
 *   FAILED     status 3, attempts = max(att, a),  updated = t, due NULL,
 *              result NULL, error = data
 *   RETRY      status 0, attempts = max(att, a),  due = t,
 *              result NULL, error = data          (updated unchanged)
 *
 * A record of a job whose ENQUEUED is not in the batch is applied as is
 * (its row exists from an earlier batch, or the UPDATE finds none, as
 * before). A second ENQUEUED of the same id opens a new row, which the
 * upsert writes over the first: the same result as in order. Schedule
 * records are never folded.
 *
 * Crash safety: a batch is one transaction, so the folded row is
 * committed exactly when the records it replaces would have been.
 */
#include "persistence/sqlite_merge.h"

#include <stdbool.h>

#include <sqlite3.h>
#include <string.h>

#include "base/alloc.h"
#include "nuvom.h"

struct sqm_slot {
	uint64_t id;
	uint32_t gen; /* the plan that wrote it; other values = empty */
	int32_t row;
};

static int
reserve(struct sqm_plan *p, size_t n)
{
	size_t tcap = 64;

	if (n > p->cap) {
		int32_t *act = nv__malloc(n * sizeof(*act));
		struct sqm_row *rows = nv__malloc(n * sizeof(*rows));
		if (act == NULL || rows == NULL) {
			nv__free(act);
			nv__free(rows);
			return NV_ENOMEM;
		}
		nv__free(p->act);
		nv__free(p->rows);
		p->act = act;
		p->rows = rows;
		p->cap = n;
	}
	while (tcap < 2 * n)
		tcap *= 2;
	if (tcap > p->tcap) {
		struct sqm_slot *tab = nv__calloc(tcap, sizeof(*tab));
		if (tab == NULL)
			return NV_ENOMEM;
		nv__free(p->tab);
		p->tab = tab;
		p->tcap = tcap;
		p->gen = 0;
	}
	if (++p->gen == 0) { /* wrapped: old stamps could match again */
		memset(p->tab, 0, p->tcap * sizeof(*p->tab));
		p->gen = 1;
	}
	return 0;
}

/* The slot of id (claimed for this plan when new, with row -1). */
static struct sqm_slot *
slot(struct sqm_plan *p, uint64_t id)
{
	size_t mask = p->tcap - 1;
	size_t h = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & mask;

	for (;; h = (h + 1) & mask) { /* at most half full: never loops */
		struct sqm_slot *s = &p->tab[h];
		if (s->gen != p->gen) {
			s->gen = p->gen;
			s->id = id;
			s->row = -1;
			return s;
		}
		if (s->id == id)
			return s;
	}
}

static uint32_t
max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Folds r into row w (the effect of r's UPDATE, see the essay). */
static void
fold(struct sqm_row *w, const nv_rec *r)
{
	switch (r->type) {
	case NV_REC_JOB_STARTED:
		w->status = 1;
		w->attempts = r->attempt;
		w->updated_ms = r->time_ms;
		w->has_due = 0;
		break;
	case NV_REC_JOB_SUCCEEDED:
		w->status = 2;
		w->attempts = max_u32(w->attempts, r->attempt);
		w->updated_ms = r->time_ms;
		w->has_due = 0;
		w->result = r->data_len ? r->data : NULL;
		w->result_len = r->data_len;
		w->error = NULL;
		w->error_len = 0;
		w->finals++;
		break;
	case NV_REC_JOB_FAILED:
		w->status = 3;
		w->attempts = max_u32(w->attempts, r->attempt);
		w->updated_ms = r->time_ms;
		w->has_due = 0;
		w->result = NULL;
		w->result_len = 0;
		w->error = r->data_len ? r->data : NULL;
		w->error_len = r->data_len;
		w->finals++;
		break;
	default: /* NV_REC_JOB_RETRY */
		w->status = 0;
		w->attempts = max_u32(w->attempts, r->attempt);
		w->due_ms = r->time_ms;
		w->has_due = 1;
		w->result = NULL;
		w->result_len = 0;
		w->error = r->data_len ? r->data : NULL;
		w->error_len = r->data_len;
		break;
	}
}

int
nv__sqm_plan(struct sqm_plan *p, const nv_rec *recs, size_t n)
{
	int32_t nrows = 0;

	p->merged = 0;
	if (reserve(p, n) != 0)
		return NV_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const nv_rec *r = &recs[i];
		struct sqm_slot *s;

		p->act[i] = SQM_APPLY;
		if (r->type < NV_REC_JOB_ENQUEUED || r->type > NV_REC_JOB_RETRY)
			continue;
		s = slot(p, r->id);
		if (r->type == NV_REC_JOB_ENQUEUED) {
			struct sqm_row *w = &p->rows[nrows];
			memset(w, 0, sizeof(*w));
			w->attempts = r->attempt;
			w->created_ms = w->updated_ms = r->time_ms;
			s->row = nrows;
			p->act[i] = nrows++;
		} else if (s->row >= 0) {
			fold(&p->rows[s->row], r);
			p->act[i] = SQM_SKIP;
			p->merged++;
		}
	}
	return 0;
}

/* NULL for an empty value, else text or a blob (SQLITE_STATIC: the
 * record outlives the statement's step). */
static int
bind_opt(sqlite3_stmt *st, int i, const void *p, uint32_t len, bool text)
{
	if (len == 0 || p == NULL)
		return sqlite3_bind_null(st, i);
	if (text)
		return sqlite3_bind_text64(st, i, p, len, SQLITE_STATIC,
					   SQLITE_UTF8);
	return sqlite3_bind_blob64(st, i, p, len, SQLITE_STATIC);
}

int
nv__sqm_bind(sqlite3_stmt *st, const nv_rec *r, const struct sqm_row *w)
{
	static const struct sqm_row alone; /* status 0, the rest NULL */
	int rc;

	if (w == NULL)
		w = &alone;
	rc = sqlite3_bind_int64(st, 4, w == &alone ? r->attempt : w->attempts);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, 6, w->status);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(
		    st, 7, w == &alone ? r->time_ms : w->updated_ms);
	if (rc == SQLITE_OK)
		rc = w->has_due ? sqlite3_bind_int64(st, 8, w->due_ms)
				: sqlite3_bind_null(st, 8);
	if (rc == SQLITE_OK)
		rc = bind_opt(st, 9, w->result, w->result_len, false);
	if (rc == SQLITE_OK)
		rc = bind_opt(st, 10, w->error, w->error_len, true);
	return rc;
}

void
nv__sqm_free(struct sqm_plan *p)
{
	nv__free(p->act);
	nv__free(p->rows);
	nv__free(p->tab);
	memset(p, 0, sizeof(*p));
}
