/*
 * mx.h - where mail for a domain goes: its MX hosts in order of preference,
 * each with its addresses (RFC 5321 §5.1), the implicit MX of a domain
 * without MX records, and the null MX of one that accepts no mail (RFC 7505).
 *
 * Blocking, for delivery worker threads, never for the event loop.  Each
 * call makes its own c-ares channel, drives it with poll() until its
 * queries are answered, and destroys it: calls share no state, so any
 * number of threads may look up at once, and without configured servers
 * every call reads /etc/resolv.conf afresh.  The address lookups of all MX
 * hosts go out together, so a lookup takes two rounds of queries; each
 * round is bounded by the c-ares retry schedule (timeout_ms doubled per
 * round over the servers, tries rounds).  Names are asked as they are, with
 * no search list; only host_lookup() reads /etc/hosts first.
 *
 * Outcomes: OUTCOME_DELIVERED when there is somewhere to go (why says how
 * many hosts); OUTCOME_TEMPFAIL (4.4.3, DNS failures; 4.3.5, a bad server
 * list) or OUTCOME_PERMFAIL (5.1.2 no such domain or no address, 5.1.10
 * null MX, 5.4.4 no MX host with an address) with the reason in why.
 * Addresses carry port 0: the caller sets the port it connects to.
 */
#ifndef HATO_MX_H
#define HATO_MX_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "outcome.h"

#define MX_HOSTS_MAX 16 /* hosts kept from one lookup, lowest preferences first */
#define MX_ADDRS_MAX 8  /* addresses kept per host */
#define MX_NAME_MAX 255 /* a host name, octets */
#define MX_ADDR_TEXT_MAX INET6_ADDRSTRLEN

struct mx_addr {
	struct sockaddr_storage ss; /* AF_INET6 or AF_INET, port 0 */
	socklen_t len;
};

struct mx_host {
	char name[MX_NAME_MAX + 1]; /* A-label form, as DNS gave it */
	unsigned pref;              /* MX preference; 0 for an implicit MX */
	size_t naddrs;
	struct mx_addr addrs[MX_ADDRS_MAX]; /* IPv6 first, then IPv4 */
};

struct mx_list {
	size_t n;
	struct mx_host hosts[MX_HOSTS_MAX];
	bool implicit;   /* no MX: the domain's own addresses (or an address literal) */
	size_t nskipped; /* MX hosts left out because they have no address */
};

struct dns_opts {
	const char *servers; /* "127.0.0.1:5353, [::1]:53" ([dns] servers); NULL: resolv.conf */
	unsigned timeout_ms; /* the first try ([dns] timeout, never 0) */
	unsigned tries;      /* rounds over the servers ([dns] tries, never 0) */
};

/*
 * Where mail for domain goes: MX hosts by preference, equal preferences in
 * a random order, each with its IPv6 and IPv4 addresses.  domain may be
 * written in U-labels (looked up as A-labels) or be an address literal,
 * "[192.0.2.1]" or "[IPv6:2001:db8::1]" (no lookup).  An MX host that has no
 * address is skipped.  out is always initialised.
 */
enum outcome mx_lookup(const struct dns_opts *o, const char *domain, struct mx_list *out,
		       struct delivery_result *why);

/*
 * The addresses of one host named in the configuration (a relay host, a
 * transport entry): an IP address as it is, else /etc/hosts, else DNS.  A
 * name without addresses is PERMFAIL 5.4.4.  out->pref is 0.
 */
enum outcome host_lookup(const struct dns_opts *o, const char *host, struct mx_host *out,
			 struct delivery_result *why);

/*
 * The first TXT record at name, its strings joined, into out (outsz
 * octets with the NUL; a longer record is cut and *len says so by being
 * outsz or more).  OUTCOME_DELIVERED when there is one, PERMFAIL when the
 * name does not exist or has no TXT record, TEMPFAIL on a DNS failure;
 * why says which.  Blocking, like mx_lookup (hato dkim check).
 */
enum outcome txt_lookup(const struct dns_opts *o, const char *name, char *out, size_t outsz,
			size_t *len, struct delivery_result *why);

/* The address as text ("192.0.2.1", "2001:db8::1") in buf, which is returned. */
const char *mx_addr_text(const struct mx_addr *a, char *buf, size_t size);

#endif
