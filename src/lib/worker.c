/*
 * worker.c - job queue, pool threads, and an eventfd back to the loop.
 */
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "log.h"
#include "util.h"

struct job {
	struct job *next;
	void (*work)(void *);
	void (*done)(void *);
	void *arg;
};

struct workers {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo, **todo_tail, *done;
	size_t pending;
	bool stopping;
	pthread_t *threads;
	unsigned nthreads;
	int wake_fd;
	struct event *wake_ev;
};

/* Pool thread: run jobs until told to stop. */
static void *worker_main(void *arg)
{
	struct workers *w = arg;
	uint64_t one = 1;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&w->lock);
		while (w->todo == NULL && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		if ((j = w->todo) == NULL) {
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		w->todo = j->next;
		if (w->todo == NULL)
			w->todo_tail = &w->todo;
		pthread_mutex_unlock(&w->lock);

		j->work(j->arg);

		pthread_mutex_lock(&w->lock);
		j->next = w->done;
		w->done = j;
		pthread_mutex_unlock(&w->lock);
		if (write(w->wake_fd, &one, sizeof(one)) != sizeof(one))
			log_warn("event=worker_wake_failed");
	}
}

/* Run the done callbacks of finished jobs, on the loop. */
static void workers_deliver(struct workers *w)
{
	struct job *done, *j;

	pthread_mutex_lock(&w->lock);
	done = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->lock);
	while ((j = done) != NULL) {
		done = j->next;
		pthread_mutex_lock(&w->lock);
		w->pending--;
		pthread_mutex_unlock(&w->lock);
		j->done(j->arg);
		free(j);
	}
}

/* eventfd readable. */
static void workers_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("event=worker_wake_read");
	workers_deliver(arg);
}

/* See worker.h. */
struct workers *workers_new(struct event_base *base, unsigned threads)
{
	struct workers *w = xcalloc(1, sizeof(*w));

	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->todo_tail = &w->todo;
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		fatal("event=startup error=\"eventfd\"");
	w->wake_ev = event_new(base, w->wake_fd, EV_READ | EV_PERSIST, workers_wake_cb, w);
	event_add(w->wake_ev, NULL);
	w->threads = xcalloc(threads, sizeof(pthread_t));
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0)
			fatal("event=startup error=\"cannot start worker threads\"");
		w->nthreads++;
	}
	return w;
}

/* See worker.h. */
void workers_grow(struct workers *w, unsigned threads)
{
	pthread_t *more;

	if (threads <= w->nthreads)
		return;
	/* only the loop thread starts, grows and frees the pool: no lock for the array */
	more = xcalloc(threads, sizeof(pthread_t));
	for (unsigned i = 0; i < w->nthreads; i++)
		more[i] = w->threads[i];
	free(w->threads);
	w->threads = more;
	while (w->nthreads < threads) {
		if (pthread_create(&w->threads[w->nthreads], NULL, worker_main, w) != 0) {
			log_warn("event=workers_grow_failed threads=%u", w->nthreads);
			return;
		}
		w->nthreads++;
	}
}

/* See worker.h. */
void workers_submit(struct workers *w, void (*work)(void *), void (*done)(void *), void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	*w->todo_tail = j;
	w->todo_tail = &j->next;
	w->pending++;
	pthread_mutex_unlock(&w->lock);
	/* after the unlock: a woken thread does not block on the lock we hold */
	pthread_cond_signal(&w->cond);
}

/* See worker.h. */
size_t workers_pending(struct workers *w)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = w->pending;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* See worker.h. */
void workers_free(struct workers *w)
{
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	workers_deliver(w);
	event_free(w->wake_ev);
	close(w->wake_fd);
	free(w->threads);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}
