/*
 * dnsbl.c - DNSBL and DNSWL queries for a client address: the query
 * names, what an answer means, and one check over every zone at once.
 */
#include "dnsbl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dns.h"
#include "hato_limits.h"
#include "log.h"
#include "util.h"

#define DNSBL_NAME_MAX 254 /* a DNS name, without its final dot, and the NUL */
#define LOG_KEY_MAX 64

struct dnsbl_check;

/* One zone's query: points back at its check until it answers. */
struct dnsbl_ask {
	struct dnsbl_check *ch;
	struct dns_query *q; /* NULL once answered */
	size_t zone;
};

struct dnsbl_check {
	const struct conf *c;
	dnsbl_cb cb;
	void *arg;
	struct dnsbl_result r;
	size_t pending;
	char log_key[LOG_KEY_MAX];
	char client[INET6_ADDRSTRLEN];
	struct dnsbl_ask asks[DNSBL_ZONES_MAX];
};

/* The numeric text of a client address, for logs. */
static void client_text(const struct sockaddr *sa, char *out, size_t size)
{
	const void *a = sa->sa_family == AF_INET6
				? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
				: (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (inet_ntop(sa->sa_family, a, out, (socklen_t)size) == NULL)
		strcpy_bounded(out, "unknown", size);
}

/* See dnsbl.h. */
bool dnsbl_query_name(const struct sockaddr *sa, const char *zone, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *a;
	char rev[72 + 1], *p = rev;
	int n;

	if (sa->sa_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		for (int i = 15; i >= 0; i--) {
			*p++ = hex[a[i] & 0xf];
			*p++ = '.';
			*p++ = hex[a[i] >> 4];
			*p++ = '.';
		}
		p[-1] = '\0';
	} else {
		if (sa->sa_family == AF_INET6)
			a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12;
		else if (sa->sa_family == AF_INET)
			a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		else
			return false;
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
	}
	n = snprintf(out, size, "%s.%s", rev, zone);
	return n > 0 && (size_t)n < size && (size_t)n < DNSBL_NAME_MAX;
}

/* See dnsbl.h. */
enum dnsbl_answer dnsbl_classify(const struct dnsbl_zone *z, const unsigned char a[4])
{
	if (a[0] != 127 || (a[1] == 255 && a[2] == 255))
		return DNSBL_ERROR;
	if (z->nfilters == 0)
		return DNSBL_LISTED;
	for (size_t i = 0; i < z->nfilters; i++) {
		bool match = true;
		for (int j = 0; j < 4 && match; j++)
			match = a[j] >= z->filters[i].lo[j] && a[j] <= z->filters[i].hi[j];
		if (match)
			return DNSBL_LISTED;
	}
	return DNSBL_NOT_LISTED;
}

/* Count zone i as listing: its weight, and the name a refusal gives. */
static void count_listing(struct dnsbl_check *ch, size_t i)
{
	const struct dnsbl_zone *z = &ch->c->dnsbl_zones[i];

	ch->r.score += z->weight;
	ch->r.listed++;
	if (z->weight > 0 && (ch->r.zone < 0 || z->weight > ch->c->dnsbl_zones[ch->r.zone].weight))
		ch->r.zone = (int)i;
}

/* What zone i answered. */
static void zone_answer(struct dnsbl_check *ch, size_t i, const struct dns_answer *ans)
{
	const struct dnsbl_zone *z = &ch->c->dnsbl_zones[i];
	bool listed = false;
	char code[INET_ADDRSTRLEN] = "";

	if (ans->status == DNS_TEMPFAIL) {
		ch->r.failed++;
		log_info("event=dnsbl_error %s client=%s zone=%s reason=\"%s\"", ch->log_key,
			 ch->client, z->zone, ans->why);
		return;
	}
	for (size_t k = 0; ans->status == DNS_OK && k < ans->n; k++) {
		const unsigned char *a = (const unsigned char *)ans->rr[k].data;

		if (ans->rr[k].len != 4)
			continue;
		inet_ntop(AF_INET, a, code, sizeof(code));
		switch (dnsbl_classify(z, a)) {
		case DNSBL_LISTED:
			listed = true;
			break;
		case DNSBL_ERROR:
			log_warnx("event=dnsbl_error %s client=%s zone=%s code=%s "
				  "reason=\"not a listing\"",
				  ch->log_key, ch->client, z->zone, code);
			break;
		case DNSBL_NOT_LISTED:
			break;
		}
		if (listed)
			break;
	}
	if (!listed)
		return;
	count_listing(ch, i);
	log_info("event=dnsbl_listed %s client=%s zone=%s code=%s weight=%d", ch->log_key,
		 ch->client, z->zone, code, z->weight);
}

/* dns_query callback for one zone. */
static void ask_done(void *arg, const struct dns_answer *ans)
{
	struct dnsbl_ask *ask = arg;
	struct dnsbl_check *ch = ask->ch;

	ask->q = NULL;
	zone_answer(ch, ask->zone, ans);
	if (--ch->pending > 0)
		return;
	ch->cb(ch->arg, &ch->r);
	free(ch);
}

/* See dnsbl.h. */
struct dnsbl_check *dnsbl_check(const struct conf *c, const struct sockaddr *sa,
				const char *log_key, dnsbl_cb cb, void *arg)
{
	struct dnsbl_check *ch;
	char name[DNSBL_NAME_MAX + 64];

	if (c->ndnsbl_zones == 0)
		return NULL;
	ch = xcalloc(1, sizeof(*ch));
	ch->c = c;
	ch->cb = cb;
	ch->arg = arg;
	ch->r.zone = -1;
	strcpy_bounded(ch->log_key, log_key, sizeof(ch->log_key));
	client_text(sa, ch->client, sizeof(ch->client));
	for (size_t i = 0; i < c->ndnsbl_zones && i < DNSBL_ZONES_MAX; i++) {
		struct dnsbl_ask *ask = &ch->asks[i];

		ask->ch = ch;
		ask->zone = i;
		if (!dnsbl_query_name(sa, c->dnsbl_zones[i].zone, name, sizeof(name))) {
			ch->r.failed++;
			continue;
		}
		ch->pending++;
		ask->q = dns_query(name, DNS_T_A, ask_done, ask);
	}
	if (ch->pending == 0) { /* no name fitted: nothing was asked */
		free(ch);
		return NULL;
	}
	return ch;
}

/* See dnsbl.h. */
void dnsbl_check_stop(struct dnsbl_check *ch, struct dnsbl_result *partial)
{
	for (size_t i = 0; i < DNSBL_ZONES_MAX; i++)
		if (ch->asks[i].q != NULL) {
			dns_query_cancel(ch->asks[i].q);
			ch->asks[i].q = NULL;
			ch->r.failed++;
		}
	if (partial != NULL)
		*partial = ch->r;
	free(ch);
}
