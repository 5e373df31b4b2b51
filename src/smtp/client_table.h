/*
 * client_table.h - what hatod remembers about each client address across
 * its sessions: the sessions it has open now, its connections, messages
 * and recipients of the current minute, its failed AUTH attempts, whether
 * it passed the greeting test, and its DNSBL verdict.
 *
 * IPv4 addresses are keyed whole; IPv6 addresses by their /64 (one
 * customer's network, whose addresses one host can rotate through at
 * will).  The table holds at most client_table_size entries: when it is
 * full, the least recently seen entry with no open session and no AUTH
 * lockout is reused (or, should the oldest ones all be busy, the oldest),
 * so memory stays bounded whatever clients do.  Lookups hash with a seed
 * chosen at start, so nobody can aim addresses at one chain.
 *
 * An entry pointer is valid until the next client_table_get (which may
 * reuse it); sessions keep no pointer, only their address.  Loop thread
 * only.
 */
#ifndef HATO_CLIENT_TABLE_H
#define HATO_CLIENT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

/* Events counted over a window that starts with its first event. */
struct client_rate {
	time_t start;
	unsigned count;
};

struct client_entry {
	unsigned char key[16]; /* IPv4 as v4-mapped IPv6; IPv6: the /64, rest zero */
	unsigned sessions;     /* open now */
	struct client_rate conns, msgs, rcpts;
	struct client_rate auth; /* failed AUTH attempts (auth_limit.c) */
	time_t auth_locked_until;
	time_t greet_passed_until; /* waited for the greeting without talking */
	/* the DNSBL verdict of one full address under this key (postscreen.c) */
	unsigned char dnsbl_addr[16];
	time_t dnsbl_until; /* 0: none kept */
	int dnsbl_score;
	int dnsbl_zone; /* the listing that counted most, -1: none */

	/* the table's own links (indexes; UINT32_MAX: none) */
	uint32_t hnext, lru_prev, lru_next;
	bool used;
};

struct client_table;

/* A table of at most max entries (max >= 1). */
struct client_table *client_table_new(size_t max);
void client_table_free(struct client_table *t);

/* The entry of sa's key, made (maybe reusing the stalest) when there is
 * none; marked as seen now.  Never NULL. */
struct client_entry *client_table_get(struct client_table *t, const struct sockaddr *sa);

/* The entry of sa's key, or NULL; not marked as seen. */
struct client_entry *client_table_find(struct client_table *t, const struct sockaddr *sa);

/* Entries in use; entries reused while they still had a session open. */
size_t client_table_count(const struct client_table *t);
size_t client_table_evicted_busy(const struct client_table *t);

/* The 16-octet form of an address (IPv4 as v4-mapped IPv6). */
void client_addr16(const struct sockaddr *sa, unsigned char out[16]);

/* Count one event in r's window of window seconds; the count with it. */
unsigned client_rate_add(struct client_rate *r, time_t now, unsigned window);

#endif
