/*
 * engine/config.c - nv_config defaults, copies, effective paths, and
 * nv_config_from_env (reading the .env file); the NUVOM_* variable table
 * and the loader that applies it are in engine/config_env.c.
 *
 * nv_config_from_env reads the .env file into memory (at most
 * CFG_FILE_MAX bytes) and hands it to nv__config_load (config_env.c),
 * which applies the file and then the process environment to a scratch
 * copy and copies it back only when every value was valid.
 *
 * Strings read by the loader live in the config's own nv__strbuf, one
 * fixed slot per field; built-in words ("memory", "dev", ...) point at
 * static literals instead. Because those pointers point into the struct
 * itself, configs are copied with nv__config_copy (config_int.h), which
 * re-points them into the copy.
 *
 * The message behind nv_config_error() is one thread-local buffer owned
 * here; both files write it through nv__config_seterr.
 *
 * Threads: everything here touches only the caller's struct (and, for
 * nv_config_from_env, the file); the error message is thread-local.
 */
#include "engine/config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

#define CFG_FILE_MAX (1u << 20) /* a .env larger than this is refused */
#define CFG_ERR_LEN 1024

static _Thread_local char cfg_err[CFG_ERR_LEN];

/* Offsets of every const char * field (for nv__config_copy). */
#define OFF(f) offsetof(nv_config, f)
static const size_t str_fields[] = {
    OFF(queue_backend), OFF(result_backend),	OFF(data_dir),
    OFF(manifest_path), OFF(sqlite_queue_path), OFF(sqlite_result_path),
    OFF(environment),
};

/* ------------------------------------------------------------- defaults */

void
nv_config_init(nv_config *cfg)
{
	if (cfg == NULL)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 0;
	cfg->pin_workers = false;
	cfg->queue_capacity = 65536;
	cfg->queue_backend = "memory";
	cfg->result_backend = "memory";
	cfg->data_dir = ".nuvom";
	cfg->job_timeout_ms = 30000;
	cfg->retry_delay_ms = 1000;
	cfg->timeout_policy = NV_TIMEOUT_RETRY;
	cfg->batch_size = 32;
	cfg->enqueue_timeout_ms = 1000;
	cfg->max_args = (size_t)1 << 20;
	cfg->result_retention = 1000000;
	cfg->max_extra_workers = NV__CONFIG_AUTO;
	cfg->fsync = NV_FSYNC_BATCH;
	cfg->fsync_interval_ms = 2;
	cfg->persist_backlog = (size_t)1 << 18;
	cfg->misfire = NV_MISFIRE_ONCE;
	cfg->log_level = NV_LOG_WARN;
	cfg->manifest_path = NULL;	/* <data_dir>/manifest.json */
	cfg->sqlite_queue_path = NULL;	/* <data_dir>/queue.db */
	cfg->sqlite_result_path = NULL; /* <data_dir>/results.db */
	cfg->environment = "dev";
}

const char *
nv_config_error(void)
{
	return cfg_err;
}

void
nv__config_seterr(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cfg_err, sizeof(cfg_err), fmt, ap);
	va_end(ap);
}

void
nv__config_clearerr(void)
{
	cfg_err[0] = '\0';
}

void
nv__config_copy(nv_config *dst, const nv_config *src)
{
	uintptr_t lo = (uintptr_t)src->nv__strbuf;
	uintptr_t hi = lo + sizeof(src->nv__strbuf);

	if (dst == src)
		return;
	memcpy(dst, src, sizeof(*dst));
	for (size_t i = 0; i < sizeof(str_fields) / sizeof(str_fields[0]);
	     i++) {
		const char *p;
		memcpy(&p, (const char *)src + str_fields[i], sizeof(p));
		if (p != NULL && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
			p = (const char *)dst->nv__strbuf + ((uintptr_t)p - lo);
			memcpy((char *)dst + str_fields[i], &p, sizeof(p));
		}
	}
}

/* ------------------------------------------------------- the .env file */

/* Reads a whole file (at most CFG_FILE_MAX bytes) into *out. */
static int
read_file(const char *path, char **out, size_t *outlen)
{
	size_t cap = 4096, n = 0;
	char *buf;
	int fd, err;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		snprintf(cfg_err, sizeof(cfg_err), "cannot open %s: %s", path,
			 strerror(err));
		return (err == ENOENT || err == ENOTDIR) ? NV_ENOENT : NV_EIO;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		snprintf(cfg_err, sizeof(cfg_err),
			 "cannot read %s: is a directory", path);
		return NV_EIO;
	}
	if ((buf = nv__malloc(cap)) == NULL) {
		close(fd);
		return NV_ENOMEM;
	}
	for (;;) {
		ssize_t r;
		if (n == cap) {
			char *nb;
			size_t ncap = cap * 2;
			if ((nb = nv__realloc(buf, ncap)) == NULL) {
				close(fd);
				nv__free(buf);
				return NV_ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = errno;
			close(fd);
			nv__free(buf);
			snprintf(cfg_err, sizeof(cfg_err), "cannot read %s: %s",
				 path, strerror(err));
			return NV_EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > CFG_FILE_MAX) {
			close(fd);
			nv__free(buf);
			snprintf(cfg_err, sizeof(cfg_err),
				 "%s: larger than %u bytes", path,
				 CFG_FILE_MAX);
			return NV_ECONFIG;
		}
	}
	close(fd);
	*out = buf;
	*outlen = n;
	return 0;
}

int
nv_config_from_env(nv_config *cfg, const char *dotenv_path)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	cfg_err[0] = '\0';
	if (cfg == NULL) {
		snprintf(cfg_err, sizeof(cfg_err), "cfg is NULL");
		return NV_EINVAL;
	}
	if (dotenv_path != NULL &&
	    (rc = read_file(dotenv_path, &text, &len)) != 0) {
		if (rc == NV_ENOMEM)
			snprintf(cfg_err, sizeof(cfg_err), "out of memory");
		return rc;
	}
	rc = nv__config_load(cfg, text, len, dotenv_path, true);
	nv__free(text);
	return rc;
}

/* ------------------------------------------------------------- helpers */

int
nv__config_path(const nv_config *cfg, nv__cfg_path which, char *buf, size_t len)
{
	static const char *const names[] = {"manifest.json", "queue.db",
					    "results.db"};
	const char *set, *dir;
	size_t dl;
	int n;

	if (cfg == NULL || buf == NULL || (unsigned)which > 2)
		return NV_EINVAL;
	set = which == NV__CFG_MANIFEST	      ? cfg->manifest_path
	      : which == NV__CFG_SQLITE_QUEUE ? cfg->sqlite_queue_path
					      : cfg->sqlite_result_path;
	if (set != NULL)
		n = snprintf(buf, len, "%s", set);
	else {
		dir = cfg->data_dir ? cfg->data_dir : ".nuvom";
		dl = strlen(dir);
		n = snprintf(buf, len, "%s%s%s", dir,
			     dl > 0 && dir[dl - 1] == '/' ? "" : "/",
			     names[which]);
	}
	return (n < 0 || (size_t)n >= len) ? NV_EINVAL : 0;
}

unsigned
nv__config_extra_workers(const nv_config *cfg, unsigned nworkers)
{
	return cfg->max_extra_workers == NV__CONFIG_AUTO
		   ? nworkers
		   : cfg->max_extra_workers;
}
