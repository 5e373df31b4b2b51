/*
 * backoff.c - the retry schedule as a pure function.
 */
#include "backoff.h"

/* See backoff.h. */
time_t backoff_next(const unsigned *schedule, size_t n, unsigned lifetime, time_t arrival,
		    unsigned attempts, time_t now)
{
	time_t deadline = arrival + (time_t)lifetime, next;
	size_t i;

	if (now >= deadline || n == 0)
		return (time_t)-1;
	i = attempts == 0 ? 0 : attempts - 1;
	if (i >= n)
		i = n - 1;
	next = now + (time_t)schedule[i];
	return next < deadline ? next : deadline;
}
