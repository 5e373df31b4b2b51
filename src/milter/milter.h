/*
 * milter.h - hato as a milter client (the MTA side of the Sendmail/Postfix
 * milter protocol, version 6): the filters of [milter NAME] sections see
 * each SMTP session's client, HELO, MAIL and RCPT as they happen, and each
 * message at its end, as an intake stage (intake.h), where they may refuse
 * it or change it.  Layering: milter/ sits above intake/ (it is a stage)
 * and below smtp/, which drives it.
 *
 * One milter_session per SMTP session whose listener has filters
 * (milter_session_new gives NULL when none applies).  Each filter gets its
 * own connection, opened at the session's first MAIL (so a session without
 * mail costs the filters nothing), negotiated (SMFIC_OPTNEG: the steps a
 * filter declines are not sent, the replies it will not give are not
 * awaited), then told of the connection and the HELO, with the macros
 * Postfix sends (j, {daemon_name}, {client_addr}, {client_name},
 * {auth_authen}, {tls_version}, i, {mail_addr}, {rcpt_addr}).
 *
 * The filters are asked in the order written; the first that refuses
 * decides.  At MAIL and RCPT (milter_mail, milter_rcpt) the answer comes
 * through a callback: continue, refuse or tempfail (with the filter's own
 * reply when it gave one; at RCPT only that recipient is refused), or
 * discard (the message is taken and then dropped at its end).  A filter
 * that refuses at connect or HELO refuses every MAIL of the session.
 * accept from a filter ends its say over the message (or, at connect and
 * HELO, the session).  At the end of the message the stage sends DATA, the
 * header fields, end of header, the body in chunks and end of message, and
 * carries out what the filter asks before its last reply: header fields
 * added, inserted, changed or deleted, the body replaced, recipients added
 * or deleted, the sender changed, quarantine (the message is committed on
 * hold); progress keeps the wait going.  Every action is logged with the
 * filter's name.  A transaction that ends without its end of message
 * (RSET, a refusal) sends abort (milter_abort); the session's end, quit.
 *
 * Failure: a filter that cannot be reached, does not answer within
 * timeout_connect / timeout_reply, closes, sends a packet over packet_max
 * or one that does not parse, or an action it did not negotiate, is
 * dropped for the session and its on_failure applies: tempfail (451 4.7.1
 * for the command or the message at hand) or accept (as if it were not
 * there).  It is tried again at the next transaction.  Everything runs on
 * the event loop, non-blocking; callbacks never run from within the call
 * that started the wait, and milter_cancel stops a wait without one.
 */
#ifndef HATO_MILTER_H
#define HATO_MILTER_H

#include <stdbool.h>

#include "intake.h"

struct conf;
struct event_base;
struct milter_session;

/* What the SMTP session knows of its client when the first MAIL comes. */
struct milter_client {
	const char *addr;        /* IP address */
	unsigned port;           /* the client's port; 0 when unknown */
	const char *name;        /* reverse DNS or "unknown" */
	const char *helo;        /* the EHLO/HELO argument, or "" */
	const char *auth_user;   /* the authenticated user, or NULL */
	const char *tls_version; /* "TLSv1.3", or NULL */
};

/* The filters' say on a command. */
enum milter_verdict {
	MILTER_CONTINUE, /* go on */
	MILTER_REFUSE,   /* 5xx: STATUS_CONTENT_REFUSED or reply */
	MILTER_TEMPFAIL, /* 4xx: STATUS_CONTENT_TEMPFAIL or reply */
};

/* An answer at MAIL or RCPT; strings valid during the callback. */
struct milter_answer {
	enum milter_verdict verdict;
	const char *reply;  /* the filter's own reply lines (intake_reply_lines), or NULL */
	const char *filter; /* the filter that refused, or NULL */
};

typedef void (*milter_cb)(void *arg, const struct milter_answer *a);

/* The filters for a session on listener (log_key names it in logs, e.g.
 * "session=ID"); NULL when no [milter] applies to that listener. */
struct milter_session *milter_session_new(const struct conf *c, struct event_base *base,
					  const char *listener, const char *log_key);

/* Say quit to every filter, close, free (a wait in progress ends without
 * its callback). */
void milter_session_free(struct milter_session *ms);

/* MAIL FROM:<sender> (with its ESMTP parameters, args, NULL-terminated, or
 * NULL): the first also connects and tells the filters of the client. */
void milter_mail(struct milter_session *ms, const struct milter_client *cl, const char *sender,
		 const char *const *args, milter_cb cb, void *arg);

/* RCPT TO:<rcpt> of the current transaction. */
void milter_rcpt(struct milter_session *ms, const char *rcpt, milter_cb cb, void *arg);

/* The transaction ended without its end of message (RSET, a refusal, a
 * message intake refused before the stages): tell the filters. */
void milter_abort(struct milter_session *ms);

/* Stop waiting for a filter's answer: no callback will come. */
void milter_cancel(struct milter_session *ms);

/* The end-of-message stage; its arg is the session's milter_session. */
extern const struct intake_stage milter_stage;

#endif
