/*
 * spf.c - check_host() of RFC 7208, replayed over the answers given (see
 * spf.h).
 *
 * A record is selected (exactly one TXT record starting "v=spf1"), parsed
 * whole into terms (any syntax error anywhere: permerror, §4.6), then its
 * mechanisms are tried in order; the first that matches gives its
 * qualifier's result.  Without a match, redirect= hands the question to
 * another domain; else the result is neutral.  exp= is looked up only for
 * a fail, and only from the record that gave it (not through include).
 *
 * Each run counts the DNS-querying terms and void lookups afresh, in the
 * same order, so the limits hold whatever the number of runs.
 */
#include "spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "spf_internal.h"
#include "util.h"

#define SPF_VERSION "v=spf1"
#define SPF_VERSION_LEN 6

/* What evaluating a term or a record can end in, beyond a result. */
#define SPF_NEED (-1)

enum mech { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

struct term {
	enum spf_result qual; /* the result when it matches */
	enum mech mech;
	const char *spec; /* domain-spec, or NULL for the current domain */
	size_t speclen;
	int cidr4, cidr6; /* -1: none given */
	unsigned char net[16];
	const char *text; /* the whole term, for why */
	size_t textlen;
};

struct record {
	char *text; /* a copy of the record, NUL-terminated */
	struct term *terms;
	size_t n;
	const char *redirect, *exp;
	size_t redirect_len, exp_len;
};

/* What one run counts. */
struct run {
	unsigned terms, voids;
};

static const struct {
	const char *name;
	enum mech mech;
} mechs[] = {
	{"all", M_ALL}, {"include", M_INCLUDE}, {"a", M_A},     {"mx", M_MX},
	{"ptr", M_PTR}, {"ip4", M_IP4},         {"ip6", M_IP6}, {"exists", M_EXISTS},
};

/* Set the reason, printf-style. */
static void why(struct spf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(struct spf *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
}

/* name in the lookups' form: lower case, no final dot, into buf. */
static void lookup_key(const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n >= size)
		n = size - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[n] = '\0';
}

/* See spf_internal.h. */
const struct dns_answer *spf_get(struct spf *s, enum dns_type type, const char *name)
{
	static struct dns_answer too_many = {
		.refs = 1, .status = DNS_TEMPFAIL, .why = "too many lookups"};
	char key[SPF_DOMAIN_MAX + 2];

	lookup_key(name, key, sizeof(key));
	for (size_t i = 0; i < s->nlookups; i++)
		if (s->lookups[i].type == type && strcmp(s->lookups[i].name, key) == 0)
			return s->lookups[i].a;
	if (s->nlookups >= SPF_LOOKUPS_MAX)
		return &too_many; /* the limits keep this from happening */
	for (size_t i = 0; i < s->nneed; i++)
		if (s->need[i].type == type && strcmp(s->need[i].name, key) == 0)
			return NULL;
	if (s->nneed < SPF_NEED_MAX) {
		s->need[s->nneed].type = type;
		memcpy(s->need[s->nneed].name, key, strlen(key) + 1);
		s->nneed++;
	}
	return NULL;
}

/* See spf.h. */
void spf_answer(struct spf *s, enum dns_type type, const char *name, struct dns_answer *a)
{
	char key[SPF_DOMAIN_MAX + 2];

	lookup_key(name, key, sizeof(key));
	for (size_t i = 0; i < s->nlookups; i++)
		if (s->lookups[i].type == type && strcmp(s->lookups[i].name, key) == 0)
			return;
	if (s->nlookups >= SPF_LOOKUPS_MAX)
		return;
	if (s->lookups == NULL)
		s->lookups = xcalloc(SPF_LOOKUPS_MAX, sizeof(*s->lookups));
	s->lookups[s->nlookups].type = type;
	s->lookups[s->nlookups].name = xstrdup(key);
	s->lookups[s->nlookups].a = dns_answer_ref(a);
	s->nlookups++;
}

/* See spf_internal.h. */
bool spf_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (n < d || strncasecmp(name + n - d, domain, d) != 0)
		return false;
	return n == d || name[n - d - 1] == '.';
}

/* The reverse-lookup name of the client's address. */
static void reverse_name(const struct spf *s, char *buf, size_t size)
{
	size_t n = 0;

	if (s->family == AF_INET) {
		snprintf(buf, size, "%u.%u.%u.%u.in-addr.arpa", s->ip[3], s->ip[2], s->ip[1],
			 s->ip[0]);
		return;
	}
	for (int i = 15; i >= 0 && n + 4 < size; i--)
		n += (size_t)snprintf(buf + n, size - n, "%x.%x.", s->ip[i] & 15, s->ip[i] >> 4);
	snprintf(buf + n, size - n, "ip6.arpa");
}

/* The address lookup type that fits the client. */
static enum dns_type addr_type(const struct spf *s)
{
	return s->family == AF_INET ? DNS_T_A : DNS_T_AAAA;
}

/* Does a hold the client's address, within the prefix? */
static bool addr_match(const struct spf *s, const struct dns_answer *a, int cidr4, int cidr6)
{
	int bits = s->family == AF_INET ? (cidr4 < 0 ? 32 : cidr4) : (cidr6 < 0 ? 128 : cidr6);
	size_t len = s->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < a->n; i++) {
		const unsigned char *r = (const unsigned char *)a->rr[i].data;
		int b = bits;
		size_t k = 0;

		if (a->rr[i].len != len)
			continue;
		while (b >= 8 && r[k] == s->ip[k]) {
			b -= 8;
			k++;
		}
		if (b == 0 || (b < 8 && ((r[k] ^ s->ip[k]) & (0xff << (8 - b)) & 0xff) == 0))
			return true;
	}
	return false;
}

/* See spf_internal.h. */
int spf_validated(struct spf *s, bool (*each)(void *arg, const char *name), void *arg)
{
	char rev[80];
	const struct dns_answer *ptr;
	size_t n;
	bool missing = false;

	reverse_name(s, rev, sizeof(rev));
	if ((ptr = spf_get(s, DNS_T_PTR, rev)) == NULL)
		return 0;
	if (ptr->status != DNS_OK)
		return 1;
	n = ptr->n < SPF_PTR_MAX ? ptr->n : SPF_PTR_MAX; /* the rest are ignored */
	for (size_t i = 0; i < n; i++)
		if (spf_get(s, addr_type(s), ptr->rr[i].data) == NULL)
			missing = true;
	if (missing)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct dns_answer *a = spf_get(s, addr_type(s), ptr->rr[i].data);

		if (a->status == DNS_OK && addr_match(s, a, -1, -1) && each(arg, ptr->rr[i].data))
			break;
	}
	return 1;
}

/* Is t[0..n) a toplabel (RFC 7208 §7.1): letters, digits and inner
 * hyphens, not all digits? */
static bool toplabel(const char *t, size_t n)
{
	bool alpha = false;

	if (n == 0 || t[0] == '-' || t[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (isalpha((unsigned char)t[i]) || t[i] == '-')
			alpha = true;
		else if (!isdigit((unsigned char)t[i]))
			return false;
	}
	return alpha;
}

/* Is spec[0..n) a domain-spec: a macro-string ending in "." toplabel
 * ["."] or in a macro-expand? */
static bool domain_spec_ok(const char *spec, size_t n)
{
	size_t end = n, dot;

	if (n == 0 || spf_expand(NULL, spec, n, NULL, false, NULL, 1) < 0)
		return false;
	if (spec[n - 1] == '}')
		return true;
	if (spec[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && spec[dot - 1] != '.'; dot--)
		;
	if (dot == 0)
		return false;
	return toplabel(spec + dot, end - dot);
}

/* Parse "/N" with no leading zero, N <= max; -1 when it is not that. */
static int cidr_parse(const char *p, size_t n, int max)
{
	int v = 0;

	if (n < 2 || p[0] != '/' || (p[1] == '0' && n > 2) || n > 4)
		return -1;
	for (size_t i = 1; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v <= max ? v : -1;
}

/* Split a trailing dual-cidr-length off rest[0..*n) for "a" and "mx". */
static bool dual_cidr(const char *rest, size_t *n, int *c4, int *c6)
{
	size_t i = *n;

	/* "//N" at the end */
	while (i > 0 && isdigit((unsigned char)rest[i - 1]))
		i--;
	if (i >= 2 && i < *n && rest[i - 1] == '/' && rest[i - 2] == '/') {
		if ((*c6 = cidr_parse(rest + i - 1, *n - i + 1, 128)) < 0)
			return false;
		*n = i - 2;
	}
	i = *n;
	while (i > 0 && isdigit((unsigned char)rest[i - 1]))
		i--;
	if (i >= 1 && i < *n && rest[i - 1] == '/') {
		if ((*c4 = cidr_parse(rest + i - 1, *n - i + 1, 32)) < 0)
			return false;
		*n = i - 1;
	}
	return true;
}

/* Is name a modifier name: ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )? */
static bool modifier_name(const char *t, size_t n)
{
	if (n == 0 || !isalpha((unsigned char)t[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '-' && t[i] != '_' && t[i] != '.')
			return false;
	return true;
}

/* Parse one modifier name=value into r; false on a syntax error. */
static bool parse_modifier(struct spf *s, struct record *r, const char *t, size_t n, size_t eq)
{
	const char *v = t + eq + 1;
	size_t vn = n - eq - 1;

	if (eq == 8 && strncasecmp(t, "redirect", 8) == 0) {
		if (r->redirect || !domain_spec_ok(v, vn))
			return why(s, "bad redirect= in \"%.*s\"", (int)n, t), false;
		r->redirect = v;
		r->redirect_len = vn;
	} else if (eq == 3 && strncasecmp(t, "exp", 3) == 0) {
		if (r->exp || !domain_spec_ok(v, vn))
			return why(s, "bad exp= in \"%.*s\"", (int)n, t), false;
		r->exp = v;
		r->exp_len = vn;
	} else if (spf_expand(NULL, v, vn, NULL, false, NULL, 1) < 0) {
		return why(s, "bad modifier \"%.*s\"", (int)n, t), false;
	}
	return true;
}

/* Parse one mechanism into tm; false on a syntax error. */
static bool parse_mechanism(struct spf *s, struct term *tm, const char *t, size_t n)
{
	const char *p = t, *end = t + n, *rest;
	size_t namelen, restlen;
	bool found = false;

	tm->qual = SPF_RESULT_PASS;
	if (p < end && strchr("+-~?", *p)) {
		tm->qual = *p == '+'   ? SPF_RESULT_PASS
			   : *p == '-' ? SPF_RESULT_FAIL
			   : *p == '~' ? SPF_RESULT_SOFTFAIL
				       : SPF_RESULT_NEUTRAL;
		p++;
	}
	for (rest = p; rest < end && *rest != ':' && *rest != '/'; rest++)
		;
	namelen = (size_t)(rest - p);
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == namelen &&
		    strncasecmp(p, mechs[i].name, namelen) == 0) {
			tm->mech = mechs[i].mech;
			found = true;
		}
	if (!found)
		return why(s, "unknown mechanism \"%.*s\"", (int)n, t), false;
	tm->text = t;
	tm->textlen = n;
	tm->cidr4 = tm->cidr6 = -1;
	restlen = (size_t)(end - rest);
	switch (tm->mech) {
	case M_ALL:
		if (restlen)
			goto bad;
		return true;
	case M_INCLUDE:
	case M_EXISTS:
		if (restlen < 2 || rest[0] != ':' || !domain_spec_ok(rest + 1, restlen - 1))
			goto bad;
		tm->spec = rest + 1;
		tm->speclen = restlen - 1;
		return true;
	case M_A:
	case M_MX:
	case M_PTR:
		if (tm->mech != M_PTR && !dual_cidr(rest, &restlen, &tm->cidr4, &tm->cidr6))
			goto bad;
		if (restlen == 0)
			return true;
		if (rest[0] != ':' || !domain_spec_ok(rest + 1, restlen - 1))
			goto bad;
		tm->spec = rest + 1;
		tm->speclen = restlen - 1;
		return true;
	case M_IP4:
	case M_IP6: {
		int fam = tm->mech == M_IP4 ? AF_INET : AF_INET6, max = fam == AF_INET ? 32 : 128;
		char addr[INET6_ADDRSTRLEN + 1];
		const char *slash;
		size_t alen;

		if (restlen < 2 || rest[0] != ':')
			goto bad;
		slash = memchr(rest + 1, '/', restlen - 1);
		alen = slash ? (size_t)(slash - rest - 1) : restlen - 1;
		if (alen == 0 || alen >= sizeof(addr))
			goto bad;
		memcpy(addr, rest + 1, alen);
		addr[alen] = '\0';
		if (inet_pton(fam, addr, tm->net) != 1)
			goto bad;
		if (slash) {
			int c = cidr_parse(slash, (size_t)(end - slash), max);

			if (c < 0)
				goto bad;
			if (fam == AF_INET)
				tm->cidr4 = c;
			else
				tm->cidr6 = c;
		}
		return true;
	}
	}
bad:
	why(s, "bad mechanism \"%.*s\"", (int)n, t);
	return false;
}

/* Parse a whole record (after its version) into r; false on any syntax
 * error (s->why says which). */
static bool parse_record(struct spf *s, struct record *r, const char *text, size_t len)
{
	size_t i = SPF_VERSION_LEN, cap = 0;

	memset(r, 0, sizeof(*r));
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)text[k] < 0x20 || (unsigned char)text[k] > 0x7e)
			return why(s, "a character that is not printable ASCII in the record"),
			       false;
	r->text = xstrndup(text, len);
	for (size_t k = 0; k < len; k++)
		cap += text[k] == ' ';
	r->terms = xcalloc(cap + 1, sizeof(*r->terms));
	while (i < len) {
		const char *t;
		size_t n = 0, eq;

		while (i < len && r->text[i] == ' ')
			i++;
		if (i == len)
			break;
		t = r->text + i;
		while (i + n < len && t[n] != ' ')
			n++;
		i += n;
		for (eq = 0; eq < n && t[eq] != '=' && t[eq] != ':' && t[eq] != '/'; eq++)
			;
		if (eq < n && t[eq] == '=' && modifier_name(t, eq)) {
			if (!parse_modifier(s, r, t, n, eq))
				return false;
		} else if (!parse_mechanism(s, &r->terms[r->n++], t, n)) {
			return false;
		}
	}
	return true;
}

static void record_free(struct record *r)
{
	free(r->terms);
	free(r->text);
}

/* Expand a domain-spec for domain d into out and shorten it to 253
 * octets by dropping labels from the left (§7.3).  1, 0 (lookups needed)
 * or -1 (permerror). */
static int target_name(struct spf *s, const char *spec, size_t n, const char *d, char *out,
		       size_t size)
{
	char buf[SPF_EXPAND_MAX + 1];
	const char *p = buf;
	int rc;

	if (spec == NULL) {
		strcpy_bounded(out, d, size);
		return 1;
	}
	rc = spf_expand(s, spec, n, d, false, buf, sizeof(buf));
	if (rc <= 0) {
		if (rc < 0)
			why(s, "macro expansion bad or too long: \"%.*s\"", (int)n, spec);
		return rc;
	}
	while (strlen(p) > SPF_DOMAIN_MAX && strchr(p, '.'))
		p = strchr(p, '.') + 1;
	if (strlen(p) > SPF_DOMAIN_MAX)
		return why(s, "the target name of \"%.*s\" is too long", (int)n, spec), -1;
	strcpy_bounded(out, p, size);
	return 1;
}

/* Count a void lookup; false when that is one too many. */
static bool void_lookup(struct spf *s, struct run *r, const struct dns_answer *a)
{
	if (a->status != DNS_NXDOMAIN && a->status != DNS_NODATA)
		return true;
	if (++r->voids > SPF_VOID_MAX) {
		why(s, "more than %d void DNS lookups", SPF_VOID_MAX);
		return false;
	}
	return true;
}

static int check_host(struct spf *s, struct run *r, const char *domain, unsigned depth, bool top);

/* ptr: is a validated name within the target? */
static bool ptr_each(void *arg, const char *name)
{
	const char *target = arg;

	return spf_within(name, target);
}
struct ptr_found {
	const char *target;
	bool found;
};
static bool ptr_found_each(void *arg, const char *name)
{
	struct ptr_found *f = arg;

	if (ptr_each((void *)f->target, name))
		f->found = true;
	return f->found;
}

/* The result of a term: 1 match, 0 no match, SPF_NEED, or an error
 * result (SPF_RESULT_TEMPERROR, SPF_RESULT_PERMERROR) as its negative
 * minus 10. */
#define TERM_ERROR(res) (-10 - (int)(res))

static int eval_term(struct spf *s, struct run *r, const struct term *t, const char *domain,
		     unsigned depth)
{
	char target[SPF_DOMAIN_MAX + 2];
	const struct dns_answer *a;
	int rc;

	switch (t->mech) {
	case M_ALL:
		return 1;
	case M_IP4:
	case M_IP6: {
		struct dns_answer one = {.n = 1};
		struct dns_rr rr = {.len = t->mech == M_IP4 ? 4 : 16, .data = (const char *)t->net};

		if ((t->mech == M_IP4) != (s->family == AF_INET))
			return 0;
		one.rr = &rr;
		return addr_match(s, &one, t->cidr4, t->cidr6);
	}
	default:
		break;
	}
	if (++r->terms > SPF_TERMS_MAX) {
		why(s, "more than %d DNS-querying terms", SPF_TERMS_MAX);
		return TERM_ERROR(SPF_RESULT_PERMERROR);
	}
	rc = target_name(s, t->spec, t->speclen, domain, target, sizeof(target));
	if (rc <= 0)
		return rc == 0 ? SPF_NEED : TERM_ERROR(SPF_RESULT_PERMERROR);
	switch (t->mech) {
	case M_INCLUDE:
		rc = check_host(s, r, target, depth + 1, false);
		switch (rc) {
		case SPF_NEED:
			return SPF_NEED;
		case SPF_RESULT_PASS:
			return 1;
		case SPF_RESULT_FAIL:
		case SPF_RESULT_SOFTFAIL:
		case SPF_RESULT_NEUTRAL:
			return 0;
		case SPF_RESULT_TEMPERROR:
			return TERM_ERROR(SPF_RESULT_TEMPERROR);
		case SPF_RESULT_NONE:
			why(s, "include:%s has no SPF record", target);
			return TERM_ERROR(SPF_RESULT_PERMERROR);
		default:
			return TERM_ERROR(SPF_RESULT_PERMERROR);
		}
	case M_A:
	case M_EXISTS: {
		enum dns_type type = t->mech == M_EXISTS ? DNS_T_A : addr_type(s);

		if (!dns_name_ok(target))
			return void_lookup(s, r, &(struct dns_answer){.status = DNS_NXDOMAIN})
				       ? 0
				       : TERM_ERROR(SPF_RESULT_PERMERROR);
		if ((a = spf_get(s, type, target)) == NULL)
			return SPF_NEED;
		if (a->status == DNS_TEMPFAIL) {
			why(s, "DNS failure for %s %s: %s", dns_type_name(type), target, a->why);
			return TERM_ERROR(SPF_RESULT_TEMPERROR);
		}
		if (!void_lookup(s, r, a))
			return TERM_ERROR(SPF_RESULT_PERMERROR);
		if (t->mech == M_EXISTS)
			return a->status == DNS_OK;
		return a->status == DNS_OK && addr_match(s, a, t->cidr4, t->cidr6);
	}
	case M_MX: {
		bool missing = false;
		size_t n;

		if (!dns_name_ok(target))
			return void_lookup(s, r, &(struct dns_answer){.status = DNS_NXDOMAIN})
				       ? 0
				       : TERM_ERROR(SPF_RESULT_PERMERROR);
		if ((a = spf_get(s, DNS_T_MX, target)) == NULL)
			return SPF_NEED;
		if (a->status == DNS_TEMPFAIL) {
			why(s, "DNS failure for MX %s: %s", target, a->why);
			return TERM_ERROR(SPF_RESULT_TEMPERROR);
		}
		if (!void_lookup(s, r, a))
			return TERM_ERROR(SPF_RESULT_PERMERROR);
		if (a->n > SPF_MX_MAX) {
			why(s, "more than %d MX records for %s", SPF_MX_MAX, target);
			return TERM_ERROR(SPF_RESULT_PERMERROR);
		}
		n = a->n;
		for (size_t i = 0; i < n; i++)
			if (dns_name_ok(a->rr[i].data) &&
			    spf_get(s, addr_type(s), a->rr[i].data) == NULL)
				missing = true;
		if (missing)
			return SPF_NEED;
		for (size_t i = 0; i < n; i++) {
			const struct dns_answer *h;

			if (!dns_name_ok(a->rr[i].data))
				continue;
			h = spf_get(s, addr_type(s), a->rr[i].data);
			if (h->status == DNS_TEMPFAIL) {
				why(s, "DNS failure for %s %s: %s", dns_type_name(addr_type(s)),
				    a->rr[i].data, h->why);
				return TERM_ERROR(SPF_RESULT_TEMPERROR);
			}
			if (h->status == DNS_OK && addr_match(s, h, t->cidr4, t->cidr6))
				return 1;
		}
		return 0;
	}
	case M_PTR: {
		struct ptr_found f = {.target = target};

		rc = spf_validated(s, ptr_found_each, &f);
		if (rc == 0)
			return SPF_NEED;
		return f.found;
	}
	default:
		return 0;
	}
}

/* The explanation of a fail from exp=spec in domain's record (§6.2);
 * failures leave it empty.  false when lookups are needed. */
static bool explain(struct spf *s, const struct record *rec, const char *domain)
{
	char target[SPF_DOMAIN_MAX + 2];
	const struct dns_answer *a;
	int rc;

	s->explanation[0] = '\0';
	if (rec->exp == NULL)
		return true;
	rc = target_name(s, rec->exp, rec->exp_len, domain, target, sizeof(target));
	if (rc == 0)
		return false;
	if (rc < 0 || !dns_name_ok(target))
		return true;
	if ((a = spf_get(s, DNS_T_TXT, target)) == NULL)
		return false;
	if (a->status != DNS_OK || a->n != 1)
		return true;
	rc = spf_expand(s, a->rr[0].data, a->rr[0].len, domain, true, s->explanation,
			sizeof(s->explanation));
	if (rc == 0)
		return false;
	if (rc < 0)
		s->explanation[0] = '\0';
	return true;
}

/* Does a TXT record start "v=spf1" and then a space or its end? */
static bool is_spf_record(const struct dns_rr *rr)
{
	return rr->len >= SPF_VERSION_LEN &&
	       strncasecmp(rr->data, SPF_VERSION, SPF_VERSION_LEN) == 0 &&
	       (rr->len == SPF_VERSION_LEN || rr->data[SPF_VERSION_LEN] == ' ');
}

/* check_host() for domain: a result, or SPF_NEED.  top: exp= of this
 * record (and of a redirect's) may explain a fail. */
static int check_host(struct spf *s, struct run *r, const char *domain, unsigned depth, bool top)
{
	const struct dns_answer *a;
	const struct dns_rr *rr = NULL;
	struct record rec;
	int rc, res = SPF_RESULT_NEUTRAL;

	if (!dns_name_ok(domain)) {
		why(s, "%s cannot be looked up", domain);
		return SPF_RESULT_NONE;
	}
	if ((a = spf_get(s, DNS_T_TXT, domain)) == NULL)
		return SPF_NEED;
	if (a->status == DNS_TEMPFAIL) {
		why(s, "DNS failure for TXT %s: %s", domain, a->why);
		return SPF_RESULT_TEMPERROR;
	}
	for (size_t i = 0; i < a->n; i++)
		if (is_spf_record(&a->rr[i])) {
			if (rr) {
				why(s, "%s has more than one SPF record", domain);
				return SPF_RESULT_PERMERROR;
			}
			rr = &a->rr[i];
		}
	if (rr == NULL) {
		why(s, "%s has no SPF record", domain);
		return SPF_RESULT_NONE;
	}
	if (!parse_record(s, &rec, rr->data, rr->len)) {
		record_free(&rec);
		return SPF_RESULT_PERMERROR;
	}
	for (size_t i = 0; i < rec.n; i++) {
		rc = eval_term(s, r, &rec.terms[i], domain, depth);
		if (rc == 0)
			continue;
		if (rc == SPF_NEED) {
			res = SPF_NEED;
		} else if (rc < 0) {
			res = -10 - rc;
		} else {
			res = (int)rec.terms[i].qual;
			why(s, "%s matched %.*s", domain, (int)rec.terms[i].textlen,
			    rec.terms[i].text);
			if (res == SPF_RESULT_FAIL && top && !explain(s, &rec, domain))
				res = SPF_NEED;
		}
		record_free(&rec);
		return res;
	}
	if (rec.redirect) {
		char target[SPF_DOMAIN_MAX + 2];

		if (++r->terms > SPF_TERMS_MAX) {
			why(s, "more than %d DNS-querying terms", SPF_TERMS_MAX);
			res = SPF_RESULT_PERMERROR;
		} else if ((rc = target_name(s, rec.redirect, rec.redirect_len, domain, target,
					     sizeof(target))) <= 0) {
			res = rc == 0 ? SPF_NEED : SPF_RESULT_PERMERROR;
		} else {
			res = check_host(s, r, target, depth + 1, top);
			if (res == SPF_RESULT_NONE) {
				why(s, "redirect=%s has no SPF record", target);
				res = SPF_RESULT_PERMERROR;
			}
		}
		record_free(&rec);
		return res;
	}
	why(s, "%s: no mechanism matched", domain);
	record_free(&rec);
	return SPF_RESULT_NEUTRAL;
}

/* See spf.h. */
bool spf_run(struct spf *s)
{
	struct run r = {0};
	int rc;

	s->nneed = 0;
	s->why[0] = '\0';
	s->explanation[0] = '\0';
	if (s->domain[0] == '\0') {
		s->result = SPF_RESULT_NONE;
		return true;
	}
	rc = check_host(s, &r, s->domain, 0, true);
	if (rc == SPF_NEED && s->nneed > 0)
		return false;
	if (rc == SPF_NEED) { /* cannot happen: a need always names a lookup */
		why(s, "evaluation stalled");
		rc = SPF_RESULT_TEMPERROR;
	}
	s->result = (enum spf_result)rc;
	return true;
}

/* Is domain one SPF checks (§4.3): a name with a dot, no address
 * literal, every label 1-63 octets? */
static bool domain_checkable(const char *d)
{
	return d[0] != '[' && strchr(d, '.') != NULL && dns_name_ok(d) &&
	       strlen(d) <= SPF_DOMAIN_MAX + 1;
}

/* See spf.h. */
bool spf_init(struct spf *s, const char *ip, const char *sender, const char *helo,
	      const char *receiver)
{
	const char *at;

	memset(s, 0, sizeof(*s));
	s->now = time(NULL);
	if (inet_pton(AF_INET, ip, s->ip) == 1) {
		s->family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, s->ip) == 1) {
		s->family = AF_INET6;
		/* an IPv4-mapped address is checked as IPv4 (§5) */
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		if (memcmp(s->ip, mapped, sizeof(mapped)) == 0) {
			memmove(s->ip, s->ip + 12, 4);
			s->family = AF_INET;
		}
	} else {
		return false;
	}
	strcpy_bounded(s->helo, helo ? helo : "", sizeof(s->helo));
	strcpy_bounded(s->receiver, receiver ? receiver : "", sizeof(s->receiver));
	if (sender == NULL || sender[0] == '\0') {
		snprintf(s->sender, sizeof(s->sender), "postmaster@%s", s->helo);
		s->helo_identity = true;
	} else if (sender[0] == '@') { /* no local part: postmaster (§4.3) */
		snprintf(s->sender, sizeof(s->sender), "postmaster%s", sender);
	} else {
		strcpy_bounded(s->sender, sender, sizeof(s->sender));
	}
	at = strrchr(s->sender, '@');
	strcpy_bounded(s->domain, at ? at + 1 : s->sender, sizeof(s->domain));
	if (!domain_checkable(s->domain)) {
		why(s, "%s is not a domain SPF can check", s->domain);
		s->domain[0] = '\0';
	}
	return true;
}

/* See spf.h. */
void spf_free(struct spf *s)
{
	for (size_t i = 0; i < s->nlookups; i++) {
		free(s->lookups[i].name);
		dns_answer_unref(s->lookups[i].a);
	}
	free(s->lookups);
	s->lookups = NULL;
	s->nlookups = 0;
}

/* See spf.h. */
const char *spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_RESULT_NONE:
		return "none";
	case SPF_RESULT_NEUTRAL:
		return "neutral";
	case SPF_RESULT_PASS:
		return "pass";
	case SPF_RESULT_FAIL:
		return "fail";
	case SPF_RESULT_SOFTFAIL:
		return "softfail";
	case SPF_RESULT_TEMPERROR:
		return "temperror";
	case SPF_RESULT_PERMERROR:
		break;
	}
	return "permerror";
}
