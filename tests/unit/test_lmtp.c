/*
 * test_lmtp.c - unit tests for src/mda/lmtp.c against a scripted fake LMTP
 * server: a thread of the test listening on a unix socket in a mkdtemp()
 * directory, answering one session from a per-test script and recording
 * the commands and the raw DATA bytes it received.
 *
 * The fake offers PIPELINING, as Dovecot does, unless a test says not to,
 * and answers DATA with 503 when no recipient was accepted (RFC 2033 §4.2).
 *
 * Covered: all recipients accepted; a recipient refused at RCPT (PERMFAIL
 * for that one only, the others delivered); one 452 among the replies after
 * the dot (TEMPFAIL for that one only); the server closing mid-data and a
 * silent server (every recipient TEMPFAIL 4.4.2, promptly); dot-stuffing as
 * seen by the server; a refused MAIL FROM (lock-step: no RCPT follows); a
 * 421 at RCPT; a refused connection (4.4.1); a garbled reply; reply codes
 * without enhanced status codes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lmtp.h"
#include "queued_file.h"

#define MSG "Subject: hi\r\n\r\nhello\r\n"
#define MAX_RCPTS 8

/* How the fake server behaves after DATA, or instead of talking at all. */
enum fake_mode {
	FAKE_NORMAL,
	FAKE_CLOSE_MID_DATA, /* read a little of the message, then close */
	FAKE_SILENT,         /* accept and never say a word */
};

/* One test: the socket, the script, and what the server saw. */
struct fake {
	char root[64];
	char sock[128];
	char target[140];
	char msg[128];
	int lfd;
	pthread_t th;
	bool started;
	/* the script */
	enum fake_mode mode;
	bool no_pipelining;                  /* LHLO does not offer PIPELINING */
	const char *greeting;                /* NULL: "220 fake LMTP" */
	const char *mail_reply;              /* NULL: "250 2.1.0 Ok" */
	const char *rcpt_replies[MAX_RCPTS]; /* per RCPT; NULL: "250 2.1.5 Ok" */
	const char *data_replies[MAX_RCPTS]; /* per accepted recipient; NULL: "250 2.0.0 Saved" */
	/* what it saw */
	char cmds[2048]; /* command lines without CRLF, each followed by '\n' */
	char *data;      /* DATA bytes as received (dot-stuffed, final dot included) */
	size_t datalen;
};

/* Remove one entry during the depth-first walk. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Send one reply line (CRLF added); errors are the client's business. */
static void say(int fd, const char *line)
{
	char buf[600];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line);

	if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0)
		return;
}

/* Append a line to what the server saw. */
static void note(struct fake *f, const char *line)
{
	size_t len = strlen(f->cmds);

	snprintf(f->cmds + len, sizeof(f->cmds) - len, "%s\n", line);
}

/* Read the client's message (until "\r\n.\r\n" at a line start) into f->data. */
static bool read_data(struct fake *f, FILE *in)
{
	char line[4096];
	size_t cap = 1 << 16;

	f->data = malloc(cap);
	f->datalen = 0;
	while (fgets(line, sizeof(line), in) != NULL) {
		size_t len = strlen(line);

		if (f->datalen + len + 1 > cap) {
			cap = 2 * (f->datalen + len + 1);
			f->data = realloc(f->data, cap);
		}
		memcpy(f->data + f->datalen, line, len);
		f->datalen += len;
		f->data[f->datalen] = '\0';
		if (f->mode == FAKE_CLOSE_MID_DATA)
			return false;
		if (strcmp(line, ".\r\n") == 0)
			return true;
	}
	return false;
}

/* The fake server: one session by the script, then close. */
static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd p = {.fd = f->lfd, .events = POLLIN};
	char line[1024];
	size_t nrcpt = 0, naccepted = 0;
	bool mail_ok = false;
	FILE *in;
	int fd;

	if (poll(&p, 1, 10000) != 1 || (fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	in = fdopen(dup(fd), "r");
	if (f->mode == FAKE_SILENT) {
		while (fgets(line, sizeof(line), in) != NULL) /* until the client gives up */
			note(f, "unexpected input");
		goto out;
	}
	say(fd, f->greeting ? f->greeting : "220 fake LMTP");
	while (fgets(line, sizeof(line), in) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		note(f, line);
		if (strncmp(line, "LHLO ", 5) == 0) {
			say(fd, "250-fake");
			if (!f->no_pipelining)
				say(fd, "250-PIPELINING");
			say(fd, "250 ENHANCEDSTATUSCODES");
		} else if (strncmp(line, "MAIL FROM:", 10) == 0) {
			mail_ok = f->mail_reply == NULL || f->mail_reply[0] == '2';
			say(fd, f->mail_reply ? f->mail_reply : "250 2.1.0 Ok");
		} else if (strncmp(line, "RCPT TO:", 8) == 0) {
			const char *r = nrcpt < MAX_RCPTS ? f->rcpt_replies[nrcpt] : NULL;

			nrcpt++;
			if (mail_ok && (r == NULL || r[0] == '2'))
				naccepted++;
			say(fd, r ? r : "250 2.1.5 Ok");
		} else if (strcmp(line, "DATA") == 0 && naccepted == 0) {
			say(fd, "503 5.5.1 No valid recipients");
		} else if (strcmp(line, "DATA") == 0) {
			say(fd, "354 End data with <CR><LF>.<CR><LF>");
			if (!read_data(f, in))
				break;
			for (size_t i = 0; i < naccepted; i++)
				say(fd, i < MAX_RCPTS && f->data_replies[i] ? f->data_replies[i]
									    : "250 2.0.0 Saved");
		} else if (strcmp(line, "QUIT") == 0) {
			say(fd, "221 2.0.0 Bye");
			break;
		} else {
			say(fd, "500 5.5.2 What?");
		}
	}
out:
	fclose(in);
	close(fd);
	return NULL;
}

/* Start the fake server's thread with the script as set in f. */
static void fake_start(struct fake *f)
{
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	f->started = true;
}

/* Wait for the fake server to finish its session. */
static void fake_join(struct fake *f)
{
	if (f->started)
		pthread_join(f->th, NULL);
	f->started = false;
}

/* Per test: a directory, the listening socket, the message file. */
static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	assert_non_null(f);
	strcpy(f->root, "/tmp/hato-lmtp-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->sock, sizeof(f->sock), "%s/lmtp", f->root);
	snprintf(f->target, sizeof(f->target), "unix:%s", f->sock);
	snprintf(f->msg, sizeof(f->msg), "%s/msg", f->root);
	assert_true(write_queued(f->msg, MSG, strlen(MSG)));
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	strcpy(sun.sun_path, f->sock);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	fake_join(f);
	close(f->lfd);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->data);
	free(f);
	return 0;
}

/* lmtp_deliver of the queue file at path, opened as the queue hands a
 * message to delivery (an fd and the message's length). */
static void deliver_file(const char *target, const char *path, const char *sender,
			 const char *const *rcpts, size_t n, unsigned timeout,
			 struct delivery_result *res)
{
	uint64_t len;
	int fd = queue_msg_open(path, &len);

	assert_true(fd >= 0);
	lmtp_deliver(target, "mx.test.example", fd, len, sender, rcpts, n, timeout, res);
	close(fd);
}

/* Run one delivery of f->msg to rcpts against the scripted server. */
static void run(struct fake *f, const char *const *rcpts, size_t n, unsigned timeout,
		struct delivery_result *res)
{
	fake_start(f);
	deliver_file(f->target, f->msg, "<alice@test.example>", rcpts, n, timeout, res);
	fake_join(f);
}

/* Assert r's outcome, esc, and that its text is "lmtp TARGET said: " + said. */
static void check(const struct fake *f, const struct delivery_result *r, enum outcome o,
		  const char *esc, const char *said)
{
	char want[300];

	assert_int_equal(r->outcome, o);
	assert_string_equal(r->esc, esc);
	if (said != NULL) {
		snprintf(want, sizeof(want), "lmtp %s said: %s", f->target, said);
		assert_string_equal(r->text, want);
	}
}

/* Every recipient accepted: one transaction, the exact dialogue, the exact bytes. */
static void test_all_accepted(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<bob@localhost>", "<carol@localhost>"};
	struct delivery_result res[2];

	f->data_replies[1] = "250 2.0.0 <carol@localhost> Ok: saved";
	run(f, rcpts, 2, 10, res);

	check(f, &res[0], OUTCOME_DELIVERED, "2.0.0", "250 2.0.0 Saved");
	check(f, &res[1], OUTCOME_DELIVERED, "2.0.0", "250 2.0.0 <carol@localhost> Ok: saved");
	assert_string_equal(f->cmds, "LHLO mx.test.example\n"
				     "MAIL FROM:<alice@test.example>\n"
				     "RCPT TO:<bob@localhost>\n"
				     "RCPT TO:<carol@localhost>\n"
				     "DATA\n"
				     "QUIT\n");
	assert_string_equal(f->data, MSG ".\r\n");
}

/* A recipient refused at RCPT fails alone; the reply after the dot is only for the others. */
static void test_rcpt_refused(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<bob@localhost>", "<nobody@localhost>", "<carol@localhost>"};
	struct delivery_result res[3];

	f->rcpt_replies[1] = "550 5.1.1 <nobody@localhost> User doesn't exist: nobody@localhost";
	f->data_replies[1] = "250 2.0.0 <carol@localhost> carol's";
	run(f, rcpts, 3, 10, res);

	check(f, &res[0], OUTCOME_DELIVERED, "2.0.0", "250 2.0.0 Saved");
	check(f, &res[1], OUTCOME_PERMFAIL, "5.1.1",
	      "550 5.1.1 <nobody@localhost> User doesn't exist: nobody@localhost");
	check(f, &res[2], OUTCOME_DELIVERED, "2.0.0", "250 2.0.0 <carol@localhost> carol's");
}

/* Replies after the dot are matched to accepted recipients in order: a 452 defers only its own. */
static void test_data_reply_452(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>", "<b@localhost>", "<c@localhost>"};
	struct delivery_result res[3];

	f->data_replies[0] = "250 2.0.0 <a@localhost> saved";
	f->data_replies[1] = "452 4.2.2 <b@localhost> Quota exceeded (mailbox for user is full)";
	f->data_replies[2] = "250 2.0.0 <c@localhost> saved";
	run(f, rcpts, 3, 10, res);

	check(f, &res[0], OUTCOME_DELIVERED, "2.0.0", "250 2.0.0 <a@localhost> saved");
	check(f, &res[1], OUTCOME_TEMPFAIL, "4.2.2",
	      "452 4.2.2 <b@localhost> Quota exceeded (mailbox for user is full)");
	check(f, &res[2], OUTCOME_DELIVERED, "2.0.0", "250 2.0.0 <c@localhost> saved");
}

/* The server hangs up in the middle of a 4 MB message: every recipient is retried, no SIGPIPE. */
static void test_close_mid_data(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>", "<b@localhost>"};
	struct delivery_result res[2];
	size_t n = 4 * 1024 * 1024;
	char *big = malloc(n);

	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = i % 80 == 78 ? '\r' : i % 80 == 79 ? '\n' : 'x';
	assert_true(write_queued(f->msg, big, n));
	free(big);
	f->mode = FAKE_CLOSE_MID_DATA;
	run(f, rcpts, 2, 10, res);

	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(res[i].outcome, OUTCOME_TEMPFAIL);
		assert_string_equal(res[i].esc, "4.4.2");
		assert_true(strncmp(res[i].text, "lmtp unix:", 10) == 0);
		assert_non_null(strstr(res[i].text, " during the message transfer"));
	}
}

/* A server that accepts and never speaks: every recipient TEMPFAIL after the 1 s timeout. */
static void test_timeout(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>", "<b@localhost>"};
	struct delivery_result res[2];
	struct timespec t0, t1;
	double elapsed;
	char want[300];

	f->mode = FAKE_SILENT;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(f, rcpts, 2, 1, res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	assert_true(elapsed >= 0.9 && elapsed < 5.0);
	snprintf(want, sizeof(want), "lmtp %s: timeout after 1 s waiting for the greeting",
		 f->target);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(res[i].outcome, OUTCOME_TEMPFAIL);
		assert_string_equal(res[i].esc, "4.4.2");
		assert_string_equal(res[i].text, want);
	}
	assert_string_equal(f->cmds, ""); /* not even a QUIT to a server that hung */
}

/* Lines starting with "." get another "." on the wire; a last line without CRLF is ended. */
static void test_dot_stuffing(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>"};
	struct delivery_result res[1];
	const char msg[] = ".starts\r\n\r\n..two\r\n.\r\nmid.dle\r\n. space\r\nno end";

	assert_true(write_queued(f->msg, msg, strlen(msg)));
	run(f, rcpts, 1, 10, res);

	check(f, &res[0], OUTCOME_DELIVERED, "2.0.0", NULL);
	assert_string_equal(f->data, "..starts\r\n\r\n...two\r\n..\r\nmid.dle\r\n.. space\r\n"
				     "no end\r\n.\r\n");
}

/* A refused MAIL FROM is every recipient's answer; in lock-step no RCPT is sent. */
static void test_mail_refused(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>", "<b@localhost>"};
	struct delivery_result res[2];

	f->no_pipelining = true;
	f->mail_reply = "553 sender not allowed"; /* no enhanced code: derived from 553 */
	run(f, rcpts, 2, 10, res);

	check(f, &res[0], OUTCOME_PERMFAIL, "5.0.0", "553 sender not allowed");
	check(f, &res[1], OUTCOME_PERMFAIL, "5.0.0", "553 sender not allowed");
	assert_null(strstr(f->cmds, "RCPT"));
	assert_non_null(strstr(f->cmds, "QUIT"));
}

/* Every recipient refused: DATA, pipelined with them, gets 503 and changes nothing.  A
 * multi-line reply is joined into one line (its first line's '-' made a space). */
static void test_all_refused_multiline(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>", "<b@localhost>"};
	struct delivery_result res[2];

	f->rcpt_replies[0] = "451-4.3.0 Temporary\r\n451 4.3.0 try later";
	f->rcpt_replies[1] = "550 no such user";
	run(f, rcpts, 2, 10, res);

	check(f, &res[0], OUTCOME_TEMPFAIL, "4.3.0", "451 4.3.0 Temporary 4.3.0 try later");
	check(f, &res[1], OUTCOME_PERMFAIL, "5.0.0", "550 no such user");
	assert_string_equal(f->cmds, "LHLO mx.test.example\n"
				     "MAIL FROM:<alice@test.example>\n"
				     "RCPT TO:<a@localhost>\n"
				     "RCPT TO:<b@localhost>\n"
				     "DATA\n"
				     "QUIT\n");
}

/* A 421 at RCPT (the server is closing) is the answer of every recipient, the one accepted
 * before it included; nothing more is sent after the pipelined batch, not even QUIT. */
static void test_rcpt_421(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>", "<b@localhost>", "<c@localhost>"};
	struct delivery_result res[3];

	f->rcpt_replies[1] = "421 4.3.2 Shutting down";
	run(f, rcpts, 3, 10, res);

	for (size_t i = 0; i < 3; i++)
		check(f, &res[i], OUTCOME_TEMPFAIL, "4.3.2", "421 4.3.2 Shutting down");
	assert_string_equal(f->cmds, "LHLO mx.test.example\n"
				     "MAIL FROM:<alice@test.example>\n"
				     "RCPT TO:<a@localhost>\n"
				     "RCPT TO:<b@localhost>\n"
				     "RCPT TO:<c@localhost>\n"
				     "DATA\n");
}

/* Nothing listens: TEMPFAIL 4.4.1 with the reason. */
static void test_connect_refused(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>"};
	struct delivery_result res[1];
	char target[200], want[300];

	snprintf(target, sizeof(target), "unix:%s/none", f->root);
	deliver_file(target, f->msg, "<>", rcpts, 1, 5, res);
	assert_int_equal(res[0].outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(res[0].esc, "4.4.1");
	snprintf(want, sizeof(want), "lmtp %s: connect: No such file or directory", target);
	assert_string_equal(res[0].text, want);
}

/* A reply that is not SMTP ends the session: TEMPFAIL 4.4.2 with the line, its control
 * octets (an ESC here) made '?'. */
static void test_garbled_greeting(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>"};
	struct delivery_result res[1];
	char want[300];

	f->greeting = "HTTP/1.1 400 \"Bad\"\x1b[0m";
	run(f, rcpts, 1, 10, res);

	assert_int_equal(res[0].outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(res[0].esc, "4.4.2");
	snprintf(want, sizeof(want),
		 "lmtp %s: garbled reply \"HTTP/1.1 400 \"Bad\"?[0m\" during the greeting",
		 f->target);
	assert_string_equal(res[0].text, want);
}

/* A 421 greeting defers with the server's code; a host:port target without a port is refused. */
static void test_greeting_421_and_bad_target(void **state)
{
	struct fake *f = *state;
	const char *rcpts[] = {"<a@localhost>"};
	struct delivery_result res[1];

	f->greeting = "421 4.3.2 Too many connections";
	run(f, rcpts, 1, 10, res);
	assert_int_equal(res[0].outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(res[0].esc, "4.3.2");
	assert_non_null(strstr(res[0].text, "refused during greeting: 421 4.3.2 Too many"));

	deliver_file("localhost", f->msg, "<>", rcpts, 1, 5, res);
	assert_int_equal(res[0].outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(res[0].esc, "4.3.5");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_reply_452, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_mid_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot_stuffing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mail_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_refused_multiline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_421, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbled_greeting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_greeting_421_and_bad_target, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
