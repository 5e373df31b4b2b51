/*
 * lmtp.c - the LMTP client (RFC 2033): one blocking session per call.
 *
 * The dialogue is plain lock-step SMTP without pipelining: greeting, LHLO,
 * MAIL FROM, RCPT TO for each recipient, DATA, the message, and after the
 * final dot one reply per recipient accepted at RCPT, in RCPT order (the
 * one way LMTP differs from SMTP on the wire, §4.2).  QUIT ends it.
 *
 * Every recipient has its own state: OPEN (no answer yet), ACCEPTED (its
 * answer comes after the dot) and DONE (results[i] is final).  Whatever
 * ends the session early - a failed connect, a timeout, a closed
 * connection, a reply that does not parse - gives every recipient not DONE
 * the same TEMPFAIL with the reason; a recipient that got a reply keeps it.
 * If the connection drops among the replies after the dot, the recipients
 * already answered are delivered and the rest are retried later: they may
 * get the message twice, never zero times.
 *
 * Input from the server is bounded: a reply line may be LMTP_LINE_MAX
 * bytes and a reply LMTP_REPLY_LINES_MAX lines, else the session is a
 * protocol error.  Every connect, read and write waits in poll() for at
 * most the caller's timeout.  The message is streamed in fixed chunks, so
 * any size takes the same memory.  Control bytes in a reply become '?'
 * before the text reaches results (and from there logs and the queue).
 *
 * Blocking code: it runs on a worker thread.  Each call allocates its own
 * session (buffers included) and shares nothing, so it is thread-safe;
 * writes use MSG_NOSIGNAL so a closed socket is an error, not a SIGPIPE.
 */
#include "lmtp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

/* Enhanced status codes of failures decided here, in one place. */
#define LMTP_ESC_CONNECT "4.4.1"    /* no answer from host: connect failed or timed out */
#define LMTP_ESC_SESSION "4.4.2"    /* bad connection: timeout, lost, garbled reply */
#define LMTP_ESC_CONFIG "4.3.5"     /* system incorrectly configured: unusable target */
#define LMTP_ESC_MESSAGE "4.3.0"    /* the queued message cannot be read */
#define LMTP_ESC_BAD_RCPT "5.1.3"   /* bad destination mailbox address syntax */
#define LMTP_ESC_BAD_SENDER "5.1.7" /* bad sender's mailbox address syntax */

#define LMTP_LINE_MAX 2048       /* one reply or command line; RFC 5321 replies: 512 */
#define LMTP_REPLY_LINES_MAX 100 /* lines in one multi-line reply */
#define LMTP_READ_BUF 4096
#define LMTP_COPY_BUF (32 * 1024) /* message bytes per chunk; dot-stuffed, at most twice that */
#define LMTP_QUIT_TIMEOUT 10      /* seconds for the QUIT reply: the results are known by then */

/* One parsed reply: "550 5.1.1 <x@y> No such user" has code 550, esc "5.1.1". */
struct lmtp_reply {
	int code;
	char esc[12];
	char text[512]; /* every line's text joined by spaces, code first, truncated to fit */
};

/* How far a recipient has got in the transaction. */
enum lmtp_rcpt_state {
	LMTP_RCPT_OPEN,     /* no answer of its own yet */
	LMTP_RCPT_ACCEPTED, /* RCPT accepted: its answer comes after the final dot */
	LMTP_RCPT_DONE,     /* results[i] is final */
};

/* One session: the socket, its buffers, and the error that ended it. */
struct lmtp_conn {
	const char *target;
	const char *phase; /* what we are doing, for error texts: "greeting", "RCPT TO" */
	int fd;
	int timeout_ms;
	size_t rpos, rlen;
	char esc[12];  /* with err: the enhanced status code of the failure */
	char err[256]; /* "lmtp TARGET: ..." or "lmtp TARGET said: ..." */
	char rbuf[LMTP_READ_BUF];
	char line[LMTP_LINE_MAX];
	char in[LMTP_COPY_BUF];
	char out[2 * LMTP_COPY_BUF];
};

/* Record why the session failed: "lmtp TARGET: " and the formatted reason (truncated to fit). */
static void __attribute__((format(printf, 3, 4)))
conn_fail(struct lmtp_conn *c, const char *esc, const char *fmt, ...)
{
	va_list ap;
	int n;

	strcpy_bounded(c->esc, esc, sizeof(c->esc));
	n = snprintf(c->err, sizeof(c->err), "lmtp %s: ", c->target);
	if (n < 0 || (size_t)n >= sizeof(c->err))
		return;
	va_start(ap, fmt);
	vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Record a failed system call during the current phase. */
static void conn_fail_sys(struct lmtp_conn *c, const char *esc, int err, const char *what)
{
	char ebuf[128];
	const char *etext = strerror_r(err, ebuf, sizeof(ebuf)); /* GNU: thread-safe */

	conn_fail(c, esc, "%s: %s (during %s)", what, etext, c->phase);
}

/* Wait until the socket is ready for events, at most the timeout; false with c->err set. */
static bool conn_wait(struct lmtp_conn *c, short events, const char *esc)
{
	struct pollfd p = {.fd = c->fd, .events = events};
	int rc;

	do
		rc = poll(&p, 1, c->timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		conn_fail(c, esc, "timeout after %ds during %s", c->timeout_ms / 1000, c->phase);
		return false;
	}
	if (rc < 0) {
		conn_fail_sys(c, esc, errno, "poll");
		return false;
	}
	return true;
}

/* Connect a fresh non-blocking socket to addr within the timeout; false with c->err set. */
static bool conn_connect(struct lmtp_conn *c, int family, const struct sockaddr *addr,
			 socklen_t len)
{
	int err = 0;
	socklen_t elen = sizeof(err);

	c->phase = "connect";
	c->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail_sys(c, LMTP_ESC_CONNECT, errno, "socket");
		return false;
	}
	if (connect(c->fd, addr, len) != 0) {
		if (errno != EINPROGRESS)
			err = errno;
		else if (!conn_wait(c, POLLOUT, LMTP_ESC_CONNECT))
			err = -1;
		else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
			err = errno;
	}
	if (err == 0)
		return true;
	if (err > 0)
		conn_fail_sys(c, LMTP_ESC_CONNECT, err, "connect");
	close(c->fd);
	c->fd = -1;
	return false;
}

/* Connect to "unix:/path". */
static bool conn_open_unix(struct lmtp_conn *c, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	if (path[0] == '\0' || !strcpy_bounded(sun.sun_path, path, sizeof(sun.sun_path))) {
		conn_fail(c, LMTP_ESC_CONFIG, "unusable socket path");
		return false;
	}
	return conn_connect(c, AF_UNIX, (const struct sockaddr *)&sun, sizeof(sun));
}

/* Connect to "host:port" or "[v6addr]:port", trying each address of host in turn. */
static bool conn_open_inet(struct lmtp_conn *c)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	const char *t = c->target, *hend, *port;
	char host[256];
	uint64_t portnum;
	int rc;

	if (t[0] == '[') {
		hend = strchr(t, ']');
		port = hend != NULL && hend[1] == ':' ? hend + 2 : NULL;
		t++;
	} else {
		hend = strrchr(t, ':');
		port = hend != NULL && strchr(t, ':') == hend ? hend + 1 : NULL;
	}
	if (port == NULL || hend == t || (size_t)(hend - t) >= sizeof(host) ||
	    !parse_u64(port, 1, 65535, &portnum)) {
		conn_fail(c, LMTP_ESC_CONFIG, "not unix:/path, host:port or [v6addr]:port");
		return false;
	}
	memcpy(host, t, (size_t)(hend - t));
	host[hend - t] = '\0';
	c->phase = "connect";
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		conn_fail(c, LMTP_ESC_CONNECT, "cannot resolve %s: %s", host, gai_strerror(rc));
		return false;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (conn_connect(c, ai->ai_family, ai->ai_addr, ai->ai_addrlen))
			break;
	freeaddrinfo(res);
	return ai != NULL; /* else c->err tells the last address's failure */
}

/* Write all of buf within the timeout per write; false with c->err set. */
static bool conn_write(struct lmtp_conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);

		if (w > 0) {
			buf += w;
			len -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!conn_wait(c, POLLOUT, LMTP_ESC_SESSION))
				return false;
		} else if (w < 0 && errno != EINTR) {
			conn_fail_sys(c, LMTP_ESC_SESSION, errno, "write");
			return false;
		}
	}
	return true;
}

/* Refill the empty read buffer within the timeout; false with c->err set. */
static bool conn_fill(struct lmtp_conn *c)
{
	c->rpos = c->rlen = 0;
	for (;;) {
		ssize_t r = recv(c->fd, c->rbuf, sizeof(c->rbuf), 0);

		if (r > 0) {
			c->rlen = (size_t)r;
			return true;
		}
		if (r == 0) {
			conn_fail(c, LMTP_ESC_SESSION, "connection closed during %s", c->phase);
			return false;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (!conn_wait(c, POLLIN, LMTP_ESC_SESSION))
				return false;
		} else if (errno != EINTR) {
			conn_fail_sys(c, LMTP_ESC_SESSION, errno, "read");
			return false;
		}
	}
}

/* Read one line into c->line, CRLF removed and control bytes made '?'; false with c->err set. */
static bool conn_getline(struct lmtp_conn *c)
{
	size_t n = 0;

	for (;;) {
		char ch;

		if (c->rpos == c->rlen && !conn_fill(c))
			return false;
		ch = c->rbuf[c->rpos++];
		if (ch == '\n')
			break;
		if (n + 1 >= sizeof(c->line)) {
			conn_fail(c, LMTP_ESC_SESSION, "reply line longer than %d bytes during %s",
				  LMTP_LINE_MAX, c->phase);
			return false;
		}
		c->line[n++] = ch;
	}
	if (n > 0 && c->line[n - 1] == '\r')
		n--;
	c->line[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c->line[i] < ' ' || c->line[i] == 0x7f)
			c->line[i] = '?';
	return true;
}

/* Parse "DDD", "DDD text" or "DDD-text": the code (2xx..5xx) and the separator ('\0', ' ', '-'). */
static bool reply_code(const char *line, int *code, char *sep)
{
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
	    line[2] > '9' || (line[3] != '\0' && line[3] != ' ' && line[3] != '-'))
		return false;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*sep = line[3];
	return true;
}

/* Length of a run of 1..3 digits at s, or 0. */
static size_t digits13(const char *s)
{
	size_t n = 0;

	while (n < 4 && s[n] >= '0' && s[n] <= '9')
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/* The reply's enhanced status code (RFC 2034) when its text starts with one of
 * the reply's class, else "X.0.0" from the reply code. */
static void reply_esc(struct lmtp_reply *rep)
{
	const char *p = rep->text + 4, *q = p + 2;
	size_t a, b = 0;

	if (strlen(rep->text) > 4 && p[0] == rep->text[0] && p[1] == '.' && (a = digits13(q)) > 0 &&
	    q[a] == '.' && (b = digits13(q + a + 1)) > 0 &&
	    (q[a + 1 + b] == '\0' || q[a + 1 + b] == ' ')) {
		memcpy(rep->esc, p, 2 + a + 1 + b);
		rep->esc[2 + a + 1 + b] = '\0';
		return;
	}
	snprintf(rep->esc, sizeof(rep->esc), "%c.0.0", rep->text[0]);
}

/* Read one (multi-line) reply; false with c->err set on I/O failure or a garbled reply. */
static bool conn_reply(struct lmtp_conn *c, struct lmtp_reply *rep)
{
	size_t len = 0;
	char sep = '-';

	for (unsigned i = 0; sep == '-'; i++) {
		int code;
		char shown[100];
		const char *text;
		size_t tlen;

		if (i == LMTP_REPLY_LINES_MAX) {
			conn_fail(c, LMTP_ESC_SESSION, "reply longer than %d lines during %s",
				  LMTP_REPLY_LINES_MAX, c->phase);
			return false;
		}
		if (!conn_getline(c))
			return false;
		if (!reply_code(c->line, &code, &sep) || (i > 0 && code != rep->code)) {
			escape_text(c->line, strlen(c->line), shown, sizeof(shown));
			conn_fail(c, LMTP_ESC_SESSION, "garbled reply \"%s\" during %s", shown,
				  c->phase);
			return false;
		}
		rep->code = code;
		/* The first line whole ("550 5.1.1 ..."), the text of each further line after a
		 * space. */
		text = i == 0 ? c->line : c->line + 4;
		if (i > 0 && sep == '\0')
			text = "";
		tlen = strlen(text);
		if (i > 0 && tlen > 0 && len + 1 < sizeof(rep->text))
			rep->text[len++] = ' ';
		if (tlen > sizeof(rep->text) - 1 - len)
			tlen = sizeof(rep->text) - 1 - len;
		memcpy(rep->text + len, text, tlen);
		len += tlen;
		rep->text[len] = '\0';
	}
	reply_esc(rep);
	return true;
}

/* Send one command line (CRLF added) and read its reply; false with c->err set. */
static bool __attribute__((format(printf, 4, 5)))
conn_cmd(struct lmtp_conn *c, struct lmtp_reply *rep, const char *phase, const char *fmt, ...)
{
	char cmd[LMTP_LINE_MAX];
	va_list ap;
	int n;

	c->phase = phase;
	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd) - 2) {
		conn_fail(c, LMTP_ESC_SESSION, "%s command too long", phase);
		return false;
	}
	memcpy(cmd + n, "\r\n", 2);
	return conn_write(c, cmd, (size_t)n + 2) && conn_reply(c, rep);
}

/* Send the message file dot-stuffed (RFC 5321 §4.5.2), then the final "."; false with c->err set.
 */
static bool conn_send_message(struct lmtp_conn *c, int in)
{
	bool bol = true; /* at the beginning of a line */

	c->phase = "message transfer";
	for (;;) {
		ssize_t r = read(in, c->in, sizeof(c->in));
		size_t o = 0;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			conn_fail_sys(c, LMTP_ESC_MESSAGE, errno, "reading the queued message");
			return false;
		}
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			if (bol && c->in[i] == '.')
				c->out[o++] = '.';
			c->out[o++] = c->in[i];
			bol = c->in[i] == '\n';
		}
		if (!conn_write(c, c->out, o))
			return false;
	}
	/* A last line without its CRLF is ended, so the dot stands on its own line. */
	return bol ? conn_write(c, ".\r\n", 3) : conn_write(c, "\r\n.\r\n", 5);
}

/* Record the server's reply as rcpt's final result. */
static void rcpt_settle(struct delivery_result *r, const struct lmtp_reply *rep, const char *target)
{
	result_set(r, outcome_from_reply(rep->code), rep->esc, "lmtp %s said: %s", target,
		   rep->text);
}

/* Give every recipient without a final answer the same outcome. */
static void settle_rest(enum lmtp_rcpt_state *st, size_t n, struct delivery_result *results,
			enum outcome o, const char *esc, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (st[i] != LMTP_RCPT_DONE) {
			result_set(&results[i], o, esc, "%s", text);
			st[i] = LMTP_RCPT_DONE;
		}
}

/* Is s one line's worth of "<...>" (angle brackets, no CR/LF, short enough for a command)? */
static bool path_ok(const char *s)
{
	size_t len = strlen(s);

	return len >= 2 && len < LMTP_LINE_MAX / 2 && s[0] == '<' && s[len - 1] == '>' &&
	       strpbrk(s, "\r\n") == NULL;
}

/* Refuse before connecting what cannot be sent: bad addresses, an unusable hostname. */
static bool check_args(const char *target, const char *hostname, const char *sender,
		       const char *const *rcpts, size_t n, enum lmtp_rcpt_state *st,
		       struct delivery_result *results)
{
	size_t open = 0;

	if (hostname == NULL || hostname[0] == '\0' || strlen(hostname) > 255 ||
	    strpbrk(hostname, "\r\n ") != NULL) {
		for (size_t i = 0; i < n; i++)
			result_set(&results[i], OUTCOME_TEMPFAIL, LMTP_ESC_CONFIG,
				   "lmtp %s: unusable LHLO host name", target);
		return false;
	}
	if (sender == NULL || !path_ok(sender)) {
		for (size_t i = 0; i < n; i++)
			result_set(&results[i], OUTCOME_PERMFAIL, LMTP_ESC_BAD_SENDER,
				   "lmtp %s: unusable sender address", target);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (rcpts[i] != NULL && path_ok(rcpts[i])) {
			open++;
			continue;
		}
		result_set(&results[i], OUTCOME_PERMFAIL, LMTP_ESC_BAD_RCPT,
			   "lmtp %s: unusable recipient address", target);
		st[i] = LMTP_RCPT_DONE;
	}
	return open > 0;
}

/* How a session ended: every answer in (QUIT), failed (close), or failed with the server sane
 * (QUIT). */
enum lmtp_end {
	LMTP_END_DONE,
	LMTP_END_FAILED,
	LMTP_END_FAILED_QUIT,
};

/* Record a refused greeting or LHLO: the server's state, not the mail's, so retry later. */
static enum lmtp_end session_refused(struct lmtp_conn *c, const struct lmtp_reply *rep)
{
	conn_fail(c, rep->code / 100 == 4 ? rep->esc : LMTP_ESC_SESSION, "refused during %s: %s",
		  c->phase, rep->text);
	return LMTP_END_FAILED_QUIT;
}

/* MAIL FROM or DATA refused: the reply is the answer of every recipient still open. */
static enum lmtp_end transaction_refused(const struct lmtp_reply *rep, const char *target,
					 enum lmtp_rcpt_state *st, size_t n,
					 struct delivery_result *results)
{
	for (size_t i = 0; i < n; i++)
		if (st[i] != LMTP_RCPT_DONE) {
			rcpt_settle(&results[i], rep, target);
			st[i] = LMTP_RCPT_DONE;
		}
	return LMTP_END_DONE;
}

/* The dialogue from connect to the last reply after the dot; QUIT is the caller's. */
static enum lmtp_end lmtp_session(struct lmtp_conn *c, const char *hostname, const char *sender,
				  const char *const *rcpts, size_t n, int in,
				  enum lmtp_rcpt_state *st, struct delivery_result *results)
{
	struct lmtp_reply rep;
	size_t accepted = 0;

	if (strncmp(c->target, "unix:", 5) == 0 ? !conn_open_unix(c, c->target + 5)
						: !conn_open_inet(c))
		return LMTP_END_FAILED;
	c->phase = "greeting";
	if (!conn_reply(c, &rep))
		return LMTP_END_FAILED;
	if (rep.code != 220)
		return session_refused(c, &rep);
	if (!conn_cmd(c, &rep, "LHLO", "LHLO %s", hostname))
		return LMTP_END_FAILED;
	if (rep.code != 250)
		return session_refused(c, &rep);

	if (!conn_cmd(c, &rep, "MAIL FROM", "MAIL FROM:%s", sender))
		return LMTP_END_FAILED;
	if (rep.code / 100 != 2)
		return transaction_refused(&rep, c->target, st, n, results);
	for (size_t i = 0; i < n; i++) {
		if (st[i] != LMTP_RCPT_OPEN)
			continue;
		if (!conn_cmd(c, &rep, "RCPT TO", "RCPT TO:%s", rcpts[i]))
			return LMTP_END_FAILED;
		if (rep.code / 100 == 2) {
			st[i] = LMTP_RCPT_ACCEPTED;
			accepted++;
		} else {
			rcpt_settle(&results[i], &rep, c->target);
			st[i] = LMTP_RCPT_DONE;
		}
	}
	if (accepted == 0)
		return LMTP_END_DONE;

	if (!conn_cmd(c, &rep, "DATA", "DATA"))
		return LMTP_END_FAILED;
	if (rep.code / 100 == 2) {
		conn_fail(c, LMTP_ESC_SESSION, "unexpected reply to DATA: %s", rep.text);
		return LMTP_END_FAILED_QUIT;
	}
	if (rep.code != 354)
		return transaction_refused(&rep, c->target, st, n, results);
	if (!conn_send_message(c, in))
		return LMTP_END_FAILED;

	/* RFC 2033 §4.2: one reply per accepted recipient, in RCPT order. */
	c->phase = "end of data";
	for (size_t i = 0; i < n; i++) {
		if (st[i] != LMTP_RCPT_ACCEPTED)
			continue;
		if (!conn_reply(c, &rep))
			return LMTP_END_FAILED;
		rcpt_settle(&results[i], &rep, c->target);
		st[i] = LMTP_RCPT_DONE;
	}
	return LMTP_END_DONE;
}

/* See lmtp.h. */
void lmtp_deliver(const char *target, const char *hostname, const char *msg_path,
		  const char *sender, const char *const *rcpts, size_t n, unsigned timeout_seconds,
		  struct delivery_result *results)
{
	struct lmtp_conn *c;
	struct lmtp_reply rep;
	enum lmtp_rcpt_state *st;
	enum lmtp_end end = LMTP_END_FAILED;
	int in = -1;

	if (n == 0)
		return;
	if (target == NULL)
		target = "(none)";
	st = xcalloc(n, sizeof(*st));
	if (!check_args(target, hostname, sender, rcpts, n, st, results)) {
		free(st);
		return;
	}
	c = xmalloc(sizeof(*c));
	c->target = target;
	c->phase = "opening the queued message";
	c->fd = -1;
	c->timeout_ms = timeout_seconds > INT_MAX / 1000 ? INT_MAX : (int)timeout_seconds * 1000;
	c->rpos = c->rlen = 0;
	c->err[0] = '\0';

	in = open(msg_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		conn_fail_sys(c, LMTP_ESC_MESSAGE, errno, msg_path);
	else
		end = lmtp_session(c, hostname, sender, rcpts, n, in, st, results);
	if (end != LMTP_END_DONE)
		settle_rest(st, n, results, OUTCOME_TEMPFAIL, c->esc, c->err);
	if (end != LMTP_END_FAILED) {
		/* Best effort, briefly: every result is decided already. */
		if (c->timeout_ms > LMTP_QUIT_TIMEOUT * 1000)
			c->timeout_ms = LMTP_QUIT_TIMEOUT * 1000;
		(void)conn_cmd(c, &rep, "QUIT", "QUIT");
	}
	if (c->fd >= 0)
		close(c->fd);
	if (in >= 0)
		close(in);
	free(c);
	free(st);
}
