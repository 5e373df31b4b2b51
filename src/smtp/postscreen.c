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
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include "client_limits.h"
#include "client_table.h"
#include "dns.h"
#include "dnsbl.h"
#include "greylist.h"
#include "log.h"
#include "smtp_internal.h"
#include "util.h"

#define PREGREET_SHOWN 64 /* octets of early talk shown in the log */

/* What the forward-confirmed reverse DNS check found. */
enum fcrdns_result {
	FCRDNS_UNCHECKED, /* not asked, or no answer: nothing is done */
	FCRDNS_PASS,      /* the PTR name has the client's address */
	FCRDNS_FAIL,      /* no PTR name, or one without the client's address */
};

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
	const char *event = limit_event(&s->conf->limits, st, &limit);

	log_info("event=%s session=%s listener=%s client=%s limit=%u status=%d esc=%s", event,
		 s->id, s->lc->name, s->peer_addr, limit, status_code(st), status_esc(st));
}

/* See postscreen.h. */
enum status postscreen_connect(struct smtp_session *s)
{
	enum status st;

	s->dnsbl_zone = -1;
	if (s->trusted)
		return STATUS_OK;
	st = client_limits_connect(server_clients(s->srv), &s->conf->limits,
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
	unsigned pass = s->conf->limits.greeting_pass_time;

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
	unsigned keep = s->conf->dnsbl_cache_time;

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
	const struct conf *c = s->conf;
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
	unsigned delay = s->lc->greeting_delay_ms;
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
	return s->greet_delaying || s->dnsbl != NULL || s->fcrdns_q != NULL;
}

/* Do the client checks apply to this session: MX listeners, untrusted? */
static bool checks_apply(const struct smtp_session *s)
{
	return s->lc->auth == AUTH_MODE_NONE && !s->trusted;
}

/* The forward lookup of the PTR name answered. */
static void fcrdns_done(void *arg, const struct dns_answer *a)
{
	struct smtp_session *s = arg;
	bool v6 = s->peer.ss_family == AF_INET6;
	const void *want = v6 ? (const void *)&((struct sockaddr_in6 *)&s->peer)->sin6_addr
			      : (const void *)&((struct sockaddr_in *)&s->peer)->sin_addr;
	size_t len = v6 ? 16 : 4;
	char name[ESCAPED_WORD_MAX];

	s->fcrdns_q = NULL;
	escape_word(s->peer_name, name, sizeof(name)); /* DNS data: the peer's to choose */
	if (a->status == DNS_TEMPFAIL) {
		log_info("event=fcrdns session=%s client=%s name=%s result=unknown reason=\"%s\"",
			 s->id, s->peer_addr, name, a->why);
	} else {
		s->fcrdns = FCRDNS_FAIL;
		for (size_t i = 0; i < a->n; i++)
			if (a->rr[i].len == len && memcmp(a->rr[i].data, want, len) == 0)
				s->fcrdns = FCRDNS_PASS;
		log_info("event=fcrdns session=%s client=%s name=%s result=%s", s->id, s->peer_addr,
			 name, s->fcrdns == FCRDNS_PASS ? "pass" : "fail");
	}
	smtp_greet_ready(s);
}

/* See postscreen.h. */
void postscreen_reverse_done(struct smtp_session *s, const char *name)
{
	bool v4mapped = s->peer.ss_family == AF_INET6 &&
			IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&s->peer)->sin6_addr);

	if (s->conf->check_fcrdns == CLIENT_CHECK_OFF || !checks_apply(s) || v4mapped)
		return;
	if (name == NULL) {
		s->fcrdns = FCRDNS_FAIL;
		log_info("event=fcrdns session=%s client=%s name=unknown result=fail", s->id,
			 s->peer_addr);
		return;
	}
	s->fcrdns_q = dns_query(name, s->peer.ss_family == AF_INET6 ? DNS_T_AAAA : DNS_T_A,
				fcrdns_done, s);
}

/* See postscreen.h. */
enum helo_fault postscreen_helo_fault(const char *helo, const char *hostname)
{
	unsigned char a[16];
	size_t n = strlen(helo);

	if (inet_pton(AF_INET, helo, a) == 1 || inet_pton(AF_INET6, helo, a) == 1)
		return HELO_FAULT_BARE_IP;
	if (n > 0 && helo[n - 1] == '.')
		n--;
	if (n == strlen(hostname) && strncasecmp(helo, hostname, n) == 0)
		return HELO_FAULT_OUR_NAME;
	return HELO_FAULT_NONE;
}

/* See postscreen.h. */
enum status postscreen_helo(struct smtp_session *s)
{
	enum client_check k = s->conf->check_helo;
	char shown[ESCAPED_WORD_MAX];

	s->helo_fault = HELO_FAULT_NONE;
	if (k == CLIENT_CHECK_OFF || !checks_apply(s))
		return STATUS_OK;
	s->helo_fault = postscreen_helo_fault(s->helo, s->conf->hostname);
	if (s->helo_fault == HELO_FAULT_NONE)
		return STATUS_OK;
	escape_word(s->helo, shown, sizeof(shown));
	log_info("event=helo_check session=%s client=%s helo=%s fault=%s action=%s", s->id,
		 s->peer_addr, shown, s->helo_fault == HELO_FAULT_BARE_IP ? "bare-ip" : "our-name",
		 client_check_name(k));
	return k == CLIENT_CHECK_REFUSE ? STATUS_HELO_REFUSED : STATUS_OK;
}

/* See postscreen.h. */
const char *postscreen_mark(const struct smtp_session *s, char *buf, size_t size)
{
	const struct conf *c = s->conf;
	bool fcrdns = c->check_fcrdns == CLIENT_CHECK_MARK && s->fcrdns == FCRDNS_FAIL;
	bool helo = c->check_helo == CLIENT_CHECK_MARK && s->helo_fault != HELO_FAULT_NONE;

	if (!fcrdns && !helo)
		return NULL;
	snprintf(buf, size, "%s%s%s", fcrdns ? "fcrdns=fail" : "", fcrdns && helo ? "; " : "",
		 !helo                                 ? ""
		 : s->helo_fault == HELO_FAULT_BARE_IP ? "helo=bare-ip"
						       : "helo=our-name");
	return buf;
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
	const struct conf *c = s->conf;
	const char *zone;

	if (c->check_fcrdns == CLIENT_CHECK_REFUSE && s->fcrdns == FCRDNS_FAIL) {
		log_info("event=fcrdns_refused session=%s client=%s status=%d esc=%s", s->id,
			 s->peer_addr, status_code(STATUS_FCRDNS), status_esc(STATUS_FCRDNS));
		smtp_reply(s, STATUS_FCRDNS,
			   "Client host rejected: reverse DNS does not confirm [%s]", s->peer_addr);
		smtp_enter_state(s, SMTP_STATE_CLOSING);
		return false;
	}
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
	st = check(server_clients(s->srv), &s->conf->limits, (struct sockaddr *)&s->peer,
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

	if (s->srv->greylist == NULL || !s->conf->greylist_enabled || s->trusted ||
	    s->auth_user != NULL || s->dnsbl_score < 0)
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
	if (s->fcrdns_q != NULL) {
		dns_query_cancel(s->fcrdns_q);
		s->fcrdns_q = NULL;
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
