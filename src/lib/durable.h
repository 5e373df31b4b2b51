/*
 * durable.h - the one durable-write protocol: create a temp file with
 * O_EXCL, write it all, fsync it, rename it over the final name, fsync the
 * directory.  durable_writev_file() does the whole dance (the queue's
 * envelope updates and injected messages, the users file, TLS files); the
 * queue's group commit uses the same steps, split so that one directory
 * fsync covers a batch.  On any failure the temp file
 * is removed and errno is kept for the caller.
 */
#ifndef HATO_DURABLE_H
#define HATO_DURABLE_H

#include <stdbool.h>
#include <stddef.h>

/* write() all of buf, retrying short writes and EINTR. */
bool write_all(int fd, const void *buf, size_t len);

struct iovec;
/* Write all of iov[0..n) (which it may change) to fd, retrying short writes
 * and EINTR; false with errno set on error. */
bool writev_all(int fd, struct iovec *iov, int n);

/* fsync the directory at path. */
bool fsync_dir(const char *path);

/* Write iov[0..n) (which it may change) to dir/name durably, via
 * dir/name.tmp; false with errno, and no dir/name.tmp left.  After a failed
 * directory fsync dir/name may exist without being durable. */
bool durable_writev_file(const char *dir, const char *name, struct iovec *iov, int n);

/* durable_writev_file of one buffer. */
bool durable_write_file(const char *dir, const char *name, const void *data, size_t len);

#endif
