/*
 * test_dnsbl.c - DNS blocklists and allowlists (src/lookup/dnsbl.c) and
 * their [dnsbl] zones syntax (conf_parse_dnsbl_zone), the checks against
 * a real dnsmasq (dnsmasq_fixture.h).
 *
 * Covered: query names for IPv4, IPv4-mapped IPv6 and IPv6 (reversed
 * nibbles), a name too long for DNS; what an answer means (127.0.0.2 a
 * listing, 127.255.255.x and answers outside 127/8 errors, filters); the
 * zones syntax and its refusals; scores summed over block- and
 * allowlists, a filter that does not match, an error code that is no
 * listing, an IPv6 client, a list that never answers, and a check stopped
 * before its answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>

#include "conf.h"
#include "sockaddr_fixture.h"
#include "dns.h"
#include "dnsbl.h"
#include "dnsmasq_fixture.h"
#include "util.h"

#define V6_1 "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
#define ZONE                                                                                       \
	"host-record=1.2.0.192.bl.test,127.0.0.2\n"                                                \
	"host-record=2.2.0.192.bl.test,127.0.0.2\n"                                                \
	"host-record=2.2.0.192.wl.test,127.0.0.9\n"                                                \
	"host-record=3.2.0.192.filtered.test,127.0.0.3\n"                                          \
	"host-record=4.2.0.192.filtered.test,127.0.0.4\n"                                          \
	"host-record=5.2.0.192.errors.test,127.255.255.254\n"                                      \
	"host-record=" V6_1 ".bl.test,127.0.0.2\n"

struct t {
	struct dnsmasq d;
	struct event_base *base;
	struct conf *conf;
};

struct got {
	int calls;
	struct dnsbl_result r;
};

static void got_cb(void *arg, const struct dnsbl_result *r)
{
	struct got *g = arg;

	g->calls++;
	g->r = *r;
}

/* dnsmasq and a configuration whose [dnsbl] zones are zones. */
static struct t *start(const char *zones)
{
	struct t *t = xcalloc(1, sizeof(*t));
	char path[] = "/tmp/hato-test-dnsbl.XXXXXX", err[512] = "";
	int fd;
	FILE *f;

	assert_int_equal(dnsmasq_start(&t->d, ZONE), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f,
		"[server]\nlocal_domains = example.org\n"
		"[dns]\nservers = 127.0.0.1:%d\ntimeout = 300ms\ntries = 1\n"
		"[dnsbl]\nzones = %s\n"
		"[listener smtp]\naddress = 127.0.0.1:2525\n",
		t->d.port, zones);
	fclose(f);
	t->conf = conf_load(path, err, sizeof(err));
	unlink(path);
	if (t->conf == NULL)
		fail_msg("%s", err);
	t->base = event_base_new();
	assert_true(dns_init(t->base, t->conf, err, sizeof(err)));
	return t;
}

static void stop(struct t *t)
{
	dns_shutdown();
	event_base_free(t->base);
	conf_free(t->conf);
	dnsmasq_stop(&t->d);
	free(t);
}

/* Check one client and run the loop until the result is in (at most 5 s). */
static struct dnsbl_result check(struct t *t, const char *client)
{
	struct sockaddr_storage ss = sockaddr_of(client);
	struct got g = {0};
	struct timespec t0, now;

	assert_non_null(dnsbl_check(t->conf, (struct sockaddr *)&ss, "session=test", got_cb, &g));
	assert_int_equal(g.calls, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (g.calls == 0) {
		event_base_loop(t->base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true(now.tv_sec - t0.tv_sec < 5);
	}
	assert_int_equal(g.calls, 1);
	return g.r;
}

static void test_query_names(void **state)
{
	struct sockaddr_storage v4 = sockaddr_of("192.0.2.1"), v6 = sockaddr_of("2001:db8::1"),
				mapped = sockaddr_of("::ffff:192.0.2.1");
	char name[512], zone[300];

	(void)state;
	assert_true(dnsbl_query_name((struct sockaddr *)&v4, "bl.test", name, sizeof(name)));
	assert_string_equal(name, "1.2.0.192.bl.test");
	assert_true(dnsbl_query_name((struct sockaddr *)&mapped, "bl.test", name, sizeof(name)));
	assert_string_equal(name, "1.2.0.192.bl.test");
	assert_true(dnsbl_query_name((struct sockaddr *)&v6, "bl.test", name, sizeof(name)));
	assert_string_equal(name, V6_1 ".bl.test");
	/* 64 + 1 + 190 octets: more than a DNS name holds */
	memset(zone, 'a', 190);
	zone[190] = '\0';
	assert_false(dnsbl_query_name((struct sockaddr *)&v6, zone, name, sizeof(name)));
	assert_false(dnsbl_query_name((struct sockaddr *)&v4, "bl.test", name, 10));
}

static void test_classify(void **state)
{
	struct dnsbl_zone any, filtered;
	const unsigned char listed[4] = {127, 0, 0, 2}, refused[4] = {127, 255, 255, 254},
			    bogus[4] = {10, 0, 0, 1}, four[4] = {127, 0, 0, 4};

	(void)state;
	assert_true(conf_parse_dnsbl_zone("zen.example", &any));
	assert_true(conf_parse_dnsbl_zone("zen.example=127.0.0.[4..7];127.0.1.1*3", &filtered));
	assert_int_equal(dnsbl_classify(&any, listed), DNSBL_LISTED);
	assert_int_equal(dnsbl_classify(&any, refused), DNSBL_ERROR);
	assert_int_equal(dnsbl_classify(&any, bogus), DNSBL_ERROR);
	assert_int_equal(dnsbl_classify(&filtered, listed), DNSBL_NOT_LISTED);
	assert_int_equal(dnsbl_classify(&filtered, four), DNSBL_LISTED);
	assert_int_equal(dnsbl_classify(&filtered, refused), DNSBL_ERROR);
	free(any.zone);
	free(filtered.zone);
}

static void test_zone_syntax(void **state)
{
	static const char *const bad[] = {
		"",
		"*3",
		"bl.example*",
		"bl.example*x",
		"bl..x",
		"bl.example=",
		"bl.example=127.0.0",
		"bl.example=127.0.0.256",
		"bl.example=127.0.0.[5..4]",
		"bl.example=127.0.0.2;",
		"bl.example*3=127.0.0.2",
		"bl.example=127.0.0.2;127.0.0.2;127.0.0.2;127.0.0.2;127.0.0.2;127.0.0.2;127.0.0.2;"
		"127.0.0.2;127.0.0.2",
	};
	struct dnsbl_zone z;

	(void)state;
	assert_true(conf_parse_dnsbl_zone("list.dnswl.example.=127.0.[0..255].[1..3]*-5", &z));
	assert_string_equal(z.zone, "list.dnswl.example");
	assert_int_equal(z.weight, -5);
	assert_int_equal(z.nfilters, 1);
	assert_int_equal(z.filters[0].lo[2], 0);
	assert_int_equal(z.filters[0].hi[2], 255);
	assert_int_equal(z.filters[0].lo[3], 1);
	assert_int_equal(z.filters[0].hi[3], 3);
	free(z.zone);
	assert_true(conf_parse_dnsbl_zone("bl.example", &z));
	assert_int_equal(z.weight, 1);
	assert_int_equal(z.nfilters, 0);
	free(z.zone);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_parse_dnsbl_zone(bad[i], &z))
			fail_msg("accepted \"%s\"", bad[i]);
}

/* Block- and allowlists add up; a filter and an error code count nothing. */
static void test_scores(void **state)
{
	struct t *t = start("bl.test*2, wl.test*-3 filtered.test=127.0.0.[4..5]*4 errors.test*5");
	struct dnsbl_result r;

	(void)state;
	r = check(t, "192.0.2.1");
	assert_int_equal(r.score, 2);
	assert_int_equal(r.listed, 1);
	assert_string_equal(t->conf->dnsbl_zones[r.zone].zone, "bl.test");
	r = check(t, "192.0.2.2");
	assert_int_equal(r.score, -1);
	assert_int_equal(r.listed, 2);
	r = check(t, "192.0.2.3");
	assert_int_equal(r.score, 0);
	assert_int_equal(r.zone, -1);
	r = check(t, "192.0.2.4");
	assert_int_equal(r.score, 4);
	assert_string_equal(t->conf->dnsbl_zones[r.zone].zone, "filtered.test");
	r = check(t, "192.0.2.5");
	assert_int_equal(r.score, 0);
	assert_int_equal(r.failed, 0);
	r = check(t, "2001:db8::1");
	assert_int_equal(r.score, 2);
	r = check(t, "2001:db8::2");
	assert_int_equal(r.score, 0);
	assert_int_equal(r.failed, 0);
	stop(t);
}

/* A list that never answers counts as failed, not as a listing; a check
 * stopped early never calls back. */
static void test_unanswered(void **state)
{
	struct t *t = start("bl.test*2 broken.test*5");
	struct sockaddr_storage ss = sockaddr_of("192.0.2.1");
	struct dnsbl_result r;
	struct got g = {0};
	struct dnsbl_check *ch;

	(void)state;
	r = check(t, "192.0.2.1");
	assert_int_equal(r.score, 2);
	assert_int_equal(r.failed, 1);
	ch = dnsbl_check(t->conf, (struct sockaddr *)&ss, "session=test", got_cb, &g);
	assert_non_null(ch);
	dnsbl_check_stop(ch, &r);
	assert_int_equal(r.failed, 2);
	for (int i = 0; i < 20; i++)
		event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_int_equal(g.calls, 0);
	stop(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_names), cmocka_unit_test(test_classify),
		cmocka_unit_test(test_zone_syntax), cmocka_unit_test(test_scores),
		cmocka_unit_test(test_unanswered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
