/*
 * maildrop.h - the drop file: how `hato send` (sendmail mode) hands a
 * message to hatod, durably, whether or not hatod is running.
 *
 * A drop file is written by the client as MAILDROP_DIR/.tmp-UNIQUE (O_EXCL,
 * mode 0640), fsynced, renamed to MAILDROP_DIR/UNIQUE.drop, and the
 * directory fsynced: once rename returned, the message is hatod's.  hatod
 * picks files up at start, as they appear (inotify), and every minute; it
 * commits each into its queue and only then removes the drop file.
 *
 *   hato-drop: 1
 *   sender: <alice@host.example>       ("<>" allowed)
 *   rcpt: <bob@example.org>            (one line per recipient, at least one)
 *   (an empty line)
 *   the message: CRLF lines, not dot-stuffed
 *
 * The sender and recipients are full RFC 5321 paths.  hatod trusts neither
 * the sender's identity nor anything but the file's owner (fstat): the
 * Received: header names the uid.
 */
#ifndef HATO_MAILDROP_H
#define HATO_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define MAILDROP_VERSION 1
#define MAILDROP_SUFFIX ".drop"
#define MAILDROP_HEADER_MAX 65536 /* octets of the header part */

/* Append the header part (through the empty line) for sender and rcpts. */
void maildrop_format_header(struct strbuf *b, const char *sender, const char *const *rcpts,
			    size_t n);

struct maildrop_header {
	char *sender;
	char **rcpts;
	size_t nrcpts;
	size_t length; /* octets of the header part, the empty line included */
};

/* Parse the header part at the start of buf[0..len); false with a reason. */
bool maildrop_parse_header(const char *buf, size_t len, struct maildrop_header *h, char *err,
			   size_t errsz);
void maildrop_header_free(struct maildrop_header *h);

#endif
