/*
 * smtp_session.h - one SMTP server session (RFC 5321) on an accepted
 * connection.  The session owns its socket; it frees itself when the
 * connection ends and tells the server through the session list.
 */
#ifndef HATO_SMTP_SESSION_H
#define HATO_SMTP_SESSION_H

#include <sys/socket.h>

#include <event2/util.h>

struct listener;

/* Take over an accepted socket and greet the client. */
void smtp_session_new(struct listener *l, evutil_socket_t fd, const struct sockaddr *sa,
		      socklen_t salen);

/* Server shutdown: 421 and close, or close after the commit in flight. */
void smtp_session_shutdown(struct smtp_session *s);

#endif
