/*
 * dkim_canon.c - header and body canonicalization.  See dkim_canon.h.
 *
 * The body is a small state machine over single octets: content octets
 * are copied (relaxed: a run of white space becomes one SP, and none at
 * the end of a line), a line break ends a line, and empty lines are only
 * counted until content follows, because empty lines at the end of the
 * body are not hashed (§3.4.3, §3.4.4).  Canonical octets collect in a
 * buffer that goes to SHA-256 when full.
 */
#include "dkim_canon.h"

#include <string.h>

#include "util.h"

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* simple: the field as it is, its line breaks made CRLF. */
static void header_simple(const char *raw, size_t n, struct strbuf *out)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (raw[i] != '\n' || (i > 0 && raw[i - 1] == '\r'))
			continue;
		strbuf_add(out, raw + start, i - start);
		strbuf_add(out, "\r\n", 2);
		start = i + 1;
	}
	strbuf_add(out, raw + start, n - start);
}

/* relaxed: name in lower case, folding removed, white space runs made one
 * SP, none around the colon or at the end. */
static void header_relaxed(const char *raw, size_t n, struct strbuf *out)
{
	const char *colon = memchr(raw, ':', n);
	size_t namelen = colon ? (size_t)(colon - raw) : n, i;
	bool space = false, value = false;

	while (namelen > 0 && is_wsp(raw[namelen - 1]))
		namelen--;
	for (i = 0; i < namelen; i++) {
		char c = lower(raw[i]);
		strbuf_add(out, &c, 1);
	}
	if (colon == NULL)
		return;
	strbuf_add(out, ":", 1);
	for (i = (size_t)(colon - raw) + 1; i < n; i++) {
		char c = raw[i];

		if (c == '\r' || c == '\n')
			continue; /* unfolding */
		if (is_wsp(c)) {
			space = true;
			continue;
		}
		if (space && value)
			strbuf_add(out, " ", 1);
		strbuf_add(out, &c, 1);
		space = false;
		value = true;
	}
}

/* See dkim_canon.h. */
void dkim_canon_header(enum dkim_canon c, const char *raw, size_t n, bool crlf, struct strbuf *out)
{
	if (c == DKIM_CANON_RELAXED)
		header_relaxed(raw, n, out);
	else
		header_simple(raw, n, out);
	if (crlf)
		strbuf_add(out, "\r\n", 2);
}

/* See dkim_canon.h. */
bool dkim_body_init(struct dkim_body *b, enum dkim_canon c, uint64_t limit)
{
	memset(b, 0, sizeof(*b));
	b->canon = c;
	b->limit = limit;
	b->md = EVP_MD_CTX_new();
	if (b->md == NULL)
		return false;
	if (EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(b->md);
		b->md = NULL;
		return false;
	}
	return true;
}

/* Hash what the buffer holds. */
static void body_flush(struct dkim_body *b)
{
	if (b->outlen > 0)
		EVP_DigestUpdate(b->md, b->out, b->outlen);
	b->outlen = 0;
}

/* One canonical octet, within the l= limit. */
static void emit(struct dkim_body *b, char c)
{
	if (b->hashed >= b->limit)
		return;
	b->hashed++;
	if (b->outlen == sizeof(b->out))
		body_flush(b);
	b->out[b->outlen++] = (unsigned char)c;
}

/* Content follows: the empty lines held back were not trailing. */
static void line_content(struct dkim_body *b)
{
	if (b->line_started)
		return;
	for (; b->empty_lines > 0 && b->hashed < b->limit; b->empty_lines--) {
		emit(b, '\r');
		emit(b, '\n');
	}
	b->empty_lines = 0;
	b->line_started = true;
	b->any = true;
}

/* A content octet of the current line. */
static void content(struct dkim_body *b, char c)
{
	if (b->canon == DKIM_CANON_RELAXED && is_wsp(c)) {
		b->wsp = true;
		return;
	}
	line_content(b);
	if (b->wsp)
		emit(b, ' ');
	b->wsp = false;
	emit(b, c);
}

/* The end of a line. */
static void line_end(struct dkim_body *b)
{
	if (b->line_started) {
		emit(b, '\r');
		emit(b, '\n');
	} else {
		b->empty_lines++;
	}
	b->line_started = false;
	b->wsp = false;
}

/* See dkim_canon.h. */
void dkim_body_feed(struct dkim_body *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				line_end(b);
				continue;
			}
			content(b, '\r');
		}
		if (c == '\r')
			b->cr = true;
		else if (c == '\n')
			line_end(b);
		else
			content(b, c);
	}
}

/* See dkim_canon.h. */
void dkim_body_final(struct dkim_body *b, unsigned char hash[DKIM_HASH_LEN])
{
	unsigned len = DKIM_HASH_LEN;

	if (b->cr) {
		b->cr = false;
		content(b, '\r');
	}
	if (b->line_started) /* a last line without its line break gets one */
		line_end(b);
	if (!b->any && b->canon == DKIM_CANON_SIMPLE) {
		/* simple: an empty body (or only empty lines) is one CRLF */
		emit(b, '\r');
		emit(b, '\n');
	}
	body_flush(b);
	EVP_DigestFinal_ex(b->md, hash, &len);
	dkim_body_free(b);
}

/* See dkim_canon.h. */
void dkim_body_free(struct dkim_body *b)
{
	if (b->md != NULL)
		EVP_MD_CTX_free(b->md);
	b->md = NULL;
}
