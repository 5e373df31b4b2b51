/*
 * scheduler.c - the queue runner.
 *
 * Every committed message is held in memory as a qentry (its envelope
 * with per-recipient state).  scheduler_run() starts a delivery job for
 * each message with a recipient due, within the global and per-destination
 * limits (a destination is a route key, route.h), and arms one timer for
 * the next due time.  A job runs on a delivery worker thread: it works out
 * each due recipient's route once, opens the message once (queue_read)
 * for all its deliveries, delivers the recipients in turn, and after EACH
 * recipient writes the envelope durably (queue_update), so a crash
 * between a delivery and the envelope update can deliver again only the
 * one recipient in flight (the documented window).  LMTP and SMTP
 * recipients are the exception: when the first due one for a route is
 * reached, all of that route's due recipients go in one transaction, so
 * for them the window is that transaction's recipients.  When no
 * recipient is pending the message leaves the queue (queue_remove).  The
 * job's outcome returns to the loop, which swaps in the new envelope and
 * schedules again.  The spool itself is the queue's: the scheduler knows
 * messages by ID only.
 */
#include "scheduler.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "conf.h"
#include "dsn.h"
#include "envelope.h"
#include "hato_limits.h"
#include "lmtp.h"
#include "log.h"
#include "maildir.h"
#include "metrics.h"
#include "outcome.h"
#include "queue.h"
#include "relay.h"
#include "reports.h"
#include "route.h"
#include "util.h"
#include "worker.h"

#define DEST_MAX 64            /* destinations tracked for per-destination limits */
#define TIMER_MAX 3600         /* never sleep longer than this */
#define LMTP_TIMEOUT 300       /* seconds per LMTP connect, read or write (RFC 5321 §4.5.3.2) */
#define ESC_UNREADABLE "4.3.0" /* the queued message cannot be read: retried */
#define ESC_RETURNED "5.0.0"   /* hato queue bounce: returned by the administrator */

struct qentry {
	struct qentry *next;
	struct envelope env;
	bool busy;          /* a job owns a copy of it right now */
	time_t retry_after; /* a write failed (envelope, report, removal): not before then */
	bool unsaved;       /* its envelope could not be written: write it before delivering */
	bool flush;         /* flushed while busy: due again when the job ends */
	bool dest_known;    /* dest is worked out (again after each job) */
	char dest[ROUTE_KEY_MAX]; /* the route key of its first due recipient */
};

struct dest_count {
	char name[ROUTE_KEY_MAX]; /* a route key */
	unsigned active;
};

struct scheduler {
	const struct conf *conf;
	struct queue *queue;
	struct qentry *entries;
	struct workers *workers;
	struct relay *relay;
	struct event *timer;
	struct event *reuse_timer; /* ends idle remote connections */
	bool expiring;             /* a relay_expire job is running */
	unsigned active;
	bool stopping;
	struct dest_count dests[DEST_MAX];
};

struct delivery_job {
	struct scheduler *sc;
	const struct conf *conf; /* held: the configuration the job started under */
	struct qentry *e;
	struct envelope env;    /* the job's copy */
	bool removed;           /* the message left the queue */
	bool unsaved;           /* the entry's envelope is not on disk yet (in) */
	bool persist_failed;    /* writing the envelope or removing failed (out) */
	struct envelope report; /* a notification the job queued (id empty: none) */
	int msg_fd;             /* the message, open for the job's deliveries; -1: not yet */
	uint64_t msg_len;       /* its octets (Received: and fix-ups included) */
	int msg_err;            /* opening it failed with this errno */
};

/* Deep copy of an envelope, through its text form. */
static void envelope_copy(struct envelope *dst, const struct envelope *src)
{
	struct strbuf b;
	char err[128];

	strbuf_init(&b);
	envelope_format(src, &b);
	if (!envelope_parse(b.s, b.len, dst, err, sizeof(err)))
		fatalx("event=scheduler_bug error=\"envelope copy: %s\"", err);
	strbuf_free(&b);
}

/* A queued recipient's route: as local when a lookup table made it so at
 * RCPT time (route.h). */
static void rcpt_route(const struct conf *c, const struct env_rcpt *r, struct route *out)
{
	if (r->local)
		route_rcpt_local(c, r->addr, out);
	else
		route_rcpt(c, r->addr, out);
}

/* The earliest next attempt among pending recipients; 0 when none pend
 * (a finished message that only needs removing is due at once). */
static time_t entry_due(const struct qentry *e)
{
	time_t due = 0;
	bool any = false;

	if (e->unsaved || report_owed(&e->env))
		return e->retry_after; /* its envelope to write, or a notification to queue */
	for (size_t i = 0; i < e->env.nrcpts; i++) {
		const struct env_rcpt *r = &e->env.rcpts[i];
		if (r->state != RCPT_PENDING)
			continue;
		if (!any || r->next_attempt < due)
			due = r->next_attempt;
		any = true;
	}
	return any ? due : e->retry_after; /* none pending: the removal is due */
}

/* Is e held with something left to deliver, and nothing else to do (an
 * envelope to write, a report to queue: those go on while it is held)? */
static bool entry_held(const struct qentry *e)
{
	return e->env.hold != NULL && !e->unsaved && !report_owed(&e->env) &&
	       envelope_pending(&e->env) > 0;
}

/* Deliver one recipient to the Maildir of its route rt (worker thread); the outcome in r. */
static void deliver_maildir(const struct conf *c, const struct delivery_job *j, const char *addr,
			    const struct route *rt, struct delivery_result *r)
{
	char to[sizeof(rt->local) + sizeof(rt->domain)];

	if (rt->mailbox[0] == '\0') {
		result_set(r, OUTCOME_PERMFAIL, "5.1.3", "no valid mailbox path for %s", addr);
		return;
	}
	snprintf(to, sizeof(to), "%s@%s", rt->local, rt->domain);
	if (j->env.junk) { /* the Maildir++ folder Junk, as Dovecot and others name it */
		char junk[sizeof(rt->mailbox) + sizeof(MAILDIR_JUNK)];

		snprintf(junk, sizeof(junk), "%s/%s", rt->mailbox, MAILDIR_JUNK);
		maildir_deliver(junk, j->msg_fd, j->msg_len, j->env.sender, to, c->hostname, r);
		return;
	}
	maildir_deliver(rt->mailbox, j->msg_fd, j->msg_len, j->env.sender, to, c->hostname, r);
}

/* One destination's share of a job: recipients idx[0..n) of the job's envelope. */
struct dest_group {
	const struct route *rt; /* the route they share */
	size_t *idx;
	size_t n;
	struct delivery_result *res; /* res[k] for idx[k] */
	char (*remote)[300];         /* the server that answered, "" when none */
	char tls[32];                /* the TLS version of a remote delivery, "" otherwise */
	bool dsn;                    /* the next hop took the DSN parameters */
};

/* " RET=... ENVID=..." for a next hop offering DSN, into buf; NULL when none apply. */
static const char *dsn_mail_params(const struct envelope *env, char *buf, size_t size)
{
	const char *ret = dsn_ret_name(env->ret);
	int n = 0;

	buf[0] = '\0';
	if (ret != NULL)
		n = snprintf(buf, size, " RET=%s", env->ret == DSN_RET_FULL ? "FULL" : "HDRS");
	if (env->envid != NULL && n >= 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, " ENVID=%s", env->envid);
	return buf[0] ? buf : NULL;
}

/* " NOTIFY=... ORCPT=..." of recipient r, in a new allocation; NULL when none apply. */
static char *dsn_rcpt_params(const struct env_rcpt *r)
{
	char words[DSN_NOTIFY_TEXT_MAX];
	struct strbuf b;

	strbuf_init(&b);
	if (r->notify != 0 && dsn_format_notify(r->notify, words, sizeof(words))) {
		for (char *p = words; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		strbuf_printf(&b, " NOTIFY=%s", words);
	}
	if (r->orcpt != NULL)
		strbuf_printf(&b, " ORCPT=%s", r->orcpt);
	if (b.len == 0) {
		strbuf_free(&b);
		return NULL;
	}
	return b.s;
}

/* The job's message, opened at its first use (worker thread); false with
 * j->msg_err when it cannot be read. */
static bool job_message(struct delivery_job *j)
{
	if (j->msg_fd < 0 && j->msg_err == 0) {
		j->msg_fd = queue_read(j->sc->queue, j->env.id, &j->msg_len);
		if (j->msg_fd < 0) {
			j->msg_err = errno ? errno : EIO;
			j->msg_len = j->env.size; /* what the client sent: SIZE= all the same */
			log_warn("event=queue_read_failed queue_id=%s", j->env.id);
		}
	}
	return j->msg_fd >= 0;
}

/* Deliver a group (worker thread): LMTP and SMTP in one transaction, Maildirs one by one. */
static void deliver_group(struct delivery_job *j, struct dest_group *g)
{
	const struct conf *c = j->conf;
	const struct envelope *env = &j->env;
	char eb[128];

	/* a remote hop may refuse the recipients before the message is
	 * needed: the relay finds out at DATA; the others need it first */
	if (!job_message(j) && g->rt->transport != ROUTE_SMTP) {
		for (size_t k = 0; k < g->n; k++)
			result_set(&g->res[k], OUTCOME_TEMPFAIL, ESC_UNREADABLE,
				   "cannot read the queued message: %s",
				   strerror_r(j->msg_err, eb, sizeof(eb))); /* GNU: the text */
		return;
	}
	switch (g->rt->transport) {
	case ROUTE_LMTP: {
		const char **rcpts = xcalloc(g->n, sizeof(*rcpts));

		for (size_t k = 0; k < g->n; k++)
			rcpts[k] = env->rcpts[g->idx[k]].addr;
		lmtp_deliver(g->rt->lmtp, c->hostname, j->msg_fd, j->msg_len, env->sender, rcpts,
			     g->n, LMTP_TIMEOUT, g->res);
		free(rcpts);
		break;
	}
	case ROUTE_SMTP: {
		struct relay_rcpt *rr = xcalloc(g->n, sizeof(*rr));
		char mail_params[DSN_ENVID_MAX + 32];
		struct relay_msg m = {
			.queue_id = env->id,
			.mail_params = dsn_mail_params(env, mail_params, sizeof(mail_params)),
			.sender = env->sender,
			.fd = j->msg_fd,
			.read_err = j->msg_err,
			.size = j->msg_len, /* Received: and fix-ups included, not env->size */
			.eightbit = env->body == BODY_8BITMIME,
			.smtputf8 = env->smtputf8,
			.rcpts = rr,
			.nrcpts = g->n};

		for (size_t k = 0; k < g->n; k++) {
			rr[k].addr = env->rcpts[g->idx[k]].addr;
			rr[k].params = dsn_rcpt_params(&env->rcpts[g->idx[k]]);
		}
		relay_deliver(j->sc->relay, c, g->rt, &m);
		for (size_t k = 0; k < g->n; k++) {
			g->res[k] = rr[k].res;
			strcpy_bounded(g->remote[k], rr[k].remote, sizeof(g->remote[k]));
			free((char *)rr[k].params);
		}
		strcpy_bounded(g->tls, m.tls, sizeof(g->tls));
		g->dsn = m.dsn;
		free(rr);
		break;
	}
	case ROUTE_MAILDIR:
		for (size_t k = 0; k < g->n; k++)
			deliver_maildir(c, j, env->rcpts[g->idx[k]].addr, g->rt, &g->res[k]);
		break;
	}
}

/* Write the envelope durably, or remove the message when nothing pends. */
static bool job_persist(struct delivery_job *j)
{
	struct queue *q = j->sc->queue;

	if (envelope_pending(&j->env) == 0 && !report_owed(&j->env)) {
		/* ENOENT: gone already (removed by hand): nothing left to do */
		if (!queue_remove(q, j->env.id) && errno != ENOENT) {
			log_warn("event=queue_remove_failed queue_id=%s", j->env.id);
			return false;
		}
		j->removed = true;
		return true;
	}
	if (!queue_update(q, &j->env)) {
		log_warn("event=envelope_write_failed queue_id=%s", j->env.id);
		return false;
	}
	return true;
}

/* Who answered an attempt of group g: the remote server ("" when none did:
 * NULL), the LMTP server, or "maildir". */
static const char *attempt_host(const struct dest_group *g, const char *remote)
{
	switch (g->rt->transport) {
	case ROUTE_LMTP:
		return g->rt->lmtp;
	case ROUTE_SMTP:
		return remote[0] != '\0' ? remote : NULL;
	case ROUTE_MAILDIR:
	default:
		return route_transport_name(ROUTE_MAILDIR);
	}
}

/* The transport label of a route's transport. */
static size_t metrics_transport(enum route_transport t)
{
	switch (t) {
	case ROUTE_LMTP:
		return METRICS_TRANSPORT_LMTP;
	case ROUTE_SMTP:
		return METRICS_TRANSPORT_SMTP;
	case ROUTE_MAILDIR:
	default:
		return METRICS_TRANSPORT_MAILDIR;
	}
}

/* Record recipient r's result res of this attempt: its attempt history, state, next attempt,
 * error, log. */
static void rcpt_settle(struct delivery_job *j, struct env_rcpt *r, struct delivery_result *res,
			const char *remote, const struct dest_group *g)
{
	const char *tls = g->tls;
	const struct conf *c = j->conf;
	char line[300], esc[600], addr[ESCAPED_WORD_MAX];

	r->attempts++;
	snprintf(line, sizeof(line), "%s %s", res->esc, res->text);
	env_rcpt_add_attempt(r, time(NULL), res->outcome, attempt_host(g, remote), tls, line);
	if (res->outcome == OUTCOME_DELIVERED) {
		r->state = RCPT_DELIVERED;
	} else if (res->outcome == OUTCOME_PERMFAIL) {
		r->state = RCPT_FAILED;
	} else {
		time_t next = backoff_next(c->retry_schedule, c->nretry, c->queue_lifetime,
					   j->env.arrival, r->attempts, time(NULL));
		if (next == (time_t)-1) {
			r->state = RCPT_FAILED;
			snprintf(line, sizeof(line), "%.200s", res->text);
			result_set(res, OUTCOME_PERMFAIL, "5.4.7",
				   "gave up after %u attempts in %us: %s", r->attempts,
				   c->queue_lifetime, line);
		} else {
			r->next_attempt = next;
		}
	}
	metrics_add(METRIC_DELIVERIES, metrics_transport(g->rt->transport), res->outcome, 1);
	if (res->outcome == OUTCOME_DELIVERED) {
		time_t now = time(NULL);
		uint64_t delay = now > j->env.arrival ? (uint64_t)(now - j->env.arrival) : 0;
		metrics_observe(METRIC_DELIVERY_DELAY, metrics_transport(g->rt->transport),
				delay * METRICS_USEC);
	}
	snprintf(line, sizeof(line), "%s %s", res->esc, res->text);
	env_rcpt_set_error(r, line);
	escape_text(res->text, strlen(res->text), esc, sizeof(esc));
	escape_word(r->addr, addr, sizeof(addr));
	log_info("event=delivery queue_id=%s rcpt=%s status=%s esc=%s attempts=%u "
		 "delay=%llds%s%s%s%s "
		 "text=\"%s\"",
		 j->env.id, addr, outcome_name(res->outcome), res->esc, r->attempts,
		 (long long)(time(NULL) - j->env.arrival), remote[0] ? " relay=" : "", remote,
		 tls[0] ? " tls=" : "", tls, esc);
	report_mark(c, &j->env, r, g->rt->transport == ROUTE_SMTP, g->dsn && r->notify != 0);
}

/* Worker thread: deliver every due recipient of one message, a destination at a time. */
static void job_work(void *arg)
{
	struct delivery_job *j = arg;
	const struct conf *c = j->conf;
	size_t total = j->env.nrcpts, ndue = 0;
	struct dest_group g = {.idx = xcalloc(total, sizeof(size_t)),
			       .res = xcalloc(total, sizeof(struct delivery_result)),
			       .remote = xcalloc(total, sizeof(*g.remote))};
	size_t *due = xcalloc(total, sizeof(*due)); /* the recipients due now, in order */
	struct route *routes;                       /* routes[k]: due[k]'s route */
	bool *taken;                                /* due[k] is in a group already */
	time_t now = time(NULL);

	/* what an earlier job could not write goes to disk before anything is
	 * delivered: else a crash would deliver all of that again */
	j->persist_failed = j->unsaved && !job_persist(j);
	for (size_t i = 0; i < total && !j->persist_failed && !j->removed && !j->env.hold; i++)
		if (j->env.rcpts[i].state == RCPT_PENDING && j->env.rcpts[i].next_attempt <= now)
			due[ndue++] = i;
	routes = xcalloc(ndue + 1, sizeof(*routes));
	taken = xcalloc(ndue + 1, sizeof(*taken));
	for (size_t k = 0; k < ndue; k++) /* each recipient's route, once */
		rcpt_route(c, &j->env.rcpts[due[k]], &routes[k]);
	for (size_t k = 0; k < ndue; k++) {
		bool together;

		if (taken[k])
			continue;
		g.rt = &routes[k];
		together = g.rt->transport != ROUTE_MAILDIR; /* one LMTP/SMTP transaction */
		g.n = 0;
		g.tls[0] = '\0';
		g.dsn = false;
		for (size_t m = k; m < ndue && (m == k || together); m++) {
			if (taken[m] || strcmp(routes[m].key, g.rt->key) != 0)
				continue;
			taken[m] = true;
			g.idx[g.n] = due[m];
			g.remote[g.n++][0] = '\0';
		}
		uint64_t start = metrics_clock_usec();
		deliver_group(j, &g);
		metrics_observe(METRIC_DELIVERY_SECONDS, metrics_transport(g.rt->transport),
				metrics_clock_usec() - start);
		for (size_t m = 0; m < g.n; m++)
			rcpt_settle(j, &j->env.rcpts[g.idx[m]], &g.res[m], g.remote[m], &g);
		if (!job_persist(j)) {
			j->persist_failed = true; /* no more deliveries until it is written */
			break;
		}
	}
	/* after a failed write, not again in this job: job_done schedules it */
	if (!j->persist_failed && !j->removed && report_owed(&j->env)) {
		/* opened first: job_message sets msg_len, which a job that
		 * delivered nothing (hato queue bounce) has not read yet */
		int fd = job_message(j) ? j->msg_fd : -1;

		if (report_queue(c, j->sc->queue, &j->env, fd, j->msg_len, &j->report))
			j->persist_failed =
				!job_persist(j); /* marks cleared: the report is queued */
	} else if (!j->persist_failed && !j->removed && envelope_pending(&j->env) == 0 &&
		   !report_owed(&j->env)) {
		j->persist_failed = !job_persist(j);
	}
	if (j->msg_fd >= 0)
		close(j->msg_fd);
	free(routes);
	free(taken);
	free(due);
	free(g.idx);
	free(g.res);
	free(g.remote);
}

static void scheduler_run(struct scheduler *sc);
static void entry_add(struct scheduler *sc, const struct envelope *env);
static void reuse_timer_arm(struct scheduler *sc);

/* The destination's counter, created on demand. */
static struct dest_count *dest_get(struct scheduler *sc, const char *name)
{
	struct dest_count *free_slot = NULL;

	for (size_t i = 0; i < DEST_MAX; i++) {
		if (sc->dests[i].active > 0 && strcmp(sc->dests[i].name, name) == 0)
			return &sc->dests[i];
		if (sc->dests[i].active == 0 && free_slot == NULL)
			free_slot = &sc->dests[i];
	}
	if (free_slot)
		strcpy_bounded(free_slot->name, name, sizeof(free_slot->name));
	return free_slot;
}

/* Loop: a job finished. */
static void job_done(void *arg)
{
	struct delivery_job *j = arg;
	struct scheduler *sc = j->sc;
	struct qentry *e = j->e, **pp;
	struct dest_count *d = dest_get(sc, e->dest);

	if (d && d->active > 0)
		d->active--;
	sc->active--;
	e->busy = false;
	e->dest_known = false;
	envelope_free(&e->env);
	e->env = j->env; /* the job's copy is the truth now */
	/* the envelope or the report could not be written, or the message not
	 * removed: again in a minute, not at once and over and over */
	e->unsaved = j->persist_failed;
	if (j->persist_failed || report_owed(&e->env) ||
	    (!j->removed && envelope_pending(&e->env) == 0))
		e->retry_after = time(NULL) + 60;
	if (j->report.id[0] != '\0') {
		entry_add(sc, &j->report);
		envelope_free(&j->report);
	}
	conf_free(j->conf);
	if (e->flush) { /* a flush came while the job ran: it still counts */
		e->flush = false;
		for (size_t i = 0; i < e->env.nrcpts; i++)
			if (e->env.rcpts[i].state == RCPT_PENDING)
				e->env.rcpts[i].next_attempt = 0;
	}
	if (j->removed) {
		for (pp = &sc->entries; *pp; pp = &(*pp)->next)
			if (*pp == e) {
				*pp = e->next;
				break;
			}
		log_info("event=removed queue_id=%s", e->env.id);
		envelope_free(&e->env);
		free(e);
	}
	free(j);
	reuse_timer_arm(sc);
	scheduler_run(sc);
}

/* Start a job for e. */
static void job_start(struct scheduler *sc, struct qentry *e, struct dest_count *d)
{
	struct delivery_job *j = xcalloc(1, sizeof(*j));

	j->sc = sc;
	j->conf = conf_hold(sc->conf);
	j->e = e;
	j->msg_fd = -1;
	j->unsaved = e->unsaved;
	envelope_copy(&j->env, &e->env);
	e->busy = true;
	sc->active++;
	if (d)
		d->active++;
	workers_submit(sc->workers, job_work, job_done, j);
}

/* Timer: something is due. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	scheduler_run(arg);
}

/* The destination (route key) of e's first due recipient, into e->dest. */
static void entry_dest(const struct conf *c, struct qentry *e, time_t now)
{
	struct route rt;

	e->dest[0] = '\0';
	for (size_t i = 0; i < e->env.nrcpts; i++)
		if (e->env.rcpts[i].state == RCPT_PENDING && e->env.rcpts[i].next_attempt <= now) {
			rcpt_route(c, &e->env.rcpts[i], &rt);
			strcpy_bounded(e->dest, rt.key, sizeof(e->dest));
			return;
		}
}

/* Start whatever is due and allowed; arm the timer for the rest. */
static void scheduler_run(struct scheduler *sc)
{
	const struct conf *c = sc->conf;
	time_t now = time(NULL), next = 0;
	bool any = false;

	if (sc->stopping || c->delivery_hold)
		return;
	for (struct qentry *e = sc->entries; e; e = e->next) {
		time_t due;
		if (e->busy || entry_held(e))
			continue;
		due = entry_due(e);
		if (due <= now) {
			struct dest_count *d;

			if (sc->active >= c->delivery_concurrency) {
				/* every slot is taken: the next job_done() looks again */
				evtimer_del(sc->timer);
				return;
			}
			if (!e->dest_known) {
				/* the destination of the first due recipient limits the job */
				entry_dest(c, e, now);
				e->dest_known = true;
			}
			d = dest_get(sc, e->dest);
			if (d == NULL || d->active < c->delivery_concurrency_domain) {
				job_start(sc, e, d);
				continue;
			}
			due = now + 1; /* the destination is busy: look again soon */
		}
		if (!any || due < next)
			next = due;
		any = true;
	}
	evtimer_del(sc->timer);
	if (any) {
		time_t wait = next > now ? next - now : 0;
		struct timeval tv = {wait > TIMER_MAX ? TIMER_MAX : wait, 0};
		if (wait == 0)
			tv.tv_usec = 100000; /* busy: poll gently */
		evtimer_add(sc->timer, &tv);
	}
}

/* Worker thread: QUIT remote connections idle for long enough. */
static void expire_work(void *arg)
{
	struct scheduler *sc = arg;

	relay_expire(sc->relay, false);
}

/* While remote connections wait idle, look at them every second. */
static void reuse_timer_arm(struct scheduler *sc)
{
	struct timeval tv = {1, 0};

	if (!sc->stopping && !evtimer_pending(sc->reuse_timer, NULL) && relay_idle(sc->relay) > 0)
		evtimer_add(sc->reuse_timer, &tv);
}

/* Loop: expire_work finished. */
static void expire_done(void *arg)
{
	struct scheduler *sc = arg;

	sc->expiring = false;
	reuse_timer_arm(sc);
}

/* Timer: hand the idle remote connections to a worker to end those that waited enough. */
static void reuse_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *sc = arg;

	(void)fd;
	(void)what;
	if (!sc->expiring && !sc->stopping) {
		sc->expiring = true;
		workers_submit(sc->workers, expire_work, expire_done, sc);
	}
}

/* Add a parsed envelope as a queue entry. */
static void entry_add(struct scheduler *sc, const struct envelope *env)
{
	struct qentry *e = xcalloc(1, sizeof(*e));

	envelope_copy(&e->env, env);
	e->next = sc->entries;
	sc->entries = e;
}

/* The state of a queued message for the queue gauge: held, deferred (a
 * pending recipient was tried and failed for now) or pending. */
static enum metrics_queue_state entry_state(const struct qentry *e)
{
	if (e->env.hold != NULL)
		return METRICS_QUEUE_HELD;
	for (size_t i = 0; i < e->env.nrcpts; i++)
		if (e->env.rcpts[i].state == RCPT_PENDING && e->env.rcpts[i].attempts > 0)
			return METRICS_QUEUE_DEFERRED;
	return METRICS_QUEUE_PENDING;
}

/* Metrics collector (on the loop): the queue's messages by state. */
static void scheduler_collect(void *arg)
{
	struct scheduler *sc = arg;
	int64_t n[METRICS_QUEUE_COUNT] = {0};

	for (const struct qentry *e = sc->entries; e; e = e->next)
		n[entry_state(e)]++;
	for (size_t s = 0; s < METRICS_QUEUE_COUNT; s++)
		metrics_set(METRIC_QUEUE_MESSAGES, s, 0, n[s]);
}

/* See scheduler.h. */
struct scheduler *scheduler_new(const struct conf *c, struct event_base *base, struct queue *q)
{
	struct scheduler *sc = xcalloc(1, sizeof(*sc));

	sc->conf = conf_hold(c);
	sc->queue = q;
	sc->workers = workers_new(base, c->delivery_concurrency);
	sc->timer = evtimer_new(base, timer_cb, sc);
	sc->relay = relay_new(c);
	sc->reuse_timer = evtimer_new(base, reuse_timer_cb, sc);
	if (!metrics_collector_add(scheduler_collect, sc))
		log_warnx("event=metrics error=\"no room for the queue's collector\"");
	return sc;
}

/* See scheduler.h. */
void scheduler_reload(struct scheduler *sc, const struct conf *c)
{
	const struct conf *old = sc->conf;

	sc->conf = conf_hold(c);
	conf_free(old); /* jobs in flight hold it still */
	workers_grow(sc->workers, c->delivery_concurrency);
	relay_configure(sc->relay, c);
	for (struct qentry *e = sc->entries; e; e = e->next)
		e->dest_known = e->dest_known && e->busy; /* routes may have changed */
	scheduler_run(sc);
}

/* queue_scan callback for scheduler_load. */
static void load_one(const struct envelope *e, uint64_t size, void *arg)
{
	(void)size;
	entry_add(arg, e);
}

/* See scheduler.h. */
void scheduler_load(struct scheduler *sc)
{
	char err[512];

	if (!queue_scan(sc->queue, load_one, sc, err, sizeof(err)))
		log_warnx("event=scheduler_load error=\"%s\"", err);
	scheduler_run(sc);
}

/* See scheduler.h. */
void scheduler_add(struct scheduler *sc, const struct envelope *env)
{
	entry_add(sc, env);
	scheduler_run(sc);
}

/* See scheduler.h. */
void scheduler_flush(struct scheduler *sc)
{
	for (struct qentry *e = sc->entries; e; e = e->next) {
		e->flush = e->busy; /* the job's copy wins at its end: redo it then */
		e->dest_known = e->dest_known && e->busy;
		for (size_t i = 0; !e->busy && i < e->env.nrcpts; i++)
			if (e->env.rcpts[i].state == RCPT_PENDING)
				e->env.rcpts[i].next_attempt = 0;
	}
	log_info("event=flush active=%u", sc->active);
	scheduler_run(sc);
}

/* See scheduler.h. */
bool scheduler_delete(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	struct qentry **pp, *e;
	char from[ESCAPED_WORD_MAX];

	for (pp = &sc->entries; (e = *pp) != NULL; pp = &e->next)
		if (strcmp(e->env.id, queue_id) == 0)
			break;
	if (e == NULL) {
		snprintf(err, errsz, "no message %s in the queue", queue_id);
		return false;
	}
	if (e->busy) {
		snprintf(err, errsz, "message %s is being delivered right now; try again",
			 queue_id);
		return false;
	}
	if (!queue_remove(sc->queue, queue_id) && errno != ENOENT) { /* ENOENT: gone already */
		snprintf(err, errsz, "cannot remove message %s: %s", queue_id, strerror(errno));
		return false;
	}
	*pp = e->next;
	escape_word(e->env.sender, from, sizeof(from));
	log_info("event=deleted queue_id=%s from=%s rcpts=%zu pending=%zu", queue_id, from,
		 e->env.nrcpts, envelope_pending(&e->env));
	envelope_free(&e->env);
	free(e);
	return true;
}

/* The entry of message queue_id, or NULL with err; idle: one a job holds
 * right now is refused too (its job's copy would overwrite a change). */
static struct qentry *entry_find(struct scheduler *sc, const char *queue_id, bool idle, char *err,
				 size_t errsz)
{
	for (struct qentry *e = sc->entries; e; e = e->next) {
		if (strcmp(e->env.id, queue_id) != 0)
			continue;
		if (idle && e->busy) {
			snprintf(err, errsz, "message %s is being delivered right now; try again",
				 queue_id);
			return NULL;
		}
		return e;
	}
	snprintf(err, errsz, "no message %s in the queue", queue_id);
	return NULL;
}

/* Has e a recipient left to deliver?  Else false with err. */
static bool entry_has_pending(const struct qentry *e, char *err, size_t errsz)
{
	if (envelope_pending(&e->env) > 0)
		return true;
	snprintf(err, errsz, "message %s has no recipient left to deliver", e->env.id);
	return false;
}

/* Write env (a changed copy of e's envelope) durably and make it e's; false
 * with err when it cannot be written (env freed, e unchanged). */
static bool entry_save(struct scheduler *sc, struct qentry *e, struct envelope *env, char *err,
		       size_t errsz)
{
	if (!queue_update(sc->queue, env)) {
		snprintf(err, errsz, "cannot write the envelope of %s: %s", e->env.id,
			 strerror(errno));
		log_warn("event=envelope_write_failed queue_id=%s", e->env.id);
		envelope_free(env);
		return false;
	}
	envelope_free(&e->env);
	e->env = *env;
	e->unsaved = false; /* what is on disk now is all of it */
	e->dest_known = false;
	return true;
}

/* See scheduler.h. */
bool scheduler_hold(struct scheduler *sc, const char *queue_id, const char *reason, char *err,
		    size_t errsz)
{
	struct qentry *e = entry_find(sc, queue_id, true, err, errsz);
	struct envelope env;
	char why[ENVELOPE_HOLD_REASON_MAX * 4 + 8];

	if (e == NULL)
		return false;
	if (e->env.hold != NULL)
		return true; /* held already: as asked, and its first reason stays */
	if (!entry_has_pending(e, err, errsz))
		return false;
	envelope_copy(&env, &e->env);
	envelope_set_hold(&env, reason, time(NULL));
	if (!entry_save(sc, e, &env, err, errsz))
		return false;
	escape_text(e->env.hold, strlen(e->env.hold), why, sizeof(why));
	log_info("event=hold queue_id=%s pending=%zu reason=\"%s\"", queue_id,
		 envelope_pending(&e->env), why);
	return true;
}

/* See scheduler.h. */
bool scheduler_release(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	struct qentry *e = entry_find(sc, queue_id, true, err, errsz);
	struct envelope env;

	if (e == NULL)
		return false;
	if (e->env.hold == NULL) {
		snprintf(err, errsz, "message %s is not on hold", queue_id);
		return false;
	}
	envelope_copy(&env, &e->env);
	envelope_set_hold(&env, NULL, 0);
	if (!entry_save(sc, e, &env, err, errsz))
		return false;
	log_info("event=release queue_id=%s pending=%zu", queue_id, envelope_pending(&e->env));
	scheduler_run(sc);
	return true;
}

/* See scheduler.h. */
bool scheduler_retry(struct scheduler *sc, const char *queue_id, char *err, size_t errsz)
{
	struct qentry *e = entry_find(sc, queue_id, false, err, errsz);

	if (e == NULL || !entry_has_pending(e, err, errsz))
		return false;
	if (e->env.hold != NULL) {
		snprintf(err, errsz, "message %s is on hold; release it first", queue_id);
		return false;
	}
	e->flush = e->busy; /* the job's copy wins at its end: redo it then */
	for (size_t i = 0; !e->busy && i < e->env.nrcpts; i++)
		if (e->env.rcpts[i].state == RCPT_PENDING)
			e->env.rcpts[i].next_attempt = 0;
	e->dest_known = e->dest_known && e->busy;
	log_info("event=retry queue_id=%s pending=%zu busy=%s", queue_id, envelope_pending(&e->env),
		 e->busy ? "yes" : "no");
	scheduler_run(sc);
	return true;
}

/* See scheduler.h. */
bool scheduler_bounce(struct scheduler *sc, const char *queue_id, size_t *failed, char *err,
		      size_t errsz)
{
	struct qentry *e = entry_find(sc, queue_id, true, err, errsz);
	time_t now = time(NULL);
	struct envelope env;
	char line[128];
	size_t n = 0;

	if (e == NULL || !entry_has_pending(e, err, errsz))
		return false;
	snprintf(line, sizeof(line), "%s message returned to the sender by the mail administrator",
		 ESC_RETURNED);
	envelope_copy(&env, &e->env);
	for (size_t i = 0; i < env.nrcpts; i++) {
		struct env_rcpt *r = &env.rcpts[i];

		if (r->state != RCPT_PENDING)
			continue;
		r->state = RCPT_FAILED;
		r->next_attempt = 0;
		env_rcpt_set_error(r, line);
		env_rcpt_add_attempt(r, now, OUTCOME_PERMFAIL, NULL, NULL, line);
		report_mark(sc->conf, &env, r, false, false); /* the report, as for any failure */
		n++;
	}
	envelope_set_hold(&env, NULL, 0);
	if (!entry_save(sc, e, &env, err, errsz))
		return false;
	log_info("event=bounce queue_id=%s failed=%zu esc=%s report=%s", queue_id, n, ESC_RETURNED,
		 report_owed(&e->env) ? "owed" : "none");
	*failed = n;
	e->retry_after = 0; /* the report and the removal are due now */
	scheduler_run(sc);
	return true;
}

/* See scheduler.h. */
size_t scheduler_active(const struct scheduler *sc)
{
	return sc->active;
}

/* See scheduler.h. */
void scheduler_stop(struct scheduler *sc)
{
	sc->stopping = true;
	evtimer_del(sc->timer);
	event_del(sc->reuse_timer);
}

/* See scheduler.h. */
void scheduler_free(struct scheduler *sc)
{
	struct qentry *e, *next;

	sc->stopping = true;
	metrics_collector_remove(scheduler_collect, sc);
	workers_free(sc->workers); /* finishes the jobs in flight */
	relay_free(sc->relay);     /* QUIT to the idle connections */
	event_free(sc->timer);
	event_free(sc->reuse_timer);
	for (e = sc->entries; e; e = next) {
		next = e->next;
		envelope_free(&e->env);
		free(e);
	}
	conf_free(sc->conf);
	free(sc);
}
