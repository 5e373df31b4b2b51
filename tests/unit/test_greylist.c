/*
 * test_greylist.c - the greylisting store (src/smtp/greylist.c): a first
 * attempt delayed, a retry too soon delayed, one after the delay passed
 * and the triplet passing at once after that; the client's /24 and /64 as
 * one client, other senders, recipients and networks apart; a round that
 * waited past retry_window starting again; a store that stays within
 * max_entries; the file: what passed and what waits survive a reopen, and
 * a file that is no store is set aside.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "greylist.h"
#include "sockaddr_fixture.h"

#define T0 1000000

static char dir[64];

/* A configuration with greylisting on, its store in dir. */
static struct conf *conf_greylist(size_t max)
{
	char path[128], err[512] = "";
	FILE *f;
	struct conf *c;

	snprintf(path, sizeof(path), "%s/hato.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"[server]\nlocal_domains = example.org\nstate_dir = %s\n"
		"[greylist]\nenabled = yes\ndelay = 5m\nretry_window = 1d\npass_time = 30d\n"
		"max_entries = %zu\n"
		"[listener smtp]\naddress = 127.0.0.1:2525\n",
		dir, max);
	fclose(f);
	c = conf_load(path, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hato-test-greylist.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* Does the triplet pass at t? */
static bool pass(struct greylist *g, const char *client, const char *from, const char *to, time_t t)
{
	struct sockaddr_storage ss = sockaddr_of(client);
	unsigned wait = 0;

	return greylist_pass(g, (struct sockaddr *)&ss, from, to, t, &wait);
}

static void test_rule(void **state)
{
	struct conf *c = conf_greylist(1000);
	struct greylist *g = greylist_open(c, NULL, NULL, NULL, 0);
	struct sockaddr_storage ss = sockaddr_of("192.0.2.1");
	unsigned wait = 0;

	(void)state;
	assert_non_null(g);
	assert_false(greylist_pass(g, (struct sockaddr *)&ss, "a@example.net", "u@example.org", T0,
				   &wait));
	assert_int_equal(wait, 300);
	assert_false(greylist_pass(g, (struct sockaddr *)&ss, "a@example.net", "u@example.org",
				   T0 + 100, &wait));
	assert_int_equal(wait, 200);
	/* another host of the same /24, the address in another case: the same */
	assert_true(pass(g, "192.0.2.200", "A@Example.NET", "u@example.org", T0 + 300));
	assert_true(pass(g, "192.0.2.1", "a@example.net", "u@example.org", T0 + 301));
	/* ... for pass_time, renewed by use */
	assert_true(pass(g, "192.0.2.1", "a@example.net", "u@example.org", T0 + 20 * 86400));
	assert_true(pass(g, "192.0.2.1", "a@example.net", "u@example.org", T0 + 45 * 86400));
	/* other networks, senders, recipients are other triplets */
	assert_false(pass(g, "192.0.3.1", "a@example.net", "u@example.org", T0 + 400));
	assert_false(pass(g, "192.0.2.1", "b@example.net", "u@example.org", T0 + 400));
	assert_false(pass(g, "192.0.2.1", "a@example.net", "v@example.org", T0 + 400));
	assert_false(pass(g, "192.0.2.1", "", "v@example.org", T0 + 400));
	/* IPv6: the /64 */
	assert_false(pass(g, "2001:db8:0:1::1", "a@example.net", "u@example.org", T0));
	assert_true(pass(g, "2001:db8:0:1:ffff::2", "a@example.net", "u@example.org", T0 + 300));
	assert_false(pass(g, "2001:db8:0:2::1", "a@example.net", "u@example.org", T0 + 300));
	/* a retry after retry_window is a first attempt again */
	assert_false(pass(g, "198.51.100.1", "a@example.net", "u@example.org", T0));
	assert_false(pass(g, "198.51.100.1", "a@example.net", "u@example.org", T0 + 86400));
	assert_true(pass(g, "198.51.100.1", "a@example.net", "u@example.org", T0 + 86400 + 300));
	greylist_close(g);
	conf_free(c);
}

static void test_bounded(void **state)
{
	struct conf *c = conf_greylist(100);
	struct greylist *g = greylist_open(c, NULL, NULL, NULL, 0);
	char to[64];

	(void)state;
	assert_false(pass(g, "192.0.2.1", "a@example.net", "first@example.org", T0));
	assert_true(pass(g, "192.0.2.1", "a@example.net", "first@example.org", T0 + 300));
	for (int i = 0; i < 5000; i++) {
		snprintf(to, sizeof(to), "u%d@example.org", i);
		assert_false(pass(g, "203.0.113.9", "spam@example.net", to, T0 + 400 + i));
		assert_true(greylist_count(g) <= 100);
	}
	greylist_close(g);
	conf_free(c);
}

static void test_file(void **state)
{
	struct conf *c = conf_greylist(1000);
	struct greylist *g = greylist_open(c, NULL, NULL, NULL, 0);
	char path[128], err[256] = "";
	FILE *f;
	struct stat st;

	(void)state;
	assert_false(pass(g, "192.0.2.1", "a@example.net", "u@example.org", T0));
	assert_true(pass(g, "192.0.2.1", "a@example.net", "u@example.org", T0 + 300));
	assert_false(pass(g, "192.0.2.9", "b@example.net", "u@example.org", T0 + 300));
	assert_true(greylist_save(g));
	greylist_close(g);
	/* reopened: the pass holds, the waiting one keeps its first attempt */
	g = greylist_open(c, NULL, NULL, err, sizeof(err));
	assert_non_null(g);
	assert_int_equal(greylist_count(g), 2);
	assert_true(pass(g, "192.0.2.1", "a@example.net", "u@example.org", T0 + 400));
	assert_true(pass(g, "192.0.2.9", "b@example.net", "u@example.org", T0 + 600));
	greylist_close(g);
	/* something else in its place is set aside, and the store starts empty */
	snprintf(path, sizeof(path), "%s/greylist", dir);
	f = fopen(path, "w");
	fputs("not a greylist\n", f);
	fclose(f);
	g = greylist_open(c, NULL, NULL, err, sizeof(err));
	assert_non_null(g);
	assert_int_equal(greylist_count(g), 0);
	snprintf(path, sizeof(path), "%s/greylist.bad", dir);
	assert_int_equal(stat(path, &st), 0);
	greylist_close(g);
	conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
