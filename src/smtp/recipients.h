/*
 * recipients.h - where mail for a recipient goes, decided once for SMTP
 * sessions and for local pickups alike.
 *
 * A recipient in a local domain (or <postmaster>, or an address literal of
 * ours) must exist: the AUTH users, [domain] mailboxes, postmaster/abuse,
 * catch_all, aliases (re-read when the files change).  Aliases expand here,
 * into the envelope, each target remembering the RCPT it came from and
 * taking that RCPT's DSN parameters (NOTIFY, ORCPT); remote recipients go
 * in as they are.  A recipient already in the envelope is not added twice:
 * the first keeps its parameters.
 *
 * With [sql] lookup tables the recipient is decided through an ask
 * (sqlmap.h) that never waits: when it has questions the database must
 * answer first, recipients_add returns STATUS_LOOKUP_FAILED with *kind
 * "pending" and sqlmap_ask_waiting(rc->ask) true; the caller runs
 * sqlmap_fetch and calls again with the same ask (nothing was added).
 * When the database could not answer, STATUS_LOOKUP_FAILED (451 4.3.0):
 * a recipient is never refused, or accepted, for want of an answer.
 */
#ifndef HATO_RECIPIENTS_H
#define HATO_RECIPIENTS_H

#include <stddef.h>

#include "status.h"

struct aliases;
struct conf;
struct envelope;
struct mailaddr;
struct userdb;
struct sqlmap_ask;

/* What deciding a recipient reads: the configuration and the tables of
 * who exists (each re-read here when its file has changed). */
struct recipients_ctx {
	const struct conf *conf;
	struct userdb *users;
	struct aliases *aliases; /* NULL: no aliases_file */
	struct sqlmap_ask *ask;  /* the [sql] tables for this decision; NULL: none */
};

/* The DSN parameters of one RCPT (RFC 3461 §4.1, §4.2). */
struct rcpt_dsn {
	unsigned notify;   /* enum dsn_notify bits, 0 when not given */
	const char *orcpt; /* "addr-type;xtext" as dsn_parse_orcpt gives it, or NULL */
};

/* Add the recipient a (written as path) to env, every address it becomes
 * with dsn's parameters (dsn may be NULL: none).  local_addr: the address the
 * client connected to, for address literals ("" for none).  allowed: may
 * this client send to remote domains (policy_rcpt_allowed)?  STATUS_OK,
 * STATUS_RELAY_DENIED (remote and not allowed), STATUS_USER_UNKNOWN,
 * STATUS_BAD_MAILBOX (a name that can be no Maildir), STATUS_MISCONFIGURED
 * (alias loop, refused target) or STATUS_LOOKUP_FAILED (see above);
 * *kind is "remote" or local.h's status name ("ok", "unknown", "loop" ...)
 * and why says how or why not, for logs. */
enum status recipients_add(const struct recipients_ctx *rc, struct envelope *env,
			   const struct mailaddr *a, const char *path, const struct rcpt_dsn *dsn,
			   const char *local_addr, bool allowed, const char **kind, char *why,
			   size_t whysz);

#endif
