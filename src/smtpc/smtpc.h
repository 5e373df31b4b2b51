/*
 * smtpc.h - the SMTP and LMTP client session: the one dialogue with a
 * server that remote delivery (relay.c), LMTP delivery (lmtp.c) and
 * `hato send` (submit_session.c) all speak.  Blocking: it runs on a thread
 * of its own (a delivery worker, or the CLI), never on the event loop.
 *
 * The session's states (enum smtpc_state; on_state sees each transition):
 *
 *   CONNECT -> [TLS when implicit] -> GREETING -> EHLO (-> HELO) ->
 *   [STARTTLS -> TLS -> EHLO] -> [AUTH] -> READY
 *   READY -> MAIL -> RCPT... -> DATA -> DOT -> READY     (smtpc_send)
 *   READY -> RSET -> READY (smtpc_rset)    any -> QUIT -> CLOSED (smtpc_close)
 *
 * smtpc_open() takes a connected session to READY: the greeting (220, and
 * not our own name when opts.loop_name is set), EHLO - LHLO in LMTP mode -
 * with HELO when EHLO gets a 5xx and opts.helo_fallback allows it,
 * STARTTLS by opts.tls, then AUTH PLAIN or LOGIN when opts.user is set,
 * only over TLS unless opts.auth_plaintext.  After STARTTLS's 220, octets
 * already read are a response injection (CVE-2011-0411 from the server's
 * side): the session fails rather than read them as if they came over TLS.
 * The capabilities are those of the last EHLO (RFC 3207 §4.2).
 *
 * smtpc_send() runs one transaction: MAIL FROM with the caller's
 * parameters, a RCPT TO per recipient, DATA, the message dot-stuffed from
 * a file or from memory.  When the server offers PIPELINING (and
 * opts.pipelining) the commands go in one write after the EHLO reply and
 * the replies are read in order (RFC 2920); DATA joins the batch unless
 * the message must go to all its recipients or none.  Every recipient
 * gets its answer as data (struct smtpc_rcpt): a refused RCPT its own
 * reply, a refused MAIL FROM or DATA that reply, an accepted one the reply
 * after the final dot - in LMTP mode its own, one per accepted recipient
 * in RCPT order (RFC 2033 §4.2).  A 421 (the server is closing) is the
 * answer of every recipient without one, and the session takes no more
 * commands.
 *
 * Failure: smtpc_open() returns false with s->fail saying what failed at
 * s->state (a refusal in s->reply, a connection failure in s->conn.err);
 * smtpc_send() returns SMTPC_TX_BROKEN when the connection failed first,
 * and the recipients still without an answer have none (the caller
 * decides what that means for them: retry, for a queue).  A message that
 * cannot be read still has its envelope sent, so that the recipients'
 * refusals are known; after 354 the connection is dropped, as nothing else
 * ends a DATA without delivering.  A session whose
 * connection broke (s->conn.broken) takes no more commands, not even QUIT.
 * The texts that reach errors and logs are the callers': this layer hands
 * them replies and kinds of failure, not sentences.
 */
#ifndef HATO_SMTPC_H
#define HATO_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp_conn.h"

#define SMTPC_QUIT_TIMEOUT 10 /* seconds at most for QUIT: every result is decided by then */

/* Where a session is (see the diagram above). */
enum smtpc_state {
	SMTPC_STATE_CONNECT,
	SMTPC_STATE_TLS,
	SMTPC_STATE_GREETING,
	SMTPC_STATE_EHLO, /* or LHLO */
	SMTPC_STATE_HELO,
	SMTPC_STATE_STARTTLS,
	SMTPC_STATE_AUTH,
	SMTPC_STATE_READY,
	SMTPC_STATE_RSET,
	SMTPC_STATE_MAIL,
	SMTPC_STATE_RCPT,
	SMTPC_STATE_DATA,
	SMTPC_STATE_DOT,
	SMTPC_STATE_QUIT,
	SMTPC_STATE_CLOSED,
};

/* What TLS a session uses. */
enum smtpc_tls {
	SMTPC_TLS_NONE,     /* never */
	SMTPC_TLS_MAY,      /* STARTTLS when offered; not offered or refused: go on in plaintext */
	SMTPC_TLS_STARTTLS, /* STARTTLS, or the session fails */
	SMTPC_TLS_IMPLICIT, /* TLS from the first octet (RFC 8314) */
};

/* What made smtpc_open() (or smtpc_rset()) fail, at s->state. */
enum smtpc_fail {
	SMTPC_FAIL_NONE,
	SMTPC_FAIL_CONN,         /* the connection: s->conn.fail and s->conn.err */
	SMTPC_FAIL_REFUSED,      /* the server refused: s->reply (the session is in step) */
	SMTPC_FAIL_LOOP,         /* the greeting names opts.loop_name: mail would come back */
	SMTPC_FAIL_NO_STARTTLS,  /* SMTPC_TLS_STARTTLS, and the server does not offer it */
	SMTPC_FAIL_INJECTION,    /* octets after STARTTLS's 220, before TLS (connection broken) */
	SMTPC_FAIL_AUTH_NO_TLS,  /* AUTH without TLS, and opts.auth_plaintext not set */
	SMTPC_FAIL_AUTH_NO_MECH, /* no AUTH PLAIN or LOGIN offered (s->caps.auth: any AUTH at all)
				  */
};

/* Called on each transition, for logs and traces. */
typedef void (*smtpc_state_fn)(void *arg, enum smtpc_state from, enum smtpc_state to);

/* How a session speaks; copied by smtpc_init (the strings must outlive the session). */
struct smtpc_opts {
	bool lmtp;               /* LHLO, and a reply per accepted recipient after the dot */
	const char *helo;        /* our name in EHLO, HELO or LHLO */
	bool helo_fallback;      /* HELO when EHLO gets a 5xx (not in LMTP) */
	bool pipelining;         /* pipeline when the server offers PIPELINING */
	enum smtpc_tls tls;      /* STARTTLS or implicit TLS, by the caller's policy */
	const char *tls_host;    /* SNI, and the name the certificate must match */
	bool tls_verify;         /* the certificate must chain to a trusted CA and match */
	const char *tls_ca_file; /* trusted CAs; NULL: the system's store */
	const char *user;        /* AUTH as user; NULL: no AUTH */
	const char *password;
	bool auth_plaintext;   /* AUTH allowed without TLS */
	const char *loop_name; /* a greeting from this host name is a mail loop; NULL: no check */
	unsigned timeout_greeting; /* seconds for the 220 */
	unsigned timeout_command;  /* every other reply, the TLS handshake, each write's progress */
	unsigned timeout_data_end; /* the reply (replies, in LMTP) to the final dot */
	smtp_conn_trace_fn trace;  /* each line sent and received, or NULL */
	void *trace_arg;
	smtpc_state_fn on_state; /* each transition, or NULL */
	void *state_arg;
};

/* One session.  Read-only for callers but for what smtpc.h says. */
struct smtpc {
	struct smtpc_opts o;
	enum smtpc_state state;
	enum smtpc_fail fail;
	struct smtp_caps caps;
	struct smtp_reply reply;       /* the last reply read */
	struct smtp_reply tls_refusal; /* SMTPC_TLS_MAY: STARTTLS's refusal (code 0: none) */
	struct smtp_conn conn;
};

/* Which reply answered a recipient. */
enum smtpc_answer {
	SMTPC_ANSWER_NONE,    /* none: the connection failed first (or all or none stopped) */
	SMTPC_ANSWER_MAIL,    /* MAIL FROM was refused */
	SMTPC_ANSWER_RCPT,    /* its own RCPT TO was refused */
	SMTPC_ANSWER_DATA,    /* DATA was refused */
	SMTPC_ANSWER_DOT,     /* the reply after the final dot (LMTP: its own) */
	SMTPC_ANSWER_CLOSING, /* another command's 421: the server is closing */
};

/* One recipient of smtpc_send(). */
struct smtpc_rcpt {
	const char *addr;         /* "<a@b>" */
	const char *params;       /* appended to RCPT TO (" NOTIFY=..."), or NULL */
	bool accepted;            /* out: its RCPT TO got a 2xx */
	enum smtpc_answer answer; /* out: which reply is its answer */
	struct smtp_reply reply;  /* out: that reply */
};

/* One message for smtpc_send(). */
struct smtpc_msg {
	const char *sender;      /* "<...>" or "<>" */
	const char *mail_params; /* appended to MAIL FROM (" SIZE=... BODY=8BITMIME"), or NULL */
	struct smtpc_rcpt *rcpts;
	size_t nrcpts;
	int fd;           /* the message: len octets read from fd, or with fd < 0 ... */
	const char *body; /* ... len octets in memory (CRLF lines, not dot-stuffed); with
			   * neither, the message cannot be read (SMTPC_TX_NO_MESSAGE) */
	uint64_t len;
	bool all_or_none;             /* DATA only when MAIL and every RCPT were accepted */
	struct smtp_reply mail_reply; /* out: the reply to MAIL FROM (code 0: none) */
	struct smtp_reply data_reply; /* out: the reply to DATA (code 0: none) */
};

/* How a transaction ended. */
enum smtpc_tx {
	SMTPC_TX_DONE,    /* every recipient has its answer (all or none: or DATA was not sent) */
	SMTPC_TX_BROKEN,  /* the connection failed (s->conn.err); the rest have no answer */
	SMTPC_TX_NOT_354, /* DATA got a 2xx or 3xx, not 354: nothing sent, connection dropped */
	SMTPC_TX_NO_MESSAGE, /* 354, and no message to send: connection dropped (the accepted
			      * recipients have no answer; the refused ones do) */
};

/* A session not yet connected, speaking as o says. */
void smtpc_init(struct smtpc *s, const struct smtpc_opts *o);

/* Connect to sa within timeout seconds: true, or false with s->conn.err (the
 * caller may try another address). */
bool smtpc_connect(struct smtpc *s, const struct sockaddr *sa, socklen_t len, unsigned timeout);

/* From connected to READY (see above); false with s->fail and s->state. */
bool smtpc_open(struct smtpc *s);

/* One transaction on a READY session (see above). */
enum smtpc_tx smtpc_send(struct smtpc *s, struct smtpc_msg *m);

/* RSET before the next transaction: true when READY again; else false with
 * s->fail (a refusal also breaks the session: no telling where it is). */
bool smtpc_rset(struct smtpc *s);

/* QUIT when the session is in step (TLS closed with close_notify), then
 * close; the struct may be used again after smtpc_init. */
void smtpc_close(struct smtpc *s);

/* Name of a state, for logs: "EHLO". */
const char *smtpc_strstate(enum smtpc_state st);

#endif
