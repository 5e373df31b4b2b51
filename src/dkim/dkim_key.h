/*
 * dkim_key.h - DKIM keys: the public key record published in DNS at
 * SELECTOR._domainkey.DOMAIN (RFC 6376 §3.6.1, RFC 8463 §4), signing keys
 * in PEM files, and new key pairs (hato dkim keygen).
 *
 * A record's p= is the base64 of a DER SubjectPublicKeyInfo for RSA (a
 * bare PKCS#1 RSAPublicKey is taken too, as other verifiers do) and of
 * the 32 raw octets of the public key for Ed25519.  A record that does not
 * parse, names an unknown key type or service, or carries an empty p=
 * (a revoked key) is refused with a reason; nothing in it is trusted.
 */
#ifndef HATO_DKIM_KEY_H
#define HATO_DKIM_KEY_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"
#include "strbuf.h"

enum dkim_keytype {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

/* A public key record, parsed. */
struct dkim_pubkey {
	EVP_PKEY *pkey;
	enum dkim_keytype type;
	unsigned bits; /* RSA: the modulus size */
	bool testing;  /* t=y: the domain is testing DKIM */
	bool strict;   /* t=s: i= must be in d= itself, not a subdomain */
	bool revoked;  /* p= empty */
};

/* Parse a key record rec[0..len); false with a reason when it is unusable
 * (revoked says whether because p= is empty).  out->pkey is then NULL. */
bool dkim_pubkey_parse(const char *rec, size_t len, struct dkim_pubkey *out, char *why,
		       size_t whysz);
void dkim_pubkey_free(struct dkim_pubkey *k);

/* The key type an algorithm uses. */
enum dkim_keytype dkim_alg_keytype(enum dkim_alg a);

/* Read an RSA or Ed25519 private key from a PEM file; NULL with a reason. */
EVP_PKEY *dkim_privkey_read(const char *path, char *why, size_t whysz);

/* Read a private key from a PEM file; NULL with a reason.  It must be of
 * the type alg signs with (and RSA at least DKIM_RSA_BITS_MIN bits). */
EVP_PKEY *dkim_privkey_load(const char *path, enum dkim_alg alg, char *why, size_t whysz);

/* A new key pair: Ed25519, or RSA of bits bits (DKIM_RSA_BITS_MIN ..
 * DKIM_RSA_BITS_MAX); NULL with a reason. */
EVP_PKEY *dkim_keygen(enum dkim_keytype type, unsigned bits, char *why, size_t whysz);

/* Append the key record for key's public half: "v=DKIM1; k=...; p=...". */
bool dkim_record_format(EVP_PKEY *key, struct strbuf *out);

/* Write key as an unencrypted PKCS#8 PEM to an open file descriptor. */
bool dkim_privkey_write(EVP_PKEY *key, int fd);

/* Is the public key pub the public half of key? */
bool dkim_key_matches(EVP_PKEY *pub, EVP_PKEY *key);

#endif
