/*
 * reports.c - what notifications a message owes, and queuing them (see
 * reports.h).
 */
#include "reports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dsn.h"
#include "dsn_report.h"
#include "intake.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

#define REPORT_FULL_MAX (10 * 1024 * 1024) /* RET=FULL returns messages up to this size */

/* See reports.h. */
void report_mark(const struct conf *c, struct envelope *env, struct env_rcpt *r, bool remote,
		 bool dsn_passed)
{
	unsigned n = r->notify;
	time_t now = time(NULL);

	if (n & DSN_NOTIFY_NEVER)
		return;
	/* a notification of ours tells the postmaster only that it failed:
	 * a delay or success notice about it would be one more notification,
	 * which could be delayed in turn, and so on */
	if (env->dsn_report && r->state != RCPT_FAILED)
		return;
	if (r->state == RCPT_FAILED && (n == 0 || (n & DSN_NOTIFY_FAILURE)))
		r->report = REPORT_FAILED;
	else if (r->state == RCPT_DELIVERED && (n & DSN_NOTIFY_SUCCESS) && !dsn_passed)
		r->report = remote ? REPORT_RELAYED : REPORT_DELIVERED;
	else if (r->state == RCPT_PENDING && c->delay_warning > 0 && !env->delay_warned &&
		 now - env->arrival >= (time_t)c->delay_warning &&
		 (n == 0 || (n & DSN_NOTIFY_DELAY)))
		r->report = REPORT_DELAYED;
}

/* See reports.h. */
bool report_owed(const struct envelope *env)
{
	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].report != REPORT_NONE)
			return true;
	return false;
}

/* The report's action for what r owes. */
static enum dsn_action action_of(const struct env_rcpt *r)
{
	switch (r->report) {
	case REPORT_FAILED:
		return DSN_ACTION_FAILED;
	case REPORT_DELAYED:
		return DSN_ACTION_DELAYED;
	case REPORT_DELIVERED:
		return DSN_ACTION_DELIVERED;
	default:
		return DSN_ACTION_RELAYED;
	}
}

/*
 * Split a recipient's last result "5.1.1 host[addr]:port said: 550 ..." into
 * its status, the remote MTA ("host") and the diagnostic; for a local result
 * "5.2.2 mailbox full" the diagnostic is the text and there is no MTA.
 */
static void split_error(const char *error, char *status, size_t ssz, char *mta, size_t msz,
			const char **diag)
{
	const char *sp = error ? strchr(error, ' ') : NULL;
	const char *said;

	status[0] = mta[0] = '\0';
	*diag = NULL;
	if (sp == NULL)
		return;
	snprintf(status, ssz, "%.*s", (int)(sp - error), error);
	*diag = sp + 1;
	said = strstr(sp + 1, " said: ");
	if (said != NULL) {
		size_t hl = strcspn(sp + 1, "[");

		snprintf(mta, msz, "%.*s", (int)(hl < (size_t)(said - sp - 1) ? hl : 0), sp + 1);
		*diag = said + 7;
	}
}

/* Who gets the report about env, or NULL when nobody may (the null sender). */
static const char *report_to(const struct envelope *env)
{
	if (env->sender != NULL && strcmp(env->sender, "<>") != 0)
		return env->sender;
	if (!env->dsn_report)
		return NULL; /* somebody else's notification: never answered */
	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].report == REPORT_FAILED &&
		    strcasecmp(env->rcpts[i].addr, "<postmaster>") == 0)
			return NULL; /* the postmaster's copy failed too: stop here */
	return "<postmaster>";
}

/* Build the report; without the original's text when that cannot be read
 * (else the message would wait for its report for ever). */
static bool build_report(const struct dsn_report *rep, const char *queue_id, int msg_fd,
			 uint64_t msg_len, struct strbuf *msg, struct dsn_built *built, char *err,
			 size_t errsz)
{
	size_t start = msg->len;

	if (msg_fd < 0)
		snprintf(err, errsz, "the queued message cannot be read");
	else if (dsn_build(rep, msg_fd, msg_len, REPORT_FULL_MAX, msg, built, err, errsz))
		return true;
	log_warnx("event=report_without_original queue_id=%s error=\"%s\"", queue_id, err);
	msg->len = start;
	return dsn_build(rep, -1, 0, REPORT_FULL_MAX, msg, built, err, errsz);
}

/* See reports.h. */
bool report_queue(const struct conf *c, struct queue *q, struct envelope *env, int msg_fd,
		  uint64_t msg_len, struct envelope *out)
{
	struct dsn_rcpt *dr = xcalloc(env->nrcpts, sizeof(*dr));
	char(*status)[16] = xcalloc(env->nrcpts, sizeof(*status));
	char(*mta)[256] = xcalloc(env->nrcpts, sizeof(*mta));
	const char *to = report_to(env);
	struct dsn_report rep = {.hostname = c->hostname,
				 .queue_id = env->id,
				 .envid = env->envid,
				 .to = to,
				 .arrival = env->arrival,
				 .ret_full = env->ret == DSN_RET_FULL,
				 .rcpts = dr,
				 .now = time(NULL)};
	struct dsn_built built;
	struct strbuf msg;
	char err[256];
	bool ok = true, delayed = false;
	size_t hdr;

	envelope_init(out);
	for (size_t i = 0; i < env->nrcpts; i++) {
		struct env_rcpt *r = &env->rcpts[i];
		struct dsn_rcpt *d = &dr[rep.nrcpts];

		if (r->report == REPORT_NONE)
			continue;
		d->addr = r->addr;
		d->orcpt = r->orcpt;
		d->action = action_of(r);
		split_error(r->error, status[rep.nrcpts], sizeof(status[0]), mta[rep.nrcpts],
			    sizeof(mta[0]), &d->diagnostic);
		d->status = status[rep.nrcpts];
		d->remote_mta = mta[rep.nrcpts][0] ? mta[rep.nrcpts] : NULL;
		d->last_attempt = rep.now;
		if (d->action == DSN_ACTION_DELAYED)
			d->retry_until = env->arrival + (time_t)c->queue_lifetime;
		delayed = delayed || d->action == DSN_ACTION_DELAYED;
		rep.nrcpts++;
	}
	strbuf_init(&msg);
	hdr = intake_local_begin(c, &msg);
	if (to == NULL) {
		log_info("event=report_suppressed queue_id=%s sender=<> rcpts=%zu "
			 "reason=\"no notification for the null sender\"",
			 env->id, rep.nrcpts);
	} else if (!build_report(&rep, env->id, msg_fd, msg_len, &msg, &built, err, sizeof(err))) {
		log_warnx("event=report_failed queue_id=%s error=\"%s\"", env->id, err);
		ok = false;
	} else {
		out->sender = xstrdup("<>");
		out->body = built.eightbit ? BODY_8BITMIME : BODY_7BIT;
		out->smtputf8 = built.smtputf8;
		out->dsn_report = true;
		envelope_add_rcpt(out, to);
		if (!intake_inject(c, q, out, msg.s, msg.len, hdr)) {
			log_warn("event=report_failed queue_id=%s report_id=%s", env->id, out->id);
			envelope_free(out);
			ok = false;
		} else {
			log_info("event=report queue_id=%s report_id=%s to=%s rcpts=%zu", env->id,
				 out->id, to, rep.nrcpts);
		}
	}
	if (ok) {
		for (size_t i = 0; i < env->nrcpts; i++)
			env->rcpts[i].report = REPORT_NONE;
		env->delay_warned = env->delay_warned || delayed;
	}
	strbuf_free(&msg);
	free(dr);
	free(status);
	free(mta);
	return ok;
}
