/*
 * client_table.c - the per-client table: a fixed array of entries, hash
 * chains by index, and a least-recently-seen list for reuse.
 */
#include "client_table.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define NONE UINT32_MAX
/* entries looked at from the stale end for one that can go quietly */
#define EVICT_SCAN 64

struct client_table {
	struct client_entry *e;
	uint32_t *buckets;
	size_t max, nbuckets, used, evicted_busy;
	uint32_t lru_head, lru_tail; /* head: seen last */
	uint64_t seed;
};

/* See client_table.h. */
void client_addr16(const struct sockaddr *sa, unsigned char out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

/* The key of an address: IPv4 whole, IPv6 its /64. */
static void client_key(const struct sockaddr *sa, unsigned char key[16])
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	client_addr16(sa, key);
	if (memcmp(key, v4mapped, sizeof(v4mapped)) != 0)
		memset(key + 8, 0, 8);
}

/* See client_table.h. */
struct client_table *client_table_new(size_t max)
{
	struct client_table *t = xcalloc(1, sizeof(*t));

	t->max = max ? max : 1;
	t->nbuckets = 1;
	while (t->nbuckets < t->max)
		t->nbuckets <<= 1;
	t->e = xcalloc(t->max, sizeof(*t->e));
	t->buckets = xmalloc(t->nbuckets * sizeof(*t->buckets));
	for (size_t i = 0; i < t->nbuckets; i++)
		t->buckets[i] = NONE;
	t->lru_head = t->lru_tail = NONE;
	random_octets(&t->seed, sizeof(t->seed));
	return t;
}

/* See client_table.h. */
void client_table_free(struct client_table *t)
{
	if (t == NULL)
		return;
	free(t->e);
	free(t->buckets);
	free(t);
}

/* The bucket of a key: FNV-1a over the seed and the key. */
static size_t bucket_of(const struct client_table *t, const unsigned char key[16])
{
	uint64_t h = 1469598103934665603ULL ^ t->seed;

	for (int i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	return (size_t)(h & (t->nbuckets - 1));
}

/* Take entry i out of the seen-order list. */
static void lru_unlink(struct client_table *t, uint32_t i)
{
	struct client_entry *e = &t->e[i];

	if (e->lru_prev != NONE)
		t->e[e->lru_prev].lru_next = e->lru_next;
	else
		t->lru_head = e->lru_next;
	if (e->lru_next != NONE)
		t->e[e->lru_next].lru_prev = e->lru_prev;
	else
		t->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NONE;
}

/* Put entry i at the head of the seen-order list. */
static void lru_push(struct client_table *t, uint32_t i)
{
	struct client_entry *e = &t->e[i];

	e->lru_prev = NONE;
	e->lru_next = t->lru_head;
	if (t->lru_head != NONE)
		t->e[t->lru_head].lru_prev = i;
	t->lru_head = i;
	if (t->lru_tail == NONE)
		t->lru_tail = i;
}

/* The index of key's entry, or NONE. */
static uint32_t lookup(const struct client_table *t, const unsigned char key[16])
{
	for (uint32_t i = t->buckets[bucket_of(t, key)]; i != NONE; i = t->e[i].hnext)
		if (memcmp(t->e[i].key, key, 16) == 0)
			return i;
	return NONE;
}

/* Take entry i out of its hash chain and the seen-order list. */
static void entry_drop(struct client_table *t, uint32_t i)
{
	uint32_t *p = &t->buckets[bucket_of(t, t->e[i].key)];

	while (*p != i)
		p = &t->e[*p].hnext;
	*p = t->e[i].hnext;
	lru_unlink(t, i);
	t->used--;
}

/* The entry to reuse when the table is full: the stalest that is idle. */
static uint32_t victim(struct client_table *t, time_t now)
{
	uint32_t i = t->lru_tail;

	for (int n = 0; i != NONE && n < EVICT_SCAN; n++, i = t->e[i].lru_prev)
		if (t->e[i].sessions == 0 && t->e[i].auth_locked_until <= now)
			return i;
	if (t->e[t->lru_tail].sessions > 0)
		t->evicted_busy++;
	return t->lru_tail;
}

/* See client_table.h. */
struct client_entry *client_table_get(struct client_table *t, const struct sockaddr *sa)
{
	unsigned char key[16];
	uint32_t i;
	size_t b;

	client_key(sa, key);
	if ((i = lookup(t, key)) != NONE) {
		lru_unlink(t, i);
		lru_push(t, i);
		return &t->e[i];
	}
	if (t->used < t->max) {
		i = (uint32_t)t->used; /* entries only ever leave to be reused */
	} else {
		i = victim(t, time(NULL));
		entry_drop(t, i);
	}
	memset(&t->e[i], 0, sizeof(t->e[i]));
	memcpy(t->e[i].key, key, 16);
	t->e[i].used = true;
	t->e[i].dnsbl_zone = -1;
	b = bucket_of(t, key);
	t->e[i].hnext = t->buckets[b];
	t->buckets[b] = i;
	lru_push(t, i);
	t->used++;
	return &t->e[i];
}

/* See client_table.h. */
struct client_entry *client_table_find(struct client_table *t, const struct sockaddr *sa)
{
	unsigned char key[16];
	uint32_t i;

	client_key(sa, key);
	i = lookup(t, key);
	return i == NONE ? NULL : &t->e[i];
}

/* See client_table.h. */
size_t client_table_count(const struct client_table *t)
{
	return t->used;
}

/* See client_table.h. */
size_t client_table_evicted_busy(const struct client_table *t)
{
	return t->evicted_busy;
}

/* See client_table.h. */
unsigned client_rate_add(struct client_rate *r, time_t now, unsigned window)
{
	if (r->count == 0 || now - r->start >= (time_t)window) {
		r->start = now;
		r->count = 0;
	}
	if (r->count < UINT32_MAX)
		r->count++;
	return r->count;
}
