/*
 * header_fields.c - split a stored message's header section into fields.
 * See header_fields.h.
 */
#include "header_fields.h"

#include <string.h>

/* See header_fields.h: the name before optional whitespace and the colon. */
size_t header_fields_name(const char *p, size_t n)
{
	size_t i = 0, name;

	while (i < n && (unsigned char)p[i] > ' ' && (unsigned char)p[i] < 127 && p[i] != ':')
		i++;
	name = i;
	if (name == 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':' ? name : 0;
}

/* Is the line p[0..n) (its LF excluded) empty, CR aside? */
static bool line_empty(const char *p, size_t n)
{
	return n == 0 || (n == 1 && p[0] == '\r');
}

/* See header_fields.h. */
bool header_fields_end(const char *p, size_t n, bool eof, size_t *pos, size_t *hdr_len,
		       size_t *body_off, bool *sep)
{
	size_t i = *pos;

	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);
		size_t len = lf ? (size_t)(lf - (p + i)) : n - i;

		if (lf == NULL && !eof)
			break; /* judge the line once it is whole */
		if (line_empty(p + i, len) && lf != NULL) {
			*hdr_len = i;
			*body_off = i + len + 1;
			*sep = true;
			*pos = i;
			return true;
		}
		if (p[i] != ' ' && p[i] != '\t' && header_fields_name(p + i, len) == 0) {
			*hdr_len = i;
			*body_off = i;
			*sep = false;
			*pos = i;
			return true;
		}
		i += len + (lf ? 1 : 0);
	}
	*pos = i;
	if (!eof)
		return false;
	*hdr_len = n;
	*body_off = n;
	*sep = false;
	return true;
}

/* See header_fields.h. */
size_t header_fields_next(const char *p, size_t n, size_t *namelen)
{
	size_t i = 0;
	bool first = true;

	*namelen = 0;
	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);
		size_t len = lf ? (size_t)(lf - (p + i)) + 1 : n - i;

		if (!first && p[i] != ' ' && p[i] != '\t')
			break;
		if (first)
			*namelen = header_fields_name(p, len);
		first = false;
		i += len;
	}
	return i;
}
