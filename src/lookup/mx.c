/*
 * mx.c - MX, A and AAAA lookups with c-ares, blocking (see mx.h).
 *
 * A lookup opens a channel with the configured servers, no search list and
 * the configured timeout and tries, starts its queries and runs the channel
 * with poll() (ares_getsock/ares_timeout/ares_process_fd: no FD_SETSIZE
 * limit) until every callback has run.  A backstop deadline, the whole
 * c-ares retry schedule plus MX_SLACK_MS, cancels a round that somehow
 * outlives it.  A and AAAA are asked separately rather than through
 * ares_getaddrinfo so that a temporary failure of one family is never
 * mistaken for a name without addresses.
 *
 * c-ares 1.18 moves on to the next server after a SERVFAIL, REFUSED or
 * NOTIMP answer and, when none is left, reports ARES_ECONNREFUSED, the
 * same as for servers that cannot be reached: the reason text says so.
 */
#include "mx.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <idn2.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "dns_servers.h"
#include "hato_limits.h"
#include "util.h"

#define MX_RECORDS_MAX 256               /* MX records of one answer considered */
#define MX_SLACK_MS 1000                 /* past the retry schedule before a round is cut */
#define MX_FAMILY_MIN (MX_ADDRS_MAX / 2) /* places each address family keeps */
#define MX_NAME_TEXT_MAX 80              /* a name shown in a result, escaped */
#define DNS_NAME_MAX 253                 /* octets of a name without its final dot */
#define DNS_LABEL_MAX 63

static pthread_once_t mx_once = PTHREAD_ONCE_INIT;
static int mx_init_status;

/* One lookup: its channel and the callbacks it still waits for. */
struct lookup {
	ares_channel ch;
	unsigned timeout_ms;
	unsigned tries;
	size_t pending;
};

/* The answer to the MX query. */
struct mx_query {
	struct lookup *lk;
	int status;
	struct ares_mx_reply *mx;
};

/* The A or AAAA records of one host. */
struct addr_query {
	struct lookup *lk;
	int family;
	int status;
	size_t n;
	unsigned char addr[MX_ADDRS_MAX][16];
};

/* Both address families of one host: [0] AAAA, [1] A. */
struct host_query {
	struct addr_query q[2];
};

/* c-ares' global state, once per process (it is reference counted). */
static void mx_library_init(void)
{
	mx_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* Milliseconds on the monotonic clock. */
static long long mx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A name as it may appear in a result: escaped, shortened with "...". */
static void shown_name(const char *name, char *buf, size_t size)
{
	escape_text(name, strlen(name), buf, size);
}

/* Is the status a final answer about the name (not a failure to get one)? */
static bool status_permanent(int st)
{
	return st == ARES_ENOTFOUND || st == ARES_ENODATA || st == ARES_EBADNAME;
}

/* Why a query failed, for people. */
static const char *status_text(int st)
{
	switch (st) {
	case ARES_ENOTFOUND:
		return "no such name";
	case ARES_ENODATA:
		return "no address records";
	case ARES_EBADNAME:
		return "invalid name";
	case ARES_ETIMEOUT:
		return "timeout (no answer from the DNS servers)";
	case ARES_ESERVFAIL:
		return "DNS server failure (SERVFAIL)";
	case ARES_EREFUSED:
		return "query refused by the DNS server (REFUSED)";
	case ARES_ECONNREFUSED: /* c-ares 1.18 also says this for SERVFAIL and REFUSED */
		return "no usable answer from the DNS servers (SERVFAIL, REFUSED or connection "
		       "refused)";
	case ARES_EFORMERR:
		return "DNS format error (FORMERR)";
	case ARES_ENOTIMP:
		return "query not implemented by the DNS server (NOTIMP)";
	case ARES_EBADRESP:
		return "malformed DNS answer";
	case ARES_ECANCELLED:
		return "DNS lookup took too long";
	default:
		return ares_strerror(st);
	}
}

/* Open the channel for one lookup; false with why set when it cannot be. */
static bool lookup_open(struct lookup *lk, const struct dns_opts *o, struct delivery_result *why)
{
	struct ares_options opts;
	int rc;

	memset(lk, 0, sizeof(*lk));
	pthread_once(&mx_once, mx_library_init);
	if (mx_init_status != ARES_SUCCESS) {
		result_set(why, OUTCOME_TEMPFAIL, "4.4.3", "DNS resolver: %s",
			   ares_strerror(mx_init_status));
		return false;
	}
	lk->timeout_ms = o->timeout_ms;
	lk->tries = o->tries;
	memset(&opts, 0, sizeof(opts));
	opts.timeout = (int)lk->timeout_ms;
	opts.tries = (int)lk->tries;
	opts.ndomains = 0; /* no search list: a mail domain is always complete */
	rc = ares_init_options(&lk->ch, &opts,
			       ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS);
	if (rc != ARES_SUCCESS) {
		result_set(why, OUTCOME_TEMPFAIL, "4.4.3", "DNS resolver: %s", ares_strerror(rc));
		return false;
	}
	rc = dns_servers_set(lk->ch, o->servers);
	if (rc == ARES_EBADSTR) {
		char shown[MX_NAME_TEXT_MAX];

		ares_destroy(lk->ch);
		shown_name(o->servers, shown, sizeof(shown));
		result_set(why, OUTCOME_TEMPFAIL, "4.3.5", "bad DNS server list \"%s\"", shown);
		return false;
	}
	if (rc != ARES_SUCCESS) {
		ares_destroy(lk->ch);
		result_set(why, OUTCOME_TEMPFAIL, "4.3.5", "DNS servers: %s", ares_strerror(rc));
		return false;
	}
	return true;
}

/* The longest a round of queries can take: every try of every server. */
static long long lookup_budget_ms(const struct lookup *lk)
{
	struct ares_addr_port_node *servers = NULL;
	long long nservers = 0;

	if (ares_get_servers_ports(lk->ch, &servers) == ARES_SUCCESS)
		for (const struct ares_addr_port_node *p = servers; p != NULL; p = p->next)
			nservers++;
	if (servers != NULL)
		ares_free_data(servers);
	if (nservers == 0)
		nservers = 1;
	return nservers * lk->timeout_ms * ((1LL << lk->tries) - 1) + MX_SLACK_MS;
}

/* Drive the channel until every started query has called back. */
static void lookup_run(struct lookup *lk)
{
	long long deadline = mx_now_ms() + lookup_budget_ms(lk);

	while (lk->pending > 0) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval maxtv, tv, *tvp;
		long long left = deadline - mx_now_ms();
		nfds_t n = 0;
		int bits, rc, wait_ms;

		if (left <= 0) {
			ares_cancel(lk->ch); /* every callback runs, with ARES_ECANCELLED */
			break;
		}
		bits = ares_getsock(lk->ch, socks, ARES_GETSOCK_MAXNUM);
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = (short)((ARES_GETSOCK_READABLE(bits, i) ? POLLIN : 0) |
					   (ARES_GETSOCK_WRITABLE(bits, i) ? POLLOUT : 0));
			if (ev == 0)
				break;
			pfd[n].fd = socks[i];
			pfd[n].events = ev;
			pfd[n].revents = 0;
			n++;
		}
		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(lk->ch, &maxtv, &tv);
		wait_ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
		rc = poll(pfd, n, wait_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) { /* a timeout to process (or poll failed: c-ares retries) */
			ares_process_fd(lk->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (nfds_t i = 0; i < n; i++) {
			short re = pfd[i].revents;

			if (re == 0)
				continue;
			ares_process_fd(lk->ch,
					(re & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd
									    : ARES_SOCKET_BAD,
					(re & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
		}
	}
}

/* c-ares: the answer to the MX query. */
static void mx_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mx_query *q = arg;

	(void)timeouts;
	q->lk->pending--;
	q->status = status;
	if (status == ARES_SUCCESS)
		q->status = ares_parse_mx_reply(abuf, alen, &q->mx);
	if (q->status == ARES_SUCCESS && q->mx == NULL) /* a CNAME without MX behind it */
		q->status = ARES_ENODATA;
}

/* c-ares: the answer to an A or AAAA query. */
static void addr_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct addr_query *q = arg;

	(void)timeouts;
	q->lk->pending--;
	q->status = status;
	if (status != ARES_SUCCESS)
		return;
	if (q->family == AF_INET) {
		struct ares_addrttl a[MX_ADDRS_MAX];
		int n = MX_ADDRS_MAX;

		q->status = ares_parse_a_reply(abuf, alen, NULL, a, &n);
		for (int i = 0; q->status == ARES_SUCCESS && i < n && q->n < MX_ADDRS_MAX; i++)
			memcpy(q->addr[q->n++], &a[i].ipaddr, 4);
	} else {
		struct ares_addr6ttl a[MX_ADDRS_MAX];
		int n = MX_ADDRS_MAX;

		q->status = ares_parse_aaaa_reply(abuf, alen, NULL, a, &n);
		for (int i = 0; q->status == ARES_SUCCESS && i < n && q->n < MX_ADDRS_MAX; i++)
			memcpy(q->addr[q->n++], &a[i].ip6addr, 16);
	}
	if (q->status == ARES_SUCCESS && q->n == 0)
		q->status = ARES_ENODATA;
}

/* Fill a with the raw address of family, port 0. */
static void addr_set(struct mx_addr *a, int family, const unsigned char *raw)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, raw, 16);
		a->len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, raw, 4);
		a->len = sizeof(*sin);
	}
}

/* Is text an IP address?  Then hq holds it as the host's one address. */
static bool literal_host(const char *text, struct host_query *hq)
{
	unsigned char raw[16];
	int family;

	if (inet_pton(AF_INET, text, raw) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, text, raw) == 1)
		family = AF_INET6;
	else
		return false;
	memset(hq, 0, sizeof(*hq));
	hq->q[0].family = AF_INET6;
	hq->q[1].family = AF_INET;
	for (int i = 0; i < 2; i++) {
		hq->q[i].status = ARES_ENODATA;
		if (hq->q[i].family == family) {
			hq->q[i].status = ARES_SUCCESS;
			memcpy(hq->q[i].addr[0], raw, family == AF_INET6 ? 16 : 4);
			hq->q[i].n = 1;
		}
	}
	return true;
}

/* Start the AAAA and A queries of one host on lk. */
static void host_query_start(struct lookup *lk, const char *name, struct host_query *hq)
{
	memset(hq, 0, sizeof(*hq));
	hq->q[0].family = AF_INET6;
	hq->q[1].family = AF_INET;
	for (int i = 0; i < 2; i++) {
		hq->q[i].lk = lk;
		hq->q[i].status = ARES_ECANCELLED; /* until it calls back */
		lk->pending++; /* before the call: the callback may run inside it */
		ares_query(lk->ch, name, ns_c_in, hq->q[i].family == AF_INET6 ? ns_t_aaaa : ns_t_a,
			   addr_done, &hq->q[i]);
	}
}

/* The status of a host's lookups taken together: success when there is
 * an address, else a temporary failure before NXDOMAIN before NODATA. */
static int host_status(const struct host_query *hq)
{
	int st = ARES_ENODATA;

	if (hq->q[0].n + hq->q[1].n > 0)
		return ARES_SUCCESS;
	for (int i = 0; i < 2; i++) {
		int s = hq->q[i].status;

		if (!status_permanent(s))
			return s;
		if (s == ARES_ENOTFOUND || s == ARES_EBADNAME)
			st = s;
	}
	return st;
}

/* Copy a host's addresses into h, IPv6 first; when both families have more
 * than fit, each keeps at least MX_FAMILY_MIN places. */
static void host_fill(struct mx_host *h, const struct host_query *hq)
{
	const struct addr_query *v6 = &hq->q[0], *v4 = &hq->q[1];
	size_t n6 = v6->n, n4 = v4->n;

	if (n6 + n4 > MX_ADDRS_MAX) {
		if (n6 > MX_FAMILY_MIN && n4 > MX_FAMILY_MIN)
			n6 = n4 = MX_FAMILY_MIN;
		else if (n6 > n4)
			n6 = MX_ADDRS_MAX - n4;
		else
			n4 = MX_ADDRS_MAX - n6;
	}
	h->naddrs = 0;
	for (size_t i = 0; i < n6; i++)
		addr_set(&h->addrs[h->naddrs++], AF_INET6, v6->addr[i]);
	for (size_t i = 0; i < n4; i++)
		addr_set(&h->addrs[h->naddrs++], AF_INET, v4->addr[i]);
}

/*
 * The A-label form of a domain or host name, lower case, without a final
 * dot, into out (at least DNS_NAME_MAX + 1 octets): false when it is not a
 * name DNS can carry (empty label, label over 63 octets, name over 253,
 * characters other than letters, digits, '-' and '_', or a U-label that
 * IDNA2008 refuses).
 */
static bool name_ascii(const char *name, char *out, size_t size)
{
	char *converted = NULL;
	const char *src = name;
	size_t len, label = 0;
	bool ascii = true, ok;

	for (const char *p = name; *p; p++)
		if ((unsigned char)*p >= 0x80)
			ascii = false;
	if (!ascii) {
		if (idn2_to_ascii_8z(name, &converted, IDN2_NONTRANSITIONAL) != IDN2_OK)
			return false;
		src = converted;
	}
	len = strlen(src);
	if (len > 0 && src[len - 1] == '.')
		len--;
	ok = len > 0 && len <= DNS_NAME_MAX && len < size;
	for (size_t i = 0; ok && i < len; i++) {
		char ch = src[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch == '.') {
			ok = label > 0;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			   ch == '_') {
			ok = ++label <= DNS_LABEL_MAX;
		} else {
			ok = false;
		}
		out[i] = ch;
	}
	ok = ok && label > 0;
	if (ok)
		out[len] = '\0';
	idn2_free(converted);
	return ok;
}

/* "[192.0.2.1]" / "[IPv6:2001:db8::1]" into hq as a host's one address;
 * false for anything else. */
static bool literal_parse(const char *literal, struct host_query *hq)
{
	char text[MX_ADDR_TEXT_MAX + 1];
	size_t len = strlen(literal);
	bool v6 = strncasecmp(literal, "[IPv6:", 6) == 0;
	const char *start = literal + (v6 ? 6 : 1);
	size_t tlen;

	if (len < 3 || literal[0] != '[' || literal[len - 1] != ']' || literal + len - 1 < start)
		return false;
	tlen = (size_t)(literal + len - 1 - start);
	if (tlen >= sizeof(text))
		return false;
	memcpy(text, start, tlen);
	text[tlen] = '\0';
	/* the IPv6: tag for IPv6, none for IPv4 (RFC 5321 §4.1.3) */
	return literal_host(text, hq) && (hq->q[0].n == 1) == v6;
}

/* An address literal as the domain: the address itself, as an implicit MX. */
static enum outcome literal_lookup(const char *domain, struct mx_list *out,
				   struct delivery_result *why)
{
	char shown[MX_NAME_TEXT_MAX];
	struct host_query hq;

	if (!literal_parse(domain, &hq)) {
		shown_name(domain, shown, sizeof(shown));
		result_set(why, OUTCOME_PERMFAIL, "5.1.2", "%s: bad address literal", shown);
		return why->outcome;
	}
	strcpy_bounded(out->hosts[0].name, domain, sizeof(out->hosts[0].name));
	host_fill(&out->hosts[0], &hq);
	out->n = 1;
	out->implicit = true;
	result_set(why, OUTCOME_DELIVERED, "2.0.0", "%s: address literal", out->hosts[0].name);
	return why->outcome;
}

/* Is this MX target the root, as in a null MX ("MX 0 .")? */
static bool mx_root(const char *host)
{
	return host[0] == '\0' || strcmp(host, ".") == 0;
}

/*
 * The MX records into out->hosts (names and preferences only): sorted by
 * preference, each run of equal preference shuffled, the root and repeated
 * names left out, at most MX_HOSTS_MAX.  PERMFAIL 5.1.10 when every record
 * points at the root (a null MX).
 */
static enum outcome mx_order(const char *domain, struct ares_mx_reply *mx, struct mx_list *out,
			     struct delivery_result *why)
{
	struct ares_mx_reply *recs[MX_RECORDS_MAX];
	size_t n = 0, usable = 0;

	for (struct ares_mx_reply *r = mx; r != NULL && n < MX_RECORDS_MAX; r = r->next) {
		recs[n++] = r;
		if (!mx_root(r->host))
			usable++;
	}
	if (usable == 0) {
		result_set(why, OUTCOME_PERMFAIL, "5.1.10", "%s: domain accepts no mail (null MX)",
			   domain);
		return why->outcome;
	}
	for (size_t i = 1; i < n; i++) { /* insertion sort: stable, n is small */
		struct ares_mx_reply *r = recs[i];
		size_t j = i;

		for (; j > 0 && recs[j - 1]->priority > r->priority; j--)
			recs[j] = recs[j - 1];
		recs[j] = r;
	}
	for (size_t start = 0, end; start < n; start = end) {
		for (end = start + 1; end < n && recs[end]->priority == recs[start]->priority;
		     end++)
			;
		for (size_t i = end - 1; i > start; i--) { /* Fisher-Yates within the run */
			size_t j = start + arc4random_uniform((uint32_t)(i - start + 1));
			struct ares_mx_reply *t = recs[i];

			recs[i] = recs[j];
			recs[j] = t;
		}
	}
	for (size_t i = 0; i < n && out->n < MX_HOSTS_MAX; i++) {
		struct mx_host *h = &out->hosts[out->n];
		bool seen = false;

		if (mx_root(recs[i]->host))
			continue;
		for (size_t k = 0; k < out->n && !seen; k++)
			seen = strcasecmp(out->hosts[k].name, recs[i]->host) == 0;
		if (seen || !strcpy_bounded(h->name, recs[i]->host, sizeof(h->name)))
			continue;
		h->pref = recs[i]->priority;
		out->n++;
	}
	return OUTCOME_DELIVERED;
}

/* Look up the addresses of every host in out at once and keep those that
 * have some; the outcome says whether any is left. */
static enum outcome mx_addresses(struct lookup *lk, const char *domain, struct mx_list *out,
				 struct delivery_result *why)
{
	struct host_query hq[MX_HOSTS_MAX];
	char temp_host[MX_NAME_MAX + 1] = "", perm_host[MX_NAME_MAX + 1] = ""; /* first skipped */
	int temp_st = ARES_SUCCESS, perm_st = ARES_SUCCESS;
	size_t kept = 0;

	for (size_t i = 0; i < out->n; i++)
		if (!literal_host(out->hosts[i].name, &hq[i]))
			host_query_start(lk, out->hosts[i].name, &hq[i]);
	lookup_run(lk);
	for (size_t i = 0; i < out->n; i++) {
		int st = host_status(&hq[i]);

		if (st != ARES_SUCCESS) {
			if (!status_permanent(st) && temp_host[0] == '\0') {
				strcpy_bounded(temp_host, out->hosts[i].name, sizeof(temp_host));
				temp_st = st;
			} else if (status_permanent(st) && perm_host[0] == '\0') {
				strcpy_bounded(perm_host, out->hosts[i].name, sizeof(perm_host));
				perm_st = st;
			}
			out->nskipped++;
			continue;
		}
		if (kept != i)
			out->hosts[kept] = out->hosts[i];
		host_fill(&out->hosts[kept], &hq[i]);
		kept++;
	}
	out->n = kept;
	if (kept > 0 && out->nskipped == 0)
		result_set(why, OUTCOME_DELIVERED, "2.0.0", "%s: %zu MX host%s", domain, kept,
			   kept == 1 ? "" : "s");
	else if (kept > 0)
		result_set(why, OUTCOME_DELIVERED, "2.0.0",
			   "%s: %zu MX host%s, %zu skipped (%s: %s)", domain, kept,
			   kept == 1 ? "" : "s", out->nskipped,
			   temp_host[0] ? temp_host : perm_host,
			   status_text(temp_host[0] ? temp_st : perm_st));
	else if (temp_host[0] != '\0')
		result_set(why, OUTCOME_TEMPFAIL, "4.4.3",
			   "%s: no MX host could be looked up (%s: %s)", domain, temp_host,
			   status_text(temp_st));
	else
		result_set(why, OUTCOME_PERMFAIL, "5.4.4", "%s: no MX host has an address (%s: %s)",
			   domain, perm_host, status_text(perm_st));
	return why->outcome;
}

/* No MX records: the domain's own addresses are its one host. */
static enum outcome mx_implicit(struct lookup *lk, const char *domain, struct mx_list *out,
				struct delivery_result *why)
{
	struct host_query hq;
	int st;

	out->implicit = true;
	host_query_start(lk, domain, &hq);
	lookup_run(lk);
	st = host_status(&hq);
	if (st == ARES_SUCCESS) {
		strcpy_bounded(out->hosts[0].name, domain, sizeof(out->hosts[0].name));
		host_fill(&out->hosts[0], &hq);
		out->n = 1;
		result_set(why, OUTCOME_DELIVERED, "2.0.0", "%s: no MX, the domain's own address",
			   domain);
	} else if (st == ARES_ENOTFOUND) {
		result_set(why, OUTCOME_PERMFAIL, "5.1.2", "%s: no such domain", domain);
	} else if (status_permanent(st)) {
		result_set(why, OUTCOME_PERMFAIL, "5.1.2", "%s: no MX and no address records",
			   domain);
	} else {
		result_set(why, OUTCOME_TEMPFAIL, "4.4.3", "%s: address lookup failed: %s", domain,
			   status_text(st));
	}
	return why->outcome;
}

/* See mx.h. */
enum outcome mx_lookup(const struct dns_opts *o, const char *domain, struct mx_list *out,
		       struct delivery_result *why)
{
	char name[DNS_NAME_MAX + 1], shown[MX_NAME_TEXT_MAX];
	struct lookup lk;
	struct mx_query q;
	enum outcome res;

	memset(out, 0, sizeof(*out));
	if (domain[0] == '[')
		return literal_lookup(domain, out, why);
	if (!name_ascii(domain, name, sizeof(name))) {
		shown_name(domain, shown, sizeof(shown));
		result_set(why, OUTCOME_PERMFAIL, "5.1.2", "%s: invalid domain name", shown);
		return why->outcome;
	}
	if (!lookup_open(&lk, o, why))
		return why->outcome;
	memset(&q, 0, sizeof(q));
	q.lk = &lk;
	q.status = ARES_ECANCELLED; /* until it calls back */
	lk.pending = 1;
	ares_query(lk.ch, name, ns_c_in, ns_t_mx, mx_done, &q);
	lookup_run(&lk);
	switch (q.status) {
	case ARES_SUCCESS:
		res = mx_order(name, q.mx, out, why);
		if (res == OUTCOME_DELIVERED)
			res = mx_addresses(&lk, name, out, why);
		break;
	case ARES_ENODATA:
		res = mx_implicit(&lk, name, out, why);
		break;
	case ARES_ENOTFOUND:
		res = OUTCOME_PERMFAIL;
		result_set(why, res, "5.1.2", "%s: no such domain", name);
		break;
	case ARES_EBADNAME:
		res = OUTCOME_PERMFAIL;
		result_set(why, res, "5.1.2", "%s: invalid domain name", name);
		break;
	default:
		res = OUTCOME_TEMPFAIL;
		result_set(why, res, "4.4.3", "%s: MX lookup failed: %s", name,
			   status_text(q.status));
		break;
	}
	if (q.mx != NULL)
		ares_free_data(q.mx);
	ares_destroy(lk.ch);
	return res;
}

/* The answer to a TXT query: the first record's strings joined. */
struct txt_query {
	struct lookup *lk;
	int status;
	char *out;
	size_t outsz, len;
};

/* c-ares: the answer to the TXT query. */
static void txt_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct txt_query *q = arg;
	struct ares_txt_ext *txt = NULL;
	bool first = true;

	(void)timeouts;
	q->lk->pending--;
	q->status = status;
	if (status != ARES_SUCCESS)
		return;
	q->status = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (q->status == ARES_SUCCESS && txt == NULL)
		q->status = ARES_ENODATA;
	for (struct ares_txt_ext *t = txt; q->status == ARES_SUCCESS && t != NULL; t = t->next) {
		if (t->record_start && !first)
			break; /* only the first record */
		first = false;
		for (size_t i = 0; i < t->length; i++, q->len++)
			if (q->len + 1 < q->outsz)
				q->out[q->len] = (char)t->txt[i];
	}
	if (q->outsz > 0)
		q->out[q->len < q->outsz ? q->len : q->outsz - 1] = '\0';
	if (txt != NULL)
		ares_free_data(txt);
}

/* See mx.h. */
enum outcome txt_lookup(const struct dns_opts *o, const char *name, char *out, size_t outsz,
			size_t *len, struct delivery_result *why)
{
	char ascii[DNS_NAME_MAX + 1], shown[MX_NAME_TEXT_MAX];
	struct lookup lk;
	struct txt_query q;
	enum outcome res = OUTCOME_PERMFAIL;

	*len = 0;
	if (!name_ascii(name, ascii, sizeof(ascii))) {
		shown_name(name, shown, sizeof(shown));
		result_set(why, OUTCOME_PERMFAIL, "5.1.2", "%s: invalid name", shown);
		return why->outcome;
	}
	if (!lookup_open(&lk, o, why))
		return why->outcome;
	memset(&q, 0, sizeof(q));
	q.lk = &lk;
	q.status = ARES_ECANCELLED; /* until it calls back */
	q.out = out;
	q.outsz = outsz;
	lk.pending = 1;
	ares_query(lk.ch, ascii, ns_c_in, ns_t_txt, txt_done, &q);
	lookup_run(&lk);
	*len = q.len;
	if (q.status == ARES_SUCCESS) {
		res = OUTCOME_DELIVERED;
		result_set(why, res, "2.0.0", "%s: TXT record found", ascii);
	} else if (status_permanent(q.status)) {
		result_set(why, res, "5.1.2", "%s: %s", ascii,
			   q.status == ARES_ENODATA ? "no TXT record" : status_text(q.status));
	} else {
		res = OUTCOME_TEMPFAIL;
		result_set(why, res, "4.4.3", "%s: TXT lookup failed: %s", ascii,
			   status_text(q.status));
	}
	ares_destroy(lk.ch);
	return res;
}

/* The addresses /etc/hosts gives name, into hq; false when it has none. */
static bool hosts_file_lookup(struct lookup *lk, const char *name, struct host_query *hq)
{
	memset(hq, 0, sizeof(*hq));
	hq->q[0].family = AF_INET6;
	hq->q[1].family = AF_INET;
	for (int i = 0; i < 2; i++) {
		struct addr_query *q = &hq->q[i];
		size_t alen = q->family == AF_INET6 ? 16 : 4;
		struct hostent *he = NULL;

		q->status = ARES_ENOTFOUND;
		if (ares_gethostbyname_file(lk->ch, name, q->family, &he) != ARES_SUCCESS)
			continue;
		if (he->h_addrtype == q->family && (size_t)he->h_length == alen)
			for (char **a = he->h_addr_list; *a != NULL && q->n < MX_ADDRS_MAX; a++)
				memcpy(q->addr[q->n++], *a, alen);
		ares_free_hostent(he);
		q->status = q->n > 0 ? ARES_SUCCESS : ARES_ENODATA;
	}
	return hq->q[0].n + hq->q[1].n > 0;
}

/* See mx.h. */
enum outcome host_lookup(const struct dns_opts *o, const char *host, struct mx_host *out,
			 struct delivery_result *why)
{
	char name[DNS_NAME_MAX + 1], shown[MX_NAME_TEXT_MAX];
	struct host_query hq;
	struct lookup lk;
	int st;

	memset(out, 0, sizeof(*out));
	if (host[0] == '[' && !literal_parse(host, &hq)) {
		shown_name(host, shown, sizeof(shown));
		result_set(why, OUTCOME_PERMFAIL, "5.4.4", "%s: bad address literal", shown);
		return why->outcome;
	}
	if (host[0] == '[' || literal_host(host, &hq)) {
		strcpy_bounded(out->name, host, sizeof(out->name));
		host_fill(out, &hq);
		result_set(why, OUTCOME_DELIVERED, "2.0.0", "%s: an address", out->name);
		return why->outcome;
	}
	if (!name_ascii(host, name, sizeof(name))) {
		shown_name(host, shown, sizeof(shown));
		result_set(why, OUTCOME_PERMFAIL, "5.4.4", "%s: invalid host name", shown);
		return why->outcome;
	}
	if (!lookup_open(&lk, o, why))
		return why->outcome;
	if (!hosts_file_lookup(&lk, name, &hq)) {
		host_query_start(&lk, name, &hq);
		lookup_run(&lk);
	}
	ares_destroy(lk.ch);
	st = host_status(&hq);
	strcpy_bounded(out->name, name, sizeof(out->name));
	if (st == ARES_SUCCESS) {
		host_fill(out, &hq);
		result_set(why, OUTCOME_DELIVERED, "2.0.0", "%s: %zu address%s", name, out->naddrs,
			   out->naddrs == 1 ? "" : "es");
	} else if (st == ARES_ENOTFOUND) {
		result_set(why, OUTCOME_PERMFAIL, "5.4.4", "%s: no such host", name);
	} else if (status_permanent(st)) {
		result_set(why, OUTCOME_PERMFAIL, "5.4.4", "%s: no address records", name);
	} else {
		result_set(why, OUTCOME_TEMPFAIL, "4.4.3", "%s: address lookup failed: %s", name,
			   status_text(st));
	}
	return why->outcome;
}

/* See mx.h. */
const char *mx_addr_text(const struct mx_addr *a, char *buf, size_t size)
{
	const void *raw = a->ss.ss_family == AF_INET6
				  ? (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr
				  : (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr;

	if (inet_ntop(a->ss.ss_family, raw, buf, (socklen_t)size) == NULL)
		strcpy_bounded(buf, "?", size);
	return buf;
}
