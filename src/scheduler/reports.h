/*
 * reports.h - the delivery status notifications a message owes its sender
 * (RFC 3461, RFC 3464), decided per recipient and queued as new messages.
 *
 * After each attempt report_mark() notes what the recipient owes, in the
 * envelope (rcpt ... report=...), so the debt survives a crash:
 *
 *   failed     NOTIFY not given, or it has FAILURE
 *   delivered  NOTIFY has SUCCESS (local delivery, or a next hop that
 *   relayed    takes no DSN: "relayed"; a next hop offering DSN was given
 *              NOTIFY and reports for itself)
 *   delayed    still retried after [remote] delay_warning in the queue,
 *              NOTIFY not given or has DELAY; once per message
 *
 * NOTIFY=NEVER owes nothing.  report_queue() then builds ONE report for
 * every recipient that owes one (dsn_report.c) and hands it to the queue
 * through intake (intake_inject: our Received:, the local origin, then
 * queue_inject: one queue file, message and envelope, written durably);
 * only after that are the marks cleared, and the caller writes the
 * envelope without them.  A crash in between sends the report twice,
 * never zero times.
 *
 * A message with the null sender gets no report.  When hato's own report
 * cannot be delivered, the local postmaster gets one report about it,
 * itself a report: if that fails too, it is logged and dropped.
 */
#ifndef HATO_REPORTS_H
#define HATO_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "envelope.h"

struct queue;

/* Note the report recipient r owes after an attempt (r->state already
 * updated); remote: it went over SMTP, dsn_passed: to a next hop offering
 * DSN, which was given the recipient's NOTIFY. */
void report_mark(const struct conf *c, struct envelope *env, struct env_rcpt *r, bool remote,
		 bool dsn_passed);

/* Does any recipient owe a report? */
bool report_owed(const struct envelope *env);

/*
 * Queue one report for every recipient of env that owes one into q, built
 * from the queued message, the first msg_len octets of msg_fd (-1: it
 * cannot be read, the report goes without it); clear the marks.  true with
 * *out the new message's envelope (out->id empty when none was needed);
 * false when it could not be written (marks kept, try later).  Blocking.
 */
bool report_queue(const struct conf *c, struct queue *q, struct envelope *env, int msg_fd,
		  uint64_t msg_len, struct envelope *out);

#endif
