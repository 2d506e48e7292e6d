/* ctest: labels=unit timeout=60 */
/*
 * test_dotenv.c - the .env parser on its own (engine/dotenv.c): every
 * syntax form, every malformed-line error with its line number, callback
 * stop, and hostile bytes; then nv_config_from_env with a .env file: the
 * environment wins, file:line in messages, all or nothing, missing and
 * unreadable files, and the example of docs/configuration.md.
 *
 * The file tests start and end with no NUVOM_* variable in the environment.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include <sys/stat.h>
#include <unistd.h>

#include "engine/config_int.h"
#include "engine/dotenv.h"

#define MAXKV 32

struct kv {
	char key[64];
	char *val; /* malloc'd copy */
	size_t len;
	unsigned line;
};

struct seen {
	struct kv kv[MAXKV];
	int n;
	int stop_at; /* return 99 on this call (1-based), 0 = never */
};

static int
collect_cb(void *arg, const char *key, const char *val, size_t vallen,
	   unsigned line)
{
	struct seen *s = arg;
	assert_true(s->n < MAXKV);
	assert_true(strlen(key) < sizeof(s->kv[0].key));
	assert_int_equal(strlen(val), vallen);
	strcpy(s->kv[s->n].key, key);
	s->kv[s->n].val = malloc(vallen + 1);
	assert_non_null(s->kv[s->n].val);
	memcpy(s->kv[s->n].val, val, vallen + 1);
	s->kv[s->n].len = vallen;
	s->kv[s->n].line = line;
	s->n++;
	return s->n == s->stop_at ? 99 : 0;
}

static void
seen_free(struct seen *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->kv[i].val);
	s->n = 0;
}

static int
parse(const char *text, struct seen *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	return nv__dotenv_parse(text, strlen(text), collect_cb, s, err, errlen);
}

static void
assert_kv(const struct seen *s, int i, const char *key, const char *val,
	  unsigned line)
{
	assert_true(i < s->n);
	assert_string_equal(s->kv[i].key, key);
	assert_string_equal(s->kv[i].val, val);
	assert_int_equal(s->kv[i].line, line);
}

static void
test_dotenv_basic_syntax(void **state)
{
	struct seen s;
	char err[128];
	const char *text = "# a comment\n"
			   "\n"
			   "A=1\n"
			   "   B_2 = two words  \n"
			   "export C=3\n"
			   "export\tD\t=\t4\n"
			   "\t# indented comment\n"
			   "E=\n"
			   "_F9=x";
	(void)state;
	assert_int_equal(parse(text, &s, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(s.n, 6);
	assert_kv(&s, 0, "A", "1", 3);
	assert_kv(&s, 1, "B_2", "two words", 4);
	assert_kv(&s, 2, "C", "3", 5);
	assert_kv(&s, 3, "D", "4", 6);
	assert_kv(&s, 4, "E", "", 8);
	assert_kv(&s, 5, "_F9", "x", 9);
	seen_free(&s);
}

static void
test_dotenv_inline_comments(void **state)
{
	struct seen s;
	const char *text = "A=value # comment\n"
			   "B=value\t# tab comment\n"
			   "C=a#b\n"
			   "D=#x\n"
			   "E= # only a comment\n"
			   "F='q # kept' # dropped\n"
			   "G=\"h # kept\"\t#dropped\n";
	(void)state;
	assert_int_equal(parse(text, &s, NULL, 0), 0);
	assert_int_equal(s.n, 7);
	assert_kv(&s, 0, "A", "value", 1);
	assert_kv(&s, 1, "B", "value", 2);
	assert_kv(&s, 2, "C", "a#b", 3);
	assert_kv(&s, 3, "D", "#x", 4);
	assert_kv(&s, 4, "E", "", 5);
	assert_kv(&s, 5, "F", "q # kept", 6);
	assert_kv(&s, 6, "G", "h # kept", 7);
	seen_free(&s);
}

static void
test_dotenv_quotes(void **state)
{
	struct seen s;
	const char *text = "S='lit \\n $HOME \"x\" \\\\'\n"
			   "D=\"a\\nb\\tc\\rd \\\"q\\\" \\\\ \\$HOME\"\n"
			   "U=\"keep \\q as written\"\n"
			   "E1=''\n"
			   "E2=\"\"\n"
			   "W=\"  spaced  \"\n"
			   "M=it's\n";
	(void)state;
	assert_int_equal(parse(text, &s, NULL, 0), 0);
	assert_int_equal(s.n, 7);
	assert_kv(&s, 0, "S", "lit \\n $HOME \"x\" \\\\", 1);
	assert_kv(&s, 1, "D", "a\nb\tc\rd \"q\" \\ $HOME", 2);
	assert_kv(&s, 2, "U", "keep \\q as written", 3);
	assert_kv(&s, 3, "E1", "", 4);
	assert_kv(&s, 4, "E2", "", 5);
	assert_kv(&s, 5, "W", "  spaced  ", 6);
	assert_kv(&s, 6, "M", "it's", 7);
	seen_free(&s);
}

static void
test_dotenv_line_endings(void **state)
{
	struct seen s;
	(void)state;
	assert_int_equal(parse("A=1\r\nB='2'\r\n\r\nC=\"3\"\r\n", &s, NULL, 0),
			 0);
	assert_int_equal(s.n, 3);
	assert_kv(&s, 0, "A", "1", 1);
	assert_kv(&s, 1, "B", "2", 2);
	assert_kv(&s, 2, "C", "3", 4);
	seen_free(&s);

	/* "export" alone is a valid key name. */
	assert_int_equal(parse("export=1\nexporter=2", &s, NULL, 0), 0);
	assert_int_equal(s.n, 2);
	assert_kv(&s, 0, "export", "1", 1);
	assert_kv(&s, 1, "exporter", "2", 2);
	seen_free(&s);

	assert_int_equal(parse("", &s, NULL, 0), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(nv__dotenv_parse(NULL, 0, collect_cb, &s, NULL, 0), 0);
	assert_int_equal(s.n, 0);
}

/* Each malformed line: the error names its line, and the lines before it
 * were delivered. */
static void
test_dotenv_malformed_lines(void **state)
{
	static const struct {
		const char *line;
		const char *what;
	} bad[] = {
	    {"NOEQUALS", "expected '='"},
	    {"KEY value", "expected '='"},
	    {"1KEY=x", "invalid key"},
	    {"=x", "invalid key"},
	    {"FOO-BAR=1", "invalid character '-'"},
	    {"FOO.BAR=1", "invalid character '.'"},
	    {"K='open", "unterminated single-quoted"},
	    {"K=\"open", "unterminated double-quoted"},
	    {"K=\"ends in backslash\\", "unterminated double-quoted"},
	    {"K='a'b", "after the closing quote"},
	    {"K=\"a\" b", "after the closing quote"},
	    {"export ", "missing key after 'export'"},
	    {"export  =1", "invalid key"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256], err[256], want[32];
		struct seen s;
		snprintf(text, sizeof(text), "# header\nOK=1\n\n%s\nAFTER=2\n",
			 bad[i].line);
		assert_int_equal(parse(text, &s, err, sizeof(err)), NV_ECONFIG);
		snprintf(want, sizeof(want), "line 4: ");
		if (strncmp(err, want, strlen(want)) != 0 ||
		    strstr(err, bad[i].what) == NULL)
			fail_msg("line '%s': got '%s', want '%s...%s'",
				 bad[i].line, err, want, bad[i].what);
		assert_int_equal(s.n, 1); /* OK=1, nothing after the error */
		assert_kv(&s, 0, "OK", "1", 2);
		seen_free(&s);
	}
}

static void
test_dotenv_nul_bytes(void **state)
{
	struct seen s;
	char err[128];
	static const char in_value[] = "A=1\nB=x\0y\n";
	static const char in_key[] = "A\0B=1\n";
	static const char in_quoted[] = "A=\"x\0\"\n";
	static const char in_single[] = "A='x\0'\n";
	static const char in_comment[] = "# c\0mment\nA=1 # \0\n";
	(void)state;

	memset(&s, 0, sizeof(s));
	assert_int_equal(nv__dotenv_parse(in_value, sizeof(in_value) - 1,
					  collect_cb, &s, err, sizeof(err)),
			 NV_ECONFIG);
	assert_non_null(strstr(err, "line 2: NUL byte"));
	seen_free(&s);
	assert_int_equal(nv__dotenv_parse(in_key, sizeof(in_key) - 1,
					  collect_cb, &s, err, sizeof(err)),
			 NV_ECONFIG);
	assert_non_null(strstr(err, "line 1: invalid character 0x00"));
	assert_int_equal(nv__dotenv_parse(in_quoted, sizeof(in_quoted) - 1,
					  collect_cb, &s, err, sizeof(err)),
			 NV_ECONFIG);
	assert_non_null(strstr(err, "NUL byte"));
	assert_int_equal(nv__dotenv_parse(in_single, sizeof(in_single) - 1,
					  collect_cb, &s, err, sizeof(err)),
			 NV_ECONFIG);
	assert_non_null(strstr(err, "NUL byte"));
	assert_int_equal(s.n, 0);
	assert_int_equal(nv__dotenv_parse(in_comment, sizeof(in_comment) - 1,
					  collect_cb, &s, err, sizeof(err)),
			 0);
	assert_int_equal(s.n, 1);
	assert_kv(&s, 0, "A", "1", 2);
	seen_free(&s);
}

static void
test_dotenv_huge_line_and_binary(void **state)
{
	size_t n = nv_test_scaled(1u << 20);
	char *text = malloc(n + 16);
	struct seen s;
	(void)state;
	assert_non_null(text);
	memcpy(text, "BIG=", 4);
	for (size_t i = 0; i < n; i++)
		text[4 + i] = (char)('a' + i % 26);
	memcpy(text + 4 + n, "\nU=\xff\xfe\xc3\n", 8);
	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    nv__dotenv_parse(text, 4 + n + 7, collect_cb, &s, NULL, 0), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.kv[0].len, n);
	assert_int_equal(s.kv[0].val[n - 1], (char)('a' + (n - 1) % 26));
	assert_kv(&s, 1, "U", "\xff\xfe\xc3", 2);
	seen_free(&s);
	free(text);
}

static void
test_dotenv_callback_stops(void **state)
{
	struct seen s;
	(void)state;
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(
	    nv__dotenv_parse("A=1\nB=2\nC=3\n", 12, collect_cb, &s, NULL, 0),
	    99);
	assert_int_equal(s.n, 2);
	seen_free(&s);
	assert_int_equal(nv__dotenv_parse("A=1", 3, NULL, NULL, NULL, 0),
			 NV_EINVAL);
	assert_int_equal(nv__dotenv_parse(NULL, 3, collect_cb, &s, NULL, 0),
			 NV_EINVAL);
}

static void
test_dotenv_small_error_buffer(void **state)
{
	struct seen s;
	char err[8];
	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(parse("A=1\nBAD\n", &s, err, sizeof(err)), NV_ECONFIG);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "line 2:", 7);
	seen_free(&s);
}

/* ------------------------------------------- nv_config_from_env + file */


static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

struct tmp {
	char dir[256];
	char path[300];
};

static void
tmp_make(struct tmp *t, const char *text)
{
	nv_test_tmpdir(t->dir, sizeof(t->dir), "config");
	snprintf(t->path, sizeof(t->path), "%s/.env", t->dir);
	if (text != NULL)
		write_file(t->path, text);
}

static void
test_dotenv_load_file(void **state)
{
	struct tmp t;
	nv_config c;
	(void)state;
	tmp_make(&t, "# app settings\n"
		     "DATABASE_URL=postgres://u@h/db\n"
		     "export NUVOM_MAX_WORKERS=3\n"
		     "NUVOM_QUEUE_BACKEND = \"sqlite\"\n"
		     "NUVOM_DATA_DIR='/var/lib/nuvom data'\n"
		     "NUVOM_JOB_TIMEOUT_SECS=2.5 # seconds\n"
		     "NUVOM_LOG_LEVEL=debug\r\n"
		     "NUVOM_SQLITE_QUEUE_PATH=\"q\\$1.db\"\n"
		     "NUVOM_BATCH_SIZE=8\n"
		     "NUVOM_BATCH_SIZE=9\n");
	nv_config_init(&c);
	assert_int_equal(nv_config_from_env(&c, t.path), 0);
	assert_int_equal(c.workers, 3);
	assert_string_equal(c.queue_backend, "sqlite");
	assert_string_equal(c.data_dir, "/var/lib/nuvom data");
	assert_int_equal(c.job_timeout_ms, 2500);
	assert_int_equal(c.log_level, NV_LOG_DEBUG);
	assert_string_equal(c.sqlite_queue_path, "q$1.db");
	assert_int_equal(c.batch_size, 9); /* the last assignment wins */
	/* The file does not touch the process environment. */
	assert_null(getenv("DATABASE_URL"));
	assert_null(getenv("NUVOM_MAX_WORKERS"));

	/* An empty file is fine. */
	write_file(t.path, "");
	nv_config_init(&c);
	assert_int_equal(nv_config_from_env(&c, t.path), 0);
	assert_int_equal(c.workers, 0);
	nv_test_rmrf(t.dir);
}

static void
test_dotenv_env_overrides_file(void **state)
{
	struct tmp t;
	nv_config c;
	(void)state;
	tmp_make(&t, "NUVOM_MAX_WORKERS=3\n"
		     "NUVOM_BATCH_SIZE=oops\n" /* shadowed: never checked */
		     "NUVOM_FSYNC=always\n");
	assert_int_equal(setenv("NUVOM_MAX_WORKERS", "5", 1), 0);
	assert_int_equal(setenv("NUVOM_BATCH_SIZE", "64", 1), 0);
	nv_config_init(&c);
	assert_int_equal(nv_config_from_env(&c, t.path), 0);
	assert_int_equal(c.workers, 5);
	assert_int_equal(c.batch_size, 64);
	assert_int_equal(c.fsync, NV_FSYNC_ALWAYS);

	/* Without the environment (the internal loader), the file's bad
	 * value is reported with file and line. */
	{
		static const char text[] = "NUVOM_MAX_WORKERS=3\n"
					   "NUVOM_BATCH_SIZE=oops\n";
		nv_config_init(&c);
		assert_int_equal(nv__config_load(&c, text, sizeof(text) - 1,
						 "mem.env", false),
				 NV_ECONFIG);
		assert_non_null(strstr(nv_config_error(),
				       "NUVOM_BATCH_SIZE=\"oops\" (from "
				       "mem.env:2)"));
		assert_int_equal(c.workers, 0);
	}
	/* A bad environment value is reported even when the file is fine. */
	assert_int_equal(setenv("NUVOM_MAX_WORKERS", "many", 1), 0);
	nv_config_init(&c);
	assert_int_equal(nv_config_from_env(&c, t.path), NV_ECONFIG);
	assert_non_null(
	    strstr(nv_config_error(),
		   "NUVOM_MAX_WORKERS=\"many\" (from environment)"));
	nv_test_rmrf(t.dir);
}

static void
test_dotenv_load_errors(void **state)
{
	struct tmp t;
	nv_config c, before;
	char want[400];
	(void)state;
	nv_config_init(&before);

	/* Bad value on line 3: file:line in the message, nothing applied. */
	tmp_make(&t, "NUVOM_MAX_WORKERS=3\n\nNUVOM_FSYNC=sometimes\n");
	nv_config_init(&c);
	assert_int_equal(nv_config_from_env(&c, t.path), NV_ECONFIG);
	snprintf(want, sizeof(want), "NUVOM_FSYNC=\"sometimes\" (from %s:3)",
		 t.path);
	assert_non_null(strstr(nv_config_error(), want));
	assert_memory_equal(&c, &before, sizeof(c));

	/* Unknown NUVOM_ name in the file. */
	write_file(t.path, "OTHER=1\nNUVOM_TYPO=1\n");
	assert_int_equal(nv_config_from_env(&c, t.path), NV_ECONFIG);
	snprintf(want, sizeof(want), "unknown variable NUVOM_TYPO (from %s:2)",
		 t.path);
	assert_non_null(strstr(nv_config_error(), want));

	/* Syntax error: path and line. */
	write_file(t.path, "NUVOM_MAX_WORKERS=3\nNUVOM_FSYNC='off\n");
	assert_int_equal(nv_config_from_env(&c, t.path), NV_ECONFIG);
	snprintf(want, sizeof(want), "%s: line 2: unterminated", t.path);
	assert_non_null(strstr(nv_config_error(), want));
	assert_memory_equal(&c, &before, sizeof(c));

	/* Larger than 1 MiB. */
	{
		size_t n = (1u << 20) + 10;
		char *big = malloc(n + 1);
		assert_non_null(big);
		memset(big, '#', n);
		big[n] = '\0';
		write_file(t.path, big);
		free(big);
		assert_int_equal(nv_config_from_env(&c, t.path), NV_ECONFIG);
		assert_non_null(strstr(nv_config_error(), "larger than"));
	}
	nv_test_rmrf(t.dir);
}

static void
test_dotenv_missing_unreadable(void **state)
{
	struct tmp t;
	nv_config c;
	char p[400];
	(void)state;
	tmp_make(&t, NULL);
	nv_config_init(&c);
	assert_int_equal(nv_config_from_env(&c, t.path), NV_ENOENT);
	assert_non_null(strstr(nv_config_error(), t.path));
	assert_non_null(strstr(nv_config_error(), "cannot open"));

	/* A path through a regular file (ENOTDIR) is missing too. */
	write_file(t.path, "A=1\n");
	snprintf(p, sizeof(p), "%s/sub/.env", t.path);
	assert_int_equal(nv_config_from_env(&c, p), NV_ENOENT);

	/* A directory cannot be read. */
	assert_int_equal(nv_config_from_env(&c, t.dir), NV_EIO);
	assert_non_null(strstr(nv_config_error(), "is a directory"));

	/* Permission denied (root reads anything: skip that part). */
	if (geteuid() != 0) {
		assert_int_equal(chmod(t.path, 0), 0);
		assert_int_equal(nv_config_from_env(&c, t.path), NV_EIO);
		assert_non_null(strstr(nv_config_error(), t.path));
		assert_int_equal(chmod(t.path, 0600), 0);
	}
	nv_test_rmrf(t.dir);
}

/* docs/configuration.md: its table lists every variable, and its .env
 * example loads as documented. */
static void
test_dotenv_docs_agree(void **state)
{
	const char *src = getenv("NV_TEST_SRCDIR");
	char path[512], *doc, *ex, *end;
	const char *name;
	char val[NV_CONFIG_STR + 32], row[96];
	FILE *f;
	long n;
	nv_config c;
	(void)state;
	if (src == NULL)
		skip();
	snprintf(path, sizeof(path), "%s/../docs/configuration.md", src);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	doc = malloc((size_t)n + 1);
	assert_non_null(doc);
	assert_int_equal(fread(doc, 1, (size_t)n, f), (size_t)n);
	doc[n] = '\0';
	fclose(f);

	nv_config_init(&c);
	for (size_t i = 0; nv__config_describe(&c, i, &name, val, sizeof(val));
	     i++) {
		snprintf(row, sizeof(row), "| `%s` |", name);
		if (strstr(doc, row) == NULL)
			fail_msg("%s missing from the docs table", name);
	}

	ex = strstr(doc, "## The `.env` file");
	assert_non_null(ex);
	ex = strstr(ex, "```sh\n");
	assert_non_null(ex);
	ex += 6;
	end = strstr(ex, "```");
	assert_non_null(end);
	assert_int_equal(
	    nv__config_load(&c, ex, (size_t)(end - ex), "doc", false), 0);
	assert_int_equal(c.workers, 4);
	assert_string_equal(c.queue_backend, "sqlite");
	assert_string_equal(c.data_dir, "/srv/nuvom data");
	assert_int_equal(c.job_timeout_ms, 2500);
	assert_string_equal(c.manifest_path, "/srv/a#b $literal");
	assert_string_equal(c.sqlite_queue_path, "/srv/q$1.db");
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dotenv_basic_syntax),
	    cmocka_unit_test(test_dotenv_inline_comments),
	    cmocka_unit_test(test_dotenv_quotes),
	    cmocka_unit_test(test_dotenv_line_endings),
	    cmocka_unit_test(test_dotenv_malformed_lines),
	    cmocka_unit_test(test_dotenv_nul_bytes),
	    cmocka_unit_test(test_dotenv_huge_line_and_binary),
	    cmocka_unit_test(test_dotenv_callback_stops),
	    cmocka_unit_test(test_dotenv_small_error_buffer),
#define T(f) cmocka_unit_test_setup_teardown(f, nv_test_env_reset, nv_test_env_reset)
	    T(test_dotenv_load_file),
	    T(test_dotenv_env_overrides_file),
	    T(test_dotenv_load_errors),
	    T(test_dotenv_missing_unreadable),
	    T(test_dotenv_docs_agree),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
