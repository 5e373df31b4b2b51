/*
 * fuzz_spf.c - the SPF evaluator (src/spf/) on any record.  The input is
 * the TXT record of every name asked (so include: and redirect= come back
 * to it: loops must end in the limits); names starting "a" have an address
 * (192.0.2.1 / 2001:db8::1), every other A/AAAA is NXDOMAIN, MX gives two
 * hosts and PTR one name.  The first octet picks the client's family.
 * Invariants: the evaluation ends within a bounded number of runs, asks
 * each lookup once, and gives a known result; a fail's explanation is
 * NUL-terminated; spf_expand never writes past its buffer.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

#define RUNS_MAX 1000

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An answer of one record, laid out as dns_answer.c does. */
static struct dns_answer *one(const char *d, size_t len, unsigned pref)
{
	struct dns_answer *a = calloc(1, sizeof(*a) + sizeof(struct dns_rr) + len + 1);
	struct dns_rr *rr = (struct dns_rr *)(a + 1);
	char *p = (char *)(rr + 1);

	memcpy(p, d, len);
	p[len] = '\0';
	rr->data = p;
	rr->len = len;
	rr->pref = pref;
	a->refs = 1;
	a->n = 1;
	a->rr = rr;
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char a4[4] = {192, 0, 2, 1};
	static const unsigned char a6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	struct spf s;
	size_t asked = 0;
	int runs = 0;
	char out[64];

	if (size < 1 || size > 4096)
		return 0;
	spf_init(&s, data[0] & 1 ? "2001:db8::1" : "192.0.2.1", "user@f.example", "h.example",
		 "mx.example");
	while (!spf_run(&s)) {
		assert(++runs < RUNS_MAX);
		assert(s.nneed > 0);
		for (size_t i = 0; i < s.nneed; i++) {
			const struct spf_need *n = &s.need[i];
			struct dns_answer *a;

			switch (n->type) {
			case DNS_T_TXT:
				a = one((const char *)data + 1, size - 1, 0);
				break;
			case DNS_T_A:
			case DNS_T_AAAA:
				a = n->name[0] == 'a' ? one(n->type == DNS_T_A ? (const char *)a4
									       : (const char *)a6,
							    n->type == DNS_T_A ? 4 : 16, 0)
						      : dns_answer_status(DNS_NXDOMAIN, NULL);
				break;
			case DNS_T_MX:
				a = one("a.mx.example", 12, 10);
				break;
			default:
				a = one("a.p.example", 11, 0);
				break;
			}
			spf_answer(&s, n->type, n->name, a);
			dns_answer_unref(a);
			asked++;
		}
	}
	assert(asked <= SPF_LOOKUPS_MAX);
	assert(s.result <= SPF_RESULT_PERMERROR);
	assert(strlen(s.explanation) < sizeof(s.explanation));
	spf_expand(&s, (const char *)data + 1, size - 1, "f.example", data[0] & 2, out,
		   sizeof(out));
	assert(strlen(out) < sizeof(out));
	spf_free(&s);
	return 0;
}
