/*
 * local_domain.c - is a domain one of ours, and its [domain NAME] (see
 * route.h).  A domain matches a local_domains entry as written (any case)
 * or as its A-label; a U-label that differs from the entry only by IDNA
 * mapping (the case of non-ASCII letters) matches through its A-label.
 */
#include "route.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

/* See route.h. */
long route_local_index(const struct conf *c, const char *domain)
{
	char *lc;
	long found = -1;

	for (size_t i = 0; i < c->nlocal_domains; i++)
		if (strcasecmp(c->local_domains[i], domain) == 0 ||
		    (c->local_domains_ascii != NULL && c->local_domains_ascii[i] != NULL &&
		     strcasecmp(c->local_domains_ascii[i], domain) == 0))
			return (long)i;
	if (c->local_domains_ascii == NULL || (lc = addr_domain_alabel(domain)) == NULL)
		return -1;
	for (size_t i = 0; i < c->nlocal_domains && found < 0; i++)
		if (c->local_domains_ascii[i] != NULL && strcmp(c->local_domains_ascii[i], lc) == 0)
			found = (long)i;
	free(lc);
	return found;
}

/* See route.h. */
bool route_is_local(const struct conf *c, const char *domain)
{
	return route_local_index(c, domain) >= 0;
}

/* See route.h. */
const struct domain_conf *route_domain_conf(const struct conf *c, const char *domain)
{
	long i = route_local_index(c, domain);

	if (i < 0)
		return NULL;
	/* [domain NAME] is checked at load to be one of local_domains as written */
	for (size_t d = 0; d < c->ndomains; d++)
		if (strcasecmp(c->domains[d].name, c->local_domains[i]) == 0)
			return &c->domains[d];
	return NULL;
}
