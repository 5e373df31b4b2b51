/*
 * dkim_header.h - a message's header block, taken from the front of a
 * message that arrives in pieces, split into fields, and the selection of
 * the fields an h= list names (RFC 6376 §5.4.2).
 *
 * The block ends at the first empty line (its line break alone, CRLF or
 * LF); what follows is the body.  A message without an empty line is all
 * header and has no body.  Only DKIM_HEADER_BLOCK_MAX octets are kept:
 * past that the block is marked overflowed (the message is then neither
 * signed nor verified) but the end of the header is still found, so the
 * body is still told apart.  At most DKIM_FIELDS_MAX fields are indexed
 * (more: too_many, treated like an overflow).
 */
#ifndef HATO_DKIM_HEADER_H
#define HATO_DKIM_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"
#include "strbuf.h"

/* One header field: block.s + off, len octets, without its final line
 * break; its name is the first namelen octets (0: no colon, no name). */
struct dkim_field {
	size_t off, len, namelen;
};

struct dkim_headers {
	struct strbuf block; /* the raw header, line breaks included */
	bool done;           /* the empty line (or the end) was seen */
	bool overflow;       /* more than DKIM_HEADER_BLOCK_MAX octets, or too many fields */
	size_t linelen;      /* octets of the current line, a CR not counted */
	size_t nfields;
	struct dkim_field fields[DKIM_FIELDS_MAX];
};

/* A name as an h= list gives it (pointing into the list). */
struct dkim_name {
	const char *s;
	size_t n;
};

/* Start an empty header block (h is large: allocate it). */
void dkim_headers_init(struct dkim_headers *h);
void dkim_headers_free(struct dkim_headers *h);

/* Message octets from the start on: how many of p[0..n) are the header's
 * (the empty line that ends it included); the rest is body. */
size_t dkim_headers_feed(struct dkim_headers *h, const char *p, size_t n);

/* The end of the message: a header that never ended is complete now. */
void dkim_headers_end(struct dkim_headers *h);

/* The raw text of field i. */
const char *dkim_field_text(const struct dkim_headers *h, size_t i);

/* Is field i called name (case-insensitive)? */
bool dkim_field_is(const struct dkim_headers *h, size_t i, const char *name, size_t n);

/* How many fields are called name. */
size_t dkim_headers_count(const struct dkim_headers *h, const char *name);

/* For each of names[0..n): the field it signs, the last of that name that
 * an earlier entry did not take, or -1 when none is left (it then signs
 * nothing, which is how an over-signed name works). */
void dkim_headers_select(const struct dkim_headers *h, const struct dkim_name *names, size_t n,
			 int *out);

#endif
