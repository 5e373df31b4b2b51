/*
 * test_durable.c - unit tests for src/lib/durable.c: writev_all writes every
 * vector in order (empty ones included), and after a short write reports the
 * error that stops it, with exactly what fitted written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include "durable.h"

/* A fresh temp file, open for reading and writing and already unlinked. */
static int temp_file(void)
{
	char path[] = "/tmp/hato-durable-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

/* The file's whole contents, NUL-terminated, into buf. */
static size_t contents(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

/* Every vector lands, in order; empty ones are skipped over. */
static void test_writev_all_order(void **state)
{
	char a[] = "message ", c[] = "envelope ", d[] = "trailer\n", buf[64];
	struct iovec iov[4] = {{a, strlen(a)}, {c, 0}, {c, strlen(c)}, {d, strlen(d)}};
	int fd = temp_file();

	(void)state;
	assert_true(writev_all(fd, iov, 4));
	assert_int_equal(contents(fd, buf, sizeof(buf)), 25);
	assert_string_equal(buf, "message envelope trailer\n");
	close(fd);
}

/* A file size limit cuts the first writev short inside the second vector;
 * writev_all goes on from there, and the next call's EFBIG comes back. */
static void test_writev_all_short_write_then_error(void **state)
{
	char a[] = "0123", b[] = "456789", c[] = "abcdef", buf[64];
	struct iovec iov[3] = {{a, 4}, {b, 6}, {c, 6}};
	struct rlimit old, small;
	int fd = temp_file();
	bool ok;

	(void)state;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 7;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	errno = 0;
	ok = writev_all(fd, iov, 3);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_false(ok);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(contents(fd, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "0123456");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writev_all_order),
		cmocka_unit_test(test_writev_all_short_write_then_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
