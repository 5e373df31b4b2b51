/*
 * route.c - the routing decision for one recipient or domain (see route.h
 * for the rules and their order).
 */
#include "route.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* See route.h. */
const char *route_transport_name(enum route_transport t)
{
	static const char *const names[] = {"maildir", "lmtp", "smtp"};
	return names[t];
}

/* See route.h. */
const struct map_entry *route_map_find(const struct map_entry *m, size_t n, const char *domain)
{
	const struct map_entry *star = NULL;

	for (size_t i = 0; i < n; i++)
		if (strcasecmp(m[i].key, domain) == 0)
			return &m[i];
	for (const char *p = strchr(domain, '.'); p != NULL; p = strchr(p + 1, '.'))
		for (size_t i = 0; i < n; i++)
			if (strcasecmp(m[i].key, p) == 0)
				return &m[i];
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].key, "*") == 0)
			star = &m[i];
	return star;
}

/* The SMTP part of route_domain: relayhost, [transport] entry or MX, and the TLS policy. */
static void route_smtp(const struct conf *c, const char *domain, struct route *out)
{
	const struct map_entry *t = route_map_find(c->transport, c->ntransport, domain);
	const struct map_entry *p = route_map_find(c->tls_policies, c->ntls_policies, domain);

	out->transport = ROUTE_SMTP;
	out->tls = c->remote_tls;
	if (c->relayhost != NULL) {
		out->rule = ROUTE_RULE_RELAYHOST;
		out->hop_text = c->relayhost;
		nexthop_parse(c->relayhost, &out->hop); /* checked when the config was read */
		out->tls = c->relayhost_tls;
		out->implicit_tls = c->relayhost_implicit_tls;
		out->auth = c->relayhost_auth_file != NULL || c->relay_user != NULL;
		out->auth_user = c->relay_user;
		out->auth_password = c->relay_password;
		snprintf(out->key, sizeof(out->key), "smtp:%s", c->relayhost);
		return;
	}
	if (t != NULL) {
		out->rule = ROUTE_RULE_TRANSPORT;
		out->transport_key = t->key;
		out->hop_text = t->value;
		nexthop_parse(t->value, &out->hop);
	} else {
		out->rule = ROUTE_RULE_MX;
		strcpy_bounded(out->hop.host, domain, sizeof(out->hop.host));
		out->hop.mx = true;
	}
	if (p != NULL && tls_policy_parse(p->value, &out->tls))
		out->tls_policy_key = p->key;
	/* domains sharing a hop share connections only under the same policy */
	snprintf(out->key, sizeof(out->key), "smtp:%s tls=%s",
		 out->hop_text != NULL ? out->hop_text : domain, tls_policy_name(out->tls));
}

/* The local part of route_domain: the domain's [domain NAME] lmtp, else
 * [delivery] lmtp, else its Maildirs. */
static void route_local(const struct conf *c, const char *domain, struct route *out)
{
	const struct domain_conf *d = route_domain_conf(c, domain);
	const char *lmtp = d != NULL && d->lmtp != NULL ? d->lmtp : c->delivery_lmtp;

	out->rule = ROUTE_RULE_LOCAL;
	if (lmtp != NULL) {
		out->transport = ROUTE_LMTP;
		out->lmtp = lmtp;
		snprintf(out->key, sizeof(out->key), "lmtp:%s", lmtp);
	} else {
		out->transport = ROUTE_MAILDIR;
		strcpy_bounded(out->key, "maildir", sizeof(out->key));
	}
}

/* See route.h. */
void route_domain(const struct conf *c, const char *domain, struct route *out)
{
	memset(out, 0, sizeof(*out));
	strcpy_bounded(out->domain, domain, sizeof(out->domain));
	if (route_is_local(c, domain))
		route_local(c, domain, out);
	else
		route_smtp(c, domain, out);
}

/* Split "<local@domain>" at its last '@'. */
static bool split_addr(const char *addr, char *local, size_t lsz, char *domain, size_t dsz)
{
	size_t len = strlen(addr);
	const char *at;

	if (len < 3 || addr[0] != '<' || addr[len - 1] != '>')
		return false;
	at = addr + len - 1;
	while (at > addr && *at != '@')
		at--;
	if (at == addr || (size_t)(at - addr - 1) >= lsz ||
	    (size_t)(addr + len - 1 - at - 1) >= dsz)
		return false;
	memcpy(local, addr + 1, (size_t)(at - addr - 1));
	local[at - addr - 1] = '\0';
	memcpy(domain, at + 1, (size_t)(addr + len - 1 - at - 1));
	domain[addr + len - 1 - at - 1] = '\0';
	return true;
}

/* route_rcpt, with the domain taken as local when local is set. */
static void route_addr(const struct conf *c, const char *addr, bool local, struct route *out)
{
	char lpart[sizeof(out->local)], domain[sizeof(out->domain)];

	if (split_addr(addr, lpart, sizeof(lpart), domain, sizeof(domain))) {
		route_domain(c, domain, out);
		if (local && out->rule != ROUTE_RULE_LOCAL) {
			memset(out, 0, sizeof(*out));
			strcpy_bounded(out->domain, domain, sizeof(out->domain));
			route_local(c, domain, out);
		}
	} else {
		/* "<postmaster>" (our own notices): our host name's, in its Maildir */
		memset(out, 0, sizeof(*out));
		strcpy_bounded(lpart, "postmaster", sizeof(lpart));
		strcpy_bounded(out->domain, c->hostname, sizeof(out->domain));
		out->rule = ROUTE_RULE_LOCAL;
		out->transport = ROUTE_MAILDIR;
		strcpy_bounded(out->key, "maildir", sizeof(out->key));
	}
	strcpy_bounded(out->local, lpart, sizeof(out->local));
	if (out->transport == ROUTE_MAILDIR &&
	    !maildir_path(c->mailbox_path, out->local, out->domain, out->mailbox,
			  sizeof(out->mailbox)))
		out->mailbox[0] = '\0'; /* delivery fails it: no valid mailbox path */
}

/* See route.h. */
void route_rcpt(const struct conf *c, const char *addr, struct route *out)
{
	route_addr(c, addr, false, out);
}

/* See route.h. */
void route_rcpt_local(const struct conf *c, const char *addr, struct route *out)
{
	route_addr(c, addr, true, out);
}
