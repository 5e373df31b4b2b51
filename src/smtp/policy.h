/*
 * policy.h - who may send what, decided in one place.
 *
 * Trust: a client whose address is in trusted_networks (an IPv4-mapped
 * IPv6 address counts as the IPv4 address) is trusted; nobody else is.
 * Relay: an authenticated user may send to any domain; so may a client in
 * trusted_networks; everyone else only to local domains (and to an address
 * literal naming the address the client connected to, and <postmaster>).
 * Senders: an authenticated user may use as MAIL FROM only the addresses
 * [senders] gives them; without an entry, user@ each local domain (or the
 * login itself when it is an address).  An address owned this way is owned
 * with a subaddress (recipient_delimiter: alice+tag@) and quoted
 * ("alice"@) too.  The null sender <> is always allowed.  With [sql]
 * sender_query, an address is also the user's when the sender table
 * lists the user among its logins (for the address as written, then
 * without its subaddress); the table adds to [senders], never takes away.
 */
#ifndef HATO_POLICY_H
#define HATO_POLICY_H

#include <stdbool.h>
#include <stddef.h>

struct cidr;
struct conf;
struct mailaddr;
struct sockaddr;
struct sqlmap_ask;

/* An answer that may wait for a lookup table. */
enum policy_answer {
	POLICY_NO,
	POLICY_YES,
	POLICY_WAIT,     /* the ask has questions: sqlmap_fetch, then ask again */
	POLICY_TEMPFAIL, /* the table could not answer */
};

/* Is the client at sa in one of trusted_networks? */
bool policy_client_trusted(const struct conf *c, const struct sockaddr *sa);

/* Is sa in one of the n networks (an IPv4-mapped IPv6 address counts as
 * the IPv4 address)? */
bool policy_addr_in(const struct cidr *nets, size_t n, const struct sockaddr *sa);

/* May mail to a be accepted from this client?  local_addr is the address
 * the client connected to (for address literals). */
bool policy_rcpt_allowed(const struct conf *c, const struct mailaddr *a, const char *local_addr,
			 bool trusted, const char *auth_user);

/* May the authenticated user send as a ([senders] and the defaults)? */
bool policy_sender_allowed(const struct conf *c, const char *user, const struct mailaddr *a);

/* policy_sender_allowed, else the sender table through ask (NULL: none). */
enum policy_answer policy_sender_check(const struct conf *c, struct sqlmap_ask *ask,
				       const char *user, const struct mailaddr *a);

#endif
