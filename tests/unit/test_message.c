/*
 * test_message.c - unit tests for src/client/message.c, the pure half of
 * `hato send`: RFC 5322 address lists (display names, quoted commas,
 * comments, groups, folding, routes, literals, duplicates, and what is
 * refused), line ending normalisation, the end of the header section,
 * field presence, Bcc removal and the fields added to a message, recipient
 * extraction for -t, and the Date / Message-ID texts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "message.h"

/* --- helpers ----------------------------------------------------------------------- */

/* Parse value; assert success and that the addresses are exactly the
 * NULL-terminated list that follows. */
static void check_list(const char *value, ...)
{
	struct message_addrs a;
	char err[256] = "";
	va_list ap;
	size_t i = 0;
	const char *want;

	message_addrs_init(&a);
	if (!message_parse_addr_list(value, strlen(value), &a, err, sizeof(err)))
		fail_msg("refused \"%s\": %s", value, err);
	va_start(ap, value);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (i >= a.n)
			fail_msg("\"%s\": only %zu addresses, wanted %s", value, a.n, want);
		assert_string_equal(a.v[i], want);
		i++;
	}
	va_end(ap);
	assert_int_equal(a.n, i);
	message_addrs_free(&a);
}

/* Parse value; assert that it is refused with an error containing why. */
static void check_refused(const char *value, const char *why)
{
	struct message_addrs a;
	char err[256] = "";

	message_addrs_init(&a);
	if (message_parse_addr_list(value, strlen(value), &a, err, sizeof(err)))
		fail_msg("accepted \"%s\" (%zu addresses)", value, a.n);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": error \"%s\" does not say \"%s\"", value, err, why);
	message_addrs_free(&a);
}

/* Normalise in; assert the result. */
static void check_normalize(const char *in, const char *want)
{
	struct strbuf out;
	char err[128];

	strbuf_init(&out);
	assert_true(message_normalize(in, strlen(in), &out, err, sizeof(err)));
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.s, want, out.len);
	strbuf_free(&out);
}

/* What message_prepare made of one input. */
struct prepared {
	bool ok;
	struct strbuf out;
	struct message_addrs rcpts;
	char err[256];
};

#define FROM "me@host.example"
#define DATE "Sun, 29 Nov 2026 01:30:00 +0000"
#define MSGID "<20261129013000.0011223344556677@host.example>"
#define ADDED "From: " FROM "\r\nDate: " DATE "\r\nMessage-ID: " MSGID "\r\n"

static void prepare(const char *in, bool extract, struct prepared *p)
{
	struct message_fill fill = {.from = FROM, .date = DATE, .msgid = MSGID, .extract = extract};

	strbuf_init(&p->out);
	message_addrs_init(&p->rcpts);
	p->err[0] = '\0';
	p->ok = message_prepare(in, strlen(in), &fill, &p->out, &p->rcpts, p->err, sizeof(p->err));
}

static void prepared_free(struct prepared *p)
{
	strbuf_free(&p->out);
	message_addrs_free(&p->rcpts);
}

/* Prepare in (with -t); assert the output text. */
static void check_prepared(const char *in, const char *want)
{
	struct prepared p;

	prepare(in, true, &p);
	if (!p.ok)
		fail_msg("refused: %s", p.err);
	assert_string_equal(p.out.s, want);
	prepared_free(&p);
}

/* --- address lists ------------------------------------------------------------------- */

static void test_addr_plain(void **state)
{
	(void)state;
	check_list("a@b.example", "a@b.example", NULL);
	check_list("  a@b.example  ", "a@b.example", NULL);
	check_list("a@b.example,c@d.example", "a@b.example", "c@d.example", NULL);
	check_list("a@b.example , c@d.example", "a@b.example", "c@d.example", NULL);
	check_list("first.last+tag@sub.b.example", "first.last+tag@sub.b.example", NULL);
}

static void test_addr_display_names(void **state)
{
	(void)state;
	check_list("Name <a@b.example>, c@d.example, \"x, y\" <e@f.example>", "a@b.example",
		   "c@d.example", "e@f.example", NULL);
	check_list("John Q. Public <jqp@example.org>", "jqp@example.org", NULL);
	check_list("<a@b.example>", "a@b.example", NULL);
	check_list("\"Smith, John\" <js@example.org>, \"Doe; Jane: <x>\" <jd@example.org>",
		   "js@example.org", "jd@example.org", NULL);
	check_list("\"a \\\"quoted\\\" name\" <q@example.org>", "q@example.org", NULL);
	check_list("=?UTF-8?Q?J=C3=BCrgen?= <j@example.org>", "j@example.org", NULL);
	check_list("J\xc3\xbcrgen M\xc3\xbcller <j@example.org>", "j@example.org", NULL);
}

static void test_addr_comments(void **state)
{
	(void)state;
	check_list("a@b.example (Alice)", "a@b.example", NULL);
	check_list("(Alice) a@b.example", "a@b.example", NULL);
	check_list("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
		   "pete@silly.test", NULL);
	check_list("a@b.example (nested (comment, with comma))", "a@b.example", NULL);
	check_list("a (x) @ (y) b.example", "a@b.example", NULL); /* obsolete CFWS */
}

static void test_addr_groups(void **state)
{
	(void)state;
	check_list("undisclosed-recipients:;", NULL);
	check_list("undisclosed-recipients: ;", NULL);
	check_list("Friends: a@b.example, Bob <c@d.example>;", "a@b.example", "c@d.example", NULL);
	check_list("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;", "c@a.test",
		   "joe@where.test", "jdoe@one.test", NULL);
	check_list("x@y.example, team: a@b.example;, z@w.example", "x@y.example", "a@b.example",
		   "z@w.example", NULL);
	check_list("\"My group\": a@b.example;", "a@b.example", NULL);
	check_list("Undisclosed recipients:;", NULL);
}

static void test_addr_folding(void **state)
{
	(void)state;
	check_list(" A <a@b.example>,\r\n\tB <c@d.example>,\r\n c@e.example\r\n", "a@b.example",
		   "c@d.example", "c@e.example", NULL);
	check_list("\"folded\r\n name\" <a@b.example>", "a@b.example", NULL);
	check_list("a@b.example\r\n", "a@b.example", NULL);
}

static void test_addr_empty_elements(void **state)
{
	(void)state;
	check_list("", NULL);
	check_list("   ", NULL);
	check_list(",", NULL);
	check_list("a@b.example,,c@d.example,", "a@b.example", "c@d.example", NULL);
	check_list("(just a comment)", NULL);
}

static void test_addr_forms(void **state)
{
	(void)state;
	/* quoted local part, kept as written */
	check_list("\"john smith\"@example.org", "\"john smith\"@example.org", NULL);
	check_list("Name <\"a b\"@example.org>", "\"a b\"@example.org", NULL);
	/* address literals */
	check_list("root@[192.0.2.1]", "root@[192.0.2.1]", NULL);
	check_list("x <root@[IPv6:2001:db8::1]>", "root@[IPv6:2001:db8::1]", NULL);
	/* an obsolete route is dropped */
	check_list("<@relay.example,@other.example:a@b.example>", "a@b.example", NULL);
	/* white space inside the angle brackets */
	check_list("Name < a@b.example >", "a@b.example", NULL);
}

static void test_addr_duplicates(void **state)
{
	(void)state;
	check_list("a@b.example, A <a@b.example>, a@B.EXAMPLE", "a@b.example", NULL);
	check_list("a@b.example, A@b.example", "a@b.example", "A@b.example", NULL);
}

static void test_addr_refused(void **state)
{
	(void)state;
	check_refused("\"unterminated <a@b.example>", "unterminated quoted string");
	check_refused("Name <a@b.example", "missing '>'");
	check_refused("a@b.example (open comment", "unterminated comment");
	check_refused("John Smith", "no <address>");
	check_refused("John Smith a@b.example", "no <address>");
	check_refused("alice", "no <address>");
	check_refused("Name <a@b.example> trailing", "text after <address>");
	check_refused("<a@b.example> <c@d.example>", "two <addresses>");
	check_refused("a@b.example;", "outside a group");
	check_refused("g: a@b.example", "without its closing ';'");
	check_refused("g: h: a@b.example;;", "unexpected ':'");
	check_refused(": a@b.example;", "unexpected ':'");
	check_refused("Name <>", "empty address");
	check_refused("Name <alice>", "not a valid address");
	check_refused("a@@b.example", "not a valid address");
	check_refused("a@b..example", "not a valid address");
	check_refused("a@-b.example", "not a valid address");
	check_refused("a@[300.1.1.1]", "not a valid address");
	check_refused("a@b.example>", "unexpected '>'");
	check_refused("<a<b@c.example>", "'<' inside");
	check_refused("a\\b@c.example", "unexpected '\\'");
	check_refused("x@[1.2.3.4", "unterminated domain literal");
}

static void test_addr_error_keeps_earlier(void **state)
{
	struct message_addrs a;
	char err[128];

	(void)state;
	message_addrs_init(&a);
	assert_false(message_parse_addr_list("a@b.example, bad", 16, &a, err, sizeof(err)));
	assert_int_equal(a.n, 1);
	assert_string_equal(err, "no <address> in \"bad\"");
	message_addrs_free(&a);
}

static void test_addr_too_long(void **state)
{
	char local[80], addr[400];

	(void)state;
	memset(local, 'x', 65);
	local[65] = '\0';
	snprintf(addr, sizeof(addr), "%s@b.example", local);
	check_refused(addr, "too long");
	local[64] = '\0';
	snprintf(addr, sizeof(addr), "%s@b.example", local);
	check_list(addr, addr, NULL);
}

static void test_addrs_add(void **state)
{
	struct message_addrs a;

	(void)state;
	message_addrs_init(&a);
	assert_true(message_addrs_add(&a, "x@y.example"));
	assert_false(message_addrs_add(&a, "x@Y.Example"));
	assert_true(message_addrs_add(&a, "X@y.example"));
	for (int i = 0; i < 100; i++) {
		char buf[32];

		snprintf(buf, sizeof(buf), "u%d@y.example", i);
		assert_true(message_addrs_add(&a, buf));
	}
	assert_int_equal(a.n, 102);
	assert_string_equal(a.v[101], "u99@y.example");
	message_addrs_free(&a);
	assert_int_equal(a.n, 0);
	message_addrs_free(&a); /* twice is fine */
}

/* --- line endings -------------------------------------------------------------------- */

static void test_normalize(void **state)
{
	(void)state;
	check_normalize("", "");
	check_normalize("a\nb\n", "a\r\nb\r\n");
	check_normalize("a\r\nb\r\n", "a\r\nb\r\n");
	check_normalize("a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n");
	check_normalize("no newline", "no newline\r\n");
	check_normalize("a\nlast", "a\r\nlast\r\n");
	check_normalize("\n\n", "\r\n\r\n");
	check_normalize("\r\n", "\r\n");
	check_normalize("x\r\n\n", "x\r\n\r\n");
	check_normalize("8bit \xc3\xa9\n", "8bit \xc3\xa9\r\n");
}

static void test_normalize_refused(void **state)
{
	struct strbuf out;
	char err[128];

	(void)state;
	strbuf_init(&out);
	assert_false(message_normalize("a\nb\rc\n", 7, &out, err, sizeof(err)));
	assert_string_equal(err, "line 2: bare CR (a CR must be followed by LF)");
	out.len = 0;
	assert_false(message_normalize("ends in CR\r", 11, &out, err, sizeof(err)));
	assert_string_equal(err, "line 1: bare CR (a CR must be followed by LF)");
	out.len = 0;
	assert_false(message_normalize("a\n\nb\0c\n", 7, &out, err, sizeof(err)));
	assert_string_equal(err, "line 3: NUL octet");
	strbuf_free(&out);
}

/* --- the header section --------------------------------------------------------------- */

static void test_header_end(void **state)
{
	bool blank;
	const char *m;

	(void)state;
	m = "A: 1\r\nB: 2\r\n\r\nbody\r\n";
	assert_int_equal(message_header_end(m, strlen(m), &blank), 12);
	assert_true(blank);
	m = "A: 1\r\n folded\r\n\r\n";
	assert_int_equal(message_header_end(m, strlen(m), &blank), 15);
	assert_true(blank);
	m = "A: 1\r\nnot a field\r\nB: 2\r\n";
	assert_int_equal(message_header_end(m, strlen(m), &blank), 6);
	assert_false(blank);
	m = "A: 1\r\nB: 2\r\n"; /* only a header */
	assert_int_equal(message_header_end(m, strlen(m), &blank), strlen(m));
	assert_false(blank);
	m = "\r\nbody\r\n";
	assert_int_equal(message_header_end(m, strlen(m), &blank), 0);
	assert_true(blank);
	m = "";
	assert_int_equal(message_header_end(m, 0, &blank), 0);
	assert_false(blank);
	m = "Obsolete : space\r\n\r\n";
	assert_int_equal(message_header_end(m, strlen(m), &blank), 18);
	m = "From nobody Mon Jan  1 00:00:00 2024\r\nA: 1\r\n"; /* mbox line: not a field */
	assert_int_equal(message_header_end(m, strlen(m), &blank), 0);
}

static void test_has_field(void **state)
{
	const char *m = "from: a@b.example\r\nX-Date: no\r\nMessage-Id: <x@y>\r\n"
			"Subject: Date: in a value\r\n\r\nDate: in the body\r\n";

	(void)state;
	assert_true(message_has_field(m, strlen(m), "From"));
	assert_true(message_has_field(m, strlen(m), "Message-ID"));
	assert_true(message_has_field(m, strlen(m), "subject"));
	assert_false(message_has_field(m, strlen(m), "Date"));
	assert_false(message_has_field(m, strlen(m), "To"));
	m = "Dates: x\r\nDat: y\r\n\r\n";
	assert_false(message_has_field(m, strlen(m), "Date"));
	m = "Date : Mon, 1 Jan 2024 00:00:00 +0000\r\n";
	assert_true(message_has_field(m, strlen(m), "Date"));
}

/* --- message_prepare ------------------------------------------------------------------ */

static void test_prepare_adds_missing(void **state)
{
	(void)state;
	check_prepared("Subject: hi\nTo: a@b.example\n\nbody\n",
		       "Subject: hi\r\nTo: a@b.example\r\n" ADDED "\r\nbody\r\n");
	check_prepared("From: x@y.example\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
		       "Message-ID: <1@y>\r\nTo: a@b.example\r\n\r\nbody\r\n",
		       "From: x@y.example\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
		       "Message-ID: <1@y>\r\nTo: a@b.example\r\n\r\nbody\r\n");
	check_prepared("message-id: <1@y>\nTO: a@b.example\n\n",
		       "message-id: <1@y>\r\nTO: a@b.example\r\nFrom: " FROM "\r\nDate: " DATE
		       "\r\n\r\n");
}

static void test_prepare_separator(void **state)
{
	struct prepared p;

	(void)state;
	/* a body without the empty line gets one after the added fields */
	prepare("just text\nmore\n", false, &p);
	assert_true(p.ok);
	assert_string_equal(p.out.s, ADDED "\r\njust text\r\nmore\r\n");
	prepared_free(&p);
	/* a header-only message stays header-only */
	prepare("Subject: x\n", false, &p);
	assert_true(p.ok);
	assert_string_equal(p.out.s, "Subject: x\r\n" ADDED);
	prepared_free(&p);
	/* an empty message: just the added fields */
	prepare("", false, &p);
	assert_true(p.ok);
	assert_string_equal(p.out.s, ADDED);
	prepared_free(&p);
	/* nothing added: nothing changed, not even a separator */
	prepare("From: a@b.example\nDate: d\nMessage-ID: <m@b>\nbody line\n", false, &p);
	assert_true(p.ok);
	assert_string_equal(p.out.s,
			    "From: a@b.example\r\nDate: d\r\nMessage-ID: <m@b>\r\nbody line\r\n");
	prepared_free(&p);
}

static void test_prepare_bcc_removed(void **state)
{
	(void)state;
	check_prepared("To: a@b.example\nBcc: hidden@b.example,\n  other@b.example\nSubject: s\n\n"
		       "Bcc: in the body stays\n",
		       "To: a@b.example\r\nSubject: s\r\n" ADDED "\r\nBcc: in the body stays\r\n");
	check_prepared("bcc: x@y.example\nBCC: z@y.example\nTo: a@b.example\n\nb\n",
		       "To: a@b.example\r\n" ADDED "\r\nb\r\n");
	check_prepared("Bcc:\nTo: a@b.example\n\n", "To: a@b.example\r\n" ADDED "\r\n");
	check_prepared("Bcc : obsolete@y.example\nTo: a@b.example\n\n",
		       "To: a@b.example\r\n" ADDED "\r\n");
	/* lookalikes stay */
	check_prepared("Bccx: k@y.example\nX-Bcc: k@y.example\nTo: a@b.example\n\n",
		       "Bccx: k@y.example\r\nX-Bcc: k@y.example\r\nTo: a@b.example\r\n" ADDED
		       "\r\n");
}

static void test_prepare_bcc_removed_without_extract(void **state)
{
	struct prepared p;

	(void)state;
	prepare("To: a@b.example\nBcc: secret@b.example\n\nbody\n", false, &p);
	assert_true(p.ok);
	assert_null(strstr(p.out.s, "secret"));
	assert_int_equal(p.rcpts.n, 0); /* without -t nothing is extracted */
	prepared_free(&p);
}

static void test_prepare_extracts(void **state)
{
	struct prepared p;

	(void)state;
	prepare("To: Alice <alice@b.example>, \"Smith, Bob\" <bob@b.example>\n"
		"Cc: team: carol@b.example, dave@b.example;,\n"
		"  undisclosed-recipients:;\n"
		"Bcc: eve@b.example\n"
		"cc: alice@B.example\n"
		"Reply-To: not@b.example\n"
		"Subject: x\n\n"
		"To: body@b.example\n",
		true, &p);
	assert_true(p.ok);
	assert_int_equal(p.rcpts.n, 5);
	assert_string_equal(p.rcpts.v[0], "alice@b.example");
	assert_string_equal(p.rcpts.v[1], "bob@b.example");
	assert_string_equal(p.rcpts.v[2], "carol@b.example");
	assert_string_equal(p.rcpts.v[3], "dave@b.example");
	assert_string_equal(p.rcpts.v[4], "eve@b.example");
	assert_null(strstr(p.out.s, "eve@"));
	assert_non_null(strstr(p.out.s, "Cc: team: carol@b.example, dave@b.example;,\r\n"
					"  undisclosed-recipients:;\r\n"));
	prepared_free(&p);
}

static void test_prepare_refused(void **state)
{
	struct prepared p;

	(void)state;
	prepare("To: John Smith\n\nbody\n", true, &p);
	assert_false(p.ok);
	assert_string_equal(p.err, "To: no <address> in \"John Smith\"");
	prepared_free(&p);
	prepare("To: a@b.example\nBcc: \"open\n\n", true, &p);
	assert_false(p.ok);
	assert_string_equal(p.err, "Bcc: unterminated quoted string");
	prepared_free(&p);
	prepare("Subject: x\n\nbare \r CR\n", true, &p);
	assert_false(p.ok);
	assert_string_equal(p.err, "line 3: bare CR (a CR must be followed by LF)");
	prepared_free(&p);
	/* without -t a bad To is the server's and the reader's business */
	prepare("To: John Smith\n\nbody\n", false, &p);
	assert_true(p.ok);
	prepared_free(&p);
}

static void test_prepare_null_fill(void **state)
{
	struct message_fill fill = {0};
	struct strbuf out;
	struct message_addrs r;
	char err[64];

	(void)state;
	strbuf_init(&out);
	message_addrs_init(&r);
	assert_true(message_prepare("Subject: s\n\nb\n", 14, &fill, &out, &r, err, sizeof(err)));
	assert_string_equal(out.s, "Subject: s\r\n\r\nb\r\n");
	strbuf_free(&out);
	message_addrs_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_plain),
		cmocka_unit_test(test_addr_display_names),
		cmocka_unit_test(test_addr_comments),
		cmocka_unit_test(test_addr_groups),
		cmocka_unit_test(test_addr_folding),
		cmocka_unit_test(test_addr_empty_elements),
		cmocka_unit_test(test_addr_forms),
		cmocka_unit_test(test_addr_duplicates),
		cmocka_unit_test(test_addr_refused),
		cmocka_unit_test(test_addr_error_keeps_earlier),
		cmocka_unit_test(test_addr_too_long),
		cmocka_unit_test(test_addrs_add),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_normalize_refused),
		cmocka_unit_test(test_header_end),
		cmocka_unit_test(test_has_field),
		cmocka_unit_test(test_prepare_adds_missing),
		cmocka_unit_test(test_prepare_separator),
		cmocka_unit_test(test_prepare_bcc_removed),
		cmocka_unit_test(test_prepare_bcc_removed_without_extract),
		cmocka_unit_test(test_prepare_extracts),
		cmocka_unit_test(test_prepare_refused),
		cmocka_unit_test(test_prepare_null_fill),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
