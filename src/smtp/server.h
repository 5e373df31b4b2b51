/*
 * server.h - the state shared by every listener and session of hatod: the
 * configuration, the queue, the event base, and the session registry used
 * for limits and shutdown.
 */
#ifndef HATO_SERVER_H
#define HATO_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct queue;
struct userdb;
struct workers;
struct scheduler;
struct aliases;
struct sqlmap;
struct control;
struct pickup;
struct event_base;
struct evconnlistener;
struct listener_conf;
struct smtp_session;
struct client_table;
struct greylist;

struct listener {
	struct server *srv;
	const struct listener_conf *lc;
	size_t index; /* in the configuration: the listener label of metrics */
	struct evconnlistener *ev;
	/* bound to one address: its text, the local address of every session;
	 * "" for a wildcard (each session asks its socket) */
	char local_addr[46];
};

struct server {
	struct conf *conf; /* the running configuration (server_reload swaps it) */
	struct queue *queue;
	struct userdb *users;    /* AUTH users (users_file) */
	struct workers *workers; /* password checks */
	struct scheduler *scheduler;
	struct control *control; /* the admin socket (NULL once stopping) */
	struct pickup *pickup;   /* the maildrop directory */
	struct aliases *aliases; /* aliases_file, or NULL */
	struct sqlmap *sqlmap;   /* the [sql] lookup tables, or NULL */
	struct event_base *base;
	struct listener *listeners;
	size_t nlisteners;
	struct smtp_session *sessions; /* doubly linked list */
	size_t nsessions;
	struct client_table *clients; /* per client address: limits, greeting, DNSBL */
	struct greylist *greylist;    /* [greylist], or NULL when off */
	bool stopping;
};

/* Bind every configured listener (before privileges are dropped). */
bool server_bind(struct server *srv, char *err, size_t errsz);
/* Start accepting on the bound listeners. */
void server_start(struct server *srv);
/* Stop accepting, say 421 to idle sessions, let commits in flight finish. */
void server_stop(struct server *srv);
/* Release the listeners (after the loop has ended). */
void server_free(struct server *srv);
/* The per-client table (client_table.h), made on first use. */
struct client_table *server_clients(struct server *srv);
/*
 * SIGHUP (server_reload.c): read the configuration file again and swap the
 * new configuration in whole - limits, domains, mailboxes, aliases, users,
 * TLS, routes - or, when any of it does not load, log why and keep the
 * running one.  Sessions and delivery jobs finish under the configuration
 * they started with.  Keys that need a restart keep their running values
 * and are named in the log.  True when the new configuration runs.
 */
bool server_reload(struct server *srv);
/* True once stopping and no session or commit remains. */
bool server_drained(struct server *srv);

#endif
