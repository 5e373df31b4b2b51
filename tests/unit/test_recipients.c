/*
 * test_recipients.c - unit tests for src/smtp/recipients.c, given only what
 * it reads (struct recipients_ctx: a configuration, a users file and an
 * aliases file written to a temporary directory): a remote recipient goes
 * in as written, an unknown local one is refused, an alias expands into
 * its targets, each remembering the RCPT it came from and taking its DSN
 * parameters, <postmaster> belongs to the host name, an address literal is
 * local only when it names the address connected to, and a recipient
 * already in the envelope is not added twice.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "aliases.h"
#include "conf.h"
#include "dsn.h"
#include "envelope.h"
#include "recipients.h"
#include "status.h"
#include "users.h"

/* Any complete yescrypt hash will do: passwords are never checked here. */
#define HASH "$y$j9T$s2OWmbFbziwFUcLKJCDp4/$wcHudGHAh4dFVKRn/OtOy7HR5uxhff./cIvSgexzM8C"
#define PATH_MAX_TEST 128

static char tmpdir[64];
static struct recipients_ctx rc;
static struct envelope env;

/* Write text to tmpdir/name; its path goes to p. */
static void write_file(const char *name, const char *text, char *p)
{
	FILE *f;

	snprintf(p, PATH_MAX_TEST, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* The configuration, the users alice and bob, the alias team: alice, bob. */
static int setup(void **state)
{
	char conf_path[PATH_MAX_TEST], users[PATH_MAX_TEST], aliases[PATH_MAX_TEST];
	char text[1024], err[512];
	struct conf *c;

	(void)state;
	strcpy(tmpdir, "/tmp/hato-test-rcpts.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	write_file("users", "alice:" HASH "\nbob:" HASH "\n", users);
	write_file("aliases", "team: alice, bob\nfriend: carol@example.net\n", aliases);
	snprintf(text, sizeof(text),
		 "[server]\nhostname = mx.example.org\nlocal_domains = example.org\n"
		 "users_file = %s\n[delivery]\naliases_file = %s\n"
		 "[listener smtp]\naddress = 127.0.0.1:2525\n",
		 users, aliases);
	write_file("hato.conf", text, conf_path);
	c = conf_load(conf_path, err, sizeof(err));
	if (c == NULL)
		fail_msg("conf_load: %s", err);
	rc.conf = c;
	rc.users = userdb_open(c->users_file, err, sizeof(err));
	rc.aliases = aliases_open(c->aliases_file, err, sizeof(err));
	assert_non_null(rc.users);
	assert_non_null(rc.aliases);
	return 0;
}

/* Free everything; remove the files and the directory. */
static int teardown(void **state)
{
	static const char *const names[] = {"hato.conf", "users", "aliases"};
	char p[PATH_MAX_TEST];

	(void)state;
	aliases_free(rc.aliases);
	userdb_free(rc.users);
	conf_free((struct conf *)rc.conf);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	return rmdir(tmpdir);
}

/* A fresh envelope for each test. */
static int env_setup(void **state)
{
	(void)state;
	envelope_init(&env);
	return 0;
}

/* Free the test's envelope. */
static int env_teardown(void **state)
{
	(void)state;
	envelope_free(&env);
	return 0;
}

/* recipients_add for path, connected to 127.0.0.1; *kind to kind_out. */
static enum status add(const char *path, const struct rcpt_dsn *dsn, const char **kind_out)
{
	struct mailaddr a;
	const char *end, *kind = "";
	char why[512];
	enum status st;

	assert_int_equal(addr_parse_path(path, &end, &a, ADDR_ALLOW_POSTMASTER), ADDR_OK);
	st = recipients_add(&rc, &env, &a, path, dsn, "127.0.0.1", true, &kind, why, sizeof(why));
	if (kind_out != NULL)
		*kind_out = kind;
	return st;
}

/* Remote and local recipients, and one that does not exist. */
static void test_remote_and_local(void **state)
{
	const char *kind;

	(void)state;
	assert_int_equal(add("<Someone@Example.NET>", NULL, &kind), STATUS_OK);
	assert_string_equal(kind, "remote");
	assert_int_equal(add("<alice@example.org>", NULL, &kind), STATUS_OK);
	assert_string_equal(kind, "ok");
	assert_int_equal(add("<nobody@example.org>", NULL, &kind), STATUS_USER_UNKNOWN);
	assert_string_equal(kind, "unknown");
	assert_int_equal(env.nrcpts, 2);
	assert_string_equal(env.rcpts[0].addr, "<Someone@Example.NET>");
	assert_null(env.rcpts[0].orig);
	assert_string_equal(env.rcpts[1].addr, "<alice@example.org>");
}

/* An alias expands; its targets keep the RCPT and its DSN parameters; a
 * target already there keeps its own. */
static void test_alias_expansion(void **state)
{
	const struct rcpt_dsn dsn = {DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
				     "rfc822;team@example.org"};

	(void)state;
	assert_int_equal(add("<bob@example.org>", NULL, NULL), STATUS_OK);
	assert_int_equal(add("<team@example.org>", &dsn, NULL), STATUS_OK);
	assert_int_equal(add("<friend@example.org>", NULL, NULL), STATUS_OK);
	assert_int_equal(env.nrcpts, 3);
	assert_string_equal(env.rcpts[0].addr, "<bob@example.org>");
	assert_int_equal(env.rcpts[0].notify, 0);
	assert_null(env.rcpts[0].orig);
	assert_string_equal(env.rcpts[1].addr, "<alice@example.org>");
	assert_string_equal(env.rcpts[1].orig, "<team@example.org>");
	assert_int_equal(env.rcpts[1].notify, DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
	assert_string_equal(env.rcpts[1].orcpt, "rfc822;team@example.org");
	assert_string_equal(env.rcpts[2].addr, "<carol@example.net>");
	assert_string_equal(env.rcpts[2].orig, "<friend@example.org>");
}

/* <postmaster> and our own address literal are local; another literal is
 * remote. */
static void test_postmaster_and_literals(void **state)
{
	const char *kind;

	(void)state;
	assert_int_equal(add("<postmaster>", NULL, &kind), STATUS_OK);
	assert_string_equal(kind, "ok");
	assert_int_equal(add("<alice@[127.0.0.1]>", NULL, &kind), STATUS_OK);
	assert_string_equal(kind, "ok");
	assert_int_equal(add("<alice@[192.0.2.1]>", NULL, &kind), STATUS_OK);
	assert_string_equal(kind, "remote");
	assert_int_equal(env.nrcpts, 3);
	assert_string_equal(env.rcpts[2].addr, "<alice@[192.0.2.1]>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_remote_and_local, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_alias_expansion, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_postmaster_and_literals, env_setup,
						env_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
