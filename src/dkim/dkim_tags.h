/*
 * dkim_tags.h - tag=value lists (RFC 6376 §3.2), the form of a
 * DKIM-Signature field's value and of a key record.
 *
 *   tag-list = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *
 * The parse points into the text (nothing is copied or allocated): each
 * tag's name, and its value with the white space around it left out (a
 * value may still hold folding inside, as b= and p= do).  A list longer
 * than DKIM_TAGS_MAX tags, a tag named twice, a name that is not
 * ALPHA *(ALPHA / DIGIT / "_"), a missing "=", or a value with a
 * character outside VALCHAR / WSP is a syntax error (the caller's
 * permerror), with a reason for people.
 */
#ifndef HATO_DKIM_TAGS_H
#define HATO_DKIM_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"

struct dkim_tag {
	const char *name;
	size_t namelen;
	const char *val; /* white space around it left out */
	size_t vallen;
	size_t valoff; /* offset of val in the parsed text */
};

struct dkim_tags {
	size_t n;
	struct dkim_tag t[DKIM_TAGS_MAX];
};

/* Parse s[0..len) into out; false with a reason in why (why may be NULL). */
bool dkim_tags_parse(const char *s, size_t len, struct dkim_tags *out, char *why, size_t whysz);

/* The tag called name, or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name);

/* Does the value equal text (case-sensitive unless ci)? */
bool dkim_tag_is(const struct dkim_tag *t, const char *text, bool ci);

/* Copy a value into out with all white space (FWS) taken out, as base64
 * and h= values are read; false when it does not fit in outsz. */
bool dkim_tag_compact(const struct dkim_tag *t, char *out, size_t outsz);

#endif
