/*
 * intake_dkim.h - DKIM signing at intake, once per message and never per
 * delivery attempt: the last end-of-message stage (INTAKE_RANK_SIGN), so
 * that it signs the message as every other stage left it, and the
 * delivery reports hato makes (intake_inject).
 *
 * What is signed: a message whose receiver said so when it opened it
 * (struct intake_origin's sign: mail from an authenticated user or a
 * trusted_networks client, and everything from the maildrop directory),
 * and every delivery report; never mail relayed in from the internet.  Of
 * those, a message whose From: domain, or a parent of it, has [dkim]
 * keys (dkim_sign.h says which keys and how).  The DKIM-Signature fields
 * go right after our Received: header.  A message that cannot be signed
 * (no From: domain with a key, an oversized header, an OpenSSL failure)
 * goes on unsigned, with a log line that says why: signing never refuses
 * mail.
 *
 * The keys are read at start (intake_dkim_init, before hatod drops its
 * privileges) and shared read-only by the loop, the DKIM threads that make
 * the stage's signatures off the loop (intake_dkim_start), and the
 * delivery threads that make reports.  A reload reads them again
 * (intake_dkim_load, as the daemon user) and swaps them in
 * (intake_dkim_swap); each signature is made with the keys in force when
 * it began, which go when the last such signature is done.
 */
#ifndef HATO_INTAKE_DKIM_H
#define HATO_INTAKE_DKIM_H

#include <stdbool.h>
#include <stddef.h>

#include "intake.h"
#include "strbuf.h"

struct conf;
struct event_base;

struct intake_dkim_keys;

/* Read the [dkim NAME] keys and put them in force; false with a reason
 * naming the section. */
bool intake_dkim_init(const struct conf *c, char *err, size_t errsz);
/* Read the [dkim NAME] keys of c, not yet in force (a reload); NULL with a
 * reason naming the section. */
struct intake_dkim_keys *intake_dkim_load(const struct conf *c, char *err, size_t errsz);
/* Put k in force from the next signature on (loop thread); the keys it
 * replaces go when the signatures made with them are done. */
void intake_dkim_swap(struct intake_dkim_keys *k);
/* Drop keys loaded and not put in force. */
void intake_dkim_keys_free(struct intake_dkim_keys *k);
/* Start the threads that make signatures (after hatod has daemonized);
 * until then the stage signs on the loop. */
void intake_dkim_start(struct event_base *base);
/* Finish the signatures in flight, stop the threads, release the keys. */
void intake_dkim_shutdown(void);
/* Are there keys, so that the stage is worth adding? */
bool intake_dkim_enabled(void);

/* The signing stage (arg unused). */
extern const struct intake_stage intake_dkim_stage;

/* Sign a message hato made, msg[0..len) (our Received: first, hdr octets):
 * a new message with the signatures after our Received: goes into out,
 * true; false when nothing was signed (out untouched).  Any thread. */
bool intake_dkim_sign_local(const char *msg, size_t len, size_t hdr, struct strbuf *out);

#endif
