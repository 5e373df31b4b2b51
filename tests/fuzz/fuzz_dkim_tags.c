/*
 * fuzz_dkim_tags.c - libFuzzer target for src/dkim/dkim_tags.c, the
 * DKIM-Signature and key record tag-list parser.
 *
 * The input, in a buffer of exactly its size (ASan catches a read past
 * it), is parsed as a tag list.  When it parses: at most DKIM_TAGS_MAX
 * tags, no name twice, every name and value inside the input, a value
 * without white space at either end and without ";", and every lookup by
 * name finds its tag.  dkim_tag_compact never overruns its buffer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_tags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size ? size : 1), why[128], small[8], name[64];
	struct dkim_tags t;

	memcpy(s, data, size);
	if (dkim_tags_parse(s, size, &t, why, sizeof(why))) {
		CHECK(t.n >= 1 && t.n <= DKIM_TAGS_MAX);
		for (size_t i = 0; i < t.n; i++) {
			const struct dkim_tag *g = &t.t[i];

			CHECK(g->name >= s && g->name + g->namelen <= s + size && g->namelen > 0);
			CHECK(g->val >= s && g->val + g->vallen <= s + size);
			CHECK(g->val == s + g->valoff);
			CHECK(memchr(g->val, ';', g->vallen) == NULL);
			CHECK(g->vallen == 0 || (!ws(g->val[0]) && !ws(g->val[g->vallen - 1])));
			for (size_t k = 0; k < i; k++)
				CHECK(t.t[k].namelen != g->namelen ||
				      memcmp(t.t[k].name, g->name, g->namelen) != 0);
			if (g->namelen < sizeof(name)) {
				memcpy(name, g->name, g->namelen);
				name[g->namelen] = '\0';
				CHECK(dkim_tags_get(&t, name) == g);
			}
			if (dkim_tag_compact(g, small, sizeof(small)))
				CHECK(strlen(small) < sizeof(small));
		}
	}
	free(s);
	return 0;
}
