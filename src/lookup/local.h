/*
 * local.h - which recipients of the local domains exist, and where their
 * mail goes: subaddresses, aliases, AUTH users, [domain NAME] mailboxes,
 * postmaster and abuse, catch-all.
 *
 * local_resolve(local_part, domain) - domain must be one of local_domains
 * (any case, U-label or A-label) - goes:
 *   1. quotes around the local part are removed ("\"john doe\"" is
 *      john doe); local parts compare case-insensitively (ASCII);
 *   2. the subaddress is split off: recipient_delimiter is a set of
 *      characters (default "+"), the local part ends at the first of them
 *      ("user+tag" is "user"; "" disables it; a leading one is kept);
 *   3. aliases: the full local part first, then the stripped one, each as
 *      "name@domain" before "name".  Every target is expanded again: a
 *      local name (same domain) or a local address goes through these steps
 *      again, a remote address is final, "\name" is the mailbox name
 *      without aliases, "|command" and "/file" are final when [delivery]
 *      alias_commands / alias_files allow them (LOCAL_REFUSED otherwise);
 *   4. a mailbox, the full local part before the stripped one: a user of
 *      the users file ("alice" in every local domain, "alice@domain" in
 *      that one), a name in [domain NAME] mailboxes or its catch_all, and
 *      "postmaster" and "abuse" always (RFC 5321 §4.5.1, RFC 2142);
 *   5. else the domain's catch_all, resolved like a recipient (it may be
 *      an alias) but without a second catch-all;
 *   6. else LOCAL_UNKNOWN.
 * A cycle of aliases ("a: b", "b: a", or "a: a") is LOCAL_LOOP, and so is
 * an expansion deeper than LOCAL_DEPTH_MAX; to keep a copy in the mailbox
 * of an alias's own name, write "a: \a, b".  The targets are de-duplicated,
 * in the order first reached.
 *
 * Every local mailbox reached (by name, "*", catch_all or an alias) in a
 * domain delivered to Maildirs (no lmtp) must have a Maildir: its route
 * (route_rcpt, which delivery takes too) must name one, and a name that
 * maildir_path() refuses ("a/b", "../x", ".hidden") is
 * LOCAL_BAD_MAILBOX.  So nothing that delivery would refuse is accepted.
 *
 * With [sql] lookup tables (sqlmap.h; ask NULL: none), a domain that is
 * not in local_domains is local when the domain table says so; a mailbox
 * exists when the files or the mailbox table say so; an alias is looked
 * for in the aliases file first, then in the alias table, whose rows may
 * each hold several targets separated by commas (postfixadmin's goto),
 * and where the alias's own address as a target means its mailbox
 * ("\\name").  Resolution never waits: a question the ask cannot answer
 * yet makes it LOCAL_PENDING (sqlmap_fetch, then resolve again from the
 * start); one the database could not answer makes it LOCAL_TEMPFAIL.
 * Neither is ever taken for "no such user".  A mailbox of a domain that
 * is local only by the table is marked by_table: its envelope says so,
 * and delivery routes it as local (route_rcpt_local).
 *
 * One bad target fails the whole recipient (nothing is dropped silently):
 * the first failure's status is returned, out is empty, and why says what
 * and through which aliases ("alias loop: a -> b -> a").  On LOCAL_OK why
 * says how the recipient was found.  Everything in why that came from the
 * aliases file or the peer is escaped for logs.
 */
#ifndef HATO_LOCAL_H
#define HATO_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

#include "aliases.h"
#include "conf.h"
#include "hato_limits.h"
#include "sqlmap.h"
#include "users.h"

/* Deepest alias expansion: more levels than this is taken as a loop. */
#define LOCAL_DEPTH_MAX 20
/* A folded local part, NUL included. */
#define LOCAL_NAME_MAX (ADDR_LOCAL_MAX + 1)

enum local_status {
	LOCAL_OK,
	LOCAL_UNKNOWN,     /* no such recipient */
	LOCAL_LOOP,        /* an alias cycle, or expansion deeper than LOCAL_DEPTH_MAX */
	LOCAL_REFUSED,     /* a |command or /file target that the config does not allow */
	LOCAL_BAD_MAILBOX, /* a mailbox whose name can never be a Maildir (maildir_path) */
	LOCAL_PENDING,     /* a lookup table must be asked first (sqlmap_fetch) */
	LOCAL_TEMPFAIL,    /* a lookup table could not answer */
};

struct local_target {
	/* "<user@domain>": a local mailbox (user lower-cased, quoted when it
	 * must be; the domain as in local_domains) or a remote address (as
	 * written in the aliases file); or "|command" / "/file" when allowed */
	char *addr;
	bool local;    /* delivered here (mailbox, command, file), not relayed */
	bool by_table; /* a mailbox of a domain local by the domain table */
};

struct local_targets {
	struct local_target *t;
	size_t n;
};

/* Resolve local_part@domain (see above).  users, al and ask may be NULL
 * (none).  out is set empty first and filled only on LOCAL_OK. */
enum local_status local_resolve(const struct conf *c, const struct userdb *users,
				const struct aliases *al, struct sqlmap_ask *ask,
				const char *local_part, const char *domain,
				struct local_targets *out, char *why, size_t whysz);

/* Is domain local: one of local_domains (LOCAL_OK), or in the domain
 * table (LOCAL_OK with *by_table)?  LOCAL_UNKNOWN when not, or the
 * table's LOCAL_PENDING / LOCAL_TEMPFAIL. */
enum local_status local_domain(const struct conf *c, struct sqlmap_ask *ask, const char *domain,
			       bool *by_table);

/*
 * A local part as written (maybe quoted) as steps 1 and 2 above see it:
 * unquoted and lower-cased into full, and without its subaddress into base
 * (both size bytes; LOCAL_NAME_MAX holds any).  false for one that can name
 * nobody: empty, broken quoting, an '@' inside, too long.  Sender
 * ownership uses it too, so "alice+tag" and "\"alice\"" are alice's.
 */
bool local_part_fold(const struct conf *c, const char *local, char *full, char *base, size_t size);

/* Free the targets and make t empty. */
void local_targets_free(struct local_targets *t);

/* "ok", "unknown", "loop", "refused", "bad_mailbox", "pending",
 * "tempfail": for logs. */
const char *local_status_name(enum local_status s);

/*
 * Check every entry of al in every local domain it applies to ("user" in
 * each local domain without its own "user@domain" entry): every target is
 * resolved, and each loop, refused target and local target that does not
 * exist is a call of report with one line ("FILE:LINE: NAME@DOMAIN:
 * ..."), as is an entry for a domain that is not local.  Returns the
 * number of problems.
 */
size_t local_check_aliases(const struct conf *c, const struct userdb *users,
			   const struct aliases *al, void (*report)(const char *problem, void *arg),
			   void *arg);

#endif
