/*
 * dns_cache.c - a chained hash table of answers with an LRU list (see
 * dns_cache.h).  Buckets are a power of two at least the entry limit, so
 * chains stay short; the key is the type and the name in lower case.
 */
#include "dns_cache.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define DNS_CACHE_BUCKETS_MIN 64
#define DNS_CACHE_NAME_MAX 255

struct entry {
	struct entry *next;                /* in its bucket */
	struct entry *lru_prev, *lru_next; /* lru_next: used less recently */
	enum dns_type type;
	uint64_t expires;
	struct dns_answer *a;
	char name[]; /* lower case, no final dot */
};

struct dns_cache {
	size_t max, count, nbuckets;
	uint32_t ttl_max;
	struct entry **buckets;
	struct entry *mru, *lru; /* most and least recently used */
};

/* The key's form of name into buf; false when it is too long. */
static bool key_name(const char *name, char *buf)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n > DNS_CACHE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[n] = '\0';
	return true;
}

/* FNV-1a over the type and the name. */
static size_t key_hash(const char *name, enum dns_type type)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)type;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)h;
}

/* See dns_cache.h. */
struct dns_cache *dns_cache_new(size_t max, uint32_t ttl_max)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));

	c->max = max;
	c->ttl_max = ttl_max;
	c->nbuckets = DNS_CACHE_BUCKETS_MIN;
	while (c->nbuckets < max && c->nbuckets < ((size_t)1 << 30))
		c->nbuckets <<= 1;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

static void lru_unlink(struct dns_cache *c, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->mru = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct dns_cache *c, struct entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->mru;
	if (c->mru)
		c->mru->lru_prev = e;
	c->mru = e;
	if (c->lru == NULL)
		c->lru = e;
}

/* The slot that points at the entry for (key, type), or at the NULL that
 * ends its chain. */
static struct entry **slot_of(struct dns_cache *c, const char *key, enum dns_type type)
{
	struct entry **pp = &c->buckets[key_hash(key, type) & (c->nbuckets - 1)];

	while (*pp && ((*pp)->type != type || strcmp((*pp)->name, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

/* Take the entry at *pp out and free it. */
static void drop(struct dns_cache *c, struct entry **pp)
{
	struct entry *e = *pp;

	*pp = e->next;
	lru_unlink(c, e);
	dns_answer_unref(e->a);
	free(e);
	c->count--;
}

/* See dns_cache.h. */
void dns_cache_free(struct dns_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nbuckets; i++)
		while (c->buckets[i])
			drop(c, &c->buckets[i]);
	free(c->buckets);
	free(c);
}

/* See dns_cache.h. */
struct dns_answer *dns_cache_get(struct dns_cache *c, const char *name, enum dns_type type,
				 uint64_t now)
{
	char key[DNS_CACHE_NAME_MAX + 1];
	struct entry **pp;

	if (c->max == 0 || !key_name(name, key))
		return NULL;
	pp = slot_of(c, key, type);
	if (*pp == NULL)
		return NULL;
	if ((*pp)->expires <= now) {
		drop(c, pp);
		return NULL;
	}
	lru_unlink(c, *pp);
	lru_push(c, *pp);
	return dns_answer_ref((*pp)->a);
}

/* See dns_cache.h. */
void dns_cache_put(struct dns_cache *c, const char *name, enum dns_type type, struct dns_answer *a,
		   uint64_t now)
{
	char key[DNS_CACHE_NAME_MAX + 1];
	struct entry **pp, *e;
	uint32_t ttl = a->ttl < c->ttl_max ? a->ttl : c->ttl_max;
	size_t klen;

	if (c->max == 0 || ttl == 0 || a->status == DNS_TEMPFAIL || !key_name(name, key))
		return;
	pp = slot_of(c, key, type);
	if (*pp)
		drop(c, pp);
	while (c->count >= c->max && c->lru) {
		struct entry *old = c->lru;

		drop(c, slot_of(c, old->name, old->type));
	}
	klen = strlen(key);
	e = xcalloc(1, sizeof(*e) + klen + 1);
	memcpy(e->name, key, klen + 1);
	e->type = type;
	e->expires = now + ttl;
	e->a = dns_answer_ref(a);
	pp = slot_of(c, key, type); /* the chain may have changed */
	*pp = e;
	lru_push(c, e);
	c->count++;
}

/* See dns_cache.h. */
size_t dns_cache_count(const struct dns_cache *c)
{
	return c->count;
}
