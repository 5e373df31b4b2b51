/*
 * dsn_report.c - delivery status notifications as multipart/report messages
 * (RFC 6522, RFC 3464, RFC 3461 §6, RFC 6533).  See dsn_report.h.
 *
 * The three parts are built into their own buffers first, so the boundary
 * can be checked against all of them before anything is written to out.
 */
#include "dsn_report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "dsn.h"
#include "errbuf.h"
#include "mail_date.h"
#include "mail_id.h"
#include "util.h"

#define READ_CHUNK (64 * 1024)
#define TEXT_WIDTH 72  /* the human-readable part */
#define FIELD_WIDTH 78 /* fields are folded before this where a space allows */

enum kind {
	KIND_FAILED,  /* a recipient failed: a bounce */
	KIND_DELAYED, /* none failed, one is delayed: a delay warning */
	KIND_SUCCESS, /* delivered, relayed or expanded */
};

/* Why part 3 holds less than it might (bits of original.notes). */
#define NOTE_TOO_BIG 0x1   /* RET=FULL, but the message is over max_full */
#define NOTE_LONG_LINE 0x2 /* RET=FULL, but a line is over DSN_LINE_MAX */
#define NOTE_HEAD_CUT 0x4  /* the header section is over DSN_HEADERS_MAX */
#define NOTE_LINE_CUT 0x8  /* a header line over DSN_LINE_MAX was cut */

/* The original, as it is returned. */
struct original {
	struct strbuf head;  /* the header section, CRLF lines (text/rfc822-headers) */
	struct strbuf whole; /* want_full: the whole message, CRLF lines (message/rfc822) */
	bool full;           /* whole is complete and is what part 3 returns */
	bool head8;          /* an octet above 127 in the header section */
	bool empty;          /* the file was empty */
	unsigned notes;      /* NOTE_* */
};

/* See dsn_report.h. */
const char *dsn_action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_RELAYED:
		return "relayed";
	case DSN_ACTION_EXPANDED:
		return "expanded";
	}
	return "failed";
}

/* --- reading the original ------------------------------------------------------- */

/* Is line[0..len) (without its line ending) part of a header section: a
 * field ("name:", name printable ASCII, optional white space before the
 * colon) or a continuation (leading SP or HTAB)? */
static bool is_header_line(const char *line, size_t len)
{
	size_t i = 0;

	if (len > 0 && (line[0] == ' ' || line[0] == '\t'))
		return true;
	while (i < len && line[i] > ' ' && line[i] < 127 && line[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < len && line[i] == ':';
}

/* Has raw a complete line from *pos on that ends the header section?
 * *pos moves past the complete header lines seen, so each is looked at once. */
static bool head_ended(const struct strbuf *raw, size_t *pos)
{
	const char *nl;

	while ((nl = memchr(raw->s + *pos, '\n', raw->len - *pos)) != NULL) {
		size_t n = (size_t)(nl - (raw->s + *pos));

		if (n > 0 && raw->s[*pos + n - 1] == '\r')
			n--;
		if (!is_header_line(raw->s + *pos, n))
			return true;
		*pos = (size_t)(nl - raw->s) + 1;
	}
	return false;
}

/*
 * Read the message (the first msg_len octets of fd, from offset 0) into
 * raw: at most limit octets, and with stop_at_body only until a line ends
 * the header section.  *complete tells whether the whole message was read.
 */
static bool load(int fd, uint64_t msg_len, size_t limit, bool stop_at_body, struct strbuf *raw,
		 bool *complete, char *err, size_t errsz)
{
	char *chunk = xmalloc(READ_CHUNK);
	size_t scan = 0;

	while (raw->len < limit && raw->len < msg_len) {
		size_t want = limit - raw->len < READ_CHUNK ? limit - raw->len : READ_CHUNK;
		ssize_t n;

		if (msg_len - raw->len < want)
			want = (size_t)(msg_len - raw->len);
		n = pread(fd, chunk, want, (off_t)raw->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(chunk);
			set_err(err, errsz, e, "reading the queued message: %s", strerror(e));
			return false;
		}
		if (n == 0) {
			free(chunk);
			set_err(err, errsz, EIO, "reading the queued message: it ended early");
			return false;
		}
		strbuf_add(raw, chunk, (size_t)n);
		if (stop_at_body && head_ended(raw, &scan))
			break;
	}
	free(chunk);
	*complete = raw->len == msg_len;
	return true;
}

/* Append line[0..len) and CRLF to b: a stray CR or a NUL becomes a space,
 * so the part keeps CRLF line endings only.  Returns true when the line
 * holds an octet above 127. */
static bool put_line(struct strbuf *b, const char *line, size_t len)
{
	unsigned char acc = 0;
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		acc |= (unsigned char)line[i];
		if (line[i] == '\r' || line[i] == '\0') {
			strbuf_add(b, line + run, i - run);
			strbuf_add(b, " ", 1);
			run = i + 1;
		}
	}
	strbuf_add(b, line + run, len - run);
	strbuf_add(b, "\r\n", 2);
	return (acc & 0x80) != 0;
}

/* Add one line of the header section to o->head: cut at DSN_LINE_MAX,
 * left out once the section is over DSN_HEADERS_MAX (noted either way). */
static void head_line(struct original *o, const char *line, size_t len)
{
	size_t keep = len > DSN_LINE_MAX ? DSN_LINE_MAX : len;

	if (has_8bit(line, len))
		o->head8 = true;
	if (keep < len)
		o->notes |= NOTE_LINE_CUT;
	if (o->head.len + keep + 2 > DSN_HEADERS_MAX)
		o->notes |= NOTE_HEAD_CUT;
	else
		put_line(&o->head, line, keep);
}

/*
 * Split the octets read, p[0..n) (complete: the whole file), into the
 * header section (o->head, see head_line()) and, with want_full, the whole
 * message (o->whole), given up on a line over DSN_LINE_MAX.  Lines end in
 * LF or CRLF; a last line without one is ended.  When the header section
 * ends at a line that is not empty, whole gets an empty line before it.
 */
static void split(const char *p, size_t n, bool complete, bool want_full, struct original *o)
{
	bool in_head = true, full = want_full;
	size_t pos = 0;

	while (pos < n && ((in_head && !(o->notes & NOTE_HEAD_CUT)) || full)) {
		const char *line = p + pos, *nl = memchr(line, '\n', n - pos);
		size_t len = nl != NULL ? (size_t)(nl - line) : n - pos;

		pos += len + 1;
		if (nl == NULL && !complete) { /* cut off at the read limit */
			full = false;
			break;
		}
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (in_head && !is_header_line(line, len)) {
			in_head = false;
			if (full) /* the empty line, or one put before the body */
				strbuf_add(&o->whole, "\r\n", 2);
			if (len == 0 || !full)
				continue;
		}
		if (in_head)
			head_line(o, line, len);
		if (full && len > DSN_LINE_MAX) {
			o->notes |= NOTE_LONG_LINE;
			full = false;
		} else if (full) {
			put_line(&o->whole, line, len);
		}
	}
	if (in_head && !complete)
		o->notes |= NOTE_HEAD_CUT;
	o->full = full;
	if (!full) {
		strbuf_free(&o->whole);
		strbuf_init(&o->whole);
	}
}

/*
 * Read the original (the first msg_len octets of fd) into o: the whole of
 * it when want_full and it is at most max_full octets (never more than
 * max_full + 1 read), else only as far as its header section goes (at most
 * DSN_HEADERS_MAX read).
 */
static bool read_original(int fd, uint64_t msg_len, bool want_full, uint64_t max_full,
			  struct original *o, char *err, size_t errsz)
{
	struct strbuf raw;
	bool complete, full = want_full, ok;
	size_t limit = DSN_HEADERS_MAX;

	if (full && msg_len > max_full) {
		o->notes |= NOTE_TOO_BIG;
		full = false;
	}
	if (full)
		limit = max_full >= SIZE_MAX ? SIZE_MAX : (size_t)max_full + 1;
	strbuf_init(&raw);
	ok = load(fd, msg_len, limit, !full, &raw, &complete, err, errsz);
	if (ok) {
		o->empty = complete && raw.len == 0;
		split(raw.s, raw.len, complete, full, o);
	}
	strbuf_free(&raw);
	return ok;
}

/* --- text ------------------------------------------------------------------------ */

/* Is s[0..n) valid UTF-8 (no overlong forms, surrogates or values above U+10FFFF)? */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned long v;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			k = 1;
			v = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			v = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			v = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			v = v << 6 | (s[i + j] & 0x3F);
		}
		if ((k == 2 && v < 0x800) || (k == 3 && (v < 0x10000 || v > 0x10FFFF)) ||
		    (v >= 0xD800 && v <= 0xDFFF))
			return false;
		i += k + 1;
	}
	return true;
}

/*
 * Append s to b as one line of text: every control octet (CR, LF, TAB,
 * DEL ...) counts as a space, a run of spaces becomes one, none at either
 * end; octets above 127 stay when utf8 allows them and s is valid UTF-8,
 * else each becomes '?'.  At most max octets of s are kept (never half a
 * UTF-8 character), followed by "..." when it was cut.
 */
static void clean(struct strbuf *b, const char *s, size_t max, bool utf8)
{
	size_t n = strlen(s), kept = 0, start = b->len, clen;
	bool keep8 = utf8 && utf8_valid((const unsigned char *)s, n), space = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7F || c == ' ') {
			space = kept > 0;
			continue;
		}
		if (keep8 && c >= 0xC0) /* a whole character fits, or none of it */
			clen = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
		else
			clen = 1;
		if (kept + (space ? 1 : 0) + clen > max) {
			strbuf_adds(b, "...");
			return;
		}
		if (space) {
			strbuf_add(b, " ", 1);
			space = false;
		}
		if (c >= 0x80 && !keep8)
			c = '?';
		strbuf_add(b, (const char *)&c, 1);
		kept = b->len - start;
	}
}

/* clean() into a fresh string; the caller frees it. */
static char *cleaned(const char *s, size_t max, bool utf8)
{
	struct strbuf b;

	strbuf_init(&b);
	clean(&b, s, max, utf8);
	return b.s;
}

/*
 * Append lead, then the words of text (single spaces between them, as
 * clean() leaves it), then CRLF.  A line is broken before a word that would
 * take it past width, never right after lead; each further line starts
 * with indent (" " folds a header field, RFC 5322 §2.2.3).  A word longer
 * than DSN_WORD_MAX is split (at a UTF-8 character boundary), so no line
 * is longer than lead or indent plus DSN_WORD_MAX plus one.
 */
static void fold(struct strbuf *out, const char *lead, const char *text, const char *indent,
		 size_t width)
{
	size_t col = strlen(lead);
	bool can_break = false, sep = col > 0 && lead[col - 1] != ' ';
	const char *p = text;

	strbuf_adds(out, lead);
	while (*p != '\0') {
		const char *sp = strchr(p, ' ');
		size_t wl = sp != NULL ? (size_t)(sp - p) : strlen(p);

		while (wl > 0) {
			size_t take = wl;

			if (take > DSN_WORD_MAX) {
				take = DSN_WORD_MAX;
				while (take > 1 && ((unsigned char)p[take] & 0xC0) == 0x80)
					take--;
			}
			if (can_break && col + (sep ? 1 : 0) + take > width) {
				strbuf_add(out, "\r\n", 2);
				strbuf_adds(out, indent);
				col = strlen(indent);
				sep = false;
			}
			if (sep) {
				strbuf_add(out, " ", 1);
				col++;
			}
			strbuf_add(out, p, take);
			col += take;
			p += take;
			wl -= take;
			can_break = true;
			sep = true;
			if (wl > 0) /* the rest of a split word starts a line of its own */
				col = width + 1;
		}
		if (*p == ' ')
			p++;
	}
	strbuf_add(out, "\r\n", 2);
}

/* fold() of printf-style text through clean() (ASCII only unless utf8). */
static void foldf(struct strbuf *out, const char *lead, const char *indent, size_t width, bool utf8,
		  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void foldf(struct strbuf *out, const char *lead, const char *indent, size_t width, bool utf8,
		  const char *fmt, ...)
{
	va_list ap;
	char *raw, *text;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&raw, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fprintf(stderr, "hato: out of memory\n");
		abort();
	}
	text = cleaned(raw, (size_t)n, utf8);
	fold(out, lead, text, indent, width);
	free(text);
	free(raw);
}

/* --- values ---------------------------------------------------------------------- */

/* The text an xtext value stands for (RFC 3461 §4), or the value as given
 * when it does not decode to printable ASCII; the caller frees it. */
static char *xtext_or_given(const char *s)
{
	size_t n, size = strlen(s) + 1;
	char *out = xmalloc(size);

	if (dsn_xtext_decode(s, out, size, &n)) {
		size_t i = 0;

		while (i < n && out[i] >= ' ' && out[i] <= '~')
			i++;
		if (i == n)
			return out;
	}
	memcpy(out, s, size);
	return out;
}

/* The Original-Recipient value for ORCPT "type;xtext": "type; address",
 * the address decoded when it can be; "unknown; ..." without a type. */
static char *orcpt_value(const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	struct strbuf b;
	char *addr;

	strbuf_init(&b);
	if (semi == NULL || semi == orcpt) {
		strbuf_printf(&b, "unknown; %s", orcpt);
		return b.s;
	}
	addr = xtext_or_given(semi + 1);
	strbuf_add(&b, orcpt, (size_t)(semi - orcpt));
	strbuf_printf(&b, "; %s", addr);
	free(addr);
	return b.s;
}

/* addr without its angle brackets ("<a@b>" -> "a@b"); the caller frees it. */
static char *bare(const char *addr)
{
	size_t n = strlen(addr);

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		return xstrndup(addr + 1, n - 2);
	return xstrdup(addr);
}

/* Is s an RFC 3464 §2.3.4 status code: class 2, 4 or 5, then two numbers
 * of one to three digits, no leading zeros? */
static bool status_valid(const char *s)
{
	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		size_t n = 0;

		while (s[n] >= '0' && s[n] <= '9')
			n++;
		if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
			return false;
		s += n;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

/* The status to report for a recipient: its own, or X.0.0 of its action's class. */
static const char *status_of(const struct dsn_rcpt *rc)
{
	if (status_valid(rc->status))
		return rc->status;
	switch (rc->action) {
	case DSN_ACTION_FAILED:
		return "5.0.0";
	case DSN_ACTION_DELAYED:
		return "4.0.0";
	default:
		return "2.0.0";
	}
}

/* Does text start with an SMTP reply code ("550 ", "451-", "250")? Then
 * its diagnostic-type is smtp; anything else is hato's own words. */
static bool is_smtp_reply(const char *text)
{
	while (*text == ' ')
		text++;
	return text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' &&
	       text[2] >= '0' && text[2] <= '9' &&
	       (text[3] == '\0' || text[3] == ' ' || text[3] == '-' || text[3] == '\r');
}

/* Which report this is. */
static enum kind kind_of(const struct dsn_report *r)
{
	bool delayed = false;

	for (size_t i = 0; i < r->nrcpts; i++) {
		if (r->rcpts[i].action == DSN_ACTION_FAILED)
			return KIND_FAILED;
		if (r->rcpts[i].action == DSN_ACTION_DELAYED)
			delayed = true;
	}
	return delayed ? KIND_DELAYED : KIND_SUCCESS;
}

/* --- the parts ------------------------------------------------------------------- */

/* Part 1's body: what happened, for a person. */
static void human_part(const struct dsn_report *r, enum kind k, const struct original *o,
		       bool have_orig, bool asked_full, uint64_t max_full, bool utf8,
		       struct strbuf *b)
{
	char date[MAIL_DATE_SIZE];
	char *host = cleaned(r->hostname, DSN_DIAG_MAX, false);

	foldf(b, "", "", TEXT_WIDTH, false, "This is the mail system at %s.", host);
	strbuf_adds(b, "\r\n");
	switch (k) {
	case KIND_FAILED:
		fold(b, "",
		     "Your message could not be delivered to one or more of its recipients."
		     " The mail system has given up on them; the details are below.",
		     "", TEXT_WIDTH);
		break;
	case KIND_DELAYED:
		fold(b, "",
		     "Your message has not been delivered yet to the recipients below."
		     " The mail system is still trying and will tell you if it gives up;"
		     " there is no need to send the message again.",
		     "", TEXT_WIDTH);
		break;
	case KIND_SUCCESS:
		fold(b, "",
		     "Your message was delivered as described below. You asked to be told when it"
		     " was.",
		     "", TEXT_WIDTH);
		break;
	}
	if (r->arrival != 0 && mail_date(r->arrival, date, sizeof(date)))
		foldf(b, "", "", TEXT_WIDTH, false, "It arrived on %s%s%s%s.", date,
		      r->queue_id != NULL ? " (queue ID " : "",
		      r->queue_id != NULL ? r->queue_id : "", r->queue_id != NULL ? ")" : "");
	else if (r->queue_id != NULL)
		foldf(b, "", "", TEXT_WIDTH, false, "Its queue ID was %s.", r->queue_id);

	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		const char *mta =
			rc->remote_mta != NULL && rc->remote_mta[0] != '\0' ? rc->remote_mta : NULL;

		strbuf_adds(b, "\r\n");
		switch (rc->action) {
		case DSN_ACTION_FAILED:
			foldf(b, "", "    ", TEXT_WIDTH, utf8, "%s: could not be delivered (%s).",
			      rc->addr, status_of(rc));
			break;
		case DSN_ACTION_DELAYED:
			if (rc->retry_until != 0 && mail_date(rc->retry_until, date, sizeof(date)))
				foldf(b, "", "    ", TEXT_WIDTH, utf8,
				      "%s: not delivered yet (%s). The mail system will keep "
				      "trying until %s.",
				      rc->addr, status_of(rc), date);
			else
				foldf(b, "", "    ", TEXT_WIDTH, utf8,
				      "%s: not delivered yet (%s). The mail system will keep "
				      "trying.",
				      rc->addr, status_of(rc));
			break;
		case DSN_ACTION_DELIVERED:
			foldf(b, "", "    ", TEXT_WIDTH, utf8, "%s: delivered%s%s.", rc->addr,
			      mta != NULL ? " to " : "", mta != NULL ? mta : "");
			break;
		case DSN_ACTION_RELAYED:
			foldf(b, "", "    ", TEXT_WIDTH, utf8,
			      "%s: relayed to %s, which may not report the delivery.", rc->addr,
			      mta != NULL ? mta : "a mail system");
			break;
		case DSN_ACTION_EXPANDED:
			foldf(b, "", "    ", TEXT_WIDTH, utf8,
			      "%s: delivered, and sent on to the addresses it stands for.",
			      rc->addr);
			break;
		}
		if (rc->orcpt != NULL) {
			char *v = orcpt_value(rc->orcpt);
			const char *semi = strstr(v, "; ");

			foldf(b, "    ", "    ", TEXT_WIDTH, utf8, "It was addressed to %s.",
			      semi != NULL ? semi + 2 : v);
			free(v);
		}
		if (rc->diagnostic != NULL && rc->diagnostic[0] != '\0') {
			char *d = cleaned(rc->diagnostic, DSN_DIAG_MAX, utf8);

			if (mta != NULL)
				foldf(b, "    ", "    ", TEXT_WIDTH, utf8, "%s said: %s", mta, d);
			else
				foldf(b, "    ", "    ", TEXT_WIDTH, utf8,
				      "The mail system said: %s", d);
			free(d);
		}
	}

	if (!have_orig) {
		free(host);
		return;
	}
	strbuf_adds(b, "\r\n");
	if (o->empty)
		fold(b, "", "The queued message was empty, so there is nothing to return.", "",
		     TEXT_WIDTH);
	else if (o->full)
		fold(b, "", "Your message is attached.", "", TEXT_WIDTH);
	else
		fold(b, "", "The header section of your message is attached.", "", TEXT_WIDTH);
	if (asked_full && (o->notes & NOTE_TOO_BIG))
		foldf(b, "", "", TEXT_WIDTH, false,
		      "You asked for the whole message, but it is larger than %llu octets.",
		      (unsigned long long)max_full);
	else if (asked_full && (o->notes & NOTE_LONG_LINE))
		foldf(b, "", "", TEXT_WIDTH, false,
		      "You asked for the whole message, but it has a line longer than %d "
		      "octets.",
		      DSN_LINE_MAX);
	if (!o->full && (o->notes & NOTE_HEAD_CUT))
		foldf(b, "", "", TEXT_WIDTH, false,
		      "The header section is longer than %d octets and is cut.", DSN_HEADERS_MAX);
	if (!o->full && (o->notes & NOTE_LINE_CUT))
		foldf(b, "", "", TEXT_WIDTH, false, "Header lines longer than %d octets are cut.",
		      DSN_LINE_MAX);
	free(host);
}

/* Append "Name: value" folded, value through clean(). */
static void field(struct strbuf *b, const char *name, const char *value, bool utf8)
{
	char *v = cleaned(value, DSN_DIAG_MAX, utf8);

	fold(b, name, v, " ", FIELD_WIDTH);
	free(v);
}

/* Part 2's body: the RFC 3464 §2.2 and §2.3 fields (RFC 6533 forms when utf8). */
static void status_part(const struct dsn_report *r, bool utf8, struct strbuf *b)
{
	char date[MAIL_DATE_SIZE];
	char *host = cleaned(r->hostname, DSN_DIAG_MAX, false);

	if (r->envid != NULL) {
		char *v = xtext_or_given(r->envid);

		field(b, "Original-Envelope-Id:", v, false);
		free(v);
	}
	foldf(b, "Reporting-MTA:", " ", FIELD_WIDTH, false, "dns; %s", host);
	if (r->arrival != 0 && mail_date(r->arrival, date, sizeof(date)))
		field(b, "Arrival-Date:", date, false);
	if (r->queue_id != NULL)
		field(b, "X-Hato-Queue-ID:", r->queue_id, false);

	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		char *addr = bare(rc->addr);
		bool intl = has_8bit(addr, strlen(addr));

		strbuf_adds(b, "\r\n");
		if (rc->orcpt != NULL) {
			char *v = orcpt_value(rc->orcpt);

			field(b, "Original-Recipient:", v, false);
			free(v);
		}
		foldf(b, "Final-Recipient:", " ", FIELD_WIDTH, utf8, "%s; %s",
		      utf8 && intl ? "utf-8" : "rfc822", addr);
		field(b, "Action:", dsn_action_name(rc->action), false);
		field(b, "Status:", status_of(rc), false);
		if (rc->remote_mta != NULL && rc->remote_mta[0] != '\0')
			foldf(b, "Remote-MTA:", " ", FIELD_WIDTH, false, "dns; %s", rc->remote_mta);
		if (rc->diagnostic != NULL && rc->diagnostic[0] != '\0') {
			char *d = cleaned(rc->diagnostic, DSN_DIAG_MAX, utf8);

			foldf(b, "Diagnostic-Code:", " ", FIELD_WIDTH, utf8, "%s; %s",
			      is_smtp_reply(rc->diagnostic) ? "smtp" : "X-Hato", d);
			free(d);
		}
		if (rc->last_attempt != 0 && mail_date(rc->last_attempt, date, sizeof(date)))
			field(b, "Last-Attempt-Date:", date, false);
		if (rc->action == DSN_ACTION_DELAYED && rc->retry_until != 0 &&
		    mail_date(rc->retry_until, date, sizeof(date)))
			field(b, "Will-Retry-Until:", date, false);
		free(addr);
	}
	free(host);
}

/* Does any of the n buffers hold s? */
static bool occurs(const char *s, const struct strbuf *const *bufs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (bufs[i] != NULL && memmem(bufs[i]->s, bufs[i]->len, s, strlen(s)) != NULL)
			return true;
	return false;
}

/*
 * A boundary that occurs in none of the n buffers: "=_hato_", the queue ID
 * (its letters and digits), 16 random hex digits, and a counter when that
 * was not enough.  "=_" cannot start a quoted-printable or base64 line.
 */
static void make_boundary(char *buf, size_t size, const char *queue_id, const unsigned char rnd[8],
			  const struct strbuf *const *bufs, size_t n)
{
	char qid[24], base[64];
	size_t q = 0;

	for (const char *p = queue_id != NULL ? queue_id : ""; *p != '\0' && q < 20; p++)
		if ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= 'a' && *p <= 'z'))
			qid[q++] = *p;
	qid[q] = '\0';
	snprintf(base, sizeof(base), "=_hato_%s_%02x%02x%02x%02x%02x%02x%02x%02x",
		 q > 0 ? qid : "report", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		 rnd[7]);
	snprintf(buf, size, "%s", base);
	for (unsigned long i = 1; occurs(buf, bufs, n); i++)
		snprintf(buf, size, "%s_%lu", base, i);
}

/* Append "--boundary" and a part's header fields and body to out. */
static void put_part(struct strbuf *out, const char *boundary, const char *description,
		     const char *type, const struct strbuf *body)
{
	strbuf_printf(out, "--%s\r\n", boundary);
	strbuf_printf(out, "Content-Description: %s\r\n", description);
	strbuf_printf(out, "Content-Type: %s\r\n", type);
	if (has_8bit(body->s, body->len))
		strbuf_adds(out, "Content-Transfer-Encoding: 8bit\r\n");
	strbuf_adds(out, "\r\n");
	strbuf_add(out, body->s, body->len);
	if (body->len > 0 && (body->len < 2 || memcmp(body->s + body->len - 2, "\r\n", 2) != 0))
		strbuf_adds(out, "\r\n");
	strbuf_adds(out, "\r\n");
}

/* See dsn_report.h. */
bool dsn_build(const struct dsn_report *r, int msg_fd, uint64_t msg_len, uint64_t max_full,
	       struct strbuf *out, struct dsn_built *built, char *err, size_t errsz)
{
	static const char *const subjects[] = {
		[KIND_FAILED] = "Undelivered Mail Returned to Sender",
		[KIND_DELAYED] = "Delayed Mail (still being retried)",
		[KIND_SUCCESS] = "Successful Mail Delivery Report",
	};
	struct original o = {0};
	struct strbuf human, status;
	const struct strbuf *bufs[3];
	unsigned char rnd[8];
	char boundary[128], date[MAIL_DATE_SIZE], msgid[MAIL_MSGID_SIZE];
	enum kind k;
	bool utf8, asked_full, part3, eight;
	char *host, *to;

	if (r == NULL || r->hostname == NULL || r->hostname[0] == '\0' || r->to == NULL ||
	    r->to[0] == '\0' || strcmp(r->to, "<>") == 0 || r->rcpts == NULL || r->nrcpts == 0) {
		set_err(err, errsz, EINVAL, "a report needs a hostname, a sender and recipients");
		return false;
	}
	for (size_t i = 0; i < r->nrcpts; i++) {
		if (r->rcpts[i].addr == NULL || r->rcpts[i].addr[0] == '\0') {
			set_err(err, errsz, EINVAL, "recipient %zu has no address", i + 1);
			return false;
		}
	}
	k = kind_of(r);
	asked_full = r->ret_full && k == KIND_FAILED;
	strbuf_init(&o.head);
	strbuf_init(&o.whole);
	if (msg_fd >= 0 && !read_original(msg_fd, msg_len, asked_full, max_full, &o, err, errsz)) {
		strbuf_free(&o.head);
		strbuf_free(&o.whole);
		return false;
	}
	part3 = msg_fd >= 0 && !o.empty;

	/* RFC 6533 forms when anything returned or addressed is not ASCII */
	utf8 = (part3 && o.head8) || has_8bit(r->to, strlen(r->to));
	for (size_t i = 0; i < r->nrcpts; i++)
		if (has_8bit(r->rcpts[i].addr, strlen(r->rcpts[i].addr)))
			utf8 = true;

	strbuf_init(&human);
	strbuf_init(&status);
	human_part(r, k, &o, msg_fd >= 0, asked_full, max_full, utf8, &human);
	status_part(r, utf8, &status);

	random_octets(rnd, sizeof(rnd));
	bufs[0] = &human;
	bufs[1] = &status;
	bufs[2] = part3 ? (o.full ? &o.whole : &o.head) : NULL;
	make_boundary(boundary, sizeof(boundary), r->queue_id, rnd, bufs, 3);

	/* the message's header section */
	host = cleaned(r->hostname, ADDR_DOMAIN_MAX, false);
	to = cleaned(r->to, DSN_DIAG_MAX, utf8);
	strbuf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host);
	fold(out, "To:", to, " ", FIELD_WIDTH);
	strbuf_printf(out, "Subject: %s\r\n", subjects[k]);
	if (!mail_date(r->now, date, sizeof(date)))
		strcpy_bounded(date, MAIL_DATE_EPOCH, sizeof(date));
	strbuf_printf(out, "Date: %s\r\n", date);
	mail_msgid(r->now, host, msgid, sizeof(msgid));
	strbuf_printf(out, "Message-ID: %s\r\n", msgid);
	strbuf_adds(out, "MIME-Version: 1.0\r\n");
	strbuf_adds(out, "Auto-Submitted: auto-replied\r\n");
	strbuf_printf(out,
		      "Content-Type: multipart/report; report-type=%s;\r\n\tboundary=\"%s\"\r\n",
		      utf8 ? "global-delivery-status" : "delivery-status", boundary);
	eight = has_8bit(human.s, human.len) || has_8bit(status.s, status.len) ||
		(bufs[2] != NULL && has_8bit(bufs[2]->s, bufs[2]->len));
	if (eight)
		strbuf_adds(out, "Content-Transfer-Encoding: 8bit\r\n");
	strbuf_adds(out, "\r\nThis is a delivery status notification in MIME format.\r\n\r\n");

	put_part(out, boundary, "Notification",
		 utf8 ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii", &human);
	put_part(out, boundary, "Delivery report",
		 utf8 ? "message/global-delivery-status" : "message/delivery-status", &status);
	if (part3 && o.full)
		put_part(out, boundary, "Undelivered message",
			 utf8 ? "message/global" : "message/rfc822", &o.whole);
	else if (part3)
		put_part(out, boundary,
			 k == KIND_FAILED ? "Undelivered message headers" : "Message headers",
			 utf8 ? "message/global-headers" : "text/rfc822-headers", &o.head);
	strbuf_printf(out, "--%s--\r\n", boundary);

	if (built != NULL) {
		built->eightbit = eight || has_8bit(to, strlen(to));
		built->smtputf8 = utf8;
		built->returned_full = part3 && o.full;
		built->returned_any = part3;
	}
	strbuf_free(&human);
	strbuf_free(&status);
	strbuf_free(&o.head);
	strbuf_free(&o.whole);
	free(host);
	free(to);
	return true;
}
