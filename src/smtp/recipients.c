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
#include "users.h"
#include "util.h"

/* Add addr to the envelope unless it is there already (delivered once),
 * with the DSN parameters of the RCPT it came from. */
static void rcpt_add(struct envelope *env, const char *addr, const char *orig,
		     const struct rcpt_dsn *dsn)
{
	struct env_rcpt *r;

	for (size_t i = 0; i < env->nrcpts; i++)
		if (strcmp(env->rcpts[i].addr, addr) == 0)
			return;
	envelope_add_rcpt(env, addr);
	r = &env->rcpts[env->nrcpts - 1];
	if (orig && strcmp(orig, addr) != 0)
		env_rcpt_set_orig(r, orig);
	if (dsn) {
		r->notify = dsn->notify;
		env_rcpt_set_orcpt(r, dsn->orcpt);
	}
}

/* The local domain a recipient belongs to, or NULL when it is remote:
 * <postmaster> and our own address literals belong to the host name. */
static const char *local_domain_of(const struct conf *c, const struct mailaddr *a,
				   const char *local_addr)
{
	const char *home = route_is_local(c, c->hostname) ? c->hostname : c->local_domains[0];

	if (a->kind == ADDR_KIND_POSTMASTER)
		return home;
	if (a->literal)
		return *local_addr && policy_rcpt_allowed(c, a, local_addr, false, NULL) ? home
											 : NULL;
	return route_is_local(c, a->domain) ? a->domain : NULL;
}

/* See recipients.h. */
enum status recipients_add(const struct recipients_ctx *rc, struct envelope *env,
			   const struct mailaddr *a, const char *path, const struct rcpt_dsn *dsn,
			   const char *local_addr, const char **kind, char *why, size_t whysz)
{
	const char *domain = local_domain_of(rc->conf, a, local_addr);
	struct local_targets t;
	enum local_status ls;
	char err[512];

	if (domain == NULL) {
		rcpt_add(env, path, NULL, dsn);
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
	ls = local_resolve(rc->conf, rc->users, rc->aliases,
			   a->kind == ADDR_KIND_MAILBOX ? a->local : "postmaster", domain, &t, why,
			   whysz);
	*kind = local_status_name(ls);
	if (ls == LOCAL_UNKNOWN)
		return STATUS_USER_UNKNOWN;
	if (ls == LOCAL_BAD_MAILBOX)
		return STATUS_BAD_MAILBOX;
	if (ls != LOCAL_OK)
		return STATUS_MISCONFIGURED;
	for (size_t i = 0; i < t.n; i++)
		rcpt_add(env, t.t[i].addr, path, dsn);
	local_targets_free(&t);
	return STATUS_OK;
}
