/*
 * store.c - the engine's backends: which queue/result backend a config
 * names, and nv_flush.
 *
 * "memory" for both keeps everything in the process: the ring is the
 * queue, the job table is the result store, nothing is written and
 * nv_flush returns at once.
 */
#include <string.h>

#include "base/log.h"
#include "engine/store_int.h"

static bool
is_memory(const char *name)
{
	return name == NULL || strcmp(name, "memory") == 0;
}

int
nv__store_open(nv_engine *e)
{
	if (is_memory(e->cfg.queue_backend) && is_memory(e->cfg.result_backend))
		return 0;
	nv__err("backend '%s'/'%s' is not available in this build",
		e->cfg.queue_backend ? e->cfg.queue_backend : "memory",
		e->cfg.result_backend ? e->cfg.result_backend : "memory");
	return NV_EINVAL;
}

int
nv__store_start(nv_engine *e)
{
	(void)e;
	return 0;
}

int
nv__store_stop(nv_engine *e)
{
	(void)e;
	return 0;
}

void
nv__store_close(nv_engine *e)
{
	(void)e;
}

int
nv__store_error(nv_engine *e)
{
	(void)e;
	return 0;
}

int
nv_flush(nv_engine *e, int timeout_ms)
{
	(void)timeout_ms;
	if (e == NULL)
		return NV_EINVAL;
	return 0;
}
