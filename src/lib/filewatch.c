/*
 * filewatch.c - read a bounded file whole with its stamp; read it again
 * only when the stamp changed.  See filewatch.h.
 */
#include "filewatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errbuf.h"
#include "util.h"

/* The stamp of st. */
static void stamp_from(struct filewatch_stamp *s, const struct stat *st)
{
	memset(s, 0, sizeof(*s));
	s->present = true;
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = st->st_size;
	s->mtime = st->st_mtim;
}

/* Same version of the file? */
static bool stamp_equal(const struct filewatch_stamp *a, const struct filewatch_stamp *b)
{
	if (a->present != b->present)
		return false;
	if (!a->present)
		return true;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * See filewatch.h.  Without FILEWATCH_MAY_GROW the buffer has room for one
 * octet more than the size, so a file that grew is seen, not cut.  With it
 * the buffer starts at the size (plus the NUL) and doubles when full, but a
 * full buffer over max is refused: a file of exactly max octets fills its
 * first buffer and is refused too.
 */
bool filewatch_read(const char *path, size_t max, unsigned flags, char **bufp, size_t *lenp,
		    struct filewatch_stamp *stamp, struct stat *st, char *err, size_t errsz)
{
	bool grow = (flags & FILEWATCH_MAY_GROW) != 0;
	struct stat sb;
	size_t len = 0, cap;
	char *buf;
	int fd, e;

	*bufp = NULL;
	*lenp = 0;
	memset(stamp, 0, sizeof(*stamp));
	if (st != NULL)
		memset(st, 0, sizeof(*st));
	/* O_NONBLOCK: a FIFO put in the file's place must not hang the caller */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		if (e == ENOENT && (flags & FILEWATCH_MISSING_EMPTY) != 0) {
			*bufp = xstrdup("");
			return true;
		}
		set_err(err, errsz, e, "%s: %s", path, strerror(e));
		return false;
	}
	if (fstat(fd, &sb) != 0) {
		e = errno;
		close(fd);
		set_err(err, errsz, e, "%s: %s", path, strerror(e));
		return false;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		set_err(err, errsz, EINVAL, "%s: not a regular file", path);
		return false;
	}
	if ((size_t)sb.st_size > max) { /* a regular file's size is not negative */
		close(fd);
		set_err(err, errsz, EFBIG, "%s: larger than %zu octets", path, max);
		return false;
	}
	cap = (size_t)sb.st_size + (grow ? 1 : 2);
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) { /* full: only a file that may grow gets here */
			if (cap > max) {
				set_err(err, errsz, EFBIG, "%s: larger than %zu octets", path, max);
				goto fail;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			set_err(err, errsz, e, "%s: %s", path, strerror(e));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (!grow && len > (size_t)sb.st_size) {
			set_err(err, errsz, EAGAIN, "%s: changed while being read", path);
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	stamp_from(stamp, &sb);
	if (st != NULL)
		*st = sb;
	*bufp = buf;
	*lenp = len;
	return true;
fail:
	e = errno;
	free(buf);
	close(fd);
	errno = e;
	return false;
}

/* See filewatch.h. */
void filewatch_init(struct filewatch *fw, const char *path, size_t max, unsigned flags,
		    filewatch_parse_fn *parse, void *arg)
{
	memset(fw, 0, sizeof(*fw));
	fw->path = path;
	fw->max = max;
	fw->flags = flags;
	fw->parse = parse;
	fw->arg = arg;
}

/* See filewatch.h. */
bool filewatch_load(struct filewatch *fw, char *err, size_t errsz)
{
	struct filewatch_stamp stamp;
	size_t len;
	char *buf;

	if (!filewatch_read(fw->path, fw->max, fw->flags, &buf, &len, &stamp, NULL, err, errsz))
		return false; /* not remembered: EACCES while the owner is put back passes */
	if (!fw->parse(fw->arg, fw->path, buf, len, err, errsz)) {
		int e = errno;

		free(buf);
		fw->bad = true;
		fw->bad_stamp = stamp;
		strcpy_bounded(fw->bad_err, err, sizeof(fw->bad_err));
		errno = e;
		return false;
	}
	free(buf);
	fw->stamp = stamp;
	fw->bad = false;
	return true;
}

/* See filewatch.h. */
bool filewatch_refresh(struct filewatch *fw, char *err, size_t errsz)
{
	struct filewatch_stamp now;
	struct stat st;

	memset(&now, 0, sizeof(now));
	if (stat(fw->path, &st) == 0) {
		stamp_from(&now, &st);
	} else if (errno != ENOENT || (fw->flags & FILEWATCH_MISSING_EMPTY) == 0) {
		int e = errno;

		set_err(err, errsz, e, "%s: %s", fw->path, strerror(e));
		return false;
	}
	if (stamp_equal(&now, &fw->stamp))
		return true;
	if (fw->bad && stamp_equal(&now, &fw->bad_stamp)) {
		set_err(err, errsz, EINVAL, "%s", fw->bad_err);
		return false;
	}
	return filewatch_load(fw, err, errsz);
}
