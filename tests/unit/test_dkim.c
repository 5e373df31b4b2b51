/*
 * test_dkim.c - unit tests for src/dkim/: the tag-list parser, simple and
 * relaxed canonicalization (RFC 6376 §3.4 examples and the empty-body
 * hashes), the RFC 8463 Appendix A example (both of its signatures pass,
 * and fail once a signed field is altered), signing and verifying with
 * Ed25519 and RSA keys made here (over-signed fields, folded fields,
 * 8-bit bodies, empty bodies, dual signing, the parent domain's key), the
 * RFC 8301 refusals (rsa-sha1, RSA under 1024 bits), key records that are
 * revoked or garbage, and the From: domain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "dkim_canon.h"
#include "dkim_header.h"
#include "dkim_key.h"
#include "dkim_sign.h"
#include "dkim_tags.h"
#include "dkim_verify.h"

/* RFC 8463 Appendix A.3: the example message with both its signatures. */
static const char rfc8463_msg[] = "DKIM-Signature: v=1; a=ed25519-sha256; c=simple/simple; \r\n"
				  " d=football.example.com; i=@football.example.com; \r\n"
				  " q=dns/txt; s=brisbane; t=1518460054; h=from : to : \r\n"
				  " subject : date : message-id : from : subject : date; \r\n"
				  " bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; \r\n"
				  " b=9/dsDChY0YMTtD5Eyw3wx7x22BlSJP7M5ECbJ7GWrR45nXlTCGb8l0YB\r\n"
				  " o0wBLR++X5LqmsxXaOYLLJe46l10AQ==\r\n"
				  "DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; \r\n"
				  " d=football.example.com; i=@football.example.com; \r\n"
				  " q=dns/txt; s=test; t=1527915362; h=from : to : subject : \r\n"
				  " date : message-id : from : subject : date; \r\n"
				  " bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; \r\n"
				  " b=icKcLSEZYXJ95flvWE8FT6hl5iqd8MC/LEKYH0QjsqYy6MO/4pgVNCZH\r\n"
				  " l/RAXAuADxE/40Fg7uTlxwwD1hjN2Ple6J//cJfslBdDOq6zTVbne1dqtl\r\n"
				  " NOat7iamJ1AfRqyG+ja7a2AZsrpUuJ7VA6O+0zRYPqpwMEkEFIzI9i/Xk=\r\n"
				  "From: Joe SixPack <joe@football.example.com>\r\n"
				  "To: Suzie Q <suzie@shopping.example.net>\r\n"
				  "Subject: Is dinner ready?\r\n"
				  "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
				  "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
				  "\r\n"
				  "Hi.\r\n"
				  "\r\n"
				  "We lost the game.  Are you hungry yet?\r\n"
				  "\r\n"
				  "Joe.\r\n"
				  "\r\n";

/* RFC 8463 Appendix A.2: the key records. */
#define RFC8463_ED25519 "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RFC8463_RSA                                                                                \
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5" \
	"qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3r"  \
	"G4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"

/* Key records by name, for the verifier's lookups. */
struct keys {
	const char *name[4];
	const char *rec[4];
};

/* The lookup the tests give the verifier. */
static enum dkim_key_status lookup(void *arg, const char *name, char *text, size_t size,
				   size_t *len)
{
	const struct keys *k = arg;

	for (size_t i = 0; i < 4 && k->name[i] != NULL; i++)
		if (strcmp(k->name[i], name) == 0) {
			if (strcmp(k->rec[i], "TEMPFAIL") == 0)
				return DKIM_KEY_TEMPFAIL;
			*len = strlen(k->rec[i]);
			assert_true(*len < size);
			memcpy(text, k->rec[i], *len);
			return DKIM_KEY_FOUND;
		}
	return DKIM_KEY_MISSING;
}

static void test_tags(void **state)
{
	struct dkim_tags t;
	char why[128];
	const char *ok = " v=1; a = rsa-sha256 ;\r\n\tb=abc\r\n def ; x=; ";

	(void)state;
	assert_true(dkim_tags_parse(ok, strlen(ok), &t, why, sizeof(why)));
	assert_int_equal(t.n, 4);
	assert_true(dkim_tag_is(dkim_tags_get(&t, "a"), "rsa-sha256", false));
	assert_int_equal(dkim_tags_get(&t, "b")->vallen, strlen("abc\r\n def"));
	assert_int_equal(dkim_tags_get(&t, "x")->vallen, 0);
	assert_false(dkim_tags_parse("a=1; a=2", 8, &t, why, sizeof(why)));
	assert_string_equal(why, "a tag appears twice");
	assert_false(dkim_tags_parse("1a=1", 4, &t, why, sizeof(why)));
	assert_false(dkim_tags_parse("a", 1, &t, why, sizeof(why)));
	assert_false(dkim_tags_parse("a=\x01", 3, &t, why, sizeof(why)));
	assert_false(dkim_tags_parse("a=1;;b=2", 8, &t, why, sizeof(why)));
	assert_false(dkim_tags_parse("", 0, &t, why, sizeof(why)));
	{
		char many[DKIM_TAGS_MAX * 8 + 16] = "";
		for (int i = 0; i <= DKIM_TAGS_MAX; i++)
			sprintf(many + strlen(many), "t%d=1;", i);
		assert_false(dkim_tags_parse(many, strlen(many), &t, why, sizeof(why)));
		assert_string_equal(why, "too many tags");
	}
}

/* The canonical form of one field. */
static void check_header(enum dkim_canon c, const char *raw, const char *want)
{
	struct strbuf b;

	strbuf_init(&b);
	dkim_canon_header(c, raw, strlen(raw), true, &b);
	assert_string_equal(b.s, want);
	strbuf_free(&b);
}

static void test_canon_header(void **state)
{
	(void)state;
	/* RFC 6376 §3.4.5 */
	check_header(DKIM_CANON_RELAXED, "A: X", "a:X\r\n");
	check_header(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  ", "b:Y Z\r\n");
	check_header(DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  ", "B : Y\t\r\n\tZ  \r\n");
	check_header(DKIM_CANON_SIMPLE, "B: Y\n Z", "B: Y\r\n Z\r\n");
	check_header(DKIM_CANON_RELAXED, "Subject:", "subject:\r\n");
}

/* The body hash of body, fed in pieces of step octets, as base64. */
static void body_hash(enum dkim_canon c, const char *body, size_t step, char *out)
{
	struct dkim_body b;
	unsigned char h[DKIM_HASH_LEN];
	size_t len = strlen(body);

	assert_true(dkim_body_init(&b, c, UINT64_MAX));
	for (size_t i = 0; i < len; i += step)
		dkim_body_feed(&b, body + i, len - i < step ? len - i : step);
	dkim_body_final(&b, h);
	base64_encode(h, sizeof(h), out);
}

/* The body hash is the SHA-256 of want, however the body is split. */
static void check_body(enum dkim_canon c, const char *body, const char *want)
{
	unsigned char h[DKIM_HASH_LEN];
	char expect[64], got[64];

	EVP_Digest(want, strlen(want), h, NULL, EVP_sha256(), NULL);
	base64_encode(h, sizeof(h), expect);
	for (size_t step = 1; step <= strlen(body) + 1; step++) {
		body_hash(c, body, step, got);
		assert_string_equal(got, expect);
	}
}

static void test_canon_body(void **state)
{
	char got[64];

	(void)state;
	/* RFC 6376 §3.4.5 */
	check_body(DKIM_CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
	check_body(DKIM_CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n");
	check_body(DKIM_CANON_RELAXED, "", "");
	check_body(DKIM_CANON_SIMPLE, "", "\r\n");
	check_body(DKIM_CANON_RELAXED, "\r\n\r\n\r\n", "");
	check_body(DKIM_CANON_SIMPLE, "\r\n\r\n", "\r\n");
	check_body(DKIM_CANON_RELAXED, "a\r\n  \r\n\t\r\n", "a\r\n");
	check_body(DKIM_CANON_RELAXED, "no newline", "no newline\r\n");
	check_body(DKIM_CANON_SIMPLE, "a\rb\r\n\r\nc\r", "a\rb\r\n\r\nc\r\r\n");
	check_body(DKIM_CANON_RELAXED, "lf\nonly\n\n", "lf\r\nonly\r\n");
	check_body(DKIM_CANON_RELAXED, "\xc3\xa9t\xc3\xa9 \r\n", "\xc3\xa9t\xc3\xa9\r\n");
	/* the well-known hashes of an empty body */
	body_hash(DKIM_CANON_RELAXED, "", 1, got);
	assert_string_equal(got, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	body_hash(DKIM_CANON_SIMPLE, "", 1, got);
	assert_string_equal(got, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
}

/* Verify msg with keys; the result of each signature into r[]. */
static size_t verify(const char *msg, struct keys *k, enum dkim_result *r, size_t max)
{
	struct dkim_verify *v = dkim_verify_message(msg, strlen(msg), lookup, k, 1700000000);
	size_t n = dkim_verify_count(v);

	for (size_t i = 0; i < n && i < max; i++) {
		r[i] = dkim_verify_result(v, i)->result;
		if (r[i] != DKIM_RESULT_PASS)
			print_message("signature %zu: %s: %s\n", i, dkim_result_name(r[i]),
				      dkim_verify_result(v, i)->reason);
	}
	dkim_verify_free(v);
	return n;
}

static void test_rfc8463_example(void **state)
{
	struct keys k = {{"brisbane._domainkey.football.example.com",
			  "test._domainkey.football.example.com"},
			 {RFC8463_ED25519, RFC8463_RSA}};
	struct dkim_verify *v;
	enum dkim_result r[4];
	char *altered;

	(void)state;
	assert_int_equal(verify(rfc8463_msg, &k, r, 4), 2);
	assert_int_equal(r[0], DKIM_RESULT_PASS);
	assert_int_equal(r[1], DKIM_RESULT_PASS);
	v = dkim_verify_message(rfc8463_msg, strlen(rfc8463_msg), lookup, &k, 1700000000);
	assert_string_equal(dkim_verify_result(v, 0)->d, "football.example.com");
	assert_string_equal(dkim_verify_result(v, 0)->s, "brisbane");
	assert_string_equal(dkim_verify_result(v, 0)->a, "ed25519-sha256");
	assert_string_equal(dkim_verify_result(v, 0)->b, "9/dsDChY");
	assert_string_equal(dkim_verify_result(v, 1)->i, "@football.example.com");
	dkim_verify_free(v);
	/* a signed field altered: both fail */
	altered = strdup(rfc8463_msg);
	memcpy(strstr(altered, "Is dinner"), "Is supper", 9);
	assert_int_equal(verify(altered, &k, r, 4), 2);
	assert_int_equal(r[0], DKIM_RESULT_FAIL);
	assert_int_equal(r[1], DKIM_RESULT_FAIL);
	/* the body altered */
	strcpy(altered, rfc8463_msg);
	memcpy(strstr(altered, "hungry"), "HUNGRY", 6);
	assert_int_equal(verify(altered, &k, r, 4), 2);
	assert_int_equal(r[0], DKIM_RESULT_FAIL);
	free(altered);
	/* no key, a DNS failure */
	k.rec[0] = "TEMPFAIL";
	k.name[1] = "nothing";
	assert_int_equal(verify(rfc8463_msg, &k, r, 4), 2);
	assert_int_equal(r[0], DKIM_RESULT_TEMPERROR);
	assert_int_equal(r[1], DKIM_RESULT_PERMERROR);
}

/* A keyring of one key for domain. */
static void ring_add(struct dkim_keyring *kr, const char *domain, const char *sel,
		     enum dkim_alg alg, EVP_PKEY *key)
{
	struct dkim_signer *s;

	kr->v = realloc(kr->v, (kr->n + 1) * sizeof(*kr->v));
	s = &kr->v[kr->n++];
	memset(s, 0, sizeof(*s));
	s->name = strdup(sel);
	s->domain = strdup(domain);
	s->selector = strdup(sel);
	s->alg = alg;
	s->key = key;
}

/* Sign msg with kr (fed in pieces of step octets): the signed message. */
static char *sign(const struct dkim_keyring *kr, const char *msg, size_t step, int *nsigs)
{
	struct dkim_sign s;
	struct strbuf out;
	char why[128], d[DKIM_DOMAIN_MAX + 1], *res;
	size_t len = strlen(msg);

	dkim_sign_init(&s);
	for (size_t i = 0; i < len; i += step)
		dkim_sign_feed(&s, msg + i, len - i < step ? len - i : step);
	strbuf_init(&out);
	*nsigs = dkim_sign_finish(&s, kr, 1700000000, &out, d, why, sizeof(why));
	dkim_sign_free(&s);
	strbuf_adds(&out, msg);
	res = strdup(out.s);
	strbuf_free(&out);
	return res;
}

/* The key record of key as a string. */
static char *record(EVP_PKEY *key)
{
	struct strbuf b;
	char *r;

	strbuf_init(&b);
	assert_true(dkim_record_format(key, &b));
	r = strdup(b.s);
	strbuf_free(&b);
	return r;
}

static const char *const messages[] = {
	"From: Ann <ann@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nhello\r\n",
	/* folded fields, an 8-bit body */
	"From: \"Ann, A.\" (the boss)\r\n <ann@example.org>\r\nSubject: a\r\n  folded\r\n\t"
	"subject\r\nTo: b@example.net,\r\n c@example.net\r\n\r\n\xe6\x97\xa5\xe6\x9c\xac "
	"\xc3\xa9t\xc3\xa9  \r\n\r\n",
	/* a body of only empty lines */
	"From: ann@example.org\r\nSubject: empty lines\r\n\r\n\r\n\r\n\r\n",
	/* no body at all */
	"From: ann@example.org\r\nSubject: no body\r\n",
	"From: ann@example.org\r\nSubject: empty body\r\n\r\n",
};

static void test_sign_verify(void **state)
{
	char why[128];
	EVP_PKEY *ed = dkim_keygen(DKIM_KEY_ED25519, 0, why, sizeof(why));
	EVP_PKEY *rsa = dkim_keygen(DKIM_KEY_RSA, 1024, why, sizeof(why));
	struct dkim_keyring kr = {0};
	struct keys k = {{"ed._domainkey.example.org", "rsa._domainkey.example.org"}, {0}};
	enum dkim_result r[4];

	(void)state;
	assert_non_null(ed);
	assert_non_null(rsa);
	ring_add(&kr, "example.org", "ed", DKIM_ALG_ED25519_SHA256, ed);
	ring_add(&kr, "example.org", "rsa", DKIM_ALG_RSA_SHA256, rsa);
	k.rec[0] = record(ed);
	k.rec[1] = record(rsa);
	for (size_t m = 0; m < sizeof(messages) / sizeof(messages[0]); m++) {
		for (size_t step = 1; step < 64; step += 13) {
			int n;
			char *signed_msg = sign(&kr, messages[m], step, &n);

			assert_int_equal(n, 2);
			assert_int_equal(verify(signed_msg, &k, r, 4), 2);
			assert_int_equal(r[0], DKIM_RESULT_PASS);
			assert_int_equal(r[1], DKIM_RESULT_PASS);
			free(signed_msg);
		}
	}
	free((char *)k.rec[0]);
	free((char *)k.rec[1]);
	dkim_keyring_free(&kr);
}

static void test_oversigned(void **state)
{
	char why[128];
	struct dkim_keyring kr = {0};
	struct keys k = {{"ed._domainkey.example.org"}, {0}};
	enum dkim_result r[2];
	int n;
	char *m, *added;

	(void)state;
	ring_add(&kr, "example.org", "ed", DKIM_ALG_ED25519_SHA256,
		 dkim_keygen(DKIM_KEY_ED25519, 0, why, sizeof(why)));
	k.rec[0] = record(kr.v[0].key);
	m = sign(&kr, messages[0], 1000, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(m, "h=from:from:"));
	assert_null(strstr(m, "l="));
	assert_non_null(strstr(m, "t=1700000000;"));
	assert_null(strstr(m, "x="));
	/* a second Subject: or From: added below or above: fail */
	added = malloc(strlen(m) + 64);
	sprintf(added, "%sSubject: more\r\n", m);
	assert_int_equal(verify(added, &k, r, 2), 1); /* (no body left: header only) */
	assert_int_equal(r[0], DKIM_RESULT_FAIL);
	sprintf(added, "Reply-To: x@evil.example\r\n%s", m);
	verify(added, &k, r, 2);
	assert_int_equal(r[0], DKIM_RESULT_FAIL);
	/* a Received: field added on the way: still passes */
	sprintf(added, "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n%s", m);
	verify(added, &k, r, 2);
	assert_int_equal(r[0], DKIM_RESULT_PASS);
	free(added);
	free(m);
	free((char *)k.rec[0]);
	dkim_keyring_free(&kr);
}

static void test_which_key(void **state)
{
	char why[128];
	struct dkim_keyring kr = {0};
	int n;
	char *m;

	(void)state;
	ring_add(&kr, "example.org", "ed", DKIM_ALG_ED25519_SHA256,
		 dkim_keygen(DKIM_KEY_ED25519, 0, why, sizeof(why)));
	kr.v[0].expire = 3600;
	assert_string_equal(dkim_keyring_domain(&kr, "mail.sub.example.org"), "example.org");
	assert_string_equal(dkim_keyring_domain(&kr, "EXAMPLE.org"), "example.org");
	assert_null(dkim_keyring_domain(&kr, "example.net"));
	assert_null(dkim_keyring_domain(&kr, "badexample.org"));
	m = sign(&kr, "From: a@lists.example.org\r\n\r\nx\r\n", 100, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(m, "d=example.org;"));
	assert_non_null(strstr(m, "x=1700003600;"));
	free(m);
	m = sign(&kr, "From: a@example.net\r\n\r\nx\r\n", 100, &n);
	assert_int_equal(n, 0);
	free(m);
	m = sign(&kr, "From: a@example.org\r\nFrom: b@example.org\r\n\r\nx\r\n", 100, &n);
	assert_int_equal(n, 0);
	free(m);
	dkim_keyring_free(&kr);
}

static void test_from_domain(void **state)
{
	static const struct {
		const char *hdr, *want;
	} cases[] = {
		{"From: a@Example.ORG\r\n", "example.org"},
		{"From: \"x@y\" <a@b.example>\r\n", "b.example"},
		{"From: (c@d) a@e.example (f@g)\r\n", "e.example"},
		{"from : A <a@h.example\r\n >\r\n", "h.example"},
		{"From: a@b.example, c@d.example\r\n", NULL},
		{"From: undisclosed:;\r\n", NULL},
		{"From: a@[192.0.2.1]\r\n", NULL},
		{"From: nobody\r\n", NULL},
		{"To: a@b.example\r\n", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dkim_headers *h = malloc(sizeof(*h));
		char out[DKIM_DOMAIN_MAX + 1];
		bool ok;

		dkim_headers_init(h);
		dkim_headers_feed(h, cases[i].hdr, strlen(cases[i].hdr));
		dkim_headers_end(h);
		ok = dkim_from_domain(h, out, sizeof(out));
		if (cases[i].want == NULL) {
			assert_false(ok);
		} else {
			assert_true(ok);
			assert_string_equal(out, cases[i].want);
		}
		dkim_headers_free(h);
		free(h);
	}
}

static void test_rfc8301(void **state)
{
	char why[128], *m, *sha1;
	struct dkim_keyring kr = {0};
	struct keys k = {{"weak._domainkey.example.org"}, {0}};
	enum dkim_result r[2];
	int n;
	EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	struct dkim_verify *v;

	(void)state;
	assert_null(dkim_keygen(DKIM_KEY_RSA, 512, why, sizeof(why)));
	assert_non_null(strstr(why, "1024"));
	ring_add(&kr, "example.org", "weak", DKIM_ALG_RSA_SHA256, weak);
	k.rec[0] = record(weak);
	m = sign(&kr, messages[0], 1000, &n);
	assert_int_equal(n, 1);
	verify(m, &k, r, 2);
	assert_int_equal(r[0], DKIM_RESULT_POLICY);
	/* rsa-sha1 is refused without a key lookup */
	sha1 = strdup(m);
	memcpy(strstr(sha1, "a=rsa-sha256"), "a=rsa-sha1  ", 12);
	v = dkim_verify_new();
	dkim_verify_feed(v, sha1, strlen(sha1));
	assert_true(dkim_verify_header_done(v));
	assert_null(dkim_verify_key_name(v, 0));
	dkim_verify_finish(v, 1700000000);
	assert_int_equal(dkim_verify_result(v, 0)->result, DKIM_RESULT_POLICY);
	dkim_verify_free(v);
	free(sha1);
	free(m);
	free((char *)k.rec[0]);
	dkim_keyring_free(&kr);
}

static void test_bad_records(void **state)
{
	static const char *const bad[] = {
		"v=DKIM1; k=ed25519; p=",     /* revoked */
		"v=DKIM1; k=rsa; p=!!!!",     /* not base64 */
		"v=DKIM1; k=rsa; p=AAAA",     /* not a key */
		"k=dsa; p=AAAA",              /* unknown type */
		"p=AAAA; v=DKIM1",            /* v= not first */
		"v=DKIM1; h=sha1; p=AAAA",    /* no sha256 */
		"v=DKIM1; s=web; p=AAAA",     /* not for email */
		"v=DKIM1 k=rsa",              /* garbage */
		"\x01\x02\xff",               /* garbage */
		"v=DKIM1; k=ed25519; p=AAAA", /* 3 octets for Ed25519 */
	};
	struct dkim_pubkey key;
	char why[128];
	struct keys k = {{"brisbane._domainkey.football.example.com",
			  "test._domainkey.football.example.com"},
			 {NULL, RFC8463_RSA}};
	enum dkim_result r[4];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(dkim_pubkey_parse(bad[i], strlen(bad[i]), &key, why, sizeof(why)));
		assert_null(key.pkey);
		k.rec[0] = bad[i];
		verify(rfc8463_msg, &k, r, 4);
		assert_int_equal(r[0], DKIM_RESULT_PERMERROR);
		assert_int_equal(r[1], DKIM_RESULT_PASS);
	}
	/* the right key of the wrong type */
	k.rec[0] = RFC8463_RSA;
	verify(rfc8463_msg, &k, r, 4);
	assert_int_equal(r[0], DKIM_RESULT_PERMERROR);
}

static void test_bad_signatures(void **state)
{
	static const char *const bad[] = {
		"DKIM-Signature: v=2; a=rsa-sha256; b=AAAA; bh=AAAA; d=a.example; h=from; s=x\r\n",
		"DKIM-Signature: v=1; a=rsa-md5; b=AAAA; bh=AAAA; d=a.example; h=from; s=x\r\n",
		"DKIM-Signature: v=1; a=rsa-sha256; b=AAAA; d=a.example; h=from; s=x\r\n",
		"DKIM-Signature: v=1; a=rsa-sha256; b=AAAA; bh=AAAA; d=a.example; h=to; s=x\r\n",
		"DKIM-Signature: v=1; a=rsa-sha256; b=AAAA; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZ"
		"G3hSuFU=; d=a.example; h=from; s=x; i=@b.example\r\n",
		"DKIM-Signature: v=1; v=1\r\n",
		"DKIM-Signature: garbage\r\n",
		"DKIM-Signature:\r\n",
		"DKIM-Signature: v=1; a=rsa-sha256; b=AAAA; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZ"
		"G3hSuFU=; d=a..example; h=from; s=x\r\n",
		"DKIM-Signature: v=1; a=rsa-sha256; b=AAAA; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZ"
		"G3hSuFU=; d=a.example; h=from; s=x; t=100; x=50\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char msg[1024];
		struct dkim_verify *v = dkim_verify_new();

		snprintf(msg, sizeof(msg), "%sFrom: a@a.example\r\n\r\nbody\r\n", bad[i]);
		dkim_verify_feed(v, msg, strlen(msg));
		assert_int_equal(dkim_verify_count(v), 1);
		assert_null(dkim_verify_key_name(v, 0));
		dkim_verify_finish(v, 1700000000);
		assert_int_equal(dkim_verify_result(v, 0)->result, DKIM_RESULT_PERMERROR);
		dkim_verify_free(v);
	}
}

static void test_expired(void **state)
{
	char why[128];
	struct dkim_keyring kr = {0};
	struct keys k = {{"ed._domainkey.example.org"}, {0}};
	struct dkim_verify *v;
	int n;
	char *m;

	(void)state;
	ring_add(&kr, "example.org", "ed", DKIM_ALG_ED25519_SHA256,
		 dkim_keygen(DKIM_KEY_ED25519, 0, why, sizeof(why)));
	kr.v[0].expire = 60;
	k.rec[0] = record(kr.v[0].key);
	m = sign(&kr, messages[0], 1000, &n);
	v = dkim_verify_message(m, strlen(m), lookup, &k, 1700000000 + 61);
	assert_int_equal(dkim_verify_result(v, 0)->result, DKIM_RESULT_PERMERROR);
	assert_string_equal(dkim_verify_result(v, 0)->reason, "signature expired (x=)");
	dkim_verify_free(v);
	v = dkim_verify_message(m, strlen(m), lookup, &k, 1700000000 + 59);
	assert_int_equal(dkim_verify_result(v, 0)->result, DKIM_RESULT_PASS);
	dkim_verify_free(v);
	free(m);
	free((char *)k.rec[0]);
	dkim_keyring_free(&kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags),           cmocka_unit_test(test_canon_header),
		cmocka_unit_test(test_canon_body),     cmocka_unit_test(test_rfc8463_example),
		cmocka_unit_test(test_sign_verify),    cmocka_unit_test(test_oversigned),
		cmocka_unit_test(test_which_key),      cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_rfc8301),        cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_bad_signatures), cmocka_unit_test(test_expired),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
