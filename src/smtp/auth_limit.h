/*
 * auth_limit.h - the per-client-address budget of failed AUTH attempts.
 *
 * Each failure counts against the client's entry in the client table
 * (client_table.h) within a window (auth_client_window); at
 * auth_client_failures the address is locked out of AUTH for
 * auth_client_lockout seconds (454 4.7.0), across sessions.  The table's
 * size is bounded, so memory stays bounded whatever an attacker does.
 */
#ifndef HATO_AUTH_LIMIT_H
#define HATO_AUTH_LIMIT_H

#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

struct limits;
struct client_table;

/* Is this address locked out of AUTH right now? */
bool auth_limit_locked(struct client_table *t, const struct sockaddr *sa, time_t now);

/* Count one failure; true when this failure starts a lockout. */
bool auth_limit_fail(struct client_table *t, const struct limits *lim, const struct sockaddr *sa,
		     time_t now);

#endif
