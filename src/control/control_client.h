/*
 * control_client.h - the client side of hatod's control socket (control.h
 * describes the protocol): how `hato queue flush` and `hato queue delete`
 * talk to the running daemon.
 *
 * control_request() connects, sends one request line and reads the one-line
 * reply until hatod closes the connection, all blocking but bounded by one
 * deadline.  It never prints: the caller says what a failure means to its
 * user.  A reply is checked before it is handed back: one line, LF-ended,
 * at most size - 2 octets with its LF, without control characters (it may
 * be printed on a terminal as it is).
 */
#ifndef HATO_CONTROL_CLIENT_H
#define HATO_CONTROL_CLIENT_H

#include <stddef.h>

enum control_reply {
	CONTROL_REPLY_OK,    /* "OK" or "OK text" */
	CONTROL_REPLY_ERR,   /* "ERR reason" */
	CONTROL_REPLY_OTHER, /* anything else: not hatod, or a newer one */
};

/*
 * Send request (one line, no line end) to the control socket at path and
 * read the reply into reply (its LF removed), within timeout_ms for all of
 * it.  0, or an errno: ENOENT or ECONNREFUSED nobody listens there,
 * ENAMETOOLONG the path does not fit a unix socket address, EACCES or
 * EPERM no permission, ETIMEDOUT no reply in time, EPROTO a reply that is
 * missing, too long, not one line or not printable, EMSGSIZE a request over
 * CONTROL_LINE_MAX, EPIPE or ECONNRESET hatod closed first, or another.
 */
int control_request(const char *path, const char *request, unsigned timeout_ms, char *reply,
		    size_t size);

/* What kind of reply this is; *text: what follows "OK " or "ERR " ("" for
 * a bare "OK"), or the whole reply for CONTROL_REPLY_OTHER. */
enum control_reply control_reply_kind(const char *reply, const char **text);

#endif
