/*
 * smtpc.c - the SMTP and LMTP client session (see smtpc.h).
 *
 * Everything up to READY is the session's own (smtpc_open); from MAIL on,
 * replies belong to the recipients (smtpc_send).  A transaction builds its
 * command lines once, in one buffer: pipelined, they go out in one write
 * and each reply is read in turn; in lock-step, each line goes out just
 * before its reply is read.  The rest of the dialogue is the same code
 * either way, so the two cannot drift apart.
 */
#include "smtpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"
#include "util.h"

#define SMTPC_PHASE_MAX 300 /* "the reply to RCPT TO:<...>", the address cut to fit */

static const char *const smtpc_state_names[] = {
	"CONNECT", "TLS",  "GREETING", "EHLO", "HELO", "STARTTLS", "AUTH",   "READY",
	"RSET",    "MAIL", "RCPT",     "DATA", "DOT",  "QUIT",     "CLOSED",
};

_Static_assert(sizeof(smtpc_state_names) / sizeof(smtpc_state_names[0]) == SMTPC_STATE_CLOSED + 1,
	       "a name for every state");

/* See smtpc.h. */
const char *smtpc_strstate(enum smtpc_state st)
{
	return smtpc_state_names[st];
}

/* Enter a state; on_state sees the transition. */
static void smtpc_enter_state(struct smtpc *s, enum smtpc_state st)
{
	enum smtpc_state from = s->state;

	if (from == st)
		return;
	s->state = st;
	if (s->o.on_state != NULL)
		s->o.on_state(s->o.state_arg, from, st);
}

/* Record why the session failed.  Returns false. */
static bool smtpc_failed(struct smtpc *s, enum smtpc_fail f)
{
	s->fail = f;
	return false;
}

/* A session whose connection broke takes no command: false with that said. */
static bool smtpc_usable(struct smtpc *s)
{
	if (!s->conn.broken && s->conn.fd >= 0)
		return true;
	s->conn.fail = CONN_FAIL_TEMP;
	snprintf(s->conn.err, sizeof(s->conn.err), "the connection is no longer usable");
	return false;
}

/* See smtpc.h. */
void smtpc_init(struct smtpc *s, const struct smtpc_opts *o)
{
	memset(s, 0, offsetof(struct smtpc, conn));
	s->o = *o;
	s->state = SMTPC_STATE_CONNECT;
	smtp_conn_init(&s->conn);
	s->conn.trace = o->trace;
	s->conn.trace_arg = o->trace_arg;
}

/* See smtpc.h. */
bool smtpc_connect(struct smtpc *s, const struct sockaddr *sa, socklen_t len, unsigned timeout)
{
	return smtp_conn_connect(&s->conn, sa, len, timeout);
}

/* Send one command line and read its reply into s->reply; false: the connection failed. */
static bool smtpc_cmd(struct smtpc *s, const char *phase, const char *line, struct smtp_caps *caps)
{
	return smtp_conn_cmd(&s->conn, &s->reply, phase, NULL, line, s->o.timeout_command, caps) ||
	       smtpc_failed(s, SMTPC_FAIL_CONN);
}

/* The TLS handshake on the connected socket. */
static bool smtpc_tls(struct smtpc *s)
{
	struct smtp_tls_opts t = {.host = s->o.tls_host,
				  .verify = s->o.tls_verify,
				  .ca_file = s->o.tls_ca_file,
				  .timeout = s->o.timeout_command};

	smtpc_enter_state(s, SMTPC_STATE_TLS);
	return smtp_conn_tls(&s->conn, &t) || smtpc_failed(s, SMTPC_FAIL_CONN);
}

/* EHLO (LHLO), or HELO when EHLO gets a 5xx and the options allow it. */
static bool smtpc_hello(struct smtpc *s)
{
	const char *verb = s->o.lmtp ? "LHLO" : "EHLO";
	char line[SMTP_CONN_CMD_MAX];

	snprintf(line, sizeof(line), "%s %s", verb, s->o.helo);
	smtpc_enter_state(s, SMTPC_STATE_EHLO);
	if (!smtpc_cmd(s, verb, line, &s->caps))
		return false;
	if (s->reply.code == 250)
		return true;
	memset(&s->caps, 0, sizeof(s->caps));
	if (s->o.lmtp || !s->o.helo_fallback || s->reply.code / 100 != 5)
		return smtpc_failed(s, SMTPC_FAIL_REFUSED);
	snprintf(line, sizeof(line), "HELO %s", s->o.helo);
	smtpc_enter_state(s, SMTPC_STATE_HELO);
	if (!smtpc_cmd(s, "HELO", line, NULL))
		return false;
	return s->reply.code == 250 || smtpc_failed(s, SMTPC_FAIL_REFUSED);
}

/* Does the greeting name host (mail that would loop back)? */
static bool greets_as(const struct smtp_reply *rep, const char *host)
{
	const char *name = rep->text + 4;
	size_t n = strcspn(name, " ");

	return strlen(rep->text) > 4 && n == strlen(host) && strncasecmp(name, host, n) == 0;
}

/* STARTTLS by the options, the handshake, and EHLO again. */
static bool smtpc_starttls(struct smtpc *s)
{
	if (!s->caps.starttls)
		return s->o.tls == SMTPC_TLS_MAY || smtpc_failed(s, SMTPC_FAIL_NO_STARTTLS);
	smtpc_enter_state(s, SMTPC_STATE_STARTTLS);
	if (!smtpc_cmd(s, "STARTTLS", "STARTTLS", NULL))
		return false;
	if (s->reply.code != 220) {
		if (s->o.tls != SMTPC_TLS_MAY)
			return smtpc_failed(s, SMTPC_FAIL_REFUSED);
		s->tls_refusal = s->reply; /* in step: go on in plaintext */
		return true;
	}
	if (smtp_conn_pending(&s->conn)) { /* response injection: never read as TLS */
		s->conn.broken = true;
		return smtpc_failed(s, SMTPC_FAIL_INJECTION);
	}
	return smtpc_tls(s) && smtpc_hello(s);
}

/* AUTH PLAIN or LOGIN (smtp_conn_auth), never in the clear unless allowed. */
static bool smtpc_auth(struct smtpc *s)
{
	if (s->conn.ssl == NULL && !s->o.auth_plaintext)
		return smtpc_failed(s, SMTPC_FAIL_AUTH_NO_TLS);
	if (!s->caps.auth_plain && !s->caps.auth_login)
		return smtpc_failed(s, SMTPC_FAIL_AUTH_NO_MECH);
	smtpc_enter_state(s, SMTPC_STATE_AUTH);
	if (!smtp_conn_auth(&s->conn, &s->caps, s->o.user, s->o.password, s->o.timeout_command,
			    &s->reply))
		return smtpc_failed(s, SMTPC_FAIL_CONN);
	return s->reply.code == 235 || smtpc_failed(s, SMTPC_FAIL_REFUSED);
}

/* See smtpc.h. */
bool smtpc_open(struct smtpc *s)
{
	s->fail = SMTPC_FAIL_NONE;
	if (s->o.tls == SMTPC_TLS_IMPLICIT && !smtpc_tls(s))
		return false;
	smtpc_enter_state(s, SMTPC_STATE_GREETING);
	s->conn.phase = "the greeting";
	if (!smtp_conn_reply(&s->conn, &s->reply, s->o.timeout_greeting, NULL))
		return smtpc_failed(s, SMTPC_FAIL_CONN);
	if (s->reply.code != 220)
		return smtpc_failed(s, SMTPC_FAIL_REFUSED);
	if (s->o.loop_name != NULL && greets_as(&s->reply, s->o.loop_name))
		return smtpc_failed(s, SMTPC_FAIL_LOOP);
	if (!smtpc_hello(s))
		return false;
	if ((s->o.tls == SMTPC_TLS_MAY || s->o.tls == SMTPC_TLS_STARTTLS) && !smtpc_starttls(s))
		return false;
	if (s->o.user != NULL && !smtpc_auth(s))
		return false;
	smtpc_enter_state(s, SMTPC_STATE_READY);
	return true;
}

/* --- the transaction ------------------------------------------------------------------- */

/* Enter st and read the reply to its command into rep: the command was sent
 * already (pipelined, *sent >= end), or goes out now. */
static bool tx_step(struct smtpc *s, enum smtpc_state st, const char *cmds, size_t *sent,
		    size_t end, const char *phase, unsigned timeout, struct smtp_reply *rep)
{
	smtpc_enter_state(s, st);
	s->conn.phase = phase;
	if (*sent < end) {
		if (!smtp_conn_write_cmds(&s->conn, cmds + *sent, end - *sent,
					  s->o.timeout_command))
			return false;
		*sent = end;
	}
	return smtp_conn_reply(&s->conn, rep, timeout, NULL);
}

/* rep is the answer a of every recipient without one yet. */
static void answer_rest(struct smtpc_msg *m, enum smtpc_answer a, const struct smtp_reply *rep)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].answer == SMTPC_ANSWER_NONE) {
			m->rcpts[i].answer = a;
			m->rcpts[i].reply = *rep;
		}
}

/* DATA got 354 though no recipient was accepted (RFC 2920 §3.1): an empty
 * message, its reply ignored.  An LMTP server must not do that (RFC 2033
 * §4.2 says 503), and how many replies it would send is anyone's guess:
 * the connection is dropped instead. */
static bool tx_empty(struct smtpc *s)
{
	struct smtp_reply rep;
	size_t sent = 0;

	if (s->o.lmtp) {
		s->conn.broken = true;
		return true;
	}
	return tx_step(s, SMTPC_STATE_DOT, ".\r\n", &sent, 3, "the reply to an empty DATA",
		       s->o.timeout_data_end, &rep);
}

/* The message after 354, and the reply (LMTP: a reply per accepted recipient,
 * in RCPT order) after the final dot. */
static bool tx_message(struct smtpc *s, struct smtpc_msg *m)
{
	bool ok;

	smtpc_enter_state(s, SMTPC_STATE_DOT);
	ok = m->fd >= 0
		     ? smtp_conn_send_file(&s->conn, m->fd, m->len, s->o.timeout_command)
		     : smtp_conn_send_data(&s->conn, m->body, (size_t)m->len, s->o.timeout_command);
	if (!ok)
		return false;
	if (!s->o.lmtp) {
		s->conn.phase = "the reply to the end of DATA";
		if (!smtp_conn_reply(&s->conn, &s->reply, s->o.timeout_data_end, NULL))
			return false;
		answer_rest(m, SMTPC_ANSWER_DOT, &s->reply);
		return true;
	}
	for (size_t i = 0; i < m->nrcpts && !s->conn.broken; i++) {
		struct smtpc_rcpt *r = &m->rcpts[i];

		if (!r->accepted)
			continue;
		s->conn.phase = "the replies after the final dot";
		if (!smtp_conn_reply(&s->conn, &r->reply, s->o.timeout_data_end, NULL))
			return false;
		r->answer = SMTPC_ANSWER_DOT;
		if (s->conn.broken) /* 421: the server is closing */
			answer_rest(m, SMTPC_ANSWER_CLOSING, &r->reply);
	}
	return true;
}

/* The command lines of m: MAIL FROM, then ends[i + 1] after recipient i's
 * RCPT TO, then DATA (from ends[m->nrcpts] on). */
static void tx_commands(const struct smtpc_msg *m, struct strbuf *b, size_t *ends)
{
	strbuf_printf(b, "MAIL FROM:%s%s\r\n", m->sender, m->mail_params ? m->mail_params : "");
	ends[0] = b->len;
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct smtpc_rcpt *r = &m->rcpts[i];

		strbuf_printf(b, "RCPT TO:%s%s\r\n", r->addr, r->params ? r->params : "");
		ends[i + 1] = b->len;
	}
	strbuf_adds(b, "DATA\r\n");
}

/* MAIL FROM and the RCPTs (their replies, whether sent before or now);
 * the number of recipients accepted.  false: the connection failed. */
static bool tx_envelope(struct smtpc *s, struct smtpc_msg *m, const char *b, const size_t *ends,
			size_t *sent, size_t *accepted)
{
	unsigned secs = s->o.timeout_command;
	char phase[SMTPC_PHASE_MAX];
	bool mail_ok;

	snprintf(phase, sizeof(phase), "the reply to MAIL FROM:%.250s", m->sender);
	if (!tx_step(s, SMTPC_STATE_MAIL, b, sent, ends[0], phase, secs, &m->mail_reply))
		return false;
	mail_ok = m->mail_reply.code / 100 == 2;
	if (!mail_ok) /* MAIL's refusal answers for everyone */
		answer_rest(m, SMTPC_ANSWER_MAIL, &m->mail_reply);
	if (s->conn.broken || (!mail_ok && *sent < ends[m->nrcpts]))
		return true; /* a 421, or lock-step and nothing more to ask */
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct smtpc_rcpt *r = &m->rcpts[i];

		snprintf(phase, sizeof(phase), "the reply to RCPT TO:%.250s", r->addr);
		if (!tx_step(s, SMTPC_STATE_RCPT, b, sent, ends[i + 1], phase, secs, &s->reply))
			return false;
		if (mail_ok && s->reply.code / 100 == 2) {
			r->accepted = true;
			(*accepted)++;
		} else if (mail_ok) {
			r->answer = SMTPC_ANSWER_RCPT;
			r->reply = s->reply;
		}
		if (s->conn.broken) { /* 421: the server is closing */
			answer_rest(m, SMTPC_ANSWER_CLOSING, &s->reply);
			return true;
		}
	}
	return true;
}

/* See smtpc.h. */
enum smtpc_tx smtpc_send(struct smtpc *s, struct smtpc_msg *m)
{
	bool pipe = s->o.pipelining && s->caps.pipelining;
	bool data_batched = pipe && !m->all_or_none;
	size_t *ends = xcalloc(m->nrcpts + 1, sizeof(*ends)), sent = 0, accepted = 0;
	enum smtpc_tx ret = SMTPC_TX_BROKEN;
	struct strbuf b;

	memset(&m->mail_reply, 0, sizeof(m->mail_reply));
	memset(&m->data_reply, 0, sizeof(m->data_reply));
	for (size_t i = 0; i < m->nrcpts; i++) {
		m->rcpts[i].accepted = false;
		m->rcpts[i].answer = SMTPC_ANSWER_NONE;
		m->rcpts[i].reply.code = 0;
	}
	strbuf_init(&b);
	if (!smtpc_usable(s))
		goto out;
	tx_commands(m, &b, ends);
	if (pipe) { /* RFC 2920: the batch in one write, then the replies in order */
		sent = data_batched ? b.len : ends[m->nrcpts];
		s->conn.phase = "the reply to MAIL FROM";
		if (!smtp_conn_write_cmds(&s->conn, b.s, sent, s->o.timeout_command))
			goto out;
	}
	if (!tx_envelope(s, m, b.s, ends, &sent, &accepted))
		goto out;
	ret = SMTPC_TX_DONE;
	if (s->conn.broken ||
	    (m->all_or_none && (m->mail_reply.code / 100 != 2 || accepted < m->nrcpts)) ||
	    (!data_batched && accepted == 0))
		goto out; /* a 421, or nothing to send: DATA is not sent */
	ret = SMTPC_TX_BROKEN;
	if (!tx_step(s, SMTPC_STATE_DATA, b.s, &sent, b.len, "the reply to DATA",
		     s->o.timeout_command, &m->data_reply))
		goto out;
	ret = SMTPC_TX_DONE;
	if (m->data_reply.code / 100 == 4 || m->data_reply.code / 100 == 5) {
		answer_rest(m, SMTPC_ANSWER_DATA, &m->data_reply);
	} else if (m->data_reply.code != 354) { /* nothing was sent, nothing delivered */
		s->conn.broken = true;
		ret = SMTPC_TX_NOT_354;
	} else if (accepted == 0) {
		if (!tx_empty(s))
			ret = SMTPC_TX_BROKEN;
	} else if (m->fd < 0 && m->body == NULL) { /* in DATA with nothing to send */
		s->conn.broken = true;
		ret = SMTPC_TX_NO_MESSAGE;
	} else if (!tx_message(s, m)) {
		ret = SMTPC_TX_BROKEN;
	}
out:
	s->conn.phase = ""; /* tx_envelope's phases lived on its stack */
	if (!s->conn.broken)
		smtpc_enter_state(s, SMTPC_STATE_READY);
	strbuf_free(&b);
	free(ends);
	return ret;
}

/* See smtpc.h. */
bool smtpc_rset(struct smtpc *s)
{
	s->fail = SMTPC_FAIL_NONE;
	if (!smtpc_usable(s))
		return smtpc_failed(s, SMTPC_FAIL_CONN);
	smtpc_enter_state(s, SMTPC_STATE_RSET);
	if (!smtpc_cmd(s, "RSET", "RSET", NULL))
		return false;
	if (s->reply.code / 100 != 2) { /* out of step: no telling what a next MAIL meets */
		s->conn.broken = true;
		return smtpc_failed(s, SMTPC_FAIL_REFUSED);
	}
	smtpc_enter_state(s, SMTPC_STATE_READY);
	return true;
}

/* See smtpc.h. */
void smtpc_close(struct smtpc *s)
{
	struct smtp_reply rep;
	unsigned secs = s->o.timeout_command < SMTPC_QUIT_TIMEOUT ? s->o.timeout_command
								  : SMTPC_QUIT_TIMEOUT;

	if (!s->conn.broken && s->conn.fd >= 0) {
		smtpc_enter_state(s, SMTPC_STATE_QUIT);
		if (smtp_conn_cmd(&s->conn, &rep, "QUIT", NULL, "QUIT", secs, NULL) &&
		    s->conn.ssl != NULL)
			(void)SSL_shutdown(s->conn.ssl); /* close_notify, best effort */
	}
	smtpc_enter_state(s, SMTPC_STATE_CLOSED);
	smtp_conn_close(&s->conn);
}
