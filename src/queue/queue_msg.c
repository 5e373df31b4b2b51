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

#include "crc32c.h"
#include "util.h"

#define TRAILER_KEY "hato-queue: "
#define ENVELOPE_READ_MAX (16u * 1024 * 1024) /* no envelope hato writes comes near */

/* See queue_msg.h. */
void queue_msg_seal(struct strbuf *b, size_t env_start, uint64_t msglen, const uint32_t *crc)
{
	strbuf_printf(b, TRAILER_KEY "%d message=%" PRIu64 " envelope=%zu", QUEUE_MSG_VERSION,
		      msglen, b->len - env_start);
	if (crc != NULL)
		strbuf_printf(b, " crc32c=%08" PRIx32, *crc);
	strbuf_adds(b, "\n");
}

/* Cut the next word ("key=value") off *p: the value after "key=" up to the
 * next space or the end, split in place; NULL when the key is not next. */
static char *take(char **p, const char *key)
{
	size_t k = strlen(key);
	char *v, *end;

	if (strncmp(*p, key, k) != 0)
		return NULL;
	v = *p + k;
	end = strchr(v, ' ');
	if (end != NULL)
		*end = '\0';
	*p = end != NULL ? end + 1 : v + strlen(v);
	return v;
}

/* The number after "key=" at *p, decimal without leading zeros. */
static bool take_number(char **p, const char *key, uint64_t *n)
{
	char *v = take(p, key);

	return v != NULL && parse_u64(v, 0, UINT64_MAX, n) && (v[0] != '0' || v[1] == '\0');
}

/* The eight lower-case hex digits after "crc32c=" at *p. */
static bool take_crc(char **p, uint32_t *crc)
{
	char *v = take(p, "crc32c=");

	if (v == NULL || strlen(v) != 8 || strspn(v, "0123456789abcdef") != 8)
		return false;
	*crc = (uint32_t)strtoul(v, NULL, 16);
	return true;
}

/* See queue_msg.h. */
bool queue_msg_trailer(int fd, uint64_t size, struct queue_trailer *t)
{
	char buf[QUEUE_TRAILER_MAX + 1];
	size_t n = size < QUEUE_TRAILER_MAX ? (size_t)size : QUEUE_TRAILER_MAX, start;
	ssize_t got;
	char *p;
	uint64_t version;

	memset(t, 0, sizeof(*t));
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
	/* in the one form queue_msg_seal writes: no NUL, no stray spaces */
	if (memchr(p, '\0', n - 1 - start) != NULL || buf[n - 2] == ' ' || strstr(p, "  ") != NULL)
		goto bad;
	if (!take_number(&p, TRAILER_KEY, &version) || version != QUEUE_MSG_VERSION ||
	    !take_number(&p, "message=", &t->msglen) || !take_number(&p, "envelope=", &t->envlen))
		goto bad;
	if (*p != '\0') {
		if (!take_crc(&p, &t->crc) || *p != '\0')
			goto bad;
		t->has_crc = true;
	}
	/* message + envelope + trailer line == the file, without overflow */
	if (t->msglen > size || t->envlen > size - t->msglen ||
	    size - t->msglen - t->envlen != n - start)
		goto bad;
	return true;
bad:
	errno = EBADMSG;
	return false;
}

/* See queue_msg.h. */
bool queue_msg_verify(int fd, const struct queue_trailer *t)
{
	char buf[65536];
	uint64_t left = t->msglen + t->envlen;
	uint32_t crc = 0;
	off_t off = 0;

	if (!t->has_crc)
		return true;
	while (left > 0) {
		ssize_t n = pread(fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		if (n == 0)
			break;
		crc = crc32c(crc, buf, (size_t)n);
		left -= (uint64_t)n;
		off += n;
	}
	if (left != 0 || crc != t->crc) {
		errno = EBADMSG;
		return false;
	}
	return true;
}

/* See queue_msg.h. */
int queue_msg_open(const char *path, uint64_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	struct queue_trailer t;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !queue_msg_trailer(fd, (uint64_t)st.st_size, &t)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*len = t.msglen;
	return fd;
}

/* See queue_msg.h. */
char *queue_msg_envelope(int dirfd, const char *name, size_t *envlen, uint64_t *msglen)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC), e;
	struct stat st;
	struct queue_trailer t;
	uint64_t elen;
	char *text = NULL;
	ssize_t got;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !queue_msg_trailer(fd, (uint64_t)st.st_size, &t))
		goto out;
	*msglen = t.msglen;
	elen = t.envlen;
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
