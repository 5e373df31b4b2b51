/*
 * queue.h - the durable spool.
 *
 * Layout under the state directory (mode 0700):
 *   incoming/ID.msg   a message larger than QFILE_BUFSIZE, streamed while
 *                     it arrives; envelope and trailer added at commit
 *   queue/ID.msg      committed message: our Received: header + the
 *                     message, then its envelope and a trailer
 *                     (queue_msg.h)
 *   queue/ID.env      the envelope once a delivery attempt changed it
 *                     (envelope.h); it stands for the one in ID.msg
 *   shutdown.clean    left by an orderly exit, taken at start
 *
 * queue_commit() hands a finished message to the commit threads.  A small
 * one is written straight into queue/ with a checksummed trailer, and the
 * file and queue/ are fsynced together; a streamed one gets its envelope
 * and trailer, is fsynced, renamed into queue/, and queue/ fsynced once for
 * the batch (group commit).  Then the callback runs on the event loop;
 * only then may the server say "250 queued".  A failed commit removes the
 * file and reports errno.
 *
 * On open, incoming/ is emptied (nothing there was ever acknowledged) and
 * queue/ is recovered: without shutdown.clean every checksum is checked,
 * and a message file without a valid trailer or checksum (a commit cut
 * short) is removed, an ID.env without its ID.msg (an interrupted removal)
 * too; everything else is accounted for.
 */
#ifndef HATO_QUEUE_H
#define HATO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

struct event_base;
struct queue;

/* Messages up to this size stay in memory until their end and are written
 * by a commit thread straight into queue/; larger ones stream to incoming/. */
#define QFILE_BUFSIZE 65536

/* A message file being written in incoming/. */
struct qfile {
	struct queue *q;
	char id[QUEUE_ID_LEN + 1];
	int fd;
	char *buf; /* write buffer of QFILE_BUFSIZE, NULL when closed */
	size_t buflen;
	uint64_t size; /* octets written so far */
};

/* Called on the event loop when a commit finished: err 0 or an errno. */
typedef void (*queue_commit_cb)(void *arg, int err);

struct queue *queue_open(const char *state_dir, unsigned threads, bool use_syncfs,
			 struct event_base *base, char *err, size_t errsz);
/* Finish every commit in flight, then free the queue. */
void queue_close(struct queue *q);
size_t queue_count(const struct queue *q);
/* Commits handed over and not yet called back. */
size_t queue_inflight(struct queue *q);

/* Is there room for need more octets beyond the configured reserve?  On the
 * event loop only: with plenty of room the figure is read once a second. */
bool queue_has_space(struct queue *q, uint64_t need, uint64_t reserve);

bool queue_file_open(struct queue *q, struct qfile *f);
bool queue_file_write(struct qfile *f, const void *p, size_t n);
void queue_file_abort(struct qfile *f);
/* Takes over f (closed on return); cb runs later on the loop. */
void queue_commit(struct qfile *f, const struct envelope *e, queue_commit_cb cb, void *arg);

/* One committed message, as queue_scan reports it. */
typedef void (*queue_scan_fn)(const struct envelope *e, uint64_t msg_size, void *arg);

/* Read every message's envelope in STATE/queue (ID.env, else the one in
 * ID.msg), sorted by ID, with the message's size; false with err if the
 * directory cannot be read.  Unreadable files are reported by name. */
bool queue_scan(const char *state_dir, queue_scan_fn fn, void *arg, char *err, size_t errsz);

#endif
