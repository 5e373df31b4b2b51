/*
 * unquoted.c - find a character outside double-quoted strings.  See
 * unquoted.h.
 */
#include "unquoted.h"

#include <stdbool.h>
#include <stddef.h>

/* The first (or, when last, the last) c of s outside double quotes. */
static const char *scan(const char *s, char c, bool last)
{
	const char *hit = NULL;
	bool quoted = false;

	for (; *s != '\0'; s++) {
		if (quoted && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (!quoted && *s == c) {
			if (!last)
				return s;
			hit = s;
		}
	}
	return hit;
}

/* See unquoted.h. */
const char *unquoted_chr(const char *s, char c)
{
	return scan(s, c, false);
}

/* See unquoted.h. */
const char *unquoted_rchr(const char *s, char c)
{
	return scan(s, c, true);
}
