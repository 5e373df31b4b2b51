/*
 * test_route.c - unit tests for src/route/: each kind of route a recipient
 * can take, from configuration files loaded with conf_load(): a local
 * Maildir (and <postmaster>, and a refused mailbox path), a local domain
 * with [domain NAME] lmtp, the relayhost (TLS, implicit TLS, credentials),
 * [transport] entries (exact, .parent, *), the MX default, [tls_policy]
 * and [remote] tls, IDN local domains in both forms; and the keys that
 * group recipients.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "route.h"

#define BASE                                                                                       \
	"[server]\nhostname = mx.example.org\nlocal_domains = example.org example.net\n"           \
	"[delivery]\nmailbox_path = /m/%d/%u\n"                                                    \
	"[listener smtp]\naddress = 127.0.0.1:2525\n"

/* A new temporary file (mode 0600) holding text; its path, to unlink and free. */
static char *temp_file(const char *text)
{
	char *path = strdup("/tmp/hato-test-route.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
	return path;
}

/* Load text as a configuration file, which must be valid. */
static struct conf *load(const char *text)
{
	char err[512] = "", *path = temp_file(text);
	struct conf *c = conf_load(path, err, sizeof(err));

	unlink(path);
	free(path);
	if (c == NULL)
		fail_msg("conf_load failed: %s", err);
	return c;
}

/* A local domain without [domain] lmtp goes to the Maildir mailbox_path names. */
static void test_local_maildir(void **state)
{
	struct conf *c = load(BASE);
	struct route rt;

	(void)state;
	route_rcpt(c, "<Alice@Example.ORG>", &rt);
	assert_int_equal(rt.transport, ROUTE_MAILDIR);
	assert_int_equal(rt.rule, ROUTE_RULE_LOCAL);
	assert_string_equal(rt.key, "maildir");
	assert_string_equal(rt.local, "Alice");
	assert_string_equal(rt.domain, "Example.ORG");
	assert_string_equal(rt.mailbox, "/m/example.org/alice");
	/* the local part is split at the last '@' */
	route_rcpt(c, "<\"a@b\"@example.net>", &rt);
	assert_int_equal(rt.transport, ROUTE_MAILDIR);
	assert_string_equal(rt.mailbox, "/m/example.net/\"a@b\"");
	/* all Maildir recipients count as one destination */
	route_rcpt(c, "<bob@example.net>", &rt);
	assert_string_equal(rt.key, "maildir");
	/* a domain alone: no mailbox */
	route_domain(c, "example.org", &rt);
	assert_int_equal(rt.transport, ROUTE_MAILDIR);
	assert_string_equal(rt.local, "");
	assert_string_equal(rt.mailbox, "");
	conf_free(c);
}

/* <postmaster> is our host name's postmaster, in its Maildir, even when the
 * host name is not a local domain; a name that cannot be a path component
 * gets no mailbox (delivery fails it). */
static void test_postmaster_and_bad_mailbox(void **state)
{
	struct conf *c = load(BASE);
	struct route rt;

	(void)state;
	route_rcpt(c, "<postmaster>", &rt);
	assert_int_equal(rt.transport, ROUTE_MAILDIR);
	assert_string_equal(rt.local, "postmaster");
	assert_string_equal(rt.domain, "mx.example.org");
	assert_string_equal(rt.mailbox, "/m/mx.example.org/postmaster");
	route_rcpt(c, "<../x@example.org>", &rt);
	assert_int_equal(rt.transport, ROUTE_MAILDIR);
	assert_string_equal(rt.mailbox, "");
	conf_free(c);
}

/* [domain NAME] lmtp sends that domain's mail to its LMTP server; one key per server. */
static void test_local_lmtp(void **state)
{
	struct conf *c = load(BASE "[domain example.org]\nlmtp = unix:/run/dovecot/lmtp\n");
	struct route a, b;

	(void)state;
	route_rcpt(c, "<alice@EXAMPLE.org>", &a);
	assert_int_equal(a.transport, ROUTE_LMTP);
	assert_int_equal(a.rule, ROUTE_RULE_LOCAL);
	assert_string_equal(a.lmtp, "unix:/run/dovecot/lmtp");
	assert_string_equal(a.key, "lmtp:unix:/run/dovecot/lmtp");
	assert_string_equal(a.mailbox, "");
	route_rcpt(c, "<bob@example.org>", &b);
	assert_string_equal(a.key, b.key); /* one transaction for both */
	route_rcpt(c, "<bob@example.net>", &b);
	assert_int_equal(b.transport, ROUTE_MAILDIR);
	conf_free(c);
}

/* [delivery] lmtp is the LMTP of local domains without their own; a
 * recipient accepted as local by a lookup table routes as local whatever
 * local_domains says (route_rcpt_local), and stays remote otherwise. */
static void test_default_lmtp_and_table_local(void **state)
{
	struct conf *c = load(BASE "[domain example.org]\nlmtp = unix:/own\n"
				   "[delivery]\nlmtp = 127.0.0.1:24\n");
	struct route a;

	(void)state;
	route_rcpt(c, "<alice@example.org>", &a);
	assert_string_equal(a.key, "lmtp:unix:/own");
	route_rcpt(c, "<alice@example.net>", &a);
	assert_int_equal(a.transport, ROUTE_LMTP);
	assert_string_equal(a.lmtp, "127.0.0.1:24");
	route_rcpt(c, "<bob@sql.example>", &a);
	assert_int_equal(a.transport, ROUTE_SMTP);
	route_rcpt_local(c, "<bob@sql.example>", &a);
	assert_int_equal(a.transport, ROUTE_LMTP);
	assert_int_equal(a.rule, ROUTE_RULE_LOCAL);
	assert_string_equal(a.lmtp, "127.0.0.1:24");
	assert_string_equal(a.domain, "sql.example");
	assert_string_equal(a.local, "bob");
	conf_free(c);
	c = load(BASE);
	route_rcpt_local(c, "<bob@sql.example>", &a);
	assert_int_equal(a.transport, ROUTE_MAILDIR);
	assert_string_equal(a.mailbox, "/m/sql.example/bob");
	route_rcpt_local(c, "<../x@sql.example>", &a);
	assert_string_equal(a.mailbox, ""); /* refused as route_rcpt refuses it */
	conf_free(c);
}

/* The relayhost takes all remote mail with its own TLS settings and
 * credentials; [tls_policy] and [transport] do not apply to it, and local
 * domains stay local. */
static void test_relayhost(void **state)
{
	char text[1024];
	char *auth = temp_file("user1:secret1\n");
	struct conf *c;
	struct route rt;
	char err[256];

	(void)state;
	snprintf(text, sizeof(text),
		 "%s[remote]\nrelayhost = [smtp.example.com]:465\nrelayhost_tls = verify\n"
		 "relayhost_implicit_tls = yes\nrelayhost_auth_file = %s\ntls = none\n"
		 "[transport]\nremote.test = [other.example]\n"
		 "[tls_policy]\nremote.test = encrypt\n",
		 BASE, auth);
	c = load(text);
	route_rcpt(c, "<a@remote.test>", &rt);
	assert_int_equal(rt.transport, ROUTE_SMTP);
	assert_int_equal(rt.rule, ROUTE_RULE_RELAYHOST);
	assert_string_equal(rt.hop.host, "smtp.example.com");
	assert_int_equal(rt.hop.port, 465);
	assert_false(rt.hop.mx);
	assert_int_equal(rt.tls, TLS_POLICY_VERIFY);
	assert_null(rt.tls_policy_key);
	assert_null(rt.transport_key);
	assert_true(rt.implicit_tls);
	assert_true(rt.auth);
	assert_null(rt.auth_user); /* not read yet: hatod reads it at start */
	assert_string_equal(rt.key, "smtp:[smtp.example.com]:465");
	assert_string_equal(rt.domain, "remote.test");
	assert_true(relay_auth_load(c, err, sizeof(err)));
	unlink(auth);
	free(auth);
	route_rcpt(c, "<b@elsewhere.test>", &rt);
	assert_string_equal(rt.auth_user, "user1");
	assert_string_equal(rt.auth_password, "secret1");
	assert_string_equal(rt.key, "smtp:[smtp.example.com]:465");
	route_rcpt(c, "<c@example.org>", &rt);
	assert_int_equal(rt.transport, ROUTE_MAILDIR);
	conf_free(c);

	/* without brackets the relayhost's MX hosts are used; no auth file, no login */
	c = load(BASE "[remote]\nrelayhost = relay.example.com\n");
	route_domain(c, "remote.test", &rt);
	assert_int_equal(rt.rule, ROUTE_RULE_RELAYHOST);
	assert_string_equal(rt.hop.host, "relay.example.com");
	assert_true(rt.hop.mx);
	assert_int_equal(rt.hop.port, 0);
	assert_int_equal(rt.tls, TLS_POLICY_MAY);
	assert_false(rt.implicit_tls);
	assert_false(rt.auth);
	conf_free(c);
}

/* [transport]: the exact domain, then ".parent" entries from the nearest up, then "*". */
static void test_transport(void **state)
{
	struct conf *c = load(BASE "[transport]\n* = [fallback.example]\n.test = outer.example\n"
				   "a.test = [hop-a.example]:2525\n.b.test = hop-b.example\n");
	struct route rt;

	(void)state;
	route_rcpt(c, "<x@a.test>", &rt);
	assert_int_equal(rt.transport, ROUTE_SMTP);
	assert_int_equal(rt.rule, ROUTE_RULE_TRANSPORT);
	assert_string_equal(rt.transport_key, "a.test");
	assert_string_equal(rt.hop.host, "hop-a.example");
	assert_int_equal(rt.hop.port, 2525);
	assert_false(rt.hop.mx);
	assert_string_equal(rt.key, "smtp:[hop-a.example]:2525 tls=may");

	route_rcpt(c, "<x@deep.sub.b.test>", &rt); /* .b.test is nearer than .test */
	assert_string_equal(rt.transport_key, ".b.test");
	assert_string_equal(rt.hop.host, "hop-b.example");
	assert_true(rt.hop.mx);
	assert_string_equal(rt.key, "smtp:hop-b.example tls=may");

	route_rcpt(c, "<x@b.test>", &rt); /* .b.test is for subdomains only */
	assert_string_equal(rt.transport_key, ".test");
	assert_string_equal(rt.hop.host, "outer.example");

	route_rcpt(c, "<x@A.TEST>", &rt); /* any case */
	assert_string_equal(rt.transport_key, "a.test");

	route_rcpt(c, "<x@example.com>", &rt);
	assert_string_equal(rt.transport_key, "*");
	assert_string_equal(rt.hop.host, "fallback.example");
	assert_string_equal(rt.key, "smtp:[fallback.example] tls=may");

	route_rcpt(c, "<x@example.org>", &rt); /* local domains never use [transport] */
	assert_int_equal(rt.transport, ROUTE_MAILDIR);
	conf_free(c);
}

/* Without relayhost or [transport], a remote domain goes to its MX hosts. */
static void test_mx_default(void **state)
{
	struct conf *c = load(BASE);
	struct route a, b;

	(void)state;
	route_rcpt(c, "<x@Remote.Test>", &a);
	assert_int_equal(a.transport, ROUTE_SMTP);
	assert_int_equal(a.rule, ROUTE_RULE_MX);
	assert_string_equal(a.hop.host, "Remote.Test");
	assert_true(a.hop.mx);
	assert_int_equal(a.hop.port, 0);
	assert_int_equal(a.tls, TLS_POLICY_MAY);
	assert_false(a.implicit_tls);
	assert_false(a.auth);
	assert_null(a.transport_key);
	assert_string_equal(a.key, "smtp:Remote.Test tls=may");
	route_rcpt(c, "<y@Remote.Test>", &b);
	assert_string_equal(a.key, b.key);
	route_rcpt(c, "<y@other.test>", &b);
	assert_string_not_equal(a.key, b.key);
	conf_free(c);
}

/* [tls_policy] sets the policy of MX and [transport] routes, else [remote] tls;
 * domains sharing a hop share connections only under the same policy. */
static void test_tls_policy(void **state)
{
	struct conf *c = load(BASE "[remote]\ntls = encrypt\n"
				   "[transport]\n.hub.test = [hub.example]\n"
				   "[tls_policy]\n.secure.test = verify\nplain.hub.test = none\n");
	struct route a, b;

	(void)state;
	route_rcpt(c, "<x@mx.secure.test>", &a);
	assert_int_equal(a.rule, ROUTE_RULE_MX);
	assert_int_equal(a.tls, TLS_POLICY_VERIFY);
	assert_string_equal(a.tls_policy_key, ".secure.test");
	assert_string_equal(a.key, "smtp:mx.secure.test tls=verify");

	route_rcpt(c, "<x@other.test>", &a);
	assert_int_equal(a.tls, TLS_POLICY_ENCRYPT);
	assert_null(a.tls_policy_key);

	route_rcpt(c, "<x@a.hub.test>", &a);
	route_rcpt(c, "<x@plain.hub.test>", &b);
	assert_int_equal(a.rule, ROUTE_RULE_TRANSPORT);
	assert_int_equal(b.rule, ROUTE_RULE_TRANSPORT);
	assert_int_equal(a.tls, TLS_POLICY_ENCRYPT);
	assert_int_equal(b.tls, TLS_POLICY_NONE);
	assert_string_equal(b.tls_policy_key, "plain.hub.test");
	assert_string_equal(a.key, "smtp:[hub.example] tls=encrypt");
	assert_string_equal(b.key, "smtp:[hub.example] tls=none");
	route_rcpt(c, "<y@b.hub.test>", &b);
	assert_string_equal(a.key, b.key); /* same hop, same policy: one destination */
	conf_free(c);
}

/* An IDN local domain matches in its U-label and A-label forms, any case,
 * and its [domain] section applies to both. */
static void test_idn_local_domain(void **state)
{
	struct conf *c = load("[server]\nhostname = mx.example.org\n"
			      "local_domains = b\xc3\xbc"
			      "cher.example xn--caf-dma.example\n"
			      "[delivery]\nmailbox_path = /m/%d/%u\n"
			      "[domain b\xc3\xbc"
			      "cher.example]\nlmtp = 127.0.0.1:24\n"
			      "[listener smtp]\naddress = 127.0.0.1:2525\n");
	struct route rt;

	(void)state;
	assert_true(route_is_local(c, "b\xc3\xbc"
				      "cher.example"));
	assert_true(route_is_local(c, "xn--bcher-kva.example"));
	assert_true(route_is_local(c, "XN--BCHER-KVA.Example"));
	assert_true(route_is_local(c, "B\xc3\x9c"
				      "CHER.example")); /* Ü: IDNA maps it to ü */
	assert_true(route_is_local(c, "caf\xc3\xa9.example"));
	assert_true(route_is_local(c, "xn--caf-dma.example"));
	assert_false(route_is_local(c, "bucher.example"));
	assert_false(route_is_local(c, "xn--bcher-kva.example.org"));
	assert_int_equal(route_local_index(c, "xn--caf-dma.EXAMPLE"), 1);
	assert_int_equal(route_local_index(c, "example.org"), -1);

	route_rcpt(c, "<a@xn--bcher-kva.example>", &rt);
	assert_int_equal(rt.transport, ROUTE_LMTP);
	assert_string_equal(rt.lmtp, "127.0.0.1:24");
	assert_non_null(route_domain_conf(c, "B\xc3\x9c"
					     "CHER.example"));
	route_rcpt(c, "<a@caf\xc3\xa9.example>", &rt);
	assert_int_equal(rt.transport, ROUTE_MAILDIR);
	assert_string_equal(rt.mailbox, "/m/caf\xc3\xa9.example/a");
	assert_null(route_domain_conf(c, "caf\xc3\xa9.example"));
	conf_free(c);
}

/* route_map_find gives the entry itself, so callers can say which one matched. */
static void test_map_find(void **state)
{
	struct map_entry m[] = {{"*", "star"}, {".example", "parent"}, {"a.example", "exact"}};

	(void)state;
	assert_ptr_equal(route_map_find(m, 3, "a.example"), &m[2]);
	assert_ptr_equal(route_map_find(m, 3, "b.a.example"), &m[1]);
	assert_ptr_equal(route_map_find(m, 3, "example"), &m[0]);
	assert_null(route_map_find(m, 0, "example"));
	assert_null(route_map_find(m + 1, 2, "other.test"));
	assert_string_equal(route_transport_name(ROUTE_MAILDIR), "maildir");
	assert_string_equal(route_transport_name(ROUTE_LMTP), "lmtp");
	assert_string_equal(route_transport_name(ROUTE_SMTP), "smtp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_maildir),
		cmocka_unit_test(test_postmaster_and_bad_mailbox),
		cmocka_unit_test(test_local_lmtp),
		cmocka_unit_test(test_default_lmtp_and_table_local),
		cmocka_unit_test(test_relayhost),
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_mx_default),
		cmocka_unit_test(test_tls_policy),
		cmocka_unit_test(test_idn_local_domain),
		cmocka_unit_test(test_map_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
