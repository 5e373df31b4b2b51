/*
 * util.h - generic helpers with no mail knowledge.
 *
 * x-prefixed allocators succeed or end the process with a message; number
 * parsing is range-checked; text escaping makes peer-supplied bytes safe for
 * logs.  Nothing here ever truncates silently: functions that could report
 * truncation do so in their return value.
 */
#ifndef HATO_UTIL_H
#define HATO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* A copy of s with ASCII letters in lower case. */
char *xstrdup_lower(const char *s);

/* Parse a decimal unsigned number in [min, max]; false on any junk. */
bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parse a size with an optional k/m/g suffix (powers of 1024). */
bool parse_size(const char *s, uint64_t *out);

/* Copy at most size-1 bytes and NUL-terminate; false when truncated. */
bool strcpy_bounded(char *dst, const char *src, size_t size);

/* snprintf that reports truncation (or error) as false. */
bool xsnprintf_ok(char *dst, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* mkdir -p: missing parents get mode 0755, the directory itself mode;
 * an existing directory is fine.  false with errno on failure. */
bool mkdir_parents(const char *path, unsigned mode);

/* Case-insensitive ASCII prefix test. */
bool has_prefix_ci(const char *s, const char *prefix);

/* Trim ASCII whitespace at both ends, in place; returns s advanced. */
char *trim(char *s);

/*
 * Escape len bytes of peer text for a log line: printable ASCII other than
 * backslash and double quote is kept, everything else becomes \xNN.  The
 * output is always NUL-terminated; when it does not fit it ends in "...".
 */
void escape_text(const char *in, size_t len, char *out, size_t outsz);

/* escape_text for a whole string logged as an unquoted value (an address:
 * a quoted local part may hold spaces): a space becomes \x20 too.  NULL
 * is logged as the empty string. */
#define ESCAPED_WORD_MAX (4 * 320 + 4) /* room for any address escaped */
void escape_word(const char *in, char *out, size_t outsz);

/* Fill buf with n random octets (getrandom); without an entropy source
 * yet (early boot), from the clock and the process ID: unique enough on
 * one host for names and boundaries, never for secrets. */
void random_octets(void *buf, size_t n);

/* Does p[0..len) hold an octet above 127 (8-bit data, BODY=8BITMIME)? */
bool has_8bit(const char *p, size_t len);

#endif
