/*
 * fake_smtp.h - for unit tests of hato's SMTP client: a scripted fake
 * server on 127.0.0.1 (a thread of the test) that takes one connection and
 * plays a script, one step a string:
 *
 *   "S:text"    send text and CRLF (a multi-line reply has its inner CRLFs)
 *   "R:text"    send text as it is, no CRLF added
 *   "T:text"    send text and CRLF a few octets at a time, pausing between
 *   "C:prefix"  read one command line; it must start with prefix
 *   "C=prefix"  the same, and the line must have come with the one before
 *               it (already read: the client pipelined them)
 *   "C!prefix"  the same, and the line must not have been sent yet when the
 *               server reached this step (lock-step)
 *   "N"         nothing more may arrive for a moment (the client waits)
 *   "D"         read the message after 354, up to and with the final dot
 *   "X"         close the connection now
 *
 * After the script, lines are read (and recorded) until the client closes.
 * The server records every line it read in f->lines ("LINE\n" each), the
 * message in f->data, and the first step that did not go as scripted in
 * f->err; fake_smtp_stop() waits for the session to end, fake_smtp_free()
 * frees what it saw.
 */
#ifndef HATO_TEST_FAKE_SMTP_H
#define HATO_TEST_FAKE_SMTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FAKE_SMTP_WAIT_MS 5000 /* the longest the server waits for the client */
#define FAKE_SMTP_QUIET_MS 150 /* "N": how long nothing may arrive */

struct fake_smtp {
	int lfd;
	unsigned port;
	struct sockaddr_in sa;
	pthread_t th;
	bool started;
	const char *const *script; /* NULL-terminated */
	/* the connection's input */
	int fd;
	char buf[65536];
	size_t pos, len;
	/* what it saw */
	char lines[8192];
	char *data;
	size_t datalen;
	char err[256];
};

/* Note the first thing that did not go as scripted. */
static inline void fake_smtp_fail(struct fake_smtp *f, const char *what, const char *detail)
{
	if (f->err[0] == '\0')
		snprintf(f->err, sizeof(f->err), "%s: %s", what, detail);
}

/* Read more input within ms; false on EOF, error or timeout. */
static inline bool fake_smtp_fill(struct fake_smtp *f, int ms)
{
	struct pollfd p = {.fd = f->fd, .events = POLLIN};
	ssize_t n;

	if (f->pos > 0) {
		memmove(f->buf, f->buf + f->pos, f->len - f->pos);
		f->len -= f->pos;
		f->pos = 0;
	}
	if (f->len == sizeof(f->buf) || poll(&p, 1, ms) != 1)
		return false;
	n = recv(f->fd, f->buf + f->len, sizeof(f->buf) - f->len, 0);
	if (n <= 0)
		return false;
	f->len += (size_t)n;
	return true;
}

/* Is a whole line buffered? */
static inline bool fake_smtp_has_line(const struct fake_smtp *f)
{
	return memchr(f->buf + f->pos, '\n', f->len - f->pos) != NULL;
}

/* One line without its CRLF into line; false at EOF. */
static inline bool fake_smtp_line(struct fake_smtp *f, char *line, size_t size)
{
	char *nl;
	size_t n;

	while (!fake_smtp_has_line(f))
		if (!fake_smtp_fill(f, FAKE_SMTP_WAIT_MS))
			return false;
	nl = memchr(f->buf + f->pos, '\n', f->len - f->pos);
	n = (size_t)(nl - (f->buf + f->pos));
	if (n > 0 && nl[-1] == '\r')
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(line, f->buf + f->pos, n);
	line[n] = '\0';
	f->pos = (size_t)(nl - f->buf) + 1;
	snprintf(f->lines + strlen(f->lines), sizeof(f->lines) - strlen(f->lines), "%s\n", line);
	return true;
}

/* Read the message up to and with the final dot into f->data. */
static inline bool fake_smtp_data(struct fake_smtp *f)
{
	for (;;) {
		char *end = memmem(f->buf + f->pos, f->len - f->pos, "\r\n.\r\n", 5);
		size_t n;

		if (end == NULL && f->len - f->pos >= 3 && memcmp(f->buf + f->pos, ".\r\n", 3) == 0)
			end = f->buf + f->pos - 2; /* an empty message */
		if (end != NULL) {
			n = (size_t)(end + 5 - (f->buf + f->pos));
			free(f->data);
			f->data = malloc(n + 1);
			memcpy(f->data, f->buf + f->pos, n);
			f->data[n] = '\0';
			f->datalen = n;
			f->pos += n;
			return true;
		}
		if (!fake_smtp_fill(f, FAKE_SMTP_WAIT_MS))
			return false;
	}
}

/* Send len octets; errors are the client's business. */
static inline void fake_smtp_send(struct fake_smtp *f, const char *s, size_t len)
{
	if (send(f->fd, s, len, MSG_NOSIGNAL) < 0)
		return;
}

/* Play one step; false when the session is over. */
static inline bool fake_smtp_step(struct fake_smtp *f, const char *step)
{
	const char *arg = step[0] != '\0' && step[1] != '\0' ? step + 2 : "";
	char line[2048];

	switch (step[0]) {
	case 'S':
		fake_smtp_send(f, arg, strlen(arg));
		fake_smtp_send(f, "\r\n", 2);
		return true;
	case 'R':
		fake_smtp_send(f, arg, strlen(arg));
		return true;
	case 'T':
		snprintf(line, sizeof(line), "%s\r\n", arg);
		for (size_t i = 0, n = strlen(line); i < n; i += 3) {
			fake_smtp_send(f, line + i, n - i < 3 ? n - i : 3);
			usleep(2000);
		}
		return true;
	case 'C': {
		bool had = fake_smtp_has_line(f);

		if (!fake_smtp_line(f, line, sizeof(line))) {
			fake_smtp_fail(f, "no command, expected", arg);
			return false;
		}
		if (strncmp(line, arg, strlen(arg)) != 0)
			fake_smtp_fail(f, line, arg);
		else if (step[1] == '=' && !had)
			fake_smtp_fail(f, "not pipelined", line);
		else if (step[1] == '!' && had)
			fake_smtp_fail(f, "pipelined", line);
		return true;
	}
	case 'N':
		if (fake_smtp_has_line(f) || fake_smtp_fill(f, FAKE_SMTP_QUIET_MS))
			fake_smtp_fail(f, "input while the client should wait", f->buf + f->pos);
		return true;
	case 'D':
		if (!fake_smtp_data(f)) {
			fake_smtp_fail(f, "no message", "");
			return false;
		}
		return true;
	case 'X':
		return false;
	default:
		fake_smtp_fail(f, "bad step", step);
		return false;
	}
}

/* The server thread: one connection, the script, then what follows until EOF. */
static inline void *fake_smtp_main(void *arg)
{
	struct fake_smtp *f = arg;
	struct pollfd p = {.fd = f->lfd, .events = POLLIN};
	char line[2048];
	int one = 1;
	bool on = true;

	if (poll(&p, 1, FAKE_SMTP_WAIT_MS) != 1 || (f->fd = accept(f->lfd, NULL, NULL)) < 0) {
		fake_smtp_fail(f, "no connection", "");
		return NULL;
	}
	setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (size_t i = 0; on && f->script[i] != NULL; i++)
		on = fake_smtp_step(f, f->script[i]);
	while (on && fake_smtp_line(f, line, sizeof(line)))
		;
	close(f->fd);
	f->fd = -1;
	return NULL;
}

/* Listen on 127.0.0.1 (a port of the kernel's choosing) and play script
 * for the first connection. */
static inline bool fake_smtp_start(struct fake_smtp *f, const char *const *script)
{
	socklen_t len = sizeof(f->sa);
	int one = 1;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->script = script;
	f->sa.sin_family = AF_INET;
	f->sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0)
		return false;
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(f->lfd, (struct sockaddr *)&f->sa, sizeof(f->sa)) != 0 || listen(f->lfd, 4) != 0 ||
	    getsockname(f->lfd, (struct sockaddr *)&f->sa, &len) != 0)
		return false;
	f->port = ntohs(f->sa.sin_port);
	if (pthread_create(&f->th, NULL, fake_smtp_main, f) != 0)
		return false;
	f->started = true;
	return true;
}

/* Wait for the session to end and stop listening (what it saw stays). */
static inline void fake_smtp_stop(struct fake_smtp *f)
{
	if (f->started)
		pthread_join(f->th, NULL);
	f->started = false;
	if (f->lfd >= 0)
		close(f->lfd);
	f->lfd = -1;
}

/* Free what it saw. */
static inline void fake_smtp_free(struct fake_smtp *f)
{
	fake_smtp_stop(f);
	free(f->data);
	f->data = NULL;
}

#endif
