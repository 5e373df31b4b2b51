/*
 * test_backoff.c - the retry schedule: doubling waits, the repeating cap,
 * the queue lifetime, and the last attempt exactly at the deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

static const unsigned sched[] = {300, 600, 1200, 2400, 3600};
#define N (sizeof(sched) / sizeof(sched[0]))
#define DAY 86400

/* Each failure waits the next step of the schedule. */
static void test_steps(void **state)
{
	(void)state;
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 1000, 1, 1000), 1300);
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 1000, 2, 1300), 1900);
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 1000, 3, 2000), 3200);
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 1000, 4, 5000), 7400);
}

/* Past the end of the list the last wait repeats. */
static void test_cap_repeats(void **state)
{
	(void)state;
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 0, 5, 10000), 13600);
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 0, 50, 10000), 13600);
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 0, 4000000000u, 10000), 13600);
}

/* The lifetime ends the retries; the last attempt is at the deadline. */
static void test_lifetime(void **state)
{
	(void)state;
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 0, 9, 5 * DAY - 100), 5 * DAY);
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 0, 10, 5 * DAY), -1);
	assert_int_equal(backoff_next(sched, N, 5 * DAY, 0, 10, 6 * DAY), -1);
}

/* Walking a whole lifetime: attempts are increasing and end in expiry. */
static void test_whole_lifetime(void **state)
{
	time_t now = 0, next;
	unsigned attempts = 0;

	(void)state;
	for (;;) {
		next = backoff_next(sched, N, 5 * DAY, 0, ++attempts, now);
		if (next == -1)
			break;
		assert_true(next > now);
		assert_true(next - now <= 3600);
		now = next;
	}
	assert_int_equal(now, 5 * DAY);
	assert_true(attempts > 100 && attempts < 130);
}

/* Seconds-long schedules, as tests configure them. */
static void test_short(void **state)
{
	static const unsigned fast[] = {1, 2};

	(void)state;
	assert_int_equal(backoff_next(fast, 2, 10, 100, 1, 100), 101);
	assert_int_equal(backoff_next(fast, 2, 10, 100, 2, 101), 103);
	assert_int_equal(backoff_next(fast, 2, 10, 100, 3, 109), 110);
	assert_int_equal(backoff_next(fast, 2, 10, 100, 4, 110), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steps),    cmocka_unit_test(test_cap_repeats),
		cmocka_unit_test(test_lifetime), cmocka_unit_test(test_whole_lifetime),
		cmocka_unit_test(test_short),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
