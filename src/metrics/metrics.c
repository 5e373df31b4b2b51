/*
 * metrics.c - the table of hato's metrics, their atomic cells, and their
 * text in the Prometheus exposition format.
 *
 * Each metric has at most two labels, each with a fixed list of values
 * known at start (listener names come from the configuration), so its
 * series are a dense array of cells allocated once by metrics_init: a
 * counter or gauge has one cell per series; a histogram has one per
 * bucket (not cumulative: the rendering adds them up, so the buckets it
 * writes never decrease) plus one for the sum.  Cells are relaxed
 * atomics: a rendering running while threads count may see one series a
 * little ahead of another, as any scrape of a live process does.
 *
 * Metrics whose labels have many values (a reason: every enum status) are
 * sparse: only their series that moved are written.
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outcome.h"
#include "status.h"
#include "strbuf.h"
#include "util.h"

enum metric_type { TYPE_COUNTER, TYPE_GAUGE, TYPE_HISTOGRAM };

/* The labels a metric may have. */
enum label {
	LABEL_NONE,
	LABEL_LISTENER,
	LABEL_COMMAND,
	LABEL_REASON,
	LABEL_SOURCE,
	LABEL_STATE,
	LABEL_TRANSPORT,
	LABEL_OUTCOME,
};

static const char *const command_names[METRICS_COMMAND_COUNT] = {"mail", "rcpt", "data", "bdat"};
static const char *const source_names[METRICS_SOURCE_COUNT] = {"smtp", "pickup"};
static const char *const state_names[METRICS_QUEUE_COUNT] = {"pending", "deferred", "held"};
static const char *const transport_names[METRICS_TRANSPORT_COUNT] = {"maildir", "lmtp", "smtp"};
/* by enum outcome: the words of the issue, not outcome_name()'s log words */
static const char *const outcome_names[] = {
	[OUTCOME_DELIVERED] = "delivered",
	[OUTCOME_TEMPFAIL] = "tempfail",
	[OUTCOME_PERMFAIL] = "permfail",
};
#define NOUTCOMES (sizeof(outcome_names) / sizeof(outcome_names[0]))

/* Bucket bounds (microseconds) of one delivery transaction. */
static const uint64_t delivery_bounds[] = {1000,    5000,     10000,    25000,    50000,
					   100000,  250000,   500000,   1000000,  2500000,
					   5000000, 10000000, 30000000, 60000000, 300000000};
/* Arrival to delivery (microseconds; the arrival time is in whole seconds). */
static const uint64_t delay_bounds[] = {
	1000000ull,   5000000ull,    30000000ull,    60000000ull,    300000000ull,
	900000000ull, 3600000000ull, 14400000000ull, 86400000000ull, 432000000000ull};
/* One group commit (microseconds). */
static const uint64_t commit_bounds[] = {100,   250,   500,   1000,   2500,   5000,
					 10000, 25000, 50000, 100000, 250000, 1000000};
/* Messages per group commit. */
static const uint64_t batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

#define BOUNDS(b) b, sizeof(b) / sizeof(b[0])

static const struct metric_def {
	const char *name; /* without _total: the rendering adds it to counters */
	const char *help;
	enum metric_type type;
	enum label a, b;
	bool sparse;            /* write only the series that moved */
	const uint64_t *bounds; /* histograms: upper bounds, increasing */
	size_t nbounds;         /* (+Inf is one more bucket) */
	unsigned scale;         /* histograms: observations per unit written */
} metric_table[METRIC_COUNT] = {
	[METRIC_SESSIONS_OPEN] = {"hato_sessions_open", "SMTP sessions open now.", TYPE_GAUGE,
				  LABEL_LISTENER, LABEL_NONE},
	[METRIC_SESSIONS] = {"hato_sessions", "SMTP sessions accepted.", TYPE_COUNTER,
			     LABEL_LISTENER, LABEL_NONE},
	[METRIC_SMTP_REFUSED] = {"hato_smtp_refused",
				 "MAIL, RCPT, DATA and BDAT commands refused with 4xx or 5xx, by "
				 "the reply's status name.",
				 TYPE_COUNTER, LABEL_COMMAND, LABEL_REASON, true},
	[METRIC_MESSAGES_ACCEPTED] = {"hato_messages_accepted", "Messages committed to the queue.",
				      TYPE_COUNTER, LABEL_SOURCE, LABEL_NONE},
	[METRIC_MESSAGES_REFUSED] = {"hato_messages_refused",
				     "Messages refused at their end (limits, content, the disk), "
				     "by the reply's status name.",
				     TYPE_COUNTER, LABEL_SOURCE, LABEL_REASON, true},
	[METRIC_QUEUE_MESSAGES] = {"hato_queue_messages", "Messages in the queue, by state.",
				   TYPE_GAUGE, LABEL_STATE, LABEL_NONE},
	[METRIC_DELIVERIES] = {"hato_deliveries",
			       "Delivery attempts, one per recipient, by transport and outcome.",
			       TYPE_COUNTER, LABEL_TRANSPORT, LABEL_OUTCOME},
	[METRIC_DELIVERY_SECONDS] = {"hato_delivery_duration_seconds",
				     "Time one delivery transaction took (a Maildir file, an LMTP "
				     "or SMTP transaction).",
				     TYPE_HISTOGRAM, LABEL_TRANSPORT, LABEL_NONE, false,
				     BOUNDS(delivery_bounds), METRICS_USEC},
	[METRIC_DELIVERY_DELAY] = {"hato_delivery_delay_seconds",
				   "Time from a message's arrival to its delivery, per delivered "
				   "recipient.",
				   TYPE_HISTOGRAM, LABEL_TRANSPORT, LABEL_NONE, false,
				   BOUNDS(delay_bounds), METRICS_USEC},
	[METRIC_COMMIT_BATCH] = {"hato_commit_batch_messages",
				 "Messages made durable together by one group commit.",
				 TYPE_HISTOGRAM, LABEL_NONE, LABEL_NONE, false,
				 BOUNDS(batch_bounds), 1},
	[METRIC_COMMIT_SECONDS] = {"hato_commit_duration_seconds",
				   "Time one group commit took (writes, fsyncs, renames).",
				   TYPE_HISTOGRAM, LABEL_NONE, LABEL_NONE, false,
				   BOUNDS(commit_bounds), METRICS_USEC},
	[METRIC_TLS_HANDSHAKES] = {"hato_tls_handshakes",
				   "TLS handshakes completed by the server (STARTTLS or implicit).",
				   TYPE_COUNTER, LABEL_LISTENER, LABEL_NONE},
	[METRIC_TLS_FAILURES] = {"hato_tls_handshake_failures",
				 "TLS handshakes that failed or timed out on the server side.",
				 TYPE_COUNTER, LABEL_LISTENER, LABEL_NONE},
	[METRIC_AUTH_SUCCESSES] = {"hato_auth_successes", "SMTP AUTH exchanges that succeeded.",
				   TYPE_COUNTER, LABEL_LISTENER, LABEL_NONE},
	[METRIC_AUTH_FAILURES] = {"hato_auth_failures",
				  "SMTP AUTH exchanges refused for wrong credentials (535).",
				  TYPE_COUNTER, LABEL_LISTENER, LABEL_NONE},
};

/* The cells: NULL until metrics_init. */
static _Atomic int64_t *cells[METRIC_COUNT];
static char **listener_names;
static size_t nlistener_names;

static struct collector {
	metrics_collect_fn fn;
	void *arg;
} collectors[METRICS_COLLECTORS_MAX];

/* The label's name in the exposition ("" for none). */
static const char *label_name(enum label l)
{
	static const char *const names[] = {
		[LABEL_NONE] = "",
		[LABEL_LISTENER] = "listener",
		[LABEL_COMMAND] = "command",
		[LABEL_REASON] = "reason",
		[LABEL_SOURCE] = "source",
		[LABEL_STATE] = "state",
		[LABEL_TRANSPORT] = "transport",
		[LABEL_OUTCOME] = "outcome",
	};
	return names[l];
}

/* How many values the label has (1 for none: one series). */
static size_t label_count(enum label l)
{
	switch (l) {
	case LABEL_LISTENER:
		return nlistener_names;
	case LABEL_COMMAND:
		return METRICS_COMMAND_COUNT;
	case LABEL_REASON:
		return STATUS_COUNT;
	case LABEL_SOURCE:
		return METRICS_SOURCE_COUNT;
	case LABEL_STATE:
		return METRICS_QUEUE_COUNT;
	case LABEL_TRANSPORT:
		return METRICS_TRANSPORT_COUNT;
	case LABEL_OUTCOME:
		return NOUTCOMES;
	case LABEL_NONE:
	default:
		return 1;
	}
}

/* The label's i-th value. */
static const char *label_value(enum label l, size_t i)
{
	switch (l) {
	case LABEL_LISTENER:
		return listener_names[i];
	case LABEL_COMMAND:
		return command_names[i];
	case LABEL_REASON:
		return status_name((enum status)i);
	case LABEL_SOURCE:
		return source_names[i];
	case LABEL_STATE:
		return state_names[i];
	case LABEL_TRANSPORT:
		return transport_names[i];
	case LABEL_OUTCOME:
		return outcome_names[i];
	case LABEL_NONE:
	default:
		return "";
	}
}

/* Cells per series: one, or a histogram's buckets (+Inf included) and its sum. */
static size_t series_cells(const struct metric_def *d)
{
	return d->type == TYPE_HISTOGRAM ? d->nbounds + 2 : 1;
}

/* See metrics.h. */
void metrics_init(const char *const *listeners, size_t nlisteners)
{
	listener_names = xcalloc(nlisteners + 1, sizeof(char *));
	for (size_t i = 0; i < nlisteners; i++)
		listener_names[i] = xstrdup(listeners[i]);
	nlistener_names = nlisteners;
	for (size_t m = 0; m < METRIC_COUNT; m++) {
		const struct metric_def *d = &metric_table[m];
		size_t n = label_count(d->a) * label_count(d->b) * series_cells(d);

		cells[m] = xcalloc(n ? n : 1, sizeof(_Atomic int64_t));
		for (size_t i = 0; i < n; i++)
			atomic_init(&cells[m][i], 0);
	}
}

/* See metrics.h. */
void metrics_free(void)
{
	for (size_t m = 0; m < METRIC_COUNT; m++) {
		free((void *)cells[m]);
		cells[m] = NULL;
	}
	for (size_t i = 0; i < nlistener_names; i++)
		free(listener_names[i]);
	free(listener_names);
	listener_names = NULL;
	nlistener_names = 0;
}

/* The first cell of series (a, b) of m, NULL when not counting or out of range. */
static _Atomic int64_t *series(enum metric m, size_t a, size_t b)
{
	const struct metric_def *d;

	if ((unsigned)m >= METRIC_COUNT || cells[m] == NULL)
		return NULL;
	d = &metric_table[m];
	if (a >= label_count(d->a) || b >= label_count(d->b))
		return NULL;
	return &cells[m][(a * label_count(d->b) + b) * series_cells(d)];
}

/* See metrics.h. */
void metrics_add(enum metric m, size_t a, size_t b, int64_t delta)
{
	_Atomic int64_t *c = series(m, a, b);

	if (c != NULL && metric_table[m].type != TYPE_HISTOGRAM)
		atomic_fetch_add_explicit(c, delta, memory_order_relaxed);
}

/* See metrics.h. */
void metrics_set(enum metric m, size_t a, size_t b, int64_t value)
{
	_Atomic int64_t *c = series(m, a, b);

	if (c != NULL && metric_table[m].type == TYPE_GAUGE)
		atomic_store_explicit(c, value, memory_order_relaxed);
}

/* See metrics.h. */
void metrics_observe(enum metric m, size_t a, uint64_t value)
{
	_Atomic int64_t *c = series(m, a, 0);
	const struct metric_def *d;
	size_t i = 0;

	if (c == NULL || metric_table[m].type != TYPE_HISTOGRAM)
		return;
	d = &metric_table[m];
	while (i < d->nbounds && value > d->bounds[i])
		i++;
	atomic_fetch_add_explicit(&c[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c[d->nbounds + 1], (int64_t)value, memory_order_relaxed);
}

/* See metrics.h. */
uint64_t metrics_clock_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * METRICS_USEC + (uint64_t)ts.tv_nsec / 1000;
}

/* See metrics.h. */
bool metrics_collector_add(metrics_collect_fn fn, void *arg)
{
	for (size_t i = 0; i < METRICS_COLLECTORS_MAX; i++)
		if (collectors[i].fn == NULL) {
			collectors[i].fn = fn;
			collectors[i].arg = arg;
			return true;
		}
	return false;
}

/* See metrics.h. */
void metrics_collector_remove(metrics_collect_fn fn, void *arg)
{
	for (size_t i = 0; i < METRICS_COLLECTORS_MAX; i++)
		if (collectors[i].fn == fn && collectors[i].arg == arg) {
			collectors[i].fn = NULL;
			collectors[i].arg = NULL;
		}
}

/* A label value with \, " and newline escaped (the exposition format's rule). */
static void add_escaped(struct strbuf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			strbuf_adds(out, "\\\\");
		else if (*v == '"')
			strbuf_adds(out, "\\\"");
		else if (*v == '\n')
			strbuf_adds(out, "\\n");
		else
			strbuf_add(out, v, 1);
	}
}

/* "{a="x",b="y"" of series (a, b), without the closing brace; "" with no label. */
static void add_labels(struct strbuf *out, const struct metric_def *d, size_t a, size_t b)
{
	const enum label l[2] = {d->a, d->b};
	const size_t v[2] = {a, b};
	bool first = true;

	for (size_t k = 0; k < 2; k++) {
		if (l[k] == LABEL_NONE)
			continue;
		strbuf_adds(out, first ? "{" : ",");
		strbuf_printf(out, "%s=\"", label_name(l[k]));
		add_escaped(out, label_value(l[k], v[k]));
		strbuf_adds(out, "\"");
		first = false;
	}
}

/* A value in a histogram's unit: "0.25" for 250000 microseconds. */
static void add_scaled(struct strbuf *out, const struct metric_def *d, uint64_t v)
{
	if (d->scale <= 1)
		strbuf_printf(out, "%llu", (unsigned long long)v);
	else
		strbuf_printf(out, "%.6g", (double)v / d->scale);
}

/* One line "NAME{LABELS,extra} VALUE" of series (a, b). */
static void add_sample(struct strbuf *out, const struct metric_def *d, const char *suffix, size_t a,
		       size_t b, const char *le, int64_t v)
{
	bool labels = d->a != LABEL_NONE || d->b != LABEL_NONE;

	strbuf_printf(out, "%s%s", d->name, suffix);
	add_labels(out, d, a, b);
	if (le != NULL)
		strbuf_printf(out, "%sle=\"%s\"", labels ? "," : "{", le);
	if (labels || le != NULL)
		strbuf_adds(out, "}");
	strbuf_printf(out, " %lld\n", (long long)v);
}

/* The buckets, sum and count of one histogram series. */
static void render_histogram(struct strbuf *out, const struct metric_def *d, size_t a,
			     _Atomic int64_t *c)
{
	int64_t cum = 0;
	char le[32];

	for (size_t i = 0; i <= d->nbounds; i++) {
		cum += atomic_load_explicit(&c[i], memory_order_relaxed);
		if (i < d->nbounds) {
			if (d->scale <= 1)
				snprintf(le, sizeof(le), "%llu", (unsigned long long)d->bounds[i]);
			else
				snprintf(le, sizeof(le), "%.6g", (double)d->bounds[i] / d->scale);
		} else {
			strcpy(le, "+Inf");
		}
		add_sample(out, d, "_bucket", a, 0, le, cum);
	}
	strbuf_printf(out, "%s_sum", d->name);
	add_labels(out, d, a, 0);
	strbuf_adds(out, d->a != LABEL_NONE ? "} " : " ");
	add_scaled(out, d,
		   (uint64_t)atomic_load_explicit(&c[d->nbounds + 1], memory_order_relaxed));
	strbuf_adds(out, "\n");
	add_sample(out, d, "_count", a, 0, NULL, cum);
}

/* HELP, TYPE and every series of metric m. */
static void render_metric(struct strbuf *out, enum metric m)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	const struct metric_def *d = &metric_table[m];
	const char *suffix = d->type == TYPE_COUNTER ? "_total" : "";
	size_t na = label_count(d->a), nb = label_count(d->b), per = series_cells(d);

	strbuf_printf(out, "# HELP %s%s %s\n# TYPE %s%s %s\n", d->name, suffix, d->help, d->name,
		      suffix, types[d->type]);
	for (size_t a = 0; a < na; a++)
		for (size_t b = 0; b < nb; b++) {
			_Atomic int64_t *c = &cells[m][(a * nb + b) * per];
			int64_t v = atomic_load_explicit(c, memory_order_relaxed);

			if (d->type == TYPE_HISTOGRAM)
				render_histogram(out, d, a, c);
			else if (!d->sparse || v != 0)
				add_sample(out, d, suffix, a, b, NULL, v);
		}
}

/* See metrics.h. */
void metrics_render(struct strbuf *out)
{
	for (size_t i = 0; i < METRICS_COLLECTORS_MAX; i++)
		if (collectors[i].fn != NULL)
			collectors[i].fn(collectors[i].arg);
	for (size_t m = 0; m < METRIC_COUNT; m++)
		if (cells[m] != NULL)
			render_metric(out, (enum metric)m);
}
