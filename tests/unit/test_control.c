/*
 * test_control.c - unit tests for src/control/control.c: request parsing
 * (control_parse), and the socket itself on a real event loop with a
 * recording stand-in for the scheduler: every request and its reply, the
 * line limit (exactly at it, one over, a line that never ends), a last line
 * without LF, the file mode under any umask, a stale socket replaced, a
 * live socket or a plain file left alone, a path too long for sun_path, and
 * the file removed by control_close.  The read timeout (5 s) is left to the
 * end-to-end tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "conf.h"
#include "control.h"
#include "scheduler.h"
#include "util.h"

#define ID "0006A1B2C3D4E5F60001"
#define OTHER_ID "0006A1B2C3D4E5F60002" /* the stand-in does not know it */

/* The scheduler stand-in: counts flushes, knows one message (ID). */
static unsigned flushes;
static char deleted[QUEUE_ID_LEN + 1];

void scheduler_flush(struct scheduler *sc)
{
	(void)sc;
	flushes++;
}

bool scheduler_delete(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	(void)sc;
	if (strcmp(queue_id, ID) != 0) {
		snprintf(err, errsz, "no such message %s\r\nin the queue", queue_id);
		return false;
	}
	strcpy(deleted, queue_id);
	return true;
}

/* The per-message requests the stand-in got: "VERB ID [REASON]". */
static char last_request[512];

bool scheduler_hold(struct scheduler *sc, const char *queue_id, const char *reason, char *err,
		    size_t errsz)
{
	(void)sc;
	if (strcmp(queue_id, ID) != 0) {
		snprintf(err, errsz, "no message %s in the queue", queue_id);
		return false;
	}
	snprintf(last_request, sizeof(last_request), "hold %s %s", queue_id, reason);
	return true;
}

bool scheduler_release(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	(void)sc;
	snprintf(err, errsz, "message %s is not on hold", queue_id);
	snprintf(last_request, sizeof(last_request), "release %s", queue_id);
	return false;
}

bool scheduler_retry(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	(void)sc;
	(void)err;
	(void)errsz;
	snprintf(last_request, sizeof(last_request), "retry %s", queue_id);
	return true;
}

bool scheduler_bounce(struct scheduler *sc, const char *queue_id, size_t *failed, char *err,
		      size_t errsz)
{
	(void)sc;
	(void)err;
	(void)errsz;
	*failed = 2;
	snprintf(last_request, sizeof(last_request), "bounce %s", queue_id);
	return true;
}

/* One socket in a fresh directory, served on its own loop. */
struct fixture {
	char dir[64];
	struct conf *conf;
	struct event_base *base;
	struct control *ctl;
};

/* Make the directory, the configuration and the loop (no socket yet). */
static struct fixture *fixture_new(unsigned mode)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char err[512];

	strcpy(f->dir, "/tmp/hato-test-control.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->conf = conf_load(NULL, err, sizeof(err));
	assert_non_null(f->conf);
	free(f->conf->control_socket);
	f->conf->control_socket = xmalloc(strlen(f->dir) + 16);
	sprintf(f->conf->control_socket, "%s/control.sock", f->dir);
	f->conf->control_socket_mode = mode;
	f->base = event_base_new();
	assert_non_null(f->base);
	flushes = 0;
	deleted[0] = '\0';
	return f;
}

/* Close the socket if open, remove the directory. */
static void fixture_free(struct fixture *f)
{
	control_close(f->ctl);
	unlink(f->conf->control_socket);
	assert_int_equal(rmdir(f->dir), 0);
	event_base_free(f->base);
	conf_free(f->conf);
	free(f);
}

/* control_open must succeed. */
static void fixture_open(struct fixture *f)
{
	char err[512];

	f->ctl = control_open(f->base, f->conf, NULL, err, sizeof(err));
	if (f->ctl == NULL)
		fail_msg("control_open: %s", err);
}

/* A connected, non-blocking client socket. */
static int client_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	strcpy(sun.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/*
 * Send len octets (then shut the write side down when half_close), run the
 * loop until the server closes, and return what it said (NUL-terminated).
 */
static char *talk(struct fixture *f, const char *data, size_t len, bool half_close)
{
	static char reply[4096];
	size_t got = 0, sent = 0;
	int fd = client_connect(f->conf->control_socket);
	time_t deadline = time(NULL) + 3;
	bool shut = false;

	for (;;) {
		struct pollfd p = {fd, POLLIN | (sent < len ? POLLOUT : 0), 0};
		ssize_t n;

		assert_true(time(NULL) <= deadline);
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 10) < 0)
			fail_msg("poll: %s", strerror(errno));
		if (sent < len) {
			n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				break; /* the server stopped reading and closed */
		}
		if (sent == len && half_close && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		n = recv(fd, reply + got, sizeof(reply) - 1 - got, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		if (n > 0)
			got += (size_t)n;
		else if (errno != EAGAIN)
			fail_msg("recv: %s", strerror(errno));
	}
	close(fd);
	reply[got] = '\0';
	return reply;
}

/* talk() with a C string. */
static char *ask(struct fixture *f, const char *line)
{
	return talk(f, line, strlen(line), false);
}

/* Each verb, its arguments, and what is refused. */
static void test_parse(void **state)
{
	static const char *unknown[] = {
		"",        " ",           "PING ",        " PING",   "PINGX",          "FLUSH now",
		"FLUSHES", "DELETEX " ID, "DEL " ID,      "HELO",    "GET / HTTP/1.0", "ping\r",
		"STATUS",  "HOLDX " ID,   "RELEASED " ID, "BOUNCES",
	};
	static const char *bad_id[] = {
		"DELETE",
		"DELETE ",
		"DELETE  " ID,
		"DELETE " ID " ",
		"DELETE " ID "0",
		"DELETE 0006a1b2c3d4e5f60001",
		"DELETE 0006A1B2C3D4E5F6000",
		"DELETE ../../etc/passwd",
		"DELETE " ID " " ID,
		"HOLD",
		"HOLD " ID " ",
		"HOLD 0006a1b2c3d4e5f60001 reason",
		"HOLD ../../etc/passwd/x reason",
		"RELEASE " ID " now",
		"RETRY",
		"BOUNCE 0006A1B2C3D4E5F6000",
	};
	char id[QUEUE_ID_LEN + 1];
	const char *text = NULL;

	(void)state;
	assert_int_equal(control_parse("PING", id, NULL), CONTROL_REQ_PING);
	assert_int_equal(control_parse("ping", id, NULL), CONTROL_REQ_PING);
	assert_int_equal(control_parse("FLUSH", id, NULL), CONTROL_REQ_FLUSH);
	assert_int_equal(control_parse("Flush", id, NULL), CONTROL_REQ_FLUSH);
	memset(id, 'x', sizeof(id));
	assert_int_equal(control_parse("DELETE " ID, id, NULL), CONTROL_REQ_DELETE);
	assert_string_equal(id, ID);
	memset(id, 'x', sizeof(id));
	assert_int_equal(control_parse("delete " OTHER_ID, id, NULL), CONTROL_REQ_DELETE);
	assert_string_equal(id, OTHER_ID);
	assert_int_equal(control_parse("hold " ID, id, &text), CONTROL_REQ_HOLD);
	assert_string_equal(id, ID);
	assert_string_equal(text, "");
	assert_int_equal(control_parse("HOLD " ID " spam  run", id, &text), CONTROL_REQ_HOLD);
	assert_string_equal(text, "spam  run");
	assert_int_equal(control_parse("Release " ID, id, NULL), CONTROL_REQ_RELEASE);
	assert_int_equal(control_parse("RETRY " ID, id, NULL), CONTROL_REQ_RETRY);
	assert_int_equal(control_parse("bounce " OTHER_ID, id, NULL), CONTROL_REQ_BOUNCE);
	assert_string_equal(id, OTHER_ID);
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		if (control_parse(unknown[i], id, NULL) != CONTROL_REQ_UNKNOWN)
			fail_msg("\"%s\" not refused as unknown", unknown[i]);
	for (size_t i = 0; i < sizeof(bad_id) / sizeof(bad_id[0]); i++)
		if (control_parse(bad_id[i], id, NULL) != CONTROL_REQ_BAD_ID)
			fail_msg("\"%s\" not refused as a bad ID", bad_id[i]);
}

/* Every request over the socket, LF and CRLF alike. */
static void test_requests(void **state)
{
	struct fixture *f = fixture_new(0600);

	(void)state;
	fixture_open(f);
	assert_string_equal(ask(f, "PING\n"), "OK hatod " HATO_VERSION "\n");
	assert_string_equal(ask(f, "FLUSH\r\n"), "OK flushed\n");
	assert_int_equal(flushes, 1);
	assert_string_equal(ask(f, "DELETE " ID "\n"), "OK deleted " ID "\n");
	assert_string_equal(deleted, ID);
	/* the scheduler's reason, kept on one line */
	assert_string_equal(ask(f, "DELETE " OTHER_ID "\n"),
			    "ERR no such message " OTHER_ID "  in the queue\n");
	assert_string_equal(ask(f, "DELETE nope\n"),
			    "ERR bad queue ID (20 upper-case hex digits)\n");
	assert_string_equal(ask(f, "HOLD " ID "\n"), "OK held " ID "\n");
	assert_string_equal(last_request, "hold " ID " " CONTROL_HOLD_REASON);
	assert_string_equal(ask(f, "HOLD " ID " spam\trun\n"), "OK held " ID "\n");
	assert_string_equal(last_request, "hold " ID " spam run"); /* a tab is no reason's */
	assert_string_equal(ask(f, "HOLD " OTHER_ID " x\n"),
			    "ERR no message " OTHER_ID " in the queue\n");
	assert_string_equal(ask(f, "RELEASE " ID "\n"), "ERR message " ID " is not on hold\n");
	assert_string_equal(ask(f, "RETRY " ID "\n"), "OK retrying " ID "\n");
	assert_string_equal(last_request, "retry " ID);
	assert_string_equal(ask(f, "BOUNCE " ID "\n"),
			    "OK bounced " ID ": 2 recipients returned to the sender\n");
	assert_string_equal(ask(f, "BOUNCE x\n"), "ERR bad queue ID (20 upper-case hex digits)\n");
	assert_string_equal(ask(f, "EHLO x\n"), "ERR unknown request\n");
	assert_string_equal(talk(f, "PING\0x\n", 7, false), "ERR unknown request\n");
	/* one request per connection: what follows is ignored */
	assert_string_equal(ask(f, "FLUSH\nFLUSH\nFLUSH\n"), "OK flushed\n");
	assert_int_equal(flushes, 2);
	/* a last line without LF counts when the client shuts its side down */
	assert_string_equal(talk(f, "FLUSH", 5, true), "OK flushed\n");
	assert_int_equal(flushes, 3);
	/* nothing at all: closed without a reply */
	assert_string_equal(talk(f, "", 0, true), "");
	fixture_free(f);
}

/* CONTROL_LINE_MAX octets pass, one more is refused, so is no line end. */
static void test_line_limit(void **state)
{
	struct fixture *f = fixture_new(0600);
	char line[CONTROL_LINE_MAX + 64];

	(void)state;
	fixture_open(f);
	memset(line, 'A', sizeof(line));
	memcpy(line + CONTROL_LINE_MAX, "\r\n", 2);
	assert_string_equal(talk(f, line, CONTROL_LINE_MAX + 2, false), "ERR unknown request\n");
	memcpy(line + CONTROL_LINE_MAX, "A\n", 2);
	assert_string_equal(talk(f, line, CONTROL_LINE_MAX + 2, false),
			    "ERR request too long (at most 256 octets)\n");
	memset(line, 'A', sizeof(line));
	assert_string_equal(talk(f, line, sizeof(line), false),
			    "ERR request too long (at most 256 octets)\n");
	/* the server went on */
	assert_string_equal(ask(f, "PING\n"), "OK hatod " HATO_VERSION "\n");
	fixture_free(f);
}

/* The mode is the configured one under a wide or a narrow umask. */
static void test_mode(void **state)
{
	static const unsigned modes[] = {0600, 0660};
	static const mode_t masks[] = {0, 077, 0777};

	(void)state;
	for (size_t i = 0; i < 2; i++)
		for (size_t j = 0; j < 3; j++) {
			struct fixture *f = fixture_new(modes[i]);
			mode_t old = umask(masks[j]);
			struct stat st;

			fixture_open(f);
			umask(old);
			assert_int_equal(lstat(f->conf->control_socket, &st), 0);
			assert_true(S_ISSOCK(st.st_mode));
			assert_int_equal(st.st_mode & 07777, modes[i]);
			fixture_free(f);
		}
}

/* A stale socket is replaced; a live one and a plain file stay. */
static void test_existing_file(void **state)
{
	struct fixture *f = fixture_new(0600);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct control *second;
	char err[512];
	int fd;

	(void)state;
	/* a socket file nobody listens on, as a crashed hatod leaves it */
	strcpy(sun.sun_path, f->conf->control_socket);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	fixture_open(f);
	assert_string_equal(ask(f, "PING\n"), "OK hatod " HATO_VERSION "\n");

	/* a second hatod on the same path */
	second = control_open(f->base, f->conf, NULL, err, sizeof(err));
	assert_null(second);
	assert_non_null(strstr(err, "in use"));
	assert_string_equal(ask(f, "PING\n"), "OK hatod " HATO_VERSION "\n");

	/* control_close removes the file */
	control_close(f->ctl);
	f->ctl = NULL;
	assert_int_equal(access(f->conf->control_socket, F_OK), -1);

	/* not a socket: left alone */
	fd = open(f->conf->control_socket, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(control_open(f->base, f->conf, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(access(f->conf->control_socket, F_OK), 0);
	fixture_free(f);
}

/* A path that does not fit sun_path is refused, not cut. */
static void test_path_too_long(void **state)
{
	struct fixture *f = fixture_new(0600);
	struct sockaddr_un sun;
	char err[512];
	size_t max = sizeof(sun.sun_path) - 1;

	(void)state;
	free(f->conf->control_socket);
	f->conf->control_socket = xmalloc(max + 2);
	memset(f->conf->control_socket, 'a', max + 1);
	f->conf->control_socket[0] = '/';
	f->conf->control_socket[max + 1] = '\0';
	assert_null(control_open(f->base, f->conf, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "too long"));
	/* no parent directory: a clear error too */
	sprintf(f->conf->control_socket, "%s/missing/control.sock", f->dir);
	assert_null(control_open(f->base, f->conf, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "bind"));
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),         cmocka_unit_test(test_requests),
		cmocka_unit_test(test_line_limit),    cmocka_unit_test(test_mode),
		cmocka_unit_test(test_existing_file), cmocka_unit_test(test_path_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
