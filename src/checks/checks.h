/*
 * checks.h - the checks of mail received from the internet: SPF (RFC 7208)
 * from MAIL FROM on, then at the end of the message DMARC (RFC 7489), one
 * Authentication-Results: header (RFC 8601) and the decision.
 *
 * A receiver (an SMTP session on a listener that does not require AUTH)
 * keeps one struct checks, adds checks_stage to its intake with it, and
 * calls checks_mail() when it accepts MAIL FROM from a client that is
 * neither authenticated nor trusted: SPF starts then, on the event loop,
 * so its answer is usually there by the end of the message.  A transaction
 * without checks_mail() passes the stage untouched.
 *
 * At the end of the message the stage waits for SPF, looks up the DMARC
 * policy of the From: domain, removes any Authentication-Results: field
 * that claims our authserv-id (the [server] hostname: it is forged), adds
 * ours at the top, and decides by the [checks] keys: a DMARC failure under
 * p=reject (dmarc_reject, default reject: 550 5.7.1 at the final dot),
 * under p=quarantine (dmarc_quarantine, default junk: the Junk folder), an
 * SPF fail (spf_fail, default none: DMARC decides), a DNS failure
 * (temperror, default tempfail: 451 4.7.x).  Every decision is logged,
 * event=checks, with the results and the reason.  The checks of one
 * message are bounded by [checks] timeout: what has no answer by then is a
 * temperror.
 *
 * The Public Suffix List is loaded once at start (checks_init).  Event
 * loop only.
 */
#ifndef HATO_CHECKS_H
#define HATO_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "intake.h"

struct conf;
struct event_base;
struct checks;

/* Load what the checks need ([checks] public_suffix_list) when they are
 * enabled; false with err set when it cannot be read. */
bool checks_init(const struct conf *c, char *err, size_t errsz);
void checks_shutdown(void);

/* Do the checks run at all (enabled, and set up by checks_init)? */
bool checks_enabled(const struct conf *c);

/* One receiver's checks; log_key names it in log lines. */
struct checks *checks_new(const struct conf *c, struct event_base *base, const char *log_key);
void checks_free(struct checks *ch);

/* MAIL FROM accepted for checking: the client's address, the sender
 * without angle brackets ("" for the null reverse-path), the HELO name.
 * Starts SPF; anything of an earlier transaction is dropped. */
void checks_mail(struct checks *ch, const char *ip, const char *sender, const char *helo);

/* The transaction ended without a message (RSET, a refusal): stop. */
void checks_reset(struct checks *ch);

/* The end-of-message stage (rank INTAKE_RANK_CHECKS); its arg is the
 * struct checks. */
extern const struct intake_stage checks_stage;

#endif
