/*
 * psl.c - the Public Suffix List as an open-addressing hash set of its
 * rules as written ("com", "*.ck", "!www.ck"), lower case (see psl.h).
 */
#include "psl.h"

#include <ctype.h>
#include <errno.h>
#include <idn2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define PSL_LINE_MAX 512
#define PSL_LABELS_MAX 128
#define PSL_SLOTS (1u << 17) /* at least twice PSL_RULES_MAX: a power of two */

struct psl {
	char **slots;
	size_t nslots, count;
};

/* FNV-1a. */
static size_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return (size_t)h;
}

/* Is the rule s[0..n) in the set? */
static bool has(const struct psl *p, const char *s, size_t n)
{
	size_t i = hash(s, n) & (p->nslots - 1);

	while (p->slots[i]) {
		if (strlen(p->slots[i]) == n && memcmp(p->slots[i], s, n) == 0)
			return true;
		i = (i + 1) & (p->nslots - 1);
	}
	return false;
}

/* Add rule (copied) unless present; false when the set is full. */
static bool add(struct psl *p, const char *rule)
{
	size_t n = strlen(rule), i;

	if (has(p, rule, n))
		return true;
	if (p->count >= PSL_RULES_MAX || (p->count + 1) * 2 > p->nslots)
		return false;
	i = hash(rule, n) & (p->nslots - 1);
	while (p->slots[i])
		i = (i + 1) & (p->nslots - 1);
	p->slots[i] = xstrdup(rule);
	p->count++;
	return true;
}

/* Add a rule line's rule, and its A-label form when it has U-labels. */
static bool add_rule(struct psl *p, char *rule)
{
	bool ascii = true;

	for (char *c = rule; *c; c++) {
		if ((unsigned char)*c >= 0x80)
			ascii = false;
		else
			*c = (char)tolower((unsigned char)*c);
	}
	if (!add(p, rule))
		return false;
	if (!ascii) {
		const char *prefix = rule[0] == '!' ? "!" : strncmp(rule, "*.", 2) == 0 ? "*." : "";
		char *alabel = NULL, both[PSL_LINE_MAX + 8];

		if (idn2_to_ascii_8z(rule + strlen(prefix), &alabel, IDN2_NONTRANSITIONAL) ==
		    IDN2_OK) {
			bool ok = xsnprintf_ok(both, sizeof(both), "%s%s", prefix, alabel) &&
				  add(p, both);

			free(alabel);
			return ok;
		}
	}
	return true;
}

/* See psl.h. */
struct psl *psl_load(const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "r");
	struct psl *p;
	char line[PSL_LINE_MAX];

	if (f == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->nslots = PSL_SLOTS;
	p->slots = xcalloc(p->nslots, sizeof(*p->slots));
	while (fgets(line, sizeof(line), f)) {
		char *r = line;

		r[strcspn(r, " \t\r\n")] = '\0';
		if (r[0] == '\0' || strncmp(r, "//", 2) == 0)
			continue;
		if (!add_rule(p, r)) {
			snprintf(err, errsz, "%s: more than %d rules", path, PSL_RULES_MAX);
			fclose(f);
			psl_free(p);
			return NULL;
		}
	}
	fclose(f);
	if (p->count == 0) {
		snprintf(err, errsz, "%s: no rules", path);
		psl_free(p);
		return NULL;
	}
	return p;
}

/* See psl.h. */
void psl_free(struct psl *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nslots; i++)
		free(p->slots[i]);
	free(p->slots);
	free(p);
}

/* See psl.h. */
size_t psl_count(const struct psl *p)
{
	return p->count;
}

/* See psl.h. */
bool psl_org_domain(const struct psl *p, const char *name, char *out, size_t outsz)
{
	char lower[PSL_NAME_MAX + 1], rule[PSL_NAME_MAX + 3];
	size_t n = strlen(name), starts[PSL_LABELS_MAX], nl = 0, suffix = 1;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > PSL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	lower[n] = '\0';
	/* where each label starts; an empty label is no domain name */
	starts[nl++] = 0;
	for (size_t i = 0; i < n; i++)
		if (lower[i] == '.') {
			if (i + 1 == n || i == starts[nl - 1] || nl == PSL_LABELS_MAX)
				return false;
			starts[nl++] = i + 1;
		}
	/* an exception rule wins: its suffix is the rule less its first label */
	for (size_t k = nl; k >= 2; k--) {
		const char *s = lower + starts[nl - k];

		snprintf(rule, sizeof(rule), "!%s", s);
		if (has(p, rule, strlen(rule))) {
			suffix = k - 1;
			goto found;
		}
	}
	/* else the longest rule that matches, "*." covering one label */
	for (size_t k = nl; k > suffix; k--) {
		const char *s = lower + starts[nl - k];

		if (has(p, s, strlen(s)))
			suffix = k;
		else if (k >= 2) {
			snprintf(rule, sizeof(rule), "*.%s", lower + starts[nl - k + 1]);
			if (has(p, rule, strlen(rule)))
				suffix = k;
		}
	}
found : {
	size_t keep = suffix + 1 <= nl ? suffix + 1 : nl;
	const char *org = lower + starts[nl - keep];

	return strcpy_bounded(out, org, outsz);
}
}
