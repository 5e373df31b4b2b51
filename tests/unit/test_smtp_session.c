/*
 * test_smtp_session.c - unit tests for the SMTP server session
 * (src/smtp/smtp_session.c, smtp_commands.c), driven in-process: a real
 * session on one end of a socketpair, the test as its client on the other,
 * one event base turned by the test, a real queue, user table and scheduler
 * (deliveries held) in a temporary state directory.
 *
 * A focused set: the greeting and EHLO, a transaction that ends in
 * "250 ... queued as ID" with the message queued (queue_read) through intake,
 * a mail loop refused at the dot with nothing queued, commands out of
 * sequence, RSET, a pipelined batch answered in order, and QUIT closing the
 * connection and freeing the session.  tests/dialog/ pins every edge case
 * against the real daemon; this file checks the session's wiring where a
 * debugger and the sanitizers reach it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "conf.h"
#include "queue.h"
#include "scheduler.h"
#include "server.h"
#include "smtp_session.h"
#include "spool_fixture.h"
#include "users.h"
#include "util.h"

#define HOST "mx.test.example"
#define REPLY_WAIT_MS 5000 /* a reply later than this fails the test */

struct fixture {
	char dir[64];
	struct server srv;
	struct listener l;
	int client;    /* our end of the socketpair */
	char in[8192]; /* what the session sent, not yet taken */
	size_t inlen;
	char reply[8192]; /* the last complete reply */
};

/* The configuration: one plain listener, a local domain taking anyone. */
static bool write_conf(const char *dir, char *path, size_t size)
{
	FILE *fp;

	snprintf(path, size, "%s/hato.conf", dir);
	fp = fopen(path, "w");
	if (fp == NULL)
		return false;
	fprintf(fp,
		"[server]\nstate_dir = %s/state\nhostname = " HOST "\n"
		"local_domains = localhost\nreverse_dns = no\n"
		"[limits]\nreceived_max = 3\nmin_free_space = 0\n"
		"[delivery]\nhold = yes\n"
		"[domain localhost]\nmailboxes = *\n"
		"[listener smtp]\naddress = 127.0.0.1:2525\ntls = none\ngreeting_delay = 0\n",
		dir);
	return fclose(fp) == 0;
}

/* A server with a queue and a scheduler, and one session on a socketpair. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
	char path[128], err[256];
	int sv[2];

	strcpy(f->dir, "/tmp/hato-test-session.XXXXXX");
	if (f == NULL || mkdtemp(f->dir) == NULL || !write_conf(f->dir, path, sizeof(path)))
		return -1;
	f->srv.conf = conf_load(path, err, sizeof(err));
	if (f->srv.conf == NULL) {
		fprintf(stderr, "conf: %s\n", err);
		return -1;
	}
	if (!mkdir_parents(f->srv.conf->state_dir, 0700))
		return -1;
	f->srv.base = event_base_new();
	f->srv.queue = queue_open(f->srv.conf->state_dir, 1, false, f->srv.base, err, sizeof(err));
	if (f->srv.queue == NULL) {
		fprintf(stderr, "queue: %s\n", err);
		return -1;
	}
	f->srv.users = userdb_open(f->srv.conf->users_file, err, sizeof(err));
	if (f->srv.users == NULL) {
		fprintf(stderr, "users: %s\n", err);
		return -1;
	}
	f->srv.scheduler = scheduler_new(f->srv.conf, f->srv.base, f->srv.queue);
	f->l.srv = &f->srv;
	f->l.lc = &f->srv.conf->listeners[0];
	strcpy(f->l.local_addr, "127.0.0.1");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	evutil_make_socket_nonblocking(sv[0]);
	f->client = sv[1];
	inet_pton(AF_INET, "192.0.2.7", &peer.sin_addr);
	smtp_session_new(&f->l, sv[0], (struct sockaddr *)&peer, sizeof(peer));
	*state = f;
	return 0;
}

/* Turn the loop until the session has gone (it saw our end close). */
static void drain_sessions(struct fixture *f)
{
	for (int i = 0; i < 500 && f->srv.nsessions > 0; i++) {
		event_base_loop(f->srv.base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

/* Close the client, let the session go, release the server. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->client);
	drain_sessions(f);
	assert_int_equal(f->srv.nsessions, 0);
	scheduler_stop(f->srv.scheduler);
	queue_close(f->srv.queue);
	scheduler_free(f->srv.scheduler);
	userdb_free(f->srv.users);
	server_free(&f->srv);
	event_base_free(f->srv.base);
	conf_free(f->srv.conf);
	spool_rm_tree(f->dir);
	free(f);
	return 0;
}

/* Milliseconds on a monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Length of the complete reply at the start of in (its last line is
 * "NNN text\r\n"), 0 while it is not all there. */
static size_t complete_reply(const char *in, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(in + pos, '\n', len - pos);
		size_t end;

		if (nl == NULL)
			return 0;
		end = (size_t)(nl - in) + 1;
		if (end - pos >= 4 && in[pos + 3] == ' ')
			return end;
		pos = end;
	}
	return 0;
}

/* Run the session until one whole reply came; it is in f->reply, without
 * its last CRLF.  Fails the test after REPLY_WAIT_MS. */
static const char *reply(struct fixture *f)
{
	long long deadline = now_ms() + REPLY_WAIT_MS;
	size_t n;

	while ((n = complete_reply(f->in, f->inlen)) == 0) {
		struct pollfd p = {.fd = f->client, .events = POLLIN};
		ssize_t r;

		if (now_ms() > deadline)
			fail_msg("no reply; so far: \"%.*s\"", (int)f->inlen, f->in);
		event_base_loop(f->srv.base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 5) <= 0)
			continue;
		r = read(f->client, f->in + f->inlen, sizeof(f->in) - f->inlen);
		if (r <= 0)
			fail_msg("connection closed; so far: \"%.*s\"", (int)f->inlen, f->in);
		f->inlen += (size_t)r;
	}
	memcpy(f->reply, f->in, n - 2);
	f->reply[n - 2] = '\0';
	memmove(f->in, f->in + n, f->inlen - n);
	f->inlen -= n;
	return f->reply;
}

/* Send text as it is. */
static void send_raw(struct fixture *f, const char *text)
{
	size_t len = strlen(text);

	assert_int_equal(write(f->client, text, len), (ssize_t)len);
}

/* Send one command line; its reply. */
static const char *cmd(struct fixture *f, const char *line)
{
	send_raw(f, line);
	send_raw(f, "\r\n");
	return reply(f);
}

/* Greeting and EHLO, as every test starts. */
static void hello(struct fixture *f)
{
	assert_string_equal(reply(f), "220 " HOST " ESMTP hato");
	assert_non_null(strstr(cmd(f, "EHLO client.example"), "250 "));
}

/* MAIL and RCPT accepted. */
static void envelope(struct fixture *f)
{
	assert_string_equal(cmd(f, "MAIL FROM:<a@client.example>"), "250 2.1.0 Sender OK");
	assert_string_equal(cmd(f, "RCPT TO:<b@localhost>"), "250 2.1.5 Recipient OK");
}

/* The queue ID of a "250 2.0.0 OK queued as ID" reply, or fail. */
static void queued_id(const char *r, char id[QUEUE_ID_LEN + 1])
{
	const char *pre = "250 2.0.0 OK queued as ";

	if (strncmp(r, pre, strlen(pre)) != 0 || strlen(r) != strlen(pre) + QUEUE_ID_LEN)
		fail_msg("not queued: \"%s\"", r);
	memcpy(id, r + strlen(pre), QUEUE_ID_LEN + 1);
}

/* The message queued as id (queue_read), NUL-terminated. */
static char *queued_message(const struct fixture *f, const char *id)
{
	uint64_t len;
	int fd = queue_read(f->srv.queue, id, &len);
	char *buf;

	if (fd < 0)
		fail_msg("no message %s", id);
	buf = xmalloc(len + 1);
	assert_int_equal(read(fd, buf, len), (ssize_t)len);
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* Messages in STATE/queue. */
static int queued_count(const struct fixture *f)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/queue", f->srv.conf->state_dir);
	return spool_count(path);
}

/* 220, then EHLO lists our name and the extensions of a plain listener. */
static void test_greeting_and_ehlo(void **state)
{
	struct fixture *f = *state;
	const char *r;

	assert_string_equal(reply(f), "220 " HOST " ESMTP hato");
	r = cmd(f, "EHLO client.example");
	assert_true(strncmp(r, "250-" HOST " ", strlen("250-" HOST " ")) == 0);
	assert_non_null(strstr(r, "\r\n250-PIPELINING\r\n"));
	assert_non_null(strstr(r, "\r\n250-SIZE "));
	assert_null(strstr(r, "STARTTLS")); /* tls = none */
	assert_null(strstr(r, "AUTH"));
	assert_string_equal(cmd(f, "HELO again.example"),
			    "250 " HOST " Hello again.example [192.0.2.7]");
}

/* A transaction: 354, the dot, 250 queued as ID, the file committed with
 * our Received: and the message dot-unstuffed; the session goes on. */
static void test_transaction_queued(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1], id2[QUEUE_ID_LEN + 1], *m;

	hello(f);
	envelope(f);
	assert_string_equal(cmd(f, "DATA"), "354 End data with <CR><LF>.<CR><LF>");
	send_raw(f, "Subject: t\r\n\r\n..dotted\r\nend\r\n.\r\n");
	queued_id(reply(f), id);
	m = queued_message(f, id);
	assert_true(strncmp(m, "Received: from client.example (unknown [192.0.2.7])\r\n",
			    strlen("Received: from client.example (unknown [192.0.2.7])\r\n")) ==
		    0);
	assert_non_null(strstr(m, "\tby " HOST " (hato) with ESMTP id "));
	assert_non_null(strstr(m, "\r\n\tfor <b@localhost>;\r\n"));
	assert_non_null(strstr(m, "\r\nSubject: t\r\n\r\n.dotted\r\nend\r\n"));
	assert_string_equal(strstr(m, "\r\nSubject: t"),
			    "\r\nSubject: t\r\n\r\n.dotted\r\nend\r\n");
	free(m);
	/* the next transaction in the same session gets its own ID */
	envelope(f);
	assert_string_equal(cmd(f, "DATA"), "354 End data with <CR><LF>.<CR><LF>");
	send_raw(f, "x\r\n.\r\n");
	queued_id(reply(f), id2);
	assert_string_not_equal(id, id2);
	assert_int_equal(queued_count(f), 2);
}

/* More Received: fields than received_max: 554 5.4.6 at the dot, nothing
 * queued, and the session takes the next transaction. */
static void test_mail_loop_refused(void **state)
{
	struct fixture *f = *state;

	hello(f);
	envelope(f);
	assert_string_equal(cmd(f, "DATA"), "354 End data with <CR><LF>.<CR><LF>");
	send_raw(f, "Received: a\r\nReceived: b\r\nReceived: c\r\nReceived: d\r\n\r\nx\r\n.\r\n");
	assert_string_equal(reply(f), "554 5.4.6 Too many Received headers, mail loop suspected");
	assert_int_equal(queued_count(f), 0);
	envelope(f);
}

/* Commands out of order: 503 (554 for DATA without a recipient). */
static void test_bad_sequence(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(reply(f), "220 " HOST " ESMTP hato");
	assert_string_equal(cmd(f, "MAIL FROM:<a@client.example>"),
			    "503 5.5.1 Bad sequence of commands");
	assert_non_null(strstr(cmd(f, "EHLO client.example"), "250 "));
	assert_string_equal(cmd(f, "RCPT TO:<b@localhost>"), "503 5.5.1 Bad sequence of commands");
	assert_string_equal(cmd(f, "DATA"), "503 5.5.1 Bad sequence of commands");
	assert_string_equal(cmd(f, "MAIL FROM:<a@client.example>"), "250 2.1.0 Sender OK");
	assert_string_equal(cmd(f, "MAIL FROM:<a@client.example>"),
			    "503 5.5.1 Bad sequence of commands");
	assert_string_equal(cmd(f, "DATA"), "554 5.5.1 No valid recipients");
	assert_int_equal(queued_count(f), 0);
}

/* RSET drops the transaction: DATA has no recipient; MAIL starts afresh. */
static void test_rset(void **state)
{
	struct fixture *f = *state;

	hello(f);
	envelope(f);
	assert_string_equal(cmd(f, "RSET"), "250 2.0.0 Reset OK");
	assert_string_equal(cmd(f, "DATA"), "503 5.5.1 Bad sequence of commands");
	envelope(f);
	assert_string_equal(cmd(f, "DATA"), "354 End data with <CR><LF>.<CR><LF>");
	send_raw(f, "RSET\r\n.\r\n"); /* inside DATA a line of text, not a command */
	assert_non_null(strstr(reply(f), "queued as"));
}

/* A pipelined batch (RFC 2920): every reply, in order. */
static void test_pipelined(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1];

	hello(f);
	send_raw(f, "MAIL FROM:<a@client.example>\r\nRCPT TO:<b@localhost>\r\n"
		    "RCPT TO:<c@localhost>\r\nDATA\r\n");
	assert_string_equal(reply(f), "250 2.1.0 Sender OK");
	assert_string_equal(reply(f), "250 2.1.5 Recipient OK");
	assert_string_equal(reply(f), "250 2.1.5 Recipient OK");
	assert_string_equal(reply(f), "354 End data with <CR><LF>.<CR><LF>");
	send_raw(f, "two recipients\r\n.\r\nNOOP\r\n");
	queued_id(reply(f), id);
	assert_string_equal(reply(f), "250 2.0.0 OK");
}

/* QUIT: 221, then the connection closes and the session is gone. */
static void test_quit(void **state)
{
	struct fixture *f = *state;
	char buf[64];
	long long deadline = now_ms() + REPLY_WAIT_MS;
	ssize_t r;

	hello(f);
	assert_int_equal(f->srv.nsessions, 1);
	assert_string_equal(cmd(f, "QUIT"), "221 2.0.0 Bye");
	for (;;) {
		struct pollfd p = {.fd = f->client, .events = POLLIN};

		assert_true(now_ms() < deadline);
		event_base_loop(f->srv.base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 5) <= 0)
			continue;
		r = read(f->client, buf, sizeof(buf));
		assert_true(r <= 0); /* nothing after the 221 */
		break;
	}
	drain_sessions(f);
	assert_int_equal(f->srv.nsessions, 0);
	assert_null(f->srv.sessions);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_greeting_and_ehlo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transaction_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mail_loop_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
