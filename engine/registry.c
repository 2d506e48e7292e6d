/*
 * registry.c - task name -> task, lock-free for readers.
 *
 * A liburcu lock-free hash table (cds_lfht, memb flavour) maps names to
 * struct nv_task. Readers (nv_task_lookup, nv_delay) take only an RCU read
 * lock; writers (nv_task_register) serialize on a mutex and never remove a
 * task: a forced re-registration publishes a new immutable definition into
 * the existing task with a release store, so a handle from nv_task_lookup
 * stays valid until nv_engine_close and dispatches through it use the
 * newest function. Retired definitions are kept on a list until close
 * (a job already running may still use one).
 */
#include <string.h>

#include "base/alloc.h"
#include "engine/engine_int.h"

static uint64_t
name_hash(const char *s, size_t n)
{
	/* FNV-1a, 64-bit. */
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

struct key {
	const char *name;
	size_t len;
};

static int
match_name(struct cds_lfht_node *node, const void *k)
{
	const struct nv_task *t = caa_container_of(node, struct nv_task, node);
	const struct key *key = k;
	NV_TSAN_CONSUME(t);
	return t->name_len == key->len && memcmp(t->name, key->name, key->len) == 0;
}

int
nv__registry_init(nv_engine *e)
{
	e->tasks = cds_lfht_new_flavor(64, 64, 0, CDS_LFHT_AUTO_RESIZE, &urcu_memb_flavor, NULL);
	if (e->tasks == NULL)
		return NV_ENOMEM;
	pthread_mutex_init(&e->reg_mu, NULL);
	return 0;
}

static void
free_defs(struct nv_taskdef *d)
{
	while (d != NULL) {
		struct nv_taskdef *older = d->older;
		nv__free(d);
		d = older;
	}
}

void
nv__registry_fini(nv_engine *e)
{
	struct nv_task *t;
	/* The table first: its nodes live inside the tasks, so emptying it
	 * after freeing them read freed memory. */
	if (e->tasks != NULL) {
		/* Every reader is gone (engine closing): destroy directly,
		 * before the tasks whose nodes the table links are freed. */
		struct cds_lfht_iter it;
		struct cds_lfht_node *n;
		cds_lfht_for_each(e->tasks, &it, n)
			cds_lfht_del(e->tasks, n);
		cds_lfht_destroy(e->tasks, NULL);
		e->tasks = NULL;
	}
	t = e->all_tasks;
	while (t != NULL) {
		struct nv_task *next = t->all_next;
		free_defs(t->def);
		nv__free(t);
		t = next;
	}
	e->all_tasks = NULL;
	pthread_mutex_destroy(&e->reg_mu);
}

/* One allocation holding the definition and copies of its strings. */
static struct nv_taskdef *
def_new(nv_task_fn fn, const nv_task_opts *opts)
{
	size_t dl = opts && opts->description ? strlen(opts->description) + 1 : 0;
	size_t cl = opts && opts->category ? strlen(opts->category) + 1 : 0;
	struct nv_taskdef *d = nv__calloc(1, sizeof(*d) + dl + cl);
	char *p;
	if (d == NULL)
		return NULL;
	d->fn = fn;
	if (opts != NULL)
		d->opts = *opts;
	p = (char *)(d + 1);
	if (dl) {
		memcpy(p, opts->description, dl);
		d->opts.description = p;
		p += dl;
	}
	if (cl) {
		memcpy(p, opts->category, cl);
		d->opts.category = p;
	}
	return d;
}

static bool
valid_name(const char *name, size_t n)
{
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= ' ' || c == 0x7f)
			return false;
	}
	return true;
}

int
nv_task_register(nv_engine *e, const char *name, nv_task_fn fn,
		 const nv_task_opts *opts, unsigned flags)
{
	struct key key;
	struct cds_lfht_iter it;
	struct cds_lfht_node *found;
	struct nv_task *t;
	struct nv_taskdef *d;
	uint64_t h;

	if (e == NULL || name == NULL || fn == NULL ||
	    (flags & ~(NV_REG_FORCE | NV_REG_SILENT)) != 0)
		return NV_EINVAL;
	key.name = name;
	key.len = strlen(name);
	if (!valid_name(name, key.len))
		return NV_EINVAL;
	if (opts != NULL && opts->timeout_policy > NV_TIMEOUT_IGNORE)
		return NV_EINVAL;
	h = name_hash(name, key.len);
	nv__rcu_thread_online();
	pthread_mutex_lock(&e->reg_mu);
	urcu_memb_read_lock();
	cds_lfht_lookup(e->tasks, h, match_name, &key, &it);
	found = cds_lfht_iter_get_node(&it);
	urcu_memb_read_unlock();
	if (found != NULL) {
		t = caa_container_of(found, struct nv_task, node);
		if (flags & NV_REG_FORCE) {
			d = def_new(fn, opts);
			if (d == NULL) {
				pthread_mutex_unlock(&e->reg_mu);
				return NV_ENOMEM;
			}
			d->older = t->def;
			/* Release: the definition's fields are visible to
			 * readers that acquire the pointer. */
			__atomic_store_n(&t->def, d, __ATOMIC_RELEASE);
			pthread_mutex_unlock(&e->reg_mu);
			return 0;
		}
		pthread_mutex_unlock(&e->reg_mu);
		return (flags & NV_REG_SILENT) ? 0 : NV_EEXIST;
	}
	t = nv__calloc(1, sizeof(*t) + key.len + 1);
	d = def_new(fn, opts);
	if (t == NULL || d == NULL) {
		nv__free(t);
		nv__free(d);
		pthread_mutex_unlock(&e->reg_mu);
		return NV_ENOMEM;
	}
	t->engine = e;
	t->def = d;
	t->name_len = key.len;
	memcpy(t->name, name, key.len + 1);
	cds_lfht_node_init(&t->node);
	t->all_next = e->all_tasks;
	e->all_tasks = t;
	urcu_memb_read_lock();
	/* cds_lfht_add publishes the node with the ordering readers need. */
	NV_TSAN_PUBLISH(t);
	cds_lfht_add(e->tasks, h, &t->node);
	urcu_memb_read_unlock();
	pthread_mutex_unlock(&e->reg_mu);
	return 0;
}

nv_task *
nv_task_lookup(nv_engine *e, const char *name)
{
	struct key key;
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	if (e == NULL || name == NULL)
		return NULL;
	key.name = name;
	key.len = strlen(name);
	nv__rcu_thread_online();
	urcu_memb_read_lock();
	cds_lfht_lookup(e->tasks, name_hash(name, key.len), match_name, &key,
			&it);
	n = cds_lfht_iter_get_node(&it);
	urcu_memb_read_unlock();
	/* Tasks are never freed before close: the pointer outlives the
	 * read-side section. */
	return n ? caa_container_of(n, struct nv_task, node) : NULL;
}

const char *
nv_task_name(const nv_task *t)
{
	return t ? t->name : NULL;
}
