/*
 * engine/dotenv.h - a small, standalone parser for .env files (internal).
 *
 * Syntax (one assignment per line; docs/configuration.md has the details):
 *
 *   # comment                    blank lines and comment lines are skipped
 *   KEY=value                    unquoted: trimmed, " #" starts a comment
 *   export KEY = value           optional "export ", spaces around '='
 *   KEY='literal $ \ "'          single quotes: no escapes at all
 *   KEY="a\tb\n \" \\ \$"        double quotes: \n \t \r \" \\ \$ escapes
 *   KEY="x"   # comment          only a comment may follow a closing quote
 *
 * Keys match [A-Za-z_][A-Za-z0-9_]*. Quoted values end on their own line.
 * There is no variable interpolation. Lines end with "\n" or "\r\n".
 * The parser accepts any bytes without crashing (NUL bytes are an error
 * inside a key or value, allowed inside comments); it does not look at the
 * meaning of keys.
 */
#ifndef NV_ENGINE_DOTENV_H
#define NV_ENGINE_DOTENV_H

#include <stddef.h>

/* Called once per assignment, in file order. key and val are
 * NUL-terminated and valid only during the call; val holds no NUL byte
 * (vallen == strlen(val)). line is 1-based. A non-zero return stops the
 * parse and becomes nv__dotenv_parse's return value. */
typedef int (*nv__dotenv_fn)(void *arg, const char *key, const char *val,
			     size_t vallen, unsigned line);

/* Parses len bytes of text (need not be NUL-terminated). Returns 0; or
 * NV_ECONFIG for a malformed line, with "line N: <what>" written to err
 * (errlen bytes, may be 0); or NV_ENOMEM; or the callback's non-zero
 * return. Assignments before a bad line have already been passed to cb.
 * Reentrant; allocates one scratch buffer of about the longest line. */
int nv__dotenv_parse(const char *text, size_t len, nv__dotenv_fn cb, void *arg,
		     char *err, size_t errlen);

#endif /* NV_ENGINE_DOTENV_H */
