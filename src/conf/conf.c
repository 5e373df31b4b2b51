/*
 * conf.c - the key schema, the INI reader (inih) and value checks.
 *
 * Keys are described once, in key_table: section, name, type, where the
 * value goes, its range and its default.  The parser looks keys up there,
 * so an unknown key cannot be silently ignored and a new key is one row;
 * the defaults are read from the same rows by the same code as the file.
 * What the values mean at run time (trust, local domains, routes) is
 * decided by the modules that use them.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <ini.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "hato_limits.h"
#include "log.h"
#include "util.h"

enum key_type {
	KEY_STRING,       /* char * */
	KEY_BOOL,         /* bool */
	KEY_UINT,         /* unsigned, within [min, max] */
	KEY_SIZET,        /* size_t, within [min, max] */
	KEY_SIZE,         /* uint64_t with k/m/g suffix */
	KEY_DOMAINS,      /* local_domains list */
	KEY_CIDRS,        /* struct cidr * list with a size_t count right after it */
	KEY_TLSMODE,      /* enum tls_mode */
	KEY_TLSVER,       /* "TLSv1.2" / "TLSv1.3" into a char * */
	KEY_AUTHMODE,     /* enum auth_mode */
	KEY_SYNC,         /* commit_sync: "fsync" / "syncfs" into a bool */
	KEY_DURATION,     /* unsigned seconds: "30s", "5m", "2h", "5d" */
	KEY_RETRY,        /* retry_schedule: a list of durations */
	KEY_MODE,         /* 0600 or 0660 */
	KEY_LIST,         /* char ** list with a size_t count right after it */
	KEY_STRING_EMPTY, /* char *, may be empty */
	KEY_TLSPOLICY,    /* enum tls_policy */
	KEY_NEXTHOP,      /* char *, a next hop nexthop_parse() takes */
	KEY_DNS_SERVERS,  /* [dns] servers: checked, kept as written; empty is NULL */
	KEY_DURATION_MS,  /* unsigned milliseconds: "500ms", "5s", "1m" (plain: seconds) */
	KEY_AUTHBACKEND,  /* enum auth_backend */
	KEY_LOGFORMAT,    /* log_format: "keyvalue" / "json" into a bool */
	KEY_DKIM_ALG,     /* "ed25519-sha256" / "rsa-sha256" into a char * */
	KEY_CHOICE,       /* unsigned: the index of the value among the row's choices */
	KEY_DNSBL_ZONES,  /* [dnsbl] zones: "zone[=filter][*weight]" list */
	KEY_CHECK,        /* enum client_check: off, mark, refuse */
	KEY_SQLBACKEND,   /* enum sql_backend */
};

enum key_section {
	SEC_SERVER,
	SEC_LIMITS,
	SEC_LISTENER,
	SEC_CERTIFICATE,
	SEC_DELIVERY,
	SEC_DOMAIN,
	SEC_REMOTE,
	SEC_DNS,
	SEC_AUTH,
	SEC_DKIM,
	SEC_METRICS,
	SEC_CHECKS,
	SEC_MILTER,
	SEC_DNSBL,
	SEC_GREYLIST,
	SEC_CLIENT_CHECKS,
	SEC_SQL,
	SEC_COUNT
};

/* How a file heads each section, as `hatod -k` and the docs write it. */
static const char *const section_heads[] = {
	[SEC_SERVER] = "[server]",
	[SEC_LIMITS] = "[limits]",
	[SEC_LISTENER] = "[listener NAME]",
	[SEC_CERTIFICATE] = "[certificate NAME]",
	[SEC_DELIVERY] = "[delivery]",
	[SEC_DOMAIN] = "[domain NAME]",
	[SEC_REMOTE] = "[remote]",
	[SEC_DNS] = "[dns]",
	[SEC_AUTH] = "[auth]",
	[SEC_DKIM] = "[dkim NAME]",
	[SEC_METRICS] = "[metrics]",
	[SEC_CHECKS] = "[checks]",
	[SEC_MILTER] = "[milter NAME]",
	[SEC_DNSBL] = "[dnsbl]",
	[SEC_GREYLIST] = "[greylist]",
	[SEC_CLIENT_CHECKS] = "[client_checks]",
	[SEC_SQL] = "[sql]",
};
_Static_assert(sizeof(section_heads) / sizeof(section_heads[0]) == SEC_COUNT,
	       "every section has its head");

/*
 * One row per key: its section and name, how its value is read, where it
 * goes, its range (numbers and durations), and its default written as the
 * file would write it, read by the same code as the file.  A default that
 * starts "state_dir/" is taken relative to the final state_dir, once the
 * file is read; NULL: no default, or one that comes from the system
 * (conf_defaults).  docs/configuration.md shows the same defaults (an
 * end-to-end test compares them).
 */
struct key_def {
	enum key_section section;
	const char *name;
	enum key_type type;
	size_t offset; /* into struct conf, or struct listener_conf */
	uint64_t min, max;
	const char *dflt;
};

#define SRV(f) offsetof(struct conf, f)
#define LIM(f) (offsetof(struct conf, limits) + offsetof(struct limits, f))
#define LSN(f) offsetof(struct listener_conf, f)
#define CRT(f) offsetof(struct cert_conf, f)
#define DOM(f) offsetof(struct domain_conf, f)
#define MLT(f) offsetof(struct milter_conf, f)
#define DKM(f) offsetof(struct dkim_conf, f)

/* A default below state_dir, resolved after the file is read. */
#define STATE_DIR_PREFIX "state_dir/"
/* greeting_delay not written: chosen by the listener's role */
#define GREETING_DELAY_AUTO UINT32_MAX
#define GREETING_DELAY_MX_MS 3000 /* listeners without AUTH: where mail comes in */
#define DAY 86400u

static const struct key_def key_table[] = {
	{SEC_SERVER, "hostname", KEY_STRING, SRV(hostname), 0, 0, NULL},
	{SEC_SERVER, "state_dir", KEY_STRING, SRV(state_dir), 0, 0, NULL},
	{SEC_SERVER, "user", KEY_STRING, SRV(user), 0, 0, "hato"},
	{SEC_SERVER, "group", KEY_STRING, SRV(group), 0, 0, "hato"},
	{SEC_SERVER, "local_domains", KEY_DOMAINS, 0, 0, 0, NULL},
	{SEC_SERVER, "trusted_networks", KEY_CIDRS, SRV(trusted), 0, 0, NULL},
	{SEC_SERVER, "reverse_dns", KEY_BOOL, SRV(reverse_dns), 0, 0, "yes"},
	{SEC_SERVER, "commit_threads", KEY_UINT, SRV(commit_threads), 1, 64, "4"},
	{SEC_SERVER, "commit_sync", KEY_SYNC, SRV(commit_syncfs), 0, 0, "fsync"},
	{SEC_SERVER, "tls_cert", KEY_STRING, SRV(tls_cert), 0, 0, NULL},
	{SEC_SERVER, "tls_key", KEY_STRING, SRV(tls_key), 0, 0, NULL},
	/* TLS 1.2: forward secrecy and AEAD only */
	{SEC_SERVER, "tls_ciphers", KEY_STRING, SRV(tls_ciphers), 0, 0,
	 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	 "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"},
	{SEC_SERVER, "tls_ciphersuites", KEY_STRING, SRV(tls_ciphersuites), 0, 0,
	 "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"},
	{SEC_SERVER, "tls_min_version", KEY_TLSVER, SRV(tls_min_version), 0, 0, "TLSv1.2"},
	{SEC_SERVER, "users_file", KEY_STRING, SRV(users_file), 0, 0, STATE_DIR_PREFIX "users"},
	{SEC_SERVER, "control_socket", KEY_STRING, SRV(control_socket), 0, 0,
	 STATE_DIR_PREFIX "control.sock"},
	{SEC_SERVER, "maildrop_dir", KEY_STRING, SRV(maildrop_dir), 0, 0,
	 STATE_DIR_PREFIX "maildrop"},
	{SEC_SERVER, "maildrop_group", KEY_STRING, SRV(maildrop_group), 0, 0, "hatodrop"},
	{SEC_SERVER, "control_socket_mode", KEY_MODE, SRV(control_socket_mode), 0, 0, "0600"},
	{SEC_SERVER, "received_hide_client", KEY_BOOL, SRV(received_hide_client), 0, 0, "no"},
	{SEC_SERVER, "log_format", KEY_LOGFORMAT, SRV(log_json), 0, 0, "keyvalue"},
	{SEC_DELIVERY, "hold", KEY_BOOL, SRV(delivery_hold), 0, 0, "no"},
	{SEC_DELIVERY, "mailbox_path", KEY_STRING, SRV(mailbox_path), 0, 0,
	 STATE_DIR_PREFIX "mail/%d/%u"},
	{SEC_DELIVERY, "aliases_file", KEY_STRING, SRV(aliases_file), 0, 0, NULL},
	{SEC_DELIVERY, "lmtp", KEY_STRING, SRV(delivery_lmtp), 0, 0, NULL},
	{SEC_DELIVERY, "recipient_delimiter", KEY_STRING_EMPTY, SRV(recipient_delimiter), 0, 0,
	 "+"},
	{SEC_DELIVERY, "alias_commands", KEY_BOOL, SRV(alias_commands), 0, 0, "no"},
	{SEC_DELIVERY, "alias_files", KEY_BOOL, SRV(alias_files), 0, 0, "no"},
	{SEC_DELIVERY, "retry_schedule", KEY_RETRY, 0, 0, 0, "5m 10m 20m 40m 1h"},
	{SEC_DELIVERY, "queue_lifetime", KEY_DURATION, SRV(queue_lifetime), 1, 365 * DAY, "5d"},
	{SEC_DELIVERY, "concurrency", KEY_UINT, SRV(delivery_concurrency), 1, 10000, "20"},
	{SEC_DELIVERY, "concurrency_per_destination", KEY_UINT, SRV(delivery_concurrency_domain), 1,
	 10000, "20"},
	{SEC_REMOTE, "relayhost", KEY_NEXTHOP, SRV(relayhost), 0, 0, NULL},
	{SEC_REMOTE, "relayhost_implicit_tls", KEY_BOOL, SRV(relayhost_implicit_tls), 0, 0, "no"},
	{SEC_REMOTE, "relayhost_tls", KEY_TLSPOLICY, SRV(relayhost_tls), 0, 0, "may"},
	{SEC_REMOTE, "relayhost_auth_file", KEY_STRING, SRV(relayhost_auth_file), 0, 0, NULL},
	{SEC_REMOTE, "port", KEY_UINT, SRV(remote_port), 1, 65535, "25"},
	{SEC_REMOTE, "tls", KEY_TLSPOLICY, SRV(remote_tls), 0, 0, "may"},
	{SEC_REMOTE, "tls_ca_file", KEY_STRING, SRV(remote_tls_ca_file), 0, 0, NULL},
	{SEC_REMOTE, "helo_name", KEY_STRING, SRV(remote_helo), 0, 0, NULL},
	/* client timeouts, RFC 5321 §4.5.3.2 */
	{SEC_REMOTE, "timeout_connect", KEY_DURATION, SRV(remote_timeout_connect), 1, 3600, "30s"},
	{SEC_REMOTE, "timeout_greeting", KEY_DURATION, SRV(remote_timeout_greeting), 1, 3600, "5m"},
	{SEC_REMOTE, "timeout_command", KEY_DURATION, SRV(remote_timeout_command), 1, 3600, "5m"},
	{SEC_REMOTE, "timeout_data_end", KEY_DURATION, SRV(remote_timeout_data_end), 1, 3600,
	 "10m"},
	{SEC_REMOTE, "reuse_time", KEY_DURATION, SRV(remote_reuse_time), 0, 3600, "2s"},
	{SEC_REMOTE, "delay_warning", KEY_DURATION, SRV(delay_warning), 0, 365 * DAY, "0"},
	{SEC_DOMAIN, "mailboxes", KEY_LIST, DOM(mailboxes), 0, 0, NULL},
	{SEC_DOMAIN, "catch_all", KEY_STRING, DOM(catch_all), 0, 0, NULL},
	{SEC_DOMAIN, "lmtp", KEY_STRING, DOM(lmtp), 0, 0, NULL},
	/* 512 + room for ESMTP parameters */
	{SEC_LIMITS, "command_line_max", KEY_SIZET, LIM(command_line_max), 512, 65536, "2048"},
	/* RFC 5321 §4.5.3.1.6, CRLF included */
	{SEC_LIMITS, "text_line_max", KEY_SIZET, LIM(text_line_max), 1000, 1048576, "1000"},
	{SEC_LIMITS, "message_size_max", KEY_SIZE, LIM(message_size_max), 1024, (uint64_t)1 << 40,
	 "35m"},
	{SEC_LIMITS, "recipients_max", KEY_UINT, LIM(recipients_max), 1, 100000, "100"},
	{SEC_LIMITS, "received_max", KEY_UINT, LIM(received_max), 1, 1000, "100"},
	{SEC_LIMITS, "errors_soft", KEY_UINT, LIM(errors_soft), 0, 1000, "3"},
	{SEC_LIMITS, "errors_hard", KEY_UINT, LIM(errors_hard), 1, 1000, "20"},
	{SEC_LIMITS, "error_delay_ms", KEY_UINT, LIM(error_delay_ms), 0, 60000, "1000"},
	{SEC_LIMITS, "sessions_max", KEY_UINT, LIM(sessions_max), 1, 1000000, "10000"},
	{SEC_LIMITS, "min_free_space", KEY_SIZE, LIM(min_free_space), 0, UINT64_MAX, "100m"},
	/* server timeouts, RFC 5321 §4.5.3.2.7, .5 and .6 */
	{SEC_LIMITS, "timeout_command", KEY_DURATION, LIM(timeout_command), 1, DAY, "5m"},
	{SEC_LIMITS, "timeout_data", KEY_DURATION, LIM(timeout_data), 1, DAY, "3m"},
	{SEC_LIMITS, "timeout_data_total", KEY_DURATION, LIM(timeout_data_total), 1, DAY, "10m"},
	{SEC_LIMITS, "timeout_tls", KEY_DURATION, LIM(timeout_tls), 1, 3600, "30s"},
	/* listeners with proxy_protocol = yes: the header's deadline and size */
	{SEC_LIMITS, "timeout_proxy", KEY_DURATION, LIM(timeout_proxy), 1, 3600, "10s"},
	{SEC_LIMITS, "proxy_header_max", KEY_SIZET, LIM(proxy_header_max), PROXY_HEADER_MIN,
	 PROXY_HEADER_LIMIT, "1024"},
	{SEC_LIMITS, "auth_failures_max", KEY_UINT, LIM(auth_failures_max), 1, 100, "3"},
	/* the first failure's delay; doubled with each further one */
	{SEC_LIMITS, "auth_delay_ms", KEY_UINT, LIM(auth_delay_ms), 0, 60000, "1000"},
	{SEC_LIMITS, "auth_client_failures", KEY_UINT, LIM(auth_client_failures), 1, 100000, "10"},
	{SEC_LIMITS, "auth_client_window", KEY_DURATION, LIM(auth_client_window), 1, DAY, "10m"},
	{SEC_LIMITS, "auth_client_lockout", KEY_DURATION, LIM(auth_client_lockout), 0, DAY, "15m"},
	/* Postfix's smtpd_client_connection_count_limit; rates off, as there */
	{SEC_LIMITS, "client_sessions_max", KEY_UINT, LIM(client_sessions_max), 0, 1000000, "50"},
	{SEC_LIMITS, "client_connections_per_minute", KEY_UINT, LIM(client_connections_per_minute),
	 0, 1000000, "0"},
	{SEC_LIMITS, "client_messages_per_minute", KEY_UINT, LIM(client_messages_per_minute), 0,
	 1000000, "0"},
	{SEC_LIMITS, "client_recipients_per_minute", KEY_UINT, LIM(client_recipients_per_minute), 0,
	 10000000, "0"},
	{SEC_LIMITS, "client_table_size", KEY_SIZET, LIM(client_table_size), 16, 10000000, "20000"},
	/* postscreen_greet_ttl */
	{SEC_LIMITS, "greeting_pass_time", KEY_DURATION, LIM(greeting_pass_time), 0, 30 * DAY,
	 "1d"},
	{SEC_CLIENT_CHECKS, "fcrdns", KEY_CHECK, SRV(check_fcrdns), 0, 0, "off"},
	{SEC_CLIENT_CHECKS, "helo", KEY_CHECK, SRV(check_helo), 0, 0, "off"},
	/* postgrey's defaults */
	{SEC_GREYLIST, "enabled", KEY_BOOL, SRV(greylist_enabled), 0, 0, "no"},
	{SEC_GREYLIST, "delay", KEY_DURATION, SRV(greylist_delay), 1, DAY, "5m"},
	{SEC_GREYLIST, "retry_window", KEY_DURATION, SRV(greylist_retry_window), 1, 30 * DAY, "2d"},
	{SEC_GREYLIST, "pass_time", KEY_DURATION, SRV(greylist_pass_time), 1, 365 * DAY, "35d"},
	{SEC_GREYLIST, "max_entries", KEY_SIZET, SRV(greylist_max_entries), 16, 10000000, "100000"},
	{SEC_GREYLIST, "file", KEY_STRING, SRV(greylist_file), 0, 0, STATE_DIR_PREFIX "greylist"},
	{SEC_DNSBL, "zones", KEY_DNSBL_ZONES, 0, 0, 0, NULL},
	{SEC_DNSBL, "threshold", KEY_UINT, SRV(dnsbl_threshold), 1, 1000000, "1"},
	{SEC_DNSBL, "timeout", KEY_DURATION_MS, SRV(dnsbl_timeout_ms), 10, 60000, "3s"},
	{SEC_DNSBL, "cache_time", KEY_DURATION, SRV(dnsbl_cache_time), 0, DAY, "1h"},
	{SEC_DNS, "servers", KEY_DNS_SERVERS, SRV(dns_servers), 0, 0, NULL},
	/* c-ares waits this for the first try, twice as long for each further round */
	{SEC_DNS, "timeout", KEY_DURATION_MS, SRV(dns_timeout_ms), 10, 60000, "5s"},
	{SEC_DNS, "tries", KEY_UINT, SRV(dns_tries), 1, 5, "2"},
	{SEC_DNS, "cache_size", KEY_SIZET, SRV(dns_cache_size), 0, 10000000, "10000"},
	{SEC_DNS, "cache_ttl_max", KEY_DURATION, SRV(dns_cache_ttl_max), 0, 7 * DAY, "1d"},
	/* the Prometheus endpoint: off unless listen is set */
	{SEC_METRICS, "listen", KEY_STRING, SRV(metrics.listen), 0, 0, NULL},
	{SEC_METRICS, "allow_remote", KEY_BOOL, SRV(metrics.allow_remote), 0, 0, "no"},
	{SEC_METRICS, "timeout", KEY_DURATION, SRV(metrics.timeout), 1, 3600, "10s"},
	{SEC_METRICS, "request_max", KEY_SIZET, SRV(metrics.request_max), 256, 65536, "8192"},
	{SEC_METRICS, "clients_max", KEY_UINT, SRV(metrics.clients_max), 1, 1000, "16"},
	{SEC_CHECKS, "enable", KEY_BOOL, SRV(checks.enable), 0, 0, "yes"},
	{SEC_CHECKS, "spf", KEY_BOOL, SRV(checks.spf), 0, 0, "yes"},
	{SEC_CHECKS, "dkim", KEY_BOOL, SRV(checks.dkim), 0, 0, "yes"},
	{SEC_CHECKS, "dmarc", KEY_BOOL, SRV(checks.dmarc), 0, 0, "yes"},
	{SEC_CHECKS, "dmarc_reject", KEY_CHOICE, SRV(checks.dmarc_reject), 0, 0, "reject"},
	{SEC_CHECKS, "dmarc_quarantine", KEY_CHOICE, SRV(checks.dmarc_quarantine), 0, 0, "junk"},
	{SEC_CHECKS, "spf_fail", KEY_CHOICE, SRV(checks.spf_fail), 0, 0, "none"},
	{SEC_CHECKS, "temperror", KEY_CHOICE, SRV(checks.temperror), 0, 0, "tempfail"},
	{SEC_CHECKS, "timeout", KEY_DURATION, SRV(checks.timeout), 1, 3600, "20s"},
	{SEC_CHECKS, "public_suffix_list", KEY_STRING, SRV(checks.public_suffix_list), 0, 0,
	 "/usr/share/publicsuffix/public_suffix_list.dat"},
	{SEC_LISTENER, "address", KEY_STRING, LSN(address), 0, 0, NULL},
	{SEC_LISTENER, "tls", KEY_TLSMODE, LSN(tls), 0, 0, "starttls"},
	{SEC_LISTENER, "auth", KEY_AUTHMODE, LSN(auth), 0, 0, "none"},
	{SEC_LISTENER, "tls_cert", KEY_STRING, LSN(tls_cert), 0, 0, NULL},
	{SEC_LISTENER, "tls_key", KEY_STRING, LSN(tls_key), 0, 0, NULL},
	{SEC_LISTENER, "proxy_protocol", KEY_BOOL, LSN(proxy_protocol), 0, 0, "no"},
	{SEC_LISTENER, "proxy_networks", KEY_CIDRS, LSN(proxy_networks), 0, 0, NULL},
	{SEC_AUTH, "backend", KEY_AUTHBACKEND, SRV(auth_backend), 0, 0, "file"},
	{SEC_AUTH, "dovecot_socket", KEY_STRING, SRV(dovecot_socket), 0, 0, NULL},
	{SEC_AUTH, "dovecot_timeout", KEY_DURATION, SRV(dovecot_timeout), 1, 300, "30s"},
	{SEC_MILTER, "address", KEY_STRING, MLT(address), 0, 0, NULL},
	{SEC_MILTER, "listeners", KEY_LIST, MLT(listeners), 0, 0, NULL},
	{SEC_MILTER, "timeout_connect", KEY_DURATION, MLT(timeout_connect), 1, 3600, "30s"},
	{SEC_MILTER, "timeout_reply", KEY_DURATION, MLT(timeout_reply), 1, 3600, "1m"},
	{SEC_MILTER, "on_failure", KEY_CHOICE, MLT(on_failure), 0, 0, "tempfail"},
	/* a body chunk or replacement is at most 64 KiB; room for headers and replies */
	{SEC_MILTER, "packet_max", KEY_SIZE, MLT(packet_max), 65536, 64u << 20, "1m"},
	/* NULL: listener_defaults() picks by the listener's role */
	{SEC_LISTENER, "greeting_delay", KEY_DURATION_MS, LSN(greeting_delay_ms), 0, 300000, NULL},
	{SEC_SQL, "backend", KEY_SQLBACKEND, SRV(sql_backend), 0, 0, "none"},
	{SEC_SQL, "database", KEY_STRING, SRV(sql_database), 0, 0, NULL},
	{SEC_SQL, "domain_query", KEY_STRING, SRV(sql_domain_query), 0, 0, NULL},
	{SEC_SQL, "mailbox_query", KEY_STRING, SRV(sql_mailbox_query), 0, 0, NULL},
	{SEC_SQL, "alias_query", KEY_STRING, SRV(sql_alias_query), 0, 0, NULL},
	{SEC_SQL, "sender_query", KEY_STRING, SRV(sql_sender_query), 0, 0, NULL},
	{SEC_SQL, "cache_ttl", KEY_DURATION, SRV(sql_cache_ttl), 0, 3600, "30s"},
	{SEC_SQL, "cache_size", KEY_SIZET, SRV(sql_cache_size), 1, 10000000, "10000"},
	{SEC_SQL, "timeout", KEY_DURATION, SRV(sql_timeout), 1, 300, "5s"},
	{SEC_SQL, "connections", KEY_UINT, SRV(sql_connections), 1, 64, "4"},
	{SEC_CERTIFICATE, "cert", KEY_STRING, CRT(cert), 0, 0, NULL},
	{SEC_CERTIFICATE, "key", KEY_STRING, CRT(key), 0, 0, NULL},
	{SEC_DKIM, "domain", KEY_STRING, DKM(domain), 0, 0, NULL},
	{SEC_DKIM, "selector", KEY_STRING, DKM(selector), 0, 0, NULL},
	{SEC_DKIM, "key", KEY_STRING, DKM(key), 0, 0, NULL},
	{SEC_DKIM, "algorithm", KEY_DKIM_ALG, DKM(algorithm), 0, 0, "ed25519-sha256"},
	/* x= this long after t=; 0: signatures do not expire */
	{SEC_DKIM, "expire", KEY_DURATION, DKM(expire), 0, 365 * DAY, "0"},
};

#define KEY_TABLE_LEN (sizeof(key_table) / sizeof(key_table[0]))

struct parse_ctx {
	struct conf *c;
	FILE *f;
	int lineno;        /* of the line inih is working on */
	int err_line;      /* where err was found, 0: use inih's count */
	bool continuation; /* this line continues the previous value */
	bool have_key;     /* a key came before in this section */
	char err[512];     /* first error, "" when none */
};

/* Replace (or extend) a list of strings by a comma/space separated value. */
static bool set_domains(struct conf *c, const char *value, bool append)
{
	char *copy = xstrdup(value), *tok, *save = NULL;

	for (size_t i = 0; !append && i < c->nlocal_domains; i++)
		free(c->local_domains[i]);
	if (!append) {
		free(c->local_domains);
		c->local_domains = NULL;
		c->nlocal_domains = 0;
	}
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		c->local_domains =
			xrealloc(c->local_domains, (c->nlocal_domains + 1) * sizeof(char *));
		c->local_domains[c->nlocal_domains++] = xstrdup(tok);
	}
	free(copy);
	return true;
}

/* Replace (or extend) a list of networks by a comma/space separated list. */
static bool set_cidrs(struct cidr **list, size_t *n, const char *value, bool append)
{
	char *copy = xstrdup(value), *tok, *save = NULL;
	bool ok = true;

	if (!append) {
		free(*list);
		*list = NULL;
		*n = 0;
	}
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		*list = xrealloc(*list, (*n + 1) * sizeof(struct cidr));
		if (!cidr_parse(tok, &(*list)[*n])) {
			ok = false;
			break;
		}
		(*n)++;
	}
	free(copy);
	return ok;
}

/* Release the [dnsbl] zones. */
static void dnsbl_zones_free(struct conf *c)
{
	for (size_t i = 0; i < c->ndnsbl_zones; i++)
		free(c->dnsbl_zones[i].zone);
	free(c->dnsbl_zones);
	c->dnsbl_zones = NULL;
	c->ndnsbl_zones = 0;
}

/* Replace (or extend) the [dnsbl] zones by a comma/space separated list. */
static bool set_dnsbl_zones(struct conf *c, const char *value, bool append)
{
	char *copy = xstrdup(value), *tok, *save = NULL;
	bool ok = true;

	if (!append)
		dnsbl_zones_free(c);
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (c->ndnsbl_zones == DNSBL_ZONES_MAX) {
			ok = false;
			break;
		}
		c->dnsbl_zones =
			xrealloc(c->dnsbl_zones, (c->ndnsbl_zones + 1) * sizeof(*c->dnsbl_zones));
		if (!conf_parse_dnsbl_zone(tok, &c->dnsbl_zones[c->ndnsbl_zones])) {
			ok = false;
			break;
		}
		c->ndnsbl_zones++;
	}
	free(copy);
	return ok;
}

/* One octet pattern of a DNSBL filter, "N" or "[N..M]"; the rest in *end. */
static bool dnsbl_octet(const char *s, const char **end, unsigned char *lo, unsigned char *hi)
{
	char *e;
	unsigned long a, b;

	if (*s == '[') {
		if (s[1] < '0' || s[1] > '9')
			return false;
		a = strtoul(s + 1, &e, 10);
		if (strncmp(e, "..", 2) != 0 || e[2] < '0' || e[2] > '9')
			return false;
		b = strtoul(e + 2, &e, 10);
		if (*e != ']' || a > b || b > 255)
			return false;
		*end = e + 1;
	} else {
		if (*s < '0' || *s > '9')
			return false;
		a = b = strtoul(s, &e, 10);
		if (a > 255)
			return false;
		*end = e;
	}
	*lo = (unsigned char)a;
	*hi = (unsigned char)b;
	return true;
}

/* See conf.h. */
bool conf_parse_dnsbl_zone(const char *s, struct dnsbl_zone *out)
{
	const char *star = strrchr(s, '*'), *eq = strchr(s, '=');
	const char *zend = eq ? eq : star ? star : s + strlen(s);
	size_t zlen = (size_t)(zend - s);
	char zone[256];
	int64_t w = 1;

	memset(out, 0, sizeof(*out));
	if (zlen == 0 || zlen >= sizeof(zone) || (eq && star && star < eq))
		return false;
	memcpy(zone, s, zlen);
	zone[zlen] = '\0';
	if (zone[zlen - 1] == '.')
		zone[--zlen] = '\0';
	if (!addr_valid_domain(zone, zlen))
		return false;
	if (star) {
		char *e;
		w = strtoll(star + 1, &e, 10);
		if (e == star + 1 || *e != '\0' || w < -1000000 || w > 1000000)
			return false;
	}
	if (eq) {
		const char *p = eq + 1, *fend = star ? star : s + strlen(s);
		while (p < fend) {
			if (out->nfilters == DNSBL_FILTERS_MAX)
				return false;
			for (int i = 0; i < 4; i++) {
				if (!dnsbl_octet(p, &p, &out->filters[out->nfilters].lo[i],
						 &out->filters[out->nfilters].hi[i]))
					return false;
				if (i < 3 && *p++ != '.')
					return false;
			}
			out->nfilters++;
			if (p < fend && (*p++ != ';' || p == fend))
				return false; /* patterns are separated, not ended, by ';' */
		}
		if (out->nfilters == 0 || p != fend)
			return false;
	}
	out->zone = xstrdup(zone);
	out->weight = (int)w;
	return true;
}

/* See conf.h. */
bool parse_duration(const char *s, unsigned *out)
{
	char buf[32];
	size_t len = strlen(s);
	unsigned mult = 1;
	uint64_t v;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len + 1);
	switch (buf[len - 1]) {
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		len++; /* no unit: seconds */
	}
	buf[len - 1] = '\0';
	if (!parse_u64(buf, 0, UINT32_MAX / mult, &v))
		return false;
	*out = (unsigned)v * mult;
	return true;
}

/* A duration in milliseconds: "250ms", or anything parse_duration takes. */
static bool parse_duration_ms(const char *s, uint64_t *out)
{
	size_t len = strlen(s);
	unsigned secs;

	if (len > 2 && strcmp(s + len - 2, "ms") == 0) {
		char buf[32];

		if (len - 2 >= sizeof(buf))
			return false;
		memcpy(buf, s, len - 2);
		buf[len - 2] = '\0';
		return parse_u64(buf, 0, UINT32_MAX, out);
	}
	if (!parse_duration(s, &secs))
		return false;
	*out = (uint64_t)secs * 1000;
	return true;
}

/* retry_schedule = 5m 10m 20m 40m 1h: waits after each failed attempt. */
static bool set_retry(struct conf *c, const char *value)
{
	char *copy = xstrdup(value), *tok, *save = NULL;
	bool ok = true;

	free(c->retry_schedule);
	c->retry_schedule = NULL;
	c->nretry = 0;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		c->retry_schedule = xrealloc(c->retry_schedule, (c->nretry + 1) * sizeof(unsigned));
		if (!parse_duration(tok, &c->retry_schedule[c->nretry]) ||
		    c->retry_schedule[c->nretry] == 0) {
			ok = false;
			break;
		}
		c->nretry++;
	}
	free(copy);
	return ok && c->nretry > 0;
}

/* Replace a list of names by a comma/space separated value. */
static bool set_list(char ***list, size_t *n, const char *value)
{
	char *copy = xstrdup(value), *tok, *save = NULL;

	for (size_t i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		*list = xrealloc(*list, (*n + 1) * sizeof(char *));
		(*list)[(*n)++] = xstrdup(tok);
	}
	free(copy);
	return true;
}

/* A KEY_CHOICE key's values, "a|b|c", in the order of its enum. */
static const char *key_choices(const struct key_def *k)
{
	if (strcmp(k->name, "temperror") == 0)
		return "accept|tempfail"; /* enum checks_temperror */
	if (k->section == SEC_MILTER)
		return "tempfail|accept"; /* enum milter_failure (on_failure) */
	return "none|junk|hold|reject";   /* enum checks_action */
}

/* Store one value according to its key definition; append continues a list. */
static bool set_value(struct conf *c, void *base, const struct key_def *k, const char *value,
		      bool append)
{
	char *field = (char *)base + k->offset;
	uint64_t n;
	unsigned d;

	switch (k->type) {
	case KEY_STRING:
		if (*value == '\0')
			return false;
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return true;
	case KEY_BOOL:
		if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0)
			*(bool *)field = true;
		else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0)
			*(bool *)field = false;
		else
			return false;
		return true;
	case KEY_UINT:
		if (!parse_u64(value, k->min, k->max, &n))
			return false;
		*(unsigned *)field = (unsigned)n;
		return true;
	case KEY_SIZET:
		if (!parse_u64(value, k->min, k->max, &n))
			return false;
		*(size_t *)field = (size_t)n;
		return true;
	case KEY_SIZE:
		if (!parse_size(value, &n) || n < k->min || n > k->max)
			return false;
		*(uint64_t *)field = n;
		return true;
	case KEY_DOMAINS:
		return set_domains(c, value, append);
	case KEY_CIDRS:
		return set_cidrs((struct cidr **)field, (size_t *)(field + sizeof(struct cidr *)),
				 value, append);
	case KEY_TLSMODE:
		for (int m = TLS_MODE_NONE; m <= TLS_MODE_IMPLICIT; m++)
			if (strcmp(value, tls_mode_name((enum tls_mode)m)) == 0) {
				*(enum tls_mode *)field = (enum tls_mode)m;
				return true;
			}
		return false;
	case KEY_DURATION:
		if (!parse_duration(value, &d) || d < k->min || d > k->max)
			return false;
		*(unsigned *)field = d;
		return true;
	case KEY_RETRY:
		return set_retry(c, value);
	case KEY_MODE:
		if (strcmp(value, "0600") != 0 && strcmp(value, "0660") != 0)
			return false;
		*(unsigned *)field = value[2] == '6' ? 0660 : 0600;
		return true;
	case KEY_LIST:
		return set_list((char ***)field, (size_t *)(field + sizeof(char **)), value);
	case KEY_STRING_EMPTY:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return true;
	case KEY_DNS_SERVERS: {
		struct dns_server servers[DNS_SERVERS_MAX];
		size_t nservers;

		if (!conf_parse_dns_servers(value, servers, DNS_SERVERS_MAX, &nservers))
			return false;
		free(*(char **)field);
		*(char **)field = nservers > 0 ? xstrdup(value) : NULL;
		return true;
	}
	case KEY_DNSBL_ZONES:
		return set_dnsbl_zones(c, value, append);
	case KEY_CHECK:
		for (int m = CLIENT_CHECK_OFF; m <= CLIENT_CHECK_REFUSE; m++)
			if (strcmp(value, client_check_name((enum client_check)m)) == 0) {
				*(enum client_check *)field = (enum client_check)m;
				return true;
			}
		return false;
	case KEY_DURATION_MS:
		if (!parse_duration_ms(value, &n) || n < k->min || n > k->max)
			return false;
		*(unsigned *)field = (unsigned)n;
		return true;
	case KEY_SYNC:
		if (strcmp(value, "fsync") != 0 && strcmp(value, "syncfs") != 0)
			return false;
		*(bool *)field = value[1] == 'y';
		return true;
	case KEY_LOGFORMAT:
		if (strcmp(value, "keyvalue") != 0 && strcmp(value, "json") != 0)
			return false;
		*(bool *)field = value[0] == 'j';
		return true;
	case KEY_TLSPOLICY:
		return tls_policy_parse(value, (enum tls_policy *)field);
	case KEY_NEXTHOP: {
		struct nexthop h;

		if (!nexthop_parse(value, &h))
			return false;
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return true;
	}
	case KEY_AUTHBACKEND:
		for (int b = AUTH_BACKEND_FILE; b <= AUTH_BACKEND_DOVECOT; b++)
			if (strcmp(value, auth_backend_name((enum auth_backend)b)) == 0) {
				*(enum auth_backend *)field = (enum auth_backend)b;
				return true;
			}
		return false;
	case KEY_SQLBACKEND:
		for (int b = SQL_BACKEND_NONE; b <= SQL_BACKEND_PGSQL; b++)
			if (strcmp(value, sql_backend_name((enum sql_backend)b)) == 0) {
				*(enum sql_backend *)field = (enum sql_backend)b;
				return true;
			}
		return false;
	case KEY_AUTHMODE:
		for (int m = AUTH_MODE_NONE; m <= AUTH_MODE_REQUIRED; m++)
			if (strcmp(value, auth_mode_name((enum auth_mode)m)) == 0) {
				*(enum auth_mode *)field = (enum auth_mode)m;
				return true;
			}
		return false;
	case KEY_DKIM_ALG:
		if (strcmp(value, "ed25519-sha256") != 0 && strcmp(value, "rsa-sha256") != 0)
			return false;
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return true;
	case KEY_TLSVER:
		if (strcmp(value, "TLSv1.2") != 0 && strcmp(value, "TLSv1.3") != 0)
			return false;
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return true;
	case KEY_CHOICE: {
		size_t len = strlen(value);
		unsigned i = 0;

		for (const char *p = key_choices(k); p && *p; i++) {
			size_t wl = strcspn(p, "|");

			if (wl == len && strncmp(p, value, wl) == 0) {
				*(unsigned *)field = i;
				return true;
			}
			p += wl + (p[wl] == '|');
		}
		return false;
	}
	}
	return false;
}

/* Is k's default a path below state_dir (resolved once the file is read)? */
static bool default_in_state_dir(const struct key_def *k)
{
	return k->dflt != NULL && strncmp(k->dflt, STATE_DIR_PREFIX, strlen(STATE_DIR_PREFIX)) == 0;
}

/* Set the defaults of section sec's rows on base (struct conf, or the
 * section's own record), except those below state_dir. */
static void table_defaults(struct conf *c, void *base, enum key_section sec)
{
	for (size_t i = 0; i < KEY_TABLE_LEN; i++) {
		const struct key_def *k = &key_table[i];

		if (k->section != sec || k->dflt == NULL || default_in_state_dir(k))
			continue;
		if (!set_value(c, base, k, k->dflt, false))
			fatalx("key table: the default of \"%s\" is not a valid value", k->name);
	}
}

/* Fill the keys below state_dir that the file left unset. */
static void table_defaults_state_dir(struct conf *c)
{
	for (size_t i = 0; i < KEY_TABLE_LEN; i++) {
		const struct key_def *k = &key_table[i];
		char **field = (char **)((char *)c + k->offset);
		const char *rest;
		size_t n;

		if (!default_in_state_dir(k) || *field != NULL)
			continue;
		rest = k->dflt + strlen(STATE_DIR_PREFIX);
		n = strlen(c->state_dir) + 1 + strlen(rest) + 1;
		*field = xmalloc(n);
		snprintf(*field, n, "%s/%s", c->state_dir, rest);
	}
}

/* The listener named name, created on first use. */
static struct listener_conf *listener_get(struct conf *c, const char *name)
{
	struct listener_conf *l;

	for (size_t i = 0; i < c->nlisteners; i++)
		if (strcmp(c->listeners[i].name, name) == 0)
			return &c->listeners[i];
	c->listeners = xrealloc(c->listeners, (c->nlisteners + 1) * sizeof(*c->listeners));
	l = &c->listeners[c->nlisteners++];
	memset(l, 0, sizeof(*l));
	l->name = xstrdup(name);
	table_defaults(c, l, SEC_LISTENER);
	l->greeting_delay_ms = GREETING_DELAY_AUTO;
	return l;
}

/* The defaults that depend on a listener's role: a greeting delay where
 * mail comes in from the world, none where people submit theirs. */
static void listener_defaults(struct conf *c)
{
	for (size_t i = 0; i < c->nlisteners; i++) {
		struct listener_conf *l = &c->listeners[i];
		bool submission = l->auth != AUTH_MODE_NONE || l->tls == TLS_MODE_IMPLICIT;

		if (l->greeting_delay_ms == GREETING_DELAY_AUTO)
			l->greeting_delay_ms = submission ? 0 : GREETING_DELAY_MX_MS;
	}
}

/* See conf.h. */
const char *tls_mode_name(enum tls_mode m)
{
	static const char *const names[] = {"none", "starttls", "required", "implicit"};
	return names[m];
}

/* See conf.h. */
const char *client_check_name(enum client_check k)
{
	static const char *const names[] = {"off", "mark", "refuse"};
	return names[k];
}

/* See conf.h. */
const char *auth_mode_name(enum auth_mode m)
{
	static const char *const names[] = {"none", "optional", "required"};
	return names[m];
}

/* See conf.h. */
const char *auth_backend_name(enum auth_backend b)
{
	static const char *const names[] = {"file", "dovecot"};
	return names[b];
}

/* See conf.h. */
const char *sql_backend_name(enum sql_backend b)
{
	static const char *const names[] = {"none", "sqlite", "pgsql"};
	return names[b];
}

/* [senders] user = addr, addr ...: a user's sender addresses (repeatable). */
static bool set_senders(struct conf *c, const char *user, const char *value)
{
	struct sender_conf *sc = NULL;
	char *copy, *tok, *save = NULL;

	for (size_t i = 0; i < c->nsenders; i++)
		if (strcmp(c->senders[i].user, user) == 0)
			sc = &c->senders[i];
	if (sc == NULL) {
		c->senders = xrealloc(c->senders, (c->nsenders + 1) * sizeof(*c->senders));
		sc = &c->senders[c->nsenders++];
		memset(sc, 0, sizeof(*sc));
		sc->user = xstrdup(user);
	}
	copy = xstrdup(value);
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (strcmp(tok, "*") != 0 && strchr(tok, '@') == NULL) {
			free(copy);
			return false;
		}
		sc->addrs = xrealloc(sc->addrs, (sc->naddrs + 1) * sizeof(char *));
		sc->addrs[sc->naddrs++] = xstrdup(tok);
	}
	free(copy);
	return true;
}

/* The [domain NAME] section's record, created on first use. */
static struct domain_conf *domain_get(struct conf *c, const char *name)
{
	struct domain_conf *d;

	for (size_t i = 0; i < c->ndomains; i++)
		if (strcasecmp(c->domains[i].name, name) == 0)
			return &c->domains[i];
	c->domains = xrealloc(c->domains, (c->ndomains + 1) * sizeof(*c->domains));
	d = &c->domains[c->ndomains++];
	memset(d, 0, sizeof(*d));
	d->name = xstrdup(name);
	return d;
}

/* The [milter NAME] section's record, created on first use (so the
 * filters keep the order they are written in). */
static struct milter_conf *milter_get(struct conf *c, const char *name)
{
	struct milter_conf *m;

	for (size_t i = 0; i < c->nmilters; i++)
		if (strcmp(c->milters[i].name, name) == 0)
			return &c->milters[i];
	c->milters = xrealloc(c->milters, (c->nmilters + 1) * sizeof(*c->milters));
	m = &c->milters[c->nmilters++];
	memset(m, 0, sizeof(*m));
	m->name = xstrdup(name);
	table_defaults(c, m, SEC_MILTER);
	return m;
}

/* The extra certificate named name, created on first use. */
static struct cert_conf *cert_get(struct conf *c, const char *name)
{
	struct cert_conf *cc;

	for (size_t i = 0; i < c->ncerts; i++)
		if (strcmp(c->certs[i].name, name) == 0)
			return &c->certs[i];
	c->certs = xrealloc(c->certs, (c->ncerts + 1) * sizeof(*c->certs));
	cc = &c->certs[c->ncerts++];
	memset(cc, 0, sizeof(*cc));
	cc->name = xstrdup(name);
	return cc;
}

/* The [dkim NAME] section's record, created on first use. */
static struct dkim_conf *dkim_get(struct conf *c, const char *name)
{
	struct dkim_conf *d;

	for (size_t i = 0; i < c->ndkim; i++)
		if (strcmp(c->dkim[i].name, name) == 0)
			return &c->dkim[i];
	c->dkim = xrealloc(c->dkim, (c->ndkim + 1) * sizeof(*c->dkim));
	d = &c->dkim[c->ndkim++];
	memset(d, 0, sizeof(*d));
	d->name = xstrdup(name);
	table_defaults(c, d, SEC_DKIM);
	return d;
}

/* Is this a known section name ("server", "listener smtp", ...)? */
static bool section_known(const char *name, size_t len)
{
	if ((len == 6 && strncmp(name, "server", 6) == 0) ||
	    (len == 6 && strncmp(name, "limits", 6) == 0) ||
	    (len == 3 && strncmp(name, "dns", 3) == 0) ||
	    (len == 4 && strncmp(name, "auth", 4) == 0) ||
	    (len == 7 && strncmp(name, "metrics", 7) == 0) ||
	    (len == 6 && strncmp(name, "checks", 6) == 0) ||
	    (len == 5 && strncmp(name, "dnsbl", 5) == 0) ||
	    (len == 8 && strncmp(name, "greylist", 8) == 0) ||
	    (len == 13 && strncmp(name, "client_checks", 13) == 0) ||
	    (len == 3 && strncmp(name, "sql", 3) == 0) ||
	    (len == 7 && strncmp(name, "senders", 7) == 0) ||
	    (len == 8 && strncmp(name, "delivery", 8) == 0) ||
	    (len == 6 && strncmp(name, "remote", 6) == 0) ||
	    (len == 9 && strncmp(name, "transport", 9) == 0) ||
	    (len == 10 && strncmp(name, "tls_policy", 10) == 0))
		return true;
	if (len > 7 && strncmp(name, "domain ", 7) == 0)
		return true;
	if (len > 5 && strncmp(name, "dkim ", 5) == 0)
		return true;
	if (len > 9 && strncmp(name, "listener ", 9) == 0)
		return true;
	if (len > 7 && strncmp(name, "milter ", 7) == 0)
		return true;
	return len > 12 && strncmp(name, "certificate ", 12) == 0;
}

/*
 * inih line reader: counts lines, refuses over-long lines (inih would split
 * them into bogus keys), checks section names even for sections without
 * keys (inih only reports keys), and marks continuation lines.
 */
static char *conf_reader(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	size_t len;
	bool content;
	char *p;

	if (fgets(str, num, ctx->f) == NULL)
		return NULL;
	ctx->lineno++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(ctx->f)) {
		int ch;
		while ((ch = fgetc(ctx->f)) != EOF && ch != '\n')
			;
		if (ctx->err[0] == '\0') {
			snprintf(ctx->err, sizeof(ctx->err), "line longer than %d characters",
				 num - 2);
			ctx->err_line = ctx->lineno;
		}
		str[0] = '\0';
		return str;
	}
	p = str + strspn(str, " \t");
	content = *p != '\0' && *p != '\n' && *p != '\r' && *p != ';' && *p != '#';
	/* as inih sees it: indented text continues the previous key, if any */
	ctx->continuation = content && p != str && ctx->have_key;
	if (content && !ctx->continuation)
		ctx->have_key = *p != '[';
	if (*p == '[' && !ctx->continuation && ctx->err[0] == '\0') {
		char *close = strchr(p, ']');
		if (close != NULL && !section_known(p + 1, (size_t)(close - p - 1))) {
			snprintf(ctx->err, sizeof(ctx->err), "unknown section [%.*s]",
				 (int)(close - p - 1), p + 1);
			ctx->err_line = ctx->lineno;
		}
	}
	return str;
}

/* Is key a map key: a domain, ".domain" (its subdomains) or "*"? */
static bool map_key_ok(const char *key)
{
	if (strcmp(key, "*") == 0)
		return true;
	if (key[0] == '.')
		key++;
	return addr_valid_domain(key, strlen(key));
}

/* One line of [transport] (domain = next hop) or [tls_policy] (domain = policy). */
static int map_line(struct parse_ctx *ctx, const char *section, const char *name, const char *value)
{
	struct conf *c = ctx->c;
	bool transport = strcmp(section, "transport") == 0;
	struct map_entry **m = transport ? &c->transport : &c->tls_policies;
	size_t *n = transport ? &c->ntransport : &c->ntls_policies;
	struct nexthop h;
	enum tls_policy p;

	if (!map_key_ok(name)) {
		snprintf(ctx->err, sizeof(ctx->err),
			 "key \"%s\" in [%s]: not a domain, .domain or *", name, section);
		return 0;
	}
	if (ctx->continuation ||
	    (transport ? !nexthop_parse(value, &h) : !tls_policy_parse(value, &p))) {
		snprintf(ctx->err, sizeof(ctx->err),
			 "key \"%s\" in [%s]: bad value \"%s\" (want %s)", name, section, value,
			 transport ? "host, host:port, [host] or [host]:port"
				   : "none, may, encrypt or verify");
		return 0;
	}
	*m = xrealloc(*m, (*n + 1) * sizeof(**m));
	(*m)[*n].key = xstrdup(name);
	(*m)[(*n)++].value = xstrdup(value);
	return 1;
}

/* inih callback: one key = value in a section. */
static int conf_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	enum key_section sec;
	void *base = ctx->c;
	const char *lname = NULL;

	if (ctx->err[0] != '\0')
		return 0;
	if (strcmp(section, "server") == 0) {
		sec = SEC_SERVER;
	} else if (strcmp(section, "limits") == 0) {
		sec = SEC_LIMITS;
	} else if (strncmp(section, "listener ", 9) == 0 && section[9] != '\0') {
		sec = SEC_LISTENER;
		lname = section + 9;
	} else if (strcmp(section, "senders") == 0) {
		if (name == NULL)
			return 1;
		if (!set_senders(ctx->c, name, value)) {
			snprintf(ctx->err, sizeof(ctx->err),
				 "user \"%s\" in [senders]: bad value \"%s\" (want addresses, "
				 "@domain or *)",
				 name, value);
			return 0;
		}
		return 1;
	} else if (strcmp(section, "transport") == 0 || strcmp(section, "tls_policy") == 0) {
		return name == NULL ? 1 : map_line(ctx, section, name, value);
	} else if (strcmp(section, "remote") == 0) {
		sec = SEC_REMOTE;
	} else if (strncmp(section, "certificate ", 12) == 0 && section[12] != '\0') {
		sec = SEC_CERTIFICATE;
		lname = section + 12;
	} else if (strcmp(section, "delivery") == 0) {
		sec = SEC_DELIVERY;
	} else if (strcmp(section, "dns") == 0) {
		sec = SEC_DNS;
	} else if (strcmp(section, "auth") == 0) {
		sec = SEC_AUTH;
	} else if (strcmp(section, "metrics") == 0) {
		sec = SEC_METRICS;
	} else if (strcmp(section, "checks") == 0) {
		sec = SEC_CHECKS;
	} else if (strcmp(section, "dnsbl") == 0) {
		sec = SEC_DNSBL;
	} else if (strcmp(section, "greylist") == 0) {
		sec = SEC_GREYLIST;
	} else if (strcmp(section, "client_checks") == 0) {
		sec = SEC_CLIENT_CHECKS;
	} else if (strcmp(section, "sql") == 0) {
		sec = SEC_SQL;
	} else if (strncmp(section, "domain ", 7) == 0 && section[7] != '\0') {
		sec = SEC_DOMAIN;
		lname = section + 7;
	} else if (strncmp(section, "milter ", 7) == 0 && section[7] != '\0') {
		sec = SEC_MILTER;
		lname = section + 7;
	} else if (strncmp(section, "dkim ", 5) == 0 && section[5] != '\0') {
		sec = SEC_DKIM;
		lname = section + 5;
	} else {
		snprintf(ctx->err, sizeof(ctx->err), "unknown section [%s]", section);
		return 0;
	}
	if (name == NULL) /* a section header alone */
		return 1;
	if (sec == SEC_LISTENER)
		base = listener_get(ctx->c, lname);
	else if (sec == SEC_CERTIFICATE)
		base = cert_get(ctx->c, lname);
	else if (sec == SEC_DOMAIN)
		base = domain_get(ctx->c, lname);
	else if (sec == SEC_MILTER)
		base = milter_get(ctx->c, lname);
	else if (sec == SEC_DKIM)
		base = dkim_get(ctx->c, lname);
	for (size_t i = 0; i < sizeof(key_table) / sizeof(key_table[0]); i++) {
		const struct key_def *k = &key_table[i];
		if (k->section != sec || strcmp(k->name, name) != 0)
			continue;
		bool list = k->type == KEY_DOMAINS || k->type == KEY_CIDRS ||
			    k->type == KEY_DNSBL_ZONES;
		if (ctx->continuation && !list) {
			snprintf(ctx->err, sizeof(ctx->err),
				 "key \"%s\" in [%s]: continuation line, but only lists may span "
				 "lines",
				 name, section);
			return 0;
		}
		if (!set_value(ctx->c, base, k, value, ctx->continuation)) {
			snprintf(ctx->err, sizeof(ctx->err), "key \"%s\" in [%s]: bad value \"%s\"",
				 name, section, value);
			return 0;
		}
		return 1;
	}
	snprintf(ctx->err, sizeof(ctx->err), "unknown key \"%s\" in [%s]", name, section);
	return 0;
}

/* See conf.h. */
void conf_print_keys(FILE *f)
{
	for (size_t i = 0; i < KEY_TABLE_LEN; i++) {
		const struct key_def *k = &key_table[i];
		const char *head = section_heads[k->section];

		fprintf(f, "%s %s", head ? head : "[?]", k->name);
		if (k->dflt != NULL)
			fprintf(f, " = %s", k->dflt);
		fputc('\n', f);
	}
}

/* See conf.h. */
bool conf_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256], port[16];
	const char *colon;
	struct addrinfo hints, *res;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			return false;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strchr(s, ':');
		/* one colon only: an IPv6 address must be written [addr]:port */
		if (colon == NULL || strchr(colon + 1, ':') || (size_t)(colon - s) >= sizeof(host))
			return false;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	}
	if (!strcpy_bounded(port, colon + 1, sizeof(port)))
		return false;
	{
		uint64_t p;
		if (!parse_u64(port, 0, 65535, &p))
			return false;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res) != 0)
		return false;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

/* One "IPv4[:PORT]", "IPv6" or "[IPv6][:PORT]" of a [dns] servers list. */
static bool dns_server_parse(const char *tok, struct dns_server *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *start = tok, *port = NULL, *colon;
	size_t hlen;
	uint64_t p = 53;
	bool bracketed = tok[0] == '[';

	if (bracketed) {
		const char *close = strchr(tok, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return false;
		start = tok + 1;
		hlen = (size_t)(close - start);
		if (close[1] == ':')
			port = close + 2;
	} else if ((colon = strchr(tok, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		hlen = (size_t)(colon - tok); /* one colon: IPv4:PORT */
		port = colon + 1;
	} else {
		hlen = strlen(tok); /* IPv4, or IPv6 without a port */
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return false;
	memcpy(host, start, hlen);
	host[hlen] = '\0';
	if (port != NULL && !parse_u64(port, 1, 65535, &p))
		return false;
	memset(out, 0, sizeof(*out));
	if (!bracketed &&
	    inet_pton(AF_INET, host, &((struct sockaddr_in *)&out->ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		out->len = sizeof(*sin);
		return true;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&out->ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		out->len = sizeof(*sin6);
		return true;
	}
	return false;
}

/* See conf.h. */
bool conf_parse_dns_servers(const char *s, struct dns_server *out, size_t max, size_t *n)
{
	char *copy = xstrdup(s), *tok, *save = NULL;
	bool ok = true;

	*n = 0;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (*n == max || !dns_server_parse(tok, &out[*n])) {
			ok = false;
			break;
		}
		(*n)++;
	}
	free(copy);
	return ok;
}

/* See conf.h. */
bool nexthop_parse(const char *s, struct nexthop *out)
{
	const char *end, *colon;
	size_t hlen;
	uint64_t port = 0;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL)
			return false;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return false;
		s++;
	} else {
		out->mx = true;
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return false; /* an IPv6 address goes in brackets */
		end = colon != NULL ? colon : s + strlen(s);
	}
	hlen = (size_t)(end - s);
	if (hlen == 0 || hlen >= sizeof(out->host))
		return false;
	memcpy(out->host, s, hlen);
	out->host[hlen] = '\0';
	if (colon != NULL && !parse_u64(colon + 1, 1, 65535, &port))
		return false;
	out->port = (unsigned)port;
	if (!out->mx) {
		unsigned char a[16];

		return inet_pton(AF_INET, out->host, a) == 1 ||
		       inet_pton(AF_INET6, out->host, a) == 1 || addr_valid_domain(out->host, hlen);
	}
	return addr_valid_domain(out->host, hlen);
}

/* See conf.h. */
const char *tls_policy_name(enum tls_policy p)
{
	static const char *const names[] = {"none", "may", "encrypt", "verify"};
	return names[p];
}

/* See conf.h. */
bool tls_policy_parse(const char *s, enum tls_policy *out)
{
	for (int p = TLS_POLICY_NONE; p <= TLS_POLICY_VERIFY; p++)
		if (strcmp(s, tls_policy_name((enum tls_policy)p)) == 0) {
			*out = (enum tls_policy)p;
			return true;
		}
	return false;
}

/* See conf.h. */
bool relay_auth_load(struct conf *c, char *err, size_t errsz)
{
	char line[1024];
	struct stat st;
	char *colon;
	FILE *f;

	if (c->relayhost_auth_file == NULL)
		return true;
	f = fopen(c->relayhost_auth_file, "r");
	if (f == NULL) {
		snprintf(err, errsz, "%s: cannot open: %m", c->relayhost_auth_file);
		return false;
	}
	if (fstat(fileno(f), &st) != 0 || (st.st_mode & 0077) != 0) {
		snprintf(err, errsz, "%s: must not be readable by group or others (chmod 600)",
			 c->relayhost_auth_file);
		fclose(f);
		return false;
	}
	if (fgets(line, sizeof(line), f) == NULL) {
		line[0] = '\0';
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	colon = strchr(line, ':');
	if (colon == NULL || colon == line || colon[1] == '\0') {
		snprintf(err, errsz, "%s: want one line \"user:password\"", c->relayhost_auth_file);
		explicit_bzero(line, sizeof(line));
		return false;
	}
	*colon = '\0';
	free(c->relay_user);
	c->relay_user = xstrdup(line);
	if (c->relay_password != NULL)
		explicit_bzero(c->relay_password, strlen(c->relay_password));
	free(c->relay_password);
	c->relay_password = xstrdup(colon + 1);
	explicit_bzero(line, sizeof(line));
	return true;
}

/* See conf.h. */
bool cidr_parse(const char *s, struct cidr *out)
{
	char buf[64];
	char *slash;
	uint64_t prefix;
	unsigned max;

	if (!strcpy_bounded(buf, s, sizeof(buf)))
		return false;
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	if (slash == NULL)
		prefix = max;
	else if (!parse_u64(slash + 1, 0, max, &prefix))
		return false;
	out->prefix = (unsigned)prefix;
	return true;
}

/* Is name one of local_domains as written (before the A-label forms exist)? */
static bool conf_is_local_domain_text(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nlocal_domains; i++)
		if (strcasecmp(c->local_domains[i], name) == 0)
			return true;
	return false;
}

/* The built-in defaults: the key table's, then those the system gives
 * (the host name, $HATO_STATE, the local domains that follow from them). */
static struct conf *conf_defaults(void)
{
	static const enum key_section plain[] = {
		SEC_SERVER,  SEC_LIMITS, SEC_DELIVERY, SEC_REMOTE,   SEC_DNS,           SEC_AUTH,
		SEC_METRICS, SEC_CHECKS, SEC_DNSBL,    SEC_GREYLIST, SEC_CLIENT_CHECKS, SEC_SQL};
	struct conf *c = xcalloc(1, sizeof(*c));
	char host[256];
	const char *state = getenv("HATO_STATE");

	atomic_init(&c->holders, 1);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		table_defaults(c, c, plain[i]);
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	c->hostname = xstrdup(host);
	c->state_dir = xstrdup(state && *state ? state : "./var/hato");
	c->local_domains = xcalloc(2, sizeof(char *));
	c->local_domains[c->nlocal_domains++] = xstrdup("localhost");
	if (strcasecmp(host, "localhost") != 0)
		c->local_domains[c->nlocal_domains++] = xstrdup(host);
	return c;
}

/* See conf.h. */
bool conf_dkim_selector_valid(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char ch = s[i];

		if (ch == '.' || ch == '\0') {
			if (label == 0)
				return false;
			label = 0;
		} else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_')) {
			return false;
		} else {
			label++;
		}
	}
	return true;
}

/* Is ss a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)? */
static bool address_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* [metrics]: the listen address resolved, and loopback unless allow_remote. */
static bool metrics_check(struct metrics_conf *m, char *err, size_t errsz)
{
	if (m->listen == NULL)
		return true;
	if (!conf_parse_address(m->listen, &m->ss, &m->sslen)) {
		snprintf(err, errsz,
			 "[metrics]: key \"listen\": bad value \"%s\" (want IP:PORT or "
			 "[IPv6]:PORT)",
			 m->listen);
		return false;
	}
	if (!m->allow_remote && !address_is_loopback(&m->ss)) {
		snprintf(err, errsz,
			 "[metrics]: key \"listen\": %s is not a loopback address; the metrics "
			 "endpoint has no authentication: set allow_remote = yes to serve it to "
			 "other hosts",
			 m->listen);
		return false;
	}
	return true;
}

/* Resolve a milter address: "unix:/path", or "IP:port" / "[IPv6]:port". */
static bool milter_address(struct milter_conf *m)
{
	const char *s = m->address;

	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&m->ss;
		if (s[5] != '/' || strlen(s + 5) >= sizeof(un->sun_path))
			return false;
		memset(un, 0, sizeof(*un));
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, s + 5);
		m->sslen = sizeof(*un);
		return true;
	}
	return strncmp(s, "*:", 2) != 0 && conf_parse_address(s, &m->ss, &m->sslen);
}

/* Each [milter NAME] has an address, and names listeners that exist. */
static bool milters_check(struct conf *c, char *err, size_t errsz)
{
	for (size_t i = 0; i < c->nmilters; i++) {
		struct milter_conf *m = &c->milters[i];

		if (m->address == NULL || !milter_address(m)) {
			snprintf(err, errsz,
				 "[milter %s]: key \"address\": %s \"%s\" (want unix:/path, "
				 "IP:PORT or [IPv6]:PORT)",
				 m->name, m->address ? "bad value" : "required",
				 m->address ? m->address : "");
			return false;
		}
		for (size_t j = 0; j < m->nlisteners; j++) {
			size_t k = 0;
			while (k < c->nlisteners &&
			       strcmp(c->listeners[k].name, m->listeners[j]) != 0)
				k++;
			if (k == c->nlisteners) {
				snprintf(err, errsz,
					 "[milter %s]: key \"listeners\": no [listener %s]",
					 m->name, m->listeners[j]);
				return false;
			}
		}
	}
	return true;
}

/* [sql]: a backend needs its database and at least one query; queries
 * without a backend would be silently unused. */
static bool conf_check_sql(const struct conf *c, char *err, size_t errsz)
{
	bool any = c->sql_domain_query != NULL || c->sql_mailbox_query != NULL ||
		   c->sql_alias_query != NULL || c->sql_sender_query != NULL;

	if (c->sql_backend == SQL_BACKEND_NONE) {
		if (any || c->sql_database != NULL) {
			snprintf(err, errsz,
				 "[sql]: queries and database need backend = sqlite "
				 "or pgsql");
			return false;
		}
		return true;
	}
	if (c->sql_database == NULL || !any) {
		snprintf(err, errsz, "[sql]: backend = %s needs database and at least one query",
			 sql_backend_name(c->sql_backend));
		return false;
	}
	return true;
}

/* Checks that span keys, and resolving listener addresses. */
static bool conf_check(struct conf *c, char *err, size_t errsz)
{
	if (c->alias_commands || c->alias_files) {
		/* the keys are there so that a config saying "no" stays valid */
		snprintf(err, errsz,
			 "[delivery] key \"%s\": hato has no %s delivery: the value must be no",
			 c->alias_commands ? "alias_commands" : "alias_files",
			 c->alias_commands ? "command" : "file");
		return false;
	}
	if (c->nlisteners == 0) {
		snprintf(err, errsz, "no [listener NAME] section: hatod would listen nowhere");
		return false;
	}
	for (size_t i = 0; i < c->nlisteners; i++) {
		struct listener_conf *l = &c->listeners[i];
		if (l->address == NULL) {
			snprintf(err, errsz, "[listener %s]: key \"address\" is required", l->name);
			return false;
		}
		if ((l->tls_cert == NULL) != (l->tls_key == NULL)) {
			snprintf(err, errsz, "[listener %s]: tls_cert and tls_key go together",
				 l->name);
			return false;
		}
		if (l->proxy_protocol != (l->nproxy_networks > 0)) {
			snprintf(err, errsz,
				 "[listener %s]: proxy_protocol = yes and proxy_networks go "
				 "together",
				 l->name);
			return false;
		}
		if (!conf_parse_address(l->address, &l->ss, &l->sslen)) {
			snprintf(err, errsz,
				 "[listener %s]: key \"address\": bad value \"%s\" (want "
				 "IP:PORT or [IPv6]:PORT)",
				 l->name, l->address);
			return false;
		}
	}
	if (!metrics_check(&c->metrics, err, errsz))
		return false;
	if (!milters_check(c, err, errsz))
		return false;
	for (size_t i = 0; i < c->ncerts; i++)
		if (c->certs[i].cert == NULL || c->certs[i].key == NULL) {
			snprintf(err, errsz, "[certificate %s]: cert and key are required",
				 c->certs[i].name);
			return false;
		}
	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		snprintf(err, errsz, "[server]: tls_cert and tls_key go together");
		return false;
	}
	for (size_t i = 0; i < c->ndomains; i++)
		if (!conf_is_local_domain_text(c, c->domains[i].name)) {
			snprintf(err, errsz, "[domain %s]: not one of local_domains",
				 c->domains[i].name);
			return false;
		}
	for (size_t i = 0; i < c->ndkim; i++) {
		const struct dkim_conf *d = &c->dkim[i];

		if (d->domain == NULL || d->selector == NULL || d->key == NULL) {
			snprintf(err, errsz, "[dkim %s]: domain, selector and key are required",
				 d->name);
			return false;
		}
		if (!addr_valid_domain(d->domain, strlen(d->domain)) ||
		    !conf_dkim_selector_valid(d->selector)) {
			snprintf(err, errsz,
				 "[dkim %s]: \"%s\" is not a domain or \"%s\" not a "
				 "selector",
				 d->name, d->domain, d->selector);
			return false;
		}
	}
	if (strstr(c->mailbox_path, "%u") == NULL) {
		snprintf(err, errsz, "[delivery]: mailbox_path must contain %%u (the user)");
		return false;
	}
	if ((c->auth_backend == AUTH_BACKEND_DOVECOT) != (c->dovecot_socket != NULL)) {
		snprintf(err, errsz, "[auth]: backend = dovecot and dovecot_socket go together");
		return false;
	}
	if (!conf_check_sql(c, err, errsz))
		return false;
	if (c->relayhost_auth_file != NULL && c->relayhost == NULL) {
		snprintf(err, errsz, "[remote]: relayhost_auth_file needs a relayhost");
		return false;
	}
	if (c->check_fcrdns != CLIENT_CHECK_OFF && !c->reverse_dns) {
		snprintf(err, errsz, "[client_checks]: fcrdns needs [server] reverse_dns = yes");
		return false;
	}
	if (c->limits.errors_soft > c->limits.errors_hard) {
		snprintf(err, errsz, "[limits]: errors_soft is larger than errors_hard");
		return false;
	}
	if (c->nlocal_domains == 0) {
		snprintf(err, errsz, "[server]: local_domains is empty");
		return false;
	}
	c->local_domains_ascii = xcalloc(c->nlocal_domains, sizeof(char *));
	for (size_t i = 0; i < c->nlocal_domains; i++) {
		const char *d = c->local_domains[i];
		if (addr_valid_domain(d, strlen(d)))
			c->local_domains_ascii[i] = addr_domain_alabel(d);
		/* the system's host name is taken as it is, whatever it looks like */
		if (c->local_domains_ascii[i] == NULL && strcmp(d, c->hostname) != 0) {
			snprintf(err, errsz,
				 "[server]: local_domains: \"%s\" is not a valid domain",
				 c->local_domains[i]);
			return false;
		}
	}
	return true;
}

/*
 * The keys that a running hatod cannot change: what is bound, opened or
 * set up once at start (the listeners' sockets, the spool, the identity
 * it drops to, the control socket, the maildrop, the resolver, the metrics
 * endpoint).  A reload
 * keeps their running values and names the ones the file changed.
 */
static const struct {
	enum key_section section;
	const char *name;
} restart_keys[] = {
	{SEC_SERVER, "state_dir"},
	{SEC_SERVER, "user"},
	{SEC_SERVER, "group"},
	{SEC_SERVER, "commit_threads"},
	{SEC_SERVER, "commit_sync"},
	{SEC_SERVER, "control_socket"},
	{SEC_SERVER, "control_socket_mode"},
	{SEC_SERVER, "maildrop_dir"},
	{SEC_SERVER, "maildrop_group"},
	{SEC_DNS, "servers"},
	{SEC_DNS, "timeout"},
	{SEC_DNS, "tries"},
	{SEC_DNS, "cache_size"},
	{SEC_DNS, "cache_ttl_max"},
	{SEC_CHECKS, "public_suffix_list"}, /* read once; sessions' DMARC checks point into it */
	{SEC_LIMITS, "client_table_size"},  /* the per-client table is made once */
	{SEC_GREYLIST, "file"},             /* the store is named and sized at open */
	{SEC_GREYLIST, "max_entries"},
	{SEC_METRICS, "listen"}, /* the endpoint is bound once, with its limits */
	{SEC_METRICS, "allow_remote"},
	{SEC_METRICS, "timeout"},
	{SEC_METRICS, "request_max"},
	{SEC_METRICS, "clients_max"},
	{SEC_LISTENER, "address"}, /* and which listeners there are */
	/* the lookup tables: their queries, threads and connections are made once */
	{SEC_SQL, "backend"},
	{SEC_SQL, "database"},
	{SEC_SQL, "domain_query"},
	{SEC_SQL, "mailbox_query"},
	{SEC_SQL, "alias_query"},
	{SEC_SQL, "sender_query"},
	{SEC_SQL, "cache_ttl"},
	{SEC_SQL, "cache_size"},
	{SEC_SQL, "timeout"},
	{SEC_SQL, "connections"},
};

/* See conf.h. */
bool conf_restart_key(const char *section, const char *key)
{
	for (size_t i = 0; i < sizeof(restart_keys) / sizeof(restart_keys[0]); i++) {
		const char *head = section_heads[restart_keys[i].section];
		size_t n = strlen(section);

		/* "[listener NAME]" is "listener" here */
		if (strncmp(head + 1, section, n) == 0 &&
		    (head[n + 1] == ']' || head[n + 1] == ' ') &&
		    strcmp(restart_keys[i].name, key) == 0)
			return true;
	}
	return false;
}

/* The key table's row of section sec's key name. */
static const struct key_def *key_find(enum key_section sec, const char *name)
{
	for (size_t i = 0; i < KEY_TABLE_LEN; i++)
		if (key_table[i].section == sec && strcmp(key_table[i].name, name) == 0)
			return &key_table[i];
	fatalx("key table: no key \"%s\" in %s", name, section_heads[sec]);
}

/* Do a and b (struct conf) hold the same value of key k? */
static bool field_same(const struct key_def *k, const struct conf *a, const struct conf *b)
{
	const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;

	switch (k->type) {
	case KEY_STRING:
	case KEY_STRING_EMPTY:
	case KEY_DNS_SERVERS: {
		const char *x = *(char *const *)fa, *y = *(char *const *)fb;
		return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
	}
	case KEY_UINT:
	case KEY_MODE:
	case KEY_DURATION:
	case KEY_DURATION_MS:
		return *(const unsigned *)fa == *(const unsigned *)fb;
	case KEY_SIZET:
		return *(const size_t *)fa == *(const size_t *)fb;
	case KEY_BOOL:
	case KEY_SYNC:
		return *(const bool *)fa == *(const bool *)fb;
	case KEY_SQLBACKEND:
		return *(const enum sql_backend *)fa == *(const enum sql_backend *)fb;
	default:
		fatalx("restart key \"%s\": its type cannot be kept over a reload", k->name);
	}
}

/* Give c the value of key k that old has (field_same's types). */
static void field_keep(const struct key_def *k, struct conf *c, const struct conf *old)
{
	char *fc = (char *)c + k->offset;
	const char *fo = (const char *)old + k->offset;

	switch (k->type) {
	case KEY_STRING:
	case KEY_STRING_EMPTY:
	case KEY_DNS_SERVERS: {
		const char *v = *(char *const *)fo;
		free(*(char **)fc);
		*(char **)fc = v ? xstrdup(v) : NULL;
		return;
	}
	case KEY_UINT:
	case KEY_MODE:
	case KEY_DURATION:
	case KEY_DURATION_MS:
		*(unsigned *)fc = *(const unsigned *)fo;
		return;
	case KEY_SIZET:
		*(size_t *)fc = *(const size_t *)fo;
		return;
	case KEY_BOOL:
	case KEY_SYNC:
		*(bool *)fc = *(const bool *)fo;
		return;
	case KEY_SQLBACKEND:
		*(enum sql_backend *)fc = *(const enum sql_backend *)fo;
		return;
	default:
		fatalx("restart key \"%s\": its type cannot be kept over a reload", k->name);
	}
}

/* Add "[section] key" to the list of keys that need a restart. */
static void restart_note(char *buf, size_t size, const char *section, const char *name)
{
	size_t len = strlen(buf);

	if (len < size)
		snprintf(buf + len, size - len, "%s%s %s", len ? ", " : "", section, name);
}

/* Keep old's value of restart key k (a [server] or [dns] key) in c. */
static void keep_key(struct conf *c, const struct conf *old, const struct key_def *k, char *restart,
		     size_t restartsz)
{
	if (field_same(k, c, old))
		return;
	restart_note(restart, restartsz, section_heads[k->section], k->name);
	field_keep(k, c, old);
}

/* Are old's and c's listeners the same names on the same addresses? */
static bool listeners_same(const struct conf *c, const struct conf *old, char *restart,
			   size_t restartsz)
{
	bool same = c->nlisteners == old->nlisteners;
	char head[128];

	for (size_t i = 0; i < old->nlisteners; i++) {
		const struct listener_conf *o = &old->listeners[i], *n = NULL;

		for (size_t j = 0; j < c->nlisteners; j++)
			if (strcmp(c->listeners[j].name, o->name) == 0)
				n = &c->listeners[j];
		if (n != NULL && n->address != NULL && strcmp(n->address, o->address) == 0)
			continue;
		same = false;
		snprintf(head, sizeof(head), "[listener %s]", o->name);
		restart_note(restart, restartsz, head, "address");
	}
	for (size_t j = 0; j < c->nlisteners; j++) {
		bool known = false;

		for (size_t i = 0; i < old->nlisteners; i++)
			known = known || strcmp(c->listeners[j].name, old->listeners[i].name) == 0;
		if (!known) {
			same = false;
			snprintf(head, sizeof(head), "[listener %s]", c->listeners[j].name);
			restart_note(restart, restartsz, head, "address");
		}
	}
	return same;
}

/* Free c's listeners. */
static void listeners_free(struct conf *c)
{
	for (size_t i = 0; i < c->nlisteners; i++) {
		free(c->listeners[i].name);
		free(c->listeners[i].address);
		free(c->listeners[i].tls_cert);
		free(c->listeners[i].tls_key);
		free(c->listeners[i].proxy_networks);
	}
	free(c->listeners);
	c->listeners = NULL;
	c->nlisteners = 0;
}

/* Keep old's listeners, all of them as they run, when the file changed
 * which there are or where they listen. */
static void keep_listeners(struct conf *c, const struct conf *old, char *restart, size_t restartsz)
{
	if (listeners_same(c, old, restart, restartsz))
		return;
	listeners_free(c);
	c->listeners = xcalloc(old->nlisteners, sizeof(*c->listeners));
	for (size_t i = 0; i < old->nlisteners; i++) {
		const struct listener_conf *o = &old->listeners[i];
		struct listener_conf *l = &c->listeners[c->nlisteners++];

		*l = *o;
		l->name = xstrdup(o->name);
		l->address = xstrdup(o->address);
		l->tls_cert = o->tls_cert ? xstrdup(o->tls_cert) : NULL;
		l->tls_key = o->tls_key ? xstrdup(o->tls_key) : NULL;
		l->proxy_networks = NULL;
		if (o->nproxy_networks > 0) {
			l->proxy_networks = xcalloc(o->nproxy_networks, sizeof(struct cidr));
			memcpy(l->proxy_networks, o->proxy_networks,
			       o->nproxy_networks * sizeof(struct cidr));
		}
	}
}

/* Keep old's values of every restart key but state_dir (kept earlier, as
 * the defaults below it follow from it). */
static void keep_restart_keys(struct conf *c, const struct conf *old, char *restart,
			      size_t restartsz)
{
	for (size_t i = 0; i < sizeof(restart_keys) / sizeof(restart_keys[0]); i++) {
		if (restart_keys[i].section == SEC_LISTENER ||
		    (restart_keys[i].section == SEC_SERVER &&
		     strcmp(restart_keys[i].name, "state_dir") == 0))
			continue;
		keep_key(c, old, key_find(restart_keys[i].section, restart_keys[i].name), restart,
			 restartsz);
	}
	keep_listeners(c, old, restart, restartsz);
}

/* conf_load, and for a reload of old, its restart keys kept (see conf_reload). */
static struct conf *load(const char *path, const struct conf *old, char *restart, size_t restartsz,
			 char *err, size_t errsz)
{
	struct conf *c = conf_defaults();
	struct parse_ctx ctx;
	int line;

	if (path == NULL) {
		listener_get(c, "smtp")->address = xstrdup("127.0.0.1:2525");
		struct listener_conf *l = listener_get(c, "submission");
		l->address = xstrdup("127.0.0.1:2587");
		l->auth = AUTH_MODE_REQUIRED;
		/* the developer's server: every name at localhost is a mailbox */
		struct domain_conf *d = domain_get(c, "localhost");
		set_list(&d->mailboxes, &d->nmailboxes, "*");
		l = listener_get(c, "submissions");
		l->address = xstrdup("127.0.0.1:2465");
		l->tls = TLS_MODE_IMPLICIT;
		l->auth = AUTH_MODE_REQUIRED;
	} else {
		FILE *f = fopen(path, "r");
		memset(&ctx, 0, sizeof(ctx));
		ctx.c = c;
		if (f == NULL) {
			snprintf(err, errsz, "%s: cannot open: %m", path);
			conf_free(c);
			return NULL;
		}
		ctx.f = f;
		line = ini_parse_stream(conf_reader, &ctx, conf_ini_line, &ctx);
		fclose(f);
		if (line != 0 || ctx.err[0] != '\0') {
			if (ctx.err[0] == '\0')
				snprintf(ctx.err, sizeof(ctx.err), "syntax error");
			snprintf(err, errsz, "%s:%d: %s", path, ctx.err_line ? ctx.err_line : line,
				 ctx.err);
			conf_free(c);
			return NULL;
		}
		c->path = xstrdup(path);
	}
	if (old != NULL)
		keep_key(c, old, key_find(SEC_SERVER, "state_dir"), restart, restartsz);
	table_defaults_state_dir(c);
	listener_defaults(c);
	if (old != NULL)
		keep_restart_keys(c, old, restart, restartsz);
	if (!conf_check(c, err, errsz)) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s: %s", path ? path : "built-in defaults", err);
		snprintf(err, errsz, "%s", tmp);
		conf_free(c);
		return NULL;
	}
	return c;
}

/* See conf.h. */
struct conf *conf_load(const char *path, char *err, size_t errsz)
{
	return load(path, NULL, NULL, 0, err, errsz);
}

/* See conf.h. */
struct conf *conf_reload(const struct conf *old, char *restart, size_t restartsz, char *err,
			 size_t errsz)
{
	struct conf *c;

	if (restartsz > 0)
		restart[0] = '\0';
	c = load(old->path, old, restart, restartsz, err, errsz);
	if (c != NULL)
		c->generation = old->generation + 1;
	return c;
}

/* See conf.h. */
const struct conf *conf_hold(const struct conf *c)
{
	/* the count is the one thing of a configuration that ever changes */
	atomic_fetch_add(&((struct conf *)c)->holders, 1);
	return c;
}

/* See conf.h. */
void conf_free(const struct conf *cc)
{
	struct conf *c = (struct conf *)cc; /* the last holder: nobody else sees it */

	if (c == NULL || atomic_fetch_sub(&c->holders, 1) != 1)
		return;
	free(c->path);
	free(c->hostname);
	free(c->state_dir);
	free(c->user);
	free(c->group);
	for (size_t i = 0; i < c->nlocal_domains; i++) {
		free(c->local_domains[i]);
		if (c->local_domains_ascii)
			free(c->local_domains_ascii[i]);
	}
	free(c->local_domains);
	free(c->local_domains_ascii);
	free(c->trusted);
	listeners_free(c);
	for (size_t i = 0; i < c->ncerts; i++) {
		free(c->certs[i].name);
		free(c->certs[i].cert);
		free(c->certs[i].key);
	}
	free(c->certs);
	for (size_t i = 0; i < c->nsenders; i++) {
		for (size_t j = 0; j < c->senders[i].naddrs; j++)
			free(c->senders[i].addrs[j]);
		free(c->senders[i].addrs);
		free(c->senders[i].user);
	}
	free(c->senders);
	for (size_t i = 0; i < c->ndomains; i++) {
		for (size_t j = 0; j < c->domains[i].nmailboxes; j++)
			free(c->domains[i].mailboxes[j]);
		free(c->domains[i].mailboxes);
		free(c->domains[i].name);
		free(c->domains[i].catch_all);
		free(c->domains[i].lmtp);
	}
	free(c->domains);
	for (size_t i = 0; i < c->nmilters; i++) {
		for (size_t j = 0; j < c->milters[i].nlisteners; j++)
			free(c->milters[i].listeners[j]);
		free(c->milters[i].listeners);
		free(c->milters[i].name);
		free(c->milters[i].address);
	}
	free(c->milters);
	for (size_t i = 0; i < c->ndkim; i++) {
		free(c->dkim[i].name);
		free(c->dkim[i].domain);
		free(c->dkim[i].selector);
		free(c->dkim[i].key);
		free(c->dkim[i].algorithm);
	}
	free(c->dkim);
	free(c->retry_schedule);
	free(c->mailbox_path);
	free(c->aliases_file);
	free(c->delivery_lmtp);
	free(c->sql_database);
	free(c->sql_domain_query);
	free(c->sql_mailbox_query);
	free(c->sql_alias_query);
	free(c->sql_sender_query);
	free(c->recipient_delimiter);
	free(c->control_socket);
	free(c->metrics.listen);
	free(c->maildrop_dir);
	free(c->maildrop_group);
	free(c->users_file);
	free(c->dovecot_socket);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_ciphers);
	free(c->tls_ciphersuites);
	free(c->tls_min_version);
	free(c->relayhost);
	free(c->relayhost_auth_file);
	free(c->relay_user);
	if (c->relay_password != NULL)
		explicit_bzero(c->relay_password, strlen(c->relay_password));
	free(c->relay_password);
	free(c->remote_tls_ca_file);
	free(c->remote_helo);
	for (size_t i = 0; i < c->ntransport; i++) {
		free(c->transport[i].key);
		free(c->transport[i].value);
	}
	free(c->transport);
	for (size_t i = 0; i < c->ntls_policies; i++) {
		free(c->tls_policies[i].key);
		free(c->tls_policies[i].value);
	}
	free(c->tls_policies);
	free(c->dns_servers);
	free(c->checks.public_suffix_list);
	free(c->greylist_file);
	dnsbl_zones_free(c);
	free(c);
}
