/*
 * sqlmap.h - the [sql] lookup tables: which domains are local, which
 * mailboxes exist, what an alias expands to, who may send as an address;
 * answered by PostgreSQL or SQLite (sql_driver.h), off the event loop.
 *
 * Every question is a configured query (sql_query.h) about one address
 * (local@domain; the domain alone for SQLMAP_DOMAIN).  Its answer is the
 * first column of the rows it returns: none is "no", any is "yes" with
 * those values (alias targets, logins allowed to send as the address).
 *
 * The event loop never waits for a database.  A caller on the loop opens
 * an ask (sqlmap_ask_new) for one decision and asks it questions with
 * sqlmap_get: an answer the ask holds already, or the cache holds and has
 * not expired (cache_ttl), comes at once; any other is SQLMAP_WAIT and the
 * question is noted.  The caller then unwinds and calls sqlmap_fetch: one
 * job on the lookup threads ([sql] connections: each holds at most one
 * database connection) runs every noted question, and done runs on the
 * loop when all are answered; the caller then decides again from the
 * start, and the answers it already had stay in the ask (they never
 * expire during one decision).  A decision that needs more than
 * SQLMAP_ROUNDS_MAX rounds or SQLMAP_ASK_MAX questions fails.
 *
 * A question the database could not answer (unreachable, timeout, a bad
 * query, too many rows) is SQLMAP_FAIL: the caller answers 451 4.3.0 and
 * never takes "no answer" for "no".  Failures are logged once, on the
 * loop, and never cached.  Keys are compared with ASCII case ignored, and
 * sent in lower case.
 */
#ifndef HATO_SQLMAP_H
#define HATO_SQLMAP_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct event_base;
struct sqlmap;
struct sqlmap_ask;

#define SQLMAP_ROUNDS_MAX 16 /* fetches in one decision */
#define SQLMAP_ASK_MAX 128   /* questions in one decision */

enum sqlmap_table {
	SQLMAP_DOMAIN,  /* domain_query: is the domain local? (%d, %s: the domain) */
	SQLMAP_MAILBOX, /* mailbox_query: does the mailbox exist? */
	SQLMAP_ALIAS,   /* alias_query: the alias's targets */
	SQLMAP_SENDER,  /* sender_query: the logins that may send as the address */
	SQLMAP_TABLES
};

enum sqlmap_answer {
	SQLMAP_NO,   /* no row, or no such query configured */
	SQLMAP_YES,  /* rows: values */
	SQLMAP_WAIT, /* not known yet: sqlmap_fetch, then ask again */
	SQLMAP_FAIL, /* the database could not say */
};

/* The tables [sql] configures, with their lookup threads; NULL with a
 * message in err when a query does not compile.  Nothing is connected
 * yet: a database down at start fails lookups, not hatod. */
struct sqlmap *sqlmap_new(const struct conf *c, struct event_base *base, char *err, size_t errsz);

/* Wait for the lookups in flight (their done callbacks run), close every
 * connection, free.  NULL is fine. */
void sqlmap_free(struct sqlmap *m);

/* Is table t configured (m may be NULL: no)? */
bool sqlmap_has(const struct sqlmap *m, enum sqlmap_table t);

/* A new ask for one decision (m may be NULL: every answer is no). */
struct sqlmap_ask *sqlmap_ask_new(struct sqlmap *m);

/* Free an ask; never while its fetch runs.  NULL is fine. */
void sqlmap_ask_free(struct sqlmap_ask *q);

/* The answer for local@domain in table t (local NULL for SQLMAP_DOMAIN);
 * on SQLMAP_YES *values / *n are the rows, valid while q lives.  q NULL:
 * SQLMAP_NO. */
enum sqlmap_answer sqlmap_get(struct sqlmap_ask *q, enum sqlmap_table t, const char *local,
			      const char *domain, const char *const **values, size_t *n);

/* Has an sqlmap_get answered SQLMAP_WAIT since the last fetch? */
bool sqlmap_ask_waiting(const struct sqlmap_ask *q);

/* Run the noted questions on the lookup threads; done(arg) runs later on
 * the loop, never inside this call.  false (and nothing runs) when none
 * is noted or the decision has had SQLMAP_ROUNDS_MAX rounds: then every
 * noted question is answered SQLMAP_FAIL. */
bool sqlmap_fetch(struct sqlmap_ask *q, void (*done)(void *arg), void *arg);

/* The first failure's reason, for the log ("" when none). */
const char *sqlmap_ask_error(const struct sqlmap_ask *q);

/* "domain", "mailbox", "alias", "sender". */
const char *sqlmap_table_name(enum sqlmap_table t);

#endif
