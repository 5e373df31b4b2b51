/*
 * util.c - allocation that cannot fail silently, range-checked numbers,
 * bounded string copies and log escaping.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Report an allocation failure and exit; there is no sane way on. */
static void oom(size_t n)
{
	fprintf(stderr, "hato: out of memory allocating %zu bytes\n", n);
	abort();
}

/* malloc or die. */
void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

/* calloc or die. */
void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

/* realloc or die. */
void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

/* strdup or die. */
char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* strndup or die. */
char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* See util.h. */
char *xstrdup_lower(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

/* Decimal unsigned integer within [min, max], nothing else on the line. */
bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Decimal size with optional k, m or g suffix. */
bool parse_size(const char *s, uint64_t *out)
{
	char buf[32];
	size_t len = strlen(s);
	uint64_t mult = 1, v;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len + 1);
	switch (tolower((unsigned char)buf[len - 1])) {
	case 'k':
		mult = 1024;
		break;
	case 'm':
		mult = 1024 * 1024;
		break;
	case 'g':
		mult = 1024 * 1024 * 1024;
		break;
	}
	if (mult != 1)
		buf[len - 1] = '\0';
	if (!parse_u64(buf, 0, UINT64_MAX / mult, &v))
		return false;
	*out = v * mult;
	return true;
}

/* strlcpy with a truthful result. */
bool strcpy_bounded(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size == 0)
		return false;
	if (len >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return false;
	}
	memcpy(dst, src, len + 1);
	return true;
}

/* snprintf, false when the output did not fit. */
bool xsnprintf_ok(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < size;
}

/* See util.h. */
bool mkdir_parents(const char *path, unsigned mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return false;
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return false;
		*p = '/';
	}
	return mkdir(buf, (mode_t)mode) == 0 || errno == EEXIST;
}

/* Does s start with prefix, ignoring ASCII case? */
bool has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Strip leading and trailing whitespace. */
char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Is c kept as it is by escape_text? */
static bool plain_char(unsigned char c, bool word)
{
	return c >= (word ? 0x21 : 0x20) && c < 0x7f && c != '\\' && c != '"';
}

/* escape_text, or escape_word when word. */
static void escape(const char *in, size_t len, char *out, size_t outsz, bool word)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = 0, o = 0, limit;

	if (outsz == 0)
		return;
	for (size_t i = 0; i < len; i++)
		need += plain_char((unsigned char)in[i], word) ? 1 : 4;
	/* when it all fits, all of it; otherwise as much as fits before "..." */
	limit = need < outsz ? need : (outsz >= 4 ? outsz - 4 : 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (plain_char(c, word)) {
			if (o + 1 > limit)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 4 > limit)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (need >= outsz && outsz >= 4) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* Make peer text safe for one log line (within double quotes). */
void escape_text(const char *in, size_t len, char *out, size_t outsz)
{
	escape(in, len, out, outsz, false);
}

/* Make peer text safe as one unquoted log value: spaces escaped too. */
void escape_word(const char *in, char *out, size_t outsz)
{
	if (in == NULL)
		in = ""; /* no sender yet, say */
	escape(in, strlen(in), out, outsz, true);
}

/* See util.h. */
void random_octets(void *buf, size_t n)
{
	unsigned char *out = buf;
	struct timespec ts;
	unsigned long long x;

	if (getrandom(buf, n, GRND_NONBLOCK) == (ssize_t)n)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	x = (unsigned long long)ts.tv_sec * 1000000007ull ^ (unsigned long long)ts.tv_nsec ^
	    (unsigned long long)getpid() << 20;
	for (size_t i = 0; i < n; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
		out[i] = (unsigned char)(x >> 56);
}

/* See util.h. */
bool has_8bit(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] > 0x7f)
			return true;
	return false;
}
