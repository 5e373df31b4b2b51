/*
 * test_addr.c - unit tests for src/common/addr.c: the RFC 5321 §4.1.2 path
 * parser (mailboxes, "<>", "<postmaster>", quoted local parts, address
 * literals, source routes, length limits, RFC 6531 UTF-8), addr_format()
 * and addr_valid_domain().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addr.h"

/* Parse s; on success also check that *end is just past the '>'. */
static enum addr_error parse(const char *s, unsigned flags, struct mailaddr *a)
{
	const char *end = NULL;
	enum addr_error e = addr_parse_path(s, &end, a, flags);

	if (e == ADDR_OK) {
		assert_non_null(end);
		assert_true(end > s);
		assert_int_equal(end[-1], '>');
	}
	return e;
}

/* Expect s to be rejected with err under every flag combination. */
static void expect_error(const char *s, enum addr_error err)
{
	struct mailaddr a;

	for (unsigned flags = 0; flags <= (ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER); flags++) {
		enum addr_error got = parse(s, flags, &a);
		if (got != err)
			fail_msg("\"%s\" flags=%u: got %d, want %d", s, flags, got, err);
	}
}

/* Expect s to parse as a mailbox with the given local part and domain. */
static void expect_mailbox(const char *s, const char *local, const char *domain)
{
	struct mailaddr a;
	enum addr_error got = parse(s, 0, &a);

	if (got != ADDR_OK)
		fail_msg("\"%s\": got %d, want ADDR_OK", s, got);
	assert_int_equal(a.kind, ADDR_KIND_MAILBOX);
	assert_string_equal(a.local, local);
	assert_string_equal(a.domain, domain);
}

/* Fill buf with a valid domain of exactly len octets (labels <= 62). */
static void make_domain(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (i % 62 == 61 && i != len - 1) ? '.' : 'a';
	buf[len] = '\0';
}

/* Build "<" local "@" domain ">" with an all-'l' local part of local_len
 * octets and a domain of dom_len octets. */
static void make_path(char *buf, size_t local_len, size_t dom_len)
{
	buf[0] = '<';
	memset(buf + 1, 'l', local_len);
	buf[1 + local_len] = '@';
	make_domain(buf + 2 + local_len, dom_len);
	strcat(buf, ">");
}

/* A plain mailbox is split into local part and domain; *end follows '>'. */
static void test_simple_mailbox(void **state)
{
	struct mailaddr a;
	const char *s = "<alice@example.org> SIZE=100", *end = NULL;

	(void)state;
	assert_int_equal(addr_parse_path(s, &end, &a, 0), ADDR_OK);
	assert_int_equal(a.kind, ADDR_KIND_MAILBOX);
	assert_string_equal(a.local, "alice");
	assert_string_equal(a.domain, "example.org");
	assert_false(a.literal);
	assert_false(a.utf8);
	assert_string_equal(end, " SIZE=100");
}

/* "<>" is only accepted with ADDR_ALLOW_NULL. */
static void test_null_path(void **state)
{
	struct mailaddr a;
	const char *s = "<> BODY=8BITMIME", *end = NULL;

	(void)state;
	assert_int_equal(addr_parse_path(s, &end, &a, ADDR_ALLOW_NULL), ADDR_OK);
	assert_int_equal(a.kind, ADDR_KIND_NULL);
	assert_string_equal(end, " BODY=8BITMIME");
	assert_int_equal(parse("<>", 0, &a), ADDR_ERR_SYNTAX);
	assert_int_equal(parse("<>", ADDR_ALLOW_POSTMASTER, &a), ADDR_ERR_SYNTAX);
}

/* "<postmaster>" (any case) needs ADDR_ALLOW_POSTMASTER; case is kept. */
static void test_postmaster(void **state)
{
	struct mailaddr a;

	(void)state;
	assert_int_equal(parse("<postmaster>", ADDR_ALLOW_POSTMASTER, &a), ADDR_OK);
	assert_int_equal(a.kind, ADDR_KIND_POSTMASTER);
	assert_string_equal(a.local, "postmaster");
	assert_string_equal(a.domain, "");
	assert_int_equal(parse("<PostMaster>", ADDR_ALLOW_POSTMASTER, &a), ADDR_OK);
	assert_int_equal(a.kind, ADDR_KIND_POSTMASTER);
	assert_string_equal(a.local, "PostMaster");
	assert_int_equal(parse("<postmaster>", 0, &a), ADDR_ERR_SYNTAX);
	assert_int_equal(parse("<postmaster>", ADDR_ALLOW_NULL, &a), ADDR_ERR_SYNTAX);
	assert_int_equal(parse("<postmasterx>", ADDR_ALLOW_POSTMASTER, &a), ADDR_ERR_SYNTAX);
	/* With a domain it is an ordinary mailbox, flag or not. */
	expect_mailbox("<postmaster@example.org>", "postmaster", "example.org");
}

/* Quoted local parts are kept exactly as written, quotes included. */
static void test_quoted_local(void **state)
{
	(void)state;
	expect_mailbox("<\"john smith\"@example.org>", "\"john smith\"", "example.org");
	expect_mailbox("<\"a\\\"b\"@example.org>", "\"a\\\"b\"", "example.org");
	expect_mailbox("<\"back\\\\slash\"@example.org>", "\"back\\\\slash\"", "example.org");
	expect_mailbox("<\"\"@example.org>", "\"\"", "example.org");
	expect_mailbox("<\"a.(b)<c>,d;e:f\"@example.org>", "\"a.(b)<c>,d;e:f\"", "example.org");
}

/* '%', '!' and a quoted '@' are plain local-part characters, not routing. */
static void test_routing_chars_are_plain(void **state)
{
	(void)state;
	expect_mailbox("<a%b@example.org>", "a%b", "example.org");
	expect_mailbox("<host!user@example.org>", "host!user", "example.org");
	expect_mailbox("<\"a@b\"@example.org>", "\"a@b\"", "example.org");
	expect_mailbox("<user+tag@example.org>", "user+tag", "example.org");
	expect_mailbox("<first.last@example.org>", "first.last", "example.org");
	expect_mailbox("<#$&'*/=?^_`{|}~-@example.org>", "#$&'*/=?^_`{|}~-", "example.org");
	/* An unquoted second '@' is a syntax error. */
	expect_error("<a@b@example.org>", ADDR_ERR_SYNTAX);
}

/* Malformed dot-strings, quoted strings and brackets are syntax errors. */
static void test_local_syntax_errors(void **state)
{
	static const char *const bad[] = {
		"",
		"alice@example.org",
		"<alice@example.org",
		"<alice@example.org ",
		"<alice>",
		"<@example.org>",
		"<.a@example.org>",
		"<a.@example.org>",
		"<a..b@example.org>",
		"<a b@example.org>",
		"< a@example.org>",
		"<a(b)@example.org>",
		"<a,b@example.org>",
		"<\"unterminated@example.org>",
		"<\"ctl\x01\"@example.org>",
		"<\"tab\there\"@example.org>",
		"<\"bad\\\x01\"@example.org>",
		"<\"a\"b@example.org>",
		"<a\"b\"@example.org>",
		"<a@example.org >",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], ADDR_ERR_SYNTAX);
}

/* Domain names must be letters, digits, inner hyphens and non-empty labels. */
static void test_domain_syntax(void **state)
{
	static const char *const bad[] = {
		"<a@>",
		"<a@-example.org>",
		"<a@example-.org>",
		"<a@example..org>",
		"<a@.example.org>",
		"<a@example.org.>",
		"<a@exa_mple.org>",
		"<a@exa mple.org>",
		"<a@example.org:25>",
	};

	(void)state;
	expect_mailbox("<a@x>", "a", "x");
	expect_mailbox("<a@ex-am-ple.org>", "a", "ex-am-ple.org");
	expect_mailbox("<a@123.example>", "a", "123.example");
	expect_mailbox("<a@EXAMPLE.Org>", "a", "EXAMPLE.Org");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], ADDR_ERR_SYNTAX);
}

/* IPv4, IPv6 and general address literals; literal is set. */
static void test_address_literals(void **state)
{
	static const char *const good[] = {
		"[192.0.2.1]",          "[IPv6:::1]",
		"[ipv6:2001:db8::1]",   "[IPv6:::ffff:192.0.2.1]",
		"[x-tag:some-content]", "[Tag9:a!~Z^]",
	};
	static const char *const bad[] = {
		"<a@[1.2.3]>",     "<a@[256.1.1.1]>",  "<a@[IPv6:1.2.3.4]>",
		"<a@[IPv6:::g]>",  "<a@[ipv6:zz::1]>", "<a@[::1]>",
		"<a@[]>",          "<a@[1.2.3.4>",     "<a@[1.2.3.4]x>",
		"<a@[:abc]>",      "<a@[tag:]>",       "<a@[t_g:abc]>",
		"<a@[tag:a\\b]>",  "<a@[tag:a[b]>",    "<a@[tag:a b]>",
		"<a@x.[1.2.3.4]>",
	};
	struct mailaddr a;
	char path[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(path, sizeof(path), "<user@%s>", good[i]);
		if (parse(path, 0, &a) != ADDR_OK)
			fail_msg("\"%s\" rejected", path);
		assert_true(a.literal);
		assert_string_equal(a.local, "user");
		assert_string_equal(a.domain, good[i]);
	}
	assert_int_equal(parse("<user@example.org>", 0, &a), ADDR_OK);
	assert_false(a.literal);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], ADDR_ERR_SYNTAX);
}

/* A source route is accepted and dropped; malformed routes are rejected. */
static void test_source_route(void **state)
{
	struct mailaddr a;
	const char *s = "<@a.example,@b.example:u@d.example> SIZE=1", *end = NULL;

	(void)state;
	assert_int_equal(addr_parse_path(s, &end, &a, 0), ADDR_OK);
	assert_int_equal(a.kind, ADDR_KIND_MAILBOX);
	assert_string_equal(a.local, "u");
	assert_string_equal(a.domain, "d.example");
	assert_string_equal(end, " SIZE=1");
	expect_mailbox("<@relay.example:\"q u\"@d.example>", "\"q u\"", "d.example");
	expect_error("<@:u@d.example>", ADDR_ERR_SYNTAX);
	expect_error("<@a.example,b.example:u@d.example>", ADDR_ERR_SYNTAX);
	expect_error("<@a.example u@d.example>", ADDR_ERR_SYNTAX);
	expect_error("<@-a.example:u@d.example>", ADDR_ERR_SYNTAX);
	expect_error("<@a.example,:u@d.example>", ADDR_ERR_SYNTAX);
	expect_error("<@a.example:>", ADDR_ERR_SYNTAX);
	expect_error("<@a.example>", ADDR_ERR_SYNTAX);
}

/* Local part: 64 octets pass, 65 are ADDR_ERR_TOO_LONG (quoted too). */
static void test_local_part_limit(void **state)
{
	struct mailaddr a;
	char path[400];

	(void)state;
	make_path(path, 64, 11);
	assert_int_equal(parse(path, 0, &a), ADDR_OK);
	assert_int_equal(strlen(a.local), 64);
	make_path(path, 65, 11);
	expect_error(path, ADDR_ERR_TOO_LONG);
	/* A quoted local part of 65 octets, quotes included. */
	path[0] = '<';
	path[1] = '"';
	memset(path + 2, 'q', 63);
	strcpy(path + 65, "\"@example.org>");
	expect_error(path, ADDR_ERR_TOO_LONG);
	path[64] = '"';
	strcpy(path + 65, "@example.org>");
	assert_int_equal(parse(path, 0, &a), ADDR_OK);
	assert_int_equal(strlen(a.local), 64);
}

/* Path: 256 octets with the brackets pass, 257 are ADDR_ERR_TOO_LONG. */
static void test_path_limit(void **state)
{
	struct mailaddr a;
	char path[400];

	(void)state;
	make_path(path, 64, 256 - 64 - 3);
	assert_int_equal(strlen(path), 256);
	assert_int_equal(parse(path, 0, &a), ADDR_OK);
	assert_int_equal(strlen(a.domain), 189);
	make_path(path, 64, 256 - 64 - 2);
	assert_int_equal(strlen(path), 257);
	expect_error(path, ADDR_ERR_TOO_LONG);
	make_path(path, 1, 253);
	assert_int_equal(strlen(path), 257);
	expect_error(path, ADDR_ERR_TOO_LONG);
}

/* Domains over 255 octets are ADDR_ERR_TOO_LONG, not a syntax error. */
static void test_domain_limit(void **state)
{
	char path[400];

	(void)state;
	make_path(path, 1, 256);
	expect_error(path, ADDR_ERR_TOO_LONG);
	make_path(path, 1, 300);
	expect_error(path, ADDR_ERR_TOO_LONG);
}

/* Non-ASCII local parts and domains are accepted and flagged utf8. */
static void test_utf8_accepted(void **state)
{
	struct mailaddr a;

	(void)state;
	assert_int_equal(parse("<j\xc3\xb6rg@example.org>", 0, &a), ADDR_OK);
	assert_true(a.utf8);
	assert_string_equal(a.local, "j\xc3\xb6rg");
	assert_int_equal(parse("<user@b\xc3\xbc"
			       "cher.example>",
			       0, &a),
			 ADDR_OK);
	assert_true(a.utf8);
	assert_string_equal(a.domain, "b\xc3\xbc"
				      "cher.example");
	assert_int_equal(parse("<\"j\xc3\xb6 rg\"@example.org>", 0, &a), ADDR_OK);
	assert_true(a.utf8);
	/* 3- and 4-octet sequences: U+20AC and U+1F600. */
	assert_int_equal(parse("<\xe2\x82\xac@\xf0\x9f\x98\x80.example>", 0, &a), ADDR_OK);
	assert_true(a.utf8);
	assert_int_equal(parse("<plain@example.org>", 0, &a), ADDR_OK);
	assert_false(a.utf8);
}

/* Malformed UTF-8 (bad lead, missing or bad continuation) is rejected. */
static void test_utf8_malformed(void **state)
{
	static const char *const bad[] = {
		"<\x80@example.org>",
		"<a\xbf@example.org>",
		"<\xc3@example.org>",
		"<\xc3(@example.org>",
		"<\xc0\xaf@example.org>",
		"<\xc1\xbf@example.org>",
		"<\xe2\x82@example.org>",
		"<\xf0\x9f\x98@example.org>",
		"<\xf5\x80\x80\x80@example.org>",
		"<\xff@example.org>",
		"<\"\xc3\"@example.org>",
		"<a@b\xc3.example>",
		"<a@\x80.example>",
		"<a@\xfe.example>",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], ADDR_ERR_SYNTAX);
}

/*
 * Overlong 3/4-octet forms, UTF-16 surrogates and code points past U+10FFFF
 * are not UTF-8 (RFC 3629 §4) and must be rejected like the others.
 */
static void test_utf8_overlong_and_surrogates(void **state)
{
	static const char *const bad[] = {
		"<\xe0\x80\x80@example.org>",     /* overlong U+0000 */
		"<\xe0\x9f\xbf@example.org>",     /* overlong U+07FF */
		"<\xed\xa0\x80@example.org>",     /* surrogate U+D800 */
		"<\xf0\x80\x80\x80@example.org>", /* overlong U+0000 */
		"<\xf4\x90\x80\x80@example.org>", /* U+110000 */
		"<a@\xed\xbf\xbf.example>",       /* surrogate U+DFFF in a domain */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], ADDR_ERR_SYNTAX);
}

/* addr_format writes each kind and parses back to the same address. */
static void test_format_round_trip(void **state)
{
	static const char *const paths[] = {
		"<alice@example.org>",
		"<\"john smith\"@example.org>",
		"<a@[IPv6:::1]>",
		"<j\xc3\xb6rg@example.org>",
		"<>",
		"<Postmaster>",
	};
	struct mailaddr a, b;
	char buf[ADDR_PATH_MAX + 1];
	unsigned flags = ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER;

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(parse(paths[i], flags, &a), ADDR_OK);
		assert_true(addr_format(&a, buf, sizeof(buf)));
		assert_string_equal(buf, paths[i]);
		assert_int_equal(parse(buf, flags, &b), ADDR_OK);
		assert_memory_equal(&a, &b, sizeof(a));
	}
	/* The source route is dropped. */
	assert_int_equal(parse("<@r.example:u@d.example>", 0, &a), ADDR_OK);
	assert_true(addr_format(&a, buf, sizeof(buf)));
	assert_string_equal(buf, "<u@d.example>");
}

/* addr_format reports a too-small buffer instead of a silent truncation. */
static void test_format_too_small(void **state)
{
	struct mailaddr a;
	char buf[32];

	(void)state;
	assert_int_equal(parse("<alice@example.org>", 0, &a), ADDR_OK);
	/* 19 characters: 20 bytes fit exactly, 19 do not. */
	assert_true(addr_format(&a, buf, 20));
	assert_string_equal(buf, "<alice@example.org>");
	assert_false(addr_format(&a, buf, 19));
	assert_false(addr_format(&a, buf, 1));
	assert_int_equal(parse("<>", ADDR_ALLOW_NULL, &a), ADDR_OK);
	assert_true(addr_format(&a, buf, 3));
	assert_false(addr_format(&a, buf, 2));
}

/* addr_valid_domain: labels, hyphens, the 63/255 limits and len bounds. */
static void test_valid_domain(void **state)
{
	char name[300];

	(void)state;
	assert_true(addr_valid_domain("example.org", 11));
	assert_true(addr_valid_domain("a", 1));
	assert_true(addr_valid_domain("xn--bcher-kva.example", 21));
	assert_true(addr_valid_domain("b\xc3\xbc"
				      "cher.example",
				      15));
	assert_false(addr_valid_domain("", 0));
	assert_false(addr_valid_domain("a..b", 4));
	assert_false(addr_valid_domain("-a", 2));
	assert_false(addr_valid_domain("a-", 2));
	assert_false(addr_valid_domain("a-.b", 4));
	assert_false(addr_valid_domain("a.", 2));
	assert_false(addr_valid_domain("a_b", 3));
	assert_false(addr_valid_domain("[1.2.3.4]", 9));
	/* Only len octets are looked at. */
	assert_true(addr_valid_domain("example.org!!", 11));
	assert_false(addr_valid_domain("example.org!!", 12));
	/* A label of 63 octets is fine, 64 is not. */
	memset(name, 'a', 64);
	assert_true(addr_valid_domain(name, 63));
	assert_false(addr_valid_domain(name, 64));
	/* 255 octets in total is fine, 256 is not. */
	make_domain(name, 255);
	assert_true(addr_valid_domain(name, 255));
	make_domain(name, 256);
	assert_false(addr_valid_domain(name, 256));
}

/*
 * addr_valid_domain(name, len) reads only len octets: the name is put at
 * the very end of a page followed by an inaccessible one, so any read past
 * len crashes the test (with or without a sanitizer).
 */
static void test_valid_domain_reads_only_len(void **state)
{
	static const char *const names[] = {
		"ab", "a\xc3", "a\xe2\x82", "a\xf0\x9f\x98", "b\xc3\xbc", "\xe2",
	};
	long page = sysconf(_SC_PAGESIZE);
	char *map;

	(void)state;
	map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len = strlen(names[i]);
		char *name = map + page - len;
		bool want = i == 0 || i == 4;

		memcpy(name, names[i], len);
		if (addr_valid_domain(name, len) != want)
			fail_msg("name %zu: got %d", i, !want);
	}
	munmap(map, (size_t)page * 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_mailbox),
		cmocka_unit_test(test_null_path),
		cmocka_unit_test(test_postmaster),
		cmocka_unit_test(test_quoted_local),
		cmocka_unit_test(test_routing_chars_are_plain),
		cmocka_unit_test(test_local_syntax_errors),
		cmocka_unit_test(test_domain_syntax),
		cmocka_unit_test(test_address_literals),
		cmocka_unit_test(test_source_route),
		cmocka_unit_test(test_local_part_limit),
		cmocka_unit_test(test_path_limit),
		cmocka_unit_test(test_domain_limit),
		cmocka_unit_test(test_utf8_accepted),
		cmocka_unit_test(test_utf8_malformed),
		cmocka_unit_test(test_utf8_overlong_and_surrogates),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_format_too_small),
		cmocka_unit_test(test_valid_domain),
		cmocka_unit_test(test_valid_domain_reads_only_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
