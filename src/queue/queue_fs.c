/*
 * queue_fs.c - spool directories, incoming message files, recovery and
 * listing (queue_scan, queue_envelope_dir, queue_aside_dir).  See queue.h for the layout and the
 * commit point.
 */
#include "queue_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "durable.h"
#include "log.h"
#include "queue_msg.h"
#include "util.h"

#define SPACE_SLACK (256ULL << 20)    /* room beyond the ask that spares a statvfs() */
#define CLEAN_MARKER "shutdown.clean" /* in the state directory: the last exit was orderly */
#define ASIDE_SUFFIX ".corrupt"       /* what recovery set aside: ID.msg.corrupt, ID.env.corrupt */

/* "dir/name" in a fresh allocation. */
static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* See queue.h. */
char *queue_dir_name(const char *state_dir)
{
	return path_join(state_dir, "queue");
}

/* mkdir that accepts an existing directory; *made (may be NULL) tells which it was. */
static bool ensure_dir(const char *path, bool *made, char *err, size_t errsz)
{
	bool ok = mkdir(path, 0700) == 0;

	if (made != NULL)
		*made = ok;
	if (ok || errno == EEXIST)
		return true;
	snprintf(err, errsz, "cannot create %s: %s", path, strerror(errno));
	return false;
}

/* Remove every file in incoming/: none was ever acknowledged. */
static void clean_incoming(struct queue *q)
{
	DIR *d = opendir(q->incoming_dir);
	struct dirent *de;
	size_t removed = 0;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	if (removed)
		log_info("event=recovery incoming_removed=%zu", removed);
}

/* Read a whole small file. */
static char *read_file(int dirfd_, const char *name, size_t *len);

/* Copy the whole file at in to out; false with errno. */
static bool copy_file(int in, int out)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || !write_all(out, buf, (size_t)n))
			return false;
	}
	return true;
}

/*
 * queue/MSG is a message file from before the trailer (queue_msg.h) and
 * ENV its envelope: write the message file anew in incoming/ with the
 * envelope and the trailer after the message, fsync it and rename it over
 * the old one.  ID.env stays and still stands for the envelope.  A crash
 * on the way leaves the old file, upgraded at the next start.
 */
static bool upgrade_message(struct queue *q, int dfd, const char *msg, const char *env)
{
	char *text, *tmp = path_join(q->incoming_dir, msg), *to = path_join(q->queue_dir, msg);
	size_t envlen;
	struct strbuf tail;
	struct stat st;
	int in = -1, out = -1;
	bool ok = false;

	strbuf_init(&tail);
	text = read_file(dfd, env, &envlen);
	in = openat(dfd, msg, O_RDONLY | O_CLOEXEC);
	if (text == NULL || in < 0 || fstat(in, &st) != 0)
		goto out;
	strbuf_add(&tail, text, envlen);
	queue_msg_seal(&tail, 0, (uint64_t)st.st_size, NULL);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ok = out >= 0 && copy_file(in, out) && write_all(out, tail.s, tail.len) && fsync(out) == 0;
	if (out >= 0 && close(out) != 0)
		ok = false;
	ok = ok && rename(tmp, to) == 0;
	if (!ok)
		unlink(tmp);
out:
	if (in >= 0)
		close(in);
	free(text);
	strbuf_free(&tail);
	free(tmp);
	free(to);
	return ok;
}

/* Does the file at fd hold a line that starts as an envelope or a trailer
 * does?  Then it is no message file from before the trailer, whatever its
 * last line now looks like.  A read error answers yes (the cautious way). */
static bool has_queue_lines(int fd)
{
	static const char *const keys[] = {"\nhato-envelope: ", "\nhato-queue: "};
	enum { CARRY = 16 }; /* longer than either key */
	char buf[CARRY + 65536];
	size_t have = 1;
	off_t off = 0;

	buf[0] = '\n'; /* the file's first line starts a line too */
	for (;;) {
		ssize_t n = pread(fd, buf + have, sizeof(buf) - have, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return true;
		have += (size_t)n;
		off += n;
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (memmem(buf, have, keys[k], strlen(keys[k])) != NULL)
				return true;
		if (n == 0)
			return false;
		if (have > CARRY) {
			memmove(buf, buf + have - CARRY, CARRY);
			have = CARRY;
		}
	}
}

/* Does queue/ID.env exist for queue/NAME (ID.msg)? */
static bool has_envelope(int dfd, const char *name)
{
	char env[QUEUE_ID_LEN + 8];
	struct stat st;

	snprintf(env, sizeof(env), "%.*s.env", QUEUE_ID_LEN, name);
	return fstatat(dfd, env, &st, 0) == 0;
}

/* Put queue/NAME (ID.msg) aside as NAME.corrupt, and its ID.env as
 * ID.env.corrupt, for a person to look at: the envelope says which
 * recipients already have the message. */
static void set_aside(int dfd, const char *name, const char *why)
{
	char to[QUEUE_ID_LEN + 16], env[QUEUE_ID_LEN + 8], envto[QUEUE_ID_LEN + 16];

	snprintf(to, sizeof(to), "%s" ASIDE_SUFFIX, name);
	snprintf(env, sizeof(env), "%.*s.env", QUEUE_ID_LEN, name);
	snprintf(envto, sizeof(envto), "%s" ASIDE_SUFFIX, env);
	if (renameat(dfd, env, dfd, envto) != 0 && errno != ENOENT)
		log_warn("event=recovery queue_id=%.*s action=set_aside_failed file=%s",
			 QUEUE_ID_LEN, name, env);
	if (renameat(dfd, name, dfd, to) != 0) {
		log_warn("event=recovery queue_id=%.*s action=set_aside_failed file=%s",
			 QUEUE_ID_LEN, name, name);
		return;
	}
	log_warnx("event=recovery queue_id=%.*s action=set_aside file=%s reason=\"%s\"",
		  QUEUE_ID_LEN, name, to, why);
}

/*
 * Recover one queue/ID.msg (dfd: queue/).  A file without a valid trailer
 * is a commit a crash cut short, never acknowledged: removed; unless its
 * ID.env is beside it, which makes it a message file from before the
 * trailer (upgraded) when no line of it looks like an envelope or a
 * trailer, and else a file damaged on disk (set aside).  After an unclean
 * shutdown (!clean) every checksum is checked too: a file written straight
 * into queue/ whose blocks did not all reach the disk fails it; one that
 * fails it beside an ID.env is set aside.  Returns what was done.
 */
static enum recovered {
	KEPT,
	REMOVED,
	UPGRADED,
	SET_ASIDE
} recover_message(struct queue *q, int dfd, const char *name, bool clean)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	struct queue_trailer t;
	struct stat st;
	bool trailer, whole, env, old_layout;
	char envname[QUEUE_ID_LEN + 8];
	int e;

	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return KEPT; /* queue_scan reports it */
	}
	trailer = queue_msg_trailer(fd, (uint64_t)st.st_size, &t);
	whole = trailer && (clean || queue_msg_verify(fd, &t));
	e = errno;
	if (whole || e != EBADMSG) {
		close(fd);
		return KEPT;
	}
	env = has_envelope(dfd, name);
	old_layout = env && !trailer && !has_queue_lines(fd);
	close(fd);
	if (old_layout) { /* the layout from before the trailer */
		snprintf(envname, sizeof(envname), "%.*s.env", QUEUE_ID_LEN, name);
		if (upgrade_message(q, dfd, name, envname))
			return UPGRADED;
		log_warn("event=recovery queue_id=%.*s action=upgrade_failed", QUEUE_ID_LEN, name);
		return KEPT;
	}
	if (env) { /* committed and tried: not a cut commit, so damaged since */
		set_aside(dfd, name,
			  trailer ? "checksum does not match: damaged on disk"
				  : "trailer damaged on disk");
		return SET_ASIDE;
	}
	log_warnx("event=recovery queue_id=%.*s action=removed reason=\"incomplete: its commit "
		  "was cut short, never acknowledged\"",
		  QUEUE_ID_LEN, name);
	unlinkat(dfd, name, 0);
	return REMOVED;
}

/* Bring queue/ back to committed messages only: remove what an interrupted
 * envelope rewrite, removal or commit left, and upgrade message files from
 * before the trailer.  clean: the last shutdown was orderly. */
static void recover_queue(struct queue *q, bool clean)
{
	DIR *d = opendir(q->queue_dir);
	struct dirent *de;
	char msg[QUEUE_ID_LEN + 8];
	size_t upgraded = 0, removed = 0, set_aside_n = 0;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		const char *ext = len == QUEUE_ID_LEN + 4 ? de->d_name + QUEUE_ID_LEN : "";
		struct stat st;

		if (len == QUEUE_ID_LEN + 8 &&
		    (strcmp(de->d_name + QUEUE_ID_LEN, ".env.tmp") == 0 ||
		     strcmp(de->d_name + QUEUE_ID_LEN, ".msg.tmp") == 0)) {
			/* an envelope rewrite that never got renamed (the old one
			 * stands), or a report whose commit was cut short */
			unlinkat(dirfd(d), de->d_name, 0);
		} else if (strcmp(ext, ".msg") == 0) {
			switch (recover_message(q, dirfd(d), de->d_name, clean)) {
			case UPGRADED:
				upgraded++;
				break;
			case REMOVED:
				removed++;
				break;
			case SET_ASIDE:
				set_aside_n++;
				break;
			case KEPT:
				break;
			}
		} else if (strcmp(ext, ".env") == 0) {
			snprintf(msg, sizeof(msg), "%.*s.msg", QUEUE_ID_LEN, de->d_name);
			/* (an envelope set aside just now may still be listed) */
			if (fstatat(dirfd(d), msg, &st, 0) != 0 && errno == ENOENT &&
			    unlinkat(dirfd(d), de->d_name, 0) == 0) {
				log_warnx("event=recovery queue_id=%.*s action=removed "
					  "reason=\"envelope without message: its removal was "
					  "interrupted\"",
					  QUEUE_ID_LEN, de->d_name);
				removed++;
			}
		}
	}
	closedir(d);
	if ((upgraded || removed || set_aside_n) && fsync(q->queue_dirfd) != 0)
		log_warn("event=recovery dir=%s error=fsync", q->queue_dir);
	if (upgraded)
		log_info("event=recovery upgraded=%zu reason=\"message files from before the "
			 "trailer, rewritten with it\"",
			 upgraded);
	if (!clean)
		log_info("event=recovery checked=all removed=%zu reason=\"the last shutdown was "
			 "not orderly: every checksum was verified\"",
			 removed);
}

/* Was the last shutdown orderly?  Takes the marker away, durably, so that
 * a crash from now on leaves none. */
static bool take_clean_marker(const struct queue *q)
{
	char *path = path_join(q->state_dir, CLEAN_MARKER);
	char *tmp = path_join(q->state_dir, CLEAN_MARKER ".tmp");
	bool clean = unlink(path) == 0;

	unlink(tmp); /* a marker write a crash cut short would stop every later one */
	free(tmp);
	free(path);
	if (clean && !fsync_dir(q->state_dir))
		log_warn("event=recovery dir=%s error=fsync", q->state_dir);
	return clean;
}

/* Count recovered messages. */
static void count_one(const struct envelope *e, uint64_t size, void *arg)
{
	(void)e;
	(void)size;
	(*(size_t *)arg)++;
}

/* See queue.h. */
struct queue *queue_open(const char *state_dir, unsigned threads, bool use_syncfs,
			 struct event_base *base, char *err, size_t errsz)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	bool fresh, clean;

	q->use_syncfs = use_syncfs;
	q->queue_dirfd = -1;

	q->state_dir = xstrdup(state_dir);
	q->incoming_dir = path_join(state_dir, "incoming");
	q->queue_dir = queue_dir_name(state_dir);
	if (!ensure_dir(q->state_dir, NULL, err, errsz) ||
	    !ensure_dir(q->incoming_dir, NULL, err, errsz) ||
	    !ensure_dir(q->queue_dir, &fresh, err, errsz))
		goto fail;
	if (access(q->queue_dir, R_OK | W_OK | X_OK) != 0 ||
	    access(q->incoming_dir, R_OK | W_OK | X_OK) != 0) {
		snprintf(err, errsz, "spool %s is not writable by this user: %s", state_dir,
			 strerror(errno));
		goto fail;
	}
	q->queue_dirfd = open(q->queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->queue_dirfd < 0) {
		snprintf(err, errsz, "cannot open %s: %s", q->queue_dir, strerror(errno));
		goto fail;
	}
	clean_incoming(q);
	clean = take_clean_marker(q);
	if (fresh) { /* queue/ made just now: nothing was ever accepted here */
		log_info("event=spool_new dir=%s note=\"a new spool: nothing to recover\"",
			 q->queue_dir);
		if (!fsync_dir(q->state_dir)) /* the first commit must not lose queue/ itself */
			log_warn("event=spool_new dir=%s error=fsync", q->state_dir);
	} else {
		recover_queue(q, clean);
	}
	if (!queue_scan_dir(state_dir, count_one, &q->count, err, errsz))
		goto fail;
	if (!queue_commit_start(q, base, threads)) {
		snprintf(err, errsz, "cannot start commit threads: %s", strerror(errno));
		goto fail;
	}
	return q;
fail:
	if (q->queue_dirfd >= 0)
		close(q->queue_dirfd);
	free(q->state_dir);
	free(q->incoming_dir);
	free(q->queue_dir);
	free(q);
	return NULL;
}

/* See queue.h. */
void queue_close(struct queue *q)
{
	queue_commit_stop(q);
	/* every commit finished: the next start need not check checksums */
	if (!durable_write_file(q->state_dir, CLEAN_MARKER, "", 0))
		log_warn("event=shutdown dir=%s error=\"cannot write %s\"", q->state_dir,
			 CLEAN_MARKER);
	close(q->queue_dirfd);
	free(q->state_dir);
	free(q->incoming_dir);
	free(q->queue_dir);
	free(q);
}

/* See queue.h. */
size_t queue_count(const struct queue *q)
{
	return q->count;
}

/* Nanoseconds from a to b. */
static int64_t elapsed_ns(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);
}

/* Does free hold need + reserve + slack (without overflow)? */
static bool space_fits(uint64_t free, uint64_t need, uint64_t reserve, uint64_t slack)
{
	return free >= slack && free - slack >= need && free - slack - need >= reserve;
}

/* See queue.h. */
bool queue_has_space(struct queue *q, uint64_t need, uint64_t reserve)
{
	struct statvfs sv;
	struct timespec now;

	/* With SPACE_SLACK to spare the figure read less than a second ago,
	 * less what was asked for since, is good enough; nearer the reserve
	 * every question asks the file system.  (A write that finds the disk
	 * full still fails the message: this only refuses early.) */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (q->space_known && elapsed_ns(&q->space_at, &now) < 1000000000 &&
	    space_fits(q->space_free, need, reserve, SPACE_SLACK)) {
		q->space_free -= need;
		return true;
	}
	q->space_known = false;
	if (statvfs(q->queue_dir, &sv) != 0)
		return false;
	q->space_free = (uint64_t)sv.f_bavail * sv.f_frsize;
	q->space_at = now;
	q->space_known = true;
	return space_fits(q->space_free, need, reserve, 0);
}

/*
 * Create incoming/ID.msg for a message larger than the buffer, on the loop.
 * O_EXCL: an ID collision (which the ID scheme rules out) fails the message
 * instead of overwriting another.
 */
static int queue_create_msg(struct queue *q, const char *id)
{
	char name[QUEUE_ID_LEN + 8], *path;
	int fd;

	snprintf(name, sizeof(name), "%s.msg", id);
	path = path_join(q->incoming_dir, name);
	/* read too: intake's stages read the message back before its commit */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	free(path);
	return fd;
}

/* See queue.h: the file itself is created lazily (queue_file_write). */
bool queue_file_open(struct queue *q, struct qfile *f)
{
	memset(f, 0, sizeof(*f));
	f->q = q;
	f->fd = -1;
	queue_id_new(f->id);
	f->buf = xmalloc(QFILE_BUFSIZE);
	return true;
}

/* Write out the buffer, creating the file first if need be. */
static bool qfile_flush(struct qfile *f)
{
	if (f->fd < 0 && (f->fd = queue_create_msg(f->q, f->id)) < 0)
		return false;
	if (f->buflen == 0)
		return true;
	if (!write_all(f->fd, f->buf, f->buflen))
		return false;
	f->buflen = 0;
	return true;
}

/* See queue.h. */
bool queue_file_write(struct qfile *f, const void *p, size_t n)
{
	f->size += n;
	if (f->buflen + n > QFILE_BUFSIZE) {
		if (!qfile_flush(f))
			return false;
		if (n > QFILE_BUFSIZE)
			return write_all(f->fd, p, n);
	}
	memcpy(f->buf + f->buflen, p, n);
	f->buflen += n;
	return true;
}

/* See queue.h. */
void queue_file_abort(struct qfile *f)
{
	char name[QUEUE_ID_LEN + 8];

	if (f->buf == NULL)
		return;
	if (f->fd >= 0) {
		char *path;
		close(f->fd);
		snprintf(name, sizeof(name), "%s.%s", f->id, f->former ? "old" : "msg");
		path = path_join(f->q->incoming_dir, name);
		unlink(path);
		free(path);
	}
	free(f->buf);
	f->buf = NULL;
	f->fd = -1;
}

/* See queue.h: the part written out is in the file, the rest in buf. */
ssize_t queue_file_read(const struct qfile *f, void *buf, size_t n, uint64_t off)
{
	uint64_t infile = f->size - f->buflen;
	size_t done = 0;

	if (off >= f->size || n == 0)
		return 0;
	if (n > f->size - off)
		n = (size_t)(f->size - off);
	while (off < infile && done < n) {
		size_t want = n - done;
		ssize_t r;
		if (want > infile - off)
			want = (size_t)(infile - off);
		r = pread(f->fd, (char *)buf + done, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EIO; /* the file is shorter than what was written */
			return -1;
		}
		done += (size_t)r;
		off += (uint64_t)r;
	}
	if (done < n)
		memcpy((char *)buf + done, f->buf + (off - infile), n - done);
	return (ssize_t)n;
}

/* See queue.h: incoming/ID.msg becomes incoming/ID.old (removed at start
 * like everything in incoming/). */
bool queue_file_restart(struct qfile *f, struct qfile *old)
{
	*old = *f;
	if (f->fd >= 0) {
		char from[QUEUE_ID_LEN + 8], to[QUEUE_ID_LEN + 8];
		int dfd = open(f->q->incoming_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		bool ok;

		snprintf(from, sizeof(from), "%s.msg", f->id);
		snprintf(to, sizeof(to), "%s.old", f->id);
		ok = dfd >= 0 && renameat(dfd, from, dfd, to) == 0;
		if (dfd >= 0) {
			int e = errno;
			close(dfd);
			errno = e;
		}
		if (!ok)
			return false;
	}
	old->former = true;
	f->fd = -1;
	f->buf = xmalloc(QFILE_BUFSIZE);
	f->buflen = 0;
	f->size = 0;
	f->former = false;
	return true;
}

/* See queue.h: hand the file, or the buffered message, to a commit thread. */
void queue_commit(struct qfile *f, const struct envelope *e, queue_commit_cb cb, void *arg)
{
	struct queue *q = f->q;
	struct commit_job *j = xcalloc(1, sizeof(*j));

	memcpy(j->id, f->id, sizeof(j->id));
	j->cb = cb;
	j->arg = arg;
	strbuf_init(&j->tail);
	envelope_format(e, &j->tail); /* the commit thread adds the trailer */
	j->msglen = f->size;
	if (f->fd >= 0 && !qfile_flush(f))
		j->err = errno ? errno : EIO;
	j->fd = f->fd;
	if (f->fd < 0) { /* never written out: the commit thread creates the file */
		j->buf = f->buf;
		j->buflen = f->buflen;
	} else {
		free(f->buf);
	}
	f->buf = NULL;
	f->fd = -1;
	pthread_mutex_lock(&q->lock);
	j->next = NULL;
	*q->todo_tail = j;
	q->todo_tail = &j->next;
	q->inflight++;
	pthread_mutex_unlock(&q->lock);
	/* after the unlock: a woken thread does not block on the lock we hold */
	pthread_cond_signal(&q->cond);
}

/* Compare two names for qsort. */
static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read a whole small file. */
static char *read_file(int dirfd_, const char *name, size_t *len)
{
	int fd = openat(dirfd_, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if (st.st_size > 16 * 1024 * 1024) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		errno = n < 0 ? errno : EIO; /* never a stale ENOENT */
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* The envelope of queue/NAME (ID.msg): ID.env when a delivery rewrote it,
 * else the one inside the message file; NULL with errno. */
static char *load_envelope(int dirfd_, const char *name, size_t *len, uint64_t *msglen)
{
	char env[QUEUE_ID_LEN + 8], *text, *own;
	size_t ownlen;

	own = queue_msg_envelope(dirfd_, name, &ownlen, msglen);
	if (own == NULL)
		return NULL;
	snprintf(env, sizeof(env), "%.*s.env", QUEUE_ID_LEN, name);
	text = read_file(dirfd_, env, len);
	if (text == NULL && errno == ENOENT) {
		*len = ownlen;
		return own;
	}
	free(own);
	return text;
}

/* Was queue/NAME changed in the last few seconds, as a message file being
 * committed is? */
static bool being_written(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, 0) == 0 && time(NULL) - st.st_mtime < 10;
}

/* See queue.h. */
bool queue_scan(struct queue *q, queue_scan_fn fn, void *arg, char *err, size_t errsz)
{
	return queue_scan_dir(q->state_dir, fn, arg, err, errsz);
}

/* Open directory dir and collect, sorted, what pick() takes of its names
 * (pick writes it into out, of NAME_MAX + 1 octets): the open directory,
 * or NULL with err and errno when it cannot be read. */
static DIR *sorted_names(const char *dir, bool (*pick)(const char *name, char *out), char ***names,
			 size_t *n, char *err, size_t errsz)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char out[NAME_MAX + 1];
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	if (d == NULL) {
		int e = errno;

		snprintf(err, errsz, "cannot read %s: %s", dir, strerror(e));
		errno = e;
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (!pick(de->d_name, out))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*names = xrealloc(*names, cap * sizeof(char *));
		}
		(*names)[(*n)++] = xstrdup(out);
	}
	if (*n > 0)
		qsort(*names, *n, sizeof(char *), cmp_names);
	return d;
}

/* Is name a message file, ID.msg?  Then it is what to take. */
static bool msg_name(const char *name, char *out)
{
	size_t len = strlen(name);

	if (len != QUEUE_ID_LEN + 4 || strcmp(name + QUEUE_ID_LEN, ".msg") != 0)
		return false;
	memcpy(out, name, len + 1);
	return true;
}

/* See queue.h. */
bool queue_scan_dir(const char *state_dir, queue_scan_fn fn, void *arg, char *err, size_t errsz)
{
	char *dir = queue_dir_name(state_dir), **names;
	size_t n;
	DIR *d = sorted_names(dir, msg_name, &names, &n, err, errsz);

	if (d == NULL) {
		int e = errno;

		free(dir);
		errno = e;
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		struct envelope e;
		char perr[256];
		size_t len;
		uint64_t msglen;
		char *text = load_envelope(dirfd(d), names[i], &len, &msglen);

		if (text == NULL) {
			/* ENOENT: delivered and removed while we looked; a file
			 * without its trailer yet may be a commit in progress */
			if (errno != ENOENT &&
			    !(errno == EBADMSG && being_written(dirfd(d), names[i])))
				log_warnx("event=queue_scan file=%s/%s error=\"%s\"", dir, names[i],
					  errno == EBADMSG ? "not a queue file: no valid trailer"
							   : strerror(errno));
		} else if (!envelope_parse(text, len, &e, perr, sizeof(perr))) {
			log_warnx("event=queue_scan file=%s/%s error=\"%s\"", dir, names[i], perr);
		} else {
			fn(&e, msglen, arg);
			envelope_free(&e);
		}
		free(text);
		free(names[i]);
	}
	free(names);
	closedir(d);
	free(dir);
	return true;
}

/* See queue.h. */
bool queue_envelope_dir(const char *state_dir, const char *id, struct envelope *e,
			uint64_t *msg_size, char *err, size_t errsz)
{
	char *dir = queue_dir_name(state_dir), name[QUEUE_ID_LEN + 8], perr[256], *text;
	int dfd, saved;
	size_t len;
	bool ok = false;

	if (!queue_id_valid(id)) {
		snprintf(err, errsz, "bad queue ID");
		free(dir);
		errno = EINVAL;
		return false;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		saved = errno;
		snprintf(err, errsz, "cannot read %s: %s", dir, strerror(saved));
		free(dir);
		errno = saved == ENOENT ? ENOTDIR : saved; /* no spool, not "no message" */
		return false;
	}
	snprintf(name, sizeof(name), "%s.msg", id);
	text = load_envelope(dfd, name, &len, msg_size);
	saved = errno;
	if (text == NULL) {
		if (saved == ENOENT)
			snprintf(err, errsz, "no message %s in %s", id, dir);
		else
			snprintf(err, errsz, "%s/%s: %s", dir, name,
				 saved == EBADMSG ? "not a queue file: no valid trailer"
						  : strerror(saved));
	} else if (!envelope_parse(text, len, e, perr, sizeof(perr))) {
		snprintf(err, errsz, "%s/%s: envelope: %s", dir, id, perr);
		saved = EBADMSG;
	} else {
		ok = true;
	}
	free(text);
	close(dfd);
	free(dir);
	errno = saved;
	return ok;
}

/* Is name "ID.msg.corrupt" or "ID.env.corrupt"?  Then its ID in id. */
static bool aside_name(const char *name, char *id)
{
	size_t len = strlen(name);

	if (len != QUEUE_ID_LEN + 4 + strlen(ASIDE_SUFFIX) ||
	    strcmp(name + QUEUE_ID_LEN + 4, ASIDE_SUFFIX) != 0 ||
	    (strncmp(name + QUEUE_ID_LEN, ".msg", 4) != 0 &&
	     strncmp(name + QUEUE_ID_LEN, ".env", 4) != 0))
		return false;
	memcpy(id, name, QUEUE_ID_LEN);
	id[QUEUE_ID_LEN] = '\0';
	return queue_id_valid(id);
}

/* Report the set-aside files of one ID (dfd: queue/, dir its path). */
static void aside_one(int dfd, const char *dir, const char *id, queue_aside_fn fn, void *arg)
{
	char msg[QUEUE_ID_LEN + 16], env[QUEUE_ID_LEN + 16], perr[256], *text;
	struct queue_aside a;
	struct envelope e;
	struct stat st;
	size_t len;
	char *msg_path = NULL, *env_path = NULL;

	memset(&a, 0, sizeof(a));
	memcpy(a.id, id, sizeof(a.id));
	snprintf(msg, sizeof(msg), "%s.msg" ASIDE_SUFFIX, id);
	snprintf(env, sizeof(env), "%s.env" ASIDE_SUFFIX, id);
	if (fstatat(dfd, msg, &st, 0) == 0) {
		a.msg_path = msg_path = path_join(dir, msg);
		a.msg_size = (uint64_t)st.st_size;
		a.when = st.st_ctime;
	}
	if (fstatat(dfd, env, &st, 0) == 0) {
		a.env_path = env_path = path_join(dir, env);
		if (st.st_ctime > a.when)
			a.when = st.st_ctime;
		text = read_file(dfd, env, &len);
		if (text != NULL && envelope_parse(text, len, &e, perr, sizeof(perr)))
			a.e = &e;
		free(text);
	}
	if (a.msg_path != NULL || a.env_path != NULL) /* else gone while we looked */
		fn(&a, arg);
	if (a.e != NULL)
		envelope_free(&e);
	free(msg_path);
	free(env_path);
}

/* See queue.h. */
bool queue_aside_dir(const char *state_dir, queue_aside_fn fn, void *arg, char *err, size_t errsz)
{
	char *dir = queue_dir_name(state_dir), **ids;
	size_t n;
	DIR *d = sorted_names(dir, aside_name, &ids, &n, err, errsz);

	if (d == NULL) {
		int e = errno;

		free(dir);
		errno = e;
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0) /* .msg and .env: once */
			aside_one(dirfd(d), dir, ids[i], fn, arg);
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	closedir(d);
	free(dir);
	return true;
}
