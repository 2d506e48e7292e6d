/*
 * nuvom/error.h - error codes of the nuvom public API.
 *
 * Every function that can fail returns int: 0 on success, or one of the
 * negative NV_E* codes below. One X-macro table generates the enum,
 * nv_strerror() and nv_err_name(), so the three never disagree.
 */
#ifndef NUVOM_ERROR_H
#define NUVOM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, message). Values are stable ABI: append, never renumber. */
#define NV_ERRNO_MAP(XX)                                                       \
	XX(EINVAL, -1, "invalid argument")                                     \
	XX(ENOTASK, -2, "unknown task name")                                   \
	XX(EEXIST, -3, "task already registered")                              \
	XX(EFULL, -4, "queue full")                                            \
	XX(ETIMEDOUT, -5, "timed out")                                         \
	XX(ESTOPPED, -6, "engine not running or stopping")                     \
	XX(ENOENT, -7, "no such job or schedule")                              \
	XX(E2BIG, -8, "arguments over the size limit")                         \
	XX(ENOMEM, -9, "out of memory")                                        \
	XX(EIO, -10, "store I/O error")                                        \
	XX(ECRON, -11, "bad cron expression")                                  \
	XX(EPLUGIN, -12, "plugin failed to load or start")                     \
	XX(ENORESULT, -13, "job has no result")                                \
	XX(EBUSY, -14, "resource busy")                                        \
	XX(ECORRUPT, -15, "corrupt record or store")                           \
	XX(ECONFIG, -16, "bad configuration value")

typedef enum nv_errno {
#define NV__ERR_ENUM(name, val, msg) NV_##name = (val),
	NV_ERRNO_MAP(NV__ERR_ENUM)
#undef NV__ERR_ENUM
	NV_OK = 0
} nv_errno;

/* Static, human-readable message for an NV_E* code (or "success" for 0).
 * Thread-safe; unknown codes give "unknown error". */
const char *nv_strerror(int rc);

/* Static name of the code without the NV_ prefix ("EINVAL"); "OK" for 0,
 * "UNKNOWN" otherwise. */
const char *nv_err_name(int rc);

#ifdef __cplusplus
}
#endif
#endif /* NUVOM_ERROR_H */
