/*
 * dnsbl.h - DNS blocklists and allowlists (RFC 5782) for one client.
 *
 * dnsbl_check() asks every [dnsbl] zone about the client's address at
 * once, on the event loop (dns_query, so answers are cached for their
 * TTL): IPv4 as its octets reversed, 192.0.2.1 -> 1.2.0.192.ZONE; IPv6 as
 * its 32 nibbles reversed.  It calls back once, later, with the score:
 * the sum of the weights of the zones that list the address (an allowlist
 * has a negative weight).  A zone lists the address when one of its A
 * records is in 127.0.0.0/8, outside 127.255.255.0/24, and matches the
 * zone's filter if it has one.  127.255.255.x answers are a list's errors
 * ("query refused", "public resolver": Spamhaus) and answers outside
 * 127/8 are bogus: both are logged, never listings.  A zone that does not
 * answer (NXDOMAIN is the usual "not listed") counts as not listing.
 */
#ifndef HATO_DNSBL_H
#define HATO_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct conf;
struct dnsbl_zone;
struct dnsbl_check;

struct dnsbl_result {
	int score;
	int zone;      /* index of the listing blocklist with the highest weight; -1: none */
	size_t listed; /* zones that listed the address */
	size_t failed; /* zones with no usable answer, or not answered in time */
};

typedef void (*dnsbl_cb)(void *arg, const struct dnsbl_result *r);

/* Ask c's zones about sa; cb runs once, later, on the loop.  NULL when
 * nothing was asked (no zones; no name fits): then cb never runs.  log_key ("session=ID")
 * starts the log lines about listings. */
struct dnsbl_check *dnsbl_check(const struct conf *c, const struct sockaddr *sa,
				const char *log_key, dnsbl_cb cb, void *arg);

/* Stop a check whose callback has not run: its result so far (zones not
 * answered yet count as failed) goes to partial unless NULL; the callback
 * will not run, and the check is gone. */
void dnsbl_check_stop(struct dnsbl_check *ch, struct dnsbl_result *partial);

/* The name to ask: "<reversed address>.<zone>"; false when it does not fit. */
bool dnsbl_query_name(const struct sockaddr *sa, const char *zone, char *out, size_t size);

enum dnsbl_answer {
	DNSBL_NOT_LISTED, /* 127.0.0.0/8 but not what the filter asks for */
	DNSBL_LISTED,
	DNSBL_ERROR, /* 127.255.255.0/24 or outside 127.0.0.0/8: not a listing */
};

/* What one A record (4 octets) of zone z says. */
enum dnsbl_answer dnsbl_classify(const struct dnsbl_zone *z, const unsigned char a[4]);

#endif
