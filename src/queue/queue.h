/*
 * queue.h - the durable spool, and its only owner: nothing outside
 * src/queue/ names a file under it.
 *
 * Layout under the state directory (mode 0700):
 *   incoming/ID.msg   a message larger than QFILE_BUFSIZE, streamed while
 *                     it arrives; envelope and trailer added at commit
 *   incoming/ID.old   its first version while intake writes it again
 *                     (queue_file_restart)
 *   queue/ID.msg      committed message: our Received: header + the
 *                     message, then its envelope and a trailer
 *                     (queue_msg.h)
 *   queue/ID.env      the envelope once a delivery attempt changed it
 *                     (envelope.h); it stands for the one in ID.msg
 *   shutdown.clean    left by an orderly exit, taken at start
 *
 * The API, by who calls it:
 *   commit   (intake, for SMTP sessions and pickup; event loop)
 *            queue_file_open/_write, then queue_commit() hands a finished
 *            message to the commit threads.  A small one is written straight into queue/ with a
 *            checksummed trailer, and the file and queue/ are fsynced
 *            together; a streamed one gets its envelope and trailer, is
 *            fsynced, renamed into queue/, and queue/ fsynced once for the
 *            batch (group commit).  Then the callback runs on the event
 *            loop; only then may the server say "250 queued".  A failed
 *            commit removes the file and reports errno.
 *   inject   (intake, for delivery reports; any thread, blocking)
 *            queue_inject() writes a whole message held in memory, with
 *            its envelope, as one queue file (durable_writev_file) before
 *            it returns.
 *   update   (the scheduler; any thread, blocking) queue_update() writes
 *            ID.env durably: it stands for the envelope in ID.msg.
 *   remove   (the scheduler; any thread, blocking) queue_remove().
 *   read     (delivery; any thread) queue_read() opens a message for
 *            reading: an fd and the message's length.
 *   list     queue_scan() reads every envelope (at start), and
 *            queue_scan_dir() the same of a spool nobody opened (hato
 *            queue works without hatod); queue_envelope_dir() reads one
 *            message's, queue_aside_dir() lists what recovery set aside
 *            (hato queue show, hato queue aside).
 *
 * On open, incoming/ is emptied (nothing there was ever acknowledged) and
 * queue/ is recovered: without shutdown.clean every checksum is checked,
 * and a message file without a valid trailer or checksum (a commit cut
 * short) is removed, an ID.env without its ID.msg (an interrupted removal)
 * too; everything else is accounted for.
 *
 * IDs given to update, remove and read must be well-formed (queue_id_valid):
 * anything else fails with EINVAL, so no ID can name another file.
 */
#ifndef HATO_QUEUE_H
#define HATO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

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
	bool former;   /* queue_file_restart's old octets: incoming/ID.old */
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
/* The event loop commits call back on (NULL for a queue opened without). */
struct event_base *queue_base(struct queue *q);

/* Is there room for need more octets beyond the configured reserve?  On the
 * event loop only: with plenty of room the figure is read once a second. */
bool queue_has_space(struct queue *q, uint64_t need, uint64_t reserve);

bool queue_file_open(struct queue *q, struct qfile *f);
bool queue_file_write(struct qfile *f, const void *p, size_t n);
void queue_file_abort(struct qfile *f);
/* Read n octets of what f holds so far from offset off (written octets
 * only): the count read (short at the end), -1 with errno.  Blocking. */
ssize_t queue_file_read(const struct qfile *f, void *buf, size_t n, uint64_t off);
/* Start f's message again, empty, under the same ID (intake rewrites a
 * message its stages edited): the octets written so far move to old, which
 * stays readable (queue_file_read) until queue_file_abort(old).  false with
 * errno (f unchanged). */
bool queue_file_restart(struct qfile *f, struct qfile *old);
/* Takes over f (closed on return); cb runs later on the loop. */
void queue_commit(struct qfile *f, const struct envelope *e, queue_commit_cb cb, void *arg);

/* A new queue ID: time-sortable, unique within this host, file-name safe
 * (QUEUE_ID_LEN upper-case hex digits).  Thread-safe. */
void queue_id_new(char id[QUEUE_ID_LEN + 1]);

/* Commit the message msg[0..len) (CRLF lines, our Received: first) with
 * envelope e as a new queued message, under a new ID written into e->id,
 * durably before returning (queue/ID.msg via ID.msg.tmp).  false with
 * errno when it could not be written: then nothing of it is queued, now or
 * after a restart.  Blocking; any thread. */
bool queue_inject(struct queue *q, struct envelope *e, const void *msg, size_t len);

/* Write e as message e->id's envelope (queue/ID.env, via ID.env.tmp),
 * durably; false with errno (the envelope before stands).  Blocking. */
bool queue_update(struct queue *q, const struct envelope *e);

/* Remove message id: ID.msg first (from then on it is gone), then its
 * ID.env, then queue/ is fsynced.  false with errno: ENOENT when there is
 * no such message (a stray ID.env is removed all the same), else ID.msg
 * stays.  Blocking. */
bool queue_remove(struct queue *q, const char *id);

/* Open message id for reading: returns an fd whose first *len octets are
 * the message (the envelope and the trailer follow, which are the queue's);
 * -1 with errno: ENOENT, EBADMSG (a damaged file: no valid trailer), or a
 * read error.  The caller closes it. */
int queue_read(struct queue *q, const char *id, uint64_t *len);

/* One committed message, as queue_scan reports it. */
typedef void (*queue_scan_fn)(const struct envelope *e, uint64_t msg_size, void *arg);

/* Read every message's envelope (ID.env, else the one in ID.msg), sorted
 * by ID, with the message's size; false with err (and errno) if the
 * directory cannot be read.  Unreadable files are logged by name. */
bool queue_scan(struct queue *q, queue_scan_fn fn, void *arg, char *err, size_t errsz);

/* The directory of committed messages in state_dir, for what a person
 * reads ("STATE/queue"; a new allocation).  Nothing outside src/queue/
 * opens a file there. */
char *queue_dir_name(const char *state_dir);

/* queue_scan of the spool in state_dir without opening it: no recovery,
 * no commit threads, nothing written (for hato queue). */
bool queue_scan_dir(const char *state_dir, queue_scan_fn fn, void *arg, char *err, size_t errsz);

/* Read message id's envelope (ID.env, else the one in ID.msg) and the
 * message's size from the spool in state_dir, without opening it (nothing
 * written); false with err and errno: EINVAL a malformed ID, ENOTDIR no
 * spool there (no queue/), ENOENT no such message, EBADMSG a file without a valid trailer or an
 * envelope that does not parse, or a read error.  e is the caller's to free on success. */
bool queue_envelope_dir(const char *state_dir, const char *id, struct envelope *e,
			uint64_t *msg_size, char *err, size_t errsz);

/* A message recovery set aside as damaged (ID.msg.corrupt, with its
 * ID.env.corrupt), as queue_aside_dir reports it. */
struct queue_aside {
	char id[QUEUE_ID_LEN + 1];
	const char *msg_path;     /* ID.msg.corrupt, or NULL when it is not there */
	const char *env_path;     /* ID.env.corrupt, or NULL */
	uint64_t msg_size;        /* ID.msg.corrupt's octets */
	time_t when;              /* when it was set aside (the newest change time) */
	const struct envelope *e; /* ID.env.corrupt as read, or NULL: none or unreadable */
};
typedef void (*queue_aside_fn)(const struct queue_aside *a, void *arg);

/* Every message set aside in the spool in state_dir, sorted by ID; false
 * with err (and errno) if the directory cannot be read.  Nothing written. */
bool queue_aside_dir(const char *state_dir, queue_aside_fn fn, void *arg, char *err, size_t errsz);

#endif
