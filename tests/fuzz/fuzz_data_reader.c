/*
 * fuzz_data_reader.c - libFuzzer target for src/common/data_reader.c.
 *
 * Input: byte 0 picks the line limit, bytes 1-4 seed the split sizes, the
 * rest is the DATA stream.  The stream is fed in random chunks (empty ones
 * included) and all at once; both runs must agree with each other and with
 * a plain reference model written from RFC 5321 §4.5.2:
 *   - per call: at most len + 2 output bytes, everything consumed unless done;
 *   - done exactly after the first ".\r\n" that starts a line after CRLF (or
 *     at the start of data), and nothing after it consumed;
 *   - output = input minus the first dot of each line after CRLF, minus the
 *     terminator, minus a CR still waiting for its LF;
 *   - flags = the bare CR, bare LF, NUL and long lines (not counting CRLF
 *     and the stuffing dot) in what was consumed.
 * header_scan gets the output in the same chunks, and must agree with one
 * call over all of it.  data_reader_scan (BDAT) over the stream in random
 * chunks must give the flags of a reference with DATA's line rules and no
 * dots or end marker.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct run {
	char *out;
	size_t outlen;
	size_t consumed;
	bool done;
	unsigned flags;
	unsigned received;
};

/* xorshift32: chunk sizes that depend only on the input. */
static uint32_t next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Feed s in chunks (seed 0: one chunk) and check the per-call contract. */
static void feed(const char *s, size_t len, size_t line_max, uint32_t seed, struct run *r)
{
	struct data_reader dr;
	struct header_scan hs;
	char *tmp = malloc(len + 2);

	if (tmp == NULL)
		abort();
	memset(r, 0, sizeof(*r));
	r->out = malloc(len + 2);
	if (r->out == NULL)
		abort();
	data_reader_init(&dr, line_max);
	header_scan_init(&hs);
	while (r->consumed < len && !r->done) {
		size_t n = len - r->consumed, outlen = (size_t)-1, used;
		bool done = true;

		if (seed != 0) {
			uint32_t x = next_rand(&seed);
			size_t want = (x & 0x100) ? x % 1024 : x % 9;
			if (want < n)
				n = want;
		}
		used = data_reader_feed(&dr, s + r->consumed, n, tmp, &outlen, &done);
		CHECK(used <= n);
		CHECK(outlen <= n + 2);
		CHECK(done || used == n);
		CHECK(r->outlen + outlen <= len);
		memcpy(r->out + r->outlen, tmp, outlen);
		header_scan_feed(&hs, tmp, outlen);
		r->outlen += outlen;
		r->consumed += used;
		r->done = done;
	}
	r->flags = dr.flags;
	r->received = hs.received;
	free(tmp);
}

/* Does a line start after CRLF (or at the start of data) at offset i? */
static bool crlf_line_start(const char *s, size_t i)
{
	return i == 0 || (i >= 2 && s[i - 2] == '\r' && s[i - 1] == '\n');
}

/* The reference model: what a careful reading of RFC 5321 gives. */
static void reference(const char *s, size_t len, size_t line_max, struct run *r)
{
	size_t end = 0, linelen = 0;

	memset(r, 0, sizeof(*r));
	r->out = malloc(len + 2);
	if (r->out == NULL)
		abort();
	for (size_t p = 3; p <= len && end == 0; p++)
		if (s[p - 3] == '.' && s[p - 2] == '\r' && s[p - 1] == '\n' &&
		    crlf_line_start(s, p - 3))
			end = p;
	r->done = end != 0;
	r->consumed = r->done ? end : len;
	for (size_t i = 0; i < r->consumed; i++) {
		char c = s[i];
		bool last = i + 1 == r->consumed;

		if (c == '\0')
			r->flags |= DATA_NUL;
		if (c == '\n' && (i == 0 || s[i - 1] != '\r'))
			r->flags |= DATA_BARE_LF;
		if (c == '\r' && !last && s[i + 1] != '\n')
			r->flags |= DATA_BARE_CR;
		/* Line length: every octet but LF, the CR of CRLF and the
		 * stuffing dot (RFC 5321 §4.5.3.1.6). */
		if (c == '\n') {
			linelen = 0;
		} else if (c == '.' && crlf_line_start(s, i)) {
			/* not counted */
		} else if (c != '\r' || (!last && s[i + 1] != '\n')) {
			if (++linelen + 2 > line_max)
				r->flags |= DATA_LONG_LINE;
		}
		/* Output: drop the stuffing dot, the terminator, a pending CR. */
		if (c == '.' && crlf_line_start(s, i))
			continue;
		if (r->done && i + 2 >= r->consumed)
			continue;
		if (!r->done && last && c == '\r')
			continue;
		r->out[r->outlen++] = c;
	}
}

/* BDAT: data_reader_scan over s in the chunks seed picks, then _end. */
static unsigned scan_chunks(const char *s, size_t len, size_t line_max, uint32_t seed)
{
	struct data_reader dr;
	size_t at = 0;

	data_reader_init(&dr, line_max);
	while (at < len) {
		uint32_t x = next_rand(&seed);
		size_t n = (x & 0x100) ? x % 1024 : x % 9;

		if (n > len - at)
			n = len - at;
		data_reader_scan(&dr, s + at, n);
		at += n;
	}
	data_reader_scan_end(&dr);
	return dr.flags;
}

/* The reference for BDAT: DATA's line rules, no dots, no end marker; a CR
 * at the very end is bare. */
static unsigned scan_reference(const char *s, size_t len, size_t line_max)
{
	unsigned flags = 0;
	size_t linelen = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool crlf = c == '\r' && i + 1 < len && s[i + 1] == '\n';

		if (c == '\0')
			flags |= DATA_NUL;
		if (c == '\n' && (i == 0 || s[i - 1] != '\r'))
			flags |= DATA_BARE_LF;
		if (c == '\r' && !crlf)
			flags |= DATA_BARE_CR;
		if (c == '\n')
			linelen = 0;
		else if (!crlf && ++linelen + 2 > line_max)
			flags |= DATA_LONG_LINE;
	}
	return flags;
}

/* Entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, split, ref;
	size_t line_max, len;
	uint32_t seed;
	const char *s;
	struct header_scan hs;

	if (size < 5)
		return 0;
	line_max = data[0] < 200 ? 3 + data[0] % 20 : 1000;
	seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
	       (uint32_t)data[4] << 24;
	seed |= 1; /* never 0: that means "one chunk" */
	s = (const char *)data + 5;
	len = size - 5;

	feed(s, len, line_max, 0, &whole);
	feed(s, len, line_max, seed, &split);
	reference(s, len, line_max, &ref);

	CHECK(whole.done == ref.done);
	CHECK(whole.consumed == ref.consumed);
	CHECK(whole.flags == ref.flags);
	CHECK(whole.outlen == ref.outlen);
	CHECK(memcmp(whole.out, ref.out, ref.outlen) == 0);

	CHECK(split.done == whole.done);
	CHECK(split.consumed == whole.consumed);
	CHECK(split.flags == whole.flags);
	CHECK(split.outlen == whole.outlen);
	CHECK(memcmp(split.out, whole.out, whole.outlen) == 0);
	CHECK(split.received == whole.received);

	/* header_scan one byte at a time agrees too. */
	header_scan_init(&hs);
	for (size_t i = 0; i < whole.outlen; i++)
		header_scan_feed(&hs, whole.out + i, 1);
	CHECK(hs.received == whole.received);

	/* BDAT's scan: the same flags however the chunks fall */
	CHECK(scan_chunks(s, len, line_max, seed) == scan_reference(s, len, line_max));

	free(whole.out);
	free(split.out);
	free(ref.out);
	return 0;
}
