/*
 * dns_answer.h - one DNS answer as hato uses it: its status, its records
 * of the type asked, and how long it may be kept.
 *
 * dns_answer_parse() reads a DNS message (untrusted: every length and name
 * pointer is checked; c-ares' ares_expand_name follows compression with a
 * loop guard) into one allocation.  The status keeps apart what SPF and
 * DMARC must tell apart (RFC 7208 §4.6.4, §5): a name that does not exist
 * (NXDOMAIN), a name without records of that type (NODATA), and no usable
 * answer at all (TEMPFAIL: timeout, SERVFAIL, REFUSED, a malformed
 * message).  Records of other types in the answer section (a CNAME chain)
 * only lower the TTL.  A negative answer's TTL comes from the SOA in the
 * authority section (RFC 2308 §5: the lower of its TTL and its MINIMUM);
 * without one it is 0 (not kept).
 *
 * Answers are reference counted: the cache holds one reference and a
 * request being answered another, so an answer outlives its eviction.
 */
#ifndef HATO_DNS_ANSWER_H
#define HATO_DNS_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The record types hato asks for (RFC 1035, RFC 3596). */
enum dns_type {
	DNS_T_A = 1,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
};

enum dns_status {
	DNS_OK,       /* at least one record of the type asked */
	DNS_NXDOMAIN, /* the name does not exist (or cannot be asked) */
	DNS_NODATA,   /* the name exists, with no record of that type */
	DNS_TEMPFAIL, /* no usable answer: ask again later */
};

#define DNS_ANSWER_RR_MAX 128 /* records kept from one answer */
#define DNS_WHY_MAX 96        /* room for why a lookup failed */

/* One record.  A: 4 octets, AAAA: 16, in network order.  TXT: its strings
 * joined (may hold NUL octets; len counts them).  MX (with pref) and PTR:
 * the host name, no final dot.  data is always NUL-terminated after len. */
struct dns_rr {
	unsigned pref;
	size_t len;
	const char *data;
};

struct dns_answer {
	unsigned refs;
	enum dns_status status;
	uint32_t ttl; /* seconds it may be kept; 0: not kept */
	size_t n;
	const struct dns_rr *rr;
	char why[DNS_WHY_MAX]; /* TEMPFAIL, NXDOMAIN: for people and logs */
};

/*
 * Read the DNS message buf[0..len) that answers a question of type qtype.
 * Never NULL: a message that does not parse gives a TEMPFAIL answer.  The
 * answer has one reference.
 */
struct dns_answer *dns_answer_parse(const unsigned char *buf, size_t len, enum dns_type qtype);

/* An answer with no records: status, why (printf-style; may be NULL). */
struct dns_answer *dns_answer_status(enum dns_status status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Take and give back a reference; the last one frees the answer. */
struct dns_answer *dns_answer_ref(struct dns_answer *a);
void dns_answer_unref(struct dns_answer *a);

/* Can name be asked at all (RFC 1035 §2.3.4): 1 to 253 octets (a final
 * dot aside), no empty label, none over 63 octets? */
bool dns_name_ok(const char *name);

/* "ok", "nxdomain", "nodata", "tempfail": for logs. */
const char *dns_status_name(enum dns_status s);

/* "A", "TXT", ...: for logs. */
const char *dns_type_name(enum dns_type t);

#endif
