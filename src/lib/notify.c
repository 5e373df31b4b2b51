/*
 * notify.c - the sd_notify(3) datagram protocol: one sendto() of the state
 * text to the unix socket named by $NOTIFY_SOCKET.  See notify.h.
 */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Fill *sun from $NOTIFY_SOCKET's value; its length in *len.  false with
 * errno when the name is not a path or an abstract "@name", or too long. */
static bool notify_address(const char *name, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n = strlen(name);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if ((name[0] != '/' && name[0] != '@') || n < 2) {
		errno = EAFNOSUPPORT;
		return false;
	}
	if (n > sizeof(sun->sun_path) || (name[0] == '/' && n == sizeof(sun->sun_path))) {
		errno = ENAMETOOLONG;
		return false;
	}
	memcpy(sun->sun_path, name, n);
	if (name[0] == '@')
		sun->sun_path[0] = '\0'; /* abstract: no terminating NUL counts */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
	return true;
}

/* See notify.h. */
bool notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	ssize_t sent;
	int fd, saved;

	if (name == NULL || name[0] == '\0')
		return true;
	if (!notify_address(name, &sun, &len))
		return false;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len);
	saved = errno;
	close(fd);
	errno = saved;
	return sent == (ssize_t)strlen(state);
}

/* See notify.h. */
bool notify_reloading(void)
{
	struct timespec ts;
	char state[64];

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return false;
	if (!xsnprintf_ok(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
			  (unsigned long long)ts.tv_sec * 1000000ULL +
				  (unsigned long long)ts.tv_nsec / 1000)) {
		errno = EOVERFLOW;
		return false;
	}
	return notify_send(state);
}
