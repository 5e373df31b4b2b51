/*
 * test_queue_space.c - unit tests for queue_has_space() in
 * src/queue/queue_fs.c: the first question reads the file system, later
 * ones within a second and with room to spare count off the cached figure,
 * one near the edge reads it again, and huge asks never overflow into yes.
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
#include <sys/statvfs.h>

#include "queue_internal.h"

#define MIB (1024ULL * 1024)

struct fixture {
	char dir[64];
	struct queue *q;
	uint64_t free; /* octets free when the fixture was made */
};

/* A spool in a fresh temporary directory. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct statvfs sv;
	char err[256];

	strcpy(f->dir, "/tmp/hato-test-space.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->q = queue_open(f->dir, 1, false, NULL, err, sizeof(err));
	if (f->q == NULL || statvfs(f->dir, &sv) != 0)
		return -1;
	f->free = (uint64_t)sv.f_bavail * sv.f_frsize;
	*state = f;
	return 0;
}

/* Close the spool and remove its directories. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	queue_close(f->q);
	snprintf(path, sizeof(path), "%s/shutdown.clean", f->dir); /* queue_close's mark */
	unlink(path);
	snprintf(path, sizeof(path), "%s/incoming", f->dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/queue", f->dir);
	rmdir(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Asks within a second and far from the edge use the cached figure. */
static void test_cached_figure_counts_asks_off(void **state)
{
	struct fixture *f = *state;
	uint64_t before;

	if (f->free < 2048 * MIB)
		skip(); /* too little room here to stay clear of the slack */
	assert_true(queue_has_space(f->q, 0, 0));
	assert_true(f->q->space_known);
	before = f->q->space_free;
	assert_true(queue_has_space(f->q, 10 * MIB, 100 * MIB));
	assert_true(f->q->space_free == before - 10 * MIB); /* counted off, not read */
	assert_true(queue_has_space(f->q, 5 * MIB, 0));
	assert_true(f->q->space_free == before - 15 * MIB);
}

/* Near the edge the file system is asked again, and its answer counts. */
static void test_edge_reads_again(void **state)
{
	struct fixture *f = *state;
	uint64_t ask;

	if (f->free < 2048 * MIB)
		skip();
	assert_true(queue_has_space(f->q, 0, 0));
	/* within the slack of the cached figure: read again, and it fits */
	ask = f->q->space_free - 300 * MIB;
	f->q->space_free -= 200 * MIB; /* as if much had been asked for since */
	assert_true(queue_has_space(f->q, ask, 0));
	assert_true(f->q->space_free >= ask); /* the figure was read anew */
	/* more than there is: no, however recent the figure */
	assert_false(queue_has_space(f->q, f->q->space_free + 1024 * MIB, 0));
}

/* need + reserve beyond 2^64 must not wrap around to a small number. */
static void test_no_overflow(void **state)
{
	struct fixture *f = *state;

	assert_false(queue_has_space(f->q, UINT64_MAX, 0));
	assert_false(queue_has_space(f->q, 0, UINT64_MAX));
	assert_false(queue_has_space(f->q, UINT64_MAX / 2 + 1, UINT64_MAX / 2 + 1));
	assert_false(queue_has_space(f->q, 1, UINT64_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cached_figure_counts_asks_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_edge_reads_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_overflow, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
