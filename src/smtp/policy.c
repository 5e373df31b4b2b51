/*
 * policy.c - relay and sender decisions.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "conf.h"
#include "util.h"

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
	if (a->literal ? literal_is_local(a->domain, local_addr)
		       : conf_is_local_domain(c, a->domain))
		return true;
	return trusted || auth_user != NULL;
}

/* Does one [senders] pattern allow a? */
static bool sender_matches(const char *pattern, const struct mailaddr *a)
{
	const char *at = strrchr(pattern, '@');
	size_t llen;

	if (strcmp(pattern, "*") == 0)
		return true;
	if (at == NULL || strcasecmp(at + 1, a->domain) != 0)
		return false;
	llen = (size_t)(at - pattern);
	return llen == 0 || (strlen(a->local) == llen && strncasecmp(pattern, a->local, llen) == 0);
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
			if (sender_matches(c->senders[i].addrs[j], a))
				return true;
		return false;
	}
	/* the default: the login itself when it is an address, else user@local */
	if ((at = strrchr(user, '@')) != NULL)
		return strlen(a->local) == (size_t)(at - user) &&
		       strncasecmp(user, a->local, (size_t)(at - user)) == 0 &&
		       strcasecmp(at + 1, a->domain) == 0;
	return strcasecmp(a->local, user) == 0 && !a->literal && conf_is_local_domain(c, a->domain);
}
