/*
 * test_header_fix.c - unit tests for src/intake/header_fix.c: submission
 * fix-ups (RFC 6409 §8).  Bcc: fields are removed with their continuation
 * lines, other fields and the body pass byte for byte, Date: and Message-ID:
 * are added only when missing and just before the end of the header
 * section, the output does not depend on how the input is split, and state
 * stays bounded on 100 KB lines.  Every expected output is checked one-shot,
 * byte by byte and at every two-way split.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "header_fix.h"

#define DATE "Sun, 29 Nov 2026 01:30:00 +0000"
#define MSGID "<20261129013000.ABC@mx.example>"
#define ADD_DATE "Date: " DATE "\r\n"
#define ADD_MSGID "Message-ID: " MSGID "\r\n"
#define ADD_BOTH ADD_DATE ADD_MSGID

/* What one run of the filter produced. */
struct result {
	struct strbuf out;
	bool added_date;
	bool added_msgid;
	unsigned removed_bcc;
};

/*
 * Filter in[0..len) in chunks whose sizes come from cuts[] (the last size
 * repeats; 0 feeds an empty chunk once), then finish.  The held prefix never
 * exceeds its bound between calls.
 */
static void run_cuts(const char *in, size_t len, const size_t *cuts, size_t ncuts, struct result *r)
{
	struct header_fix h;
	size_t pos = 0, call = 0;

	header_fix_init(&h, DATE, MSGID);
	strbuf_init(&r->out);
	while (pos < len) {
		size_t n = cuts[call < ncuts ? call : ncuts - 1];

		if (n == 0 && call >= ncuts)
			n = 1;
		if (n > len - pos)
			n = len - pos;
		header_fix_feed(&h, in + pos, n, &r->out);
		assert_true(h.plen <= HEADER_FIX_NAME_MAX);
		pos += n;
		call++;
	}
	header_fix_finish(&h, &r->out);
	r->added_date = header_fix_added_date(&h);
	r->added_msgid = header_fix_added_msgid(&h);
	r->removed_bcc = header_fix_removed_bcc(&h);
}

/* Filter in[0..len) in one call. */
static void run_all(const char *in, size_t len, struct result *r)
{
	size_t all = len;

	run_cuts(in, len, &all, 1, r);
}

/* Assert a run produced want[0..wantlen) and the given counters. */
static void assert_result(struct result *r, const char *want, size_t wantlen, bool date, bool msgid,
			  unsigned bcc)
{
	assert_int_equal(r->out.len, wantlen);
	assert_memory_equal(r->out.s, want, wantlen);
	assert_int_equal(r->added_date, date);
	assert_int_equal(r->added_msgid, msgid);
	assert_int_equal(r->removed_bcc, bcc);
	strbuf_free(&r->out);
}

/*
 * Check that in gives want (and the counters) in one call, byte by byte,
 * and split in two at every possible point.
 */
static void check_n(const char *in, size_t len, const char *want, size_t wantlen, bool date,
		    bool msgid, unsigned bcc)
{
	struct result r;
	size_t one = 1;

	run_all(in, len, &r);
	assert_result(&r, want, wantlen, date, msgid, bcc);
	run_cuts(in, len, &one, 1, &r);
	assert_result(&r, want, wantlen, date, msgid, bcc);
	for (size_t i = 0; i <= len; i++) {
		size_t cuts[2] = {i, len};

		run_cuts(in, len, cuts, 2, &r);
		assert_result(&r, want, wantlen, date, msgid, bcc);
	}
}

/* check_n for C strings. */
static void check(const char *in, const char *want, bool date, bool msgid, unsigned bcc)
{
	check_n(in, strlen(in), want, strlen(want), date, msgid, bcc);
}

/* A Bcc field goes with all its continuation lines; the rest stays. */
static void test_bcc_removed_with_continuations(void **state)
{
	(void)state;
	check("From: a@example.org\r\n"
	      "Bcc: x@example.org,\r\n"
	      " y@example.org,\r\n"
	      "\tz@example.org\r\n"
	      "To: b@example.org\r\n"
	      "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	      "Message-ID: <1@example.org>\r\n"
	      "\r\n"
	      "hello\r\n",
	      "From: a@example.org\r\n"
	      "To: b@example.org\r\n"
	      "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	      "Message-ID: <1@example.org>\r\n"
	      "\r\n"
	      "hello\r\n",
	      false, false, 1);
}

/* The name matches in any case, as the first and the last field, and empty. */
static void test_bcc_any_case(void **state)
{
	(void)state;
	check("BCC: a@example.org\r\n"
	      "Subject: s\r\n"
	      "bcc: b@example.org\r\n"
	      "  folded\r\n"
	      "bCc:\r\n"
	      "Date: d\r\n"
	      "Message-ID: m\r\n"
	      "Bcc:c@example.org\r\n"
	      "\r\n",
	      "Subject: s\r\n"
	      "Date: d\r\n"
	      "Message-ID: m\r\n"
	      "\r\n",
	      false, false, 4);
}

/* A field after a removed Bcc is kept, and its own continuation too. */
static void test_field_after_bcc_kept(void **state)
{
	(void)state;
	check("Bcc: x\r\n y\r\nSubject: a\r\n b\r\n\r\n", "Subject: a\r\n b\r\n" ADD_BOTH "\r\n",
	      true, true, 1);
}

/* Names that only look like Bcc are fields of their own and kept. */
static void test_bcc_lookalikes_kept(void **state)
{
	static const char in[] = "Bcc-Like: 1\r\n"
				 "X-Bcc: 2\r\n"
				 "Resent-Bcc: 3\r\n"
				 "Bc: 4\r\n"
				 "Bccc: 5\r\n"
				 "Date: d\r\n"
				 "Message-ID: m\r\n"
				 "\r\n";

	(void)state;
	check(in, in, false, false, 0);
}

/* The obsolete space before the colon (RFC 5322 §4.5) still names a Bcc. */
static void test_bcc_obsolete_space_removed(void **state)
{
	(void)state;
	check("To: a\r\nBcc : 6\r\n 6b\r\nBCC\t: 7\r\nDate: d\r\nMessage-ID: m\r\n\r\nbody\r\n",
	      "To: a\r\nDate: d\r\nMessage-ID: m\r\n\r\nbody\r\n", false, false, 2);
}

/* Other fields pass byte for byte: odd spacing, tabs, 8-bit, folding. */
static void test_other_fields_byte_for_byte(void **state)
{
	static const char in[] = "Received: from a by b;\r\n"
				 "\tMon, 1 Jan 2024 00:00:00 +0000\r\n"
				 "Subject:no space\r\n"
				 "Subject:   many  spaces \t\r\n"
				 "X-Empty:\r\n"
				 "X-8bit: caf\xc3\xa9 \xff\r\n"
				 "X-Odd: colon: inside: value\r\n"
				 "x-weird!#$%&'*+-/=?^_`{|}~name: v\r\n"
				 "Date: d\r\n"
				 "Message-ID: m\r\n"
				 "\r\n";

	(void)state;
	check(in, in, false, false, 0);
}

/* Both fields are added when missing, just before the empty line. */
static void test_both_added_before_empty_line(void **state)
{
	(void)state;
	check("From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n",
	      "From: a@example.org\r\nSubject: s\r\n" ADD_BOTH "\r\nbody\r\n", true, true, 0);
}

/* Only the missing field is added; the name matches in any case. */
static void test_only_missing_added(void **state)
{
	(void)state;
	check("date: x\r\n\r\nb\r\n", "date: x\r\n" ADD_MSGID "\r\nb\r\n", false, true, 0);
	check("Message-Id: <x@y>\r\n\r\nb\r\n", "Message-Id: <x@y>\r\n" ADD_DATE "\r\nb\r\n", true,
	      false, 0);
	check("MESSAGE-ID:<x@y>\r\nDATE:x\r\n\r\n", "MESSAGE-ID:<x@y>\r\nDATE:x\r\n\r\n", false,
	      false, 0);
}

/* Lookalike names do not count as Date or Message-ID. */
static void test_lookalikes_do_not_count(void **state)
{
	(void)state;
	check("Resent-Date: x\r\nX-Message-ID: y\r\nMessage-IDs: w\r\n\r\n",
	      "Resent-Date: x\r\nX-Message-ID: y\r\nMessage-IDs: w\r\n" ADD_BOTH "\r\n", true, true,
	      0);
}

/* After the empty line nothing is looked at: Bcc, Date, empty lines stay. */
static void test_body_untouched(void **state)
{
	static const char body[] = "Bcc: x@example.org\r\n"
				   " continued\r\n"
				   "bcc: y\r\n"
				   "Date: z\r\n"
				   "\r\n"
				   "\r\n"
				   "no colon here\r\n"
				   "bare\nlf and bare\rcr\r\n"
				   "\x00\x01\xff binary\r\n"
				   "last line without crlf";
	char in[512], want[512];
	size_t inlen, wantlen;

	(void)state;
	inlen = (size_t)snprintf(in, sizeof(in), "Subject: s\r\nBcc: gone\r\n\r\n");
	memcpy(in + inlen, body, sizeof(body) - 1);
	inlen += sizeof(body) - 1;
	wantlen = (size_t)snprintf(want, sizeof(want), "Subject: s\r\n" ADD_BOTH "\r\n");
	memcpy(want + wantlen, body, sizeof(body) - 1);
	wantlen += sizeof(body) - 1;
	check_n(in, inlen, want, wantlen, true, true, 1);
}

/* A header with its empty line and no body: fields go before the empty line. */
static void test_no_body(void **state)
{
	(void)state;
	check("Subject: s\r\n\r\n", "Subject: s\r\n" ADD_BOTH "\r\n", true, true, 0);
}

/* An empty message gets both fields and nothing else. */
static void test_empty_message(void **state)
{
	(void)state;
	check("", ADD_BOTH, true, true, 0);
}

/* An empty header section (body only) gets both fields before the empty line. */
static void test_empty_header_section(void **state)
{
	(void)state;
	check("\r\nBcc: body\r\n", ADD_BOTH "\r\nBcc: body\r\n", true, true, 0);
}

/* Only headers, no empty line: the fields are added at the end. */
static void test_header_only(void **state)
{
	(void)state;
	check("Subject: s\r\n", "Subject: s\r\n" ADD_BOTH, true, true, 0);
	check("Subject: s\r\nBcc: x\r\n", "Subject: s\r\n" ADD_BOTH, true, true, 1);
}

/* Only headers and the last line lacks its CRLF: it is completed first. */
static void test_header_only_no_final_crlf(void **state)
{
	(void)state;
	check("Subject: s", "Subject: s\r\n" ADD_BOTH, true, true, 0);
	check("Subject: s\r", "Subject: s\r\n" ADD_BOTH, true, true, 0);
	check("Subject:", "Subject:\r\n" ADD_BOTH, true, true, 0);
	check("Subject: s\r\n folded", "Subject: s\r\n folded\r\n" ADD_BOTH, true, true, 0);
	check("Date: d\r\nMessage-ID: m", "Date: d\r\nMessage-ID: m\r\n", false, false, 0);
	/* A Bcc line is dropped whole: nothing is left to complete. */
	check("Subject: s\r\nBcc: secret", "Subject: s\r\n" ADD_BOTH, true, true, 1);
	check("Bcc: secret\r\n more", ADD_BOTH, true, true, 1);
}

/* A line that is not a header line ends the header section before it. */
static void test_non_header_line_ends_header(void **state)
{
	(void)state;
	/* body text without the empty line: a later Bcc: is body */
	check("Subject: s\r\nhello world\r\nBcc: kept\r\n",
	      "Subject: s\r\n" ADD_BOTH "hello world\r\nBcc: kept\r\n", true, true, 0);
	/* a colon later in the line does not make "a b:" a field name */
	check("Subject: s\r\na b: c\r\n", "Subject: s\r\n" ADD_BOTH "a b: c\r\n", true, true, 0);
	/* no name before the colon */
	check(": x\r\nBcc: y\r\n", ADD_BOTH ": x\r\nBcc: y\r\n", true, true, 0);
	/* a bare CR, a control octet or 8-bit in the name */
	check("A: b\r\n\rC: d\r\n", "A: b\r\n" ADD_BOTH "\rC: d\r\n", true, true, 0);
	check("A: b\r\nX\x01: d\r\n", "A: b\r\n" ADD_BOTH "X\x01: d\r\n", true, true, 0);
	check("A: b\r\nX\xc3\xa9: d\r\n", "A: b\r\n" ADD_BOTH "X\xc3\xa9: d\r\n", true, true, 0);
	/* a name cut off by the end of the message */
	check("A: b\r\nX-Trunc", "A: b\r\n" ADD_BOTH "X-Trunc", true, true, 0);
	check("A: b\r\nX ", "A: b\r\n" ADD_BOTH "X ", true, true, 0);
	check("A: b\r\n\r", "A: b\r\n" ADD_BOTH "\r", true, true, 0);
}

/* A first line starting with whitespace stays in the header section. */
static void test_leading_continuation(void **state)
{
	(void)state;
	check(" x\r\nBcc: y\r\n z\r\nTo: t\r\n\tw\r\n\r\nbody",
	      " x\r\nTo: t\r\n\tw\r\n" ADD_BOTH "\r\nbody", true, true, 1);
	check("\t\r\n", "\t\r\n" ADD_BOTH, true, true, 0);
	check(" ", " \r\n" ADD_BOTH, true, true, 0);
}

/* Bare LF ends lines too; every byte is kept. */
static void test_bare_lf(void **state)
{
	(void)state;
	check("Subject: s\nBcc: x\n y\nTo: t\n\nBcc: body\n",
	      "Subject: s\nTo: t\n" ADD_BOTH "\nBcc: body\n", true, true, 1);
	check("Subject: s\r\r\n\r\n", "Subject: s\r\r\n" ADD_BOTH "\r\n", true, true, 0);
	check("\n", ADD_BOTH "\n", true, true, 0);
	check("Subject: s\n", "Subject: s\n" ADD_BOTH, true, true, 0);
}

/* NUL octets in header values and the body pass through. */
static void test_nul_octets(void **state)
{
	static const char in[] = "Subject: a\0b\r\nBcc: \0\r\n\r\n\0body";
	static const char want[] = "Subject: a\0b\r\n" ADD_BOTH "\r\n\0body";

	(void)state;
	check_n(in, sizeof(in) - 1, want, sizeof(want) - 1, true, true, 1);
}

/* One call, byte by byte and random chunk sizes (empty chunks too) agree. */
static void test_random_splits(void **state)
{
	static const char in[] = "Received: by x;\r\n\tdate\r\n"
				 "bcc: one,\r\n two\r\n"
				 "Subject: a\r\n"
				 "BCC:\r\n"
				 "X-Bcc: kept\r\n"
				 "\r\n"
				 "Bcc: body\r\n\r\n.\r\nend";
	struct result whole, r;
	unsigned seed = 12345;

	(void)state;
	run_all(in, sizeof(in) - 1, &whole);
	assert_true(whole.added_date && whole.added_msgid);
	assert_int_equal(whole.removed_bcc, 2);
	for (int round = 0; round < 2000; round++) {
		size_t cuts[64];

		for (size_t i = 0; i < 64; i++) {
			seed = seed * 1103515245u + 12345u;
			cuts[i] = (seed >> 16) % 9; /* 0..8, 0 = an empty call */
		}
		run_cuts(in, sizeof(in) - 1, cuts, 64, &r);
		assert_result(&r, whole.out.s, whole.out.len, true, true, 2);
	}
	strbuf_free(&whole.out);
}

/* Build "prefix" + n copies of c + "suffix" in a fresh buffer. */
static char *make_long(const char *prefix, char c, size_t n, const char *suffix, size_t *len)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);

	assert_non_null(s);
	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	*len = pl + n + sl;
	return s;
}

/* Filter s[0..len) in 1000-byte chunks (bounded prefix checked per call). */
static void run_chunks(const char *s, size_t len, struct result *r)
{
	size_t chunk = 1000;

	run_cuts(s, len, &chunk, 1, r);
}

/* 100 KB header lines stream through (or are dropped) with bounded state. */
static void test_long_lines(void **state)
{
	const size_t big = 100 * 1024;
	struct result r;
	char *in, *want;
	size_t inlen, wantlen;

	(void)state;
	/* a long Subject value is kept whole */
	in = make_long("Subject: ", 'x', big, "\r\n\r\nbody", &inlen);
	want = make_long("Subject: ", 'x', big, "\r\n" ADD_BOTH "\r\nbody", &wantlen);
	run_chunks(in, inlen, &r);
	assert_result(&r, want, wantlen, true, true, 0);
	free(in);
	free(want);

	/* a long Bcc value and a long continuation of it are dropped */
	in = make_long("A: b\r\nBcc: ", 'y', big, "\r\n ", &inlen);
	want = make_long("", 'z', big, "\r\n\r\nbody", &wantlen);
	in = realloc(in, inlen + wantlen + 1);
	assert_non_null(in);
	memcpy(in + inlen, want, wantlen + 1);
	inlen += wantlen;
	free(want);
	run_chunks(in, inlen, &r);
	assert_result(&r, "A: b\r\n" ADD_BOTH "\r\nbody", strlen("A: b\r\n" ADD_BOTH "\r\nbody"),
		      true, true, 1);
	free(in);

	/* a 100 KB field name is a field (not ours): a later Bcc still goes */
	in = make_long("", 'N', big, ": v\r\nBcc: x\r\n\r\n", &inlen);
	want = make_long("", 'N', big, ": v\r\n" ADD_BOTH "\r\n", &wantlen);
	run_chunks(in, inlen, &r);
	assert_result(&r, want, wantlen, true, true, 1);
	free(in);
	free(want);

	/* the same with no colon at all: still taken as a field */
	in = make_long("", 'N', big, "\r\nBcc: x\r\n\r\n", &inlen);
	want = make_long("", 'N', big, "\r\n" ADD_BOTH "\r\n", &wantlen);
	run_chunks(in, inlen, &r);
	assert_result(&r, want, wantlen, true, true, 1);
	free(in);
	free(want);

	/* a long body line is untouched */
	in = make_long("\r\n", 'B', big, "", &inlen);
	want = make_long(ADD_BOTH "\r\n", 'B', big, "", &wantlen);
	run_chunks(in, inlen, &r);
	assert_result(&r, want, wantlen, true, true, 0);
	free(in);
	free(want);
}

/* The held name is exactly HEADER_FIX_NAME_MAX octets at most. */
static void test_name_limit(void **state)
{
	char name[HEADER_FIX_NAME_MAX + 2], in[512], want[512];

	(void)state;
	memset(name, 'n', sizeof(name));
	/* HEADER_FIX_NAME_MAX octets and no colon: not a header line */
	name[HEADER_FIX_NAME_MAX] = '\0';
	snprintf(in, sizeof(in), "A: b\r\n%s\r\nBcc: body\r\n", name);
	snprintf(want, sizeof(want), "A: b\r\n" ADD_BOTH "%s\r\nBcc: body\r\n", name);
	check(in, want, true, true, 0);
	/* HEADER_FIX_NAME_MAX octets and a colon: a field */
	snprintf(in, sizeof(in), "%s: v\r\nBcc: x\r\n\r\n", name);
	snprintf(want, sizeof(want), "%s: v\r\n" ADD_BOTH "\r\n", name);
	check(in, want, true, true, 1);
	/* one octet more than can be held: taken as a field */
	name[HEADER_FIX_NAME_MAX] = 'n';
	name[HEADER_FIX_NAME_MAX + 1] = '\0';
	snprintf(in, sizeof(in), "%s\r\nBcc: x\r\n\r\n", name);
	snprintf(want, sizeof(want), "%s\r\n" ADD_BOTH "\r\n", name);
	check(in, want, true, true, 1);
	/* a name and whitespace past the limit: taken as a field */
	memset(name, ' ', sizeof(name) - 1);
	name[0] = 'X';
	snprintf(in, sizeof(in), "%s\r\nBcc: x\r\n\r\n", name);
	snprintf(want, sizeof(want), "%s\r\n" ADD_BOTH "\r\n", name);
	check(in, want, true, true, 1);
}

/* Feed a C string. */
static void feed_s(struct header_fix *h, const char *s, struct strbuf *out)
{
	header_fix_feed(h, s, strlen(s), out);
}

/* The query functions follow what was done, as it is done. */
static void test_queries(void **state)
{
	struct header_fix h;
	struct strbuf out;

	(void)state;
	strbuf_init(&out);
	header_fix_init(&h, DATE, MSGID);
	assert_false(header_fix_added_date(&h));
	assert_false(header_fix_added_msgid(&h));
	assert_int_equal(header_fix_removed_bcc(&h), 0);
	feed_s(&h, "Bcc: a\r\nDate: d\r\nbcc: b", &out);
	assert_int_equal(header_fix_removed_bcc(&h), 2);
	assert_false(header_fix_added_date(&h)); /* the header has not ended yet */
	feed_s(&h, "\r\n\r\nBcc: c\r\n", &out);
	assert_false(header_fix_added_date(&h));
	assert_true(header_fix_added_msgid(&h));
	assert_int_equal(header_fix_removed_bcc(&h), 2); /* the body's Bcc is kept */
	header_fix_finish(&h, &out);
	assert_int_equal(header_fix_removed_bcc(&h), 2);
	assert_string_equal(out.s, "Date: d\r\n" ADD_MSGID "\r\nBcc: c\r\n");
	strbuf_free(&out);
}

/* finish twice adds nothing more; bytes fed after it pass unchanged. */
static void test_finish_is_final(void **state)
{
	struct header_fix h;
	struct strbuf out;

	(void)state;
	strbuf_init(&out);
	header_fix_init(&h, DATE, MSGID);
	feed_s(&h, "Subject: s", &out);
	header_fix_finish(&h, &out);
	header_fix_finish(&h, &out);
	feed_s(&h, "Bcc: x\r\n", &out);
	assert_string_equal(out.s, "Subject: s\r\n" ADD_BOTH "Bcc: x\r\n");
	strbuf_free(&out);
}

/* init starts afresh on a used struct. */
static void test_init_resets(void **state)
{
	struct header_fix h;
	struct strbuf out;

	(void)state;
	strbuf_init(&out);
	header_fix_init(&h, DATE, MSGID);
	feed_s(&h, "Date: x\r\nMessage-ID: y\r\nBcc: z\r\nSubj", &out);
	header_fix_init(&h, "D2", "M2");
	out.len = 0;
	feed_s(&h, "\r\n", &out);
	header_fix_finish(&h, &out);
	assert_int_equal(out.len, strlen("Date: D2\r\nMessage-ID: M2\r\n\r\n"));
	assert_memory_equal(out.s, "Date: D2\r\nMessage-ID: M2\r\n\r\n", out.len);
	assert_int_equal(header_fix_removed_bcc(&h), 0);
	assert_true(header_fix_added_date(&h));
	strbuf_free(&out);
}

/* Does header_fix_init abort on these values (in a child process)? */
static bool init_aborts(const char *date, const char *msgid)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct header_fix h;

		(void)freopen("/dev/null", "w", stderr);
		header_fix_init(&h, date, msgid);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* A value that would break the header is a caller bug and aborts. */
static void test_bad_values_abort(void **state)
{
	char big[HEADER_FIX_VALUE_MAX + 1];

	(void)state;
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(init_aborts(DATE, MSGID));
	assert_true(init_aborts("", MSGID));
	assert_true(init_aborts(DATE, NULL));
	assert_true(init_aborts("x\r\nBcc: y", MSGID));
	assert_true(init_aborts(DATE, "<a\n@b>"));
	assert_true(init_aborts(DATE, big)); /* HEADER_FIX_VALUE_MAX octets */
	assert_false(init_aborts(DATE, big + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bcc_removed_with_continuations),
		cmocka_unit_test(test_bcc_any_case),
		cmocka_unit_test(test_field_after_bcc_kept),
		cmocka_unit_test(test_bcc_lookalikes_kept),
		cmocka_unit_test(test_bcc_obsolete_space_removed),
		cmocka_unit_test(test_other_fields_byte_for_byte),
		cmocka_unit_test(test_both_added_before_empty_line),
		cmocka_unit_test(test_only_missing_added),
		cmocka_unit_test(test_lookalikes_do_not_count),
		cmocka_unit_test(test_body_untouched),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_empty_header_section),
		cmocka_unit_test(test_header_only),
		cmocka_unit_test(test_header_only_no_final_crlf),
		cmocka_unit_test(test_non_header_line_ends_header),
		cmocka_unit_test(test_leading_continuation),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_nul_octets),
		cmocka_unit_test(test_random_splits),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_name_limit),
		cmocka_unit_test(test_queries),
		cmocka_unit_test(test_finish_is_final),
		cmocka_unit_test(test_init_resets),
		cmocka_unit_test(test_bad_values_abort),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
