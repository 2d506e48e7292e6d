/*
 * fuzz_dotenv.c - libFuzzer target for the .env parser and the NUVOM_*
 * loader on top of it.
 *
 * Checks beyond "no crash": every assignment has a key matching
 * [A-Za-z_][A-Za-z0-9_]*, a value without NUL bytes that is no longer than
 * the input, and a line number that only grows and stays within the
 * input's line count; an error is NV_ECONFIG with a "line N:" message.
 * The same bytes then go through nv__config_load (environment off), which
 * must leave the config untouched unless it returns 0.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config_int.h"
#include "engine/dotenv.h"

struct fz {
	size_t len;
	unsigned lines, last;
};

static int
check_cb(void *arg, const char *key, const char *val, size_t vallen,
	 unsigned line)
{
	struct fz *f = arg;
	const char *k = key;
	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
	      *k == '_'))
		abort();
	for (k++; *k; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			abort();
	if (strlen(val) != vallen || vallen > f->len)
		abort();
	if (line <= f->last || line > f->lines)
		abort();
	f->last = line;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {size, 1, 0};
	char err[128];
	nv_config cfg, before;
	int rc;

	for (size_t i = 0; i < size; i++)
		f.lines += data[i] == '\n';
	rc = nv__dotenv_parse((const char *)data, size, check_cb, &f, err,
			      sizeof(err));
	if (rc != 0 && (rc != NV_ECONFIG || strncmp(err, "line ", 5) != 0))
		abort();

	nv_config_init(&cfg);
	nv_config_init(&before);
	rc = nv__config_load(&cfg, (const char *)data, size, "fuzz", false);
	if (rc != 0 && memcmp(&cfg, &before, sizeof(cfg)) != 0)
		abort();
	if (rc != 0 && (rc != NV_ECONFIG || nv_config_error()[0] == '\0'))
		abort();
	return 0;
}
