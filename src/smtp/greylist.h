/*
 * greylist.h - greylisting, as postgrey does it: the first attempt of a
 * (client network, sender, recipient) triplet gets 450 4.7.1; a retry
 * after [greylist] delay, and within retry_window of the first attempt,
 * passes, and the triplet then passes at once for pass_time (renewed by
 * each use).  The client counts by network (IPv4 /24, IPv6 /64): big
 * senders retry from another host of the same farm.
 *
 * The store holds at most max_entries triplets, each as 16 octets of a
 * salted SHA-256 of its text (the salt is random, made with the file), so
 * no address is kept in the clear and nobody can aim triplets at one hash
 * chain.  It is written whole and durably (durable_write_file) to file,
 * on the worker pool, GREYLIST_SAVE_DELAY seconds after a change, and once
 * more at close; it is read at open.  So a restart neither forgets a
 * triplet nor delays again a sender that passed; a crash loses at most the
 * changes of the last few seconds (such a triplet is delayed once more).
 * A store file that does not read is logged and set aside as file.bad.
 *
 * Loop thread only, but for the writes on the workers.
 */
#ifndef HATO_GREYLIST_H
#define HATO_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

struct conf;
struct event_base;
struct workers;
struct greylist;

/* The store of c's [greylist], or NULL when greylisting is off or err
 * says why it cannot be (file unreadable). */
struct greylist *greylist_open(const struct conf *c, struct event_base *base, struct workers *w,
			       char *err, size_t errsz);

/* A reload: delay, retry_window and pass_time of c from now on (its file
 * and max_entries need a restart: the store is sized and named at open).
 * The store holds c (conf_hold). */
void greylist_configure(struct greylist *g, const struct conf *c);
/* May this triplet pass now?  When not, *wait is the seconds until a
 * retry may. */
bool greylist_pass(struct greylist *g, const struct sockaddr *client, const char *sender,
		   const char *rcpt, time_t now, unsigned *wait);

/* Triplets in the store. */
size_t greylist_count(const struct greylist *g);

/* Write the store now, on this thread; false with errno. */
bool greylist_save(struct greylist *g);

/* Save if changed and release.  Call once the workers have finished. */
void greylist_close(struct greylist *g);

#endif
