/*
 * fuzz_http_request.c - libFuzzer target for src/metrics/http_request.c,
 * the reader of the /metrics endpoint's request heads (untrusted input
 * from any client that reaches [metrics] listen).
 *
 * Input: the octets a client sends.  Checks:
 *   - the whole input is OK, BAD or INCOMPLETE, and reading never goes
 *     past it (ASan, on a copy of exactly that size);
 *   - OK: the head's length is within the input and ends in LF; the
 *     method is a non-empty token, the path has no control octet, space,
 *     '?' or '#'; HTTP/1.x;
 *   - the verdict of the head alone (its first length octets) is the
 *     same, and every shorter prefix is INCOMPLETE or BAD, never OK
 *     (as the endpoint reads it: parsed again as octets arrive);
 *   - a BAD prefix makes every longer input BAD too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The checks on a head the reader accepted. */
static void check_ok(const char *p, size_t n, const struct http_request *r)
{
	size_t ml = strlen(r->method);

	CHECK(r->length > 0 && r->length <= n);
	CHECK(p[r->length - 1] == '\n');
	CHECK(ml > 0 && ml < HTTP_METHOD_MAX);
	CHECK(memcmp(p + strspn(p, "\r\n"), r->method, ml) == 0);
	CHECK(strlen(r->path) < HTTP_PATH_MAX);
	for (const char *c = r->path; *c; c++)
		CHECK((unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f && *c != '?' &&
		      *c != '#');
	CHECK(r->minor <= 9);
	CHECK(r->fields <= HTTP_FIELDS_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = malloc(size ? size : 1);
	struct http_request r, r2;
	enum http_parse whole, v;

	memcpy(p, data, size);
	whole = http_request_parse(p, size, &r);
	CHECK(whole == HTTP_PARSE_OK || whole == HTTP_PARSE_BAD || whole == HTTP_PARSE_INCOMPLETE);
	if (whole == HTTP_PARSE_OK) {
		check_ok(p, size, &r);
		CHECK(http_request_parse(p, r.length, &r2) == HTTP_PARSE_OK);
		CHECK(r2.length == r.length && strcmp(r2.method, r.method) == 0 &&
		      strcmp(r2.path, r.path) == 0);
	}
	/* prefixes, as the octets would arrive: a few cut points */
	for (size_t cut = 0; cut < size; cut += 1 + size / 16) {
		v = http_request_parse(p, cut, &r2);
		if (whole == HTTP_PARSE_OK && cut < r.length)
			CHECK(v == HTTP_PARSE_INCOMPLETE || v == HTTP_PARSE_BAD);
		if (v == HTTP_PARSE_BAD)
			CHECK(whole == HTTP_PARSE_BAD);
		if (v == HTTP_PARSE_OK)
			CHECK(whole == HTTP_PARSE_OK && r2.length == r.length);
	}
	free(p);
	return 0;
}
