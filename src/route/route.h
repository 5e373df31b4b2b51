/*
 * route.h - where each recipient's mail goes: one typed decision per
 * recipient, made from the configuration alone.
 *
 * route_rcpt() takes a queued recipient ("<local@domain>", or "<postmaster>"
 * for our host name's postmaster) and decides, in this order:
 *
 *   1. a local domain (local_domains, any case, U-label or A-label) whose
 *      [domain NAME] has lmtp = TARGET, or else when [delivery] lmtp =
 *      TARGET is set: LMTP to TARGET;
 *   2. any other local domain: the Maildir that mailbox_path names;
 *   3. relayhost, when set: SMTP to it, with relayhost_tls,
 *      relayhost_implicit_tls and the relayhost_auth_file credentials;
 *   4. the domain's [transport] entry (the domain, then ".parent" entries
 *      from the nearest up, then "*"): SMTP to that hop;
 *   5. else SMTP to the domain's MX hosts.
 * For 4 and 5 the TLS policy is the domain's [tls_policy] entry (matched
 * the same way), else [remote] tls.
 *
 * The route's key groups recipients: those with equal keys share a
 * connection (one LMTP or SMTP transaction) and count as one destination
 * for concurrency_per_destination.  Domains sharing an SMTP hop share its
 * connections only under the same TLS policy, so the policy is in the key.
 *
 * Nothing here blocks or fails: DNS (MX and address lookups) belongs to
 * whoever uses an SMTP route (relay.c, `hato route`).  A recipient whose
 * mailbox_path expansion is refused (maildir_path.h; RCPT refuses such
 * names already) gets a Maildir route with an empty mailbox, which
 * delivery fails with 5.1.3.  Everything is thread-safe:
 * the configuration is only read.  Pointers in a route point into the
 * configuration, which must outlive it.
 *
 * A recipient whose domain is local only because a lookup table said so
 * when it was accepted ([sql] domain_query: lookup/sqlmap.h) carries that
 * decision in its envelope ("rcpt-local: yes"), and delivery routes it
 * with route_rcpt_local(): rules 1 and 2 whatever local_domains says.  So
 * delivery never asks the database, and mail taken in for a domain stays
 * local even if the domain leaves the table before it is delivered.
 *
 * This module sits on conf/ and common/ only, so that lookup/ (local
 * recipients), the SMTP server's policy, the scheduler, the relay and the
 * command line all ask it the same question the same way.
 */
#ifndef HATO_ROUTE_H
#define HATO_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "hato_limits.h"
#include "maildir_path.h"

#define ROUTE_KEY_MAX 320 /* "maildir", "lmtp:TARGET", "smtp:HOP tls=POLICY" */

/* How the mail is carried. */
enum route_transport {
	ROUTE_MAILDIR, /* written into a local Maildir (mda/maildir.h) */
	ROUTE_LMTP,    /* handed to a local LMTP server (mda/lmtp.h) */
	ROUTE_SMTP,    /* sent over SMTP to the next hop (relay/relay.h) */
};

/* Which rule of the configuration decided (see above). */
enum route_rule {
	ROUTE_RULE_LOCAL,     /* local_domains, with its [domain NAME] */
	ROUTE_RULE_RELAYHOST, /* [remote] relayhost */
	ROUTE_RULE_TRANSPORT, /* a [transport] entry */
	ROUTE_RULE_MX,        /* the domain's MX hosts */
};

/* One recipient's route. */
struct route {
	enum route_transport transport;
	enum route_rule rule;
	char key[ROUTE_KEY_MAX];          /* equal keys: one destination */
	char domain[ADDR_DOMAIN_MAX + 1]; /* the recipient's domain */
	char local[ADDR_PATH_MAX + 1];    /* the recipient's local part ("" for a domain) */
	/* ROUTE_MAILDIR: the Maildir, "" when mailbox_path gives none */
	char mailbox[MAILDIR_PATH_MAX];
	const char *lmtp; /* ROUTE_LMTP: "unix:/path" or "host:port" */
	/* ROUTE_SMTP: */
	struct nexthop hop;        /* host (its MX hosts when hop.mx) and port (0: [remote] port) */
	const char *hop_text;      /* the relayhost or [transport] hop as written; NULL for MX */
	const char *transport_key; /* the [transport] entry that matched, or NULL */
	enum tls_policy tls;       /* what TLS the hop must offer */
	const char *tls_policy_key; /* the [tls_policy] entry that set tls, or NULL */
	bool implicit_tls;          /* TLS from the first octet */
	bool auth;                  /* log in: the relayhost has an auth file */
	const char *auth_user;      /* its credentials once read (relay_auth_load), else NULL */
	const char *auth_password;
};

/* route.c */

/* The route of a queued recipient: "<local@domain>", or "<postmaster>". */
void route_rcpt(const struct conf *c, const char *addr, struct route *out);

/* The route of a recipient accepted as local (rules 1 and 2 for its
 * domain, in local_domains or not); "<postmaster>" as route_rcpt. */
void route_rcpt_local(const struct conf *c, const char *addr, struct route *out);

/* The route of mail for domain, without a mailbox (local is ""). */
void route_domain(const struct conf *c, const char *domain, struct route *out);

/* "maildir", "lmtp", "smtp". */
const char *route_transport_name(enum route_transport t);

/* The [transport]/[tls_policy] entry for domain: the exact domain, then
 * ".parent" entries from the nearest up, then "*"; NULL when none. */
const struct map_entry *route_map_find(const struct map_entry *m, size_t n, const char *domain);

/* local_domain.c */

/* The index in local_domains of domain, or -1 when it is not local.
 * Case-insensitive, and an internationalized domain matches in its U-label
 * and A-label (xn--) forms alike. */
long route_local_index(const struct conf *c, const char *domain);

/* Is domain one of ours (route_local_index)? */
bool route_is_local(const struct conf *c, const char *domain);

/* The [domain NAME] section of a local domain, written in any of its
 * forms; NULL when it has none (or is not local). */
const struct domain_conf *route_domain_conf(const struct conf *c, const char *domain);

#endif
