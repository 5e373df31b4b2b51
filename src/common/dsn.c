/*
 * dsn.c - DSN parameter parsers and xtext.  See dsn.h.
 */
#include "dsn.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

static const char *const notify_names[] = {"never", "success", "failure", "delay"};
#define NNOTIFY (sizeof(notify_names) / sizeof(notify_names[0]))

/* The value of hex digit c (which must be one). */
static unsigned hex_value(unsigned char c)
{
	return isdigit(c) ? (unsigned)(c - '0') : (unsigned)(tolower(c) - 'a' + 10);
}

/* Is c an xtext character that stands for itself (RFC 3461 §4)? */
static bool is_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* See dsn.h. */
bool dsn_xtext_decode(const char *in, char *out, size_t size, size_t *len)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		unsigned char c = *p;

		if (c == '+') {
			if (!isxdigit(p[1]) || !isxdigit(p[2]))
				return false;
			c = (unsigned char)(hex_value(p[1]) << 4 | hex_value(p[2]));
			if (c == 0)
				return false; /* no NUL: the result is a C string */
			p += 2;
		} else if (!is_xchar(c)) {
			return false;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = (char)c;
	}
	if (o == 0 || size == 0)
		return false;
	out[o] = '\0';
	if (len)
		*len = o;
	return true;
}

/* Are the n octets at s printable ASCII, space included? */
static bool printable_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* See dsn.h. */
bool dsn_parse_ret(const char *v, enum dsn_ret *ret)
{
	if (strcasecmp(v, "FULL") == 0)
		*ret = DSN_RET_FULL;
	else if (strcasecmp(v, "HDRS") == 0)
		*ret = DSN_RET_HDRS;
	else
		return false;
	return true;
}

/* See dsn.h. */
const char *dsn_ret_name(enum dsn_ret ret)
{
	switch (ret) {
	case DSN_RET_FULL:
		return "full";
	case DSN_RET_HDRS:
		return "hdrs";
	default:
		return NULL;
	}
}

/* See dsn.h. */
bool dsn_valid_envid(const char *v)
{
	char decoded[DSN_ENVID_MAX + 1];
	size_t n;

	return strlen(v) <= DSN_ENVID_MAX && dsn_xtext_decode(v, decoded, sizeof(decoded), &n) &&
	       printable_ascii(decoded, n);
}

/* See dsn.h. */
bool dsn_parse_notify(const char *v, unsigned *notify)
{
	unsigned bits = 0;

	for (;;) {
		size_t len = strcspn(v, ","), i;

		for (i = 0; i < NNOTIFY; i++)
			if (strlen(notify_names[i]) == len &&
			    strncasecmp(v, notify_names[i], len) == 0)
				break;
		if (i == NNOTIFY || (bits & (1u << i)))
			return false; /* unknown, empty or repeated */
		bits |= 1u << i;
		if (v[len] == '\0')
			break;
		v += len + 1;
	}
	if ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER)
		return false;
	*notify = bits;
	return true;
}

/* See dsn.h. */
bool dsn_format_notify(unsigned notify, char *buf, size_t size)
{
	size_t o = 0;

	if (notify == 0 || notify >= 1u << NNOTIFY ||
	    ((notify & DSN_NOTIFY_NEVER) && notify != DSN_NOTIFY_NEVER))
		return false;
	for (size_t i = 0; i < NNOTIFY; i++) {
		size_t n = strlen(notify_names[i]);

		if (!(notify & (1u << i)))
			continue;
		if (o + (o > 0) + n + 1 > size)
			return false;
		if (o > 0)
			buf[o++] = ',';
		memcpy(buf + o, notify_names[i], n);
		o += n;
	}
	buf[o] = '\0';
	return true;
}

/* A "\x{HEX}" escape of RFC 6533 at p: its length, 0 when p holds none or
 * a bad one (no closing brace, more than 6 digits, a control character, a
 * surrogate or beyond U+10FFFF). */
static size_t unicode_escape(const char *p)
{
	unsigned long cp = 0;
	size_t i = 3;

	if (strncmp(p, "\\x{", 3) != 0)
		return 0;
	for (; isxdigit((unsigned char)p[i]); i++) {
		if (i - 3 == 6)
			return 0;
		cp = cp << 4 | hex_value((unsigned char)p[i]);
	}
	if (i == 3 || p[i] != '}' || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return i + 1;
}

/* An RFC 6533 utf-8-addr-xtext (or, with utf8, -unitext) address. */
static bool valid_utf8_addr(const char *s, bool utf8)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0')
		return false;
	while (*p) {
		size_t n;

		if (strncmp((const char *)p, "\\x{", 3) == 0) {
			if ((n = unicode_escape((const char *)p)) == 0)
				return false;
		} else if (*p >= 0x80) {
			if (!utf8 || (n = addr_utf8_len(p, strlen((const char *)p))) == 0)
				return false;
		} else if (is_xchar(*p)) {
			n = 1;
		} else {
			return false;
		}
		p += n;
	}
	return true;
}

/* See dsn.h. */
bool dsn_parse_orcpt(const char *v, bool utf8, char *out, size_t size)
{
	char decoded[DSN_ORCPT_MAX + 1];
	const char *semi = strchr(v, ';'), *addr;
	size_t tlen, vlen = strlen(v), n;

	if (semi == NULL || vlen > DSN_ORCPT_MAX || vlen + 1 > size)
		return false;
	tlen = (size_t)(semi - v);
	addr = semi + 1;
	if (tlen == 6 && strncasecmp(v, "rfc822", 6) == 0) {
		if (!dsn_xtext_decode(addr, decoded, sizeof(decoded), &n) ||
		    !printable_ascii(decoded, n))
			return false;
	} else if (tlen == 5 && strncasecmp(v, "utf-8", 5) == 0) {
		if (!valid_utf8_addr(addr, utf8))
			return false;
	} else {
		return false;
	}
	for (size_t i = 0; i < tlen; i++)
		out[i] = (char)tolower((unsigned char)v[i]);
	memcpy(out + tlen, semi, vlen - tlen + 1);
	return true;
}
