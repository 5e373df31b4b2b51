/*
 * spool_fixture.h - for unit tests of the queue, the scheduler and intake:
 * remove a scratch directory tree, count the files of a spool directory,
 * and make the envelope of a test message.
 */
#ifndef HATO_TEST_SPOOL_FIXTURE_H
#define HATO_TEST_SPOOL_FIXTURE_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "envelope.h"
#include "util.h"

/* Remove one entry during the depth-first walk. */
static inline int spool_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove the tree at dir, whatever is in it. */
static inline void spool_rm_tree(const char *dir)
{
	nftw(dir, spool_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* How many files dir holds (names starting with '.' not counted); -1 when
 * it cannot be read. */
static inline int spool_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The envelope of a size-octet message from sender to rcpt, received from
 * localhost at arrival; its ID is left empty (the queue's to give). */
static inline void spool_envelope(struct envelope *e, const char *sender, const char *rcpt,
				  uint64_t size, time_t arrival)
{
	envelope_init(e);
	e->arrival = arrival;
	e->sender = xstrdup(sender);
	e->size = size;
	e->client = xstrdup("127.0.0.1");
	e->client_name = xstrdup("localhost");
	e->helo = xstrdup("localhost");
	envelope_add_rcpt(e, rcpt);
}

#endif
