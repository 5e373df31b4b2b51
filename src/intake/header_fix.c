/*
 * header_fix.c - submission fix-ups (RFC 6409 §8) as a streaming state
 * machine: Bcc: removal and missing From:/Date:/Message-ID: insertion.
 *
 * Each header line starts in HF_BOL.  Its first octets are held in prefix
 * until the line is classified: a field ("name:") goes to HF_PASS (kept)
 * or HF_DROP (Bcc), a line starting with SP or HTAB follows its field,
 * anything else ends the header section.  Kept lines and the body are copied in runs,
 * never octet by octet.
 */
#include "header_fix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	HF_BOL,      /* start of a header line, nothing held */
	HF_BOL_CR,   /* "\r" held at the start of a line: the empty line, or not a header */
	HF_NAME,     /* a field name held (printable ASCII, no ':') */
	HF_NAME_WSP, /* a field name and obsolete whitespace before the ':' held */
	HF_PASS,     /* inside a kept header line */
	HF_DROP,     /* inside a Bcc: line */
	HF_BODY,     /* the header section has ended: everything passes */
};

/* Check a caller's value, or abort: a bad one would corrupt the header. */
static void check_value(const char *v, bool required, const char *what)
{
	size_t len = v != NULL ? strlen(v) : 0;

	if (v == NULL && !required)
		return;
	if (len == 0 || len >= HEADER_FIX_VALUE_MAX || strpbrk(v, "\r\n") != NULL) {
		fprintf(stderr, "hato: header_fix_start: bad %s value (empty, too long or CR/LF)\n",
			what);
		abort();
	}
}

/* See header_fix.h. */
void header_fix_start(struct header_fix *h, const struct header_fix_fill *fill)
{
	check_value(fill->from, false, "from");
	check_value(fill->date, false, "date");
	check_value(fill->msgid, false, "message-id");
	memset(h, 0, sizeof(*h));
	h->state = HF_BOL;
	h->fill = *fill;
}

/* See header_fix.h. */
void header_fix_init(struct header_fix *h, const char *date_value, const char *msgid_value)
{
	const struct header_fix_fill fill = {.date = date_value, .msgid = msgid_value};

	check_value(date_value, true, "date");
	check_value(msgid_value, true, "message-id");
	header_fix_start(h, &fill);
}

/* RFC 5322 §2.2 ftext: printable US-ASCII except ':'. */
static bool is_ftext(char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* Is the held field name exactly name (lower case), ignoring ASCII case? */
static bool name_is(const struct header_fix *h, const char *name)
{
	size_t n = strlen(name), plen = h->plen;

	/* obsolete syntax (RFC 5322 §4.5): "Bcc : x" is a Bcc too */
	while (plen > 0 && (h->prefix[plen - 1] == ' ' || h->prefix[plen - 1] == '\t'))
		plen--;
	if (plen != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h->prefix[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != name[i])
			return false;
	}
	return true;
}

/* Append the "name: value\r\n" field. */
static void add_field(struct strbuf *out, const char *name, const char *value)
{
	strbuf_adds(out, name);
	strbuf_adds(out, value);
	strbuf_add(out, "\r\n", 2);
}

/* Add "name: value\r\n" when there is a value and no such field was seen;
 * true when added. */
static bool add_missing(struct strbuf *out, bool seen, const char *name, const char *value)
{
	if (seen || value == NULL)
		return false;
	add_field(out, name, value);
	return true;
}

/*
 * The header section ends here: add what is missing, release what was
 * held.  body: it ended at a line that is not the empty line (or at the
 * end of the message, body false).
 */
static void header_end(struct header_fix *h, struct strbuf *out, bool body)
{
	h->added_from = add_missing(out, h->seen_from, "From: ", h->fill.from);
	h->added_date = add_missing(out, h->seen_date, "Date: ", h->fill.date);
	h->added_msgid = add_missing(out, h->seen_msgid, "Message-ID: ", h->fill.msgid);
	if (body && h->fill.separate && (h->added_from || h->added_date || h->added_msgid))
		strbuf_add(out, "\r\n", 2);
	strbuf_add(out, h->prefix, h->plen);
	h->plen = 0;
	h->state = HF_BODY;
}

/* A field line starts; named: the held prefix is exactly its name. */
static void field_start(struct header_fix *h, struct strbuf *out, bool named)
{
	h->dropping = named && name_is(h, "bcc");
	if (h->dropping) {
		h->removed_bcc++;
		h->plen = 0;
		h->state = HF_DROP;
		return;
	}
	if (named && name_is(h, "from"))
		h->seen_from = true;
	if (named && name_is(h, "date"))
		h->seen_date = true;
	if (named && name_is(h, "message-id"))
		h->seen_msgid = true;
	strbuf_add(out, h->prefix, h->plen);
	h->plen = 0;
	h->cr = false;
	h->state = HF_PASS;
}

/* Hold one more octet of a name; false when there is no room left. */
static bool hold(struct header_fix *h, char c)
{
	if (h->plen == sizeof(h->prefix))
		return false;
	h->prefix[h->plen++] = c;
	return true;
}

/*
 * One octet at the start of a header line.  Returns false when c was not
 * consumed: the line is now classified and c belongs to the new state.
 */
static bool line_start_octet(struct header_fix *h, char c, struct strbuf *out)
{
	switch (h->state) {
	case HF_BOL:
		if (c == ' ' || c == '\t') {
			/* A continuation goes with its field.  As the first line it
			 * is kept in the header: a field added before it would
			 * otherwise adopt it, and a Bcc after it must still go. */
			h->state = h->dropping ? HF_DROP : HF_PASS;
			h->cr = false;
			return false;
		}
		if (c == '\r' || is_ftext(c)) {
			hold(h, c); /* the first octet always fits */
			h->state = c == '\r' ? HF_BOL_CR : HF_NAME;
			return true;
		}
		break; /* the empty line (bare LF) or not a header line */
	case HF_BOL_CR:
		break; /* "\r\n" is the empty line; anything else is not a header line */
	case HF_NAME:
	case HF_NAME_WSP:
		if (c == ':') {
			field_start(h, out, true);
			return false; /* the colon goes with its line */
		}
		if (c == ' ' || c == '\t' || (is_ftext(c) && h->state == HF_NAME)) {
			if (!hold(h, c)) {
				/* Too long to be one of ours: a field, kept. */
				field_start(h, out, false);
				return false;
			}
			if (c == ' ' || c == '\t')
				h->state = HF_NAME_WSP;
			return true;
		}
		break; /* not a header line */
	}
	/* the empty line is "\n" or "\r\n" at the start of a line */
	header_end(h, out, c != '\n' || (h->state != HF_BOL && h->state != HF_BOL_CR));
	return false;
}

/* See header_fix.h. */
void header_fix_feed(struct header_fix *h, const char *p, size_t len, struct strbuf *out)
{
	size_t i = 0;

	while (i < len) {
		const char *nl;
		size_t n;

		switch (h->state) {
		case HF_BODY:
			strbuf_add(out, p + i, len - i);
			return;
		case HF_PASS:
		case HF_DROP:
			nl = memchr(p + i, '\n', len - i);
			n = nl != NULL ? (size_t)(nl - (p + i)) + 1 : len - i;
			if (h->state == HF_PASS) {
				strbuf_add(out, p + i, n);
				h->cr = p[i + n - 1] == '\r';
			}
			if (nl != NULL)
				h->state = HF_BOL;
			i += n;
			break;
		default:
			if (line_start_octet(h, p[i], out))
				i++;
			break;
		}
	}
}

/* See header_fix.h. */
void header_fix_finish(struct header_fix *h, struct strbuf *out)
{
	if (h->state == HF_BODY)
		return;
	if (h->state == HF_PASS)
		strbuf_adds(out, h->cr ? "\n" : "\r\n"); /* complete the last line */
	header_end(h, out, false);
}

/* See header_fix.h. */
bool header_fix_added_from(const struct header_fix *h)
{
	return h->added_from;
}

/* See header_fix.h. */
bool header_fix_added_date(const struct header_fix *h)
{
	return h->added_date;
}

/* See header_fix.h. */
bool header_fix_added_msgid(const struct header_fix *h)
{
	return h->added_msgid;
}

/* See header_fix.h. */
unsigned header_fix_removed_bcc(const struct header_fix *h)
{
	return h->removed_bcc;
}
