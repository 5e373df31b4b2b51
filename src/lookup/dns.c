/*
 * dns.c - c-ares bound to libevent: c-ares tells us which sockets it wants
 * watched (sock_state_cb); we watch them with events and drive
 * ares_process_fd(), and one timer drives its timeouts.
 *
 * A query (dns_query) is answered from the cache or sent with ares_query.
 * Either way its answer goes on the ready list and one event, made active,
 * calls the callbacks from the loop: a callback never runs inside
 * dns_query() (c-ares may call back at once, e.g. when out of memory) and
 * may itself start or cancel queries.  A query cancelled while c-ares still
 * holds it stays allocated, marked, until c-ares calls back.
 */
#include "dns.h"

#include <ares.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "dns_cache.h"
#include "dns_servers.h"
#include "log.h"
#include "util.h"

#define DNS_MAX_SOCKETS 16

/* One dns_query: on c-ares (answer NULL) or on the ready list. */
struct dns_query {
	struct dns_query *prev, *next; /* the ready list */
	dns_answer_cb cb;
	void *arg;
	enum dns_type type;
	bool cancelled; /* by its owner while c-ares holds it */
	bool in_ares;
	struct dns_answer *answer;
	char name[];
};

struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
};

static struct {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct dns_sock socks[DNS_MAX_SOCKETS];
	struct dns_cache *cache;
	struct event *deliver;                /* runs the ready list */
	struct dns_query *ready, *ready_tail; /* answered, callbacks to run */
	bool ready_flag;
} dns;

/* Re-arm the timeout timer from c-ares' next deadline. */
static void dns_arm_timer(void)
{
	struct timeval tv, *tvp;

	tvp = ares_timeout(dns.channel, NULL, &tv);
	if (tvp)
		evtimer_add(dns.timer, tvp);
	else
		evtimer_del(dns.timer);
}

/* A watched socket is ready. */
static void dns_deliver_cb(evutil_socket_t fd, short what, void *arg);

/* A watched socket is ready. */
static void dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)arg;
	ares_process_fd(dns.channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_arm_timer();
}

/* A deadline passed. */
static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ares_process_fd(dns.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_arm_timer();
}

/* c-ares: start, change or stop watching a socket. */
static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_sock *free_slot = NULL, *slot = NULL;

	(void)data;
	for (int i = 0; i < DNS_MAX_SOCKETS; i++) {
		if (dns.socks[i].ev && dns.socks[i].fd == fd)
			slot = &dns.socks[i];
		else if (dns.socks[i].ev == NULL && free_slot == NULL)
			free_slot = &dns.socks[i];
	}
	if (slot) {
		event_free(slot->ev);
		slot->ev = NULL;
	}
	if (!readable && !writable)
		return;
	if (slot == NULL)
		slot = free_slot;
	if (slot == NULL) {
		log_warnx("event=dns_error reason=\"too many DNS sockets\"");
		return;
	}
	slot->fd = fd;
	slot->ev = event_new(
		dns.base, fd,
		(short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0) | EV_PERSIST),
		dns_sock_cb, NULL);
	event_add(slot->ev, NULL);
}

/* Seconds on the monotonic clock, for the cache. */
static uint64_t dns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static void query_free(struct dns_query *q)
{
	dns_answer_unref(q->answer);
	free(q);
}

static void ready_unlink(struct dns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		dns.ready = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		dns.ready_tail = q->prev;
	q->prev = q->next = NULL;
}

/* q has its answer: queue its callback for the loop. */
static void ready_push(struct dns_query *q)
{
	q->next = NULL;
	q->prev = dns.ready_tail;
	if (dns.ready_tail)
		dns.ready_tail->next = q;
	else
		dns.ready = q;
	dns.ready_tail = q;
	event_active(dns.deliver, EV_TIMEOUT, 1);
}

/* Run the callbacks of answered queries, the oldest first.  A callback
 * may start queries (they wait for the next round) or cancel others. */
static void dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q;

	(void)fd;
	(void)what;
	(void)arg;
	while ((q = dns.ready) != NULL) {
		ready_unlink(q);
		q->cb(q->arg, q->answer);
		query_free(q);
	}
}

/* See dns.h. */
bool dns_init(struct event_base *base, const struct conf *c, char *err, size_t errsz)
{
	struct ares_options opts;
	int rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "c-ares: %s", ares_strerror(rc));
		return false;
	}
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.timeout = (int)c->dns_timeout_ms;
	opts.tries = (int)c->dns_tries;
	opts.ndomains = 0; /* no search list */
	rc = ares_init_options(&dns.channel, &opts,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				       ARES_OPT_DOMAINS);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "c-ares: %s", ares_strerror(rc));
		return false;
	}
	rc = dns_servers_set(dns.channel, c->dns_servers);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "[dns] servers: %s",
			 rc == ARES_EBADSTR ? "not a list of addresses" : ares_strerror(rc));
		ares_destroy(dns.channel);
		return false;
	}
	dns.base = base;
	dns.timer = evtimer_new(base, dns_timer_cb, NULL);
	dns.deliver = event_new(base, -1, 0, dns_deliver_cb, NULL);
	dns.cache = dns_cache_new(c->dns_cache_size, c->dns_cache_ttl_max);
	dns.ready_flag = true;
	return true;
}

/* See dns.h. */
void dns_shutdown(void)
{
	if (!dns.ready_flag)
		return;
	ares_destroy(dns.channel); /* runs pending callbacks with ARES_EDESTRUCTION */
	while (dns.ready) {
		struct dns_query *q = dns.ready;

		ready_unlink(q);
		query_free(q);
	}
	dns_cache_free(dns.cache);
	dns.cache = NULL;
	event_free(dns.deliver);
	for (int i = 0; i < DNS_MAX_SOCKETS; i++)
		if (dns.socks[i].ev) {
			event_free(dns.socks[i].ev);
			dns.socks[i].ev = NULL;
		}
	event_free(dns.timer);
	ares_library_cleanup();
	dns.ready_flag = false;
}

struct reverse_req {
	dns_name_cb cb;
	void *arg;
};

/* c-ares answer for a PTR lookup. */
static void dns_reverse_done(void *arg, int status, int timeouts, struct hostent *he)
{
	struct reverse_req *r = arg;

	(void)timeouts;
	r->cb(r->arg, status == ARES_SUCCESS && he && he->h_name ? he->h_name : NULL);
	free(r);
}

/* See dns.h. */
void dns_reverse(const struct sockaddr *sa, dns_name_cb cb, void *arg)
{
	struct reverse_req *r = xmalloc(sizeof(*r));

	r->cb = cb;
	r->arg = arg;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		ares_gethostbyaddr(dns.channel, &sin->sin_addr, sizeof(sin->sin_addr), AF_INET,
				   dns_reverse_done, r);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		ares_gethostbyaddr(dns.channel, &sin6->sin6_addr, sizeof(sin6->sin6_addr), AF_INET6,
				   dns_reverse_done, r);
	}
	dns_arm_timer();
}

/* c-ares' answer to a dns_query. */
static void dns_query_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;

	(void)timeouts;
	q->in_ares = false;
	if (status == ARES_EDESTRUCTION || q->cancelled) {
		query_free(q);
		return;
	}
	if ((status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) &&
	    abuf != NULL && alen > 0) {
		q->answer = dns_answer_parse(abuf, (size_t)alen, q->type);
		if (dns.cache)
			dns_cache_put(dns.cache, q->name, q->type, q->answer, dns_now());
	} else if (status == ARES_ETIMEOUT) {
		q->answer = dns_answer_status(DNS_TEMPFAIL, "timeout");
	} else if (status == ARES_ECONNREFUSED) { /* c-ares 1.18: also SERVFAIL, REFUSED */
		q->answer = dns_answer_status(DNS_TEMPFAIL, "no usable answer (SERVFAIL, REFUSED "
							    "or connection refused)");
	} else {
		q->answer = dns_answer_status(DNS_TEMPFAIL, "%s", ares_strerror(status));
	}
	if (log_verbose()) {
		char shown[ESCAPED_WORD_MAX];

		escape_word(q->name, shown, sizeof(shown));
		log_debug("event=dns_answer name=%s type=%s status=%s records=%zu ttl=%u", shown,
			  dns_type_name(q->type), dns_status_name(q->answer->status), q->answer->n,
			  (unsigned)q->answer->ttl);
	}
	ready_push(q);
}

/* See dns.h. */
struct dns_query *dns_query(const char *name, enum dns_type type, dns_answer_cb cb, void *arg)
{
	size_t n = strlen(name);
	struct dns_query *q = xcalloc(1, sizeof(*q) + n + 1);

	memcpy(q->name, name, n + 1);
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	if (!dns_name_ok(name)) {
		q->answer = dns_answer_status(DNS_NXDOMAIN, "invalid name");
	} else if (dns.cache && (q->answer = dns_cache_get(dns.cache, name, type, dns_now()))) {
		/* from the cache */
	} else {
		q->in_ares = true;
		ares_query(dns.channel, name, 1 /* C_IN */, (int)type, dns_query_done, q);
		if (q->in_ares)
			dns_arm_timer();
		return q;
	}
	ready_push(q);
	return q;
}

/* See dns.h. */
void dns_query_cancel(struct dns_query *q)
{
	if (q == NULL)
		return;
	if (q->in_ares) {
		q->cancelled = true; /* freed when c-ares lets go of it */
		return;
	}
	ready_unlink(q);
	query_free(q);
}

/* See dns.h. */
size_t dns_cache_entries(void)
{
	return dns.cache ? dns_cache_count(dns.cache) : 0;
}
