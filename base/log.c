/* log.c - leveled logging to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int nv__level = NV__LOG_WARN;

void
nv__log_set_level(int level)
{
	__atomic_store_n(&nv__level, level, __ATOMIC_RELAXED);
}

int
nv__log_level(void)
{
	return __atomic_load_n(&nv__level, __ATOMIC_RELAXED);
}

void
nv__log(int level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info",
					     "debug" };
	char buf[1024];
	va_list ap;
	int n;

	if (level > nv__log_level() || level < 0 || level > 3)
		return;
	n = snprintf(buf, sizeof(buf), "nuvom: %s: ", names[level]);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs of a whole line keeps concurrent lines unmixed. */
	fprintf(stderr, "%s\n", buf);
}
