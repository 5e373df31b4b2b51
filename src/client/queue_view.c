/*
 * queue_view.c - the text of `hato queue`, `hato queue show ID` and `hato
 * queue corrupt` (see queue_view.h).
 */
#include "queue_view.h"

#include <inttypes.h>
#include <string.h>

#include "dsn.h"

/* Columns of a recipient line; its address starts at QUEUE_RCPT_INDENT. */
#define QUEUE_RCPT_FMT "  %-9s %5s %-9s "
#define QUEUE_RCPT_INDENT 28
#define SHOW_LABEL "%-10s " /* the label column of hato queue show */

/* See queue_view.h. */
void queue_view_text(FILE *f, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			putc(ch, f);
	}
}

/* See queue_view.h. */
void queue_view_age(time_t secs, char *buf, size_t size)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		snprintf(buf, size, "%lldd%lldh", (long long)secs / 86400,
			 (long long)(secs % 86400) / 3600);
	else if (secs >= 3600)
		snprintf(buf, size, "%lldh%lldm", (long long)secs / 3600,
			 (long long)(secs % 3600) / 60);
	else if (secs >= 60)
		snprintf(buf, size, "%lldm", (long long)secs / 60);
	else
		snprintf(buf, size, "%llds", (long long)secs);
}

/* A wait until then, rounded up to the minute beyond one ("in 5m", not
 * "in 4m" for 4m59s), or "now". */
static void format_wait(time_t then, time_t now, char *buf, size_t size)
{
	char age[32];
	time_t left = then - now;

	if (left <= 0) {
		snprintf(buf, size, "now");
		return;
	}
	if (left > 60)
		left = (left + 59) / 60 * 60;
	queue_view_age(left, age, sizeof(age));
	snprintf(buf, size, "in %s", age);
}

/* The NEXT column: "now", "in 5m", or "-" when nothing is left to do. */
static void format_next(const struct env_rcpt *r, time_t now, char *buf, size_t size)
{
	if (r->state != RCPT_PENDING)
		snprintf(buf, size, "-");
	else
		format_wait(r->next_attempt, now, buf, size);
}

/* A recipient's state as the envelope file spells it. */
static const char *rcpt_state_name(enum rcpt_state s)
{
	switch (s) {
	case RCPT_PENDING:
		return "pending";
	case RCPT_DELIVERED:
		return "delivered";
	case RCPT_FAILED:
		return "failed";
	}
	return "?";
}

/* "2025-11-28 12:34:56 +0100": a local time, into buf. */
static void format_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(buf, size, "@%lld", (long long)t);
}

/* See queue_view.h. */
void queue_view_list_header(FILE *f)
{
	fprintf(f, "%-20s %6s %9s %s\n", "ID", "AGE", "SIZE", "SENDER / RECIPIENTS");
	fprintf(f, QUEUE_RCPT_FMT "%s\n", "STATE", "TRIES", "NEXT", "RECIPIENT");
}

/* See queue_view.h. */
void queue_view_list_message(FILE *f, const struct envelope *e, uint64_t msg_size, time_t now)
{
	char age[32], next[40], tries[16];

	queue_view_age(now - e->arrival, age, sizeof(age));
	fprintf(f, "%-20s %6s %9llu ", e->id, age, (unsigned long long)msg_size);
	queue_view_text(f, e->sender);
	putc('\n', f);
	if (e->hold != NULL) {
		queue_view_age(now - e->held_since, age, sizeof(age));
		fprintf(f, "  %-9s since %s: ", "HELD", age);
		queue_view_text(f, e->hold);
		putc('\n', f);
	}
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct env_rcpt *r = &e->rcpts[i];

		format_next(r, now, next, sizeof(next));
		if (e->hold != NULL && r->state == RCPT_PENDING)
			snprintf(next, sizeof(next), "held");
		snprintf(tries, sizeof(tries), "%u", r->attempts);
		fprintf(f, QUEUE_RCPT_FMT, rcpt_state_name(r->state), tries, next);
		queue_view_text(f, r->addr);
		putc('\n', f);
		if (r->orig != NULL && strcmp(r->orig, r->addr) != 0) {
			fprintf(f, "%*sorig: ", QUEUE_RCPT_INDENT, "");
			queue_view_text(f, r->orig);
			putc('\n', f);
		}
		if (r->error != NULL) {
			fprintf(f, "%*serror: ", QUEUE_RCPT_INDENT, "");
			queue_view_text(f, r->error);
			putc('\n', f);
		}
	}
}

/* A label and a value from the envelope, one line; nothing when v is NULL. */
static void show_field(FILE *f, const char *label, const char *v)
{
	if (v == NULL)
		return;
	fprintf(f, SHOW_LABEL, label);
	queue_view_text(f, v);
	putc('\n', f);
}

/* The message's own lines of hato queue show. */
static void show_message(FILE *f, const struct envelope *e, uint64_t msg_size, time_t now)
{
	static const char *const bodies[] = {"unspecified", "7bit", "8bitmime"};
	char when[64], age[32];
	const char *ret = dsn_ret_name(e->ret);

	fprintf(f, SHOW_LABEL "%s\n", "message", e->id);
	format_time(e->arrival, when, sizeof(when));
	queue_view_age(now - e->arrival, age, sizeof(age));
	fprintf(f, SHOW_LABEL "%s (%s ago)\n", "arrival", when, age);
	show_field(f, "sender", e->sender);
	fprintf(f, SHOW_LABEL "%" PRIu64 " octets queued (%" PRIu64 " declared), body %s%s\n",
		"size", msg_size, e->size, bodies[e->body], e->smtputf8 ? ", SMTPUTF8" : "");
	fprintf(f, SHOW_LABEL, "client");
	queue_view_text(f, e->client_name);
	fputs(" [", f);
	queue_view_text(f, e->client);
	fputs("] helo ", f);
	queue_view_text(f, e->helo);
	putc('\n', f);
	show_field(f, "auth-user", e->auth_user);
	if (ret != NULL || e->envid != NULL) {
		fprintf(f, SHOW_LABEL "ret=%s envid=", "dsn", ret ? ret : "-");
		queue_view_text(f, e->envid ? e->envid : "-");
		putc('\n', f);
	}
	if (e->dsn_report)
		fprintf(f, SHOW_LABEL "a delivery report of hato's own\n", "kind");
	if (e->hold != NULL) {
		format_time(e->held_since, when, sizeof(when));
		queue_view_age(now - e->held_since, age, sizeof(age));
		fprintf(f, SHOW_LABEL "held since %s (%s ago): ", "status", when, age);
		queue_view_text(f, e->hold);
		fputs("\n           nothing is delivered until hato queue release\n", f);
	} else {
		fprintf(f, SHOW_LABEL "%zu of %zu recipient%s pending%s\n", "status",
			envelope_pending(e), e->nrcpts, e->nrcpts == 1 ? "" : "s",
			e->delay_warned ? ", the sender was told of the delay" : "");
	}
}

/* One recipient's lines of hato queue show: state, next attempt, attempts. */
static void show_rcpt(FILE *f, const struct envelope *e, const struct env_rcpt *r, time_t now)
{
	static const char *const reports[] = {"none", "failed", "delayed", "delivered", "relayed"};
	char when[64], wait[40];

	fputs("\nrecipient  ", f);
	queue_view_text(f, r->addr);
	putc('\n', f);
	if (r->orig != NULL && strcmp(r->orig, r->addr) != 0)
		show_field(f, "  orig", r->orig);
	show_field(f, "  orcpt", r->orcpt);
	fprintf(f, SHOW_LABEL "%s after %u attempt%s\n", "  state", rcpt_state_name(r->state),
		r->attempts, r->attempts == 1 ? "" : "s");
	show_field(f, "  result", r->error);
	if (r->state == RCPT_PENDING && e->hold != NULL) {
		fprintf(f, SHOW_LABEL "none while the message is held\n", "  next");
	} else if (r->state == RCPT_PENDING) {
		format_wait(r->next_attempt, now, wait, sizeof(wait));
		if (r->next_attempt > now) {
			format_time(r->next_attempt, when, sizeof(when));
			fprintf(f, SHOW_LABEL "%s (%s)\n", "  next", when, wait);
		} else {
			fprintf(f, SHOW_LABEL "%s\n", "  next", wait);
		}
	}
	if (r->report != REPORT_NONE)
		fprintf(f, SHOW_LABEL "a \"%s\" notice is owed to the sender\n", "  report",
			reports[r->report]);
	if (r->ntries == 0) {
		fprintf(f, SHOW_LABEL "%s\n", "  attempts",
			r->attempts ? "none recorded (queued before hato kept them)" : "none yet");
		return;
	}
	if (r->attempts > r->ntries)
		fprintf(f, SHOW_LABEL "the last %zu of %u (the older ones are not kept)\n",
			"  attempts", r->ntries, r->attempts);
	else
		fprintf(f, SHOW_LABEL "oldest first: time, result, host, TLS, reply\n",
			"  attempts");
	for (size_t k = 0; k < r->ntries; k++) {
		const struct env_attempt *a = &r->tries[k];

		format_time(a->at, when, sizeof(when));
		fprintf(f, "    %s  %-9s  ", when, outcome_name(a->result));
		queue_view_text(f, a->host ? a->host : "-");
		fputs("  ", f);
		queue_view_text(f, a->tls ? a->tls : "-");
		fputs("  ", f);
		queue_view_text(f, a->reply);
		putc('\n', f);
	}
}

/* See queue_view.h. */
void queue_view_show(FILE *f, const struct envelope *e, uint64_t msg_size, time_t now)
{
	show_message(f, e, msg_size, now);
	for (size_t i = 0; i < e->nrcpts; i++)
		show_rcpt(f, e, &e->rcpts[i], now);
}

/* See queue_view.h. */
void queue_view_aside(FILE *f, const struct queue_aside *a, time_t now)
{
	char age[32], when[64];

	format_time(a->when, when, sizeof(when));
	queue_view_age(now - a->when, age, sizeof(age));
	fprintf(f, "%-20s set aside %s (%s ago)\n", a->id, when, age);
	if (a->msg_path != NULL) {
		fprintf(f, "  message  %" PRIu64 " octets  ", a->msg_size);
		queue_view_text(f, a->msg_path);
		putc('\n', f);
	}
	if (a->env_path != NULL) {
		fputs("  envelope ", f);
		queue_view_text(f, a->env_path);
		putc('\n', f);
	}
	if (a->e == NULL) {
		fprintf(f, "  %s\n",
			a->env_path ? "the envelope does not parse" : "no envelope beside it");
		return;
	}
	fputs("  sender   ", f);
	queue_view_text(f, a->e->sender);
	putc('\n', f);
	for (size_t i = 0; i < a->e->nrcpts; i++) {
		fprintf(f, "  %-9s", rcpt_state_name(a->e->rcpts[i].state));
		queue_view_text(f, a->e->rcpts[i].addr);
		putc('\n', f);
	}
}
