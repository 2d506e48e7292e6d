/*
 * backend.c - the backend registry and the thin wrappers (nuvom/backend.h).
 *
 * Registry: per kind (queue, results) a fixed array of entries, append
 * only, preloaded with the built-ins. Readers (find, the wrappers' stats
 * lookup) scan entries [0, count) without a lock: an entry is fully
 * written before count is raised with a release store, and count is read
 * with acquire. Registration takes a mutex (duplicate check + append).
 * Entries are never removed, so a pointer to one stays valid.
 *
 * Wrappers: every call into a backend goes through one of the functions
 * below. They check the arguments the contract forbids (so no backend has
 * to), count calls, errors and items per backend in the registry entry
 * (relaxed atomic adds: statistics only) and are the place for tracing and
 * fault injection. The entry of an instance is found by its ops pointer: a
 * scan of a handful of entries, cheaper than a lock.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "engine/backend_int.h"

#define NV_MAX_BACKENDS 32

struct entry {
	const void *ops; /* nv_queue_ops * or nv_results_ops * */
	const char *name;
	uint64_t calls[NV_BOP_MAX]; /* atomic */
	uint64_t errors, items;	    /* atomic */
};

struct registry {
	struct entry e[NV_MAX_BACKENDS];
	unsigned count; /* atomic */
	pthread_mutex_t mu;
};

static struct registry queues = {
    .e = {{&nv__memory_queue_ops, "memory", {0}, 0, 0},
	  {&nv__file_queue_ops, "file", {0}, 0, 0},
	  {&nv__sqlite_queue_ops, "sqlite", {0}, 0, 0}},
    .count = 3,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

static struct registry results = {
    .e = {{&nv__memory_results_ops, "memory", {0}, 0, 0},
	  {&nv__file_results_ops, "file", {0}, 0, 0},
	  {&nv__sqlite_results_ops, "sqlite", {0}, 0, 0}},
    .count = 3,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

static struct entry *
by_name(struct registry *g, const char *name)
{
	/* Acquire pairs with the release store in add(). */
	unsigned n = __atomic_load_n(&g->count, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; name != NULL && i < n; i++)
		if (strcmp(g->e[i].name, name) == 0)
			return &g->e[i];
	return NULL;
}

static struct entry *
by_ops(struct registry *g, const void *ops)
{
	unsigned n = __atomic_load_n(&g->count, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++)
		if (g->e[i].ops == ops)
			return &g->e[i];
	return NULL;
}

static int
add(struct registry *g, const void *ops, const char *name)
{
	int rc = 0;
	pthread_mutex_lock(&g->mu);
	if (by_name(g, name) != NULL) {
		rc = NV_EEXIST;
	} else if (g->count == NV_MAX_BACKENDS) {
		rc = NV_ENOMEM;
	} else {
		struct entry *en = &g->e[g->count];
		memset(en, 0, sizeof(*en));
		en->ops = ops;
		en->name = name;
		/* Release: the entry is complete before readers count it. */
		__atomic_store_n(&g->count, g->count + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&g->mu);
	return rc;
}

int
nv_queue_backend_register(const nv_queue_ops *o)
{
	if (o == NULL || o->version != NV_QUEUE_OPS_VERSION ||
	    o->name == NULL || o->name[0] == '\0' || o->open == NULL ||
	    o->close == NULL || o->enqueue == NULL || o->dequeue == NULL ||
	    o->pop_batch == NULL || o->qsize == NULL || o->clear == NULL)
		return NV_EINVAL;
	return add(&queues, o, o->name);
}

int
nv_results_backend_register(const nv_results_ops *o)
{
	if (o == NULL || o->version != NV_RESULTS_OPS_VERSION ||
	    o->name == NULL || o->name[0] == '\0' || o->open == NULL ||
	    o->close == NULL || o->set_result == NULL || o->set_error == NULL ||
	    o->get_result == NULL || o->get_error == NULL ||
	    o->get_full == NULL || o->list_jobs == NULL)
		return NV_EINVAL;
	return add(&results, o, o->name);
}

const nv_queue_ops *
nv_queue_backend_find(const char *name)
{
	struct entry *en = by_name(&queues, name);
	return en ? en->ops : NULL;
}

const nv_results_ops *
nv_results_backend_find(const char *name)
{
	struct entry *en = by_name(&results, name);
	return en ? en->ops : NULL;
}

static size_t
names(struct registry *g, char *buf, size_t len)
{
	unsigned n = __atomic_load_n(&g->count, __ATOMIC_ACQUIRE);
	size_t need = 0;
	if (len > 0)
		buf[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		int k = snprintf(buf ? buf + (need < len ? need : len) : NULL,
				 need < len ? len - need : 0, "%s%s",
				 i ? ", " : "", g->e[i].name);
		need += k > 0 ? (size_t)k : 0;
	}
	return need;
}

size_t
nv_queue_backend_names(char *buf, size_t len)
{
	return names(&queues, buf, len);
}

size_t
nv_results_backend_names(char *buf, size_t len)
{
	return names(&results, buf, len);
}

/* ---------------------------------------------------------------- stats */

static int
count(struct registry *g, const void *ops, int op, int rc, uint64_t items)
{
	struct entry *en = by_ops(g, ops);
	if (en == NULL) /* an instance of an unregistered table */
		return rc;
	__atomic_fetch_add(&en->calls[op], 1, __ATOMIC_RELAXED);
	if (rc != 0 && rc != NV_ETIMEDOUT && rc != NV_ENOENT &&
	    rc != NV_ENORESULT)
		__atomic_fetch_add(&en->errors, 1, __ATOMIC_RELAXED);
	if (items)
		__atomic_fetch_add(&en->items, items, __ATOMIC_RELAXED);
	return rc;
}

static int
stats(struct registry *g, const char *name, nv_backend_stats *out)
{
	struct entry *en = by_name(g, name);
	if (en == NULL || out == NULL)
		return NV_EINVAL;
	for (int i = 0; i < NV_BOP_MAX; i++)
		out->calls[i] =
		    __atomic_load_n(&en->calls[i], __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&en->errors, __ATOMIC_RELAXED);
	out->items = __atomic_load_n(&en->items, __ATOMIC_RELAXED);
	return 0;
}

int
nv_queue_stats(const char *name, nv_backend_stats *out)
{
	return stats(&queues, name, out);
}

int
nv_results_stats(const char *name, nv_backend_stats *out)
{
	return stats(&results, name, out);
}

/* ---------------------------------------------------------------- queue */

#define QCOUNT(q, op, rc, items) count(&queues, (q)->ops, op, rc, items)

int
nv_queue_open(const char *name, const nv_backend_conf *conf, nv_queue **out)
{
	struct entry *en = by_name(&queues, name);
	nv_backend_conf def = {NULL, NULL};
	int rc;
	if (out == NULL)
		return NV_EINVAL;
	*out = NULL;
	if (en == NULL)
		return NV_EINVAL;
	const nv_queue_ops *ops = en->ops;
	rc = ops->open(out, conf ? conf : &def);
	if (rc == 0 && (*out == NULL || (*out)->ops != ops)) {
		/* A backend that broke the contract: refuse the instance. */
		if (*out != NULL)
			ops->close(*out);
		*out = NULL;
		rc = NV_EPLUGIN;
	}
	return count(&queues, ops, NV_BOP_OPEN, rc, 0);
}

void
nv_queue_close(nv_queue *q)
{
	if (q != NULL)
		q->ops->close(q);
}

int
nv_queue_enqueue(nv_queue *q, const nv_job_msg *m)
{
	if (q == NULL || m == NULL || m->task == NULL ||
	    (m->args == NULL && m->args_len != 0))
		return NV_EINVAL;
	return QCOUNT(q, NV_BOP_ENQUEUE, q->ops->enqueue(q, m), 0);
}

int
nv_queue_dequeue(nv_queue *q, nv_job_msg **out, int timeout_ms)
{
	if (q == NULL || out == NULL)
		return NV_EINVAL;
	*out = NULL;
	int rc = q->ops->dequeue(q, out, timeout_ms);
	return QCOUNT(q, NV_BOP_DEQUEUE, rc, rc == 0 ? 1 : 0);
}

int
nv_queue_pop_batch(nv_queue *q, nv_job_msg **out, size_t n, size_t *got)
{
	if (got != NULL)
		*got = 0;
	if (q == NULL || out == NULL || got == NULL || n == 0)
		return NV_EINVAL;
	int rc = q->ops->pop_batch(q, out, n, got);
	if (rc != 0)
		*got = 0;
	return QCOUNT(q, NV_BOP_POP_BATCH, rc, *got);
}

int
nv_queue_qsize(nv_queue *q, uint64_t *n)
{
	if (q == NULL || n == NULL)
		return NV_EINVAL;
	return QCOUNT(q, NV_BOP_QSIZE, q->ops->qsize(q, n), 0);
}

int
nv_queue_clear(nv_queue *q, uint64_t *removed)
{
	uint64_t dummy;
	if (q == NULL)
		return NV_EINVAL;
	return QCOUNT(q, NV_BOP_CLEAR,
		      q->ops->clear(q, removed ? removed : &dummy), 0);
}

/* ---------------------------------------------------------------- results */

#define RCOUNT(r, op, rc, items) count(&results, (r)->ops, op, rc, items)

int
nv_results_open(const char *name, const nv_backend_conf *conf, nv_results **out)
{
	struct entry *en = by_name(&results, name);
	nv_backend_conf def = {NULL, NULL};
	int rc;
	if (out == NULL)
		return NV_EINVAL;
	*out = NULL;
	if (en == NULL)
		return NV_EINVAL;
	const nv_results_ops *ops = en->ops;
	rc = ops->open(out, conf ? conf : &def);
	if (rc == 0 && (*out == NULL || (*out)->ops != ops)) {
		if (*out != NULL)
			ops->close(*out);
		*out = NULL;
		rc = NV_EPLUGIN;
	}
	return count(&results, ops, NV_BOP_OPEN, rc, 0);
}

void
nv_results_close(nv_results *r)
{
	if (r != NULL)
		r->ops->close(r);
}

static bool
info_ok(const nv_job_info *i)
{
	return i != NULL && i->id != 0 &&
	       (i->result != NULL || i->result_len == 0);
}

int
nv_results_set_result(nv_results *r, const nv_job_info *info)
{
	if (r == NULL || !info_ok(info))
		return NV_EINVAL;
	return RCOUNT(r, NV_BOP_SET_RESULT, r->ops->set_result(r, info), 1);
}

int
nv_results_set_error(nv_results *r, const nv_job_info *info)
{
	if (r == NULL || !info_ok(info))
		return NV_EINVAL;
	return RCOUNT(r, NV_BOP_SET_ERROR, r->ops->set_error(r, info), 1);
}

int
nv_results_get_result(nv_results *r, nv_job_id id, void **buf, size_t *len)
{
	if (buf != NULL)
		*buf = NULL;
	if (len != NULL)
		*len = 0;
	if (r == NULL || id == 0 || buf == NULL || len == NULL)
		return NV_EINVAL;
	return RCOUNT(r, NV_BOP_GET_RESULT, r->ops->get_result(r, id, buf, len),
		      0);
}

int
nv_results_get_error(nv_results *r, nv_job_id id, char **msg)
{
	if (msg != NULL)
		*msg = NULL;
	if (r == NULL || id == 0 || msg == NULL)
		return NV_EINVAL;
	return RCOUNT(r, NV_BOP_GET_ERROR, r->ops->get_error(r, id, msg), 0);
}

int
nv_results_get_full(nv_results *r, nv_job_id id, nv_job_info **out)
{
	if (out != NULL)
		*out = NULL;
	if (r == NULL || id == 0 || out == NULL)
		return NV_EINVAL;
	return RCOUNT(r, NV_BOP_GET_FULL, r->ops->get_full(r, id, out), 0);
}

int
nv_results_list_jobs(nv_results *r, const nv_job_filter *f, nv_job_info ***out,
		     size_t *n)
{
	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (r == NULL || f == NULL || out == NULL || n == NULL ||
	    f->status < -1 || f->status > NV_FAILED)
		return NV_EINVAL;
	return RCOUNT(r, NV_BOP_LIST_JOBS, r->ops->list_jobs(r, f, out, n), 0);
}

/* ---------------------------------------------------------------- records */

nv_job_msg *
nv_job_msg_new(nv_job_id id, const char *task, const void *args, size_t len,
	       uint32_t attempt, int64_t created_ms)
{
	if (task == NULL || (args == NULL && len != 0))
		return NULL;
	size_t tl = strlen(task) + 1;
	if (len > SIZE_MAX - sizeof(nv_job_msg) - tl)
		return NULL;
	nv_job_msg *m = nv__malloc(sizeof(*m) + len + tl);
	if (m == NULL)
		return NULL;
	char *p = (char *)(m + 1);
	m->id = id;
	m->attempt = attempt;
	m->created_ms = created_ms;
	m->args_len = len;
	m->args = len ? p : NULL;
	if (len)
		memcpy(p, args, len);
	memcpy(p + len, task, tl);
	m->task = p + len;
	return m;
}

nv_job_info *
nv_job_info_dup(const nv_job_info *s)
{
	if (s == NULL || (s->result == NULL && s->result_len != 0))
		return NULL;
	const char *task = s->task ? s->task : "";
	size_t tl = strlen(task) + 1;
	size_t el = s->error ? strlen(s->error) + 1 : 0;
	size_t rl = s->result ? s->result_len : 0;
	nv_job_info *i = nv__malloc(sizeof(*i) + rl + tl + el);
	if (i == NULL)
		return NULL;
	char *p = (char *)(i + 1);
	*i = *s;
	i->result = rl || s->result ? p : NULL;
	if (rl)
		memcpy(p, s->result, rl);
	p += rl;
	memcpy(p, task, tl);
	i->task = p;
	p += tl;
	i->error = NULL;
	if (el) {
		memcpy(p, s->error, el);
		i->error = p;
	}
	return i;
}

void
nv_job_info_list_free(nv_job_info **list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		nv__free(list[i]);
	nv__free(list);
}

const nv_config *
nv__backend_cfg(const nv_backend_conf *conf, nv_config *tmp)
{
	if (conf != NULL && conf->cfg != NULL)
		return conf->cfg;
	nv_config_init(tmp);
	return tmp;
}
