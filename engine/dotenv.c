/*
 * engine/dotenv.c - the .env parser (syntax in dotenv.h).
 *
 * Design: one pass over the text, line by line, with no state carried
 * between lines (a quoted value never spans lines), so an error always
 * names the line it is on and a bad line cannot swallow the rest of the
 * file. Each line is decoded into one scratch buffer sized for the longest
 * line: the key first, then the value; decoding never makes a value longer
 * than its source, so the buffer cannot overflow. Every index is checked
 * against the line end before it is read: any byte string, NUL bytes,
 * invalid UTF-8 or a line of megabytes included, is either parsed or
 * rejected with a line number.
 *
 * Threads: reentrant, no global state. The callback runs on the caller's
 * thread.
 */
#include "engine/dotenv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "nuvom/error.h"

struct dp {
	const char *p;	 /* cursor within the current line */
	const char *end; /* end of the line (before "\r\n" / "\n") */
	unsigned line;
	char *err;
	size_t errlen;
};

static int dp_fail(struct dp *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
dp_fail(struct dp *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (d->err == NULL || d->errlen == 0)
		return NV_ECONFIG;
	n = snprintf(d->err, d->errlen, "line %u: ", d->line);
	if (n >= 0 && (size_t)n < d->errlen) {
		va_start(ap, fmt);
		vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return NV_ECONFIG;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
is_key_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int
is_key_char(char c)
{
	return is_key_start(c) || (c >= '0' && c <= '9');
}

static void
skip_blanks(struct dp *d)
{
	while (d->p < d->end && is_blank(*d->p))
		d->p++;
}

/* A printable rendering of byte c for messages. */
static const char *
show(char c, char buf[8])
{
	unsigned char u = (unsigned char)c;
	if (u >= 0x21 && u < 0x7f)
		snprintf(buf, 8, "'%c'", c);
	else
		snprintf(buf, 8, "0x%02x", u);
	return buf;
}

/* After a closing quote: blanks, then nothing or a comment. */
static int
expect_line_end(struct dp *d)
{
	char b[8];
	skip_blanks(d);
	if (d->p < d->end && *d->p != '#')
		return dp_fail(d, "unexpected %s after the closing quote",
			       show(*d->p, b));
	return 0;
}

/* Decodes the value at d->p into out; *n gets its length. */
static int
parse_value(struct dp *d, char *out, size_t *n)
{
	size_t k = 0;

	if (d->p < d->end && *d->p == '\'') {
		const char *q = ++d->p;
		while (q < d->end && *q != '\'')
			q++;
		if (q == d->end)
			return dp_fail(d, "unterminated single-quoted value");
		for (; d->p < q; d->p++) {
			if (*d->p == '\0')
				return dp_fail(d, "NUL byte in value");
			out[k++] = *d->p;
		}
		d->p++; /* the closing quote */
		*n = k;
		return expect_line_end(d);
	}
	if (d->p < d->end && *d->p == '"') {
		d->p++;
		for (;;) {
			char c;
			if (d->p == d->end)
				return dp_fail(
				    d, "unterminated double-quoted value");
			c = *d->p++;
			if (c == '"')
				break;
			if (c == '\0')
				return dp_fail(d, "NUL byte in value");
			if (c == '\\') {
				if (d->p == d->end)
					return dp_fail(
					    d, "unterminated double-quoted "
					       "value");
				c = *d->p++;
				switch (c) {
				case 'n':
					c = '\n';
					break;
				case 't':
					c = '\t';
					break;
				case 'r':
					c = '\r';
					break;
				case '"':
				case '\\':
				case '$':
					break;
				case '\0':
					return dp_fail(d, "NUL byte in value");
				default:
					/* Unknown escape: kept as written,
					 * like a shell's double quotes. */
					out[k++] = '\\';
					break;
				}
			}
			out[k++] = c;
		}
		*n = k;
		return expect_line_end(d);
	}
	/* Unquoted: up to the end of the line or a '#' that follows a
	 * blank (so "a#b" keeps its '#'), trailing blanks trimmed. */
	for (; d->p < d->end; d->p++) {
		char c = *d->p;
		/* d->p[-1] exists: at least the '=' precedes the value. */
		if (c == '#' && is_blank(d->p[-1]))
			break;
		if (c == '\0')
			return dp_fail(d, "NUL byte in value");
		out[k++] = c;
	}
	while (k > 0 && is_blank(out[k - 1]))
		k--;
	*n = k;
	return 0;
}

/* Parses one line [d->p, d->end); calls cb for an assignment. */
static int
parse_line(struct dp *d, char *buf, nv__dotenv_fn cb, void *arg)
{
	const char *key;
	size_t keylen, vallen = 0;
	char b[8];
	int rc;

	skip_blanks(d);
	if (d->p == d->end || *d->p == '#')
		return 0;
	if ((size_t)(d->end - d->p) > 6 && memcmp(d->p, "export", 6) == 0 &&
	    is_blank(d->p[6])) {
		d->p += 6;
		skip_blanks(d);
		if (d->p == d->end)
			return dp_fail(d, "missing key after 'export'");
	}
	if (!is_key_start(*d->p))
		return dp_fail(d,
			       "invalid key: starts with %s (keys match "
			       "[A-Za-z_][A-Za-z0-9_]*)",
			       show(*d->p, b));
	key = d->p;
	while (d->p < d->end && is_key_char(*d->p))
		d->p++;
	keylen = (size_t)(d->p - key);
	if (d->p < d->end && !is_blank(*d->p) && *d->p != '=')
		return dp_fail(d,
			       "invalid character %s in key (keys match "
			       "[A-Za-z_][A-Za-z0-9_]*)",
			       show(*d->p, b));
	skip_blanks(d);
	if (d->p == d->end || *d->p != '=')
		return dp_fail(d, "expected '=' after key '%.*s'",
			       keylen > 64 ? 64 : (int)keylen, key);
	d->p++;
	skip_blanks(d);

	memcpy(buf, key, keylen);
	buf[keylen] = '\0';
	rc = parse_value(d, buf + keylen + 1, &vallen);
	if (rc != 0)
		return rc;
	buf[keylen + 1 + vallen] = '\0';
	return cb(arg, buf, buf + keylen + 1, vallen, d->line);
}

int
nv__dotenv_parse(const char *text, size_t len, nv__dotenv_fn cb, void *arg,
		 char *err, size_t errlen)
{
	struct dp d = {.err = err, .errlen = errlen};
	const char *s = text, *end = text + len;
	size_t longest = 0;
	char *buf;
	int rc = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (text == NULL && len > 0)
		return NV_EINVAL;
	if (cb == NULL)
		return NV_EINVAL;
	/* Longest line: the key plus the value never exceed it. */
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *le = nl ? nl : end;
		if ((size_t)(le - s) > longest)
			longest = (size_t)(le - s);
		s = nl ? nl + 1 : end;
	}
	buf = nv__malloc(longest + 2); /* two NUL terminators */
	if (buf == NULL)
		return NV_ENOMEM;

	for (s = text; rc == 0 && s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		d.line++;
		d.p = s;
		d.end = nl ? nl : end;
		if (d.end > d.p && d.end[-1] == '\r')
			d.end--;
		rc = parse_line(&d, buf, cb, arg);
		s = nl ? nl + 1 : end;
	}
	nv__free(buf);
	return rc;
}
