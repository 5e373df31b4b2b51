/*
 * spf_internal.h - what spf.c and spf_macro.c share: the answers given so
 * far, looked up by type and name, and the client's validated name.
 */
#ifndef HATO_SPF_INTERNAL_H
#define HATO_SPF_INTERNAL_H

#include "spf.h"

struct spf_lookup {
	enum dns_type type;
	char *name; /* lower case, no final dot */
	struct dns_answer *a;
};

/* The answer given for (type, name); NULL after adding the lookup to
 * s->need (it is asked for, and the run must stop at its term). */
const struct dns_answer *spf_get(struct spf *s, enum dns_type type, const char *name);

/*
 * The client's validated domain names (RFC 7208 §5.5): its PTR names whose
 * A or AAAA records hold its address, at most SPF_PTR_MAX asked.  Calls
 * each in turn with arg until it returns true.  1 when done, 0 when
 * lookups are needed first.  A DNS error is no name.
 */
int spf_validated(struct spf *s, bool (*each)(void *arg, const char *name), void *arg);

/* Is name within domain (equal to it, or one of its subdomains)? */
bool spf_within(const char *name, const char *domain);

#endif
