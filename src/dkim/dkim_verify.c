/*
 * dkim_verify.c - verification of every signature of a message.  See
 * dkim_verify.h.
 *
 * When the header is complete each DKIM-Signature field is parsed and
 * checked for everything that needs no key (a malformed one is decided
 * then, as a permerror); every signature still open gets its own body
 * hash (its canonicalization and l= may differ), fed as the body streams
 * past.  At the end each open signature is checked against its key
 * record: the body hash first, then the signature over the selected
 * header fields and the signature field itself with b= emptied.
 */
#include "dkim_verify.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "dkim_canon.h"
#include "dkim_header.h"
#include "dkim_key.h"
#include "dkim_tags.h"
#include "util.h"

#define SIG_MAX 1024 /* octets of a signature: RSA of DKIM_RSA_BITS_MAX bits */
#define KEYNAME_MAX (DKIM_SELECTOR_MAX + 12 + DKIM_DOMAIN_MAX)

/* One signature being checked. */
struct sig {
	size_t field; /* its field in the header */
	bool open;    /* not decided yet */
	enum dkim_alg alg;
	enum dkim_canon hcanon, bcanon;
	uint64_t l; /* UINT64_MAX: no l= */
	bool has_x;
	uint64_t x;
	size_t nnames;
	struct dkim_name names[DKIM_HNAMES_MAX];
	unsigned char bh[DKIM_HASH_LEN];
	unsigned char b[BASE64_DECODED_MAX(BASE64_ENCODED_SIZE(SIG_MAX))];
	size_t blen;
	size_t b_eq, b_end; /* b=: after its "=", and the end of its value, in the field */
	char keyname[KEYNAME_MAX + 1];
	struct dkim_body body;
	bool body_started;
	enum dkim_key_status keyst;
	bool key_given;
	char *keytext;
	size_t keylen;
	struct dkim_sig_result r;
};

struct dkim_verify {
	struct dkim_headers hdr;
	bool sigs_ready;
	size_t nsigs;
	struct sig sigs[DKIM_SIGS_MAX];
};

static const char *const result_names[] = {"pass",   "fail",      "neutral",
					   "policy", "permerror", "temperror"};

/* See dkim_verify.h. */
const char *dkim_result_name(enum dkim_result r)
{
	return result_names[r];
}

/* Decide a signature: result r with a reason.  false: it is decided. */
static bool decide(struct sig *s, enum dkim_result r, const char *reason)
{
	s->open = false;
	s->r.result = r;
	snprintf(s->r.reason, sizeof(s->r.reason), "%s", reason);
	return false;
}

/* Copy a tag's value, compacted, into out; "" when it does not fit. */
static void tag_copy(const struct dkim_tag *t, char *out, size_t outsz)
{
	if (t == NULL || !dkim_tag_compact(t, out, outsz))
		out[0] = '\0';
}

/* Is s a domain as d= may be: LDH labels joined by single dots? */
static bool domain_ok(const char *s, bool underscore)
{
	size_t label = 0, len = strlen(s);

	if (len == 0 || len > DKIM_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || (c == '-' && label > 0) ||
			   (c == '_' && underscore)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* Parse a decimal tag value (at most 18 digits: no overflow). */
static bool tag_number(const struct dkim_tag *t, uint64_t *out)
{
	char buf[24];

	if (!dkim_tag_compact(t, buf, sizeof(buf)) || buf[0] == '\0' || strlen(buf) > 18)
		return false;
	return parse_u64(buf, 0, UINT64_MAX, out);
}

/* c=: "header/body" or "header" (the body then simple). */
static bool parse_canon(const struct dkim_tag *t, struct sig *s)
{
	char buf[32], *slash;

	s->hcanon = s->bcanon = DKIM_CANON_SIMPLE;
	if (t == NULL)
		return true;
	if (!dkim_tag_compact(t, buf, sizeof(buf)))
		return false;
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (strcasecmp(buf, "relaxed") == 0)
		s->hcanon = DKIM_CANON_RELAXED;
	else if (strcasecmp(buf, "simple") != 0)
		return false;
	if (slash == NULL)
		return true;
	if (strcasecmp(slash, "relaxed") == 0)
		s->bcanon = DKIM_CANON_RELAXED;
	else if (strcasecmp(slash, "simple") != 0)
		return false;
	return true;
}

/* h=: names separated by ":" (FWS around them allowed); From must be one. */
static bool parse_names(const struct dkim_tag *t, struct sig *s)
{
	size_t i = 0;
	bool from = false;

	s->nnames = 0;
	while (i <= t->vallen) {
		size_t start, end;

		while (i < t->vallen && strchr(" \t\r\n", t->val[i]) != NULL)
			i++;
		start = i;
		while (i < t->vallen && t->val[i] != ':')
			i++;
		end = i;
		while (end > start && strchr(" \t\r\n", t->val[end - 1]) != NULL)
			end--;
		if (end == start || s->nnames == DKIM_HNAMES_MAX)
			return false;
		for (size_t k = start; k < end; k++)
			if (t->val[k] <= 0x20 || t->val[k] >= 0x7f)
				return false;
		s->names[s->nnames].s = t->val + start;
		s->names[s->nnames].n = end - start;
		from = from || (end - start == 4 && strncasecmp(t->val + start, "from", 4) == 0);
		s->nnames++;
		i++;
	}
	return from;
}

/* Does the identity i= (its domain part) lie in d= or below it? */
static bool identity_ok(const char *i, const char *d)
{
	const char *at = strrchr(i, '@');
	size_t il, dl = strlen(d);

	if (at == NULL)
		return false;
	at++;
	il = strlen(at);
	if (il == dl)
		return strcasecmp(at, d) == 0;
	return il > dl && at[il - dl - 1] == '.' && strcasecmp(at + il - dl, d) == 0;
}

/* The tags that need no key, checked; false when the signature is decided. */
static bool sig_tags(struct sig *s, const struct dkim_tags *tags, const char *value, size_t valoff)
{
	const struct dkim_tag *v = dkim_tags_get(tags, "v"), *a = dkim_tags_get(tags, "a");
	const struct dkim_tag *b = dkim_tags_get(tags, "b"), *bh = dkim_tags_get(tags, "bh");
	const struct dkim_tag *d = dkim_tags_get(tags, "d"), *h = dkim_tags_get(tags, "h");
	const struct dkim_tag *sel = dkim_tags_get(tags, "s"), *i = dkim_tags_get(tags, "i");
	const struct dkim_tag *l = dkim_tags_get(tags, "l"), *q = dkim_tags_get(tags, "q");
	const struct dkim_tag *t = dkim_tags_get(tags, "t"), *x = dkim_tags_get(tags, "x");
	char b64[BASE64_ENCODED_SIZE(SIG_MAX)], bh64[64];
	unsigned char bhraw[BASE64_DECODED_MAX(sizeof(bh64))];
	size_t len;
	uint64_t tv = 0;

	tag_copy(d, s->r.d, sizeof(s->r.d));
	tag_copy(sel, s->r.s, sizeof(s->r.s));
	tag_copy(a, s->r.a, sizeof(s->r.a));
	if (b != NULL && dkim_tag_compact(b, b64, sizeof(b64)))
		snprintf(s->r.b, sizeof(s->r.b), "%.*s", DKIM_B_PREFIX_LEN, b64);
	if (v == NULL || a == NULL || b == NULL || bh == NULL || d == NULL || h == NULL ||
	    sel == NULL)
		return decide(s, DKIM_RESULT_PERMERROR, "a required tag is missing");
	if (!dkim_tag_is(v, "1", false))
		return decide(s, DKIM_RESULT_PERMERROR, "unknown version v=");
	if (!dkim_alg_parse(a->val, a->vallen, &s->alg))
		return decide(s, DKIM_RESULT_PERMERROR, "unknown algorithm a=");
	if (s->alg == DKIM_ALG_RSA_SHA1)
		return decide(s, DKIM_RESULT_POLICY, "rsa-sha1 is not accepted (RFC 8301)");
	if (!domain_ok(s->r.d, false))
		return decide(s, DKIM_RESULT_PERMERROR, "d= is not a domain");
	if (!domain_ok(s->r.s, true) || strlen(s->r.s) > DKIM_SELECTOR_MAX)
		return decide(s, DKIM_RESULT_PERMERROR, "s= is not a selector");
	if (!dkim_tag_compact(b, b64, sizeof(b64)) ||
	    !base64_decode(b64, strlen(b64), s->b, &s->blen) || s->blen == 0)
		return decide(s, DKIM_RESULT_PERMERROR, "b= is not base64");
	if (!dkim_tag_compact(bh, bh64, sizeof(bh64)) ||
	    !base64_decode(bh64, strlen(bh64), bhraw, &len) || len != DKIM_HASH_LEN)
		return decide(s, DKIM_RESULT_PERMERROR, "bh= is not a SHA-256 hash");
	memcpy(s->bh, bhraw, DKIM_HASH_LEN);
	if (!parse_canon(dkim_tags_get(tags, "c"), s))
		return decide(s, DKIM_RESULT_PERMERROR, "unknown canonicalization c=");
	if (!parse_names(h, s))
		return decide(s, DKIM_RESULT_PERMERROR, "h= is malformed or lacks From");
	if (i != NULL) {
		tag_copy(i, s->r.i, sizeof(s->r.i));
		if (!identity_ok(s->r.i, s->r.d))
			return decide(s, DKIM_RESULT_PERMERROR, "i= is not within d=");
	} else {
		snprintf(s->r.i, sizeof(s->r.i), "@%s", s->r.d);
	}
	s->l = UINT64_MAX;
	if (l != NULL && !tag_number(l, &s->l))
		return decide(s, DKIM_RESULT_PERMERROR, "l= is not a number");
	if (q != NULL && !dkim_tag_is(q, "dns/txt", true))
		return decide(s, DKIM_RESULT_PERMERROR, "unknown query method q=");
	if (t != NULL && !tag_number(t, &tv))
		return decide(s, DKIM_RESULT_PERMERROR, "t= is not a number");
	s->has_x = x != NULL;
	if (x != NULL && (!tag_number(x, &s->x) || (t != NULL && s->x < tv)))
		return decide(s, DKIM_RESULT_PERMERROR, "x= is not a time after t=");
	if (!xsnprintf_ok(s->keyname, sizeof(s->keyname), "%s._domainkey.%s", s->r.s, s->r.d) ||
	    strlen(s->keyname) > DKIM_DOMAIN_MAX)
		return decide(s, DKIM_RESULT_PERMERROR, "key name too long");
	/* b= emptied: from after its "=" to the end of its value */
	s->b_end = valoff + b->valoff + b->vallen;
	s->b_eq = valoff + b->valoff;
	while (s->b_eq > valoff && value[s->b_eq - valoff - 1] != '=')
		s->b_eq--;
	return true;
}

/* Parse signature field f into s. */
static void sig_setup(struct dkim_verify *v, struct sig *s, size_t f)
{
	const struct dkim_field *fd = &v->hdr.fields[f];
	const char *text = dkim_field_text(&v->hdr, f);
	struct dkim_tags tags;
	char why[DKIM_REASON_MAX - 32], reason[DKIM_REASON_MAX];
	size_t valoff = fd->namelen + 1;

	memset(s, 0, sizeof(*s));
	s->field = f;
	s->open = true;
	while (valoff < fd->len && text[valoff - 1] != ':')
		valoff++;
	if (fd->len > DKIM_SIG_FIELD_MAX) {
		decide(s, DKIM_RESULT_PERMERROR, "signature field too long");
		return;
	}
	if (!dkim_tags_parse(text + valoff, fd->len - valoff, &tags, why, sizeof(why))) {
		snprintf(reason, sizeof(reason), "malformed signature: %s", why);
		decide(s, DKIM_RESULT_PERMERROR, reason);
		return;
	}
	if (!sig_tags(s, &tags, text + valoff, valoff))
		return;
	if (!dkim_body_init(&s->body, s->bcanon, s->l)) {
		decide(s, DKIM_RESULT_TEMPERROR, "out of memory");
		return;
	}
	s->body_started = true;
}

/* The header is complete: find and parse the signatures. */
static void sigs_setup(struct dkim_verify *v)
{
	v->sigs_ready = true;
	for (size_t f = 0; f < v->hdr.nfields && v->nsigs < DKIM_SIGS_MAX; f++)
		if (dkim_field_is(&v->hdr, f, "dkim-signature", 14))
			sig_setup(v, &v->sigs[v->nsigs++], f);
	if (v->hdr.overflow)
		for (size_t i = 0; i < v->nsigs; i++)
			if (v->sigs[i].open)
				decide(&v->sigs[i], DKIM_RESULT_PERMERROR,
				       "header too large to verify");
}

/* See dkim_verify.h. */
struct dkim_verify *dkim_verify_new(void)
{
	struct dkim_verify *v = xcalloc(1, sizeof(*v));

	dkim_headers_init(&v->hdr);
	return v;
}

/* See dkim_verify.h. */
void dkim_verify_free(struct dkim_verify *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nsigs; i++) {
		dkim_body_free(&v->sigs[i].body);
		free(v->sigs[i].keytext);
	}
	dkim_headers_free(&v->hdr);
	free(v);
}

/* See dkim_verify.h. */
void dkim_verify_feed(struct dkim_verify *v, const char *p, size_t n)
{
	size_t used = 0;

	if (!v->hdr.done) {
		used = dkim_headers_feed(&v->hdr, p, n);
		if (!v->hdr.done)
			return;
		sigs_setup(v);
	}
	for (size_t i = 0; i < v->nsigs && used < n; i++)
		if (v->sigs[i].open && v->sigs[i].body_started)
			dkim_body_feed(&v->sigs[i].body, p + used, n - used);
}

/* See dkim_verify.h. */
bool dkim_verify_header_done(const struct dkim_verify *v)
{
	return v->sigs_ready;
}

/* See dkim_verify.h. */
size_t dkim_verify_count(const struct dkim_verify *v)
{
	return v->nsigs;
}

/* See dkim_verify.h. */
const char *dkim_verify_key_name(const struct dkim_verify *v, size_t i)
{
	return i < v->nsigs && v->sigs[i].open ? v->sigs[i].keyname : NULL;
}

/* See dkim_verify.h. */
void dkim_verify_set_key(struct dkim_verify *v, size_t i, enum dkim_key_status st, const char *text,
			 size_t len)
{
	struct sig *s;

	if (i >= v->nsigs)
		return;
	s = &v->sigs[i];
	free(s->keytext);
	s->keytext = NULL;
	s->key_given = true;
	s->keyst = st;
	if (st == DKIM_KEY_FOUND) {
		if (len > DKIM_KEY_RECORD_MAX)
			len = DKIM_KEY_RECORD_MAX + 1; /* refused as too long, never copied whole */
		s->keytext = xmalloc(len + 1);
		memcpy(s->keytext, text, len);
		s->keytext[len] = '\0';
		s->keylen = len;
	}
}

/* Verify sig over data with key k. */
static bool sig_check(const struct sig *s, EVP_PKEY *k, const struct strbuf *data)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	if (ctx == NULL)
		return false;
	if (s->alg == DKIM_ALG_ED25519_SHA256) {
		unsigned char h[SHA256_DIGEST_LENGTH];

		SHA256((const unsigned char *)data->s, data->len, h);
		ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
		     EVP_DigestVerify(ctx, s->b, s->blen, h, sizeof(h)) == 1;
	} else {
		ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
		     EVP_DigestVerifyUpdate(ctx, data->s, data->len) == 1 &&
		     EVP_DigestVerifyFinal(ctx, s->b, s->blen) == 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* The data signature s signs: the selected fields, then its own field
 * with b= emptied. */
static void signed_data(const struct dkim_verify *v, const struct sig *s, struct strbuf *data)
{
	const struct dkim_headers *h = &v->hdr;
	const char *text = dkim_field_text(h, s->field);
	size_t flen = h->fields[s->field].len;
	int sel[DKIM_HNAMES_MAX];
	struct strbuf self;

	dkim_headers_select(h, s->names, s->nnames, sel);
	for (size_t i = 0; i < s->nnames; i++)
		if (sel[i] >= 0)
			dkim_canon_header(s->hcanon, dkim_field_text(h, (size_t)sel[i]),
					  h->fields[sel[i]].len, true, data);
	strbuf_init(&self);
	strbuf_add(&self, text, s->b_eq);
	strbuf_add(&self, text + s->b_end, flen - s->b_end);
	dkim_canon_header(s->hcanon, self.s, self.len, false, data);
	strbuf_free(&self);
}

/* Decide an open signature with its key (always false: decided). */
static bool sig_finish(struct dkim_verify *v, struct sig *s, time_t now)
{
	struct dkim_pubkey key;
	unsigned char bh[DKIM_HASH_LEN];
	char why[DKIM_REASON_MAX];
	struct strbuf data;
	bool ok;

	dkim_body_final(&s->body, bh);
	if (s->has_x && (uint64_t)now > s->x)
		return decide(s, DKIM_RESULT_PERMERROR, "signature expired (x=)");
	if (!s->key_given || s->keyst == DKIM_KEY_TEMPFAIL)
		return decide(s, DKIM_RESULT_TEMPERROR, "key lookup failed");
	if (s->keyst == DKIM_KEY_MISSING)
		return decide(s, DKIM_RESULT_PERMERROR, "no key record");
	if (!dkim_pubkey_parse(s->keytext, s->keylen, &key, why, sizeof(why)))
		return decide(s, DKIM_RESULT_PERMERROR, why);
	s->r.testing = key.testing;
	if (key.type != dkim_alg_keytype(s->alg)) {
		dkim_pubkey_free(&key);
		return decide(s, DKIM_RESULT_PERMERROR, "key type does not match a=");
	}
	if (key.type == DKIM_KEY_RSA && key.bits < DKIM_RSA_BITS_MIN) {
		snprintf(why, sizeof(why), "RSA key of %u bits, under %d (RFC 8301)", key.bits,
			 DKIM_RSA_BITS_MIN);
		dkim_pubkey_free(&key);
		return decide(s, DKIM_RESULT_POLICY, why);
	}
	if (key.type == DKIM_KEY_RSA && key.bits > DKIM_RSA_BITS_MAX) {
		dkim_pubkey_free(&key);
		return decide(s, DKIM_RESULT_PERMERROR, "RSA key too large");
	}
	if (key.strict && strcasecmp(strrchr(s->r.i, '@') + 1, s->r.d) != 0) {
		dkim_pubkey_free(&key);
		return decide(s, DKIM_RESULT_PERMERROR, "key is t=s but i= is a subdomain");
	}
	if (memcmp(bh, s->bh, DKIM_HASH_LEN) != 0) {
		dkim_pubkey_free(&key);
		return decide(s, DKIM_RESULT_FAIL, "body hash did not verify");
	}
	strbuf_init(&data);
	signed_data(v, s, &data);
	ok = sig_check(s, key.pkey, &data);
	strbuf_free(&data);
	dkim_pubkey_free(&key);
	if (!ok)
		return decide(s, DKIM_RESULT_FAIL, "signature did not verify");
	return decide(s, DKIM_RESULT_PASS, "good signature");
}

/* See dkim_verify.h. */
void dkim_verify_finish(struct dkim_verify *v, time_t now)
{
	if (!v->hdr.done) {
		dkim_headers_end(&v->hdr);
		sigs_setup(v);
	}
	for (size_t i = 0; i < v->nsigs; i++) {
		struct sig *s = &v->sigs[i];

		if (s->open)
			sig_finish(v, s, now);
		dkim_body_free(&s->body);
	}
}

/* See dkim_verify.h. */
const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i)
{
	return i < v->nsigs ? &v->sigs[i].r : NULL;
}

/* See dkim_verify.h. */
struct dkim_verify *dkim_verify_message(const char *msg, size_t len, dkim_key_lookup_fn fn,
					void *arg, time_t now)
{
	struct dkim_verify *v = dkim_verify_new();
	char *text = xmalloc(DKIM_KEY_RECORD_MAX + 1);

	dkim_verify_feed(v, msg, len);
	if (!v->hdr.done) {
		dkim_headers_end(&v->hdr);
		sigs_setup(v);
	}
	for (size_t i = 0; i < v->nsigs; i++) {
		const char *name = dkim_verify_key_name(v, i);
		size_t tlen = 0;
		enum dkim_key_status st;

		if (name == NULL)
			continue;
		st = fn(arg, name, text, DKIM_KEY_RECORD_MAX + 1, &tlen);
		dkim_verify_set_key(v, i, st, text, tlen);
	}
	free(text);
	dkim_verify_finish(v, now);
	return v;
}
