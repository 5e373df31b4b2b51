/*
 * aliases.c - the aliases file: read, parse, look up, refresh.  See
 * aliases.h for the syntax and the API.
 *
 * The file is read whole (at most ALIASES_FILE_MAX, by filewatch.c, which
 * also tells when it changed) and parsed into an array of entries sorted by
 * folded name, so a lookup is a bsearch.  Names and address targets are
 * checked with the RFC 5321 path parser (addr.c), so what the file says is
 * something an SMTP client could have said too.  Targets are split per
 * physical line: a target never spans a line break, which keeps every
 * error's line number exact.
 */
#include "aliases.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "errbuf.h"
#include "filewatch.h"
#include "hato_limits.h"
#include "unquoted.h"
#include "util.h"

/* Longest alias name or address target: "local@domain". */
#define ALIAS_NAME_MAX (ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX)

/* A domain that stands in when a bare local part is checked as a path. */
#define CHECK_DOMAIN "example.invalid"

struct alias_entry {
	char *name; /* folded: "user" or "user@domain" */
	char **targets;
	size_t ntargets;
	unsigned line;
};

struct aliases {
	char *path;            /* NULL: no file, no entries */
	struct alias_entry *v; /* sorted by name */
	size_t n;
	struct filewatch fw; /* the version loaded, the last bad one */
};

/* ASCII lower case, whatever the locale. */
static char lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* See aliases.h. */
bool aliases_fold_local(const char *local, char *out, size_t outsz)
{
	size_t len = strlen(local), o = 0;
	const char *p = local, *end = local + len;
	bool quoted = len >= 2 && local[0] == '"' && local[len - 1] == '"';

	if (quoted) {
		p++;
		end--;
	}
	for (; p < end; p++) {
		char ch = *p;

		if (quoted && ch == '\\') {
			if (p + 1 >= end)
				return false; /* the closing quote was escaped */
			ch = *++p;
		} else if (quoted && ch == '"') {
			return false;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = lower(ch);
	}
	if (outsz == 0)
		return false;
	out[o] = '\0';
	return true;
}

/* Fold "user" or "user@domain" into key (local part folded, domain in
 * lower case); false when it does not fit or is badly quoted. */
static bool fold_name(const char *name, char *key, size_t keysz)
{
	const char *at = unquoted_rchr(name, '@');
	char local[ALIAS_NAME_MAX + 1];
	size_t n;

	if (at == NULL)
		return aliases_fold_local(name, key, keysz);
	if ((size_t)(at - name) >= sizeof(local))
		return false;
	memcpy(local, name, (size_t)(at - name));
	local[at - name] = '\0';
	if (!aliases_fold_local(local, key, keysz))
		return false;
	n = strlen(key);
	if (n + 1 + strlen(at + 1) + 1 > keysz)
		return false;
	key[n++] = '@';
	for (const char *p = at + 1; *p != '\0'; p++)
		key[n++] = lower(*p);
	key[n] = '\0';
	return true;
}

/* Is s a mailbox an SMTP client could name: "local@domain" (domain not a
 * literal unless literal_ok), or a bare local part when no '@'? */
static bool mailbox_ok(const char *s, bool literal_ok)
{
	char path[ALIAS_NAME_MAX + sizeof(CHECK_DOMAIN) + 4];
	struct mailaddr a;
	const char *end;

	if (strlen(s) > ALIAS_NAME_MAX)
		return false;
	if (unquoted_rchr(s, '@') == NULL)
		snprintf(path, sizeof(path), "<%s@" CHECK_DOMAIN ">", s); /* fits: checked */
	else
		snprintf(path, sizeof(path), "<%s>", s);
	if (addr_parse_path(path, &end, &a, 0) != ADDR_OK || *end != '\0')
		return false;
	return literal_ok || !a.literal;
}

/* Is the whole of t (which starts with '"') one quoted string? */
static bool quoted_whole(const char *t)
{
	const char *p = t + 1;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			return p[1] == '\0';
	}
	return false;
}

/* The text inside a quoted string, escapes undone (new allocation). */
static char *unquote(const char *t)
{
	size_t len = strlen(t);
	char *out = xmalloc(len), *o = out;

	for (const char *p = t + 1; p < t + len - 1; p++) {
		if (*p == '\\' && p + 1 < t + len - 1)
			p++;
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* Does s hold a control character? */
static bool has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * Check one target (trimmed, non-empty) and return it normalized in a new
 * allocation: "|command" and "/file" unquoted, "\name", "<addr>" without
 * the brackets, names and addresses as written.  NULL with why on error.
 */
static char *target_parse(const char *t, char *why, size_t whysz)
{
	char shown[160], *unq = NULL, *out = NULL;
	const char *s = t;
	size_t len = strlen(t);

	escape_text(t, len, shown, sizeof(shown));
	if (t[0] == '"' && quoted_whole(t))
		s = unq = unquote(t);
	if (has_prefix_ci(s, ":include:")) {
		snprintf(why, whysz,
			 "\"%s\": :include: is not supported (list the targets in this file)",
			 shown);
	} else if (s[0] == '|' || s[0] == '/') {
		if (has_control(s))
			snprintf(why, whysz, "\"%s\": control character in target", shown);
		else if (s[0] == '|' && *(s + 1 + strspn(s + 1, " \t")) == '\0')
			snprintf(why, whysz, "\"%s\": empty command", shown);
		else
			out = xstrdup(s);
	} else if (t[0] == '\\') {
		if (unquoted_rchr(t + 1, '@') == NULL && mailbox_ok(t + 1, false))
			out = xstrdup(t);
		else
			snprintf(why, whysz, "bad target \"%s\" (\\NAME wants a local name)",
				 shown);
	} else {
		char *inner = t[0] == '<' && len > 2 && t[len - 1] == '>' ? xstrndup(t + 1, len - 2)
									  : xstrdup(t);
		if (mailbox_ok(inner, true))
			out = inner;
		else
			free(inner);
		if (out == NULL)
			snprintf(why, whysz,
				 "bad target \"%s\" (want a name, an address, \"|command\" or "
				 "/file, separated by commas)",
				 shown);
	}
	free(unq);
	return out;
}

/* Free an entry array. */
static void entries_free(struct alias_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < v[i].ntargets; j++)
			free(v[i].targets[j]);
		free(v[i].targets);
		free(v[i].name);
	}
	free(v);
}

/* Split text (the rest of one physical line) at commas outside quotes and
 * add the targets to e.  False with "path:line: ..." on a bad target. */
static bool targets_parse(const char *path, unsigned lineno, const char *text,
			  struct alias_entry *e, char *err, size_t errsz)
{
	const char *p = text;

	while (*p != '\0') {
		const char *start = p;
		bool quoted = false;
		char *tok, *t, *norm, why[320];

		for (; *p != '\0'; p++) {
			if (quoted && *p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				quoted = !quoted;
			else if (!quoted && *p == ',')
				break;
		}
		if (quoted) {
			set_err(err, errsz, EINVAL, "%s:%u: unterminated quote", path, lineno);
			return false;
		}
		tok = xstrndup(start, (size_t)(p - start));
		if (*p == ',')
			p++;
		t = trim(tok);
		if (*t == '\0') { /* "a, , b" or a trailing comma */
			free(tok);
			continue;
		}
		norm = target_parse(t, why, sizeof(why));
		free(tok);
		if (norm == NULL) {
			set_err(err, errsz, EINVAL, "%s:%u: %s", path, lineno, why);
			return false;
		}
		e->targets = xrealloc(e->targets, (e->ntargets + 1) * sizeof(*e->targets));
		e->targets[e->ntargets++] = norm;
	}
	return true;
}

/* qsort order: by name. */
static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct alias_entry *)a)->name, ((const struct alias_entry *)b)->name);
}

/* bsearch order: a folded name against an entry. */
static int key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct alias_entry *)elem)->name);
}

/* Does entry e have targets?  Error naming its line if not. */
static bool entry_complete(const char *path, const struct alias_entry *e, char *err, size_t errsz)
{
	if (e->ntargets > 0)
		return true;
	set_err(err, errsz, EINVAL, "%s:%u: alias %s has no targets", path, e->line, e->name);
	return false;
}

/* Parse one logical-line start "name: targets" at lineno into a new entry. */
static bool entry_start(const char *path, unsigned lineno, char *line, struct alias_entry **v,
			size_t *n, char *err, size_t errsz)
{
	const char *colon = unquoted_chr(line, ':'); /* the end of the name */
	char key[ALIAS_NAME_MAX + 1], shown[160], *name;
	struct alias_entry *e;

	if (colon == NULL) {
		set_err(err, errsz, EINVAL, "%s:%u: no ':' after the alias name", path, lineno);
		return false;
	}
	line[colon - line] = '\0';
	name = trim(line);
	/* a quoted '@' ("a@b"@x) would make the key ambiguous: refused */
	if (!mailbox_ok(name, false) || !fold_name(name, key, sizeof(key)) ||
	    strchr(key, '@') != strrchr(key, '@') ||
	    (unquoted_rchr(name, '@') == NULL && strchr(key, '@') != NULL)) {
		escape_text(name, strlen(name), shown, sizeof(shown));
		set_err(err, errsz, EINVAL,
			"%s:%u: bad alias name \"%s\" (want a local part or local@domain)", path,
			lineno, shown);
		return false;
	}
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	e = &(*v)[(*n)++];
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(key);
	e->line = lineno;
	return targets_parse(path, lineno, colon + 1, e, err, errsz);
}

/* Parse len octets of the file at path into an array sorted by name. */
static bool aliases_parse(const char *path, const char *buf, size_t len, struct alias_entry **out,
			  size_t *nout, char *err, size_t errsz)
{
	struct alias_entry *v = NULL;
	size_t n = 0, off = 0;
	unsigned lineno = 0;

	while (off < len) {
		const char *p = buf + off, *nl = memchr(p, '\n', len - off);
		size_t linelen = nl != NULL ? (size_t)(nl - p) : len - off;
		char *line, *first;
		bool ok = true;

		off += nl != NULL ? linelen + 1 : linelen;
		lineno++;
		if (memchr(p, '\0', linelen) != NULL) {
			set_err(err, errsz, EINVAL, "%s:%u: NUL byte in line", path, lineno);
			goto fail;
		}
		if (linelen > 0 && p[linelen - 1] == '\r')
			linelen--;
		line = xstrndup(p, linelen);
		first = line + strspn(line, " \t");
		if (*first == '\0' || *first == '#') {
			/* blank and comment lines: skipped, even inside an entry */
		} else if (first != line) {
			if (n == 0) {
				set_err(err, errsz, EINVAL,
					"%s:%u: continuation line without an alias above it", path,
					lineno);
				ok = false;
			} else {
				ok = targets_parse(path, lineno, first, &v[n - 1], err, errsz);
			}
		} else {
			ok = (n == 0 || entry_complete(path, &v[n - 1], err, errsz)) &&
			     entry_start(path, lineno, line, &v, &n, err, errsz);
		}
		free(line);
		if (!ok)
			goto fail;
	}
	if (n > 0 && !entry_complete(path, &v[n - 1], err, errsz))
		goto fail;
	if (n > 1)
		qsort(v, n, sizeof(*v), entry_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1].name, v[i].name) == 0) {
			unsigned a = v[i - 1].line, b = v[i].line;
			set_err(err, errsz, EINVAL, "%s:%u: duplicate alias %s (also on line %u)",
				path, a > b ? a : b, v[i].name, a > b ? b : a);
			goto fail;
		}
	*out = v;
	*nout = n;
	return true;
fail:
	entries_free(v, n);
	return false;
}

/* filewatch parse callback: parse the file and, if all of it parsed,
 * replace the entries of the aliases arg. */
static bool aliases_replace(void *arg, const char *path, const char *buf, size_t len, char *err,
			    size_t errsz)
{
	struct aliases *al = arg;
	struct alias_entry *v;
	size_t n;

	if (!aliases_parse(path, buf, len, &v, &n, err, errsz))
		return false;
	entries_free(al->v, al->n);
	al->v = v;
	al->n = n;
	return true;
}

/* See aliases.h. */
struct aliases *aliases_open(const char *path, char *err, size_t errsz)
{
	struct aliases *al = xcalloc(1, sizeof(*al));

	if (path == NULL)
		return al;
	al->path = xstrdup(path);
	filewatch_init(&al->fw, al->path, ALIASES_FILE_MAX, 0, aliases_replace, al);
	if (!filewatch_load(&al->fw, err, errsz)) {
		int e = errno;

		aliases_free(al);
		errno = e;
		return NULL;
	}
	return al;
}

/* See aliases.h. */
bool aliases_refresh(struct aliases *al, char *err, size_t errsz)
{
	if (al->path == NULL)
		return true;
	return filewatch_refresh(&al->fw, err, errsz);
}

/* See aliases.h. */
void aliases_free(struct aliases *al)
{
	if (al == NULL)
		return;
	entries_free(al->v, al->n);
	free(al->path);
	free(al);
}

/* The entry whose folded name is key, or NULL. */
static const struct alias_entry *entry_find(const struct aliases *al, const char *key)
{
	if (al == NULL || al->n == 0)
		return NULL;
	return bsearch(key, al->v, al->n, sizeof(*al->v), key_cmp);
}

/* The targets of e, or NULL. */
static const char *const *entry_targets(const struct alias_entry *e, size_t *n)
{
	*n = e != NULL ? e->ntargets : 0;
	return e != NULL ? (const char *const *)e->targets : NULL;
}

/* See aliases.h. */
const char *const *aliases_get(const struct aliases *al, const char *name, size_t *n)
{
	char key[ALIAS_NAME_MAX + 1];

	*n = 0;
	if (!fold_name(name, key, sizeof(key)))
		return NULL;
	return entry_targets(entry_find(al, key), n);
}

/* See aliases.h. */
const char *const *aliases_lookup(const struct aliases *al, const char *local, const char *domain,
				  size_t *n)
{
	char key[ALIAS_NAME_MAX + 1];
	const struct alias_entry *e = NULL;
	size_t len;

	*n = 0;
	if (!aliases_fold_local(local, key, sizeof(key)) || strchr(key, '@') != NULL)
		return NULL; /* no name holds a quoted '@' */
	len = strlen(key);
	if (domain != NULL && *domain != '\0' && len + 1 + strlen(domain) < sizeof(key)) {
		key[len] = '@';
		for (size_t i = 0; domain[i] != '\0'; i++)
			key[len + 1 + i] = lower(domain[i]);
		key[len + 1 + strlen(domain)] = '\0';
		e = entry_find(al, key);
		key[len] = '\0';
	}
	if (e == NULL)
		e = entry_find(al, key);
	return entry_targets(e, n);
}

/* See aliases.h. */
size_t aliases_count(const struct aliases *al)
{
	return al != NULL ? al->n : 0;
}

/* See aliases.h. */
void aliases_each(const struct aliases *al,
		  void (*fn)(const char *name, const char *const *targets, size_t n, unsigned line,
			     void *arg),
		  void *arg)
{
	for (size_t i = 0; al != NULL && i < al->n; i++)
		fn(al->v[i].name, (const char *const *)al->v[i].targets, al->v[i].ntargets,
		   al->v[i].line, arg);
}

/* See aliases.h. */
const char *aliases_path(const struct aliases *al)
{
	return al != NULL ? al->path : NULL;
}
