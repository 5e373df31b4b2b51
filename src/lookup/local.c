/*
 * local.c - resolve a recipient of a local domain into its final targets,
 * and check an aliases file the same way.  See local.h for the rules.
 *
 * The expansion is depth first.  A stack of the aliases being expanded
 * (key "name@domain", one per level) finds cycles; a list of aliases
 * already expanded in full keeps a diamond ("a: b, c", "b: d", "c: d")
 * from being walked twice, so the work is bounded by the size of the
 * aliases file, not exponential in LOCAL_DEPTH_MAX.
 */
#include "local.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hato_limits.h"
#include "route.h"
#include "sqlmap.h"
#include "unquoted.h"
#include "util.h"

/* "name@domain" */
#define LOCAL_KEY_MAX (ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX + 1)

struct resolver {
	const struct conf *c;
	const struct userdb *users;
	const struct aliases *al;
	struct sqlmap_ask *ask; /* the [sql] tables, or NULL */
	size_t top;             /* the recipient's domain: see dom_name */
	char **extra;           /* domains local by the table: index nlocal_domains + i */
	size_t nextra;
	char **owned; /* alias targets from the table, kept for this resolution */
	size_t nowned;
	struct local_targets *out;
	char *why;
	size_t whysz;
	bool how_set; /* why already says how the recipient was found */
	bool in_catch_all;
	size_t depth; /* aliases being expanded */
	char keys[LOCAL_DEPTH_MAX][LOCAL_KEY_MAX];
	char shown[LOCAL_DEPTH_MAX][LOCAL_KEY_MAX]; /* for why, escaped */
	char **done;                                /* keys expanded in full */
	size_t ndone;
};

/* Fill why. */
static void set_why(struct resolver *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(struct resolver *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, r->whysz, fmt, ap); /* a cut explanation is still one */
	va_end(ap);
}

/* On success, why says how: the first decision made wins. */
static void set_how(struct resolver *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_how(struct resolver *r, const char *fmt, ...)
{
	va_list ap;

	if (r->how_set)
		return;
	r->how_set = true;
	va_start(ap, fmt);
	vsnprintf(r->why, r->whysz, fmt, ap);
	va_end(ap);
}

/* Domain di's name: one of local_domains, or one the domain table made
 * local during this resolution. */
static const char *dom_name(const struct resolver *r, size_t di)
{
	size_t n = r->c->nlocal_domains;

	return di < n ? r->c->local_domains[di] : r->extra[di - n];
}

/* Domain di's A-label form, or NULL (a domain of the table: as written). */
static const char *dom_ascii(const struct resolver *r, size_t di)
{
	return di < r->c->nlocal_domains && r->c->local_domains_ascii != NULL
		       ? r->c->local_domains_ascii[di]
		       : NULL;
}

/* Domain di's [domain NAME] section, or NULL. */
static const struct domain_conf *dom_conf(const struct resolver *r, size_t di)
{
	return di < r->c->nlocal_domains ? route_domain_conf(r->c, r->c->local_domains[di]) : NULL;
}

/* The table's answer as a local status: LOCAL_OK for yes. */
static enum local_status table_status(enum sqlmap_answer a)
{
	switch (a) {
	case SQLMAP_YES:
		return LOCAL_OK;
	case SQLMAP_WAIT:
		return LOCAL_PENDING;
	case SQLMAP_FAIL:
		return LOCAL_TEMPFAIL;
	default:
		return LOCAL_UNKNOWN;
	}
}

/*
 * The index of domain (see dom_name) into *di: LOCAL_OK when it is local
 * (local_domains first, then the domain table), LOCAL_UNKNOWN when it is
 * not, LOCAL_PENDING or LOCAL_TEMPFAIL when the table cannot say yet.
 */
static enum local_status dom_index(struct resolver *r, const char *domain, size_t *di)
{
	long i = route_local_index(r->c, domain);
	enum local_status st;

	if (i >= 0) {
		*di = (size_t)i;
		return LOCAL_OK;
	}
	for (size_t k = 0; k < r->nextra; k++)
		if (strcasecmp(r->extra[k], domain) == 0) {
			*di = r->c->nlocal_domains + k;
			return LOCAL_OK;
		}
	st = table_status(sqlmap_get(r->ask, SQLMAP_DOMAIN, NULL, domain, NULL, NULL));
	if (st != LOCAL_OK)
		return st;
	r->extra = xrealloc(r->extra, (r->nextra + 1) * sizeof(*r->extra));
	r->extra[r->nextra] = xstrdup_lower(domain);
	*di = r->c->nlocal_domains + r->nextra++;
	return LOCAL_OK;
}

/* The local part without its subaddress, into base (same size as name). */
static void strip_subaddress(const struct conf *c, const char *name, char *base, size_t size)
{
	const char *delim = c->recipient_delimiter != NULL ? c->recipient_delimiter : "+";
	size_t len = strlen(name), at = *delim != '\0' ? strcspn(name, delim) : len;

	if (at == 0 || at >= len) /* "+tag" alone is a name, not a subaddress */
		at = len;
	if (at >= size)
		at = size - 1;
	memcpy(base, name, at);
	base[at] = '\0';
}

/* See local.h. */
bool local_part_fold(const struct conf *c, const char *local, char *full, char *base, size_t size)
{
	if (!aliases_fold_local(local, full, size) || full[0] == '\0' || strchr(full, '@') != NULL)
		return false;
	strip_subaddress(c, full, base, size);
	return true;
}

/* "name" when domain is the recipient's, else "name@domain", escaped. */
static void show_name(const struct resolver *r, const char *name, size_t di, char *buf, size_t size)
{
	char tmp[LOCAL_KEY_MAX];

	if (di == r->top)
		snprintf(tmp, sizeof(tmp), "%s", name);
	else
		snprintf(tmp, sizeof(tmp), "%s@%s", name, dom_name(r, di));
	escape_text(tmp, strlen(tmp), buf, size);
}

/* "a -> b": the aliases being expanded, escaped; "" at the top. */
static void chain_text(const struct resolver *r, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->depth; i++) {
		int n = snprintf(buf + o, size - o, "%s%s", i == 0 ? "" : " -> ", r->shown[i]);
		if (n < 0 || (size_t)n >= size - o)
			return; /* cut: the start of the chain is the useful part */
		o += (size_t)n;
	}
}

/* " (via a -> b)", or "" at the top. */
static void via_text(const struct resolver *r, char *buf, size_t size)
{
	char chain[480];

	chain_text(r, chain, sizeof(chain));
	if (r->depth == 0)
		buf[0] = '\0';
	else
		snprintf(buf, size, " (via %s)", chain);
}

/* why = "WHAT name@domain (via a -> b)", escaped. */
static void why_name(struct resolver *r, const char *what, const char *name, size_t di)
{
	char shown[LOCAL_KEY_MAX], via[512];

	show_name(r, name, di, shown, sizeof(shown));
	via_text(r, via, sizeof(via));
	if (strchr(shown, '@') == NULL)
		set_why(r, "%s %s@%s%s", what, shown, dom_name(r, di), via);
	else
		set_why(r, "%s %s%s", what, shown, via);
}

/* Is this target already in the list?  Mailboxes, commands and files are
 * normalized and compare exactly; remote addresses compare with the
 * domain's case ignored. */
static bool target_seen(const struct local_targets *out, const char *addr, bool local)
{
	for (size_t i = 0; i < out->n; i++) {
		const char *a = out->t[i].addr, *at1, *at2;

		if (out->t[i].local != local)
			continue;
		if (local) {
			if (strcmp(a, addr) == 0)
				return true;
			continue;
		}
		at1 = unquoted_rchr(a, '@');
		at2 = unquoted_rchr(addr, '@');
		if (at1 != NULL && at2 != NULL && at1 - a == at2 - addr &&
		    strncmp(a, addr, (size_t)(at1 - a)) == 0 && strcasecmp(at1, at2) == 0)
			return true;
		if ((at1 == NULL || at2 == NULL) && strcmp(a, addr) == 0)
			return true;
	}
	return false;
}

/* Add a final target unless it is there already (by_table: a mailbox of
 * a domain that is local by the domain table). */
static void target_add(struct resolver *r, const char *addr, bool local, bool by_table)
{
	struct local_targets *out = r->out;

	if (target_seen(out, addr, local))
		return;
	out->t = xrealloc(out->t, (out->n + 1) * sizeof(*out->t));
	out->t[out->n].addr = xstrdup(addr);
	out->t[out->n].local = local;
	out->t[out->n].by_table = by_table;
	out->n++;
}

/* Does name need quotes to be a local part (RFC 5321 Dot-string)? */
static bool needs_quotes(const char *name)
{
	bool dot = true; /* the previous character was a dot, or the start */

	for (const char *p = name; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '.') {
			if (dot)
				return true;
			dot = true;
			continue;
		}
		dot = false;
		if (ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL)
			continue;
		return true;
	}
	return dot; /* empty, or a trailing dot */
}

/*
 * Add the mailbox "<name@domain>" (name folded already).  A mailbox whose
 * route is a Maildir (the domain has no lmtp) needs a directory for the
 * name: the route delivery takes (route_rcpt, which expands mailbox_path)
 * must have one, else LOCAL_BAD_MAILBOX (refused at RCPT, never accepted
 * and bounced).
 */
static enum local_status mailbox_add(struct resolver *r, const char *name, size_t di)
{
	char addr[2 * LOCAL_KEY_MAX + 8];
	char *o = addr + 1;
	const char *dom = dom_name(r, di);
	struct route rt;

	addr[0] = '<';
	if (needs_quotes(name)) {
		*o++ = '"';
		for (const char *p = name; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	} else {
		o = stpcpy(o, name);
	}
	snprintf(o, sizeof(addr) - (size_t)(o - addr), "@%s>", dom); /* fits: sized above */
	route_rcpt_local(r->c, addr, &rt);
	if (rt.transport == ROUTE_MAILDIR && rt.mailbox[0] == '\0') {
		why_name(r, "no valid mailbox path for", name, di);
		return LOCAL_BAD_MAILBOX;
	}
	target_add(r, addr, true, di >= r->c->nlocal_domains);
	return LOCAL_OK;
}

/* Is user@<any form of domain di> a user of the users file? */
struct nocase_find {
	const char *name;
	bool found;
};

/* userdb_each callback: a name equal to want, ignoring ASCII case. */
static void nocase_cb(const char *user, void *arg)
{
	struct nocase_find *f = arg;

	if (!f->found && strcasecmp(user, f->name) == 0)
		f->found = true;
}

/* Is name a user, ignoring case (local parts of mailboxes are)? */
static bool user_exists(const struct userdb *db, const char *name)
{
	struct nocase_find f = {name, false};

	if (userdb_exists(db, name))
		return true;
	userdb_each(db, nocase_cb, &f);
	return f.found;
}

static bool user_in_domain(const struct resolver *r, const char *user, size_t di)
{
	const char *forms[3];
	char buf[LOCAL_KEY_MAX], *lc = xstrdup_lower(dom_name(r, di));
	bool found = false;

	forms[0] = dom_name(r, di);
	forms[1] = lc;
	forms[2] = dom_ascii(r, di);
	for (size_t i = 0; i < 3 && !found; i++) {
		if (forms[i] == NULL || (i > 0 && strcmp(forms[i], forms[i - 1]) == 0))
			continue;
		if (xsnprintf_ok(buf, sizeof(buf), "%s@%s", user, forms[i]))
			found = user_exists(r->users, buf);
	}
	free(lc);
	return found;
}

/*
 * Is there a mailbox called name (folded) in domain di?  plain is the same
 * name as written, when it differs only by case: the users file is exact,
 * so "Alice" there is found as "Alice" too.  The files first, then the
 * mailbox table: LOCAL_OK, LOCAL_UNKNOWN, or the table's LOCAL_PENDING /
 * LOCAL_TEMPFAIL.
 */
static enum local_status mailbox_exists(struct resolver *r, const char *name, const char *plain,
					size_t di)
{
	const struct domain_conf *dc = dom_conf(r, di);

	if (strcmp(name, "postmaster") == 0 || strcmp(name, "abuse") == 0)
		return LOCAL_OK;
	if (r->users != NULL) {
		if (user_exists(r->users, name) || user_in_domain(r, name, di))
			return LOCAL_OK;
		if (plain != NULL && strcmp(plain, name) != 0 &&
		    (user_exists(r->users, plain) || user_in_domain(r, plain, di)))
			return LOCAL_OK;
	}
	for (size_t i = 0; dc != NULL && i < dc->nmailboxes; i++)
		if (strcmp(dc->mailboxes[i], "*") == 0 || strcasecmp(dc->mailboxes[i], name) == 0)
			return LOCAL_OK; /* "*": every name is a mailbox of its own */
	if (dc != NULL && dc->catch_all != NULL && strcasecmp(dc->catch_all, name) == 0)
		return LOCAL_OK;
	return table_status(sqlmap_get(r->ask, SQLMAP_MAILBOX, name, dom_name(r, di), NULL, NULL));
}

/*
 * The alias table's targets for name@domain di, into a list the resolver
 * keeps: each row may hold several, separated by commas or spaces (as
 * postfixadmin's goto column does).  A target that is the alias's own
 * address means its mailbox ("\\name"): "alice@x -> alice@x, bob@y" keeps
 * a copy for alice, as in Postfix.  NULL with *st LOCAL_UNKNOWN when the
 * table has no such alias, or its LOCAL_PENDING / LOCAL_TEMPFAIL.
 */
static const char *const *alias_table(struct resolver *r, const char *name, size_t di, size_t *n,
				      enum local_status *st)
{
	const char *const *rows;
	const char *dom = dom_name(r, di);
	size_t nrows, first = r->nowned;

	*st = table_status(sqlmap_get(r->ask, SQLMAP_ALIAS, name, dom, &rows, &nrows));
	if (*st != LOCAL_OK)
		return NULL;
	for (size_t i = 0; i < nrows; i++) {
		char *copy = xstrdup(rows[i]), *tok, *save = NULL;

		for (tok = strtok_r(copy, ", \t\r\n", &save); tok != NULL;
		     tok = strtok_r(NULL, ", \t\r\n", &save)) {
			const char *at = unquoted_rchr(tok, '@');
			char *t;

			if (at != NULL && (size_t)(at - tok) == strlen(name) &&
			    strncasecmp(tok, name, (size_t)(at - tok)) == 0 &&
			    strcasecmp(at + 1, dom) == 0) {
				t = xmalloc(strlen(name) + 2);
				t[0] = '\\';
				strcpy(t + 1, name);
			} else {
				t = xstrdup(tok);
			}
			r->owned = xrealloc(r->owned, (r->nowned + 1) * sizeof(*r->owned));
			r->owned[r->nowned++] = t;
		}
		free(copy);
	}
	*n = r->nowned - first;
	if (*n == 0) { /* rows of nothing but separators: no alias */
		*st = LOCAL_UNKNOWN;
		return NULL;
	}
	return (const char *const *)r->owned + first;
}

/* The targets of the alias name (folded) in domain di: "name@domain" in
 * either form of the domain, then "name", in the aliases file; then the
 * alias table.  NULL when there is none, with *st LOCAL_UNKNOWN, or
 * LOCAL_PENDING / LOCAL_TEMPFAIL when the table cannot say yet. */
static const char *const *alias_find(struct resolver *r, const char *name, size_t di, size_t *n,
				     enum local_status *st)
{
	const char *forms[2] = {dom_name(r, di), dom_ascii(r, di)};
	const char *const *t;
	char key[LOCAL_KEY_MAX];

	*n = 0;
	*st = LOCAL_UNKNOWN;
	for (size_t i = 0; r->al != NULL && i < 2; i++)
		if (forms[i] != NULL && xsnprintf_ok(key, sizeof(key), "%s@%s", name, forms[i]) &&
		    (t = aliases_get(r->al, key, n)) != NULL)
			return t;
	if (r->al != NULL && (t = aliases_get(r->al, name, n)) != NULL)
		return t;
	return alias_table(r, name, di, n, st);
}

static enum local_status resolve(struct resolver *r, const char *local, size_t di);

/* A table could not answer (st: LOCAL_PENDING or LOCAL_TEMPFAIL): why
 * says so, and st goes up unchanged. */
static enum local_status table_failed(struct resolver *r, enum local_status st)
{
	if (st == LOCAL_PENDING)
		set_why(r, "lookups pending");
	else
		set_why(r, "%s",
			sqlmap_ask_error(r->ask)[0] ? sqlmap_ask_error(r->ask)
						    : "a lookup table failed");
	return st;
}

/* Resolve one target of an alias being expanded in domain di. */
static enum local_status target_resolve(struct resolver *r, const char *t, size_t di)
{
	char via[512], shown[160], local[LOCAL_KEY_MAX];
	const char *at;
	size_t dj;
	enum local_status st;

	if (t[0] == '|' || t[0] == '/') { /* no command or file delivery: refused */
		bool cmd = t[0] == '|';

		escape_text(t, strlen(t), shown, sizeof(shown));
		via_text(r, via, sizeof(via));
		set_why(r, "%s target \"%s\" refused%s: [delivery] %s is off",
			cmd ? "command" : "file", shown, via,
			cmd ? "alias_commands" : "alias_files");
		return LOCAL_REFUSED;
	}
	if (t[0] == '\\') { /* the mailbox itself, no aliases */
		char name[LOCAL_NAME_MAX];

		st = LOCAL_UNKNOWN;
		if (aliases_fold_local(t + 1, name, sizeof(name)) &&
		    (st = mailbox_exists(r, name, t + 1, di)) == LOCAL_OK)
			return mailbox_add(r, name, di);
		if (st != LOCAL_UNKNOWN)
			return table_failed(r, st);
		escape_text(t, strlen(t), shown, sizeof(shown));
		via_text(r, via, sizeof(via));
		set_why(r, "no such mailbox %s@%s%s", shown, dom_name(r, di), via);
		return LOCAL_UNKNOWN;
	}
	at = unquoted_rchr(t, '@');
	if (at == NULL)
		return resolve(r, t, di);
	st = dom_index(r, at + 1, &dj);
	if (st == LOCAL_PENDING || st == LOCAL_TEMPFAIL)
		return table_failed(r, st);
	if (st != LOCAL_OK) { /* remote: final */
		char addr[LOCAL_KEY_MAX + 2];

		if (!xsnprintf_ok(addr, sizeof(addr), "<%s>", t)) {
			escape_text(t, strlen(t), shown, sizeof(shown));
			set_why(r, "address too long: %s", shown);
			return LOCAL_UNKNOWN;
		}
		target_add(r, addr, false, false);
		return LOCAL_OK;
	}
	if ((size_t)(at - t) >= sizeof(local))
		return LOCAL_UNKNOWN; /* the parser allows no such target */
	memcpy(local, t, (size_t)(at - t));
	local[at - t] = '\0';
	return resolve(r, local, dj);
}

/* Have the aliases of key been expanded in full already? */
static bool done_has(const struct resolver *r, const char *key)
{
	for (size_t i = 0; i < r->ndone; i++)
		if (strcmp(r->done[i], key) == 0)
			return true;
	return false;
}

/* Enter the alias name (folded; shown as reached, from) of domain di:
 * LOCAL_OK when it may be expanded (pushed), else a loop with why set. */
static enum local_status alias_push(struct resolver *r, const char *name, const char *from,
				    size_t di)
{
	char key[LOCAL_KEY_MAX], shown[LOCAL_KEY_MAX], via[512];

	snprintf(key, sizeof(key), "%s@%s", name, dom_name(r, di)); /* fits: sized */
	show_name(r, from, di, shown, sizeof(shown));
	for (size_t i = 0; i < r->depth; i++)
		if (strcmp(r->keys[i], key) == 0) {
			chain_text(r, via, sizeof(via));
			set_why(r, "alias loop: %s -> %s", via, shown);
			return LOCAL_LOOP;
		}
	if (r->depth >= LOCAL_DEPTH_MAX) {
		via_text(r, via, sizeof(via));
		set_why(r, "aliases nested deeper than %d levels%s -> %s", LOCAL_DEPTH_MAX, via,
			shown);
		return LOCAL_LOOP;
	}
	strcpy(r->keys[r->depth], key);
	strcpy(r->shown[r->depth], shown);
	r->depth++;
	return LOCAL_OK;
}

/* Expand the alias name (its targets t[0..n-1]) reached as from in
 * domain di. */
static enum local_status alias_expand(struct resolver *r, const char *name, const char *from,
				      size_t di, const char *const *t, size_t n)
{
	char key[LOCAL_KEY_MAX], shown[LOCAL_KEY_MAX];
	enum local_status st;

	snprintf(key, sizeof(key), "%s@%s", name, dom_name(r, di)); /* fits: sized */
	if (done_has(r, key))
		return LOCAL_OK;
	if ((st = alias_push(r, name, from, di)) != LOCAL_OK)
		return st;
	escape_text(name, strlen(name), shown, sizeof(shown));
	set_how(r, "alias %s", shown);
	for (size_t i = 0; i < n && st == LOCAL_OK; i++)
		st = target_resolve(r, t[i], di);
	r->depth--;
	if (st == LOCAL_OK) {
		r->done = xrealloc(r->done, (r->ndone + 1) * sizeof(*r->done));
		r->done[r->ndone++] = xstrdup(key);
	}
	return st;
}

/* Resolve the local part local (as written, maybe quoted) in domain di. */
static enum local_status resolve(struct resolver *r, const char *local, size_t di)
{
	char full[LOCAL_NAME_MAX], base[LOCAL_NAME_MAX], plain_base[LOCAL_NAME_MAX];
	char shown[LOCAL_KEY_MAX];
	const char *plain = local[0] != '"' ? local : NULL; /* as written, unquoted */
	const struct domain_conf *dc;
	const char *const *t;
	size_t n;
	enum local_status st;

	if (!local_part_fold(r->c, local, full, base, sizeof(full))) {
		escape_text(local, strlen(local), shown, sizeof(shown));
		set_why(r, "bad local part \"%s\"", shown);
		return LOCAL_UNKNOWN;
	}
	if (plain != NULL)
		strip_subaddress(r->c, plain, plain_base, sizeof(plain_base));
	if ((t = alias_find(r, full, di, &n, &st)) != NULL)
		return alias_expand(r, full, full, di, t, n);
	if (st != LOCAL_UNKNOWN)
		return table_failed(r, st);
	if (strcmp(base, full) != 0) {
		if ((t = alias_find(r, base, di, &n, &st)) != NULL)
			return alias_expand(r, base, full, di, t, n);
		if (st != LOCAL_UNKNOWN)
			return table_failed(r, st);
	}
	if ((st = mailbox_exists(r, full, plain, di)) == LOCAL_OK) {
		set_how(r, "mailbox");
		return mailbox_add(r, full, di);
	}
	if (st != LOCAL_UNKNOWN)
		return table_failed(r, st);
	if (strcmp(base, full) != 0) {
		st = mailbox_exists(r, base, plain ? plain_base : NULL, di);
		if (st == LOCAL_OK) {
			set_how(r, "mailbox");
			return mailbox_add(r, base, di);
		}
		if (st != LOCAL_UNKNOWN)
			return table_failed(r, st);
	}
	dc = dom_conf(r, di);
	if (dc != NULL && dc->catch_all != NULL && !r->in_catch_all) {
		escape_text(dc->catch_all, strlen(dc->catch_all), shown, sizeof(shown));
		set_how(r, "catch_all %s", shown);
		r->in_catch_all = true;
		st = resolve(r, dc->catch_all, di);
		r->in_catch_all = false;
		return st;
	}
	why_name(r, "no such user", full, di);
	return LOCAL_UNKNOWN;
}

/* Start a resolution into out. */
static void resolver_init(struct resolver *r, const struct conf *c, const struct userdb *users,
			  const struct aliases *al, struct sqlmap_ask *ask, size_t top,
			  struct local_targets *out, char *why, size_t whysz)
{
	memset(r, 0, sizeof(*r));
	r->c = c;
	r->users = users;
	r->al = al;
	r->ask = ask;
	r->top = top;
	r->out = out;
	r->why = why;
	r->whysz = whysz;
	out->t = NULL;
	out->n = 0;
	if (whysz > 0)
		why[0] = '\0';
}

/* Free what a resolution kept. */
static void resolver_done(struct resolver *r)
{
	for (size_t i = 0; i < r->ndone; i++)
		free(r->done[i]);
	free(r->done);
	for (size_t i = 0; i < r->nextra; i++)
		free(r->extra[i]);
	free(r->extra);
	for (size_t i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	free(r->owned);
}

/* See local.h. */
enum local_status local_resolve(const struct conf *c, const struct userdb *users,
				const struct aliases *al, struct sqlmap_ask *ask,
				const char *local_part, const char *domain,
				struct local_targets *out, char *why, size_t whysz)
{
	struct resolver r;
	enum local_status st;
	char shown[LOCAL_KEY_MAX];
	size_t di;

	resolver_init(&r, c, users, al, ask, 0, out, why, whysz);
	st = dom_index(&r, domain, &di);
	if (st == LOCAL_OK) {
		r.top = di;
		st = resolve(&r, local_part, di);
	} else if (st == LOCAL_UNKNOWN) {
		escape_text(domain, strlen(domain), shown, sizeof(shown));
		set_why(&r, "domain %s is not local", shown);
	} else {
		table_failed(&r, st);
	}
	resolver_done(&r);
	if (st != LOCAL_OK)
		local_targets_free(out);
	return st;
}

/* See local.h. */
enum local_status local_domain(const struct conf *c, struct sqlmap_ask *ask, const char *domain,
			       bool *by_table)
{
	enum sqlmap_answer a;

	*by_table = false;
	if (route_is_local(c, domain))
		return LOCAL_OK;
	a = sqlmap_get(ask, SQLMAP_DOMAIN, NULL, domain, NULL, NULL);
	*by_table = a == SQLMAP_YES;
	return table_status(a);
}

/* See local.h. */
void local_targets_free(struct local_targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->t[i].addr);
	free(t->t);
	t->t = NULL;
	t->n = 0;
}

/* See local.h. */
const char *local_status_name(enum local_status s)
{
	switch (s) {
	case LOCAL_OK:
		return "ok";
	case LOCAL_UNKNOWN:
		return "unknown";
	case LOCAL_LOOP:
		return "loop";
	case LOCAL_REFUSED:
		return "refused";
	case LOCAL_BAD_MAILBOX:
		return "bad_mailbox";
	case LOCAL_PENDING:
		return "pending";
	case LOCAL_TEMPFAIL:
		return "tempfail";
	}
	return "?";
}

struct check {
	const struct conf *c;
	const struct userdb *users;
	const struct aliases *al;
	void (*report)(const char *problem, void *arg);
	void *arg;
	size_t problems;
};

/* Report one problem of the entry name (line) in domain dom (NULL: in
 * every local domain it applies to). */
static void check_report(struct check *k, unsigned line, const char *name, const char *dom,
			 const char *why)
{
	char buf[1024], shown[LOCAL_KEY_MAX];

	escape_text(name, strlen(name), shown, sizeof(shown));
	snprintf(buf, sizeof(buf), "%s:%u: %s%s%s: %s", aliases_path(k->al), line, shown,
		 dom != NULL ? "@" : "", dom != NULL ? dom : "", why);
	k->report(buf, k->arg);
	k->problems++;
}

/* Resolve the target t of the alias name (folded local part) as its
 * expansion in domain di would; why says what went wrong. */
static enum local_status check_target(const struct check *k, const char *name, const char *t,
				      size_t di, char *why, size_t whysz)
{
	struct local_targets out;
	struct resolver r;
	enum local_status st;

	resolver_init(&r, k->c, k->users, k->al, NULL, di, &out, why, whysz);
	st = alias_push(&r, name, name, di);
	if (st == LOCAL_OK)
		st = target_resolve(&r, t, di);
	resolver_done(&r);
	local_targets_free(&out);
	return st;
}

/*
 * aliases_each callback: check every target of one entry in each domain
 * the entry applies to.  A problem that is the same in all of them (a loop,
 * a refused command) is one line without a domain; the rest (an unknown
 * user, whose address names the domain) get one line each.
 */
static void check_entry(const char *name, const char *const *t, size_t n, unsigned line, void *arg)
{
	struct check *k = arg;
	const char *at = strrchr(name, '@'); /* folded names hold at most one '@' */
	size_t nd = k->c->nlocal_domains, napply = 0;
	char local[LOCAL_KEY_MAX], (*whys)[512];
	bool *apply, *failed;
	long di;

	if (at != NULL) {
		snprintf(local, sizeof(local), "%.*s", (int)(at - name), name);
		di = route_local_index(k->c, at + 1);
		if (di < 0) {
			check_report(k, line, local, at + 1,
				     "the domain is not one of local_domains: never used");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			char why[512];

			if (check_target(k, local, t[i], (size_t)di, why, sizeof(why)) != LOCAL_OK)
				check_report(k, line, local, at + 1, why);
		}
		return;
	}
	whys = xcalloc(nd, sizeof(*whys));
	apply = xcalloc(nd, sizeof(*apply));
	failed = xcalloc(nd, sizeof(*failed));
	for (size_t d = 0; d < nd; d++) {
		struct resolver r;
		struct local_targets none;
		char why[8];
		size_t m;
		enum local_status st;

		/* where "name@domain" exists, it is checked as its own entry */
		resolver_init(&r, k->c, k->users, k->al, NULL, d, &none, why, sizeof(why));
		apply[d] = alias_find(&r, name, d, &m, &st) == t;
		napply += apply[d];
	}
	for (size_t i = 0; i < n; i++) {
		size_t nfailed = 0, first = nd;
		bool same = true;

		for (size_t d = 0; d < nd; d++) {
			failed[d] = apply[d] && check_target(k, name, t[i], d, whys[d],
							     sizeof(whys[d])) != LOCAL_OK;
			if (!failed[d])
				continue;
			nfailed++;
			if (first == nd)
				first = d;
			else if (strcmp(whys[first], whys[d]) != 0)
				same = false;
		}
		if (nfailed > 1 && nfailed == napply && same) {
			check_report(k, line, name, NULL, whys[first]);
			continue;
		}
		for (size_t d = 0; d < nd; d++)
			if (failed[d])
				check_report(k, line, name, k->c->local_domains[d], whys[d]);
	}
	free(whys);
	free(apply);
	free(failed);
}

/* See local.h. */
size_t local_check_aliases(const struct conf *c, const struct userdb *users,
			   const struct aliases *al, void (*report)(const char *problem, void *arg),
			   void *arg)
{
	struct check k = {c, users, al, report, arg, 0};

	aliases_each(al, check_entry, &k);
	return k.problems;
}
