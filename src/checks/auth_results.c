/*
 * auth_results.c - writing and recognising Authentication-Results: (see
 * auth_results.h).  Every value written is a domain, an address made of
 * safe characters, or a keyword: nothing from the peer goes in unchecked.
 */
#include "auth_results.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* May s go into the header as it is (letters, digits, and . - _ @ +)? */
static bool safe(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(".-_@+", *s))
			return false;
	return true;
}

/* May a header.b prefix go in as it is (base64 characters)? */
static bool safe_b(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '+' && *s != '/' && *s != '=')
			return false;
	return true;
}

/* See auth_results.h. */
void auth_results_format(const struct auth_results *ar, struct strbuf *out)
{
	strbuf_printf(out, "%s;", ar->authserv_id);
	if (ar->spf_on) {
		const char *id = ar->spf_identity, *at = id ? strrchr(id, '@') : NULL;

		strbuf_printf(out, "\n\tspf=%s", spf_result_name(ar->spf));
		if (safe(id))
			strbuf_printf(out, " smtp.%s=%s", ar->spf_helo ? "helo" : "mailfrom", id);
		else if (at && safe(at + 1))
			strbuf_printf(out, " smtp.mailfrom=%s", at + 1);
		strbuf_printf(out, ";");
	}
	if (ar->dkim_on) {
		size_t n = ar->dkim ? dkim_verify_count(ar->dkim) : 0;

		if (n == 0)
			strbuf_printf(out, "\n\tdkim=none;");
		for (size_t i = 0; i < n; i++) {
			const struct dkim_sig_result *r = dkim_verify_result(ar->dkim, i);

			if (r == NULL)
				continue;
			strbuf_printf(out, "\n\tdkim=%s", dkim_result_name(r->result));
			if (safe(r->d))
				strbuf_printf(out, " header.d=%s", r->d);
			if (safe(r->s))
				strbuf_printf(out, " header.s=%s", r->s);
			if (safe_b(r->b))
				strbuf_printf(out, " header.b=%s", r->b);
			strbuf_printf(out, ";");
		}
	}
	if (ar->dmarc_on) {
		const struct dmarc *d = ar->dmarc;

		strbuf_printf(out, "\n\tdmarc=%s", dmarc_result_name(d->result));
		if (d->result == DMARC_RESULT_PASS || d->result == DMARC_RESULT_FAIL)
			strbuf_printf(out, " (p=%s dis=%s)", dmarc_policy_name(d->policy),
				      dmarc_policy_name(d->disposition));
		if (safe(d->from))
			strbuf_printf(out, " header.from=%s", d->from);
		strbuf_printf(out, ";");
	}
	if (!ar->spf_on && !ar->dmarc_on && !ar->dkim_on)
		strbuf_printf(out, " none;");
	/* no final ';' */
	out->s[--out->len] = '\0';
}

/* See auth_results.h. */
bool auth_results_ours(const char *v, size_t len, const char *id)
{
	size_t i = 0, start, idlen = strlen(id);
	int depth = 0;

	/* CFWS before the authserv-id */
	while (i < len) {
		if (depth > 0) {
			if (v[i] == '\\')
				i++;
			else if (v[i] == '(')
				depth++;
			else if (v[i] == ')')
				depth--;
		} else if (v[i] == '(') {
			depth = 1;
		} else if (!isspace((unsigned char)v[i])) {
			break;
		}
		i++;
	}
	start = i;
	while (i < len && v[i] != ';' && v[i] != '(' && !isspace((unsigned char)v[i]))
		i++;
	return i - start == idlen && strncasecmp(v + start, id, idlen) == 0;
}
