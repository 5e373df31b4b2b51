/*
 * smtp_commands.c - the command table of the SMTP server and its handlers.
 *
 * Each row says in which states a verb is legal; smtp_dispatch() answers
 * 503 for the others, so handlers never re-check the sequence.  Verbs that
 * only a confused HTTP client sends close the session at once.  Handlers
 * reply through smtp_reply() with a named status (status.h).
 */
#include "smtp_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "checks.h"
#include "cmdline.h"
#include "conf.h"
#include "dsn.h"
#include "recipients.h"
#include "sqlmap.h"
#include "users.h"
#include "local.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "postscreen.h"
#include "tls.h"
#include "strbuf.h"
#include "util.h"

#define CMD_FORBIDDEN 0x1 /* close without a reply */

/* Every state in which a command may be given (not DATA/COMMIT/CLOSING). */
#define ST_ANY                                                                                     \
	(STATE_BIT(SMTP_STATE_GREETED) | STATE_BIT(SMTP_STATE_READY) |                             \
	 STATE_BIT(SMTP_STATE_MAIL) | STATE_BIT(SMTP_STATE_RCPT) | STATE_BIT(SMTP_STATE_BDAT))

struct smtp_cmd {
	const char *verb;
	void (*handler)(struct smtp_session *s, char *arg);
	unsigned states; /* STATE_BITs in which the verb is legal */
	unsigned flags;
	int refusals; /* 1 + enum metrics_command: its 4xx/5xx replies are counted; 0: not */
};

static void cmd_ehlo(struct smtp_session *s, char *arg);
static void cmd_helo(struct smtp_session *s, char *arg);
static void cmd_mail(struct smtp_session *s, char *arg);
static void cmd_rcpt(struct smtp_session *s, char *arg);
static void cmd_data(struct smtp_session *s, char *arg);
static void cmd_bdat(struct smtp_session *s, char *arg);
static void cmd_rset(struct smtp_session *s, char *arg);
static void cmd_noop(struct smtp_session *s, char *arg);
static void cmd_quit(struct smtp_session *s, char *arg);
static void cmd_vrfy(struct smtp_session *s, char *arg);
static void cmd_help(struct smtp_session *s, char *arg);
static void cmd_starttls(struct smtp_session *s, char *arg);
static void mail_decide(struct smtp_session *s, char *arg);
static void rcpt_decide(struct smtp_session *s, char *arg);
static void lookup_done(void *arg);

static const struct smtp_cmd smtp_commands[] = {
	{"EHLO", cmd_ehlo, ST_ANY & ~STATE_BIT(SMTP_STATE_BDAT), 0, 0},
	{"HELO", cmd_helo, ST_ANY & ~STATE_BIT(SMTP_STATE_BDAT), 0, 0},
	{"MAIL", cmd_mail, STATE_BIT(SMTP_STATE_READY), 0, 1 + METRICS_COMMAND_MAIL},
	{"RCPT", cmd_rcpt, STATE_BIT(SMTP_STATE_MAIL) | STATE_BIT(SMTP_STATE_RCPT), 0,
	 1 + METRICS_COMMAND_RCPT},
	{"DATA", cmd_data, STATE_BIT(SMTP_STATE_MAIL) | STATE_BIT(SMTP_STATE_RCPT), 0,
	 1 + METRICS_COMMAND_DATA},
	/* BDAT is checked in its handler: its octets must be read even when refused
	 * (a refused chunk is counted when it is refused: smtp_begin_chunk) */
	{"BDAT", cmd_bdat, ST_ANY, 0, 1 + METRICS_COMMAND_BDAT},
	{"RSET", cmd_rset, ST_ANY, 0, 0},
	{"NOOP", cmd_noop, ST_ANY, 0, 0},
	{"QUIT", cmd_quit, ST_ANY, 0, 0},
	{"VRFY", cmd_vrfy, ST_ANY, 0, 0},
	{"HELP", cmd_help, ST_ANY, 0, 0},
	{"STARTTLS", cmd_starttls, STATE_BIT(SMTP_STATE_READY), 0, 0},
	{"AUTH", smtp_cmd_auth, STATE_BIT(SMTP_STATE_READY), 0, 0},
	{"GET", NULL, ST_ANY, CMD_FORBIDDEN, 0},
	{"POST", NULL, ST_ANY, CMD_FORBIDDEN, 0},
	{"HEAD", NULL, ST_ANY, CMD_FORBIDDEN, 0},
	{"PUT", NULL, ST_ANY, CMD_FORBIDDEN, 0},
	{"CONNECT", NULL, ST_ANY, CMD_FORBIDDEN, 0},
};

#define NCOMMANDS (sizeof(smtp_commands) / sizeof(smtp_commands[0]))

_Static_assert(NCOMMANDS <= 20, "cmd_counts in struct smtp_session is too small");

/* A MAIL, RCPT, DATA or BDAT answered with 4xx or 5xx counts as refused. */
static void count_refusal(const struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->refusals > 0 && s->last_status != STATUS_COUNT && status_code(s->last_status) >= 400)
		metrics_add(METRIC_SMTP_REFUSED, (size_t)(c->refusals - 1), s->last_status, 1);
}

/* Look up the verb, check the state, run the handler. */
void smtp_dispatch(struct smtp_session *s, char *line)
{
	struct cmdline cmd;
	size_t i;

	if (!cmdline_split(line, &cmd) || cmd.verb[0] == '\0') {
		smtp_reply(s, STATUS_UNKNOWN_CMD, NULL);
		return;
	}
	if (log_verbose()) {
		char esc[512];
		/* never log credentials: of AUTH only the mechanism */
		size_t n = strcmp(cmd.verb, "AUTH") == 0
				   ? strcspn(cmd.arg, " ") + (size_t)(cmd.arg - line)
				   : strlen(line);
		escape_text(line, n, esc, sizeof(esc));
		log_debug("event=command session=%s state=%s line=\"%s\"", s->id,
			  smtp_strstate(s->state), esc);
	}
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(cmd.verb, smtp_commands[i].verb) == 0)
			break;
	if (i == NCOMMANDS) {
		smtp_reply(s, STATUS_UNKNOWN_CMD, NULL);
		return;
	}
	s->cmd_counts[i]++;
	if (smtp_commands[i].flags & CMD_FORBIDDEN) {
		log_info("event=forbidden_command session=%s client=%s verb=%s", s->id,
			 s->peer_addr, cmd.verb);
		s->drop = true; /* smtp_process_input closes: s must outlive this call */
		return;
	}
	s->last_status = STATUS_COUNT;
	if (!(smtp_commands[i].states & STATE_BIT(s->state)))
		smtp_reply(s, STATUS_BAD_SEQUENCE, NULL);
	else
		smtp_commands[i].handler(s, cmd.arg);
	count_refusal(s, &smtp_commands[i]);
}

/* "ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6" for the disconnect line. */
const char *smtp_command_counts(const struct smtp_session *s, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NCOMMANDS && off < size; i++) {
		if (s->cmd_counts[i] == 0)
			continue;
		int n = snprintf(buf + off, size - off, "%s=%u ", smtp_commands[i].verb,
				 s->cmd_counts[i]);
		if (n < 0)
			break;
		for (int k = 0; k < n && off + (size_t)k < size; k++)
			if (buf[off + k] >= 'A' && buf[off + k] <= 'Z')
				buf[off + k] = (char)(buf[off + k] - 'A' + 'a');
		off += (size_t)n;
	}
	if (off < size)
		snprintf(buf + off, size - off, "commands=%u", s->ncommands);
	return buf;
}

/* Common part of EHLO and HELO: validate the name, reset, remember it.
 * A refused greeting changes nothing in the session. */
static bool greet_common(struct smtp_session *s, char *arg, bool esmtp)
{
	arg = trim(arg);
	if (*arg == '\0' || strlen(arg) >= sizeof(s->helo) || strchr(arg, ' ')) {
		smtp_reply(s, STATUS_SYNTAX, "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return false;
	}
	s->esmtp = esmtp;
	smtp_transaction_reset(s);
	strcpy_bounded(s->helo, arg, sizeof(s->helo));
	if (postscreen_helo(s) != STATUS_OK) {
		s->helo[0] = '\0';
		smtp_enter_state(s, SMTP_STATE_GREETED); /* another EHLO, a better name */
		smtp_reply(s, STATUS_HELO_REFUSED, "HELO name refused: %s",
			   s->helo_fault == HELO_FAULT_BARE_IP
				   ? "an address must be written [ADDRESS]"
				   : "that is my own name");
		return false;
	}
	smtp_enter_state(s, SMTP_STATE_READY);
	return true;
}

/* Is STARTTLS on offer in this session? */
static bool starttls_offered(const struct smtp_session *s)
{
	enum tls_mode m = smtp_tls_mode(s);

	return (m == TLS_MODE_STARTTLS || m == TLS_MODE_REQUIRED) && s->ssl == NULL;
}

/* EHLO: ESMTP and the list of extensions. */
static void cmd_ehlo(struct smtp_session *s, char *arg)
{
	char first[512], size[64];
	const char *lines[12];
	size_t n = 0;

	if (!greet_common(s, arg, true))
		return;
	snprintf(first, sizeof(first), "%s Hello %s [%s]", s->conf->hostname, s->helo,
		 s->peer_addr);
	snprintf(size, sizeof(size), "SIZE %llu",
		 (unsigned long long)s->conf->limits.message_size_max);
	lines[n++] = first;
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "CHUNKING";
	lines[n++] = "DSN";
	if (starttls_offered(s))
		lines[n++] = "STARTTLS";
	if (smtp_auth_offered(s))
		lines[n++] = "AUTH PLAIN LOGIN";
	smtp_reply_multi(s, STATUS_EHLO, lines, n);
}

/* HELO: plain SMTP. */
static void cmd_helo(struct smtp_session *s, char *arg)
{
	if (!greet_common(s, arg, false))
		return;
	smtp_reply(s, STATUS_EHLO, "%s Hello %s [%s]", s->conf->hostname, s->helo, s->peer_addr);
}

/* Skip "FROM:"/"TO:" and the optional spaces some clients put after it. */
static char *after_keyword(char *arg, const char *kw)
{
	if (!has_prefix_ci(arg, kw))
		return NULL;
	arg += strlen(kw);
	while (*arg == ' ')
		arg++;
	return arg;
}

/* Answer st with the text in why, or its default text when why is "". */
static void reply_why(struct smtp_session *s, enum status st, const char *why)
{
	if (why[0] != '\0')
		smtp_reply(s, st, "%s", why);
	else
		smtp_reply(s, st, NULL);
}

/* The AUTH= of MAIL (RFC 4954 §5): xtext of a mailbox or <>, decoded into
 * out; false when it is not xtext or decodes to a space or control octet. */
static bool auth_param_decode(const char *in, char *out, size_t size)
{
	size_t n;

	if (!dsn_xtext_decode(in, out, size, &n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 33 || (unsigned char)out[i] > 126)
			return false;
	return true;
}

/* A DSN parameter's reply text: "Invalid NOTIFY parameter value" or, when
 * repeated, "Duplicate NOTIFY parameter". */
static enum status bad_param(const char *name, bool repeated, char *why, size_t whysz)
{
	snprintf(why, whysz, repeated ? "Duplicate %s parameter" : "Invalid %s parameter value",
		 name);
	return STATUS_BAD_PARAM_VALUE;
}

/* Apply MAIL parameters; STATUS_OK or the error to answer, with its text
 * in why when it is not the default one. */
static enum status mail_params(struct smtp_session *s, struct esmtp_param *p, size_t n, char *why,
			       size_t whysz)
{
	bool seen_size = false, seen_body = false, seen_utf8 = false, seen_auth = false;
	bool seen_ret = false, seen_envid = false;
	uint64_t size;

	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(p[i].key, "SIZE") == 0) {
			if (seen_size || !p[i].value)
				return STATUS_BAD_ARGS;
			if (!parse_u64(p[i].value, 0, UINT64_MAX, &size)) {
				/* digits beyond 64 bits (RFC 1870 allows 20): too big */
				size_t len = strlen(p[i].value);
				if (len == 0 || len > 20 || strspn(p[i].value, "0123456789") != len)
					return STATUS_BAD_ARGS;
				return STATUS_TOO_BIG;
			}
			seen_size = true;
			if (size > s->conf->limits.message_size_max)
				return STATUS_TOO_BIG;
			s->declared_size = size;
		} else if (strcasecmp(p[i].key, "BODY") == 0) {
			if (seen_body || !p[i].value)
				return STATUS_BAD_ARGS;
			seen_body = true;
			if (strcasecmp(p[i].value, "7BIT") == 0)
				s->env.body = BODY_7BIT;
			else if (strcasecmp(p[i].value, "8BITMIME") == 0)
				s->env.body = BODY_8BITMIME;
			else
				return STATUS_BAD_ARGS;
		} else if (strcasecmp(p[i].key, "AUTH") == 0) {
			/* RFC 4954 §5: an xtext mailbox or <>; parsed and kept */
			char decoded[ADDR_PATH_MAX + 1];
			if (seen_auth || !p[i].value ||
			    !auth_param_decode(p[i].value, decoded, sizeof(decoded)))
				return STATUS_BAD_ARGS;
			seen_auth = true;
			free(s->env.auth_param);
			s->env.auth_param = xstrdup(decoded);
		} else if (strcasecmp(p[i].key, "SMTPUTF8") == 0) {
			if (seen_utf8 || p[i].value)
				return STATUS_BAD_ARGS;
			seen_utf8 = true;
			s->env.smtputf8 = true;
		} else if (strcasecmp(p[i].key, "RET") == 0) { /* RFC 3461 §4.3 */
			if (seen_ret || !p[i].value || !dsn_parse_ret(p[i].value, &s->env.ret))
				return bad_param("RET", seen_ret, why, whysz);
			seen_ret = true;
		} else if (strcasecmp(p[i].key, "ENVID") == 0) { /* RFC 3461 §4.4 */
			if (seen_envid || !p[i].value || !dsn_valid_envid(p[i].value))
				return bad_param("ENVID", seen_envid, why, whysz);
			seen_envid = true;
			s->env.envid = xstrdup(p[i].value);
		} else {
			return STATUS_UNKNOWN_PARAM;
		}
	}
	return STATUS_OK;
}

/* The reply for a path that did not parse. */
static enum status addr_status(enum addr_error e, bool sender)
{
	if (e == ADDR_ERR_TOO_LONG)
		return sender ? STATUS_SENDER_TOO_LONG : STATUS_RCPT_TOO_LONG;
	return sender ? STATUS_BAD_SENDER : STATUS_BAD_RCPT;
}

/* The filters answered MAIL. */
static void mail_filtered(void *arg, const struct milter_answer *a)
{
	struct smtp_session *s = arg;

	s->milter_pending = false;
	smtp_set_timeouts(s);
	if (a->verdict == MILTER_CONTINUE) {
		smtp_enter_state(s, SMTP_STATE_MAIL);
		smtp_reply(s, STATUS_SENDER_OK, NULL);
	} else {
		log_info("event=sender_refused session=%s filter=%s verdict=%s", s->id, a->filter,
			 a->verdict == MILTER_REFUSE ? "reject" : "tempfail");
		smtp_transaction_reset(s);
		smtp_reply_filter(s, a->reply,
				  a->verdict == MILTER_REFUSE ? STATUS_CONTENT_REFUSED
							      : STATUS_CONTENT_TEMPFAIL);
	}
	smtp_continue(s);
}

/* Ask the filters about MAIL (sender in s->env); mail_filtered answers. */
static void mail_ask_filters(struct smtp_session *s, const struct esmtp_param *p, size_t n)
{
	const char *argv[ESMTP_PARAMS_MAX + 1];
	size_t off[ESMTP_PARAMS_MAX], k = 0;
	struct strbuf b;
	const struct milter_client cl = {
		.addr = s->peer_addr,
		.port = s->peer_port,
		.name = s->peer_name,
		.helo = s->helo,
		.auth_user = s->auth_user,
		.tls_version = s->tls ? s->tls_version : NULL,
	};

	strbuf_init(&b);
	for (k = 0; k < n && k < ESMTP_PARAMS_MAX; k++) { /* "KEY=VALUE", as sent */
		off[k] = b.len;
		strbuf_printf(&b, "%s%s%s", p[k].key, p[k].value ? "=" : "",
			      p[k].value ? p[k].value : "");
		strbuf_add(&b, "", 1);
	}
	for (size_t i = 0; i < k; i++)
		argv[i] = b.s + off[i];
	argv[k] = NULL;
	s->milter_pending = true;
	smtp_set_timeouts(s);
	milter_mail(s->milter, &cl, s->env.sender, argv, mail_filtered, s); /* copies them */
	strbuf_free(&b);
}

/*
 * Run a command whose decision may need the [sql] tables (MAIL, RCPT).
 * decide runs with an ask (sqlmap.h) that never waits; when it noted
 * questions, decide has replied nothing and changed nothing: the
 * questions go to the lookup threads, input stops (lookup_pending), and
 * lookup_done runs decide again from the start on a fresh copy of the
 * argument, the answers now in the ask (s->lookup_again tells it so: the
 * per-client counters it passed are not counted twice).  Without tables
 * decide runs once.
 * Once decided, the command may still wait for the filters (milter).
 */
static void lookup_run(struct smtp_session *s, void (*decide)(struct smtp_session *, char *),
		       char *arg, bool again)
{
	char *copy;

	s->lookup_again = false;
	if (s->srv->sqlmap == NULL) {
		decide(s, arg);
		return;
	}
	if (s->ask == NULL)
		s->ask = sqlmap_ask_new(s->srv->sqlmap);
	for (;;) {
		copy = xstrdup(arg);     /* decide may cut its argument up */
		s->lookup_again = again; /* what decide counted once stays counted */
		decide(s, copy);
		s->lookup_again = false;
		again = true;
		free(copy);
		if (!sqlmap_ask_waiting(s->ask))
			break;
		if (sqlmap_fetch(s->ask, lookup_done, s)) {
			s->lookup_pending = true;
			s->lookup_cmd = decide;
			if (s->lookup_arg != arg) {
				free(s->lookup_arg);
				s->lookup_arg = xstrdup(arg);
			}
			smtp_set_timeouts(s); /* we are the one who waits now */
			return;
		}
		/* too many rounds: every question is a failure now; decide so */
	}
	sqlmap_ask_free(s->ask);
	s->ask = NULL;
}

/* Loop: the lookups of a waiting MAIL or RCPT are answered: decide it
 * again, then read on (unless it waits again, or the session ends). */
static void lookup_done(void *arg)
{
	struct smtp_session *s = arg;

	s->lookup_pending = false;
	if (s->gone) {
		smtp_close_now(s, "gone during a lookup");
		return;
	}
	smtp_set_timeouts(s); /* the client's turn again, unless we wait again */
	lookup_run(s, s->lookup_cmd, s->lookup_arg, true);
	if (s->lookup_pending)
		return;
	free(s->lookup_arg);
	s->lookup_arg = NULL;
	if (!s->milter_pending) /* else the filters' answer goes on */
		smtp_continue(s);
}

/* MAIL FROM:<reverse-path> [parameters], decided (mail_decide) through
 * the [sql] tables when they are configured. */
static void cmd_mail(struct smtp_session *s, char *arg)
{
	lookup_run(s, mail_decide, arg, false);
}

/* MAIL, once the tables it asks can answer (see lookup_run). */
static void mail_decide(struct smtp_session *s, char *arg)
{
	struct esmtp_param params[ESMTP_PARAMS_MAX];
	struct mailaddr a;
	const char *end;
	char *p, path[ADDR_PATH_MAX + 8];
	size_t n = 0;
	enum addr_error ae;
	enum status st;
	enum policy_answer sender;
	char why[128] = "";

	if (smtp_tls_mode(s) == TLS_MODE_REQUIRED && !s->tls) {
		smtp_reply(s, STATUS_TLS_REQUIRED, NULL);
		return;
	}
	if (s->lc->auth == AUTH_MODE_REQUIRED && s->auth_user == NULL) {
		smtp_reply(s, STATUS_AUTH_REQUIRED, NULL);
		return;
	}
	if (!s->lookup_again && (st = postscreen_mail(s)) != STATUS_OK) {
		smtp_reply(s, st, NULL);
		return;
	}
	if ((p = after_keyword(arg, "FROM:")) == NULL) {
		smtp_reply(s, STATUS_SYNTAX, "Syntax: MAIL FROM:<address>");
		return;
	}
	if ((ae = addr_parse_path(p, &end, &a, ADDR_ALLOW_NULL)) != ADDR_OK) {
		smtp_reply(s, addr_status(ae, true), NULL);
		return;
	}
	p = (char *)end;
	if (*p != '\0' && *p != ' ') {
		smtp_reply(s, STATUS_BAD_SENDER, NULL);
		return;
	}
	if (*p != '\0' && !s->esmtp) {
		smtp_reply(s, STATUS_UNKNOWN_PARAM, "Parameters need EHLO");
		return;
	}
	switch (esmtp_parse_params(p, params, ESMTP_PARAMS_MAX, &n)) {
	case PARAM_OK:
		break;
	default:
		smtp_reply(s, STATUS_BAD_ARGS, NULL);
		return;
	}
	smtp_transaction_reset(s);
	if ((st = mail_params(s, params, n, why, sizeof(why))) != STATUS_OK) {
		smtp_transaction_reset(s);
		reply_why(s, st, why);
		return;
	}
	if (a.utf8 && !s->env.smtputf8) {
		smtp_transaction_reset(s);
		smtp_reply(s, STATUS_NON_ASCII, NULL);
		return;
	}
	if (s->auth_user != NULL &&
	    (sender = policy_sender_check(s->conf, s->ask, s->auth_user, &a)) != POLICY_YES) {
		char esc[ADDR_PATH_MAX * 4], user[256];

		smtp_transaction_reset(s);
		if (sender == POLICY_WAIT)
			return; /* cmd_mail asks the tables and comes back */
		addr_format(&a, path, sizeof(path));
		escape_text(path, strlen(path), esc, sizeof(esc));
		escape_text(s->auth_user, strlen(s->auth_user), user, sizeof(user));
		if (sender == POLICY_TEMPFAIL) {
			char error[400];

			escape_text(sqlmap_ask_error(s->ask), strlen(sqlmap_ask_error(s->ask)),
				    error, sizeof(error));
			log_warnx("event=sender_tempfail session=%s user=\"%s\" from=\"%s\" "
				  "why=\"%s\"",
				  s->id, user, esc, error);
			smtp_reply(s, STATUS_LOOKUP_FAILED, NULL);
			return;
		}
		log_info("event=sender_refused session=%s user=\"%s\" from=\"%s\"", s->id, user,
			 esc);
		smtp_reply(s, STATUS_SENDER_NOT_OWNED, NULL);
		return;
	}
	if (s->declared_size && !intake_has_room(&s->in, s->declared_size)) {
		smtp_transaction_reset(s);
		smtp_reply(s, STATUS_DISK_FULL, NULL);
		return;
	}
	addr_format(&a, path, sizeof(path));
	s->env.sender = xstrdup(path);
	s->env.arrival = 0;
	if (s->checks && !s->trusted && s->auth_user == NULL) {
		/* SPF starts now, so its answer is there by the end of the message */
		char bare[sizeof(path)];
		size_t plen = strlen(path);

		if (plen >= 2 && path[0] == '<' && path[plen - 1] == '>')
			snprintf(bare, sizeof(bare), "%.*s", (int)(plen - 2), path + 1);
		else
			strcpy_bounded(bare, path, sizeof(bare));
		checks_mail(s->checks, s->peer_addr, bare, s->helo);
	}
	if (s->milter != NULL) {
		mail_ask_filters(s, params, n);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_MAIL);
	smtp_reply(s, STATUS_SENDER_OK, NULL);
}

/* Apply RCPT parameters (RFC 3461 §4.1, §4.2) into dsn, the ORCPT value
 * into orcpt; STATUS_OK or the error to answer, with its text in why when
 * it is not the default one. */
static enum status rcpt_params(const struct smtp_session *s, struct esmtp_param *p, size_t n,
			       struct rcpt_dsn *dsn, char *orcpt, size_t orcptsz, char *why,
			       size_t whysz)
{
	bool seen_notify = false, seen_orcpt = false;

	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(p[i].key, "NOTIFY") == 0) {
			if (seen_notify || !p[i].value ||
			    !dsn_parse_notify(p[i].value, &dsn->notify))
				return bad_param("NOTIFY", seen_notify, why, whysz);
			seen_notify = true;
		} else if (strcasecmp(p[i].key, "ORCPT") == 0) {
			if (seen_orcpt || !p[i].value ||
			    !dsn_parse_orcpt(p[i].value, s->env.smtputf8, orcpt, orcptsz))
				return bad_param("ORCPT", seen_orcpt, why, whysz);
			seen_orcpt = true;
			dsn->orcpt = orcpt;
		} else {
			return STATUS_UNKNOWN_PARAM;
		}
	}
	return STATUS_OK;
}

/* A local recipient must exist now (550 5.1.1: never accept and bounce
 * later); aliases expand into the envelope (recipients.c), each address
 * with the RCPT's DSN parameters. */
static enum status rcpt_resolve(struct smtp_session *s, const struct mailaddr *a, const char *path,
				const struct rcpt_dsn *dsn)
{
	char why[512], esc[600], rcpt[ESCAPED_WORD_MAX];
	const char *kind = "";
	const struct recipients_ctx rc = {s->conf, s->srv->users, s->srv->aliases, s->ask};
	bool allowed = policy_rcpt_allowed(s->conf, a, s->local_addr, s->trusted, s->auth_user);
	enum status st = recipients_add(&rc, &s->env, a, path, dsn, s->local_addr, allowed, &kind,
					why, sizeof(why));

	if (sqlmap_ask_waiting(s->ask))
		return st; /* not decided yet: cmd_rcpt asks the tables and comes back */
	escape_text(why, strlen(why), esc, sizeof(esc));
	escape_word(path, rcpt, sizeof(rcpt));
	if (st == STATUS_LOOKUP_FAILED)
		log_warnx("event=rcpt_tempfail session=%s rcpt=%s status=%s why=\"%s\"", s->id,
			  rcpt, kind, esc);
	else if (st != STATUS_OK)
		log_info("event=rcpt_refused session=%s rcpt=%s status=%s why=\"%s\"", s->id, rcpt,
			 kind, esc);
	else
		log_debug("event=rcpt_resolved session=%s rcpt=%s status=%s why=\"%s\"", s->id,
			  rcpt, kind, esc);
	return st;
}

/*
 * May mail to a (written as path) be taken from this client: its relay
 * rights (policy_rcpt_allowed), or a domain the domain table makes local?
 * STATUS_OK, STATUS_RELAY_DENIED, or STATUS_LOOKUP_FAILED - which, while
 * the ask waits for the table, is no answer yet (cmd_rcpt comes back).
 */
static enum status rcpt_relay_check(struct smtp_session *s, const struct mailaddr *a,
				    const char *path)
{
	char esc[300];
	enum local_status ls = LOCAL_UNKNOWN;
	bool by_table;

	if (policy_rcpt_allowed(s->conf, a, s->local_addr, s->trusted, s->auth_user))
		return STATUS_OK;
	if (!a->literal)
		ls = local_domain(s->conf, s->ask, a->domain, &by_table);
	if (ls == LOCAL_OK)
		return STATUS_OK;
	escape_text(path, strlen(path), esc, sizeof(esc));
	if (ls == LOCAL_PENDING)
		return STATUS_LOOKUP_FAILED;
	if (ls == LOCAL_TEMPFAIL) {
		char why[400];

		escape_text(sqlmap_ask_error(s->ask), strlen(sqlmap_ask_error(s->ask)), why,
			    sizeof(why));
		log_warnx("event=rcpt_tempfail session=%s rcpt=\"%s\" status=tempfail why=\"%s\"",
			  s->id, esc, why);
		return STATUS_LOOKUP_FAILED;
	}
	log_info("event=relay_denied session=%s client=%s rcpt=\"%s\"", s->id, s->peer_addr, esc);
	return STATUS_RELAY_DENIED;
}

/* The filters answered RCPT: a refusal takes back what it added. */
static void rcpt_filtered(void *arg, const struct milter_answer *a)
{
	struct smtp_session *s = arg;

	s->milter_pending = false;
	smtp_set_timeouts(s);
	if (a->verdict == MILTER_CONTINUE) {
		smtp_enter_state(s, SMTP_STATE_RCPT);
		smtp_reply(s, STATUS_RCPT_OK, NULL);
	} else {
		while (s->env.nrcpts > s->milter_rcpt_from)
			envelope_remove_rcpt(&s->env, s->env.nrcpts - 1);
		log_info("event=rcpt_refused session=%s filter=%s verdict=%s", s->id, a->filter,
			 a->verdict == MILTER_REFUSE ? "reject" : "tempfail");
		smtp_reply_filter(s, a->reply,
				  a->verdict == MILTER_REFUSE ? STATUS_CONTENT_REFUSED
							      : STATUS_CONTENT_TEMPFAIL);
	}
	smtp_continue(s);
}

/* RCPT TO:<forward-path>, decided (rcpt_decide) through the [sql] tables
 * when they are configured: its reply waits for them. */
static void cmd_rcpt(struct smtp_session *s, char *arg)
{
	lookup_run(s, rcpt_decide, arg, false);
}

/* RCPT, once the tables it asks can answer (see lookup_run). */
static void rcpt_decide(struct smtp_session *s, char *arg)
{
	struct esmtp_param params[ESMTP_PARAMS_MAX];
	struct mailaddr a;
	struct rcpt_dsn dsn = {0, NULL};
	const char *end;
	char *p, path[ADDR_PATH_MAX + 8], orcpt[DSN_ORCPT_MAX + 1], why[128] = "";
	size_t n;
	enum addr_error ae;
	enum status st;

	if ((p = after_keyword(arg, "TO:")) == NULL) {
		smtp_reply(s, STATUS_SYNTAX, "Syntax: RCPT TO:<address>");
		return;
	}
	if ((ae = addr_parse_path(p, &end, &a, ADDR_ALLOW_POSTMASTER)) != ADDR_OK) {
		smtp_reply(s, addr_status(ae, false), NULL);
		return;
	}
	p = (char *)end;
	if (*p != '\0' && *p != ' ') {
		smtp_reply(s, STATUS_BAD_RCPT, NULL);
		return;
	}
	if (esmtp_parse_params(p, params, ESMTP_PARAMS_MAX, &n) != PARAM_OK) {
		smtp_reply(s, STATUS_BAD_ARGS, NULL);
		return;
	}
	if (n > 0 && !s->esmtp) {
		smtp_reply(s, STATUS_UNKNOWN_PARAM, "Parameters need EHLO");
		return;
	}
	if ((st = rcpt_params(s, params, n, &dsn, orcpt, sizeof(orcpt), why, sizeof(why))) !=
	    STATUS_OK) {
		reply_why(s, st, why);
		return;
	}
	if (a.utf8 && !s->env.smtputf8) {
		smtp_reply(s, STATUS_NON_ASCII, NULL);
		return;
	}
	if (s->env.nrcpts >= s->conf->limits.recipients_max) {
		smtp_reply(s, STATUS_TOO_MANY_RCPTS, NULL);
		return;
	}
	if (!s->lookup_again && (st = postscreen_rcpt(s)) != STATUS_OK) {
		smtp_reply(s, st, NULL);
		return;
	}
	addr_format(&a, path, sizeof(path));
	if ((st = rcpt_relay_check(s, &a, path)) != STATUS_OK) {
		if (!sqlmap_ask_waiting(s->ask))
			smtp_reply(s, st, NULL);
		return;
	}
	if ((st = postscreen_greylist(s, path)) != STATUS_OK) {
		smtp_reply(s, st, NULL);
		return;
	}
	s->milter_rcpt_from = s->env.nrcpts;
	if ((st = rcpt_resolve(s, &a, path, &dsn)) != STATUS_OK) {
		if (!sqlmap_ask_waiting(s->ask))
			smtp_reply(s, st, NULL);
		return;
	}
	if (s->milter != NULL) {
		s->milter_pending = true;
		smtp_set_timeouts(s);
		milter_rcpt(s->milter, path, rcpt_filtered, s);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_RCPT);
	smtp_reply(s, STATUS_RCPT_OK, NULL);
}

/* Fill the envelope's fields known at the start of the message. */
static void envelope_stamp(struct smtp_session *s)
{
	s->env.arrival = time(NULL);
	free(s->env.client);
	free(s->env.client_name);
	free(s->env.helo);
	s->env.client = xstrdup(s->peer_addr);
	s->env.client_name = xstrdup(s->peer_name);
	s->env.helo = xstrdup(s->helo);
	free(s->env.auth_user);
	s->env.auth_user = s->auth_user ? xstrdup(s->auth_user) : NULL;
}

/* DATA: 354 and the message stream. */
static void cmd_data(struct smtp_session *s, char *arg)
{
	enum status st;

	if (*arg != '\0') {
		smtp_reply(s, STATUS_SYNTAX, "Syntax: DATA");
		return;
	}
	if (s->state != SMTP_STATE_RCPT) {
		smtp_reply(s, STATUS_NO_RCPTS, NULL);
		return;
	}
	envelope_stamp(s);
	if ((st = smtp_open_message(s)) != STATUS_OK) {
		smtp_reply(s, st, NULL);
		return;
	}
	smtp_begin_data(s);
	smtp_reply(s, STATUS_START_DATA, NULL);
}

/* BDAT size [LAST] (RFC 3030): the octets follow whatever we answer. */
static void cmd_bdat(struct smtp_session *s, char *arg)
{
	char *sz = arg, *last = strchr(arg, ' ');
	uint64_t size;
	bool is_last = false;

	if (last) {
		*last++ = '\0';
		if (strcasecmp(last, "LAST") != 0) {
			smtp_reply(s, STATUS_SYNTAX, "Syntax: BDAT size [LAST]");
			return;
		}
		is_last = true;
	}
	if (!parse_u64(sz, 0, UINT64_MAX, &size)) {
		smtp_reply(s, STATUS_SYNTAX, "Syntax: BDAT size [LAST]");
		return;
	}
	if (!s->esmtp) { /* CHUNKING is an ESMTP extension: not after HELO */
		smtp_begin_chunk(s, size, is_last, STATUS_BAD_SEQUENCE);
		return;
	}
	if (s->state == SMTP_STATE_MAIL) {
		smtp_begin_chunk(s, size, is_last, STATUS_NO_RCPTS);
		return;
	}
	if (s->state != SMTP_STATE_RCPT && s->state != SMTP_STATE_BDAT) {
		smtp_begin_chunk(s, size, is_last, STATUS_BAD_SEQUENCE);
		return;
	}
	if (s->state == SMTP_STATE_RCPT) {
		enum status st;
		envelope_stamp(s);
		if ((st = smtp_open_message(s)) != STATUS_OK) {
			smtp_begin_chunk(s, size, is_last, st);
			return;
		}
		smtp_enter_state(s, SMTP_STATE_BDAT);
	}
	smtp_begin_chunk(s, size, is_last, STATUS_OK);
}

/* RSET: forget the transaction. */
static void cmd_rset(struct smtp_session *s, char *arg)
{
	if (*arg != '\0') {
		smtp_reply(s, STATUS_SYNTAX, "Syntax: RSET");
		return;
	}
	smtp_transaction_reset(s);
	if (s->state != SMTP_STATE_GREETED)
		smtp_enter_state(s, SMTP_STATE_READY);
	smtp_reply(s, STATUS_RESET, NULL);
}

/* NOOP: nothing, successfully. */
static void cmd_noop(struct smtp_session *s, char *arg)
{
	(void)arg;
	smtp_reply(s, STATUS_NOOP, NULL);
}

/* QUIT: 221 and close. */
static void cmd_quit(struct smtp_session *s, char *arg)
{
	(void)arg;
	smtp_close(s, STATUS_BYE);
}

/* VRFY: never a user list (RFC 5321 §3.5.3 allows 252). */
static void cmd_vrfy(struct smtp_session *s, char *arg)
{
	if (*trim(arg) == '\0') {
		smtp_reply(s, STATUS_SYNTAX, "Syntax: VRFY address");
		return;
	}
	smtp_reply(s, STATUS_VRFY, NULL);
}

/* STARTTLS (RFC 3207): 220, then the handshake once this input step ends. */
static void cmd_starttls(struct smtp_session *s, char *arg)
{
	if (*arg != '\0') {
		smtp_reply(s, STATUS_BAD_ARGS, "Syntax: STARTTLS (no parameters)");
		return;
	}
	if (s->ssl != NULL) {
		smtp_reply(s, STATUS_BAD_SEQUENCE, "TLS already active");
		return;
	}
	if (!starttls_offered(s)) {
		smtp_reply(s, STATUS_NOT_IMPLEMENTED, "STARTTLS not offered here");
		return;
	}
	if ((s->ssl = tls_new_ssl(s->lc)) == NULL) {
		smtp_reply(s, STATUS_TLS_UNAVAILABLE, NULL);
		return;
	}
	smtp_reply(s, STATUS_TLS_READY, NULL);
	s->starttls_pending = true;
}

/* HELP: where to read. */
static void cmd_help(struct smtp_session *s, char *arg)
{
	(void)arg;
	smtp_reply(s, STATUS_HELP, NULL);
}
