/*
 * smtp_conn.h - one blocking connection to an SMTP or LMTP server, under
 * the client session (smtpc.h) that every client in hato uses (`hato send`,
 * LMTP delivery, remote delivery): connect within a deadline, TLS on the
 * socket (implicit, or after STARTTLS), whole replies read with bounds,
 * writes that must keep making progress, a queued message streamed
 * dot-stuffed.
 *
 * The socket is non-blocking and every wait is a poll() bounded by the
 * step's timeout, so a server that stalls anywhere - during connect, the
 * TLS handshake, a reply trickling in octet by octet - is given up.
 *
 * Input is bounded: SMTP_CONN_LINE_MAX octets per reply line,
 * SMTP_CONN_REPLY_LINES_MAX lines per reply; more, or a line that is not
 * "DDD", "DDD text" or "DDD-text" with one code throughout, is a garbled
 * reply.  Control octets in replies become '?'.
 *
 * Failure: a call returns false with c->err one line saying what failed
 * and c->fail its kind; the connection is then out of step (c->broken)
 * and takes no more commands.  A 421 reply also marks it broken (the
 * server is closing).  Thread-safe: a connection belongs to one thread;
 * writes never raise SIGPIPE on plain sockets (OpenSSL writes with
 * write(2), so processes using TLS ignore SIGPIPE).
 */
#ifndef HATO_SMTP_CONN_H
#define HATO_SMTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#define SMTP_CONN_LINE_MAX 4096       /* one reply line; RFC 5321 §4.5.3.1.5 says 512 */
#define SMTP_CONN_REPLY_LINES_MAX 100 /* lines in one multi-line reply (EHLO) */
#define SMTP_CONN_READ_BUF 4096
#define SMTP_CONN_CMD_MAX 4096      /* one command line, CRLF included (AUTH PLAIN is long) */
#define SMTP_CONN_USER_MAX 255      /* octets of an AUTH user name */
#define SMTP_CONN_PASSWORD_MAX 1024 /* octets: as many as `hato user` accepts */

/* What ended a connection. */
enum conn_fail {
	CONN_FAIL_NONE,
	CONN_FAIL_TEMP,     /* timeout, lost or closed connection, refused connect */
	CONN_FAIL_PROTOCOL, /* garbled reply, TLS error after the handshake, data before TLS */
	CONN_FAIL_TLS,      /* the handshake failed or the certificate was not trusted */
	CONN_FAIL_SOFTWARE, /* OpenSSL would not start, a command too long */
};

/* One reply: "550 5.1.1 <x@y> no such user" has code 550 and esc "5.1.1". */
struct smtp_reply {
	int code;
	char esc[12];    /* the reply's enhanced status code, or "X.0.0" from the code */
	char text[1024]; /* the first line whole, the text of each further line after a space */
};

/* What the server's EHLO (or LHLO) reply offers. */
struct smtp_caps {
	bool starttls;
	bool auth; /* AUTH with any mechanism */
	bool auth_plain;
	bool auth_login;
	bool eightbit; /* 8BITMIME */
	bool smtputf8;
	bool pipelining;
	bool dsn;
	bool enhanced;        /* ENHANCEDSTATUSCODES */
	uint64_t size;        /* SIZE limit, 0 when none given */
	char auth_mechs[200]; /* as offered, for errors */
};

/* TLS for smtp_conn_tls(). */
struct smtp_tls_opts {
	const char *host;    /* SNI, and the name the certificate must match when verifying */
	bool verify;         /* the certificate must chain to a trusted CA and match host */
	const char *ca_file; /* trusted CAs; NULL: the system's store */
	unsigned timeout;    /* seconds for the whole handshake */
};

/* Called with each line sent ("C: ...") or received ("S: ..."), for -v. */
typedef void (*smtp_conn_trace_fn)(void *arg, const char *line);

struct smtp_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	bool broken;        /* out of step: no more commands, not even QUIT */
	bool verify_failed; /* with CONN_FAIL_TLS: the certificate was the reason */
	enum conn_fail fail;
	char err[512];     /* the last failure, one line */
	const char *phase; /* what we wait for, for errors: "the reply to DATA" */
	smtp_conn_trace_fn trace;
	void *trace_arg;
	size_t rpos, rlen;
	char rbuf[SMTP_CONN_READ_BUF];
	char line[SMTP_CONN_LINE_MAX + 1];
};

/* A connection not yet connected (fd -1). */
void smtp_conn_init(struct smtp_conn *c);

/* Connect to sa within timeout seconds: true, or false with c->err (no
 * c->broken: the caller may try another address). */
bool smtp_conn_connect(struct smtp_conn *c, const struct sockaddr *sa, socklen_t len,
		       unsigned timeout);

/* The TLS handshake on the connected socket. */
bool smtp_conn_tls(struct smtp_conn *c, const struct smtp_tls_opts *o);

/* Octets read but not yet parsed (after STARTTLS's 220 they are an attack). */
bool smtp_conn_pending(const struct smtp_conn *c);

/* Write all of buf; each wait for progress may last timeout seconds. */
bool smtp_conn_write(struct smtp_conn *c, const char *buf, size_t len, unsigned timeout);

/* Write the command lines buf[0..len) (each ending in CRLF) as smtp_conn_write
 * does, each traced as a "C: " line (a pipelined batch). */
bool smtp_conn_write_cmds(struct smtp_conn *c, const char *buf, size_t len, unsigned timeout);

/* Read one whole reply within timeout seconds; with caps, note what an
 * EHLO reply offers. */
bool smtp_conn_reply(struct smtp_conn *c, struct smtp_reply *rep, unsigned timeout,
		     struct smtp_caps *caps);

/*
 * Send the command line cmd (no CRLF) and read its reply within timeout.
 * phase names the command in errors; shown, when set, is what the trace
 * gets instead of the line (credentials).
 */
bool smtp_conn_cmd(struct smtp_conn *c, struct smtp_reply *rep, const char *phase,
		   const char *shown, const char *cmd, unsigned timeout, struct smtp_caps *caps);

/*
 * Log in: AUTH PLAIN, or LOGIN when only that is offered (RFC 4954, RFC
 * 4616); caps must offer one of them.  true with rep the final reply (235
 * when logged in).  false on a connection failure, or, with the connection
 * still in step, when the server challenged once more than either
 * mechanism allows (the exchange is cancelled with "*").  The command
 * lines are wiped after use and traced as "********".
 */
bool smtp_conn_auth(struct smtp_conn *c, const struct smtp_caps *caps, const char *user,
		    const char *password, unsigned timeout, struct smtp_reply *rep);

/* Stream len octets from fd dot-stuffed (RFC 5321 §4.5.2), then the
 * final "." (after a CRLF when the last line has none).  A read error, or
 * the file ending before len octets, is CONN_FAIL_SOFTWARE with the
 * connection broken.  Traced as "C: [N octets of message]" and "C: .". */
bool smtp_conn_send_file(struct smtp_conn *c, int fd, uint64_t len, unsigned timeout);

/* The same for the message data[0..len) in memory. */
bool smtp_conn_send_data(struct smtp_conn *c, const char *data, size_t len, unsigned timeout);

/* Close the socket and free TLS state (the struct may be reused after
 * smtp_conn_init). */
void smtp_conn_close(struct smtp_conn *c);

#endif
