/*
 * dkim_verify.c - the CPU cost of verifying one DKIM signature with hato's
 * verifier (src/dkim/), per algorithm: a message of BENCH_SIZE octets is
 * signed once with a fresh Ed25519 and RSA-2048 key, then verified N times
 * from its octets (parse, both canonicalizations' work, body hash, key
 * record parse, the signature check), timed with the process CPU clock.
 * Built and run by bench/dkim.sh; prints "ALG us_per_message".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim_key.h"
#include "dkim_sign.h"
#include "dkim_verify.h"

static const char *record; /* the key record the lookup gives */

/* The key lookup: always the record of the key that signed. */
static enum dkim_key_status lookup(void *arg, const char *name, char *text, size_t size,
				   size_t *len)
{
	(void)arg;
	(void)name;
	*len = strlen(record);
	if (*len >= size)
		return DKIM_KEY_TEMPFAIL;
	memcpy(text, record, *len);
	return DKIM_KEY_FOUND;
}

/* CPU seconds of this process so far. */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sign msg with a new key of type, verify it n times; microseconds each. */
static double run(enum dkim_keytype type, enum dkim_alg alg, const char *msg, int n)
{
	char why[256], d[DKIM_DOMAIN_MAX + 1];
	struct dkim_signer signer = {"bench", "example.org", "bench", alg, 0, NULL};
	struct dkim_keyring kr = {&signer, 1};
	struct strbuf out, rec;
	struct dkim_sign s;
	double t0;

	signer.key = dkim_keygen(type, 2048, why, sizeof(why));
	strbuf_init(&out);
	strbuf_init(&rec);
	dkim_record_format(signer.key, &rec);
	record = rec.s;
	dkim_sign_init(&s);
	dkim_sign_feed(&s, msg, strlen(msg));
	if (dkim_sign_finish(&s, &kr, time(NULL), &out, d, why, sizeof(why)) != 1) {
		fprintf(stderr, "cannot sign: %s\n", why);
		exit(1);
	}
	dkim_sign_free(&s);
	strbuf_adds(&out, msg);
	t0 = cpu_now();
	for (int i = 0; i < n; i++) {
		struct dkim_verify *v =
			dkim_verify_message(out.s, out.len, lookup, NULL, time(NULL));

		if (dkim_verify_result(v, 0)->result != DKIM_RESULT_PASS) {
			fprintf(stderr, "did not pass: %s\n", dkim_verify_result(v, 0)->reason);
			exit(1);
		}
		dkim_verify_free(v);
	}
	t0 = (cpu_now() - t0) / n * 1e6;
	EVP_PKEY_free(signer.key);
	strbuf_free(&out);
	strbuf_free(&rec);
	return t0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	size_t size = argc > 2 ? (size_t)atol(argv[2]) : 2048;
	struct strbuf msg;

	strbuf_init(&msg);
	strbuf_adds(&msg, "From: Ann <ann@example.org>\r\nTo: bob@example.net\r\n"
			  "Subject: a benchmark\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
			  "Message-ID: <bench@example.org>\r\n\r\n");
	while (msg.len < size)
		strbuf_adds(&msg,
			    "The quick brown fox jumps over the lazy dog, again and again.\r\n");
	printf("ed25519-sha256 %.1f\n", run(DKIM_KEY_ED25519, DKIM_ALG_ED25519_SHA256, msg.s, n));
	printf("rsa-sha256 %.1f\n", run(DKIM_KEY_RSA, DKIM_ALG_RSA_SHA256, msg.s, n));
	strbuf_free(&msg);
	return 0;
}
