/*
 * engine/tz.c - IANA time-zone offset periods from ICU, cached per thread.
 *
 * What it does. nv__tz_period(tz, t) answers "which UTC offset holds at
 * instant t in zone tz, since when, until when, and what comes on either
 * side". That is all the cron calculator needs: it walks civil dates with
 * its own arithmetic and converts local <-> UTC with these offsets.
 *
 * Where the data comes from. ICU's calendar service (ucal_*), which ships
 * its own copy of the IANA tz database; we never read or set the process
 * TZ variable. ICU silently turns an unknown id into "Etc/Unknown" (GMT),
 * so a zone is accepted only when ucal_getCanonicalTimeZoneID says it is a
 * system id; custom ids such as "GMT+05:30" are refused as well.
 *
 * Cost and caching. Opening a UCalendar costs microseconds and a UCalendar
 * is not thread-safe, so each thread owns a small cache (TZ_ZONES zones,
 * least recently used evicted), and each cached zone remembers its last
 * TZ_PERIODS periods (round-robin). A lookup inside a remembered period is
 * a string compare and two integer compares; a miss costs a handful of ICU
 * calls (~3-4 us): one offset, the next and previous transitions, and the
 * offsets beyond each. A cron schedule firing every few minutes therefore
 * touches ICU about twice a year.
 *
 * Threads. Only the owning thread ever touches its cache (a __thread
 * pointer); a pthread key destructor closes the calendars and frees the
 * cache when the thread exits. Nothing here is shared, so there is nothing
 * to lock and no atomic to pair.
 */
#include "engine/tz.h"

#include <pthread.h>
#include <string.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "base/alloc.h"
#include "nuvom.h"

#define TZ_ZONES 8
#define TZ_PERIODS 4

struct tz_zone {
	char name[NV_TZ_NAME_MAX + 1]; /* "" = free slot */
	UCalendar *cal;
	uint64_t used; /* LRU stamp */
	unsigned nper, victim;
	nv_tz_period per[TZ_PERIODS];
};

struct tz_cache {
	uint64_t tick;
	unsigned last; /* most recently used zone */
	struct tz_zone zone[TZ_ZONES];
};

static __thread struct tz_cache *tz_tls;
static pthread_key_t tz_key;
static pthread_once_t tz_once = PTHREAD_ONCE_INIT;
static int tz_key_ok; /* written once under tz_once */

static void
tz_cache_free(void *arg)
{
	struct tz_cache *c = arg;
	for (unsigned i = 0; i < TZ_ZONES; i++)
		if (c->zone[i].cal != NULL)
			ucal_close(c->zone[i].cal);
	if (c == tz_tls)
		tz_tls = NULL;
	nv__free(c);
}

static void
tz_key_init(void)
{
	tz_key_ok = pthread_key_create(&tz_key, tz_cache_free) == 0;
}

static struct tz_cache *
tz_cache_get(void)
{
	struct tz_cache *c = tz_tls;
	if (c != NULL)
		return c;
	pthread_once(&tz_once, tz_key_init);
	c = nv__calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	/* Without a key the cache would leak at thread exit: still correct,
	 * so only registration failure is tolerated, not allocation. */
	if (tz_key_ok)
		pthread_setspecific(tz_key, c);
	tz_tls = c;
	return c;
}

bool
nv__tz_is_utc(const char *tz)
{
	return tz == NULL || strcmp(tz, "UTC") == 0;
}

/* IANA names use letters, digits and "/_-+"; anything else (or too long) is
 * refused before ICU sees it. Returns the length, 0 when malformed. */
static size_t
tz_name_len(const char *tz)
{
	size_t n = 0;
	for (; tz[n] != '\0'; n++) {
		char ch = tz[n];
		if (n >= NV_TZ_NAME_MAX)
			return 0;
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' ||
		      ch == '-' || ch == '+'))
			return 0;
	}
	return n;
}

static int
tz_zone_open(struct tz_zone *z, const char *tz, size_t n)
{
	UChar id[NV_TZ_NAME_MAX + 1], canon[128];
	UErrorCode st = U_ZERO_ERROR;
	UBool sys = 0;
	UCalendar *cal;

	for (size_t i = 0; i < n; i++)
		id[i] = (UChar)tz[i];
	ucal_getCanonicalTimeZoneID(id, (int32_t)n, canon, 128, &sys, &st);
	if (U_FAILURE(st) || !sys)
		return st == U_MEMORY_ALLOCATION_ERROR ? NV_ENOMEM : NV_EINVAL;
	cal = ucal_open(id, (int32_t)n, "", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st) || cal == NULL) {
		if (cal != NULL)
			ucal_close(cal);
		return st == U_MEMORY_ALLOCATION_ERROR ? NV_ENOMEM : NV_EINVAL;
	}
	if (z->cal != NULL)
		ucal_close(z->cal);
	memcpy(z->name, tz, n + 1);
	z->cal = cal;
	z->nper = 0;
	z->victim = 0;
	return 0;
}

/* The cached zone named tz, opened on a miss (evicting the least recently
 * used one). */
static int
tz_zone_get(const char *tz, struct tz_zone **out)
{
	struct tz_cache *c;
	struct tz_zone *z;
	unsigned lru = 0;
	size_t n;
	int rc;

	if (tz == NULL)
		return NV_EINVAL;
	if ((c = tz_cache_get()) == NULL)
		return NV_ENOMEM;
	c->tick++;
	z = &c->zone[c->last];
	if (z->cal != NULL && strcmp(z->name, tz) == 0) {
		z->used = c->tick;
		*out = z;
		return 0;
	}
	for (unsigned i = 0; i < TZ_ZONES; i++) {
		z = &c->zone[i];
		if (z->cal != NULL && strcmp(z->name, tz) == 0) {
			z->used = c->tick;
			c->last = i;
			*out = z;
			return 0;
		}
		if (z->used < c->zone[lru].used)
			lru = i;
	}
	if ((n = tz_name_len(tz)) == 0)
		return NV_EINVAL;
	z = &c->zone[lru];
	if ((rc = tz_zone_open(z, tz, n)) != 0)
		return rc;
	z->used = c->tick;
	c->last = lru;
	*out = z;
	return 0;
}

static int32_t
tz_offset_at(UCalendar *cal, UDate t, UErrorCode *st)
{
	ucal_setMillis(cal, t, st);
	return ucal_get(cal, UCAL_ZONE_OFFSET, st) +
	       ucal_get(cal, UCAL_DST_OFFSET, st);
}

/* Asks ICU for the period around t. */
static int
tz_period_compute(UCalendar *cal, int64_t t, nv_tz_period *p)
{
	UErrorCode st = U_ZERO_ERROR;
	UDate d;

	p->off_ms = tz_offset_at(cal, (UDate)t, &st);
	p->end_ms = INT64_MAX;
	p->next_off_ms = p->off_ms;
	if (ucal_getTimeZoneTransitionDate(cal, UCAL_TZ_TRANSITION_NEXT, &d,
					   &st) &&
	    U_SUCCESS(st) && d < 9.0e18) {
		p->end_ms = (int64_t)d;
		p->next_off_ms = tz_offset_at(cal, d, &st);
		ucal_setMillis(cal, (UDate)t, &st);
	}
	p->start_ms = INT64_MIN;
	p->prev_off_ms = p->off_ms;
	if (ucal_getTimeZoneTransitionDate(
		cal, UCAL_TZ_TRANSITION_PREVIOUS_INCLUSIVE, &d, &st) &&
	    U_SUCCESS(st) && d > -9.0e18) {
		p->start_ms = (int64_t)d;
		p->prev_off_ms = tz_offset_at(cal, d - 1, &st);
	}
	/* A period that does not contain t would make callers loop: treat
	 * such zone data as unusable rather than trust it. */
	if (U_FAILURE(st) || p->start_ms > t || p->end_ms <= t)
		return st == U_MEMORY_ALLOCATION_ERROR ? NV_ENOMEM : NV_EINVAL;
	return 0;
}

int
nv__tz_period(const char *tz, int64_t t_ms, nv_tz_period *out)
{
	struct tz_zone *z;
	int rc;

	if (out == NULL)
		return NV_EINVAL;
	if ((rc = tz_zone_get(tz, &z)) != 0)
		return rc;
	for (unsigned i = 0; i < z->nper; i++) {
		const nv_tz_period *p = &z->per[i];
		if (p->start_ms <= t_ms && t_ms < p->end_ms) {
			*out = *p;
			return 0;
		}
	}
	if ((rc = tz_period_compute(z->cal, t_ms, out)) != 0)
		return rc;
	if (z->nper < TZ_PERIODS) {
		z->per[z->nper++] = *out;
	} else {
		z->per[z->victim] = *out;
		z->victim = (z->victim + 1) % TZ_PERIODS;
	}
	return 0;
}

int
nv__tz_check(const char *tz)
{
	struct tz_zone *z;
	if (nv__tz_is_utc(tz))
		return 0;
	return tz_zone_get(tz, &z);
}
