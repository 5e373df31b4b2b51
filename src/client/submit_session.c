/*
 * submit_session.c - `hato send`'s side of a submission session: the
 * dialogue itself is the client session's (src/smtpc/smtpc.h) - greeting,
 * EHLO, STARTTLS with the response-injection check, AUTH, then MAIL and the
 * RCPTs pipelined when the server offers PIPELINING, DATA only when every
 * recipient was accepted (all or none).  What stays here is the CLI's own:
 * resolving the server's name, our EHLO name, the MAIL FROM parameters the
 * message needs, and turning each failure into one line on stderr and a
 * sysexits(3) code.
 *
 * A reply that breaks smtp_conn's bounds, or a line that is not "DDD",
 * "DDD text" or "DDD-text" with the same code throughout, is a garbled
 * reply (EX_PROTOCOL) and ends the session without QUIT.  So does a 421
 * (the server is closing), a timeout or a lost connection (EX_TEMPFAIL).
 * Any other refusal leaves the session in step: the caller may send
 * another message (after RSET) or QUIT.
 *
 * Credentials: the AUTH lines are built in buffers that are wiped after
 * use (smtp_conn_auth), and -v prints "********" in their place.
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
#include "smtpc.h"
#include "strbuf.h"
#include "util.h"

struct submit_session {
	const struct submit_opts *o;
	const char *label; /* "" or "FILE: " before each error line */
	bool used;         /* a transaction ran: RSET before the next */
	char helo[ADDR_DOMAIN_MAX + 1];
	struct smtpc s;
};

/* Print one error line "hato: [label]..." and return rc. */
static int __attribute__((format(printf, 3, 4)))
sess_error(const struct submit_session *s, int rc, const char *fmt, ...)
{
	va_list ap;

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

	return sess_error(s, rc[s->s.conn.fail], "%s%s", s->s.conn.err,
			  s->s.conn.verify_failed ? " (--insecure skips the check)" : "");
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
		if (smtpc_connect(&s->s, ai->ai_addr, ai->ai_addrlen, s->o->timeout_connect))
			break;
		timed_out = strcmp(s->s.conn.err, strerror(ETIMEDOUT)) == 0;
		trace(s, "* %s: %s", addr, s->s.conn.err);
	}
	freeaddrinfo(res);
	if (s->s.conn.fd >= 0)
		return 0;
	return sess_error(s, timed_out ? EX_TEMPFAIL : EX_UNAVAILABLE,
			  "cannot connect to %s port %u (%s): %s", s->o->host, s->o->port, addr,
			  s->s.conn.err);
}

/* The session's on_state (-v): after the handshake, what TLS it gave. */
static void sess_state(void *arg, enum smtpc_state from, enum smtpc_state to)
{
	const struct submit_session *s = arg;
	SSL *ssl = s->s.conn.ssl;

	if (from == SMTPC_STATE_TLS && to != SMTPC_STATE_CLOSED)
		trace(s, "* TLS %s %s, certificate %s", SSL_get_version(ssl),
		      SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)),
		      s->o->insecure ? "not verified (--insecure)" : "verified");
}

/* AUTH failed at the connection level (smtp_conn_auth): print why. */
static int auth_failed(const struct submit_session *s, const char *mech)
{
	const struct smtp_conn *c = &s->s.conn;

	if (c->broken)
		return conn_rc(s);
	if (c->fail == CONN_FAIL_SOFTWARE) /* refused before sending anything */
		return sess_error(s, EX_USAGE, "%s", c->err);
	return sess_error(s, EX_PROTOCOL, "AUTH %s as %s: %s", mech, s->o->user, c->err);
}

/* smtpc_open failed: print why and return the exit code. */
static int open_failed(const struct submit_session *s)
{
	const struct submit_opts *o = s->o;
	const struct smtp_reply *rep = &s->s.reply;
	const char *mech = s->s.caps.auth_plain ? "PLAIN" : "LOGIN";

	switch (s->s.fail) {
	case SMTPC_FAIL_REFUSED:
		if (s->s.state == SMTPC_STATE_GREETING)
			return sess_error(s, refusal_rc(rep, EX_UNAVAILABLE),
					  "%s refused the session: %s", o->host, rep->text);
		if (s->s.state == SMTPC_STATE_AUTH)
			return sess_error(s, refusal_rc(rep, EX_NOPERM),
					  "AUTH %s as %s refused: %s", mech, o->user, rep->text);
		return sess_error(s, refusal_rc(rep, EX_UNAVAILABLE), "%s refused: %s",
				  smtpc_strstate(s->s.state), rep->text);
	case SMTPC_FAIL_NO_STARTTLS:
		return sess_error(s, EX_UNAVAILABLE,
				  "%s does not offer STARTTLS (--tls implicit for port 465; "
				  "--tls none sends everything in the clear)",
				  o->host);
	case SMTPC_FAIL_INJECTION:
		return sess_error(s, EX_PROTOCOL,
				  "%s sent data after its reply to STARTTLS, before TLS began",
				  o->host);
	case SMTPC_FAIL_AUTH_NO_TLS: /* submit.c refuses --user with --tls none */
		return sess_error(s, EX_SOFTWARE, "refusing to send a password without TLS");
	case SMTPC_FAIL_AUTH_NO_MECH:
		if (!s->s.caps.auth)
			return sess_error(
				s, EX_UNAVAILABLE,
				"%s does not offer AUTH (cannot log in as %s; leave out --user?)",
				o->host, o->user);
		return sess_error(
			s, EX_UNAVAILABLE,
			"%s offers no AUTH mechanism hato can use (PLAIN, LOGIN), only: %s",
			o->host, s->s.caps.auth_mechs);
	case SMTPC_FAIL_CONN:
		if (s->s.state == SMTPC_STATE_AUTH)
			return auth_failed(s, mech);
		return conn_rc(s);
	default:
		return conn_rc(s);
	}
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
	if (getsockname(s->s.conn.fd, (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST) !=
		    0)
		return;
	snprintf(s->helo, sizeof(s->helo), ss.ss_family == AF_INET6 ? "[IPv6:%s]" : "[%s]", addr);
}

/* The client session's options for o. */
static void sess_opts(struct submit_session *s, const struct submit_opts *o, struct smtpc_opts *so)
{
	memset(so, 0, sizeof(*so));
	so->helo = s->helo;
	so->helo_fallback = o->tls == SUBMIT_TLS_NONE; /* STARTTLS and AUTH need EHLO */
	so->pipelining = true;
	so->tls = o->tls == SUBMIT_TLS_IMPLICIT   ? SMTPC_TLS_IMPLICIT
		  : o->tls == SUBMIT_TLS_STARTTLS ? SMTPC_TLS_STARTTLS
						  : SMTPC_TLS_NONE;
	so->tls_host = o->host;
	so->tls_verify = !o->insecure;
	so->user = o->user;
	so->password = o->password;
	so->timeout_greeting = o->timeout_greeting;
	so->timeout_command = o->timeout_command;
	so->timeout_data_end = o->timeout_data_end;
	if (o->verbose) {
		so->trace = trace_line;
		so->on_state = sess_state;
		so->state_arg = s;
	}
}

/* See submit_session.h. */
struct submit_session *submit_session_open(const struct submit_opts *o, int *rc)
{
	struct submit_session *s = xcalloc(1, sizeof(*s));
	struct smtpc_opts so;

	s->o = o;
	s->label = "";
	sess_opts(s, o, &so);
	smtpc_init(&s->s, &so);
	if ((*rc = sess_connect(s)) != 0)
		goto fail;
	sess_helo_name(s);
	if (!smtpc_open(&s->s)) {
		*rc = open_failed(s);
		goto fail;
	}
	return s;
fail:
	submit_session_close(s);
	return NULL;
}

/* Does s contain octets above 127? */
static bool non_ascii(const char *s)
{
	return has_8bit(s, strlen(s));
}

/* The MAIL FROM parameters the server understands and the message needs. */
static void mail_params(const struct submit_session *s, const struct submit_message *m,
			struct strbuf *b)
{
	bool utf8 = non_ascii(m->sender);

	for (size_t i = 0; i < m->nrcpts; i++)
		utf8 = utf8 || non_ascii(m->rcpts[i]);
	if (s->s.caps.size > 0)
		strbuf_printf(b, " SIZE=%zu", m->len);
	if (s->s.caps.eightbit && has_8bit(m->data, m->len))
		strbuf_adds(b, " BODY=8BITMIME");
	if (s->s.caps.smtputf8 && utf8)
		strbuf_adds(b, " SMTPUTF8");
}

/* Print what went wrong with the transaction sm of m (smtpc_send said tx):
 * 0 when the server took the message, else the exit code.  Every refused
 * recipient is printed; a refused MAIL FROM stands for them all. */
static int sess_result(const struct submit_session *s, const struct submit_message *m,
		       const struct smtpc_msg *sm, enum smtpc_tx tx)
{
	const struct smtp_reply *mail = &sm->mail_reply, *data = &sm->data_reply;
	int worst = 0;

	if (mail->code != 0 && mail->code / 100 != 2) {
		if (mail->code == 530)
			return sess_error(s, EX_NOPERM,
					  "MAIL FROM:<%s> refused: %s (log in with --user)",
					  m->sender, mail->text);
		return sess_error(s, refusal_rc(mail, EX_DATAERR), "MAIL FROM:<%s> refused: %s",
				  m->sender, mail->text);
	}
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct smtp_reply *r = &sm->rcpts[i].reply;
		int rc;

		if (sm->rcpts[i].answer != SMTPC_ANSWER_RCPT)
			continue;
		rc = sess_error(s, refusal_rc(r, EX_DATAERR), "RCPT TO:<%s> refused: %s",
				m->rcpts[i], r->text);
		if (worst != EX_DATAERR)
			worst = rc;
	}
	if (tx == SMTPC_TX_BROKEN)
		return conn_rc(s);
	if (worst != 0)
		return worst;
	if (data->code != 354)
		return sess_error(s, refusal_rc(data, EX_DATAERR), "DATA refused: %s", data->text);
	if (sm->rcpts[0].reply.code / 100 != 2)
		return sess_error(s, refusal_rc(&sm->rcpts[0].reply, EX_DATAERR),
				  "message refused after DATA: %s", sm->rcpts[0].reply.text);
	return 0;
}

/* See submit_session.h. */
int submit_session_send(struct submit_session *s, const struct submit_message *m)
{
	struct smtpc_rcpt *rc;
	struct smtpc_msg sm;
	struct strbuf params, paths;
	size_t *at;
	int ret;

	s->label = m->label;
	if (s->s.conn.broken)
		return sess_error(s, EX_SOFTWARE, "the connection is no longer usable");
	if (s->used && !smtpc_rset(&s->s))
		return s->s.fail == SMTPC_FAIL_REFUSED
			       ? sess_error(s, refusal_rc(&s->s.reply, EX_PROTOCOL),
					    "RSET refused: %s", s->s.reply.text)
			       : conn_rc(s);
	s->used = true;
	if (s->s.caps.size > 0 && m->len > s->s.caps.size)
		return sess_error(s, EX_DATAERR,
				  "the message is %zu octets, more than the %llu that %s accepts",
				  m->len, (unsigned long long)s->s.caps.size, s->o->host);
	/* "<sender>" and each "<rcpt>", NUL-terminated one after another in paths */
	strbuf_init(&params);
	strbuf_init(&paths);
	at = xcalloc(m->nrcpts + 1, sizeof(*at));
	mail_params(s, m, &params);
	strbuf_printf(&paths, "<%s>", m->sender);
	for (size_t i = 0; i < m->nrcpts; i++) {
		strbuf_add(&paths, "", 1);
		at[i + 1] = paths.len;
		strbuf_printf(&paths, "<%s>", m->rcpts[i]);
	}
	rc = xcalloc(m->nrcpts, sizeof(*rc));
	for (size_t i = 0; i < m->nrcpts; i++)
		rc[i].addr = paths.s + at[i + 1];
	sm = (struct smtpc_msg){.sender = paths.s,
				.mail_params = params.s,
				.rcpts = rc,
				.nrcpts = m->nrcpts,
				.fd = -1,
				.body = m->data,
				.len = m->len,
				.all_or_none = true};
	ret = sess_result(s, m, &sm, smtpc_send(&s->s, &sm));
	free(rc);
	free(at);
	strbuf_free(&paths);
	strbuf_free(&params);
	return ret;
}

/* See submit_session.h. */
bool submit_session_usable(const struct submit_session *s)
{
	return !s->s.conn.broken;
}

/* See submit_session.h. */
void submit_session_close(struct submit_session *s)
{
	if (s == NULL)
		return;
	smtpc_close(&s->s); /* QUIT when in step: the messages are decided, it changes nothing */
	free(s);
}
