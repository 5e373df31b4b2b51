/*
 * fuzz_queue_msg.c - the queue file's trailer reader (src/queue/queue_msg.c):
 * the input is a whole queue file (in a memfd); queue_msg_trailer() reads
 * its last line and queue_msg_verify() checks the checksum.  Invariants: an
 * accepted trailer's lengths and its line add up to the file, and writing
 * the trailer again from what was read gives the same last line octet for
 * octet (one form only).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "queue_msg.h"
#include "strbuf.h"

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_trailer t;
	struct strbuf b;
	int fd = memfd_create("queue-file", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	if (queue_msg_trailer(fd, size, &t)) {
		size_t start = (size_t)(t.msglen + t.envlen);

		if (t.msglen > size || t.envlen > size || start >= size)
			abort();
		/* the envelope, sealed again: the same octets to the end */
		strbuf_init(&b);
		strbuf_add(&b, (const char *)data + t.msglen, (size_t)t.envlen);
		queue_msg_seal(&b, 0, t.msglen, t.has_crc ? &t.crc : NULL);
		if (b.len != size - t.msglen || memcmp(b.s, data + t.msglen, b.len) != 0)
			abort();
		strbuf_free(&b);
		(void)queue_msg_verify(fd, &t);
	}
	close(fd);
	return 0;
}
