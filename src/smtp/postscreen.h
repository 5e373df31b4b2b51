/*
 * postscreen.h - what a client meets before its first command, in the
 * manner of Postfix's postscreen(8): the per-client limits at connect, the
 * greeting delay with its test for clients that talk before the 220, and
 * the DNS blocklists and allowlists; and the per-client message and
 * recipient rates of its transactions.
 *
 * The session calls postscreen_connect once the client's address is known
 * (after any PROXY header), then postscreen_start; it greets only when
 * postscreen_waiting is false, and asks postscreen_verdict first.  Every
 * refusal is logged with its own event and answered with its own status.
 * Clients in trusted_networks meet none of it.
 */
#ifndef HATO_POSTSCREEN_H
#define HATO_POSTSCREEN_H

#include <stdbool.h>

#include "status.h"

struct smtp_session;
struct evbuffer;

/* The limits of a new connection: STATUS_OK (one more session counted for
 * the client) or the status that refuses it, already logged. */
enum status postscreen_connect(struct smtp_session *s);

/* Start the greeting delay and the DNSBL lookups; smtp_greet_ready runs
 * when each ends. */
void postscreen_start(struct smtp_session *s);

/* Is the greeting still held back (delay or lookups running)? */
bool postscreen_waiting(const struct smtp_session *s);

/* Input before the greeting: refuse the client (554 5.5.1) and close. */
void postscreen_input(struct smtp_session *s, struct evbuffer *in);

/* Everything waited for is in: true when the client may be greeted, else
 * it has been refused (554 5.7.1 naming the list) and the session closes. */
bool postscreen_verdict(struct smtp_session *s);

/* MAIL and RCPT: STATUS_OK or the rate status to answer (logged). */
enum status postscreen_mail(struct smtp_session *s);
enum status postscreen_rcpt(struct smtp_session *s);

/* The PTR lookup of the client ended (name NULL: none); the forward
 * check ([client_checks] fcrdns) starts, holding the greeting. */
void postscreen_reverse_done(struct smtp_session *s, const char *name);

/* What is wrong with a HELO name, if anything. */
enum helo_fault {
	HELO_FAULT_NONE,
	HELO_FAULT_BARE_IP,  /* an address not written as a literal, [192.0.2.1] */
	HELO_FAULT_OUR_NAME, /* our own host name */
};
enum helo_fault postscreen_helo_fault(const char *helo, const char *hostname);

/* EHLO/HELO with s->helo set: STATUS_OK, or STATUS_HELO_REFUSED (logged)
 * under [client_checks] helo = refuse. */
enum status postscreen_helo(struct smtp_session *s);

/* The X-Hato-Client-Check: value for the session's mail ("fcrdns=fail;
 * helo=bare-ip") in buf, or NULL when no check marks it. */
const char *postscreen_mark(const struct smtp_session *s, char *buf, size_t size);

/* RCPT of rcpt (the path as written) in a transaction from sender: the
 * greylist's STATUS_OK, or STATUS_GREYLISTED (logged).  Trusted and
 * authenticated clients, and those an allowlist vouches for (a negative
 * DNSBL score), are not greylisted. */
enum status postscreen_greylist(struct smtp_session *s, const char *rcpt);

/* The session ends: its timers and lookups go, its session is uncounted. */
void postscreen_end(struct smtp_session *s);

#endif
