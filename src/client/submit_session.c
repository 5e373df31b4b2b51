/*
 * submit_session.c - the blocking SMTP submission client behind `hato send`.
 *
 * Lock-step, no pipelining: every command waits for its reply.  The socket
 * is non-blocking and every wait is a poll() bounded by a deadline, so a
 * server that stalls anywhere - during connect, the TLS handshake, a reply
 * trickling in octet by octet - is given up after the step's timeout.  A
 * reply must arrive whole before its step's deadline; a write must make
 * progress within timeout_command (a big message on a slow link is fine,
 * a stuck one is not).
 *
 * Lock-step over smtp_conn: input from the server is bounded (smtp_conn.h);
 * a reply that breaks the bounds, or a line that is not
 * "DDD", "DDD text" or "DDD-text" with the same code throughout, is a
 * garbled reply (EX_PROTOCOL) and ends the session without QUIT.  So does
 * a 421 (the server is closing), a timeout or a lost connection
 * (EX_TEMPFAIL).  Any other refusal leaves the session in step: the
 * caller may send another message (after RSET) or QUIT.
 *
 * STARTTLS: octets that arrive after the 220 but before the handshake
 * would be read as if they came over TLS (the command injection of
 * CVE-2011-0411, from the server side); they are refused as a protocol
 * error.  The capabilities are forgotten and EHLO is sent again after the
 * handshake (RFC 3207 §4.2).
 *
 * Credentials: the AUTH lines are built in local buffers that are wiped
 * after use, and -v prints "********" in their place.
 */
#include "submit_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>

#include "addr.h"
#include "message.h"
#include "smtp_conn.h"
#include "strbuf.h"
#include "util.h"

#define SUBMIT_QUIT_TIMEOUT 10 /* seconds for QUIT: everything is decided by then */

struct submit_session {
	const struct submit_opts *o;
	const char *label; /* "" or "FILE: " before each error line */
	bool used;         /* a transaction ran: RSET before the next */
	bool quiet;        /* QUIT: whatever fails now is not worth a line */
	struct smtp_caps caps;
	char helo[ADDR_DOMAIN_MAX + 1];
	struct smtp_conn conn;
};

/* Print one error line "hato: [label]..." and return rc. */
static int __attribute__((format(printf, 3, 4)))
sess_error(const struct submit_session *s, int rc, const char *fmt, ...)
{
	va_list ap;

	if (s->quiet)
		return rc;
	fprintf(stderr, "hato: %s", s->label);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

/* The connection failed: print why and return the exit code its kind means. */
static int conn_rc(const struct submit_session *s)
{
	static const int rc[] = {
		[CONN_FAIL_NONE] = EX_SOFTWARE,     [CONN_FAIL_TEMP] = EX_TEMPFAIL,
		[CONN_FAIL_PROTOCOL] = EX_PROTOCOL, [CONN_FAIL_TLS] = EX_UNAVAILABLE,
		[CONN_FAIL_SOFTWARE] = EX_SOFTWARE,
	};

	return sess_error(s, rc[s->conn.fail], "%s%s", s->conn.err,
			  s->conn.verify_failed ? " (--insecure skips the check)" : "");
}

/* -v: one line of the dialogue (or of what happens around it). */
static void __attribute__((format(printf, 2, 3)))
trace(const struct submit_session *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->o->verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The connection's trace hook: the dialogue on stderr. */
static void trace_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

/* Send cmd and read its reply (see smtp_conn_cmd): 0, or the printed failure's exit code. */
static int conn_cmd(struct submit_session *s, struct smtp_reply *rep, const char *phase,
		    const char *shown, const char *cmd, unsigned secs, struct smtp_caps *caps)
{
	if (s->conn.broken)
		return EX_SOFTWARE;
	return smtp_conn_cmd(&s->conn, rep, phase, shown, cmd, secs, caps) ? 0 : conn_rc(s);
}

/* The exit code for a refusal: 4xx is temporary, otherwise perm. */
static int refusal_rc(const struct smtp_reply *rep, int perm)
{
	return rep->code / 100 == 4 ? EX_TEMPFAIL : perm;
}

/* --- connection ----------------------------------------------------------------- */

/* Resolve the host and connect to its first address that answers. */
static int sess_connect(struct submit_session *s)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[8], addr[INET6_ADDRSTRLEN] = "?";
	bool timed_out = false;
	int rc;

	snprintf(port, sizeof(port), "%u", s->o->port);
	rc = getaddrinfo(s->o->host, port, &hints, &res);
	if (rc != 0)
		return sess_error(s, rc == EAI_AGAIN ? EX_TEMPFAIL : EX_UNAVAILABLE,
				  "cannot resolve %s: %s", s->o->host,
				  rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0,
				NI_NUMERICHOST) != 0)
			strcpy_bounded(addr, "?", sizeof(addr));
		trace(s, "* connecting to %s (%s) port %u", s->o->host, addr, s->o->port);
		if (smtp_conn_connect(&s->conn, ai->ai_addr, ai->ai_addrlen, s->o->timeout_connect))
			break;
		timed_out = strcmp(s->conn.err, strerror(ETIMEDOUT)) == 0;
		trace(s, "* %s: %s", addr, s->conn.err);
	}
	freeaddrinfo(res);
	if (s->conn.fd >= 0)
		return 0;
	return sess_error(s, timed_out ? EX_TEMPFAIL : EX_UNAVAILABLE,
			  "cannot connect to %s port %u (%s): %s", s->o->host, s->o->port, addr,
			  s->conn.err);
}

/* The TLS handshake on the connected socket, with verification unless insecure. */
static int sess_tls(struct submit_session *s)
{
	const struct submit_opts *o = s->o;
	struct smtp_tls_opts t = {
		.host = o->host, .verify = !o->insecure, .timeout = o->timeout_command};

	if (!smtp_conn_tls(&s->conn, &t))
		return conn_rc(s);
	trace(s, "* TLS %s %s, certificate %s", SSL_get_version(s->conn.ssl),
	      SSL_CIPHER_get_name(SSL_get_current_cipher(s->conn.ssl)),
	      o->insecure ? "not verified (--insecure)" : "verified");
	return 0;
}

/* EHLO (HELO when EHLO is not understood and nothing needs extensions). */
static int sess_ehlo(struct submit_session *s)
{
	char cmd[sizeof(s->helo) + 8];
	struct smtp_reply rep;
	int rc;

	memset(&s->caps, 0, sizeof(s->caps));
	snprintf(cmd, sizeof(cmd), "EHLO %s", s->helo);
	if ((rc = conn_cmd(s, &rep, "EHLO", NULL, cmd, s->o->timeout_command, &s->caps)) != 0)
		return rc;
	if (rep.code == 250)
		return 0;
	if ((rep.code == 500 || rep.code == 502) && s->o->tls == SUBMIT_TLS_NONE) {
		snprintf(cmd, sizeof(cmd), "HELO %s", s->helo);
		if ((rc = conn_cmd(s, &rep, "HELO", NULL, cmd, s->o->timeout_command, NULL)) != 0)
			return rc;
		if (rep.code == 250)
			return 0;
		return sess_error(s, refusal_rc(&rep, EX_UNAVAILABLE), "HELO refused: %s",
				  rep.text);
	}
	return sess_error(s, refusal_rc(&rep, EX_UNAVAILABLE), "EHLO refused: %s", rep.text);
}

/* STARTTLS, the handshake, and EHLO again. */
static int sess_starttls(struct submit_session *s)
{
	struct smtp_reply rep;
	int rc;

	if (!s->caps.starttls)
		return sess_error(s, EX_UNAVAILABLE,
				  "%s does not offer STARTTLS (--tls implicit for port 465; "
				  "--tls none sends everything in the clear)",
				  s->o->host);
	if ((rc = conn_cmd(s, &rep, "STARTTLS", NULL, "STARTTLS", s->o->timeout_command, NULL)) !=
	    0)
		return rc;
	if (rep.code != 220)
		return sess_error(s, refusal_rc(&rep, EX_UNAVAILABLE), "STARTTLS refused: %s",
				  rep.text);
	if (smtp_conn_pending(&s->conn)) {
		s->conn.broken = true;
		return sess_error(s, EX_PROTOCOL,
				  "%s sent data after its reply to STARTTLS, before TLS began",
				  s->o->host);
	}
	if ((rc = sess_tls(s)) != 0)
		return rc;
	return sess_ehlo(s);
}

/* AUTH PLAIN, or LOGIN when only that is offered (RFC 4954, RFC 4616). */
static int sess_auth(struct submit_session *s)
{
	const struct submit_opts *o = s->o;
	const char *mech = s->caps.auth_plain ? "PLAIN" : "LOGIN";
	struct smtp_reply rep;

	if (s->conn.ssl == NULL) /* submit.c refuses --user with --tls none; never in the clear */
		return sess_error(s, EX_SOFTWARE, "refusing to send a password without TLS");
	if (!s->caps.auth)
		return sess_error(s, EX_UNAVAILABLE,
				  "%s does not offer AUTH (cannot log in as %s; leave out --user?)",
				  o->host, o->user);
	if (!s->caps.auth_plain && !s->caps.auth_login)
		return sess_error(
			s, EX_UNAVAILABLE,
			"%s offers no AUTH mechanism hato can use (PLAIN, LOGIN), only: %s",
			o->host, s->caps.auth_mechs);
	if (strlen(o->user) > SMTP_CONN_USER_MAX || strlen(o->password) > SMTP_CONN_PASSWORD_MAX)
		return sess_error(s, EX_USAGE, "user name or password too long");
	if (!smtp_conn_auth(&s->conn, &s->caps, o->user, o->password, o->timeout_command, &rep))
		return !s->conn.broken ? sess_error(s, EX_PROTOCOL, "AUTH %s as %s: %s", mech,
						    o->user, s->conn.err)
				       : conn_rc(s);
	if (rep.code != 235)
		return sess_error(s, refusal_rc(&rep, EX_NOPERM), "AUTH %s as %s refused: %s", mech,
				  o->user, rep.text);
	return 0;
}

/* Our name for EHLO: o->helo when it is a domain, else the address literal
 * of our end of the connection. */
static void sess_helo_name(struct submit_session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];

	if (s->o->helo != NULL && addr_valid_domain(s->o->helo, strlen(s->o->helo)) &&
	    strcpy_bounded(s->helo, s->o->helo, sizeof(s->helo)))
		return;
	strcpy_bounded(s->helo, "[127.0.0.1]", sizeof(s->helo));
	if (getsockname(s->conn.fd, (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST) !=
		    0)
		return;
	snprintf(s->helo, sizeof(s->helo), ss.ss_family == AF_INET6 ? "[IPv6:%s]" : "[%s]", addr);
}

/* See submit_session.h. */
struct submit_session *submit_session_open(const struct submit_opts *o, int *rc)
{
	struct submit_session *s = xcalloc(1, sizeof(*s));
	struct smtp_reply rep;

	s->o = o;
	s->label = "";
	smtp_conn_init(&s->conn);
	if (o->verbose)
		s->conn.trace = trace_line;
	if ((*rc = sess_connect(s)) != 0)
		goto fail;
	sess_helo_name(s);
	if (o->tls == SUBMIT_TLS_IMPLICIT && (*rc = sess_tls(s)) != 0)
		goto fail;
	s->conn.phase = "the greeting";
	if (!smtp_conn_reply(&s->conn, &rep, o->timeout_greeting, NULL)) {
		*rc = conn_rc(s);
		goto fail;
	}
	if (rep.code != 220) {
		*rc = sess_error(s, refusal_rc(&rep, EX_UNAVAILABLE), "%s refused the session: %s",
				 o->host, rep.text);
		goto fail;
	}
	if ((*rc = sess_ehlo(s)) != 0)
		goto fail;
	if (o->tls == SUBMIT_TLS_STARTTLS && (*rc = sess_starttls(s)) != 0)
		goto fail;
	if (o->user != NULL && (*rc = sess_auth(s)) != 0)
		goto fail;
	return s;
fail:
	submit_session_close(s);
	return NULL;
}

/* Does s contain octets above 127? */
static bool non_ascii(const char *s)
{
	return message_is_8bit(s, strlen(s));
}

/* MAIL FROM with the parameters the server understands and the message needs. */
static int sess_mail(struct submit_session *s, const struct submit_message *m)
{
	char cmd[SMTP_CONN_CMD_MAX], phase[ADDR_PATH_MAX + 16];
	bool utf8 = non_ascii(m->sender);
	struct smtp_reply rep;
	int rc;

	for (size_t i = 0; i < m->nrcpts; i++)
		utf8 = utf8 || non_ascii(m->rcpts[i]);
	snprintf(phase, sizeof(phase), "MAIL FROM:<%s>", m->sender);
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", m->sender);
	if (s->caps.size > 0)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " SIZE=%zu", m->len);
	if (s->caps.eightbit && message_is_8bit(m->data, m->len))
		strcpy_bounded(cmd + strlen(cmd), " BODY=8BITMIME", sizeof(cmd) - strlen(cmd));
	if (s->caps.smtputf8 && utf8)
		strcpy_bounded(cmd + strlen(cmd), " SMTPUTF8", sizeof(cmd) - strlen(cmd));
	if ((rc = conn_cmd(s, &rep, phase, NULL, cmd, s->o->timeout_command, NULL)) != 0)
		return rc;
	if (rep.code / 100 == 2)
		return 0;
	if (rep.code == 530)
		return sess_error(s, EX_NOPERM, "%s refused: %s (log in with --user)", phase,
				  rep.text);
	return sess_error(s, refusal_rc(&rep, EX_DATAERR), "%s refused: %s", phase, rep.text);
}

/* One RCPT TO per recipient; every refusal is printed.  0 when all were
 * accepted, else EX_DATAERR if any refusal was permanent, else EX_TEMPFAIL. */
static int sess_rcpts(struct submit_session *s, const struct submit_message *m)
{
	char cmd[ADDR_PATH_MAX + 16];
	struct smtp_reply rep;
	int worst = 0, rc;

	for (size_t i = 0; i < m->nrcpts; i++) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", m->rcpts[i]);
		if ((rc = conn_cmd(s, &rep, cmd, NULL, cmd, s->o->timeout_command, NULL)) != 0)
			return rc;
		if (rep.code / 100 == 2)
			continue;
		rc = sess_error(s, refusal_rc(&rep, EX_DATAERR), "%s refused: %s", cmd, rep.text);
		if (worst != EX_DATAERR)
			worst = rc;
		if (s->conn.broken)
			return worst;
	}
	return worst;
}

/* DATA, the message, the final dot. */
static int sess_data(struct submit_session *s, const struct submit_message *m)
{
	struct strbuf wire;
	struct smtp_reply rep;
	int rc;

	if ((rc = conn_cmd(s, &rep, "DATA", NULL, "DATA", s->o->timeout_command, NULL)) != 0)
		return rc;
	if (rep.code != 354)
		return sess_error(s, refusal_rc(&rep, EX_DATAERR), "DATA refused: %s", rep.text);
	strbuf_init(&wire);
	message_dot_stuff(m->data, m->len, &wire);
	trace(s, "C: [%zu octets of message]", m->len);
	trace(s, "C: .");
	s->conn.phase = "the message transfer";
	if (!smtp_conn_write(&s->conn, wire.s, wire.len, s->o->timeout_command)) {
		strbuf_free(&wire);
		return conn_rc(s);
	}
	strbuf_free(&wire);
	s->conn.phase = "the reply to the end of DATA";
	if (!smtp_conn_reply(&s->conn, &rep, s->o->timeout_data_end, NULL))
		return conn_rc(s);
	s->conn.phase = "";
	if (rep.code / 100 != 2)
		return sess_error(s, refusal_rc(&rep, EX_DATAERR), "message refused after DATA: %s",
				  rep.text);
	return 0;
}

/* See submit_session.h. */
int submit_session_send(struct submit_session *s, const struct submit_message *m)
{
	struct smtp_reply rep;
	int rc;

	s->label = m->label;
	if (s->conn.broken)
		return sess_error(s, EX_SOFTWARE, "the connection is no longer usable");
	if (s->used) {
		if ((rc = conn_cmd(s, &rep, "RSET", NULL, "RSET", s->o->timeout_command, NULL)) !=
		    0)
			return rc;
		if (rep.code / 100 != 2) { /* out of step: no telling what a next MAIL meets */
			s->conn.broken = true;
			return sess_error(s, refusal_rc(&rep, EX_PROTOCOL), "RSET refused: %s",
					  rep.text);
		}
	}
	s->used = true;
	if (s->caps.size > 0 && m->len > s->caps.size)
		return sess_error(s, EX_DATAERR,
				  "the message is %zu octets, more than the %llu that %s accepts",
				  m->len, (unsigned long long)s->caps.size, s->o->host);
	if ((rc = sess_mail(s, m)) != 0 || (rc = sess_rcpts(s, m)) != 0)
		return rc;
	return sess_data(s, m);
}

/* See submit_session.h. */
bool submit_session_usable(const struct submit_session *s)
{
	return !s->conn.broken;
}

/* See submit_session.h. */
void submit_session_close(struct submit_session *s)
{
	struct smtp_reply rep;

	if (s == NULL)
		return;
	s->label = "";
	if (!s->conn.broken && s->conn.fd >= 0) {
		unsigned secs = s->o->timeout_command < SUBMIT_QUIT_TIMEOUT ? s->o->timeout_command
									    : SUBMIT_QUIT_TIMEOUT;
		s->quiet = true; /* the messages are decided: a failing QUIT changes nothing */
		if (conn_cmd(s, &rep, "QUIT", NULL, "QUIT", secs, NULL) == 0 && s->conn.ssl != NULL)
			(void)SSL_shutdown(s->conn.ssl); /* close_notify, best effort */
	}
	smtp_conn_close(&s->conn);
	free(s);
}
