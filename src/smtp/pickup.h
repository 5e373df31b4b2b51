/*
 * pickup.h - takes the drop files that `hato send` (sendmail mode) leaves
 * in maildrop_dir into the queue (maildrop.h has the format).
 *
 * Files are picked up at start, as soon as they appear (inotify), and every
 * minute in case a notification was missed.  Each is read, its recipients
 * resolved like RCPT TO (aliases expand; an unknown local recipient fails
 * at once and is logged), and the message goes through intake (intake.h)
 * like one received over SMTP: our Received: header, the loop count, the
 * size limit and the free-space reserve.  Only after the commit is the
 * drop file removed.  A crash between the two commits it once more: at
 * most one duplicate, never a loss.
 *
 * What cannot be taken is never lost: a drop file that does not parse, a
 * mail loop (more than received_max Received: headers) or a message over
 * message_size_max is renamed to ".bad-NAME" and logged
 * (event=pickup_refused), for the administrator to look at; nobody is
 * notified.  When the spool is short of min_free_space (or a write fails)
 * the file stays in the directory, event=disk_full or pickup_deferred is
 * logged, and the next scan (a new file, the minute's timer, the next
 * start) tries again.
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
