/*
 * test_proxy.c - unit tests for src/smtp/proxy.c: PROXY protocol v1 and
 * v2 headers, byte by byte (incomplete until whole, never reading past
 * the header), and every refusal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy.h"

#define MAX 1024

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Parse all of p; every shorter prefix must be incomplete. */
static enum proxy_result whole(const void *p, size_t len, struct proxy_header *h,
			       const char **reason)
{
	for (size_t i = 0; i + 1 < len; i++) {
		enum proxy_result r = proxy_parse(p, i, MAX, h, reason);
		if (r != PROXY_INCOMPLETE)
			return r;
	}
	return proxy_parse(p, len, MAX, h, reason);
}

/* The text of an address and its port. */
static void addr_is(const struct sockaddr_storage *ss, const char *want, unsigned port)
{
	char buf[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf));
		assert_int_equal(ntohs(s4->sin_port), port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		assert_int_equal(ss->ss_family, AF_INET6);
		inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf));
		assert_int_equal(ntohs(s6->sin6_port), port);
	}
	assert_string_equal(buf, want);
}

static void test_v1_tcp4(void **state)
{
	const char *in = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n";
	size_t hlen = strlen("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n");
	struct proxy_header h;
	const char *why;

	(void)state;
	assert_int_equal(whole(in, hlen, &h, &why), PROXY_DONE);
	assert_int_equal(proxy_parse((const unsigned char *)in, strlen(in), MAX, &h, &why),
			 PROXY_DONE);
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	assert_int_equal(h.length, hlen); /* EHLO stays for SMTP */
	addr_is(&h.src, "192.0.2.7", 56324);
	addr_is(&h.dst, "198.51.100.1", 25);
}

static void test_v1_tcp6_and_unknown(void **state)
{
	const char *in6 = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
	const char *unk = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
	struct proxy_header h;
	const char *why;

	(void)state;
	assert_int_equal(whole(in6, strlen(in6), &h, &why), PROXY_DONE);
	addr_is(&h.src, "2001:db8::7", 65535);
	addr_is(&h.dst, "2001:db8::1", 0);
	assert_int_equal(whole(unk, strlen(unk), &h, &why), PROXY_DONE);
	assert_true(h.local);
	assert_int_equal(whole("PROXY UNKNOWN\r\n", 15, &h, &why), PROXY_DONE);
	assert_true(h.local);
}

static void test_v1_refused(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\n",     /* LF alone */
		"PROXY TCP4 192.0.2.7  198.51.100.1 56324 25\r\n",  /* two spaces */
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",      /* a field missing */
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25 1\r\n", /* one too many */
		"PROXY TCP4 2001:db8::7 198.51.100.1 1 25\r\n",     /* v6 in TCP4 */
		"PROXY TCP6 192.0.2.7 2001:db8::1 1 25\r\n",        /* v4 in TCP6 */
		"PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",   /* port too big */
		"PROXY TCP4 192.0.2.7 198.51.100.1 -1 25\r\n",
		"PROXY TCP4 192.0.2.07x 198.51.100.1 1 25\r\n",
		"PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n",
		"PROXY \r\n",
		"EHLO client.example\r\n", /* no header at all */
		"proxy TCP4 192.0.2.7 198.51.100.1 1 25\r\n",
	};
	struct proxy_header h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
			proxy_parse((const unsigned char *)bad[i], strlen(bad[i]), MAX, &h, &why),
			PROXY_BAD);
		assert_non_null(why);
	}
	/* a NUL inside */
	assert_int_equal(proxy_parse((const unsigned char *)"PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n",
				     33, MAX, &h, &why),
			 PROXY_BAD);
}

static void test_v1_too_long(void **state)
{
	char line[200];
	struct proxy_header h;
	const char *why;

	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	assert_int_equal(proxy_parse((unsigned char *)line, 106, MAX, &h, &why), PROXY_INCOMPLETE);
	assert_int_equal(proxy_parse((unsigned char *)line, 107, MAX, &h, &why), PROXY_BAD);
	/* exactly 107 with its CRLF is fine */
	line[105] = '\r';
	line[106] = '\n';
	assert_int_equal(proxy_parse((unsigned char *)line, 107, MAX, &h, &why), PROXY_DONE);
	assert_int_equal(h.length, 107);
}

/* A v2 header: command, family, address block of alen octets. */
static size_t v2(unsigned char *out, unsigned cmd, unsigned fam, const void *addr, size_t alen)
{
	memcpy(out, sig, 12);
	out[12] = (unsigned char)(0x20 | cmd);
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(alen >> 8);
	out[15] = (unsigned char)alen;
	memcpy(out + 16, addr, alen);
	return 16 + alen;
}

static void test_v2_tcp4_with_tlv(void **state)
{
	unsigned char a[12 + 7] = {192, 0, 2, 7, 198, 51, 100, 1, 0xDC, 0x04, 0, 25,
				   /* a TLV: PP2_TYPE_AUTHORITY "mx.x" */
				   0x02, 0, 4, 'm', 'x', '.', 'x'};
	unsigned char buf[64];
	size_t n = v2(buf, 1, 0x11, a, sizeof(a));
	struct proxy_header h;
	const char *why;

	(void)state;
	memcpy(buf + n, "\x16\x03\x01", 3); /* a TLS ClientHello follows */
	assert_int_equal(whole(buf, n, &h, &why), PROXY_DONE);
	assert_int_equal(proxy_parse(buf, n + 3, MAX, &h, &why), PROXY_DONE);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.length, n);
	addr_is(&h.src, "192.0.2.7", 0xDC04);
	addr_is(&h.dst, "198.51.100.1", 25);
}

static void test_v2_tcp6_local_unspec(void **state)
{
	unsigned char a[36] = {0};
	unsigned char buf[64];
	size_t n;
	struct proxy_header h;
	const char *why;

	(void)state;
	a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8, a[15] = 7;
	a[16] = 0x20, a[17] = 0x01, a[18] = 0x0d, a[19] = 0xb8, a[31] = 1;
	a[33] = 99, a[35] = 25;
	n = v2(buf, 1, 0x21, a, sizeof(a));
	assert_int_equal(whole(buf, n, &h, &why), PROXY_DONE);
	addr_is(&h.src, "2001:db8::7", 99);
	addr_is(&h.dst, "2001:db8::1", 25);
	n = v2(buf, 0, 0x11, a, 12); /* LOCAL: addresses ignored */
	assert_int_equal(whole(buf, n, &h, &why), PROXY_DONE);
	assert_true(h.local);
	n = v2(buf, 1, 0x00, a, 0); /* PROXY with UNSPEC */
	assert_int_equal(whole(buf, n, &h, &why), PROXY_DONE);
	assert_true(h.local);
}

static void test_v2_refused(void **state)
{
	unsigned char a[36] = {0};
	unsigned char buf[128];
	size_t n;
	struct proxy_header h;
	const char *why;

	(void)state;
	n = v2(buf, 1, 0x11, a, 11); /* too short for TCP4 */
	assert_int_equal(proxy_parse(buf, n, MAX, &h, &why), PROXY_BAD);
	n = v2(buf, 1, 0x21, a, 35); /* too short for TCP6 */
	assert_int_equal(proxy_parse(buf, n, MAX, &h, &why), PROXY_BAD);
	n = v2(buf, 1, 0x12, a, 12); /* UDP */
	assert_int_equal(proxy_parse(buf, n, MAX, &h, &why), PROXY_BAD);
	n = v2(buf, 1, 0x31, a, 36); /* UNIX */
	assert_int_equal(proxy_parse(buf, n, MAX, &h, &why), PROXY_BAD);
	n = v2(buf, 2, 0x11, a, 12); /* command 2 */
	assert_int_equal(proxy_parse(buf, n, MAX, &h, &why), PROXY_BAD);
	n = v2(buf, 1, 0x11, a, 12);
	buf[12] = 0x11; /* version 1 in a v2 signature */
	assert_int_equal(proxy_parse(buf, n, MAX, &h, &why), PROXY_BAD);
	n = v2(buf, 1, 0x11, a, 12);
	buf[5] = 'X'; /* a broken signature */
	assert_int_equal(proxy_parse(buf, n, MAX, &h, &why), PROXY_BAD);
	/* longer than the limit: refused as soon as the length is known */
	n = v2(buf, 1, 0x11, a, 12);
	buf[14] = 0xFF, buf[15] = 0xFF;
	assert_int_equal(proxy_parse(buf, 16, MAX, &h, &why), PROXY_BAD);
	assert_string_equal(why, "v2: header longer than proxy_header_max");
	assert_int_equal(proxy_parse(buf, 16, 16 + 65535, &h, &why), PROXY_INCOMPLETE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6_and_unknown),
		cmocka_unit_test(test_v1_refused),
		cmocka_unit_test(test_v1_too_long),
		cmocka_unit_test(test_v2_tcp4_with_tlv),
		cmocka_unit_test(test_v2_tcp6_local_unspec),
		cmocka_unit_test(test_v2_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
