/* base/clock.h - clocks (internal). Monotonic for deadlines and latency,
 * realtime only where the user speaks epoch time (schedules, timestamps). */
#ifndef NV_BASE_CLOCK_H
#define NV_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
nv__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
nv__mono_ms(void)
{
	return nv__mono_ns() / 1000000u;
}

static inline int64_t
nv__epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Absolute CLOCK_MONOTONIC timespec `ms` from now (for timed waits). */
static inline struct timespec
nv__deadline_ts(uint64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

#endif /* NV_BASE_CLOCK_H */
