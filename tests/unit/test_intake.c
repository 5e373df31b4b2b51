/*
 * test_intake.c - unit tests for src/intake/: the stage every message
 * passes into the queue (intake.c) and the one date function (mail_date.c).
 *
 * Each test runs a real queue in a temporary state directory with an event
 * base for the commit's callback, opens a message, feeds it, finishes it,
 * and reads what the commit wrote: our Received: header for an SMTP client
 * and for a drop file, the loop count at and over received_max, the size
 * limit, the free-space reserve, the submission fix-ups, the order in which
 * failures pick the answer, that a refused or aborted message leaves no
 * file behind, and a message hato makes itself (a delivery report).
 *
 * The end-of-message stages run with small stages defined here: a header
 * prepended, a body replaced (in memory and for a message streamed to
 * incoming/), a refusal with the stage's own reply, tempfail and discard,
 * an answer that comes later from an event timer, the order by rank, edits
 * seen by the next stage, envelope edits, and a stage cancelled when its
 * receiver goes away; each asserts the bytes that land in the queue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "intake.h"
#include "mail_id.h"
#include "queue.h"
#include "spool_fixture.h"
#include "strbuf.h"
#include "util.h"

#define HOST "mx.test.example"

struct fixture {
	char dir[64];
	struct event_base *base;
	struct queue *q;
	struct conf *c;
	struct intake in;
	struct envelope env;
	int commit_err;           /* -1 until the commit's callback ran */
	struct intake_result res; /* the last result, its strings copied */
	char *reply;
	char *quarantine;
};

/* A real queue in a fresh directory, default limits, our host name. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	strcpy(f->dir, "/tmp/hato-test-intake.XXXXXX");
	if (f == NULL || mkdtemp(f->dir) == NULL)
		return -1;
	f->base = event_base_new();
	f->q = queue_open(f->dir, 1, false, f->base, err, sizeof(err));
	f->c = conf_load(NULL, err, sizeof(err));
	if (f->q == NULL || f->c == NULL)
		return -1;
	free(f->c->hostname);
	f->c->hostname = xstrdup(HOST);
	f->c->limits.min_free_space = 0;
	intake_init(&f->in, f->c, f->q);
	envelope_init(&f->env);
	f->env.sender = xstrdup("<a@client.example>");
	f->env.client = xstrdup("192.0.2.1");
	f->env.client_name = xstrdup("client.example");
	f->env.helo = xstrdup("helo.example");
	envelope_add_rcpt(&f->env, "<b@test.example>");
	f->commit_err = -1;
	*state = f;
	return 0;
}

/* Close everything and remove the spool. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	intake_free(&f->in);
	envelope_free(&f->env);
	free(f->reply);
	free(f->quarantine);
	queue_close(f->q);
	event_base_free(f->base);
	conf_free(f->c);
	spool_rm_tree(f->dir);
	free(f);
	return 0;
}

/* How many files a spool directory (incoming, queue) holds. */
static int files_in(const struct fixture *f, const char *sub)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", f->dir, sub);
	return spool_count(path);
}

/* intake's answer: kept, with copies of its strings. */
static void settled(void *arg, const struct intake_result *r)
{
	struct fixture *f = arg;

	f->res = *r;
	free(f->reply);
	free(f->quarantine);
	f->reply = r->reply ? xstrdup(r->reply) : NULL;
	f->quarantine = r->quarantine ? xstrdup(r->quarantine) : NULL;
	f->res.reply = f->reply;
	f->res.quarantine = f->quarantine;
	f->commit_err = r->err;
	event_base_loopbreak(f->base);
}

/* Finish the open message and wait for intake's answer: STATUS_OK when it
 * was queued, STATUS_QUEUED when discarded, else the refusal's status. */
static enum status finish(struct fixture *f, enum status form)
{
	struct timeval tv = {10, 0};

	f->commit_err = -1;
	intake_finish(&f->in, form, settled, f);
	assert_int_equal(f->commit_err, -1); /* never from within intake_finish */
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_int_not_equal(f->commit_err, -1);
	assert_false(intake_pending(&f->in));
	switch (f->res.outcome) {
	case INTAKE_QUEUED:
		return STATUS_OK;
	case INTAKE_DISCARDED:
		return STATUS_QUEUED;
	default:
		return f->res.status;
	}
}

/* Open with o, feed msg, finish with form: as finish. */
static enum status run(struct fixture *f, const struct intake_origin *o, const char *msg,
		       enum status form)
{
	enum status st = intake_open(&f->in, &f->env, o, 0);

	assert_int_equal(st, STATUS_OK);
	intake_write(&f->in, msg, strlen(msg));
	return finish(f, form);
}

/* The committed message (queue_read), NUL-terminated. */
static char *committed_message(const struct fixture *f)
{
	uint64_t len;
	int fd = queue_read(f->q, f->env.id, &len);
	char *buf;

	assert_true(fd >= 0);
	buf = xmalloc(len + 1);
	assert_int_equal(read(fd, buf, len), (ssize_t)len);
	buf[len] = '\0';
	close(fd);
	return buf;
}

static const struct intake_origin smtp_plain = {.source = INTAKE_SMTP, .esmtp = true};

/* Our Received: for an SMTP client over TLS, authenticated, one recipient. */
static void test_received_smtp(void **state)
{
	struct fixture *f = *state;
	struct intake_origin o = {.source = INTAKE_SMTP,
				  .esmtp = true,
				  .tls_version = "TLSv1.3",
				  .tls_cipher = "TLS_AES_256_GCM_SHA384"};
	char want[512], *m, *date;

	f->env.auth_user = xstrdup("alice");
	assert_int_equal(run(f, &o, "Subject: hi\r\n\r\nbody\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	snprintf(want, sizeof(want),
		 "Received: from helo.example (client.example [192.0.2.1])\r\n"
		 "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
		 "\t(Authenticated sender: alice)\r\n"
		 "\tby " HOST " (hato) with ESMTPSA id %s\r\n"
		 "\tfor <b@test.example>;\r\n\t",
		 f->env.id);
	assert_memory_equal(m, want, strlen(want));
	date = m + strlen(want);
	assert_non_null(strstr(date, "\r\nSubject: hi\r\n\r\nbody\r\n"));
	assert_int_equal(strlen(strstr(date, "\r\nSubject")),
			 strlen("\r\nSubject: hi\r\n\r\nbody\r\n"));
	assert_int_equal(f->env.size, strlen("Subject: hi\r\n\r\nbody\r\n"));
	free(m);
}

/* Plain SMTP after HELO, an IPv6 client, two recipients: no "for". */
static void test_received_smtp_plain_v6(void **state)
{
	struct fixture *f = *state;
	struct intake_origin o = {.source = INTAKE_SMTP, .esmtp = false};
	char want[256], *m;

	free(f->env.client);
	f->env.client = xstrdup("2001:db8::1");
	envelope_add_rcpt(&f->env, "<c@test.example>");
	assert_int_equal(run(f, &o, "x\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	snprintf(want, sizeof(want),
		 "Received: from helo.example (client.example [IPv6:2001:db8::1])\r\n"
		 "\tby " HOST " (hato) with SMTP id %s;\r\n\t",
		 f->env.id);
	assert_memory_equal(m, want, strlen(want));
	free(m);
}

#define HIDDEN                                                                                     \
	"Received: from helo.example\r\n\t(Authenticated sender: alice)\r\n\tby " HOST             \
	" (hato) with ESMTPA id "

/* received_hide_client leaves an authenticated client's address out. */
static void test_received_hides_client(void **state)
{
	struct fixture *f = *state;
	char *m;

	f->c->received_hide_client = true;
	f->env.auth_user = xstrdup("alice");
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_memory_equal(m, HIDDEN, strlen(HIDDEN));
	assert_null(strstr(m, "192.0.2.1"));
	free(m);
}

/* A drop file's Received: names the user, not a client. */
static void test_received_pickup(void **state)
{
	struct fixture *f = *state;
	struct intake_origin o = {.source = INTAKE_PICKUP, .uid = 1000};
	char want[256], *m;

	assert_int_equal(run(f, &o, "Subject: cron\r\n\r\ndone\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	snprintf(want, sizeof(want), "Received: by " HOST " (hato, from userid 1000)\r\n\tid %s; ",
		 f->env.id);
	assert_memory_equal(m, want, strlen(want));
	assert_non_null(strstr(m, "\r\nSubject: cron\r\n\r\ndone\r\n"));
	free(m);
}

/* "Received: x" header lines, n of them, then a body that names more. */
static void looped(char *buf, size_t size, unsigned n)
{
	size_t len = 0;

	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len, "Received: from hop%u\r\n", i);
	snprintf(buf + len, size - len, "Subject: l\r\n\r\nReceived: in the body\r\n");
}

/* received_max Received: fields pass; one more is a loop, and nothing stays. */
static void test_loop_count(void **state)
{
	struct fixture *f = *state;
	char msg[1024];

	f->c->limits.received_max = 3;
	looped(msg, sizeof(msg), 3);
	assert_int_equal(run(f, &smtp_plain, msg, STATUS_OK), STATUS_OK);
	assert_int_equal(files_in(f, "queue"), 1);
	looped(msg, sizeof(msg), 4);
	assert_int_equal(run(f, &smtp_plain, msg, STATUS_OK), STATUS_LOOP);
	assert_int_equal(files_in(f, "queue"), 1);
	assert_int_equal(files_in(f, "incoming"), 0);
}

/* Over message_size_max the failure sticks; the octets are still counted. */
static void test_size_limit(void **state)
{
	struct fixture *f = *state;
	char big[1500];

	f->c->limits.message_size_max = 1024;
	memset(big, 'x', sizeof(big));
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_OK);
	intake_write(&f->in, big, 1000);
	assert_int_equal(intake_status(&f->in), STATUS_OK);
	intake_write(&f->in, big, 500);
	assert_int_equal(intake_status(&f->in), STATUS_TOO_BIG);
	intake_write(&f->in, big, 500);
	assert_int_equal(f->env.size, 2000);
	assert_int_equal(finish(f, STATUS_OK), STATUS_TOO_BIG);
	assert_int_equal(files_in(f, "queue"), 0);
	assert_int_equal(files_in(f, "incoming"), 0);
}

/* A reserve the disk cannot keep: nothing opens; intake_has_room says no. */
static void test_free_space(void **state)
{
	struct fixture *f = *state;

	assert_true(intake_has_room(&f->in, 1000));
	f->c->limits.min_free_space = UINT64_MAX / 2;
	assert_false(intake_has_room(&f->in, 0));
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_DISK_FULL);
	assert_int_equal(finish(f, STATUS_OK), STATUS_LOCAL_ERROR);
	assert_int_equal(files_in(f, "queue"), 0);
}

/* Submission fix-ups: Date and Message-ID added, Bcc gone; not without. */
static void test_fixups(void **state)
{
	struct fixture *f = *state;
	struct intake_origin o = {.source = INTAKE_SMTP, .esmtp = true, .fixups = true};
	const char *msg = "To: b@test.example\r\nBcc: hidden@test.example\r\nSubject: s\r\n\r\n"
			  "Bcc: in the body stays\r\n";
	char want[256], *m, *date;

	assert_int_equal(run(f, &o, msg, STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_null(strstr(m, "hidden"));
	date = strstr(m, "\r\nSubject: s\r\nDate: ");
	assert_non_null(date);
	snprintf(want, sizeof(want),
		 "\r\nMessage-ID: <%s@" HOST ">\r\n\r\nBcc: in the body stays\r\n", f->env.id);
	assert_non_null(strstr(date, want));
	/* the Date: is mail_date's: "Www, DD Mmm YYYY HH:MM:SS +ZZZZ" */
	date += strlen("\r\nSubject: s\r\nDate: ");
	assert_int_equal(strchr(date, '\r') - date, strlen("Mon, 01 Jan 2024 00:00:00 +0000"));
	assert_int_equal(f->env.size, strlen(msg)); /* what the client sent */
	free(m);

	assert_int_equal(run(f, &smtp_plain, msg, STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_non_null(strstr(m, "Bcc: hidden@test.example\r\n"));
	assert_null(strstr(m, "Message-ID:"));
	free(m);
}

/* The limits rank before the receiver's verdict on the form; the form
 * alone refuses too. */
static void test_failure_order(void **state)
{
	struct fixture *f = *state;
	char msg[1024];

	f->c->limits.received_max = 1;
	looped(msg, sizeof(msg), 2);
	assert_int_equal(run(f, &smtp_plain, msg, STATUS_BAD_LINE_ENDING), STATUS_LOOP);
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_BAD_LINE_ENDING),
			 STATUS_BAD_LINE_ENDING);
	assert_int_equal(files_in(f, "queue"), 0);
	assert_int_equal(files_in(f, "incoming"), 0);
}

/* An aborted message leaves nothing; the intake opens the next one. */
static void test_abort(void **state)
{
	struct fixture *f = *state;
	char big[QFILE_BUFSIZE + 100];

	memset(big, 'y', sizeof(big));
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_OK);
	intake_write(&f->in, big, sizeof(big)); /* streamed to incoming/ */
	assert_int_equal(files_in(f, "incoming"), 1);
	intake_abort(&f->in);
	assert_int_equal(files_in(f, "incoming"), 0);
	assert_int_equal(run(f, &smtp_plain, "again\r\n", STATUS_OK), STATUS_OK);
	assert_int_equal(files_in(f, "queue"), 1);
}

/* A message hato makes itself: our Received: first, the local origin in
 * the envelope, its size without our header, committed at once. */
static void test_inject_local(void **state)
{
	struct fixture *f = *state;
	struct strbuf msg;
	const char *body = "From: Mail Delivery System <MAILER-DAEMON@" HOST ">\r\n\r\nreport\r\n";
	size_t hdr;
	char *m;

	strbuf_init(&msg);
	hdr = intake_local_begin(f->c, &msg);
	assert_int_equal(hdr, msg.len);
	assert_memory_equal(msg.s, "Received: by " HOST " (hato);\r\n\t",
			    strlen("Received: by " HOST " (hato);\r\n\t"));
	strbuf_adds(&msg, body);
	assert_true(intake_inject(f->c, f->q, &f->env, msg.s, msg.len, hdr));
	assert_int_equal(strlen(f->env.id), QUEUE_ID_LEN);
	assert_string_equal(f->env.client, "127.0.0.1");
	assert_string_equal(f->env.client_name, HOST);
	assert_string_equal(f->env.helo, HOST);
	assert_int_equal(f->env.size, strlen(body));
	assert_true(f->env.arrival > 0);
	m = committed_message(f);
	assert_memory_equal(m, msg.s, msg.len);
	assert_int_equal(strlen(m), msg.len);
	free(m);
	strbuf_free(&msg);
}

/* --- End-of-message stages --- */

/* What the test stages do, set by each test. */
struct stage_ctx {
	struct fixture *f;
	const char *tag; /* appended to order when the stage runs */
	char order[64];  /* shared: the order the stages ran in */
	char *order_p;   /* where this stage appends (the shared one's) */
	struct intake_verdict v;
	struct event *timer; /* the async stage's */
	bool cancelled;
	size_t seen_fields; /* what the reader saw */
	char seen_body[64];
};

/* Note that a stage ran. */
static void ran(struct stage_ctx *c)
{
	strcat(c->order_p, c->tag);
}

/* Prepends "X-Stage: tag" and answers v at once. */
static void prepend_run(struct intake *in, void *arg)
{
	struct stage_ctx *c = arg;

	ran(c);
	assert_true(intake_header_insert(in, 0, "X-Stage", c->tag));
	intake_stage_done(in, &c->v);
}

/* Replaces the body and answers at once. */
static void replbody_run(struct intake *in, void *arg)
{
	struct stage_ctx *c = arg;

	ran(c);
	assert_true(intake_body_replace(in));
	assert_true(intake_body_append(in, "new ", 4));
	assert_true(intake_body_append(in, "body\r\n", 6));
	intake_stage_done(in, &c->v);
}

/* Answers v without touching the message. */
static void verdict_run(struct intake *in, void *arg)
{
	struct stage_ctx *c = arg;

	ran(c);
	intake_stage_done(in, &c->v);
}

/* Reads the fields and the body as they stand now. */
static void reader_run(struct intake *in, void *arg)
{
	struct stage_ctx *c = arg;
	ssize_t n;

	ran(c);
	assert_non_null(intake_headers(in, &c->seen_fields));
	n = intake_body_read(in, 0, c->seen_body, sizeof(c->seen_body) - 1);
	assert_true(n >= 0);
	c->seen_body[n] = '\0';
	intake_stage_done(in, &c->v);
}

/* The async stage's timer: edit, then answer. */
static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stage_ctx *c = arg;

	(void)fd;
	(void)what;
	assert_true(intake_header_add(&c->f->in, "X-Later", "yes"));
	intake_stage_done(&c->f->in, &c->v);
}

/* Answers 20 ms later, from the event loop. */
static void later_run(struct intake *in, void *arg)
{
	struct stage_ctx *c = arg;
	struct timeval tv = {0, 20000};

	(void)in;
	ran(c);
	c->timer = evtimer_new(c->f->base, later_cb, c);
	evtimer_add(c->timer, &tv);
}

/* The receiver went away while the async stage waited. */
static void later_cancel(struct intake *in, void *arg)
{
	struct stage_ctx *c = arg;

	(void)in;
	c->cancelled = true;
	evtimer_del(c->timer);
}

/* Adds and deletes recipients and changes the sender. */
static void envelope_run(struct intake *in, void *arg)
{
	struct stage_ctx *c = arg;

	ran(c);
	assert_true(intake_rcpt_add(in, "added@test.example"));
	assert_true(intake_rcpt_add(in, "<second@test.example>"));
	assert_false(intake_rcpt_add(in, "not an address"));
	assert_true(intake_rcpt_delete(in, "<B@test.example>"));
	assert_false(intake_rcpt_delete(in, "<nobody@test.example>"));
	assert_true(intake_sender_change(in, "<new@client.example>"));
	intake_stage_done(in, &c->v);
}

/* Changes Subject:, deletes the second X-Dup:, adds when there is none. */
static void chg_run(struct intake *in, void *arg)
{
	struct stage_ctx *c = arg;

	ran(c);
	assert_true(intake_header_change(in, "subject", 1, "changed\nfolded"));
	assert_true(intake_header_change(in, "X-Dup", 2, NULL));
	assert_true(intake_header_change(in, "X-New", 1, "made"));
	assert_false(intake_header_change(in, "Bad Name", 1, "x"));
	intake_stage_done(in, &c->v);
}

static const struct intake_stage st_prepend = {"prepend", INTAKE_RANK_SIGN, prepend_run, NULL};
static const struct intake_stage st_checks = {"checks", INTAKE_RANK_CHECKS, prepend_run, NULL};
static const struct intake_stage st_replbody = {"replbody", INTAKE_RANK_MILTER, replbody_run, NULL};
static const struct intake_stage st_verdict = {"verdict", INTAKE_RANK_MILTER, verdict_run, NULL};
static const struct intake_stage st_reader = {"reader", INTAKE_RANK_SIGN, reader_run, NULL};
static const struct intake_stage st_later = {"later", INTAKE_RANK_MILTER, later_run, later_cancel};
static const struct intake_stage st_envelope = {"envelope", INTAKE_RANK_MILTER, envelope_run, NULL};
static const struct intake_stage st_chg = {"chg", INTAKE_RANK_MILTER, chg_run, NULL};

/* A context for a stage named tag, answering continue, noting into order. */
static struct stage_ctx *ctx(struct fixture *f, const char *tag, struct stage_ctx *shared)
{
	struct stage_ctx *c = calloc(1, sizeof(*c));

	c->f = f;
	c->tag = tag;
	c->order_p = shared ? shared->order : c->order;
	c->v.action = INTAKE_CONTINUE;
	return c;
}

/* Free a context (and its timer). */
static void ctx_free(struct stage_ctx *c)
{
	if (c->timer)
		event_free(c->timer);
	free(c);
}

/* The body of the committed message, after its first empty line. */
static const char *body_of(const char *m)
{
	const char *b = strstr(m, "\r\n\r\n");

	assert_non_null(b);
	return b + 4;
}

/* Stages run by rank, whatever the order they were added in: checks, then
 * milters, then signing, which sees every field added before it; the
 * prepended fields land first in the queue file, before our Received:. */
static void test_stage_order_and_prepend(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *sign = ctx(f, "S", NULL), *check = ctx(f, "C", sign),
			 *mid = ctx(f, "M", sign), *reader = ctx(f, "R", sign);
	char *m;

	intake_stage_add(&f->in, &st_prepend, sign);
	intake_stage_add(&f->in, &st_reader, reader);
	intake_stage_add(&f->in, &st_checks, check);
	intake_stage_add(&f->in, &st_later, mid);
	assert_int_equal(run(f, &smtp_plain, "Subject: s\r\n\r\nbody\r\n", STATUS_OK), STATUS_OK);
	assert_string_equal(sign->order, "CMSR");
	m = committed_message(f);
	assert_memory_equal(m, "X-Stage: S\r\nX-Stage: C\r\nReceived: from helo.example",
			    strlen("X-Stage: S\r\nX-Stage: C\r\nReceived: from helo.example"));
	assert_non_null(strstr(m, "\r\nSubject: s\r\nX-Later: yes\r\n\r\nbody\r\n"));
	/* the last stage saw all of it: 2 prepended, Received:, Subject:, X-Later: */
	assert_int_equal(reader->seen_fields, 5);
	assert_string_equal(reader->seen_body, "body\r\n");
	assert_int_equal(files_in(f, "incoming"), 0);
	free(m);
	ctx_free(sign);
	ctx_free(check);
	ctx_free(mid);
	ctx_free(reader);
}

/* A stage that only reads changes nothing: the message is the one that
 * came in, not written again. */
static void test_stage_reader_no_rewrite(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *reader = ctx(f, "R", NULL);
	char *m;

	intake_stage_add(&f->in, &st_reader, reader);
	assert_int_equal(run(f, &smtp_plain, "Subject: s\r\n\r\nbody\r\n", STATUS_OK), STATUS_OK);
	assert_false(f->in.msg.hdr_changed);
	assert_false(f->in.msg.body_replaced);
	m = committed_message(f);
	assert_string_equal(body_of(m), "body\r\n");
	assert_int_equal(reader->seen_fields, 2);
	assert_int_equal(f->env.size, strlen("Subject: s\r\n\r\nbody\r\n"));
	free(m);
	ctx_free(reader);
}

/* The body replaced, for a small message (in memory) and a large one
 * (streamed to incoming/, read back from there): the header stays. */
static void test_stage_replace_body(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *c = ctx(f, "B", NULL);
	char *big = malloc(QFILE_BUFSIZE * 3), *m;

	intake_stage_add(&f->in, &st_replbody, c);
	assert_int_equal(run(f, &smtp_plain, "Subject: s\r\n\r\nold\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_string_equal(body_of(m), "new body\r\n");
	assert_non_null(strstr(m, "\r\nSubject: s\r\n\r\nnew body\r\n"));
	free(m);

	memset(big, 'z', QFILE_BUFSIZE * 3);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_OK);
	intake_write(&f->in, big, QFILE_BUFSIZE * 3);
	assert_int_equal(files_in(f, "incoming"), 1);
	assert_int_equal(finish(f, STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_string_equal(body_of(m), "new body\r\n");
	assert_int_equal(f->env.size, strlen("Subject: big\r\n\r\nnew body\r\n"));
	assert_int_equal(files_in(f, "incoming"), 0);
	free(m);
	free(big);
	ctx_free(c);
}

/* A large message whose header a stage edits: the body is copied from the
 * old file whole. */
static void test_stage_rewrite_large(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *c = ctx(f, "L", NULL);
	size_t n = QFILE_BUFSIZE * 2 + 77;
	char *big = malloc(n), *m;

	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	intake_stage_add(&f->in, &st_prepend, c);
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_OK);
	intake_write(&f->in, big, n);
	assert_int_equal(finish(f, STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_memory_equal(m, "X-Stage: L\r\nReceived: ", 22);
	assert_memory_equal(body_of(m), big + 16, n - 16);
	assert_int_equal(strlen(body_of(m)), n - 16);
	assert_int_equal(files_in(f, "incoming"), 0);
	free(m);
	free(big);
	ctx_free(c);
}

/* A refusal with the stage's own reply (two lines): the reply is made
 * complete lines; nothing is left in the spool; later stages never run. */
static void test_stage_refuse_own_reply(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *c = ctx(f, "X", NULL), *after = ctx(f, "A", c);

	c->v = (struct intake_verdict){.action = INTAKE_REFUSE,
				       .reply = "550-5.7.1 Spam detected\n550 5.7.1 go away",
				       .reason = "spam"};
	intake_stage_add(&f->in, &st_verdict, c);
	intake_stage_add(&f->in, &st_reader, after);
	assert_int_equal(run(f, &smtp_plain, "Subject: s\r\n\r\nbuy\r\n", STATUS_OK),
			 STATUS_CONTENT_REFUSED);
	assert_int_equal(f->res.outcome, INTAKE_REFUSED);
	assert_string_equal(f->reply, "550-5.7.1 Spam detected\r\n550 5.7.1 go away\r\n");
	assert_string_equal(f->res.stage, "verdict");
	assert_string_equal(c->order, "X");
	assert_int_equal(files_in(f, "queue"), 0);
	assert_int_equal(files_in(f, "incoming"), 0);

	/* a reply of the wrong class is not said: the status is */
	c->v.reply = "250 2.0.0 fine";
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_CONTENT_REFUSED);
	assert_null(f->reply);
	/* a status of the stage's choosing */
	c->v.reply = NULL;
	c->v.status = STATUS_RELAY_DENIED;
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_RELAY_DENIED);
	ctx_free(c);
	ctx_free(after);
}

/* Tempfail (451 4.7.1 by default, or its own 4xx reply) and discard. */
static void test_stage_tempfail_discard(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *c = ctx(f, "T", NULL);

	c->v = (struct intake_verdict){.action = INTAKE_TEMPFAIL};
	intake_stage_add(&f->in, &st_verdict, c);
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_CONTENT_TEMPFAIL);
	assert_int_equal(status_code(STATUS_CONTENT_TEMPFAIL), 451);
	assert_null(f->reply);
	c->v.reply = "421 4.7.0 later";
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_CONTENT_TEMPFAIL);
	assert_string_equal(f->reply, "421 4.7.0 later\r\n");
	c->v = (struct intake_verdict){.action = INTAKE_DISCARD, .reason = "dropped"};
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_QUEUED);
	assert_int_equal(f->res.outcome, INTAKE_DISCARDED);
	assert_string_equal(f->res.reason, "dropped");
	assert_int_equal(files_in(f, "queue"), 0);
	assert_int_equal(files_in(f, "incoming"), 0);
	ctx_free(c);
}

/* A quarantine: committed on hold with the stage's reason; the stages
 * after it still run; the first reason stands. */
static void test_stage_quarantine(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *q1 = ctx(f, "Q", NULL), *q2 = ctx(f, "R", q1), *sign = ctx(f, "S", q1);

	q1->v = (struct intake_verdict){.action = INTAKE_QUARANTINE, .reason = "looks odd"};
	q2->v = (struct intake_verdict){.action = INTAKE_QUARANTINE, .reason = "second"};
	intake_stage_add(&f->in, &st_verdict, q1);
	intake_stage_add(&f->in, &st_verdict, q2);
	intake_stage_add(&f->in, &st_prepend, sign);
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_OK);
	assert_string_equal(q1->order, "QRS");
	assert_string_equal(f->quarantine, "looks odd");
	assert_string_equal(f->res.stage, "verdict");
	assert_non_null(f->env.hold);
	assert_string_equal(f->env.hold, "quarantined by verdict: looks odd");
	assert_true(f->env.held_since > 0);
	ctx_free(q1);
	ctx_free(q2);
	ctx_free(sign);
}

/* The sender and recipients a stage changes are the committed envelope's;
 * no recipient left is a discard. */
static void test_stage_envelope(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *c = ctx(f, "E", NULL);

	intake_stage_add(&f->in, &st_envelope, c);
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_OK);
	assert_string_equal(f->env.sender, "<new@client.example>");
	assert_int_equal(f->env.nrcpts, 2);
	assert_string_equal(f->env.rcpts[0].addr, "<added@test.example>");
	assert_string_equal(f->env.rcpts[1].addr, "<second@test.example>");
	ctx_free(c);
}

/* Header fields changed, deleted, added when missing; folding kept. */
static void test_stage_change_header(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *c = ctx(f, "H", NULL);
	char *m;

	intake_stage_add(&f->in, &st_chg, c);
	assert_int_equal(
		run(f, &smtp_plain,
		    "Subject: old\r\n continued\r\nX-Dup: 1\r\nX-Dup: 2\r\nX-Dup: 3\r\n\r\nb\r\n",
		    STATUS_OK),
		STATUS_OK);
	m = committed_message(f);
	assert_non_null(strstr(m, "\r\nSubject: changed\r\n\tfolded\r\nX-Dup: 1\r\nX-Dup: 3\r\n"
				  "X-New: made\r\n\r\nb\r\n"));
	free(m);
	ctx_free(c);
}

/* The answer that never came: the receiver goes, the stage is cancelled,
 * no callback, nothing in the spool. */
static void test_stage_cancel(void **state)
{
	struct fixture *f = *state;
	struct stage_ctx *c = ctx(f, "W", NULL);
	struct timeval tv = {0, 50000};

	intake_stage_add(&f->in, &st_later, c);
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_OK);
	intake_write(&f->in, "x\r\n", 3);
	f->commit_err = -1;
	intake_finish(&f->in, STATUS_OK, settled, f);
	assert_true(intake_pending(&f->in));
	assert_true(intake_cancel(&f->in));
	assert_true(c->cancelled);
	assert_false(intake_pending(&f->in));
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_int_equal(f->commit_err, -1);
	assert_int_equal(files_in(f, "queue"), 0);
	assert_int_equal(files_in(f, "incoming"), 0);
	ctx_free(c);
}

/* mail_date: RFC 5322 §3.3 in the local zone, offsets of any sign and
 * minutes, C-locale names; a short buffer gives false and no date. */
static void test_mail_date(void **state)
{
	char buf[MAIL_DATE_SIZE];

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_true(mail_date(1704067200, buf, sizeof(buf))); /* 2024-01-01 */
	assert_string_equal(buf, "Mon, 01 Jan 2024 00:00:00 +0000");
	setenv("TZ", "<-0330>3:30", 1); /* 3 h 30 min west of UTC */
	tzset();
	assert_true(mail_date(1704067200, buf, sizeof(buf)));
	assert_string_equal(buf, "Sun, 31 Dec 2023 20:30:00 -0330");
	setenv("TZ", "<+0545>-5:45", 1);
	tzset();
	assert_true(mail_date(1719835200, buf, sizeof(buf))); /* 2024-07-01 12:00 */
	assert_string_equal(buf, "Mon, 01 Jul 2024 17:45:00 +0545");
	assert_false(mail_date(1719835200, buf, 10));
	assert_string_equal(buf, "");
	setenv("TZ", "UTC", 1);
	tzset();
}

/* mail_msgid: the date in UTC, 16 random hex digits, the host (localhost
 * when it is not a domain); never the same twice. */
static void test_mail_msgid(void **state)
{
	char a[MAIL_MSGID_SIZE], b[MAIL_MSGID_SIZE];

	(void)state;
	mail_msgid(1704067200, "host.example", a, sizeof(a)); /* 2024-01-01 00:00:00 UTC */
	mail_msgid(1704067200, "host.example", b, sizeof(b));
	assert_int_equal(strlen(a), strlen("<20240101000000.0123456789abcdef@host.example>"));
	assert_memory_equal(a, "<20240101000000.", 16);
	for (size_t i = 16; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_string_equal(a + 32, "@host.example>");
	assert_string_not_equal(a, b);
	mail_msgid(1704067200, "not a domain", a, sizeof(a));
	assert_string_equal(a + 32, "@localhost>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_received_smtp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_received_smtp_plain_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_received_hides_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_received_pickup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inject_local, setup, teardown),
		cmocka_unit_test(test_mail_date),
		cmocka_unit_test(test_mail_msgid),
		cmocka_unit_test_setup_teardown(test_stage_order_and_prepend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_reader_no_rewrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_replace_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_rewrite_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_refuse_own_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_tempfail_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_change_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_cancel, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
