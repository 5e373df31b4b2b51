/*
 * checks_cost.c - the CPU cost per message of hato's checks of received
 * mail, without the network: SPF (RFC 7208) evaluated over answers from a
 * table (a typical record: include, ip4, mx, a, -all, three names deep),
 * DMARC with the Public Suffix List, and the Authentication-Results: value
 * written, BENCH_N times.  Prints the CPU time per message.  bench/checks.sh
 * runs it next to pyspf, the reference SPF evaluator, on the same zone.
 *
 *   build/bench/checks_cost [N] [PSL]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_results.h"
#include "dmarc.h"
#include "psl.h"
#include "spf.h"

#define PSL_DEFAULT "/usr/share/publicsuffix/public_suffix_list.dat"

/* The zone: type, name, data (MX: "PREF host"). */
static const char *const zone[][3] = {
	{"TXT", "example.com", "v=spf1 include:_spf.example.net ip4:198.51.100.0/24 mx a -all"},
	{"TXT", "_spf.example.net", "v=spf1 ip4:203.0.113.0/24 ip6:2001:db8::/32 ~all"},
	{"MX", "example.com", "mx1.example.com"},
	{"A", "mx1.example.com", "\xc6\x33\x64\x0a"},
	{"A", "example.com", "\xc6\x33\x64\x0b"},
	{"TXT", "_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com"},
};

/* An answer of one record from the zone, or NXDOMAIN. */
static struct dns_answer *lookup(enum dns_type type, const char *name)
{
	for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
		if (strcmp(zone[i][0], dns_type_name(type)) != 0 || strcmp(zone[i][1], name) != 0)
			continue;
		const char *d = zone[i][2];
		size_t len = type == DNS_T_A ? 4 : strlen(d);
		struct dns_answer *a = calloc(1, sizeof(*a) + sizeof(struct dns_rr) + len + 1);
		struct dns_rr *rr = (struct dns_rr *)(a + 1);
		char *p = (char *)(rr + 1);

		memcpy(p, d, len);
		rr->data = p;
		rr->len = len;
		rr->pref = 10;
		a->refs = 1;
		a->n = 1;
		a->rr = rr;
		return a;
	}
	return dns_answer_status(DNS_NXDOMAIN, NULL);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	const char *path = argc > 2 ? argv[2] : PSL_DEFAULT;
	static const char from[] = " Alice <alice@example.com>";
	struct timespec t0, t1;
	char err[256];
	struct psl *psl = psl_load(path, err, sizeof(err));
	size_t header = 0;

	if (psl == NULL) {
		fprintf(stderr, "checks_cost: %s\n", err);
		return 1;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	for (long i = 0; i < n; i++) {
		struct spf s;
		struct dmarc d;
		struct strbuf b;
		struct auth_results ar = {.authserv_id = "mx.example.org", .spf_on = true};

		spf_init(&s, "198.51.100.10", "alice@example.com", "mail.example.com",
			 "mx.example.org");
		while (!spf_run(&s))
			for (size_t k = 0; k < s.nneed; k++) {
				struct dns_answer *a = lookup(s.need[k].type, s.need[k].name);

				spf_answer(&s, s.need[k].type, s.need[k].name, a);
				dns_answer_unref(a);
			}
		dmarc_init(&d, psl, from, sizeof(from) - 1, s.result == SPF_RESULT_PASS, s.domain);
		while (!dmarc_run(&d)) {
			struct dns_answer *a = lookup(DNS_T_TXT, d.need);

			dmarc_answer(&d, a);
			dns_answer_unref(a);
		}
		ar.spf = s.result;
		ar.spf_identity = s.sender;
		ar.dmarc_on = true;
		ar.dmarc = &d;
		strbuf_init(&b);
		auth_results_format(&ar, &b);
		header += b.len;
		if (i == 0)
			printf("checks_cost: spf=%s dmarc=%s header=\"%s\"\n",
			       spf_result_name(s.result), dmarc_result_name(d.result), b.s);
		strbuf_free(&b);
		dmarc_free(&d);
		spf_free(&s);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	printf("checks_cost: %ld messages, %.2f us CPU per message (SPF + DMARC + header)\n", n,
	       ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / (double)n);
	psl_free(psl);
	return header > 0 ? 0 : 1;
}
