/*
 * intake_dkim.c - DKIM signing at intake.  See intake_dkim.h.
 *
 * The stage feeds the message as the stages left it (header fields from
 * intake_headers, the body through intake_body_read) to the signer on the
 * loop (hashing: cheap), then the private-key operations (an RSA-2048
 * signature takes a millisecond or two of CPU) run on a small pool of
 * DKIM threads, and back on the loop the fields are inserted after our
 * Received: and the stage answers.  A message dropped meanwhile
 * (intake_cancel) marks its job cancelled: the job finishes and is freed
 * without touching the intake.
 */
#include "intake_dkim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim_sign.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define BODY_CHUNK 65536          /* octets of body read at a time */
#define SIG_NAME "DKIM-Signature" /* the field the signer writes first */
#define DKIM_SIGN_THREADS 2       /* threads making signatures, beside the loop */

/* A keyring and its holders: the one in force, and every signature being
 * made with it (a reload swaps in another; this one goes with its last
 * holder). */
struct intake_dkim_keys {
	struct dkim_keyring kr;
	atomic_uint holders;
};

static struct intake_dkim_keys *current; /* swapped on the loop, taken by any thread */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct workers *signers;         /* NULL: sign on the loop (before intake_dkim_start) */
static struct event_base *signers_base; /* set by intake_dkim_start */

/* One message being signed on a DKIM thread. */
struct sign_job {
	struct intake *in;             /* NULL once cancelled */
	struct intake_dkim_keys *keys; /* held while the job runs */
	struct dkim_sign s;
	struct strbuf out;
	int n;
	char why[128], domain[DKIM_DOMAIN_MAX + 1];
	char log_key[INTAKE_LOG_KEY_MAX], qid[QUEUE_ID_LEN + 1];
};

/* The keyring in force, held (NULL when none was loaded); any thread. */
static struct intake_dkim_keys *keys_take(void)
{
	struct intake_dkim_keys *k;

	pthread_mutex_lock(&current_lock);
	k = current;
	if (k != NULL)
		atomic_fetch_add(&k->holders, 1);
	pthread_mutex_unlock(&current_lock);
	return k;
}

/* See intake_dkim.h. */
void intake_dkim_keys_free(struct intake_dkim_keys *k)
{
	if (k == NULL || atomic_fetch_sub(&k->holders, 1) != 1)
		return;
	dkim_keyring_free(&k->kr);
	free(k);
}

/* See intake_dkim.h. */
struct intake_dkim_keys *intake_dkim_load(const struct conf *c, char *err, size_t errsz)
{
	struct intake_dkim_keys *k = xcalloc(1, sizeof(*k));

	atomic_init(&k->holders, 1);
	if (!dkim_keyring_load(&k->kr, c, err, errsz)) {
		free(k);
		return NULL;
	}
	return k;
}

/* See intake_dkim.h. */
void intake_dkim_swap(struct intake_dkim_keys *k)
{
	struct intake_dkim_keys *old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = k;
	pthread_mutex_unlock(&current_lock);
	intake_dkim_keys_free(old); /* signatures in flight hold it still */
	if (signers_base != NULL)
		intake_dkim_start(signers_base);
}

/* See intake_dkim.h. */
bool intake_dkim_init(const struct conf *c, char *err, size_t errsz)
{
	struct intake_dkim_keys *k = intake_dkim_load(c, err, errsz);

	if (k == NULL)
		return false;
	intake_dkim_swap(k);
	return true;
}

/* See intake_dkim.h. */
void intake_dkim_start(struct event_base *base)
{
	signers_base = base;
	if (intake_dkim_enabled() && signers == NULL)
		signers = workers_new(base, DKIM_SIGN_THREADS);
}

/* See intake_dkim.h. */
void intake_dkim_shutdown(void)
{
	if (signers != NULL)
		workers_free(signers); /* the jobs in flight finish first */
	signers = NULL;
	signers_base = NULL;
	intake_dkim_swap(NULL);
}

/* See intake_dkim.h. */
bool intake_dkim_enabled(void)
{
	return current != NULL && current->kr.n > 0; /* the loop swaps it: no lock there */
}

/* Log how signing went: n signatures (<= 0: none). */
static void sign_log(int n, const char *log_key, const char *qid, const char *domain,
		     const char *why)
{
	if (n > 0)
		log_info("event=dkim_signed %s queue_id=%s domain=%s signatures=%d", log_key, qid,
			 domain, n);
	else if (n == 0)
		log_info("event=dkim_not_signed %s queue_id=%s reason=\"%s\"", log_key, qid, why);
	else
		log_warnx("event=dkim_sign_failed %s queue_id=%s domain=%s reason=\"%s\"", log_key,
			  qid, domain, why);
}

/* Sign what s was fed with kr; the fields in out, their count (<= 0: none). */
static int sign_end(struct dkim_sign *s, const struct dkim_keyring *kr, struct strbuf *out,
		    const char *log_key, const char *qid)
{
	char why[128], domain[DKIM_DOMAIN_MAX + 1] = "";
	int n = dkim_sign_finish(s, kr, time(NULL), out, domain, why, sizeof(why));

	sign_log(n, log_key, qid, domain, why);
	return n;
}

/* Insert the fields of out (each "DKIM-Signature: ...\r\n") after field
 * pos - 1, in order. */
static void insert_fields(struct intake *in, size_t pos, const struct strbuf *out)
{
	const char *p = out->s, *end = out->s + out->len;

	while (p < end) {
		const char *next = strstr(p + 1, "\r\n" SIG_NAME ": ");
		const char *stop = next ? next : end - 2; /* without the final CRLF */
		const char *value = p + strlen(SIG_NAME ": ");
		char *v = xstrndup(value, (size_t)(stop - value));

		if (!intake_header_insert(in, pos++, SIG_NAME, v))
			log_warnx("event=dkim_insert_failed %s", intake_log_key(in));
		free(v);
		p = next ? next + 2 : end;
	}
}

/* A DKIM thread: the signatures (the private-key operations). */
static void job_work(void *arg)
{
	struct sign_job *j = arg;

	j->n = dkim_sign_finish(&j->s, &j->keys->kr, time(NULL), &j->out, j->domain, j->why,
				sizeof(j->why));
}

/* Back on the loop: the fields into the message, and the stage's answer. */
static void job_done(void *arg)
{
	const struct intake_verdict go = {.action = INTAKE_CONTINUE};
	struct sign_job *j = arg;

	if (j->in != NULL) {
		struct intake *in = j->in;

		in->sign_job = NULL;
		sign_log(j->n, j->log_key, j->qid, j->domain, j->why);
		if (j->n > 0)
			insert_fields(in, 1, &j->out); /* after our Received: */
		intake_stage_done(in, &go);
	}
	strbuf_free(&j->out);
	dkim_sign_free(&j->s);
	intake_dkim_keys_free(j->keys);
	free(j);
}

/* Feed the message as it stands to s; false (logged) when it cannot be read. */
static bool feed_message(struct intake *in, struct dkim_sign *s)
{
	const struct intake_field *f;
	uint64_t size, off = 0;
	size_t nf;
	char *buf;

	f = intake_headers(in, &nf);
	if (f == NULL || nf == 0) {
		log_warn("event=dkim_sign_failed %s queue_id=%s reason=\"cannot read the message\"",
			 intake_log_key(in), intake_queue_id(in));
		return false;
	}
	for (size_t i = 0; i < nf; i++)
		dkim_sign_feed(s, f[i].text, f[i].len);
	dkim_sign_feed(s, "\r\n", 2);
	size = intake_body_size(in);
	buf = xmalloc(BODY_CHUNK);
	while (off < size) {
		ssize_t n = intake_body_read(in, off, buf, BODY_CHUNK);

		if (n <= 0)
			break;
		dkim_sign_feed(s, buf, (size_t)n);
		off += (uint64_t)n;
	}
	free(buf);
	if (off != size)
		log_warn("event=dkim_sign_failed %s queue_id=%s reason=\"cannot read the body\"",
			 intake_log_key(in), intake_queue_id(in));
	return off == size;
}

/* The stage: sign the message when its receiver asked and a key applies. */
static void stage_run(struct intake *in, void *arg)
{
	const struct intake_verdict go = {.action = INTAKE_CONTINUE};
	struct sign_job *j;

	(void)arg;
	if (!in->sign || !intake_dkim_enabled()) {
		intake_stage_done(in, &go);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->keys = keys_take();
	dkim_sign_init(&j->s);
	strbuf_init(&j->out);
	if (!feed_message(in, &j->s)) {
		j->in = NULL;
		job_done(j);
		intake_stage_done(in, &go);
		return;
	}
	j->in = in;
	strcpy_bounded(j->log_key, intake_log_key(in), sizeof(j->log_key));
	strcpy_bounded(j->qid, intake_queue_id(in), sizeof(j->qid));
	in->sign_job = j;
	if (signers == NULL) {
		job_work(j);
		job_done(j);
		return;
	}
	workers_submit(signers, job_work, job_done, j);
}

/* The message is dropped while its signatures are made: forget it. */
static void stage_cancel(struct intake *in, void *arg)
{
	struct sign_job *j = in->sign_job;

	(void)arg;
	if (j != NULL)
		j->in = NULL;
	in->sign_job = NULL;
}

/* See intake_dkim.h. */
const struct intake_stage intake_dkim_stage = {
	.name = "dkim-sign",
	.rank = INTAKE_RANK_SIGN,
	.run = stage_run,
	.cancel = stage_cancel,
};

/* See intake_dkim.h. */
bool intake_dkim_sign_local(const char *msg, size_t len, size_t hdr, struct strbuf *out)
{
	struct intake_dkim_keys *k = keys_take();
	struct dkim_sign s;
	struct strbuf sigs;
	bool ok;

	if (k == NULL || k->kr.n == 0) {
		intake_dkim_keys_free(k);
		return false;
	}
	dkim_sign_init(&s);
	dkim_sign_feed(&s, msg, len);
	strbuf_init(&sigs);
	ok = sign_end(&s, &k->kr, &sigs, "source=report", "-") > 0;
	intake_dkim_keys_free(k);
	if (ok) {
		strbuf_add(out, msg, hdr);
		strbuf_add(out, sigs.s, sigs.len);
		strbuf_add(out, msg + hdr, len - hdr);
	}
	strbuf_free(&sigs);
	dkim_sign_free(&s);
	return ok;
}
