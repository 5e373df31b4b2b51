/*
 * recipients.c - recipient existence and alias expansion.  See recipients.h.
 */
#include "recipients.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "aliases.h"
#include "conf.h"
#include "envelope.h"
#include "local.h"
#include "log.h"
#include "policy.h"
#include "route.h"
#include "sqlmap.h"
#include "users.h"
#include "util.h"

/* Add addr to the envelope unless it is there already (delivered once),
 * with the DSN parameters of the RCPT it came from; by_table: local by a
 * lookup table, so delivery routes it as local. */
static void rcpt_add(struct envelope *env, const char *addr, const char *orig,
		     const struct rcpt_dsn *dsn, bool by_table)
{
	struct env_rcpt *r;

	for (size_t i = 0; i < env->nrcpts; i++)
		if (strcmp(env->rcpts[i].addr, addr) == 0)
			return;
	envelope_add_rcpt(env, addr);
	r = &env->rcpts[env->nrcpts - 1];
	r->local = by_table;
	if (orig && strcmp(orig, addr) != 0)
		env_rcpt_set_orig(r, orig);
	if (dsn) {
		r->notify = dsn->notify;
		env_rcpt_set_orcpt(r, dsn->orcpt);
	}
}

/* The local domain a recipient belongs to into *domain (NULL when it is
 * remote): <postmaster> and our own address literals belong to the host
 * name; a domain is local by local_domains or by the domain table.
 * LOCAL_OK, or the table's LOCAL_PENDING / LOCAL_TEMPFAIL. */
static enum local_status local_domain_of(const struct recipients_ctx *rc, const struct mailaddr *a,
					 const char *local_addr, const char **domain)
{
	const struct conf *c = rc->conf;
	const char *home = route_is_local(c, c->hostname) ? c->hostname : c->local_domains[0];
	enum local_status st;
	bool by_table;

	*domain = NULL;
	if (a->kind == ADDR_KIND_POSTMASTER) {
		*domain = home;
	} else if (a->literal) {
		if (*local_addr && policy_rcpt_allowed(c, a, local_addr, false, NULL))
			*domain = home;
	} else {
		st = local_domain(c, rc->ask, a->domain, &by_table);
		if (st == LOCAL_PENDING || st == LOCAL_TEMPFAIL)
			return st;
		if (st == LOCAL_OK)
			*domain = a->domain;
	}
	return LOCAL_OK;
}

/* The status a resolution that did not end in LOCAL_OK is answered with. */
static enum status refusal(enum local_status ls)
{
	switch (ls) {
	case LOCAL_UNKNOWN:
		return STATUS_USER_UNKNOWN;
	case LOCAL_BAD_MAILBOX:
		return STATUS_BAD_MAILBOX;
	case LOCAL_PENDING:
	case LOCAL_TEMPFAIL:
		return STATUS_LOOKUP_FAILED;
	default:
		return STATUS_MISCONFIGURED;
	}
}

/* See recipients.h. */
enum status recipients_add(const struct recipients_ctx *rc, struct envelope *env,
			   const struct mailaddr *a, const char *path, const struct rcpt_dsn *dsn,
			   const char *local_addr, bool allowed, const char **kind, char *why,
			   size_t whysz)
{
	const char *domain;
	struct local_targets t;
	enum local_status ls = local_domain_of(rc, a, local_addr, &domain);
	char err[512];

	if (ls != LOCAL_OK) {
		*kind = local_status_name(ls);
		strcpy_bounded(why, sqlmap_ask_error(rc->ask), whysz);
		return STATUS_LOOKUP_FAILED;
	}
	if (domain == NULL) {
		if (!allowed) {
			*kind = "relay_denied";
			strcpy_bounded(why, "remote, and the client may not relay", whysz);
			return STATUS_RELAY_DENIED;
		}
		rcpt_add(env, path, NULL, dsn, false);
		*kind = "remote";
		strcpy_bounded(why, "remote", whysz);
		return STATUS_OK;
	}
	if (!userdb_refresh(rc->users, err, sizeof(err)))
		log_warnx("event=users_reload_failed error=\"%s\" note=\"the previous users stay\"",
			  err);
	if (rc->aliases && !aliases_refresh(rc->aliases, err, sizeof(err)))
		log_warnx("event=aliases_reload_failed error=\"%s\" note=\"the previous aliases "
			  "stay\"",
			  err);
	ls = local_resolve(rc->conf, rc->users, rc->aliases, rc->ask,
			   a->kind == ADDR_KIND_MAILBOX ? a->local : "postmaster", domain, &t, why,
			   whysz);
	*kind = local_status_name(ls);
	if (ls != LOCAL_OK)
		return refusal(ls);
	for (size_t i = 0; i < t.n; i++)
		rcpt_add(env, t.t[i].addr, path, dsn, t.t[i].by_table);
	local_targets_free(&t);
	return STATUS_OK;
}
