/*
 * fuzz_dkim_verify.c - libFuzzer target for the DKIM verifier as a whole
 * (src/dkim/): the input is a key record, a NUL, then a message; every
 * signature of the message gets that record (the first octet also picks
 * how: found, missing or a DNS failure), the message is fed in two pieces
 * split where the second octet says, and every result must be one of the
 * six with its texts NUL-terminated.  Nothing may crash, leak or read out
 * of bounds, whatever the signatures, the header or the key record hold.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	const char *rec = (const char *)data, *msg;
	size_t reclen, msglen, split;
	struct dkim_verify *v;
	enum dkim_key_status st;
	char *copy;

	if (nul == NULL || size < 2)
		return 0;
	reclen = (size_t)(nul - data);
	msg = (const char *)nul + 1;
	msglen = size - reclen - 1;
	st = (enum dkim_key_status)(data[0] % 3);
	split = msglen ? data[1] % (msglen + 1) : 0;
	copy = malloc(msglen ? msglen : 1); /* exactly its size: ASan sees overreads */
	memcpy(copy, msg, msglen);
	v = dkim_verify_new();
	dkim_verify_feed(v, copy, split);
	dkim_verify_feed(v, copy + split, msglen - split);
	for (size_t i = 0; i < dkim_verify_count(v); i++)
		if (dkim_verify_key_name(v, i) != NULL)
			dkim_verify_set_key(v, i, st, rec, reclen);
	dkim_verify_finish(v, 1700000000);
	CHECK(dkim_verify_count(v) <= DKIM_SIGS_MAX);
	for (size_t i = 0; i < dkim_verify_count(v); i++) {
		const struct dkim_sig_result *r = dkim_verify_result(v, i);

		CHECK(r->result <= DKIM_RESULT_TEMPERROR);
		CHECK(strlen(r->reason) < sizeof(r->reason) && strlen(r->d) < sizeof(r->d));
		CHECK(strlen(r->b) <= DKIM_B_PREFIX_LEN);
	}
	dkim_verify_free(v);
	free(copy);
	return 0;
}
