/*
 * test_sqlmap.c - unit tests for src/lookup/sqlmap.c against a real SQLite
 * file and a real event loop: a question is noted (SQLMAP_WAIT) and
 * answered by a fetch on the lookup threads, later on the loop; answers
 * are cached (a new ask gets them at once) for cache_ttl and no longer;
 * alias rows come back as written; a database that cannot be opened is
 * SQLMAP_FAIL, never "no", and is not cached; the rounds of one decision
 * are bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "sqlmap.h"

static char dir[64], dbpath[128];

/* A fresh SQLite file with a domain, a mailbox and an alias. */
static int setup(void **state)
{
	sqlite3 *db;

	(void)state;
	strcpy(dir, "/tmp/hato-sqlmap-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(dbpath, sizeof(dbpath), "%s/mail.sqlite", dir);
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(
			db,
			"CREATE TABLE domain (domain TEXT);"
			"CREATE TABLE mailbox (username TEXT);"
			"CREATE TABLE alias (address TEXT, goto TEXT);"
			"INSERT INTO domain VALUES ('sql.example');"
			"INSERT INTO mailbox VALUES ('alice@sql.example');"
			"INSERT INTO alias VALUES ('info@sql.example', 'a@x.example,b@y.example');"
			"INSERT INTO alias VALUES ('info@sql.example', 'c@z.example');",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(dbpath);
	rmdir(dir);
	return 0;
}

/* A config with the SQLite tables at path, answers kept ttl. */
static struct conf *load(const char *path, const char *ttl)
{
	char text[2048], file[160], err[512];
	FILE *f;
	struct conf *c;

	snprintf(file, sizeof(file), "%s/hato.conf", dir);
	snprintf(text, sizeof(text),
		 "[listener smtp]\naddress = 127.0.0.1:2525\n[sql]\nbackend = sqlite\n"
		 "database = %s\ncache_ttl = %s\ntimeout = 1s\nconnections = 2\n"
		 "domain_query = SELECT 1 FROM domain WHERE domain = %%d\n"
		 "mailbox_query = SELECT 1 FROM mailbox WHERE username = %%s\n"
		 "alias_query = SELECT goto FROM alias WHERE address = %%u || '@' || %%d "
		 "ORDER BY goto\n",
		 path, ttl);
	f = fopen(file, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	c = conf_load(file, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	unlink(file);
	return c;
}

static int dones;

/* The fetch is back: stop the loop. */
static void done_cb(void *arg)
{
	dones++;
	event_base_loopbreak(arg);
}

/* Fetch q's noted questions and run the loop until they are answered. */
static void fetch(struct event_base *base, struct sqlmap_ask *q)
{
	int before = dones;

	assert_true(sqlmap_ask_waiting(q));
	assert_true(sqlmap_fetch(q, done_cb, base));
	assert_int_equal(dones, before); /* never inside the call */
	event_base_dispatch(base);
	assert_int_equal(dones, before + 1);
	assert_false(sqlmap_ask_waiting(q));
}

static void test_wait_fetch_answer_and_cache(void **state)
{
	struct event_base *base = event_base_new();
	struct conf *c = load(dbpath, "30s");
	char err[256];
	struct sqlmap *m = sqlmap_new(c, base, err, sizeof(err));
	struct sqlmap_ask *q = sqlmap_ask_new(m);
	const char *const *v;
	size_t n;

	(void)state;
	assert_non_null(m);
	assert_true(sqlmap_has(m, SQLMAP_ALIAS));
	assert_false(sqlmap_has(m, SQLMAP_SENDER));
	assert_int_equal(sqlmap_get(q, SQLMAP_SENDER, "a", "b", &v, &n), SQLMAP_NO);
	assert_int_equal(sqlmap_get(q, SQLMAP_DOMAIN, NULL, "SQL.example", NULL, NULL),
			 SQLMAP_WAIT);
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "Alice", "sql.example", NULL, NULL),
			 SQLMAP_WAIT);
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "bob", "sql.example", NULL, NULL),
			 SQLMAP_WAIT);
	assert_int_equal(sqlmap_get(q, SQLMAP_ALIAS, "info", "sql.example", &v, &n), SQLMAP_WAIT);
	fetch(base, q);
	assert_int_equal(sqlmap_get(q, SQLMAP_DOMAIN, NULL, "sql.example", NULL, NULL), SQLMAP_YES);
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "alice", "sql.example", NULL, NULL),
			 SQLMAP_YES);
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "bob", "sql.example", NULL, NULL),
			 SQLMAP_NO);
	assert_int_equal(sqlmap_get(q, SQLMAP_ALIAS, "info", "sql.example", &v, &n), SQLMAP_YES);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "a@x.example,b@y.example");
	assert_string_equal(v[1], "c@z.example");
	sqlmap_ask_free(q);
	/* a new decision: the answers (yes and no alike) come from the cache */
	q = sqlmap_ask_new(m);
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "ALICE", "sql.example", NULL, NULL),
			 SQLMAP_YES);
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "bob", "sql.example", NULL, NULL),
			 SQLMAP_NO);
	assert_int_equal(sqlmap_get(q, SQLMAP_ALIAS, "info", "sql.example", &v, &n), SQLMAP_YES);
	assert_int_equal(n, 2);
	assert_false(sqlmap_ask_waiting(q));
	sqlmap_ask_free(q);
	sqlmap_free(m);
	conf_free(c);
	event_base_free(base);
}

static void test_ttl_expires(void **state)
{
	struct event_base *base = event_base_new();
	struct conf *c = load(dbpath, "1s");
	char err[256];
	struct sqlmap *m = sqlmap_new(c, base, err, sizeof(err));
	struct sqlmap_ask *q = sqlmap_ask_new(m);

	(void)state;
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "alice", "sql.example", NULL, NULL),
			 SQLMAP_WAIT);
	fetch(base, q);
	sqlmap_ask_free(q);
	sleep(2);
	q = sqlmap_ask_new(m);
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "alice", "sql.example", NULL, NULL),
			 SQLMAP_WAIT);
	sqlmap_ask_free(q);
	sqlmap_free(m);
	conf_free(c);
	event_base_free(base);
}

static void test_unreachable_is_fail_not_no(void **state)
{
	struct event_base *base = event_base_new();
	struct conf *c = load("/nonexistent/mail.sqlite", "30s");
	char err[256];
	struct sqlmap *m = sqlmap_new(c, base, err, sizeof(err));
	struct sqlmap_ask *q = sqlmap_ask_new(m);

	(void)state;
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "alice", "sql.example", NULL, NULL),
			 SQLMAP_WAIT);
	assert_int_equal(sqlmap_get(q, SQLMAP_DOMAIN, NULL, "sql.example", NULL, NULL),
			 SQLMAP_WAIT);
	fetch(base, q);
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "alice", "sql.example", NULL, NULL),
			 SQLMAP_FAIL);
	assert_int_equal(sqlmap_get(q, SQLMAP_DOMAIN, NULL, "sql.example", NULL, NULL),
			 SQLMAP_FAIL);
	assert_non_null(strstr(sqlmap_ask_error(q), "cannot open"));
	sqlmap_ask_free(q);
	q = sqlmap_ask_new(m); /* failures are not kept */
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "alice", "sql.example", NULL, NULL),
			 SQLMAP_WAIT);
	sqlmap_ask_free(q);
	sqlmap_free(m);
	conf_free(c);
	event_base_free(base);
}

static void test_rounds_bounded(void **state)
{
	struct event_base *base = event_base_new();
	struct conf *c = load(dbpath, "0");
	char err[256], name[32];
	struct sqlmap *m = sqlmap_new(c, base, err, sizeof(err));
	struct sqlmap_ask *q = sqlmap_ask_new(m);

	(void)state;
	for (int i = 0; i < SQLMAP_ROUNDS_MAX; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, name, "sql.example", NULL, NULL),
				 SQLMAP_WAIT);
		fetch(base, q);
	}
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "one-more", "sql.example", NULL, NULL),
			 SQLMAP_WAIT);
	assert_false(sqlmap_fetch(q, done_cb, base));
	assert_int_equal(sqlmap_get(q, SQLMAP_MAILBOX, "one-more", "sql.example", NULL, NULL),
			 SQLMAP_FAIL);
	assert_non_null(strstr(sqlmap_ask_error(q), "rounds"));
	sqlmap_ask_free(q);
	sqlmap_free(m);
	conf_free(c);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_fetch_answer_and_cache),
		cmocka_unit_test(test_ttl_expires),
		cmocka_unit_test(test_unreachable_is_fail_not_no),
		cmocka_unit_test(test_rounds_bounded),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
