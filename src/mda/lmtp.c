/*
 * lmtp.c - the LMTP client (RFC 2033): one blocking session per call.
 *
 * The dialogue is the client session's (src/smtpc/smtpc.h) in LMTP mode:
 * greeting, LHLO, MAIL FROM, RCPT TO for each recipient and DATA -
 * pipelined when the server offers PIPELINING, as Dovecot's does - the
 * message, and after the final dot one reply per recipient accepted at
 * RCPT, in RCPT order (the one way LMTP differs from SMTP on the wire,
 * §4.2).  QUIT ends it.  What stays here is LMTP delivery's own: turning
 * the target into addresses, checking what we would send, and the
 * outcome of each recipient.
 *
 * Every recipient has its own state: OPEN (no answer yet) and DONE
 * (results[i] is final).  Whatever ends the session early - a failed
 * connect, a timeout, a closed connection, a reply that does not parse -
 * gives every recipient not DONE the same TEMPFAIL with the reason; a
 * recipient that got a reply keeps it.  A 421 (the server is closing) is
 * the answer of every recipient not DONE.  If the connection drops among
 * the replies after the dot, the recipients already answered are
 * delivered and the rest are retried later: they may get the message
 * twice, never zero times.
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

#include "smtpc.h"
#include "util.h"

/* Enhanced status codes of failures decided here, in one place. */
#define LMTP_ESC_CONNECT "4.4.1"    /* no answer from host: connect failed or timed out */
#define LMTP_ESC_SESSION "4.4.2"    /* bad connection: timeout, lost, garbled reply */
#define LMTP_ESC_CONFIG "4.3.5"     /* system incorrectly configured: unusable target */
#define LMTP_ESC_MESSAGE "4.3.0"    /* the queued message cannot be read */
#define LMTP_ESC_BAD_RCPT "5.1.3"   /* bad destination mailbox address syntax */
#define LMTP_ESC_BAD_SENDER "5.1.7" /* bad sender's mailbox address syntax */

#define LMTP_PATH_MAX 1023 /* octets of a "<...>" we send: one command line, room to spare */

_Static_assert(LMTP_PATH_MAX + sizeof("MAIL FROM:\r\n") <= SMTP_CONN_CMD_MAX,
	       "a MAIL FROM or RCPT TO line fits smtp_conn's command buffer");

/* How far a recipient has got in the delivery. */
enum lmtp_rcpt_state {
	LMTP_RCPT_OPEN, /* no answer of its own yet */
	LMTP_RCPT_DONE, /* results[i] is final */
};

/* One session: the client session, and the error that ended it. */
struct lmtp_session {
	const char *target;
	unsigned timeout; /* seconds for each connect, reply and write */
	char esc[12];     /* with err: the enhanced status code of the failure */
	char err[256];    /* "lmtp TARGET: ..." */
	uint64_t msg_len; /* the queued message's octets */
	struct smtpc s;
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
	if (smtpc_connect(&s->s, sa, len, s->timeout))
		return true;
	return sess_fail(s, LMTP_ESC_CONNECT, "connect: %s", s->s.conn.err);
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

/* Greeting and LHLO (smtpc_open); false with the failure recorded.  A refusal
 * is the server's state, not the mail's: retry later. */
static bool lmtp_open(struct lmtp_session *s)
{
	const struct smtp_reply *rep = &s->s.reply;

	if (smtpc_open(&s->s))
		return true;
	if (s->s.fail == SMTPC_FAIL_REFUSED)
		return sess_fail(s, rep->code / 100 == 4 ? rep->esc : LMTP_ESC_SESSION,
				 "refused during %s: %s",
				 s->s.state == SMTPC_STATE_GREETING ? "greeting" : "LHLO",
				 rep->text);
	return sess_fail(s, LMTP_ESC_SESSION, "%s", s->s.conn.err);
}

/* The transaction for the recipients still OPEN (smtpc_send); each answer
 * settles its recipient, and the failure is recorded for those left without
 * one. */
static void lmtp_transaction(struct lmtp_session *s, const char *sender, const char *const *rcpts,
			     size_t n, int in, enum lmtp_rcpt_state *st,
			     struct delivery_result *results)
{
	struct smtpc_rcpt *rc = xcalloc(n, sizeof(*rc));
	size_t *idx = xcalloc(n, sizeof(*idx)), k = 0;
	struct smtpc_msg m = {.sender = sender, .fd = in, .len = s->msg_len};
	enum smtpc_tx tx;

	for (size_t i = 0; i < n; i++)
		if (st[i] == LMTP_RCPT_OPEN) {
			rc[k].addr = rcpts[i];
			idx[k++] = i;
		}
	m.rcpts = rc;
	m.nrcpts = k;
	tx = smtpc_send(&s->s, &m);
	for (size_t j = 0; j < k; j++)
		if (rc[j].answer != SMTPC_ANSWER_NONE) {
			rcpt_settle(&results[idx[j]], &rc[j].reply, s->target);
			st[idx[j]] = LMTP_RCPT_DONE;
		}
	free(rc);
	free(idx);
	if (tx == SMTPC_TX_NOT_354 || tx == SMTPC_TX_NO_MESSAGE) /* the latter never: in >= 0 */
		sess_fail(s, LMTP_ESC_SESSION, "unexpected reply to DATA: %s", m.data_reply.text);
	else if (tx == SMTPC_TX_BROKEN) /* CONN_FAIL_SOFTWARE in DOT: the queued message */
		sess_fail(s,
			  s->s.state == SMTPC_STATE_DOT && s->s.conn.fail == CONN_FAIL_SOFTWARE
				  ? LMTP_ESC_MESSAGE
				  : LMTP_ESC_SESSION,
			  "%s", s->s.conn.err);
	else /* every recipient has its answer; one without would be retried */
		sess_fail(s, LMTP_ESC_SESSION, "no reply for this recipient");
}

/* The dialogue from connect to the last reply after the dot; QUIT is the caller's. */
static void lmtp_session(struct lmtp_session *s, const char *sender, const char *const *rcpts,
			 size_t n, int in, enum lmtp_rcpt_state *st,
			 struct delivery_result *results)
{
	if ((strncmp(s->target, "unix:", 5) == 0 ? sess_open_unix(s, s->target + 5)
						 : sess_open_inet(s)) &&
	    lmtp_open(s))
		lmtp_transaction(s, sender, rcpts, n, in, st, results);
}

/* See lmtp.h. */
void lmtp_deliver(const char *target, const char *hostname, int msg_fd, uint64_t msg_len,
		  const char *sender, const char *const *rcpts, size_t n, unsigned timeout_seconds,
		  struct delivery_result *results)
{
	struct smtpc_opts o = {.lmtp = true,
			       .helo = hostname,
			       .pipelining = true,
			       .tls = SMTPC_TLS_NONE,
			       .timeout_greeting = timeout_seconds,
			       .timeout_command = timeout_seconds,
			       .timeout_data_end = timeout_seconds};
	struct lmtp_session *s;
	enum lmtp_rcpt_state *st;
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
	smtpc_init(&s->s, &o);

	s->msg_len = msg_len;
	/* from its start, whatever an earlier delivery of this fd read */
	if (lseek(msg_fd, 0, SEEK_SET) != 0)
		sess_fail(s, LMTP_ESC_MESSAGE, "reading the queued message: %s",
			  strerror_r(errno, eb, sizeof(eb))); /* GNU: returns the text */
	else
		lmtp_session(s, sender, rcpts, n, msg_fd, st, results);
	/* every recipient not DONE gets the failure recorded last */
	settle_rest(st, n, results, OUTCOME_TEMPFAIL, s->esc, s->err);
	smtpc_close(&s->s); /* QUIT, briefly, when in step: every result is decided */
	free(s);
	free(st);
}
