/*
 * milter.c - the milter client: one connection per filter and session,
 * the steps of a transaction, the actions at its end.  See milter.h.
 *
 * An operation (MAIL, RCPT, or the end of a message) walks the filters in
 * order; for each it sends the steps the filter did not decline and, for
 * each step the filter answers, waits for the answer (timeout_reply) before
 * the next.  Packets of steps not answered go out together with the next
 * one that is.  The answer to the operation is handed over from an event,
 * never from inside the call or the read that produced it.
 */
#include "milter.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "conf.h"
#include "hato_limits.h"
#include "log.h"
#include "milter_proto.h"
#include "strbuf.h"
#include "util.h"

/* Octets of a body chunk read from the message at a time. */
#define BODY_READ MILTER_CHUNK_MAX

/* Where a filter's connection is. */
enum mstate {
	MC_CLOSED,      /* not connected (yet, or again after a failure) */
	MC_CONNECTING,  /* the socket connects */
	MC_NEGOTIATING, /* SMFIC_OPTNEG sent */
	MC_OPEN,        /* negotiated, told of the client */
	MC_DONE,        /* it accepted the session: not asked again */
	MC_REFUSING,    /* it refused the session at connect or HELO */
};

/* The steps of an operation, in the order they are sent. */
enum mstep {
	ST_CONNECT,
	ST_OPTNEG,
	ST_CONN,
	ST_HELO,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_HEADER,
	ST_EOH,
	ST_BODY,
	ST_EOM,
	ST_END,
};

enum op_kind { OP_NONE, OP_MAIL, OP_RCPT, OP_EOM };

struct mconn {
	struct milter_session *ms;
	const struct milter_conf *mc;
	struct bufferevent *bev;
	enum mstate state;
	uint32_t actions;                 /* negotiated SMFIF_* */
	uint32_t protocol;                /* negotiated SMFIP_* */
	bool in_msg;                      /* told of a MAIL whose end it has not answered */
	bool msg_done;                    /* accepted or refused this message: not asked again */
	enum milter_verdict conn_verdict; /* MC_REFUSING */
	char *conn_reply;
};

struct milter_session {
	const struct conf *conf;
	struct event_base *base;
	char listener[64];
	char log_key[INTAKE_LOG_KEY_MAX];
	struct mconn *c;
	size_t n;
	/* the client, copied at the first MAIL */
	char *addr, *name, *helo, *auth_user, *tls_version;
	unsigned port;
	/* the transaction */
	char *sender;
	struct strbuf mail_args; /* NUL-separated */
	char *rcpt;
	bool discard;
	const char *discard_filter;
	char *quarantine;
	const char *quarantine_filter;

	/* the operation in progress */
	enum op_kind op;
	size_t i; /* the filter at hand */
	enum mstep step;
	size_t hdr;        /* ST_HEADER: the next field */
	uint64_t body_off; /* ST_BODY: the next octet */
	bool awaiting;     /* a reply from c[i] */
	bool replacing;    /* c[i] sent SMFIR_REPLBODY in this end of message */
	bool repl_cr;      /* the replacement so far ends in CR */
	struct intake *in; /* OP_EOM */
	milter_cb cb;
	void *cb_arg;
	struct event *timer;
	struct event *done_ev;
	struct strbuf out; /* packets not yet written */
	/* the answer */
	enum milter_verdict verdict;
	bool eom_discard;
	char *reply;
	const char *filter;
};

static void run(struct milter_session *ms);
static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

/* Does listener's mail pass through filter mc? */
static bool applies(const struct milter_conf *mc, const char *listener)
{
	if (mc->nlisteners == 0)
		return true;
	for (size_t i = 0; i < mc->nlisteners; i++)
		if (strcmp(mc->listeners[i], listener) == 0)
			return true;
	return false;
}

/* Hand the answer over (done_ev). */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct milter_session *ms = arg;
	enum op_kind op = ms->op;

	(void)fd;
	(void)what;
	ms->op = OP_NONE;
	if (op == OP_EOM) {
		struct intake_verdict v = {.action = INTAKE_CONTINUE};
		struct intake *in = ms->in;

		ms->in = NULL;
		if (ms->verdict != MILTER_CONTINUE) {
			v.action = ms->verdict == MILTER_REFUSE ? INTAKE_REFUSE : INTAKE_TEMPFAIL;
			v.reply = ms->reply;
			v.reason = ms->filter;
		} else if (ms->eom_discard || ms->discard) {
			v.action = INTAKE_DISCARD;
			v.reason = ms->filter ? ms->filter : ms->discard_filter;
		} else if (ms->quarantine != NULL) {
			v.action = INTAKE_QUARANTINE;
			v.reason = ms->quarantine;
		}
		intake_stage_done(in, &v); /* copies what it keeps */
		return;
	}
	struct milter_answer a = {ms->verdict, ms->reply, ms->filter};
	ms->cb(ms->cb_arg, &a);
}

/* See milter.h. */
struct milter_session *milter_session_new(const struct conf *c, struct event_base *base,
					  const char *listener, const char *log_key)
{
	struct milter_session *ms;
	size_t n = 0;

	for (size_t i = 0; i < c->nmilters; i++)
		n += applies(&c->milters[i], listener);
	if (n == 0)
		return NULL;
	ms = xcalloc(1, sizeof(*ms));
	ms->conf = c;
	ms->base = base;
	strcpy_bounded(ms->listener, listener, sizeof(ms->listener));
	strcpy_bounded(ms->log_key, log_key, sizeof(ms->log_key));
	ms->c = xcalloc(n, sizeof(*ms->c));
	for (size_t i = 0; i < c->nmilters; i++)
		if (applies(&c->milters[i], listener)) {
			ms->c[ms->n].ms = ms;
			ms->c[ms->n++].mc = &c->milters[i];
		}
	ms->timer = evtimer_new(base, timer_cb, ms);
	ms->done_ev = event_new(base, -1, 0, done_cb, ms);
	strbuf_init(&ms->out);
	strbuf_init(&ms->mail_args);
	return ms;
}

/* Write the packets built so far to filter c. */
static void flush(struct milter_session *ms, struct mconn *c)
{
	if (ms->out.len > 0 && c->bev != NULL)
		bufferevent_write(c->bev, ms->out.s, ms->out.len);
	ms->out.len = 0;
}

/* A packet without data. */
static void put_cmd(struct milter_session *ms, char cmd)
{
	milter_packet_end(&ms->out, milter_packet_begin(&ms->out, cmd));
}

/* Close filter c's connection (after quit, when it is in a state to take it). */
static void conn_close(struct mconn *c, bool quit)
{
	if (c->bev != NULL) {
		if (quit && c->state == MC_OPEN) {
			char q[5] = {0, 0, 0, 1, SMFIC_QUIT};
			/* best effort: the socket takes 5 octets at once or not at all */
			evbuffer_write(bufferevent_get_output(c->bev), bufferevent_getfd(c->bev));
			if (send(bufferevent_getfd(c->bev), q, sizeof(q),
				 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				log_debug("event=milter_quit_unsent filter=%s", c->mc->name);
		}
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->state = MC_CLOSED;
	c->in_msg = false;
	c->msg_done = false;
}

/* Stop the operation: no more filters are asked. */
static void op_stop(struct milter_session *ms)
{
	ms->i = ms->n;
}

/* Filter c failed: drop it for now; its on_failure says what the
 * operation at hand gets. */
static void fail(struct milter_session *ms, struct mconn *c, const char *why)
{
	bool ours = ms->op != OP_NONE && ms->i < ms->n && &ms->c[ms->i] == c;

	log_warnx("event=milter_failed %s filter=%s address=%s reason=\"%s\" on_failure=%s",
		  ms->log_key, c->mc->name, c->mc->address, why,
		  c->mc->on_failure == MILTER_FAIL_ACCEPT ? "accept" : "tempfail");
	conn_close(c, false);
	if (!ours)
		return;
	ms->awaiting = false;
	evtimer_del(ms->timer);
	if (c->mc->on_failure != MILTER_FAIL_ACCEPT) {
		ms->verdict = MILTER_TEMPFAIL;
		free(ms->reply);
		ms->reply = NULL;
		ms->filter = c->mc->name;
		op_stop(ms);
	} else {
		ms->i++; /* as if it were not there */
	}
	ms->step = ST_END;
	run(ms);
}

/* No answer in time. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct milter_session *ms = arg;

	(void)fd;
	(void)what;
	fail(ms, &ms->c[ms->i],
	     ms->c[ms->i].state == MC_CONNECTING ? "connect timeout" : "reply timeout");
}

/* Wait for c's answer: write what is built, arm the timer. */
static void await(struct milter_session *ms, struct mconn *c, unsigned seconds)
{
	struct timeval tv = {seconds, 0};

	flush(ms, c);
	ms->awaiting = true;
	evtimer_add(ms->timer, &tv);
}

/* One macro name and value into the packet being built. */
static void macro(struct strbuf *b, const char *name, const char *value)
{
	if (value == NULL)
		return;
	milter_put_str(b, name);
	milter_put_str(b, value);
}

/* An address without its angle brackets, as milters are given it. */
static const char *bare(const char *path, char *buf, size_t size)
{
	size_t n = strlen(path);

	if (n >= 2 && path[0] == '<' && path[n - 1] == '>' && n - 1 <= size) {
		memcpy(buf, path + 1, n - 2);
		buf[n - 2] = '\0';
		return buf;
	}
	return path;
}

/* The macros for step cmd (Postfix's set, as far as hato knows them). */
static void put_macros(struct milter_session *ms, char cmd)
{
	size_t start = milter_packet_begin(&ms->out, SMFIC_MACRO);
	char code[2] = {cmd, '\0'}, b[ADDR_PATH_MAX + 8];

	strbuf_add(&ms->out, code, 1);
	switch (cmd) {
	case SMFIC_CONNECT:
		macro(&ms->out, "j", ms->conf->hostname);
		macro(&ms->out, "{daemon_name}", ms->listener);
		macro(&ms->out, "{client_addr}", ms->addr);
		macro(&ms->out, "{client_name}", ms->name);
		break;
	case SMFIC_HELO:
		macro(&ms->out, "{tls_version}", ms->tls_version);
		break;
	case SMFIC_MAIL:
		macro(&ms->out, "{auth_authen}", ms->auth_user);
		macro(&ms->out, "{tls_version}", ms->tls_version);
		macro(&ms->out, "{mail_addr}", bare(ms->sender, b, sizeof(b)));
		break;
	case SMFIC_RCPT:
		macro(&ms->out, "{rcpt_addr}", bare(ms->rcpt, b, sizeof(b)));
		break;
	default: /* DATA, EOH, end of message: the queue ID */
		macro(&ms->out, "i", ms->in ? intake_queue_id(ms->in) : NULL);
		break;
	}
	milter_packet_end(&ms->out, start);
}

/* SMFIC_CONNECT: the client's name, family, port and address. */
static void put_connect(struct milter_session *ms)
{
	size_t start = milter_packet_begin(&ms->out, SMFIC_CONNECT);
	char host[300];

	if (ms->name != NULL && strcmp(ms->name, "unknown") != 0)
		milter_put_str(&ms->out, ms->name);
	else if (xsnprintf_ok(host, sizeof(host), "[%s]", ms->addr ? ms->addr : ""))
		milter_put_str(&ms->out, host);
	else
		milter_put_str(&ms->out, "unknown");
	if (ms->addr == NULL) {
		strbuf_add(&ms->out, "U", 1);
	} else {
		strbuf_add(&ms->out, strchr(ms->addr, ':') ? "6" : "4", 1);
		milter_put_u16(&ms->out, (uint16_t)ms->port);
		milter_put_str(&ms->out, ms->addr);
	}
	milter_packet_end(&ms->out, start);
}

/* SMFIC_HEADER of field f: its name and its value, leading whitespace
 * gone (unless the filter wants it), folded lines joined by LF. */
static void put_header(struct milter_session *ms, const struct mconn *c,
		       const struct intake_field *f)
{
	size_t start = milter_packet_begin(&ms->out, SMFIC_HEADER), i = f->namelen;
	size_t end = f->len;

	strbuf_add(&ms->out, f->text, f->namelen);
	strbuf_add(&ms->out, "", 1);
	while (i < end && f->text[i] != ':')
		i++;
	i++;
	if (!(c->protocol & SMFIP_HDR_LEADSPC))
		while (i < end && (f->text[i] == ' ' || f->text[i] == '\t'))
			i++;
	while (end > i && (f->text[end - 1] == '\n' || f->text[end - 1] == '\r'))
		end--;
	for (; i < end; i++)
		if (f->text[i] != '\r' || f->text[i + 1] != '\n')
			strbuf_add(&ms->out, f->text[i] == '\0' ? " " : f->text + i, 1);
	strbuf_add(&ms->out, "", 1);
	milter_packet_end(&ms->out, start);
}

/* The step after st in operation ms->op. */
static enum mstep next_step(const struct milter_session *ms, enum mstep st)
{
	switch (st) {
	case ST_MAIL:
	case ST_RCPT:
	case ST_EOM:
		return ST_END;
	default:
		return (enum mstep)(st + 1);
	}
	(void)ms;
}

/* Whether the step just sent is answered; when not, the next step is. */
static bool answered(struct milter_session *ms, bool answer)
{
	if (!answer)
		ms->step = next_step(ms, ms->step);
	return answer;
}

/* Send step ms->step to c: true when its answer is to be awaited, false
 * when the step was declined or goes unanswered (ms->step then moves on). */
static bool send_step(struct milter_session *ms, struct mconn *c)
{
	uint32_t p = c->protocol;
	size_t start;

	switch (ms->step) {
	case ST_OPTNEG:
		start = milter_packet_begin(&ms->out, SMFIC_OPTNEG);
		milter_put_u32(&ms->out, MILTER_VERSION);
		milter_put_u32(&ms->out, SMFIF_ALL);
		milter_put_u32(&ms->out, SMFIP_OFFERED);
		milter_packet_end(&ms->out, start);
		return true;
	case ST_CONN:
		if (p & SMFIP_NOCONNECT)
			break;
		put_macros(ms, SMFIC_CONNECT);
		put_connect(ms);
		return answered(ms, !(p & SMFIP_NR_CONN));
	case ST_HELO:
		if ((p & SMFIP_NOHELO) || ms->helo == NULL || ms->helo[0] == '\0')
			break;
		put_macros(ms, SMFIC_HELO);
		start = milter_packet_begin(&ms->out, SMFIC_HELO);
		milter_put_str(&ms->out, ms->helo);
		milter_packet_end(&ms->out, start);
		return answered(ms, !(p & SMFIP_NR_HELO));
	case ST_MAIL:
		c->in_msg = true;
		c->msg_done = false;
		if (p & SMFIP_NOMAIL)
			break;
		put_macros(ms, SMFIC_MAIL);
		start = milter_packet_begin(&ms->out, SMFIC_MAIL); /* "<path>", as Sendmail */
		milter_put_str(&ms->out, ms->sender);
		strbuf_add(&ms->out, ms->mail_args.s, ms->mail_args.len);
		milter_packet_end(&ms->out, start);
		return answered(ms, !(p & SMFIP_NR_MAIL));
	case ST_RCPT:
		if (p & SMFIP_NORCPT)
			break;
		put_macros(ms, SMFIC_RCPT);
		start = milter_packet_begin(&ms->out, SMFIC_RCPT);
		milter_put_str(&ms->out, ms->rcpt);
		milter_packet_end(&ms->out, start);
		return answered(ms, !(p & SMFIP_NR_RCPT));
	case ST_DATA:
		ms->hdr = 0;
		ms->body_off = 0;
		ms->replacing = false;
		if (p & SMFIP_NODATA)
			break;
		put_macros(ms, SMFIC_DATA);
		put_cmd(ms, SMFIC_DATA);
		return answered(ms, !(p & SMFIP_NR_DATA));
	case ST_HEADER: {
		size_t nf;
		const struct intake_field *f;
		if (p & SMFIP_NOHDRS)
			break; /* the header is not even read */
		f = intake_headers(ms->in, &nf);
		while (f != NULL && ms->hdr < nf && f[ms->hdr].namelen == 0)
			ms->hdr++; /* a continuation with no field: nothing to name */
		if (f == NULL || ms->hdr >= nf)
			break;
		put_header(ms, c, &f[ms->hdr++]);
		return !(p & SMFIP_NR_HDR) ? true : (ms->step = ST_HEADER, false);
	}
	case ST_EOH:
		if (p & SMFIP_NOEOH)
			break;
		put_macros(ms, SMFIC_EOH);
		put_cmd(ms, SMFIC_EOH);
		return answered(ms, !(p & SMFIP_NR_EOH));
	case ST_BODY: {
		char buf[BODY_READ];
		ssize_t r;
		if (p & SMFIP_NOBODY)
			break;
		r = intake_body_read(ms->in, ms->body_off, buf, sizeof(buf));
		if (r <= 0)
			break;
		start = milter_packet_begin(&ms->out, SMFIC_BODY);
		strbuf_add(&ms->out, buf, (size_t)r);
		milter_packet_end(&ms->out, start);
		ms->body_off += (uint64_t)r;
		return !(p & SMFIP_NR_BODY) ? true : (ms->step = ST_BODY, false);
	}
	case ST_EOM:
		put_macros(ms, SMFIC_BODYEOB);
		put_cmd(ms, SMFIC_BODYEOB);
		return true;
	default:
		break;
	}
	ms->step = next_step(ms, ms->step);
	return false;
}

/* Open filter c's connection (ST_CONNECT); false when that failed at once. */
static bool conn_open(struct milter_session *ms, struct mconn *c)
{
	c->bev = bufferevent_socket_new(ms->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		return false;
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = MC_CONNECTING;
	c->actions = c->protocol = 0;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->mc->ss, (int)c->mc->sslen) !=
	    0)
		return false;
	return true;
}

/* Go on with filter c until it waits (false) or is through (true). */
static bool advance(struct milter_session *ms, struct mconn *c)
{
	while (ms->step != ST_END) {
		if (ms->step == ST_CONNECT) {
			if (!conn_open(ms, c)) {
				fail(ms, c, strerror(errno));
				return false;
			}
			await(ms, c, c->mc->timeout_connect);
			return false;
		}
		if (send_step(ms, c)) {
			await(ms, c, c->mc->timeout_reply);
			return false;
		}
	}
	flush(ms, c);
	return true;
}

/* Where filter c starts in the operation; ST_END: it is not asked. */
static enum mstep first_step(struct milter_session *ms, struct mconn *c)
{
	switch (ms->op) {
	case OP_MAIL:
		if (c->state == MC_REFUSING) { /* its refusal of the session stands */
			ms->verdict = c->conn_verdict;
			free(ms->reply);
			ms->reply = c->conn_reply ? xstrdup(c->conn_reply) : NULL;
			ms->filter = c->mc->name;
			op_stop(ms);
			return ST_END;
		}
		if (c->state == MC_DONE)
			return ST_END;
		return c->state == MC_CLOSED ? ST_CONNECT : ST_MAIL;
	case OP_RCPT:
		return c->state == MC_OPEN && c->in_msg && !c->msg_done ? ST_RCPT : ST_END;
	case OP_EOM:
		return c->state == MC_OPEN && c->in_msg && !c->msg_done ? ST_DATA : ST_END;
	default:
		return ST_END;
	}
}

/* The end of the operation: tell those never reached at the end of a
 * message, then answer from an event. */
static void op_finish(struct milter_session *ms)
{
	if (ms->op == OP_EOM || (ms->op == OP_MAIL && ms->verdict != MILTER_CONTINUE))
		milter_abort(ms);
	event_active(ms->done_ev, EV_TIMEOUT, 0);
}

/* Ask the filters from ms->i on. */
static void run(struct milter_session *ms)
{
	while (ms->i < ms->n) {
		struct mconn *c = &ms->c[ms->i];

		if (!ms->awaiting) {
			if (ms->step == ST_END)
				ms->step = first_step(ms, c);
			if (ms->i >= ms->n)
				break; /* first_step stopped it */
			if (ms->step != ST_END && !advance(ms, c))
				return;
		} else {
			return;
		}
		ms->i++;
		ms->step = ST_END;
	}
	op_finish(ms);
}

/* Start an operation. */
static void op_start(struct milter_session *ms, enum op_kind op, milter_cb cb, void *arg)
{
	if (ms->op != OP_NONE)
		fatalx("milter: an operation started while another runs");
	ms->op = op;
	ms->cb = cb;
	ms->cb_arg = arg;
	ms->i = 0;
	ms->step = ST_END;
	ms->awaiting = false;
	ms->verdict = MILTER_CONTINUE;
	ms->eom_discard = false;
	free(ms->reply);
	ms->reply = NULL;
	ms->filter = NULL;
	run(ms);
}

/* Replace a string field. */
static void set_str(char **field, const char *v)
{
	free(*field);
	*field = v ? xstrdup(v) : NULL;
}

/* See milter.h. */
void milter_mail(struct milter_session *ms, const struct milter_client *cl, const char *sender,
		 const char *const *args, milter_cb cb, void *arg)
{
	set_str(&ms->addr, cl->addr);
	set_str(&ms->name, cl->name);
	set_str(&ms->helo, cl->helo);
	set_str(&ms->auth_user, cl->auth_user);
	set_str(&ms->tls_version, cl->tls_version);
	ms->port = cl->port;
	set_str(&ms->sender, sender);
	ms->mail_args.len = 0;
	for (size_t i = 0; args != NULL && args[i] != NULL; i++)
		milter_put_str(&ms->mail_args, args[i]);
	ms->discard = false;
	set_str(&ms->quarantine, NULL);
	op_start(ms, OP_MAIL, cb, arg);
}

/* See milter.h. */
void milter_rcpt(struct milter_session *ms, const char *rcpt, milter_cb cb, void *arg)
{
	set_str(&ms->rcpt, rcpt);
	op_start(ms, OP_RCPT, cb, arg);
}

/* See milter.h. */
void milter_abort(struct milter_session *ms)
{
	for (size_t i = 0; i < ms->n; i++) {
		struct mconn *c = &ms->c[i];
		if (c->state != MC_OPEN || !c->in_msg)
			continue;
		put_cmd(ms, SMFIC_ABORT);
		flush(ms, c);
		c->in_msg = false;
		c->msg_done = false;
	}
	if (ms->op == OP_NONE) {
		ms->discard = false;
		set_str(&ms->quarantine, NULL);
	}
}

/* See milter.h. */
void milter_cancel(struct milter_session *ms)
{
	if (ms->op == OP_NONE)
		return;
	if (ms->awaiting && ms->i < ms->n)
		conn_close(&ms->c[ms->i], false); /* mid-answer: it cannot go on */
	ms->awaiting = false;
	evtimer_del(ms->timer);
	event_del(ms->done_ev);
	ms->op = OP_NONE;
	ms->in = NULL;
	ms->out.len = 0;
	milter_abort(ms);
}

/* See milter.h. */
void milter_session_free(struct milter_session *ms)
{
	if (ms == NULL)
		return;
	milter_cancel(ms);
	for (size_t i = 0; i < ms->n; i++) {
		conn_close(&ms->c[i], true);
		free(ms->c[i].conn_reply);
	}
	free(ms->c);
	event_free(ms->timer);
	event_free(ms->done_ev);
	strbuf_free(&ms->out);
	strbuf_free(&ms->mail_args);
	free(ms->addr);
	free(ms->name);
	free(ms->helo);
	free(ms->auth_user);
	free(ms->tls_version);
	free(ms->sender);
	free(ms->rcpt);
	free(ms->quarantine);
	free(ms->reply);
	free(ms);
}

/* A value for a log line: escaped, bounded. */
static const char *esc(const char *s, char *buf, size_t size)
{
	escape_text(s ? s : "", s ? strlen(s) : 0, buf, size);
	return buf;
}

/* Log an action of filter c. */
static void log_action(const struct milter_session *ms, const struct mconn *c, const char *action,
		       const char *what)
{
	char e[300];

	log_info("event=milter_action %s queue_id=%s filter=%s action=%s%s%s%s", ms->log_key,
		 ms->in ? intake_queue_id(ms->in) : "none", c->mc->name, action,
		 what ? " detail=\"" : "", what ? esc(what, e, sizeof(e)) : "", what ? "\"" : "");
}

/* Append replacement body octets, bare LF made CRLF. */
static bool body_append(struct milter_session *ms, const char *p, size_t n)
{
	size_t from = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && !(i > 0 ? p[i - 1] == '\r' : ms->repl_cr)) {
			if (!intake_body_append(ms->in, p + from, i - from) ||
			    !intake_body_append(ms->in, "\r", 1))
				return false;
			from = i;
		}
	}
	if (n > 0)
		ms->repl_cr = p[n - 1] == '\r';
	return intake_body_append(ms->in, p + from, n - from);
}

/* The negotiated action a modification needs. */
static uint32_t action_flag(char cmd)
{
	switch (cmd) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
		return SMFIF_ADDHDRS;
	case SMFIR_CHGHEADER:
		return SMFIF_CHGHDRS;
	case SMFIR_REPLBODY:
		return SMFIF_CHGBODY;
	case SMFIR_ADDRCPT:
		return SMFIF_ADDRCPT;
	case SMFIR_ADDRCPT_PAR:
		return SMFIF_ADDRCPT_PAR;
	case SMFIR_DELRCPT:
		return SMFIF_DELRCPT;
	case SMFIR_CHGFROM:
		return SMFIF_CHGFROM;
	case SMFIR_QUARANTINE:
		return SMFIF_QUARANTINE;
	default:
		return 0;
	}
}

/* Carry out a modification at the end of a message; false: c broke the
 * protocol (an action it did not negotiate, or not at the end). */
static bool modify(struct milter_session *ms, struct mconn *c, const struct milter_reply *r)
{
	char what[600];
	bool ok = true;

	if (ms->step != ST_EOM || ms->in == NULL || !(c->actions & action_flag(r->cmd)))
		return false;
	switch (r->cmd) {
	case SMFIR_ADDHEADER:
		ok = intake_header_add(ms->in, r->name, r->value);
		snprintf(what, sizeof(what), "%s: %s", r->name, r->value);
		break;
	case SMFIR_INSHEADER:
		ok = intake_header_insert(ms->in, r->index, r->name, r->value);
		snprintf(what, sizeof(what), "%u %s: %s", r->index, r->name, r->value);
		break;
	case SMFIR_CHGHEADER:
		ok = intake_header_change(ms->in, r->name, r->index ? r->index : 1, r->value);
		snprintf(what, sizeof(what), "%u %s: %s", r->index, r->name, r->value);
		log_action(ms, c, r->value[0] ? "chgheader" : "delheader", what);
		return true;
	case SMFIR_REPLBODY:
		if (!ms->replacing) {
			ms->replacing = true;
			ms->repl_cr = false;
			ok = intake_body_replace(ms->in);
			log_action(ms, c, "replbody", NULL);
		}
		if (ok && !body_append(ms, r->data, r->len)) {
			log_warnx("event=milter_replbody_too_big %s filter=%s", ms->log_key,
				  c->mc->name);
			return false;
		}
		return true;
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
		ok = intake_rcpt_add(ms->in, r->addr);
		snprintf(what, sizeof(what), "%s%s%s", r->addr, r->args ? " " : "",
			 r->args ? r->args : "");
		break;
	case SMFIR_DELRCPT:
		ok = intake_rcpt_delete(ms->in, r->addr);
		snprintf(what, sizeof(what), "%s", r->addr);
		break;
	case SMFIR_CHGFROM:
		ok = intake_sender_change(ms->in, r->addr);
		snprintf(what, sizeof(what), "%s%s%s", r->addr, r->args ? " " : "",
			 r->args ? r->args : "");
		break;
	case SMFIR_QUARANTINE:
		if (ms->quarantine == NULL) {
			ms->quarantine = xstrdup(r->text[0] ? r->text : c->mc->name);
			ms->quarantine_filter = c->mc->name;
		}
		snprintf(what, sizeof(what), "%s", r->text);
		break;
	}
	log_action(ms, c, milter_reply_name(r->cmd), what);
	if (!ok) /* an edit intake cannot make (a bad name or address): logged, left */
		log_warnx("event=milter_action_failed %s filter=%s action=%s", ms->log_key,
			  c->mc->name, milter_reply_name(r->cmd));
	return true;
}

/* A refusal from c at step ms->step: r, t or y. */
static bool refusal(struct milter_session *ms, struct mconn *c, const struct milter_reply *r)
{
	enum milter_verdict v = r->cmd == SMFIR_REJECT ? MILTER_REFUSE : MILTER_TEMPFAIL;
	char *reply = NULL, e[300];

	if (r->cmd == SMFIR_REPLYCODE) {
		char cls = r->text[0];
		if ((cls != '4' && cls != '5') ||
		    (reply = intake_reply_lines(r->text, cls)) == NULL)
			return false;
		v = cls == '5' ? MILTER_REFUSE : MILTER_TEMPFAIL;
	}
	log_info("event=milter_action %s queue_id=%s filter=%s action=%s step=%s%s%s%s",
		 ms->log_key, ms->in ? intake_queue_id(ms->in) : "none", c->mc->name,
		 milter_reply_name(r->cmd),
		 ms->step <= ST_HELO   ? "connect"
		 : ms->step == ST_MAIL ? "mail"
		 : ms->step == ST_RCPT ? "rcpt"
				       : "message",
		 reply ? " reply=\"" : "", reply ? esc(r->text, e, sizeof(e)) : "",
		 reply ? "\"" : "");
	if (ms->step <= ST_HELO) { /* the whole session */
		c->state = MC_REFUSING;
		c->conn_verdict = v;
		set_str(&c->conn_reply, reply);
	}
	if (ms->step != ST_RCPT) {
		c->in_msg = false;
		c->msg_done = true;
	}
	ms->verdict = v;
	free(ms->reply);
	ms->reply = reply;
	ms->filter = c->mc->name;
	op_stop(ms);
	return true;
}

/* The option negotiation's answer. */
static bool negotiated(struct milter_session *ms, struct mconn *c, const struct milter_reply *r)
{
	if (r->cmd != SMFIR_OPTNEG || r->version < 2)
		return false;
	c->actions = r->actions & SMFIF_ALL;
	c->protocol = r->protocol & SMFIP_OFFERED;
	c->state = MC_OPEN;
	log_debug("event=milter_negotiated %s filter=%s version=%u actions=0x%x protocol=0x%x",
		  ms->log_key, c->mc->name, r->version, c->actions, c->protocol);
	ms->step = ST_CONN;
	return true;
}

/* One answer from c; false when it breaks the protocol. */
static bool handle(struct milter_session *ms, struct mconn *c, const struct milter_reply *r)
{
	if (!ms->awaiting || ms->op == OP_NONE || ms->i >= ms->n || &ms->c[ms->i] != c)
		return false; /* nothing was asked of it */
	if (ms->step == ST_OPTNEG) {
		if (!negotiated(ms, c, r))
			return false;
		goto next;
	}
	switch (r->cmd) {
	case SMFIR_PROGRESS: {
		struct timeval tv = {c->mc->timeout_reply, 0};
		log_action(ms, c, "progress", NULL);
		evtimer_add(ms->timer, &tv);
		return true; /* still waiting */
	}
	case SMFIR_CONTINUE:
		if (ms->step == ST_EOM) {
			c->in_msg = false;
			ms->step = ST_END;
		} else if (ms->step != ST_HEADER && ms->step != ST_BODY) {
			ms->step = next_step(ms, ms->step);
		}
		break;
	case SMFIR_SKIP:
		if (ms->step != ST_BODY)
			return false;
		ms->step = ST_EOM;
		break;
	case SMFIR_ACCEPT:
		log_action(ms, c, "accept", NULL);
		if (ms->step <= ST_HELO) {
			conn_close(c, true);
			c->state = MC_DONE; /* not asked again this session */
		} else if (ms->step == ST_EOM) {
			c->in_msg = false;
		} else {
			c->msg_done = true; /* told abort at the transaction's end */
		}
		ms->step = ST_END;
		break;
	case SMFIR_DISCARD:
		log_action(ms, c, "discard", NULL);
		c->msg_done = true;
		if (ms->step == ST_EOM)
			c->in_msg = false;
		if (ms->op == OP_EOM) {
			ms->eom_discard = true;
			ms->filter = c->mc->name;
			op_stop(ms);
		} else {
			ms->discard = true;
			ms->discard_filter = c->mc->name;
		}
		ms->step = ST_END;
		break;
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_REPLYCODE:
		if (!refusal(ms, c, r))
			return false;
		ms->step = ST_END;
		break;
	default:
		return modify(ms, c, r);
	}
next:
	ms->awaiting = false;
	evtimer_del(ms->timer);
	if (ms->step == ST_END)
		ms->i++;
	run(ms);
	return true;
}

/* Packets from a filter. */
static void read_cb(struct bufferevent *bev, void *arg)
{
	struct mconn *c = arg;
	struct milter_session *ms = c->ms;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->mc->ss.ss_family != AF_UNIX) {
		/* ack at once: a filter sends an action and its final reply in
		 * two writes, and its Nagle waits for our ack of the first */
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	}
	while (c->bev == bev) {
		size_t have = evbuffer_get_length(in);
		unsigned char *p = evbuffer_pullup(in, have < 4 ? (ssize_t)have : 4);
		ssize_t len = p ? milter_frame(p, have, c->mc->packet_max) : 0;
		struct milter_reply r;
		bool ok;

		if (len < 0) {
			fail(ms, c, "packet longer than packet_max, or empty");
			return;
		}
		if (len == 0)
			return;
		p = evbuffer_pullup(in, len);
		if (!milter_reply_decode((const char *)p + 4, (size_t)len - 4, &r)) {
			fail(ms, c, "a reply that does not parse");
			return;
		}
		ok = handle(ms, c, &r);
		if (c->bev != bev) /* closed in there (it failed, or accepted the session) */
			return;
		evbuffer_drain(in, (size_t)len);
		if (!ok) {
			char why[64];
			snprintf(why, sizeof(why), "unexpected reply %s (0x%02x)",
				 milter_reply_name(r.cmd), (unsigned char)r.cmd);
			fail(ms, c, why);
			return;
		}
	}
}

/* Connected, closed, or an error. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mconn *c = arg;
	struct milter_session *ms = c->ms;

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;
		if (c->mc->ss.ss_family != AF_UNIX) /* small packets both ways: no Nagle */
			setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		c->state = MC_NEGOTIATING;
		ms->awaiting = false;
		evtimer_del(ms->timer);
		ms->step = ST_OPTNEG;
		run(ms);
		return;
	}
	fail(ms, c,
	     (what & BEV_EVENT_EOF)      ? "connection closed"
	     : c->state == MC_CONNECTING ? (errno ? strerror(errno) : "connect failed")
					 : "connection error");
}

/* The stage: the end of the message, to every filter told of it. */
static void stage_run(struct intake *in, void *arg)
{
	struct milter_session *ms = arg;

	ms->in = in;
	op_start(ms, OP_EOM, NULL, NULL);
}

/* The stage is cancelled: the client went away. */
static void stage_cancel(struct intake *in, void *arg)
{
	(void)in;
	milter_cancel(arg);
}

const struct intake_stage milter_stage = {"milter", INTAKE_RANK_MILTER, stage_run, stage_cancel};
