/* testutil.c - helpers shared by the tests. */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

uint64_t
nv_test_scaled(uint64_t n)
{
	const char *s = getenv("NV_STRESS_SCALE");
	unsigned long pct = s ? strtoul(s, NULL, 10) : 100;
	uint64_t r;
	if (pct == 0)
		pct = 100;
	r = n * pct / 100;
	return r ? r : 1;
}

bool
nv_test_sanitized(void)
{
#if defined(NUVOM_NO_JEMALLOC)
	return true;
#else
	return false;
#endif
}

bool
nv_test_wait_until(bool (*pred)(void *), void *arg, unsigned deadline_ms)
{
	uint64_t end = nv__mono_ms() + deadline_ms;
	while (!pred(arg)) {
		if (nv__mono_ms() >= end)
			return pred(arg);
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	return true;
}

void
nv_test_tmpdir(char *buf, size_t len, const char *tag)
{
	const char *base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(buf, len, "%s/nvtest-%s-XXXXXX", base, tag ? tag : "t");
	if (mkdtemp(buf) == NULL) {
		perror("mkdtemp");
		abort();
	}
}

void
nv_test_rmrf(const char *path)
{
	char cmd[4200];
	if (path == NULL || strstr(path, "nvtest-") == NULL)
		return; /* refuse to delete anything we did not make */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", path);
}

void
nv_test_pin(unsigned cpu)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	CPU_ZERO(&set);
	CPU_SET(cpu % (unsigned)n, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void
nv_test_clear_env(const char *prefix)
{
	extern char **environ;
	size_t plen = strlen(prefix);
	char names[64][128];
	int n;
	do {
		n = 0;
		for (char **e = environ; e && *e && n < 64; e++) {
			const char *eq = strchr(*e, '=');
			size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
			if (strncmp(*e, prefix, plen) != 0 || len >= 128)
				continue;
			memcpy(names[n], *e, len);
			names[n++][len] = '\0';
		}
		for (int i = 0; i < n; i++)
			unsetenv(names[i]);
	} while (n > 0);
}

int
nv_test_env_reset(void **state)
{
	(void)state;
	nv_test_clear_env("NUVOM_");
	return 0;
}
