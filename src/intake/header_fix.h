/*
 * header_fix.h - submission fix-ups of a message from an authenticated user
 * (RFC 6409 §8) or from `hato send`: remove every Bcc: field, add Date: and
 * Message-ID: (and for `hato send` From:) when they are missing.  The one
 * header rewriter of hato: intake runs it on messages hatod receives,
 * message_prepare() (client/message.c) on what `hato send` submits.
 *
 * header_fix_feed() takes the message as it arrives (dot-unstuffed, CRLF
 * lines, split anywhere) and appends the filtered bytes to a strbuf.  Every
 * byte passes through unchanged except:
 *   - a Bcc: field (the name matched case-insensitively and followed directly
 *     by ':', RFC 5322 §2.2) is dropped together with its continuation lines;
 *   - where the header section ends, "From: <from>\r\n", "Date: <date>\r\n"
 *     and "Message-ID: <msgid>\r\n" are inserted, in that order, for each
 *     value given whose field was not seen;
 *   - with separate set, an empty line follows the inserted fields when the
 *     header section ended at a line that is not the empty line (a body
 *     that began without its separator), so that line stays body.
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
 * The values come from the caller, so the module is pure; they are borrowed,
 * not copied: they must stay valid until header_fix_finish().  A value that
 * is empty, longer than HEADER_FIX_VALUE_MAX - 1 octets (RFC 5322 §2.1.1's
 * line limit) or contains CR or LF is a caller bug: header_fix_start()
 * aborts with a message.
 */
#ifndef HATO_HEADER_FIX_H
#define HATO_HEADER_FIX_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define HEADER_FIX_NAME_MAX 128  /* octets of a line held back to classify it */
#define HEADER_FIX_VALUE_MAX 998 /* a value's text, NUL included */

/* The fields to add when missing; NULL: that field is never added. */
struct header_fix_fill {
	const char *from;  /* text after "From: " */
	const char *date;  /* text after "Date: " (mail_date()) */
	const char *msgid; /* text after "Message-ID: " */
	bool separate;     /* end the header with an empty line after added fields */
};

struct header_fix {
	int state;            /* HF_* in header_fix.c */
	bool dropping;        /* the current field is a Bcc: its lines are dropped */
	bool cr;              /* the last octet of the kept line so far was CR */
	bool seen_from;       /* a From: field was seen */
	bool seen_date;       /* a Date: field was seen */
	bool seen_msgid;      /* a Message-ID: field was seen */
	bool added_from;      /* From: was inserted */
	bool added_date;      /* Date: was inserted */
	bool added_msgid;     /* Message-ID: was inserted */
	unsigned removed_bcc; /* Bcc: fields removed */
	size_t plen;          /* octets held in prefix */
	char prefix[HEADER_FIX_NAME_MAX];
	struct header_fix_fill fill; /* the caller's values, borrowed */
};

/* Start a message with the fields of fill to add (fill itself is copied). */
void header_fix_start(struct header_fix *h, const struct header_fix_fill *fill);

/*
 * Start a message with the submission service's fix-ups: date_value is the
 * text after "Date: " (RFC 5322 §3.3, e.g. "Sun, 29 Nov 2026 01:30:00
 * +0000"), msgid_value the text after "Message-ID: " (e.g.
 * "<20261129013000.ABC@mx.example>"); both required, both borrowed.
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
bool header_fix_added_from(const struct header_fix *h);
bool header_fix_added_date(const struct header_fix *h);
bool header_fix_added_msgid(const struct header_fix *h);
unsigned header_fix_removed_bcc(const struct header_fix *h);

#endif
