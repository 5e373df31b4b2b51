/*
 * intake.h - the one gate every message passes on its way into the queue,
 * whoever hands it in: an SMTP session (DATA or BDAT), the maildrop
 * directory (pickup), or hato itself (delivery reports).  Postfix calls this stage cleanup(8).
 *
 * Intake owns what a message must go through once, whatever its way in:
 *   - our Received: header (RFC 5321 §4.4), written first;
 *   - the loop count: more than received_max Received: fields in the header
 *     refuse the message (STATUS_LOOP, 554 5.4.6);
 *   - the size limit: more than message_size_max octets (STATUS_TOO_BIG);
 *   - the free-space reserve: min_free_space must stay free in the spool,
 *     before the message (with its declared size) and at its end
 *     (STATUS_DISK_FULL, 452 4.3.1);
 *   - the submission fix-ups (RFC 6409 §8, header_fix.h): Date: and
 *     Message-ID: added when missing, Bcc: removed, when the receiver says
 *     they apply (mail from an authenticated user);
 *   - the date of all of it (mail_date.h).
 *
 * A message hato makes itself (a delivery report) is whole in memory and
 * made on a delivery thread: intake_local_begin starts it with our
 * Received: header, the maker appends the message, and intake_inject gives
 * the envelope its local origin and commits it (queue_inject).  The limits
 * for what others send do not apply to it: it quotes a message already
 * accepted, and the free-space reserve is kept for such notices (a full
 * disk still fails the commit, and the maker tries again later).
 *
 * A stage, not a buffer: the receiver opens an intake for a transaction
 * (intake_open: the envelope, how the message came in, whether fix-ups
 * apply), feeds it the message octets as they arrive (intake_write: the
 * octets go through the fix-ups straight to the queue file, no copy of the
 * message is kept), and finishes it (intake_finish: the checks are decided,
 * then the message is committed to the queue).  The receiver keeps its own
 * protocol: it chooses the reply for what intake returns (enum status, so
 * every SMTP reply and enhanced status code stays in status.c's table) and
 * judges the octets' form (bare CR or LF, NUL, line length), which it hands
 * to intake_finish.
 *
 * intake_finish is the end-of-message step: first the limits, in a fixed
 * order (the first failure during the message, the loop count, the header
 * fix-ups' end, free space, then the receiver's verdict on the form), then
 * the commit.  What a later stage does to a whole message (content
 * filters, DKIM signing) belongs between the two, in intake_finish, where
 * the message is complete and may still be refused.
 *
 * Failure: the first failure while the message arrives (too big, a write
 * error) is sticky: the rest is counted and dropped, and intake_finish
 * returns it.  A refused message's file is removed; nothing is committed.
 * Event loop only (queue_has_space and queue_commit are).
 */
#ifndef HATO_INTAKE_H
#define HATO_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data_reader.h"
#include "envelope.h"
#include "header_fix.h"
#include "mail_date.h"
#include "queue.h"
#include "status.h"
#include "strbuf.h"

struct conf;

/* Room for a log key such as "session=0123456789ABCDEF". */
#define INTAKE_LOG_KEY_MAX 128
/* Room for our Message-ID: "<QUEUEID@hostname>". */
#define INTAKE_MSGID_MAX (QUEUE_ID_LEN + 300)

/* Who hands a message in: the form of its Received: header. */
enum intake_source {
	INTAKE_SMTP,   /* an SMTP session: "from HELO (NAME [ADDR]) ... by HOST with PROTO" */
	INTAKE_PICKUP, /* the maildrop directory: "by HOST (hato, from userid UID)" */
};

/* How a message came in, beyond its envelope (which gives the client's
 * address, name, HELO, authenticated user and the recipients). */
struct intake_origin {
	enum intake_source source;
	bool esmtp;              /* SMTP: after EHLO, not HELO */
	const char *tls_version; /* SMTP over TLS: "TLSv1.3"; NULL: plaintext */
	const char *tls_cipher;  /* with tls_version */
	unsigned uid;            /* pickup: the owner of the drop file */
	bool fixups;             /* apply the submission fix-ups */
	const char *log_key;     /* names the receiver in log lines: "session=ID" */
};

/* One message on its way in; a receiver keeps one and opens it per message. */
struct intake {
	const struct conf *conf;
	struct queue *q;
	struct envelope *env; /* the receiver's, while open; its id and size are set here */
	bool open;
	struct qfile qf;
	enum status error; /* sticky: the first failure while the message arrived */
	struct header_scan hs;
	bool fixing;
	struct header_fix hfix;
	struct strbuf fixbuf; /* fixed-up octets on their way to the file */
	char date[MAIL_DATE_SIZE];
	char msgid[INTAKE_MSGID_MAX];
	char log_key[INTAKE_LOG_KEY_MAX];
};

/* Set up an intake for messages into q under c's limits (nothing open). */
void intake_init(struct intake *in, const struct conf *c, struct queue *q);

/* Abort an open message and release what the intake holds. */
void intake_free(struct intake *in);

/* Is there room for a message of size octets above min_free_space? (For
 * MAIL ... SIZE=, before a message is opened.) */
bool intake_has_room(struct intake *in, uint64_t size);

/*
 * Start a message for env: check free space for declared octets (0 when
 * unknown), create its queue file (env->id becomes its queue id, env->size
 * 0) and write our Received: header.  STATUS_OK, or the status to answer
 * (nothing is then open).  env must stay valid until the message is
 * finished or aborted.
 */
enum status intake_open(struct intake *in, struct envelope *env, const struct intake_origin *o,
			uint64_t declared);

/* Message octets as they arrive (dot-unstuffed): counted in env->size,
 * checked, fixed up and stored; a failure is kept for intake_finish. */
void intake_write(struct intake *in, const char *p, size_t n);

/* The sticky failure so far, STATUS_OK when none (BDAT answers each chunk). */
enum status intake_status(const struct intake *in);

/*
 * End of the message: decide it, then commit it.  form is the receiver's
 * verdict on the octets' form (STATUS_OK when fine); it ranks after the
 * limits.  STATUS_OK: the message was handed to queue_commit and cb(arg,
 * err) runs later on the event loop, only after which the receiver may
 * say it has the message.  Anything else: the message was dropped and
 * that status is the answer; cb never runs.
 */
enum status intake_finish(struct intake *in, enum status form, queue_commit_cb cb, void *arg);

/* Drop the open message, if any (RSET, a lost connection). */
void intake_abort(struct intake *in);

/* Start a message hato makes itself: our Received: header into msg (which
 * is appended to); the octets written.  Any thread. */
size_t intake_local_begin(const struct conf *c, struct strbuf *msg);

/*
 * Commit a message hato made, msg[0..len) from intake_local_begin on, with
 * envelope e (sender and recipients set): e gets the local origin (arrival
 * now, client 127.0.0.1 named hostname), its size (msg without our
 * Received:, hdr octets) and a new queue ID.  false with errno when it
 * could not be written (nothing queued).  Blocking; any thread.
 */
bool intake_inject(const struct conf *c, struct queue *q, struct envelope *e, const char *msg,
		   size_t len, size_t hdr);

#endif
