/*
 * engine/config_int.h - internal helpers around nv_config (engine/config.c,
 * engine/config_env.c).
 *
 * The string fields of an nv_config filled by nv_config_from_env point into
 * that same struct's nv__strbuf. A plain struct copy (b = a) keeps pointing
 * into a's buffer, which is fine only while a lives and is not reloaded.
 * Whoever keeps a config beyond the caller's (nv_engine_open) copies it with
 * nv__config_copy, which re-points those fields into the copy's own buffer.
 */
#ifndef NV_ENGINE_CONFIG_INT_H
#define NV_ENGINE_CONFIG_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "nuvom.h"

/* max_extra_workers default: "as many as the effective worker count". */
#define NV__CONFIG_AUTO UINT_MAX

/* Copies src into dst; every const char * field of src that points into
 * src->nv__strbuf points at the same bytes of dst->nv__strbuf afterwards;
 * other pointers (literals, the caller's strings) are copied as they are.
 * dst == src is a no-op. Not thread-safe against writers of either. */
void nv__config_copy(nv_config *dst, const nv_config *src);

/* Applies the NUVOM_* assignments of .env text (origin names it in
 * messages, e.g. a path) and then, when use_environ, the NUVOM_* variables
 * of the process environment (which win over the text: a text value whose
 * name is set in the environment is not even checked). All or nothing:
 * cfg changes only when everything is valid. Returns 0, NV_ECONFIG (message
 * in nv_config_error()), NV_ENOMEM, NV_EINVAL. nv_config_from_env is this
 * plus reading the file. */
int nv__config_load(nv_config *cfg, const char *text, size_t len,
		    const char *origin, bool use_environ);

/* The message behind nv_config_error() (thread-local, owned by config.c):
 * nv__config_seterr formats it (truncated to its 1 KiB), nv__config_clearerr
 * empties it. For config.c and config_env.c. */
void nv__config_seterr(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
void nv__config_clearerr(void);

/* Paths that default to a file in data_dir when their field is NULL. */
typedef enum {
	NV__CFG_MANIFEST,     /* <data_dir>/manifest.json */
	NV__CFG_SQLITE_QUEUE, /* <data_dir>/queue.db */
	NV__CFG_SQLITE_RESULT /* <data_dir>/results.db */
} nv__cfg_path;

/* Writes the effective path into buf: the field when set, else the
 * default above. Returns 0, or NV_EINVAL (bad which, or it does not fit). */
int nv__config_path(const nv_config *cfg, nv__cfg_path which, char *buf,
		    size_t len);

/* Effective max_extra_workers for an engine running nworkers workers. */
unsigned nv__config_extra_workers(const nv_config *cfg, unsigned nworkers);

/* Describes variable i (0-based, in table order) for `nuvom config`:
 * *name gets its NUVOM_* name and val its current value in cfg, written
 * the way the variable accepts it. Returns false once i is past the end. */
bool nv__config_describe(const nv_config *cfg, size_t i, const char **name,
			 char *val, size_t len);

#endif /* NV_ENGINE_CONFIG_INT_H */
