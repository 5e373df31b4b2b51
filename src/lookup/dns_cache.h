/*
 * dns_cache.h - DNS answers kept for their TTL, bounded in entries.
 *
 * Keyed by record type and name (ASCII case does not matter, a final dot
 * neither).  An answer is kept for its own TTL, never longer than ttl_max;
 * an answer with TTL 0 and a TEMPFAIL answer are never kept.  When the
 * cache holds max entries, adding one drops the least recently used.  The
 * caller passes the time (seconds on a monotonic clock), so tests can move
 * it.  max 0: nothing is kept.  One thread (the event loop).
 */
#ifndef HATO_DNS_CACHE_H
#define HATO_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns_answer.h"

struct dns_cache;

struct dns_cache *dns_cache_new(size_t max, uint32_t ttl_max);
void dns_cache_free(struct dns_cache *c);

/* The answer kept for (name, type) and not yet expired at now, with a
 * reference for the caller (dns_answer_unref); NULL when there is none. */
struct dns_answer *dns_cache_get(struct dns_cache *c, const char *name, enum dns_type type,
				 uint64_t now);

/* Keep a (the cache takes its own reference) when its status and TTL
 * allow, replacing what was kept for (name, type). */
void dns_cache_put(struct dns_cache *c, const char *name, enum dns_type type, struct dns_answer *a,
		   uint64_t now);

/* Entries kept now (expired ones included until they are found or
 * dropped). */
size_t dns_cache_count(const struct dns_cache *c);

#endif
