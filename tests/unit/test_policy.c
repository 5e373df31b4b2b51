/*
 * test_policy.c - unit tests for src/smtp/policy.c: which clients are
 * trusted (trusted_networks: both families, prefixes that are not
 * byte-aligned, /0, IPv4-mapped IPv6, a non-IP socket, an empty list),
 * who may relay (local domains, <postmaster>, the literal of the address
 * connected to, trusted clients, authenticated users) and which senders
 * a user may use ([senders] patterns and the defaults).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "policy.h"

/* A configuration: the [server] lines given, one listener. */
static struct conf *conf_with(const char *server_lines)
{
	char path[] = "/tmp/hato-test-policy.XXXXXX", err[512] = "";
	int fd = mkstemp(path);
	FILE *f;
	struct conf *c;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f,
		"[server]\nlocal_domains = example.org\n%s"
		"[listener smtp]\naddress = 127.0.0.1:2525\n",
		server_lines);
	assert_int_equal(fclose(f), 0);
	c = conf_load(path, err, sizeof(err));
	unlink(path);
	if (c == NULL)
		fail_msg("conf_load: %s", err);
	return c;
}

/* Parse "<...>" into a. */
static struct mailaddr addr(const char *path)
{
	struct mailaddr a;
	const char *end;

	assert_int_equal(addr_parse_path(path, &end, &a, ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER),
			 ADDR_OK);
	return a;
}

/* An IPv4 socket address. */
static struct sockaddr_in sin4(const char *ip)
{
	struct sockaddr_in s;

	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &s.sin_addr), 1);
	return s;
}

/* An IPv6 socket address. */
static struct sockaddr_in6 sin6(const char *ip)
{
	struct sockaddr_in6 s;

	memset(&s, 0, sizeof(s));
	s.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
	return s;
}

/* Is ip (v4 or v6 text) trusted by c? */
static bool trusted(const struct conf *c, const char *ip)
{
	if (strchr(ip, ':')) {
		struct sockaddr_in6 s = sin6(ip);
		return policy_client_trusted(c, (struct sockaddr *)&s);
	} else {
		struct sockaddr_in s = sin4(ip);
		return policy_client_trusted(c, (struct sockaddr *)&s);
	}
}

/* Several networks of both families; IPv4-mapped IPv6 counts as IPv4. */
static void test_trusted_networks(void **state)
{
	struct conf *c = conf_with("trusted_networks = 10.0.0.0/8, 192.0.2.128/25 "
				   "2001:db8::/32,::1\n");

	(void)state;
	assert_int_equal(c->ntrusted, 4);
	assert_true(trusted(c, "10.1.2.3"));
	assert_true(trusted(c, "10.255.255.255"));
	assert_false(trusted(c, "11.0.0.0"));
	assert_false(trusted(c, "9.255.255.255"));
	assert_true(trusted(c, "192.0.2.128"));
	assert_true(trusted(c, "192.0.2.255"));
	assert_false(trusted(c, "192.0.2.127"));
	assert_true(trusted(c, "2001:db8::1"));
	assert_true(trusted(c, "2001:db8:ffff::1"));
	assert_false(trusted(c, "2001:db9::1"));
	assert_true(trusted(c, "::1"));
	assert_false(trusted(c, "::2"));
	/* IPv4-mapped IPv6 addresses are matched as IPv4. */
	assert_true(trusted(c, "::ffff:10.9.9.9"));
	assert_false(trusted(c, "::ffff:11.9.9.9"));
	/* The families never mix otherwise. */
	assert_false(trusted(c, "127.0.0.1"));
	conf_free(c);
}

/* Prefix lengths that are not byte-aligned, /0 and non-IP families. */
static void test_trusted_prefixes(void **state)
{
	struct conf c;
	struct cidr nets[3];
	struct sockaddr_un un;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.trusted = nets;
	c.ntrusted = 1;
	assert_true(cidr_parse("192.0.2.0/31", &nets[0]));
	assert_true(trusted(&c, "192.0.2.0"));
	assert_true(trusted(&c, "192.0.2.1"));
	assert_false(trusted(&c, "192.0.2.2"));
	assert_true(cidr_parse("128.0.0.0/1", &nets[0]));
	assert_true(trusted(&c, "200.1.1.1"));
	assert_false(trusted(&c, "127.255.255.255"));
	assert_true(cidr_parse("172.16.0.0/12", &nets[0]));
	assert_true(trusted(&c, "172.31.255.255"));
	assert_false(trusted(&c, "172.32.0.0"));
	assert_true(cidr_parse("fe80::/10", &nets[0]));
	assert_true(trusted(&c, "febf::1"));
	assert_false(trusted(&c, "fec0::1"));
	assert_true(cidr_parse("2001:db8::1/127", &nets[0]));
	assert_true(trusted(&c, "2001:db8::1"));
	assert_false(trusted(&c, "2001:db8::2"));
	assert_true(cidr_parse("0.0.0.0/0", &nets[0]));
	assert_true(trusted(&c, "1.2.3.4"));
	assert_false(trusted(&c, "2001:db8::1"));
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	assert_false(policy_client_trusted(&c, (struct sockaddr *)&un));
	c.ntrusted = 0;
	assert_false(trusted(&c, "1.2.3.4"));
}

/* Relay: local domains, <postmaster> and our own literal for anyone;
 * other domains only for trusted clients and authenticated users. */
static void test_rcpt_allowed(void **state)
{
	struct conf *c = conf_with("");
	struct mailaddr local = addr("<a@EXAMPLE.org>"), remote = addr("<a@example.net>");
	struct mailaddr pm = addr("<postmaster>"), lit = addr("<a@[127.0.0.1]>");
	struct mailaddr other_lit = addr("<a@[192.0.2.1]>");

	(void)state;
	assert_true(policy_rcpt_allowed(c, &local, "127.0.0.1", false, NULL));
	assert_true(policy_rcpt_allowed(c, &pm, "127.0.0.1", false, NULL));
	assert_true(policy_rcpt_allowed(c, &lit, "127.0.0.1", false, NULL));
	assert_false(policy_rcpt_allowed(c, &other_lit, "127.0.0.1", false, NULL));
	assert_false(policy_rcpt_allowed(c, &remote, "127.0.0.1", false, NULL));
	assert_true(policy_rcpt_allowed(c, &remote, "127.0.0.1", true, NULL));
	assert_true(policy_rcpt_allowed(c, &remote, "127.0.0.1", false, "alice"));
	conf_free(c);
}

/* Senders: [senders] patterns, else user@ a local domain or the login
 * itself; <> always. */
static void test_sender_allowed(void **state)
{
	struct conf *c = conf_with("");
	struct mailaddr a;

	(void)state;
	a = addr("<alice@example.org>");
	assert_true(policy_sender_allowed(c, "alice", &a));
	assert_false(policy_sender_allowed(c, "bob", &a));
	assert_true(policy_sender_allowed(c, "alice@example.org", &a));
	a = addr("<alice@example.net>");
	assert_false(policy_sender_allowed(c, "alice", &a));
	a = addr("<>");
	assert_true(policy_sender_allowed(c, "bob", &a));
	conf_free(c);
	c = conf_with("[senders]\nalice = sales@example.org, @example.net\n[server]\n");
	a = addr("<sales@example.org>");
	assert_true(policy_sender_allowed(c, "alice", &a));
	a = addr("<anyone@example.net>");
	assert_true(policy_sender_allowed(c, "alice", &a));
	a = addr("<alice@example.org>"); /* the list replaces the default */
	assert_false(policy_sender_allowed(c, "alice", &a));
	conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trusted_networks),
		cmocka_unit_test(test_trusted_prefixes),
		cmocka_unit_test(test_rcpt_allowed),
		cmocka_unit_test(test_sender_allowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
