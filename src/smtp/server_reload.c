/*
 * server_reload.c - SIGHUP: the whole configuration read again and swapped
 * in as one new struct conf.
 *
 * Everything a new configuration needs is made first, beside the running
 * one: the file parsed (conf_reload keeps the keys that need a restart and
 * names them), the relayhost's credentials, the users and aliases files,
 * the DKIM keys, the TLS contexts.  Only when all of it loaded is it
 * swapped in; the first failure is logged (file, line and key for the
 * configuration file) and the running configuration stays, whole.
 * Sessions and delivery jobs hold
 * the configuration they started under (conf_hold) and finish under it;
 * the old one is freed when the last of them lets go.  Pickup takes the
 * new one at its next message.
 *
 * A section added to struct conf reloads with it: code that reads it from
 * the session's, the job's or srv->conf needs nothing more.  What is built
 * from it once (the DKIM keys) gets a load step and a swap here; what
 * cannot be built again while hatod runs (the listeners' sockets, the
 * spool, the resolver) is on conf.c's list of keys that need a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "checks.h"
#include "conf.h"
#include "greylist.h"
#include "intake_dkim.h"
#include "log.h"
#include "scheduler.h"
#include "server.h"
#include "tls.h"
#include "users.h"
#include "util.h"

#define RELOAD_ERR_MAX 1024

/* Are two optional paths the same file name? */
static bool same_path(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* err as a log value, in buf. */
static const char *esc_err(const char *err, char *buf, size_t size)
{
	escape_text(err, strlen(err), buf, size);
	return buf;
}

/* Log a failed reload step; the running configuration stays. */
static void reload_failed(const char *what, const char *err)
{
	char esc[RELOAD_ERR_MAX * 2];

	esc_err(err, esc, sizeof(esc));
	log_warnx("event=reload result=failed step=%s error=\"%s\" note=\"the running "
		  "configuration stays\"",
		  what, esc);
}

/*
 * The relayhost's credentials into c.  hatod read the file as root before
 * dropping privileges; now it reads it as the daemon user.  When it cannot
 * and the file is the one already read, the credentials read then stay.
 */
static bool reload_relay_auth(struct conf *c, const struct conf *old, char *err, size_t errsz)
{
	char esc[RELOAD_ERR_MAX * 2];

	if (c->relayhost_auth_file == NULL || relay_auth_load(c, err, errsz))
		return true;
	if (!same_path(c->relayhost_auth_file, old->relayhost_auth_file) || old->relay_user == NULL)
		return false;
	log_warnx("event=reload_relay_auth file=%s result=kept error=\"%s\" note=\"the "
		  "credentials read at start stay\"",
		  c->relayhost_auth_file, esc_err(err, esc, sizeof(esc)));
	c->relay_user = xstrdup(old->relay_user);
	c->relay_password = xstrdup(old->relay_password);
	return true;
}

/* The users of c: the running database re-read when its file is the same
 * (a bad file keeps the users it had: userdb_refresh), else a new one in
 * *users.  False when a new file does not load. */
static bool reload_users(struct server *srv, const struct conf *c, struct userdb **users,
			 bool *reread, char *err, size_t errsz)
{
	*users = NULL;
	*reread = true;
	if (!same_path(c->users_file, srv->conf->users_file)) {
		*users = userdb_open(c->users_file, err, errsz);
		return *users != NULL;
	}
	if (!userdb_refresh(srv->users, err, errsz)) {
		char esc[RELOAD_ERR_MAX * 2];

		log_warnx("event=signal signal=HUP action=reload_users result=failed error=\"%s\" "
			  "note=\"the users read before stay\"",
			  esc_err(err, esc, sizeof(esc)));
		*reread = false;
	}
	return true;
}

/* The aliases of c, as reload_users; *changed when *aliases replaces the
 * running set (NULL: no aliases file any more). */
static bool reload_aliases(struct server *srv, const struct conf *c, struct aliases **aliases,
			   bool *changed, char *err, size_t errsz)
{
	*aliases = NULL;
	*changed = !same_path(c->aliases_file, srv->conf->aliases_file);
	if (*changed)
		return c->aliases_file == NULL ||
		       (*aliases = aliases_open(c->aliases_file, err, errsz)) != NULL;
	if (srv->aliases != NULL && !aliases_refresh(srv->aliases, err, errsz)) {
		char esc[RELOAD_ERR_MAX * 2];

		log_warnx("event=signal signal=HUP action=reload_aliases result=failed "
			  "error=\"%s\" note=\"the aliases read before stay\"",
			  esc_err(err, esc, sizeof(esc)));
	}
	return true;
}

/* Swap c in: new sessions, pickup's next message and new delivery jobs
 * use it; the old configuration goes when its last holder lets go. */
static void swap_in(struct server *srv, struct conf *c)
{
	struct conf *old = srv->conf;

	srv->conf = c;
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *l = &srv->listeners[i];

		/* conf_reload kept the same listeners: found by name */
		for (size_t j = 0; j < c->nlisteners; j++)
			if (strcmp(c->listeners[j].name, l->lc->name) == 0) {
				l->lc = &c->listeners[j];
				break;
			}
	}
	scheduler_reload(srv->scheduler, c);
	log_set_format(c->log_json ? LOG_FORMAT_JSON : LOG_FORMAT_KEYVALUE);
	conf_free(old);
}

/* See server.h. */
bool server_reload(struct server *srv)
{
	char restart[RELOAD_ERR_MAX], err[RELOAD_ERR_MAX];
	struct conf *c = conf_reload(srv->conf, restart, sizeof(restart), err, sizeof(err));
	struct userdb *users = NULL;
	struct aliases *aliases = NULL;
	struct intake_dkim_keys *dkim = NULL;
	struct greylist *grey = NULL;
	bool aliases_changed = false, users_reread = false;

	if (c == NULL) {
		reload_failed("config", err);
		return false;
	}
	if (restart[0] != '\0')
		log_warnx("event=reload_restart_needed keys=\"%s\" note=\"these keep their "
			  "running values until hatod restarts\"",
			  restart);
	if (!reload_relay_auth(c, srv->conf, err, sizeof(err))) {
		reload_failed("relayhost_auth_file", err);
		goto fail;
	}
	if (!reload_users(srv, c, &users, &users_reread, err, sizeof(err))) {
		reload_failed("users_file", err);
		goto fail;
	}
	if (!reload_aliases(srv, c, &aliases, &aliases_changed, err, sizeof(err))) {
		reload_failed("aliases_file", err);
		goto fail;
	}
	/* checks switched on: the Public Suffix List, read once (a new path needs a restart) */
	if (!checks_init(c, err, sizeof(err))) {
		reload_failed("checks", err);
		goto fail;
	}
	/* greylisting switched on: its store, opened now (switched off, it stays unused) */
	if (c->greylist_enabled && srv->greylist == NULL &&
	    (grey = greylist_open(c, srv->base, srv->workers, err, sizeof(err))) == NULL) {
		reload_failed("greylist", err);
		goto fail;
	}
	if ((dkim = intake_dkim_load(c, err, sizeof(err))) == NULL) {
		reload_failed("dkim", err);
		goto fail;
	}
	if (!tls_reload(c, err, sizeof(err))) { /* the last step: it swaps in at once */
		char esc[RELOAD_ERR_MAX * 2];

		log_warnx("event=signal signal=HUP action=reload_tls result=failed error=\"%s\" "
			  "note=\"the previous certificates stay in use\"",
			  esc_err(err, esc, sizeof(esc)));
		reload_failed("tls", err);
		goto fail;
	}
	log_info("event=signal signal=HUP action=reload_tls result=ok");
	if (users != NULL) {
		userdb_free(srv->users);
		srv->users = users;
	}
	if (aliases_changed) {
		aliases_free(srv->aliases);
		srv->aliases = aliases;
	}
	if (users_reread)
		log_info("event=signal signal=HUP action=reload_users result=ok users=%zu",
			 userdb_count(srv->users));
	intake_dkim_swap(dkim);
	if (grey != NULL)
		srv->greylist = grey;
	else if (srv->greylist != NULL)
		greylist_configure(srv->greylist, c);
	swap_in(srv, c);
	log_info("event=reload result=ok config=%s users=%zu aliases=%zu local_domains=%zu",
		 c->path ? c->path : "built-in", userdb_count(srv->users),
		 srv->aliases ? aliases_count(srv->aliases) : 0, c->nlocal_domains);
	return true;
fail:
	greylist_close(grey);
	intake_dkim_keys_free(dkim);
	userdb_free(users);
	aliases_free(aliases);
	conf_free(c);
	return false;
}
