/*
 * greylist.c - the greylisting store: an open-addressing table of salted
 * triplet digests, its file, and the pass/delay rule (greylist.h).
 */
#include "greylist.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_table.h"
#include "conf.h"
#include "durable.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define GREYLIST_SAVE_DELAY 2 /* seconds from a change to its write */
#define GREYLIST_MAGIC "hato-greylist 1\n"
#define MAGIC_LEN (sizeof(GREYLIST_MAGIC) - 1)
#define SALT_LEN 16
#define KEY_LEN 16
#define RECORD_LEN (KEY_LEN + 8 + 8)
#define HEADER_LEN (MAGIC_LEN + SALT_LEN + 8)
#define GREYLIST_ENTRIES_MAX 10000000 /* max_entries' own maximum */

struct grey {
	unsigned char key[KEY_LEN];
	int64_t first;        /* the first attempt of the current round */
	int64_t passed_until; /* 0: not passed */
	bool used;
};

struct greylist {
	const struct conf *c;
	struct workers *workers;
	struct event *save_ev;
	struct grey *slots;
	size_t cap, count; /* cap: a power of two, twice max_entries at least */
	unsigned char salt[SALT_LEN];
	char *dir, *name; /* of the file */
	bool dirty, saving;
};

/* A write on the workers: a snapshot of the store. */
struct save_job {
	struct greylist *g;
	unsigned char *buf;
	size_t len;
	int err;
};

/* Little-endian 64-bit numbers in the file. */
static void put64(unsigned char *p, int64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)((uint64_t)v >> (8 * i));
}

static int64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return (int64_t)v;
}

/* The digest of a triplet: the client's network, sender, recipient. */
static void triplet_key(const struct greylist *g, const struct sockaddr *client, const char *sender,
			const char *rcpt, unsigned char key[KEY_LEN])
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	unsigned char net[16], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	client_addr16(client, net);
	if (memcmp(net, v4mapped, sizeof(v4mapped)) == 0)
		net[15] = 0; /* IPv4: its /24 */
	else
		memset(net + 8, 0, 8); /* IPv6: its /64 */
	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, g->salt, SALT_LEN) || !EVP_DigestUpdate(ctx, net, 16))
		fatalx("event=greylist error=\"SHA-256 failed\"");
	for (const char *s = sender;; s = rcpt) {
		for (const char *p = s; *p; p++) {
			unsigned char ch = (unsigned char)tolower((unsigned char)*p);
			EVP_DigestUpdate(ctx, &ch, 1);
		}
		EVP_DigestUpdate(ctx, "", 1); /* the NUL between and after them */
		if (s == rcpt)
			break;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen < KEY_LEN)
		fatalx("event=greylist error=\"SHA-256 failed\"");
	EVP_MD_CTX_free(ctx);
	memcpy(key, md, KEY_LEN);
}

/* The slot of key, or the free slot where it would go. */
static struct grey *slot_of(struct grey *slots, size_t cap, const unsigned char key[KEY_LEN])
{
	size_t i;

	memcpy(&i, key, sizeof(i)); /* the digest is salted: its octets are the hash */
	for (i &= cap - 1;; i = (i + 1) & (cap - 1))
		if (!slots[i].used || memcmp(slots[i].key, key, KEY_LEN) == 0)
			return &slots[i];
}

/* Is this triplet of no more use: its round over unpassed, or its pass out? */
static bool expired(const struct greylist *g, const struct grey *e, time_t now)
{
	if (e->passed_until > 0)
		return e->passed_until <= now;
	return e->first + (int64_t)g->c->greylist_retry_window <= now;
}

/* When a triplet was last of use: for choosing what goes when full. */
static int64_t last_use(const struct greylist *g, const struct grey *e)
{
	return e->passed_until > 0 ? e->passed_until - (int64_t)g->c->greylist_pass_time : e->first;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Full: drop the expired triplets, and if that is not a tenth of the
 * store, the least recently used ones down to nine tenths. */
static void purge(struct greylist *g, time_t now)
{
	size_t max = g->c->greylist_max_entries, n = 0, keep = max - max / 10;
	struct grey *old = g->slots;
	int64_t cutoff = INT64_MIN;

	for (size_t i = 0; i < g->cap; i++)
		if (old[i].used && !expired(g, &old[i], now))
			n++;
	if (n > keep) {
		int64_t *uses = xmalloc(n * sizeof(*uses));
		size_t k = 0;
		for (size_t i = 0; i < g->cap; i++)
			if (old[i].used && !expired(g, &old[i], now))
				uses[k++] = last_use(g, &old[i]);
		qsort(uses, n, sizeof(*uses), cmp_i64);
		cutoff = uses[n - keep];
		free(uses);
	}
	g->slots = xcalloc(g->cap, sizeof(*g->slots));
	g->count = 0;
	for (size_t i = 0; i < g->cap; i++)
		if (old[i].used && !expired(g, &old[i], now) && last_use(g, &old[i]) >= cutoff &&
		    g->count < keep) {
			*slot_of(g->slots, g->cap, old[i].key) = old[i];
			g->count++;
		}
	free(old);
	log_info("event=greylist_purge entries=%zu", g->count);
}

/* The store as the file holds it. */
static unsigned char *serialize(const struct greylist *g, size_t *len)
{
	unsigned char *buf = xmalloc(HEADER_LEN + g->count * RECORD_LEN), *p = buf;

	memcpy(p, GREYLIST_MAGIC, MAGIC_LEN);
	memcpy(p + MAGIC_LEN, g->salt, SALT_LEN);
	put64(p + MAGIC_LEN + SALT_LEN, (int64_t)g->count);
	p += HEADER_LEN;
	for (size_t i = 0; i < g->cap; i++)
		if (g->slots[i].used) {
			memcpy(p, g->slots[i].key, KEY_LEN);
			put64(p + KEY_LEN, g->slots[i].first);
			put64(p + KEY_LEN + 8, g->slots[i].passed_until);
			p += RECORD_LEN;
		}
	*len = (size_t)(p - buf);
	return buf;
}

/* Read the file's records into an empty store; false when it is not one. */
static bool deserialize(struct greylist *g, const unsigned char *buf, size_t len)
{
	int64_t n;

	if (len < HEADER_LEN || memcmp(buf, GREYLIST_MAGIC, MAGIC_LEN) != 0)
		return false;
	n = get64(buf + MAGIC_LEN + SALT_LEN);
	if (n < 0 || (size_t)n != (len - HEADER_LEN) / RECORD_LEN ||
	    (len - HEADER_LEN) % RECORD_LEN != 0)
		return false;
	memcpy(g->salt, buf + MAGIC_LEN, SALT_LEN);
	for (const unsigned char *p = buf + HEADER_LEN; p < buf + len; p += RECORD_LEN) {
		struct grey *e;
		if (g->count == g->c->greylist_max_entries)
			break; /* a smaller store than the file's: the rest goes */
		e = slot_of(g->slots, g->cap, p);
		if (e->used)
			continue;
		memcpy(e->key, p, KEY_LEN);
		e->first = get64(p + KEY_LEN);
		e->passed_until = get64(p + KEY_LEN + 8);
		e->used = true;
		g->count++;
	}
	return true;
}

/* Read the file, if there is one; false with err when it cannot be read. */
static bool load(struct greylist *g, char *err, size_t errsz)
{
	char path[4096], bad[4200];
	int fd;
	struct stat st;
	unsigned char *buf;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", g->dir, g->name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return true;
		snprintf(err, errsz, "[greylist] file %s: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		snprintf(err, errsz, "[greylist] file %s: %s", path, strerror(errno));
		return false;
	}
	/* too big to be a store: set aside like any other file that is none */
	ok = st.st_size <= (off_t)HEADER_LEN + (off_t)RECORD_LEN * GREYLIST_ENTRIES_MAX;
	buf = xmalloc(ok ? (size_t)st.st_size + 1 : 1);
	for (off_t got = 0; ok && got < st.st_size;) {
		ssize_t n = read(fd, buf + got, (size_t)(st.st_size - got));
		if (n == 0 || (n < 0 && errno != EINTR))
			ok = false;
		got += n > 0 ? n : 0;
	}
	ok = ok && deserialize(g, buf, (size_t)st.st_size);
	close(fd);
	free(buf);
	if (!ok) {
		snprintf(bad, sizeof(bad), "%s.bad", path);
		log_warnx("event=greylist_file_bad file=%s moved_to=%s", path, bad);
		rename(path, bad);
		memset(g->slots, 0, g->cap * sizeof(*g->slots));
		g->count = 0;
		random_octets(g->salt, SALT_LEN);
	}
	return true;
}

/* Worker: write the snapshot. */
static void save_work(void *arg)
{
	struct save_job *j = arg;

	j->err = durable_write_file(j->g->dir, j->g->name, j->buf, j->len) ? 0 : errno;
}

static void save_later(struct greylist *g);

/* Loop: the snapshot is written (or not). */
static void save_done(void *arg)
{
	struct save_job *j = arg;
	struct greylist *g = j->g;

	if (j->err != 0)
		log_warnx("event=greylist_save_failed file=%s/%s error=\"%s\"", g->dir, g->name,
			  strerror(j->err));
	free(j->buf);
	free(j);
	g->saving = false;
	if (g->dirty)
		save_later(g);
}

/* The save timer: hand a snapshot to the workers. */
static void save_cb(evutil_socket_t fd, short what, void *arg)
{
	struct greylist *g = arg;
	struct save_job *j;

	(void)fd;
	(void)what;
	if (g->saving) /* save_done comes back here */
		return;
	j = xcalloc(1, sizeof(*j));
	j->g = g;
	j->buf = serialize(g, &j->len);
	g->dirty = false;
	g->saving = true;
	workers_submit(g->workers, save_work, save_done, j);
}

/* Write the store a little later, once. */
static void save_later(struct greylist *g)
{
	struct timeval tv = {GREYLIST_SAVE_DELAY, 0};

	g->dirty = true;
	if (!g->saving && !evtimer_pending(g->save_ev, NULL))
		evtimer_add(g->save_ev, &tv);
}

/* See greylist.h. */
struct greylist *greylist_open(const struct conf *c, struct event_base *base, struct workers *w,
			       char *err, size_t errsz)
{
	struct greylist *g;
	const char *slash;

	if (!c->greylist_enabled)
		return NULL;
	g = xcalloc(1, sizeof(*g));
	g->c = conf_hold(c);
	g->workers = w;
	g->cap = 16;
	while (g->cap < 2 * c->greylist_max_entries)
		g->cap <<= 1;
	g->slots = xcalloc(g->cap, sizeof(*g->slots));
	slash = strrchr(c->greylist_file, '/');
	g->dir = slash ? xstrndup(c->greylist_file, (size_t)(slash - c->greylist_file))
		       : xstrdup(".");
	g->name = xstrdup(slash ? slash + 1 : c->greylist_file);
	random_octets(g->salt, SALT_LEN);
	if (!load(g, err, errsz)) {
		greylist_close(g);
		return NULL;
	}
	g->save_ev = base ? evtimer_new(base, save_cb, g) : NULL;
	log_info("event=greylist_open file=%s entries=%zu", c->greylist_file, g->count);
	return g;
}

/* See greylist.h. */
bool greylist_pass(struct greylist *g, const struct sockaddr *client, const char *sender,
		   const char *rcpt, time_t now, unsigned *wait)
{
	unsigned char key[KEY_LEN];
	struct grey *e;

	triplet_key(g, client, sender, rcpt, key);
	e = slot_of(g->slots, g->cap, key);
	if (e->used && e->passed_until > now) {
		e->passed_until = now + (int64_t)g->c->greylist_pass_time;
		if (g->save_ev)
			save_later(g);
		return true;
	}
	if (e->used && !expired(g, e, now) && e->first + (int64_t)g->c->greylist_delay <= now) {
		e->passed_until = now + (int64_t)g->c->greylist_pass_time;
		if (g->save_ev)
			save_later(g);
		return true;
	}
	if (!e->used || expired(g, e, now)) { /* a new round */
		if (!e->used && g->count >= g->c->greylist_max_entries) {
			purge(g, now);
			e = slot_of(g->slots, g->cap, key);
		}
		if (!e->used)
			g->count++;
		memcpy(e->key, key, KEY_LEN);
		e->used = true;
		e->first = now;
		e->passed_until = 0;
		if (g->save_ev)
			save_later(g);
	}
	*wait = (unsigned)(e->first + (int64_t)g->c->greylist_delay - now);
	return false;
}

/* See greylist.h. */
size_t greylist_count(const struct greylist *g)
{
	return g->count;
}

/* See greylist.h. */
void greylist_configure(struct greylist *g, const struct conf *c)
{
	const struct conf *old = g->c;

	g->c = conf_hold(c);
	conf_free(old);
}

/* See greylist.h. */
bool greylist_save(struct greylist *g)
{
	size_t len;
	unsigned char *buf = serialize(g, &len);
	bool ok = durable_write_file(g->dir, g->name, buf, len);

	free(buf);
	if (ok)
		g->dirty = false;
	return ok;
}

/* See greylist.h. */
void greylist_close(struct greylist *g)
{
	if (g == NULL)
		return;
	if (g->dirty && !greylist_save(g))
		log_warn("event=greylist_save_failed file=%s/%s", g->dir, g->name);
	if (g->save_ev)
		event_free(g->save_ev);
	free(g->slots);
	free(g->dir);
	free(g->name);
	conf_free(g->c);
	free(g);
}
