/*
 * engine/config_env.c - the NUVOM_* variables: their table, the value
 * parsers, and the loader (nv__config_load) that applies .env text and the
 * process environment to an nv_config; also `nuvom config`'s view of a
 * config (nv__config_describe). Defaults, copies and reading the .env file
 * are in engine/config.c.
 *
 * Every variable is one row of a table (name, field offset, type, limits,
 * allowed words), so parsing, messages, `nuvom config` output and the docs
 * table all follow one list. nv__config_load hands the .env text to the
 * dotenv parser (engine/dotenv.c), then walks the process environment;
 * both write into a scratch copy of the caller's config, which is copied
 * back only when every value was valid, so a bad value never leaves a
 * half-applied config. The process environment wins: a file assignment
 * whose name is set in the environment is skipped unchecked (it is not
 * used). Keys of the file that do not start with NUVOM_ belong to the
 * user and are ignored; an unknown NUVOM_* name, in the file or the
 * environment, is an error (usually a typo).
 *
 * String values are stored in the config's own nv__strbuf, one fixed slot
 * per field (see config.c on copying such configs).
 *
 * Numbers are parsed strictly: decimal digits only (no sign, blanks, hex or
 * exponent), range-checked before they can overflow. Seconds take a
 * fraction ("2.5") and are rounded to the nearest millisecond.
 *
 * Threads: only the caller's struct is touched; messages go to the
 * thread-local buffer of nv_config_error(). Reading the environment is not
 * safe against a concurrent setenv/putenv in another thread (libc's rule).
 */
#include "engine/config_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engine/dotenv.h"

#define CFG_SHOW_MAX 64 /* bytes of a bad value quoted in a message */

_Static_assert(sizeof(nv_timeout_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(nv_fsync_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(nv_misfire_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(nv_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(((nv_config *)0)->nv__strbuf[0]) == NV_CONFIG_STR,
	       "strbuf slot size");

/* ------------------------------------------------------------ the table */

enum cv_type {
	CV_UINT,    /* unsigned, [min, max] */
	CV_SIZE,    /* size_t, [min, max] */
	CV_U32,	    /* uint32_t, [min, max] */
	CV_SECS,    /* decimal seconds into a uint32_t of ms, [min, max] ms */
	CV_BOOL,    /* bool */
	CV_ENUM,    /* an enum field, from choices (case-insensitive) */
	CV_WORD,    /* const char *, one of choices (points at the literal) */
	CV_BACKEND, /* const char *, built-in word or a plugin identifier */
	CV_PATH,    /* const char *, any non-empty string */
	CV_EXTRA    /* unsigned, [min, max] or "auto" (NV__CONFIG_AUTO) */
};

struct cv_choice {
	const char *word;
	int value;
};

struct cvar {
	const char *name;
	enum cv_type type;
	size_t off;
	uint64_t min, max;
	const struct cv_choice *choices; /* NULL-word terminated */
	unsigned slot;			 /* nv__strbuf slot of string fields */
	const char *allowed;		 /* for messages */
};

static const struct cv_choice timeout_words[] = {{"retry", NV_TIMEOUT_RETRY},
						 {"fail", NV_TIMEOUT_FAIL},
						 {"ignore", NV_TIMEOUT_IGNORE},
						 {NULL, 0}};
static const struct cv_choice log_words[] = {
    {"DEBUG", NV_LOG_DEBUG}, {"INFO", NV_LOG_INFO},   {"WARNING", NV_LOG_WARN},
    {"WARN", NV_LOG_WARN},   {"ERROR", NV_LOG_ERROR}, {NULL, 0}};
static const struct cv_choice env_words[] = {
    {"dev", 0}, {"test", 0}, {"prod", 0}, {NULL, 0}};
static const struct cv_choice fsync_words[] = {{"always", NV_FSYNC_ALWAYS},
					       {"batch", NV_FSYNC_BATCH},
					       {"off", NV_FSYNC_OFF},
					       {NULL, 0}};
static const struct cv_choice misfire_words[] = {
    {"once", NV_MISFIRE_ONCE}, {"skip", NV_MISFIRE_SKIP}, {NULL, 0}};
static const struct cv_choice backend_words[] = {
    {"memory", 0}, {"file", 0}, {"sqlite", 0}, {NULL, 0}};
static const struct cv_choice bool_words[] = {
    {"true", 1}, {"false", 0}, {"1", 1},   {"0", 0}, {"yes", 1},
    {"no", 0},	 {"on", 1},    {"off", 0}, {NULL, 0}};

#define OFF(f) offsetof(nv_config, f)
#define MS_MAX ((uint64_t)UINT32_MAX)

/* strbuf slots: one per string field, so fields never share bytes. */
enum {
	SLOT_QUEUE_BACKEND,
	SLOT_RESULT_BACKEND,
	SLOT_DATA_DIR,
	SLOT_MANIFEST,
	SLOT_SQLITE_QUEUE,
	SLOT_SQLITE_RESULT
};

static const struct cvar cvars[] = {
    {"NUVOM_QUEUE_BACKEND", CV_BACKEND, OFF(queue_backend), 0, 0, backend_words,
     SLOT_QUEUE_BACKEND,
     "memory, file, sqlite or a plugin name ([A-Za-z0-9_.-]+)"},
    {"NUVOM_RESULT_BACKEND", CV_BACKEND, OFF(result_backend), 0, 0,
     backend_words, SLOT_RESULT_BACKEND,
     "memory, file, sqlite or a plugin name ([A-Za-z0-9_.-]+)"},
    {"NUVOM_MAX_WORKERS", CV_UINT, OFF(workers), 0, 1024, NULL, 0,
     "an integer 0..1024 (0 = online CPUs)"},
    {"NUVOM_BATCH_SIZE", CV_UINT, OFF(batch_size), 1, 4096, NULL, 0,
     "an integer 1..4096"},
    {"NUVOM_JOB_TIMEOUT_SECS", CV_SECS, OFF(job_timeout_ms), 1, MS_MAX, NULL, 0,
     "seconds > 0 (e.g. 2.5), at most 4294967.295"},
    {"NUVOM_TIMEOUT_POLICY", CV_ENUM, OFF(timeout_policy), 0, 0, timeout_words,
     0, "retry, fail or ignore"},
    {"NUVOM_RETRY_DELAY_SECS", CV_SECS, OFF(retry_delay_ms), 0, MS_MAX, NULL, 0,
     "seconds >= 0 (e.g. 0.5), at most 4294967.295"},
    {"NUVOM_MANIFEST_PATH", CV_PATH, OFF(manifest_path), 0, 0, NULL,
     SLOT_MANIFEST, "a non-empty path"},
    {"NUVOM_SQLITE_QUEUE_PATH", CV_PATH, OFF(sqlite_queue_path), 0, 0, NULL,
     SLOT_SQLITE_QUEUE, "a non-empty path"},
    {"NUVOM_SQLITE_RESULT_PATH", CV_PATH, OFF(sqlite_result_path), 0, 0, NULL,
     SLOT_SQLITE_RESULT, "a non-empty path"},
    {"NUVOM_LOG_LEVEL", CV_ENUM, OFF(log_level), 0, 0, log_words, 0,
     "DEBUG, INFO, WARNING, WARN or ERROR"},
    {"NUVOM_ENVIRONMENT", CV_WORD, OFF(environment), 0, 0, env_words, 0,
     "dev, test or prod"},
    {"NUVOM_QUEUE_CAPACITY", CV_SIZE, OFF(queue_capacity), 2, 1u << 30, NULL, 0,
     "an integer 2..1073741824"},
    {"NUVOM_PIN_WORKERS", CV_BOOL, OFF(pin_workers), 0, 0, bool_words, 0,
     "true, false, 1, 0, yes, no, on or off"},
    {"NUVOM_FSYNC", CV_ENUM, OFF(fsync), 0, 0, fsync_words, 0,
     "always, batch or off"},
    {"NUVOM_FSYNC_INTERVAL_MS", CV_U32, OFF(fsync_interval_ms), 0, 60000, NULL,
     0, "an integer 0..60000"},
    {"NUVOM_PERSIST_BACKLOG", CV_SIZE, OFF(persist_backlog), 1, 1u << 30,
     NULL, 0, "an integer 1..1073741824"},
    {"NUVOM_DATA_DIR", CV_PATH, OFF(data_dir), 0, 0, NULL, SLOT_DATA_DIR,
     "a non-empty path"},
    {"NUVOM_ENQUEUE_TIMEOUT_MS", CV_U32, OFF(enqueue_timeout_ms), 0, INT32_MAX,
     NULL, 0, "an integer 0..2147483647"},
    {"NUVOM_MAX_ARGS_BYTES", CV_SIZE, OFF(max_args), 1, 1u << 30, NULL, 0,
     "an integer 1..1073741824"},
    {"NUVOM_RESULT_RETENTION", CV_SIZE, OFF(result_retention), 1,
     (uint64_t)1 << 40, NULL, 0, "an integer 1..1099511627776"},
    {"NUVOM_MAX_EXTRA_WORKERS", CV_EXTRA, OFF(max_extra_workers), 0, 1024, NULL,
     0, "an integer 0..1024 or auto (= the worker count)"},
    {"NUVOM_MISFIRE_POLICY", CV_ENUM, OFF(misfire), 0, 0, misfire_words, 0,
     "once or skip"},
};

#define NCVARS (sizeof(cvars) / sizeof(cvars[0]))

/* --------------------------------------------------------------- errors */

/* Quotes at most CFG_SHOW_MAX bytes of s, escaping what is not printable. */
static void
show_value(const char *s, char *out, size_t len)
{
	size_t k = 0, i;
	for (i = 0; s[i] != '\0' && i < CFG_SHOW_MAX && k + 5 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[k++] = (char)c;
		else
			k += (size_t)snprintf(out + k, len - k, "\\x%02x", c);
	}
	if (s[i] != '\0' && k + 4 < len) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

static int
bad_value(const struct cvar *v, const char *val, const char *where,
	  const char *why)
{
	char shown[CFG_SHOW_MAX * 4 + 8];
	show_value(val, shown, sizeof(shown));
	nv__config_seterr("%s=\"%s\" (from %s): %s%sexpected %s", v->name,
			  shown, where, why ? why : "", why ? "; " : "",
			  v->allowed);
	return NV_ECONFIG;
}

/* Edit distance, for "did you mean"; names are short. */
static size_t
edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
	size_t row[64], i, j;
	if (nb >= 64)
		return SIZE_MAX;
	for (j = 0; j <= nb; j++)
		row[j] = j;
	for (i = 1; i <= na; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (j = 1; j <= nb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

static int
unknown_name(const char *name, size_t n, const char *where)
{
	char shown[CFG_SHOW_MAX * 4 + 8], tmp[CFG_SHOW_MAX + 1];
	const char *best = NULL;
	size_t bestd = 4; /* suggest only close names */

	memcpy(tmp, name, n < CFG_SHOW_MAX ? n : CFG_SHOW_MAX);
	tmp[n < CFG_SHOW_MAX ? n : CFG_SHOW_MAX] = '\0';
	show_value(tmp, shown, sizeof(shown));
	for (size_t i = 0; n < 64 && i < NCVARS; i++) {
		size_t d = edit_distance(name, n, cvars[i].name,
					 strlen(cvars[i].name));
		if (d < bestd) {
			bestd = d;
			best = cvars[i].name;
		}
	}
	if (best != NULL)
		nv__config_seterr(
		    "unknown variable %s (from %s); did you mean %s?", shown,
		    where, best);
	else
		nv__config_seterr(
		    "unknown variable %s (from %s); the NUVOM_* "
		    "variables are listed in docs/configuration.md",
		    shown, where);
	return NV_ECONFIG;
}

/* -------------------------------------------------------------- parsing */

/* Strict decimal integer: [0-9]+, no sign, no blanks; fails above max. */
static bool
parse_uint(const char *s, uint64_t max, uint64_t *out, bool *overflow)
{
	uint64_t v = 0;
	*overflow = false;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned d;
		if (*s < '0' || *s > '9')
			return false;
		d = (unsigned)(*s - '0');
		if (d > max || v > (max - d) / 10) {
			*overflow = true;
			/* keep checking the syntax: "99x" is junk first */
			for (s++; *s != '\0'; s++)
				if (*s < '0' || *s > '9') {
					*overflow = false;
					return false;
				}
			return false;
		}
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Decimal seconds ("2", "2.5", ".25", "2.") into ms, rounded half up.
 * Fails on junk or when the result exceeds max ms. */
static bool
parse_secs(const char *s, uint64_t max, uint64_t *out_ms, bool *overflow)
{
	uint64_t whole = 0, frac = 0;
	unsigned nfrac = 0, ndig = 0;
	bool round_up = false;

	*overflow = false;
	for (; *s >= '0' && *s <= '9'; s++, ndig++) {
		if (!*overflow && whole <= max / 1000)
			whole = whole * 10 + (unsigned)(*s - '0');
		if (whole > max / 1000)
			*overflow = true;
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, ndig++, nfrac++) {
			if (nfrac < 3)
				frac = frac * 10 + (unsigned)(*s - '0');
			else if (nfrac == 3)
				round_up = *s >= '5';
		}
	}
	if (*s != '\0' || ndig == 0) {
		*overflow = false;
		return false;
	}
	if (*overflow)
		return false;
	for (; nfrac < 3; nfrac++)
		frac *= 10;
	whole = whole * 1000 + frac + (round_up ? 1 : 0);
	if (whole > max) {
		*overflow = true;
		return false;
	}
	*out_ms = whole;
	return true;
}

static const struct cv_choice *
find_word(const struct cv_choice *c, const char *s)
{
	for (; c->word != NULL; c++)
		if (strcasecmp(c->word, s) == 0)
			return c;
	return NULL;
}

static bool
is_plugin_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

static void
set_str(nv_config *c, const struct cvar *v, const char *p)
{
	memcpy((char *)c + v->off, &p, sizeof(p));
}

/* Stores val (validated) into the slot of v and points the field there. */
static int
set_owned_str(nv_config *c, const struct cvar *v, const char *val,
	      const char *where)
{
	size_t n = strlen(val);
	if (n >= NV_CONFIG_STR)
		return bad_value(v, val, where,
				 "longer than 255 bytes (NV_CONFIG_STR - 1)");
	memcpy(c->nv__strbuf[v->slot], val, n + 1);
	set_str(c, v, c->nv__strbuf[v->slot]);
	return 0;
}

/* Parses val for v and stores it into c; where names the source. */
static int
cv_apply(nv_config *c, const struct cvar *v, const char *val, const char *where)
{
	const struct cv_choice *w;
	uint64_t n = 0;
	bool of = false;
	char why[96];

	if (val[0] == '\0')
		return bad_value(v, val, where, "empty value");
	switch (v->type) {
	case CV_EXTRA:
		if (strcasecmp(val, "auto") == 0) {
			unsigned a = NV__CONFIG_AUTO;
			memcpy((char *)c + v->off, &a, sizeof(a));
			return 0;
		}
		/* fall through */
	case CV_UINT:
	case CV_SIZE:
	case CV_U32:
		if (!parse_uint(val, v->max, &n, &of)) {
			if (of)
				snprintf(why, sizeof(why),
					 "out of range (above %llu)",
					 (unsigned long long)v->max);
			return bad_value(v, val, where,
					 of ? why : "not a plain integer");
		}
		if (n < v->min) {
			snprintf(why, sizeof(why), "out of range (below %llu)",
				 (unsigned long long)v->min);
			return bad_value(v, val, where, why);
		}
		if (v->type == CV_SIZE) {
			size_t z = (size_t)n;
			memcpy((char *)c + v->off, &z, sizeof(z));
		} else if (v->type == CV_U32) {
			uint32_t u = (uint32_t)n;
			memcpy((char *)c + v->off, &u, sizeof(u));
		} else {
			unsigned u = (unsigned)n;
			memcpy((char *)c + v->off, &u, sizeof(u));
		}
		return 0;
	case CV_SECS: {
		uint32_t ms;
		if (!parse_secs(val, v->max, &n, &of))
			return bad_value(v, val, where,
					 of ? "out of range"
					    : "not a decimal number");
		if (n < v->min)
			return bad_value(v, val, where,
					 "must be at least 0.001 s");
		ms = (uint32_t)n;
		memcpy((char *)c + v->off, &ms, sizeof(ms));
		return 0;
	}
	case CV_BOOL:
		if ((w = find_word(v->choices, val)) == NULL)
			return bad_value(v, val, where, NULL);
		*(bool *)((char *)c + v->off) = w->value != 0;
		return 0;
	case CV_ENUM:
		if ((w = find_word(v->choices, val)) == NULL)
			return bad_value(v, val, where, NULL);
		memcpy((char *)c + v->off, &w->value, sizeof(int));
		return 0;
	case CV_WORD:
		if ((w = find_word(v->choices, val)) == NULL)
			return bad_value(v, val, where, NULL);
		set_str(c, v, w->word);
		return 0;
	case CV_BACKEND:
		if ((w = find_word(v->choices, val)) != NULL) {
			set_str(c, v, w->word);
			return 0;
		}
		if (!is_plugin_name(val))
			return bad_value(v, val, where, "not a backend name");
		return set_owned_str(c, v, val, where);
	case CV_PATH:
		return set_owned_str(c, v, val, where);
	}
	return NV_EINVAL;
}

static const struct cvar *
find_var(const char *name, size_t n)
{
	for (size_t i = 0; i < NCVARS; i++)
		if (strlen(cvars[i].name) == n &&
		    memcmp(cvars[i].name, name, n) == 0)
			return &cvars[i];
	return NULL;
}

/* -------------------------------------------------------------- loading */

struct load {
	nv_config *cfg; /* the scratch copy */
	const char *origin;
	bool use_environ;
};

static int
dotenv_cb(void *arg, const char *key, const char *val, size_t vallen,
	  unsigned line)
{
	struct load *l = arg;
	const struct cvar *v;
	char where[NV_CONFIG_STR + 32];
	size_t n = strlen(key);

	(void)vallen;
	if (strncmp(key, "NUVOM_", 6) != 0)
		return 0; /* the user's own variable */
	if (l->use_environ && getenv(key) != NULL)
		return 0; /* the environment wins */
	snprintf(where, sizeof(where), "%s:%u", l->origin, line);
	if ((v = find_var(key, n)) == NULL)
		return unknown_name(key, n, where);
	return cv_apply(l->cfg, v, val, where);
}

static int
apply_environ(nv_config *cfg)
{
	for (char **e = environ; e != NULL && *e != NULL; e++) {
		const char *eq;
		const struct cvar *v;
		int rc;

		if (strncmp(*e, "NUVOM_", 6) != 0)
			continue;
		if ((eq = strchr(*e, '=')) == NULL)
			continue;
		if ((v = find_var(*e, (size_t)(eq - *e))) == NULL)
			return unknown_name(*e, (size_t)(eq - *e),
					    "environment");
		if ((rc = cv_apply(cfg, v, eq + 1, "environment")) != 0)
			return rc;
	}
	return 0;
}

int
nv__config_load(nv_config *cfg, const char *text, size_t len,
		const char *origin, bool use_environ)
{
	nv_config scratch;
	struct load l;
	char perr[256];
	int rc = 0;

	nv__config_clearerr();
	if (cfg == NULL || (text == NULL && len > 0))
		return NV_EINVAL;
	nv__config_copy(&scratch, cfg);
	l.cfg = &scratch;
	l.origin = origin ? origin : ".env";
	l.use_environ = use_environ;
	if (text != NULL) {
		rc = nv__dotenv_parse(text, len, dotenv_cb, &l, perr,
				      sizeof(perr));
		if (rc == NV_ENOMEM)
			nv__config_seterr("%s: out of memory", l.origin);
		else if (rc != 0 && nv_config_error()[0] == '\0')
			nv__config_seterr("%s: %s", l.origin, perr);
	}
	if (rc == 0 && use_environ)
		rc = apply_environ(&scratch);
	if (rc == 0)
		nv__config_copy(cfg, &scratch);
	return rc;
}

/* ------------------------------------------------------- `nuvom config` */

static const char *
choice_word(const struct cv_choice *c, int value)
{
	for (; c->word != NULL; c++)
		if (c->value == value)
			return c->word;
	return "?";
}

bool
nv__config_describe(const nv_config *cfg, size_t i, const char **name,
		    char *val, size_t len)
{
	const struct cvar *v;
	const char *base = (const char *)cfg;
	const char *s;
	unsigned u;
	uint32_t u32;
	size_t z;
	int e;

	if (i >= NCVARS)
		return false;
	v = &cvars[i];
	*name = v->name;
	switch (v->type) {
	case CV_UINT:
	case CV_EXTRA:
		memcpy(&u, base + v->off, sizeof(u));
		if (v->type == CV_EXTRA && u == NV__CONFIG_AUTO)
			snprintf(val, len, "auto");
		else
			snprintf(val, len, "%u", u);
		break;
	case CV_SIZE:
		memcpy(&z, base + v->off, sizeof(z));
		snprintf(val, len, "%zu", z);
		break;
	case CV_U32:
		memcpy(&u32, base + v->off, sizeof(u32));
		snprintf(val, len, "%u", (unsigned)u32);
		break;
	case CV_SECS: {
		char t[32];
		size_t k;
		memcpy(&u32, base + v->off, sizeof(u32));
		snprintf(t, sizeof(t), "%u.%03u", (unsigned)(u32 / 1000),
			 (unsigned)(u32 % 1000));
		k = strlen(t);
		while (t[k - 1] == '0')
			t[--k] = '\0';
		if (t[k - 1] == '.')
			t[--k] = '\0';
		snprintf(val, len, "%s", t);
		break;
	}
	case CV_BOOL:
		snprintf(val, len, "%s",
			 *(const bool *)(base + v->off) ? "true" : "false");
		break;
	case CV_ENUM:
		memcpy(&e, base + v->off, sizeof(e));
		snprintf(val, len, "%s", choice_word(v->choices, e));
		break;
	case CV_WORD:
	case CV_BACKEND:
	case CV_PATH:
		memcpy(&s, base + v->off, sizeof(s));
		if (s == NULL && v->off == OFF(manifest_path))
			nv__config_path(cfg, NV__CFG_MANIFEST, val, len);
		else if (s == NULL && v->off == OFF(sqlite_queue_path))
			nv__config_path(cfg, NV__CFG_SQLITE_QUEUE, val, len);
		else if (s == NULL && v->off == OFF(sqlite_result_path))
			nv__config_path(cfg, NV__CFG_SQLITE_RESULT, val, len);
		else
			snprintf(val, len, "%s", s ? s : "");
		break;
	}
	return true;
}
