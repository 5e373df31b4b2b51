/*
 * metrics.h - hato's named metrics: counters, gauges and histograms,
 * declared once in metrics.c's table, counted from any thread, and written
 * in the Prometheus text exposition format (version 0.0.4) for the
 * /metrics endpoint (metrics_http.h).  docs/metrics.md lists them.
 *
 * A module counts with metrics_add / metrics_observe, naming the metric
 * and the index of each of its label values (the enums below, enum status,
 * enum outcome, a listener's index in the configuration).  Each is one or
 * two relaxed atomic adds: no lock, no allocation, nothing that makes the
 * receive path slower.  Before metrics_init (metrics off, unit tests, the
 * hato command) and for an index out of range, counting does nothing.
 *
 * Gauges that are a state of the loop (the queue by state) are not kept
 * up to date: their owner registers a collector, which sets them right
 * before each rendering.
 *
 * Threads: metrics_init and metrics_free at start and end, while no other
 * thread counts; metrics_add, metrics_set and metrics_observe from any
 * thread; collectors and metrics_render on the event loop.
 */
#ifndef HATO_METRICS_H
#define HATO_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf;

/* Every metric hato exports; its labels in brackets. */
enum metric {
	METRIC_SESSIONS_OPEN, /* gauge {listener} */
	METRIC_SESSIONS,      /* counter {listener} */
	METRIC_SMTP_REFUSED,  /* counter {command, reason}: MAIL/RCPT/DATA/BDAT answered 4xx/5xx */
	METRIC_MESSAGES_ACCEPTED, /* counter {source}: committed to the queue */
	METRIC_MESSAGES_REFUSED,  /* counter {source, reason}: refused at the end of the message */
	METRIC_QUEUE_MESSAGES,    /* gauge {state} */
	METRIC_DELIVERIES,        /* counter {transport, outcome}: one per recipient and attempt */
	METRIC_DELIVERY_SECONDS,  /* histogram {transport}: one delivery transaction */
	METRIC_DELIVERY_DELAY,    /* histogram {transport}: arrival to delivery, per recipient */
	METRIC_COMMIT_BATCH,      /* histogram: messages made durable by one group commit */
	METRIC_COMMIT_SECONDS,    /* histogram: one group commit */
	METRIC_TLS_HANDSHAKES,    /* counter {listener}: server side, completed */
	METRIC_TLS_FAILURES,      /* counter {listener}: server side, failed or timed out */
	METRIC_AUTH_SUCCESSES,    /* counter {listener} */
	METRIC_AUTH_FAILURES,     /* counter {listener}: wrong credentials (535) */
	METRIC_COUNT
};

/* Values of the command label (METRIC_SMTP_REFUSED). */
enum metrics_command {
	METRICS_COMMAND_MAIL,
	METRICS_COMMAND_RCPT,
	METRICS_COMMAND_DATA,
	METRICS_COMMAND_BDAT,
	METRICS_COMMAND_COUNT
};

/* Values of the source label: how a message came in. */
enum metrics_source { METRICS_SOURCE_SMTP, METRICS_SOURCE_PICKUP, METRICS_SOURCE_COUNT };

/* Values of the state label (METRIC_QUEUE_MESSAGES). */
enum metrics_queue_state {
	METRICS_QUEUE_PENDING,  /* waiting for its first attempt, or being delivered */
	METRICS_QUEUE_DEFERRED, /* an attempt failed for now: waiting for a retry */
	METRICS_QUEUE_HELD,     /* held (hato queue hold, a quarantine) */
	METRICS_QUEUE_COUNT
};

/* Values of the transport label. */
enum metrics_transport {
	METRICS_TRANSPORT_MAILDIR,
	METRICS_TRANSPORT_LMTP,
	METRICS_TRANSPORT_SMTP,
	METRICS_TRANSPORT_COUNT
};

/* Histogram observations of durations are given in microseconds. */
#define METRICS_USEC 1000000

/* Microseconds on the monotonic clock: the start and end of a duration. */
uint64_t metrics_clock_usec(void);

/*
 * Start counting.  listeners[0..n) name the values of the listener label
 * (copied), in the order of the configuration's listeners.  Once only.
 */
void metrics_init(const char *const *listeners, size_t nlisteners);
/* Stop counting and release everything (no thread may count any more). */
void metrics_free(void);

/* Add delta to a counter (delta >= 0) or a gauge; a and b index its
 * labels' values (0 for a label it does not have). */
void metrics_add(enum metric m, size_t a, size_t b, int64_t delta);
/* Set a gauge. */
void metrics_set(enum metric m, size_t a, size_t b, int64_t value);
/* Add an observation to a histogram (its unit: METRICS_USEC for seconds). */
void metrics_observe(enum metric m, size_t a, uint64_t value);

/* A collector sets its gauges right before each rendering (on the loop). */
typedef void (*metrics_collect_fn)(void *arg);
/* Register one; false when METRICS_COLLECTORS_MAX are registered. */
#define METRICS_COLLECTORS_MAX 8
bool metrics_collector_add(metrics_collect_fn fn, void *arg);
/* Remove the collector fn, arg (no-op when it is not registered). */
void metrics_collector_remove(metrics_collect_fn fn, void *arg);

/* Append every metric, in the text exposition format, to out (on the loop). */
void metrics_render(struct strbuf *out);

#endif
