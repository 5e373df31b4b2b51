/*
 * policy.c - trust, relay and sender decisions.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "conf.h"
#include "local.h"
#include "route.h"
#include "sqlmap.h"
#include "util.h"

/* Does addr (family's length) fall in the network? */
static bool cidr_match(const struct cidr *n, int family, const unsigned char *addr)
{
	unsigned bits = n->prefix, i;

	if (family != n->family)
		return false;
	for (i = 0; bits >= 8; i++, bits -= 8)
		if (addr[i] != n->addr[i])
			return false;
	if (bits == 0)
		return true;
	return ((addr[i] ^ n->addr[i]) & (0xff00 >> bits)) == 0;
}

/* See policy.h. */
bool policy_client_trusted(const struct conf *c, const struct sockaddr *sa)
{
	return policy_addr_in(c->trusted, c->ntrusted, sa);
}

/* See policy.h. */
bool policy_addr_in(const struct cidr *nets, size_t n, const struct sockaddr *sa)
{
	const unsigned char *addr;
	int family = sa->sa_family;
	unsigned char v4[4];

	if (family == AF_INET) {
		addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		addr = (const unsigned char *)a6;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(v4, addr + 12, 4);
			addr = v4;
			family = AF_INET;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (cidr_match(&nets[i], family, addr))
			return true;
	return false;
}

/* Does "[192.0.2.1]" / "[IPv6:...]" name local_addr?  Compared as
 * addresses, not text (::1 is also 0:0:0:0:0:0:0:1). */
static bool literal_is_local(const char *literal, const char *local_addr)
{
	char lit[ADDR_DOMAIN_MAX + 1];
	unsigned char want[16], got[16];
	bool v6 = strncasecmp(literal, "[IPv6:", 6) == 0;
	int fam = strchr(local_addr, ':') ? AF_INET6 : AF_INET;

	strcpy_bounded(lit, literal + (v6 ? 6 : 1), sizeof(lit));
	lit[strcspn(lit, "]")] = '\0';
	return (fam == AF_INET6) == v6 && inet_pton(fam, local_addr, want) == 1 &&
	       inet_pton(fam, lit, got) == 1 && memcmp(want, got, fam == AF_INET6 ? 16 : 4) == 0;
}

/* See policy.h. */
bool policy_rcpt_allowed(const struct conf *c, const struct mailaddr *a, const char *local_addr,
			 bool trusted, const char *auth_user)
{
	if (a->kind == ADDR_KIND_POSTMASTER)
		return true;
	if (a->literal ? literal_is_local(a->domain, local_addr) : route_is_local(c, a->domain))
		return true;
	return trusted || auth_user != NULL;
}

/*
 * Is the local part of a the owned one (olen octets at owned), or a
 * subaddress or a quoting of it?  Both are folded as recipients are
 * (local_part_fold): "alice+tag" and "\"alice\"" are alice's, with
 * recipient_delimiter; case does not matter.
 */
static bool local_owned(const struct conf *c, const char *owned, size_t olen,
			const struct mailaddr *a)
{
	char want[LOCAL_NAME_MAX], wfull[LOCAL_NAME_MAX], wbase[LOCAL_NAME_MAX];
	char full[LOCAL_NAME_MAX], base[LOCAL_NAME_MAX];

	if (olen >= sizeof(want))
		return false;
	memcpy(want, owned, olen);
	want[olen] = '\0';
	return local_part_fold(c, want, wfull, wbase, sizeof(wfull)) &&
	       local_part_fold(c, a->local, full, base, sizeof(full)) &&
	       (strcmp(wfull, full) == 0 || strcmp(wfull, base) == 0);
}

/* Does one [senders] pattern allow a? */
static bool sender_matches(const struct conf *c, const char *pattern, const struct mailaddr *a)
{
	const char *at = strrchr(pattern, '@');

	if (strcmp(pattern, "*") == 0)
		return true;
	if (at == NULL || strcasecmp(at + 1, a->domain) != 0)
		return false;
	return at == pattern || local_owned(c, pattern, (size_t)(at - pattern), a);
}

/* See policy.h. */
bool policy_sender_allowed(const struct conf *c, const char *user, const struct mailaddr *a)
{
	const char *at;

	if (a->kind == ADDR_KIND_NULL)
		return true;
	if (a->kind != ADDR_KIND_MAILBOX)
		return false;
	for (size_t i = 0; i < c->nsenders; i++) {
		if (strcmp(c->senders[i].user, user) != 0)
			continue;
		for (size_t j = 0; j < c->senders[i].naddrs; j++)
			if (sender_matches(c, c->senders[i].addrs[j], a))
				return true;
		return false;
	}
	/* the default: the login itself when it is an address, else user@local */
	if ((at = strrchr(user, '@')) != NULL)
		return local_owned(c, user, (size_t)(at - user), a) &&
		       strcasecmp(at + 1, a->domain) == 0;
	return local_owned(c, user, strlen(user), a) && !a->literal && route_is_local(c, a->domain);
}

/* Does the sender table list user among the logins of name@domain (each
 * row one login, or several separated by commas)? */
static enum policy_answer sender_table(struct sqlmap_ask *ask, const char *user, const char *name,
				       const char *domain)
{
	const char *const *logins;
	size_t n;

	switch (sqlmap_get(ask, SQLMAP_SENDER, name, domain, &logins, &n)) {
	case SQLMAP_WAIT:
		return POLICY_WAIT;
	case SQLMAP_FAIL:
		return POLICY_TEMPFAIL;
	case SQLMAP_NO:
		return POLICY_NO;
	case SQLMAP_YES:
		break;
	}
	for (size_t i = 0; i < n; i++) { /* a row may list several, as alias targets do */
		size_t ulen = strlen(user);

		for (const char *p = logins[i]; *p != '\0';) {
			size_t len;

			p += strspn(p, ", \t");
			len = strcspn(p, ", \t");
			if (len == ulen && len > 0 && strncasecmp(p, user, len) == 0)
				return POLICY_YES;
			p += len;
		}
	}
	return POLICY_NO;
}

/* See policy.h. */
enum policy_answer policy_sender_check(const struct conf *c, struct sqlmap_ask *ask,
				       const char *user, const struct mailaddr *a)
{
	char full[LOCAL_NAME_MAX], base[LOCAL_NAME_MAX];
	enum policy_answer first, second = POLICY_NO;

	if (policy_sender_allowed(c, user, a))
		return POLICY_YES;
	if (a->kind != ADDR_KIND_MAILBOX || a->literal ||
	    !local_part_fold(c, a->local, full, base, sizeof(full)))
		return POLICY_NO;
	/* both questions in the same round: one wait, not two */
	first = sender_table(ask, user, full, a->domain);
	if (first != POLICY_YES && strcmp(base, full) != 0)
		second = sender_table(ask, user, base, a->domain);
	if (first == POLICY_YES || second == POLICY_YES)
		return POLICY_YES;
	if (first == POLICY_TEMPFAIL || second == POLICY_TEMPFAIL)
		return POLICY_TEMPFAIL;
	if (first == POLICY_WAIT || second == POLICY_WAIT)
		return POLICY_WAIT;
	return POLICY_NO;
}
