/*
 * dkim.h - DomainKeys Identified Mail (RFC 6376, RFC 8463, RFC 8301):
 * what the signer (dkim_sign.h) and the verifier (dkim_verify.h) share.
 *
 * hato's own code on OpenSSL 3's EVP interface (docs/authentication.md
 * says why not libopendkim).  Everything a message or a DNS record
 * carries is untrusted: every list and every text has a named bound
 * below, and what does not fit ends in a result (permerror, policy),
 * never in a crash, a hang or an unbounded allocation.
 *
 * The folder, by role:
 *   dkim_tags.c    tag=value lists (RFC 6376 §3.2): signatures, key records
 *   dkim_canon.c   simple and relaxed canonicalization, the body hash
 *   dkim_header.c  the header block of a message fed in pieces, its
 *                  fields, and the selection of fields an h= list names
 *   dkim_key.c     key records (§3.6.1), private keys, new keys
 *   dkim_sign.c    DKIM-Signature: fields for a message
 *   dkim_verify.c  every signature of a message, one result each
 */
#ifndef HATO_DKIM_H
#define HATO_DKIM_H

#include <stdbool.h>
#include <stddef.h>

/* Octets of a message's header block kept for signing or verifying;
 * a larger header is neither signed nor verified (permerror). */
#define DKIM_HEADER_BLOCK_MAX (256 * 1024)
/* Header fields of one message considered. */
#define DKIM_FIELDS_MAX 1000
/* Signatures of one message verified; the others are ignored. */
#define DKIM_SIGS_MAX 8
/* Octets of one DKIM-Signature field, name included. */
#define DKIM_SIG_FIELD_MAX 16384
/* Tags of one tag list. */
#define DKIM_TAGS_MAX 32
/* Names in one h= list. */
#define DKIM_HNAMES_MAX 64
/* Octets of one key record (the TXT strings joined). */
#define DKIM_KEY_RECORD_MAX 8192
/* RSA key sizes a verifier accepts (RFC 8301 §3.2) and keygen makes. */
#define DKIM_RSA_BITS_MIN 1024
#define DKIM_RSA_BITS_MAX 8192
/* A domain name, octets; a selector._domainkey.domain name too. */
#define DKIM_DOMAIN_MAX 253
/* Characters of b= kept for Authentication-Results' header.b (RFC 6008). */
#define DKIM_B_PREFIX_LEN 8
/* Room for a result's reason. */
#define DKIM_REASON_MAX 160

/* Signing algorithms.  rsa-sha1 is recognised only to be refused. */
enum dkim_alg {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_RSA_SHA1,
};

/* "rsa-sha256", "ed25519-sha256", "rsa-sha1". */
const char *dkim_alg_name(enum dkim_alg a);
/* The algorithm named s (any of the three); false when unknown. */
bool dkim_alg_parse(const char *s, size_t n, enum dkim_alg *out);

#endif
