/*
 * dkim_sign.c - signing.  See dkim_sign.h.
 *
 * The signed data (RFC 6376 §3.7) is the relaxed form of each field h=
 * names, in h= order, then the relaxed form of the DKIM-Signature field
 * itself with an empty b= and no final CRLF.  rsa-sha256 signs it with
 * RSASSA-PKCS1-v1_5 over SHA-256; ed25519-sha256 (RFC 8463 §3) signs the
 * SHA-256 hash of it with PureEdDSA.  The field is written folded, b=
 * last, so that what was signed is the field as written up to "b=".
 */
#include "dkim_sign.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "conf.h"
#include "dkim_key.h"
#include "util.h"

#define FOLD_COLUMN 76     /* a signature's lines are folded before this column */
#define B64_LINE 72        /* base64 characters per folded line of b= */
#define SIG_MAX 1024       /* octets of a signature (RSA of DKIM_RSA_BITS_MAX) */
#define FROM_TEXT_MAX 2048 /* octets of a From: value examined */

/* The fields signed (RFC 6376 §5.4.1), and whether each is over-signed. */
static const struct {
	const char *name;
	bool over;
} sign_fields[] = {
	{"from", true},
	{"reply-to", true},
	{"subject", true},
	{"date", true},
	{"to", true},
	{"cc", true},
	{"message-id", true},
	{"in-reply-to", false},
	{"references", false},
	{"sender", false},
	{"mime-version", true},
	{"content-type", true},
	{"content-transfer-encoding", true},
	{"content-id", false},
	{"content-description", false},
	{"resent-date", false},
	{"resent-from", false},
	{"resent-sender", false},
	{"resent-to", false},
	{"resent-cc", false},
	{"resent-message-id", false},
	{"list-id", true},
	{"list-help", true},
	{"list-unsubscribe", true},
	{"list-subscribe", true},
	{"list-post", true},
	{"list-owner", true},
	{"list-archive", true},
	{"list-unsubscribe-post", true},
};

#define SIGN_FIELDS_LEN (sizeof(sign_fields) / sizeof(sign_fields[0]))

/* Lower-case copy of s. */
static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

/* See dkim_sign.h. */
bool dkim_keyring_load(struct dkim_keyring *kr, const struct conf *c, char *err, size_t errsz)
{
	memset(kr, 0, sizeof(*kr));
	if (c->ndkim == 0)
		return true;
	kr->v = xcalloc(c->ndkim, sizeof(*kr->v));
	for (size_t i = 0; i < c->ndkim; i++) {
		const struct dkim_conf *d = &c->dkim[i];
		struct dkim_signer *s = &kr->v[i];
		char why[512];

		if (!dkim_alg_parse(d->algorithm, strlen(d->algorithm), &s->alg) ||
		    s->alg == DKIM_ALG_RSA_SHA1) {
			snprintf(err, errsz, "[dkim %s]: algorithm %s cannot sign", d->name,
				 d->algorithm);
			dkim_keyring_free(kr);
			return false;
		}
		s->key = dkim_privkey_load(d->key, s->alg, why, sizeof(why));
		if (s->key == NULL) {
			snprintf(err, errsz, "[dkim %s]: %s", d->name, why);
			dkim_keyring_free(kr);
			return false;
		}
		s->name = xstrdup(d->name);
		s->domain = lower_dup(d->domain);
		s->selector = xstrdup(d->selector);
		s->expire = d->expire;
		kr->n++;
	}
	return true;
}

/* See dkim_sign.h. */
void dkim_keyring_free(struct dkim_keyring *kr)
{
	for (size_t i = 0; i < kr->n; i++) {
		free(kr->v[i].name);
		free(kr->v[i].domain);
		free(kr->v[i].selector);
		EVP_PKEY_free(kr->v[i].key);
	}
	free(kr->v);
	kr->v = NULL;
	kr->n = 0;
}

/* See dkim_sign.h. */
const char *dkim_keyring_domain(const struct dkim_keyring *kr, const char *domain)
{
	for (const char *d = domain; d != NULL && *d != '\0';) {
		for (size_t i = 0; i < kr->n; i++)
			if (strcasecmp(kr->v[i].domain, d) == 0)
				return kr->v[i].domain;
		d = strchr(d, '.');
		if (d != NULL)
			d++;
	}
	return NULL;
}

/* See dkim_sign.h. */
void dkim_sign_init(struct dkim_sign *s)
{
	s->hdr = xmalloc(sizeof(*s->hdr));
	dkim_headers_init(s->hdr);
	s->ok = dkim_body_init(&s->body, DKIM_CANON_RELAXED, UINT64_MAX);
}

/* See dkim_sign.h. */
void dkim_sign_feed(struct dkim_sign *s, const char *p, size_t n)
{
	size_t used = dkim_headers_feed(s->hdr, p, n);

	if (used < n && s->ok)
		dkim_body_feed(&s->body, p + used, n - used);
}

/* See dkim_sign.h. */
void dkim_sign_free(struct dkim_sign *s)
{
	if (s->hdr != NULL) {
		dkim_headers_free(s->hdr);
		free(s->hdr);
		s->hdr = NULL;
	}
	dkim_body_free(&s->body);
}

/* Copy the From: value without comments and quoted strings into out. */
static bool from_clean(const char *v, size_t n, char *out, size_t outsz)
{
	size_t o = 0;
	int depth = 0;
	bool quoted = false;

	for (size_t i = 0; i < n; i++) {
		char c = v[i];

		if ((quoted || depth > 0) && c == '\\') {
			i++;
			continue;
		}
		if (quoted) {
			quoted = c != '"';
			continue;
		}
		if (c == '(') {
			depth++;
			continue;
		}
		if (depth > 0) {
			depth -= c == ')';
			continue;
		}
		if (c == '"') {
			quoted = true;
			continue;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return !quoted && depth == 0;
}

/* See dkim_sign.h. */
bool dkim_from_domain(const struct dkim_headers *h, char *out, size_t outsz)
{
	char text[FROM_TEXT_MAX], *addr, *at, *end;
	const struct dkim_field *f = NULL;
	size_t len;

	for (size_t i = 0; i < h->nfields; i++)
		if (dkim_field_is(h, i, "from", 4)) {
			if (f != NULL)
				return false; /* more than one From: */
			f = &h->fields[i];
		}
	if (f == NULL || h->overflow)
		return false;
	if (!from_clean(h->block.s + f->off + f->namelen + 1, f->len - f->namelen - 1, text,
			sizeof(text)))
		return false;
	if (strchr(text, ',') != NULL || strchr(text, ';') != NULL)
		return false; /* several authors, or a group */
	addr = strrchr(text, '<');
	if (addr != NULL) {
		addr++;
		end = strchr(addr, '>');
		if (end == NULL)
			return false;
		*end = '\0';
	} else {
		addr = text;
	}
	at = strrchr(addr, '@');
	if (at == NULL)
		return false;
	at++;
	at += strspn(at, " \t\r\n");
	len = strcspn(at, " \t\r\n");
	if (at[len + strspn(at + len, " \t\r\n")] != '\0' || len == 0 || len >= outsz ||
	    len > DKIM_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)at[i];

		if (!(c >= 0x80 || c == '-' || c == '.' || (c >= '0' && c <= '9') ||
		      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false; /* a domain literal, or not a domain */
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	out[len] = '\0';
	return true;
}

/* Append tok to a folded field: a line break first when it would pass
 * FOLD_COLUMN. */
static void fold_add(struct strbuf *b, size_t *col, const char *tok)
{
	size_t n = strlen(tok);

	if (*col + n + 1 > FOLD_COLUMN && *col > 1) {
		strbuf_add(b, "\r\n\t", 3);
		*col = 1;
	} else if (*col > 0 && b->len > 0 && b->s[b->len - 1] == ';') {
		strbuf_add(b, " ", 1);
		(*col)++;
	}
	strbuf_add(b, tok, n);
	*col += n;
}

/* The h= names for this message: the fields present, the over-signed
 * ones once more. */
static size_t sign_names(const struct dkim_headers *h, struct dkim_name *names)
{
	size_t n = 0;

	for (size_t i = 0; i < SIGN_FIELDS_LEN; i++) {
		size_t count = dkim_headers_count(h, sign_fields[i].name) + sign_fields[i].over;

		for (size_t k = 0; k < count && n < DKIM_HNAMES_MAX; k++) {
			names[n].s = sign_fields[i].name;
			names[n].n = strlen(sign_fields[i].name);
			n++;
		}
	}
	return n;
}

/* The DKIM-Signature field up to and including "b=". */
static void sig_field_start(struct strbuf *b, const struct dkim_signer *s, time_t now,
			    const struct dkim_name *names, size_t nnames, const char *bh)
{
	char tok[DKIM_DOMAIN_MAX + 64];
	size_t col = 0;

	fold_add(b, &col, "DKIM-Signature: v=1;");
	snprintf(tok, sizeof(tok), "a=%s;", dkim_alg_name(s->alg));
	fold_add(b, &col, tok);
	fold_add(b, &col, "c=relaxed/relaxed;");
	snprintf(tok, sizeof(tok), "d=%s;", s->domain);
	fold_add(b, &col, tok);
	snprintf(tok, sizeof(tok), "s=%s;", s->selector);
	fold_add(b, &col, tok);
	snprintf(tok, sizeof(tok), "t=%lld;", (long long)now);
	fold_add(b, &col, tok);
	if (s->expire > 0) {
		snprintf(tok, sizeof(tok), "x=%lld;", (long long)now + s->expire);
		fold_add(b, &col, tok);
	}
	for (size_t i = 0; i < nnames; i++) {
		snprintf(tok, sizeof(tok), "%s%.*s%s", i == 0 ? "h=" : "", (int)names[i].n,
			 names[i].s, i + 1 < nnames ? ":" : ";");
		fold_add(b, &col, tok);
	}
	strbuf_add(b, "\r\n\tbh=", 6);
	strbuf_adds(b, bh);
	strbuf_add(b, ";\r\n\tb=", 6);
}

/* Sign data with s's key into sig; false when OpenSSL fails. */
static bool sign_data(const struct dkim_signer *s, const struct strbuf *data, unsigned char *sig,
		      size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	if (ctx == NULL)
		return false;
	if (s->alg == DKIM_ALG_ED25519_SHA256) {
		unsigned char h[SHA256_DIGEST_LENGTH];

		SHA256((const unsigned char *)data->s, data->len, h);
		ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
		     EVP_DigestSign(ctx, sig, siglen, h, sizeof(h)) == 1;
	} else {
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->key) == 1 &&
		     EVP_DigestSignUpdate(ctx, data->s, data->len) == 1 &&
		     EVP_DigestSignFinal(ctx, sig, siglen) == 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Append one signature by s to out. */
static bool sign_one(const struct dkim_headers *h, const struct dkim_signer *s, time_t now,
		     const char *bh, struct strbuf *out)
{
	struct dkim_name names[DKIM_HNAMES_MAX];
	int sel[DKIM_HNAMES_MAX];
	size_t nnames = sign_names(h, names), siglen = SIG_MAX;
	unsigned char sig[SIG_MAX];
	char b64[BASE64_ENCODED_SIZE(SIG_MAX)];
	struct strbuf field, data;
	bool ok;

	strbuf_init(&field);
	strbuf_init(&data);
	sig_field_start(&field, s, now, names, nnames, bh);
	dkim_headers_select(h, names, nnames, sel);
	for (size_t i = 0; i < nnames; i++)
		if (sel[i] >= 0)
			dkim_canon_header(DKIM_CANON_RELAXED, dkim_field_text(h, (size_t)sel[i]),
					  h->fields[sel[i]].len, true, &data);
	dkim_canon_header(DKIM_CANON_RELAXED, field.s, field.len, false, &data);
	ok = sign_data(s, &data, sig, &siglen);
	if (ok) {
		size_t len;

		base64_encode(sig, siglen, b64);
		len = strlen(b64);
		for (size_t i = 0; i < len; i += B64_LINE) {
			if (i > 0)
				strbuf_add(&field, "\r\n\t", 3);
			strbuf_add(&field, b64 + i, len - i < B64_LINE ? len - i : B64_LINE);
		}
		strbuf_add(&field, "\r\n", 2);
		strbuf_add(out, field.s, field.len);
	}
	strbuf_free(&field);
	strbuf_free(&data);
	return ok;
}

/* Set why; returns rc. */
static int sign_result(int rc, char *why, size_t whysz, const char *reason)
{
	snprintf(why, whysz, "%s", reason);
	return rc;
}

/* See dkim_sign.h. */
int dkim_sign_finish(struct dkim_sign *s, const struct dkim_keyring *kr, time_t now,
		     struct strbuf *out, char *domain, char *why, size_t whysz)
{
	char from[DKIM_DOMAIN_MAX + 1], bh[BASE64_ENCODED_SIZE(DKIM_HASH_LEN)];
	unsigned char hash[DKIM_HASH_LEN];
	const char *d;
	int n = 0;

	dkim_headers_end(s->hdr);
	if (!s->ok)
		return sign_result(-1, why, whysz, "cannot hash the body");
	if (s->hdr->overflow)
		return sign_result(0, why, whysz, "header too large to sign");
	if (!dkim_from_domain(s->hdr, from, sizeof(from)))
		return sign_result(0, why, whysz, "no single From: address with a domain");
	d = dkim_keyring_domain(kr, from);
	if (d == NULL)
		return sign_result(0, why, whysz, "no key for the From: domain");
	if (domain != NULL)
		snprintf(domain, DKIM_DOMAIN_MAX + 1, "%s", d);
	dkim_body_final(&s->body, hash);
	s->ok = false;
	base64_encode(hash, sizeof(hash), bh);
	for (size_t i = 0; i < kr->n; i++) {
		if (strcmp(kr->v[i].domain, d) != 0)
			continue;
		if (!sign_one(s->hdr, &kr->v[i], now, bh, out))
			return sign_result(-1, why, whysz, "OpenSSL could not sign");
		n++;
	}
	snprintf(why, whysz, "signed");
	return n;
}
