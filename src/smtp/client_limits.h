/*
 * client_limits.h - the limits per client address, counted in the client
 * table (client_table.h): sessions open at once, connections, messages
 * and recipients per minute.  A limit of 0 is no limit.
 *
 * Each check returns STATUS_OK or the status that refuses (421 4.7.0 for
 * the session and connection limits, 451 4.7.1 for messages, 452 4.5.3
 * for recipients); the caller replies and logs.  Refused connections
 * count towards the connection rate too, so a client that keeps knocking
 * stays refused.  Windows are one minute from their first event.
 */
#ifndef HATO_CLIENT_LIMITS_H
#define HATO_CLIENT_LIMITS_H

#include <sys/socket.h>
#include <time.h>

#include "status.h"

struct client_table;
struct limits;

/* A connection from sa: counted; when allowed, one more session is open. */
enum status client_limits_connect(struct client_table *t, const struct limits *lim,
				  const struct sockaddr *sa, time_t now);

/* A session that client_limits_connect allowed has ended. */
void client_limits_disconnect(struct client_table *t, const struct sockaddr *sa);

/* One MAIL command, one RCPT command from sa. */
enum status client_limits_message(struct client_table *t, const struct limits *lim,
				  const struct sockaddr *sa, time_t now);
enum status client_limits_recipient(struct client_table *t, const struct limits *lim,
				    const struct sockaddr *sa, time_t now);

#endif
