/*
 * queue_commit.c - group commit on worker threads.
 *
 * Each commit thread takes every job waiting (up to COMMIT_BATCH_MAX) and
 * completes each job's one file (message, envelope, trailer: queue_msg.h).
 * A small message, held in memory, is written straight into queue/ with a
 * checksum in its trailer; its file and queue/ are fsynced together, and
 * the checksum tells a file a crash cut short from a whole one (recovery,
 * queue_fs.c).  A large one, streamed into incoming/ while it arrived, is
 * fsynced and then renamed into queue/ (the rename is its commit point),
 * and queue/ fsynced once for the batch's renames.  With commit_sync =
 * syncfs one syncfs() replaces the batch's fsyncs.  Several threads let the
 * file system merge their syncs.  Finished jobs go back to the event loop
 * through an eventfd; callbacks run there.
 *
 * The fsyncs of a batch run all at once (fsync_all): Linux AIO's
 * IOCB_CMD_FSYNC gives each to a kernel worker, so the device sees them
 * together and merges their cache flushes, where fsync() one file after
 * the other waits for a flush per file and a batch took as long as its
 * files times one flush.  Where AIO cannot do it (io_setup refused, as by
 * a seccomp filter or fs.aio-max-nr; a kernel before 4.18 refusing
 * IOCB_CMD_FSYNC) the thread calls fsync() per file, as it always did.
 */
#include "queue_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/aio_abi.h>

#include "crc32c.h"
#include "durable.h"
#include "log.h"
#include "metrics.h"
#include "queue_msg.h"
#include "util.h"

#define COMMIT_BATCH_MAX 256
#define FSYNC_MAX (COMMIT_BATCH_MAX + 1) /* a file per job, and queue/ */

/* A commit thread's means to fsync many files at once. */
struct fsync_ctx {
	aio_context_t aio;
	bool usable; /* false: fsync() per file */
	/* queue/, opened by this thread alone: a writeback error is reported
	 * once per open file, so a descriptor shared between threads could let
	 * one thread's fsync or syncfs take the error another one's batch had */
	int dirfd;
	struct iocb cbs[FSYNC_MAX];
	struct iocb *ptrs[FSYNC_MAX];
	struct io_event evs[FSYNC_MAX];
};

/* "dir/ID.ext" into buf. */
static void job_path(char *buf, size_t size, const char *dir, const char *id, const char *ext)
{
	snprintf(buf, size, "%s/%s.%s", dir, id, ext);
}

/* Undo whatever part of a job's files exist. */
static void job_remove(struct queue *q, struct commit_job *j)
{
	char p[4096];

	job_path(p, sizeof(p), q->queue_dir, j->id, "msg");
	unlink(p);
	job_path(p, sizeof(p), q->incoming_dir, j->id, "msg");
	unlink(p);
}

/* Set up the AIO context, or settle for fsync() per file, and open the
 * thread's own descriptor of queue/ (the shared one when that fails). */
static void fsync_ctx_init(struct fsync_ctx *c, const struct queue *q)
{
	c->aio = 0;
	c->usable = syscall(SYS_io_setup, FSYNC_MAX, &c->aio) == 0;
	c->dirfd = open(q->queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dirfd < 0)
		log_warn("event=commit_dir_open_failed dir=%s note=\"shared descriptor used\"",
			 q->queue_dir);
}

/* Release the AIO context (waits for nothing: none is in flight). */
static void fsync_ctx_free(struct fsync_ctx *c)
{
	if (c->usable)
		syscall(SYS_io_destroy, c->aio);
	if (c->dirfd >= 0)
		close(c->dirfd);
}

/* Wait for the n submitted fsyncs and set their errs.  If waiting fails,
 * the ones not reaped count as failed (EIO): fsync()ing them again could
 * report success for a writeback error the lost event carried. */
static void fsync_reap(struct fsync_ctx *c, int *errs, size_t n)
{
	size_t done = 0;

	for (size_t i = 0; i < n; i++)
		errs[i] = -1;
	while (done < n) {
		long r = syscall(SYS_io_getevents, c->aio, 1L, (long)(n - done), c->evs, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* io_destroy waits for what is still in flight */
			syscall(SYS_io_destroy, c->aio);
			c->usable = false;
			for (size_t i = 0; i < n; i++)
				if (errs[i] < 0)
					errs[i] = EIO;
			return;
		}
		for (long k = 0; k < r; k++)
			errs[c->evs[k].data] = c->evs[k].res < 0 ? (int)-c->evs[k].res : 0;
		done += (size_t)r;
	}
}

/* fsync fds[0..n) at once; how many from the start are done (errs set). */
static size_t fsync_aio(struct fsync_ctx *c, const int *fds, int *errs, size_t n)
{
	long r;

	if (!c->usable || n == 0)
		return 0;
	if (n > FSYNC_MAX)
		n = FSYNC_MAX;
	for (size_t i = 0; i < n; i++) {
		memset(&c->cbs[i], 0, sizeof(c->cbs[i]));
		c->cbs[i].aio_lio_opcode = IOCB_CMD_FSYNC;
		c->cbs[i].aio_fildes = (__u32)fds[i];
		c->cbs[i].aio_data = i;
		c->ptrs[i] = &c->cbs[i];
	}
	r = syscall(SYS_io_submit, c->aio, (long)n, c->ptrs);
	if (r < 0) {
		if (errno == EINVAL || errno == ENOSYS) { /* no IOCB_CMD_FSYNC here */
			syscall(SYS_io_destroy, c->aio);
			c->usable = false;
		}
		return 0;
	}
	/* a short submission: the rest is left to fsync() */
	fsync_reap(c, errs, (size_t)r);
	return (size_t)r;
}

/* fsync every file of fds[0..n); errs[i] becomes 0 or an errno. */
static void fsync_all(struct fsync_ctx *c, const int *fds, int *errs, size_t n)
{
	for (size_t i = fsync_aio(c, fds, errs, n); i < n; i++)
		errs[i] = fsync(fds[i]) == 0 ? 0 : errno;
}

/* Complete a job's file: a small message is written straight into queue/
 * with the envelope and a checksummed trailer; a streamed one in incoming/
 * gets the envelope and a trailer.  Sets j->err. */
static void job_write(struct queue *q, struct commit_job *j)
{
	char path[4096];

	if (j->fd < 0) {
		uint32_t crc = crc32c(crc32c(0, j->buf, j->buflen), j->tail.s, j->tail.len);
		struct iovec iov[2];

		queue_msg_seal(&j->tail, 0, j->buflen, &crc);
		iov[0] = (struct iovec){j->buf, j->buflen};
		iov[1] = (struct iovec){j->tail.s, j->tail.len}; /* sealed: its final length */
		job_path(path, sizeof(path), q->queue_dir, j->id, "msg");
		j->direct = true;
		j->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (j->fd < 0 || !writev_all(j->fd, iov, 2)) /* one call for the whole file */
			j->err = errno ? errno : EIO;
		return;
	}
	queue_msg_seal(&j->tail, 0, j->msglen, NULL);
	if (!write_all(j->fd, j->tail.s, j->tail.len))
		j->err = errno ? errno : EIO;
}

/* Make one batch durable; sets each job's err. */
static void commit_batch(struct queue *q, struct commit_job *batch, struct fsync_ctx *fc)
{
	char from[4096], to[4096];
	struct commit_job *j;
	int *fds, *errs;
	size_t n = 0, i, m = 0;
	bool direct = false, renamed = false;
	int dirfd = fc->dirfd >= 0 ? fc->dirfd : q->queue_dirfd;

	for (j = batch; j; j = j->next)
		n++;
	fds = xcalloc(n + 1, sizeof(int));
	errs = xcalloc(n + 1, sizeof(int));
	/* 1. each file completed */
	for (j = batch; j; j = j->next) {
		if (!j->err)
			job_write(q, j);
		direct = direct || (j->direct && !j->err);
	}
	/* 2. the files on stable storage, and queue/ with the names of those
	 * written straight into it: each fsynced, all at once, or one syncfs
	 * of the spool's file system for the whole batch */
	if (q->use_syncfs) {
		if (syncfs(dirfd) != 0) {
			int e = errno;
			for (j = batch; j; j = j->next)
				if (!j->err)
					j->err = e;
		}
	} else {
		for (j = batch; j; j = j->next)
			if (!j->err)
				fds[m++] = j->fd;
		if (direct)
			fds[m++] = dirfd;
		fsync_all(fc, fds, errs, m);
		for (j = batch, i = 0; j; j = j->next)
			if (!j->err)
				j->err = errs[i++];
		if (direct && errs[m - 1] != 0) {
			log_warn("event=commit_failed dir=%s", q->queue_dir);
			for (j = batch; j; j = j->next)
				if (j->direct && !j->err)
					j->err = errs[m - 1];
		}
	}
	for (j = batch; j; j = j->next)
		if (j->fd >= 0 && close(j->fd) != 0 && !j->err)
			j->err = errno ? errno : EIO;
	free(fds);
	free(errs);
	/* 3. streamed ones into queue/: the rename commits the message */
	for (j = batch; j; j = j->next) {
		if (j->err || j->direct)
			continue;
		job_path(from, sizeof(from), q->incoming_dir, j->id, "msg");
		job_path(to, sizeof(to), q->queue_dir, j->id, "msg");
		if (rename(from, to) != 0) {
			j->err = errno;
			continue;
		}
		renamed = true;
	}
	/* 4. one directory fsync for the renames of the batch */
	if (renamed && fsync(dirfd) != 0) { /* the directory stays open */
		int e = errno;
		log_warn("event=commit_failed dir=%s", q->queue_dir);
		for (j = batch; j; j = j->next)
			if (!j->err && !j->direct)
				j->err = e;
	}
	for (j = batch; j; j = j->next)
		if (j->err)
			job_remove(q, j);
}

/* Commit thread main loop. */
static void *commit_thread(void *arg)
{
	struct queue *q = arg;
	struct fsync_ctx *fc = xmalloc(sizeof(*fc));

	fsync_ctx_init(fc, q);
	for (;;) {
		struct commit_job *batch, *last, *j;
		size_t n = 1;
		uint64_t one = 1;

		pthread_mutex_lock(&q->lock);
		while (q->todo == NULL && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->todo == NULL) {
			pthread_mutex_unlock(&q->lock);
			fsync_ctx_free(fc);
			free(fc);
			return NULL;
		}
		batch = last = q->todo;
		while (last->next && n < COMMIT_BATCH_MAX) {
			last = last->next;
			n++;
		}
		q->todo = last->next;
		if (q->todo == NULL)
			q->todo_tail = &q->todo;
		last->next = NULL;
		pthread_mutex_unlock(&q->lock);

		uint64_t start = metrics_clock_usec();
		commit_batch(q, batch, fc);
		metrics_observe(METRIC_COMMIT_SECONDS, 0, metrics_clock_usec() - start);
		metrics_observe(METRIC_COMMIT_BATCH, 0, n);

		pthread_mutex_lock(&q->lock);
		for (j = batch; j->next; j = j->next)
			;
		j->next = q->done;
		q->done = batch;
		pthread_mutex_unlock(&q->lock);
		if (write(q->wake_fd, &one, sizeof(one)) != sizeof(one))
			log_warn("event=commit_wake_failed");
	}
}

/* Run the callbacks of finished jobs on the loop. */
static void commit_deliver(struct queue *q)
{
	struct commit_job *done, *j;

	pthread_mutex_lock(&q->lock);
	done = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->lock);
	while ((j = done) != NULL) {
		done = j->next;
		pthread_mutex_lock(&q->lock);
		q->inflight--;
		pthread_mutex_unlock(&q->lock);
		if (j->err == 0)
			q->count++;
		j->cb(j->arg, j->err);
		strbuf_free(&j->tail);
		free(j->buf);
		free(j);
	}
}

/* eventfd readable: commits finished. */
static void commit_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("event=commit_wake_read");
	commit_deliver(arg);
}

/* Start the threads and the loop-side wake event. */
/* See queue.h. */
struct event_base *queue_base(struct queue *q)
{
	return q->wake_ev ? event_get_base(q->wake_ev) : NULL;
}

bool queue_commit_start(struct queue *q, struct event_base *base, unsigned threads)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->todo_tail = &q->todo;
	q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->wake_fd < 0)
		return false;
	if (base != NULL) {
		q->wake_ev = event_new(base, q->wake_fd, EV_READ | EV_PERSIST, commit_wake_cb, q);
		event_add(q->wake_ev, NULL);
	}
	q->threads = xcalloc(threads, sizeof(pthread_t));
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&q->threads[i], NULL, commit_thread, q) != 0)
			return false;
		q->nthreads++;
	}
	return true;
}

/* Drain, join and release. */
void queue_commit_stop(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	commit_deliver(q);
	if (q->wake_ev)
		event_free(q->wake_ev);
	close(q->wake_fd);
	free(q->threads);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
}

/* Commits handed over and not yet called back. */
size_t queue_inflight(struct queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->inflight;
	pthread_mutex_unlock(&q->lock);
	return n;
}
