/*
 * scheduler.h - takes committed messages out of the queue and delivers
 * them, recipient by recipient, with retries.
 *
 * Every recipient is pending (with its next attempt time), delivered or
 * failed; the envelope file records that durably (durable_write_file)
 * after each attempt.  A message leaves the queue when no recipient is
 * pending.  Deliveries run on worker threads (Maildir) or on the loop
 * (LMTP), within global and per-destination concurrency limits.
 */
#ifndef HATO_SCHEDULER_H
#define HATO_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct scheduler;
struct envelope;

struct scheduler *scheduler_new(struct server *srv);
/* Load everything in queue/ (at start). */
void scheduler_load(struct scheduler *sc);
/* A message was just committed (env is what was written): deliver it now.
 * The envelope is copied; nothing is read back from the disk. */
void scheduler_add(struct scheduler *sc, const struct envelope *env);
/* Retry every pending recipient now. */
void scheduler_flush(struct scheduler *sc);
/* Remove a message from the queue (no bounce); false with err if unknown. */
bool scheduler_delete(struct scheduler *sc, const char *queue_id, char *err, size_t errsz);
/* Deliveries in flight. */
size_t scheduler_active(const struct scheduler *sc);
/* Stop starting deliveries; those in flight finish. */
void scheduler_stop(struct scheduler *sc);
void scheduler_free(struct scheduler *sc);

#endif
