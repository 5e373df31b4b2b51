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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "log.h"
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
void intake_free(struct intake *in)
{
	intake_abort(in);
	if (in->fixbuf.s != NULL)
		strbuf_free(&in->fixbuf);
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
	if (!intake_has_room(in, declared)) {
		log_warnx("event=disk_full %s spool=%s", in->log_key, in->conf->state_dir);
		return STATUS_DISK_FULL;
	}
	if (!queue_file_open(in->q, &in->qf)) {
		int e = errno;
		log_warn("event=queue_open_failed %s", in->log_key);
		return write_failure(e);
	}
	in->open = true;
	in->env = env;
	memcpy(env->id, in->qf.id, sizeof(env->id));
	env->size = 0;
	in->error = STATUS_OK;
	header_scan_init(&in->hs);
	if (!mail_date(time(NULL), in->date, sizeof(in->date)))
		strcpy_bounded(in->date, MAIL_DATE_EPOCH, sizeof(in->date));
	write_received(in, o);
	in->fixing = false;
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

/* See intake.h. */
enum status intake_finish(struct intake *in, enum status form, queue_commit_cb cb, void *arg)
{
	const struct envelope *env = in->env;
	enum status st;

	if (!in->open)
		return STATUS_LOCAL_ERROR;
	st = decide(in, form);
	if (st != STATUS_OK) {
		intake_abort(in);
		return st;
	}
	/* The message is whole and accepted: a stage that needs all of it
	 * (a content filter, DKIM signing) runs here, before the commit. */
	in->open = false;
	in->env = NULL;
	queue_commit(&in->qf, env, cb, arg);
	return STATUS_OK;
}

/* See intake.h. */
void intake_abort(struct intake *in)
{
	if (in->open)
		queue_file_abort(&in->qf);
	in->open = false;
	in->env = NULL;
	in->fixing = false;
	in->error = STATUS_OK;
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
	e->arrival = time(NULL);
	e->size = len - hdr;
	free(e->client);
	free(e->client_name);
	free(e->helo);
	e->client = xstrdup("127.0.0.1");
	e->client_name = xstrdup(c->hostname);
	e->helo = xstrdup(c->hostname);
	return queue_inject(q, e, msg, len);
}
