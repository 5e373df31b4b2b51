/*
 * maildir_path.c - a recipient's Maildir directory from the mailbox_path
 * template.  See maildir_path.h.
 *
 * A user or domain becomes one path component, so it must be one: not
 * empty, no '/', and not hidden ("." and ".." climb, ".x" would be taken
 * for a Maildir++ folder).  A user name that fails here is refused at RCPT
 * by the same call, so delivery never meets one.
 */
#include "maildir_path.h"

#include <string.h>

/* Append s lower-cased (ASCII only, other bytes kept) at out[*n]; false if it does not fit. */
static bool append_lower(char *out, size_t outsz, size_t *n, const char *s)
{
	for (; *s; s++) {
		char c = *s;

		if (*n + 1 >= outsz)
			return false;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[(*n)++] = c;
	}
	return true;
}

/* Is s safe as one path component: non-empty, no '/', not hidden ("." / "..")? */
static bool component_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && s[0] != '.' && strchr(s, '/') == NULL;
}

/* See maildir_path.h. */
bool maildir_path(const char *tmpl, const char *user, const char *domain, char *out, size_t outsz)
{
	size_t n = 0;

	if (tmpl == NULL || out == NULL || outsz == 0)
		return false;
	out[0] = '\0';
	if (!component_ok(user) || !component_ok(domain))
		return false;
	for (const char *p = tmpl; *p; p++) {
		bool ok = true;

		if (*p != '%') {
			ok = n + 1 < outsz;
			if (ok)
				out[n++] = *p;
		} else if (p[1] == '%') {
			ok = n + 1 < outsz;
			if (ok)
				out[n++] = '%';
			p++;
		} else if (p[1] == 'u' || p[1] == 'd') {
			ok = append_lower(out, outsz, &n, p[1] == 'u' ? user : domain);
			p++;
		} else {
			ok = false; /* unknown escape or a lone trailing '%': a config typo */
		}
		if (!ok) {
			out[0] = '\0';
			return false;
		}
	}
	out[n] = '\0';
	return true;
}
