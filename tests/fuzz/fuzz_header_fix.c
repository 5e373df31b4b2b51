/*
 * fuzz_header_fix.c - libFuzzer target for src/intake/header_fix.c.
 *
 * Input: bytes 0-3 seed the split sizes, the rest is the message.  It is
 * filtered in random chunks (empty ones included), one byte at a time and
 * all at once; all three must agree (output and counters) with each other
 * and with a plain line-by-line reference model of the rules in
 * header_fix.h.  Independently of the model:
 *   - the input has an empty line iff the output has, and what follows the
 *     first one is identical;
 *   - the output's header section has no Bcc: line and has a Date: and a
 *     Message-ID: field;
 *   - an input without Bcc:, Date: or Message-ID: trouble comes out as is.
 * With `hato send`'s fill (From: too, an empty line before a body that
 * began without one) the three splits must agree with each other, and the
 * output is the submission output with at most the From: field and one
 * empty line more.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header_fix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define DATE "Sun, 29 Nov 2026 01:30:00 +0000"
#define MSGID "<20261129013000.ABC@mx.example>"

struct run {
	struct strbuf out;
	bool date, msgid;
	unsigned bcc;
};

/* xorshift32: chunk sizes that depend only on the input. */
static uint32_t next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

#define FROM "Me <me@mx.example>"

/* Filter s in chunks: seed 0 one chunk, 1 byte by byte, else random; with
 * fill NULL the submission service's fix-ups. */
static void feed_fill(const char *s, size_t len, uint32_t seed, const struct header_fix_fill *fill,
		      struct run *r)
{
	struct header_fix h;
	size_t pos = 0;

	if (fill != NULL)
		header_fix_start(&h, fill);
	else
		header_fix_init(&h, DATE, MSGID);
	strbuf_init(&r->out);
	while (pos < len) {
		size_t n = len - pos;

		if (seed == 1) {
			n = 1;
		} else if (seed != 0) {
			uint32_t x = next_rand(&seed);
			size_t want = (x & 0x100) ? x % 512 : x % 9;
			if (want < n)
				n = want;
		}
		header_fix_feed(&h, s + pos, n, &r->out);
		CHECK(h.plen <= HEADER_FIX_NAME_MAX);
		pos += n;
	}
	header_fix_finish(&h, &r->out);
	r->date = header_fix_added_date(&h);
	r->msgid = header_fix_added_msgid(&h);
	r->bcc = header_fix_removed_bcc(&h);
}

/* The submission service's fix-ups. */
static void feed(const char *s, size_t len, uint32_t seed, struct run *r)
{
	feed_fill(s, len, seed, NULL, r);
}

/* Length of the line at s[0..len): through its LF, or to the end. */
static size_t line_len(const char *s, size_t len)
{
	const char *nl = memchr(s, '\n', len);

	return nl != NULL ? (size_t)(nl - s) + 1 : len;
}

enum kind {
	LINE_END,   /* not a header line: the header section ends before it */
	LINE_CONT,  /* starts with SP or HTAB */
	LINE_FIELD, /* a field; *namelen set when its name can match */
};

/* Classify a line by the rules in header_fix.h. */
static enum kind classify(const char *l, size_t n, size_t *namelen)
{
	size_t k = 0, w = 0;

	*namelen = 0;
	if (n > 0 && (l[0] == ' ' || l[0] == '\t'))
		return LINE_CONT;
	while (k < n && l[k] >= 33 && l[k] <= 126 && l[k] != ':')
		k++;
	while (k + w < n && (l[k + w] == ' ' || l[k + w] == '\t'))
		w++;
	if (k == 0)
		return LINE_END;
	if (k + w > HEADER_FIX_NAME_MAX)
		return LINE_FIELD; /* too long to hold: a field, not one of ours */
	if (k + w < n && l[k + w] == ':') {
		*namelen = k; /* "Bcc :" (obsolete WSP before the colon) names a Bcc too */
		return LINE_FIELD;
	}
	return LINE_END;
}

/* Is l[0..n) the field name want (lower case), ignoring ASCII case? */
static bool name_eq(const char *l, size_t n, const char *want)
{
	if (n != strlen(want))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = l[i] >= 'A' && l[i] <= 'Z' ? (char)(l[i] - 'A' + 'a') : l[i];
		if (c != want[i])
			return false;
	}
	return true;
}

/*
 * Where the header section of s[0..len) ends (len if it never does), and
 * whether it has Bcc, Date and Message-ID fields.
 */
static size_t header_end(const char *s, size_t len, unsigned *bcc, bool *date, bool *msgid)
{
	size_t pos = 0;

	*bcc = 0;
	*date = *msgid = false;
	while (pos < len) {
		size_t n = line_len(s + pos, len - pos), namelen;
		enum kind k = classify(s + pos, n, &namelen);

		if (k == LINE_END)
			return pos;
		if (k == LINE_FIELD) {
			*bcc += name_eq(s + pos, namelen, "bcc");
			*date |= name_eq(s + pos, namelen, "date");
			*msgid |= name_eq(s + pos, namelen, "message-id");
		}
		pos += n;
	}
	return len;
}

/* The reference model: whole lines, no streaming. */
static void reference(const char *s, size_t len, struct run *r)
{
	size_t pos = 0;
	bool dropping = false, seen_date = false, seen_msgid = false, partial = false;

	strbuf_init(&r->out);
	r->bcc = 0;
	while (pos < len) {
		size_t n = line_len(s + pos, len - pos), namelen;
		enum kind k = classify(s + pos, n, &namelen);

		if (k == LINE_END)
			break;
		if (k == LINE_FIELD) {
			dropping = name_eq(s + pos, namelen, "bcc");
			r->bcc += dropping;
			seen_date |= name_eq(s + pos, namelen, "date");
			seen_msgid |= name_eq(s + pos, namelen, "message-id");
		}
		if (!dropping) {
			strbuf_add(&r->out, s + pos, n);
			partial = s[pos + n - 1] != '\n';
		} else {
			partial = false;
		}
		pos += n;
	}
	if (pos == len && partial)
		strbuf_adds(&r->out, s[len - 1] == '\r' ? "\n" : "\r\n");
	r->date = !seen_date;
	r->msgid = !seen_msgid;
	if (r->date)
		strbuf_adds(&r->out, "Date: " DATE "\r\n");
	if (r->msgid)
		strbuf_adds(&r->out, "Message-ID: " MSGID "\r\n");
	strbuf_add(&r->out, s + pos, len - pos);
}

/* Offset just past the first empty line of s[0..len), or 0 when none. */
static size_t after_empty_line(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (i > 0 && s[i - 1] != '\n')
			continue;
		if (s[i] == '\n')
			return i + 1;
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
			return i + 2;
	}
	return 0;
}

/* Assert two runs agree. */
static void check_same(const struct run *a, const struct run *b)
{
	CHECK(a->out.len == b->out.len);
	CHECK(memcmp(a->out.s, b->out.s, a->out.len) == 0);
	CHECK(a->date == b->date);
	CHECK(a->msgid == b->msgid);
	CHECK(a->bcc == b->bcc);
}

/* hato send's fill: the splits agree, and only From: and a separator differ. */
static void check_send_fill(const char *s, size_t len, uint32_t seed, const struct run *sub)
{
	static const struct header_fix_fill fill = {
		.from = FROM, .date = DATE, .msgid = MSGID, .separate = true};
	struct run whole, bytes, split;

	feed_fill(s, len, 0, &fill, &whole);
	feed_fill(s, len, 1, &fill, &bytes);
	feed_fill(s, len, seed, &fill, &split);
	check_same(&whole, &bytes);
	check_same(&whole, &split);
	CHECK(whole.date == sub->date && whole.msgid == sub->msgid && whole.bcc == sub->bcc);
	CHECK(whole.out.len >= sub->out.len);
	CHECK(whole.out.len - sub->out.len <= strlen("From: " FROM "\r\n") + 2);
	strbuf_free(&whole.out);
	strbuf_free(&bytes.out);
	strbuf_free(&split.out);
}

/* Entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, bytes, split, ref;
	const char *s, *o;
	size_t len, hend, in_hend, ia, oa;
	uint32_t seed;
	unsigned in_bcc, out_bcc;
	bool in_date, in_msgid, out_date, out_msgid;

	if (size < 4)
		return 0;
	seed = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
	       (uint32_t)data[3] << 24;
	seed |= 2; /* never 0 (one chunk) or 1 (byte by byte) */
	s = (const char *)data + 4;
	len = size - 4;

	feed(s, len, 0, &whole);
	feed(s, len, 1, &bytes);
	feed(s, len, seed, &split);
	reference(s, len, &ref);
	check_same(&whole, &bytes);
	check_same(&whole, &split);
	check_same(&whole, &ref);
	check_send_fill(s, len, seed, &whole);

	/* The body after the first empty line is the input's. */
	o = whole.out.s;
	ia = after_empty_line(s, len);
	oa = after_empty_line(o, whole.out.len);
	CHECK((ia == 0) == (oa == 0));
	if (ia != 0) {
		CHECK(len - ia == whole.out.len - oa);
		CHECK(memcmp(s + ia, o + oa, len - ia) == 0);
	}

	/* The output's header section: no Bcc, a Date and a Message-ID. */
	hend = header_end(o, whole.out.len, &out_bcc, &out_date, &out_msgid);
	CHECK(out_bcc == 0 && out_date && out_msgid);
	for (size_t i = 0; i + 6 <= hend; i++)
		CHECK(!(o[i] == '\r' && o[i + 1] == '\n' && name_eq(o + i + 2, 3, "bcc") &&
			o[i + 5] == ':'));
	CHECK(!(hend >= 4 && name_eq(o, 3, "bcc") && o[3] == ':'));

	/* Counters agree with the input's header section. */
	in_hend = header_end(s, len, &in_bcc, &in_date, &in_msgid);
	CHECK(whole.bcc == in_bcc);
	CHECK(whole.date == !in_date);
	CHECK(whole.msgid == !in_msgid);

	/* Nothing to fix, and a complete last line: the output is the input. */
	if (in_bcc == 0 && in_date && in_msgid &&
	    (len == 0 || s[len - 1] == '\n' || in_hend < len)) {
		CHECK(whole.out.len == len);
		CHECK(memcmp(o, s, len) == 0);
	}

	strbuf_free(&whole.out);
	strbuf_free(&bytes.out);
	strbuf_free(&split.out);
	strbuf_free(&ref.out);
	return 0;
}
