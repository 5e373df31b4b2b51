/*
 * scheduler.h - takes committed messages out of the queue and delivers
 * them, recipient by recipient, with retries.
 *
 * Every recipient is pending (with its next attempt time), delivered or
 * failed; the queue records that durably (queue_update) after each
 * attempt.  A message leaves the queue (queue_remove) when no recipient is
 * pending.  Deliveries run on worker threads, within global and
 * per-destination concurrency limits; their results come back on the
 * event loop, where every scheduler_* function is called.
 *
 * It is given what it uses: the configuration (which it holds, conf_hold),
 * the event loop, and the queue, which it reaches only through queue.h.
 * Each delivery job holds the configuration it started under and finishes
 * under it, whatever scheduler_reload swaps in meanwhile.
 */
#ifndef HATO_SCHEDULER_H
#define HATO_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct envelope;
struct event_base;
struct queue;
struct scheduler;

/* A scheduler delivering what q holds, by c, on base (nothing is loaded or
 * started yet: scheduler_load). */
struct scheduler *scheduler_new(const struct conf *c, struct event_base *base, struct queue *q);
/* A reload: jobs from now on run under c (routes, limits, retries, hold);
 * those in flight finish under theirs.  Held, like the first one. */
void scheduler_reload(struct scheduler *sc, const struct conf *c);
/* Load every queued message (at start) and start what is due. */
void scheduler_load(struct scheduler *sc);
/* A message was just committed (env is what was written): deliver it now.
 * The envelope is copied; nothing is read back from the disk. */
void scheduler_add(struct scheduler *sc, const struct envelope *env);
/* Retry every pending recipient now. */
void scheduler_flush(struct scheduler *sc);
/* Remove a message from the queue (no bounce); false with err if unknown. */
bool scheduler_delete(struct scheduler *sc, const char *queue_id, char *err, size_t errsz);
/*
 * Per-message control (hato queue hold/release/retry/bounce), on the loop.
 * Each is false with a one-line reason in err: no such message, one being
 * delivered right now (try again), nothing left to deliver, or an envelope
 * that could not be written (then nothing changed).  Hold, release and
 * bounce write the envelope durably (queue_update, blocking the loop for
 * one fsync) before they return.
 *
 * hold: nothing of the message is delivered until it is released; reason
 * (one line) is kept with it, from any source (an administrator, later a
 * quarantine).  Holding a held message keeps its first reason.  release:
 * back on its retry schedule.  retry: its pending recipients are due now
 * (refused while held).  bounce: its pending recipients fail now with
 * 5.0.0 "returned to the sender by the mail administrator", and the sender
 * gets a delivery report as for any failure; *failed says how many.
 */
bool scheduler_hold(struct scheduler *sc, const char *queue_id, const char *reason, char *err,
		    size_t errsz);
bool scheduler_release(struct scheduler *sc, const char *queue_id, char *err, size_t errsz);
bool scheduler_retry(struct scheduler *sc, const char *queue_id, char *err, size_t errsz);
bool scheduler_bounce(struct scheduler *sc, const char *queue_id, size_t *failed, char *err,
		      size_t errsz);
/* Deliveries in flight. */
size_t scheduler_active(const struct scheduler *sc);
/* Stop starting deliveries; those in flight finish. */
void scheduler_stop(struct scheduler *sc);
void scheduler_free(struct scheduler *sc);

#endif
