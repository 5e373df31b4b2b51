/*
 * answer_fixture.h - DNS answers made in a test, for the SPF and DMARC
 * evaluators that take answers from their caller.
 */
#ifndef HATO_TEST_ANSWER_FIXTURE_H
#define HATO_TEST_ANSWER_FIXTURE_H

#include <string.h>

#include "dns_answer.h"
#include "util.h"

/* An answer with n records (data[i], len[i] octets, MX preference pref[i]
 * when pref is not NULL), laid out in one allocation as dns_answer.c
 * does, so that dns_answer_unref frees it. */
static inline struct dns_answer *answer_make(const char **data, const size_t *len,
					     const unsigned *pref, size_t n)
{
	size_t octets = 0;
	struct dns_answer *a;
	struct dns_rr *rr;
	char *d;

	for (size_t i = 0; i < n; i++)
		octets += len[i] + 1;
	a = xcalloc(1, sizeof(*a) + n * sizeof(*rr) + octets);
	rr = (struct dns_rr *)(a + 1);
	d = (char *)(rr + n);
	a->refs = 1;
	a->status = DNS_OK;
	a->n = n;
	a->rr = rr;
	a->ttl = 300;
	for (size_t i = 0; i < n; i++) {
		rr[i].pref = pref ? pref[i] : 0;
		rr[i].data = d;
		rr[i].len = len[i];
		memcpy(d, data[i], len[i]);
		d[len[i]] = '\0';
		d += len[i] + 1;
	}
	return a;
}

/* An answer of one TXT record. */
static inline struct dns_answer *answer_txt(const char *text)
{
	size_t len = strlen(text);

	return answer_make(&text, &len, NULL, 1);
}

#endif
