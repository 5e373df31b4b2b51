/*
 * fuzz_dmarc.c - DMARC's parsers of untrusted text (src/dmarc/dmarc.c): the
 * input as a DMARC record (its tag list) and as a From: header value.
 * Invariants: a record parsed has policies in range and pct 0-100; an
 * author domain found is non-empty, lower case, and fits its buffer.
 */
#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "dmarc.h"

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record r;
	char out[64];
	int rc;

	if (size > 8192)
		return 0;
	if (dmarc_record_parse((const char *)data, size, &r) == 1) {
		assert(r.p <= DMARC_POLICY_REJECT && r.sp <= DMARC_POLICY_REJECT);
		assert(r.pct <= 100);
	}
	rc = dmarc_from_domain((const char *)data, size, out, sizeof(out));
	assert(rc >= -1 && rc <= 1);
	if (rc == 1) {
		assert(out[0] != '\0' && strlen(out) < sizeof(out));
		for (const char *p = out; *p; p++)
			assert(!isupper((unsigned char)*p));
	}
	return 0;
}
