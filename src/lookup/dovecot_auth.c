/*
 * dovecot_auth.c - one password check against Dovecot's auth-client
 * socket, on the event loop (see dovecot_auth.h).
 */
#include "dovecot_auth.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base64.h"
#include "util.h"

/* Lines taken from the server in one check, at most. */
#define DOVECOT_LINES_MAX 1024
/* The one request of a connection. */
#define DOVECOT_REQUEST_ID 1
/* The fixed part of an AUTH line, besides the fields it carries. */
#define DOVECOT_REQUEST_SLACK 256

enum check_step {
	CHECK_HANDSHAKE, /* reading VERSION, MECH ... DONE */
	CHECK_WAIT,      /* AUTH sent: waiting for OK, FAIL or CONT */
};

struct dovecot_check {
	struct bufferevent *bev;
	struct event *timer; /* the deadline; also delivers an early failure */
	dovecot_auth_done_fn done;
	void *arg;
	char *request; /* the AUTH line, until it is handed to the socket */
	size_t request_len;
	enum check_step step;
	unsigned lines;
	bool plain;         /* MECH PLAIN seen */
	bool early_failure; /* reason holds why: deliver it from the timer */
	char reason[160];
};

/* Wipe and free a buffer that held the password. */
static void wipe_free(char *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

/* evbuffer cleanup of the request once it has left (or the buffer goes). */
static void request_sent(const void *data, size_t len, void *arg)
{
	(void)arg;
	wipe_free((char *)data, len);
}

/* Report once and release everything. */
static void check_finish(struct dovecot_check *c, enum dovecot_auth_result r, const char *user,
			 const char *reason)
{
	dovecot_auth_done_fn done = c->done;
	void *arg = c->arg;

	if (c->bev != NULL)
		bufferevent_free(c->bev);
	event_free(c->timer);
	wipe_free(c->request, c->request_len);
	done(arg, r, user, reason);
	free(c);
}

/* A temporary failure with a formatted reason. */
static void check_tempfail(struct dovecot_check *c, const char *what, const char *detail)
{
	char reason[sizeof(c->reason)];

	snprintf(reason, sizeof(reason), "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
	check_finish(c, DOVECOT_AUTH_TEMPFAIL, NULL, reason);
}

/* DONE: Dovecot has said what it offers; ask. */
static bool check_send(struct dovecot_check *c)
{
	if (!c->plain) {
		check_tempfail(c, "Dovecot offers no PLAIN mechanism", NULL);
		return false;
	}
	evbuffer_add_reference(bufferevent_get_output(c->bev), c->request, c->request_len,
			       request_sent, NULL);
	c->request = NULL; /* the buffer wipes it once sent */
	c->step = CHECK_WAIT;
	return true;
}

/* One line from the server; false once the check has finished. */
static bool check_line(struct dovecot_check *c, const struct dovecot_line *l)
{
	if (c->lines == 1 && l->type != DOVECOT_LINE_VERSION) {
		check_tempfail(c, "Dovecot protocol error", "no VERSION first");
		return false;
	}
	switch (l->type) {
	case DOVECOT_LINE_VERSION:
		if (l->major != 1) {
			char v[32];
			snprintf(v, sizeof(v), "%lu.%lu", l->major, l->minor);
			check_tempfail(c, "Dovecot auth protocol version not 1.x", v);
			return false;
		}
		return true;
	case DOVECOT_LINE_MECH:
		if (strcasecmp(l->mech, "PLAIN") == 0)
			c->plain = true;
		return true;
	case DOVECOT_LINE_DONE:
		if (c->step == CHECK_HANDSHAKE)
			return check_send(c);
		return true;
	case DOVECOT_LINE_OK:
	case DOVECOT_LINE_FAIL:
	case DOVECOT_LINE_CONT:
		if (c->step != CHECK_WAIT || l->id != DOVECOT_REQUEST_ID) {
			check_tempfail(c, "Dovecot protocol error", "answer to no request of ours");
			return false;
		}
		if (l->type == DOVECOT_LINE_OK)
			check_finish(c, DOVECOT_AUTH_OK, l->user[0] ? l->user : NULL, NULL);
		else if (l->type == DOVECOT_LINE_CONT)
			check_tempfail(c, "Dovecot protocol error",
				       "CONT after a whole PLAIN response");
		else if (l->temp)
			check_tempfail(c, "Dovecot: temporary failure", NULL);
		else
			check_finish(c, DOVECOT_AUTH_FAILED, NULL, NULL);
		return false;
	case DOVECOT_LINE_OTHER:
		return true;
	}
	return true;
}

/* Lines arrived: take every whole one, bounded in length and number. */
static void check_read_cb(struct bufferevent *bev, void *arg)
{
	struct dovecot_check *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		size_t eol_len;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		struct dovecot_line l;
		size_t len;
		const char *line;
		bool ok;

		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > DOVECOT_LINE_MAX)
				check_tempfail(c, "Dovecot protocol error", "line too long");
			return;
		}
		len = (size_t)eol.pos;
		if (len > DOVECOT_LINE_MAX || ++c->lines > DOVECOT_LINES_MAX) {
			check_tempfail(c, "Dovecot protocol error",
				       len > DOVECOT_LINE_MAX ? "line too long" : "too many lines");
			return;
		}
		line = (const char *)evbuffer_pullup(in, (ev_ssize_t)(len + 1));
		ok = dovecot_line_parse(line, len, &l);
		evbuffer_drain(in, len + 1);
		if (!ok) {
			check_tempfail(c, "Dovecot protocol error", "malformed line");
			return;
		}
		if (!check_line(c, &l))
			return;
	}
}

/* The connection ended or failed before an answer. */
static void check_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dovecot_check *c = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF)
		check_tempfail(c, "Dovecot closed the connection", NULL);
	else if (what & BEV_EVENT_ERROR)
		check_tempfail(c, "Dovecot connection failed",
			       strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : EIO));
}

/* The deadline passed, or an early failure waits to be delivered. */
static void check_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dovecot_check *c = arg;
	char reason[sizeof(c->reason)];

	(void)fd;
	(void)what;
	if (c->early_failure) {
		memcpy(reason, c->reason, sizeof(reason));
		check_finish(c, DOVECOT_AUTH_TEMPFAIL, NULL, reason);
		return;
	}
	check_tempfail(c, "Dovecot did not answer within dovecot_timeout", NULL);
}

/* Connect to path without blocking; -1 with errno on failure. */
static int check_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!strcpy_bounded(sun.sun_path, path, sizeof(sun.sun_path))) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* See dovecot_auth.h. */
void dovecot_auth_check(struct event_base *base, const char *path, unsigned timeout,
			const struct dovecot_query *q, dovecot_auth_done_fn done, void *arg)
{
	struct dovecot_check *c = xcalloc(1, sizeof(*c));
	struct timeval tv = {(time_t)timeout, 0};
	size_t size = BASE64_ENCODED_SIZE(strlen(q->user) + strlen(q->password) + 2) +
		      strlen(q->session) + strlen(q->client_addr) +
		      (q->local_addr ? strlen(q->local_addr) : 0) + DOVECOT_REQUEST_SLACK;
	char hello[64];
	int fd;

	c->done = done;
	c->arg = arg;
	c->timer = evtimer_new(base, check_timer_cb, c);
	c->request = xmalloc(size);
	c->request_len = dovecot_auth_line(c->request, size, DOVECOT_REQUEST_ID, q);
	if (c->request_len == 0) {
		c->early_failure = true;
		snprintf(c->reason, sizeof(c->reason), "cannot write the request");
	} else if ((fd = check_connect(path)) < 0) {
		c->early_failure = true;
		snprintf(c->reason, sizeof(c->reason), "cannot connect to %s: %s", path,
			 strerror(errno));
	} else {
		c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(c->bev, check_read_cb, NULL, check_event_cb, c);
		snprintf(hello, sizeof(hello), "VERSION\t1\t2\nCPID\t%ld\n", (long)getpid());
		bufferevent_write(c->bev, hello, strlen(hello));
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	}
	if (c->early_failure) /* reported from the loop, never from here */
		tv.tv_sec = 0;
	evtimer_add(c->timer, &tv);
}
