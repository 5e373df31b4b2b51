/*
 * smtp_proxy.c - a listener's PROXY protocol header (proxy_protocol = yes),
 * read before the session begins.
 *
 * Only a peer in the listener's proxy_networks may connect at all; it must
 * send a v1 or v2 header (proxy.h) within timeout_proxy and in at most
 * proxy_header_max octets.  The header is read straight from the socket,
 * peeking first and then taking exactly the header's octets, so the bytes
 * after it (the client's TLS ClientHello, or its SMTP commands) stay in the
 * socket for the session.  The client it names becomes the session's peer
 * everywhere - policy, AUTH limits, logs, Received: - and the address it
 * connected to the session's local address; the balancer's own address is
 * kept for the connect log line.  Anything else - an untrusted peer, no
 * header, a malformed or oversized one, a timeout, the peer closing - is
 * logged (event=proxy_refused) and the connection closed without a reply:
 * the peer may not speak SMTP at all.
 */
#include "smtp_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "policy.h"
#include "proxy.h"
#include "util.h"

struct smtp_proxy {
	evutil_socket_t fd;
	struct event *ev;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	size_t len;               /* octets taken from the socket so far */
	unsigned char buf[];      /* proxy_header_max octets */
};

/* Refuse the connection: log why and close it (frees s). */
static void proxy_refuse(struct smtp_session *s, const char *reason)
{
	char esc[256];

	escape_text(reason, strlen(reason), esc, sizeof(esc));
	log_warnx("event=proxy_refused session=%s listener=%s peer=%s reason=\"%s\"", s->id,
		  s->lc->name, s->peer_addr, esc);
	smtp_close_now(s, "proxy header refused");
}

/* Wait for more octets until the deadline; false when it has passed. */
static bool proxy_rearm(struct smtp_proxy *p)
{
	struct timespec now;
	struct timeval tv;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(p->deadline.tv_sec - now.tv_sec) * 1000 +
	     (p->deadline.tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return false;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(p->ev, &tv);
	return true;
}

/* The header named a client: it becomes the session's peer. */
static void proxy_apply(struct smtp_session *s, const struct proxy_header *h)
{
	char client[INET6_ADDRSTRLEN];

	if (h->local) {
		log_info("event=proxy session=%s listener=%s peer=%s version=%d client=none", s->id,
			 s->lc->name, s->peer_addr, h->version);
		return;
	}
	strcpy_bounded(s->proxy_addr, s->peer_addr, sizeof(s->proxy_addr));
	smtp_session_set_peer(s, (const struct sockaddr *)&h->src, h->srclen,
			      (const struct sockaddr *)&h->dst);
	strcpy_bounded(client, s->peer_addr, sizeof(client));
	log_info("event=proxy session=%s listener=%s peer=%s version=%d client=%s port=%u "
		 "local=%s",
		 s->id, s->lc->name, s->proxy_addr, h->version, client, s->peer_port,
		 s->local_addr);
}

/* Take n octets that a peek has shown to be there. */
static bool proxy_take(struct smtp_proxy *p, size_t n)
{
	ssize_t got;

	do
		got = recv(p->fd, p->buf + p->len, n, 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)n)
		return false;
	p->len += n;
	return true;
}

/* The socket is readable, or the deadline passed. */
static void proxy_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_proxy *p = s->proxy;
	size_t max = s->conf->limits.proxy_header_max;
	struct proxy_header h;
	const char *reason;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		proxy_refuse(s, "no whole header within timeout_proxy");
		return;
	}
	n = recv(fd, p->buf + p->len, max - p->len, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		if (!proxy_rearm(p))
			proxy_refuse(s, "no whole header within timeout_proxy");
		return;
	}
	if (n <= 0) {
		proxy_refuse(s, n == 0 ? "closed before a whole header" : strerror(errno));
		return;
	}
	switch (proxy_parse(p->buf, p->len + (size_t)n, max, &h, &reason)) {
	case PROXY_INCOMPLETE:
		/* every octet seen belongs to the header: take them all */
		if (!proxy_take(p, (size_t)n))
			proxy_refuse(s, "read failed");
		else if (p->len >= max)
			proxy_refuse(s, "header longer than proxy_header_max");
		else if (!proxy_rearm(p))
			proxy_refuse(s, "no whole header within timeout_proxy");
		return;
	case PROXY_BAD:
		proxy_refuse(s, reason);
		return;
	case PROXY_DONE:
		break;
	}
	if (!proxy_take(p, h.length - p->len)) {
		proxy_refuse(s, "read failed");
		return;
	}
	proxy_apply(s, &h);
	p->fd = -1; /* the session's from now on */
	smtp_proxy_free(s);
	smtp_session_begin(s, fd);
}

/* See smtp_internal.h. */
void smtp_proxy_start(struct smtp_session *s, evutil_socket_t fd)
{
	const struct listener_conf *lc = s->lc;
	const struct limits *lim = &s->conf->limits;
	struct smtp_proxy *p;

	p = xcalloc(1, sizeof(*p) + lim->proxy_header_max);
	p->fd = fd;
	s->proxy = p;
	if (!policy_addr_in(lc->proxy_networks, lc->nproxy_networks,
			    (const struct sockaddr *)&s->peer)) {
		proxy_refuse(s, "peer not in proxy_networks");
		return;
	}
	p->ev = event_new(s->srv->base, fd, EV_READ, proxy_read_cb, s);
	clock_gettime(CLOCK_MONOTONIC, &p->deadline);
	p->deadline.tv_sec += (time_t)lim->timeout_proxy;
	proxy_rearm(p);
}

/* See smtp_internal.h. */
void smtp_proxy_free(struct smtp_session *s)
{
	struct smtp_proxy *p = s->proxy;

	if (p == NULL)
		return;
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->fd >= 0)
		evutil_closesocket(p->fd);
	free(p);
	s->proxy = NULL;
}
