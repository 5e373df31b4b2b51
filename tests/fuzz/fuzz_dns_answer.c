/*
 * fuzz_dns_answer.c - the DNS message reader (src/lookup/dns_answer.c),
 * which reads what a DNS server sends.  The first input octet picks the
 * type asked; the rest is the message.  Invariants: a DNS_OK answer has
 * records, each NUL-terminated after its length; A and AAAA records are 4
 * and 16 octets; others have none.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "dns_answer.h"

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum dns_type types[] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR};
	struct dns_answer *a;
	enum dns_type t;

	if (size < 1 || size > 65536)
		return 0;
	t = types[data[0] % 5];
	a = dns_answer_parse(data + 1, size - 1, t);
	assert(a->refs == 1);
	if (a->status == DNS_OK) {
		assert(a->n > 0 && a->n <= DNS_ANSWER_RR_MAX);
		for (size_t i = 0; i < a->n; i++) {
			assert(a->rr[i].data[a->rr[i].len] == '\0');
			if (t == DNS_T_A)
				assert(a->rr[i].len == 4);
			if (t == DNS_T_AAAA)
				assert(a->rr[i].len == 16);
			if (t == DNS_T_MX || t == DNS_T_PTR)
				assert(strlen(a->rr[i].data) == a->rr[i].len);
		}
	} else {
		assert(a->n == 0);
	}
	assert(memchr(a->why, '\0', sizeof(a->why)) != NULL);
	dns_answer_unref(a);
	return 0;
}
