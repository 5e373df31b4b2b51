/*
 * queue_view.h - what `hato queue` prints: the listing (one line per
 * message and one per recipient), one message's timeline (`hato queue
 * show ID`: its envelope, and per recipient its state, its recorded
 * attempts and its next attempt), and what recovery set aside (`hato queue
 * corrupt`).
 *
 * Pure formatting onto a FILE, given the time it calls "now", so the unit
 * tests can compare the text.  Text that came from the network (addresses,
 * replies, hold reasons) is printed with control characters as \xNN, so no
 * envelope can move the terminal's cursor.  Times are local, as
 * "2025-11-28 12:34:56 +0100", with the age or the wait beside them.
 */
#ifndef HATO_QUEUE_VIEW_H
#define HATO_QUEUE_VIEW_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "envelope.h"
#include "queue.h"

/* Print s for a terminal: control characters as \xNN, the rest as it is. */
void queue_view_text(FILE *f, const char *s);

/* "3d4h", "12m", "40s": an age (or a wait) for people, into buf. */
void queue_view_age(time_t secs, char *buf, size_t size);

/* The listing's two header lines. */
void queue_view_list_header(FILE *f);
/* One message of the listing: its line (ID, age, size, sender, and
 * "HELD" with its reason when held), then one line per recipient (state,
 * attempts, next attempt, address), with the original address and the
 * last error below it. */
void queue_view_list_message(FILE *f, const struct envelope *e, uint64_t msg_size, time_t now);

/* hato queue show: the whole envelope and each recipient's timeline. */
void queue_view_show(FILE *f, const struct envelope *e, uint64_t msg_size, time_t now);

/* hato queue corrupt: one message recovery set aside. */
void queue_view_aside(FILE *f, const struct queue_aside *a, time_t now);

#endif
