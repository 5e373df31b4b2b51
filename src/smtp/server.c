/*
 * server.c - listeners and the session registry: bind (as root, before the
 * privilege drop), accept, and the orderly shutdown that never cuts a
 * commit in half.
 */
#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "client_table.h"
#include "conf.h"
#include "log.h"
#include "queue.h"
#include "smtp_internal.h"
#include "smtp_session.h"
#include "util.h"

#define LISTEN_BACKLOG 1024

/* A connection was accepted on a listener. */
static void accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct listener *l = arg;
	int one = 1;

	(void)ev;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	smtp_session_new(l, fd, sa, (socklen_t)salen);
}

/* accept() failed: usually out of descriptors; keep running. */
static void accept_error_cb(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;

	(void)ev;
	log_warn("event=accept_failed listener=%s", l->lc->name);
}

/* The text of the listener's address when it names one address (not a
 * wildcard, not IPv4-mapped): then no session needs to ask its socket. */
static void listener_local_addr(struct listener *l)
{
	const struct sockaddr_storage *ss = &l->lc->ss;

	l->local_addr[0] = '\0';
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		if (s4->sin_addr.s_addr != htonl(INADDR_ANY) &&
		    inet_ntop(AF_INET, &s4->sin_addr, l->local_addr, sizeof(l->local_addr)) == NULL)
			l->local_addr[0] = '\0';
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) &&
		    !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		    inet_ntop(AF_INET6, &s6->sin6_addr, l->local_addr, sizeof(l->local_addr)) ==
			    NULL)
			l->local_addr[0] = '\0';
	}
}

/* See server.h. */
bool server_bind(struct server *srv, char *err, size_t errsz)
{
	srv->nlisteners = srv->conf->nlisteners;
	srv->listeners = xcalloc(srv->nlisteners, sizeof(struct listener));
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *l = &srv->listeners[i];
		l->srv = srv;
		l->lc = &srv->conf->listeners[i];
		l->index = i;
		l->ev = evconnlistener_new_bind(
			srv->base, accept_cb, l,
			LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC |
				LEV_OPT_DISABLED |
				(l->lc->ss.ss_family == AF_INET6 ? LEV_OPT_BIND_IPV6ONLY : 0),
			LISTEN_BACKLOG, (const struct sockaddr *)&l->lc->ss, (int)l->lc->sslen);
		if (l->ev == NULL) {
			snprintf(err, errsz, "listener %s: cannot listen on %s: %s", l->lc->name,
				 l->lc->address, strerror(errno));
			return false;
		}
		evconnlistener_set_error_cb(l->ev, accept_error_cb);
		listener_local_addr(l);
	}
	return true;
}

/* See server.h. */
void server_start(struct server *srv)
{
	for (size_t i = 0; i < srv->nlisteners; i++) {
		evconnlistener_enable(srv->listeners[i].ev);
		log_info("event=listening listener=%s address=%s", srv->listeners[i].lc->name,
			 srv->listeners[i].lc->address);
	}
}

/* See server.h. */
void server_stop(struct server *srv)
{
	struct smtp_session *s, *next;

	if (srv->stopping)
		return;
	srv->stopping = true;
	for (size_t i = 0; i < srv->nlisteners; i++) {
		evconnlistener_free(srv->listeners[i].ev);
		srv->listeners[i].ev = NULL;
	}
	log_info("event=stopping sessions=%zu commits_in_flight=%zu", srv->nsessions,
		 queue_inflight(srv->queue));
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		smtp_session_shutdown(s);
	}
	if (server_drained(srv))
		event_base_loopexit(srv->base, NULL);
}

/* See server.h. */
bool server_drained(struct server *srv)
{
	return srv->stopping && srv->nsessions == 0 && queue_inflight(srv->queue) == 0;
}

/* See server.h. */
void server_free(struct server *srv)
{
	for (size_t i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].ev)
			evconnlistener_free(srv->listeners[i].ev);
	free(srv->listeners);
	srv->listeners = NULL;
	srv->nlisteners = 0;
	client_table_free(srv->clients);
	srv->clients = NULL;
}

/* See server.h. */
struct client_table *server_clients(struct server *srv)
{
	if (srv->clients == NULL)
		srv->clients = client_table_new(srv->conf->limits.client_table_size);
	return srv->clients;
}
