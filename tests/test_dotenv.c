/* ctest: labels=unit timeout=60 */
/*
 * test_dotenv.c - the .env parser on its own (engine/dotenv.c): every
 * syntax form, every malformed-line error with its line number, callback
 * stop, and hostile bytes.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
