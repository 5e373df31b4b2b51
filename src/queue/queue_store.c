/*
 * queue_store.c - the committed messages by ID: inject a whole message,
 * update its envelope, remove it, open it for reading.  Each call is
 * blocking and thread-safe (it touches nothing of struct queue but its
 * fixed paths), so the scheduler's delivery threads call them directly.
 * Every write goes through durable_writev_file: temp file, fsync, rename,
 * fsync queue/.  See queue.h for the layout.
 */
#include "queue_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "durable.h"
#include "log.h"
#include "queue_msg.h"

/* "ID.ext" into name (QUEUE_ID_LEN + 8 octets); false with EINVAL for an
 * ID that is not one (it could name another file). */
static bool id_name(char *name, size_t size, const char *id, const char *ext)
{
	if (id == NULL || !queue_id_valid(id)) {
		errno = EINVAL;
		return false;
	}
	snprintf(name, size, "%s.%s", id, ext);
	return true;
}

/* See queue.h. */
bool queue_inject(struct queue *q, struct envelope *e, const void *msg, size_t len)
{
	char name[QUEUE_ID_LEN + 8], path[4200];
	struct strbuf tail;
	struct iovec iov[2];
	bool ok;
	int err;

	queue_id_new(e->id);
	snprintf(name, sizeof(name), "%s.msg", e->id);
	strbuf_init(&tail);
	envelope_format(e, &tail);
	/* no checksum: the rename commits it, and it was whole before that */
	queue_msg_seal(&tail, 0, len, NULL);
	iov[0] = (struct iovec){(void *)msg, len};
	iov[1] = (struct iovec){tail.s, tail.len};
	ok = durable_writev_file(q->queue_dir, name, iov, 2);
	err = errno;
	strbuf_free(&tail);
	if (ok)
		return true;
	/* maybe renamed, with queue/ not fsynced: not committed, so not to be
	 * found at the next start beside the message made again */
	snprintf(path, sizeof(path), "%s/%s", q->queue_dir, name);
	unlink(path);
	errno = err;
	return false;
}

/* See queue.h. */
bool queue_update(struct queue *q, const struct envelope *e)
{
	char name[QUEUE_ID_LEN + 8];
	struct strbuf b;
	bool ok;
	int err;

	if (!id_name(name, sizeof(name), e->id, "env"))
		return false;
	strbuf_init(&b);
	envelope_format(e, &b);
	ok = durable_write_file(q->queue_dir, name, b.s, b.len);
	err = errno;
	strbuf_free(&b);
	errno = err;
	return ok;
}

/* See queue.h. */
bool queue_remove(struct queue *q, const char *id)
{
	char name[QUEUE_ID_LEN + 8];
	int rc;
	bool gone;

	if (!id_name(name, sizeof(name), id, "msg"))
		return false;
	/* the message file goes first: without it nothing is queued any more */
	rc = unlinkat(q->queue_dirfd, name, 0);
	if (rc != 0 && errno != ENOENT)
		return false;
	gone = rc != 0;
	id_name(name, sizeof(name), id, "env");
	unlinkat(q->queue_dirfd, name, 0); /* left over: removed at the next start */
	if (!fsync_dir(q->queue_dir))
		log_warn("event=queue_remove queue_id=%s dir=%s error=fsync", id, q->queue_dir);
	if (gone) {
		errno = ENOENT;
		return false;
	}
	return true;
}

/* See queue.h. */
int queue_read(struct queue *q, const char *id, uint64_t *len)
{
	char name[QUEUE_ID_LEN + 8], path[4200];

	if (!id_name(name, sizeof(name), id, "msg"))
		return -1;
	snprintf(path, sizeof(path), "%s/%s", q->queue_dir, name);
	return queue_msg_open(path, len);
}
