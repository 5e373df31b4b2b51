/*
 * dkim_tags.c - the tag=value list parser (RFC 6376 §3.2).  See dkim_tags.h.
 *
 * One pass over the text with an index that only moves forward: the time
 * is linear in the length and nothing is allocated, whatever the input.
 */
#include "dkim_tags.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* White space as FWS allows it: SP, HTAB, and the CR LF of a fold. */
static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* VALCHAR: %x21-3A / %x3C-7E, printable ASCII but ";". */
static bool is_valchar(char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';';
}

/* Skip FWS from i; the new index. */
static size_t skip_fws(const char *s, size_t len, size_t i)
{
	while (i < len && is_fws(s[i]))
		i++;
	return i;
}

/* Set why (when given) to the reason. */
static bool fail(char *why, size_t whysz, const char *reason)
{
	if (why != NULL && whysz > 0)
		snprintf(why, whysz, "%s", reason);
	return false;
}

/* Parse one tag-spec at s[*i..); false on a syntax error. */
static bool tag_spec(const char *s, size_t len, size_t *i, struct dkim_tag *t, char *why,
		     size_t whysz)
{
	size_t p = skip_fws(s, len, *i), end;

	if (p >= len || !is_alpha(s[p]))
		return fail(why, whysz, "tag name expected");
	t->name = s + p;
	while (p < len && (is_alpha(s[p]) || is_digit(s[p]) || s[p] == '_'))
		p++;
	t->namelen = (size_t)(s + p - t->name);
	p = skip_fws(s, len, p);
	if (p >= len || s[p] != '=')
		return fail(why, whysz, "\"=\" expected after a tag name");
	p = skip_fws(s, len, p + 1);
	t->val = s + p;
	t->valoff = p;
	end = p;
	while (p < len && s[p] != ';') {
		if (!is_valchar(s[p]) && !is_fws(s[p]))
			return fail(why, whysz, "character not allowed in a tag value");
		if (!is_fws(s[p]))
			end = p + 1;
		p++;
	}
	t->vallen = end - t->valoff;
	*i = p;
	return true;
}

/* See dkim_tags.h. */
bool dkim_tags_parse(const char *s, size_t len, struct dkim_tags *out, char *why, size_t whysz)
{
	size_t i = 0;

	out->n = 0;
	if (skip_fws(s, len, 0) == len)
		return fail(why, whysz, "empty tag list");
	while (i < len) {
		struct dkim_tag t;

		if (out->n == DKIM_TAGS_MAX)
			return fail(why, whysz, "too many tags");
		if (!tag_spec(s, len, &i, &t, why, whysz))
			return false;
		for (size_t k = 0; k < out->n; k++)
			if (out->t[k].namelen == t.namelen &&
			    memcmp(out->t[k].name, t.name, t.namelen) == 0)
				return fail(why, whysz, "a tag appears twice");
		out->t[out->n++] = t;
		if (i < len) /* at the ";" */
			i++;
		if (skip_fws(s, len, i) == len) /* the last ";" may end the list */
			break;
	}
	return true;
}

/* See dkim_tags.h. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < t->n; i++)
		if (t->t[i].namelen == n && memcmp(t->t[i].name, name, n) == 0)
			return &t->t[i];
	return NULL;
}

/* See dkim_tags.h. */
bool dkim_tag_is(const struct dkim_tag *t, const char *text, bool ci)
{
	size_t n = strlen(text);

	if (t->vallen != n)
		return false;
	return ci ? strncasecmp(t->val, text, n) == 0 : memcmp(t->val, text, n) == 0;
}

/* See dkim_tags.h. */
bool dkim_tag_compact(const struct dkim_tag *t, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < t->vallen; i++) {
		if (is_fws(t->val[i]))
			continue;
		if (o + 1 >= outsz)
			return false;
		out[o++] = t->val[i];
	}
	if (outsz == 0)
		return false;
	out[o] = '\0';
	return true;
}
