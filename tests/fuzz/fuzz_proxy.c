/*
 * fuzz_proxy.c - the PROXY protocol header parser (src/smtp/proxy.c),
 * which reads the first octets of a connection to a proxy_protocol
 * listener.  The first input octet picks the size limit; the rest is the
 * stream, offered whole and as every prefix a read could deliver.
 * Invariants: a header never extends past the input or the limit; a
 * prefix of an incomplete input is incomplete too; the result of the whole
 * input does not change when more octets follow a complete header; a
 * refusal always has a reason; addresses have the family they claim.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Check one result's invariants. */
static void check(enum proxy_result r, const struct proxy_header *h, const char *why, size_t len,
		  size_t max)
{
	if (r == PROXY_BAD && why == NULL)
		abort();
	if (r != PROXY_DONE)
		return;
	if (h->length == 0 || h->length > len || h->length > max ||
	    (h->version == 1 && h->length > PROXY_V1_MAX) || (h->version != 1 && h->version != 2))
		abort();
	if (!h->local && h->src.ss_family != h->dst.ss_family)
		abort();
	if (!h->local && h->src.ss_family != AF_INET && h->src.ss_family != AF_INET6)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header h, h2;
	const char *why;
	enum proxy_result r, prev = PROXY_INCOMPLETE;
	size_t max;

	if (size < 1)
		return 0;
	max = PROXY_HEADER_MIN + (size_t)data[0] * 8;
	data++, size--;
	for (size_t i = 0; i <= size; i++) {
		r = proxy_parse(data, i, max, &h, &why);
		check(r, &h, why, i, max);
		if (prev != PROXY_INCOMPLETE && r != prev)
			abort(); /* once decided, more octets change nothing */
		if (prev == PROXY_DONE) {
			(void)proxy_parse(data, i, max, &h2, &why);
			if (memcmp(&h, &h2, sizeof(h)) != 0)
				abort();
		}
		prev = r;
	}
	return 0;
}
