/*
 * fuzz_envelope.c - libFuzzer target for src/common/envelope.c.
 *
 * envelope_parse() on arbitrary bytes must either fail with a message or
 * give an envelope with one recipient per "rcpt: " line of the input (no
 * line is silently skipped), that envelope_format() writes and
 * envelope_parse() reads back to the same fields (the hold and each
 * recipient's attempt history included, never more than
 * ENVELOPE_ATTEMPTS_MAX of them); formatting that second envelope must give
 * the same text again (a fixed point after one round).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
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

/* Equal strings; NULL counts as "" (format writes a missing value as ""). */
static bool same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Are the two envelopes field by field the same? */
static bool same_envelope(const struct envelope *a, const struct envelope *b)
{
	if (strcmp(a->id, b->id) != 0 || a->arrival != b->arrival ||
	    !same_str(a->sender, b->sender) || a->size != b->size || a->body != b->body ||
	    a->smtputf8 != b->smtputf8 || !same_str(a->client, b->client) ||
	    !same_str(a->client_name, b->client_name) || !same_str(a->helo, b->helo) ||
	    a->ret != b->ret || !same_str(a->envid, b->envid) || a->nrcpts != b->nrcpts)
		return false;
	if (!same_str(a->hold, b->hold) || a->held_since != b->held_since)
		return false;
	for (size_t i = 0; i < a->nrcpts; i++) {
		if (strcmp(a->rcpts[i].addr, b->rcpts[i].addr) != 0 ||
		    a->rcpts[i].state != b->rcpts[i].state ||
		    a->rcpts[i].attempts != b->rcpts[i].attempts ||
		    a->rcpts[i].next_attempt != b->rcpts[i].next_attempt ||
		    a->rcpts[i].notify != b->rcpts[i].notify ||
		    !same_str(a->rcpts[i].orcpt, b->rcpts[i].orcpt) ||
		    a->rcpts[i].ntries != b->rcpts[i].ntries ||
		    a->rcpts[i].ntries > ENVELOPE_ATTEMPTS_MAX)
			return false;
		for (size_t k = 0; k < a->rcpts[i].ntries; k++) {
			const struct env_attempt *x = &a->rcpts[i].tries[k],
						 *y = &b->rcpts[i].tries[k];

			if (x->at != y->at || x->result != y->result ||
			    !same_str(x->host, y->host) || !same_str(x->tls, y->tls) ||
			    strcmp(x->reply, y->reply) != 0)
				return false;
		}
	}
	return true;
}

/* How many lines of data start with "rcpt: "? */
static size_t count_rcpt_lines(const uint8_t *data, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i + 6 <= size; i++)
		if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, "rcpt: ", 6) == 0)
			n++;
	return n;
}

/* Entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope e, e2;
	struct strbuf b, b2;
	char err[256];

	err[0] = '\0';
	if (!envelope_parse((const char *)data, size, &e, err, sizeof(err))) {
		CHECK(err[0] != '\0');
		CHECK(e.sender == NULL && e.rcpts == NULL && e.nrcpts == 0);
		return 0;
	}
	CHECK(queue_id_valid(e.id));
	CHECK(e.nrcpts == count_rcpt_lines(data, size));
	CHECK(e.sender != NULL);
	strbuf_init(&b);
	envelope_format(&e, &b);
	CHECK(strlen(b.s) == b.len);
	if (!envelope_parse(b.s, b.len, &e2, err, sizeof(err))) {
		fprintf(stderr, "re-parse failed: %s\n--- text ---\n%s", err, b.s);
		abort();
	}
	CHECK(same_envelope(&e, &e2));
	strbuf_init(&b2);
	envelope_format(&e2, &b2);
	CHECK(b.len == b2.len && memcmp(b.s, b2.s, b.len) == 0);
	strbuf_free(&b);
	strbuf_free(&b2);
	envelope_free(&e);
	envelope_free(&e2);
	return 0;
}
