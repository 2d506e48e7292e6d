/* base/log.h - leveled logging to stderr (internal). The level is global
 * (set from nv_config.log_level when an engine opens); messages are one
 * line each, prefixed with "nuvom: <level>:". */
#ifndef NV_BASE_LOG_H
#define NV_BASE_LOG_H

void nv__log_set_level(int level);
int nv__log_level(void);
void nv__log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define NV__LOG_ERROR 0
#define NV__LOG_WARN 1
#define NV__LOG_INFO 2
#define NV__LOG_DEBUG 3

#define nv__err(...) nv__log(NV__LOG_ERROR, __VA_ARGS__)
#define nv__warn(...) nv__log(NV__LOG_WARN, __VA_ARGS__)
#define nv__info(...) nv__log(NV__LOG_INFO, __VA_ARGS__)
#define nv__debug(...) nv__log(NV__LOG_DEBUG, __VA_ARGS__)

#endif /* NV_BASE_LOG_H */
