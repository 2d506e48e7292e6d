/*
 * engine/cron.h - cron expressions: parse once, ask for the next fire time
 * many times (internal).
 *
 * A compiled expression (nv_cron) is a plain value: six bitsets and a few
 * flags, no pointers, no allocation. The caller owns the storage (embed it
 * in a schedule record, copy it freely). Once parsed it is immutable, so any
 * number of threads may call nv__cron_next on the same nv_cron at once.
 *
 * Semantics (docs/cron.md has the whole story):
 *  - 5 fields "min hour dom month dow", or 6 with a leading seconds field;
 *    '*', lists, ranges, steps ("* /5", "10-50/10", "5/15" = 5-max/15),
 *    month and day names (JAN..DEC, SUN..SAT, any case), 0 and 7 = Sunday,
 *    @yearly @annually @monthly @weekly @daily @midnight @hourly.
 *  - Vixie rule: when neither day-of-month nor day-of-week starts with '*',
 *    a day matches when either matches; otherwise both must match.
 *  - Expressions that can never fire ("0 0 30 2 *") are rejected by
 *    nv__cron_parse with NV_ECRON; nv__cron_next never searches forever.
 *  - Time zones: IANA names through ICU (engine/tz.h). DST: a "fixed-time"
 *    job (no '*' or '/' in its seconds, minute and hour fields) whose wall
 *    time falls in a spring-forward gap fires once at the end of the gap,
 *    and in a fall-back overlap only at the first occurrence; every other
 *    job follows the wall clock (skipped times never happen, repeated times
 *    fire in both passes).
 */
#ifndef NV_ENGINE_CRON_H
#define NV_ENGINE_CRON_H

#include <stddef.h>
#include <stdint.h>

#define NV_CRON_DOM_STAR 0x01u /* day-of-month field starts with '*' */
#define NV_CRON_DOW_STAR 0x02u /* day-of-week field starts with '*' */
#define NV_CRON_SECONDS 0x04u  /* written with the 6-field form */
#define NV_CRON_FIXED 0x08u    /* fixed-time job: DST gap/overlap rule */

/* A compiled cron expression. Bit n of a set means "value n matches". */
typedef struct nv_cron {
	uint64_t sec;	/* bits 0-59 ({0} for the 5-field form) */
	uint64_t min;	/* bits 0-59 */
	uint32_t hour;	/* bits 0-23 */
	uint32_t dom;	/* bits 1-31 */
	uint16_t month; /* bits 1-12 */
	uint8_t dow;	/* bits 0-6, 0 = Sunday (7 is folded into 0) */
	uint8_t flags;	/* NV_CRON_* */
} nv_cron;

/* First and last instants nv__cron_next works with: 0001-01-01T00:00:00Z
 * and 9999-12-31T23:59:59.999Z. Times before are searched from the first;
 * a next fire time past the last is NV_ENOENT. */
#define NV_CRON_MIN_MS (-62135596800000LL)
#define NV_CRON_MAX_MS (253402300799999LL)

/*
 * Compiles expr into *out. Pure function of its input, thread-safe, no
 * allocation. Returns 0, NV_EINVAL (out or expr NULL) or NV_ECRON with a
 * message in err (when err != NULL and errlen > 0, always NUL-terminated)
 * naming the field and the 1-based character position, e.g.
 * "field 2 (hour) at position 5: value 24 out of range 0-23".
 * *out is only written on success.
 */
int nv__cron_parse(nv_cron *out, const char *expr, char *err, size_t errlen);

/*
 * Next fire time of c strictly after after_ms (UTC epoch ms), evaluated in
 * the IANA zone tz (NULL or "UTC" = UTC, no ICU involved). Thread-safe: c is
 * only read; zone data comes from a per-thread cache (engine/tz.h), so most
 * calls make no ICU call at all. Returns 0 and *next_ms, NV_EINVAL (NULL
 * argument, unknown zone), NV_ENOENT (no fire time up to NV_CRON_MAX_MS).
 */
int nv__cron_next(const nv_cron *c, const char *tz, int64_t after_ms,
		  int64_t *next_ms);

#endif /* NV_ENGINE_CRON_H */
