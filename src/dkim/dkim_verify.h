/*
 * dkim_verify.h - DKIM verification of a received message (RFC 6376 §6,
 * RFC 8463, RFC 8301), as a library for the checking stage and for tests.
 *
 * Every DKIM-Signature field of the message (the first DKIM_SIGS_MAX, from
 * the top) gets one result, with what Authentication-Results (RFC 8601)
 * shows of it: d=, s=, a=, i=, the first characters of b= (header.b,
 * RFC 6008) and a reason.  The key records come from the caller, so that
 * the verifier does no DNS itself and the caller may look them up however
 * it likes (asynchronously, cached):
 *
 *   v = dkim_verify_new();
 *   dkim_verify_feed(v, ...);            the message, in pieces
 *   once dkim_verify_header_done(v) (or at the end of the message):
 *     for each i < dkim_verify_count(v), if dkim_verify_key_name(v, i)
 *     is not NULL, look up its TXT record and give it with
 *     dkim_verify_set_key(v, i, status, text, len)
 *   dkim_verify_finish(v, time(NULL));
 *   dkim_verify_result(v, i) for each i; dkim_verify_free(v).
 *
 * Results: pass; fail (the body hash or the signature does not verify);
 * policy (rsa-sha1, or an RSA key under DKIM_RSA_BITS_MIN bits: RFC 8301
 * says they must not pass); permerror (a signature or key record that is
 * malformed, a revoked or missing key, an expired signature, a header too
 * large to check); temperror (the key could not be looked up now).  A
 * signature whose key name is NULL is decided already (a permerror or
 * policy).  Nothing in the message or the records can make it crash, loop
 * or allocate without bound: the limits are in dkim.h.
 */
#ifndef HATO_DKIM_VERIFY_H
#define HATO_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "dkim.h"

enum dkim_result {
	DKIM_RESULT_PASS,
	DKIM_RESULT_FAIL,
	DKIM_RESULT_NEUTRAL,
	DKIM_RESULT_POLICY,
	DKIM_RESULT_PERMERROR,
	DKIM_RESULT_TEMPERROR,
};

/* "pass", "fail", "neutral", "policy", "permerror", "temperror". */
const char *dkim_result_name(enum dkim_result r);

/* What the lookup of a key record gave. */
enum dkim_key_status {
	DKIM_KEY_FOUND,    /* the TXT record's text (its strings joined) */
	DKIM_KEY_MISSING,  /* NXDOMAIN, or no TXT record there */
	DKIM_KEY_TEMPFAIL, /* a DNS failure: try again later */
};

#define DKIM_SELECTOR_MAX 63
#define DKIM_I_MAX 320

/* One signature's result. */
struct dkim_sig_result {
	enum dkim_result result;
	char d[DKIM_DOMAIN_MAX + 1];   /* "" when unknown */
	char s[DKIM_SELECTOR_MAX + 1]; /* selector */
	char a[16];                    /* algorithm as written, "" when unknown */
	char i[DKIM_I_MAX + 1];        /* the identity (i=, else "@" d=) */
	char b[DKIM_B_PREFIX_LEN + 1]; /* header.b */
	bool testing;                  /* the key record says t=y */
	char reason[DKIM_REASON_MAX];
};

struct dkim_verify;

struct dkim_verify *dkim_verify_new(void);
void dkim_verify_free(struct dkim_verify *v);

/* The message's octets, from the first, in pieces of any size. */
void dkim_verify_feed(struct dkim_verify *v, const char *p, size_t n);

/* Is the header complete (its signatures known)? */
bool dkim_verify_header_done(const struct dkim_verify *v);

/* The number of signatures (after the header, or after finish). */
size_t dkim_verify_count(const struct dkim_verify *v);

/* The name whose TXT record signature i needs, "SELECTOR._domainkey.DOMAIN",
 * or NULL when no key is needed (the result is known). */
const char *dkim_verify_key_name(const struct dkim_verify *v, size_t i);

/* Give signature i its key record (text ignored unless DKIM_KEY_FOUND). */
void dkim_verify_set_key(struct dkim_verify *v, size_t i, enum dkim_key_status st, const char *text,
			 size_t len);

/* The end of the message: decide every signature (now for x=). */
void dkim_verify_finish(struct dkim_verify *v, time_t now);

/* Signature i's result, after dkim_verify_finish. */
const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i);

/* A key lookup for dkim_verify_message: fills text (up to size octets)
 * and *len for a record found. */
typedef enum dkim_key_status (*dkim_key_lookup_fn)(void *arg, const char *name, char *text,
						   size_t size, size_t *len);

/* Verify a whole message in memory with a blocking key lookup (tests, the
 * command line); the caller frees the verifier. */
struct dkim_verify *dkim_verify_message(const char *msg, size_t len, dkim_key_lookup_fn fn,
					void *arg, time_t now);

#endif
