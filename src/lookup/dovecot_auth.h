/*
 * dovecot_auth.h - check a user name and password with Dovecot's auth
 * server over its auth-client socket ([auth] backend = dovecot), on the
 * event loop.
 *
 * Each check is one connection to dovecot_socket: the handshake
 * (VERSION/MECH/.../DONE both ways), one PLAIN request carrying the
 * client's address, and Dovecot's OK or FAIL (dovecot_proto.h).  Nothing
 * blocks: the connection is a bufferevent, and the whole exchange has one
 * deadline (dovecot_timeout).  Dovecot's own failure delay and penalty
 * apply before its answer; hato's (auth_delay_ms, lockouts) after it.
 *
 * Results: DOVECOT_AUTH_OK (with Dovecot's name for the user),
 * DOVECOT_AUTH_FAILED (wrong password or unknown user - Dovecot answers
 * both alike), DOVECOT_AUTH_TEMPFAIL (socket missing or refused, timeout,
 * a FAIL marked temp, a protocol error, no PLAIN offered) with a reason
 * for the log.  done runs exactly once, always later on the loop, never
 * inside dovecot_auth_check.  The password is wiped from every buffer
 * hato owns once it has been sent.
 */
#ifndef HATO_DOVECOT_AUTH_H
#define HATO_DOVECOT_AUTH_H

#include "dovecot_proto.h"

struct event_base;

enum dovecot_auth_result {
	DOVECOT_AUTH_OK,
	DOVECOT_AUTH_FAILED,
	DOVECOT_AUTH_TEMPFAIL,
};

/* user: Dovecot's name for the user (OK), else NULL; reason: why, for
 * the log (TEMPFAIL), else NULL.  Both live only during the call. */
typedef void (*dovecot_auth_done_fn)(void *arg, enum dovecot_auth_result r, const char *user,
				     const char *reason);

/* Start a check of q (copied: the caller may wipe its password at once)
 * against the socket at path, answered within timeout seconds. */
void dovecot_auth_check(struct event_base *base, const char *path, unsigned timeout,
			const struct dovecot_query *q, dovecot_auth_done_fn done, void *arg);

#endif
