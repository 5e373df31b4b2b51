/*
 * addr.c - strict RFC 5321 path parser (with RFC 6531 UTF-8).
 *
 * Grammar (RFC 5321 §4.1.2):
 *   Path      = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox   = Local-part "@" ( Domain / address-literal )
 *   Local-part= Dot-string / Quoted-string
 * The parser walks the bytes once; it allocates nothing.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <idn2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* RFC 5322 atext, ASCII part. */
static bool is_atext(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* See addr.h. */
size_t addr_utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second octet */
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Domain: sub-domain *("." sub-domain), each a Let-dig [Ldh-str] or U-label. */
bool addr_valid_domain(const char *name, size_t len)
{
	const unsigned char *p = (const unsigned char *)name, *end = p + len;
	size_t label = 0;
	unsigned char prev = '.';

	if (len == 0 || len > ADDR_DOMAIN_MAX)
		return false;
	while (p < end) {
		if (*p == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
			prev = *p++;
			continue;
		}
		if (*p >= 0x80) {
			size_t n = addr_utf8_len(p, (size_t)(end - p));
			if (n == 0)
				return false;
			p += n;
			label += n;
			prev = 'a';
		} else if (isalnum(*p) || (*p == '-' && label > 0)) {
			prev = *p++;
			label++;
		} else {
			return false;
		}
		if (label > ADDR_LABEL_MAX)
			return false;
	}
	return label > 0 && prev != '-';
}

/* "[" ( IPv4 / "IPv6:" IPv6 / tag ":" dcontent ) "]"; p at '['. */
static bool valid_literal(const char *p, size_t len)
{
	char buf[ADDR_DOMAIN_MAX + 1];
	unsigned char addr[16];
	const char *colon;

	if (len < 3 || p[0] != '[' || p[len - 1] != ']' || len - 2 >= sizeof(buf))
		return false;
	memcpy(buf, p + 1, len - 2);
	buf[len - 2] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, buf + 5, addr) == 1;
	colon = strchr(buf, ':');
	if (colon == NULL)
		return inet_pton(AF_INET, buf, addr) == 1;
	/* General-address-literal: Standardized-tag ":" 1*dcontent */
	if (colon == buf || colon[1] == '\0')
		return false;
	for (const char *q = buf; q < colon; q++)
		if (!isalnum((unsigned char)*q) && *q != '-')
			return false;
	for (const char *q = colon + 1; *q; q++)
		if (!((*q >= 33 && *q <= 90) || (*q >= 94 && *q <= 126)))
			return false;
	return true;
}

/* Skip a source route "@a,@b:"; returns p past it, or NULL if malformed. */
static const char *skip_route(const char *p)
{
	for (;;) {
		const char *start;

		if (*p != '@')
			return NULL;
		start = ++p;
		while (*p && *p != ',' && *p != ':' && *p != '>')
			p++;
		if (!addr_valid_domain(start, (size_t)(p - start)))
			return NULL;
		if (*p == ':')
			return p + 1;
		if (*p != ',')
			return NULL;
		p++;
	}
}

/* Scan a local part at p; returns the end pointer or NULL on bad syntax. */
static const char *scan_local(const char *p, bool *utf8)
{
	const unsigned char *q = (const unsigned char *)p;

	if (*q == '"') {
		q++;
		for (;;) {
			if (*q == '"')
				return (const char *)q + 1;
			if (*q == '\\') {
				if (q[1] < 32 || q[1] > 126)
					return NULL;
				q += 2;
			} else if (*q >= 0x80) {
				size_t n = addr_utf8_len(
					q, SIZE_MAX) /* NUL-terminated: the NUL stops it */;
				if (n == 0)
					return NULL;
				*utf8 = true;
				q += n;
			} else if (*q >= 32 && *q <= 126) {
				q++;
			} else {
				return NULL; /* control character or end of string */
			}
		}
	}
	/* Dot-string: Atom *("." Atom) */
	for (;;) {
		const unsigned char *atom = q;
		while (*q) {
			if (*q >= 0x80) {
				size_t n = addr_utf8_len(
					q, SIZE_MAX) /* NUL-terminated: the NUL stops it */;
				if (n == 0)
					return NULL;
				*utf8 = true;
				q += n;
			} else if (is_atext(*q)) {
				q++;
			} else {
				break;
			}
		}
		if (q == atom)
			return NULL;
		if (*q != '.')
			return (const char *)q;
		q++;
	}
}

/* See addr.h. */
enum addr_error addr_parse_path(const char *s, const char **end, struct mailaddr *a, unsigned flags)
{
	const char *p = s, *lp, *lend, *dom, *dend;
	bool utf8 = false;

	memset(a, 0, sizeof(*a));
	if (*p++ != '<')
		return ADDR_ERR_SYNTAX;
	if (*p == '>') {
		if (!(flags & ADDR_ALLOW_NULL))
			return ADDR_ERR_SYNTAX;
		a->kind = ADDR_KIND_NULL;
		*end = p + 1;
		return ADDR_OK;
	}
	if (*p == '@' && (p = skip_route(p)) == NULL)
		return ADDR_ERR_SYNTAX;
	if ((flags & ADDR_ALLOW_POSTMASTER) && strncasecmp(p, "postmaster>", 11) == 0) {
		a->kind = ADDR_KIND_POSTMASTER;
		memcpy(a->local, p, 10);
		*end = p + 11;
		return ADDR_OK;
	}
	lp = p;
	if ((lend = scan_local(lp, &utf8)) == NULL || *lend != '@')
		return ADDR_ERR_SYNTAX;
	dom = lend + 1;
	if (*dom == '[') {
		dend = strchr(dom, ']');
		if (dend == NULL)
			return ADDR_ERR_SYNTAX;
		dend++;
		if (!valid_literal(dom, (size_t)(dend - dom)))
			return ADDR_ERR_SYNTAX;
		a->literal = true;
	} else {
		dend = dom;
		while (*dend && *dend != '>')
			dend++;
		if ((size_t)(dend - dom) > ADDR_DOMAIN_MAX)
			return ADDR_ERR_TOO_LONG;
		if (!addr_valid_domain(dom, (size_t)(dend - dom)))
			return ADDR_ERR_SYNTAX;
		for (const char *q = dom; q < dend; q++)
			if ((unsigned char)*q >= 0x80)
				utf8 = true;
	}
	if (*dend != '>')
		return ADDR_ERR_SYNTAX;
	if ((size_t)(lend - lp) > ADDR_LOCAL_MAX || (size_t)(dend - dom) > ADDR_DOMAIN_MAX ||
	    (size_t)(dend + 1 - s) > ADDR_PATH_MAX)
		return ADDR_ERR_TOO_LONG;
	a->kind = ADDR_KIND_MAILBOX;
	a->utf8 = utf8;
	memcpy(a->local, lp, (size_t)(lend - lp));
	memcpy(a->domain, dom, (size_t)(dend - dom));
	*end = dend + 1;
	return ADDR_OK;
}

/* See addr.h. */
bool addr_format(const struct mailaddr *a, char *buf, size_t size)
{
	size_t n;

	switch (a->kind) {
	case ADDR_KIND_NULL:
		n = (size_t)snprintf(buf, size, "<>");
		break;
	case ADDR_KIND_POSTMASTER:
		n = (size_t)snprintf(buf, size, "<%s>", a->local);
		break;
	default:
		n = (size_t)snprintf(buf, size, "<%s@%s>", a->local, a->domain);
		break;
	}
	return n < size;
}

/* See addr.h. */
char *addr_domain_alabel(const char *domain)
{
	char *out = NULL, *copy;

	if (idn2_to_ascii_8z(domain, &out, IDN2_NONTRANSITIONAL) != IDN2_OK)
		return NULL;
	copy = xstrdup(out);
	idn2_free(out);
	for (char *p = copy; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return copy;
}
