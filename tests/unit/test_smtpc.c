/*
 * test_smtpc.c - unit tests for the SMTP/LMTP client session
 * (src/smtpc/smtpc.c) against a scripted fake server on 127.0.0.1
 * (fake_smtp.h): what the server reads, and in which writes, is checked
 * against the script, and the session's results against the replies.
 *
 * Covered: a pipelined transaction (MAIL, RCPTs and DATA in one write,
 * nothing before the EHLO reply) with per-recipient results; lock-step
 * without PIPELINING; a 421 mid-transaction; a server that closes after
 * the message; a multi-line EHLO reply trickling in a few octets at a
 * time; EHLO refused -> HELO; STARTTLS response injection; STARTTLS
 * refused under "may" and required but not offered; LMTP replies after
 * the dot; a refused MAIL FROM; all or none; RSET; the message from memory
 * dot-stuffed; a message that cannot be read; a 250 to DATA; AUTH only
 * over TLS unless allowed; a greeting that names us (a mail loop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fake_smtp.h"
#include "smtpc.h"

#define T_SECS 5 /* every timeout of the session under test */

/* One test: the fake server, the session, the transitions it made. */
struct t {
	struct fake_smtp f;
	struct smtpc s;
	struct smtpc_opts o;
	char states[512]; /* "GREETING EHLO READY ..." */
};

/* on_state: note each state entered. */
static void note_state(void *arg, enum smtpc_state from, enum smtpc_state to)
{
	struct t *t = arg;
	size_t len = strlen(t->states);

	(void)from;
	snprintf(t->states + len, sizeof(t->states) - len, "%s%s", len ? " " : "",
		 smtpc_strstate(to));
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->f.lfd = -1;
	t->o = (struct smtpc_opts){.helo = "client.example",
				   .pipelining = true,
				   .tls_host = "127.0.0.1",
				   .timeout_greeting = T_SECS,
				   .timeout_command = T_SECS,
				   .timeout_data_end = T_SECS,
				   .on_state = note_state,
				   .state_arg = t};
	smtpc_init(&t->s, &t->o);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	smtpc_close(&t->s);
	fake_smtp_free(&t->f);
	free(t);
	return 0;
}

/* Start the fake with script, connect the session and open it; the result of smtpc_open. */
static bool start(struct t *t, const char *const *script)
{
	assert_true(fake_smtp_start(&t->f, script));
	t->states[0] = '\0';
	smtpc_init(&t->s, &t->o);
	assert_true(smtpc_connect(&t->s, (struct sockaddr *)&t->f.sa, sizeof(t->f.sa), T_SECS));
	return smtpc_open(&t->s);
}

/* Close the session and wait for the fake; its script must have gone as written. */
static void finish(struct t *t)
{
	smtpc_close(&t->s);
	fake_smtp_stop(&t->f);
	if (t->f.err[0] != '\0')
		fail_msg("the fake server: %s", t->f.err);
}

/* Assert one recipient's answer: which reply, its code and text. */
static void check_rcpt(const struct smtpc_rcpt *r, enum smtpc_answer a, int code, const char *text)
{
	assert_int_equal(r->answer, a);
	if (a == SMTPC_ANSWER_NONE)
		return;
	assert_int_equal(r->reply.code, code);
	assert_string_equal(r->reply.text, text);
}

#define MSG "Subject: hi\r\n\r\nhello\r\n"

/* A message of MSG from memory to the n recipients in rc. */
static struct smtpc_msg msg(struct smtpc_rcpt *rc, size_t n)
{
	return (struct smtpc_msg){.sender = "<alice@test.example>",
				  .rcpts = rc,
				  .nrcpts = n,
				  .fd = -1,
				  .body = MSG,
				  .len = strlen(MSG)};
}

/* PIPELINING: MAIL, the RCPTs and DATA arrive in one write, none before the EHLO
 * reply; each recipient gets its own answer. */
static void test_pipelined(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake ESMTP",
				"C:EHLO client.example",
				"N",
				"S:250-fake\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME",
				"C:MAIL FROM:<alice@test.example> SIZE=22",
				"C=RCPT TO:<a@example.net> NOTIFY=NEVER",
				"C=RCPT TO:<b@example.net>",
				"C=DATA",
				"N",
				"S:250 2.1.0 ok",
				"S:250 2.1.5 ok",
				"S:550 5.1.1 <b@example.net> no such user",
				"S:354 go ahead",
				"D",
				"S:250 2.0.0 queued as X",
				"C:QUIT",
				"S:221 bye",
				NULL};
	struct smtpc_rcpt rc[2] = {{.addr = "<a@example.net>", .params = " NOTIFY=NEVER"},
				   {.addr = "<b@example.net>"}};
	struct smtpc_msg m = msg(rc, 2);

	assert_true(start(t, script));
	assert_true(t->s.caps.pipelining && t->s.caps.eightbit);
	assert_int_equal(t->s.caps.size, 1000);
	m.mail_params = " SIZE=22";
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	check_rcpt(&rc[0], SMTPC_ANSWER_DOT, 250, "250 2.0.0 queued as X");
	assert_true(rc[0].accepted);
	check_rcpt(&rc[1], SMTPC_ANSWER_RCPT, 550, "550 5.1.1 <b@example.net> no such user");
	assert_string_equal(rc[1].reply.esc, "5.1.1");
	assert_false(rc[1].accepted);
	assert_int_equal(m.mail_reply.code, 250);
	assert_int_equal(m.data_reply.code, 354);
	assert_int_equal(t->s.state, SMTPC_STATE_READY);
	finish(t);
	assert_string_equal(t->f.data, MSG ".\r\n");
	assert_string_equal(t->states, "GREETING EHLO READY MAIL RCPT DATA DOT READY QUIT CLOSED");
}

/* No PIPELINING: each command waits for the reply before it; no DATA when no
 * recipient was accepted. */
static void test_lockstep(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake",
				"C:EHLO",
				"S:250 fake",
				"C:MAIL FROM:<alice@test.example>",
				"S:250 ok",
				"C!RCPT TO:<a@example.net>",
				"S:451 4.3.0 try later",
				"C!RCPT TO:<b@example.net>",
				"S:550 no",
				"C!QUIT",
				"S:221 bye",
				NULL};
	struct smtpc_rcpt rc[2] = {{.addr = "<a@example.net>"}, {.addr = "<b@example.net>"}};
	struct smtpc_msg m = msg(rc, 2);

	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	check_rcpt(&rc[0], SMTPC_ANSWER_RCPT, 451, "451 4.3.0 try later");
	check_rcpt(&rc[1], SMTPC_ANSWER_RCPT, 550, "550 no");
	assert_string_equal(rc[1].reply.esc, "5.0.0");
	assert_int_equal(m.data_reply.code, 0);
	finish(t);
	assert_null(strstr(t->f.lines, "DATA"));
}

/* A 421 mid-transaction answers every recipient without an answer, the one
 * accepted before it included; the session takes no more commands. */
static void test_421_mid_transaction(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake",
				"C:EHLO",
				"S:250-fake\r\n250 PIPELINING",
				"C:MAIL",
				"C=RCPT TO:<a@",
				"C=RCPT TO:<b@",
				"C=RCPT TO:<c@",
				"C=DATA",
				"S:250 ok",
				"S:250 ok",
				"S:421 4.3.2 shutting down",
				NULL};
	struct smtpc_rcpt rc[3] = {{.addr = "<a@example.net>"},
				   {.addr = "<b@example.net>"},
				   {.addr = "<c@example.net>"}};
	struct smtpc_msg m = msg(rc, 3);

	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	check_rcpt(&rc[0], SMTPC_ANSWER_CLOSING, 421, "421 4.3.2 shutting down");
	check_rcpt(&rc[1], SMTPC_ANSWER_RCPT, 421, "421 4.3.2 shutting down");
	check_rcpt(&rc[2], SMTPC_ANSWER_CLOSING, 421, "421 4.3.2 shutting down");
	assert_string_equal(rc[2].reply.esc, "4.3.2");
	assert_true(t->s.conn.broken);
	assert_false(smtpc_rset(&t->s)); /* nothing more, not even RSET */
	finish(t);
	assert_null(strstr(t->f.lines, "QUIT"));
	assert_null(strstr(t->f.lines, "RSET"));
}

/* The server takes the message and closes without a reply: nobody has an answer. */
static void test_close_after_data(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake", "C:EHLO",   "S:250-fake\r\n250 PIPELINING",
				"C:MAIL",     "C=RCPT",   "C=RCPT",
				"C=DATA",     "S:250 ok", "S:250 ok",
				"S:250 ok",   "S:354 go", "D",
				"X",          NULL};
	struct smtpc_rcpt rc[2] = {{.addr = "<a@example.net>"}, {.addr = "<b@example.net>"}};
	struct smtpc_msg m = msg(rc, 2);

	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_BROKEN);
	check_rcpt(&rc[0], SMTPC_ANSWER_NONE, 0, NULL);
	check_rcpt(&rc[1], SMTPC_ANSWER_NONE, 0, NULL);
	assert_true(rc[0].accepted && rc[1].accepted);
	assert_true(t->s.conn.broken);
	assert_int_equal(t->s.conn.fail, CONN_FAIL_TEMP);
	assert_non_null(strstr(t->s.conn.err, "during the reply to the end of DATA"));
	finish(t);
}

/* A greeting and a multi-line EHLO reply arriving a few octets at a time are read whole. */
static void test_split_replies(void **state)
{
	struct t *t = *state;
	const char *script[] = {"T:220-fake.example ESMTP\r\n220 hello",
				"C:EHLO",
				"T:250-fake.example\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
				"250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES",
				"C:QUIT",
				"S:221 bye",
				NULL};

	assert_true(start(t, script));
	assert_string_equal(t->s.reply.text,
			    "250 fake.example PIPELINING SIZE 52428800 AUTH PLAIN LOGIN "
			    "ENHANCEDSTATUSCODES");
	assert_true(t->s.caps.pipelining && t->s.caps.enhanced && t->s.caps.auth_plain &&
		    t->s.caps.auth_login);
	assert_false(t->s.caps.starttls);
	assert_int_equal(t->s.caps.size, 52428800);
	finish(t);
}

/* EHLO refused with a 5xx: HELO, with no extensions; without the fallback, a refusal. */
static void test_helo_fallback(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 old",         "C:EHLO client.example",
				"S:502 5.5.1 what?", "C:HELO client.example",
				"S:250 old",         "C:MAIL FROM:<alice@test.example>",
				"S:250 ok",          "C!RCPT",
				"S:250 ok",          "C!DATA",
				"S:354 go",          "D",
				"S:250 ok",          "C:QUIT",
				"S:221 bye",         NULL};
	struct smtpc_rcpt rc[1] = {{.addr = "<a@example.net>"}};
	struct smtpc_msg m = msg(rc, 1);

	t->o.helo_fallback = true;
	assert_true(start(t, script));
	assert_false(t->s.caps.pipelining);
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	check_rcpt(&rc[0], SMTPC_ANSWER_DOT, 250, "250 ok");
	finish(t);
	assert_string_equal(t->states,
			    "GREETING EHLO HELO READY MAIL RCPT DATA DOT READY QUIT CLOSED");
}

/* Without helo_fallback a refused EHLO fails the session, in step (QUIT follows). */
static void test_ehlo_refused(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 old", "C:EHLO",    "S:502 5.5.1 what?",
				"C:QUIT",    "S:221 bye", NULL};

	assert_false(start(t, script));
	assert_int_equal(t->s.fail, SMTPC_FAIL_REFUSED);
	assert_int_equal(t->s.state, SMTPC_STATE_EHLO);
	assert_int_equal(t->s.reply.code, 502);
	finish(t);
}

/* Octets after STARTTLS's 220, before TLS: a response injection, refused; no QUIT. */
static void test_starttls_injection(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake",
				"C:EHLO",
				"S:250-fake\r\n250 STARTTLS",
				"C:STARTTLS",
				"R:220 2.0.0 go ahead\r\n250 2.1.0 injected\r\n",
				NULL};

	t->o.tls = SMTPC_TLS_STARTTLS;
	assert_false(start(t, script));
	assert_int_equal(t->s.fail, SMTPC_FAIL_INJECTION);
	assert_true(t->s.conn.broken);
	assert_null(t->s.conn.ssl);
	finish(t);
	assert_string_equal(t->f.lines, "EHLO client.example\nSTARTTLS\n");
}

/* STARTTLS refused under "may": in step, on in plaintext, the refusal kept; required
 * but not offered: a failure of its own. */
static void test_starttls_may_and_required(void **state)
{
	struct t *t = *state;
	const char *may[] = {"S:220 fake",
			     "C:EHLO",
			     "S:250-fake\r\n250 STARTTLS",
			     "C:STARTTLS",
			     "S:454 4.7.0 TLS not available",
			     "C:QUIT",
			     "S:221 bye",
			     NULL};
	const char *required[] = {"S:220 fake", "C:EHLO",    "S:250 fake",
				  "C:QUIT",     "S:221 bye", NULL};

	t->o.tls = SMTPC_TLS_MAY;
	assert_true(start(t, may));
	assert_int_equal(t->s.tls_refusal.code, 454);
	assert_null(t->s.conn.ssl);
	finish(t);
	assert_string_equal(t->states, "GREETING EHLO STARTTLS READY QUIT CLOSED");
	fake_smtp_free(&t->f);

	t->o.tls = SMTPC_TLS_STARTTLS;
	assert_false(start(t, required));
	assert_int_equal(t->s.fail, SMTPC_FAIL_NO_STARTTLS);
	finish(t);
}

/* LMTP: LHLO, and after the dot one reply per accepted recipient, in RCPT order. */
static void test_lmtp_replies_after_dot(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake LMTP",
				"C:LHLO client.example",
				"S:250-fake\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES",
				"C:MAIL",
				"C=RCPT TO:<a@",
				"C=RCPT TO:<b@",
				"C=RCPT TO:<c@",
				"C=DATA",
				"S:250 2.1.0 ok",
				"S:250 2.1.5 ok",
				"S:550 5.1.1 <b@example.net> unknown",
				"S:250 2.1.5 ok",
				"S:354 go",
				"D",
				"S:250 2.0.0 <a@example.net> saved",
				"S:452 4.2.2 <c@example.net> over quota",
				"C:QUIT",
				"S:221 bye",
				NULL};
	struct smtpc_rcpt rc[3] = {{.addr = "<a@example.net>"},
				   {.addr = "<b@example.net>"},
				   {.addr = "<c@example.net>"}};
	struct smtpc_msg m = msg(rc, 3);

	t->o.lmtp = true;
	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	check_rcpt(&rc[0], SMTPC_ANSWER_DOT, 250, "250 2.0.0 <a@example.net> saved");
	check_rcpt(&rc[1], SMTPC_ANSWER_RCPT, 550, "550 5.1.1 <b@example.net> unknown");
	check_rcpt(&rc[2], SMTPC_ANSWER_DOT, 452, "452 4.2.2 <c@example.net> over quota");
	assert_string_equal(rc[2].reply.esc, "4.2.2");
	assert_false(t->s.conn.broken);
	finish(t);
}

/* A refused MAIL FROM (pipelined) answers every recipient; DATA's 503 changes nothing. */
static void test_mail_refused(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake",
				"C:EHLO",
				"S:250-fake\r\n250 PIPELINING",
				"C:MAIL",
				"C=RCPT",
				"C=RCPT",
				"C=DATA",
				"S:553 5.7.1 sender not allowed",
				"S:503 5.5.1 no MAIL",
				"S:503 5.5.1 no MAIL",
				"S:503 5.5.1 no valid recipients",
				"C:QUIT",
				"S:221 bye",
				NULL};
	struct smtpc_rcpt rc[2] = {{.addr = "<a@example.net>"}, {.addr = "<b@example.net>"}};
	struct smtpc_msg m = msg(rc, 2);

	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	check_rcpt(&rc[0], SMTPC_ANSWER_MAIL, 553, "553 5.7.1 sender not allowed");
	check_rcpt(&rc[1], SMTPC_ANSWER_MAIL, 553, "553 5.7.1 sender not allowed");
	assert_int_equal(m.data_reply.code, 503);
	finish(t);
}

/* All or none: MAIL and the RCPTs pipelined, DATA only when every one was
 * accepted; a refusal leaves the session in step for RSET and the next message. */
static void test_all_or_none_then_rset(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake",
				"C:EHLO",
				"S:250-fake\r\n250 PIPELINING",
				"C:MAIL",
				"C=RCPT TO:<a@",
				"C=RCPT TO:<b@",
				"N",
				"S:250 ok",
				"S:250 ok",
				"S:550 5.1.1 unknown",
				"C:RSET",
				"S:250 ok",
				"C:MAIL",
				"C=RCPT TO:<a@",
				"N",
				"S:250 ok",
				"S:250 ok",
				"C!DATA",
				"S:354 go",
				"D",
				"S:250 queued",
				"C:QUIT",
				"S:221 bye",
				NULL};
	struct smtpc_rcpt rc[2] = {{.addr = "<a@example.net>"}, {.addr = "<b@example.net>"}};
	struct smtpc_msg m = msg(rc, 2);

	m.all_or_none = true;
	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	check_rcpt(&rc[0], SMTPC_ANSWER_NONE, 0, NULL);
	assert_true(rc[0].accepted);
	check_rcpt(&rc[1], SMTPC_ANSWER_RCPT, 550, "550 5.1.1 unknown");
	assert_int_equal(m.data_reply.code, 0);
	assert_int_equal(t->s.state, SMTPC_STATE_READY);
	assert_true(smtpc_rset(&t->s));
	m.nrcpts = 1;
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	check_rcpt(&rc[0], SMTPC_ANSWER_DOT, 250, "250 queued");
	finish(t);
}

/* The message from memory is dot-stuffed, and a last line without CRLF is ended. */
static void test_body_dot_stuffed(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake", "C:EHLO", "S:250 fake", "C:MAIL",
				"S:250 ok",   "C:RCPT", "S:250 ok",   "C:DATA",
				"S:354 go",   "D",      "S:250 ok",   NULL};
	struct smtpc_rcpt rc[1] = {{.addr = "<a@example.net>"}};
	struct smtpc_msg m = msg(rc, 1);
	const char body[] = ".a\r\nb.\r\n..c\r\n.\r\nx\r\n. space\r\nno crlf";

	m.body = body;
	m.len = strlen(body);
	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_DONE);
	finish(t);
	assert_string_equal(t->f.data,
			    "..a\r\nb.\r\n...c\r\n..\r\nx\r\n.. space\r\nno crlf\r\n.\r\n");
}

/* A message that cannot be read: the envelope still goes (the refusals are final), and
 * after 354 the connection is dropped. */
static void test_no_message(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake", "C:EHLO",   "S:250-fake\r\n250 PIPELINING",
				"C:MAIL",     "C=RCPT",   "C=RCPT",
				"C=DATA",     "S:250 ok", "S:550 5.1.1 unknown",
				"S:250 ok",   "S:354 go", NULL};
	struct smtpc_rcpt rc[2] = {{.addr = "<a@example.net>"}, {.addr = "<b@example.net>"}};
	struct smtpc_msg m = msg(rc, 2);

	m.body = NULL;
	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_NO_MESSAGE);
	check_rcpt(&rc[0], SMTPC_ANSWER_RCPT, 550, "550 5.1.1 unknown");
	check_rcpt(&rc[1], SMTPC_ANSWER_NONE, 0, NULL);
	assert_true(t->s.conn.broken);
	finish(t);
	assert_null(strstr(t->f.lines, "QUIT"));
}

/* A 250 to DATA (not 354): nothing was sent, the connection is dropped. */
static void test_data_not_354(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake", "C:EHLO",   "S:250 fake", "C:MAIL",   "S:250 ok",
				"C:RCPT",     "S:250 ok", "C:DATA",     "S:250 ok", NULL};
	struct smtpc_rcpt rc[1] = {{.addr = "<a@example.net>"}};
	struct smtpc_msg m = msg(rc, 1);

	assert_true(start(t, script));
	assert_int_equal(smtpc_send(&t->s, &m), SMTPC_TX_NOT_354);
	check_rcpt(&rc[0], SMTPC_ANSWER_NONE, 0, NULL);
	assert_int_equal(m.data_reply.code, 250);
	assert_true(t->s.conn.broken);
	finish(t);
}

/* AUTH never goes in the clear unless the caller allows it; then AUTH PLAIN. */
static void test_auth_needs_tls(void **state)
{
	struct t *t = *state;
	const char *plain[] = {"S:220 fake", "C:EHLO",    "S:250-fake\r\n250 AUTH PLAIN LOGIN",
			       "C:QUIT",     "S:221 bye", NULL};
	const char *allowed[] = {"S:220 fake",
				 "C:EHLO",
				 "S:250-fake\r\n250 AUTH=PLAIN",
				 "C:AUTH PLAIN AGFsaWNlAHNlY3JldA==",
				 "S:235 2.7.0 ok",
				 "C:QUIT",
				 "S:221 bye",
				 NULL};

	t->o.user = "alice";
	t->o.password = "secret";
	assert_false(start(t, plain));
	assert_int_equal(t->s.fail, SMTPC_FAIL_AUTH_NO_TLS);
	finish(t);
	assert_null(strstr(t->f.lines, "AUTH"));
	fake_smtp_free(&t->f);

	t->o.auth_plaintext = true;
	assert_true(start(t, allowed));
	finish(t);
}

/* A greeting that names us: mail would come back, the session fails as a loop. */
static void test_loop_greeting(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 MX.Me.Example ESMTP hato", "C:QUIT", "S:221 bye", NULL};

	t->o.loop_name = "mx.me.example";
	assert_false(start(t, script));
	assert_int_equal(t->s.fail, SMTPC_FAIL_LOOP);
	assert_int_equal(t->s.state, SMTPC_STATE_GREETING);
	finish(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockstep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_421_mid_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_after_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helo_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ehlo_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_injection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_may_and_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_replies_after_dot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mail_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_or_none_then_rset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_dot_stuffed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_not_354, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_needs_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_greeting, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
