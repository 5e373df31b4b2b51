/*
 * queue_msg.c - the queued message file's trailer: writing it, finding
 * the message and the envelope by it.  See queue_msg.h for the layout.
 */
#include "queue_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "durable.h"
#include "util.h"

#define TRAILER_KEY "hato-queue: "
#define ENVELOPE_READ_MAX (16u * 1024 * 1024) /* no envelope hato writes comes near */

/* See queue_msg.h. */
void queue_msg_seal(struct strbuf *b, size_t env_start, uint64_t msglen)
{
	strbuf_printf(b, TRAILER_KEY "%d message=%" PRIu64 " envelope=%zu\n", QUEUE_MSG_VERSION,
		      msglen, b->len - env_start);
}

/* The number after "key=" at *p up to the next space or the end; advances
 * *p past it.  The text is split in place. */
static bool take_number(char **p, const char *key, uint64_t *v)
{
	size_t k = strlen(key);
	char *end;

	if (strncmp(*p, key, k) != 0)
		return false;
	*p += k;
	end = strchr(*p, ' ');
	if (end != NULL)
		*end = '\0';
	if (!parse_u64(*p, 0, UINT64_MAX, v) || ((*p)[0] == '0' && (*p)[1] != '\0'))
		return false;
	*p = end != NULL ? end + 1 : *p + strlen(*p);
	return true;
}

/* See queue_msg.h. */
bool queue_msg_trailer(int fd, uint64_t size, uint64_t *msglen, uint64_t *envlen)
{
	char buf[QUEUE_TRAILER_MAX + 1];
	size_t n = size < QUEUE_TRAILER_MAX ? (size_t)size : QUEUE_TRAILER_MAX, start;
	ssize_t got;
	char *p;
	uint64_t version, m, e;

	if (n < 2)
		goto bad;
	got = pread(fd, buf, n, (off_t)(size - n));
	if (got < 0)
		return false;
	if ((size_t)got != n || buf[n - 1] != '\n')
		goto bad;
	buf[n - 1] = '\0';
	start = n - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && n == QUEUE_TRAILER_MAX)
		goto bad; /* no line start within reach: not a trailer */
	p = buf + start;
	if (!take_number(&p, TRAILER_KEY, &version) || version != QUEUE_MSG_VERSION ||
	    !take_number(&p, "message=", &m) || !take_number(&p, "envelope=", &e) || *p != '\0')
		goto bad;
	/* message + envelope + trailer line == the file, without overflow */
	if (m > size || e > size - m || size - m - e != n - start)
		goto bad;
	*msglen = m;
	*envlen = e;
	return true;
bad:
	errno = EBADMSG;
	return false;
}

/* See queue_msg.h. */
int queue_msg_open(const char *path, uint64_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint64_t envlen;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !queue_msg_trailer(fd, (uint64_t)st.st_size, len, &envlen)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* See queue_msg.h. */
char *queue_msg_envelope(int dirfd, const char *name, size_t *envlen, uint64_t *msglen)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC), e;
	struct stat st;
	uint64_t elen;
	char *text = NULL;
	ssize_t got;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !queue_msg_trailer(fd, (uint64_t)st.st_size, msglen, &elen))
		goto out;
	if (elen > ENVELOPE_READ_MAX) {
		errno = EFBIG;
		goto out;
	}
	text = xmalloc((size_t)elen + 1);
	got = pread(fd, text, (size_t)elen, (off_t)*msglen);
	if (got < 0 || (uint64_t)got != elen) {
		if (got >= 0)
			errno = EBADMSG;
		free(text);
		text = NULL;
		goto out;
	}
	text[elen] = '\0';
	*envlen = (size_t)elen;
out:
	e = errno;
	close(fd);
	errno = e;
	return text;
}

/* See queue_msg.h. */
bool queue_msg_remove(const char *queue_dir, const char *id)
{
	char path[4200];

	/* the message file goes first: without it nothing is queued any more */
	snprintf(path, sizeof(path), "%s/%s.msg", queue_dir, id);
	if (unlink(path) != 0 && errno != ENOENT)
		return false;
	snprintf(path, sizeof(path), "%s/%s.env", queue_dir, id);
	unlink(path); /* left over: removed at the next start */
	fsync_dir(queue_dir);
	return true;
}
