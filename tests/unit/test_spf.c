/*
 * test_spf.c - the SPF evaluator (src/spf/) against the RFC 7208 test suite
 * and against its own cases.
 *
 * The suite (pyspf's rfc7208-tests.yml, release 2014.04) is read from
 * data/rfc7208-tests.txt (rewritten by data/spf_suite.py); each scenario's
 * zone is served from a table, with the suite's conventions: a name absent
 * from the zone is NXDOMAIN, a name present without records of the type
 * asked is NODATA, TIMEOUT answers every type that has no record before it
 * with a temporary failure, and a CNAME is followed one level.  Every test
 * must give one of its results, and its explanation when it names one
 * ("DEFAULT": none from exp=).
 *
 * Also: macro expansion (RFC 7208 §7.4's examples), the lookup limits on
 * records that loop or fan out, and that each name is asked once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "answer_fixture.h"
#include "spf.h"
#include "util.h"

#ifndef SPF_SUITE
#define SPF_SUITE "tests/unit/data/rfc7208-tests.txt"
#endif
#define FIELDS_MAX 16
#define LINE_MAX_LEN 4096
#define ZONE_MAX 256
#define RUNS_MAX 1000

struct zone_line {
	char *name;
	char *type;
	char *v[FIELDS_MAX];
	size_t vlen[FIELDS_MAX];
	size_t nv;
};

struct zone {
	struct zone_line l[ZONE_MAX];
	size_t n;
};

/* Undo the data file's \xNN escapes in place; the length. */
static size_t unescape(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '\\' && s[i + 1] == 'x' && isxdigit((unsigned char)s[i + 2]) &&
		    isxdigit((unsigned char)s[i + 3])) {
			char hex[3] = {s[i + 2], s[i + 3], 0};

			s[o++] = (char)strtol(hex, NULL, 16);
			i += 3;
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
	return o;
}

/* Split line on tabs into f (unescaped); the number of fields. */
static size_t split(char *line, char **f, size_t *len)
{
	size_t n = 0;
	char *p = line, *tab;

	line[strcspn(line, "\n")] = '\0';
	while (n < FIELDS_MAX) {
		tab = strchr(p, '\t');
		if (tab)
			*tab = '\0';
		f[n] = p;
		len[n] = unescape(p);
		n++;
		if (!tab)
			break;
		p = tab + 1;
	}
	return n;
}

static void zone_clear(struct zone *z)
{
	for (size_t i = 0; i < z->n; i++) {
		free(z->l[i].name);
		free(z->l[i].type);
		for (size_t k = 0; k < z->l[i].nv; k++)
			free(z->l[i].v[k]);
	}
	z->n = 0;
}

static const char *type_text(enum dns_type t)
{
	return dns_type_name(t);
}

/* The zone's answer to (type, name), after the suite's conventions. */
static struct dns_answer *zone_answer(const struct zone *z, enum dns_type type, const char *name,
				      int level)
{
	const char *data[ZONE_MAX];
	size_t len[ZONE_MAX], n = 0;
	unsigned pref[ZONE_MAX];
	bool present = false;
	const char *cname = NULL;
	static char bufs[ZONE_MAX][LINE_MAX_LEN];

	for (size_t i = 0; i < z->n; i++) {
		const struct zone_line *l = &z->l[i];

		if (strcasecmp(l->name, name) != 0)
			continue;
		present = true;
		if (strcmp(l->type, "TIMEOUT") == 0) {
			if (n == 0)
				return dns_answer_status(DNS_TEMPFAIL, "timeout");
			continue;
		}
		if (strcmp(l->type, "CNAME") == 0)
			cname = l->v[0];
		if (strcmp(l->type, type_text(type)) != 0)
			continue;
		if (type == DNS_T_TXT) {
			size_t o = 0;

			for (size_t k = 0; k < l->nv; k++) {
				memcpy(bufs[n] + o, l->v[k], l->vlen[k]);
				o += l->vlen[k];
			}
			data[n] = bufs[n];
			len[n] = o;
			pref[n] = 0;
		} else if (type == DNS_T_MX) {
			pref[n] = (unsigned)atoi(l->v[0]);
			data[n] = l->v[1];
			len[n] = l->vlen[1];
		} else if (type == DNS_T_A || type == DNS_T_AAAA) {
			if (inet_pton(type == DNS_T_A ? AF_INET : AF_INET6, l->v[0], bufs[n]) != 1)
				continue;
			data[n] = bufs[n];
			len[n] = type == DNS_T_A ? 4 : 16;
			pref[n] = 0;
		} else {
			data[n] = l->v[0];
			len[n] = l->vlen[0];
			pref[n] = 0;
		}
		n++;
	}
	if (n > 0)
		return answer_make(data, len, pref, n);
	if (cname && level == 0)
		return zone_answer(z, type, cname, 1);
	if (!present)
		return strncasecmp(name, "error.", 6) == 0
			       ? dns_answer_status(DNS_TEMPFAIL, "error")
			       : dns_answer_status(DNS_NXDOMAIN, NULL);
	return dns_answer_status(DNS_NODATA, NULL);
}

/* Evaluate with answers from the zone; counts the lookups in *asked. */
static void evaluate(struct spf *s, const struct zone *z, size_t *asked)
{
	int runs = 0;

	while (!spf_run(s)) {
		assert_true(++runs < RUNS_MAX);
		for (size_t i = 0; i < s->nneed; i++) {
			struct dns_answer *a = zone_answer(z, s->need[i].type, s->need[i].name, 0);

			spf_answer(s, s->need[i].type, s->need[i].name, a);
			dns_answer_unref(a);
			if (asked)
				(*asked)++;
		}
	}
}

/* Is res among the comma-separated expected results? */
static bool result_ok(const char *expected, enum spf_result res)
{
	const char *name = spf_result_name(res);
	char buf[256];

	snprintf(buf, sizeof(buf), ",%s,", expected);
	for (char *p = buf; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	{
		char want[32];

		snprintf(want, sizeof(want), ",%s,", name);
		return strstr(buf, want) != NULL;
	}
}

static void test_rfc7208_suite(void **state)
{
	FILE *f = fopen(SPF_SUITE, "r");
	static struct zone z;
	char line[LINE_MAX_LEN];
	int tests = 0, failed = 0;

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *fl[FIELDS_MAX];
		size_t len[FIELDS_MAX], n;

		if (line[0] == '#')
			continue;
		n = split(line, fl, len);
		if (strcmp(fl[0], "scenario") == 0) {
			zone_clear(&z);
		} else if (strcmp(fl[0], "zone") == 0) {
			struct zone_line *l = &z.l[z.n++];

			assert_true(z.n < ZONE_MAX && n >= 3);
			l->name = xstrdup(fl[1]);
			l->type = xstrdup(fl[2]);
			l->nv = n - 3;
			for (size_t k = 0; k < l->nv; k++) {
				l->v[k] = xmalloc(len[k + 3] + 1);
				memcpy(l->v[k], fl[k + 3], len[k + 3] + 1);
				l->vlen[k] = len[k + 3];
			}
		} else if (strcmp(fl[0], "test") == 0) {
			struct spf s;
			bool ok;

			assert_true(n >= 6);
			tests++;
			if (!spf_init(&s, fl[2], fl[3], fl[4], "")) {
				printf("SPF suite %s: bad host %s\n", fl[1], fl[2]);
				failed++;
				continue;
			}
			evaluate(&s, &z, NULL);
			ok = result_ok(fl[5], s.result);
			if (ok && n > 6 && s.result == SPF_RESULT_FAIL)
				ok = strcmp(fl[6], "DEFAULT") == 0
					     ? s.explanation[0] == '\0'
					     : strcmp(fl[6], s.explanation) == 0;
			if (!ok) {
				printf("SPF suite %s: got %s (%s) explanation \"%s\", want %s %s\n",
				       fl[1], spf_result_name(s.result), s.why, s.explanation,
				       fl[5], n > 6 ? fl[6] : "");
				failed++;
			}
			spf_free(&s);
		}
	}
	fclose(f);
	zone_clear(&z);
	printf("SPF suite: %d tests, %d failed\n", tests, failed);
	assert_int_equal(tests, 203);
	assert_int_equal(failed, 0);
}

/* Expand in for the RFC 7208 §7.4 question and compare. */
static void expands(struct spf *s, const char *in, const char *want)
{
	char out[SPF_EXPAND_MAX + 1];

	assert_int_equal(
		spf_expand(s, in, strlen(in), "email.example.com", false, out, sizeof(out)), 1);
	assert_string_equal(out, want);
}

static void test_macro_rfc_examples(void **state)
{
	struct spf s;
	char out[64];

	(void)state;
	assert_true(spf_init(&s, "192.0.2.3", "strong-bad@email.example.com", "mx.example.org",
			     "mx.example.net"));
	expands(&s, "%{s}", "strong-bad@email.example.com");
	expands(&s, "%{o}", "email.example.com");
	expands(&s, "%{d}", "email.example.com");
	expands(&s, "%{d4}", "email.example.com");
	expands(&s, "%{d3}", "email.example.com");
	expands(&s, "%{d2}", "example.com");
	expands(&s, "%{d1}", "com");
	expands(&s, "%{dr}", "com.example.email");
	expands(&s, "%{d2r}", "example.email");
	expands(&s, "%{l}", "strong-bad");
	expands(&s, "%{l-}", "strong.bad");
	expands(&s, "%{lr}", "strong-bad");
	expands(&s, "%{lr-}", "bad.strong");
	expands(&s, "%{l1r-}", "strong");
	expands(&s, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com");
	expands(&s, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com");
	expands(&s, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		"bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expands(&s, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		"3.2.0.192.in-addr.strong.lp._spf.example.com");
	expands(&s, "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net");
	expands(&s, "%%%_%-%{h}", "% %20mx.example.org");
	expands(&s, "%{L}", "strong-bad");
	/* errors: a bad letter, a zero count, c outside exp, an unclosed macro */
	assert_int_equal(spf_expand(&s, "%{x}", 4, "d.example", false, out, sizeof(out)), -1);
	assert_int_equal(spf_expand(&s, "%{d0}", 5, "d.example", false, out, sizeof(out)), -1);
	assert_int_equal(spf_expand(&s, "%{c}", 4, "d.example", false, out, sizeof(out)), -1);
	assert_int_equal(spf_expand(&s, "%{d", 3, "d.example", false, out, sizeof(out)), -1);
	assert_int_equal(spf_expand(&s, "%x", 2, "d.example", false, out, sizeof(out)), -1);
	assert_int_equal(spf_expand(&s, "%{c} %{r}", 9, "d.example", true, out, sizeof(out)), 1);
	assert_string_equal(out, "192.0.2.3 mx.example.net");
	spf_free(&s);
	assert_true(
		spf_init(&s, "2001:db8::cb01", "strong-bad@email.example.com", "h.example", ""));
	expands(&s, "%{ir}.%{v}._spf.%{d2}",
		"1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example."
		"com");
	spf_free(&s);
}

/* A zone of one line per record: "NAME TYPE VALUE". */
static void zone_from(struct zone *z, const char *const *lines)
{
	zone_clear(z);
	for (; *lines; lines++) {
		struct zone_line *l = &z->l[z->n++];
		char *copy = xstrdup(*lines), *sp1 = strchr(copy, ' '), *sp2 = strchr(sp1 + 1, ' ');

		*sp1 = *sp2 = '\0';
		l->name = xstrdup(copy);
		l->type = xstrdup(sp1 + 1);
		l->v[0] = xstrdup(sp2 + 1);
		l->vlen[0] = strlen(sp2 + 1);
		l->nv = 1;
		if (strcmp(l->type, "MX") == 0) { /* "PREF HOST" */
			char *sp3 = strchr(l->v[0], ' ');

			*sp3 = '\0';
			l->v[1] = xstrdup(sp3 + 1);
			l->vlen[1] = strlen(sp3 + 1);
			l->nv = 2;
		}
		free(copy);
	}
}

/* Evaluate sender from ip against lines; the result, lookups in *asked. */
static enum spf_result run_zone(const char *const *lines, const char *ip, const char *sender,
				size_t *asked, char *why, size_t whysz)
{
	static struct zone z;
	struct spf s;
	enum spf_result r;

	zone_from(&z, lines);
	assert_true(spf_init(&s, ip, sender, "helo.example.org", "mx.example.net"));
	evaluate(&s, &z, asked);
	r = s.result;
	if (why)
		strcpy_bounded(why, s.why, whysz);
	spf_free(&s);
	zone_clear(&z);
	return r;
}

static void test_limits(void **state)
{
	static const char *const loop[] = {"loop.example TXT v=spf1 include:loop.example -all",
					   NULL};
	static const char *const redirect_loop[] = {"a.example TXT v=spf1 redirect=b.example",
						    "b.example TXT v=spf1 redirect=a.example",
						    NULL};
	static const char *const eleven[] = {"x.example TXT v=spf1 a a a a a a a a a a a -all",
					     "x.example A 192.0.2.9", NULL};
	static const char *const voids[] = {
		"v.example TXT v=spf1 a:n1.v.example a:n2.v.example a:n3.v.example +all", NULL};
	static char huge_record[1024];
	const char *huge[] = {huge_record, NULL};
	static const char *const once[] = {
		"o.example TXT v=spf1 mx mx a:o.example ip4:192.0.2.1 -all",
		"o.example MX 10 m1.o.example",
		"o.example MX 20 m2.o.example",
		"m1.o.example A 192.0.2.50",
		"o.example A 192.0.2.60",
		NULL};
	size_t asked = 0;
	char why[SPF_WHY_MAX];

	(void)state;
	assert_int_equal(run_zone(loop, "192.0.2.1", "a@loop.example", NULL, why, sizeof(why)),
			 SPF_RESULT_PERMERROR);
	assert_non_null(strstr(why, "DNS-querying terms"));
	assert_int_equal(run_zone(redirect_loop, "192.0.2.1", "a@a.example", NULL, NULL, 0),
			 SPF_RESULT_PERMERROR);
	assert_int_equal(run_zone(eleven, "192.0.2.1", "a@x.example", NULL, NULL, 0),
			 SPF_RESULT_PERMERROR);
	assert_int_equal(run_zone(voids, "192.0.2.1", "a@v.example", NULL, why, sizeof(why)),
			 SPF_RESULT_PERMERROR);
	assert_non_null(strstr(why, "void"));
	/* 150 times %{d} expands past SPF_EXPAND_MAX */
	strcpy(huge_record, "h.example TXT v=spf1 a:");
	for (int i = 0; i < 150; i++)
		strcat(huge_record, "%{d}");
	strcat(huge_record, ".example -all");
	assert_int_equal(run_zone(huge, "192.0.2.1", "a@h.example", NULL, why, sizeof(why)),
			 SPF_RESULT_PERMERROR);
	assert_non_null(strstr(why, "too long"));
	/* the TXT, the MX, two hosts' A and the domain's A: five lookups, each once */
	assert_int_equal(run_zone(once, "192.0.2.1", "a@o.example", &asked, NULL, 0),
			 SPF_RESULT_PASS);
	assert_int_equal(asked, 5);
	asked = 0;
	assert_int_equal(run_zone(once, "192.0.2.60", "a@o.example", &asked, why, sizeof(why)),
			 SPF_RESULT_PASS);
	assert_string_equal(why, "o.example matched a:o.example");
	/* the null sender: the HELO name is checked, as postmaster@HELO */
	assert_int_equal(run_zone(once, "192.0.2.1", "", NULL, NULL, 0), SPF_RESULT_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7208_suite),
		cmocka_unit_test(test_macro_rfc_examples),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
