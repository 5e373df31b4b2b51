/*
 * dmarc.c - RFC 7489 policy discovery, identifier alignment and the
 * policy to apply (see dmarc.h).
 */
#include "dmarc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "psl.h"
#include "util.h"

#define DMARC_TAG_MAX 64 /* octets of a tag value looked at */

/* Set the reason, printf-style. */
static void why(struct dmarc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(struct dmarc *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->why, sizeof(d->why), fmt, ap);
	va_end(ap);
}

/* name lower-cased into out; false when it does not fit. */
static bool lower_into(const char *name, size_t n, char *out, size_t outsz)
{
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n >= outsz)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[n] = '\0';
	return true;
}

/* The organisational domain of name (name itself without a list). */
static void org_of(const struct dmarc *d, const char *name, char *out, size_t outsz)
{
	if (d->psl == NULL || !psl_org_domain(d->psl, name, out, outsz))
		strcpy_bounded(out, name, outsz);
}

/* The value of a policy tag, or -1 when it is not one. */
static int policy_value(const char *v)
{
	if (strcasecmp(v, "none") == 0)
		return DMARC_POLICY_NONE;
	if (strcasecmp(v, "quarantine") == 0)
		return DMARC_POLICY_QUARANTINE;
	if (strcasecmp(v, "reject") == 0)
		return DMARC_POLICY_REJECT;
	return -1;
}

/* See dmarc.h. */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r)
{
	size_t i = 0;
	int ntag = 0, p = -1, sp = -1;
	bool rua = false;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	while (i < len) {
		char name[DMARC_TAG_MAX + 1], value[DMARC_TAG_MAX + 1];
		size_t nn = 0, vn = 0, start, end;

		/* one tag: up to ';', trimmed; its name up to '=' */
		start = i;
		while (i < len && txt[i] != ';')
			i++;
		end = i;
		if (i < len)
			i++;
		while (start < end && isspace((unsigned char)txt[start]))
			start++;
		while (end > start && isspace((unsigned char)txt[end - 1]))
			end--;
		if (start == end)
			continue; /* an empty tag (a final ';') */
		while (start < end && txt[start] != '=' && !isspace((unsigned char)txt[start])) {
			if (nn < DMARC_TAG_MAX)
				name[nn++] = txt[start];
			start++;
		}
		name[nn] = '\0';
		while (start < end && isspace((unsigned char)txt[start]))
			start++;
		if (start == end || txt[start] != '=') {
			if (ntag == 0)
				return 0;
			continue; /* not a tag: ignored */
		}
		start++;
		while (start < end && isspace((unsigned char)txt[start]))
			start++;
		while (start < end && vn < DMARC_TAG_MAX)
			value[vn++] = txt[start++];
		value[vn] = '\0';
		if (ntag++ == 0) {
			if (strcmp(name, "v") != 0 || strcmp(value, "DMARC1") != 0)
				return 0;
			continue;
		}
		if (strcmp(name, "p") == 0) {
			p = policy_value(value);
		} else if (strcmp(name, "sp") == 0) {
			sp = policy_value(value);
		} else if (strcmp(name, "adkim") == 0) {
			r->strict_dkim = strcasecmp(value, "s") == 0;
		} else if (strcmp(name, "aspf") == 0) {
			r->strict_spf = strcasecmp(value, "s") == 0;
		} else if (strcmp(name, "pct") == 0) {
			uint64_t v;

			if (parse_u64(value, 0, 100, &v))
				r->pct = (unsigned)v;
		} else if (strcmp(name, "rua") == 0) {
			rua = vn > 0;
		}
	}
	if (ntag == 0)
		return 0;
	if (p < 0) {
		if (!rua)
			return -1;
		p = DMARC_POLICY_NONE;
	}
	r->p = (enum dmarc_policy)p;
	r->sp = sp < 0 ? r->p : (enum dmarc_policy)sp;
	return 1;
}

/* See dmarc.h. */
int dmarc_from_domain(const char *value, size_t len, char *out, size_t outsz)
{
	size_t i = 0, found = 0;

	while (i <= len) {
		/* one mailbox: up to a ',' outside quotes, comments and <> */
		char addr[DMARC_DOMAIN_MAX + 80];
		size_t an = 0, start = i;
		int depth = 0;
		bool quoted = false, angle = false, in_angle = false, toolong = false;

		for (; i < len; i++) {
			char c = value[i];

			if (quoted) {
				if (c == '\\')
					i++;
				else if (c == '"')
					quoted = false;
				continue;
			}
			if (depth > 0) {
				if (c == '\\')
					i++;
				else if (c == '(')
					depth++;
				else if (c == ')')
					depth--;
				continue;
			}
			if (c == '"') {
				quoted = true;
				if (!in_angle && !angle)
					an = 0; /* a display name */
				continue;
			}
			if (c == '(') {
				depth = 1;
				continue;
			}
			if (c == ',' && !in_angle)
				break;
			if (c == '<') {
				in_angle = angle = true;
				an = 0;
				continue;
			}
			if (c == '>') {
				in_angle = false;
				continue;
			}
			if (angle && !in_angle)
				continue;
			if (c == ':' && !in_angle) { /* a group's name */
				an = 0;
				continue;
			}
			if (c == ';' || isspace((unsigned char)c))
				continue;
			if (an + 1 < sizeof(addr))
				addr[an++] = c;
			else
				toolong = true;
		}
		addr[an] = '\0';
		i++; /* past the ',' (or the end) */
		(void)start;
		if (an == 0)
			continue;
		{
			char *at = strrchr(addr, '@');

			if (at == NULL || toolong)
				continue;
			if (++found > 1)
				return -1;
			if (!lower_into(at + 1, strlen(at + 1), out, outsz))
				return 0;
		}
	}
	return found ? 1 : 0;
}

/* See dmarc.h. */
void dmarc_init(struct dmarc *d, const struct psl *psl, const char *from, size_t len, bool spf_pass,
		const char *spf_domain)
{
	int rc;

	memset(d, 0, sizeof(*d));
	d->psl = psl;
	d->spf_pass = spf_pass;
	if (spf_domain)
		lower_into(spf_domain, strlen(spf_domain), d->spf_domain, sizeof(d->spf_domain));
	rc = dmarc_from_domain(from, len, d->from, sizeof(d->from));
	if (rc == 1 && strchr(d->from, '.') == NULL) {
		/* "localhost", a bare host name: no policy can be published for it */
		d->decided = true;
		d->result = DMARC_RESULT_NONE;
		why(d, "%s is not a domain DMARC applies to", d->from);
		return;
	}
	if (rc == 1) {
		org_of(d, d->from, d->org, sizeof(d->org));
		return;
	}
	d->from[0] = '\0';
	d->result = DMARC_RESULT_PERMERROR;
	why(d, rc < 0 ? "From: names more than one author" : "From: names no author domain");
}

/* See dmarc.h. */
void dmarc_add_dkim(struct dmarc *d, const char *domain)
{
	if (d->ndkim < DMARC_DKIM_MAX &&
	    lower_into(domain, strlen(domain), d->dkim[d->ndkim], sizeof(d->dkim[0])))
		d->ndkim++;
}

/* See dmarc.h. */
void dmarc_answer(struct dmarc *d, struct dns_answer *a)
{
	int k = d->answer[0] ? 1 : 0;

	if (d->answer[k] == NULL)
		d->answer[k] = dns_answer_ref(a);
}

/* See dmarc.h. */
void dmarc_free(struct dmarc *d)
{
	dns_answer_unref(d->answer[0]);
	dns_answer_unref(d->answer[1]);
	d->answer[0] = d->answer[1] = NULL;
}

/* The one DMARC record of an answer: 1 (into r), 0 none (or several, or
 * one without a policy), -1 a temporary failure. */
static int record_of(const struct dns_answer *a, struct dmarc_record *r)
{
	int n = 0;

	if (a->status == DNS_TEMPFAIL)
		return -1;
	for (size_t i = 0; i < a->n; i++) {
		struct dmarc_record one;
		int rc = dmarc_record_parse(a->rr[i].data, a->rr[i].len, &one);

		if (rc == 0)
			continue;
		if (++n > 1)
			return 0;
		if (rc < 0)
			return 0;
		*r = one;
	}
	return n == 1;
}

/* Is id aligned with the author's domain, strictly or relaxed? */
static bool aligned(const struct dmarc *d, const char *id, bool strict)
{
	char org[DMARC_DOMAIN_MAX + 1];

	if (id[0] == '\0')
		return false;
	if (strcmp(id, d->from) == 0)
		return true;
	if (strict)
		return false;
	org_of(d, id, org, sizeof(org));
	return strcmp(org, d->org) == 0;
}

/* See dmarc.h. */
bool dmarc_run(struct dmarc *d)
{
	int rc;

	d->need[0] = '\0';
	if (d->from[0] == '\0' || d->decided)
		return true; /* decided by dmarc_init */
	if (d->answer[0] == NULL) {
		snprintf(d->need, sizeof(d->need), "_dmarc.%s", d->from);
		return false;
	}
	rc = record_of(d->answer[0], &d->record);
	d->at_org = false;
	if (rc == 0 && strcmp(d->org, d->from) != 0) {
		if (d->answer[1] == NULL) {
			snprintf(d->need, sizeof(d->need), "_dmarc.%s", d->org);
			return false;
		}
		rc = record_of(d->answer[1], &d->record);
		d->at_org = true;
	}
	if (rc < 0) {
		d->result = DMARC_RESULT_TEMPERROR;
		why(d, "DNS failure for the DMARC record of %s", d->at_org ? d->org : d->from);
		return true;
	}
	if (rc == 0) {
		d->result = DMARC_RESULT_NONE;
		why(d, "%s publishes no DMARC policy", d->from);
		return true;
	}
	d->spf_aligned = d->spf_pass && aligned(d, d->spf_domain, d->record.strict_spf);
	for (size_t i = 0; i < d->ndkim && !d->dkim_aligned; i++)
		d->dkim_aligned = aligned(d, d->dkim[i], d->record.strict_dkim);
	d->policy = d->at_org && strcmp(d->from, d->org) != 0 ? d->record.sp : d->record.p;
	if (d->spf_aligned || d->dkim_aligned) {
		d->result = DMARC_RESULT_PASS;
		d->disposition = DMARC_POLICY_NONE;
		why(d, "%s aligned with %s", d->dkim_aligned ? "DKIM" : "SPF", d->from);
		return true;
	}
	d->result = DMARC_RESULT_FAIL;
	d->disposition = d->policy;
	if (d->record.pct < 100 && d->policy != DMARC_POLICY_NONE) {
		unsigned char r[2];

		random_octets(r, sizeof(r));
		if ((unsigned)((r[0] << 8 | r[1]) % 100) >= d->record.pct)
			d->disposition = d->policy - 1; /* sampled out: the next milder one */
	}
	why(d, "neither SPF nor DKIM aligned with %s", d->from);
	return true;
}

/* See dmarc.h. */
const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE:
		return "none";
	case DMARC_RESULT_PASS:
		return "pass";
	case DMARC_RESULT_FAIL:
		return "fail";
	case DMARC_RESULT_TEMPERROR:
		return "temperror";
	case DMARC_RESULT_PERMERROR:
		break;
	}
	return "permerror";
}

/* See dmarc.h. */
const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		break;
	}
	return "reject";
}
