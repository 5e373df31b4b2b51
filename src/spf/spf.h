/*
 * spf.h - Sender Policy Framework (RFC 7208): may this client send mail
 * for this domain?
 *
 * hato's own evaluator (docs/authentication.md says why not libspf2).  It
 * never does DNS itself: it is replayed.  spf_run() evaluates check_host()
 * from the start with the answers it has been given; when it reaches a
 * lookup it has no answer for, it stops and lists the lookups it needs
 * (all the address lookups of an "mx" or "ptr" term at once), and the
 * caller asks DNS however it likes (the event loop's dns_query, or a table
 * in a test), hands each answer in with spf_answer(), and runs it again.
 * Evaluation is deterministic, so each run gets further; once a term has
 * its answers it is never asked again, so each name is looked up once.
 *
 * Limits (RFC 7208 §4.6.4): at most SPF_TERMS_MAX DNS-querying terms
 * (include, a, mx, ptr, exists, redirect), SPF_VOID_MAX void lookups
 * (NXDOMAIN or no records), SPF_MX_MAX MX names and SPF_PTR_MAX PTR names;
 * beyond, permerror (the PTR names beyond are ignored).  A record that
 * loops (include or redirect back to itself) runs into the term limit; a
 * macro expansion is bounded by SPF_EXPAND_MAX octets and a domain is
 * shortened to 253 (§7.3); every record is parsed whole before it is
 * used, and any syntax error is a permerror.  A temporary DNS failure is
 * temperror.  No input can make it crash, loop or grow without bound.
 */
#ifndef HATO_SPF_H
#define HATO_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "dns_answer.h"

#define SPF_TERMS_MAX 10    /* DNS-querying terms (§4.6.4) */
#define SPF_VOID_MAX 2      /* void lookups (§4.6.4) */
#define SPF_MX_MAX 10       /* MX names looked up per "mx" term */
#define SPF_PTR_MAX 10      /* PTR names validated per "ptr" or %{p} */
#define SPF_EXPAND_MAX 1024 /* octets of one macro expansion */
#define SPF_LOOKUPS_MAX 256 /* distinct lookups one evaluation may ask */
#define SPF_NEED_MAX 32     /* lookups one run may ask for at once */
#define SPF_DOMAIN_MAX 253
#define SPF_EXP_MAX 512  /* octets of an explanation kept */
#define SPF_WHY_MAX 256  /* octets of the reason kept */
#define SPF_ADDR_MAX 320 /* octets of a sender address */

enum spf_result {
	SPF_RESULT_NONE,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};

/* One lookup the evaluator needs. */
struct spf_need {
	enum dns_type type;
	char name[SPF_DOMAIN_MAX + 2];
};

struct spf_lookup; /* an answer given, see spf.c */

struct spf {
	/* the question */
	int family;                    /* AF_INET or AF_INET6 */
	unsigned char ip[16];          /* the client's address */
	char sender[SPF_ADDR_MAX + 1]; /* MAIL FROM, or postmaster@HELO when it was empty */
	char helo[SPF_DOMAIN_MAX + 2];
	char domain[SPF_DOMAIN_MAX + 2]; /* checked: the sender's domain, or the HELO name */
	bool helo_identity;              /* domain is the HELO name */
	char receiver[SPF_DOMAIN_MAX + 2];
	time_t now; /* for %{t} */

	/* the answers so far */
	struct spf_lookup *lookups;
	size_t nlookups;

	/* after spf_run: what it needs, or its result */
	struct spf_need need[SPF_NEED_MAX];
	size_t nneed;
	enum spf_result result;
	char why[SPF_WHY_MAX];         /* e.g. "matched ip4:192.0.2.0/24", for logs */
	char explanation[SPF_EXP_MAX]; /* fail: from exp=, or empty */
};

/*
 * Set up a check of ip (text, IPv4 or IPv6) sending as sender (MAIL FROM,
 * "" for the null reverse-path) after HELO helo; receiver is our host name
 * (%{r}).  false when ip is not an address.  The identity checked is the
 * sender's domain, or the HELO name when sender is empty; a domain that
 * cannot be one (no dot, an address literal, an empty or too long label)
 * gives the result none at once (§4.3).
 */
bool spf_init(struct spf *s, const char *ip, const char *sender, const char *helo,
	      const char *receiver);

/* Release the answers held. */
void spf_free(struct spf *s);

/* Evaluate: true when the result is in s->result (and s->why), false when
 * it needs the lookups in s->need[0..nneed) first. */
bool spf_run(struct spf *s);

/* The answer to one lookup asked for (a reference is taken). */
void spf_answer(struct spf *s, enum dns_type type, const char *name, struct dns_answer *a);

/* "pass", "fail", ... as RFC 8601 and Received-SPF write them. */
const char *spf_result_name(enum spf_result r);

/*
 * Expand the macro-string in[0..len) for s's question with current domain
 * d into out (RFC 7208 §7).  exp: in an explanation (c, r and t allowed).
 * Returns 1 when done, 0 when it needs the validated PTR name (%{p}: the
 * lookups are in s->need), -1 for a syntax error or an expansion longer
 * than SPF_EXPAND_MAX.  With s NULL only the syntax is checked (d and out
 * are not used).  For spf.c and its tests.
 */
int spf_expand(struct spf *s, const char *in, size_t len, const char *d, bool exp, char *out,
	       size_t outsz);

#endif
