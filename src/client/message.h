/*
 * message.h - the pure half of `hato send`: turn the text a user hands in
 * into the message that goes on the wire, and find its recipients in it.
 *
 *   message_normalize()   LF or CRLF line endings -> CRLF, a last line
 *                         without one ended; a bare CR or a NUL octet is
 *                         refused (RFC 5322 §2.3: hatod would refuse the
 *                         message after the whole transfer anyway).
 *   message_header_end()  where the header section ends (the empty line, or
 *                         the first line that is neither a field nor a
 *                         continuation), as header_fix.h defines it.
 *   message_has_field()   is a field of that name there (case-insensitive)?
 *   message_parse_addr_list()  the addr-specs of an RFC 5322 §3.4 address
 *                         list: display names, quoted strings, comments,
 *                         groups ("undisclosed-recipients:;"), folding,
 *                         obsolete routes and empty list elements.
 *   message_parse_addr_list_in()  the same, a bare local part ("root")
 *                         taken to be in a given domain (sendmail mode).
 *   message_prepare()     all of it for one message: recipients from To,
 *                         Cc and Bcc (-t), every Bcc field removed, From,
 *                         Date and Message-ID added when missing (by
 *                         header_fix, hatod's own header rewriter).
 *   message_format_mailbox()  "Full Name <addr>" for a From: to add, the
 *                         name quoted or RFC 2047-encoded as it needs.
 *
 * Addresses come out as "local@domain", validated and spelled by addr.c
 * (so exactly what goes between the angle brackets of RCPT TO).  Nothing
 * here does I/O, reads the clock or the environment.  The Date: value
 * comes from mail_date() (intake/mail_date.h), hato's one date function.
 *
 * Failure: functions that can refuse their input return false and put one
 * line saying why into err (e.g. "unterminated quoted string"); the caller
 * adds the context ("To: ") and decides the exit code.  Allocation goes
 * through xmalloc: it succeeds or the process ends.
 */
#ifndef HATO_MESSAGE_H
#define HATO_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "strbuf.h"

/* Envelope addresses, "local@domain" each, in order, without duplicates. */
struct message_addrs {
	char **v;
	size_t n;
	size_t cap;
};

void message_addrs_init(struct message_addrs *a);
void message_addrs_free(struct message_addrs *a);

/* Append a copy of addr unless it is there already (the domain compared
 * without regard to case, the local part exactly); true when appended. */
bool message_addrs_add(struct message_addrs *a, const char *addr);

/*
 * Parse the address list value[0..len) (a To/Cc/Bcc field body, folding
 * CRLFs allowed) and append each mailbox's address to out.  An empty list,
 * or a group with no members, adds nothing and is fine.  False with err set
 * on a syntax error or an address that is not a valid RFC 5321 mailbox;
 * addresses before the error may have been appended.
 */
bool message_parse_addr_list(const char *value, size_t len, struct message_addrs *out, char *err,
			     size_t errsize);

/* As message_parse_addr_list(), but an address without "@" ("root",
 * "<root>") is the local part of one in domain ("root@domain"); with
 * domain NULL it is refused, as there. */
bool message_parse_addr_list_in(const char *value, size_t len, const char *domain,
				struct message_addrs *out, char *err, size_t errsize);

/*
 * Append in[0..len) to out with every line ended by CRLF: LF and CRLF are
 * both taken as line endings, and a last line without one gets CRLF.  False
 * with err naming the line on a bare CR or a NUL octet (out is then
 * incomplete).
 */
bool message_normalize(const char *in, size_t len, struct strbuf *out, char *err, size_t errsize);

/*
 * The offset where the header section of the normalised message msg ends:
 * the start of the empty line that separates it from the body, of the first
 * line that is neither a field ("name:", name printable ASCII, optional
 * white space before the colon) nor a continuation (leading SP or HTAB), or
 * len.  *blank tells whether it ends with the empty line.
 */
size_t message_header_end(const char *msg, size_t len, bool *blank);

/* Is there a field called name (any case) in the header section of msg? */
bool message_has_field(const char *msg, size_t len, const char *name);

/* What message_prepare() adds and extracts. */
struct message_fill {
	const char *from;   /* value for a missing From: (e.g. "alice@example.org") */
	const char *date;   /* value for a missing Date: (mail_date) */
	const char *msgid;  /* value for a missing Message-ID: (mail_msgid) */
	bool extract;       /* -t: append the addresses of To, Cc and Bcc to rcpts */
	const char *domain; /* -t: of bare local parts in To, Cc, Bcc; NULL: refused */
};

/*
 * Prepare the message in[0..len) for submission into out (appended): its
 * lines normalised, every Bcc field removed with its continuation lines,
 * and the fields of fill that are missing inserted at the end of the header
 * section (followed by an empty line when the body began without one).
 * With fill->extract the addresses of To, Cc and Bcc are appended to rcpts.
 * False with err set ("line 3: bare CR", "Cc: missing '>'").
 */
bool message_prepare(const char *in, size_t len, const struct message_fill *fill,
		     struct strbuf *out, struct message_addrs *rcpts, char *err, size_t errsize);

/*
 * Append the mailbox "name <addr>" (RFC 5322 §3.4) to out: name as it is
 * when it is atoms and spaces, a quoted string when it holds other ASCII
 * ("\"Smith, J.\" <a@b>"), RFC 2047 "=?UTF-8?B?...?=" words when it holds
 * octets above 127; addr alone when name is empty or blank.  False (out
 * untouched) when name holds a control character: a CR or LF there would
 * start a new header field.
 */
bool message_format_mailbox(const char *name, const char *addr, struct strbuf *out);

#endif
