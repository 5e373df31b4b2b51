/*
 * auth_limit.c - failed-AUTH counters per client address, kept in the
 * client table.
 */
#include "auth_limit.h"

#include "client_table.h"
#include "conf.h"

/* See auth_limit.h. */
bool auth_limit_locked(struct client_table *t, const struct sockaddr *sa, time_t now)
{
	const struct client_entry *e = client_table_find(t, sa);

	return e && e->auth_locked_until > now;
}

/* See auth_limit.h. */
bool auth_limit_fail(struct client_table *t, const struct limits *lim, const struct sockaddr *sa,
		     time_t now)
{
	struct client_entry *e = client_table_get(t, sa);

	if (client_rate_add(&e->auth, now, lim->auth_client_window) >= lim->auth_client_failures &&
	    e->auth_locked_until <= now) {
		e->auth_locked_until = now + (time_t)lim->auth_client_lockout;
		e->auth.count = 0;
		return true;
	}
	return false;
}
