/*
 * test_control_client.c - unit tests for src/control/control_client.c:
 * a round trip with hatod's own control server (control_open, in a child
 * process, with a stand-in scheduler), and a scripted fake server for
 * what a real one should never do: a reply without its LF, with control
 * characters, of two lines, too long, none at all (closed at once), or
 * silence until the deadline.  Also no socket, a path too long for a unix
 * socket address, a request over CONTROL_LINE_MAX, and control_reply_kind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "control.h"
#include "control_client.h"
#include "scheduler.h"
#include "util.h"

#define TIMEOUT_MS 2000u /* a reply that does come */
#define SILENCE_MS 200u  /* the deadline a silent server runs into */
#define REPLY_SIZE 128   /* the client's reply buffer in these tests */
#define REQUEST_MAX 512  /* octets a scripted server keeps of the request */

/* The scheduler stand-in of the child that runs hatod's control server. */
void scheduler_flush(struct scheduler *sc)
{
	(void)sc;
}

bool scheduler_delete(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	(void)sc;
	snprintf(err, errsz, "no such message %s", queue_id);
	return false;
}

bool scheduler_hold(struct scheduler *sc, const char *queue_id, const char *reason, char *err,
		    size_t errsz)
{
	(void)sc;
	(void)reason;
	snprintf(err, errsz, "no such message %s", queue_id);
	return false;
}

bool scheduler_release(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	return scheduler_delete(sc, queue_id, err, errsz);
}

bool scheduler_retry(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	return scheduler_delete(sc, queue_id, err, errsz);
}

bool scheduler_bounce(struct scheduler *sc, const char *queue_id, size_t *failed, char *err,
		      size_t errsz)
{
	*failed = 0;
	return scheduler_delete(sc, queue_id, err, errsz);
}

static char dir[64], sock_path[128];

/* A fresh directory for the sockets. */
static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hato-test-ctlclient.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir);
	return 0;
}

/* Remove the socket and the directory. */
static int teardown(void **state)
{
	(void)state;
	unlink(sock_path);
	return rmdir(dir);
}

/* A scripted server: accepts one connection, keeps the request line,
 * sends script, then closes (or, when hold, waits for the client to go). */
struct script {
	int listen_fd;
	const char *reply;
	size_t reply_len;
	bool hold;
	char request[REQUEST_MAX];
	pthread_t thread;
};

/* The scripted server's thread. */
static void *script_run(void *arg)
{
	struct script *s = arg;
	size_t got = 0;
	int fd = accept(s->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	while (got < sizeof(s->request) - 1 && memchr(s->request, '\n', got) == NULL) {
		ssize_t n = read(fd, s->request + got, sizeof(s->request) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	s->request[got] = '\0';
	if (s->reply_len > 0 && write(fd, s->reply, s->reply_len) < 0)
		s->request[0] = '\0';
	if (s->hold) {
		char c;
		while (read(fd, &c, 1) > 0)
			;
	}
	close(fd);
	return NULL;
}

/* Start a scripted server on sock_path that answers with reply_len octets. */
static void script_start(struct script *s, const char *reply, size_t reply_len, bool hold)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	memset(s, 0, sizeof(*s));
	s->reply = reply;
	s->reply_len = reply_len;
	s->hold = hold;
	strcpy(sun.sun_path, sock_path);
	unlink(sock_path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s->listen_fd >= 0);
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(s->listen_fd, 1), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, script_run, s), 0);
}

/* Wait for the scripted server to finish and close its socket. */
static void script_end(struct script *s)
{
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	close(s->listen_fd);
	unlink(sock_path);
}

/* Ask a scripted server that answers reply (a C string): control_request's
 * result, the reply in out. */
static int scripted(const char *reply, bool hold, unsigned timeout_ms, char *out, size_t size)
{
	struct script s;
	int e;

	script_start(&s, reply, strlen(reply), hold);
	e = control_request(sock_path, "FLUSH", timeout_ms, out, size);
	script_end(&s);
	if (e == 0 || e == EPROTO)
		assert_string_equal(s.request, "FLUSH\n");
	return e;
}

/* A well-formed reply comes back without its LF; the request goes as one line. */
static void test_reply(void **state)
{
	char reply[REPLY_SIZE];

	(void)state;
	assert_int_equal(scripted("OK flushed\n", false, TIMEOUT_MS, reply, sizeof(reply)), 0);
	assert_string_equal(reply, "OK flushed");
	assert_int_equal(scripted("ERR no such message\n", false, TIMEOUT_MS, reply, sizeof(reply)),
			 0);
	assert_string_equal(reply, "ERR no such message");
}

/* What a real hatod never sends is EPROTO, never a reply. */
static void test_garbled_replies(void **state)
{
	static const char *const bad[] = {
		"",                 /* closed without a word */
		"OK flushed",       /* no LF */
		"OK \x1b[2Jgone\n", /* a terminal escape */
		"OK one\nOK two\n", /* two lines */
		"OK flushed\r\n",   /* CR is a control character too */
	};
	char reply[REPLY_SIZE + 1], longer[REPLY_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (scripted(bad[i], false, TIMEOUT_MS, reply, sizeof(reply)) != EPROTO)
			fail_msg("reply %zu accepted", i);
	/* a reply of REPLY_SIZE - 1 octets, its LF included: it needs a buffer
	 * of REPLY_SIZE + 1 (the reply, its NUL, and room to see that it ended) */
	memset(longer, 'A', sizeof(longer));
	memcpy(longer, "OK ", 3);
	longer[REPLY_SIZE - 2] = '\n';
	longer[REPLY_SIZE - 1] = '\0';
	assert_int_equal(scripted(longer, false, TIMEOUT_MS, reply, REPLY_SIZE + 1), 0);
	assert_int_equal(strlen(reply), REPLY_SIZE - 2);
	assert_int_equal(scripted(longer, false, TIMEOUT_MS, reply, REPLY_SIZE), EPROTO);
}

/* A server that never answers runs into the deadline, not forever. */
static void test_silence(void **state)
{
	char reply[REPLY_SIZE];
	struct timespec t0, t1;
	long long ms;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(scripted("", true, SILENCE_MS, reply, sizeof(reply)), ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= SILENCE_MS - 10);
	assert_true(ms < SILENCE_MS + 1000);
}

/* No socket, a path too long for sun_path, a request over the line limit. */
static void test_local_errors(void **state)
{
	char reply[REPLY_SIZE], path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	char request[CONTROL_LINE_MAX + 2];
	struct script s;

	(void)state;
	unlink(sock_path);
	assert_int_equal(control_request(sock_path, "PING", TIMEOUT_MS, reply, sizeof(reply)),
			 ENOENT);
	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(control_request(path, "PING", TIMEOUT_MS, reply, sizeof(reply)),
			 ENAMETOOLONG);
	memset(request, 'A', sizeof(request) - 1);
	request[sizeof(request) - 1] = '\0';
	script_start(&s, "", 0, false);
	assert_int_equal(control_request(sock_path, request, TIMEOUT_MS, reply, sizeof(reply)),
			 EMSGSIZE);
	script_end(&s);
}

/* The child: hatod's control server on its own loop, until killed. */
static void serve_control(void)
{
	char err[512];
	struct conf *c = conf_load(NULL, err, sizeof(err));
	struct event_base *base = event_base_new();

	if (c == NULL || base == NULL)
		_exit(2);
	free(c->control_socket);
	c->control_socket = xstrdup(sock_path);
	if (control_open(base, c, NULL, err, sizeof(err)) == NULL)
		_exit(3);
	event_base_dispatch(base);
	_exit(0);
}

/* A round trip with the real server: PING, FLUSH, a refused DELETE. */
static void test_with_hatod_server(void **state)
{
	char reply[CONTROL_REPLY_MAX + 1];
	const char *text;
	time_t deadline = time(NULL) + 5;
	pid_t pid;
	int e, status;

	(void)state;
	unlink(sock_path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		serve_control();
	do { /* until the child's socket is there */
		e = control_request(sock_path, "PING", TIMEOUT_MS, reply, sizeof(reply));
		if (e == ENOENT || e == ECONNREFUSED)
			usleep(10000);
	} while ((e == ENOENT || e == ECONNREFUSED) && time(NULL) < deadline);
	assert_int_equal(e, 0);
	assert_int_equal(control_reply_kind(reply, &text), CONTROL_REPLY_OK);
	assert_string_equal(text, "hatod " HATO_VERSION);
	assert_int_equal(control_request(sock_path, "FLUSH", TIMEOUT_MS, reply, sizeof(reply)), 0);
	assert_string_equal(reply, "OK flushed");
	assert_int_equal(control_request(sock_path, "DELETE 0006A1B2C3D4E5F60001", TIMEOUT_MS,
					 reply, sizeof(reply)),
			 0);
	assert_int_equal(control_reply_kind(reply, &text), CONTROL_REPLY_ERR);
	assert_string_equal(text, "no such message 0006A1B2C3D4E5F60001");
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* control_reply_kind: OK with and without text, ERR, and the rest. */
static void test_reply_kind(void **state)
{
	static const char *const other[] = {"",    "O",     "OKAY",  "ok flushed",
					    "ERR", "ERRno", "250 OK"};
	const char *text;

	(void)state;
	assert_int_equal(control_reply_kind("OK", &text), CONTROL_REPLY_OK);
	assert_string_equal(text, "");
	assert_int_equal(control_reply_kind("OK deleted X", &text), CONTROL_REPLY_OK);
	assert_string_equal(text, "deleted X");
	assert_int_equal(control_reply_kind("ERR busy", &text), CONTROL_REPLY_ERR);
	assert_string_equal(text, "busy");
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		assert_int_equal(control_reply_kind(other[i], &text), CONTROL_REPLY_OTHER);
		assert_string_equal(text, other[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_garbled_replies),
		cmocka_unit_test(test_silence),
		cmocka_unit_test(test_local_errors),
		cmocka_unit_test(test_with_hatod_server),
		cmocka_unit_test(test_reply_kind),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
