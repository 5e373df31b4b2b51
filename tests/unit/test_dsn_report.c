/*
 * test_dsn_report.c - unit tests for src/scheduler/dsn_report.c: delivery status
 * notifications.  Every report built here goes through a strict reader of
 * its own (CRLF lines only, none over 998 octets, the header section, the
 * multipart/report boundary, each part's fields and body, and the
 * delivery-status groups field by field), then the tests look at what it
 * says: the header fields, the part types, the RFC 3464 fields, the
 * original returned whole or as headers, RET=FULL over the limit, delay
 * and success reports, hostile and very long diagnostics, originals
 * without a body, without the empty line, empty or missing, 8-bit
 * originals and UTF-8 addresses (RFC 6533), refused arguments, and random
 * bytes everywhere.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsn_report.h"
#include "queued_file.h"

#define HOST "mx.example.org"
#define QID "0661600A1B2C3D000001"
#define NOW 1795914468     /* Sun, 29 Nov 2026 01:07:48 UTC */
#define ARRIVAL 1795900000 /* earlier the same day */

static char tmpdir[64];
static unsigned nmsgs; /* files write_msg() made in tmpdir: msg0, msg1 ... */

/* --- a strict reader ---------------------------------------------------------------- */

#define MAX_FIELDS 64
#define MAX_PARTS 8
#define MAX_GROUPS 8

/* Header fields, unfolded: name and value (leading white space dropped). */
struct fields {
	size_t n;
	char *name[MAX_FIELDS];
	char *value[MAX_FIELDS];
};

struct part {
	struct fields f;
	char *body; /* NUL-terminated copy, up to the CRLF that starts the delimiter line */
	size_t len;
};

struct report {
	struct fields top;
	char boundary[200];
	size_t nparts;
	struct part parts[MAX_PARTS];
	size_t ngroups; /* delivery-status groups: [0] per message, then per recipient */
	struct fields groups[MAX_GROUPS];
};

/* Every line of s[0..len) ends in CRLF, no CR or LF stands alone, and no
 * line is longer than 998 octets before its CRLF. */
static void check_lines(const char *s, size_t len)
{
	size_t start = 0;

	assert_true(len >= 2);
	assert_memory_equal(s + len - 2, "\r\n", 2);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < len);
			assert_int_equal(s[i + 1], '\n');
			if (i - start > 998)
				fail_msg("line at %zu is %zu octets", start, i - start);
			start = i + 2;
			i++;
		} else if (s[i] == '\n') {
			fail_msg("bare LF at %zu", i);
		}
	}
}

/* Parse the header section at s (CRLF lines, ends at an empty line or at
 * end) into f, unfolding continuations; returns where the body starts. */
static const char *parse_fields(const char *s, const char *end, struct fields *f)
{
	f->n = 0;
	while (s < end) {
		const char *eol = strstr(s, "\r\n"), *colon;

		assert_non_null(eol);
		if (eol == s)
			return eol + 2;
		if (*s == ' ' || *s == '\t') { /* continuation: append, the CRLF removed */
			size_t old, add = (size_t)(eol - s);

			assert_true(f->n > 0);
			old = strlen(f->value[f->n - 1]);
			f->value[f->n - 1] = realloc(f->value[f->n - 1], old + add + 1);
			memcpy(f->value[f->n - 1] + old, s, add);
			f->value[f->n - 1][old + add] = '\0';
		} else {
			colon = memchr(s, ':', (size_t)(eol - s));
			if (colon == NULL)
				fail_msg("not a field: %.*s", (int)(eol - s), s);
			for (const char *p = s; p < colon; p++)
				if (*p <= ' ' || *p > '~')
					fail_msg("bad field name: %.*s", (int)(eol - s), s);
			assert_true(f->n < MAX_FIELDS);
			f->name[f->n] = strndup(s, (size_t)(colon - s));
			colon++;
			while (colon < eol && *colon == ' ')
				colon++;
			f->value[f->n] = strndup(colon, (size_t)(eol - colon));
			f->n++;
		}
		s = eol + 2;
	}
	return end;
}

/* The value of field name in f (any case), or NULL; fails when it is there twice. */
static const char *get(const struct fields *f, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < f->n; i++) {
		if (strcasecmp(f->name[i], name) == 0) {
			if (v != NULL)
				fail_msg("%s twice", name);
			v = f->value[i];
		}
	}
	return v;
}

/* Assert field name is there with exactly value want. */
static void want_field(const struct fields *f, const char *name, const char *want)
{
	const char *v = get(f, name);

	if (v == NULL)
		fail_msg("no %s field (wanted \"%s\")", name, want);
	if (strcmp(v, want) != 0)
		fail_msg("%s: \"%s\", wanted \"%s\"", name, v, want);
}

/* Split the delivery-status body into its groups (RFC 3464 §2.1). */
static void parse_groups(struct report *rp, const char *s, size_t len)
{
	const char *end = s + len;

	rp->ngroups = 0;
	while (s < end) {
		const char *next;

		assert_true(rp->ngroups < MAX_GROUPS);
		next = parse_fields(s, end, &rp->groups[rp->ngroups]);
		assert_true(rp->groups[rp->ngroups].n > 0);
		rp->ngroups++;
		s = next;
	}
}

/* Read the whole report: lines, header section, boundary, parts, groups. */
static void parse_report(const struct strbuf *out, struct report *rp)
{
	const char *s = out->s, *end = out->s + out->len, *ct, *b, *body, *p;
	char delim[210], close[212];
	size_t dl;

	memset(rp, 0, sizeof(*rp));
	check_lines(out->s, out->len);
	assert_int_equal(strlen(out->s), out->len); /* no NUL */
	body = parse_fields(s, end, &rp->top);
	ct = get(&rp->top, "Content-Type");
	assert_non_null(ct);
	b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	b += strlen("boundary=\"");
	assert_non_null(strchr(b, '"'));
	assert_true((size_t)(strchr(b, '"') - b) < sizeof(rp->boundary));
	memcpy(rp->boundary, b, (size_t)(strchr(b, '"') - b));
	assert_true(strlen(rp->boundary) >= 1 && strlen(rp->boundary) <= 70); /* RFC 2046 §5.1.1 */
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", rp->boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", rp->boundary);
	dl = strlen(delim);

	/* the preamble, then parts, each opened by a delimiter line */
	p = strstr(body - 2, delim);
	assert_non_null(p);
	for (;;) {
		const char *start = p + dl, *next = strstr(start - 2, delim), *last;
		struct part *pt;

		last = strstr(start - 2, close);
		assert_non_null(last);
		if (next == NULL || next > last)
			next = last;
		assert_true(rp->nparts < MAX_PARTS);
		pt = &rp->parts[rp->nparts++];
		b = parse_fields(start, next + 2, &pt->f);
		pt->len = b <= next ? (size_t)(next - b) : 0;
		pt->body = strndup(b, pt->len);
		if (next == last) {
			assert_true(last + strlen(close) == end); /* nothing after the close */
			break;
		}
		p = next;
	}
}

/* Free what parse_report() allocated. */
static void free_fields(struct fields *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->name[i]);
		free(f->value[i]);
	}
	f->n = 0;
}

static void free_report(struct report *rp)
{
	free_fields(&rp->top);
	for (size_t i = 0; i < rp->nparts; i++) {
		free_fields(&rp->parts[i].f);
		free(rp->parts[i].body);
	}
	for (size_t i = 0; i < rp->ngroups; i++)
		free_fields(&rp->groups[i]);
}

/* The Content-Type of part i up to its first ';' or end. */
static void want_type(const struct report *rp, size_t i, const char *type)
{
	const char *ct = get(&rp->parts[i].f, "Content-Type");

	assert_non_null(ct);
	if (strncmp(ct, type, strlen(type)) != 0 ||
	    (ct[strlen(type)] != '\0' && ct[strlen(type)] != ';'))
		fail_msg("part %zu is %s, wanted %s", i + 1, ct, type);
}

/* The delivery-status groups are well-formed: per message Reporting-MTA;
 * per recipient Final-Recipient, Action, Status as RFC 3464 writes them. */
static void check_groups(struct report *rp, size_t nrcpts)
{
	static const char *const actions[] = {"failed", "delayed", "delivered", "relayed",
					      "expanded"};

	assert_int_equal(rp->ngroups, 1 + nrcpts);
	assert_non_null(get(&rp->groups[0], "Reporting-MTA"));
	assert_null(get(&rp->groups[0], "Final-Recipient"));
	for (size_t g = 1; g < rp->ngroups; g++) {
		const char *fr = get(&rp->groups[g], "Final-Recipient");
		const char *ac = get(&rp->groups[g], "Action");
		const char *st = get(&rp->groups[g], "Status");
		bool known = false;
		unsigned a, b, c;
		char tail;

		assert_non_null(fr);
		assert_non_null(ac);
		assert_non_null(st);
		assert_null(get(&rp->groups[g], "Reporting-MTA"));
		assert_true(strncmp(fr, "rfc822; ", 8) == 0 || strncmp(fr, "utf-8; ", 7) == 0);
		assert_null(strchr(fr, '<'));
		for (size_t i = 0; i < 5; i++)
			known = known || strcmp(ac, actions[i]) == 0;
		assert_true(known);
		assert_int_equal(sscanf(st, "%u.%u.%u%c", &a, &b, &c, &tail), 3);
		assert_true(a == 2 || a == 4 || a == 5);
		for (size_t i = 0; i < rp->groups[g].n; i++) /* no field leaks from elsewhere */
			assert_true(strcasecmp(rp->groups[g].name[i], "Content-Type") != 0);
	}
}

/* Does the text part body hold needle, its lines joined (a line break and
 * the indentation after it read as one space)? */
static bool text_has(const char *body, const char *needle)
{
	char *flat = malloc(strlen(body) + 1), *d = flat;
	bool found;

	assert_non_null(flat);
	for (const char *s = body; *s != '\0';) {
		if (s[0] == '\r' && s[1] == '\n' && s[2] != '\r') {
			s += 2;
			while (*s == ' ')
				s++;
			*d++ = ' ';
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
	found = strstr(flat, needle) != NULL;
	free(flat);
	return found;
}

/* --- building ------------------------------------------------------------------------ */

/* Write len octets of text to a new file in tmpdir; returns its path (static). */
static const char *write_msg(const char *text, size_t len)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/msg%u", tmpdir, nmsgs++);
	assert_true(write_queued(path, text, len));
	return path;
}

/* A report with defaults around rcpts. */
static struct dsn_report report(const struct dsn_rcpt *rcpts, size_t n)
{
	struct dsn_report r = {
		.hostname = HOST,
		.queue_id = QID,
		.to = "<alice@example.org>",
		.arrival = ARRIVAL,
		.rcpts = rcpts,
		.nrcpts = n,
		.now = NOW,
	};

	return r;
}

/* Build and read r from the original at path; asserts success. */
static void build(const struct dsn_report *r, const char *path, uint64_t max_full,
		  struct strbuf *out, struct dsn_built *built, struct report *rp)
{
	char err[256] = "";
	uint64_t len = 0;
	int fd = path != NULL ? queue_msg_open(path, &len) : -1;

	if (path != NULL && fd < 0)
		fail_msg("cannot open the queue file %s", path);
	strbuf_init(out);
	if (!dsn_build(r, fd, len, max_full, out, built, err, sizeof(err)))
		fail_msg("dsn_build: %s", err);
	if (fd >= 0)
		close(fd);
	parse_report(out, rp);
	if (rp->nparts >= 2)
		parse_groups(rp, rp->parts[1].body, rp->parts[1].len);
}

/* A failed recipient at a remote server. */
static const struct dsn_rcpt bob_failed = {
	.addr = "<bob@example.net>",
	.action = DSN_ACTION_FAILED,
	.status = "5.1.1",
	.remote_mta = "mx.example.net",
	.diagnostic = "550 5.1.1 <bob@example.net>: no such user",
	.last_attempt = NOW - 60,
};

#define ORIG_HEAD                                                                                  \
	"Received: from client.example.org (client.example.org [192.0.2.1])\r\n"                   \
	"\tby mx.example.org (hato) with ESMTP id " QID "\r\n"                                     \
	"From: Alice <alice@example.org>\r\n"                                                      \
	"To: Bob <bob@example.net>\r\n"                                                            \
	"Subject: lunch\r\n"                                                                       \
	"Message-ID: <1@example.org>\r\n"
#define ORIG_BODY "Shall we meet at noon?  SECRETBODY\r\n-- \r\nAlice\r\n"
#define ORIG ORIG_HEAD "\r\n" ORIG_BODY

/* --- tests --------------------------------------------------------------------------- */

/* One failed recipient, RET unspecified: the header fields, the three
 * parts, the delivery-status fields, the header section without the body. */
static void test_failed_headers_only(void **state)
{
	struct dsn_report r = report(&bob_failed, 1);
	struct strbuf out;
	struct dsn_built built;
	struct report rp;
	const char *v;

	(void)state;
	build(&r, write_msg(ORIG, strlen(ORIG)), 1 << 20, &out, &built, &rp);

	want_field(&rp.top, "From", "Mail Delivery System <MAILER-DAEMON@" HOST ">");
	want_field(&rp.top, "To", "<alice@example.org>");
	want_field(&rp.top, "Subject", "Undelivered Mail Returned to Sender");
	want_field(&rp.top, "Date", "Sun, 29 Nov 2026 01:07:48 +0000");
	want_field(&rp.top, "MIME-Version", "1.0");
	want_field(&rp.top, "Auto-Submitted", "auto-replied");
	v = get(&rp.top, "Message-ID");
	assert_non_null(v);
	assert_true(v[0] == '<' && strstr(v, "@" HOST ">") != NULL && v[strlen(v) - 1] == '>');
	v = get(&rp.top, "Content-Type");
	assert_true(strncmp(v, "multipart/report; report-type=delivery-status;", 46) == 0);
	assert_null(get(&rp.top, "Content-Transfer-Encoding"));
	assert_non_null(strstr(rp.boundary, QID));
	/* the header section is exactly these fields */
	assert_int_equal(rp.top.n, 8);

	assert_int_equal(rp.nparts, 3);
	want_type(&rp, 0, "text/plain");
	want_field(&rp.parts[0].f, "Content-Type", "text/plain; charset=us-ascii");
	want_type(&rp, 1, "message/delivery-status");
	want_type(&rp, 2, "text/rfc822-headers");
	for (size_t i = 0; i < 3; i++)
		assert_null(get(&rp.parts[i].f, "Content-Transfer-Encoding"));

	/* part 1: the address, what happened, the reply */
	assert_true(text_has(rp.parts[0].body, "<bob@example.net>: could not be delivered"));
	assert_true(text_has(rp.parts[0].body, "mx.example.net said: 550 5.1.1"));
	assert_true(text_has(rp.parts[0].body, QID));

	/* part 2 */
	check_groups(&rp, 1);
	want_field(&rp.groups[0], "Reporting-MTA", "dns; " HOST);
	want_field(&rp.groups[0], "Arrival-Date", "Sat, 28 Nov 2026 21:06:40 +0000");
	want_field(&rp.groups[0], "X-Hato-Queue-ID", QID);
	assert_null(get(&rp.groups[0], "Original-Envelope-Id"));
	assert_string_equal(rp.groups[0].name[0], "Reporting-MTA");
	want_field(&rp.groups[1], "Final-Recipient", "rfc822; bob@example.net");
	want_field(&rp.groups[1], "Action", "failed");
	want_field(&rp.groups[1], "Status", "5.1.1");
	want_field(&rp.groups[1], "Remote-MTA", "dns; mx.example.net");
	want_field(&rp.groups[1], "Diagnostic-Code",
		   "smtp; 550 5.1.1 <bob@example.net>: no such user");
	want_field(&rp.groups[1], "Last-Attempt-Date", "Sun, 29 Nov 2026 01:06:48 +0000");
	assert_null(get(&rp.groups[1], "Will-Retry-Until"));
	assert_null(get(&rp.groups[1], "Original-Recipient"));
	assert_string_equal(rp.groups[1].name[0], "Final-Recipient");

	/* part 3: the header section, every line of it, and no body */
	assert_string_equal(rp.parts[2].body, ORIG_HEAD);
	assert_null(strstr(out.s, "SECRETBODY"));
	assert_true(text_has(rp.parts[0].body, "header section of your message is attached"));

	assert_false(built.eightbit);
	assert_false(built.smtputf8);
	assert_false(built.returned_full);
	assert_true(built.returned_any);
	free_report(&rp);
	strbuf_free(&out);
}

/* Two recipients, one with ORCPT, ENVID, RET=FULL: message/rfc822 with
 * the whole original, Original-Envelope-Id and Original-Recipient decoded. */
static void test_two_rcpts_full(void **state)
{
	struct dsn_rcpt rc[2] = {bob_failed,
				 {
					 .addr = "<carol@localhost>",
					 .orcpt = "rfc822;Team+2Bsales@localhost",
					 .action = DSN_ACTION_FAILED,
					 .status = "5.2.2",
					 .diagnostic = "5.2.2 mailbox full",
					 .last_attempt = NOW - 5,
				 }};
	struct dsn_report r = report(rc, 2);
	struct strbuf out;
	struct dsn_built built;
	struct report rp;

	(void)state;
	r.envid = "QQ+2B314159";
	r.ret_full = true;
	build(&r, write_msg(ORIG, strlen(ORIG)), 1 << 20, &out, &built, &rp);

	assert_int_equal(rp.nparts, 3);
	want_type(&rp, 2, "message/rfc822");
	assert_string_equal(rp.parts[2].body, ORIG);
	assert_true(built.returned_full);

	check_groups(&rp, 2);
	want_field(&rp.groups[0], "Original-Envelope-Id", "QQ+314159");
	assert_string_equal(rp.groups[0].name[0], "Original-Envelope-Id");
	assert_null(get(&rp.groups[1], "Original-Recipient"));
	want_field(&rp.groups[2], "Original-Recipient", "rfc822; Team+sales@localhost");
	assert_string_equal(rp.groups[2].name[0], "Original-Recipient");
	want_field(&rp.groups[2], "Final-Recipient", "rfc822; carol@localhost");
	want_field(&rp.groups[2], "Status", "5.2.2");
	/* not a reply from a server: hato's own words, no Remote-MTA */
	want_field(&rp.groups[2], "Diagnostic-Code", "X-Hato; 5.2.2 mailbox full");
	assert_null(get(&rp.groups[2], "Remote-MTA"));
	assert_true(text_has(rp.parts[0].body, "Your message is attached."));
	assert_true(text_has(rp.parts[0].body, "The mail system said: 5.2.2 mailbox full"));
	assert_true(text_has(rp.parts[0].body, "It was addressed to Team+sales@localhost."));
	free_report(&rp);
	strbuf_free(&out);
}

/* RET=FULL for a message over max_full: headers only, and part 1 says why. */
static void test_full_too_big(void **state)
{
	struct dsn_report r = report(&bob_failed, 1);
	struct strbuf out;
	struct dsn_built built;
	struct report rp;

	(void)state;
	r.ret_full = true;
	build(&r, write_msg(ORIG, strlen(ORIG)), strlen(ORIG) - 1, &out, &built, &rp);
	assert_int_equal(rp.nparts, 3);
	want_type(&rp, 2, "text/rfc822-headers");
	assert_null(strstr(out.s, "SECRETBODY"));
	assert_false(built.returned_full);
	assert_true(text_has(rp.parts[0].body, "larger than"));
	free_report(&rp);
	strbuf_free(&out);

	/* exactly max_full octets still goes whole */
	build(&r, write_msg(ORIG, strlen(ORIG)), strlen(ORIG), &out, &built, &rp);
	want_type(&rp, 2, "message/rfc822");
	assert_true(built.returned_full);
	free_report(&rp);
	strbuf_free(&out);
}

/* RET=FULL for a message with a line over 998 octets: headers only. */
static void test_full_long_line(void **state)
{
	struct dsn_report r = report(&bob_failed, 1);
	struct strbuf out, msg;
	struct dsn_built built;
	struct report rp;
	char line[1501];

	(void)state;
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	strbuf_init(&msg);
	strbuf_printf(&msg, "%s\r\nSECRETBODY\r\n%s\r\n", ORIG_HEAD, line);
	r.ret_full = true;
	build(&r, write_msg(msg.s, msg.len), 1 << 20, &out, &built, &rp);
	want_type(&rp, 2, "text/rfc822-headers");
	assert_null(strstr(out.s, "SECRETBODY"));
	assert_true(text_has(rp.parts[0].body, "longer than 998"));
	free_report(&rp);
	strbuf_free(&out);
	strbuf_free(&msg);
}

/* A delay warning: its Subject, Action: delayed, Will-Retry-Until; only
 * the headers even with RET=FULL. */
static void test_delayed(void **state)
{
	struct dsn_rcpt rc = {
		.addr = "<bob@example.net>",
		.action = DSN_ACTION_DELAYED,
		.status = "4.4.1",
		.remote_mta = "mx.example.net",
		.diagnostic = "421 4.4.1 try again later",
		.last_attempt = NOW - 60,
		.retry_until = ARRIVAL + 5 * 86400,
	};
	struct dsn_report r = report(&rc, 1);
	struct strbuf out;
	struct dsn_built built;
	struct report rp;

	(void)state;
	r.ret_full = true;
	build(&r, write_msg(ORIG, strlen(ORIG)), 1 << 20, &out, &built, &rp);
	want_field(&rp.top, "Subject", "Delayed Mail (still being retried)");
	check_groups(&rp, 1);
	want_field(&rp.groups[1], "Action", "delayed");
	want_field(&rp.groups[1], "Status", "4.4.1");
	want_field(&rp.groups[1], "Will-Retry-Until", "Thu, 03 Dec 2026 21:06:40 +0000");
	want_type(&rp, 2, "text/rfc822-headers");
	assert_false(built.returned_full);
	assert_false(text_has(rp.parts[0].body, "You asked for the whole message"));
	assert_true(text_has(rp.parts[0].body, "will keep trying until Thu, 03 Dec 2026"));
	assert_true(text_has(rp.parts[0].body, "not delivered yet"));
	free_report(&rp);
	strbuf_free(&out);
}

/* Success reports: delivered, relayed, expanded; no Will-Retry-Until
 * outside a delay; a failure among them makes it a bounce. */
static void test_success(void **state)
{
	struct dsn_rcpt rc[3] = {
		{.addr = "<a@localhost>",
		 .action = DSN_ACTION_DELIVERED,
		 .status = "2.0.0",
		 .retry_until = NOW + 100},
		{.addr = "<b@example.net>",
		 .action = DSN_ACTION_RELAYED,
		 .status = "2.0.0",
		 .remote_mta = "mx.example.net",
		 .diagnostic = "250 2.0.0 ok"},
		{.addr = "<list@localhost>", .action = DSN_ACTION_EXPANDED},
	};
	struct dsn_report r = report(rc, 3);
	struct strbuf out;
	struct report rp;

	(void)state;
	build(&r, write_msg(ORIG, strlen(ORIG)), 1 << 20, &out, NULL, &rp);
	want_field(&rp.top, "Subject", "Successful Mail Delivery Report");
	check_groups(&rp, 3);
	want_field(&rp.groups[1], "Action", "delivered");
	assert_null(get(&rp.groups[1], "Will-Retry-Until"));
	assert_null(get(&rp.groups[1], "Last-Attempt-Date"));
	want_field(&rp.groups[2], "Action", "relayed");
	want_field(&rp.groups[2], "Diagnostic-Code", "smtp; 250 2.0.0 ok");
	want_field(&rp.groups[3], "Action", "expanded");
	want_field(&rp.groups[3], "Status", "2.0.0"); /* none given: X.0.0 of the class */
	want_type(&rp, 2, "text/rfc822-headers");
	assert_true(text_has(rp.parts[0].body, "<a@localhost>: delivered."));
	assert_true(text_has(rp.parts[0].body, "<b@example.net>: relayed to mx.example.net"));
	free_report(&rp);
	strbuf_free(&out);

	rc[1].action = DSN_ACTION_FAILED;
	rc[1].status = "5.0"; /* malformed: 5.0.0 */
	build(&r, write_msg(ORIG, strlen(ORIG)), 1 << 20, &out, NULL, &rp);
	want_field(&rp.top, "Subject", "Undelivered Mail Returned to Sender");
	want_field(&rp.groups[2], "Status", "5.0.0");
	free_report(&rp);
	strbuf_free(&out);
}

/* A diagnostic with CR, LF and a forged part boundary, and a very long
 * one: CRLF lines only, none over 998, the structure intact. */
static void test_hostile_diagnostics(void **state)
{
	struct dsn_rcpt rc[2] = {bob_failed, bob_failed};
	struct dsn_report r = report(rc, 2);
	struct strbuf out, big;
	struct report rp;
	const char *d;

	(void)state;
	strbuf_init(&big);
	strbuf_adds(&big, "550 5.7.1 ");
	for (int i = 0; i < 300; i++)
		strbuf_adds(&big, "blocked ");
	for (int i = 0; i < 3000; i++)
		strbuf_add(&big, "y", 1);
	rc[0].diagnostic = "550-5.1.1 first\r\n550-5.1.1 second\nthird\r\rfourth\r\n\r\n"
			   "--=_hato_x\r\nContent-Type: text/html\r\n\r\n550 5.1.1 end";
	rc[1].diagnostic = big.s;
	rc[1].remote_mta = "mx\r\nX-Evil: 1";
	build(&r, write_msg(ORIG, strlen(ORIG)), 1 << 20, &out, NULL, &rp);

	assert_int_equal(rp.nparts, 3);
	check_groups(&rp, 2);
	want_field(&rp.groups[1], "Diagnostic-Code",
		   "smtp; 550-5.1.1 first 550-5.1.1 second third fourth --=_hato_x "
		   "Content-Type: text/html 550 5.1.1 end");
	want_field(&rp.groups[2], "Remote-MTA", "dns; mx X-Evil: 1");
	assert_null(get(&rp.groups[2], "X-Evil"));
	d = get(&rp.groups[2], "Diagnostic-Code");
	assert_non_null(d);
	/* cut, marked, and the folding only ever added the spaces it folds at */
	assert_true(strlen(d) < DSN_DIAG_MAX + 100);
	assert_true(strlen(d) > DSN_DIAG_MAX - 100);
	assert_string_equal(d + strlen(d) - 3, "...");
	assert_true(strncmp(d, "smtp; 550 5.7.1 blocked blocked", 31) == 0);
	/* the forged boundary stayed inside its field and the text part */
	for (size_t i = 0; i < rp.nparts; i++)
		assert_null(get(&rp.parts[i].f, "X-Evil"));
	free_report(&rp);
	strbuf_free(&out);
	strbuf_free(&big);
}

/* Originals without a body, without the empty line, without a last CRLF,
 * with a body that starts without the empty line, empty, and none at all. */
static void test_original_shapes(void **state)
{
	static const struct {
		const char *msg, *head, *whole;
	} cases[] = {
		{"Received: x\r\nSubject: s\r\n\r\n", "Received: x\r\nSubject: s\r\n",
		 "Received: x\r\nSubject: s\r\n\r\n"},
		{"Received: x\r\nSubject: s\r\n", "Received: x\r\nSubject: s\r\n",
		 "Received: x\r\nSubject: s\r\n"},
		{"Received: x\r\nSubject: s", "Received: x\r\nSubject: s\r\n",
		 "Received: x\r\nSubject: s\r\n"},
		{"Received: x\r\nSubject: s\r\nhello world\r\n", "Received: x\r\nSubject: s\r\n",
		 "Received: x\r\nSubject: s\r\n\r\nhello world\r\n"},
		{"Received: x\nSubject: s\n\nbody\n", "Received: x\r\nSubject: s\r\n",
		 "Received: x\r\nSubject: s\r\n\r\nbody\r\n"},
		{"Received: x\r\n folded\r\nSubject: s\r\n\r\nb\r\n",
		 "Received: x\r\n folded\r\nSubject: s\r\n",
		 "Received: x\r\n folded\r\nSubject: s\r\n\r\nb\r\n"},
		{"Received: x\r\nSubject: s\r\n\r\nstray\rCR\r\n", "Received: x\r\nSubject: s\r\n",
		 "Received: x\r\nSubject: s\r\n\r\nstray CR\r\n"},
	};
	struct dsn_report r = report(&bob_failed, 1);
	struct strbuf out;
	struct dsn_built built;
	struct report rp;
	char err[256];
	int fd;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = write_msg(cases[i].msg, strlen(cases[i].msg));

		r.ret_full = false;
		build(&r, path, 1 << 20, &out, &built, &rp);
		assert_int_equal(rp.nparts, 3);
		want_type(&rp, 2, "text/rfc822-headers");
		assert_string_equal(rp.parts[2].body, cases[i].head);
		free_report(&rp);
		strbuf_free(&out);

		r.ret_full = true;
		build(&r, path, 1 << 20, &out, &built, &rp);
		want_type(&rp, 2, "message/rfc822");
		assert_string_equal(rp.parts[2].body, cases[i].whole);
		free_report(&rp);
		strbuf_free(&out);
	}

	/* empty: no part 3, and part 1 says so */
	build(&r, write_msg("", 0), 1 << 20, &out, &built, &rp);
	assert_int_equal(rp.nparts, 2);
	assert_false(built.returned_any);
	assert_true(text_has(rp.parts[0].body, "empty"));
	check_groups(&rp, 1);
	free_report(&rp);
	strbuf_free(&out);

	/* no original at all */
	build(&r, NULL, 1 << 20, &out, &built, &rp);
	assert_int_equal(rp.nparts, 2);
	assert_false(built.returned_any);
	free_report(&rp);
	strbuf_free(&out);

	/* an original that cannot be read is an error; out is left alone */
	strbuf_init(&out);
	strbuf_adds(&out, "keep");
	fd = open("/", O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_false(dsn_build(&r, fd, 100, 1 << 20, &out, NULL, err, sizeof(err)));
	close(fd);
	assert_int_equal(errno, EISDIR);
	assert_non_null(strstr(err, "reading the queued message"));
	assert_string_equal(out.s, "keep");
	strbuf_free(&out);
}

/* A huge header section is cut at DSN_HEADERS_MAX, a header line over 998
 * octets at 998; part 1 says both. */
static void test_huge_headers(void **state)
{
	struct dsn_report r = report(&bob_failed, 1);
	struct strbuf msg, out;
	struct report rp;
	char line[2001];

	(void)state;
	memset(line, 'h', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	strbuf_init(&msg);
	strbuf_printf(&msg, "Received: x\r\nX-Long: %s\r\n", line);
	for (int i = 0; msg.len < 3 * DSN_HEADERS_MAX; i++)
		strbuf_printf(&msg, "X-Filler-%d: %.60s\r\n", i, line);
	strbuf_adds(&msg, "\r\nSECRETBODY\r\n");
	build(&r, write_msg(msg.s, msg.len), 1 << 20, &out, NULL, &rp);
	assert_true(rp.parts[2].len <= DSN_HEADERS_MAX);
	assert_true(rp.parts[2].len > DSN_HEADERS_MAX - 2000); /* X-Long lost 1002 */
	assert_non_null(strstr(rp.parts[2].body, "X-Long: hhh"));
	assert_null(strstr(out.s, "SECRETBODY"));
	assert_true(text_has(rp.parts[0].body, "is cut"));
	assert_true(text_has(rp.parts[0].body, "Header lines longer than 998"));
	free_report(&rp);
	strbuf_free(&out);
	strbuf_free(&msg);
}

/* 8-bit header section: the RFC 6533 types; 8-bit body only: message/rfc822 8bit. */
static void test_8bit(void **state)
{
	static const char h8[] = "Received: x\r\nSubject: h\xc3\xa9llo\r\n\r\nbody\r\n";
	static const char b8[] = "Received: x\r\nSubject: hello\r\n\r\nb\xc3\xb6\x64y\r\n";
	struct dsn_report r = report(&bob_failed, 1);
	struct strbuf out;
	struct dsn_built built;
	struct report rp;

	(void)state;
	build(&r, write_msg(h8, strlen(h8)), 1 << 20, &out, &built, &rp);
	assert_true(strncmp(get(&rp.top, "Content-Type"),
			    "multipart/report; report-type=global-delivery-status;", 53) == 0);
	want_field(&rp.top, "Content-Transfer-Encoding", "8bit");
	want_field(&rp.parts[0].f, "Content-Type", "text/plain; charset=utf-8");
	want_type(&rp, 1, "message/global-delivery-status");
	want_type(&rp, 2, "message/global-headers");
	want_field(&rp.parts[2].f, "Content-Transfer-Encoding", "8bit");
	assert_non_null(strstr(rp.parts[2].body, "Subject: h\xc3\xa9llo"));
	want_field(&rp.groups[1], "Final-Recipient", "rfc822; bob@example.net");
	assert_true(built.eightbit);
	assert_true(built.smtputf8);
	free_report(&rp);
	strbuf_free(&out);

	r.ret_full = true;
	build(&r, write_msg(h8, strlen(h8)), 1 << 20, &out, &built, &rp);
	want_type(&rp, 2, "message/global");
	free_report(&rp);
	strbuf_free(&out);

	build(&r, write_msg(b8, strlen(b8)), 1 << 20, &out, &built, &rp);
	assert_true(strncmp(get(&rp.top, "Content-Type"),
			    "multipart/report; report-type=delivery-status;", 46) == 0);
	want_type(&rp, 1, "message/delivery-status");
	want_type(&rp, 2, "message/rfc822");
	want_field(&rp.parts[2].f, "Content-Transfer-Encoding", "8bit");
	assert_null(get(&rp.parts[0].f, "Content-Transfer-Encoding"));
	assert_true(built.eightbit);
	assert_false(built.smtputf8);
	free_report(&rp);
	strbuf_free(&out);
}

/* A UTF-8 recipient: utf-8 address type in message/global-delivery-status;
 * an invalid 8-bit diagnostic is made ASCII in an ASCII report. */
static void test_utf8_addresses(void **state)
{
	struct dsn_rcpt rc = bob_failed;
	struct dsn_report r = report(&rc, 1);
	struct strbuf out;
	struct dsn_built built;
	struct report rp;

	(void)state;
	rc.addr = "<j\xc3\xb6rg@example.de>";
	rc.diagnostic = "550 5.1.1 unbekannt: j\xc3\xb6rg";
	build(&r, write_msg(ORIG, strlen(ORIG)), 1 << 20, &out, &built, &rp);
	want_type(&rp, 1, "message/global-delivery-status");
	want_field(&rp.groups[1], "Final-Recipient", "utf-8; j\xc3\xb6rg@example.de");
	want_field(&rp.groups[1], "Diagnostic-Code", "smtp; 550 5.1.1 unbekannt: j\xc3\xb6rg");
	want_type(&rp, 2, "message/global-headers");
	assert_true(built.smtputf8);
	assert_true(text_has(rp.parts[0].body, "<j\xc3\xb6rg@example.de>: could not"));
	free_report(&rp);
	strbuf_free(&out);

	rc = bob_failed;
	rc.diagnostic = "550 5.1.1 bad \xff\xfe octets";
	build(&r, write_msg(ORIG, strlen(ORIG)), 1 << 20, &out, &built, &rp);
	want_type(&rp, 1, "message/delivery-status");
	want_field(&rp.groups[1], "Diagnostic-Code", "smtp; 550 5.1.1 bad ?? octets");
	assert_false(built.eightbit);
	free_report(&rp);
	strbuf_free(&out);
}

/* ORCPT and ENVID that are not well-formed xtext, or decode to control
 * characters, are kept as given; ORCPT without a type is "unknown". */
static void test_xtext_kept(void **state)
{
	struct dsn_rcpt rc[3] = {bob_failed, bob_failed, bob_failed};
	struct dsn_report r = report(rc, 3);
	struct strbuf out;
	struct report rp;

	(void)state;
	rc[0].orcpt = "rfc822;a+0Ab@example.net";
	rc[1].orcpt = "rfc822;a+Zb@example.net";
	rc[2].orcpt = "a@example.net";
	r.envid = "id+0D+0A";
	build(&r, NULL, 0, &out, NULL, &rp);
	want_field(&rp.groups[0], "Original-Envelope-Id", "id+0D+0A");
	want_field(&rp.groups[1], "Original-Recipient", "rfc822; a+0Ab@example.net");
	want_field(&rp.groups[2], "Original-Recipient", "rfc822; a+Zb@example.net");
	want_field(&rp.groups[3], "Original-Recipient", "unknown; a@example.net");
	free_report(&rp);
	strbuf_free(&out);
}

/* Reports that cannot be: no sender, the null sender, no recipients, no hostname. */
static void test_refused(void **state)
{
	struct dsn_report r = report(&bob_failed, 1);
	struct strbuf out;
	char err[256];

	(void)state;
	strbuf_init(&out);
	r.to = "<>";
	assert_false(dsn_build(&r, -1, 0, 0, &out, NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	r.to = NULL;
	assert_false(dsn_build(&r, -1, 0, 0, &out, NULL, err, sizeof(err)));
	r = report(&bob_failed, 0);
	assert_false(dsn_build(&r, -1, 0, 0, &out, NULL, err, sizeof(err)));
	r = report(&bob_failed, 1);
	r.hostname = "";
	assert_false(dsn_build(&r, -1, 0, 0, &out, NULL, err, sizeof(err)));
	assert_int_equal(out.len, 0);
	strbuf_free(&out);
}

/* Two reports of the same message differ in Message-ID and boundary. */
static void test_unique_ids(void **state)
{
	struct dsn_report r = report(&bob_failed, 1);
	struct strbuf out1, out2;
	struct report rp1, rp2;

	(void)state;
	build(&r, NULL, 0, &out1, NULL, &rp1);
	build(&r, NULL, 0, &out2, NULL, &rp2);
	assert_string_not_equal(get(&rp1.top, "Message-ID"), get(&rp2.top, "Message-ID"));
	assert_string_not_equal(rp1.boundary, rp2.boundary);
	free_report(&rp1);
	free_report(&rp2);
	strbuf_free(&out1);
	strbuf_free(&out2);
}

/* Random bytes of every kind in every input, 300 times (a fixed seed): the
 * report always reads back with one group per recipient and three parts. */
static void test_random_inputs(void **state)
{
	static const char alphabet[] = "ab:; <>@+=-\r\n\t\x01\x7f\xc3\xa9\xff"
				       "0123456789";
	unsigned seed = 12345;
	struct strbuf out, msg;
	struct report rp;

	(void)state;
	for (int iter = 0; iter < 300; iter++) {
		char diag[3000], mta[64], orcpt[80], envid[40], to[40];
		struct dsn_rcpt rc[2] = {bob_failed, bob_failed};
		struct dsn_report r = report(rc, 2);
		char *fields[] = {diag, mta, orcpt, envid, to};
		size_t sizes[] = {sizeof(diag), sizeof(mta), sizeof(orcpt), sizeof(envid),
				  sizeof(to)};

		for (size_t f = 0; f < 5; f++) {
			size_t n = (size_t)rand_r(&seed) % sizes[f];

			for (size_t i = 0; i < n; i++)
				fields[f][i] =
					alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
			fields[f][n] = '\0';
		}
		to[0] = '<';
		rc[0].diagnostic = diag;
		rc[1].remote_mta = mta;
		rc[1].orcpt = orcpt;
		rc[1].action = (enum dsn_action)(rand_r(&seed) % 5);
		r.envid = envid;
		r.to = strlen(to) > 1 ? to : "<x@y>";
		r.ret_full = rand_r(&seed) % 2;
		strbuf_init(&msg);
		for (int l = rand_r(&seed) % 40; l > 0; l--) {
			int len = rand_r(&seed) % (l == 20 ? 1500 : 80);

			for (int i = 0; i < len; i++)
				strbuf_add(
					&msg,
					&alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)],
					1);
			strbuf_adds(&msg, rand_r(&seed) % 4 ? "\r\n" : "\n");
		}
		build(&r, write_msg(msg.s, msg.len), (uint64_t)(rand_r(&seed) % 4000), &out, NULL,
		      &rp);
		assert_true(rp.nparts == 3 || (rp.nparts == 2 && msg.len == 0));
		check_groups(&rp, 2);
		free_report(&rp);
		strbuf_free(&out);
		strbuf_free(&msg);
	}
}

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/hato-test-dsn.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	for (unsigned i = 0; i < nmsgs; i++) {
		snprintf(path, sizeof(path), "%s/msg%u", tmpdir, i);
		unlink(path);
	}
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_headers_only),
		cmocka_unit_test(test_two_rcpts_full),
		cmocka_unit_test(test_full_too_big),
		cmocka_unit_test(test_full_long_line),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_hostile_diagnostics),
		cmocka_unit_test(test_original_shapes),
		cmocka_unit_test(test_huge_headers),
		cmocka_unit_test(test_8bit),
		cmocka_unit_test(test_utf8_addresses),
		cmocka_unit_test(test_xtext_kept),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_unique_ids),
		cmocka_unit_test(test_random_inputs),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, setup, teardown);
}
