/*
 * intake_dkim.c - DKIM signing at intake.  See intake_dkim.h.
 *
 * The stage feeds the message as the stages left it (header fields from
 * intake_headers, the body through intake_body_read) to the signer and
 * inserts its fields after our Received:.  It answers before it returns:
 * signing is one private-key operation per key, done on the loop.
 */
#include "intake_dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim_sign.h"
#include "log.h"
#include "util.h"

#define BODY_CHUNK 65536        /* octets of body read at a time */
#define SIG_NAME "DKIM-Signature" /* the field the signer writes first */

static struct dkim_keyring keyring;

/* See intake_dkim.h. */
bool intake_dkim_init(const struct conf *c, char *err, size_t errsz)
{
	return dkim_keyring_load(&keyring, c, err, errsz);
}

/* See intake_dkim.h. */
void intake_dkim_shutdown(void)
{
	dkim_keyring_free(&keyring);
}

/* See intake_dkim.h. */
bool intake_dkim_enabled(void)
{
	return keyring.n > 0;
}

/* Sign what s was fed; the fields in out, their count (<= 0: none). */
static int sign_end(struct dkim_sign *s, struct strbuf *out, const char *log_key,
		    const char *qid)
{
	char why[128], domain[DKIM_DOMAIN_MAX + 1] = "";
	int n = dkim_sign_finish(s, &keyring, time(NULL), out, domain, why, sizeof(why));

	if (n > 0)
		log_info("event=dkim_signed %s queue_id=%s domain=%s signatures=%d", log_key, qid,
			 domain, n);
	else if (n == 0)
		log_info("event=dkim_not_signed %s queue_id=%s reason=\"%s\"", log_key, qid, why);
	else
		log_warnx("event=dkim_sign_failed %s queue_id=%s domain=%s reason=\"%s\"", log_key,
			  qid, domain, why);
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

/* The stage: sign the message when its receiver asked and a key applies. */
static void stage_run(struct intake *in, void *arg)
{
	const struct intake_verdict go = {.action = INTAKE_CONTINUE};
	const struct intake_field *f;
	struct dkim_sign s;
	struct strbuf out;
	uint64_t size, off = 0;
	size_t nf;
	char *buf;

	(void)arg;
	if (!in->sign || keyring.n == 0) {
		intake_stage_done(in, &go);
		return;
	}
	f = intake_headers(in, &nf);
	if (f == NULL) {
		log_warn("event=dkim_sign_failed %s queue_id=%s reason=\"cannot read the message\"",
			 intake_log_key(in), intake_queue_id(in));
		intake_stage_done(in, &go);
		return;
	}
	dkim_sign_init(&s);
	for (size_t i = 0; i < nf; i++)
		dkim_sign_feed(&s, f[i].text, f[i].len);
	dkim_sign_feed(&s, "\r\n", 2);
	size = intake_body_size(in);
	buf = xmalloc(BODY_CHUNK);
	while (off < size) {
		ssize_t n = intake_body_read(in, off, buf, BODY_CHUNK);

		if (n <= 0)
			break;
		dkim_sign_feed(&s, buf, (size_t)n);
		off += (uint64_t)n;
	}
	free(buf);
	strbuf_init(&out);
	if (off == size && sign_end(&s, &out, intake_log_key(in), intake_queue_id(in)) > 0)
		insert_fields(in, nf > 0 ? 1 : 0, &out); /* after our Received: */
	else if (off != size)
		log_warn("event=dkim_sign_failed %s queue_id=%s reason=\"cannot read the body\"",
			 intake_log_key(in), intake_queue_id(in));
	strbuf_free(&out);
	dkim_sign_free(&s);
	intake_stage_done(in, &go);
}

/* See intake_dkim.h. */
const struct intake_stage intake_dkim_stage = {
	.name = "dkim-sign",
	.rank = INTAKE_RANK_SIGN,
	.run = stage_run,
	.cancel = NULL,
};

/* See intake_dkim.h. */
bool intake_dkim_sign_local(const char *msg, size_t len, size_t hdr, struct strbuf *out)
{
	struct dkim_sign s;
	struct strbuf sigs;
	bool ok;

	if (keyring.n == 0)
		return false;
	dkim_sign_init(&s);
	dkim_sign_feed(&s, msg, len);
	strbuf_init(&sigs);
	ok = sign_end(&s, &sigs, "source=report", "-") > 0;
	if (ok) {
		strbuf_add(out, msg, hdr);
		strbuf_add(out, sigs.s, sigs.len);
		strbuf_add(out, msg + hdr, len - hdr);
	}
	strbuf_free(&sigs);
	dkim_sign_free(&s);
	return ok;
}
