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
 * the end-of-message stages, then the commit.  Its answer always comes
 * later, on the event loop, through the receiver's callback (struct
 * intake_result): queued with its ID (perhaps on hold), discarded, or
 * refused with a status and perhaps a stage's own reply text.
 *
 * End-of-message stages.  What needs all of a message (checks that add
 * Authentication-Results:, content filters such as milters, DKIM signing)
 * is a stage: struct intake_stage, added to a receiver's intake with
 * intake_stage_add().  They run in the order of their rank (checks, then
 * milters, then signing last, which sees the final message), each after
 * the one before has answered, and only after the limits passed.  A stage's
 * run() starts it; it may wait on the event loop (sockets, DNS) and answers
 * once with intake_stage_done(): continue, refuse (a status, perhaps its
 * own reply text such as a milter's "550 5.7.1 Spam"), tempfail, discard
 * (say it was taken, keep nothing) or quarantine (commit it on hold, with a
 * reason).  A refusal or a discard ends the stages; a quarantine lets the
 * rest run.  If the message is dropped while a stage runs (intake_cancel:
 * the client went away), the stage's cancel() is called and it must not
 * answer.
 *
 * While it runs, a stage reads the message as it stands after the stages
 * before it (intake_headers, intake_body_read) and may edit it: header
 * fields added, inserted, changed or deleted; the body replaced; recipients
 * added or deleted; the sender changed.  Envelope edits apply at once.  The
 * message itself was streamed into its queue file as it arrived, so header
 * and body edits are kept aside (the header section is read into memory
 * the first time a stage asks for it) and the file is written again once,
 * after the last stage, only when something changed: a message no stage
 * edits costs nothing more, and one with no stage at all not even a read.
 *
 Failure: the first failure while the message arrives (too big, a write
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
struct event;
struct intake;

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
	bool sign;               /* our users' mail: DKIM-sign it (intake_dkim.h) */
	const char *log_key;     /* names the receiver in log lines: "session=ID" */
	const char *client_mark; /* SMTP: failed client checks, for X-Hato-Client-Check: */
};

/* At most this many end-of-message stages per receiver. */
#define INTAKE_STAGES_MAX 8
/* A stage's own reply text, all its lines, at most. */
#define INTAKE_REPLY_MAX 2048
/* A quarantine or refusal reason kept for the log and the hold, at most. */
#define INTAKE_REASON_MAX 200

/* The order stages run in: lower first. */
enum intake_rank {
	INTAKE_RANK_CHECKS = 100, /* SPF, DKIM, DMARC: Authentication-Results: */
	INTAKE_RANK_MILTER = 200, /* content filters */
	INTAKE_RANK_SIGN = 300,   /* DKIM signing: the final message */
};

/* What a stage decided. */
enum intake_action {
	INTAKE_CONTINUE,   /* go on with the next stage, then the commit */
	INTAKE_REFUSE,     /* refuse: status (STATUS_CONTENT_REFUSED by default) */
	INTAKE_TEMPFAIL,   /* refuse for now (STATUS_CONTENT_TEMPFAIL by default) */
	INTAKE_DISCARD,    /* answer that it was taken, and keep nothing */
	INTAKE_QUARANTINE, /* commit it on hold (reason), the other stages still run */
};

/* A stage's answer.  The strings are copied by intake_stage_done. */
struct intake_verdict {
	enum intake_action action;
	enum status status; /* REFUSE, TEMPFAIL: the reply; one under 400 (0): the default */
	/* REFUSE, TEMPFAIL: the stage's own reply, or NULL: one or more lines
	 * "CODE[ -]X.Y.Z text" separated by LF or CRLF, the same 4xx (TEMPFAIL)
	 * or 5xx (REFUSE) code on each; anything else is logged and the status
	 * is said instead */
	const char *reply;
	const char *reason; /* for the log, and the hold's reason: NULL for none */
};

/* A stage: see the head of this file. */
struct intake_stage {
	const char *name; /* in log lines: stage=NAME */
	enum intake_rank rank;
	/* Start on the complete message; answer with intake_stage_done, now
	 * or later on the loop. */
	void (*run)(struct intake *in, void *arg);
	/* The message is dropped while run's answer is awaited: stop, never
	 * answer.  NULL when run always answers before it returns. */
	void (*cancel)(struct intake *in, void *arg);
};

/* How a finished message ended. */
enum intake_outcome {
	INTAKE_QUEUED,    /* committed as env->id (on hold when quarantine is set) */
	INTAKE_DISCARDED, /* a stage discarded it: say it was taken; nothing queued */
	INTAKE_REFUSED,   /* not taken: status, and a stage's reply text or NULL */
};

/* The verdict on a finished message, as the receiver's callback gets it;
 * the strings are valid during the callback. */
struct intake_result {
	enum intake_outcome outcome;
	enum status status; /* REFUSED: the answer */
	/* REFUSED: a stage's own reply, complete CRLF-terminated lines with
	 * their continuation marks ("550-5.7.1 a\r\n550 5.7.1 b\r\n"), or NULL:
	 * say status */
	const char *reply;
	const char *stage;      /* the stage that refused, discarded or quarantined, or NULL */
	const char *reason;     /* that stage's reason, or NULL */
	const char *quarantine; /* QUEUED on hold: why; NULL: not held */
	int err;                /* REFUSED because the commit failed: its errno, else 0 */
};

/* Called once per intake_finish, on the event loop, never from within it. */
typedef void (*intake_done_cb)(void *arg, const struct intake_result *r);

/* A header field as stages see it: "Name: value\r\n", continuation lines
 * included (the last line's CRLF may be missing at the end of a message
 * that has no body). */
struct intake_field {
	char *text;
	size_t len;
	size_t namelen; /* 0: a continuation with no field before it */
};

/* Where intake is with a message. */
enum intake_phase {
	INTAKE_IDLE,      /* nothing open */
	INTAKE_OPEN,      /* octets arriving */
	INTAKE_STAGES,    /* finished: the stages run */
	INTAKE_ANSWERING, /* decided without a commit: the callback is due */
};

/* The message as the stages see and edit it (intake_msg.c). */
struct intake_msg {
	bool parsed;      /* the header section was read from the file */
	bool hdr_changed; /* a field was added, changed or removed */
	bool body_replaced;
	bool sep;          /* an empty line ended the header section */
	uint64_t body_off; /* where the body starts in the file */
	struct intake_field *f;
	size_t nf, cap;
	struct strbuf body; /* the replaced body */
};

/* One message on its way in; a receiver keeps one and opens it per message. */
struct intake {
	const struct conf *conf;
	struct queue *q;
	struct envelope *env; /* the receiver's, while open; its id and size are set here */
	struct qfile qf;
	enum status error; /* sticky: the first failure while the message arrived */
	struct header_scan hs;
	bool fixing;
	struct header_fix hfix;
	struct strbuf fixbuf; /* fixed-up octets on their way to the file */
	char date[MAIL_DATE_SIZE];
	char msgid[INTAKE_MSGID_MAX];
	char log_key[INTAKE_LOG_KEY_MAX];
	enum intake_source source; /* of the message open or last opened */
	size_t received_len;       /* our Received: header's octets */
	bool sign;                 /* the receiver asked for a DKIM signature */
	void *sign_job;            /* the signing stage's job in flight (intake_dkim.c) */

	/* end of message */
	enum intake_phase phase;
	struct {
		const struct intake_stage *st;
		void *arg;
	} stages[INTAKE_STAGES_MAX];
	size_t nstages;
	size_t next_stage;     /* the next to run; the one running is next_stage - 1 */
	bool awaiting;         /* a stage's answer is awaited */
	struct event *step_ev; /* goes on after an answer, off the caller's stack */
	unsigned committing;   /* messages with the queue's commit threads */
	intake_done_cb cb;
	void *cb_arg;
	struct intake_result res;
	char *reply;      /* res.reply's text */
	char *reason;     /* res.reason's text */
	char *quarantine; /* a stage's quarantine reason */
	const char *quarantine_stage;
	struct intake_msg msg;
};

/* Set up an intake for messages into q under c's limits (nothing open). */
void intake_init(struct intake *in, const struct conf *c, struct queue *q);

/* The configuration of the messages opened from now on (a reload): only
 * between messages, not while one is open or pending.  c must outlive
 * them (the receiver holds it). */
void intake_set_conf(struct intake *in, const struct conf *c);

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
 * End of the message: decide it (the limits, then the stages), then commit
 * it.  form is the receiver's verdict on the octets' form (STATUS_OK when
 * fine); it ranks after the limits.  cb(arg, result) runs once, later, on
 * the event loop; only once it says INTAKE_QUEUED may the receiver say it
 * has the message.  The envelope given to intake_open must stay until then.
 */
void intake_finish(struct intake *in, enum status form, intake_done_cb cb, void *arg);

/* Is a finished message still being decided (the limits' answer, the
 * stages)?  Then the intake cannot open the next one yet.  A message with
 * the queue's commit threads does not count: the intake is free again. */
bool intake_pending(const struct intake *in);

/* Drop the open message, if any (RSET).  Not while intake_pending. */
void intake_abort(struct intake *in);

/* Drop a finished message whose receiver goes away: true when no callback
 * will run (the stages were stopped, or nothing was pending); false when a
 * commit of this intake's is under way and its callback still comes. */
bool intake_cancel(struct intake *in);

/* Add a stage to run at the end of every message of this intake, in rank
 * order (after those of the same rank added before).  arg is the stage's.
 * Aborts when INTAKE_STAGES_MAX are there already (a build error). */
void intake_stage_add(struct intake *in, const struct intake_stage *st, void *arg);

/* A stage's answer (exactly once per run, unless cancelled). */
void intake_stage_done(struct intake *in, const struct intake_verdict *v);

/* A reply's text made complete CRLF lines with their continuation marks
 * ("550-5.7.1 a\r\n550 5.7.1 b\r\n"; controls become spaces): every line
 * "CODE[ -]text" with the same CODE, of class '4' or '5', at most
 * INTAKE_REPLY_MAX octets.  NULL when it is not such a reply; else the
 * caller frees it.  (For a stage's reply, and a filter's at MAIL or RCPT.) */
char *intake_reply_lines(const char *text, char class);

/* The log key of the receiver ("session=ID") and the message's queue ID,
 * for a stage's log lines. */
const char *intake_log_key(const struct intake *in);
const char *intake_queue_id(const struct intake *in);

/* The envelope of the message the stages run on (sender, recipients,
 * client): a stage reads it; edits go through the functions below. */
const struct envelope *intake_envelope(const struct intake *in);

/* --- What a running stage may read and change (intake_msg.c) --- */

/* The header fields as they stand, our Received: first; NULL with errno
 * when the message file could not be read.  Valid until the next edit. */
const struct intake_field *intake_headers(struct intake *in, size_t *n);

/* Insert the field "name: value" before field pos (pos >= the count:
 * after the last).  A value's line ends become CRLF, and a line after one
 * that does not start with whitespace gets a TAB (it stays one field).
 * false when the name is not a field name (printable ASCII, no ':') or the
 * header could not be read. */
bool intake_header_insert(struct intake *in, size_t pos, const char *name, const char *value);

/* intake_header_insert after the last field. */
bool intake_header_add(struct intake *in, const char *name, const char *value);

/* Change the nth (from 1) field called name (case-insensitive) to value;
 * value NULL or "" deletes it.  With no such field, a value is added as a
 * new field (as milters expect).  false as for intake_header_insert. */
bool intake_header_change(struct intake *in, const char *name, size_t nth, const char *value);

/* The body's octets as they stand (after the separator), and n of them
 * from off into buf: the count (short at the end), -1 with errno. */
uint64_t intake_body_size(struct intake *in);
ssize_t intake_body_read(struct intake *in, uint64_t off, void *buf, size_t n);

/* Replace the body: it becomes empty (false: the header could not be
 * read), then intake_body_append adds to it; false when it would grow past
 * message_size_max (the replacement stops there). */
bool intake_body_replace(struct intake *in);
bool intake_body_append(struct intake *in, const void *p, size_t n);

/* Add a recipient (an address, with or without its angle brackets); false
 * when it is not one.  Delete one (compared case-insensitively): false
 * when there is none such.  Change the sender ("" or "<>": the null
 * path). */
bool intake_rcpt_add(struct intake *in, const char *addr);
bool intake_rcpt_delete(struct intake *in, const char *addr);
bool intake_sender_change(struct intake *in, const char *addr);

/* Deliver the message into the Junk folder of Maildir mailboxes (a check's
 * verdict, e.g. DMARC p=quarantine): the envelope says "junk: yes". */
void intake_junk(struct intake *in);

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
