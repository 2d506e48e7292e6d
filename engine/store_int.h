/* engine/store_int.h - queue/result backends of an engine (engine/store.c):
 * "memory" (nothing to do) or a persistent store behind the write-behind
 * persister. */
#ifndef NV_ENGINE_STORE_INT_H
#define NV_ENGINE_STORE_INT_H

#include "engine/engine_int.h"

int nv__store_open(nv_engine *e);  /* checks the backend names */
int nv__store_start(nv_engine *e); /* recovery, then the persister */
int nv__store_stop(nv_engine *e);  /* flush and stop the persister */
void nv__store_close(nv_engine *e);
int nv__store_error(nv_engine *e); /* 0 or the persister's NV_E* */

#endif
