/*
 * dovecot_proto.c - Dovecot authentication protocol lines (see
 * dovecot_proto.h).
 */
#include "dovecot_proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "util.h"

/* Fields on one line that are looked at; the rest are skipped. */
#define FIELDS_MAX 64

/* One field of a line: where it starts and its length. */
struct field {
	const char *p;
	size_t n;
};

/* Split line[0..len) at tabs into at most FIELDS_MAX fields. */
static size_t split(const char *line, size_t len, struct field *f)
{
	size_t nf = 0;
	const char *p = line, *end = line + len;

	while (nf < FIELDS_MAX) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));
		f[nf].p = p;
		f[nf].n = tab ? (size_t)(tab - p) : (size_t)(end - p);
		nf++;
		if (tab == NULL)
			break;
		p = tab + 1;
	}
	return nf;
}

/* Is field f the word w? */
static bool is(const struct field *f, const char *w)
{
	return f->n == strlen(w) && memcmp(f->p, w, f->n) == 0;
}

/* A decimal number of at most 10 digits. */
static bool number(const struct field *f, unsigned long *out)
{
	unsigned long v = 0;

	if (f->n == 0 || f->n > 10)
		return false;
	for (size_t i = 0; i < f->n; i++) {
		if (f->p[i] < '0' || f->p[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(f->p[i] - '0');
	}
	*out = v;
	return true;
}

/* Undo Dovecot's tab-escaping (\001 + 1/t/r/n) into out; false when the
 * value does not fit, is badly escaped or holds a control character. */
static bool unescape(const char *p, size_t n, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == 0x01) {
			if (++i == n)
				return false;
			switch (p[i]) {
			case '1':
				c = 0x01;
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'n':
				c = '\n';
				break;
			default:
				return false;
			}
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= size)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

/* The parameters of OK and FAIL: user= and temp; others are skipped. */
static bool reply_params(const struct field *f, size_t nf, struct dovecot_line *out)
{
	for (size_t i = 2; i < nf; i++) {
		if (f[i].n >= 5 && memcmp(f[i].p, "user=", 5) == 0) {
			if (!unescape(f[i].p + 5, f[i].n - 5, out->user, sizeof(out->user)))
				return false;
		} else if (is(&f[i], "temp")) {
			out->temp = true;
		}
	}
	return true;
}

/* See dovecot_proto.h. */
bool dovecot_line_parse(const char *line, size_t len, struct dovecot_line *out)
{
	struct field f[FIELDS_MAX];
	size_t nf;

	memset(out, 0, sizeof(*out));
	if (len > DOVECOT_LINE_MAX || memchr(line, '\0', len) != NULL)
		return false;
	nf = split(line, len, f);
	if (is(&f[0], "VERSION")) {
		out->type = DOVECOT_LINE_VERSION;
		return nf >= 3 && number(&f[1], &out->major) && number(&f[2], &out->minor);
	}
	if (is(&f[0], "MECH")) {
		out->type = DOVECOT_LINE_MECH;
		return nf >= 2 && f[1].n > 0 &&
		       unescape(f[1].p, f[1].n, out->mech, sizeof(out->mech));
	}
	if (is(&f[0], "DONE")) {
		out->type = DOVECOT_LINE_DONE;
		return true;
	}
	if (is(&f[0], "OK") || is(&f[0], "FAIL") || is(&f[0], "CONT")) {
		out->type = f[0].p[0] == 'O'   ? DOVECOT_LINE_OK
			    : f[0].p[0] == 'F' ? DOVECOT_LINE_FAIL
					       : DOVECOT_LINE_CONT;
		if (nf < 2 || !number(&f[1], &out->id))
			return false;
		return out->type == DOVECOT_LINE_CONT || reply_params(f, nf, out);
	}
	out->type = DOVECOT_LINE_OTHER;
	return true;
}

/* A value that may stand in a field as it is: no tab, no control character. */
static bool plain_value(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* See dovecot_proto.h. */
size_t dovecot_auth_line(char *out, size_t size, unsigned long id, const struct dovecot_query *q)
{
	size_t ulen = strlen(q->user), plen = strlen(q->password), rlen = ulen + plen + 2;
	unsigned char *raw;
	char *b64;
	int n;

	if (!plain_value(q->client_addr) || !plain_value(q->session) ||
	    (q->local_addr != NULL && !plain_value(q->local_addr)))
		return 0;
	/* PLAIN (RFC 4616) with no authzid: NUL user NUL password */
	raw = xmalloc(rlen);
	raw[0] = '\0';
	memcpy(raw + 1, q->user, ulen);
	raw[ulen + 1] = '\0';
	memcpy(raw + ulen + 2, q->password, plen);
	b64 = xmalloc(BASE64_ENCODED_SIZE(rlen));
	base64_encode(raw, rlen, b64);
	/* secured: hato takes AUTH over TLS only; nologin: no login follows
	 * here (as Postfix sends it) */
	n = snprintf(out, size,
		     "AUTH\t%lu\tPLAIN\tservice=smtp\tsecured\tnologin\tsession=%s\trip=%s%s%s"
		     "\tresp=%s\n",
		     id, q->session, q->client_addr, q->local_addr ? "\tlip=" : "",
		     q->local_addr ? q->local_addr : "", b64);
	explicit_bzero(raw, rlen);
	explicit_bzero(b64, strlen(b64));
	free(raw);
	free(b64);
	if (n < 0 || (size_t)n >= size) {
		explicit_bzero(out, size);
		return 0;
	}
	return (size_t)n;
}
