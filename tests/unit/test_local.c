/*
 * test_local.c - unit tests for src/lookup/local.c: local_resolve() with a
 * real configuration (conf_load), users file and aliases file written to a
 * temporary directory - mailboxes from the users file and [domain NAME],
 * postmaster and abuse, catch_all, subaddresses, recursive aliases, loops
 * and the depth limit, refused commands and files, de-duplication, case,
 * names that can be no Maildir - and local_check_aliases().
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

#include "aliases.h"
#include "conf.h"
#include "local.h"
#include "users.h"

/* Any complete yescrypt hash will do: passwords are never checked here. */
#define HASH "$y$j9T$s2OWmbFbziwFUcLKJCDp4/$wcHudGHAh4dFVKRn/OtOy7HR5uxhff./cIvSgexzM8C"

/* Every test's configuration: users_file (%s) and [delivery] keys (%s)
 * come from the test. */
static const char conf_format[] = "[server]\n"
				  "hostname = mx.example.org\n"
				  "local_domains = example.org, example.net, catch.example, "
				  "any.example, lmtp.example\n"
				  "users_file = %s\n"
				  "[listener smtp]\n"
				  "address = 127.0.0.1:2525\n"
				  "[domain example.org]\n"
				  "mailboxes = carol, Info-Desk\n"
				  "[domain catch.example]\n"
				  "catch_all = bucket\n"
				  "[domain any.example]\n"
				  "mailboxes = *\n"
				  "[domain lmtp.example]\n"
				  "mailboxes = *\n"
				  "lmtp = unix:/nonexistent/lmtp\n"
				  "[delivery]\n"
				  "%s";

static char tmpdir[64];

/* What a test resolves against. */
struct fixture {
	struct conf *c;
	struct userdb *users;
	struct aliases *al;
	struct local_targets out;
	char why[512];
};

static struct fixture fx;

/* A fresh temporary directory for each test. */
static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	strcpy(tmpdir, "/tmp/hato-test-local.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

/* Free the fixture; remove the files and the directory. */
static int teardown(void **state)
{
	static const char *const names[] = {"hato.conf", "users", "aliases"};
	char p[128];

	(void)state;
	local_targets_free(&fx.out);
	aliases_free(fx.al);
	userdb_free(fx.users);
	conf_free(fx.c);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	return rmdir(tmpdir);
}

/* Write text to tmpdir/name; the path goes to p. */
static void write_file(const char *name, const char *text, char *p, size_t size)
{
	FILE *f;

	snprintf(p, size, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/*
 * Load the fixture: conf_format with delivery (the [delivery] keys, without
 * the section line), the users alice (every domain), dave@example.net and
 * Frank, and aliases (NULL: no aliases file).
 */
static void load(const char *delivery, const char *aliases)
{
	char conf_text[2048], conf_path[128], users_path[128], aliases_path[128], err[512];
	char keys[512];

	write_file("users",
		   "alice:" HASH "\n"
		   "dave@example.net:" HASH "\n"
		   "Frank:" HASH "\n",
		   users_path, sizeof(users_path));
	if (aliases != NULL)
		write_file("aliases", aliases, aliases_path, sizeof(aliases_path));
	snprintf(keys, sizeof(keys), "%s%s%s%s", aliases != NULL ? "aliases_file = " : "",
		 aliases != NULL ? aliases_path : "", aliases != NULL ? "\n" : "", delivery);
	snprintf(conf_text, sizeof(conf_text), conf_format, users_path, keys);
	write_file("hato.conf", conf_text, conf_path, sizeof(conf_path));
	fx.c = conf_load(conf_path, err, sizeof(err));
	if (fx.c == NULL)
		fail_msg("conf_load: %s", err);
	fx.users = userdb_open(fx.c->users_file, err, sizeof(err));
	if (fx.users == NULL)
		fail_msg("userdb_open: %s", err);
	fx.al = aliases_open(fx.c->aliases_file, err, sizeof(err));
	if (fx.al == NULL)
		fail_msg("aliases_open: %s", err);
}

/* Resolve local@domain into fx.out. */
static enum local_status resolve(const char *local, const char *domain)
{
	local_targets_free(&fx.out);
	return local_resolve(fx.c, fx.users, fx.al, NULL, local, domain, &fx.out, fx.why,
			     sizeof(fx.why));
}

/* Expect local@domain to resolve to exactly the targets listed
 * (NULL-terminated), a leading '!' marking a remote one. */
static void expect_ok(const char *local, const char *domain, ...)
{
	enum local_status st = resolve(local, domain);
	const char *want;
	size_t i = 0;
	va_list ap;

	if (st != LOCAL_OK)
		fail_msg("%s@%s: %s: %s", local, domain, local_status_name(st), fx.why);
	va_start(ap, domain);
	while ((want = va_arg(ap, const char *)) != NULL) {
		bool remote = want[0] == '!';

		if (i >= fx.out.n)
			fail_msg("%s@%s: %zu targets, wanted more (%s)", local, domain, fx.out.n,
				 want);
		if (strcmp(fx.out.t[i].addr, want + remote) != 0 || fx.out.t[i].local == remote)
			fail_msg("%s@%s: target %zu is %s (%s), want %s", local, domain, i,
				 fx.out.t[i].addr, fx.out.t[i].local ? "local" : "remote", want);
		i++;
	}
	va_end(ap);
	if (i != fx.out.n)
		fail_msg("%s@%s: %zu targets, want %zu", local, domain, fx.out.n, i);
}

/* Expect status st, no targets, and why containing frag. */
static void expect_fail(const char *local, const char *domain, enum local_status st,
			const char *frag)
{
	enum local_status got = resolve(local, domain);

	if (got != st)
		fail_msg("%s@%s: %s (%s), want %s", local, domain, local_status_name(got), fx.why,
			 local_status_name(st));
	assert_int_equal(fx.out.n, 0);
	assert_null(fx.out.t);
	if (frag != NULL && strstr(fx.why, frag) == NULL)
		fail_msg("%s@%s: why \"%s\" does not contain \"%s\"", local, domain, fx.why, frag);
}

/* Users file: "alice" exists in every local domain, "dave@example.net"
 * only there; the mailbox is the lower-cased user at the configured
 * domain, whatever case the recipient was written in. */
static void test_users_file(void **state)
{
	(void)state;
	load("", NULL);
	expect_ok("alice", "example.org", "<alice@example.org>", NULL);
	expect_ok("ALICE", "EXAMPLE.NET", "<alice@example.net>", NULL);
	expect_ok("dave", "example.net", "<dave@example.net>", NULL);
	expect_fail("dave", "example.org", LOCAL_UNKNOWN, "no such user dave@example.org");
	expect_ok("Frank", "example.org", "<frank@example.org>", NULL);
	assert_string_equal(fx.why, "mailbox");
}

/* [domain NAME] mailboxes exist in that domain only, in any case. */
static void test_domain_mailboxes(void **state)
{
	(void)state;
	load("", NULL);
	expect_ok("carol", "example.org", "<carol@example.org>", NULL);
	expect_ok("info-desk", "Example.Org", "<info-desk@example.org>", NULL);
	expect_fail("carol", "example.net", LOCAL_UNKNOWN, NULL);
}

/* An unknown local part, and a domain that is not local, are
 * LOCAL_UNKNOWN with a reason. */
static void test_unknown(void **state)
{
	(void)state;
	load("", "other: alice\n");
	expect_fail("nobody", "example.org", LOCAL_UNKNOWN, "no such user nobody@example.org");
	expect_fail("alice", "remote.example", LOCAL_UNKNOWN, "not local");
	expect_fail("\"\"", "example.org", LOCAL_UNKNOWN, "bad local part");
}

/* postmaster and abuse exist in every domain without any configuration,
 * unless an alias sends them elsewhere. */
static void test_postmaster_abuse(void **state)
{
	(void)state;
	load("", "abuse@example.net: alice\n");
	expect_ok("postmaster", "example.org", "<postmaster@example.org>", NULL);
	expect_ok("PostMaster", "example.net", "<postmaster@example.net>", NULL);
	expect_ok("abuse", "example.org", "<abuse@example.org>", NULL);
	expect_ok("abuse", "example.net", "<alice@example.net>", NULL);
	expect_ok("postmaster+x", "catch.example", "<postmaster@catch.example>", NULL);
}

/* postmaster and abuse exist with no users file and no aliases at all. */
static void test_no_users_no_aliases(void **state)
{
	(void)state;
	load("", NULL);
	local_targets_free(&fx.out);
	assert_int_equal(local_resolve(fx.c, NULL, NULL, NULL, "postmaster", "example.org", &fx.out,
				       fx.why, sizeof(fx.why)),
			 LOCAL_OK);
	assert_int_equal(fx.out.n, 1);
	local_targets_free(&fx.out);
	assert_int_equal(local_resolve(fx.c, NULL, NULL, NULL, "alice", "example.org", &fx.out,
				       fx.why, sizeof(fx.why)),
			 LOCAL_UNKNOWN);
}

/* catch_all takes what nothing else does, in its domain only; it may be
 * an alias itself, and its own unknown targets do not loop back to it. */
static void test_catch_all(void **state)
{
	(void)state;
	load("", NULL);
	expect_ok("nobody", "catch.example", "<bucket@catch.example>", NULL);
	assert_string_equal(fx.why, "catch_all bucket");
	expect_ok("alice", "catch.example", "<alice@catch.example>", NULL);
	expect_ok("bucket", "catch.example", "<bucket@catch.example>", NULL);
	expect_fail("nobody", "example.org", LOCAL_UNKNOWN, NULL);
	teardown(state);
	setup(state);
	load("", "bucket@catch.example: alice, bob@remote.example\n"
		 "broken@catch.example: ghost\n");
	expect_ok("whatever", "catch.example", "<alice@catch.example>", "!<bob@remote.example>",
		  NULL);
	/* ghost is unknown, so goes to the catch-all: that is fine */
	expect_ok("broken", "catch.example", "<alice@catch.example>", "!<bob@remote.example>",
		  NULL);
}

/* "user+tag" is "user" (mailbox and alias); the full local part is looked
 * up first, in aliases and in the users file. */
static void test_subaddress(void **state)
{
	(void)state;
	load("", "sales: carol\n"
		 "sales+vip: alice\n");
	expect_ok("alice+tag", "example.org", "<alice@example.org>", NULL);
	expect_ok("alice+a+b", "example.org", "<alice@example.org>", NULL);
	expect_ok("sales+x", "example.org", "<carol@example.org>", NULL);
	expect_ok("sales+vip", "example.org", "<alice@example.org>", NULL);
	expect_ok("Sales+VIP", "example.org", "<alice@example.org>", NULL);
	expect_fail("nobody+tag", "example.org", LOCAL_UNKNOWN, NULL);
	/* a leading delimiter is part of the name, not a subaddress */
	expect_fail("+alice", "example.org", LOCAL_UNKNOWN, NULL);
}

/* recipient_delimiter = "" turns subaddresses off. */
static void test_delimiter_disabled(void **state)
{
	(void)state;
	load("recipient_delimiter =\n", "sales: carol\n");
	assert_string_equal(fx.c->recipient_delimiter, "");
	expect_fail("alice+tag", "example.org", LOCAL_UNKNOWN, "alice+tag");
	expect_fail("sales+x", "example.org", LOCAL_UNKNOWN, NULL);
	expect_ok("alice", "example.org", "<alice@example.org>", NULL);
}

/* recipient_delimiter is a set of characters: "+-" splits at either. */
static void test_delimiter_set(void **state)
{
	(void)state;
	load("recipient_delimiter = +-\n", NULL);
	expect_ok("alice-list", "example.org", "<alice@example.org>", NULL);
	expect_ok("alice+tag", "example.org", "<alice@example.org>", NULL);
	/* the full local part first: a mailbox with the delimiter in it */
	expect_ok("info-desk", "example.org", "<info-desk@example.org>", NULL);
}

/* Aliases expand recursively down to two local users; the why of a
 * success names the first alias. */
static void test_recursive_two_users(void **state)
{
	(void)state;
	load("", "team: lead, alice\n"
		 "lead: boss\n"
		 "boss: carol\n");
	expect_ok("team", "example.org", "<carol@example.org>", "<alice@example.org>", NULL);
	assert_string_equal(fx.why, "alias team");
}

/* A remote target is final, kept as written; a full address in another
 * local domain is resolved there; "<addr>" in the file is the same. */
static void test_remote_and_other_domain(void **state)
{
	(void)state;
	load("", "fwd: Bob@Remote.Example, <dave@example.net>, \"john doe\"@remote.example\n"
		 "cross: admin@example.net\n"
		 "admin@example.net: dave\n");
	expect_ok("fwd", "example.org", "!<Bob@Remote.Example>", "<dave@example.net>",
		  "!<\"john doe\"@remote.example>", NULL);
	expect_ok("cross", "example.org", "<dave@example.net>", NULL);
	/* a local name in the alias's own domain: dave is not in example.org */
	teardown(state);
	setup(state);
	load("", "x: dave\n");
	expect_ok("x", "example.net", "<dave@example.net>", NULL);
	expect_fail("x", "example.org", LOCAL_UNKNOWN, "no such user dave@example.org (via x)");
}

/* a -> b -> a and a -> a are loops, with the chain in why; "\name" is
 * the mailbox itself, so "alice: \alice, ..." is not a loop. */
static void test_loops(void **state)
{
	(void)state;
	load("", "a: b\n"
		 "b: a\n"
		 "self: self\n"
		 "c: alice, d\n"
		 "d: e\n"
		 "e: c\n"
		 "tagged: tagged+x\n"
		 "alice: \\alice, alice@remote.example\n"
		 "other: x@example.net\n"
		 "x@example.net: other@example.org\n");
	expect_fail("a", "example.org", LOCAL_LOOP, "alias loop: a -> b -> a");
	expect_fail("b", "example.org", LOCAL_LOOP, "alias loop: b -> a -> b");
	expect_fail("self", "example.org", LOCAL_LOOP, "alias loop: self -> self");
	expect_fail("c", "example.org", LOCAL_LOOP, "alias loop: c -> d -> e -> c");
	expect_fail("tagged", "example.org", LOCAL_LOOP, "alias loop: tagged -> tagged+x");
	expect_fail("other", "example.org", LOCAL_LOOP,
		    "alias loop: other -> x@example.net -> other");
	expect_ok("alice", "example.org", "<alice@example.org>", "!<alice@remote.example>", NULL);
}

/* A chain of LOCAL_DEPTH_MAX aliases resolves; one more is a loop. */
static void test_depth_limit(void **state)
{
	char text[2048] = "", line[64];

	(void)state;
	/* l0 -> l1 -> ... -> l20 -> alice: 21 aliases deep from l0, 20 from l1 */
	for (int i = 0; i < LOCAL_DEPTH_MAX; i++) {
		snprintf(line, sizeof(line), "l%d: l%d\n", i, i + 1);
		strcat(text, line);
	}
	snprintf(line, sizeof(line), "l%d: alice\n", LOCAL_DEPTH_MAX);
	strcat(text, line);
	load("", text);
	expect_ok("l1", "example.org", "<alice@example.org>", NULL);
	expect_fail("l0", "example.org", LOCAL_LOOP, "deeper than 20");
}

/* "|command" and "/file" targets are refused: hato has no command or
 * file delivery (and the config refuses alias_commands/alias_files). */
static void test_commands_and_files(void **state)
{
	static const char aliases[] = "cmd: \"|/usr/bin/handler --list, x\"\n"
				      "file: /var/mail/archive\n"
				      "both: alice, cmd, file\n";

	(void)state;
	load("", aliases);
	expect_fail("cmd", "example.org", LOCAL_REFUSED, "alias_commands is off");
	expect_fail("file", "example.org", LOCAL_REFUSED, "alias_files is off");
	expect_fail("both", "example.org", LOCAL_REFUSED, "(via both -> cmd)");
}

/* Targets reached more than once - by case, subaddress, two paths or a
 * remote address whose domain differs in case only - appear once, in the
 * order first reached. */
static void test_dedup(void **state)
{
	(void)state;
	load("", "team: alice, ALICE, alice+x, list, bob@remote.example, bob@REMOTE.Example\n"
		 "list: carol, alice, sub\n"
		 "sub: carol\n"
		 "diamond: list, sub, list\n");
	expect_ok("team", "example.org", "<alice@example.org>", "<carol@example.org>",
		  "!<bob@remote.example>", NULL);
	expect_ok("diamond", "example.org", "<carol@example.org>", "<alice@example.org>", NULL);
}

/* Alias names, local parts and domains compare case-insensitively; the
 * mailbox comes out lower-cased at the domain as configured. */
static void test_case_insensitive(void **state)
{
	(void)state;
	load("", "Sales@Example.ORG: Carol\n"
		 "HELP: Alice\n");
	expect_ok("SALES", "EXAMPLE.org", "<carol@example.org>", NULL);
	expect_ok("help", "example.NET", "<alice@example.net>", NULL);
	expect_fail("sales", "example.net", LOCAL_UNKNOWN, NULL);
}

/* Quoted local parts are looked up with their quotes removed. */
static void test_quoted_local_part(void **state)
{
	(void)state;
	load("", "\"john doe\": alice\n");
	expect_ok("\"john doe\"", "example.org", "<alice@example.org>", NULL);
	expect_ok("\"John Doe\"", "example.net", "<alice@example.net>", NULL);
	expect_ok("\"alice\"", "example.org", "<alice@example.org>", NULL);
	expect_ok("\"odd one\"", "catch.example", "<bucket@catch.example>", NULL);
}

/*
 * A local part that can never be a Maildir (maildir_path refuses a '/';
 * a leading dot comes quoted, "\".x\"", so it names no hidden directory)
 * is LOCAL_BAD_MAILBOX however the mailbox is reached - "*", an alias - so
 * it is refused at RCPT; a catch_all takes it into its own (valid) mailbox,
 * and an LMTP domain has no Maildir to check.
 */
static void test_bad_mailbox_name(void **state)
{
	static const char *const bad[] = {"bob/x", "\"a/b\"", "\"../../etc\"", "\"..\\/x\""};

	(void)state;
	load("", "evil@any.example: x/y\n"
		 "deep@any.example: evil\n");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_fail(bad[i], "any.example", LOCAL_BAD_MAILBOX, "no valid mailbox path for");
	expect_fail("evil", "any.example", LOCAL_BAD_MAILBOX, "x/y@any.example (via evil)");
	expect_fail("deep", "any.example", LOCAL_BAD_MAILBOX, "(via deep -> evil)");
	expect_ok("\"odd one\"", "any.example", "<\"odd one\"@any.example>", NULL);
	expect_ok("bob/x", "catch.example", "<bucket@catch.example>", NULL);
	expect_ok("bob/x", "lmtp.example", "<bob/x@lmtp.example>", NULL);
	expect_ok("\"../x\"", "lmtp.example", "<\"../x\"@lmtp.example>", NULL);
}

/* local_part_fold: quotes off, lower case, the subaddress split off at the
 * first recipient_delimiter character (not a leading one); nothing for a
 * local part that names nobody. */
static void test_local_part_fold(void **state)
{
	static const struct {
		const char *local, *full, *base;
	} cases[] = {
		{"alice", "alice", "alice"},         {"Alice+Tag", "alice+tag", "alice"},
		{"\"alice\"", "alice", "alice"},     {"\"Al\\ice+x\"", "alice+x", "alice"},
		{"alice-x+y", "alice-x+y", "alice"}, {"+alice", "+alice", "+alice"},
	};
	char full[LOCAL_NAME_MAX], base[LOCAL_NAME_MAX];

	(void)state;
	load("recipient_delimiter = +-\n", NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(local_part_fold(fx.c, cases[i].local, full, base, sizeof(full)));
		assert_string_equal(full, cases[i].full);
		assert_string_equal(base, cases[i].base);
	}
	assert_false(local_part_fold(fx.c, "\"\"", full, base, sizeof(full)));
	assert_false(local_part_fold(fx.c, "\"a@b\"", full, base, sizeof(full)));
	assert_false(local_part_fold(fx.c, "\"a\\\"", full, base, sizeof(full)));
}

/* "name@domain" wins over "name" in that domain; elsewhere "name" holds. */
static void test_domain_alias_precedence(void **state)
{
	(void)state;
	load("", "info: alice\n"
		 "info@example.org: carol\n");
	expect_ok("info", "example.org", "<carol@example.org>", NULL);
	expect_ok("info", "example.net", "<alice@example.net>", NULL);
	expect_ok("info+tag", "example.org", "<carol@example.org>", NULL);
}

/* Collect local_check_aliases() reports into a buffer. */
static void collect(const char *problem, void *arg)
{
	strcat(arg, problem);
	strcat(arg, "\n");
}

/* local_check_aliases reports loops, refused targets, unknown local targets
 * and entries for other domains, one line each, and nothing for a clean
 * entry. */
static void test_check_aliases(void **state)
{
	char buf[4096] = "";
	size_t problems;

	(void)state;
	load("", "good: alice, carol@example.org, bob@remote.example\n"
		 "loop: loop\n"
		 "cmd: |/bin/true\n"
		 "ghost: nobody, alice\n"
		 "ghost@example.org: alice\n"
		 "far@remote.example: alice\n");
	problems = local_check_aliases(fx.c, fx.users, fx.al, collect, buf);
	assert_non_null(strstr(buf, ":2: loop: alias loop: loop -> loop\n"));
	assert_non_null(strstr(buf, ":3: cmd: command target \"|/bin/true\" refused"));
	assert_non_null(strstr(buf, ":4: ghost@example.net: no such user nobody@example.net"));
	assert_non_null(strstr(buf, ":6: far@remote.example: the domain is not one of"));
	/* ghost in example.org is the :5: entry (clean); catch.example takes it all */
	assert_null(strstr(buf, "ghost@example.org"));
	assert_null(strstr(buf, "ghost@catch.example"));
	assert_null(strstr(buf, "good"));
	assert_int_equal(problems, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_users_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_mailboxes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_postmaster_abuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_users_no_aliases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_catch_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subaddress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delimiter_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delimiter_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recursive_two_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remote_and_other_domain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commands_and_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_case_insensitive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoted_local_part, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_mailbox_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_part_fold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_alias_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_aliases, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
