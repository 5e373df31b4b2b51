/*
 * dsn_report.h - build delivery status notifications: the multipart/report
 * messages (RFC 6522, RFC 3464) hato sends back to a sender when mail
 * fails, is delayed, or was delivered and the sender asked to hear of it
 * (RFC 3461 §6).  Pure apart from reading the queued original from the fd
 * it is given: the caller hands in what happened and the clock, and
 * queues what comes out.
 *
 * The report has three parts:
 *   1. text/plain: what happened to each recipient, for a person;
 *   2. message/delivery-status: the same as fields for a program;
 *   3. the original: text/rfc822-headers with its header section, or
 *      message/rfc822 with all of it when RET=FULL asked for it, a
 *      recipient failed and it is at most max_full octets with no line
 *      over 998 octets.  Part 1 says when it had to be headers only.
 *      A delay or success report always returns the header section only.
 *
 * 8-bit originals and addresses (RFC 6533): when the returned header
 * section holds an octet above 127, or the sender or a final recipient
 * is not ASCII, the report uses the internationalised forms:
 * report-type=global-delivery-status, message/global-delivery-status
 * (a non-ASCII address as "utf-8; addr"), message/global-headers or
 * message/global, and a utf-8 text part.  dsn_built.smtputf8 then says the
 * report needs SMTPUTF8 to travel.  An 8-bit body in an ASCII-header
 * original returned whole is message/rfc822 with Content-Transfer-Encoding
 * 8bit (dsn_built.eightbit: BODY=8BITMIME).
 *
 * ENVID and ORCPT arrive in xtext (RFC 3461 §4), which is only how SMTP
 * carries them; the report carries what the sender wrote (RFC 3464
 * §2.3.1: the address "is the same as that provided by the sender"), so
 * Original-Envelope-Id and the address of Original-Recipient are
 * xtext-decoded: "Original-Recipient: rfc822; a+b@c" for ORCPT=rfc822;a+2Bb@c.
 * A value that is not well-formed xtext, or decodes to anything but
 * printable ASCII, is kept as given (xtext is printable ASCII itself); an
 * ORCPT without a type becomes "unknown; ...".  The caller decides whether
 * a report goes out at all (NOTIFY, the null sender); this module does not
 * see NOTIFY.
 *
 * Every line is CRLF-terminated and at most 998 octets (RFC 5322 §2.1.1).
 * Text from outside (replies, addresses, names) has CR, LF and other
 * controls turned into spaces, so it can never start a field or end a part;
 * long field values are folded at spaces, a run of more than DSN_WORD_MAX
 * octets without one is split, and a diagnostic is cut at DSN_DIAG_MAX
 * octets ("...").  Lines of the original over 998 octets are cut in the
 * returned header section; a bare LF in it ends a line like CRLF, and a
 * stray CR or a NUL becomes a space.  The multipart boundary holds the queue ID and
 * random hex and is checked against every part; it is changed until it
 * occurs in none.
 */
#ifndef HATO_DSN_REPORT_H
#define HATO_DSN_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "strbuf.h"

#define DSN_LINE_MAX 998             /* octets of a line, CRLF excluded (RFC 5322 §2.1.1) */
#define DSN_HEADERS_MAX (128 * 1024) /* octets of the original read for its header section */
#define DSN_DIAG_MAX 2048            /* octets of a diagnostic kept */
#define DSN_WORD_MAX 900             /* longest run without a space kept on one line */

enum dsn_action {
	DSN_ACTION_FAILED,    /* given up: a bounce */
	DSN_ACTION_DELAYED,   /* still being retried: a delay warning */
	DSN_ACTION_DELIVERED, /* in the mailbox */
	DSN_ACTION_RELAYED,   /* handed to a server that will not report success */
	DSN_ACTION_EXPANDED,  /* delivered to an alias and sent on to its members */
};

struct dsn_rcpt {
	const char *addr;  /* the final recipient, "<a@b>" */
	const char *orcpt; /* ORCPT as the client gave it, "rfc822;a+2Bb@c" (xtext), or NULL */
	enum dsn_action action;
	const char *status;     /* "5.1.1"; NULL or malformed: X.0.0 of the action's class */
	const char *remote_mta; /* "mx.example.net", or NULL when no server was reached */
	const char *diagnostic; /* the reply, "550 5.1.1 no such user", or NULL */
	time_t last_attempt;    /* 0: none */
	time_t retry_until;     /* delayed: when the queue gives up; 0: omit */
};

struct dsn_report {
	const char *hostname; /* Reporting-MTA, Message-ID and From: MAILER-DAEMON@hostname */
	const char *queue_id; /* the original's queue ID (X-Hato-Queue-ID, the text), or NULL */
	const char *envid;    /* ENVID as the client gave it (xtext), or NULL */
	const char *to;       /* the original sender, "<a@b>": who gets the report */
	time_t arrival;       /* Arrival-Date; 0: omit */
	bool ret_full;        /* RET=FULL: return the whole message, else headers only */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
	time_t now; /* Date:, and the Message-ID */
};

/* What the built report needs from the transport that carries it. */
struct dsn_built {
	bool eightbit;      /* an octet above 127: send with BODY=8BITMIME */
	bool smtputf8;      /* RFC 6533 forms or a UTF-8 address: send with SMTPUTF8 */
	bool returned_full; /* part 3 is the whole original */
	bool returned_any;  /* there is a part 3 (not for an empty or absent original) */
};

/*
 * Build the report into out (appended; CRLF lines, ready for the queue)
 * from the queued message, the first msg_len octets of msg_fd (CRLF lines,
 * hato's Received: first; read with pread from offset 0), reading at most
 * max_full + 1 octets of it when it is returned whole, and otherwise only
 * up to the end of its header section, at most DSN_HEADERS_MAX octets.
 * msg_fd -1 builds a report without the original.  Subject by kind: a bounce when any recipient
 * failed, else a delay warning when any is delayed, else a success report.  built (may be NULL)
 * says what the result needs.  False with err set (errno kept) when the original cannot be read, or
 * EINVAL for a report without hostname, sender (or with the null sender: never report to <>) or
 * recipients; out is then unchanged.
 */
bool dsn_build(const struct dsn_report *r, int msg_fd, uint64_t msg_len, uint64_t max_full,
	       struct strbuf *out, struct dsn_built *built, char *err, size_t errsz);

/* "failed", "delayed", "delivered", "relayed", "expanded" (RFC 3464 §2.3.3). */
const char *dsn_action_name(enum dsn_action a);

#endif
