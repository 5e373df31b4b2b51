/*
 * dmarc.h - Domain-based Message Authentication, Reporting and Conformance
 * (RFC 7489): does the author's domain (the From: header) stand behind
 * this message, through an SPF or DKIM pass aligned with it, and what does
 * it ask a receiver to do when not?
 *
 * hato's own code (docs/authentication.md says why not libopendmarc).
 * Like the SPF evaluator it does no DNS itself: dmarc_run() says which TXT
 * record it needs (_dmarc.FROM-DOMAIN, then _dmarc.ORG-DOMAIN when that
 * has none, §6.6.3), the caller hands the answer in with dmarc_answer()
 * and runs it again.
 *
 * Alignment (§3.1): relaxed (the default: the organisational domains,
 * from the Public Suffix List, are the same) or strict (the names are the
 * same), for SPF (aspf=, the domain SPF checked) and DKIM (adkim=, the d=
 * of each signature that passed).  A message passes when either aligns.
 * A failing message gets the policy of the record: p=, or sp= when the
 * record was found at the organisational domain for a subdomain; under
 * pct= below 100 the others get the next milder policy (§6.6.4).
 *
 * Records are untrusted: the tag list is parsed with bounds, unknown tags
 * and bad values of optional tags are ignored (§6.3), and a record with no
 * valid p= is treated as p=none when it names a report address (rua=),
 * else as no record (§6.6.3).
 */
#ifndef HATO_DMARC_H
#define HATO_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "dns_answer.h"

struct psl;

#define DMARC_DOMAIN_MAX 253
#define DMARC_DKIM_MAX 8 /* passing DKIM domains considered */
#define DMARC_WHY_MAX 256

enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

enum dmarc_result {
	DMARC_RESULT_NONE, /* no policy published (or no From: domain to ask for) */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR, /* the From: header names no single author domain */
};

struct dmarc_record {
	enum dmarc_policy p, sp;
	bool strict_dkim, strict_spf; /* adkim=s, aspf=s */
	unsigned pct;                 /* 0-100 */
};

struct dmarc {
	/* the question */
	const struct psl *psl;
	char from[DMARC_DOMAIN_MAX + 1]; /* the author's domain */
	char org[DMARC_DOMAIN_MAX + 1];  /* its organisational domain */
	bool spf_pass;
	char spf_domain[DMARC_DOMAIN_MAX + 1];
	char dkim[DMARC_DKIM_MAX][DMARC_DOMAIN_MAX + 1]; /* d= of passing signatures */
	size_t ndkim;

	/* the answers: [0] _dmarc.from, [1] _dmarc.org */
	struct dns_answer *answer[2];

	bool decided; /* by dmarc_init, with no lookup */

	/* after dmarc_run: the lookup needed, or the result */
	char need[DMARC_DOMAIN_MAX + 8]; /* a TXT name; empty when done */
	enum dmarc_result result;
	struct dmarc_record record; /* found (result pass or fail) */
	bool at_org;                /* the record is the organisational domain's */
	bool spf_aligned, dkim_aligned;
	enum dmarc_policy policy;      /* the policy of the record for this message */
	enum dmarc_policy disposition; /* what to do: policy, milder when pct= sampled it out */
	char why[DMARC_WHY_MAX];
};

/*
 * Set up a check of a message whose From: header value is from[0..len),
 * with SPF's result (pass or not) for spf_domain (the MAIL FROM domain, or
 * the HELO name for the null sender; may be NULL).  A From: header with no
 * address or more than one gives permerror at the first run; a From:
 * domain with no dot ("localhost") gives none with no lookup.  Add the DKIM
 * passes with dmarc_add_dkim before the first run.
 */
void dmarc_init(struct dmarc *d, const struct psl *psl, const char *from, size_t len, bool spf_pass,
		const char *spf_domain);

/* A DKIM signature by domain verified (pass). */
void dmarc_add_dkim(struct dmarc *d, const char *domain);

/* Evaluate: true when d->result is set, false when the TXT record named
 * in d->need is needed first. */
bool dmarc_run(struct dmarc *d);

/* The answer to d->need (a reference is taken). */
void dmarc_answer(struct dmarc *d, struct dns_answer *a);

void dmarc_free(struct dmarc *d);

/* Parse one TXT record: 1 a DMARC record (into r), 0 not one ("v=DMARC1"
 * is not its first tag), -1 one without a usable policy. */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r);

/* The domain of the one author address of a From: header value; 1, 0 when
 * there is no address, -1 when there is more than one. */
int dmarc_from_domain(const char *value, size_t len, char *out, size_t outsz);

/* "none", "pass", ...; "none", "quarantine", "reject". */
const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
