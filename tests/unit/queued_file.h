/*
 * queued_file.h - for unit tests: write a message as the queue stores it
 * (message, envelope, trailer: queue_msg.h), which is what the delivery
 * code reads.
 */
#ifndef HATO_TEST_QUEUED_FILE_H
#define HATO_TEST_QUEUED_FILE_H

#include <fcntl.h>
#include <unistd.h>

#include "queue_msg.h"
#include "strbuf.h"

/* Write msg[0..len) to path as a queue file, mode 0600; false on failure. */
static inline bool write_queued(const char *path, const void *msg, size_t len)
{
	struct strbuf b;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok;

	strbuf_init(&b);
	strbuf_add(&b, msg, len);
	strbuf_adds(&b, "hato-envelope: 1\n");
	queue_msg_seal(&b, len, len, NULL);
	ok = fd >= 0 && write(fd, b.s, b.len) == (ssize_t)b.len;
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	strbuf_free(&b);
	return ok;
}

#endif
