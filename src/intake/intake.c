/*
 * intake.c - the gate into the queue: Received:, limits, fix-ups, commit.
 * See intake.h.
 *
 * The hot path is intake_write: per call (a read's worth of octets, never
 * per line) one header scan, one size check and one queue_file_write;
 * with fix-ups the octets pass through header_fix into fixbuf first, which
 * is reused from message to message.
 */
#include "intake.h"
#include "intake_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "intake_dkim.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* The status a failed queue write or open stands for. */
static enum status write_failure(int err)
{
	return (err == ENOSPC || err == EDQUOT) ? STATUS_DISK_FULL : STATUS_LOCAL_ERROR;
}

/* See intake.h. */
void intake_init(struct intake *in, const struct conf *c, struct queue *q)
{
	memset(in, 0, sizeof(*in));
	in->conf = c;
	in->q = q;
	in->error = STATUS_OK;
}

/* See intake.h. */
void intake_set_conf(struct intake *in, const struct conf *c)
{
	in->conf = c;
}

static void verdict_reset(struct intake *in);

/* See intake.h. */
void intake_free(struct intake *in)
{
	intake_cancel(in);
	intake_abort(in);
	if (in->fixbuf.s != NULL)
		strbuf_free(&in->fixbuf);
	if (in->step_ev != NULL)
		event_free(in->step_ev);
	in->step_ev = NULL;
	intake_msg_free(&in->msg);
	verdict_reset(in);
}

/* See intake.h. */
bool intake_has_room(struct intake *in, uint64_t size)
{
	return queue_has_space(in->q, size, in->conf->limits.min_free_space);
}

/* Write to the message file; a failure becomes the sticky error. */
static void store(struct intake *in, const char *p, size_t n)
{
	if (n > 0 && !queue_file_write(&in->qf, p, n) && in->error == STATUS_OK)
		in->error = write_failure(errno);
}

/* Our trace header for a message from an SMTP session (RFC 5321 §4.4). */
static void received_smtp(const struct intake *in, const struct intake_origin *o, struct strbuf *b)
{
	const struct envelope *e = in->env;
	const char *addr = e->client ? e->client : "unknown";
	bool v6 = strchr(addr, ':') != NULL;
	char helo[300], proto[16];

	escape_text(e->helo ? e->helo : "", e->helo ? strlen(e->helo) : 0, helo, sizeof(helo));
	/* RFC 3848 / RFC 6531 protocol names: ESMTP, ESMTPS, ESMTPSA, UTF8SMTPSA ... */
	snprintf(proto, sizeof(proto), "%s%s%s",
		 !o->esmtp     ? "SMTP"
		 : e->smtputf8 ? "UTF8SMTP"
			       : "ESMTP",
		 o->esmtp && o->tls_version ? "S" : "", o->esmtp && e->auth_user ? "A" : "");
	if (e->auth_user && in->conf->received_hide_client)
		strbuf_printf(b, "Received: from %s\r\n", helo);
	else
		strbuf_printf(b, "Received: from %s (%s [%s%s])\r\n", helo,
			      e->client_name ? e->client_name : "unknown", v6 ? "IPv6:" : "", addr);
	if (o->tls_version)
		strbuf_printf(b, "\t(using %s with cipher %s)\r\n", o->tls_version,
			      o->tls_cipher ? o->tls_cipher : "unknown");
	if (e->auth_user) {
		char user[300];
		escape_text(e->auth_user, strlen(e->auth_user), user, sizeof(user));
		strbuf_printf(b, "\t(Authenticated sender: %s)\r\n", user);
	}
	strbuf_printf(b, "\tby %s (hato) with %s id %s", in->conf->hostname, proto, in->qf.id);
	if (e->nrcpts == 1)
		strbuf_printf(b, "\r\n\tfor %s", e->rcpts[0].addr);
	strbuf_printf(b, ";\r\n\t%s\r\n", in->date);
	if (o->client_mark)
		strbuf_printf(b, "X-Hato-Client-Check: %s\r\n", o->client_mark);
}

/* Our trace header for a message from the maildrop directory. */
static void received_pickup(const struct intake *in, const struct intake_origin *o,
			    struct strbuf *b)
{
	strbuf_printf(b, "Received: by %s (hato, from userid %u)\r\n\tid %s; %s\r\n",
		      in->conf->hostname, o->uid, in->qf.id, in->date);
}

/* Our trace header for a message hato made itself (no queue ID yet). */
static void received_local(const struct conf *c, const char *date, struct strbuf *b)
{
	strbuf_printf(b, "Received: by %s (hato);\r\n\t%s\r\n", c->hostname, date);
}

/* Write the Received: header first in the file. */
static void write_received(struct intake *in, const struct intake_origin *o)
{
	struct strbuf b;

	strbuf_init(&b);
	if (o->source == INTAKE_PICKUP)
		received_pickup(in, o, &b);
	else
		received_smtp(in, o, &b);
	in->received_len = b.len;
	store(in, b.s, b.len);
	strbuf_free(&b);
}

/* Start the submission fix-ups: Date and Message-ID if missing, no Bcc. */
static void fixups_start(struct intake *in)
{
	if (!xsnprintf_ok(in->msgid, sizeof(in->msgid), "<%s@%s>", in->qf.id, in->conf->hostname))
		snprintf(in->msgid, sizeof(in->msgid), "<%s@localhost>", in->qf.id);
	header_fix_init(&in->hfix, in->date, in->msgid);
	if (in->fixbuf.s == NULL) /* made once, kept for the receiver's next messages */
		strbuf_init(&in->fixbuf);
	in->fixbuf.len = 0;
	in->fixing = true;
}

/* See intake.h. */
enum status intake_open(struct intake *in, struct envelope *env, const struct intake_origin *o,
			uint64_t declared)
{
	intake_abort(in);
	strcpy_bounded(in->log_key, o->log_key ? o->log_key : "source=intake", sizeof(in->log_key));
	in->source = o->source;
	if (!intake_has_room(in, declared)) {
		log_warnx("event=disk_full %s spool=%s", in->log_key, in->conf->state_dir);
		return STATUS_DISK_FULL;
	}
	if (!queue_file_open(in->q, &in->qf)) {
		int e = errno;
		log_warn("event=queue_open_failed %s", in->log_key);
		return write_failure(e);
	}
	in->phase = INTAKE_OPEN;
	in->env = env;
	intake_msg_reset(&in->msg);
	memcpy(env->id, in->qf.id, sizeof(env->id));
	env->size = 0;
	in->error = STATUS_OK;
	header_scan_init(&in->hs);
	if (!mail_date(time(NULL), in->date, sizeof(in->date)))
		strcpy_bounded(in->date, MAIL_DATE_EPOCH, sizeof(in->date));
	write_received(in, o);
	in->fixing = false;
	in->sign = o->sign;
	if (o->fixups)
		fixups_start(in);
	return STATUS_OK;
}

/* See intake.h. */
void intake_write(struct intake *in, const char *p, size_t n)
{
	header_scan_feed(&in->hs, p, n);
	in->env->size += n;
	if (in->error != STATUS_OK)
		return;
	if (in->env->size > in->conf->limits.message_size_max) {
		in->error = STATUS_TOO_BIG;
		return;
	}
	if (!in->fixing) {
		store(in, p, n);
		return;
	}
	header_fix_feed(&in->hfix, p, n, &in->fixbuf);
	store(in, in->fixbuf.s, in->fixbuf.len);
	in->fixbuf.len = 0;
}

/* See intake.h. */
enum status intake_status(const struct intake *in)
{
	return in->error;
}

/* The end of a fixed-up message: what the header still needs. */
static void fixups_finish(struct intake *in)
{
	if (!in->fixing)
		return;
	header_fix_finish(&in->hfix, &in->fixbuf);
	store(in, in->fixbuf.s, in->fixbuf.len);
	in->fixbuf.len = 0;
	log_info("event=submission_fixups %s queue_id=%s added_date=%s "
		 "added_message_id=%s removed_bcc=%u",
		 in->log_key, in->qf.id, header_fix_added_date(&in->hfix) ? "yes" : "no",
		 header_fix_added_msgid(&in->hfix) ? "yes" : "no",
		 header_fix_removed_bcc(&in->hfix));
}

/* The checks of a complete message, in the order that picks its reply. */
static enum status decide(struct intake *in, enum status form)
{
	if (in->error != STATUS_OK)
		return in->error;
	if (in->hs.received > in->conf->limits.received_max)
		return STATUS_LOOP;
	fixups_finish(in);
	if (in->error != STATUS_OK)
		return in->error;
	/* the reserve must survive this message too (SIZE= may have been absent) */
	if (!intake_has_room(in, in->qf.buflen))
		return STATUS_DISK_FULL;
	return form;
}

/* Forget the last message's verdict. */
static void verdict_reset(struct intake *in)
{
	free(in->reply);
	free(in->reason);
	free(in->quarantine);
	in->reply = in->reason = in->quarantine = NULL;
	in->quarantine_stage = NULL;
	memset(&in->res, 0, sizeof(in->res));
}

/* Count a settled message: accepted (committed) or refused with its status. */
static void count_result(enum intake_source src, const struct intake_result *r)
{
	size_t s = src == INTAKE_PICKUP ? METRICS_SOURCE_PICKUP : METRICS_SOURCE_SMTP;

	if (r->outcome == INTAKE_QUEUED)
		metrics_add(METRIC_MESSAGES_ACCEPTED, s, 0, 1);
	else if (r->outcome == INTAKE_REFUSED)
		metrics_add(METRIC_MESSAGES_REFUSED, s, r->status, 1);
}

/* Answer the receiver: the result is set, the message settled. */
static void answer(struct intake *in)
{
	intake_done_cb cb = in->cb;

	count_result(in->source, &in->res);

	in->phase = INTAKE_IDLE;
	in->env = NULL;
	in->cb = NULL;
	cb(in->cb_arg, &in->res); /* may reuse or free the intake: nothing after */
}

/* A message with the queue's commit threads: whom to tell.  The intake is
 * free for the receiver's next message meanwhile (pickup's is). */
struct intake_ticket {
	struct intake *in;
	intake_done_cb cb;
	void *arg;
	char *quarantine; /* the hold's reason, or NULL */
	const char *stage;
};

/* The commit finished (on the loop). */
static void committed(void *arg, int err)
{
	struct intake_ticket *t = arg;
	struct intake_result r = {.outcome = INTAKE_QUEUED, .status = STATUS_QUEUED};

	t->in->committing--;
	if (err != 0) {
		r.outcome = INTAKE_REFUSED;
		r.status = write_failure(err);
		r.err = err;
	} else if (t->quarantine != NULL) {
		r.quarantine = t->quarantine;
		r.stage = t->stage;
	}
	count_result(t->in->source, &r);
	t->cb(t->arg, &r); /* may free the intake */
	free(t->quarantine);
	free(t);
}

/* Hand the message to the queue; the intake is idle again. */
static void hand_over(struct intake *in)
{
	struct intake_ticket *t = xcalloc(1, sizeof(*t));

	t->in = in;
	t->cb = in->cb;
	t->arg = in->cb_arg;
	t->quarantine = in->quarantine;
	t->stage = in->quarantine_stage;
	in->quarantine = NULL;
	in->committing++;
	in->phase = INTAKE_IDLE;
	in->cb = NULL;
	queue_commit(&in->qf, in->env, committed, t);
	in->env = NULL;
}

/* Settle without a commit: drop the file, answer on the next loop turn. */
static void settle(struct intake *in, enum intake_outcome outcome, enum status st)
{
	if (in->qf.buf != NULL)
		queue_file_abort(&in->qf);
	in->res.outcome = outcome;
	in->res.status = st;
	in->phase = INTAKE_ANSWERING;
	event_active(in->step_ev, EV_TIMEOUT, 0);
}

/* Apply a quarantine: the message is committed on hold (the envelope's
 * hold, which `hato queue release` ends), with the stage's reason. */
static void hold(struct intake *in)
{
	char why[INTAKE_REASON_MAX + 64];

	log_info("event=quarantined %s queue_id=%s stage=%s reason=\"%s\"", in->log_key, in->qf.id,
		 in->quarantine_stage, in->quarantine);
	snprintf(why, sizeof(why), "quarantined by %s: %s", in->quarantine_stage, in->quarantine);
	envelope_set_hold(in->env, why, time(NULL));
}

/* After the last stage: the rewrite if any, the commit. */
static void commit(struct intake *in)
{
	if (in->nstages > 0 && !intake_msg_apply(in)) {
		int e = errno;
		log_warn("event=rewrite_failed %s queue_id=%s", in->log_key, in->qf.id);
		in->res.err = e;
		settle(in, INTAKE_REFUSED, write_failure(e));
		return;
	}
	if (in->env->nrcpts == 0) {
		log_info("event=discarded %s queue_id=%s reason=\"no recipient left\"", in->log_key,
			 in->qf.id);
		settle(in, INTAKE_DISCARDED, STATUS_QUEUED);
		return;
	}
	if (in->quarantine != NULL)
		hold(in);
	hand_over(in);
}

/* Run the stages from next_stage on until one waits; then the commit. */
static void step(struct intake *in)
{
	while (in->next_stage < in->nstages) {
		size_t i = in->next_stage++;

		in->awaiting = true;
		in->stages[i].st->run(in, in->stages[i].arg);
		if (in->awaiting || in->phase != INTAKE_STAGES)
			return; /* answered later, or settled by the answer */
	}
	commit(in);
}

/* The stage step event: go on after an answer, or answer the receiver. */
static void step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct intake *in = arg;

	(void)fd;
	(void)what;
	if (in->phase == INTAKE_ANSWERING)
		answer(in);
	else if (in->phase == INTAKE_STAGES && !in->awaiting)
		step(in);
}

/* See intake.h. */
void intake_finish(struct intake *in, enum status form, intake_done_cb cb, void *arg)
{
	enum status st;

	if (in->step_ev == NULL)
		in->step_ev = event_new(queue_base(in->q), -1, 0, step_cb, in);
	verdict_reset(in);
	in->cb = cb;
	in->cb_arg = arg;
	if (in->phase != INTAKE_OPEN) {
		in->phase = INTAKE_ANSWERING;
		in->res.outcome = INTAKE_REFUSED;
		in->res.status = STATUS_LOCAL_ERROR;
		event_active(in->step_ev, EV_TIMEOUT, 0);
		return;
	}
	st = decide(in, form);
	if (st != STATUS_OK) {
		settle(in, INTAKE_REFUSED, st);
		return;
	}
	in->fixing = false;
	if (in->nstages == 0) { /* the receive path as it always was */
		hand_over(in);
		return;
	}
	in->phase = INTAKE_STAGES;
	in->next_stage = 0;
	in->awaiting = false;
	step(in);
}

/* See intake.h. */
bool intake_pending(const struct intake *in)
{
	return in->phase >= INTAKE_STAGES;
}

/* See intake.h. */
void intake_abort(struct intake *in)
{
	if (in->phase == INTAKE_OPEN && in->qf.buf != NULL)
		queue_file_abort(&in->qf);
	if (in->phase == INTAKE_OPEN) {
		in->phase = INTAKE_IDLE;
		in->env = NULL;
	}
	in->fixing = false;
	in->error = STATUS_OK;
}

/* See intake.h. */
bool intake_cancel(struct intake *in)
{
	if (in->committing > 0)
		return false;
	if (in->phase == INTAKE_STAGES && in->awaiting) {
		const struct intake_stage *st = in->stages[in->next_stage - 1].st;
		if (st->cancel != NULL)
			st->cancel(in, in->stages[in->next_stage - 1].arg);
		in->awaiting = false;
	}
	if (in->phase == INTAKE_STAGES || in->phase == INTAKE_ANSWERING) {
		if (in->qf.buf != NULL)
			queue_file_abort(&in->qf);
		event_del(in->step_ev);
		in->phase = INTAKE_IDLE;
		in->env = NULL;
		in->cb = NULL;
	}
	return true;
}

/* See intake.h. */
void intake_stage_add(struct intake *in, const struct intake_stage *st, void *arg)
{
	size_t i = in->nstages;

	if (in->nstages == INTAKE_STAGES_MAX)
		fatalx("intake: more than %d end-of-message stages", INTAKE_STAGES_MAX);
	while (i > 0 && in->stages[i - 1].st->rank > st->rank) {
		in->stages[i] = in->stages[i - 1];
		i--;
	}
	in->stages[i].st = st;
	in->stages[i].arg = arg;
	in->nstages++;
}

/* See intake.h. */
char *intake_reply_lines(const char *text, char class)
{
	struct strbuf b;
	const char *p = text;
	char code[4] = "";

	strbuf_init(&b);
	while (*p != '\0') {
		size_t len = strcspn(p, "\r\n"), k;
		const char *next = p + len;

		while (*next == '\r' || *next == '\n')
			next++;
		if (len < 3 || p[0] != class || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
		    p[2] > '9' || (len > 3 && p[3] != ' ' && p[3] != '-') ||
		    (code[0] != '\0' && memcmp(code, p, 3) != 0) ||
		    b.len + len + 3 > INTAKE_REPLY_MAX)
			goto bad;
		memcpy(code, p, 3);
		strbuf_add(&b, p, 3);
		strbuf_add(&b, *next != '\0' ? "-" : " ", 1);
		for (k = 4; k < len; k++) /* the text, controls made spaces */
			strbuf_add(&b, (unsigned char)p[k] < ' ' || p[k] == 127 ? " " : p + k, 1);
		strbuf_add(&b, "\r\n", 2);
		p = next;
	}
	if (b.len == 0)
		goto bad;
	return b.s;
bad:
	strbuf_free(&b);
	return NULL;
}

/* Keep the verdict's reason, one line, bounded. */
static char *reason_copy(const char *reason)
{
	char buf[INTAKE_REASON_MAX];

	if (reason == NULL)
		return NULL;
	escape_text(reason, strlen(reason), buf, sizeof(buf));
	return xstrdup(buf);
}

/* A refusal or tempfail: the status and the stage's own reply, if good. */
static void refuse(struct intake *in, const char *stage, const struct intake_verdict *v)
{
	bool temp = v->action == INTAKE_TEMPFAIL;
	char code[8];
	enum status st = status_code(v->status) >= 400 ? v->status
			 : temp                        ? STATUS_CONTENT_TEMPFAIL
						       : STATUS_CONTENT_REFUSED;

	if (v->reply != NULL) {
		in->reply = intake_reply_lines(v->reply, temp ? '4' : '5');
		if (in->reply == NULL) {
			char esc[160];
			escape_text(v->reply, strlen(v->reply), esc, sizeof(esc));
			log_warnx("event=stage_reply_invalid %s queue_id=%s stage=%s reply=\"%s\"",
				  in->log_key, in->qf.id, stage, esc);
		}
	}
	in->res.reply = in->reply;
	snprintf(code, sizeof(code), "%d", status_code(st));
	log_info("event=%s %s queue_id=%s stage=%s status=%.3s reply=%s reason=\"%s\"",
		 temp ? "tempfailed" : "refused", in->log_key, in->qf.id, stage,
		 in->reply ? in->reply : code, in->reply ? "own" : status_esc(st),
		 in->reason ? in->reason : "");
	settle(in, INTAKE_REFUSED, st);
}

/* See intake.h. */
void intake_stage_done(struct intake *in, const struct intake_verdict *v)
{
	const char *stage;

	if (in->phase != INTAKE_STAGES || !in->awaiting)
		fatalx("intake: a stage answered when no answer was awaited");
	stage = in->stages[in->next_stage - 1].st->name;
	in->awaiting = false;
	switch (v->action) {
	case INTAKE_CONTINUE:
		break;
	case INTAKE_QUARANTINE:
		if (in->quarantine == NULL) { /* the first reason stands */
			in->quarantine = reason_copy(v->reason ? v->reason : stage);
			in->quarantine_stage = stage;
		}
		break;
	case INTAKE_REFUSE:
	case INTAKE_TEMPFAIL:
	case INTAKE_DISCARD:
		free(in->reason);
		in->reason = reason_copy(v->reason);
		in->res.reason = in->reason;
		in->res.stage = stage;
		if (v->action != INTAKE_DISCARD) {
			refuse(in, stage, v);
			return;
		}
		log_info("event=discarded %s queue_id=%s stage=%s reason=\"%s\"", in->log_key,
			 in->qf.id, stage, in->reason ? in->reason : "");
		settle(in, INTAKE_DISCARDED, STATUS_QUEUED);
		return;
	}
	/* go on off the stage's stack (it may be inside its own callback) */
	event_active(in->step_ev, EV_TIMEOUT, 0);
}

/* See intake.h. */
const char *intake_log_key(const struct intake *in)
{
	return in->log_key;
}

/* See intake.h. */
const char *intake_queue_id(const struct intake *in)
{
	return in->qf.id;
}

/* See intake.h. */
const struct envelope *intake_envelope(const struct intake *in)
{
	return in->env;
}

/* See intake.h. */
size_t intake_local_begin(const struct conf *c, struct strbuf *msg)
{
	char date[MAIL_DATE_SIZE];
	size_t before = msg->len;

	if (!mail_date(time(NULL), date, sizeof(date)))
		strcpy_bounded(date, MAIL_DATE_EPOCH, sizeof(date));
	received_local(c, date, msg);
	return msg->len - before;
}

/* See intake.h. */
bool intake_inject(const struct conf *c, struct queue *q, struct envelope *e, const char *msg,
		   size_t len, size_t hdr)
{
	struct strbuf signed_msg;
	bool ok;

	e->arrival = time(NULL);
	e->size = len - hdr;
	free(e->client);
	free(e->client_name);
	free(e->helo);
	e->client = xstrdup("127.0.0.1");
	e->client_name = xstrdup(c->hostname);
	e->helo = xstrdup(c->hostname);
	strbuf_init(&signed_msg);
	if (intake_dkim_sign_local(msg, len, hdr, &signed_msg)) {
		e->size = signed_msg.len - hdr; /* the signatures are part of it now */
		ok = queue_inject(q, e, signed_msg.s, signed_msg.len);
	} else {
		ok = queue_inject(q, e, msg, len);
	}
	strbuf_free(&signed_msg);
	return ok;
}
