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
 *   ret: hdrs                          (optional: sendmail -R, full or hdrs)
 *   envid: abc+2Bdef                   (optional: sendmail -V, xtext)
 *   notify: success,failure            (optional: sendmail -N, every recipient's)
 *   rcpt: <bob@example.org>            (one line per recipient, at least one)
 *   (an empty line)
 *   the message: CRLF lines, not dot-stuffed
 *
 * The sender and recipients are full RFC 5321 paths.  ret, envid and
 * notify are the DSN requests (RFC 3461) of the envelope file, in its
 * forms (envelope.h), each at most once and written only when given.  hatod trusts neither
 * the sender's identity nor anything but the file's owner (fstat): the
 * Received: header names the uid.
 */
#ifndef HATO_MAILDROP_H
#define HATO_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>

#include "dsn.h"
#include "strbuf.h"

#define MAILDROP_VERSION 1
#define MAILDROP_SUFFIX ".drop"
#define MAILDROP_HEADER_MAX 65536 /* octets of the header part */

/* The DSN requests of a submission: for the message and every recipient. */
struct maildrop_dsn {
	enum dsn_ret ret;  /* DSN_RET_UNSPEC when not given */
	const char *envid; /* xtext (dsn_valid_envid), or NULL */
	unsigned notify;   /* enum dsn_notify bits, 0 when not given */
};

/* Append the header part (through the empty line) for sender, the DSN
 * requests (dsn may be NULL: none) and rcpts. */
void maildrop_format_header(struct strbuf *b, const char *sender, const struct maildrop_dsn *dsn,
			    const char *const *rcpts, size_t n);

struct maildrop_header {
	char *sender;
	enum dsn_ret ret; /* DSN_RET_UNSPEC when the file has no "ret:" */
	char *envid;      /* NULL when the file has no "envid:" */
	unsigned notify;  /* 0 when the file has no "notify:" */
	char **rcpts;
	size_t nrcpts;
	size_t length; /* octets of the header part, the empty line included */
};

/* Parse the header part at the start of buf[0..len); false with a reason. */
bool maildrop_parse_header(const char *buf, size_t len, struct maildrop_header *h, char *err,
			   size_t errsz);
void maildrop_header_free(struct maildrop_header *h);

#endif
