/*
 * dns.h - asynchronous DNS on the event loop (c-ares), with a cache.
 *
 * One c-ares channel, bound to the loop, asks the [dns] servers (else those
 * of /etc/resolv.conf) with the [dns] timeout and tries; names are asked as
 * they are, with no search list.
 *
 * dns_query() asks for the records of one type (A, AAAA, MX, TXT, PTR) of
 * a name and calls back on the loop with a struct dns_answer: DNS_OK with
 * the records, DNS_NXDOMAIN, DNS_NODATA or DNS_TEMPFAIL (timeout, SERVFAIL,
 * REFUSED, unreachable servers, a malformed answer).  Answers are kept in a
 * cache bounded to [dns] cache_size entries, each for its TTL (at most
 * [dns] cache_ttl_max); temporary failures are never kept.  The callback
 * always runs later, on the loop, never inside dns_query(), exactly once
 * unless the query is cancelled first; the answer is valid during the
 * callback only (dns_answer_ref keeps it).
 *
 * dns_reverse() looks up the PTR name of an address for the Received:
 * header, /etc/hosts first, as the system resolver does, and calls back
 * with the name, or NULL when there is none (NXDOMAIN, timeout, SERVFAIL:
 * the caller says "unknown").
 *
 * dns_shutdown() frees queries still outstanding without calling them
 * back: their owners are gone by then.
 */
#ifndef HATO_DNS_H
#define HATO_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns_answer.h"

struct event_base;
struct conf;
struct dns_query;

typedef void (*dns_name_cb)(void *arg, const char *name);
typedef void (*dns_answer_cb)(void *arg, const struct dns_answer *a);

/* Bind the channel to base with c's [dns] settings; false with err set. */
bool dns_init(struct event_base *base, const struct conf *c, char *err, size_t errsz);
void dns_shutdown(void);

/* Start a PTR lookup; cb always runs exactly once, later, on the loop. */
void dns_reverse(const struct sockaddr *sa, dns_name_cb cb, void *arg);

/* Ask for the type records of name (a final dot is optional); see above.
 * The handle is valid until the callback has run or dns_query_cancel. */
struct dns_query *dns_query(const char *name, enum dns_type type, dns_answer_cb cb, void *arg);

/* The callback of q will not run; q is gone. */
void dns_query_cancel(struct dns_query *q);

/* Answers in the cache now (for tests and logs). */
size_t dns_cache_entries(void);

#endif
