/*
 * test_auth_results.c - the Authentication-Results: field (src/checks/
 * auth_results.c): the value hato writes for SPF and DMARC results, and
 * the recognition of a field that claims our authserv-id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "auth_results.h"

static void test_format(void **state)
{
	struct dmarc d = {0};
	struct auth_results ar = {.authserv_id = "mx.example.org",
				  .spf_on = true,
				  .spf = SPF_RESULT_PASS,
				  .spf_identity = "alice@example.com",
				  .dmarc_on = true,
				  .dmarc = &d};
	struct strbuf b;

	(void)state;
	d.result = DMARC_RESULT_FAIL;
	d.policy = DMARC_POLICY_REJECT;
	d.disposition = DMARC_POLICY_QUARANTINE;
	strcpy(d.from, "example.com");
	strbuf_init(&b);
	auth_results_format(&ar, &b);
	assert_string_equal(b.s, "mx.example.org;\n\tspf=pass smtp.mailfrom=alice@example.com;\n"
				 "\tdmarc=fail (p=reject dis=quarantine) header.from=example.com");
	strbuf_free(&b);
	/* the HELO identity; an address with unsafe characters shows its domain only */
	ar.spf_helo = true;
	ar.spf_identity = "helo.example.com";
	ar.dmarc_on = false;
	strbuf_init(&b);
	auth_results_format(&ar, &b);
	assert_string_equal(b.s, "mx.example.org;\n\tspf=pass smtp.helo=helo.example.com");
	strbuf_free(&b);
	ar.spf_helo = false;
	ar.spf = SPF_RESULT_SOFTFAIL;
	ar.spf_identity = "\"a b;c\"@example.com";
	strbuf_init(&b);
	auth_results_format(&ar, &b);
	assert_string_equal(b.s, "mx.example.org;\n\tspf=softfail smtp.mailfrom=example.com");
	strbuf_free(&b);
	ar.spf_on = false;
	strbuf_init(&b);
	auth_results_format(&ar, &b);
	assert_string_equal(b.s, "mx.example.org; none");
	strbuf_free(&b);
}

static void test_dkim_none(void **state)
{
	static const char msg[] = "From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n";
	struct dkim_verify *v = dkim_verify_new();
	struct auth_results ar = {.authserv_id = "mx.example.org", .dkim_on = true, .dkim = v};
	struct strbuf b;

	(void)state;
	dkim_verify_feed(v, msg, sizeof(msg) - 1);
	dkim_verify_finish(v, 0);
	strbuf_init(&b);
	auth_results_format(&ar, &b);
	assert_string_equal(b.s, "mx.example.org;\n\tdkim=none");
	strbuf_free(&b);
	dkim_verify_free(v);
}

static void ours(const char *v, bool want)
{
	assert_int_equal(auth_results_ours(v, strlen(v), "mx.example.org"), want);
}

static void test_ours(void **state)
{
	(void)state;
	ours(" mx.example.org; spf=pass", true);
	ours("MX.Example.ORG;spf=pass", true);
	ours(" (a comment (nested)) mx.example.org 1; dkim=pass", true);
	ours("\r\n\tmx.example.org;\r\n\tspf=pass", true);
	ours(" mx.example.org.evil; spf=pass", false);
	ours(" example.org; spf=pass", false);
	ours(" relay.example; spf=pass smtp.mailfrom=mx.example.org", false);
	ours("", false);
	ours(" (unclosed mx.example.org;", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_dkim_none),
		cmocka_unit_test(test_ours),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
