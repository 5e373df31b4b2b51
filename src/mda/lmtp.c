/*
 * lmtp.c - the LMTP client (RFC 2033): one blocking session per call.
 *
 * The dialogue is plain lock-step SMTP without pipelining: greeting, LHLO,
 * MAIL FROM, RCPT TO for each recipient, DATA, the message, and after the
 * final dot one reply per recipient accepted at RCPT, in RCPT order (the
 * one way LMTP differs from SMTP on the wire, §4.2).  QUIT ends it.
 *
 * The connection itself is smtp_conn's (src/client/smtp_conn.h): connect
 * within the timeout, whole replies read with bounds (a line that does not
 * parse, or too many or too long lines, is a garbled reply), the message
 * streamed dot-stuffed in fixed chunks, so any size takes the same memory.
 * Control octets in a reply become '?' before its text reaches results
 * (and from there logs and the queue).  What stays here is LMTP's own:
 * turning the target into addresses, the recipients' states, and the
 * outcome of each recipient.
 *
 * Every recipient has its own state: OPEN (no answer yet), ACCEPTED (its
 * answer comes after the dot) and DONE (results[i] is final).  Whatever
 * ends the session early - a failed connect, a timeout, a closed
 * connection, a reply that does not parse - gives every recipient not DONE
 * the same TEMPFAIL with the reason; a recipient that got a reply keeps it.
 * A 421 (the server is closing) is the answer of every recipient not DONE.
 * If the connection drops among the replies after the dot, the recipients
 * already answered are delivered and the rest are retried later: they may
 * get the message twice, never zero times.
 *
 * Blocking code: it runs on a worker thread.  Each call allocates its own
 * session and shares nothing, so it is thread-safe; writes never raise
 * SIGPIPE (smtp_conn sends with MSG_NOSIGNAL).
 */
#include "lmtp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "smtp_conn.h"
#include "util.h"

/* Enhanced status codes of failures decided here, in one place. */
#define LMTP_ESC_CONNECT "4.4.1"    /* no answer from host: connect failed or timed out */
#define LMTP_ESC_SESSION "4.4.2"    /* bad connection: timeout, lost, garbled reply */
#define LMTP_ESC_CONFIG "4.3.5"     /* system incorrectly configured: unusable target */
#define LMTP_ESC_MESSAGE "4.3.0"    /* the queued message cannot be read */
#define LMTP_ESC_BAD_RCPT "5.1.3"   /* bad destination mailbox address syntax */
#define LMTP_ESC_BAD_SENDER "5.1.7" /* bad sender's mailbox address syntax */

#define LMTP_PATH_MAX 1023   /* octets of a "<...>" we send: one command line, room to spare */
#define LMTP_QUIT_TIMEOUT 10 /* seconds for the QUIT reply: the results are known by then */

_Static_assert(LMTP_PATH_MAX + sizeof("MAIL FROM:\r\n") <= SMTP_CONN_CMD_MAX,
	       "a MAIL FROM or RCPT TO line fits smtp_conn's command buffer");

/* How far a recipient has got in the transaction. */
enum lmtp_rcpt_state {
	LMTP_RCPT_OPEN,     /* no answer of its own yet */
	LMTP_RCPT_ACCEPTED, /* RCPT accepted: its answer comes after the final dot */
	LMTP_RCPT_DONE,     /* results[i] is final */
};

/* One session: the connection, and the error that ended it. */
struct lmtp_session {
	const char *target;
	unsigned timeout; /* seconds for each connect, reply and write */
	char esc[12];     /* with err: the enhanced status code of the failure */
	char err[256];    /* "lmtp TARGET: ..." */
	uint64_t msg_len; /* the queued message's octets */
	struct smtp_conn conn;
};

/* Record why the session failed: "lmtp TARGET: " and the formatted reason (truncated to
 * fit).  Returns false. */
static bool __attribute__((format(printf, 3, 4)))
sess_fail(struct lmtp_session *s, const char *esc, const char *fmt, ...)
{
	va_list ap;
	int n;

	strcpy_bounded(s->esc, esc, sizeof(s->esc));
	n = snprintf(s->err, sizeof(s->err), "lmtp %s: ", s->target);
	if (n < 0 || (size_t)n >= sizeof(s->err))
		return false;
	va_start(ap, fmt);
	vsnprintf(s->err + n, sizeof(s->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

/* Connect to one address; false with the failure recorded (the caller may try another). */
static bool sess_connect(struct lmtp_session *s, const struct sockaddr *sa, socklen_t len)
{
	if (smtp_conn_connect(&s->conn, sa, len, s->timeout))
		return true;
	return sess_fail(s, LMTP_ESC_CONNECT, "connect: %s", s->conn.err);
}

/* Connect to "unix:/path". */
static bool sess_open_unix(struct lmtp_session *s, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	if (path[0] == '\0' || !strcpy_bounded(sun.sun_path, path, sizeof(sun.sun_path)))
		return sess_fail(s, LMTP_ESC_CONFIG, "unusable socket path");
	return sess_connect(s, (const struct sockaddr *)&sun, sizeof(sun));
}

/* Connect to "host:port" or "[v6addr]:port", trying each address of host in turn. */
static bool sess_open_inet(struct lmtp_session *s)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	const char *t = s->target, *hend, *port;
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
	    !parse_u64(port, 1, 65535, &portnum))
		return sess_fail(s, LMTP_ESC_CONFIG, "not unix:/path, host:port or [v6addr]:port");
	memcpy(host, t, (size_t)(hend - t));
	host[hend - t] = '\0';
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return sess_fail(s, LMTP_ESC_CONNECT, "cannot resolve %s: %s", host,
				 gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (sess_connect(s, ai->ai_addr, ai->ai_addrlen))
			break;
	freeaddrinfo(res);
	return ai != NULL; /* else s->err tells the last address's failure */
}

/* Read one reply, waiting for phase ("the greeting"); false with the failure recorded. */
static bool sess_reply(struct lmtp_session *s, struct smtp_reply *rep, const char *phase)
{
	s->conn.phase = phase;
	if (smtp_conn_reply(&s->conn, rep, s->timeout, NULL))
		return true;
	return sess_fail(s, LMTP_ESC_SESSION, "%s", s->conn.err);
}

/* Send one command line (CRLF added) and read its reply; false with the failure recorded. */
static bool __attribute__((format(printf, 4, 5)))
sess_cmd(struct lmtp_session *s, struct smtp_reply *rep, const char *phase, const char *fmt, ...)
{
	char cmd[SMTP_CONN_CMD_MAX]; /* a longer line is refused by smtp_conn_cmd */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (smtp_conn_cmd(&s->conn, rep, phase, NULL, cmd, s->timeout, NULL))
		return true;
	return sess_fail(s, LMTP_ESC_SESSION, "%s", s->conn.err);
}

/* Stream the message at fd dot-stuffed, with the final dot; false with the failure recorded. */
static bool sess_send_message(struct lmtp_session *s, int fd)
{
	if (smtp_conn_send_file(&s->conn, fd, s->msg_len, s->timeout))
		return true;
	/* CONN_FAIL_SOFTWARE: our side could not read the queued message */
	return sess_fail(s,
			 s->conn.fail == CONN_FAIL_SOFTWARE ? LMTP_ESC_MESSAGE : LMTP_ESC_SESSION,
			 "%s", s->conn.err);
}

/* Record the server's reply as rcpt's final result. */
static void rcpt_settle(struct delivery_result *r, const struct smtp_reply *rep, const char *target)
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

	return len >= 2 && len <= LMTP_PATH_MAX && s[0] == '<' && s[len - 1] == '>' &&
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
static enum lmtp_end session_refused(struct lmtp_session *s, const char *step,
				     const struct smtp_reply *rep)
{
	sess_fail(s, rep->code / 100 == 4 ? rep->esc : LMTP_ESC_SESSION, "refused during %s: %s",
		  step, rep->text);
	return LMTP_END_FAILED_QUIT;
}

/* MAIL FROM, DATA refused or a 421: the reply is the answer of every recipient not DONE. */
static enum lmtp_end transaction_refused(const struct smtp_reply *rep, const char *target,
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
static enum lmtp_end lmtp_session(struct lmtp_session *s, const char *hostname, const char *sender,
				  const char *const *rcpts, size_t n, int in,
				  enum lmtp_rcpt_state *st, struct delivery_result *results)
{
	struct smtp_reply rep;
	size_t accepted = 0;

	if (strncmp(s->target, "unix:", 5) == 0 ? !sess_open_unix(s, s->target + 5)
						: !sess_open_inet(s))
		return LMTP_END_FAILED;
	if (!sess_reply(s, &rep, "the greeting"))
		return LMTP_END_FAILED;
	if (rep.code != 220)
		return session_refused(s, "greeting", &rep);
	if (!sess_cmd(s, &rep, "LHLO", "LHLO %s", hostname))
		return LMTP_END_FAILED;
	if (rep.code != 250)
		return session_refused(s, "LHLO", &rep);

	if (!sess_cmd(s, &rep, "MAIL FROM", "MAIL FROM:%s", sender))
		return LMTP_END_FAILED;
	if (rep.code / 100 != 2)
		return transaction_refused(&rep, s->target, st, n, results);
	for (size_t i = 0; i < n; i++) {
		if (st[i] != LMTP_RCPT_OPEN)
			continue;
		if (!sess_cmd(s, &rep, "RCPT TO", "RCPT TO:%s", rcpts[i]))
			return LMTP_END_FAILED;
		if (rep.code / 100 == 2) {
			st[i] = LMTP_RCPT_ACCEPTED;
			accepted++;
		} else {
			rcpt_settle(&results[i], &rep, s->target);
			st[i] = LMTP_RCPT_DONE;
		}
		if (s->conn.broken) /* 421: the server is closing */
			return transaction_refused(&rep, s->target, st, n, results);
	}
	if (accepted == 0)
		return LMTP_END_DONE;

	if (!sess_cmd(s, &rep, "DATA", "DATA"))
		return LMTP_END_FAILED;
	if (rep.code / 100 == 2) {
		sess_fail(s, LMTP_ESC_SESSION, "unexpected reply to DATA: %s", rep.text);
		return LMTP_END_FAILED_QUIT;
	}
	if (rep.code != 354)
		return transaction_refused(&rep, s->target, st, n, results);
	if (!sess_send_message(s, in))
		return LMTP_END_FAILED;

	/* RFC 2033 §4.2: one reply per accepted recipient, in RCPT order. */
	for (size_t i = 0; i < n; i++) {
		if (st[i] != LMTP_RCPT_ACCEPTED)
			continue;
		if (!sess_reply(s, &rep, "the replies after the final dot"))
			return LMTP_END_FAILED;
		rcpt_settle(&results[i], &rep, s->target);
		st[i] = LMTP_RCPT_DONE;
		if (s->conn.broken) /* 421: the server is closing */
			return transaction_refused(&rep, s->target, st, n, results);
	}
	return LMTP_END_DONE;
}

/* See lmtp.h. */
void lmtp_deliver(const char *target, const char *hostname, int msg_fd, uint64_t msg_len,
		  const char *sender, const char *const *rcpts, size_t n, unsigned timeout_seconds,
		  struct delivery_result *results)
{
	struct lmtp_session *s;
	struct smtp_reply rep;
	enum lmtp_rcpt_state *st;
	enum lmtp_end end = LMTP_END_FAILED;
	char eb[128];

	if (n == 0)
		return;
	if (target == NULL)
		target = "(none)";
	st = xcalloc(n, sizeof(*st));
	if (!check_args(target, hostname, sender, rcpts, n, st, results)) {
		free(st);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->target = target;
	s->timeout = timeout_seconds;
	smtp_conn_init(&s->conn);

	s->msg_len = msg_len;
	/* from its start, whatever an earlier delivery of this fd read */
	if (lseek(msg_fd, 0, SEEK_SET) != 0)
		sess_fail(s, LMTP_ESC_MESSAGE, "reading the queued message: %s",
			  strerror_r(errno, eb, sizeof(eb))); /* GNU: returns the text */
	else
		end = lmtp_session(s, hostname, sender, rcpts, n, msg_fd, st, results);
	if (end != LMTP_END_DONE)
		settle_rest(st, n, results, OUTCOME_TEMPFAIL, s->esc, s->err);
	if (end != LMTP_END_FAILED && !s->conn.broken && s->conn.fd >= 0)
		/* Best effort, briefly: every result is decided already. */
		(void)smtp_conn_cmd(&s->conn, &rep, "QUIT", NULL, "QUIT",
				    timeout_seconds < LMTP_QUIT_TIMEOUT ? timeout_seconds
									: LMTP_QUIT_TIMEOUT,
				    NULL);
	smtp_conn_close(&s->conn);
	free(s);
	free(st);
}
