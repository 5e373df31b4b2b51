/*
 * queue_id.c - queue IDs: 14 hex digits of microseconds since the epoch,
 * then 6 of a counter seeded from the PID; sortable by arrival and unique
 * as long as fewer than 16M IDs are made per microsecond.  Creation with
 * O_EXCL catches the impossible rest.  (queue_id_valid, the format check,
 * is in common/envelope.c: the CLI and the control socket use it.)
 */
#include "queue.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/time.h>

/* See queue.h. */
void queue_id_new(char id[QUEUE_ID_LEN + 1])
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* delivery threads make IDs too */
	static uint32_t counter;
	static bool seeded;
	static uint64_t last_us;
	struct timeval tv;
	uint64_t us;

	pthread_mutex_lock(&lock);
	if (!seeded) {
		counter = (uint32_t)getpid() << 8;
		seeded = true;
	}
	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	/* sortable even when the clock steps back: never below the last ID */
	if (us < last_us)
		us = last_us;
	last_us = us;
	snprintf(id, QUEUE_ID_LEN + 1, "%014" PRIX64 "%06" PRIX32,
		 (uint64_t)(us & 0xFFFFFFFFFFFFFFu), counter++ & 0xFFFFFFu);
	pthread_mutex_unlock(&lock);
}
