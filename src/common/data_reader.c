/*
 * data_reader.c - dot-unstuffing, end-of-data detection and header counting
 * as small byte-at-a-time state machines.  Inside a line the reader copies
 * whole runs of ordinary octets at once: only CR, LF and NUL change state.
 */
#include "data_reader.h"

#include <ctype.h>
#include <string.h>

enum {
	DR_BOL,      /* start of a line after CRLF (or start of data) */
	DR_BOL_BARE, /* start of a line after a bare LF: a dot here ends nothing */
	DR_MID,      /* inside a line */
	DR_CR,       /* CR seen inside a line */
	DR_DOT,      /* "." at the start of a line after CRLF */
	DR_DOT_CR,   /* ".\r" at the start of a line after CRLF */
};

/* Start a new DATA phase. */
void data_reader_init(struct data_reader *r, size_t line_max)
{
	r->state = DR_BOL;
	r->linelen = 0;
	r->line_max = line_max;
	r->flags = 0;
}

/* Count an octet of the current line against the limit. */
static void line_octet(struct data_reader *r)
{
	if (++r->linelen + 2 > r->line_max)
		r->flags |= DATA_LONG_LINE;
}

/* How many octets of p[0..n) come before the first CR, LF or NUL. */
static size_t ordinary_run(const char *p, size_t n)
{
	size_t k = 0;

	while (k < n && p[k] != '\r' && p[k] != '\n' && p[k] != '\0')
		k++;
	return k;
}

/* See data_reader.h. */
size_t data_reader_feed(struct data_reader *r, const char *in, size_t len, char *out,
			size_t *outlen, bool *done)
{
	size_t i, o = 0;

	*done = false;
	for (i = 0; i < len; i++) {
		char c;

		if (r->state == DR_MID) {
			/* the same as line_octet() for each, done once for the run */
			size_t run = ordinary_run(in + i, len - i);
			memcpy(out + o, in + i, run);
			o += run;
			i += run;
			r->linelen += run;
			if (r->linelen + 2 > r->line_max)
				r->flags |= DATA_LONG_LINE;
			if (i == len)
				break;
		}
		c = in[i];
		if (c == '\0')
			r->flags |= DATA_NUL;
		switch (r->state) {
		case DR_BOL:
			r->linelen = 0;
			if (c == '.') {
				/* the first dot is always removed, and does not count
				 * against the line limit (RFC 5321 §4.5.3.1.6) */
				r->state = DR_DOT;
				continue;
			}
			break;
		case DR_BOL_BARE:
			r->linelen = 0;
			break;
		case DR_DOT:
			if (c == '\r') {
				r->state = DR_DOT_CR;
				continue;
			}
			break;
		case DR_DOT_CR:
			if (c == '\n') {
				*outlen = o;
				*done = true;
				r->state = DR_BOL;
				return i + 1;
			}
			r->flags |= DATA_BARE_CR; /* ".\rX": a bare CR after the dot */
			out[o++] = '\r';
			line_octet(r);
			r->state = DR_MID;
			break;
		case DR_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				r->state = DR_BOL;
				continue;
			}
			r->flags |= DATA_BARE_CR;
			out[o++] = '\r';
			line_octet(r);
			r->state = DR_MID;
			break;
		}
		/* Ordinary processing of c inside a line. */
		if (c == '\r') {
			r->state = DR_CR;
		} else if (c == '\n') {
			r->flags |= DATA_BARE_LF;
			out[o++] = '\n';
			r->state = DR_BOL_BARE;
		} else {
			out[o++] = c;
			line_octet(r);
			r->state = DR_MID;
		}
	}
	*outlen = o;
	return i;
}

/* See data_reader.h. */
void data_reader_scan(struct data_reader *r, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t run;

		if (r->state == DR_CR) {
			r->state = DR_MID;
			if (p[i] == '\n') {
				r->linelen = 0;
				continue;
			}
			r->flags |= DATA_BARE_CR;
			line_octet(r); /* the CR is an octet of the line */
		}
		run = ordinary_run(p + i, len - i);
		if (run > 0) {
			r->linelen += run;
			if (r->linelen + 2 > r->line_max)
				r->flags |= DATA_LONG_LINE;
			i += run - 1;
			continue;
		}
		if (p[i] == '\r') {
			r->state = DR_CR;
		} else if (p[i] == '\n') {
			r->flags |= DATA_BARE_LF;
			r->linelen = 0;
		} else { /* NUL */
			r->flags |= DATA_NUL;
			line_octet(r);
		}
	}
}

/* See data_reader.h. */
void data_reader_scan_end(struct data_reader *r)
{
	if (r->state == DR_CR) {
		r->flags |= DATA_BARE_CR;
		line_octet(r); /* the CR is an octet of the line */
		r->state = DR_MID;
	}
}

/* Start counting a new message's headers. */
void header_scan_init(struct header_scan *h)
{
	h->in_header = true;
	h->match = 0;
	h->linelen = 0;
	h->received = 0;
}

/* See data_reader.h. */
void header_scan_feed(struct header_scan *h, const char *p, size_t len)
{
	static const char want[] = "received:";

	for (size_t i = 0; i < len && h->in_header; i++) {
		char c = p[i];

		if (c == '\n') {
			if (h->linelen == 0)
				h->in_header = false; /* the empty line ends the header */
			h->linelen = 0;
			h->match = 0;
			continue;
		}
		if (c != '\r')
			h->linelen++;
		if (h->match < 0 || h->match == (int)sizeof(want) - 1)
			continue;
		if (tolower((unsigned char)c) == want[h->match]) {
			if (++h->match == (int)sizeof(want) - 1)
				h->received++;
		} else {
			h->match = -1;
		}
	}
}
