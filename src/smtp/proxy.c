/*
 * proxy.c - the PROXY protocol header parser (see proxy.h).
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN 6

static const unsigned char v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

enum {
	V2_CMD_LOCAL = 0x0,
	V2_CMD_PROXY = 0x1,
	V2_FAM_UNSPEC = 0x00,
	V2_FAM_TCP4 = 0x11,
	V2_FAM_TCP6 = 0x21,
	V2_TCP4_LEN = 12, /* two IPv4 addresses, two ports */
	V2_TCP6_LEN = 36, /* two IPv6 addresses, two ports */
};

/* Is p[0..len) a prefix of the n octets of sig? */
static bool is_prefix(const unsigned char *p, size_t len, const void *sig, size_t n)
{
	return memcmp(p, sig, len < n ? len : n) == 0;
}

/* A port: 1 to 5 decimal digits, at most 65535. */
static bool v1_port(const char *s, uint16_t *out)
{
	size_t n = strlen(s);
	unsigned v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* A socket address from address text of family af and a port. */
static bool v1_addr(int af, const char *text, const char *port, struct sockaddr_storage *ss,
		    socklen_t *len)
{
	uint16_t p;

	memset(ss, 0, sizeof(*ss));
	if (!v1_port(port, &p))
		return false;
	if (af == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		*len = sizeof(*s4);
		return inet_pton(AF_INET, text, &s4->sin_addr) == 1;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(p);
	*len = sizeof(*s6);
	return inet_pton(AF_INET6, text, &s6->sin6_addr) == 1;
}

/* "PROXY TCP4 src dst sport dport", CRLF removed: fields split by one space. */
static enum proxy_result v1_fields(char *line, struct proxy_header *h, const char **reason)
{
	char *f[6];
	size_t n = 0;
	char *p = line;
	int af;

	while (n < 6) {
		f[n++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			break;
		*p++ = '\0';
	}
	if (n >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
		h->local = true; /* whatever follows UNKNOWN is ignored */
		return PROXY_DONE;
	}
	if (n < 2 || (strcmp(f[1], "TCP4") != 0 && strcmp(f[1], "TCP6") != 0)) {
		*reason = "v1: protocol not TCP4, TCP6 or UNKNOWN";
		return PROXY_BAD;
	}
	if (n != 6 || p != NULL) {
		*reason = "v1: not four fields separated by single spaces";
		return PROXY_BAD;
	}
	af = f[1][3] == '4' ? AF_INET : AF_INET6;
	if (!v1_addr(af, f[2], f[4], &h->src, &h->srclen) ||
	    !v1_addr(af, f[3], f[5], &h->dst, &h->dstlen)) {
		*reason = "v1: bad address or port";
		return PROXY_BAD;
	}
	return PROXY_DONE;
}

/* Version 1: one line "PROXY ...\r\n" of at most PROXY_V1_MAX octets. */
static enum proxy_result parse_v1(const unsigned char *p, size_t len, struct proxy_header *h,
				  const char **reason)
{
	size_t scan = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	const unsigned char *lf = memchr(p, '\n', scan);
	char line[PROXY_V1_MAX + 1];
	size_t n;

	if (len < V1_PREFIX_LEN)
		return PROXY_INCOMPLETE;
	if (lf == NULL) {
		if (len >= PROXY_V1_MAX) {
			*reason = "v1: no CRLF within 107 octets";
			return PROXY_BAD;
		}
		return PROXY_INCOMPLETE;
	}
	n = (size_t)(lf - p);
	if (n == 0 || p[n - 1] != '\r') {
		*reason = "v1: line does not end in CRLF";
		return PROXY_BAD;
	}
	n--; /* without the CR */
	if (memchr(p, '\0', n) != NULL || memchr(p, '\r', n) != NULL) {
		*reason = "v1: NUL or CR inside the line";
		return PROXY_BAD;
	}
	memcpy(line, p, n);
	line[n] = '\0';
	h->version = 1;
	h->length = n + 2;
	return v1_fields(line, h, reason);
}

/* The addresses of a v2 PROXY command of family fam. */
static enum proxy_result v2_addresses(const unsigned char *a, size_t alen, unsigned fam,
				      struct proxy_header *h, const char **reason)
{
	if (fam == V2_FAM_UNSPEC) {
		h->local = true;
		return PROXY_DONE;
	}
	if (fam == V2_FAM_TCP4 && alen >= V2_TCP4_LEN) {
		struct sockaddr_in *src = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *dst = (struct sockaddr_in *)&h->dst;
		src->sin_family = dst->sin_family = AF_INET;
		memcpy(&src->sin_addr, a, 4);
		memcpy(&dst->sin_addr, a + 4, 4);
		memcpy(&src->sin_port, a + 8, 2);
		memcpy(&dst->sin_port, a + 10, 2);
		h->srclen = h->dstlen = sizeof(struct sockaddr_in);
		return PROXY_DONE;
	}
	if (fam == V2_FAM_TCP6 && alen >= V2_TCP6_LEN) {
		struct sockaddr_in6 *src = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&h->dst;
		src->sin6_family = dst->sin6_family = AF_INET6;
		memcpy(&src->sin6_addr, a, 16);
		memcpy(&dst->sin6_addr, a + 16, 16);
		memcpy(&src->sin6_port, a + 32, 2);
		memcpy(&dst->sin6_port, a + 34, 2);
		h->srclen = h->dstlen = sizeof(struct sockaddr_in6);
		return PROXY_DONE;
	}
	*reason = fam == V2_FAM_TCP4 || fam == V2_FAM_TCP6 ? "v2: address block too short"
							   : "v2: family not TCP over IPv4 or IPv6";
	return PROXY_BAD;
}

/* Version 2: signature, version/command, family, length, then length octets. */
static enum proxy_result parse_v2(const unsigned char *p, size_t len, size_t max,
				  struct proxy_header *h, const char **reason)
{
	size_t alen, total;

	if (len < PROXY_V2_FIXED)
		return PROXY_INCOMPLETE;
	if ((p[12] >> 4) != 2) {
		*reason = "v2: version is not 2";
		return PROXY_BAD;
	}
	if ((p[12] & 0x0F) != V2_CMD_LOCAL && (p[12] & 0x0F) != V2_CMD_PROXY) {
		*reason = "v2: command neither LOCAL nor PROXY";
		return PROXY_BAD;
	}
	alen = (size_t)p[14] << 8 | p[15];
	total = PROXY_V2_FIXED + alen;
	if (total > max) {
		*reason = "v2: header longer than proxy_header_max";
		return PROXY_BAD;
	}
	if (len < total)
		return PROXY_INCOMPLETE;
	h->version = 2;
	h->length = total;
	if ((p[12] & 0x0F) == V2_CMD_LOCAL) {
		h->local = true; /* the address block, if any, is ignored */
		return PROXY_DONE;
	}
	return v2_addresses(p + PROXY_V2_FIXED, alen, p[13], h, reason);
}

/* See proxy.h. */
enum proxy_result proxy_parse(const unsigned char *p, size_t len, size_t max,
			      struct proxy_header *h, const char **reason)
{
	memset(h, 0, sizeof(*h));
	*reason = NULL;
	if (len == 0)
		return PROXY_INCOMPLETE;
	if (is_prefix(p, len, V1_PREFIX, V1_PREFIX_LEN))
		return parse_v1(p, len, h, reason);
	if (is_prefix(p, len, v2_signature, sizeof(v2_signature)))
		return parse_v2(p, len, max, h, reason);
	*reason = "no PROXY header";
	return PROXY_BAD;
}
