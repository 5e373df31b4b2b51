/*
 * test_aliases.c - unit tests for src/lookup/aliases.c: parsing files
 * written to a temporary directory (comments, blank lines, continuation
 * lines, CRLF, quoted commands with commas, "<addr>", quoted names),
 * errors naming file:line, a missing file, lookup precedence of
 * "name@domain" over "name", case-insensitive names, refresh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aliases.h"

static char tmpdir[64];
static char path[128];

/* A fresh temporary directory for each test, with path inside it. */
static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/hato-test-aliases.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/aliases", tmpdir);
	return 0;
}

/* Remove the files and the directory. */
static int teardown(void **state)
{
	char tmp[160];

	(void)state;
	unlink(path);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	return rmdir(tmpdir);
}

/* Write len octets of text to p. */
static void write_bytes(const char *p, const char *text, size_t len)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Replace the aliases file with text, as an editor that renames does. */
static void write_aliases(const char *text)
{
	char tmp[160];

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	write_bytes(tmp, text, strlen(text));
	assert_int_equal(rename(tmp, path), 0);
}

/* Open text as the aliases file and expect success. */
static struct aliases *open_ok(const char *text)
{
	char err[512] = "";
	struct aliases *al;

	write_aliases(text);
	al = aliases_open(path, err, sizeof(err));
	if (al == NULL)
		fail_msg("aliases_open failed: %s\n%s", err, text);
	return al;
}

/* Expect name to have exactly the targets listed (NULL-terminated). */
static void expect_targets(const struct aliases *al, const char *name, ...)
{
	const char *const *t;
	const char *want;
	size_t n, i = 0;
	va_list ap;

	t = aliases_get(al, name, &n);
	if (t == NULL)
		fail_msg("no alias %s", name);
	va_start(ap, name);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (i >= n)
			fail_msg("%s: %zu targets, wanted more (%s)", name, n, want);
		if (strcmp(t[i], want) != 0)
			fail_msg("%s: target %zu is \"%s\", want \"%s\"", name, i, t[i], want);
		i++;
	}
	va_end(ap);
	if (i != n)
		fail_msg("%s: %zu targets, want %zu", name, n, i);
}

/* Comments, blank lines, continuations, CRLF and a last line without a
 * newline all parse. */
static void test_parse_basic(void **state)
{
	struct aliases *al;

	(void)state;
	al = open_ok("# a comment\n"
		     "\n"
		     "postmaster: root\n"
		     "root: alice,\n"
		     "\tbob@example.net,\n"
		     "   # an indented comment inside the entry\n"
		     "\n"
		     "  carol\n"
		     "crlf: dave\r\n"
		     "   , erin\r\n"
		     "spaced :  frank ,  , grace,\n"
		     "last: heidi");
	assert_int_equal(aliases_count(al), 5);
	expect_targets(al, "postmaster", "root", NULL);
	expect_targets(al, "root", "alice", "bob@example.net", "carol", NULL);
	expect_targets(al, "crlf", "dave", "erin", NULL);
	expect_targets(al, "spaced", "frank", "grace", NULL);
	expect_targets(al, "last", "heidi", NULL);
	assert_string_equal(aliases_path(al), path);
	aliases_free(al);
}

/* Quoted commands keep their commas; quotes come off commands, files and
 * names; "<addr>" loses its brackets; "\name" and quoted local parts
 * stay as written. */
static void test_parse_targets(void **state)
{
	struct aliases *al;

	(void)state;
	al = open_ok("list: \"|/usr/bin/handler --a, --b \\\"x\\\"\", |/bin/simple arg\n"
		     "files: /var/mail/archive, \"/var/mail/with space\"\n"
		     "angle: <bob@example.net>, \"john doe\"@example.net, \"eve\"\n"
		     "keep: \\keep, keep@elsewhere.example\n"
		     "\"john doe\": alice\n");
	expect_targets(al, "list", "|/usr/bin/handler --a, --b \"x\"", "|/bin/simple arg", NULL);
	expect_targets(al, "files", "/var/mail/archive", "/var/mail/with space", NULL);
	expect_targets(al, "angle", "bob@example.net", "\"john doe\"@example.net", "\"eve\"", NULL);
	expect_targets(al, "keep", "\\keep", "keep@elsewhere.example", NULL);
	expect_targets(al, "\"john doe\"", "alice", NULL);
	expect_targets(al, "john doe", "alice", NULL);
	aliases_free(al);
}

/* Every malformed file is refused with FILE:LINE: and a useful message. */
static void test_parse_errors(void **state)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *frag;
	} cases[] = {
		{"a: b\nno colon here\n", 2, "no ':'"},
		{"  b, c\n", 1, "continuation line without an alias"},
		{"# x\n\na: b\nbad name: c\n", 4, "bad alias name"},
		{"a: b c\n", 1, "bad target"},
		{"a: b # trailing comment\n", 1, "bad target"},
		{"a: b\nc: :include:/etc/list\n", 2, ":include: is not supported"},
		{"a: b\nc: \":include:/etc/list\"\n", 2, ":include: is not supported"},
		{"a: \"|unterminated, b\n", 1, "unterminated quote"},
		{"a: b\nempty:\nc: d\n", 2, "has no targets"},
		{"a: b\nempty: , ,\n", 2, "has no targets"},
		{"a: b\nc: d\nA: e\n", 3, "duplicate alias a (also on line 1)"},
		{"a: |   \n", 1, "empty command"},
		{"a: \"|cmd\x01\"\n", 1, "control character"},
		{"a: b@\n", 1, "bad target"},
		{"a@[127.0.0.1]: b\n", 1, "bad alias name"},
		{"\"a@b\": c\n", 1, "bad alias name"},
		{"\"a@b\"@example.org: c\n", 1, "bad alias name"},
		{"a: \\b@example.org\n", 1, "\\NAME wants a local name"},
	};
	char err[512], want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aliases *al;

		write_aliases(cases[i].text);
		err[0] = '\0';
		errno = 0;
		al = aliases_open(path, err, sizeof(err));
		if (al != NULL) {
			aliases_free(al);
			fail_msg("accepted:\n%s", cases[i].text);
		}
		assert_int_equal(errno, EINVAL);
		snprintf(want, sizeof(want), "%s:%u: ", path, cases[i].line);
		if (strstr(err, want) == NULL)
			fail_msg("error \"%s\" does not start with \"%s\"", err, want);
		if (strstr(err, cases[i].frag) == NULL)
			fail_msg("error \"%s\" does not contain \"%s\"", err, cases[i].frag);
	}
}

/* A NUL byte is an error naming its line. */
static void test_parse_nul(void **state)
{
	char err[512] = "", want[200];

	(void)state;
	write_bytes(path, "a: b\nc: d\0e\n", 12);
	assert_null(aliases_open(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2: NUL byte", path);
	assert_non_null(strstr(err, want));
}

/* A missing file is an error naming it (ENOENT); NULL is an empty set. */
static void test_missing_and_null(void **state)
{
	struct aliases *al;
	char err[512] = "";
	size_t n = 99;

	(void)state;
	errno = 0;
	assert_null(aliases_open(path, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, path));
	al = aliases_open(NULL, err, sizeof(err));
	assert_non_null(al);
	assert_int_equal(aliases_count(al), 0);
	assert_null(aliases_lookup(al, "postmaster", "example.org", &n));
	assert_int_equal(n, 0);
	assert_true(aliases_refresh(al, err, sizeof(err)));
	assert_null(aliases_path(al));
	aliases_free(al);
}

/* "name@domain" wins over "name" in its domain only; names and domains
 * compare case-insensitively; quoted local parts are looked up unquoted. */
static void test_lookup_precedence(void **state)
{
	const char *const *t;
	struct aliases *al;
	size_t n;

	(void)state;
	al = open_ok("info: alice\n"
		     "Info@Example.ORG: bob, carol\n"
		     "\"john doe\": dave\n");
	t = aliases_lookup(al, "info", "example.org", &n);
	assert_non_null(t);
	assert_int_equal(n, 2);
	assert_string_equal(t[0], "bob");
	t = aliases_lookup(al, "INFO", "EXAMPLE.org", &n);
	assert_int_equal(n, 2);
	t = aliases_lookup(al, "info", "example.net", &n);
	assert_int_equal(n, 1);
	assert_string_equal(t[0], "alice");
	t = aliases_lookup(al, "Info", NULL, &n);
	assert_int_equal(n, 1);
	assert_string_equal(t[0], "alice");
	t = aliases_lookup(al, "\"John Doe\"", "example.org", &n);
	assert_non_null(t);
	assert_string_equal(t[0], "dave");
	assert_null(aliases_lookup(al, "nobody", "example.org", &n));
	assert_int_equal(n, 0);
	/* aliases_get has no fallback */
	assert_null(aliases_get(al, "info@example.net", &n));
	assert_non_null(aliases_get(al, "INFO@example.org", &n));
	aliases_free(al);
}

/* aliases_fold_local unquotes and lower-cases, and refuses what it must. */
static void test_fold_local(void **state)
{
	char out[65];

	(void)state;
	assert_true(aliases_fold_local("Alice", out, sizeof(out)));
	assert_string_equal(out, "alice");
	assert_true(aliases_fold_local("\"John \\\"Q\\\" Doe\"", out, sizeof(out)));
	assert_string_equal(out, "john \"q\" doe");
	assert_false(aliases_fold_local("\"bad\\\"", out, sizeof(out)));
	assert_false(aliases_fold_local("toolong", out, 4));
}

/* Entries come out of aliases_each in name order with their lines. */
static void each_fn(const char *name, const char *const *targets, size_t n, unsigned line,
		    void *arg)
{
	char *buf = arg;
	char one[128];

	snprintf(one, sizeof(one), "%s:%u:%zu:%s;", name, line, n, targets[0]);
	strcat(buf, one);
}

/* aliases_each visits every entry, sorted, with its first line. */
static void test_each(void **state)
{
	struct aliases *al;
	char buf[512] = "";

	(void)state;
	al = open_ok("b: x\n# c\nA: y,\n  z\nc@example.org: w\n");
	aliases_each(al, each_fn, buf);
	assert_string_equal(buf, "a:3:2:y;b:1:1:x;c@example.org:5:1:w;");
	aliases_free(al);
}

/* Refresh picks up a new version, keeps the old one when the new one is
 * bad (repeating its error), and fails but keeps the old when the file
 * disappears. */
static void test_refresh(void **state)
{
	struct aliases *al;
	char err[512];
	size_t n;

	(void)state;
	al = open_ok("a: one\n");
	assert_true(aliases_refresh(al, err, sizeof(err)));
	write_aliases("a: one, two\nb: three\n");
	assert_true(aliases_refresh(al, err, sizeof(err)));
	assert_int_equal(aliases_count(al), 2);
	assert_non_null(aliases_get(al, "a", &n));
	assert_int_equal(n, 2);
	write_aliases("a: one\nbroken\n");
	err[0] = '\0';
	assert_false(aliases_refresh(al, err, sizeof(err)));
	assert_non_null(strstr(err, ":2: no ':'"));
	err[0] = '\0';
	assert_false(aliases_refresh(al, err, sizeof(err)));
	assert_non_null(strstr(err, ":2: no ':'"));
	assert_int_equal(aliases_count(al), 2);
	assert_int_equal(unlink(path), 0);
	assert_false(aliases_refresh(al, err, sizeof(err)));
	assert_non_null(aliases_get(al, "b", &n));
	write_aliases("c: four\n");
	assert_true(aliases_refresh(al, err, sizeof(err)));
	assert_int_equal(aliases_count(al), 1);
	assert_null(aliases_get(al, "a", &n));
	aliases_free(al);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parse_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_targets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_nul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_null, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_precedence, setup, teardown),
		cmocka_unit_test(test_fold_local),
		cmocka_unit_test_setup_teardown(test_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
