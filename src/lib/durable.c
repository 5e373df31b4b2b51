/*
 * durable.c - temp file, write, fsync, rename, fsync directory.
 */
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

/* See durable.h. */
bool writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
			w -= (ssize_t)iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return true;
}

/* See durable.h. */
bool write_all(int fd, const void *buf, size_t len)
{
	struct iovec v = {(void *)buf, len};

	return len == 0 || writev_all(fd, &v, 1);
}

/* See durable.h. */
bool fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = fsync(fd) == 0;
	if (!ok) {
		int e = errno;
		close(fd);
		errno = e;
		return false;
	}
	close(fd);
	return true;
}

/* See durable.h. */
bool durable_writev_file(const char *dir, const char *name, struct iovec *iov, int n)
{
	char tmp[4096], final[4096];
	int fd, e;

	if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= (int)sizeof(tmp) ||
	    snprintf(final, sizeof(final), "%s/%s", dir, name) >= (int)sizeof(final)) {
		errno = ENAMETOOLONG;
		return false;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	if (!writev_all(fd, iov, n) || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, final) != 0)
		goto fail;
	return fsync_dir(dir);
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return false;
}

/* See durable.h. */
bool durable_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	struct iovec v = {(void *)data, len};

	return durable_writev_file(dir, name, &v, 1);
}
