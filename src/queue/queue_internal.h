/*
 * queue_internal.h - shared between queue_fs.c and queue_commit.c only.
 */
#ifndef HATO_QUEUE_INTERNAL_H
#define HATO_QUEUE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "queue.h"
#include "strbuf.h"

struct event;

struct commit_job {
	struct commit_job *next;
	char id[QUEUE_ID_LEN + 1];
	int fd;    /* message file, still open; -1: not created yet */
	char *buf; /* with fd == -1: the whole message */
	size_t buflen;
	uint64_t msglen;    /* the message's octets, in the file or buf */
	struct strbuf tail; /* envelope text, then the trailer (queue_msg.h) */
	bool direct;        /* written straight into queue/ (no rename) */
	queue_commit_cb cb;
	void *arg;
	int err;
};

struct queue {
	char *state_dir;
	char *incoming_dir;
	char *queue_dir;
	size_t count;    /* messages in queue/ (recovered + committed since) */
	bool use_syncfs; /* commit_sync = syncfs */
	int queue_dirfd; /* for syncfs */

	/* free space as last read (queue_has_space, on the loop only) */
	bool space_known;
	uint64_t space_free;      /* octets, less what was asked for since */
	struct timespec space_at; /* CLOCK_MONOTONIC_COARSE */

	/* commit threads */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct commit_job *todo, **todo_tail;
	struct commit_job *done;
	size_t inflight;
	bool stopping;
	pthread_t *threads;
	unsigned nthreads;
	int wake_fd; /* eventfd: commit threads -> loop */
	struct event *wake_ev;
};

bool queue_commit_start(struct queue *q, struct event_base *base, unsigned threads);
void queue_commit_stop(struct queue *q);

#endif
