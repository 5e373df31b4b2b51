/*
 * control_client.c - connect to hatod's control socket, send one request,
 * read its one-line reply: blocking, with poll(2) bounding every wait by
 * one deadline on the monotonic clock.
 */
#include "control_client.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "util.h"

/* Milliseconds on the monotonic clock. */
static long long control_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes: 0, ETIMEDOUT
 * or an errno. */
static int control_wait(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - control_now_ms();
		struct pollfd p = {fd, events, 0};
		int n;

		if (left <= 0)
			return ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

/* Connect to hatod's control socket before the deadline: 0 with *fdp set,
 * or an errno (ENOENT or ECONNREFUSED: nobody listens there). */
static int control_connect(const char *path, long long deadline, int *fdp)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(int);
	int fd, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!strcpy_bounded(sun.sun_path, path, sizeof(sun.sun_path)))
		return ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	while (connect(fd, (const struct sockaddr *)&sun, sizeof(sun)) != 0) {
		e = errno;
		if (e == EAGAIN) { /* Linux: hatod's listen queue is full; try again */
			if (control_now_ms() + 50 >= deadline) {
				close(fd);
				return ETIMEDOUT;
			}
			poll(NULL, 0, 50);
			continue;
		}
		if (e == EINPROGRESS || e == EINTR) { /* goes on in the background */
			e = control_wait(fd, POLLOUT, deadline);
			if (e == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
				e = errno;
		}
		if (e != 0) {
			close(fd);
			return e;
		}
		break;
	}
	*fdp = fd;
	return 0;
}

/* Send one request line and read the one-line reply until hatod closes:
 * 0 with reply set (its LF removed), ETIMEDOUT, EPROTO for a reply that is
 * missing, too long or not one line, or another errno. */
static int control_exchange(int fd, const char *request, long long deadline, char *reply,
			    size_t size)
{
	char line[CONTROL_LINE_MAX + 2];
	size_t len, off = 0, got = 0;
	int e;

	if (!xsnprintf_ok(line, sizeof(line), "%s\n", request))
		return EMSGSIZE;
	len = strlen(line);
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);

		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return errno;
		else if ((e = control_wait(fd, POLLOUT, deadline)) != 0)
			return e;
	}
	for (;;) {
		ssize_t n = recv(fd, reply + got, size - 1 - got, 0);

		if (n == 0 || (n < 0 && errno == ECONNRESET && got > 0))
			break; /* hatod closed the connection after its reply */
		if (n > 0) {
			got += (size_t)n;
			if (got == size - 1)
				return EPROTO;
		} else if (errno != EAGAIN && errno != EINTR) {
			return errno;
		} else if ((e = control_wait(fd, POLLIN, deadline)) != 0) {
			return e;
		}
	}
	reply[got] = '\0';
	if (got == 0 || reply[got - 1] != '\n')
		return EPROTO;
	reply[--got] = '\0';
	for (size_t i = 0; i < got; i++)
		if ((unsigned char)reply[i] < 0x20 || reply[i] == 0x7f)
			return EPROTO;
	return 0;
}

/* See control_client.h. */
int control_request(const char *path, const char *request, unsigned timeout_ms, char *reply,
		    size_t size)
{
	long long deadline = control_now_ms() + timeout_ms;
	int fd = -1, e;

	e = control_connect(path, deadline, &fd);
	if (e != 0)
		return e;
	e = control_exchange(fd, request, deadline, reply, size);
	close(fd);
	return e;
}

/* See control_client.h. */
enum control_reply control_reply_kind(const char *reply, const char **text)
{
	if (strncmp(reply, "OK", 2) == 0 && (reply[2] == '\0' || reply[2] == ' ')) {
		*text = reply[2] == ' ' ? reply + 3 : reply + 2;
		return CONTROL_REPLY_OK;
	}
	if (strncmp(reply, "ERR ", 4) == 0) {
		*text = reply + 4;
		return CONTROL_REPLY_ERR;
	}
	*text = reply;
	return CONTROL_REPLY_OTHER;
}
