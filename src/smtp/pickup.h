/*
 * pickup.h - takes the drop files that `hato send` (sendmail mode) leaves
 * in maildrop_dir into the queue (maildrop.h has the format).
 *
 * Files are picked up at start, as soon as they appear (inotify), and every
 * minute in case a notification was missed.  Each is read, its recipients
 * resolved like RCPT TO (aliases expand; an unknown local recipient fails
 * at once and is logged), and the message committed like one received over
 * SMTP; only after the commit is the drop file removed.  A crash between
 * the two commits it once more: at most one duplicate, never a loss.  A
 * drop file that does not parse is renamed to ".bad-NAME" and logged.
 */
#ifndef HATO_PICKUP_H
#define HATO_PICKUP_H

struct server;
struct pickup;

struct pickup *pickup_open(struct server *srv);
/* Look at the directory now. */
void pickup_scan(struct pickup *p);
/* Stop looking (shutdown); commits in flight still finish. */
void pickup_stop(struct pickup *p);
/* After the queue has no commit in flight. */
void pickup_close(struct pickup *p);

#endif
