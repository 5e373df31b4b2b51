/*
 * test_dmarc.c - DMARC (src/dmarc/): the record's tag list, the author
 * domain of a From: header, the Public Suffix List's organisational
 * domains (Debian's list), and the evaluation: aligned DKIM pass, SPF-only
 * pass, both failing under p=reject, p=quarantine, a subdomain under sp=,
 * strict alignment, pct=0, no record, a temporary DNS failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "answer_fixture.h"
#include "dmarc.h"
#include "psl.h"

#define PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

static struct psl *psl;

static int setup(void **state)
{
	char err[256];

	(void)state;
	psl = psl_load(PSL_FILE, err, sizeof(err));
	if (psl == NULL)
		fprintf(stderr, "%s (install Debian's publicsuffix)\n", err);
	return psl ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	psl_free(psl);
	return 0;
}

static void org_is(const char *name, const char *want)
{
	char out[256];

	assert_true(psl_org_domain(psl, name, out, sizeof(out)));
	assert_string_equal(out, want);
}

static void test_psl(void **state)
{
	char out[256];

	(void)state;
	assert_true(psl_count(psl) > 5000);
	org_is("example.com", "example.com");
	org_is("Mail.Example.COM.", "example.com");
	org_is("a.b.example.co.uk", "example.co.uk");
	org_is("co.uk", "co.uk");                 /* a public suffix is its own */
	org_is("x.y.example.ck", "y.example.ck"); /* *.ck */
	org_is("a.www.ck", "www.ck");             /* !www.ck */
	org_is("foo.city.kawasaki.jp", "city.kawasaki.jp");
	org_is("a.b.c.example.invalidtld", "example.invalidtld"); /* the implicit "*" */
	org_is("x.blogspot.com", "x.blogspot.com");               /* private section */
	org_is("a.b.xn--p1ai", "b.xn--p1ai");                     /* рф in A-labels */
	assert_false(psl_org_domain(psl, "a..example.com", out, sizeof(out)));
	assert_false(psl_org_domain(psl, "", out, sizeof(out)));
}

static void test_record_parse(void **state)
{
	struct dmarc_record r;
	const char *rec;

	(void)state;
	rec = "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=30; rua=mailto:d@x.example";
	assert_int_equal(dmarc_record_parse(rec, strlen(rec), &r), 1);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_int_equal(r.sp, DMARC_POLICY_QUARANTINE);
	assert_true(r.strict_dkim);
	assert_false(r.strict_spf);
	assert_int_equal(r.pct, 30);
	rec = " v = DMARC1 ;p=Quarantine;";
	assert_int_equal(dmarc_record_parse(rec, strlen(rec), &r), 1);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.sp, DMARC_POLICY_QUARANTINE); /* sp= defaults to p= */
	assert_int_equal(r.pct, 100);
	rec = "v=DMARC1; p=none; pct=500; adkim=x; foo=bar; sp=bogus";
	assert_int_equal(dmarc_record_parse(rec, strlen(rec), &r), 1);
	assert_int_equal(r.pct, 100); /* bad values of optional tags are ignored */
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	rec = "p=reject; v=DMARC1";
	assert_int_equal(dmarc_record_parse(rec, strlen(rec), &r), 0); /* v= must come first */
	rec = "v=spf1 -all";
	assert_int_equal(dmarc_record_parse(rec, strlen(rec), &r), 0);
	rec = "v=DMARC1; p=bogus";
	assert_int_equal(dmarc_record_parse(rec, strlen(rec), &r), -1);
	rec = "v=DMARC1; rua=mailto:a@b.example"; /* no p=, but reports: p=none */
	assert_int_equal(dmarc_record_parse(rec, strlen(rec), &r), 1);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
}

static void from_is(const char *value, int rc, const char *want)
{
	char out[256];

	assert_int_equal(dmarc_from_domain(value, strlen(value), out, sizeof(out)), rc);
	if (rc == 1)
		assert_string_equal(out, want);
}

static void test_from_domain(void **state)
{
	(void)state;
	from_is(" user@Example.COM", 1, "example.com");
	from_is("\"Bank, Inc. <a@bank.example>\" <alerts@evil.example>", 1, "evil.example");
	from_is("Someone (comment, a@b.example) <x@y.example>", 1, "y.example");
	from_is("a@one.example, b@two.example", -1, NULL);
	from_is("undisclosed-recipients:;", 0, NULL);
	from_is("", 0, NULL);
	from_is("no address here", 0, NULL);
}

/* Run d, answering each lookup with the TXT record rec[name], NXDOMAIN
 * for names not given, or a temporary failure for "TEMPFAIL". */
static void run(struct dmarc *d, const char *const *recs)
{
	while (!dmarc_run(d)) {
		assert_true(strchr(d->need, '.') != NULL &&
			    strcmp(d->need, "_dmarc.localhost") != 0);
		struct dns_answer *a = dns_answer_status(DNS_NXDOMAIN, NULL);

		for (const char *const *r = recs; *r; r += 2)
			if (strcmp(r[0], d->need) == 0) {
				dns_answer_unref(a);
				a = strcmp(r[1], "TEMPFAIL") == 0
					    ? dns_answer_status(DNS_TEMPFAIL, "timeout")
					    : answer_txt(r[1]);
			}
		dmarc_answer(d, a);
		dns_answer_unref(a);
	}
}

static const char *const zone[] = {"_dmarc.reject.example",
				   "v=DMARC1; p=reject",
				   "_dmarc.quar.example",
				   "v=DMARC1; p=quarantine",
				   "_dmarc.sub.example",
				   "v=DMARC1; p=none; sp=reject",
				   "_dmarc.strict.example",
				   "v=DMARC1; p=reject; adkim=s; aspf=s",
				   "_dmarc.sample.example",
				   "v=DMARC1; p=reject; pct=0",
				   "_dmarc.temp.example",
				   "TEMPFAIL",
				   NULL};

static void check(const char *from, bool spf_pass, const char *spf_domain, const char *dkim,
		  enum dmarc_result result, enum dmarc_policy disposition)
{
	struct dmarc d;

	dmarc_init(&d, psl, from, strlen(from), spf_pass, spf_domain);
	if (dkim)
		dmarc_add_dkim(&d, dkim);
	run(&d, zone);
	assert_int_equal(d.result, result);
	if (result == DMARC_RESULT_FAIL)
		assert_int_equal(d.disposition, disposition);
	dmarc_free(&d);
}

static void test_evaluate(void **state)
{
	(void)state;
	/* aligned DKIM pass (relaxed: a subdomain's signature), SPF failing */
	check("a@reject.example", false, "reject.example", "mail.reject.example", DMARC_RESULT_PASS,
	      0);
	/* SPF-only pass, relaxed: the bounce domain is a subdomain */
	check("a@reject.example", true, "bounce.reject.example", NULL, DMARC_RESULT_PASS, 0);
	/* both fail (SPF passes for another domain, DKIM by another) */
	check("a@reject.example", true, "other.example", "other.example", DMARC_RESULT_FAIL,
	      DMARC_POLICY_REJECT);
	check("a@quar.example", false, "quar.example", NULL, DMARC_RESULT_FAIL,
	      DMARC_POLICY_QUARANTINE);
	/* a subdomain without its own record: the organisation's sp= */
	check("a@x.sub.example", false, "x.sub.example", NULL, DMARC_RESULT_FAIL,
	      DMARC_POLICY_REJECT);
	check("a@sub.example", false, "sub.example", NULL, DMARC_RESULT_FAIL, DMARC_POLICY_NONE);
	/* strict: a subdomain does not align */
	check("a@strict.example", true, "bounce.strict.example", "mail.strict.example",
	      DMARC_RESULT_FAIL, DMARC_POLICY_REJECT);
	check("a@strict.example", true, "strict.example", NULL, DMARC_RESULT_PASS, 0);
	/* pct=0: every failure gets the next milder policy */
	check("a@sample.example", false, "sample.example", NULL, DMARC_RESULT_FAIL,
	      DMARC_POLICY_QUARANTINE);
	check("a@nothing.example", false, NULL, NULL, DMARC_RESULT_NONE, 0);
	check("a@localhost", false, NULL, NULL, DMARC_RESULT_NONE, 0); /* no lookup: run asserts */
	check("a@temp.example", true, "temp.example", NULL, DMARC_RESULT_TEMPERROR, 0);
	check("a@one.example, b@two.example", true, "one.example", NULL, DMARC_RESULT_PERMERROR, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_psl),
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_evaluate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
