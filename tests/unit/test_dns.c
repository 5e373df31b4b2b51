/*
 * test_dns.c - the event loop's resolver (src/lookup/dns.c, dns_answer.c,
 * dns_cache.c) against a real dnsmasq (dnsmasq_fixture.h).
 *
 * Covered: TXT (strings joined), A, AAAA, MX, PTR answers; NXDOMAIN, NODATA
 * and a timeout told apart; a name DNS cannot carry; answers kept for
 * their TTL (served while the server is down) and answers with TTL 0 not
 * kept; a cancelled query never called back; the cache's own bound, LRU
 * order and expiry with a moved clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "dns_cache.h"
#include "dnsmasq_fixture.h"
#include "util.h"

#define ZONE                                                                                       \
	"txt-record=spf.example.test,\"v=spf1 \",\"ip4:192.0.2.1 -all\"\n"                         \
	"txt-record=two.example.test,\"one\"\n"                                                    \
	"txt-record=two.example.test,\"two\"\n"                                                    \
	"host-record=host.example.test,192.0.2.7,2001:db8::7\n"                                    \
	"mx-host=example.test,mx1.example.test,10\n"                                               \
	"mx-host=example.test,mx2.example.test,20\n"                                               \
	"ptr-record=7.2.0.192.in-addr.arpa,host.example.test\n"

struct t {
	struct dnsmasq d;
	struct event_base *base;
	struct conf *conf;
};

/* What a callback saw. */
struct got {
	int calls;
	enum dns_status status;
	size_t n;
	char data[4][256];
	size_t len[4];
	unsigned pref[4];
	uint32_t ttl;
};

static void got_cb(void *arg, const struct dns_answer *a)
{
	struct got *g = arg;

	g->calls++;
	g->status = a->status;
	g->n = a->n;
	g->ttl = a->ttl;
	for (size_t i = 0; i < a->n && i < 4; i++) {
		memcpy(g->data[i], a->rr[i].data, a->rr[i].len + 1);
		g->len[i] = a->rr[i].len;
		g->pref[i] = a->rr[i].pref;
	}
}

/* Start dnsmasq with extra lines and the resolver pointed at it. */
static struct t *start(const char *extra)
{
	struct t *t = xcalloc(1, sizeof(*t));
	char err[256], zone[2048], servers[32];

	snprintf(zone, sizeof(zone), "%s%s", ZONE, extra);
	assert_int_equal(dnsmasq_start(&t->d, zone), 0);
	t->conf = conf_load(NULL, err, sizeof(err));
	assert_non_null(t->conf);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", t->d.port);
	t->conf->dns_servers = xstrdup(servers);
	t->conf->dns_timeout_ms = 300;
	t->conf->dns_tries = 1;
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

/* Ask and run the loop until the answer is in (at most 5 s). */
static void ask(struct t *t, const char *name, enum dns_type type, struct got *g)
{
	struct timespec t0, now;

	memset(g, 0, sizeof(*g));
	dns_query(name, type, got_cb, g);
	assert_int_equal(g->calls, 0); /* never called back inside dns_query */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (g->calls == 0) {
		event_base_loop(t->base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true(now.tv_sec - t0.tv_sec < 5);
	}
	assert_int_equal(g->calls, 1);
}

static void test_txt_joined(void **state)
{
	struct t *t = start("");
	struct got g;

	(void)state;
	ask(t, "spf.example.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.data[0], "v=spf1 ip4:192.0.2.1 -all");
	ask(t, "two.example.test.", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.n, 2);
	assert_true((strcmp(g.data[0], "one") == 0 && strcmp(g.data[1], "two") == 0) ||
		    (strcmp(g.data[0], "two") == 0 && strcmp(g.data[1], "one") == 0));
	stop(t);
}

static void test_addresses_mx_ptr(void **state)
{
	struct t *t = start("");
	struct got g;
	char text[64];

	(void)state;
	ask(t, "host.example.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.len[0], 4);
	inet_ntop(AF_INET, g.data[0], text, sizeof(text));
	assert_string_equal(text, "192.0.2.7");
	ask(t, "HOST.example.test", DNS_T_AAAA, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.len[0], 16);
	inet_ntop(AF_INET6, g.data[0], text, sizeof(text));
	assert_string_equal(text, "2001:db8::7");
	ask(t, "example.test", DNS_T_MX, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.n, 2);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(g.pref[i], strcmp(g.data[i], "mx1.example.test") == 0 ? 10 : 20);
	ask(t, "7.2.0.192.in-addr.arpa", DNS_T_PTR, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.data[0], "host.example.test");
	stop(t);
}

static void test_nxdomain_nodata_timeout(void **state)
{
	struct t *t = start("");
	struct got g;

	(void)state;
	ask(t, "nothing.example.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	ask(t, "host.example.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_NODATA);
	ask(t, "spf.example.test", DNS_T_MX, &g);
	assert_int_equal(g.status, DNS_NODATA);
	ask(t, "x.broken.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	ask(t, "a..b.test", DNS_T_A, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	ask(t, "a1234567890123456789012345678901234567890123456789012345678901234567890.test",
	    DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	stop(t);
}

static void test_ttl_kept(void **state)
{
	struct t *t = start("local-ttl=300\n");
	struct got g;

	(void)state;
	ask(t, "spf.example.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.ttl, 300);
	assert_int_equal(dns_cache_entries(), 1);
	ask(t, "x.broken.test", DNS_T_TXT, &g); /* temporary failures are not kept */
	assert_int_equal(dns_cache_entries(), 1);
	kill(t->d.pid, SIGTERM);
	waitpid(t->d.pid, NULL, 0);
	t->d.pid = -1;
	ask(t, "SPF.example.test.", DNS_T_TXT, &g); /* from the cache: the server is gone */
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.data[0], "v=spf1 ip4:192.0.2.1 -all");
	ask(t, "spf.example.test", DNS_T_A, &g); /* not asked before: fails */
	assert_int_equal(g.status, DNS_TEMPFAIL);
	stop(t);
}

static void test_ttl_zero_not_kept(void **state)
{
	struct t *t = start(""); /* dnsmasq's own records: TTL 0 by default */
	struct got g;

	(void)state;
	ask(t, "spf.example.test", DNS_T_TXT, &g);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.ttl, 0);
	assert_int_equal(dns_cache_entries(), 0);
	stop(t);
}

static void test_cancel(void **state)
{
	struct t *t = start("local-ttl=300\n");
	struct got cancelled = {0}, cached = {0}, g;
	struct dns_query *q;

	(void)state;
	q = dns_query("two.example.test", DNS_T_TXT, got_cb, &cancelled);
	dns_query_cancel(q); /* still with c-ares */
	ask(t, "spf.example.test", DNS_T_TXT, &g);
	q = dns_query("spf.example.test", DNS_T_TXT, got_cb, &cached);
	dns_query_cancel(q); /* answered from the cache, not yet called back */
	ask(t, "host.example.test", DNS_T_A, &g);
	for (int i = 0; i < 20; i++)
		event_base_loop(t->base, EVLOOP_NONBLOCK);
	assert_int_equal(cancelled.calls, 0);
	assert_int_equal(cached.calls, 0);
	stop(t);
}

/* An answer of status st with ttl, for the cache tests. */
static struct dns_answer *answer(enum dns_status st, uint32_t ttl)
{
	struct dns_answer *a = dns_answer_status(st, NULL);

	a->ttl = ttl;
	return a;
}

static void test_cache_bound_and_expiry(void **state)
{
	struct dns_cache *c = dns_cache_new(2, 60);
	struct dns_answer *a = answer(DNS_NODATA, 10), *b = answer(DNS_NXDOMAIN, 1000),
			  *x = answer(DNS_TEMPFAIL, 100), *got;

	(void)state;
	dns_cache_put(c, "a.test", DNS_T_TXT, a, 100);
	dns_cache_put(c, "b.test", DNS_T_TXT, b, 100);
	dns_cache_put(c, "x.test", DNS_T_TXT, x, 100);
	assert_int_equal(dns_cache_count(c), 2);
	assert_null(dns_cache_get(c, "x.test", DNS_T_TXT, 100));
	assert_null(dns_cache_get(c, "a.test", DNS_T_A, 100)); /* the type is in the key */
	got = dns_cache_get(c, "A.Test.", DNS_T_TXT, 109);     /* a is now the most recent */
	assert_ptr_equal(got, a);
	dns_answer_unref(got);
	dns_cache_put(c, "c.test", DNS_T_TXT, b, 100); /* drops b, the LRU */
	assert_int_equal(dns_cache_count(c), 2);
	assert_null(dns_cache_get(c, "b.test", DNS_T_TXT, 100));
	assert_null(dns_cache_get(c, "a.test", DNS_T_TXT, 110)); /* its TTL is over */
	got = dns_cache_get(c, "c.test", DNS_T_TXT, 159);        /* b's 1000 s, cut to 60 */
	assert_non_null(got);
	dns_answer_unref(got);
	assert_null(dns_cache_get(c, "c.test", DNS_T_TXT, 160));
	dns_cache_free(c);
	dns_answer_unref(a);
	dns_answer_unref(b);
	dns_answer_unref(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_joined),
		cmocka_unit_test(test_addresses_mx_ptr),
		cmocka_unit_test(test_nxdomain_nodata_timeout),
		cmocka_unit_test(test_ttl_kept),
		cmocka_unit_test(test_ttl_zero_not_kept),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_cache_bound_and_expiry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
