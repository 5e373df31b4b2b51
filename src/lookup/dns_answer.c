/*
 * dns_answer.c - a DNS message read into a struct dns_answer (see
 * dns_answer.h).
 *
 * The message is walked twice over the same code: once to count the
 * records and octets it keeps, once to copy them into a single allocation
 * (the answer, its record array, then the record data).  Each step checks
 * that it stays inside the message; names go through ares_expand_name.
 */
#include "dns_answer.h"

#include <ares.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define DNS_HEADER_LEN 12
#define DNS_RR_FIXED_LEN 10 /* type, class, TTL, RDLENGTH */
#define DNS_CLASS_IN 1
#define DNS_T_CNAME 5
#define DNS_T_SOA 6
#define DNS_SOA_MINIMUM_LEN 20 /* serial, refresh, retry, expire, minimum */
#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_NXDOMAIN 3
#define DNS_NAME_MAX 253 /* octets of a name without its final dot */
#define DNS_LABEL_MAX 63

/* What a walk over a message found; with out set, it also copies. */
struct walk {
	const unsigned char *buf;
	size_t len;
	enum dns_type qtype;
	int rcode;
	size_t nrr;
	size_t octets; /* record data, NULs included */
	uint32_t ttl;  /* the lowest of the records kept and the chain before them */
	bool have_ttl;
	uint32_t neg_ttl; /* from the SOA */
	bool have_soa;
	struct dns_rr *rr; /* second pass: where records go */
	char *data;        /* second pass: where their octets go */
};

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Expand the name at p; its length in the message goes to *enclen.  The
 * name is freed with ares_free_string.  NULL when it does not parse. */
static char *name_at(const struct walk *w, const unsigned char *p, long *enclen)
{
	char *name = NULL;

	if (p < w->buf || p >= w->buf + w->len)
		return NULL;
	if (ares_expand_name(p, w->buf, (int)w->len, &name, enclen) != ARES_SUCCESS)
		return NULL;
	return name;
}

/* Keep one record of len octets (from src, or a TXT's strings): count it,
 * or copy it on the second pass. */
static void keep(struct walk *w, unsigned pref, const unsigned char *src, size_t len, bool txt)
{
	if (w->nrr == DNS_ANSWER_RR_MAX)
		return;
	if (w->rr) {
		struct dns_rr *r = &w->rr[w->nrr];
		char *d = w->data;

		r->pref = pref;
		r->data = d;
		if (txt) {
			/* character-strings: each a length octet and its octets */
			size_t i = 0, n = 0;

			while (i < len) {
				size_t sl = src[i++];

				memcpy(d + n, src + i, sl);
				n += sl;
				i += sl;
			}
			r->len = n;
		} else {
			memcpy(d, src, len);
			r->len = len;
		}
		d[r->len] = '\0';
		w->data += r->len + 1;
	}
	w->nrr++;
	w->octets += len + 1;
}

/* Is rdata[0..len) a well-formed list of character-strings? */
static bool txt_ok(const unsigned char *rdata, size_t len)
{
	size_t i = 0;

	while (i < len)
		i += 1 + (size_t)rdata[i];
	return i == len;
}

/* One record of the type asked: keep it when its data is well formed. */
static void record(struct walk *w, const unsigned char *rdata, size_t rdlen)
{
	char *name;
	long enclen;

	switch (w->qtype) {
	case DNS_T_A:
		if (rdlen == 4)
			keep(w, 0, rdata, 4, false);
		return;
	case DNS_T_AAAA:
		if (rdlen == 16)
			keep(w, 0, rdata, 16, false);
		return;
	case DNS_T_TXT:
		if (txt_ok(rdata, rdlen))
			keep(w, 0, rdata, rdlen, true);
		return;
	case DNS_T_MX:
	case DNS_T_PTR: {
		size_t skip = w->qtype == DNS_T_MX ? 2 : 0;

		if (rdlen < skip + 1)
			return;
		name = name_at(w, rdata + skip, &enclen);
		if (name == NULL)
			return;
		if ((size_t)enclen <= rdlen - skip)
			keep(w, skip ? get16(rdata) : 0, (const unsigned char *)name, strlen(name),
			     false);
		ares_free_string(name);
		return;
	}
	}
}

/* Lower the answer's TTL to ttl. */
static void lower_ttl(struct walk *w, uint32_t ttl)
{
	if (!w->have_ttl || ttl < w->ttl)
		w->ttl = ttl;
	w->have_ttl = true;
}

/* Walk the message; false when it does not parse. */
static bool walk(struct walk *w)
{
	const unsigned char *p, *end = w->buf + w->len;
	unsigned qd, an, ns;
	long enclen;
	char *name;

	if (w->len < DNS_HEADER_LEN)
		return false;
	w->rcode = w->buf[3] & 0x0f;
	qd = get16(w->buf + 4);
	an = get16(w->buf + 6);
	ns = get16(w->buf + 8);
	p = w->buf + DNS_HEADER_LEN;
	for (unsigned i = 0; i < qd; i++) {
		if ((name = name_at(w, p, &enclen)) == NULL)
			return false;
		ares_free_string(name);
		p += enclen;
		if (end - p < 4)
			return false;
		p += 4;
	}
	for (unsigned i = 0; i < an + ns; i++) {
		unsigned type, class;
		uint32_t ttl;
		size_t rdlen;

		if ((name = name_at(w, p, &enclen)) == NULL)
			return false;
		ares_free_string(name);
		p += enclen;
		if (end - p < DNS_RR_FIXED_LEN)
			return false;
		type = get16(p);
		class = get16(p + 2);
		ttl = get32(p + 4) & 0x7fffffffu; /* RFC 2181 §8: the top bit means 0 */
		if (get32(p + 4) & 0x80000000u)
			ttl = 0;
		rdlen = get16(p + 8);
		p += DNS_RR_FIXED_LEN;
		if ((size_t)(end - p) < rdlen)
			return false;
		if (class == DNS_CLASS_IN && i < an) {
			if (type == (unsigned)w->qtype) {
				size_t before = w->nrr;

				record(w, p, rdlen);
				if (w->nrr > before)
					lower_ttl(w, ttl);
			} else if (type == DNS_T_CNAME) {
				lower_ttl(w, ttl);
			}
		} else if (class == DNS_CLASS_IN && type == DNS_T_SOA && !w->have_soa) {
			/* the SOA's MINIMUM is its last field */
			if (rdlen >= DNS_SOA_MINIMUM_LEN) {
				uint32_t min = get32(p + rdlen - 4);

				w->neg_ttl = min < ttl ? min : ttl;
				w->have_soa = true;
			}
		}
		p += rdlen;
	}
	return true;
}

/* See dns_answer.h. */
struct dns_answer *dns_answer_status(enum dns_status status, const char *fmt, ...)
{
	struct dns_answer *a = xcalloc(1, sizeof(*a));
	va_list ap;

	a->refs = 1;
	a->status = status;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(a->why, sizeof(a->why), fmt, ap);
		va_end(ap);
	}
	return a;
}

/* See dns_answer.h. */
struct dns_answer *dns_answer_parse(const unsigned char *buf, size_t len, enum dns_type qtype)
{
	struct walk w = {.buf = buf, .len = len, .qtype = qtype};
	struct dns_answer *a;
	size_t size;

	if (!walk(&w))
		return dns_answer_status(DNS_TEMPFAIL, "malformed DNS answer");
	if (w.rcode == DNS_RCODE_NXDOMAIN) {
		a = dns_answer_status(DNS_NXDOMAIN, "no such name");
		a->ttl = w.have_soa ? w.neg_ttl : 0;
		return a;
	}
	if (w.rcode != DNS_RCODE_NOERROR)
		return dns_answer_status(DNS_TEMPFAIL, "DNS error (rcode %d)", w.rcode);
	if (w.nrr == 0) {
		a = dns_answer_status(DNS_NODATA, "no %s records", dns_type_name(qtype));
		a->ttl = w.have_soa ? w.neg_ttl : 0;
		return a;
	}
	size = sizeof(*a) + w.nrr * sizeof(struct dns_rr) + w.octets;
	a = xcalloc(1, size);
	a->refs = 1;
	a->status = DNS_OK;
	a->ttl = w.ttl;
	w.rr = (struct dns_rr *)(a + 1);
	w.data = (char *)(w.rr + w.nrr);
	w.nrr = 0;
	w.octets = 0;
	w.have_ttl = false;
	w.have_soa = false;
	walk(&w);
	a->n = w.nrr;
	a->rr = w.rr;
	return a;
}

/* See dns_answer.h. */
struct dns_answer *dns_answer_ref(struct dns_answer *a)
{
	a->refs++;
	return a;
}

/* See dns_answer.h. */
void dns_answer_unref(struct dns_answer *a)
{
	if (a && --a->refs == 0)
		free(a);
}

/* See dns_answer.h. */
const char *dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_TEMPFAIL:
		break;
	}
	return "tempfail";
}

/* See dns_answer.h. */
const char *dns_type_name(enum dns_type t)
{
	switch (t) {
	case DNS_T_A:
		return "A";
	case DNS_T_PTR:
		return "PTR";
	case DNS_T_MX:
		return "MX";
	case DNS_T_TXT:
		return "TXT";
	case DNS_T_AAAA:
		break;
	}
	return "AAAA";
}

/* See dns_answer.h. */
bool dns_name_ok(const char *name)
{
	size_t n = strlen(name), label = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (++label > DNS_LABEL_MAX) {
			return false;
		}
	}
	return label > 0;
}
