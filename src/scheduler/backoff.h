/*
 * backoff.h - when to try a recipient again.  Pure functions: the clock is
 * an argument, so tests can walk through days of retries at once.
 */
#ifndef HATO_BACKOFF_H
#define HATO_BACKOFF_H

#include <stddef.h>
#include <time.h>

/*
 * After the attempts-th failed attempt (1 for the first) at time now, for a
 * message that arrived at arrival: the time of the next attempt, or
 * (time_t)-1 when the queue lifetime is over and the recipient fails.
 * schedule[i] is the wait after the (i+1)-th failure; the last one
 * repeats.  The last attempt is never later than arrival + lifetime.
 */
time_t backoff_next(const unsigned *schedule, size_t n, unsigned lifetime, time_t arrival,
		    unsigned attempts, time_t now);

#endif
