/*
 * control.h - hatod's control socket: how `hato queue flush`, `hato
 * queue delete ID` and the other per-message commands (hold, release,
 * retry, bounce) reach the running daemon.
 *
 * A unix stream socket at [server] control_socket (default
 * state_dir/control.sock), mode control_socket_mode (0600 or 0660), owned
 * by whoever calls control_open: hatod calls it after dropping privileges,
 * so the socket belongs to the daemon user and its group.  A stale socket
 * file left by a hatod that died is replaced; a live one (something accepts
 * connections on it) or a file that is not a socket is an error.
 *
 * This is the server side; control_client.h is the client's.
 *
 * Protocol: one request line per connection (LF or CRLF, at most
 * CONTROL_LINE_MAX octets before the line end), one reply line, then the
 * server closes the connection.
 *
 *   PING             OK hatod VERSION
 *   FLUSH            OK flushed                    (scheduler_flush)
 *   DELETE ID        OK deleted ID | ERR REASON    (scheduler_delete)
 *   HOLD ID [REASON] OK held ID | ERR REASON       (scheduler_hold)
 *   RELEASE ID       OK released ID | ERR REASON   (scheduler_release)
 *   RETRY ID         OK retrying ID | ERR REASON   (scheduler_retry)
 *   BOUNCE ID        OK bounced ID: N recipient(s) returned to the sender
 *                    | ERR REASON                  (scheduler_bounce)
 *   other            ERR unknown request
 *
 * HOLD's REASON is the rest of the line (printable text; control
 * characters become spaces); without one it is CONTROL_HOLD_REASON.
 *
 * A line that is too long gets "ERR request too long"; a client that sends
 * nothing for CONTROL_TIMEOUT_SECONDS is dropped.  Everything runs on the
 * event loop and never blocks it; every request is logged as
 * "event=control uid=... request=... result=...".
 */
#ifndef HATO_CONTROL_H
#define HATO_CONTROL_H

#include <stddef.h>

#include "envelope.h"

#define CONTROL_LINE_MAX 256       /* octets of a request, its line end not counted */
#define CONTROL_REPLY_MAX 1024     /* octets of a reply, its LF included */
#define CONTROL_TIMEOUT_SECONDS 5  /* to send a request / read a reply (both ends) */
#define CONTROL_CONNECTIONS_MAX 16 /* at once; more get "ERR busy" */
#define CONTROL_HOLD_REASON "held by the administrator" /* HOLD without a reason */

struct conf;
struct control;
struct event_base;
struct scheduler;

enum control_req {
	CONTROL_REQ_UNKNOWN, /* anything else: "ERR unknown request" */
	CONTROL_REQ_PING,
	CONTROL_REQ_FLUSH,
	CONTROL_REQ_DELETE, /* id_out holds a valid queue ID (so for the ones below) */
	CONTROL_REQ_HOLD,   /* *text_out: the reason, "" when none was given */
	CONTROL_REQ_RELEASE,
	CONTROL_REQ_RETRY,
	CONTROL_REQ_BOUNCE,
	CONTROL_REQ_BAD_ID, /* a verb taking an ID without one well-formed queue ID */
};

/* Create the socket (after the privilege drop) and serve it on base; NULL
 * with a message in err when it cannot be created. */
struct control *control_open(struct event_base *base, const struct conf *c, struct scheduler *sc,
			     char *err, size_t errsz);
/* Close every connection and the socket, and unlink the socket file if it
 * is still the one control_open made.  NULL is allowed. */
void control_close(struct control *ctl);

/* Parse one request line (its line end removed).  Verbs are
 * case-insensitive, separated from the ID by one space (and HOLD's ID from
 * its reason by one more).  id_out must hold QUEUE_ID_LEN + 1 octets; it is
 * set only for the verbs that take an ID; *text_out (text_out may be NULL)
 * only for CONTROL_REQ_HOLD, pointing into line. */
enum control_req control_parse(const char *line, char *id_out, const char **text_out);

#endif
