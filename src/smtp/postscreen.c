/*
 * postscreen.c - the per-client limits at connect and in transactions,
 * the greeting delay and the pre-greeting talk test, and the DNSBL
 * verdict, for one session (postscreen.h).
 *
 * The client table (client_table.h) remembers, per client, that it once
 * waited for the greeting without talking (for greeting_pass_time: it is
 * not delayed again meanwhile) and its DNSBL verdict (for [dnsbl]
 * cache_time), on top of the DNS answers dns_query caches for their TTL.
 */
#include "postscreen.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client_limits.h"
#include "client_table.h"
#include "dnsbl.h"
#include "greylist.h"
#include "log.h"
#include "smtp_internal.h"
#include "util.h"

#define PREGREET_SHOWN 64 /* octets of early talk shown in the log */

/* The log event and the limit of a refusing status. */
static const char *limit_event(const struct limits *lim, enum status st, unsigned *limit)
{
	switch (st) {
	case STATUS_CLIENT_SESSIONS:
		*limit = lim->client_sessions_max;
		return "client_session_limit";
	case STATUS_CLIENT_CONN_RATE:
		*limit = lim->client_connections_per_minute;
		return "client_connection_rate_limit";
	case STATUS_CLIENT_MSG_RATE:
		*limit = lim->client_messages_per_minute;
		return "client_message_rate_limit";
	default:
		*limit = lim->client_recipients_per_minute;
		return "client_recipient_rate_limit";
	}
}

/* Log a refusal by one of the per-client limits. */
static void log_limit(const struct smtp_session *s, enum status st)
{
	unsigned limit;
	const char *event = limit_event(&s->srv->conf->limits, st, &limit);

	log_info("event=%s session=%s listener=%s client=%s limit=%u status=%d esc=%s", event,
		 s->id, s->l->lc->name, s->peer_addr, limit, status_code(st), status_esc(st));
}

/* See postscreen.h. */
enum status postscreen_connect(struct smtp_session *s)
{
	enum status st;

	s->dnsbl_zone = -1;
	if (s->trusted)
		return STATUS_OK;
	st = client_limits_connect(server_clients(s->srv), &s->srv->conf->limits,
				   (struct sockaddr *)&s->peer, time(NULL));
	if (st == STATUS_OK)
		s->client_counted = true;
	else
		log_limit(s, st);
	return st;
}

/* The greeting delay is over, and the client kept quiet. */
static void greet_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	unsigned pass = s->srv->conf->limits.greeting_pass_time;

	(void)fd;
	(void)what;
	s->greet_delaying = false;
	if (pass > 0)
		client_table_get(server_clients(s->srv), (struct sockaddr *)&s->peer)
			->greet_passed_until = time(NULL) + (time_t)pass;
	smtp_greet_ready(s);
}

/* Keep the DNSBL result for the session, and for the client when whole. */
static void dnsbl_record(struct smtp_session *s, const struct dnsbl_result *r)
{
	unsigned keep = s->srv->conf->dnsbl_cache_time;

	s->dnsbl_score = r->score;
	s->dnsbl_zone = r->zone;
	log_debug("event=dnsbl_score session=%s client=%s score=%d listed=%zu failed=%zu", s->id,
		  s->peer_addr, r->score, r->listed, r->failed);
	if (r->failed == 0 && keep > 0) {
		struct client_entry *e =
			client_table_get(server_clients(s->srv), (struct sockaddr *)&s->peer);
		client_addr16((struct sockaddr *)&s->peer, e->dnsbl_addr);
		e->dnsbl_until = time(NULL) + (time_t)keep;
		e->dnsbl_score = r->score;
		e->dnsbl_zone = r->zone;
	}
}

/* Every list answered. */
static void dnsbl_done(void *arg, const struct dnsbl_result *r)
{
	struct smtp_session *s = arg;

	s->dnsbl = NULL;
	evtimer_del(s->dnsbl_timer);
	dnsbl_record(s, r);
	smtp_greet_ready(s);
}

/* The lists took too long: what answered counts. */
static void dnsbl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct dnsbl_result r;

	(void)fd;
	(void)what;
	dnsbl_check_stop(s->dnsbl, &r);
	s->dnsbl = NULL;
	log_info("event=dnsbl_timeout session=%s client=%s unanswered=%zu", s->id, s->peer_addr,
		 r.failed);
	dnsbl_record(s, &r);
	smtp_greet_ready(s);
}

/* A DNSBL verdict the client table still holds for this address. */
static bool dnsbl_cached(struct smtp_session *s, const struct client_entry *e, time_t now)
{
	unsigned char a[16];

	client_addr16((struct sockaddr *)&s->peer, a);
	if (e->dnsbl_until <= now || memcmp(e->dnsbl_addr, a, 16) != 0)
		return false;
	s->dnsbl_score = e->dnsbl_score;
	s->dnsbl_zone = e->dnsbl_zone;
	log_debug("event=dnsbl_score session=%s client=%s score=%d cached=yes", s->id, s->peer_addr,
		  s->dnsbl_score);
	return true;
}

/* Ask the lists, unless the verdict is known. */
static void dnsbl_start(struct smtp_session *s, const struct client_entry *e, time_t now)
{
	const struct conf *c = s->srv->conf;
	char key[32];
	struct timeval tv = {c->dnsbl_timeout_ms / 1000, (c->dnsbl_timeout_ms % 1000) * 1000};

	if (c->ndnsbl_zones == 0 || dnsbl_cached(s, e, now))
		return;
	snprintf(key, sizeof(key), "session=%s", s->id);
	s->dnsbl = dnsbl_check(c, (struct sockaddr *)&s->peer, key, dnsbl_done, s);
	if (s->dnsbl == NULL)
		return;
	s->dnsbl_timer = evtimer_new(s->srv->base, dnsbl_timer_cb, s);
	evtimer_add(s->dnsbl_timer, &tv);
}

/* See postscreen.h. */
void postscreen_start(struct smtp_session *s)
{
	unsigned delay = s->l->lc->greeting_delay_ms;
	time_t now = time(NULL);
	const struct client_entry *e;

	if (s->trusted)
		return;
	e = client_table_get(server_clients(s->srv), (struct sockaddr *)&s->peer);
	if (delay > 0 && e->greet_passed_until <= now) {
		struct timeval tv = {delay / 1000, (delay % 1000) * 1000};

		s->greet_timer = evtimer_new(s->srv->base, greet_timer_cb, s);
		evtimer_add(s->greet_timer, &tv);
		s->greet_delaying = true;
		bufferevent_enable(s->bev, EV_READ); /* to see talk before the greeting */
	}
	dnsbl_start(s, e, now);
}

/* See postscreen.h. */
bool postscreen_waiting(const struct smtp_session *s)
{
	return s->greet_delaying || s->dnsbl != NULL;
}

/* See postscreen.h. */
void postscreen_input(struct smtp_session *s, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in);
	char head[PREGREET_SHOWN], shown[PREGREET_SHOWN * 4 + 1];
	ev_ssize_t got;

	if (n == 0)
		return;
	got = evbuffer_copyout(in, head, sizeof(head));
	escape_text(head, got > 0 ? (size_t)got : 0, shown, sizeof(shown));
	log_info("event=pregreet session=%s client=%s octets=%zu text=\"%s\"", s->id, s->peer_addr,
		 n, shown);
	evbuffer_drain(in, n);
	smtp_close(s, STATUS_PREGREET);
}

/* See postscreen.h. */
bool postscreen_verdict(struct smtp_session *s)
{
	const struct conf *c = s->srv->conf;
	const char *zone;

	if (c->ndnsbl_zones == 0 || s->dnsbl_score < (int)c->dnsbl_threshold)
		return true;
	zone = s->dnsbl_zone >= 0 ? c->dnsbl_zones[s->dnsbl_zone].zone : "DNS blocklists";
	log_info("event=dnsbl_refused session=%s client=%s score=%d threshold=%u zone=%s "
		 "status=%d esc=%s",
		 s->id, s->peer_addr, s->dnsbl_score, c->dnsbl_threshold, zone,
		 status_code(STATUS_DNSBL), status_esc(STATUS_DNSBL));
	smtp_reply(s, STATUS_DNSBL, "Service unavailable; client [%s] blocked using %s",
		   s->peer_addr, zone);
	smtp_enter_state(s, SMTP_STATE_CLOSING);
	return false;
}

/* One MAIL or RCPT against its per-client rate (check). */
static enum status transaction_rate(struct smtp_session *s,
				    enum status (*check)(struct client_table *,
							 const struct limits *,
							 const struct sockaddr *, time_t))
{
	enum status st;

	if (s->trusted)
		return STATUS_OK;
	st = check(server_clients(s->srv), &s->srv->conf->limits, (struct sockaddr *)&s->peer,
		   time(NULL));
	if (st != STATUS_OK)
		log_limit(s, st);
	return st;
}

/* See postscreen.h. */
enum status postscreen_mail(struct smtp_session *s)
{
	return transaction_rate(s, client_limits_message);
}

/* See postscreen.h. */
enum status postscreen_rcpt(struct smtp_session *s)
{
	return transaction_rate(s, client_limits_recipient);
}

/* See postscreen.h. */
enum status postscreen_greylist(struct smtp_session *s, const char *rcpt)
{
	unsigned wait;
	char from[ESCAPED_WORD_MAX], to[ESCAPED_WORD_MAX];

	if (s->srv->greylist == NULL || s->trusted || s->auth_user != NULL || s->dnsbl_score < 0)
		return STATUS_OK;
	if (greylist_pass(s->srv->greylist, (struct sockaddr *)&s->peer, s->env.sender, rcpt,
			  time(NULL), &wait))
		return STATUS_OK;
	escape_word(s->env.sender, from, sizeof(from));
	escape_word(rcpt, to, sizeof(to));
	log_info("event=greylisted session=%s client=%s from=%s rcpt=%s retry_in=%u", s->id,
		 s->peer_addr, from, to, wait);
	return STATUS_GREYLISTED;
}

/* See postscreen.h. */
void postscreen_end(struct smtp_session *s)
{
	if (s->dnsbl != NULL) {
		dnsbl_check_stop(s->dnsbl, NULL);
		s->dnsbl = NULL;
	}
	if (s->greet_timer != NULL) {
		event_free(s->greet_timer);
		s->greet_timer = NULL;
	}
	if (s->dnsbl_timer != NULL) {
		event_free(s->dnsbl_timer);
		s->dnsbl_timer = NULL;
	}
	if (s->client_counted) {
		client_limits_disconnect(server_clients(s->srv), (struct sockaddr *)&s->peer);
		s->client_counted = false;
	}
}
