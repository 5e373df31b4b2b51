/*
 * dkim_sign.h - DKIM signatures for outgoing mail (RFC 6376 §5, RFC 8463).
 *
 * A keyring holds the signing keys of the [dkim NAME] sections, read once
 * at start (dkim_keyring_load, before hatod drops privileges).  A message
 * is fed in pieces as it is (dkim_sign_feed: the header block is kept, the
 * body only hashed) and dkim_sign_finish picks the keys and makes the
 * fields:
 *
 *   - the keys are those of the From: domain, else of the nearest parent
 *     domain that has any (mail from sub.example.org is signed by
 *     example.org's keys); every key of that domain signs (two sections
 *     for one domain, Ed25519 and RSA, give two signatures, as RFC 8463
 *     advises);
 *   - relaxed/relaxed, no l=, t= now and x= when the key has an expiry;
 *   - h= lists the fields of RFC 6376 §5.4.1 that are present; From,
 *     Reply-To, Subject, Date, To, Cc, Message-ID, the MIME fields and the
 *     List-* fields are over-signed (named once more than they occur), so
 *     that none can be added after signing.
 *
 * No signature (0) when the message has no single From: with a domain,
 * when no key applies, or when the header is larger than
 * DKIM_HEADER_BLOCK_MAX; -1 with a reason when signing itself failed.
 * Signing costs one private-key operation per key and message.
 */
#ifndef HATO_DKIM_SIGN_H
#define HATO_DKIM_SIGN_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "dkim.h"
#include "dkim_canon.h"
#include "dkim_header.h"
#include "strbuf.h"

struct conf;

/* One signing key: a [dkim NAME] section with its key read. */
struct dkim_signer {
	char *name;
	char *domain; /* d=, lower case */
	char *selector;
	enum dkim_alg alg;
	unsigned expire; /* seconds from t= to x=; 0: no x= */
	EVP_PKEY *key;
};

struct dkim_keyring {
	struct dkim_signer *v;
	size_t n;
};

/* Read the keys of every [dkim NAME] section of c; false with a reason
 * naming the section.  An empty keyring is fine (nothing is signed). */
bool dkim_keyring_load(struct dkim_keyring *kr, const struct conf *c, char *err, size_t errsz);
void dkim_keyring_free(struct dkim_keyring *kr);

/* The domain whose keys sign mail From: domain (itself or the nearest
 * parent with a key), or NULL. */
const char *dkim_keyring_domain(const struct dkim_keyring *kr, const char *domain);

/* One message being signed. */
struct dkim_sign {
	struct dkim_headers *hdr;
	struct dkim_body body;
	bool ok; /* the body hash could be started */
};

/* Start signing a message. */
void dkim_sign_init(struct dkim_sign *s);
/* The message's octets (the header block first), in pieces. */
void dkim_sign_feed(struct dkim_sign *s, const char *p, size_t n);
/*
 * The end of the message: append a DKIM-Signature field (CRLF included)
 * per key of the keys that apply to out.  The number of signatures, 0 when
 * none applies (why says which case), -1 on a failure (why).  domain, when
 * not NULL, gets the d= used (at least DKIM_DOMAIN_MAX + 1 octets).
 */
int dkim_sign_finish(struct dkim_sign *s, const struct dkim_keyring *kr, time_t now,
		     struct strbuf *out, char *domain, char *why, size_t whysz);
void dkim_sign_free(struct dkim_sign *s);

/* The domain of the message's From: address (its one From: field) into
 * out, lower case; false when there is no single From: with a domain. */
bool dkim_from_domain(const struct dkim_headers *h, char *out, size_t outsz);

#endif
