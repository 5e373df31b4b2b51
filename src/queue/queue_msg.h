/*
 * queue_msg.h - the queued message file: message, envelope, trailer.
 *
 * queue/ID.msg holds, in this order:
 *   the message octets as they go out (our Received: header first);
 *   the envelope as it was committed (envelope.h);
 *   one trailer line: "hato-queue: 1 message=2148 envelope=311\n", or
 *   with a checksum of both, "... envelope=311 crc32c=1c2d3e4f\n".
 * The trailer's lengths add up to the file's size with the trailer itself,
 * so a file that was cut short or grew is recognised.  One file per
 * message.  A file committed by its rename into queue/ (streamed while it
 * arrived) needs no checksum: it was whole on disk before the rename.  A
 * file written straight into queue/ carries one, so that one a crash cut
 * short is recognised however its blocks reached the disk.
 *
 * Once a delivery attempt changed a recipient, the envelope is kept in
 * queue/ID.env (queue_update); when present it stands for the envelope
 * inside ID.msg, which never changes after the commit.  These functions
 * are the queue's own (and its tests'); everyone else goes through
 * queue.h.
 */
#ifndef HATO_QUEUE_MSG_H
#define HATO_QUEUE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define QUEUE_MSG_VERSION 1
#define QUEUE_TRAILER_MAX 96 /* the trailer line's longest form, with room */

/* A trailer's contents. */
struct queue_trailer {
	uint64_t msglen; /* the message's octets, from the start of the file */
	uint64_t envlen; /* the envelope's, right after */
	bool has_crc;    /* crc32c= given */
	uint32_t crc;    /* CRC-32C of message and envelope */
};

/* Append the trailer for a message of msglen octets followed by the
 * envelope text already in b from offset env_start on; with crc, the
 * CRC-32C of both. */
void queue_msg_seal(struct strbuf *b, size_t env_start, uint64_t msglen, const uint32_t *crc);

/* Read the trailer of an open queue file of size octets.  false (errno
 * EBADMSG or a read error) when the file has no valid trailer. */
bool queue_msg_trailer(int fd, uint64_t size, struct queue_trailer *t);

/* Does the file's content match its trailer's checksum (true without
 * one)?  false with errno: EBADMSG when it does not, or a read error. */
bool queue_msg_verify(int fd, const struct queue_trailer *t);

/* Open a queued message file for reading: the fd (at offset 0) and the
 * message's length in *len, which ends before the envelope; -1 with errno
 * (EBADMSG: not a valid queue file). */
int queue_msg_open(const char *path, uint64_t *len);

/* The envelope text of queue/ID.msg (dirfd: queue/) in a fresh
 * NUL-terminated allocation, its length in *envlen and the message's in
 * *msglen; NULL with errno. */
char *queue_msg_envelope(int dirfd, const char *name, size_t *envlen, uint64_t *msglen);

#endif
