/*
 * dns.c - c-ares bound to libevent: c-ares tells us which sockets it wants
 * watched (sock_state_cb); we watch them with events and drive
 * ares_process_fd(), and one timer drives its timeouts.
 */
#include "dns.h"

#include <ares.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define DNS_TIMEOUT_MS 2000
#define DNS_TRIES 2
#define DNS_MAX_SOCKETS 16

struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
};

static struct {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct dns_sock socks[DNS_MAX_SOCKETS];
	bool ready;
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

/* See dns.h. */
bool dns_init(struct event_base *base, char *err, size_t errsz)
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
	opts.timeout = DNS_TIMEOUT_MS;
	opts.tries = DNS_TRIES;
	rc = ares_init_options(&dns.channel, &opts,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "c-ares: %s", ares_strerror(rc));
		return false;
	}
	dns.base = base;
	dns.timer = evtimer_new(base, dns_timer_cb, NULL);
	dns.ready = true;
	return true;
}

/* See dns.h. */
void dns_shutdown(void)
{
	if (!dns.ready)
		return;
	ares_destroy(dns.channel); /* runs pending callbacks with ARES_EDESTRUCTION */
	for (int i = 0; i < DNS_MAX_SOCKETS; i++)
		if (dns.socks[i].ev) {
			event_free(dns.socks[i].ev);
			dns.socks[i].ev = NULL;
		}
	event_free(dns.timer);
	ares_library_cleanup();
	dns.ready = false;
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
