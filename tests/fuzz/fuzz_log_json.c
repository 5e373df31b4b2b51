/*
 * fuzz_log_json.c - libFuzzer target for src/lib/log_json.c.
 *
 * The input is a log message (peer text reaches it through escape_text()
 * and escape_word(), but also raw, through error texts and paths).  Its
 * JSON, into buffers of several sizes (small ones force cuts), must be one
 * object of string keys and string values followed by a newline: checked
 * by a strict parser here (RFC 8259 string rules, valid UTF-8 only, no raw
 * control characters), and no key may appear twice.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define KEYS_MAX 128

/* The length of the valid UTF-8 sequence at p (0: none), n bytes left. */
static size_t utf8_ok(const unsigned char *p, size_t n)
{
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	if (p[0] == 0xed)
		hi = 0x9f;
	if (p[0] == 0xf0)
		lo = 0x90;
	if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < need || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need;
}

/* Parse one JSON string at s[*i]; advance past it.  Returns its span. */
static void json_string(const unsigned char *s, size_t len, size_t *i, size_t *start, size_t *end)
{
	CHECK(*i < len && s[*i] == '"');
	*start = ++*i;
	while (*i < len && s[*i] != '"') {
		unsigned char c = s[*i];

		CHECK(c >= 0x20); /* no raw control characters */
		if (c == '\\') {
			CHECK(*i + 1 < len);
			c = s[*i + 1];
			if (c == 'u') {
				CHECK(*i + 5 < len);
				for (size_t k = 2; k < 6; k++)
					CHECK(strchr("0123456789abcdefABCDEF", s[*i + k]) != NULL &&
					      s[*i + k] != '\0');
				*i += 6;
			} else {
				CHECK(strchr("\"\\/bfnrt", c) != NULL && c != '\0');
				*i += 2;
			}
		} else if (c >= 0x80) {
			size_t n = utf8_ok(s + *i, len - *i);

			CHECK(n > 0);
			*i += n;
		} else {
			(*i)++;
		}
	}
	CHECK(*i < len);
	*end = (*i)++;
}

/* out[0..len) must be {"k":"v",...}\n with unique keys. */
static void check_object(const char *out, size_t len)
{
	const unsigned char *s = (const unsigned char *)out;
	size_t i = 0, nkeys = 0, ks[KEYS_MAX], ke[KEYS_MAX], vs, ve;

	CHECK(len >= 3 && s[len - 1] == '\n' && out[len] == '\0');
	len--;
	CHECK(s[i++] == '{');
	while (i < len && s[i] != '}') {
		if (nkeys > 0)
			CHECK(s[i++] == ',');
		CHECK(nkeys < KEYS_MAX);
		json_string(s, len, &i, &ks[nkeys], &ke[nkeys]);
		for (size_t k = 0; k < nkeys; k++)
			CHECK(ke[k] - ks[k] != ke[nkeys] - ks[nkeys] ||
			      memcmp(s + ks[k], s + ks[nkeys], ke[k] - ks[k]) != 0);
		nkeys++;
		CHECK(i < len && s[i++] == ':');
		json_string(s, len, &i, &vs, &ve);
	}
	CHECK(nkeys >= 1); /* "level" at least */
	CHECK(i + 1 == len && s[i] == '}');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = {LOG_JSON_OUT_MIN, LOG_JSON_OUT_MIN + 1, 100, 333, 1024,
				       LOG_JSON_MAX};
	char *msg = malloc(size ? size : 1), *out;
	const char *err = size > 0 && data[0] & 1 ? "Input/output error" : NULL;

	memcpy(msg, data, size); /* exactly size bytes: ASan sees any read past them */
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		size_t n;

		out = malloc(sizes[t]);
		n = log_json_line(t & 1 ? "2024-01-02T03:04:05.678Z" : NULL, "info", msg, size, err,
				  out, sizes[t]);
		CHECK(n < sizes[t]);
		check_object(out, n);
		free(out);
	}
	free(msg);
	return 0;
}
