/*
 * psl.h - the Public Suffix List: the organisational domain of a name
 * (RFC 7489 §3.2), for DMARC's relaxed alignment and policy discovery.
 *
 * psl_load() reads the list as publicsuffix.org publishes it (Debian's
 * `publicsuffix` package: /usr/share/publicsuffix/public_suffix_list.dat):
 * one rule a line, "//" comments, "*." wildcards, "!" exceptions, both the
 * ICANN and the private sections.  Rules in U-labels are kept in A-label
 * form too, as mail names domains in A-labels.  The organisational domain
 * is the public suffix plus one label (the name itself when it is a public
 * suffix); with no rule matching, the suffix is the last label (the
 * implicit "*" rule).  Read-only once loaded: any thread.
 */
#ifndef HATO_PSL_H
#define HATO_PSL_H

#include <stdbool.h>
#include <stddef.h>

#define PSL_RULES_MAX 60000 /* rules kept from the file (it has about 10000) */
#define PSL_NAME_MAX 253

struct psl;

/* Read the list at path; NULL with err set when it cannot be read or has
 * no rule. */
struct psl *psl_load(const char *path, char *err, size_t errsz);
void psl_free(struct psl *p);

/* Rules loaded. */
size_t psl_count(const struct psl *p);

/* The organisational domain of name (lower case, no final dot) into out;
 * false when name is not a domain name or out is too small. */
bool psl_org_domain(const struct psl *p, const char *name, char *out, size_t outsz);

#endif
