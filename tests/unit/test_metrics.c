/*
 * test_metrics.c - unit tests for src/metrics/: the registry (counting is
 * a no-op before metrics_init and out of range, counters from many
 * threads add up, histograms write cumulative buckets, sparse metrics
 * only their moved series, label values escaped, collectors run before
 * the rendering) and the HTTP request head reader (what it accepts,
 * what it refuses, and that a head cut anywhere is only incomplete).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "http_request.h"
#include "metrics.h"
#include "outcome.h"
#include "status.h"
#include "strbuf.h"

/* The rendering, in a strbuf the caller frees. */
static struct strbuf render(void)
{
	struct strbuf b;

	strbuf_init(&b);
	metrics_render(&b);
	if (b.s == NULL)
		strbuf_adds(&b, "");
	return b;
}

/* Is line (with its newline) one of the rendering's lines? */
static bool has_line(const struct strbuf *b, const char *line)
{
	char want[512];
	const char *p = b->s;

	snprintf(want, sizeof(want), "%s\n", line);
	while ((p = strstr(p, want)) != NULL) {
		if (p == b->s || p[-1] == '\n')
			return true;
		p++;
	}
	return false;
}

/* Before metrics_init, counting does nothing and nothing is written. */
static void test_off_until_init(void **state)
{
	struct strbuf b;

	(void)state;
	metrics_add(METRIC_SESSIONS, 0, 0, 1);
	metrics_observe(METRIC_COMMIT_BATCH, 0, 3);
	b = render();
	assert_int_equal(b.len, 0);
	strbuf_free(&b);
}

/* Counters and gauges by label; an index out of range is ignored. */
static void test_counters_and_gauges(void **state)
{
	const char *listeners[] = {"mx", "sub\"mission\\"};
	struct strbuf b;

	(void)state;
	metrics_init(listeners, 2);
	metrics_add(METRIC_SESSIONS, 0, 0, 2);
	metrics_add(METRIC_SESSIONS, 1, 0, 1);
	metrics_add(METRIC_SESSIONS, 2, 0, 100); /* no third listener */
	metrics_add(METRIC_SESSIONS_OPEN, 0, 0, 1);
	metrics_add(METRIC_SESSIONS_OPEN, 0, 0, -1);
	metrics_set(METRIC_QUEUE_MESSAGES, METRICS_QUEUE_DEFERRED, 0, 7);
	metrics_set(METRIC_SESSIONS, 0, 0, 1000); /* not a gauge: ignored */
	metrics_add(METRIC_DELIVERIES, METRICS_TRANSPORT_LMTP, OUTCOME_PERMFAIL, 1);
	b = render();
	assert_true(has_line(&b, "# TYPE hato_sessions_total counter"));
	assert_true(has_line(&b, "hato_sessions_total{listener=\"mx\"} 2"));
	assert_true(has_line(&b, "hato_sessions_total{listener=\"sub\\\"mission\\\\\"} 1"));
	assert_true(has_line(&b, "hato_sessions_open{listener=\"mx\"} 0"));
	assert_true(has_line(&b, "# TYPE hato_queue_messages gauge"));
	assert_true(has_line(&b, "hato_queue_messages{state=\"deferred\"} 7"));
	assert_true(has_line(&b, "hato_queue_messages{state=\"held\"} 0"));
	assert_true(
		has_line(&b, "hato_deliveries_total{transport=\"lmtp\",outcome=\"permfail\"} 1"));
	assert_true(
		has_line(&b, "hato_deliveries_total{transport=\"smtp\",outcome=\"delivered\"} 0"));
	strbuf_free(&b);
	metrics_free();
}

/* A sparse metric writes only the series that moved, its HELP and TYPE always. */
static void test_sparse(void **state)
{
	struct strbuf b;

	(void)state;
	metrics_init(NULL, 0);
	b = render();
	assert_true(has_line(&b, "# TYPE hato_smtp_refused_total counter"));
	assert_null(strstr(b.s, "hato_smtp_refused_total{"));
	strbuf_free(&b);
	metrics_add(METRIC_SMTP_REFUSED, METRICS_COMMAND_RCPT, STATUS_USER_UNKNOWN, 1);
	metrics_add(METRIC_SMTP_REFUSED, METRICS_COMMAND_RCPT, STATUS_COUNT, 1); /* ignored */
	metrics_add(METRIC_MESSAGES_REFUSED, METRICS_SOURCE_PICKUP, STATUS_TOO_BIG, 2);
	b = render();
	assert_true(has_line(
		&b, "hato_smtp_refused_total{command=\"rcpt\",reason=\"user_unknown\"} 1"));
	assert_true(has_line(
		&b, "hato_messages_refused_total{source=\"pickup\",reason=\"too_big\"} 2"));
	assert_null(strstr(b.s, "reason=\"relay_denied\""));
	strbuf_free(&b);
	metrics_free();
}

/* Histograms: cumulative buckets, +Inf, sum and count; seconds from microseconds. */
static void test_histograms(void **state)
{
	struct strbuf b;

	(void)state;
	metrics_init(NULL, 0);
	metrics_observe(METRIC_COMMIT_BATCH, 0, 1);
	metrics_observe(METRIC_COMMIT_BATCH, 0, 3);
	metrics_observe(METRIC_COMMIT_BATCH, 0, 1000);
	metrics_observe(METRIC_DELIVERY_SECONDS, METRICS_TRANSPORT_SMTP, 250000);
	metrics_observe(METRIC_DELIVERY_SECONDS, METRICS_TRANSPORT_SMTP, 250001);
	metrics_add(METRIC_COMMIT_BATCH, 0, 0, 5); /* not a counter: ignored */
	b = render();
	assert_true(has_line(&b, "# TYPE hato_commit_batch_messages histogram"));
	assert_true(has_line(&b, "hato_commit_batch_messages_bucket{le=\"1\"} 1"));
	assert_true(has_line(&b, "hato_commit_batch_messages_bucket{le=\"2\"} 1"));
	assert_true(has_line(&b, "hato_commit_batch_messages_bucket{le=\"4\"} 2"));
	assert_true(has_line(&b, "hato_commit_batch_messages_bucket{le=\"256\"} 2"));
	assert_true(has_line(&b, "hato_commit_batch_messages_bucket{le=\"+Inf\"} 3"));
	assert_true(has_line(&b, "hato_commit_batch_messages_sum 1004"));
	assert_true(has_line(&b, "hato_commit_batch_messages_count 3"));
	assert_true(has_line(
		&b, "hato_delivery_duration_seconds_bucket{transport=\"smtp\",le=\"0.25\"} 1"));
	assert_true(has_line(
		&b, "hato_delivery_duration_seconds_bucket{transport=\"smtp\",le=\"0.5\"} 2"));
	assert_true(
		has_line(&b, "hato_delivery_duration_seconds_sum{transport=\"smtp\"} 0.500001"));
	assert_true(has_line(&b, "hato_delivery_duration_seconds_count{transport=\"smtp\"} 2"));
	assert_true(has_line(&b, "hato_delivery_duration_seconds_count{transport=\"lmtp\"} 0"));
	strbuf_free(&b);
	metrics_free();
}

#define THREADS 4
#define ADDS 100000

/* Thread body: count ADDS sessions and batch sizes. */
static void *count_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < ADDS; i++) {
		metrics_add(METRIC_SESSIONS, 0, 0, 1);
		metrics_observe(METRIC_COMMIT_BATCH, 0, 2);
	}
	return NULL;
}

/* Counts from several threads at once add up exactly. */
static void test_threads(void **state)
{
	const char *listeners[] = {"smtp"};
	pthread_t t[THREADS];
	struct strbuf b;
	char line[128];

	(void)state;
	metrics_init(listeners, 1);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, count_many, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	b = render();
	snprintf(line, sizeof(line), "hato_sessions_total{listener=\"smtp\"} %d", THREADS * ADDS);
	assert_true(has_line(&b, line));
	snprintf(line, sizeof(line), "hato_commit_batch_messages_sum %d", 2 * THREADS * ADDS);
	assert_true(has_line(&b, line));
	strbuf_free(&b);
	metrics_free();
}

static int collected;

/* A collector: sets the held gauge to how often it ran. */
static void collect(void *arg)
{
	(void)arg;
	metrics_set(METRIC_QUEUE_MESSAGES, METRICS_QUEUE_HELD, 0, ++collected);
}

/* Collectors run before every rendering, and not once removed. */
static void test_collectors(void **state)
{
	struct strbuf b;

	(void)state;
	metrics_init(NULL, 0);
	assert_true(metrics_collector_add(collect, &collected));
	b = render();
	assert_true(has_line(&b, "hato_queue_messages{state=\"held\"} 1"));
	strbuf_free(&b);
	metrics_collector_remove(collect, &collected);
	b = render();
	assert_true(has_line(&b, "hato_queue_messages{state=\"held\"} 1"));
	strbuf_free(&b);
	for (int i = 0; i < METRICS_COLLECTORS_MAX; i++)
		assert_true(metrics_collector_add(collect, &collected));
	assert_false(metrics_collector_add(collect, NULL));
	metrics_collector_remove(collect, &collected);
	metrics_free();
}

/* Parse a whole string. */
static enum http_parse parse(const char *s, struct http_request *req)
{
	return http_request_parse(s, strlen(s), req);
}

/* Well-formed heads: the method, the path without its query, the length. */
static void test_http_good(void **state)
{
	struct http_request req;
	const char *s = "GET /metrics?name=x HTTP/1.1\r\nHost: 127.0.0.1:9025\r\n"
			"Accept: text/plain;q=0.9, */*\r\nX-Empty:\r\n\r\nBODY";

	(void)state;
	assert_int_equal(parse(s, &req), HTTP_PARSE_OK);
	assert_string_equal(req.method, "GET");
	assert_string_equal(req.path, "/metrics");
	assert_int_equal(req.minor, 1);
	assert_int_equal(req.fields, 3);
	assert_int_equal(req.length, strlen(s) - 4);
	/* bare LF line ends, HTTP/1.0, an empty line before the request */
	assert_int_equal(parse("\r\nHEAD /metrics HTTP/1.0\n\n", &req), HTTP_PARSE_OK);
	assert_string_equal(req.method, "HEAD");
	assert_int_equal(req.minor, 0);
	assert_int_equal(parse("POST / HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_OK);
	assert_string_equal(req.path, "/");
}

/* Malformed heads are refused. */
static void test_http_bad(void **state)
{
	static const char *const bad[] = {
		"GET /metrics\r\n\r\n",                        /* HTTP/0.9 */
		"GET /metrics HTTP/2.0\r\n\r\n",               /* not HTTP/1.x */
		"GET /metrics HTTP/1.1 \r\n\r\n",              /* trailing space */
		"GET  /metrics HTTP/1.1\r\n\r\n",              /* two spaces */
		"GET /metrics HTTP/1.12\r\n\r\n",              /* version too long */
		" GET /metrics HTTP/1.1\r\n\r\n",              /* leading space */
		"G(T /metrics HTTP/1.1\r\n\r\n",               /* not a token */
		"VERYVERYLONGMETHOD / HTTP/1.1\r\n\r\n",       /* too long a method */
		"GET /me\x01trics HTTP/1.1\r\n\r\n",           /* control octet in the target */
		"GET /metrics HTTP/1.1\r\nNo-Colon\r\n\r\n",   /* a field without ':' */
		"GET /metrics HTTP/1.1\r\n: empty\r\n\r\n",    /* an empty name */
		"GET /metrics HTTP/1.1\r\nA b: c\r\n\r\n",     /* space in the name */
		"GET /metrics HTTP/1.1\r\nA: b\r\n c\r\n\r\n", /* folded */
		"GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n",    /* bare CR in a value */
		"GET /metrics HTTP/1.1\r\r\n\r\n",             /* CR CR LF */
		"\rGET /metrics HTTP/1.1\r\n\r\n",             /* a lone CR first */
	};
	struct http_request req;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &req) != HTTP_PARSE_BAD)
			fail_msg("accepted: %s", bad[i]);
	/* a NUL anywhere */
	assert_int_equal(http_request_parse("GET /\0 HTTP/1.1\r\n\r\n", 19, &req), HTTP_PARSE_BAD);
	assert_int_equal(http_request_parse("GET / HTTP/1.1\r\nA: \0\r\n\r\n", 24, &req),
			 HTTP_PARSE_BAD);
}

/* Every prefix of a good head is incomplete, never OK or BAD. */
static void test_http_prefixes(void **state)
{
	const char *s = "\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/7.88\r\n\r\n";
	struct http_request req;

	(void)state;
	for (size_t n = 0; n < strlen(s); n++)
		if (http_request_parse(s, n, &req) != HTTP_PARSE_INCOMPLETE)
			fail_msg("prefix of %zu octets is not incomplete", n);
	assert_int_equal(http_request_parse(s, strlen(s), &req), HTTP_PARSE_OK);
}

/* A long path is marked, never overflows; too many fields are refused. */
static void test_http_limits(void **state)
{
	char buf[8192];
	struct http_request req;
	int n;

	(void)state;
	n = snprintf(buf, sizeof(buf), "GET /%0*d HTTP/1.1\r\n\r\n", HTTP_PATH_MAX + 10, 0);
	assert_int_equal(http_request_parse(buf, (size_t)n, &req), HTTP_PARSE_OK);
	assert_true(req.path_too_long);
	assert_int_equal(strlen(req.path), HTTP_PATH_MAX - 1);
	n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= HTTP_FIELDS_MAX; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "A: b\r\n");
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\n");
	assert_int_equal(http_request_parse(buf, (size_t)n, &req), HTTP_PARSE_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_until_init), cmocka_unit_test(test_counters_and_gauges),
		cmocka_unit_test(test_sparse),         cmocka_unit_test(test_histograms),
		cmocka_unit_test(test_threads),        cmocka_unit_test(test_collectors),
		cmocka_unit_test(test_http_good),      cmocka_unit_test(test_http_bad),
		cmocka_unit_test(test_http_prefixes),  cmocka_unit_test(test_http_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
