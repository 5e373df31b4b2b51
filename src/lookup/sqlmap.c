/*
 * sqlmap.c - the [sql] lookup tables: asks, the answer cache, and the
 * lookup threads with their connections (see sqlmap.h).
 *
 * Ownership: the cache and every ask belong to the event loop; while an
 * ask's fetch runs, its questions belong to the one lookup thread running
 * it (the caller waits and does not touch the ask), and come back with
 * the job's done callback.  Connections live in a pool under a mutex: a
 * lookup thread takes one (or opens one) for a job and gives it back
 * unless it broke, so there are never more connections than threads.
 *
 * The cache is a chained hash table with its entries in insertion order:
 * every entry lives cache_ttl, so the oldest is also the first to expire,
 * and a full cache drops the oldest.
 */
#include "sqlmap.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "log.h"
#include "sql_driver.h"
#include "util.h"
#include "worker.h"

#define SQLMAP_BUCKETS_MIN 64
#define SQLMAP_KEY_MAX 600 /* "T:local@domain" */

struct cache_entry {
	struct cache_entry *next;          /* in its bucket */
	struct cache_entry *older, *newer; /* insertion order */
	uint64_t expires;
	bool found;
	struct sql_rows rows;
	char key[]; /* "T:key", lower case */
};

struct sqlmap {
	const struct sql_driver *drv;
	char *database;
	unsigned timeout;
	struct sql_query q[SQLMAP_TABLES];
	bool has[SQLMAP_TABLES];
	struct workers *workers;
	pthread_mutex_t lock; /* the pool of idle connections */
	struct sql_conn **idle;
	size_t nidle, maxidle;
	/* the cache: the loop's alone */
	struct cache_entry **buckets;
	size_t nbuckets, count, max;
	struct cache_entry *oldest, *newest;
	unsigned ttl;
};

struct ask_item {
	enum sqlmap_table t;
	char *key;            /* "T:local@domain" or "T:domain", lower case */
	char *local, *domain; /* lower case; local "" for a domain */
	enum sqlmap_answer a; /* SQLMAP_WAIT until answered */
	bool fetched;         /* answered by the fetch that just ended */
	struct sql_rows rows;
	char err[256];
};

struct sqlmap_ask {
	struct sqlmap *m;
	struct ask_item *items;
	size_t n;
	unsigned rounds;
	bool waiting; /* a question is noted */
	bool busy;    /* a fetch runs */
	void (*done)(void *arg);
	void *arg;
	char error[300];
};

static const char *const table_names[SQLMAP_TABLES] = {"domain", "mailbox", "alias", "sender"};

/* See sqlmap.h. */
const char *sqlmap_table_name(enum sqlmap_table t)
{
	return table_names[t];
}

/* Seconds on the monotonic clock. */
static uint64_t now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* FNV-1a of a key. */
static size_t key_hash(const char *k)
{
	uint64_t h = 1469598103934665603ull;

	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)h;
}

/* The query of table t as [sql] writes it, or NULL. */
static const char *conf_query(const struct conf *c, enum sqlmap_table t)
{
	switch (t) {
	case SQLMAP_DOMAIN:
		return c->sql_domain_query;
	case SQLMAP_MAILBOX:
		return c->sql_mailbox_query;
	case SQLMAP_ALIAS:
		return c->sql_alias_query;
	default:
		return c->sql_sender_query;
	}
}

/* See sqlmap.h. */
struct sqlmap *sqlmap_new(const struct conf *c, struct event_base *base, char *err, size_t errsz)
{
	struct sqlmap *m = xcalloc(1, sizeof(*m));
	char why[256];

	m->drv = c->sql_backend == SQL_BACKEND_PGSQL ? &sql_pgsql_driver : &sql_sqlite_driver;
	for (int t = 0; t < SQLMAP_TABLES; t++) {
		const char *text = conf_query(c, (enum sqlmap_table)t);

		if (text == NULL)
			continue;
		if (!sql_query_compile(text, m->drv->style, &m->q[t], why, sizeof(why))) {
			snprintf(err, errsz, "[sql] %s_query: %s", table_names[t], why);
			for (int u = 0; u < t; u++)
				sql_query_free(&m->q[u]);
			free(m);
			return NULL;
		}
		m->has[t] = true;
	}
	m->database = xstrdup(c->sql_database);
	m->timeout = c->sql_timeout;
	m->ttl = c->sql_cache_ttl;
	m->max = m->ttl > 0 ? c->sql_cache_size : 0;
	m->nbuckets = SQLMAP_BUCKETS_MIN;
	while (m->nbuckets < m->max && m->nbuckets < ((size_t)1 << 24))
		m->nbuckets <<= 1;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	pthread_mutex_init(&m->lock, NULL);
	m->maxidle = c->sql_connections;
	m->idle = xcalloc(m->maxidle, sizeof(*m->idle));
	m->workers = workers_new(base, c->sql_connections);
	return m;
}

/* Drop the cache's oldest entry. */
static void cache_drop_oldest(struct sqlmap *m)
{
	struct cache_entry *e = m->oldest, **pp;

	for (pp = &m->buckets[key_hash(e->key) & (m->nbuckets - 1)]; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	m->oldest = e->newer;
	if (m->oldest != NULL)
		m->oldest->older = NULL;
	else
		m->newest = NULL;
	sql_rows_free(&e->rows);
	free(e);
	m->count--;
}

/* The unexpired entry for key, or NULL; expired ones go first. */
static struct cache_entry *cache_get(struct sqlmap *m, const char *key)
{
	uint64_t now = now_sec();

	while (m->oldest != NULL && m->oldest->expires <= now)
		cache_drop_oldest(m);
	for (struct cache_entry *e = m->buckets[key_hash(key) & (m->nbuckets - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* Keep an answer for cache_ttl (a key kept already stays as it is: it
 * expires first). */
static void cache_put(struct sqlmap *m, const struct ask_item *it)
{
	struct cache_entry *e;
	size_t b, len = strlen(it->key);
	char err[64];

	if (m->max == 0 || cache_get(m, it->key) != NULL)
		return;
	while (m->count >= m->max)
		cache_drop_oldest(m);
	e = xcalloc(1, sizeof(*e) + len + 1);
	memcpy(e->key, it->key, len + 1);
	e->expires = now_sec() + m->ttl;
	e->found = it->a == SQLMAP_YES;
	for (size_t i = 0; i < it->rows.n; i++) /* fits: it->rows was made the same way */
		sql_rows_add(&e->rows, it->rows.v[i], strlen(it->rows.v[i]), err, sizeof(err));
	b = key_hash(e->key) & (m->nbuckets - 1);
	e->next = m->buckets[b];
	m->buckets[b] = e;
	e->older = m->newest;
	if (m->newest != NULL)
		m->newest->newer = e;
	else
		m->oldest = e;
	m->newest = e;
	m->count++;
}

/* See sqlmap.h. */
void sqlmap_free(struct sqlmap *m)
{
	if (m == NULL)
		return;
	workers_free(m->workers);
	for (size_t i = 0; i < m->nidle; i++)
		m->drv->close(m->idle[i]);
	free(m->idle);
	while (m->oldest != NULL)
		cache_drop_oldest(m);
	free(m->buckets);
	for (int t = 0; t < SQLMAP_TABLES; t++)
		sql_query_free(&m->q[t]);
	pthread_mutex_destroy(&m->lock);
	free(m->database);
	free(m);
}

/* See sqlmap.h. */
bool sqlmap_has(const struct sqlmap *m, enum sqlmap_table t)
{
	return m != NULL && m->has[t];
}

/* See sqlmap.h. */
struct sqlmap_ask *sqlmap_ask_new(struct sqlmap *m)
{
	struct sqlmap_ask *q = xcalloc(1, sizeof(*q));

	q->m = m;
	return q;
}

/* See sqlmap.h. */
void sqlmap_ask_free(struct sqlmap_ask *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->n; i++) {
		free(q->items[i].key);
		free(q->items[i].local);
		free(q->items[i].domain);
		sql_rows_free(&q->items[i].rows);
	}
	free(q->items);
	free(q);
}

/* A new question in q, answered a (SQLMAP_WAIT: noted). */
static struct ask_item *item_add(struct sqlmap_ask *q, enum sqlmap_table t, const char *key,
				 const char *local, const char *domain, enum sqlmap_answer a)
{
	struct ask_item *it;

	q->items = xrealloc(q->items, (q->n + 1) * sizeof(*q->items));
	it = &q->items[q->n++];
	memset(it, 0, sizeof(*it));
	it->t = t;
	it->key = xstrdup(key);
	it->local = xstrdup_lower(local);
	it->domain = xstrdup_lower(domain);
	it->a = a;
	return it;
}

/* An item's answer for sqlmap_get. */
static enum sqlmap_answer item_answer(const struct ask_item *it, const char *const **values,
				      size_t *n)
{
	if (values != NULL)
		*values = (const char *const *)it->rows.v;
	if (n != NULL)
		*n = it->rows.n;
	return it->a;
}

/* See sqlmap.h. */
enum sqlmap_answer sqlmap_get(struct sqlmap_ask *q, enum sqlmap_table t, const char *local,
			      const char *domain, const char *const **values, size_t *n)
{
	char raw[SQLMAP_KEY_MAX], *key;
	struct cache_entry *e;
	struct ask_item *it;
	enum sqlmap_answer a;

	if (values != NULL)
		*values = NULL;
	if (n != NULL)
		*n = 0;
	if (q == NULL || !sqlmap_has(q->m, t))
		return SQLMAP_NO;
	if (local == NULL || t == SQLMAP_DOMAIN)
		local = "";
	if (!xsnprintf_ok(raw, sizeof(raw), "%d:%s%s%s", (int)t, local, *local ? "@" : "", domain))
		return SQLMAP_NO; /* longer than any address: nothing can be there */
	key = xstrdup_lower(raw);
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->items[i].key, key) == 0) {
			free(key);
			return item_answer(&q->items[i], values, n);
		}
	if ((e = cache_get(q->m, key)) != NULL) {
		char err[64];

		it = item_add(q, t, key, local, domain, e->found ? SQLMAP_YES : SQLMAP_NO);
		for (size_t i = 0; i < e->rows.n; i++)
			sql_rows_add(&it->rows, e->rows.v[i], strlen(e->rows.v[i]), err,
				     sizeof(err));
		free(key);
		return item_answer(it, values, n);
	}
	a = SQLMAP_WAIT;
	if (q->n >= SQLMAP_ASK_MAX) {
		a = SQLMAP_FAIL;
		if (q->error[0] == '\0')
			snprintf(q->error, sizeof(q->error),
				 "more than %d lookups for one decision", SQLMAP_ASK_MAX);
	}
	it = item_add(q, t, key, local, domain, a);
	free(key);
	if (a == SQLMAP_WAIT)
		q->waiting = true;
	return item_answer(it, values, n);
}

/* See sqlmap.h. */
bool sqlmap_ask_waiting(const struct sqlmap_ask *q)
{
	return q != NULL && q->waiting;
}

/* See sqlmap.h. */
const char *sqlmap_ask_error(const struct sqlmap_ask *q)
{
	return q != NULL ? q->error : "";
}

/* Lookup thread: an idle connection, or a new one (*fresh); NULL with err. */
static struct sql_conn *pool_take(struct sqlmap *m, bool *fresh, char *err, size_t errsz)
{
	struct sql_conn *c = NULL;

	pthread_mutex_lock(&m->lock);
	if (m->nidle > 0)
		c = m->idle[--m->nidle];
	pthread_mutex_unlock(&m->lock);
	*fresh = c == NULL;
	return c != NULL ? c : m->drv->open(m->database, m->timeout, err, errsz);
}

/* Lookup thread: give a connection back, or close it when it broke. */
static void pool_give(struct sqlmap *m, struct sql_conn *c)
{
	if (c == NULL)
		return;
	if (m->drv->ok(c)) {
		pthread_mutex_lock(&m->lock);
		if (m->nidle < m->maxidle) {
			m->idle[m->nidle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&m->lock);
	}
	if (c != NULL)
		m->drv->close(c);
}

/* Lookup thread: run one question on *conn.  A kept connection that
 * turns out broken (the server restarted) is replaced once by a new one,
 * and the question asked again. */
static void run_item(struct sqlmap *m, struct sql_conn **conn, bool *fresh, struct ask_item *it)
{
	const char *values[SQL_PARAMS_MAX];
	const struct sql_query *q = &m->q[it->t];
	char addr[SQLMAP_KEY_MAX];

	snprintf(addr, sizeof(addr), "%s%s%s", it->local, *it->local ? "@" : "", it->domain);
	for (size_t i = 0; i < q->nparams; i++)
		values[i] = q->params[i] == SQL_PARAM_ADDRESS ? addr
			    : q->params[i] == SQL_PARAM_LOCAL ? it->local
							      : it->domain;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (*conn == NULL) {
			*conn = pool_take(m, fresh, it->err, sizeof(it->err));
			if (*conn == NULL)
				break;
		}
		sql_rows_free(&it->rows);
		if (m->drv->run(*conn, (unsigned)it->t, q, values, m->timeout, &it->rows, it->err,
				sizeof(it->err))) {
			it->a = it->rows.n > 0 ? SQLMAP_YES : SQLMAP_NO;
			it->err[0] = '\0';
			return;
		}
		if (m->drv->ok(*conn))
			break; /* the query itself failed: asking again will not help */
		m->drv->close(*conn);
		*conn = NULL;
		if (*fresh)
			break; /* a new connection failed: the database is in trouble */
	}
	sql_rows_free(&it->rows);
	it->a = SQLMAP_FAIL;
}

/* Lookup thread: answer every noted question of the ask. */
static void fetch_work(void *arg)
{
	struct sqlmap_ask *q = arg;
	struct sql_conn *conn = NULL;
	bool fresh = false;
	const char *failed = NULL;

	for (size_t i = 0; i < q->n; i++) {
		struct ask_item *it = &q->items[i];

		if (it->a != SQLMAP_WAIT)
			continue;
		it->fetched = true;
		if (failed != NULL) { /* the database is down: do not knock again */
			strcpy_bounded(it->err, failed, sizeof(it->err));
			it->a = SQLMAP_FAIL;
			continue;
		}
		run_item(q->m, &conn, &fresh, it);
		if (it->a == SQLMAP_FAIL && conn == NULL)
			failed = it->err;
	}
	pool_give(q->m, conn);
}

/* Loop: the fetch is done: keep the answers, log the failures, go on. */
static void fetch_done(void *arg)
{
	struct sqlmap_ask *q = arg;

	q->busy = false;
	for (size_t i = 0; i < q->n; i++) {
		struct ask_item *it = &q->items[i];
		char key[SQLMAP_KEY_MAX * 4], why[sizeof(it->err) * 4];

		if (!it->fetched)
			continue;
		it->fetched = false;
		if (it->a != SQLMAP_FAIL) {
			cache_put(q->m, it);
			continue;
		}
		escape_text(it->key + 2, strlen(it->key + 2), key, sizeof(key));
		escape_text(it->err, strlen(it->err), why, sizeof(why));
		log_warnx("event=sql_failed backend=%s table=%s key=\"%s\" error=\"%s\"",
			  q->m->drv->name, table_names[it->t], key, why);
		if (q->error[0] == '\0')
			snprintf(q->error, sizeof(q->error), "%s lookup failed: %s",
				 table_names[it->t], it->err);
	}
	q->done(q->arg);
}

/* See sqlmap.h. */
bool sqlmap_fetch(struct sqlmap_ask *q, void (*done)(void *arg), void *arg)
{
	if (q == NULL || !q->waiting || q->busy)
		return false;
	q->waiting = false;
	if (q->rounds >= SQLMAP_ROUNDS_MAX) {
		for (size_t i = 0; i < q->n; i++)
			if (q->items[i].a == SQLMAP_WAIT)
				q->items[i].a = SQLMAP_FAIL;
		if (q->error[0] == '\0')
			snprintf(q->error, sizeof(q->error), "more than %d rounds of lookups",
				 SQLMAP_ROUNDS_MAX);
		return false;
	}
	q->rounds++;
	q->busy = true;
	q->done = done;
	q->arg = arg;
	workers_submit(q->m->workers, fetch_work, fetch_done, q);
	return true;
}

/* See sql_driver.h. */
bool sql_rows_add(struct sql_rows *rows, const char *v, size_t n, char *err, size_t errsz)
{
	if (rows->n >= SQL_ROWS_MAX) {
		snprintf(err, errsz, "more than %d rows", SQL_ROWS_MAX);
		return false;
	}
	if (n > SQL_VALUE_MAX || memchr(v, '\0', n) != NULL) {
		snprintf(err, errsz, "an answer longer than %d octets, or with a NUL",
			 SQL_VALUE_MAX);
		return false;
	}
	rows->v = xrealloc(rows->v, (rows->n + 1) * sizeof(*rows->v));
	rows->v[rows->n++] = xstrndup(v, n);
	return true;
}

/* See sql_driver.h. */
void sql_rows_free(struct sql_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++)
		free(rows->v[i]);
	free(rows->v);
	rows->v = NULL;
	rows->n = 0;
}
