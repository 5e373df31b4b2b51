/*
 * test_data_reader.c - unit tests for src/common/data_reader.c: DATA
 * dot-unstuffing, end-of-data detection (only <CRLF>.<CRLF> ends a message;
 * every SMTP smuggling variant does not and is flagged), the bare CR/LF,
 * long line and NUL flags, streaming across every possible split, and the
 * Received: header counter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "data_reader.h"

#define LINE_MAX_DEFAULT 1000

/* What one run of the reader over an input produced. */
struct result {
	char out[4096];
	size_t outlen;
	size_t consumed;
	bool done;
	unsigned flags;
};

/*
 * Feed in[0..len) as chunks whose sizes come from cuts[] (the last size
 * repeats), checking the per-call contract on every call: output at most
 * len + 2, everything consumed unless the end was found.
 */
static void feed(const char *in, size_t len, size_t line_max, const size_t *cuts, size_t ncuts,
		 struct result *res)
{
	struct data_reader r;
	size_t pos = 0, call = 0;

	memset(res, 0, sizeof(*res));
	data_reader_init(&r, line_max);
	while (pos < len && !res->done) {
		size_t n = cuts[call < ncuts ? call : ncuts - 1], outlen = (size_t)-1, used;
		char *tmp;
		bool done = true;

		if (n > len - pos)
			n = len - pos;
		tmp = malloc(n + 2);
		assert_non_null(tmp);
		used = data_reader_feed(&r, in + pos, n, tmp, &outlen, &done);
		assert_true(used <= n);
		assert_true(outlen <= n + 2);
		if (!done)
			assert_int_equal(used, n);
		assert_true(res->outlen + outlen <= sizeof(res->out));
		memcpy(res->out + res->outlen, tmp, outlen);
		res->outlen += outlen;
		free(tmp);
		pos += used;
		res->done = done;
		call++;
	}
	res->consumed = pos;
	res->flags = r.flags;
}

/* Feed everything in one call. */
static void feed_all(const char *in, size_t len, size_t line_max, struct result *res)
{
	size_t all = len ? len : 1;

	feed(in, len, line_max, &all, 1, res);
}

/* Assert two runs are identical. */
static void assert_same(const struct result *a, const struct result *b)
{
	assert_int_equal(a->outlen, b->outlen);
	assert_memory_equal(a->out, b->out, a->outlen);
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->done, b->done);
	assert_int_equal(a->flags, b->flags);
}

/* Assert the output of a run equals the C string want. */
static void assert_output(const struct result *res, const char *want, size_t wantlen)
{
	assert_int_equal(res->outlen, wantlen);
	assert_memory_equal(res->out, want, wantlen);
}

/* A clean message is passed through and ends at <CRLF>.<CRLF>. */
static void test_simple_message(void **state)
{
	static const char in[] = "Subject: hi\r\n\r\nhello\r\n.\r\n";
	static const char want[] = "Subject: hi\r\n\r\nhello\r\n";
	struct result res;

	(void)state;
	feed_all(in, sizeof(in) - 1, LINE_MAX_DEFAULT, &res);
	assert_true(res.done);
	assert_int_equal(res.consumed, sizeof(in) - 1);
	assert_output(&res, want, sizeof(want) - 1);
	assert_int_equal(res.flags, 0);
}

/* ".\r\n" straight after DATA is an empty message. */
static void test_empty_message(void **state)
{
	struct result res;

	(void)state;
	feed_all(".\r\n", 3, LINE_MAX_DEFAULT, &res);
	assert_true(res.done);
	assert_int_equal(res.consumed, 3);
	assert_int_equal(res.outlen, 0);
	assert_int_equal(res.flags, 0);
}

/* The first dot of a line is removed; other dots stay. */
static void test_dot_unstuffing(void **state)
{
	static const char in[] = "..a\r\n..\r\n...\r\na.b.\r\n .\r\n.x\r\n.\r\n";
	static const char want[] = ".a\r\n.\r\n..\r\na.b.\r\n .\r\nx\r\n";
	struct result res;

	(void)state;
	feed_all(in, sizeof(in) - 1, LINE_MAX_DEFAULT, &res);
	assert_true(res.done);
	assert_output(&res, want, sizeof(want) - 1);
	assert_int_equal(res.flags, 0);
}

/* Bytes after the terminator (a pipelined command) are not consumed. */
static void test_stops_at_terminator(void **state)
{
	static const char in[] = "x\r\n.\r\nQUIT\r\n";
	struct result res;
	size_t one = 1;

	(void)state;
	feed_all(in, sizeof(in) - 1, LINE_MAX_DEFAULT, &res);
	assert_true(res.done);
	assert_int_equal(res.consumed, 6);
	assert_output(&res, "x\r\n", 3);
	feed(in, sizeof(in) - 1, LINE_MAX_DEFAULT, &one, 1, &res);
	assert_true(res.done);
	assert_int_equal(res.consumed, 6);
	assert_output(&res, "x\r\n", 3);
}

/* An unfinished message is fully consumed and not done; a 0-byte feed is a no-op. */
static void test_incomplete(void **state)
{
	static const char in[] = "abc\r\n.\r";
	struct data_reader r;
	char out[16];
	size_t outlen = 99;
	bool done = true;

	(void)state;
	data_reader_init(&r, LINE_MAX_DEFAULT);
	assert_int_equal(data_reader_feed(&r, in, 0, out, &outlen, &done), 0);
	assert_int_equal(outlen, 0);
	assert_false(done);
	assert_int_equal(data_reader_feed(&r, in, sizeof(in) - 1, out, &outlen, &done), 7);
	assert_false(done);
	assert_int_equal(outlen, 5);
	assert_memory_equal(out, "abc\r\n", 5);
	assert_int_equal(data_reader_feed(&r, "\n", 1, out, &outlen, &done), 1);
	assert_true(done);
	assert_int_equal(outlen, 0);
}

/* SMTP smuggling: no dot line next to a bare CR or LF ends the message. */
static void test_smuggling_variants(void **state)
{
	static const struct {
		const char *in;
		const char *out;
		unsigned flags;
	} cases[] = {
		{"a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", DATA_BARE_LF},
		{"a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", DATA_BARE_CR},
		{"a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", DATA_BARE_LF},
		{"a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", DATA_BARE_LF},
		{"a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n", DATA_BARE_CR},
		{"a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", DATA_BARE_CR},
		{"a\n.\rb\r\n.\r\n", "a\n.\rb\r\n", DATA_BARE_LF | DATA_BARE_CR},
		{"a\r.\nb\r\n.\r\n", "a\r.\nb\r\n", DATA_BARE_LF | DATA_BARE_CR},
		{"a\r\n.\r\r\nb\r\n.\r\n", "a\r\n\r\r\nb\r\n", DATA_BARE_CR},
		{"a\r\n.\n\r\nb\r\n.\r\n", "a\r\n\n\r\nb\r\n", DATA_BARE_LF},
		{"a\r\n\n.\r\nb\r\n.\r\n", "a\r\n\n.\r\nb\r\n", DATA_BARE_LF},
		{"a\r\n\r.\r\nb\r\n.\r\n", "a\r\n\r.\r\nb\r\n", DATA_BARE_CR},
		{"\n.\r\nb\r\n.\r\n", "\n.\r\nb\r\n", DATA_BARE_LF},
		{".\nb\r\n.\r\n", "\nb\r\n", DATA_BARE_LF},
		{".\rb\r\n.\r\n", "\rb\r\n", DATA_BARE_CR},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result res;
		size_t len = strlen(cases[i].in);

		feed_all(cases[i].in, len, LINE_MAX_DEFAULT, &res);
		if (!res.done || res.consumed != len)
			fail_msg("case %zu: ended at %zu of %zu (done=%d)", i, res.consumed, len,
				 res.done);
		assert_output(&res, cases[i].out, strlen(cases[i].out));
		if (res.flags != cases[i].flags)
			fail_msg("case %zu: flags %#x, want %#x", i, res.flags, cases[i].flags);
	}
}

/* A smuggled end with nothing after it leaves the message open. */
static void test_smuggling_at_end_of_input(void **state)
{
	static const char *const ins[] = {
		"a\n.\n", "a\r.\r", "a\n.\r\n", "a\r\n.\n", "a\r.\r\n", "a\n.\r",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		struct result res;
		size_t len = strlen(ins[i]);

		feed_all(ins[i], len, LINE_MAX_DEFAULT, &res);
		assert_false(res.done);
		assert_int_equal(res.consumed, len);
		assert_true(res.flags & (DATA_BARE_LF | DATA_BARE_CR));
	}
}

/* A real <CRLF>.<CRLF> after a bare line ending still ends the message. */
static void test_real_end_after_bare(void **state)
{
	static const char in[] = "a\nb\rc\r\n.\r\nNEXT";
	struct result res;

	(void)state;
	feed_all(in, sizeof(in) - 1, LINE_MAX_DEFAULT, &res);
	assert_true(res.done);
	assert_int_equal(res.consumed, sizeof(in) - 1 - 4);
	assert_output(&res, "a\nb\rc\r\n", 7);
	assert_int_equal(res.flags, DATA_BARE_LF | DATA_BARE_CR);
}

/* Lines over line_max (CRLF and stuffing dot excluded) set DATA_LONG_LINE. */
static void test_long_line(void **state)
{
	struct result res;

	(void)state;
	feed_all("12345678\r\n.\r\n", 13, 10, &res);
	assert_true(res.done);
	assert_int_equal(res.flags, 0);
	feed_all("123456789\r\n.\r\n", 14, 10, &res);
	assert_true(res.done);
	assert_int_equal(res.flags, DATA_LONG_LINE);
	/* The stuffing dot does not count (RFC 5321 §4.5.3.1.6). */
	feed_all("..2345678\r\n.\r\n", 14, 10, &res);
	assert_int_equal(res.flags, 0);
	feed_all("..23456789\r\n.\r\n", 15, 10, &res);
	assert_int_equal(res.flags, DATA_LONG_LINE);
	/* After a bare LF there is no stuffing: the dot is text and counts. */
	feed_all("\n..2345678\r\n.\r\n", 15, 10, &res);
	assert_int_equal(res.flags, DATA_BARE_LF | DATA_LONG_LINE);
	/* Many short lines are fine however long the message is. */
	feed_all("1234567\r\n1234567\r\n1234567\r\n.\r\n", 30, 10, &res);
	assert_true(res.done);
	assert_int_equal(res.flags, 0);
	/* The flag is sticky once set. */
	feed_all("123456789012\r\nok\r\n.\r\n", 21, 10, &res);
	assert_true(res.done);
	assert_int_equal(res.flags, DATA_LONG_LINE);
}

/* A NUL octet sets DATA_NUL and is passed through. */
static void test_nul(void **state)
{
	static const char in[] = "a\0b\r\n.\r\n";
	struct result res;

	(void)state;
	feed_all(in, sizeof(in) - 1, LINE_MAX_DEFAULT, &res);
	assert_true(res.done);
	assert_output(&res, "a\0b\r\n", 5);
	assert_int_equal(res.flags, DATA_NUL);
	feed_all("\0\r\n.\r\n", 6, LINE_MAX_DEFAULT, &res);
	assert_int_equal(res.flags, DATA_NUL);
}

/* Inputs for the streaming tests: every state boundary appears somewhere. */
#define INPUT(s)                                                                                   \
	{                                                                                          \
		s, sizeof(s) - 1                                                                   \
	}
static const struct {
	const char *s;
	size_t len;
} stream_inputs[] = {
	INPUT("Subject: hi\r\n\r\nhello\r\n..dot\r\n.\r\n"),
	INPUT("a\n.\nb\r.\rc\r\n.\nd\r\n.\re\r\n.\r\r\n\n.\r\n..\r\n.\r\nAFTER"),
	INPUT("x\0y\r\n123456789012345\r\n.x\r\n.\r"),
	INPUT(".\r\n"),
	INPUT("\r\n.\r\n"),
	INPUT("..\r\n.\r\n.\r\n"),
	INPUT("\r\r\n.\r\n"),
	INPUT("a\r\n.\r.\r\n.\r\n"),
};

/* Feeding one byte at a time gives exactly what one big feed gives. */
static void test_one_byte_at_a_time(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(stream_inputs) / sizeof(stream_inputs[0]); i++) {
		size_t one = 1;
		struct result whole, bytes;

		feed_all(stream_inputs[i].s, stream_inputs[i].len, 12, &whole);
		feed(stream_inputs[i].s, stream_inputs[i].len, 12, &one, 1, &bytes);
		assert_same(&whole, &bytes);
	}
}

/* Splitting the input at any one point, or at any two, changes nothing. */
static void test_every_split(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(stream_inputs) / sizeof(stream_inputs[0]); i++) {
		const char *in = stream_inputs[i].s;
		size_t len = stream_inputs[i].len;
		struct result whole, split;

		feed_all(in, len, 12, &whole);
		for (size_t a = 0; a <= len; a++) {
			for (size_t b = 0; a + b <= len; b++) {
				size_t cuts[3] = {a, b, len};
				feed(in, len, 12, cuts, 3, &split);
				assert_same(&whole, &split);
			}
		}
	}
}

/* data_reader_init starts a fresh message: flags and state are reset. */
static void test_init_resets(void **state)
{
	struct data_reader r;
	char out[32];
	size_t outlen;
	bool done;

	(void)state;
	data_reader_init(&r, LINE_MAX_DEFAULT);
	data_reader_feed(&r, "a\nb\r", 4, out, &outlen, &done);
	assert_int_equal(r.flags, DATA_BARE_LF);
	data_reader_init(&r, LINE_MAX_DEFAULT);
	assert_int_equal(r.flags, 0);
	assert_int_equal(data_reader_feed(&r, ".\r\n", 3, out, &outlen, &done), 3);
	assert_true(done);
	assert_int_equal(outlen, 0);
}

/* Count Received: headers of a message fed with the given chunk size. */
static unsigned count_received(const char *msg, size_t chunk)
{
	struct header_scan h;
	size_t len = strlen(msg);

	header_scan_init(&h);
	for (size_t pos = 0; pos < len; pos += chunk)
		header_scan_feed(&h, msg + pos, len - pos < chunk ? len - pos : chunk);
	return h.received;
}

/* Received: headers are counted in any case, only at the start of a line. */
static void test_header_scan_counts(void **state)
{
	static const char msg[] = "Received: from a\r\n"
				  "\tby b; Mon, 1 Jan 2024\r\n"
				  "RECEIVED: from c\r\n"
				  "received:from d\r\n"
				  "Received-SPF: pass\r\n"
				  "X-Received: no\r\n"
				  " Received: folded\r\n"
				  "Subject: Received: no\r\n"
				  "Receive: no\r\n"
				  "\r\n"
				  "Received: in the body\r\n";

	(void)state;
	assert_int_equal(count_received(msg, sizeof(msg)), 3);
	assert_int_equal(count_received("", 1), 0);
	assert_int_equal(count_received("Subject: x\r\n\r\n", 64), 0);
}

/* The empty line ends the header: later Received: lines are body text. */
static void test_header_scan_body_ignored(void **state)
{
	struct header_scan h;

	(void)state;
	assert_int_equal(count_received("\r\nReceived: x\r\nReceived: y\r\n", 100), 0);
	assert_int_equal(count_received("Received: x\r\n\r\n\r\nReceived: y\r\n", 100), 1);
	header_scan_init(&h);
	header_scan_feed(&h, "Received: x\r\n\r\n", 15);
	assert_false(h.in_header);
	header_scan_feed(&h, "Received: y\r\n", 13);
	assert_int_equal(h.received, 1);
}

/* header_scan gives the same count for every chunk size. */
static void test_header_scan_split(void **state)
{
	static const char msg[] = "Received: a\r\nReceived: b\r\nX: Received:\r\nreceived: c\r\n"
				  "\r\nReceived: body\r\n";

	(void)state;
	for (size_t chunk = 1; chunk <= sizeof(msg); chunk++)
		assert_int_equal(count_received(msg, chunk), 3);
}

/* BDAT's flags for text split into chunks at every possible point. */
static unsigned scan_flags(const char *in, size_t len, size_t line_max)
{
	unsigned flags = 0;

	for (size_t cut = 0; cut <= len; cut++) {
		struct data_reader r;

		data_reader_init(&r, line_max);
		data_reader_scan(&r, in, cut);
		data_reader_scan(&r, in + cut, len - cut);
		data_reader_scan_end(&r);
		if (cut > 0)
			assert_int_equal(r.flags, flags); /* the same wherever it is split */
		flags = r.flags;
	}
	return flags;
}

/* BDAT chunks follow DATA's line rules: bare CR or LF, NUL, long lines. */
static void test_scan_for_bdat(void **state)
{
#define SCAN(text, max) scan_flags(text, sizeof(text) - 1, max)
	(void)state;
	assert_int_equal(SCAN("a\r\nb\r\n.\r\n", 1000), 0);
	assert_int_equal(SCAN("a\nb\r\n", 1000), DATA_BARE_LF);
	assert_int_equal(SCAN("a\rb\r\n", 1000), DATA_BARE_CR);
	assert_int_equal(SCAN("ab\r", 1000), DATA_BARE_CR); /* CR at the very end */
	assert_int_equal(SCAN("ab\r", 5), DATA_BARE_CR);    /* it counts in its line: 3 + 2 */
	assert_int_equal(SCAN("abc\r", 5), DATA_BARE_CR | DATA_LONG_LINE);
	assert_int_equal(SCAN("a\0b\r\n", 1000), DATA_NUL);
	/* line_max counts CRLF: 8 octets + CRLF fit in 10, 9 do not */
	assert_int_equal(SCAN("12345678\r\n", 10), 0);
	assert_int_equal(SCAN("123456789\r\n", 10), DATA_LONG_LINE);
	assert_int_equal(SCAN("12345678\r\n12345678\r\n", 10), 0);
#undef SCAN
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_message),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_stops_at_terminator),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_smuggling_variants),
		cmocka_unit_test(test_smuggling_at_end_of_input),
		cmocka_unit_test(test_real_end_after_bare),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_one_byte_at_a_time),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_init_resets),
		cmocka_unit_test(test_header_scan_counts),
		cmocka_unit_test(test_header_scan_body_ignored),
		cmocka_unit_test(test_header_scan_split),
		cmocka_unit_test(test_scan_for_bdat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
