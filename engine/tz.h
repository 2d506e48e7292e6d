/*
 * engine/tz.h - IANA time zones as offset periods (internal).
 *
 * A zone is seen as a sequence of periods, each a half-open interval of
 * instants [start_ms, end_ms) during which the UTC offset (standard + DST)
 * is constant. Callers that walk the calendar (engine/cron.c) do their own
 * civil-date arithmetic and only need the period around an instant: its
 * offset, and the offsets on either side of its two transitions.
 *
 * Zone data comes from ICU (ucal_*), never from the process-global TZ.
 * Each thread keeps a small cache of open UCalendars and recently used
 * periods, so a lookup inside a cached period costs a few compares and no
 * ICU call; the cache is freed when the thread exits.
 */
#ifndef NV_ENGINE_TZ_H
#define NV_ENGINE_TZ_H

#include <stdbool.h>
#include <stdint.h>

/* Longest zone name accepted (IANA names are far shorter). */
#define NV_TZ_NAME_MAX 63

typedef struct nv_tz_period {
	int64_t start_ms;    /* first instant; INT64_MIN when none is known */
	int64_t end_ms;	     /* next transition; INT64_MAX when none */
	int32_t off_ms;	     /* offset on [start_ms, end_ms) */
	int32_t prev_off_ms; /* offset just before start_ms (off_ms if none) */
	int32_t next_off_ms; /* offset from end_ms on (off_ms if none) */
} nv_tz_period;

/* True for NULL and "UTC": zones the callers handle without ICU. */
bool nv__tz_is_utc(const char *tz);

/*
 * Fills *out with the period of zone tz that contains instant t_ms.
 * Thread-safe (per-thread cache; the first lookup of a zone on a thread
 * opens a UCalendar, a few microseconds). Returns 0, NV_EINVAL (NULL, a
 * malformed or unknown zone name: ICU maps unknown names to "Etc/Unknown",
 * which is detected and refused) or NV_ENOMEM.
 */
int nv__tz_period(const char *tz, int64_t t_ms, nv_tz_period *out);

/* 0 when tz names a zone nv__tz_period accepts, else NV_EINVAL/NV_ENOMEM.
 * Thread-safe; caches the zone like nv__tz_period. */
int nv__tz_check(const char *tz);

#endif /* NV_ENGINE_TZ_H */
