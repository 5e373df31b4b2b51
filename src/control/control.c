/*
 * control.c - hatod's control socket (see control.h for the protocol).
 *
 * The listening socket is a libevent listener on the daemon's loop; each
 * connection is a bufferevent with a read high-water mark just above
 * CONTROL_LINE_MAX, so a client that never sends a line end costs at most
 * that much memory before it gets "ERR request too long", and a read timeout
 * of CONTROL_TIMEOUT_SECONDS, so one that sends nothing is dropped.  After the
 * reply, reading stops and the connection is freed once the reply has been
 * written (or the write times out).  Failures to serve one client are
 * logged and affect only that client.
 *
 * The socket file gets control_socket_mode by chmod after bind and before
 * listen: until listen nobody can connect (ECONNREFUSED), so whatever the
 * umask made of it never matters, and the umask is left alone (it is
 * shared with the delivery threads, which may be creating Maildirs).
 */
#include "control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include "conf.h"
#include "log.h"
#include "scheduler.h"
#include "util.h"

#define CONTROL_BACKLOG 16

struct control_conn {
	struct control *ctl;
	struct bufferevent *bev;
	struct control_conn *prev, *next;
	unsigned long uid; /* the peer's credentials, for the log */
	long pid;
	bool replied; /* the reply is queued: reading has stopped */
};

struct control {
	struct event_base *base;
	struct scheduler *sc;
	struct evconnlistener *listener;
	char *path;
	dev_t dev; /* the socket file control_open made: control_close unlinks only it */
	ino_t ino;
	struct control_conn *conns; /* doubly linked */
	size_t nconns;
};

/* The verbs that take a queue ID. */
static const struct control_verb {
	const char *name;
	enum control_req req;
} control_id_verbs[] = {
	{"DELETE", CONTROL_REQ_DELETE},   {"HOLD", CONTROL_REQ_HOLD},
	{"RELEASE", CONTROL_REQ_RELEASE}, {"RETRY", CONTROL_REQ_RETRY},
	{"BOUNCE", CONTROL_REQ_BOUNCE},
};

/* See control.h. */
enum control_req control_parse(const char *line, char *id_out, const char **text_out)
{
	const struct control_verb *v = NULL;
	const char *arg;
	size_t n;

	if (strcasecmp(line, "PING") == 0)
		return CONTROL_REQ_PING;
	if (strcasecmp(line, "FLUSH") == 0)
		return CONTROL_REQ_FLUSH;
	for (size_t i = 0; i < sizeof(control_id_verbs) / sizeof(control_id_verbs[0]); i++) {
		n = strlen(control_id_verbs[i].name);
		if (strncasecmp(line, control_id_verbs[i].name, n) == 0 &&
		    (line[n] == '\0' || line[n] == ' ')) {
			v = &control_id_verbs[i];
			break;
		}
	}
	if (v == NULL)
		return CONTROL_REQ_UNKNOWN;
	n = strlen(v->name);
	arg = line[n] == ' ' ? line + n + 1 : line + n;
	if (v->req == CONTROL_REQ_HOLD && strlen(arg) > QUEUE_ID_LEN && arg[QUEUE_ID_LEN] == ' ' &&
	    arg[QUEUE_ID_LEN + 1] != '\0') {
		memcpy(id_out, arg, QUEUE_ID_LEN);
		id_out[QUEUE_ID_LEN] = '\0';
		if (!queue_id_valid(id_out))
			return CONTROL_REQ_BAD_ID;
		if (text_out != NULL)
			*text_out = arg + QUEUE_ID_LEN + 1;
		return v->req;
	}
	if (!queue_id_valid(arg))
		return CONTROL_REQ_BAD_ID;
	memcpy(id_out, arg, QUEUE_ID_LEN + 1);
	if (text_out != NULL && v->req == CONTROL_REQ_HOLD)
		*text_out = "";
	return v->req;
}

/* Unlink a connection from the registry and free it (closes the socket). */
static void control_conn_free(struct control_conn *conn)
{
	struct control *ctl = conn->ctl;

	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		ctl->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	ctl->nconns--;
	bufferevent_free(conn->bev);
	free(conn);
}

/* The reply has been written: the connection is done. */
static void control_write_cb(struct bufferevent *bev, void *arg)
{
	struct control_conn *conn = arg;

	if (conn->replied && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		control_conn_free(conn);
}

/* Queue the reply (one line, LF added) and stop reading: the connection
 * closes once it is written.  Text that does not fit is cut, never a line
 * end inside it: callers pass one line. */
static void control_reply(struct control_conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void control_reply(struct control_conn *conn, const char *fmt, ...)
{
	char buf[CONTROL_REPLY_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = snprintf(buf, sizeof(buf) - 1, "ERR internal error");
	else if ((size_t)n >= sizeof(buf) - 1)
		n = (int)sizeof(buf) - 2; /* cut: the reason is what was too long */
	buf[n++] = '\n';
	conn->replied = true;
	bufferevent_disable(conn->bev, EV_READ);
	if (bufferevent_write(conn->bev, buf, (size_t)n) != 0) {
		log_warnx("event=control uid=%lu pid=%ld result=error error=\"cannot queue the "
			  "reply\"",
			  conn->uid, conn->pid);
		control_conn_free(conn);
	}
}

/* Replace line ends and other control characters by spaces, so a reason
 * from elsewhere fits on one reply line. */
static void one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* Carry out a request on one message (id) and reply with its outcome. */
static void control_message(struct control_conn *conn, enum control_req req, const char *id,
			    const char *text)
{
	struct control *ctl = conn->ctl;
	char err[512], reason[CONTROL_LINE_MAX + 1], shown[CONTROL_LINE_MAX * 4 + 8];
	const char *verb = "delete";
	size_t failed = 0;
	bool ok = false;

	err[0] = '\0';
	switch (req) {
	case CONTROL_REQ_DELETE:
		ok = scheduler_delete(ctl->sc, id, err, sizeof(err));
		break;
	case CONTROL_REQ_HOLD:
		verb = "hold";
		strcpy_bounded(reason, text[0] ? text : CONTROL_HOLD_REASON, sizeof(reason));
		one_line(reason);
		ok = scheduler_hold(ctl->sc, id, reason, err, sizeof(err));
		break;
	case CONTROL_REQ_RELEASE:
		verb = "release";
		ok = scheduler_release(ctl->sc, id, err, sizeof(err));
		break;
	case CONTROL_REQ_RETRY:
		verb = "retry";
		ok = scheduler_retry(ctl->sc, id, err, sizeof(err));
		break;
	case CONTROL_REQ_BOUNCE:
		verb = "bounce";
		ok = scheduler_bounce(ctl->sc, id, &failed, err, sizeof(err));
		break;
	default:
		break;
	}
	if (!ok) {
		if (err[0] == '\0')
			snprintf(err, sizeof(err), "cannot %s %s", verb, id);
		one_line(err);
		escape_text(err, strlen(err), shown, sizeof(shown));
		log_warnx("event=control uid=%lu pid=%ld request=%s queue_id=%s result=error "
			  "error=\"%s\"",
			  conn->uid, conn->pid, verb, id, shown);
		control_reply(conn, "ERR %s", err);
		return;
	}
	log_info("event=control uid=%lu pid=%ld request=%s queue_id=%s result=ok", conn->uid,
		 conn->pid, verb, id);
	switch (req) {
	case CONTROL_REQ_HOLD:
		control_reply(conn, "OK held %s", id);
		break;
	case CONTROL_REQ_RELEASE:
		control_reply(conn, "OK released %s", id);
		break;
	case CONTROL_REQ_RETRY:
		control_reply(conn, "OK retrying %s", id);
		break;
	case CONTROL_REQ_BOUNCE:
		control_reply(conn, "OK bounced %s: %zu recipient%s returned to the sender", id,
			      failed, failed == 1 ? "" : "s");
		break;
	default:
		control_reply(conn, "OK deleted %s", id);
		break;
	}
}

/* Act on one request line (line end removed, len octets, no NUL inside
 * unless the client sent one) and reply.  conn may be freed on return. */
static void control_handle(struct control_conn *conn, const char *line, size_t len)
{
	struct control *ctl = conn->ctl;
	char id[QUEUE_ID_LEN + 1], shown[CONTROL_LINE_MAX * 4 + 8];
	const char *text = "";
	enum control_req req;

	escape_text(line, len, shown, sizeof(shown));
	if (memchr(line, '\0', len) != NULL) {
		log_warnx("event=control uid=%lu pid=%ld request=unknown line=\"%s\" "
			  "result=error error=\"unknown request\"",
			  conn->uid, conn->pid, shown);
		control_reply(conn, "ERR unknown request");
		return;
	}
	switch (req = control_parse(line, id, &text)) {
	case CONTROL_REQ_PING:
		log_debug("event=control uid=%lu pid=%ld request=ping result=ok", conn->uid,
			  conn->pid);
		control_reply(conn, "OK hatod %s", HATO_VERSION);
		break;
	case CONTROL_REQ_FLUSH:
		scheduler_flush(ctl->sc);
		log_info("event=control uid=%lu pid=%ld request=flush result=ok", conn->uid,
			 conn->pid);
		control_reply(conn, "OK flushed");
		break;
	case CONTROL_REQ_DELETE:
	case CONTROL_REQ_HOLD:
	case CONTROL_REQ_RELEASE:
	case CONTROL_REQ_RETRY:
	case CONTROL_REQ_BOUNCE:
		control_message(conn, req, id, text);
		break;
	case CONTROL_REQ_BAD_ID:
		log_warnx("event=control uid=%lu pid=%ld request=bad_id line=\"%s\" "
			  "result=error error=\"bad queue ID\"",
			  conn->uid, conn->pid, shown);
		control_reply(conn, "ERR bad queue ID (%d upper-case hex digits)", QUEUE_ID_LEN);
		break;
	case CONTROL_REQ_UNKNOWN:
	default:
		log_warnx("event=control uid=%lu pid=%ld request=unknown line=\"%s\" "
			  "result=error error=\"unknown request\"",
			  conn->uid, conn->pid, shown);
		control_reply(conn, "ERR unknown request");
		break;
	}
}

/* The request is longer than CONTROL_LINE_MAX: refuse it and close. */
static void control_too_long(struct control_conn *conn)
{
	log_warnx("event=control uid=%lu pid=%ld result=error error=\"request too long\" "
		  "limit=%d",
		  conn->uid, conn->pid, CONTROL_LINE_MAX);
	control_reply(conn, "ERR request too long (at most %d octets)", CONTROL_LINE_MAX);
}

/*
 * Look for a whole request line in the input.  at_eof: the client has shut
 * its side down, so what is buffered is all there will be (a last line
 * without LF still counts, as `printf PING | nc -U` sends it).
 */
static void control_try_line(struct control_conn *conn, bool at_eof)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	char buf[CONTROL_LINE_MAX + 2]; /* the line, an optional CR, the LF */
	ev_ssize_t got;
	char *lf;
	size_t len;

	if (conn->replied)
		return;
	got = evbuffer_copyout(in, buf, sizeof(buf));
	if (got < 0) {
		control_conn_free(conn);
		return;
	}
	lf = memchr(buf, '\n', (size_t)got);
	if (lf == NULL) {
		if ((size_t)got == sizeof(buf)) { /* over the limit even if a CR LF follows */
			control_too_long(conn);
			return;
		}
		if (!at_eof)
			return; /* wait for the rest */
		if (got == 0) {
			control_conn_free(conn); /* connected, said nothing: a liveness probe */
			return;
		}
		len = (size_t)got;
	} else {
		len = (size_t)(lf - buf);
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len > CONTROL_LINE_MAX) {
		control_too_long(conn);
		return;
	}
	buf[len] = '\0';
	control_handle(conn, buf, len);
}

/* Input arrived. */
static void control_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	control_try_line(arg, false);
}

/* EOF, error or timeout on a connection. */
static void control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct control_conn *conn = arg;

	(void)bev;
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !conn->replied) {
		control_try_line(conn, true);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		log_warnx("event=control uid=%lu pid=%ld result=timeout phase=%s", conn->uid,
			  conn->pid, conn->replied ? "reply" : "request");
	else if ((what & BEV_EVENT_ERROR) && EVUTIL_SOCKET_ERROR() != EPIPE &&
		 EVUTIL_SOCKET_ERROR() != ECONNRESET)
		log_warn("event=control uid=%lu pid=%ld result=error", conn->uid, conn->pid);
	control_conn_free(conn);
}

/* A client connected. */
static void control_accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
			      int salen, void *arg)
{
	static const char busy[] = "ERR busy\n";
	struct control *ctl = arg;
	struct timeval tv = {CONTROL_TIMEOUT_SECONDS, 0};
	struct control_conn *conn;
	struct ucred cred;
	socklen_t credlen = sizeof(cred);

	(void)ev;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0) {
		cred.uid = (uid_t)-1;
		cred.pid = -1;
	}
	if (ctl->nconns >= CONTROL_CONNECTIONS_MAX) {
		log_warnx("event=control uid=%lu pid=%ld result=busy connections=%zu",
			  (unsigned long)cred.uid, (long)cred.pid, ctl->nconns);
		/* non-blocking and short: it fits the socket buffer or is lost */
		(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		evutil_closesocket(fd);
		return;
	}
	conn = xcalloc(1, sizeof(*conn));
	conn->ctl = ctl;
	conn->uid = (unsigned long)cred.uid;
	conn->pid = (long)cred.pid;
	conn->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (conn->bev == NULL) {
		log_warnx("event=control uid=%lu pid=%ld result=error error=\"cannot create a "
			  "bufferevent\"",
			  conn->uid, conn->pid);
		evutil_closesocket(fd);
		free(conn);
		return;
	}
	conn->next = ctl->conns;
	if (ctl->conns != NULL)
		ctl->conns->prev = conn;
	ctl->conns = conn;
	ctl->nconns++;
	bufferevent_setcb(conn->bev, control_read_cb, control_write_cb, control_event_cb, conn);
	bufferevent_setwatermark(conn->bev, EV_READ, 0, CONTROL_LINE_MAX + 2);
	bufferevent_set_timeouts(conn->bev, &tv, &tv);
	bufferevent_enable(conn->bev, EV_READ);
}

/* accept() failed (usually out of descriptors): keep serving. */
static void control_accept_error_cb(struct evconnlistener *ev, void *arg)
{
	(void)ev;
	(void)arg;
	log_warn("event=control result=accept_failed");
}

/*
 * A file already at path: remove it when it is a socket nobody listens on
 * (a hatod that died left it).  False with err when it must stay: another
 * process serves it, or it is not a socket.
 */
static bool control_remove_stale(const char *path, const struct sockaddr_un *sun, char *err,
				 size_t errsz)
{
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return true;
		snprintf(err, errsz, "control_socket %s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errsz, "control_socket %s: exists and is not a socket", path);
		return false;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsz, "control_socket: socket: %s", strerror(errno));
		return false;
	}
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, errsz, "control_socket %s: in use (is another hatod running?)", path);
		return false;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errsz, "control_socket %s: cannot check the existing socket: %s",
			 path, strerror(e));
		return false;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errsz, "control_socket %s: cannot remove the stale socket: %s", path,
			 strerror(errno));
		return false;
	}
	log_info("event=control action=remove_stale path=%s", path);
	return true;
}

/* See control.h. */
struct control *control_open(struct event_base *base, const struct conf *c, struct scheduler *sc,
			     char *err, size_t errsz)
{
	struct sockaddr_un sun;
	struct control *ctl;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!strcpy_bounded(sun.sun_path, c->control_socket, sizeof(sun.sun_path))) {
		snprintf(err, errsz,
			 "control_socket %s: too long for a unix socket (at most %zu "
			 "octets)",
			 c->control_socket, sizeof(sun.sun_path) - 1);
		return NULL;
	}
	if (!control_remove_stale(c->control_socket, &sun, err, errsz))
		return NULL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsz, "control_socket: socket: %s", strerror(errno));
		return NULL;
	}
	if (bind(fd, (const struct sockaddr *)&sun, sizeof(sun)) != 0) {
		snprintf(err, errsz, "control_socket %s: bind: %s", c->control_socket,
			 strerror(errno));
		close(fd);
		return NULL;
	}
	/* before listen: nobody can have connected under the umask's mode */
	if (chmod(c->control_socket, c->control_socket_mode) != 0 ||
	    lstat(c->control_socket, &st) != 0) {
		snprintf(err, errsz, "control_socket %s: chmod %04o: %s", c->control_socket,
			 c->control_socket_mode, strerror(errno));
		unlink(c->control_socket);
		close(fd);
		return NULL;
	}
	ctl = xcalloc(1, sizeof(*ctl));
	ctl->base = base;
	ctl->sc = sc;
	ctl->path = xstrdup(c->control_socket);
	ctl->dev = st.st_dev;
	ctl->ino = st.st_ino;
	ctl->listener = evconnlistener_new(base, control_accept_cb, ctl,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
					   CONTROL_BACKLOG, fd);
	if (ctl->listener == NULL) {
		snprintf(err, errsz, "control_socket %s: listen: %s", c->control_socket,
			 strerror(errno));
		unlink(c->control_socket);
		close(fd);
		free(ctl->path);
		free(ctl);
		return NULL;
	}
	evconnlistener_set_error_cb(ctl->listener, control_accept_error_cb);
	log_info("event=control action=listening path=%s mode=%04o", ctl->path,
		 c->control_socket_mode);
	return ctl;
}

/* See control.h. */
void control_close(struct control *ctl)
{
	struct stat st;

	if (ctl == NULL)
		return;
	while (ctl->conns != NULL)
		control_conn_free(ctl->conns);
	evconnlistener_free(ctl->listener);
	if (lstat(ctl->path, &st) == 0 && st.st_dev == ctl->dev && st.st_ino == ctl->ino)
		unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
