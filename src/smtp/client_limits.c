/*
 * client_limits.c - sessions, connection, message and recipient limits per
 * client address.
 */
#include "client_limits.h"

#include <stddef.h>

#include "client_table.h"
#include "conf.h"

#define RATE_WINDOW 60 /* seconds: the limits are per minute */

/* See client_limits.h. */
enum status client_limits_connect(struct client_table *t, const struct limits *lim,
				  const struct sockaddr *sa, time_t now)
{
	struct client_entry *e = client_table_get(t, sa);
	unsigned n = client_rate_add(&e->conns, now, RATE_WINDOW);

	if (lim->client_connections_per_minute > 0 && n > lim->client_connections_per_minute)
		return STATUS_CLIENT_CONN_RATE;
	if (lim->client_sessions_max > 0 && e->sessions >= lim->client_sessions_max)
		return STATUS_CLIENT_SESSIONS;
	e->sessions++;
	return STATUS_OK;
}

/* See client_limits.h. */
void client_limits_disconnect(struct client_table *t, const struct sockaddr *sa)
{
	struct client_entry *e = client_table_find(t, sa);

	/* gone only when the table was full of busier clients: nothing to undo */
	if (e != NULL && e->sessions > 0)
		e->sessions--;
}

/* Count one event in rate r of sa's entry against limit (0: none). */
static bool rate_over(struct client_table *t, const struct sockaddr *sa, time_t now, unsigned limit,
		      size_t rate_offset)
{
	struct client_entry *e;

	if (limit == 0)
		return false;
	e = client_table_get(t, sa);
	return client_rate_add((struct client_rate *)((char *)e + rate_offset), now, RATE_WINDOW) >
	       limit;
}

/* See client_limits.h. */
enum status client_limits_message(struct client_table *t, const struct limits *lim,
				  const struct sockaddr *sa, time_t now)
{
	return rate_over(t, sa, now, lim->client_messages_per_minute,
			 offsetof(struct client_entry, msgs))
		       ? STATUS_CLIENT_MSG_RATE
		       : STATUS_OK;
}

/* See client_limits.h. */
enum status client_limits_recipient(struct client_table *t, const struct limits *lim,
				    const struct sockaddr *sa, time_t now)
{
	return rate_over(t, sa, now, lim->client_recipients_per_minute,
			 offsetof(struct client_entry, rcpts))
		       ? STATUS_CLIENT_RCPT_RATE
		       : STATUS_OK;
}
