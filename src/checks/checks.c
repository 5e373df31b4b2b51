/*
 * checks.c - SPF, DMARC, Authentication-Results: and the decision (see
 * checks.h).
 *
 * The evaluators do no DNS themselves (spf.h, dmarc.h): this file asks the
 * event loop's resolver for what they need and runs them again with the
 * answers.  Lookups in flight are kept in a list so that a reset, a
 * cancelled stage or the timeout can cancel them.
 */
#include "checks.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth_results.h"
#include "conf.h"
#include "dkim_verify.h"
#include "dmarc.h"
#include "dns.h"
#include "envelope.h"
#include "log.h"
#include "psl.h"
#include "spf.h"
#include "strbuf.h"
#include "util.h"

#define CHECKS_FROM_MAX 2048 /* octets of the From: field looked at */
#define CHECKS_REPLY_MAX 512
#define CHECKS_BODY_CHUNK 65536 /* octets of body read at a time for DKIM */

static struct psl *psl; /* loaded once, read by every session */

enum lookup_kind { LK_SPF, LK_DKIM, LK_DMARC };

/* One lookup in flight. */
struct pending {
	struct pending *next;
	struct checks *ch;
	struct dns_query *q;
	enum lookup_kind kind;
	size_t idx; /* LK_DKIM: the signature */
	enum dns_type type;
	char name[SPF_DOMAIN_MAX + 8];
};

struct checks {
	const struct conf *conf;
	char log_key[INTAKE_LOG_KEY_MAX];
	struct event *timer;
	bool active; /* checks_mail for this transaction */
	struct spf spf;
	bool spf_done;
	struct intake *in; /* while the stage runs */
	struct dkim_verify *dkim;
	bool dkim_started, dkim_done;
	bool key_done[DKIM_SIGS_MAX]; /* signature i has its key record */
	struct dmarc dmarc;
	bool dmarc_started, dmarc_done;
	struct pending *pending;
	size_t npending;
	bool timed_out;
};

static void step(struct checks *ch);
static void spf_step(struct checks *ch);
static void timeout_cb(evutil_socket_t fd, short what, void *arg);

/* See checks.h. */
bool checks_enabled(const struct conf *c)
{
	return c->checks.enable && psl != NULL;
}

/* See checks.h. */
bool checks_init(const struct conf *c, char *err, size_t errsz)
{
	if (!c->checks.enable || psl != NULL)
		return true;
	psl = psl_load(c->checks.public_suffix_list, err, errsz);
	return psl != NULL;
}

/* See checks.h. */
void checks_shutdown(void)
{
	psl_free(psl);
	psl = NULL;
}

/* Cancel every lookup in flight. */
static void cancel_all(struct checks *ch)
{
	while (ch->pending) {
		struct pending *p = ch->pending;

		ch->pending = p->next;
		dns_query_cancel(p->q);
		free(p);
	}
	ch->npending = 0;
}

/* Drop the transaction's state. */
static void drop(struct checks *ch)
{
	cancel_all(ch);
	if (ch->active)
		spf_free(&ch->spf);
	dmarc_free(&ch->dmarc);
	memset(&ch->dmarc, 0, sizeof(ch->dmarc));
	dkim_verify_free(ch->dkim);
	ch->dkim = NULL;
	memset(ch->key_done, 0, sizeof(ch->key_done));
	ch->active = ch->spf_done = ch->dmarc_started = ch->dmarc_done = false;
	ch->dkim_started = ch->dkim_done = false;
	ch->timed_out = false;
	ch->in = NULL;
	if (ch->timer)
		evtimer_del(ch->timer);
}

/* The answer to one lookup. */
static void answered(void *arg, const struct dns_answer *a)
{
	struct pending *p = arg, **pp;
	struct checks *ch = p->ch;

	for (pp = &ch->pending; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	ch->npending--;
	if (p->kind == LK_SPF) {
		spf_answer(&ch->spf, p->type, p->name, (struct dns_answer *)a);
	} else if (p->kind == LK_DKIM) {
		enum dkim_key_status st = a->status == DNS_OK         ? DKIM_KEY_FOUND
					  : a->status == DNS_TEMPFAIL ? DKIM_KEY_TEMPFAIL
								      : DKIM_KEY_MISSING;

		/* several records at one key name: the first (RFC 6376 §3.6.2.2) */
		dkim_verify_set_key(ch->dkim, p->idx, st,
				    st == DKIM_KEY_FOUND ? a->rr[0].data : NULL,
				    st == DKIM_KEY_FOUND ? a->rr[0].len : 0);
		ch->key_done[p->idx] = true;
	} else {
		dmarc_answer(&ch->dmarc, (struct dns_answer *)a);
	}
	free(p);
	if (ch->npending > 0)
		return;
	if (!ch->spf_done)
		spf_step(ch); /* may start more lookups, or be done */
	if (ch->in)
		step(ch);
}

/* Ask DNS for (type, name) on behalf of kind. */
static void ask(struct checks *ch, enum lookup_kind kind, size_t idx, enum dns_type type,
		const char *name)
{
	struct pending *p = xcalloc(1, sizeof(*p));

	p->ch = ch;
	p->kind = kind;
	p->idx = idx;
	p->type = type;
	strcpy_bounded(p->name, name, sizeof(p->name));
	p->next = ch->pending;
	ch->pending = p;
	ch->npending++;
	p->q = dns_query(name, type, answered, p);
}

/* Run SPF as far as the answers allow; ask for the rest. */
static void spf_step(struct checks *ch)
{
	if (ch->spf_done || ch->npending > 0)
		return;
	if (spf_run(&ch->spf)) {
		ch->spf_done = true;
		return;
	}
	for (size_t i = 0; i < ch->spf.nneed; i++)
		ask(ch, LK_SPF, 0, ch->spf.need[i].type, ch->spf.need[i].name);
}

/* See checks.h. */
struct checks *checks_new(const struct conf *c, struct event_base *base, const char *log_key)
{
	struct checks *ch = xcalloc(1, sizeof(*ch));

	ch->conf = c;
	strcpy_bounded(ch->log_key, log_key, sizeof(ch->log_key));
	ch->timer = evtimer_new(base, timeout_cb, ch);
	return ch;
}

/* See checks.h. */
void checks_free(struct checks *ch)
{
	if (ch == NULL)
		return;
	drop(ch);
	event_free(ch->timer);
	free(ch);
}

/* See checks.h. */
void checks_reset(struct checks *ch)
{
	if (ch)
		drop(ch);
}

/* See checks.h. */
void checks_mail(struct checks *ch, const char *ip, const char *sender, const char *helo)
{
	drop(ch);
	if (!spf_init(&ch->spf, ip, sender, helo, ch->conf->hostname))
		return; /* not an IP address (a local client): nothing to check */
	ch->active = true;
	if (!ch->conf->checks.spf) {
		ch->spf.result = SPF_RESULT_NONE;
		strcpy_bounded(ch->spf.why, "SPF checks are off", sizeof(ch->spf.why));
		ch->spf_done = true;
		return;
	}
	spf_step(ch);
}

/* The value of the one From: field into buf; its length, 0 when there is
 * none, -1 when there are several. */
static long from_field(struct intake *in, char *buf, size_t size)
{
	const struct intake_field *f;
	size_t n, found = 0, len = 0;

	f = intake_headers(in, &n);
	for (size_t i = 0; f && i < n; i++) {
		if (f[i].namelen != 4 || strncasecmp(f[i].text, "From", 4) != 0)
			continue;
		if (++found > 1)
			return -1;
		len = f[i].len - 5; /* past "From:" */
		if (len >= size)
			len = size - 1;
		memcpy(buf, f[i].text + 5, len);
		buf[len] = '\0';
	}
	return found ? (long)len : 0;
}

/* Remove the Authentication-Results: fields that claim our authserv-id. */
static size_t remove_forged(struct checks *ch, struct intake *in)
{
	const struct intake_field *f;
	size_t n, nth = 0, removed = 0, ours[64], nours = 0;

	f = intake_headers(in, &n);
	for (size_t i = 0; f && i < n; i++) {
		if (f[i].namelen != 22 || strncasecmp(f[i].text, "Authentication-Results", 22) != 0)
			continue;
		nth++;
		if (auth_results_ours(f[i].text + 23, f[i].len - 23, ch->conf->hostname) &&
		    nours < sizeof(ours) / sizeof(ours[0]))
			ours[nours++] = nth;
	}
	while (nours > 0) /* the last first: the numbers of the others stay */
		if (intake_header_change(in, "Authentication-Results", ours[--nours], NULL))
			removed++;
	return removed;
}

/* The stage's answer, logged. */
static void decide(struct checks *ch)
{
	struct intake *in = ch->in;
	const struct conf *c = ch->conf;
	struct intake_verdict v = {.action = INTAKE_CONTINUE};
	struct auth_results ar = {0};
	struct strbuf hdr;
	char reply[CHECKS_REPLY_MAX];
	const char *action = "accept", *reason = "";
	unsigned act = CHECKS_NONE;
	bool dmarc_pass = ch->dmarc_done && ch->dmarc.result == DMARC_RESULT_PASS;
	size_t forged;

	evtimer_del(ch->timer);
	ch->in = NULL;
	/* the header */
	forged = remove_forged(ch, in);
	ar.authserv_id = c->hostname;
	ar.spf = ch->spf_done ? ch->spf.result : SPF_RESULT_TEMPERROR;
	ar.spf_on = c->checks.spf;
	ar.spf_helo = ch->spf.helo_identity;
	ar.spf_identity = ch->spf.helo_identity ? ch->spf.helo : ch->spf.sender;
	ar.dkim_on = c->checks.dkim;
	ar.dkim = ch->dkim;
	ar.dmarc_on = c->checks.dmarc && ch->dmarc_started;
	ar.dmarc = &ch->dmarc;
	strbuf_init(&hdr);
	auth_results_format(&ar, &hdr);
	if (!intake_header_insert(in, 0, "Authentication-Results", hdr.s))
		log_warnx("event=checks_header_failed %s queue_id=%s", ch->log_key,
			  intake_queue_id(in));
	strbuf_free(&hdr);
	/* the decision: DMARC first, then SPF on its own, then DNS failures */
	if (ch->dmarc_done && ch->dmarc.result == DMARC_RESULT_FAIL &&
	    ch->dmarc.disposition != DMARC_POLICY_NONE) {
		act = ch->dmarc.disposition == DMARC_POLICY_REJECT ? c->checks.dmarc_reject
								   : c->checks.dmarc_quarantine;
		reason = ch->dmarc.disposition == DMARC_POLICY_REJECT ? "dmarc policy reject"
								      : "dmarc policy quarantine";
		snprintf(reply, sizeof(reply),
			 "550 5.7.1 Message refused by the DMARC policy of %s", ch->dmarc.from);
	} else if (!dmarc_pass && ch->spf_done && ch->spf.result == SPF_RESULT_FAIL &&
		   c->checks.spf_fail != CHECKS_NONE) {
		act = c->checks.spf_fail;
		reason = "spf fail";
		snprintf(reply, sizeof(reply),
			 "550 5.7.23 SPF: the client may not send mail for %s", ch->spf.domain);
	} else if (!dmarc_pass && c->checks.temperror == CHECKS_TEMPERROR_TEMPFAIL &&
		   (!ch->spf_done || ch->spf.result == SPF_RESULT_TEMPERROR ||
		    (ch->dmarc_started &&
		     (!ch->dmarc_done || ch->dmarc.result == DMARC_RESULT_TEMPERROR)))) {
		v.action = INTAKE_TEMPFAIL;
		action = "tempfail";
		reason = !ch->spf_done || ch->spf.result == SPF_RESULT_TEMPERROR
				 ? "spf temperror"
				 : "dmarc temperror";
		snprintf(reply, sizeof(reply),
			 "451 %s DNS failure checking the sender: try again later",
			 reason[0] == 's' ? "4.7.24" : "4.7.26");
		v.reply = reply;
	}
	switch (act) {
	case CHECKS_REJECT:
		v.action = INTAKE_REFUSE;
		v.reply = reply;
		action = "reject";
		break;
	case CHECKS_HOLD:
		v.action = INTAKE_QUARANTINE;
		action = "hold";
		break;
	case CHECKS_JUNK:
		intake_junk(in);
		action = "junk";
		break;
	default:
		break;
	}
	v.reason = reason[0] ? reason : NULL;
	{
		char spfwhy[ESCAPED_WORD_MAX], dmwhy[ESCAPED_WORD_MAX];

		escape_text(ch->spf.why, strlen(ch->spf.why), spfwhy, sizeof(spfwhy));
		escape_text(ch->dmarc.why, strlen(ch->dmarc.why), dmwhy, sizeof(dmwhy));
		struct strbuf dk;
		size_t nsig = ch->dkim ? dkim_verify_count(ch->dkim) : 0;

		/* each signature as result/domain, "none" without any */
		strbuf_init(&dk);
		for (size_t i = 0; i < nsig; i++) {
			const struct dkim_sig_result *r = dkim_verify_result(ch->dkim, i);
			char d[ESCAPED_WORD_MAX];

			if (r == NULL)
				continue;
			escape_word(r->d, d, sizeof(d));
			strbuf_printf(&dk, "%s%s/%s", dk.len ? "," : "",
				      dkim_result_name(r->result), d[0] ? d : "-");
		}
		log_info("event=checks %s queue_id=%s spf=%s spf_domain=%s dkim=%s dmarc=%s "
			 "from_domain=%s policy=%s action=%s reason=\"%s\" forged_ar_removed=%zu "
			 "spf_why=\"%s\" dmarc_why=\"%s\"%s",
			 ch->log_key, intake_queue_id(in), spf_result_name(ar.spf),
			 ch->spf.domain[0] ? ch->spf.domain : "-",
			 !c->checks.dkim ? "off"
			 : dk.len        ? dk.s
					 : "none",
			 ar.dmarc_on ? dmarc_result_name(ch->dmarc.result) : "off",
			 ch->dmarc.from[0] ? ch->dmarc.from : "-",
			 ch->dmarc.result == DMARC_RESULT_FAIL ? dmarc_policy_name(ch->dmarc.policy)
							       : "-",
			 action, reason[0] ? reason : "checks passed or did not apply", forged,
			 spfwhy, dmwhy, ch->timed_out ? " timeout=yes" : "");
		strbuf_free(&dk);
	}
	intake_stage_done(in, &v);
}

/* Feed the message to the DKIM verifier and ask for the key records its
 * signatures need. */
static void dkim_start(struct checks *ch)
{
	const struct intake_field *f;
	uint64_t size, off = 0;
	size_t n;
	char *buf;

	ch->dkim_started = true;
	ch->dkim = dkim_verify_new();
	f = intake_headers(ch->in, &n);
	for (size_t i = 0; f && i < n; i++)
		dkim_verify_feed(ch->dkim, f[i].text, f[i].len);
	dkim_verify_feed(ch->dkim, "\r\n", 2);
	size = intake_body_size(ch->in);
	buf = xmalloc(CHECKS_BODY_CHUNK);
	while (off < size) {
		ssize_t r = intake_body_read(ch->in, off, buf, CHECKS_BODY_CHUNK);

		if (r <= 0)
			break;
		dkim_verify_feed(ch->dkim, buf, (size_t)r);
		off += (uint64_t)r;
	}
	free(buf);
	for (size_t i = 0; i < dkim_verify_count(ch->dkim) && i < DKIM_SIGS_MAX; i++) {
		const char *name = dkim_verify_key_name(ch->dkim, i);

		if (name)
			ask(ch, LK_DKIM, i, DNS_T_TXT, name);
	}
}

/* Decide every signature; keys not looked up in time are temporary
 * failures. */
static void dkim_end(struct checks *ch)
{
	for (size_t i = 0; i < dkim_verify_count(ch->dkim) && i < DKIM_SIGS_MAX; i++)
		if (dkim_verify_key_name(ch->dkim, i) && !ch->key_done[i])
			dkim_verify_set_key(ch->dkim, i, DKIM_KEY_TEMPFAIL, NULL, 0);
	dkim_verify_finish(ch->dkim, time(NULL));
	ch->dkim_done = true;
}

/* Go on with the end of the message as far as the answers allow. */
static void step(struct checks *ch)
{
	if (ch->npending > 0)
		return;
	if (!ch->spf_done)
		return; /* SPF's answers come first */
	if (ch->conf->checks.dkim && !ch->dkim_started) {
		dkim_start(ch);
		if (ch->npending > 0)
			return;
	}
	if (ch->dkim && !ch->dkim_done)
		dkim_end(ch);
	if (ch->conf->checks.dmarc && !ch->dmarc_started) {
		char from[CHECKS_FROM_MAX];
		long n = from_field(ch->in, from, sizeof(from));

		ch->dmarc_started = true;
		dmarc_init(&ch->dmarc, psl, from, n > 0 ? (size_t)n : 0,
			   ch->spf.result == SPF_RESULT_PASS, ch->spf.domain);
		for (size_t i = 0; ch->dkim && i < dkim_verify_count(ch->dkim); i++) {
			const struct dkim_sig_result *r = dkim_verify_result(ch->dkim, i);

			if (r && r->result == DKIM_RESULT_PASS && r->d[0])
				dmarc_add_dkim(&ch->dmarc, r->d);
		}
		if (n < 0) {
			ch->dmarc.result = DMARC_RESULT_PERMERROR;
			strcpy_bounded(ch->dmarc.why, "more than one From: field",
				       sizeof(ch->dmarc.why));
		}
	}
	if (ch->dmarc_started && !ch->dmarc_done) {
		if (!dmarc_run(&ch->dmarc)) {
			ask(ch, LK_DMARC, 0, DNS_T_TXT, ch->dmarc.need);
			return;
		}
		ch->dmarc_done = true;
	}
	decide(ch);
}

/* The checks of one message took too long: what is missing is a
 * temperror. */
static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct checks *ch = arg;

	(void)fd;
	(void)what;
	if (ch->in == NULL)
		return;
	cancel_all(ch);
	ch->timed_out = true;
	if (ch->dkim && !ch->dkim_done)
		dkim_end(ch);
	if (!ch->spf_done) {
		ch->spf_done = true;
		ch->spf.result = SPF_RESULT_TEMPERROR;
		strcpy_bounded(ch->spf.why, "timeout", sizeof(ch->spf.why));
	}
	if (ch->dmarc_started && !ch->dmarc_done) {
		ch->dmarc_done = true;
		ch->dmarc.result = DMARC_RESULT_TEMPERROR;
		strcpy_bounded(ch->dmarc.why, "timeout", sizeof(ch->dmarc.why));
	}
	decide(ch);
}

/* The stage: start (or continue) the end of the message. */
static void stage_run(struct intake *in, void *arg)
{
	struct checks *ch = arg;
	struct timeval tv = {.tv_sec = ch->conf->checks.timeout};

	if (!ch->active) {
		const struct intake_verdict go = {.action = INTAKE_CONTINUE};

		intake_stage_done(in, &go);
		return;
	}
	ch->in = in;
	evtimer_add(ch->timer, &tv);
	step(ch);
}

/* The message is dropped while the stage waits. */
static void stage_cancel(struct intake *in, void *arg)
{
	struct checks *ch = arg;

	(void)in;
	drop(ch);
}

/* See checks.h. */
const struct intake_stage checks_stage = {
	.name = "checks",
	.rank = INTAKE_RANK_CHECKS,
	.run = stage_run,
	.cancel = stage_cancel,
};
