/*
 * test_users.c - unit tests for src/lookup/users.c: parsing good and bad
 * users files (errors name file:line), a missing file as an empty
 * database, refresh (picks up changes, keeps the old users on a bad edit),
 * the dummy hash for unknown users, password_verify against yescrypt,
 * SHA-512-crypt and bcrypt hashes, editing (set/delete round trip, comments
 * kept, mode 0600, owner kept, a stale temp file) and name validation.
 * Every test works in its own fresh directory under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "users.h"

/* Drepper's SHA-crypt specification, test vector 1 for SHA-512. */
#define SHA512_VECTOR_PASSWORD "Hello world!"
#define SHA512_VECTOR_HASH                                                                         \
	"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/"                                       \
	"O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCo"                                                  \
	"EOfaS35inz1"

/* Two yescrypt hashes made once with `hato user add`, for files. */
#define HASH_A "$y$j9T$s2OWmbFbziwFUcLKJCDp4/$wcHudGHAh4dFVKRn/OtOy7HR5uxhff./cIvSgexzM8C"
#define HASH_B "$y$j9T$CT4SBXZWwe.KnbkU1dueg1$RnkBAVClj28sJjniIJZqTwqnN9B7dMf8O/TIs6c/pM0"

struct fixture {
	char dir[64];
	char path[128]; /* dir/users, not created */
};

/* A fresh directory for one test. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/hato-test-users-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/users", f->dir);
	*state = f;
	return 0;
}

/* nftw callback: remove one entry. */
static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove the test's directory and everything in it. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Replace path with text the way an editor that renames would (new inode). */
static void put_file(const char *path, const char *text, size_t len)
{
	char tmp[256];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.edit", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* put_file for a C string. */
static void put_text(const char *path, const char *text)
{
	put_file(path, text, strlen(text));
}

/* The whole file as a string (caller frees). */
static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* A hash of password with the given crypt prefix, made with libxcrypt. */
static char *make_hash(const char *prefix, unsigned long count, const char *password)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char *out;

	assert_non_null(cd);
	assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof(setting)));
	out = strdup(crypt_rn(password, setting, cd, sizeof(*cd)));
	free(cd);
	assert_non_null(out);
	assert_true(out[0] == '$');
	return out;
}

/* Collect names from userdb_each into a comma-separated string. */
static void join_name(const char *user, void *arg)
{
	char *buf = arg;

	if (*buf != '\0')
		strcat(buf, ",");
	strcat(buf, user);
}

/* Comments, blank lines and the three accepted methods parse; names are exact. */
static void test_parse_good(void **state)
{
	struct fixture *f = *state;
	struct userdb *db;
	char err[512] = "", names[256] = "";
	char *h;

	put_text(f->path,
		 "# SMTP AUTH users\n"
		 "\n"
		 "zed:" HASH_A "\n"
		 "alice@example.org:" SHA512_VECTOR_HASH "\n"
		 "# bcrypt, from elsewhere\n"
		 "bob.b_c+d-e:$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW");
	db = userdb_open(f->path, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(userdb_count(db), 3);
	assert_true(userdb_exists(db, "zed"));
	assert_true(userdb_exists(db, "alice@example.org"));
	assert_true(userdb_exists(db, "bob.b_c+d-e"));
	assert_false(userdb_exists(db, "Zed"));
	assert_false(userdb_exists(db, "alice"));
	assert_false(userdb_exists(db, ""));
	userdb_each(db, join_name, names);
	assert_string_equal(names, "alice@example.org,bob.b_c+d-e,zed");
	h = userdb_hash_for(db, "alice@example.org");
	assert_string_equal(h, SHA512_VECTOR_HASH);
	free(h);
	userdb_free(db);
}

/* Every kind of malformed line is refused with file:line and EINVAL. */
static void test_parse_bad(void **state)
{
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		unsigned line;
		const char *what;
	} cases[] = {
		{"alice:" HASH_A "\nbob " HASH_B "\n", 0, 2, "no ':'"},
		{"# c\n\nal ice:" HASH_A "\n", 0, 3, "bad user name"},
		{":" HASH_A "\n", 0, 1, "bad user name"},
		{"a:b:" HASH_A "\n", 0, 1, "bad password hash"}, /* the first ':' ends the name */
		{"alice:\n", 0, 1, "bad password hash"},
		{"alice:secret\n", 0, 1, "bad password hash"},
		{"alice:$y$j9T$s2OWmbFbziwFUcLKJCDp4/\n", 0, 1, "bad password hash"},
		{"alice:$1$abcdefgh$G//4keteveJp0qb8z2DxG/\n", 0, 1, "bad password hash"},
		{"alice:abJnggxhB/yWI\n", 0, 1, "bad password hash"},
		{"alice:" HASH_A "\r\n", 0, 1, "bad password hash"},
		{"alice:" HASH_A " \n", 0, 1, "bad password hash"},
		{"alice:" HASH_A "\nbob:" HASH_B "\nalice:" HASH_B "\n", 0, 3,
		 "duplicate user alice (also on line 1)"},
		{"alice:" HASH_A "\nb\0b:" HASH_B "\n",
		 sizeof("alice:" HASH_A "\nb\0b:" HASH_B "\n") - 1, 2, "NUL byte"},
	};
	struct fixture *f = *state;
	char err[512], want[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);

		put_file(f->path, cases[i].text, len);
		err[0] = '\0';
		errno = 0;
		if (userdb_open(f->path, err, sizeof(err)) != NULL)
			fail_msg("case %zu accepted", i);
		assert_int_equal(errno, EINVAL);
		snprintf(want, sizeof(want), "%s:%u: ", f->path, cases[i].line);
		if (strncmp(err, want, strlen(want)) != 0 || strstr(err, cases[i].what) == NULL)
			fail_msg("case %zu: \"%s\", want \"%s...%s\"", i, err, want, cases[i].what);
		assert_null(strstr(err, "j9T$")); /* hashes are not echoed */
	}
}

/* A line longer than a name, ':' and the longest hash is refused. */
static void test_parse_long_line(void **state)
{
	struct fixture *f = *state;
	char text[2048], err[512], want[256];

	memset(text, 'a', sizeof(text));
	memcpy(text, "alice:$y$", 9);
	text[sizeof(text) - 1] = '\n';
	put_file(f->path, text, sizeof(text));
	assert_null(userdb_open(f->path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:1: line longer than", f->path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
}

/* A missing file is an empty database, and refresh keeps it so. */
static void test_missing_file_is_empty(void **state)
{
	struct fixture *f = *state;
	char err[512];
	struct userdb *db = userdb_open(f->path, err, sizeof(err));
	char *h;

	assert_non_null(db);
	assert_int_equal(userdb_count(db), 0);
	assert_false(userdb_exists(db, "alice"));
	assert_true(userdb_refresh(db, err, sizeof(err)));
	assert_int_equal(userdb_count(db), 0);
	h = userdb_hash_for(db, "alice");
	assert_non_null(h);
	free(h);
	userdb_free(db);
}

/* A path that is not a regular file is an error, not an empty database. */
static void test_not_a_file(void **state)
{
	struct fixture *f = *state;
	char err[512];

	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_null(userdb_open(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
}

/* Refresh picks up a change, keeps the old users on a bad edit (reporting
 * it each time), recovers on a fix, and empties when the file goes away. */
static void test_refresh(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	struct userdb *db;

	put_text(f->path, "alice:" HASH_A "\n");
	db = userdb_open(f->path, err, sizeof(err));
	assert_non_null(db);
	assert_true(userdb_refresh(db, err, sizeof(err)));
	assert_true(userdb_exists(db, "alice"));

	put_text(f->path, "bob:" HASH_B "\ncarol:" HASH_A "\n");
	assert_true(userdb_refresh(db, err, sizeof(err)));
	assert_int_equal(userdb_count(db), 2);
	assert_false(userdb_exists(db, "alice"));
	assert_true(userdb_exists(db, "bob"));

	put_text(f->path, "bob:" HASH_B "\ncarol " HASH_A "\n");
	assert_false(userdb_refresh(db, err, sizeof(err)));
	assert_non_null(strstr(err, ":2: no ':'"));
	assert_int_equal(userdb_count(db), 2);
	assert_true(userdb_exists(db, "carol"));
	err[0] = '\0';
	assert_false(userdb_refresh(db, err, sizeof(err))); /* still bad, same message */
	assert_non_null(strstr(err, ":2: no ':'"));
	assert_true(userdb_exists(db, "bob"));

	put_text(f->path, "dave:" HASH_A "\n");
	assert_true(userdb_refresh(db, err, sizeof(err)));
	assert_int_equal(userdb_count(db), 1);
	assert_true(userdb_exists(db, "dave"));
	assert_false(userdb_exists(db, "bob"));

	assert_int_equal(unlink(f->path), 0);
	assert_true(userdb_refresh(db, err, sizeof(err)));
	assert_int_equal(userdb_count(db), 0);
	userdb_free(db);
}

/* An unknown user gets a copy of a real yescrypt dummy hash that no
 * password matches; a known user gets a copy of their own hash. */
static void test_hash_for(void **state)
{
	struct fixture *f = *state;
	char err[512];
	struct userdb *db;
	char *h1, *h2, *mine, *fresh;

	put_text(f->path, "alice:" HASH_A "\n");
	db = userdb_open(f->path, err, sizeof(err));
	assert_non_null(db);
	h1 = userdb_hash_for(db, "nobody");
	h2 = userdb_hash_for(db, "Alice");
	assert_non_null(h1);
	fresh = password_hash("x");
	assert_non_null(fresh);
	assert_true(strncmp(h1, fresh, 7) == 0); /* "$y$j9T$": password_hash's cost */
	free(fresh);
	assert_true(strlen(h1) == strlen(HASH_A));
	assert_string_equal(h1, h2);
	assert_true(h1 != h2);
	assert_false(password_verify("", h1));
	assert_false(password_verify("nobody", h1));
	assert_false(password_verify("password", h1));
	mine = userdb_hash_for(db, "alice");
	assert_string_equal(mine, HASH_A);
	free(h1);
	free(h2);
	free(mine);
	userdb_free(db);
}

/* password_hash makes salted yescrypt hashes that password_verify accepts. */
static void test_verify_yescrypt(void **state)
{
	char *h1 = password_hash("correct horse battery staple");
	char *h2 = password_hash("correct horse battery staple");

	(void)state;
	assert_non_null(h1);
	assert_non_null(h2);
	assert_true(strncmp(h1, "$y$j9T$", 7) == 0);
	assert_string_not_equal(h1, h2); /* fresh salt each time */
	assert_null(strstr(h1, "horse"));
	assert_true(password_verify("correct horse battery staple", h1));
	assert_true(password_verify("correct horse battery staple", h2));
	assert_false(password_verify("correct horse battery stapl", h1));
	assert_false(password_verify("Correct horse battery staple", h1));
	assert_false(password_verify("", h1));
	assert_null(password_hash(""));
	assert_null(password_hash(NULL));
	free(h1);
	free(h2);
}

/* SHA-512-crypt: the specification's vector and a fresh hash verify. */
static void test_verify_sha512(void **state)
{
	char *h = make_hash("$6$", 0, "s3cret-Pa55");

	(void)state;
	assert_true(password_verify(SHA512_VECTOR_PASSWORD, SHA512_VECTOR_HASH));
	assert_false(password_verify("Hello world", SHA512_VECTOR_HASH));
	assert_true(strncmp(h, "$6$", 3) == 0);
	assert_true(password_verify("s3cret-Pa55", h));
	assert_false(password_verify("s3cret-Pa56", h));
	free(h);
}

/* bcrypt: a classic $2a$ vector and a fresh $2b$ hash verify. */
static void test_verify_bcrypt(void **state)
{
	char *h = make_hash("$2b$", 5, "bcrypt me");

	(void)state;
	assert_true(password_verify(
		"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
	assert_false(password_verify(
		"U*V", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
	assert_true(strncmp(h, "$2b$05$", 7) == 0);
	assert_true(password_verify("bcrypt me", h));
	assert_false(password_verify("bcrypt m", h));
	free(h);
}

/* Malformed, legacy and missing hashes never verify. */
static void test_verify_bad_hashes(void **state)
{
	static const char *const bad[] = {
		"",
		"*",
		"!" HASH_A,
		"$y$j9T$s2OWmbFbziwFUcLKJCDp4/",
		"$y$j9T$s2OWmbFbziwFUcLKJCDp4/$",
		HASH_A "x",
		"$1$abcdefgh$G//4keteveJp0qb8z2DxG/",
		"abJnggxhB/yWI",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (password_verify("", bad[i]) || password_verify("x", bad[i]))
			fail_msg("\"%s\" verified", bad[i]);
	assert_false(password_verify(NULL, HASH_A));
	assert_false(password_verify("x", NULL));
}

/* set adds and replaces, delete removes; comments and order are kept,
 * and a second delete is "no such user" with ENOENT. */
static void test_set_delete_round_trip(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", *text, *h;
	struct userdb *db;

	put_text(f->path, "# users\nzed:" HASH_A "\n");
	assert_true(userdb_set(f->path, "alice", HASH_B, err, sizeof(err)));
	assert_true(userdb_set(f->path, "bob@example.org", HASH_A, err, sizeof(err)));
	assert_true(userdb_set(f->path, "alice", HASH_A, err, sizeof(err)));
	text = slurp(f->path);
	assert_string_equal(text, "# users\nzed:" HASH_A "\nalice:" HASH_A
				  "\nbob@example.org:" HASH_A "\n");
	free(text);

	db = userdb_open(f->path, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(userdb_count(db), 3);
	h = userdb_hash_for(db, "alice");
	assert_string_equal(h, HASH_A);
	free(h);

	assert_true(userdb_delete(f->path, "alice", err, sizeof(err)));
	assert_true(userdb_refresh(db, err, sizeof(err)));
	assert_int_equal(userdb_count(db), 2);
	assert_false(userdb_exists(db, "alice"));
	assert_true(userdb_exists(db, "bob@example.org"));
	userdb_free(db);
	text = slurp(f->path);
	assert_string_equal(text, "# users\nzed:" HASH_A "\nbob@example.org:" HASH_A "\n");
	free(text);

	errno = 0;
	assert_false(userdb_delete(f->path, "alice", err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "no such user"));
}

/* A last line without a newline gets one before the appended user. */
static void test_set_appends_after_unterminated_line(void **state)
{
	struct fixture *f = *state;
	char err[512], *text;

	put_text(f->path, "zed:" HASH_A);
	assert_true(userdb_set(f->path, "amy", HASH_B, err, sizeof(err)));
	text = slurp(f->path);
	assert_string_equal(text, "zed:" HASH_A "\namy:" HASH_B "\n");
	free(text);
}

/* Deleting from a missing file is "no such user" and creates nothing. */
static void test_delete_missing_file(void **state)
{
	struct fixture *f = *state;
	char err[512], lock[256];

	errno = 0;
	assert_false(userdb_delete(f->path, "alice", err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "no such user"));
	snprintf(lock, sizeof(lock), "%s.lock", f->path);
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(access(lock, F_OK), -1);
}

/* Bad names, bad hashes and a malformed file are refused; the file stays. */
static void test_set_refuses(void **state)
{
	struct fixture *f = *state;
	char err[512], *text;

	put_text(f->path, "zed:" HASH_A "\n");
	errno = 0;
	assert_false(userdb_set(f->path, "a:b", HASH_A, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_false(userdb_set(f->path, "", HASH_A, err, sizeof(err)));
	assert_false(userdb_set(f->path, "amy", "plaintext", err, sizeof(err)));
	assert_false(userdb_set(f->path, "amy", "$y$j9T$saltonly", err, sizeof(err)));
	assert_false(userdb_set(f->path, "amy", NULL, err, sizeof(err)));
	assert_false(userdb_delete(f->path, "a b", err, sizeof(err)));
	text = slurp(f->path);
	assert_string_equal(text, "zed:" HASH_A "\n");
	free(text);

	put_text(f->path, "zed:" HASH_A "\nbroken\n");
	errno = 0;
	assert_false(userdb_set(f->path, "amy", HASH_B, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, ":2: "));
	text = slurp(f->path);
	assert_string_equal(text, "zed:" HASH_A "\nbroken\n");
	free(text);
}

/* A new file is 0600 whatever the umask; an edit puts a looser mode back
 * to 0600. */
static void test_mode_0600(void **state)
{
	struct fixture *f = *state;
	char err[512];
	struct stat st;
	mode_t old = umask(0);

	assert_true(userdb_set(f->path, "alice", HASH_A, err, sizeof(err)));
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(chmod(f->path, 0644), 0);
	umask(0277);
	assert_true(userdb_set(f->path, "bob", HASH_B, err, sizeof(err)));
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(userdb_delete(f->path, "bob", err, sizeof(err)));
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	umask(old);
}

/* As root, an edit keeps the file's owner and group (the daemon's). */
static void test_owner_kept(void **state)
{
	struct fixture *f = *state;
	char err[512];
	struct stat st;

	if (geteuid() != 0)
		skip();
	assert_true(userdb_set(f->path, "alice", HASH_A, err, sizeof(err)));
	assert_int_equal(chown(f->path, 4242, 4343), 0);
	assert_true(userdb_set(f->path, "bob", HASH_B, err, sizeof(err)));
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_uid, 4242);
	assert_int_equal(st.st_gid, 4343);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* A temp file left by a writer that died does not block the next edit. */
static void test_stale_temp_file(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", tmp[256];
	struct userdb *db;

	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	put_text(tmp, "half a fi");
	assert_true(userdb_set(f->path, "alice", HASH_A, err, sizeof(err)));
	assert_int_equal(access(tmp, F_OK), -1);
	db = userdb_open(f->path, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(userdb_count(db), 1);
	userdb_free(db);
}

/* Names: 1-64 of [A-Za-z0-9._+-@]; nothing else. */
static void test_name_validation(void **state)
{
	static const char *const good[] = {
		"a",
		"alice",
		"Alice",
		"alice@example.org",
		"a.b_c+d-e",
		"0",
		"@",
		"-x",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 64 */
	};
	static const char *const bad[] = {
		"",
		"a:b",
		"a b",
		"a\tb",
		"a\n",
		"a\r",
		"caf\xc3\xa9",
		"a/b",
		"a\\b",
		"a\"b",
		"a#b",
		"a,b",
		"a\x7f",
		"#x",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!userdb_name_ok(good[i]))
			fail_msg("\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (userdb_name_ok(bad[i]))
			fail_msg("bad name %zu accepted", i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parse_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_long_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hash_for, setup, teardown),
		cmocka_unit_test(test_verify_yescrypt),
		cmocka_unit_test(test_verify_sha512),
		cmocka_unit_test(test_verify_bcrypt),
		cmocka_unit_test(test_verify_bad_hashes),
		cmocka_unit_test_setup_teardown(test_set_delete_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_appends_after_unterminated_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_delete_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_0600, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_temp_file, setup, teardown),
		cmocka_unit_test(test_name_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
