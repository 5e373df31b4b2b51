/*
 * test_envelope.c - unit tests for src/common/envelope.c: the envelope text
 * format (exact output of envelope_format, envelope_parse round trips with
 * quoted local parts holding spaces, rejection of bad files with an error
 * naming the line), the DSN fields (ret, envid, notify=, rcpt-orcpt) and
 * files written before them, and the queue ID format (queue_id_valid).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "strbuf.h"
#include "util.h"

/* A fully populated envelope with awkward recipients. */
static void make_envelope(struct envelope *e)
{
	envelope_init(e);
	strcpy(e->id, "0006A1B2C3D4E5F60001");
	e->arrival = 1764370000;
	e->sender = xstrdup("<alice@example.org>");
	e->size = 2048;
	e->body = BODY_8BITMIME;
	e->smtputf8 = true;
	e->client = xstrdup("192.0.2.1");
	e->client_name = xstrdup("mail.example.org");
	e->helo = xstrdup("[192.0.2.1]");
	envelope_add_rcpt(e, "<bob@example.net>");
	envelope_add_rcpt(e, "<\"john  smith\"@example.net>");
	envelope_add_rcpt(e, "<\"addr= state=failed: x\"@example.net>");
	envelope_add_rcpt(e, "<j\xc3\xb6rg@b\xc3\xbc"
			     "cher.example>");
	e->rcpts[1].state = RCPT_DELIVERED;
	e->rcpts[1].attempts = 3;
	e->rcpts[1].next_attempt = 1764371234;
	e->rcpts[2].state = RCPT_FAILED;
	e->rcpts[2].attempts = 4294967295u;
}

/* Compare two optional strings. */
static void assert_str_eq_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* Every field of a and b is equal. */
static void assert_envelope_equal(const struct envelope *a, const struct envelope *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->arrival, b->arrival);
	assert_str_eq_or_null(a->sender, b->sender);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_str_eq_or_null(a->client, b->client);
	assert_str_eq_or_null(a->client_name, b->client_name);
	assert_str_eq_or_null(a->helo, b->helo);
	assert_str_eq_or_null(a->auth_user, b->auth_user);
	assert_str_eq_or_null(a->auth_param, b->auth_param);
	assert_int_equal(a->ret, b->ret);
	assert_str_eq_or_null(a->envid, b->envid);
	assert_int_equal(a->nrcpts, b->nrcpts);
	for (size_t i = 0; i < a->nrcpts; i++) {
		assert_string_equal(a->rcpts[i].addr, b->rcpts[i].addr);
		assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
		assert_int_equal(a->rcpts[i].attempts, b->rcpts[i].attempts);
		assert_int_equal(a->rcpts[i].next_attempt, b->rcpts[i].next_attempt);
		assert_str_eq_or_null(a->rcpts[i].orig, b->rcpts[i].orig);
		assert_str_eq_or_null(a->rcpts[i].error, b->rcpts[i].error);
		assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
		assert_str_eq_or_null(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
		assert_int_equal(a->rcpts[i].ntries, b->rcpts[i].ntries);
		for (size_t k = 0; k < a->rcpts[i].ntries; k++) {
			assert_int_equal(a->rcpts[i].tries[k].at, b->rcpts[i].tries[k].at);
			assert_int_equal(a->rcpts[i].tries[k].result, b->rcpts[i].tries[k].result);
			assert_str_eq_or_null(a->rcpts[i].tries[k].host, b->rcpts[i].tries[k].host);
			assert_str_eq_or_null(a->rcpts[i].tries[k].tls, b->rcpts[i].tries[k].tls);
			assert_string_equal(a->rcpts[i].tries[k].reply, b->rcpts[i].tries[k].reply);
		}
	}
	assert_str_eq_or_null(a->hold, b->hold);
	assert_int_equal(a->held_since, b->held_since);
}

/* Parse text, expecting failure with every fragment in err. */
static void expect_parse_error(const char *text, const char *frag1, const char *frag2)
{
	struct envelope e;
	char err[256] = "";

	if (envelope_parse(text, strlen(text), &e, err, sizeof(err)))
		fail_msg("accepted:\n%s", text);
	if (frag1 && strstr(err, frag1) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, frag1);
	if (frag2 && strstr(err, frag2) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, frag2);
	/* A failed parse leaves nothing allocated behind. */
	assert_null(e.sender);
	assert_null(e.rcpts);
	assert_int_equal(e.nrcpts, 0);
}

/* The header lines every valid test file starts with. */
#define GOOD_HEAD "hato-envelope: 1\nid: 0006A1B2C3D4E5F60001\nsender: <a@example.org>\n"

/* envelope_format writes the documented key: value lines in order. */
static void test_format_exact(void **state)
{
	struct envelope e;
	struct strbuf b;

	(void)state;
	make_envelope(&e);
	strbuf_init(&b);
	envelope_format(&e, &b);
	assert_string_equal(b.s, "hato-envelope: 1\n"
				 "id: 0006A1B2C3D4E5F60001\n"
				 "arrival: 1764370000\n"
				 "sender: <alice@example.org>\n"
				 "size: 2048\n"
				 "body: 8bitmime\n"
				 "smtputf8: yes\n"
				 "client: 192.0.2.1\n"
				 "client-name: mail.example.org\n"
				 "helo: [192.0.2.1]\n"
				 "rcpt: state=pending attempts=0 next=0 addr=<bob@example.net>\n"
				 "rcpt: state=delivered attempts=3 next=1764371234 "
				 "addr=<\"john  smith\"@example.net>\n"
				 "rcpt: state=failed attempts=4294967295 next=0 "
				 "addr=<\"addr= state=failed: x\"@example.net>\n"
				 "rcpt: state=pending attempts=0 next=0 addr=<j\xc3\xb6rg@b\xc3\xbc"
				 "cher.example>\n");
	strbuf_free(&b);
	envelope_free(&e);
}

/* format then parse gives back every field, quoted spaces included. */
static void test_round_trip(void **state)
{
	struct envelope e, back;
	struct strbuf b, b2;
	char err[256] = "";

	(void)state;
	make_envelope(&e);
	strbuf_init(&b);
	envelope_format(&e, &b);
	if (!envelope_parse(b.s, b.len, &back, err, sizeof(err)))
		fail_msg("parse failed: %s", err);
	assert_envelope_equal(&e, &back);
	assert_string_equal(back.rcpts[1].addr, "<\"john  smith\"@example.net>");
	/* And the text is stable: formatting the parsed envelope is identical. */
	strbuf_init(&b2);
	envelope_format(&back, &b2);
	assert_string_equal(b.s, b2.s);
	strbuf_free(&b);
	strbuf_free(&b2);
	envelope_free(&back);
	envelope_free(&e);
}

/* Each body type and a null sender survive the round trip. */
static void test_round_trip_variants(void **state)
{
	static const enum body_type bodies[] = {BODY_UNSPECIFIED, BODY_7BIT, BODY_8BITMIME};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct envelope e, back;
		struct strbuf b;
		char err[256] = "";

		envelope_init(&e);
		strcpy(e.id, "0006A1B2C3D4E5F60001");
		e.sender = xstrdup("<>");
		e.body = bodies[i];
		e.client = xstrdup("2001:db8::1");
		e.client_name = xstrdup("unknown");
		e.helo = xstrdup("x");
		envelope_add_rcpt(&e, "<postmaster>");
		strbuf_init(&b);
		envelope_format(&e, &b);
		if (!envelope_parse(b.s, b.len, &back, err, sizeof(err)))
			fail_msg("parse failed: %s", err);
		assert_envelope_equal(&e, &back);
		strbuf_free(&b);
		envelope_free(&back);
		envelope_free(&e);
	}
}

/* A NULL sender is written as "<>". */
static void test_null_sender_written(void **state)
{
	struct envelope e;
	struct strbuf b;

	(void)state;
	envelope_init(&e);
	strcpy(e.id, "0006A1B2C3D4E5F60001");
	strbuf_init(&b);
	envelope_format(&e, &b);
	assert_non_null(strstr(b.s, "\nsender: <>\n"));
	strbuf_free(&b);
	envelope_free(&e);
}

/* A minimal file (version, id, sender) parses with defaults for the rest. */
static void test_parse_minimal(void **state)
{
	struct envelope e;
	char err[256] = "";

	(void)state;
	assert_true(envelope_parse(GOOD_HEAD, strlen(GOOD_HEAD), &e, err, sizeof(err)));
	assert_string_equal(e.id, "0006A1B2C3D4E5F60001");
	assert_string_equal(e.sender, "<a@example.org>");
	assert_int_equal(e.nrcpts, 0);
	assert_int_equal(e.body, BODY_UNSPECIFIED);
	assert_int_equal(e.size, 0);
	envelope_free(&e);
}

/* Only len bytes are parsed, and a NUL inside them is an error. */
static void test_parse_len_and_nul(void **state)
{
	static const char text[] = GOOD_HEAD "size: 5\n";
	struct envelope e;
	char err[256] = "";

	(void)state;
	/* Cut off "size: 5\n": the parse must not see it. */
	assert_true(envelope_parse(text, strlen(GOOD_HEAD), &e, err, sizeof(err)));
	assert_int_equal(e.size, 0);
	envelope_free(&e);
	assert_false(envelope_parse(GOOD_HEAD "\0size: 5\n", strlen(GOOD_HEAD) + 9, &e, err,
				    sizeof(err)));
	assert_non_null(strstr(err, "NUL"));
}

/* A wrong or missing version is rejected. */
static void test_parse_bad_version(void **state)
{
	(void)state;
	expect_parse_error("hato-envelope: 2\nid: 0006A1B2C3D4E5F60001\nsender: <>\n", "line 1",
			   "hato-envelope");
	expect_parse_error("hato-envelope: 0\nid: 0006A1B2C3D4E5F60001\nsender: <>\n", "line 1",
			   "hato-envelope");
	expect_parse_error("hato-envelope: one\nid: 0006A1B2C3D4E5F60001\nsender: <>\n", "line 1",
			   "hato-envelope");
	expect_parse_error("id: 0006A1B2C3D4E5F60001\nsender: <>\n", "hato-envelope", NULL);
}

/* An unknown key is rejected with its line number and name. */
static void test_parse_unknown_key(void **state)
{
	(void)state;
	expect_parse_error(GOOD_HEAD "colour: blue\n", "line 4", "colour");
	expect_parse_error("hato-envelope: 1\nID: 0006A1B2C3D4E5F60001\n", "line 2", "ID");
}

/* A missing id or sender is rejected. */
static void test_parse_missing_fields(void **state)
{
	(void)state;
	expect_parse_error("hato-envelope: 1\nsender: <>\n", "id", NULL);
	expect_parse_error("hato-envelope: 1\nid: 0006A1B2C3D4E5F60001\n", "sender", NULL);
	expect_parse_error("", "hato-envelope", NULL);
}

/* Bad values for each key name the line and the key. */
static void test_parse_bad_values(void **state)
{
	(void)state;
	expect_parse_error("hato-envelope: 1\nid: 0006a1b2c3d4e5f60001\n", "line 2", "id");
	expect_parse_error("hato-envelope: 1\nid: 0006A1B2C3D4E5F6000\n", "line 2", "id");
	expect_parse_error(GOOD_HEAD "arrival: 12x\n", "line 4", "arrival");
	expect_parse_error(GOOD_HEAD "arrival: -1\n", "line 4", "arrival");
	expect_parse_error(GOOD_HEAD "size: 18446744073709551616\n", "line 4", "size");
	expect_parse_error(GOOD_HEAD "body: binarymime\n", "line 4", "body");
	expect_parse_error(GOOD_HEAD "smtputf8: maybe\n", "line 4", "smtputf8");
	expect_parse_error(GOOD_HEAD "rcpt: state=lost attempts=0 next=0 addr=<b@x>\n", "line 4",
			   "rcpt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 addr=b@x\n", "line 4",
			   "rcpt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=x next=0 addr=<b@x>\n", "line 4",
			   "rcpt");
	expect_parse_error(GOOD_HEAD "rcpt: addr=<b@x>\n", "line 4", "rcpt");
	expect_parse_error(GOOD_HEAD "no colon here\n", "line 4", NULL);
	expect_parse_error(GOOD_HEAD "size:5\n", "line 4", NULL);
}

/*
 * A bad line after an empty line is still seen, and reported with its real
 * line number: an operator opening the file at "line N" must land on it.
 */
static void test_parse_line_number_after_blank_line(void **state)
{
	static const char text[] = GOOD_HEAD "\nbogus: x\n";
	struct envelope e;
	char err[256] = "";

	(void)state;
	if (envelope_parse(text, strlen(text), &e, err, sizeof(err))) {
		envelope_free(&e);
		fail_msg("the bad key after a blank line was not even read");
	}
	if (strstr(err, "bogus") == NULL || strstr(err, "line 5") == NULL)
		fail_msg("error does not name line 5 and its key: \"%s\"", err);
}

/* Lines after a blank line are not dropped: a recipient there is kept. */
static void test_parse_blank_line_keeps_reading(void **state)
{
	static const char text[] = GOOD_HEAD "\nrcpt: state=pending attempts=0 next=0 addr=<b@x>\n"
					     "\n\nsize: 7\n";
	struct envelope e;
	char err[256] = "";

	(void)state;
	if (!envelope_parse(text, strlen(text), &e, err, sizeof(err)))
		return; /* refusing blank lines outright is fine too */
	if (e.nrcpts != 1 || e.size != 7) {
		size_t n = e.nrcpts;
		envelope_free(&e);
		fail_msg("lines after a blank line were ignored: %zu recipients", n);
	}
	assert_string_equal(e.rcpts[0].addr, "<b@x>");
	envelope_free(&e);
}

/* An envelope with every DSN field: RET, ENVID, and recipients with and
 * without NOTIFY and ORCPT, one from an alias. */
static void make_dsn_envelope(struct envelope *e)
{
	envelope_init(e);
	strcpy(e->id, "0006A1B2C3D4E5F60002");
	e->arrival = 1764370000;
	e->sender = xstrdup("<alice@example.org>");
	e->size = 10;
	e->client = xstrdup("192.0.2.1");
	e->client_name = xstrdup("unknown");
	e->helo = xstrdup("client.example");
	e->ret = DSN_RET_HDRS;
	e->envid = xstrdup("abc+2Bdef");
	envelope_add_rcpt(e, "<bob@example.net>");
	e->rcpts[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
	env_rcpt_set_orcpt(&e->rcpts[0], "rfc822;bob@example.net");
	envelope_add_rcpt(e, "<dave@localhost>");
	e->rcpts[1].notify = DSN_NOTIFY_NEVER;
	env_rcpt_set_orig(&e->rcpts[1], "<team@localhost>");
	env_rcpt_set_orcpt(&e->rcpts[1], "utf-8;team@localhost");
	env_rcpt_set_error(&e->rcpts[1], "4.2.0 mailbox full");
	envelope_add_rcpt(e, "<carol@example.net>");
	e->rcpts[2].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
	envelope_add_rcpt(e, "<\"x notify=never\"@example.net>");
	env_rcpt_set_orcpt(&e->rcpts[3], "rfc822;+22x+20notify+3Dnever+22@example.net");
}

/* The DSN fields are written where envelope.h says, only when given. */
static void test_format_dsn_exact(void **state)
{
	struct envelope e;
	struct strbuf b;

	(void)state;
	make_dsn_envelope(&e);
	strbuf_init(&b);
	envelope_format(&e, &b);
	assert_string_equal(b.s,
			    "hato-envelope: 1\n"
			    "id: 0006A1B2C3D4E5F60002\n"
			    "arrival: 1764370000\n"
			    "sender: <alice@example.org>\n"
			    "size: 10\n"
			    "body: unspecified\n"
			    "smtputf8: no\n"
			    "client: 192.0.2.1\n"
			    "client-name: unknown\n"
			    "helo: client.example\n"
			    "ret: hdrs\n"
			    "envid: abc+2Bdef\n"
			    "rcpt: state=pending attempts=0 next=0 notify=success,failure "
			    "addr=<bob@example.net>\n"
			    "rcpt-orcpt: rfc822;bob@example.net\n"
			    "rcpt: state=pending attempts=0 next=0 notify=never "
			    "addr=<dave@localhost>\n"
			    "rcpt-orig: <team@localhost>\n"
			    "rcpt-orcpt: utf-8;team@localhost\n"
			    "rcpt-error: 4.2.0 mailbox full\n"
			    "rcpt: state=pending attempts=0 next=0 notify=success,failure,delay "
			    "addr=<carol@example.net>\n"
			    "rcpt: state=pending attempts=0 next=0 "
			    "addr=<\"x notify=never\"@example.net>\n"
			    "rcpt-orcpt: rfc822;+22x+20notify+3Dnever+22@example.net\n");
	strbuf_free(&b);
	envelope_free(&e);
}

/* The DSN fields survive format and parse, and the text is a fixed point. */
static void test_round_trip_dsn(void **state)
{
	struct envelope e, back;
	struct strbuf b, b2;
	char err[256] = "";

	(void)state;
	make_dsn_envelope(&e);
	strbuf_init(&b);
	envelope_format(&e, &b);
	if (!envelope_parse(b.s, b.len, &back, err, sizeof(err)))
		fail_msg("parse failed: %s", err);
	assert_envelope_equal(&e, &back);
	assert_int_equal(back.ret, DSN_RET_HDRS);
	assert_string_equal(back.envid, "abc+2Bdef");
	assert_int_equal(back.rcpts[0].notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE);
	assert_string_equal(back.rcpts[3].addr, "<\"x notify=never\"@example.net>");
	assert_int_equal(back.rcpts[3].notify, 0);
	strbuf_init(&b2);
	envelope_format(&back, &b2);
	assert_string_equal(b.s, b2.s);
	strbuf_free(&b);
	strbuf_free(&b2);
	envelope_free(&back);
	envelope_free(&e);

	/* RET=FULL too */
	make_dsn_envelope(&e);
	e.ret = DSN_RET_FULL;
	strbuf_init(&b);
	envelope_format(&e, &b);
	assert_non_null(strstr(b.s, "\nret: full\n"));
	assert_true(envelope_parse(b.s, b.len, &back, err, sizeof(err)));
	assert_int_equal(back.ret, DSN_RET_FULL);
	strbuf_free(&b);
	envelope_free(&back);
	envelope_free(&e);
}

/* Owed notifications (report=), dsn-report and delay-warned survive the
 * round trip; a bad or "none" report word is refused. */
static void test_round_trip_reports(void **state)
{
	static const char *const bad[] = {"report=none ", "report=bounced ",
					  "report= ", "report=failed"};
	struct envelope e, back;
	struct strbuf b;
	char err[256] = "";

	(void)state;
	make_dsn_envelope(&e);
	e.dsn_report = true;
	e.delay_warned = true;
	e.rcpts[0].report = REPORT_FAILED;
	e.rcpts[1].report = REPORT_RELAYED;
	strbuf_init(&b);
	envelope_format(&e, &b);
	assert_non_null(strstr(b.s, "\ndsn-report: yes\ndelay-warned: yes\n"));
	assert_non_null(strstr(b.s, " notify=success,failure report=failed addr="));
	if (!envelope_parse(b.s, b.len, &back, err, sizeof(err)))
		fail_msg("parse failed: %s", err);
	assert_true(back.dsn_report);
	assert_true(back.delay_warned);
	assert_int_equal(back.rcpts[0].report, REPORT_FAILED);
	assert_int_equal(back.rcpts[1].report, REPORT_RELAYED);
	assert_int_equal(back.rcpts[2].report, REPORT_NONE);
	envelope_free(&back);
	strbuf_free(&b);
	envelope_free(&e);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text),
			 "hato-envelope: 1\nid: 0006A1B2C3D4E5F60001\narrival: 1\nsender: <>\n"
			 "size: 1\nbody: 7bit\nsmtputf8: no\nclient: x\nclient-name: x\nhelo: x\n"
			 "rcpt: state=failed attempts=1 next=0 %saddr=<a@b>\n",
			 bad[i]);
		assert_false(envelope_parse(text, strlen(text), &back, err, sizeof(err)));
	}
}

/* A file written before the DSN fields reads as "none given", and is
 * written back without them, unchanged. */
static void test_parse_old_file_without_dsn(void **state)
{
	static const char old[] =
		"hato-envelope: 1\n"
		"id: 0006A1B2C3D4E5F60001\n"
		"arrival: 1764370000\n"
		"sender: <alice@example.org>\n"
		"size: 2048\n"
		"body: 8bitmime\n"
		"smtputf8: no\n"
		"client: 192.0.2.1\n"
		"client-name: mail.example.org\n"
		"helo: mail.example.org\n"
		"rcpt: state=pending attempts=0 next=0 addr=<bob@localhost>\n"
		"rcpt-orig: <team@localhost>\n"
		"rcpt-error: 4.2.0 maildir create failed: Permission denied\n"
		"rcpt: state=delivered attempts=1 next=0 addr=<\"a b\"@example.net>\n";
	struct envelope e;
	struct strbuf b;
	char err[256] = "";

	(void)state;
	if (!envelope_parse(old, strlen(old), &e, err, sizeof(err)))
		fail_msg("old file refused: %s", err);
	assert_int_equal(e.ret, DSN_RET_UNSPEC);
	assert_null(e.envid);
	assert_int_equal(e.nrcpts, 2);
	for (size_t i = 0; i < e.nrcpts; i++) {
		assert_int_equal(e.rcpts[i].notify, 0);
		assert_null(e.rcpts[i].orcpt);
	}
	assert_string_equal(e.rcpts[0].orig, "<team@localhost>");
	assert_string_equal(e.rcpts[1].addr, "<\"a b\"@example.net>");
	strbuf_init(&b);
	envelope_format(&e, &b);
	assert_string_equal(b.s, old);
	strbuf_free(&b);
	envelope_free(&e);
}

/* Bad DSN values name their line and key. */
static void test_parse_bad_dsn_values(void **state)
{
	(void)state;
	expect_parse_error(GOOD_HEAD "ret: both\n", "line 4", "ret");
	expect_parse_error(GOOD_HEAD "ret: HDRS\n", "line 4", "ret");
	expect_parse_error(GOOD_HEAD "ret: \n", "line 4", "ret");
	expect_parse_error(GOOD_HEAD "envid: +ZZ\n", "line 4", "envid");
	expect_parse_error(GOOD_HEAD "envid: a b\n", "line 4", "envid");
	expect_parse_error(GOOD_HEAD "envid: "
				     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
				     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
			   "line 4", "envid");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 notify=never,success "
				     "addr=<b@x>\n",
			   "line 4", "rcpt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 notify=sometimes "
				     "addr=<b@x>\n",
			   "line 4", "rcpt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 notify= addr=<b@x>\n",
			   "line 4", "rcpt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 notify=never\n",
			   "line 4", "rcpt");
	expect_parse_error(GOOD_HEAD "rcpt-orcpt: rfc822;b@x\n", "line 4", "rcpt-orcpt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 addr=<b@x>\n"
				     "rcpt-orcpt: b@x\n",
			   "line 5", "rcpt-orcpt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 addr=<b@x>\n"
				     "rcpt-orcpt: rfc822;+ZZ\n",
			   "line 5", "rcpt-orcpt");
}

/* The addr-type of an ORCPT is kept in lower case, whatever the file says. */
static void test_parse_orcpt_type_lower_case(void **state)
{
	static const char text[] = GOOD_HEAD "rcpt: state=pending attempts=0 next=0 addr=<b@x>\n"
					     "rcpt-orcpt: RFC822;b@x\n";
	struct envelope e;
	char err[256] = "";

	(void)state;
	assert_true(envelope_parse(text, strlen(text), &e, err, sizeof(err)));
	assert_string_equal(e.rcpts[0].orcpt, "rfc822;b@x");
	envelope_free(&e);
}

/* queue_id_valid: exactly 20 upper-case hex digits, nothing else. */
static void test_queue_id_valid(void **state)
{
	static const char *const bad[] = {
		"",
		"0006a1b2c3d4e5f60001",
		"0006A1B2C3D4E5F6000",
		"0006A1B2C3D4E5F600011",
		"0006A1B2C3D4E5F6000G",
		"0006A1B2C3D4E5F6000 ",
		"../../../etc/passwd0",
		"0006A1B2C3D4E5F6000\n",
	};

	(void)state;
	assert_true(queue_id_valid("0006A1B2C3D4E5F60001"));
	assert_true(queue_id_valid("FFFFFFFFFFFFFFFFFFFF"));
	assert_true(queue_id_valid("00000000000000000000"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (queue_id_valid(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
}

/* A carriage return in a value is refused: format never writes one, and
 * a value must survive format and parse unchanged. */
static void test_parse_refuses_cr(void **state)
{
	static const char text[] = "hato-envelope: 1\nid: 0006A1B2C3D4E5F60001\n"
				   "sender: <a@b>\nhelo: x\ry\n";
	struct envelope e;
	char err[256] = "";

	(void)state;
	assert_false(envelope_parse(text, strlen(text), &e, err, sizeof(err)));
	assert_non_null(strstr(err, "line 4"));
}

/* The attempt history and the hold: the exact lines, and back. */
static void test_attempts_and_hold_round_trip(void **state)
{
	struct envelope e, back;
	struct strbuf b, b2;
	char err[256];

	(void)state;
	make_envelope(&e);
	envelope_set_hold(&e, "held by the\r\nadministrator", 1764370500);
	env_rcpt_add_attempt(&e.rcpts[0], 1764370100, OUTCOME_TEMPFAIL,
			     "mx.example.net[192.0.2.7]:25", "TLSv1.3",
			     "4.2.0 mx.example.net[192.0.2.7]:25 said: 452 4.2.0 mailbox full");
	env_rcpt_add_attempt(&e.rcpts[0], 1764370700, OUTCOME_DELIVERED, "in a\tb", NULL,
			     "2.0.0 OK\nqueued");
	env_rcpt_add_attempt(&e.rcpts[2], 1764370800, OUTCOME_PERMFAIL, "-", "", "");
	strbuf_init(&b);
	envelope_format(&e, &b);
	assert_non_null(strstr(b.s,
			       "helo: [192.0.2.1]\n"
			       "hold: since=1764370500 reason=held by the  administrator\n"
			       "rcpt: state=pending attempts=0 next=0 addr=<bob@example.net>\n"
			       "rcpt-attempt: at=1764370100 result=deferred "
			       "host=mx.example.net[192.0.2.7]:25 tls=TLSv1.3 reply=4.2.0 "
			       "mx.example.net[192.0.2.7]:25 said: 452 4.2.0 mailbox full\n"
			       "rcpt-attempt: at=1764370700 result=delivered host=in_a_b tls=- "
			       "reply=2.0.0 OK queued\n"
			       "rcpt: state=delivered"));
	assert_non_null(strstr(b.s, "addr=<\"addr= state=failed: x\"@example.net>\n"
				    "rcpt-attempt: at=1764370800 result=failed host=- tls=- "
				    "reply=\n"));
	assert_true(envelope_parse(b.s, b.len, &back, err, sizeof(err)));
	assert_envelope_equal(&e, &back);
	assert_string_equal(back.hold, "held by the  administrator");
	assert_int_equal(back.held_since, 1764370500);
	assert_int_equal(back.rcpts[0].ntries, 2);
	assert_int_equal(back.rcpts[0].tries[0].result, OUTCOME_TEMPFAIL);
	assert_string_equal(back.rcpts[0].tries[0].tls, "TLSv1.3");
	assert_null(back.rcpts[0].tries[1].tls);
	assert_null(back.rcpts[2].tries[0].host);
	assert_string_equal(back.rcpts[2].tries[0].reply, "");
	strbuf_init(&b2);
	envelope_format(&back, &b2);
	assert_string_equal(b.s, b2.s);
	/* released: the line goes */
	envelope_set_hold(&back, NULL, 0);
	strbuf_free(&b2);
	strbuf_init(&b2);
	envelope_format(&back, &b2);
	assert_null(strstr(b2.s, "hold:"));
	strbuf_free(&b);
	strbuf_free(&b2);
	envelope_free(&e);
	envelope_free(&back);
}

/* Only the last ENVELOPE_ATTEMPTS_MAX attempts are kept, added or read. */
static void test_attempts_bounded(void **state)
{
	struct envelope e, back;
	struct strbuf b;
	char err[256], reply[32];

	(void)state;
	make_envelope(&e);
	for (unsigned i = 0; i < ENVELOPE_ATTEMPTS_MAX + 3; i++) {
		snprintf(reply, sizeof(reply), "4.4.1 attempt %u", i);
		env_rcpt_add_attempt(&e.rcpts[1], 1000 + i, OUTCOME_TEMPFAIL, "h", NULL, reply);
	}
	assert_int_equal(e.rcpts[1].ntries, ENVELOPE_ATTEMPTS_MAX);
	assert_int_equal(e.rcpts[1].tries[0].at, 1003); /* the three oldest went */
	assert_string_equal(e.rcpts[1].tries[ENVELOPE_ATTEMPTS_MAX - 1].reply, "4.4.1 attempt 12");
	/* a file with more (never written, but damaged or edited) reads as its last ones */
	strbuf_init(&b);
	strbuf_printf(&b, GOOD_HEAD "rcpt: state=pending attempts=20 next=0 addr=<x@y>\n");
	for (unsigned i = 0; i < 20; i++)
		strbuf_printf(&b, "rcpt-attempt: at=%u result=deferred host=- tls=- reply=r%u\n", i,
			      i);
	assert_true(envelope_parse(b.s, b.len, &back, err, sizeof(err)));
	assert_int_equal(back.rcpts[0].ntries, ENVELOPE_ATTEMPTS_MAX);
	assert_string_equal(back.rcpts[0].tries[0].reply, "r10");
	assert_string_equal(back.rcpts[0].tries[ENVELOPE_ATTEMPTS_MAX - 1].reply, "r19");
	/* a reply is cut at ENVELOPE_REPLY_MAX, a reason at ENVELOPE_HOLD_REASON_MAX,
	 * never inside a UTF-8 sequence */
	{
		char big[ENVELOPE_REPLY_MAX * 2];

		memset(big, 'x', sizeof(big));
		big[sizeof(big) - 1] = '\0';
		env_rcpt_add_attempt(&back.rcpts[0], 1, OUTCOME_TEMPFAIL, NULL, NULL, big);
		assert_int_equal(strlen(back.rcpts[0].tries[ENVELOPE_ATTEMPTS_MAX - 1].reply),
				 ENVELOPE_REPLY_MAX);
		for (size_t i = 0; i + 1 < sizeof(big); i += 2)
			memcpy(big + i, "\xc3\xa9", 2);
		big[ENVELOPE_HOLD_REASON_MAX + 2] = '\0'; /* one over, the cut inside a "é" */
		envelope_set_hold(&back, big + 1, 5);
		assert_int_equal(strlen(back.hold), ENVELOPE_HOLD_REASON_MAX - 1);
		assert_memory_equal(back.hold + ENVELOPE_HOLD_REASON_MAX - 3, "\xc3\xa9", 2);
	}
	strbuf_free(&b);
	envelope_free(&e);
	envelope_free(&back);
}

/* Envelopes from before the history and the hold read as "none" and "not held". */
static void test_parse_old_file_without_attempts(void **state)
{
	static const char old[] = GOOD_HEAD "arrival: 1764370000\n"
					    "rcpt: state=pending attempts=2 next=1764379999 "
					    "addr=<bob@example.net>\n"
					    "rcpt-error: 4.2.0 mailbox full\n";
	struct envelope e;
	char err[256];

	(void)state;
	assert_true(envelope_parse(old, strlen(old), &e, err, sizeof(err)));
	assert_null(e.hold);
	assert_int_equal(e.rcpts[0].attempts, 2);
	assert_int_equal(e.rcpts[0].ntries, 0);
	assert_null(e.rcpts[0].tries);
	assert_string_equal(e.rcpts[0].error, "4.2.0 mailbox full");
	envelope_free(&e);
}

/* Bad attempt and hold lines are refused, naming the line. */
static void test_parse_bad_attempts_and_hold(void **state)
{
	(void)state;
	expect_parse_error(GOOD_HEAD "rcpt-attempt: at=1 result=failed host=- tls=- reply=x\n",
			   "line 4", "rcpt-attempt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 addr=<x@y>\n"
				     "rcpt-attempt: at=1 result=bounced host=- tls=- reply=x\n",
			   "line 5", "rcpt-attempt");
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 addr=<x@y>\n"
				     "rcpt-attempt: at=1 result=failed host=- tls=-\n",
			   "line 5", NULL);
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 addr=<x@y>\n"
				     "rcpt-attempt: at=-1 result=failed host=- tls=- reply=x\n",
			   "line 5", NULL);
	expect_parse_error(GOOD_HEAD "rcpt: state=pending attempts=0 next=0 addr=<x@y>\n"
				     "rcpt-attempt: result=failed at=1 host=- tls=- reply=x\n",
			   "line 5", NULL);
	expect_parse_error(GOOD_HEAD "hold: reason=x\n", "line 4", "hold");
	expect_parse_error(GOOD_HEAD "hold: since=x reason=x\n", "line 4", "hold");
	expect_parse_error(GOOD_HEAD "hold: since=1 reason=x\nhold: since=2 reason=y\n", "line 5",
			   "hold");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_exact),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_round_trip_variants),
		cmocka_unit_test(test_null_sender_written),
		cmocka_unit_test(test_parse_minimal),
		cmocka_unit_test(test_parse_len_and_nul),
		cmocka_unit_test(test_parse_bad_version),
		cmocka_unit_test(test_parse_unknown_key),
		cmocka_unit_test(test_parse_missing_fields),
		cmocka_unit_test(test_parse_bad_values),
		cmocka_unit_test(test_parse_line_number_after_blank_line),
		cmocka_unit_test(test_parse_blank_line_keeps_reading),
		cmocka_unit_test(test_queue_id_valid),
		cmocka_unit_test(test_parse_refuses_cr),
		cmocka_unit_test(test_format_dsn_exact),
		cmocka_unit_test(test_round_trip_dsn),
		cmocka_unit_test(test_round_trip_reports),
		cmocka_unit_test(test_parse_old_file_without_dsn),
		cmocka_unit_test(test_parse_bad_dsn_values),
		cmocka_unit_test(test_parse_orcpt_type_lower_case),
		cmocka_unit_test(test_attempts_and_hold_round_trip),
		cmocka_unit_test(test_attempts_bounded),
		cmocka_unit_test(test_parse_old_file_without_attempts),
		cmocka_unit_test(test_parse_bad_attempts_and_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
