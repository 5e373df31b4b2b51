/*
 * spf_macro.c - macro expansion (RFC 7208 §7): %{s}, %{l}, %{o}, %{d},
 * %{i}, %{p}, %{v}, %{h}, and in explanations %{c}, %{r}, %{t}; a count of
 * the rightmost parts to keep, "r" to reverse them, the delimiters to split
 * on; an upper-case letter URL-escapes the value; %%, %_ and %-.
 *
 * The output is bounded (SPF_EXPAND_MAX, and the caller's buffer): a
 * longer expansion is an error, never a truncation.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "spf_internal.h"
#include "util.h"

#define SPF_PARTS_MAX 128 /* parts of a value split on delimiters */

/* Output being built. */
struct out {
	char *p;
	size_t n, size;
	bool over;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->over || o->n + n >= o->size || o->n + n > SPF_EXPAND_MAX) {
		o->over = true;
		return;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = '\0';
}

static bool is_delim(int c)
{
	return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

/* The local part of the sender (everything before its last '@'). */
static void local_part(const struct spf *s, char *buf, size_t size)
{
	const char *at = strrchr(s->sender, '@');
	size_t n = at ? (size_t)(at - s->sender) : strlen(s->sender);

	if (n >= size)
		n = size - 1;
	memcpy(buf, s->sender, n);
	buf[n] = '\0';
}

/* The client's address for %{i}: dotted IPv4, or 32 dotted nibbles in upper
 * case, as RFC 7208 §7.4 writes them. */
static void ip_dotted(const struct spf *s, char *buf, size_t size)
{
	if (s->family == AF_INET) {
		inet_ntop(AF_INET, s->ip, buf, (socklen_t)size);
		return;
	}
	for (int i = 0, n = 0; i < 16 && n + 4 <= (int)size; i++) {
		n += snprintf(buf + n, size - (size_t)n, "%s%X.%X", i ? "." : "", s->ip[i] >> 4,
			      s->ip[i] & 15);
	}
}

/* %{p}: find a validated name within the current domain, else any. */
struct pname {
	const char *domain;
	char first[SPF_DOMAIN_MAX + 2];
	char within[SPF_DOMAIN_MAX + 2];
};

static bool pname_each(void *arg, const char *name)
{
	struct pname *p = arg;

	if (p->first[0] == '\0')
		strcpy_bounded(p->first, name, sizeof(p->first));
	if (spf_within(name, p->domain)) {
		strcpy_bounded(p->within, name, sizeof(p->within));
		return true;
	}
	return false;
}

/* The value of macro letter c (lower case) into buf; 0 when lookups are
 * needed, -1 for a letter not allowed here. */
static int letter_value(struct spf *s, int c, const char *d, bool exp, char *buf, size_t size)
{
	const char *at;

	switch (c) {
	case 's':
		strcpy_bounded(buf, s->sender, size);
		return 1;
	case 'l':
		local_part(s, buf, size);
		if (buf[0] == '\0')
			strcpy_bounded(buf, "postmaster", size);
		return 1;
	case 'o':
		at = strrchr(s->sender, '@');
		strcpy_bounded(buf, at ? at + 1 : s->sender, size);
		return 1;
	case 'd':
		strcpy_bounded(buf, d, size);
		return 1;
	case 'i':
		ip_dotted(s, buf, size);
		return 1;
	case 'p': {
		struct pname p = {.domain = d};
		int rc = spf_validated(s, pname_each, &p);

		if (rc <= 0)
			return rc;
		strcpy_bounded(buf,
			       p.within[0]  ? p.within
			       : p.first[0] ? p.first
					    : "unknown",
			       size);
		return 1;
	}
	case 'v':
		strcpy_bounded(buf, s->family == AF_INET ? "in-addr" : "ip6", size);
		return 1;
	case 'h':
		strcpy_bounded(buf, s->helo, size);
		return 1;
	case 'c':
		if (!exp)
			return -1;
		inet_ntop(s->family, s->ip, buf, (socklen_t)size);
		return 1;
	case 'r':
		if (!exp)
			return -1;
		strcpy_bounded(buf, s->receiver[0] ? s->receiver : "unknown", size);
		return 1;
	case 't':
		if (!exp)
			return -1;
		snprintf(buf, size, "%lld", (long long)s->now);
		return 1;
	}
	return -1;
}

/* Append value, transformed: split on delims (default "."), reversed when
 * rev, the rightmost keep parts (0: all), joined with dots; URL-escaped
 * when upper. */
static void transform(struct out *o, char *value, const char *delims, size_t ndelims, unsigned keep,
		      bool rev, bool upper)
{
	char *parts[SPF_PARTS_MAX];
	size_t n = 0, first;
	char *p = value;
	char joined[SPF_EXPAND_MAX + 1];
	struct out j = {.p = joined, .size = sizeof(joined)};

	joined[0] = '\0';
	parts[n++] = p;
	for (; *p; p++) {
		bool split = ndelims ? memchr(delims, *p, ndelims) != NULL : *p == '.';

		if (split) {
			*p = '\0';
			if (n == SPF_PARTS_MAX) {
				o->over = true;
				return;
			}
			parts[n++] = p + 1;
		}
	}
	if (rev)
		for (size_t i = 0; i < n / 2; i++) {
			char *t = parts[i];

			parts[i] = parts[n - 1 - i];
			parts[n - 1 - i] = t;
		}
	first = keep && keep < n ? n - keep : 0;
	for (size_t i = first; i < n; i++) {
		if (i > first)
			put(&j, ".", 1);
		put(&j, parts[i], strlen(parts[i]));
	}
	if (j.over) {
		o->over = true;
		return;
	}
	if (!upper) {
		put(o, joined, j.n);
		return;
	}
	for (size_t i = 0; i < j.n; i++) {
		unsigned char c = (unsigned char)joined[i];
		char hex[4];

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			put(o, joined + i, 1);
		} else {
			snprintf(hex, sizeof(hex), "%%%02X", c);
			put(o, hex, 3);
		}
	}
}

/* See spf.h. */
int spf_expand(struct spf *s, const char *in, size_t len, const char *d, bool exp, char *out,
	       size_t outsz)
{
	char scratch[SPF_EXPAND_MAX + 1];
	struct out o = {.p = out, .size = outsz};
	size_t i = 0;

	if (s == NULL) { /* syntax only: the literals go to scratch */
		o.p = scratch;
		o.size = sizeof(scratch);
	}
	if (o.size == 0)
		return -1;
	o.p[0] = '\0';
	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c != '%') {
			/* macro-literal, and in an explanation spaces */
			if (!((c >= 0x21 && c <= 0x7e) || (exp && c == ' ')))
				return -1;
			put(&o, in + i, 1);
			i++;
			continue;
		}
		if (i + 1 >= len)
			return -1;
		c = (unsigned char)in[i + 1];
		if (c == '%' || c == '_' || c == '-') {
			put(&o, c == '%' ? "%" : c == '_' ? " " : "%20", c == '-' ? 3 : 1);
			i += 2;
			continue;
		}
		if (c != '{' || i + 2 >= len)
			return -1;
		i += 2;
		{
			int letter = (unsigned char)in[i++], rc;
			unsigned keep = 0;
			bool rev = false, digits = false;
			const char *delims;
			size_t ndelims;
			char value[SPF_EXPAND_MAX + 1];

			while (i < len && isdigit((unsigned char)in[i])) {
				digits = true;
				if (keep < 1000)
					keep = keep * 10 + (unsigned)(in[i] - '0');
				i++;
			}
			if (digits && keep == 0)
				return -1;
			if (i < len && (in[i] == 'r' || in[i] == 'R')) {
				rev = true;
				i++;
			}
			delims = in + i;
			while (i < len && is_delim((unsigned char)in[i]))
				i++;
			ndelims = (size_t)(in + i - delims);
			if (i >= len || in[i] != '}')
				return -1;
			i++;
			if (s == NULL) { /* syntax only */
				if (strchr(exp ? "slodipvhcrt" : "slodipvh", tolower(letter)) ==
					    NULL ||
				    letter == 0)
					return -1;
				continue;
			}
			rc = letter_value(s, tolower(letter), d, exp, value, sizeof(value));
			if (rc <= 0)
				return rc;
			transform(&o, value, delims, ndelims, keep, rev, isupper(letter) != 0);
		}
	}
	return o.over ? -1 : 1;
}
