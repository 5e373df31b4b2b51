/*
 * maildir.c - local delivery into a Maildir.
 *
 * The Maildir dance is hato's durable-write protocol (durable.c) with the
 * Maildir's own names: write dir/tmp/NAME (O_EXCL, 0600), fsync it, link it
 * to dir/new/NAME,S=<size>, fsync dir/new, then drop the tmp name.  A reader only
 * ever scans new/ and cur/, so a crash at any point leaves either nothing
 * visible or the whole message; the queue still holds the message until we
 * report OUTCOME_DELIVERED, so "nothing visible" is simply retried.
 *
 * NAME is "<sec>.M<usec>P<pid>Q<counter>.<host>": time, process and a
 * process-wide atomic counter make it unique across threads and processes
 * on this host; the host part separates hosts sharing a Maildir over NFS.
 * The name in new/ adds ",S=<size>", the file's size, known once it is
 * written, so IMAP servers know the size without a stat() (Dovecot does
 * the same: S= only on the final name).
 *
 * The file has LF line endings, as Postfix's local(8), Courier and Dovecot
 * write Maildirs: the queue keeps the message as it came over SMTP (CRLF),
 * and the copy turns each CRLF into LF (a lone CR or LF stays as it is).
 *
 * Failure mapping (STYLE 12, decided here once): ENOSPC/EDQUOT become
 * TEMPFAIL 4.3.1, any other system error TEMPFAIL 4.2.0 with the errno text
 * and the path; a CR or LF in an address (it would inject header lines) is a
 * PERMFAIL.  Every failure removes what was written: nothing is left in
 * tmp/, nothing half-written can appear in new/.
 *
 * A crash between the tmp/ write and its removal (kill -9 mid-delivery)
 * leaves a file in tmp/ that nobody will ever read: after a delivery,
 * tmp/ is swept of files older than 36 hours, as the Maildir convention
 * says and Dovecot does, at most once per MAILDIR_TMP_SWEEP_INTERVAL per
 * Maildir (a small table of when each was swept, by path hash).
 *
 * Blocking code: it runs on a worker thread.  Everything per delivery lives
 * in one heap job (the 64 KiB copy buffer included) so worker stacks stay
 * small; the shared state is the atomic counter and the sweep table (under
 * its mutex).
 */
#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "durable.h"
#include "log.h"
#include "util.h"

/* Enhanced status codes of a Maildir delivery, in one place. */
#define MAILDIR_ESC_DELIVERED "2.0.0"
#define MAILDIR_ESC_DISK_FULL "4.3.1"  /* mail system full */
#define MAILDIR_ESC_IO "4.2.0"         /* other mailbox status: retry */
#define MAILDIR_ESC_BAD_RCPT "5.1.3"   /* bad destination mailbox address syntax */
#define MAILDIR_ESC_BAD_SENDER "5.1.7" /* bad sender's mailbox address syntax */

#define MAILDIR_COPY_BUF (64 * 1024)
#define MAILDIR_HOST_MAX 256 /* escaped host part of a file name, NUL included */

/* Everything one delivery needs, allocated once so a thread's stack stays small. */
struct maildir_job {
	char dir[PATH_MAX]; /* the Maildir, without trailing slashes */
	char name[NAME_MAX + 1];
	char tmp[PATH_MAX];     /* dir/tmp/NAME */
	char new[PATH_MAX];     /* dir/new/NAME,S=<size> */
	char newdir[PATH_MAX];  /* dir/new */
	char scratch[PATH_MAX]; /* mkdir -p; on failure, the path that failed */
	char host[MAILDIR_HOST_MAX];
	char buf[1 + MAILDIR_COPY_BUF]; /* buf[0]: room for a CR held from the chunk before */
};

/* Process-wide sequence number: the Q part of unique names. */
static _Atomic uint64_t maildir_seq;

/* Maildirs whose tmp/ this process swept lately, by a hash of the path: a
 * slot taken by another Maildir only costs that one an early sweep. */
#define MAILDIR_SWEEP_SLOTS 1024
static struct {
	uint64_t key; /* 0: free */
	time_t last;
} maildir_swept[MAILDIR_SWEEP_SLOTS];
static pthread_mutex_t maildir_swept_lock = PTHREAD_MUTEX_INITIALIZER;

/* Does s contain a CR or LF, which would end a header line early? */
static bool has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* Is s a bracketed reverse path ("<>" or "<...>") fit for one header line? */
static bool return_path_ok(const char *s)
{
	size_t len = strlen(s);

	return len >= 2 && s[0] == '<' && s[len - 1] == '>' && !has_crlf(s);
}

/*
 * Escape the host name for a Maildir file name: '/' and ':' as the Maildir
 * convention says (\057, \072), ',' too (\054) because readers split the
 * ",S=" info on it, and control/space/non-ASCII bytes so a name stays one
 * clean token.  false (ENAMETOOLONG) when it does not fit.
 */
static bool escape_host(const char *host, char *out, size_t outsz)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
		bool esc = *p == '/' || *p == ':' || *p == ',' || *p <= ' ' || *p >= 0x7f;

		if (n + (esc ? 4 : 1) >= outsz) {
			errno = ENAMETOOLONG;
			return false;
		}
		if (esc)
			n += (size_t)snprintf(out + n, outsz - n, "\\%03o", *p);
		else
			out[n++] = (char)*p;
	}
	out[n] = '\0';
	return true;
}

/* Fill r for a failed system call: errno text first so a long path cannot truncate it away. */
static void set_sys_error(struct delivery_result *r, int err, const char *what, const char *path)
{
	char ebuf[128];
	const char *etext = strerror_r(err, ebuf, sizeof(ebuf)); /* GNU: thread-safe */
	bool full = err == ENOSPC;

#ifdef EDQUOT
	full = full || err == EDQUOT;
#endif
	result_set(r, OUTCOME_TEMPFAIL, full ? MAILDIR_ESC_DISK_FULL : MAILDIR_ESC_IO,
		   "maildir %s failed: %s: %s", what, etext, path);
}

/* fsync the directory holding path (path is cut at its last '/' and restored). */
static bool fsync_parent(char *path)
{
	char *slash = strrchr(path, '/');
	bool ok;
	int e;

	if (slash == NULL)
		return fsync_dir(".");
	if (slash == path)
		return fsync_dir("/");
	*slash = '\0';
	ok = fsync_dir(path);
	e = errno;
	*slash = '/';
	errno = e;
	return ok;
}

/* Make one directory (0700) or accept an existing one; a new entry is fsynced into its parent. */
static bool mkdir_one(char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return fsync_parent(path);
	if (errno != EEXIST)
		return false;
	if (stat(path, &st) != 0)
		return false;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return false;
	}
	return true;
}

/* mkdir -p path in place; on failure errno is set and path is cut at the component that failed. */
static bool mkdir_p(char *path)
{
	char *p = path;

	while (*p == '/')
		p++;
	while (*p) {
		char *slash = strchr(p, '/');

		if (slash != NULL)
			*slash = '\0';
		if (!mkdir_one(path))
			return false;
		if (slash == NULL)
			break;
		*slash = '/';
		p = slash + 1;
		while (*p == '/')
			p++;
	}
	return true;
}

/* Create j->dir and its tmp/, new/, cur/ as needed; on failure j->scratch names the culprit. */
static bool maildir_create(struct maildir_job *j)
{
	static const char *const subs[] = {"tmp", "new", "cur"};

	if (!strcpy_bounded(j->scratch, j->dir, sizeof(j->scratch))) {
		errno = ENAMETOOLONG;
		return false;
	}
	if (!mkdir_p(j->scratch))
		return false;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (!xsnprintf_ok(j->scratch, sizeof(j->scratch), "%s/%s", j->dir, subs[i])) {
			errno = ENAMETOOLONG;
			return false;
		}
		if (!mkdir_one(j->scratch))
			return false;
	}
	return true;
}

/* Build the unique NAME and the tmp path. */
static bool maildir_names(struct maildir_job *j, const char *hostname)
{
	char sysname[256];
	struct timespec ts;
	uint64_t seq = atomic_fetch_add_explicit(&maildir_seq, 1, memory_order_relaxed);

	if (hostname == NULL || hostname[0] == '\0') {
		if (gethostname(sysname, sizeof(sysname)) != 0 || sysname[0] == '\0')
			strcpy_bounded(sysname, "localhost", sizeof(sysname));
		sysname[sizeof(sysname) - 1] = '\0';
		hostname = sysname;
	}
	if (!escape_host(hostname, j->host, sizeof(j->host)))
		return false;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!xsnprintf_ok(j->name, sizeof(j->name), "%lld.M%ldP%ldQ%" PRIu64 ".%s",
			  (long long)ts.tv_sec, ts.tv_nsec / 1000, (long)getpid(), seq, j->host) ||
	    !xsnprintf_ok(j->tmp, sizeof(j->tmp), "%s/tmp/%s", j->dir, j->name) ||
	    !xsnprintf_ok(j->newdir, sizeof(j->newdir), "%s/new", j->dir)) {
		errno = ENAMETOOLONG;
		return false;
	}
	return true;
}

/* Build the new/ path of a written file of size bytes: NAME,S=<size>. */
static bool maildir_new_name(struct maildir_job *j, uint64_t size)
{
	char name[NAME_MAX + 1];

	if (!xsnprintf_ok(name, sizeof(name), "%s,S=%" PRIu64, j->name, size) ||
	    !xsnprintf_ok(j->new, sizeof(j->new), "%s/new/%s", j->dir, name)) {
		errno = ENAMETOOLONG;
		return false;
	}
	return true;
}

/*
 * Turn CRLF into LF over the n bytes read into buf + 1, in place; the
 * result starts at buf and its length is returned.  A CR that ends the
 * chunk may start a CRLF: it is held in *cr and written (into buf[0]) at
 * the start of the next chunk unless that starts with LF.
 */
static size_t crlf_to_lf(char *buf, size_t n, bool *cr)
{
	const char *in = buf + 1, *end = buf + 1 + n;
	size_t o = 0;

	if (*cr && (n == 0 || *in != '\n'))
		buf[o++] = '\r';
	*cr = false;
	while (in < end) {
		const char *c = memchr(in, '\r', (size_t)(end - in));
		size_t run = (c != NULL ? c : end) - in;

		memmove(buf + o, in, run); /* o is always behind in */
		o += run;
		in += run;
		if (c == NULL)
			break;
		in++; /* the CR */
		if (in == end)
			*cr = true; /* the next chunk tells */
		else if (*in != '\n')
			buf[o++] = '\r';
	}
	return o;
}

/* See maildir.h. */
size_t maildir_clean_tmp(const char *dir, time_t now)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t removed = 0;
	DIR *d;

	if (!xsnprintf_ok(path, sizeof(path), "%s/tmp", dir) || (d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') /* ".", "..", and nothing of ours */
			continue;
		/* ctime too: a tool that stages a file with an old mtime is not a leftover */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime <= MAILDIR_TMP_MAX_AGE ||
		    now - st.st_ctime <= MAILDIR_TMP_MAX_AGE)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

/* Is dir's tmp/ due for a sweep at now (none by this process in the last
 * MAILDIR_TMP_SWEEP_INTERVAL)?  A yes books the sweep. */
static bool sweep_due(const char *dir, time_t now)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	size_t slot;
	bool due;

	for (const unsigned char *p = (const unsigned char *)dir; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h |= 1; /* never 0, the free mark */
	slot = (size_t)(h % MAILDIR_SWEEP_SLOTS);
	pthread_mutex_lock(&maildir_swept_lock);
	due = maildir_swept[slot].key != h || now < maildir_swept[slot].last ||
	      now - maildir_swept[slot].last >= MAILDIR_TMP_SWEEP_INTERVAL;
	if (due) {
		maildir_swept[slot].key = h;
		maildir_swept[slot].last = now;
	}
	pthread_mutex_unlock(&maildir_swept_lock);
	return due;
}

/* See maildir.h. */
size_t maildir_sweep_tmp(const char *dir, time_t now)
{
	char shown[512];
	size_t removed;

	if (!sweep_due(dir, now))
		return 0;
	removed = maildir_clean_tmp(dir, now);
	if (removed > 0) {
		escape_text(dir, strlen(dir), shown, sizeof(shown));
		log_info("event=maildir_tmp_cleanup dir=\"%s\" removed=%zu note=\"files older "
			 "than %d hours\"",
			 shown, removed, MAILDIR_TMP_MAX_AGE / 3600);
	}
	return removed;
}

/* Would a link() failure mean "this file system has no hard links" (so rename instead)? */
static bool link_unsupported(int err)
{
	return err == EPERM || err == EOPNOTSUPP || err == ENOSYS;
}

/* See maildir.h. */
void maildir_deliver(const char *dir, int msg_fd, uint64_t msg_len, const char *return_path,
		     const char *delivered_to, const char *hostname, struct delivery_result *r)
{
	struct maildir_job *j;
	size_t hlen, dlen;
	uint64_t left, off = 0, size;
	int out = -1, rc;
	bool tmp_made = false, new_made = false, delivered = false, changed = false, cr = false;

	if (dir == NULL || dir[0] == '\0' || msg_fd < 0 || return_path == NULL ||
	    delivered_to == NULL) {
		set_sys_error(r, EINVAL, "delivery", dir != NULL ? dir : "(no maildir)");
		return;
	}
	/* Addresses come from our own envelope; a CR/LF there is corruption, never retryable. */
	if (!return_path_ok(return_path)) {
		result_set(r, OUTCOME_PERMFAIL, MAILDIR_ESC_BAD_SENDER,
			   "maildir: unusable Return-Path address");
		return;
	}
	if (has_crlf(delivered_to) || delivered_to[0] == '\0') {
		result_set(r, OUTCOME_PERMFAIL, MAILDIR_ESC_BAD_RCPT,
			   "maildir: unusable Delivered-To address");
		return;
	}

	j = xmalloc(sizeof(*j));
	if (!strcpy_bounded(j->dir, dir, sizeof(j->dir))) {
		set_sys_error(r, ENAMETOOLONG, "delivery", dir);
		goto out;
	}
	for (dlen = strlen(j->dir); dlen > 1 && j->dir[dlen - 1] == '/'; dlen--)
		j->dir[dlen - 1] = '\0';

	if (!xsnprintf_ok(j->buf, sizeof(j->buf), "Return-Path: %s\nDelivered-To: %s\n",
			  return_path, delivered_to)) {
		set_sys_error(r, ENAMETOOLONG, "header", delivered_to);
		goto out;
	}
	hlen = strlen(j->buf);
	left = msg_len;
	size = hlen;
	if (!maildir_names(j, hostname)) {
		set_sys_error(r, errno, "naming", j->dir);
		goto out;
	}

	/* The common case is an existing Maildir: try first, create on ENOENT only. */
	out = open(j->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0 && errno == ENOENT) {
		if (!maildir_create(j)) {
			set_sys_error(r, errno, "mkdir", j->scratch);
			goto out;
		}
		out = open(j->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (out < 0) {
		set_sys_error(r, errno, "create", j->tmp);
		goto out;
	}
	tmp_made = true;

	if (!write_all(out, j->buf, hlen)) {
		set_sys_error(r, errno, "write", j->tmp);
		goto out;
	}
	/* The queued file is immutable; if it ends early anyway, the copy is cut: retry later. */
	while (left > 0) {
		ssize_t n = pread(msg_fd, j->buf + 1,
				  left < MAILDIR_COPY_BUF ? (size_t)left : MAILDIR_COPY_BUF,
				  (off_t)off);
		size_t w;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			set_sys_error(r, errno, "reading message", "the queued message");
			goto out;
		}
		if (n == 0) {
			changed = true;
			break;
		}
		left -= (uint64_t)n;
		off += (uint64_t)n;
		w = crlf_to_lf(j->buf, (size_t)n, &cr);
		if (left == 0 && cr) /* a CR at the very end: no LF can follow */
			j->buf[w++] = '\r';
		if (!write_all(out, j->buf, w)) {
			set_sys_error(r, errno, "write", j->tmp);
			goto out;
		}
		size += w;
	}
	if (changed) {
		result_set(r, OUTCOME_TEMPFAIL, MAILDIR_ESC_IO,
			   "maildir: message file changed size during delivery");
		goto out;
	}
	if (fsync(out) != 0) {
		set_sys_error(r, errno, "fsync", j->tmp);
		goto out;
	}
	/* close() is where NFS reports a full disk or quota: it must be checked. */
	if (close(out) != 0) {
		out = -1;
		set_sys_error(r, errno, "close", j->tmp);
		goto out;
	}
	out = -1;
	if (!maildir_new_name(j, size)) {
		set_sys_error(r, errno, "naming", j->dir);
		goto out;
	}

	/*
	 * link(), not rename(): it never replaces an existing new/NAME.  new/
	 * may be missing in a half-made Maildir; a file system without hard
	 * links gets rename(), safe because NAME is unique.
	 */
	rc = link(j->tmp, j->new) == 0 ? 0 : errno;
	if (rc == ENOENT) {
		if (!maildir_create(j)) {
			set_sys_error(r, errno, "mkdir", j->scratch);
			goto out;
		}
		rc = link(j->tmp, j->new) == 0 ? 0 : errno;
	}
	if (rc != 0 && link_unsupported(rc)) {
		rc = rename(j->tmp, j->new) == 0 ? 0 : errno;
		if (rc == 0)
			tmp_made = false;
	}
	if (rc != 0) {
		set_sys_error(r, rc, "link", j->new);
		goto out;
	}
	new_made = true;
	/* Until new/ is fsynced the entry may vanish in a crash: not delivered yet. */
	if (!fsync_dir(j->newdir)) {
		set_sys_error(r, errno, "fsync", j->newdir);
		goto out;
	}
	delivered = true;
	result_set(r, OUTCOME_DELIVERED, MAILDIR_ESC_DELIVERED, "delivered to maildir %s", j->new);

out:
	if (out >= 0)
		close(out);
	/*
	 * Undo on failure.  Removing new/NAME after a failed directory fsync
	 * trades a possible loss of the copy for no duplicate: the queue still
	 * has the message and will deliver it again.
	 */
	if (!delivered && new_made)
		unlink(j->new);
	if (tmp_made)
		unlink(j->tmp); /* after success: only the new/ name remains */
	if (delivered)
		maildir_sweep_tmp(j->dir, time(NULL));
	free(j);
}
