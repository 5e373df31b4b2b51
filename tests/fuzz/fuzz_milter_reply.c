/*
 * fuzz_milter_reply.c - libFuzzer target for src/milter/milter_proto.c: a
 * filter's packets, framed and decoded as hatod reads them.
 *
 * Input: byte 0 picks packet_max (small, to reach the limit), the rest is
 * the stream a filter sends.  Packets are framed one after the other
 * (milter_frame) and each is decoded (milter_reply_decode).  Checks:
 *   - a frame is never longer than the input, nor its length over the
 *     maximum, nor 0;
 *   - every string a decoded reply points to lies inside the packet and
 *     ends with its NUL there; numbers are read only when present;
 *   - encoding a reply's header fields again (milter_packet_*) frames and
 *     decodes to the same values.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Does s point into p[0..n) with its NUL there too? */
static bool inside(const char *s, const char *p, size_t n)
{
	return s == NULL || (s >= p && s < p + n && memchr(s, '\0', (size_t)(p + n - s)) != NULL);
}

/* Encode a header reply again and decode it: the same name and value. */
static void roundtrip(const struct milter_reply *r)
{
	struct strbuf b;
	struct milter_reply r2;
	size_t start;
	ssize_t len;

	strbuf_init(&b);
	start = milter_packet_begin(&b, r->cmd);
	if (r->cmd != SMFIR_ADDHEADER)
		milter_put_u32(&b, r->index);
	milter_put_str(&b, r->name);
	milter_put_str(&b, r->value);
	milter_packet_end(&b, start);
	len = milter_frame((const unsigned char *)b.s, b.len, b.len);
	CHECK(len == (ssize_t)b.len);
	CHECK(milter_reply_decode(b.s + 4, b.len - 4, &r2));
	CHECK(r2.cmd == r->cmd && r2.index == (r->cmd == SMFIR_ADDHEADER ? 0 : r->index));
	CHECK(strcmp(r2.name, r->name) == 0 && strcmp(r2.value, r->value) == 0);
	strbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max, off = 1;

	if (size < 1)
		return 0;
	max = 1 + (size_t)data[0] * 64;
	while (off < size) {
		ssize_t len = milter_frame(data + off, size - off, max);
		struct milter_reply r;
		const char *pkt;
		size_t plen;

		if (len <= 0)
			break; /* incomplete, or refused: the connection would fail */
		CHECK((size_t)len <= size - off && (size_t)len > 4 && (size_t)len - 4 <= max);
		pkt = (const char *)data + off + 4;
		plen = (size_t)len - 4;
		if (milter_reply_decode(pkt, plen, &r)) {
			CHECK(r.cmd == pkt[0] && r.data == pkt + 1 && r.len == plen - 1);
			CHECK(inside(r.name, pkt, plen) && inside(r.value, pkt, plen));
			CHECK(inside(r.addr, pkt, plen) && inside(r.args, pkt, plen));
			CHECK(inside(r.text, pkt, plen));
			CHECK(milter_reply_name(r.cmd) != NULL);
			if (r.cmd == SMFIR_ADDHEADER || r.cmd == SMFIR_INSHEADER ||
			    r.cmd == SMFIR_CHGHEADER)
				roundtrip(&r);
		}
		off += (size_t)len;
	}
	return 0;
}
