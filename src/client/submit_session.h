/*
 * submit_session.h - the SMTP client of `hato send`: one blocking
 * submission session with a server (RFC 6409, RFC 5321), in the clear,
 * after STARTTLS (RFC 3207) or with implicit TLS (RFC 8314), logged in with
 * AUTH PLAIN or LOGIN (RFC 4954), carrying one or more messages.
 *
 * submit_session_open() connects and gets as far as a session ready for
 * MAIL: greeting, EHLO, STARTTLS and EHLO again, AUTH.  Certificates are
 * verified against the system's CA store and the host name (or address)
 * given, unless insecure is set.  submit_session_send() runs one
 * transaction (RSET first when one ran before): MAIL FROM, one RCPT TO per
 * recipient (pipelined when the server offers PIPELINING), DATA with the
 * message dot-stuffed.  The dialogue is the client session's (smtpc.h).  A message goes to all of
 * its recipients or to none: when a recipient is refused, every refusal is
 * reported and DATA is not sent.  submit_session_close() says QUIT when the
 * connection is still in step, and frees everything.
 *
 * Failure: every step prints what failed on stderr, one line each, as
 * "hato: [label]STEP refused: REPLY" or "hato: [label]timeout after 60 s
 * waiting for the reply to DATA", and returns a sysexits(3) code:
 * EX_UNAVAILABLE (cannot connect, no such host, TLS not offered or the
 * certificate not trusted, greeting refused), EX_TEMPFAIL (any 4xx reply,
 * a timeout, a lost connection), EX_PROTOCOL (a garbled reply),
 * EX_NOPERM (AUTH refused, or MAIL needs it), EX_DATAERR (a 5xx refusal of
 * the message or a recipient), EX_SOFTWARE (OpenSSL would not start).
 * Server text is shown with control octets made '?'.  With verbose set the
 * dialogue goes to stderr as "C: ..." and "S: ..." lines, "* ..." for what
 * happens in between; AUTH lines show "********" instead of credentials.
 *
 * Uses SIGPIPE-free writes for plain sockets; OpenSSL writes with write(2),
 * so the caller ignores SIGPIPE.
 */
#ifndef HATO_SUBMIT_SESSION_H
#define HATO_SUBMIT_SESSION_H

#include <stdbool.h>
#include <stddef.h>

enum submit_tls {
	SUBMIT_TLS_STARTTLS, /* plain connection, then STARTTLS (port 587) */
	SUBMIT_TLS_IMPLICIT, /* TLS from the first byte (port 465) */
	SUBMIT_TLS_NONE,     /* never TLS (port 25): no AUTH either */
};

struct submit_opts {
	const char *host; /* DNS name or IP address (no brackets) */
	unsigned port;    /* 1..65535 */
	enum submit_tls tls;
	bool insecure;    /* do not verify the server's certificate */
	bool verbose;     /* the dialogue on stderr */
	const char *helo; /* our name for EHLO; an address literal when not a domain */
	const char *user; /* NULL: no AUTH */
	const char *password;
	unsigned timeout_connect;  /* seconds, per address tried */
	unsigned timeout_greeting; /* the 220 */
	unsigned timeout_command;  /* every other reply, and each write making no progress */
	unsigned timeout_data_end; /* the reply to the final dot */
};

struct submit_session;

/*
 * Connect to o->host and get the session ready for mail (see above).  NULL
 * with the failure printed and *rc its exit code.  o must outlive the
 * session.
 */
struct submit_session *submit_session_open(const struct submit_opts *o, int *rc);

/* One message for submit_session_send(). */
struct submit_message {
	const char *label;        /* prefix of error lines: "" or "FILE: " */
	const char *sender;       /* "a@b", or "" for the null sender <> */
	const char *const *rcpts; /* "a@b" each */
	size_t nrcpts;            /* > 0 */
	const char *data;         /* the message: CRLF lines, not yet dot-stuffed */
	size_t len;
};

/*
 * Run one transaction.  0 when the server took the message; else the exit
 * code, the failure printed.  After a failure submit_session_usable() says
 * whether another message may follow on the same connection.
 */
int submit_session_send(struct submit_session *s, const struct submit_message *m);

/* Is the connection still in step (not lost, timed out or closed by a 421)? */
bool submit_session_usable(const struct submit_session *s);

/* QUIT when in step, close, free.  NULL is fine. */
void submit_session_close(struct submit_session *s);

#endif
