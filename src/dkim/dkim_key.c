/*
 * dkim_key.c - key records, private keys and new keys on OpenSSL 3's
 * EVP interface.  See dkim_key.h.
 */
#include "dkim_key.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "dkim_tags.h"
#include "util.h"

#define ED25519_KEY_LEN 32
/* Octets of a decoded p=: an RSA key of DKIM_RSA_BITS_MAX bits fits */
#define DKIM_P_MAX 2048

static const char *const alg_names[] = {"rsa-sha256", "ed25519-sha256", "rsa-sha1"};

/* See dkim.h. */
const char *dkim_alg_name(enum dkim_alg a)
{
	return alg_names[a];
}

/* See dkim.h. */
bool dkim_alg_parse(const char *s, size_t n, enum dkim_alg *out)
{
	for (size_t i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
		if (strlen(alg_names[i]) == n && strncasecmp(alg_names[i], s, n) == 0) {
			*out = (enum dkim_alg)i;
			return true;
		}
	return false;
}

/* See dkim_key.h. */
enum dkim_keytype dkim_alg_keytype(enum dkim_alg a)
{
	return a == DKIM_ALG_ED25519_SHA256 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;
}

/* Set why to a reason; false. */
static bool fail(char *why, size_t whysz, const char *reason)
{
	if (why != NULL && whysz > 0)
		snprintf(why, whysz, "%s", reason);
	return false;
}

/* Does the colon-separated list in tag t hold word (case-insensitive)? */
static bool list_has(const struct dkim_tag *t, const char *word)
{
	size_t n = strlen(word), i = 0;

	while (i < t->vallen) {
		size_t start, end;

		while (i < t->vallen && (t->val[i] == ' ' || t->val[i] == '\t' ||
					 t->val[i] == '\r' || t->val[i] == '\n'))
			i++;
		start = i;
		while (i < t->vallen && t->val[i] != ':')
			i++;
		end = i;
		while (end > start && (t->val[end - 1] == ' ' || t->val[end - 1] == '\t' ||
				       t->val[end - 1] == '\r' || t->val[end - 1] == '\n'))
			end--;
		if (end - start == n && strncasecmp(t->val + start, word, n) == 0)
			return true;
		i++;
	}
	return false;
}

/* The public key in der[0..len) of type; NULL when it is not one. */
static EVP_PKEY *pubkey_decode(enum dkim_keytype type, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *k;

	if (type == DKIM_KEY_ED25519)
		return len == ED25519_KEY_LEN
			       ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, len)
			       : NULL;
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k != NULL && (p != der + len || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA)) {
		EVP_PKEY_free(k);
		return NULL;
	}
	if (k == NULL) { /* a bare RSAPublicKey (PKCS#1) */
		p = der;
		k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	}
	return k;
}

/* See dkim_key.h. */
bool dkim_pubkey_parse(const char *rec, size_t len, struct dkim_pubkey *out, char *why,
		       size_t whysz)
{
	struct dkim_tags tags;
	const struct dkim_tag *v, *h, *k, *s, *t, *p;
	char b64[DKIM_P_MAX * 4 / 3 + 8];
	unsigned char der[BASE64_DECODED_MAX(sizeof(b64))];
	size_t derlen;

	memset(out, 0, sizeof(*out));
	if (len > DKIM_KEY_RECORD_MAX)
		return fail(why, whysz, "key record too long");
	if (!dkim_tags_parse(rec, len, &tags, why, whysz))
		return false;
	v = dkim_tags_get(&tags, "v");
	if (v != NULL && (v != &tags.t[0] || !dkim_tag_is(v, "DKIM1", false)))
		return fail(why, whysz, "key record: v= is not DKIM1 or not first");
	h = dkim_tags_get(&tags, "h");
	if (h != NULL && !list_has(h, "sha256"))
		return fail(why, whysz, "key record: h= does not allow sha256");
	k = dkim_tags_get(&tags, "k");
	if (k == NULL || dkim_tag_is(k, "rsa", true))
		out->type = DKIM_KEY_RSA;
	else if (dkim_tag_is(k, "ed25519", true))
		out->type = DKIM_KEY_ED25519;
	else
		return fail(why, whysz, "key record: unknown key type k=");
	s = dkim_tags_get(&tags, "s");
	if (s != NULL && !list_has(s, "*") && !list_has(s, "email"))
		return fail(why, whysz, "key record: service type s= excludes email");
	t = dkim_tags_get(&tags, "t");
	out->testing = t != NULL && list_has(t, "y");
	out->strict = t != NULL && list_has(t, "s");
	p = dkim_tags_get(&tags, "p");
	if (p == NULL)
		return fail(why, whysz, "key record: no p=");
	if (!dkim_tag_compact(p, b64, sizeof(b64)))
		return fail(why, whysz, "key record: p= too long");
	if (b64[0] == '\0') {
		out->revoked = true;
		return fail(why, whysz, "key revoked (empty p=)");
	}
	if (!base64_decode(b64, strlen(b64), der, &derlen) || derlen > DKIM_P_MAX)
		return fail(why, whysz, "key record: p= is not base64");
	out->pkey = pubkey_decode(out->type, der, derlen);
	if (out->pkey == NULL)
		return fail(why, whysz, "key record: p= is not a public key of type k=");
	out->bits = (unsigned)EVP_PKEY_get_bits(out->pkey);
	return true;
}

/* See dkim_key.h. */
void dkim_pubkey_free(struct dkim_pubkey *k)
{
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
}

/* See dkim_key.h. */
EVP_PKEY *dkim_privkey_read(const char *path, char *why, size_t whysz)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL) {
		snprintf(why, whysz, "%s: cannot open: %m", path);
		return NULL;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL) {
		snprintf(why, whysz, "%s: not a PEM private key (or an encrypted one)", path);
		return NULL;
	}
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA &&
	    EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
		snprintf(why, whysz, "%s: neither an RSA nor an Ed25519 key", path);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

/* See dkim_key.h. */
EVP_PKEY *dkim_privkey_load(const char *path, enum dkim_alg alg, char *why, size_t whysz)
{
	EVP_PKEY *k = dkim_privkey_read(path, why, whysz);
	int want = dkim_alg_keytype(alg) == DKIM_KEY_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA;

	if (k == NULL)
		return NULL;
	if (EVP_PKEY_get_base_id(k) != want) {
		snprintf(why, whysz, "%s: not an %s key, as %s needs", path,
			 want == EVP_PKEY_RSA ? "RSA" : "Ed25519", dkim_alg_name(alg));
		EVP_PKEY_free(k);
		return NULL;
	}
	if (want == EVP_PKEY_RSA && EVP_PKEY_get_bits(k) < DKIM_RSA_BITS_MIN) {
		snprintf(why, whysz, "%s: an RSA key of %d bits: at least %d are needed (RFC 8301)",
			 path, EVP_PKEY_get_bits(k), DKIM_RSA_BITS_MIN);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

/* See dkim_key.h. */
EVP_PKEY *dkim_keygen(enum dkim_keytype type, unsigned bits, char *why, size_t whysz)
{
	EVP_PKEY *k;

	if (type == DKIM_KEY_RSA && (bits < DKIM_RSA_BITS_MIN || bits > DKIM_RSA_BITS_MAX)) {
		snprintf(why, whysz, "an RSA key needs %d to %d bits (RFC 8301), not %u",
			 DKIM_RSA_BITS_MIN, DKIM_RSA_BITS_MAX, bits);
		return NULL;
	}
	k = type == DKIM_KEY_RSA ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
				 : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (k == NULL)
		snprintf(why, whysz, "OpenSSL could not make the key");
	return k;
}

/* See dkim_key.h. */
bool dkim_record_format(EVP_PKEY *key, struct strbuf *out)
{
	unsigned char raw[DKIM_P_MAX], *der = NULL;
	char b64[BASE64_ENCODED_SIZE(DKIM_P_MAX)];
	size_t len = sizeof(raw);
	int n;

	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1)
			return false;
		base64_encode(raw, len, b64);
		strbuf_printf(out, "v=DKIM1; k=ed25519; p=%s", b64);
		return true;
	}
	n = i2d_PUBKEY(key, &der);
	if (n <= 0 || (size_t)n > DKIM_P_MAX) {
		OPENSSL_free(der);
		return false;
	}
	base64_encode(der, (size_t)n, b64);
	OPENSSL_free(der);
	strbuf_printf(out, "v=DKIM1; k=rsa; p=%s", b64);
	return true;
}

/* See dkim_key.h. */
bool dkim_privkey_write(EVP_PKEY *key, int fd)
{
	BIO *b = BIO_new_fd(fd, BIO_NOCLOSE);
	bool ok;

	if (b == NULL)
		return false;
	ok = PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1 && BIO_flush(b) == 1;
	BIO_free(b);
	return ok;
}

/* See dkim_key.h. */
bool dkim_key_matches(EVP_PKEY *pub, EVP_PKEY *key)
{
	return EVP_PKEY_eq(pub, key) == 1;
}
