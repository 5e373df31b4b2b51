/*
 * test_filewatch.c - the reloadable-file routine: a load parses, a refresh
 * of an unchanged file costs no parse, a changed file is parsed again, a
 * bad version keeps the old contents and is not parsed twice, and the size
 * limit holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "filewatch.h"

struct owner {
	char contents[64]; /* what the owner has loaded */
	unsigned parses;   /* how often parse ran */
};

/* Parse callback: "bad" does not parse; anything else is taken whole. */
static bool parse(void *arg, const char *path, const char *buf, size_t len, char *err, size_t errsz)
{
	struct owner *o = arg;

	(void)path;
	o->parses++;
	if (len >= 3 && memcmp(buf, "bad", 3) == 0) {
		snprintf(err, errsz, "bad contents");
		errno = EINVAL;
		return false;
	}
	snprintf(o->contents, sizeof(o->contents), "%.*s", (int)len, buf);
	return true;
}

/* Write text to path with a distinct mtime each time. */
static void put(const char *path, const char *text)
{
	static long t = 1000000;
	struct timeval tv[2] = {{t, 0}, {t, 0}};
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	t += 10;
	utimes(path, tv);
}

static char temp_dir[64], temp_file[96];

/* A temp file path in a fresh directory, removed by remove_temp. */
static const char *temp_path(void)
{
	strcpy(temp_dir, "/tmp/hato-fw-XXXXXX");
	assert_non_null(mkdtemp(temp_dir));
	snprintf(temp_file, sizeof(temp_file), "%s/file", temp_dir);
	return temp_file;
}

/* Teardown: remove the file and the directory temp_path made. */
static int remove_temp(void **state)
{
	(void)state;
	unlink(temp_file);
	return rmdir(temp_dir);
}

/* Load, unchanged refresh, changed refresh. */
static void test_load_and_refresh(void **state)
{
	const char *path = temp_path();
	struct filewatch fw;
	struct owner o = {"", 0};
	char err[128];

	(void)state;
	put(path, "one");
	filewatch_init(&fw, path, 1024, 0, parse, &o);
	assert_true(filewatch_load(&fw, err, sizeof(err)));
	assert_string_equal(o.contents, "one");
	assert_true(filewatch_refresh(&fw, err, sizeof(err)));
	assert_int_equal(o.parses, 1); /* unchanged: no parse */
	put(path, "two!");
	assert_true(filewatch_refresh(&fw, err, sizeof(err)));
	assert_string_equal(o.contents, "two!");
	assert_int_equal(o.parses, 2);
}

/* A bad version keeps the old contents and is parsed only once. */
static void test_bad_version_kept_out(void **state)
{
	const char *path = temp_path();
	struct filewatch fw;
	struct owner o = {"", 0};
	char err[128];

	(void)state;
	put(path, "good");
	filewatch_init(&fw, path, 1024, 0, parse, &o);
	assert_true(filewatch_load(&fw, err, sizeof(err)));
	put(path, "bad!");
	assert_false(filewatch_refresh(&fw, err, sizeof(err)));
	assert_string_equal(o.contents, "good");
	assert_non_null(strstr(err, "bad contents"));
	assert_false(filewatch_refresh(&fw, err, sizeof(err)));
	assert_int_equal(o.parses, 2); /* the same bad file is not parsed again */
	put(path, "fixed");
	assert_true(filewatch_refresh(&fw, err, sizeof(err)));
	assert_string_equal(o.contents, "fixed");
}

/* The size limit, and a missing file read as empty when asked. */
static void test_limit_and_missing(void **state)
{
	const char *path = temp_path();
	struct filewatch fw;
	struct owner o = {"", 0};
	char err[128];

	(void)state;
	put(path, "0123456789");
	filewatch_init(&fw, path, 4, 0, parse, &o);
	assert_false(filewatch_load(&fw, err, sizeof(err)));
	assert_int_equal(o.parses, 0);
	unlink(path);
	filewatch_init(&fw, path, 1024, FILEWATCH_MISSING_EMPTY, parse, &o);
	assert_true(filewatch_load(&fw, err, sizeof(err)));
	assert_string_equal(o.contents, "");
	filewatch_init(&fw, path, 1024, 0, parse, &o);
	assert_false(filewatch_load(&fw, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_load_and_refresh, remove_temp),
		cmocka_unit_test_teardown(test_bad_version_kept_out, remove_temp),
		cmocka_unit_test_teardown(test_limit_and_missing, remove_temp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
