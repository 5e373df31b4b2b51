/*
 * fuzz_header_fields.c - libFuzzer target for src/intake/header_fields.c,
 * which splits a stored message's header section for the end-of-message
 * stages.
 *
 * Input: byte 0 seeds the chunk size, the rest is the message.  The end of
 * the header section is looked for as the octets arrive in chunks and all
 * at once: both must agree.  Then:
 *   - the section, the separator (if any) and the body are the input, in
 *     order, nothing lost or added;
 *   - the fields cover the section exactly, each at least one octet long,
 *     a field's name is its first octets and is followed (after optional
 *     whitespace) by ':';
 *   - every line in the section is a field or a continuation; a separator
 *     is an empty line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header_fields.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The end of the header section as found with chunks of step octets. */
static void end_in_chunks(const char *p, size_t n, size_t step, size_t *hdr, size_t *body,
			  bool *sep)
{
	size_t pos = 0, have = 0;

	for (;;) {
		have = have + step < n ? have + step : n;
		if (header_fields_end(p, have, have == n, &pos, hdr, body, sep))
			return;
		CHECK(have < n);
		CHECK(pos <= have);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;
	size_t n, hdr, body, hdr1, body1, pos = 0, off = 0;
	bool sep, sep1;

	if (size < 1)
		return 0;
	n = size - 1;
	CHECK(header_fields_end(p, n, true, &pos, &hdr, &body, &sep));
	end_in_chunks(p, n, (size_t)data[0] % 17 + 1, &hdr1, &body1, &sep1);
	CHECK(hdr == hdr1 && body == body1 && sep == sep1);
	CHECK(hdr <= body && body <= n);
	if (sep) { /* an empty line: LF or CRLF */
		CHECK(body - hdr == 1 || body - hdr == 2);
		CHECK(p[body - 1] == '\n');
		CHECK(body - hdr == 1 || p[hdr] == '\r');
	} else {
		CHECK(body == hdr);
	}
	while (off < hdr) {
		size_t namelen, len = header_fields_next(p + off, hdr - off, &namelen);
		CHECK(len > 0 && len <= hdr - off);
		if (namelen > 0) {
			size_t i = namelen;
			CHECK(memchr(p + off, ':', namelen) == NULL);
			while (i < len && (p[off + i] == ' ' || p[off + i] == '\t'))
				i++;
			CHECK(i < len && p[off + i] == ':');
		} else {
			CHECK(off == 0 && (p[0] == ' ' || p[0] == '\t'));
		}
		off += len;
	}
	CHECK(off == hdr);
	return 0;
}
