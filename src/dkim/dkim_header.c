/*
 * dkim_header.c - the header block of a message and its fields.  See
 * dkim_header.h.
 */
#include "dkim_header.h"

#include <string.h>
#include <strings.h>

/* See dkim_header.h. */
void dkim_headers_init(struct dkim_headers *h)
{
	h->done = false;
	h->overflow = false;
	h->linelen = 0;
	h->nfields = 0;
	strbuf_init(&h->block);
}

/* See dkim_header.h. */
void dkim_headers_free(struct dkim_headers *h)
{
	strbuf_free(&h->block);
}

/* Keep n octets of the header, unless the block is full. */
static void keep(struct dkim_headers *h, const char *p, size_t n)
{
	if (h->overflow)
		return;
	if (h->block.len + n > DKIM_HEADER_BLOCK_MAX) {
		h->overflow = true;
		return;
	}
	strbuf_add(&h->block, p, n);
}

/* Take the empty line that ends the header back out of the block. */
static void unkeep_empty_line(struct dkim_headers *h)
{
	if (h->overflow)
		return;
	if (h->block.len > 0 && h->block.s[h->block.len - 1] == '\n')
		h->block.len--;
	if (h->block.len > 0 && h->block.s[h->block.len - 1] == '\r')
		h->block.len--;
	h->block.s[h->block.len] = '\0';
}

/* Split the block into fields: a line that starts with white space
 * continues the field before it. */
static void index_fields(struct dkim_headers *h)
{
	const char *s = h->block.s;
	size_t len = h->block.len, i = 0;

	h->nfields = 0;
	while (i < len && !h->overflow) {
		const char *nl = memchr(s + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - s) : len, next = nl ? end + 1 : len;
		size_t textend = (end > i && s[end - 1] == '\r') ? end - 1 : end;

		if ((s[i] == ' ' || s[i] == '\t') && h->nfields > 0) {
			h->fields[h->nfields - 1].len = textend - h->fields[h->nfields - 1].off;
		} else if (h->nfields == DKIM_FIELDS_MAX) {
			h->overflow = true;
		} else {
			struct dkim_field *f = &h->fields[h->nfields++];
			const char *colon = memchr(s + i, ':', textend - i);

			f->off = i;
			f->len = textend - i;
			f->namelen = colon ? (size_t)(colon - (s + i)) : 0;
			while (f->namelen > 0 &&
			       (s[i + f->namelen - 1] == ' ' || s[i + f->namelen - 1] == '\t'))
				f->namelen--;
		}
		i = next;
	}
}

/* See dkim_header.h. */
size_t dkim_headers_feed(struct dkim_headers *h, const char *p, size_t n)
{
	size_t i;

	if (h->done)
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i] != '\n') {
			if (p[i] != '\r')
				h->linelen++;
			continue;
		}
		if (h->linelen == 0) { /* the empty line: the header ends */
			keep(h, p, i + 1);
			unkeep_empty_line(h);
			h->done = true;
			break;
		}
		h->linelen = 0;
	}
	if (!h->done) {
		keep(h, p, n);
		return n;
	}
	index_fields(h);
	return i + 1;
}

/* See dkim_header.h. */
void dkim_headers_end(struct dkim_headers *h)
{
	if (h->done)
		return;
	h->done = true;
	index_fields(h);
}

/* See dkim_header.h. */
const char *dkim_field_text(const struct dkim_headers *h, size_t i)
{
	return h->block.s + h->fields[i].off;
}

/* See dkim_header.h. */
bool dkim_field_is(const struct dkim_headers *h, size_t i, const char *name, size_t n)
{
	const struct dkim_field *f = &h->fields[i];

	return f->namelen == n && n > 0 && strncasecmp(h->block.s + f->off, name, n) == 0;
}

/* See dkim_header.h. */
size_t dkim_headers_count(const struct dkim_headers *h, const char *name)
{
	size_t n = strlen(name), count = 0;

	for (size_t i = 0; i < h->nfields; i++)
		if (dkim_field_is(h, i, name, n))
			count++;
	return count;
}

/* See dkim_header.h. */
void dkim_headers_select(const struct dkim_headers *h, const struct dkim_name *names, size_t n,
			 int *out)
{
	bool used[DKIM_FIELDS_MAX];

	memset(used, 0, sizeof(used));
	for (size_t k = 0; k < n; k++) {
		out[k] = -1;
		for (size_t i = h->nfields; i-- > 0;)
			if (!used[i] && dkim_field_is(h, i, names[k].s, names[k].n)) {
				used[i] = true;
				out[k] = (int)i;
				break;
			}
	}
}
