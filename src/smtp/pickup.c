/*
 * pickup.c - the maildrop directory into the queue.  See pickup.h.
 */
#include "pickup.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "addr.h"
#include "conf.h"
#include "envelope.h"
#include "intake.h"
#include "intake_dkim.h"
#include "log.h"
#include "maildrop.h"
#include "queue.h"
#include "recipients.h"
#include "scheduler.h"
#include "server.h"
#include "util.h"

#define PICKUP_RESCAN_SECONDS 60
#define PICKUP_BATCH 64 /* files taken in one scan; the rest next time */
#define PICKUP_INFLIGHT_MAX 256
#define PICKUP_READ 65536

struct pickup {
	struct server *srv;
	const struct conf *conf; /* held: srv->conf as the current message began */
	struct intake in;        /* the drop file on its way into the queue */
	bool dkim;               /* the signing stage is in it */
	bool stopping;
	int inotify_fd;
	struct event *inotify_ev;
	struct event *timer;
	char *inflight[PICKUP_INFLIGHT_MAX]; /* names committing right now */
	size_t ninflight;
	bool waiting; /* a scan stopped while intake decided a message */
};

struct pickup_job {
	struct pickup *p;
	char *name;
	struct envelope env;
	unsigned uid;
};

/* "dir/name" into buf. */
static void drop_path(const struct pickup *p, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", p->srv->conf->maildrop_dir, name);
}

/* Is name being committed right now? */
static bool inflight(const struct pickup *p, const char *name)
{
	for (size_t i = 0; i < p->ninflight; i++)
		if (strcmp(p->inflight[i], name) == 0)
			return true;
	return false;
}

/* Forget an in-flight name. */
static void inflight_remove(struct pickup *p, const char *name)
{
	for (size_t i = 0; i < p->ninflight; i++)
		if (strcmp(p->inflight[i], name) == 0) {
			free(p->inflight[i]);
			p->inflight[i] = p->inflight[--p->ninflight];
			return;
		}
}

/* Put a drop file that cannot be taken aside, for a person to look at. */
static void set_aside(struct pickup *p, const char *name, const char *why)
{
	char from[4096], to[4200];

	drop_path(p, name, from, sizeof(from));
	snprintf(to, sizeof(to), "%s/.bad-%s", p->srv->conf->maildrop_dir, name);
	if (rename(from, to) != 0) {
		log_warnx(
			"event=pickup_refused file=%s error=\"%s\" action=none rename_error=\"%s\"",
			from, why, strerror(errno));
		return;
	}
	log_warnx("event=pickup_refused file=%s error=\"%s\" action=renamed to=%s", from, why, to);
}

/* Release a job. */
static void job_free(struct pickup_job *j)
{
	envelope_free(&j->env);
	free(j->name);
	free(j);
}

static bool refused(struct pickup *p, const char *name, enum status st, const char *stage);

/* intake settled the drop file: queued, discarded, or refused. */
static void pickup_done(void *arg, const struct intake_result *r)
{
	struct pickup_job *j = arg;
	struct pickup *p = j->p;
	char path[4096];

	if (r->outcome == INTAKE_DISCARDED) {
		drop_path(p, j->name, path, sizeof(path));
		unlink(path); /* a stage said to drop it: done with */
		log_info("event=pickup_discarded file=%s uid=%u stage=%s", j->name, j->uid,
			 r->stage ? r->stage : "intake");
	} else if (r->outcome == INTAKE_QUEUED) {
		char from[ESCAPED_WORD_MAX];

		drop_path(p, j->name, path, sizeof(path));
		unlink(path); /* the queue has it: the drop file goes */
		escape_word(j->env.sender, from, sizeof(from));
		log_info("event=pickup queue_id=%s uid=%u from=%s rcpts=%zu size=%llu", j->env.id,
			 j->uid, from, j->env.nrcpts, (unsigned long long)j->env.size);
		scheduler_add(p->srv->scheduler, &j->env);
	} else if (r->err != 0) {
		log_warnx("event=pickup_commit_failed file=%s error=\"%s\" note=\"retried later\"",
			  j->name, strerror(r->err));
	} else {
		refused(p, j->name, r->status, r->stage);
	}
	inflight_remove(p, j->name);
	job_free(j);
	if (p->waiting && !p->stopping) { /* a scan stopped for this one: go on */
		struct timeval now = {0, 0};
		p->waiting = false;
		evtimer_add(p->timer, &now);
	}
}

/* The error a refused recipient of a drop file is failed with. */
static const char *rcpt_error(enum status st)
{
	switch (st) {
	case STATUS_USER_UNKNOWN:
		return "5.1.1 user unknown";
	case STATUS_BAD_MAILBOX:
		return "5.1.3 not a valid mailbox name";
	default:
		return "4.3.5 local configuration error";
	}
}

/* Resolve the drop file's recipients into the envelope, each with the
 * file's NOTIFY request. */
static void add_recipients(struct pickup *p, struct pickup_job *j, const struct maildrop_header *h)
{
	const struct rcpt_dsn dsn = {h->notify, NULL};
	/* no lookup tables here: a drop file is decided at once, and a domain
	 * local only by [sql] is relayed to its MX hosts (docs/sql.md) */
	const struct recipients_ctx rc = {p->conf, p->srv->users, p->srv->aliases, NULL};

	for (size_t i = 0; i < h->nrcpts; i++) {
		struct mailaddr a;
		const char *end, *kind = "";
		char why[512], esc[600], rcpt[ESCAPED_WORD_MAX];
		size_t before = j->env.nrcpts;
		enum status st;

		if (addr_parse_path(h->rcpts[i], &end, &a, ADDR_ALLOW_POSTMASTER) != ADDR_OK)
			continue; /* maildrop_parse_header checked it */
		st = recipients_add(&rc, &j->env, &a, h->rcpts[i], &dsn, "", true, &kind, why,
				    sizeof(why));
		if (st == STATUS_OK)
			continue;
		/* nobody to say 550 to: the recipient fails now, and is logged */
		escape_text(why, strlen(why), esc, sizeof(esc));
		escape_word(h->rcpts[i], rcpt, sizeof(rcpt));
		log_info("event=pickup_rcpt_failed rcpt=%s status=%s why=\"%s\"", rcpt, kind, esc);
		if (j->env.nrcpts == before) {
			envelope_add_rcpt(&j->env, h->rcpts[i]);
			j->env.rcpts[before].state = RCPT_FAILED;
			j->env.rcpts[before].notify = h->notify;
			env_rcpt_set_error(&j->env.rcpts[before], rcpt_error(st));
		}
	}
}

/* A new job for the drop file name of uid, its envelope from h. */
static struct pickup_job *job_new(struct pickup *p, const char *name, unsigned uid,
				  const struct maildrop_header *h)
{
	struct pickup_job *j = xcalloc(1, sizeof(*j));
	char client[64];

	j->p = p;
	j->name = xstrdup(name);
	j->uid = uid;
	envelope_init(&j->env);
	j->env.arrival = time(NULL);
	j->env.sender = xstrdup(h->sender);
	j->env.client = xstrdup("local");
	snprintf(client, sizeof(client), "uid %u", uid);
	j->env.client_name = xstrdup(client);
	j->env.helo = xstrdup("");
	j->env.ret = h->ret;
	j->env.envid = h->envid ? xstrdup(h->envid) : NULL;
	add_recipients(p, j, h);
	return j;
}

/*
 * What intake refused: a message that can never be taken (a mail loop, too
 * big, a stage's permanent refusal) is set aside for a person, and true
 * returned; a full spool, a write error or a stage's "not now" leaves the
 * drop file where it is, for a later scan, and false says to stop scanning
 * until then.
 */
static bool refused(struct pickup *p, const char *name, enum status st, const char *stage)
{
	char why[160];

	if (stage != NULL && status_code(st) >= 500) {
		snprintf(why, sizeof(why), "refused by %s: %d %s", stage, status_code(st),
			 status_esc(st));
		set_aside(p, name, why);
		return true;
	}
	switch (st) {
	case STATUS_LOOP:
		snprintf(why, sizeof(why), "mail loop: more than %u Received: headers",
			 p->conf->limits.received_max);
		set_aside(p, name, why);
		return true;
	case STATUS_TOO_BIG:
		snprintf(why, sizeof(why), "larger than message_size_max (%llu octets)",
			 (unsigned long long)p->conf->limits.message_size_max);
		set_aside(p, name, why);
		return true;
	default:
		log_warnx("event=pickup_deferred file=%s status=%d esc=%s note=\"retried later\"",
			  name, status_code(st), status_esc(st));
		return false;
	}
}

/* A reload swapped srv->conf: the next message goes in under the new one
 * (the intake is idle: nothing open, nothing being decided). */
static void pickup_conf_update(struct pickup *p)
{
	if (p->conf == p->srv->conf)
		return;
	conf_free(p->conf);
	p->conf = conf_hold(p->srv->conf);
	intake_set_conf(&p->in, p->conf);
	if (!p->dkim && intake_dkim_enabled()) { /* keys since the reload */
		intake_stage_add(&p->in, &intake_dkim_stage, NULL);
		p->dkim = true;
	}
}

/* Take one drop file into the queue through intake; false when it must wait. */
static bool pickup_one(struct pickup *p, const char *name)
{
	char path[4096], buf[PICKUP_READ], err[256], key[INTAKE_LOG_KEY_MAX];
	struct maildrop_header h;
	struct intake_origin o = {.source = INTAKE_PICKUP, .sign = true, .log_key = key};
	struct pickup_job *j;
	struct stat st;
	ssize_t n = 0;
	size_t len = 0, hlen;
	enum status res;
	int fd;

	drop_path(p, name, path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return true; /* gone already */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		set_aside(p, name, "not a regular file");
		return true;
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	if (!maildrop_parse_header(buf, len, &h, err, sizeof(err))) {
		close(fd);
		set_aside(p, name, err);
		return true;
	}
	pickup_conf_update(p);
	j = job_new(p, name, (unsigned)st.st_uid, &h);
	hlen = h.length;
	maildrop_header_free(&h);
	o.uid = j->uid;
	snprintf(key, sizeof(key), "file=%s", name);
	res = intake_open(&p->in, &j->env, &o, (uint64_t)st.st_size);
	if (res != STATUS_OK) {
		close(fd);
		job_free(j);
		return refused(p, name, res, NULL);
	}
	intake_write(&p->in, buf + hlen, len - hlen);
	/* after a refusal (too big, a write error) nothing more is worth reading */
	while (intake_status(&p->in) == STATUS_OK && (n = read(fd, buf, sizeof(buf))) > 0)
		intake_write(&p->in, buf, (size_t)n);
	close(fd);
	if (n < 0) {
		log_warn("event=pickup_read_failed file=%s note=\"retried later\"", path);
		intake_abort(&p->in);
		job_free(j);
		return false;
	}
	p->inflight[p->ninflight++] = xstrdup(name);
	intake_finish(&p->in, STATUS_OK, pickup_done, j); /* pickup_done settles it */
	return true;
}

/* See pickup.h. */
void pickup_scan(struct pickup *p)
{
	DIR *d = opendir(p->srv->conf->maildrop_dir);
	struct dirent *de;
	size_t taken = 0, slen = strlen(MAILDROP_SUFFIX);

	if (d == NULL)
		return;
	while (!p->stopping && (de = readdir(d)) != NULL && taken < PICKUP_BATCH &&
	       p->ninflight < PICKUP_INFLIGHT_MAX) {
		size_t len = strlen(de->d_name);
		struct stat st;
		/* a client that died while writing: its temp file goes after an hour */
		if (strncmp(de->d_name, ".tmp-", 5) == 0 &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_mtime < time(NULL) - 3600) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (de->d_name[0] == '.' || len <= slen ||
		    strcmp(de->d_name + len - slen, MAILDROP_SUFFIX) != 0 ||
		    inflight(p, de->d_name))
			continue;
		if (intake_pending(&p->in)) { /* its stages run: one at a time */
			p->waiting = true;
			break;
		}
		if (!pickup_one(p, de->d_name))
			break; /* the queue cannot take it now: the timer tries again */
		taken++;
	}
	closedir(d);
	if (taken == PICKUP_BATCH && p->timer) { /* more may wait: look again right away */
		struct timeval now = {0, 0};
		evtimer_add(p->timer, &now);
	}
}

/* inotify: a file was renamed into the directory. */
static void inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[4096];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pickup_scan(arg);
}

/* The periodic look, in case a notification was missed. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pickup *p = arg;
	struct timeval tv = {PICKUP_RESCAN_SECONDS, 0};

	(void)fd;
	(void)what;
	pickup_scan(p);
	if (!evtimer_pending(p->timer, NULL))
		evtimer_add(p->timer, &tv);
}

/* See pickup.h. */
struct pickup *pickup_open(struct server *srv)
{
	struct pickup *p = xcalloc(1, sizeof(*p));
	struct timeval tv = {PICKUP_RESCAN_SECONDS, 0};

	p->srv = srv;
	p->conf = conf_hold(srv->conf);
	intake_init(&p->in, p->conf, srv->queue);
	if ((p->dkim = intake_dkim_enabled()))
		intake_stage_add(&p->in, &intake_dkim_stage, NULL);
	p->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (p->inotify_fd >= 0 && inotify_add_watch(p->inotify_fd, srv->conf->maildrop_dir,
						    IN_MOVED_TO | IN_CLOSE_WRITE) >= 0) {
		p->inotify_ev =
			event_new(srv->base, p->inotify_fd, EV_READ | EV_PERSIST, inotify_cb, p);
		event_add(p->inotify_ev, NULL);
	} else {
		log_warn("event=pickup_inotify_failed dir=%s note=\"picked up every %ds\"",
			 srv->conf->maildrop_dir, PICKUP_RESCAN_SECONDS);
	}
	p->timer = evtimer_new(srv->base, timer_cb, p);
	evtimer_add(p->timer, &tv);
	pickup_scan(p);
	return p;
}

/* See pickup.h. */
void pickup_stop(struct pickup *p)
{
	if (p == NULL || p->stopping)
		return;
	p->stopping = true;
	if (p->inotify_ev)
		event_free(p->inotify_ev);
	p->inotify_ev = NULL;
	if (p->inotify_fd >= 0)
		close(p->inotify_fd);
	p->inotify_fd = -1;
	event_free(p->timer);
	p->timer = NULL;
}

/* See pickup.h. */
void pickup_close(struct pickup *p)
{
	if (p == NULL)
		return;
	pickup_stop(p);
	for (size_t i = 0; i < p->ninflight; i++)
		free(p->inflight[i]);
	intake_free(&p->in);
	conf_free(p->conf);
	free(p);
}
