/*
 * worker.h - a small thread pool for blocking or slow work (password
 * hashing) whose result comes back on the event loop.
 *
 * workers_submit(w, work, done, arg): work(arg) runs on a pool thread,
 * then done(arg) runs on the loop thread.  Nothing is ever cancelled: the
 * caller keeps arg alive until done runs.
 */
#ifndef HATO_WORKER_H
#define HATO_WORKER_H

#include <stddef.h>

struct event_base;
struct workers;

struct workers *workers_new(struct event_base *base, unsigned threads);
void workers_submit(struct workers *w, void (*work)(void *), void (*done)(void *), void *arg);
/* At least threads pool threads from now on (a pool never shrinks: a
 * caller that wants fewer jobs at once submits fewer). */
void workers_grow(struct workers *w, unsigned threads);
/* Jobs submitted and not yet done. */
size_t workers_pending(struct workers *w);
/* Finish every job (running their done callbacks), join, free. */
void workers_free(struct workers *w);

#endif
