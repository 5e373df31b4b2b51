/*
 * conf.h - hato's configuration: the key schema with its defaults, the INI
 * file, value checks.
 *
 * conf_load(NULL) gives the built-in defaults (listeners "smtp",
 * "submission" and "submissions" on 127.0.0.1, state in $HATO_STATE or
 * ./var/hato).  conf_load(path) starts from the same defaults and applies
 * the file; an unknown section or key, or a bad value, is an error naming
 * file, line and key.  Every key is documented in docs/configuration.md
 * and etc/hato.conf.example.  Time spans are written as durations
 * (parse_duration), in every section alike.
 *
 * A loaded configuration is never changed: a reload (conf_reload) makes a
 * new one.  Whoever must finish under the configuration it started with
 * (an SMTP session, a delivery job) holds it (conf_hold) and lets go
 * (conf_free); it is freed when its last holder lets go.
 */
#ifndef HATO_CONF_H
#define HATO_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct limits {
	size_t command_line_max;       /* octets, CRLF included */
	size_t text_line_max;          /* octets of a DATA line, CRLF included */
	uint64_t message_size_max;     /* octets */
	unsigned recipients_max;       /* per transaction */
	unsigned received_max;         /* Received: headers before a loop is assumed */
	unsigned errors_soft;          /* errors before replies are delayed */
	unsigned errors_hard;          /* errors before 421 and close */
	unsigned error_delay_ms;       /* delay per reply past the soft limit */
	unsigned sessions_max;         /* concurrent sessions, all listeners */
	uint64_t min_free_space;       /* octets that must stay free in the spool */
	unsigned timeout_command;      /* seconds waiting for a command */
	unsigned timeout_data;         /* seconds waiting for the next DATA block */
	unsigned timeout_data_total;   /* seconds for the whole DATA phase */
	unsigned timeout_tls;          /* seconds for a TLS handshake */
	unsigned timeout_proxy;        /* seconds for a PROXY protocol header */
	size_t proxy_header_max;       /* octets of a PROXY protocol header */
	unsigned auth_failures_max;    /* failed AUTH in a session before 421 */
	unsigned auth_delay_ms;        /* delay of a failure reply, doubled per failure */
	unsigned auth_client_failures; /* failures per client address in the window */
	unsigned auth_client_window;   /* seconds over which client failures count */
	unsigned auth_client_lockout;  /* seconds AUTH is refused after that */
	/* per client address (IPv6: per /64); 0: no limit.  Trusted networks
	 * are exempt. */
	unsigned client_sessions_max; /* sessions open at once */
	unsigned client_connections_per_minute;
	unsigned client_messages_per_minute; /* MAIL commands accepted */
	unsigned client_recipients_per_minute;
	size_t client_table_size;    /* client addresses remembered at most */
	unsigned greeting_pass_time; /* seconds a client that waited quietly is not delayed */
};

/* What a client check does with a client that fails it. */
enum client_check {
	CLIENT_CHECK_OFF,
	CLIENT_CHECK_MARK,   /* an X-Hato-Client-Check: header on its mail */
	CLIENT_CHECK_REFUSE, /* refuse it */
};

/* One list of [dnsbl] zones: "zone[=filter]*weight" (Postfix's
 * postscreen_dnsbl_sites syntax).  filter: up to DNSBL_FILTERS_MAX
 * patterns separated by ';', each four octets written N or [N..M]. */
#define DNSBL_FILTERS_MAX 8
struct dnsbl_zone {
	char *zone;      /* queried as <reversed address>.zone */
	int weight;      /* negative: an allowlist */
	size_t nfilters; /* 0: any 127.0.0.0/8 answer counts */
	struct {
		unsigned char lo[4], hi[4];
	} filters[DNSBL_FILTERS_MAX];
};

/* [domain NAME]: how a local domain's mail is delivered. */
struct domain_conf {
	char *name;
	char **mailboxes; /* mailbox names besides the AUTH users */
	size_t nmailboxes;
	char *catch_all; /* local part that gets mail for unknown addresses */
	char *lmtp;      /* "unix:/path" or "host:port": deliver by LMTP */
};

/* [dkim NAME]: one DKIM signing key (src/dkim/dkim_sign.h). */
struct dkim_conf {
	char *name;
	char *domain;    /* d=: mail From: it or a subdomain is signed */
	char *selector;  /* s=: the key record is SELECTOR._domainkey.DOMAIN */
	char *key;       /* the private key, a PEM file */
	char *algorithm; /* "ed25519-sha256" or "rsa-sha256" */
	unsigned expire; /* seconds a signature is valid (x=); 0: no x= */
};

/* [milter NAME] on_failure: what a command or message gets when the filter fails. */
enum milter_failure {
	MILTER_FAIL_TEMPFAIL, /* 451 4.7.1 */
	MILTER_FAIL_ACCEPT,   /* as if the filter were not there */
};

/* [milter NAME]: a content filter speaking the milter protocol. */
struct milter_conf {
	char *name;
	char *address;              /* "unix:/path" or "IP:port", "[IPv6]:port" */
	struct sockaddr_storage ss; /* address, resolved by conf_load */
	socklen_t sslen;
	char **listeners;  /* the listeners whose mail it filters; none: all */
	size_t nlisteners; /* (right after listeners: KEY_LIST) */
	unsigned timeout_connect;
	unsigned timeout_reply;
	unsigned on_failure; /* enum milter_failure */
	size_t packet_max;   /* octets of the largest packet taken from it */
};

/* [senders]: which MAIL FROM addresses a user may use. */
struct sender_conf {
	char *user;
	char **addrs; /* "addr@domain", "@domain" (any address there) or "*" */
	size_t naddrs;
};

enum tls_mode {
	TLS_MODE_NONE,     /* plaintext only */
	TLS_MODE_STARTTLS, /* STARTTLS offered */
	TLS_MODE_REQUIRED, /* STARTTLS offered; MAIL refused until it is done */
	TLS_MODE_IMPLICIT, /* TLS from the first byte (RFC 8314) */
};

/* [auth] backend: where SMTP AUTH checks passwords. */
enum auth_backend {
	AUTH_BACKEND_FILE,    /* users_file, checked by hatod */
	AUTH_BACKEND_DOVECOT, /* Dovecot's auth-client socket */
};

/* [sql] backend: which database answers the lookup tables. */
enum sql_backend {
	SQL_BACKEND_NONE,   /* no lookup tables: the files alone */
	SQL_BACKEND_SQLITE, /* an SQLite file */
	SQL_BACKEND_PGSQL,  /* a PostgreSQL server (libpq) */
};

enum auth_mode {
	AUTH_MODE_NONE,     /* AUTH not offered (port 25) */
	AUTH_MODE_OPTIONAL, /* offered over TLS */
	AUTH_MODE_REQUIRED, /* offered over TLS; MAIL refused until done */
};

struct listener_conf {
	char *name;
	char *address; /* as written: "127.0.0.1:2525", "[::1]:25" */
	struct sockaddr_storage ss;
	socklen_t sslen;
	enum tls_mode tls;
	enum auth_mode auth;
	char *tls_cert; /* NULL: the server's */
	char *tls_key;
	bool proxy_protocol;         /* a PROXY header (v1 or v2) comes first */
	struct cidr *proxy_networks; /* the only peers that may send it */
	size_t nproxy_networks;
	/* the 220 waits this long; a client that talks first is refused.
	 * Default: 3s without AUTH, 0 with AUTH or implicit TLS. */
	unsigned greeting_delay_ms;
};

/* How much TLS a remote delivery insists on (per destination). */
enum tls_policy {
	TLS_POLICY_NONE,    /* never STARTTLS */
	TLS_POLICY_MAY,     /* STARTTLS when offered, certificate not checked */
	TLS_POLICY_ENCRYPT, /* TLS or no delivery; certificate not checked */
	TLS_POLICY_VERIFY,  /* TLS with a certificate that is trusted and names the host */
};

/* Where a remote delivery connects: "[host]:port", "host:port", "host". */
struct nexthop {
	char host[256]; /* a DNS name or an IP address, no brackets */
	unsigned port;  /* 0: [remote] port */
	bool mx;        /* look up host's MX records (written without brackets) */
};

/* One "key = value" line of a map section ([transport], [tls_policy]). */
struct map_entry {
	char *key; /* "example.net", ".example.net" (subdomains) or "*" */
	char *value;
};

/* An extra certificate, chosen by SNI for the names it carries. */
struct cert_conf {
	char *name;
	char *cert;
	char *key;
};

/* [metrics]: the Prometheus endpoint (metrics_http.h). */
struct metrics_conf {
	char *listen;      /* "127.0.0.1:9025"; NULL: no endpoint */
	bool allow_remote; /* a non-loopback listen address is allowed */
	unsigned timeout;  /* seconds a client may stay silent */
	size_t request_max;
	unsigned clients_max;
	struct sockaddr_storage ss; /* listen, resolved */
	socklen_t sslen;
};

struct conf {
	char *path; /* NULL for built-in defaults */
	char *hostname;
	char *state_dir;
	char *user;
	char *group;
	char **local_domains;
	char **local_domains_ascii; /* the same as A-labels, lower case */
	size_t nlocal_domains;
	struct cidr *trusted;
	size_t ntrusted;
	bool reverse_dns;
	unsigned commit_threads;
	bool commit_syncfs; /* commit_sync = syncfs */
	char *tls_cert;     /* NULL: self-signed, generated in state_dir/tls */
	char *tls_key;
	char *tls_ciphers;      /* TLS 1.2 cipher list */
	char *tls_ciphersuites; /* TLS 1.3 cipher suites */
	char *tls_min_version;  /* "TLSv1.2" or "TLSv1.3" */
	struct cert_conf *certs;
	size_t ncerts;
	char *users_file; /* user:hash lines; default state_dir/users */
	enum auth_backend auth_backend;
	char *dovecot_socket;      /* [auth] backend = dovecot: the auth-client socket */
	unsigned dovecot_timeout;  /* seconds for one answer from it */
	bool received_hide_client; /* authenticated mail: leave the client's IP out */
	bool log_json;             /* log_format = json */
	struct sender_conf *senders;
	size_t nsenders;
	char *control_socket;         /* default state_dir/control.sock */
	char *maildrop_dir;           /* default state_dir/maildrop */
	char *maildrop_group;         /* may write there (set-gid hato send) */
	unsigned control_socket_mode; /* 0600 or 0660 */

	/* [delivery] */
	bool delivery_hold;        /* hold = yes: nothing leaves the queue */
	char *mailbox_path;        /* template: %d domain, %u user (lower case) */
	char *aliases_file;        /* /etc/aliases syntax; NULL: none */
	char *delivery_lmtp;       /* LMTP for local domains without their own; NULL: Maildir */
	char *recipient_delimiter; /* "+": user+tag@ is user@; "" disables */
	bool alias_commands;       /* "|command" alias targets: must be off (no agent) */
	bool alias_files;          /* "/file" alias targets: must be off (no agent) */
	unsigned *retry_schedule;  /* seconds between attempts; the last repeats */
	size_t nretry;
	unsigned queue_lifetime;              /* seconds until a recipient fails */
	unsigned delivery_concurrency;        /* deliveries at once */
	unsigned delivery_concurrency_domain; /* ... per destination */
	struct domain_conf *domains;
	size_t ndomains;
	struct dkim_conf *dkim; /* [dkim NAME] sections, in file order */
	size_t ndkim;

	/* [remote]: mail for other domains */
	char *relayhost;             /* all remote mail goes there; NULL: MX lookup */
	bool relayhost_implicit_tls; /* TLS from the first byte (port 465) */
	enum tls_policy relayhost_tls;
	char *relayhost_auth_file; /* "user:password"; read by hatod before dropping privileges */
	char *relay_user;          /* from relayhost_auth_file (relay_auth_load) */
	char *relay_password;
	unsigned remote_port;       /* port of MX hosts (25) */
	enum tls_policy remote_tls; /* default policy for MX and transport hops */
	char *remote_tls_ca_file;   /* CAs for "verify"; NULL: the system's */
	char *remote_helo;          /* our EHLO name; NULL: hostname */
	unsigned remote_timeout_connect;
	unsigned remote_timeout_greeting;
	unsigned remote_timeout_command;
	unsigned remote_timeout_data_end;
	unsigned remote_reuse_time;  /* seconds an idle connection waits for the next message */
	unsigned delay_warning;      /* seconds in the queue before a delay notice; 0: never */
	struct map_entry *transport; /* [transport]: domain = next hop */
	size_t ntransport;
	struct map_entry *tls_policies; /* [tls_policy]: domain = none|may|encrypt|verify */
	size_t ntls_policies;
	/* [dns] */
	char *dns_servers;          /* "127.0.0.1:5353, [::1]"; NULL: /etc/resolv.conf */
	unsigned dns_timeout_ms;    /* the first try; c-ares doubles it per round */
	unsigned dns_tries;         /* rounds over the servers */
	size_t dns_cache_size;      /* answers the event loop's resolver keeps; 0: none */
	unsigned dns_cache_ttl_max; /* seconds an answer is kept at most */
	/* [checks]: SPF, DKIM and DMARC on listeners without AUTH */
	struct {
		bool enable, spf, dkim, dmarc;
		unsigned dmarc_reject;     /* enum checks_action: a failure under p=reject */
		unsigned dmarc_quarantine; /* ... under p=quarantine */
		unsigned spf_fail;         /* ... an SPF fail with no DKIM pass */
		unsigned temperror;        /* enum checks_temperror */
		unsigned timeout;          /* seconds for the checks of one message */
		char *public_suffix_list;
	} checks;
	/* [client_checks]: on listeners without AUTH */
	enum client_check check_fcrdns; /* reverse DNS that does not confirm forward */
	enum client_check check_helo;   /* HELO a bare IP address or our own name */
	/* [greylist] */
	bool greylist_enabled;
	unsigned greylist_delay;        /* seconds before a retry passes */
	unsigned greylist_retry_window; /* seconds a first attempt waits for its retry */
	unsigned greylist_pass_time;    /* seconds a passed triplet passes at once */
	size_t greylist_max_entries;
	char *greylist_file; /* default state_dir/greylist */
	/* [dnsbl] */
	struct dnsbl_zone *dnsbl_zones;
	size_t ndnsbl_zones;
	unsigned dnsbl_threshold;  /* a score this high refuses the client */
	unsigned dnsbl_timeout_ms; /* the greeting waits this long for the lists */
	unsigned dnsbl_cache_time; /* seconds a client's verdict is kept */

	struct metrics_conf metrics;

	/* [sql]: lookup tables in a database (lookup/sqlmap.h) */
	enum sql_backend sql_backend;
	char *sql_database;     /* SQLite file, or libpq conninfo / URI */
	char *sql_domain_query; /* each NULL: that question is not asked */
	char *sql_mailbox_query;
	char *sql_alias_query;
	char *sql_sender_query;
	unsigned sql_cache_ttl;   /* seconds an answer is kept; 0: none */
	size_t sql_cache_size;    /* answers kept at most */
	unsigned sql_timeout;     /* seconds for connecting, and for one answer */
	unsigned sql_connections; /* lookup threads, each with one connection */

	struct limits limits;
	struct listener_conf *listeners;
	size_t nlisteners;
	struct milter_conf *milters; /* in the order written */
	size_t nmilters;

	unsigned generation; /* 0 at start, one more for each reload */
	atomic_uint holders; /* conf_hold; freed when the last one lets go */
};

/* What a check's failure does to a message ([checks] dmarc_reject, ...). */
enum checks_action {
	CHECKS_NONE,   /* the header says so; delivered as usual */
	CHECKS_JUNK,   /* delivered into the Junk folder of Maildir mailboxes */
	CHECKS_HOLD,   /* queued on hold, for the administrator */
	CHECKS_REJECT, /* refused at the final dot, 550 5.7.1 */
};

/* What a DNS failure during the checks does ([checks] temperror). */
enum checks_temperror {
	CHECKS_TEMPERROR_ACCEPT,   /* take the message as if that check had no result */
	CHECKS_TEMPERROR_TEMPFAIL, /* 451 4.7.x: the client tries again later */
};

/* Load defaults and, when path != NULL, the file.  NULL with a message in
 * err on failure.  The caller is its one holder. */
struct conf *conf_load(const char *path, char *err, size_t errsz);

/*
 * Read the running configuration's file (old->path; the built-in defaults
 * when it has none) again, for a reload.  The keys that a running hatod
 * cannot change (conf_restart_key: state_dir, user, listener addresses,
 * ...) keep old's values in the new configuration; those that the file
 * changes are named in restart, "[server] state_dir, [listener smtp]
 * address", "" when none.  NULL with err ("FILE:LINE: key ...") when the
 * file does not load: old stays as it is.
 */
struct conf *conf_reload(const struct conf *old, char *restart, size_t restartsz, char *err,
			 size_t errsz);

/* Is "[section] key" one that only a restart changes?  section as a file
 * heads it, without the name: "server", "listener", "dns". */
bool conf_restart_key(const char *section, const char *key);

/* One more holder of c: it stays until each holder has let go. */
const struct conf *conf_hold(const struct conf *c);
/* Let go of c: freed when no holder is left (NULL: nothing). */
void conf_free(const struct conf *c);

/* The key schema, one line per key in the key table's order: the section
 * as a file heads it ("[limits]", "[listener NAME]"), the key, and " = "
 * with its default when it has one written in the table (a default that
 * starts "state_dir/" is below the final state_dir; a key without one is
 * unset, or its default comes from the system).  `hatod -k`. */
void conf_print_keys(FILE *f);

/* "none", "starttls", ... */
const char *tls_mode_name(enum tls_mode m);
/* "none", "optional", "required" */
const char *auth_mode_name(enum auth_mode m);
/* "file", "dovecot" */
const char *auth_backend_name(enum auth_backend b);
/* "none", "sqlite", "pgsql" */
const char *sql_backend_name(enum sql_backend b);

/* Parse a next hop: "[host]:port", "[host]", "host:port" or "host". */
bool nexthop_parse(const char *s, struct nexthop *out);

/* "off", "mark", "refuse" */
const char *client_check_name(enum client_check k);

/* "none", "may", "encrypt", "verify" */
const char *tls_policy_name(enum tls_policy p);
bool tls_policy_parse(const char *s, enum tls_policy *out);

/* Read relayhost_auth_file into relay_user/relay_password (hatod, before
 * dropping privileges).  The file must not be readable by others. */
bool relay_auth_load(struct conf *c, char *err, size_t errsz);

/* Parse a duration into seconds: "30s", "5m", "2h", "5d", or a plain
 * number of seconds.  Anything else ("5x", "-1", "5 m", "") and a value
 * over UINT32_MAX seconds is refused. */
bool parse_duration(const char *s, unsigned *out);

/* Parse "a.b.c.d/n" or "v6/n" (prefix optional). */
bool cidr_parse(const char *s, struct cidr *out);

/* One DNS server from [dns] servers. */
struct dns_server {
	struct sockaddr_storage ss; /* numeric address and port */
	socklen_t len;
};

/* Parse a [dns] servers list: addresses separated by commas or spaces, each
 * "IPv4", "IPv4:PORT", "IPv6", "[IPv6]" or "[IPv6]:PORT" (port 53 when not
 * given; no names: the resolver cannot look itself up).  At most max
 * servers; an empty list is valid (*n = 0: the system's resolver config). */
bool conf_parse_dns_servers(const char *s, struct dns_server *out, size_t max, size_t *n);

/* Is s a DKIM selector ([dkim] selector): dot-separated labels of
 * letters, digits, '-' and '_' (RFC 6376 §3.1), at most 63 octets? */
bool conf_dkim_selector_valid(const char *s);
/* Parse one [dnsbl] zones entry, "zone[=filter][*weight]"; false when it
 * is not one.  out->zone is allocated. */
bool conf_parse_dnsbl_zone(const char *s, struct dnsbl_zone *out);

/* Parse "host:port" / "[v6]:port" into a socket address. */
bool conf_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
