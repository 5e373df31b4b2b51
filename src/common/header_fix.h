/*
 * header_fix.h - submission fix-ups of a message from an authenticated user
 * (RFC 6409 §8): remove every Bcc: field, add Date: and Message-ID: when
 * they are missing.
 *
 * header_fix_feed() takes the message as it arrives (dot-unstuffed, CRLF
 * lines, split anywhere) and appends the filtered bytes to a strbuf.  Every
 * byte passes through unchanged except:
 *   - a Bcc: field (the name matched case-insensitively and followed directly
 *     by ':', RFC 5322 §2.2) is dropped together with its continuation lines;
 *   - where the header section ends, "Date: <date>\r\n" and/or
 *     "Message-ID: <msgid>\r\n" are inserted if no such field was seen.
 * The header section ends just before the first line that is not a header
 * line: the empty line, or a line that is neither a field ("name:", name
 * printable ASCII, optionally followed by obsolete whitespace before the
 * colon, RFC 5322 §4.5) nor a continuation (leading SP or HTAB).  A
 * continuation as the very first line is kept in the header section too:
 * a field inserted before it would adopt it, and a Bcc: after it must go.
 * After the header section the body is passed through byte for byte.  A bare LF ends a
 * line like CRLF does; its bytes are kept.
 *
 * Memory is fixed: at most HEADER_FIX_NAME_MAX octets of a line are held
 * back to classify it, then the line streams.  A line whose first
 * HEADER_FIX_NAME_MAX octets are still a plausible field name is taken as a
 * field (none of Bcc, Date, Message-ID), so the header section goes on and a
 * later Bcc: is still removed.
 *
 * header_fix_finish() ends the message: a header section that never ended
 * (a message that is only headers, or empty) gets its missing fields there,
 * after a CRLF completing the last line if it lacked one.
 *
 * The date and message-id texts come from the caller, so the module is pure.
 * A value that is NULL, empty, longer than HEADER_FIX_VALUE_MAX - 1 octets or
 * contains CR or LF is a caller bug: header_fix_init() aborts with a message.
 */
#ifndef HATO_HEADER_FIX_H
#define HATO_HEADER_FIX_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define HEADER_FIX_NAME_MAX 128  /* octets of a line held back to classify it */
#define HEADER_FIX_VALUE_MAX 512 /* date / message-id text, NUL included */

struct header_fix {
	int state;            /* HF_* in header_fix.c */
	bool dropping;        /* the current field is a Bcc: its lines are dropped */
	bool cr;              /* the last octet of the kept line so far was CR */
	bool seen_date;       /* a Date: field was seen */
	bool seen_msgid;      /* a Message-ID: field was seen */
	bool added_date;      /* Date: was inserted */
	bool added_msgid;     /* Message-ID: was inserted */
	unsigned removed_bcc; /* Bcc: fields removed */
	size_t plen;          /* octets held in prefix */
	char prefix[HEADER_FIX_NAME_MAX];
	char date[HEADER_FIX_VALUE_MAX];
	char msgid[HEADER_FIX_VALUE_MAX];
};

/*
 * Start a message.  date_value is the text after "Date: " (RFC 5322 §3.3,
 * e.g. "Sun, 29 Nov 2026 01:30:00 +0000"), msgid_value the text after
 * "Message-ID: " (e.g. "<20261129013000.ABC@mx.example>"); both are copied.
 */
void header_fix_init(struct header_fix *h, const char *date_value, const char *msgid_value);

/* Filter len message bytes at p, appending the result to out. */
void header_fix_feed(struct header_fix *h, const char *p, size_t len, struct strbuf *out);

/*
 * End of message: flush a line held back and, if the header section never
 * ended, append the missing fields.  Bytes fed afterwards pass unchanged.
 */
void header_fix_finish(struct header_fix *h, struct strbuf *out);

/* For the log line: what was done to the message so far. */
bool header_fix_added_date(const struct header_fix *h);
bool header_fix_added_msgid(const struct header_fix *h);
unsigned header_fix_removed_bcc(const struct header_fix *h);

#endif
