/*
 * test_conf.c - unit tests for src/conf/conf.c: conf_load() on built-in
 * defaults and on files written to a temporary directory (every key,
 * "[listener NAME]" sections with IPv4 and "[::1]:25" addresses, errors
 * naming file, line and key for unknown keys, bad values and unknown
 * sections), cidr_parse() and trusted_networks, route_is_local(),
 * the [dns] section and conf_parse_dns_servers(); conf_reload() (the keys
 * that need a restart kept and named, a broken file refused with its
 * line) and the holders of a configuration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "hato_limits.h"
#include "route.h"

#define MAX_FILES 128

static char tmpdir[64];
static char files[MAX_FILES][128];
static size_t nfiles;

/* Make the temporary directory for config files. */
static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/hato-test-conf.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

/* Remove the files written and the directory. */
static int teardown_dir(void **state)
{
	(void)state;
	for (size_t i = 0; i < nfiles; i++)
		unlink(files[i]);
	return rmdir(tmpdir);
}

/* Rewrite the file at path with text. */
static void rewrite(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* Write text to a new file in the temporary directory; returns its path. */
static const char *write_conf(const char *text)
{
	char *path;

	assert_true(nfiles < MAX_FILES);
	path = files[nfiles];
	snprintf(path, sizeof(files[0]), "%s/hato-%zu.conf", tmpdir, nfiles);
	nfiles++;
	rewrite(path, text);
	return path;
}

/* Load text as a file and expect success. */
static struct conf *load_ok(const char *text)
{
	char err[512] = "";
	const char *path = write_conf(text);
	struct conf *c = conf_load(path, err, sizeof(err));

	if (c == NULL)
		fail_msg("conf_load failed: %s", err);
	assert_string_equal(c->path, path);
	return c;
}

/* Load text as a file and expect failure; the error must name the file,
 * "FILE:LINE:" when line > 0, and contain every non-NULL fragment. */
static void load_fail(const char *text, int line, const char *frag1, const char *frag2)
{
	char err[512] = "", want[256];
	const char *path = write_conf(text);
	struct conf *c = conf_load(path, err, sizeof(err));

	if (c != NULL) {
		conf_free(c);
		fail_msg("accepted:\n%s", text);
	}
	if (strstr(err, path) == NULL)
		fail_msg("error \"%s\" does not name the file %s", err, path);
	if (line > 0) {
		snprintf(want, sizeof(want), "%s:%d:", path, line);
		if (strstr(err, want) == NULL)
			fail_msg("error \"%s\" does not name line %d", err, line);
	}
	if (frag1 && strstr(err, frag1) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, frag1);
	if (frag2 && strstr(err, frag2) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, frag2);
}

#define LISTENER "[listener smtp]\naddress = 127.0.0.1:2525\n"

/* The listener called name, or NULL. */
static const struct listener_conf *find_listener(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nlisteners; i++)
		if (strcmp(c->listeners[i].name, name) == 0)
			return &c->listeners[i];
	return NULL;
}

/* Every default that the key table gives, as docs/configuration.md shows
 * it: the values hato has always had. */
static void assert_default_values(const struct conf *c)
{
	static const unsigned retry[] = {300, 600, 1200, 2400, 3600};
	const struct listener_conf *l = find_listener(c, "smtp");
	char path[512];

	assert_string_equal(c->user, "hato");
	assert_string_equal(c->group, "hato");
	assert_true(c->reverse_dns);
	assert_int_equal(c->commit_threads, 4);
	assert_false(c->commit_syncfs);
	assert_false(c->log_json);
	assert_null(c->tls_cert);
	assert_non_null(strstr(c->tls_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:"));
	assert_string_equal(c->tls_ciphersuites, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
						 "TLS_CHACHA20_POLY1305_SHA256");
	assert_string_equal(c->tls_min_version, "TLSv1.2");
	assert_string_equal(c->maildrop_group, "hatodrop");
	assert_int_equal(c->control_socket_mode, 0600);
	assert_false(c->received_hide_client);
	assert_false(c->delivery_hold);
	assert_null(c->aliases_file);
	assert_string_equal(c->recipient_delimiter, "+");
	assert_int_equal(c->nretry, 5);
	assert_memory_equal(c->retry_schedule, retry, sizeof(retry));
	assert_int_equal(c->queue_lifetime, 5 * 86400);
	assert_int_equal(c->delivery_concurrency, 20);
	assert_int_equal(c->delivery_concurrency_domain, 20);
	assert_null(c->relayhost);
	assert_false(c->relayhost_implicit_tls);
	assert_int_equal(c->relayhost_tls, TLS_POLICY_MAY);
	assert_int_equal(c->remote_port, 25);
	assert_int_equal(c->remote_tls, TLS_POLICY_MAY);
	assert_int_equal(c->remote_timeout_connect, 30);
	assert_int_equal(c->remote_timeout_greeting, 300);
	assert_int_equal(c->remote_timeout_command, 300);
	assert_int_equal(c->remote_timeout_data_end, 600);
	assert_int_equal(c->remote_reuse_time, 2);
	assert_int_equal(c->delay_warning, 0);
	assert_null(c->dns_servers);
	assert_int_equal(c->dns_timeout_ms, 5000);
	assert_int_equal(c->dns_tries, 2);
	assert_int_equal(c->limits.command_line_max, 2048);
	assert_int_equal(c->limits.text_line_max, 1000);
	assert_int_equal(c->limits.message_size_max, 35 * 1024 * 1024);
	assert_int_equal(c->limits.recipients_max, 100);
	assert_int_equal(c->limits.received_max, 100);
	assert_int_equal(c->limits.errors_soft, 3);
	assert_int_equal(c->limits.errors_hard, 20);
	assert_int_equal(c->limits.error_delay_ms, 1000);
	assert_int_equal(c->limits.sessions_max, 10000);
	assert_int_equal(c->limits.min_free_space, 100 * 1024 * 1024);
	assert_int_equal(c->limits.timeout_command, 300);
	assert_int_equal(c->limits.timeout_data, 180);
	assert_int_equal(c->limits.timeout_data_total, 600);
	assert_int_equal(c->limits.timeout_tls, 30);
	assert_int_equal(c->limits.auth_failures_max, 3);
	assert_int_equal(c->limits.auth_delay_ms, 1000);
	assert_int_equal(c->limits.auth_client_failures, 10);
	assert_int_equal(c->limits.auth_client_window, 600);
	assert_int_equal(c->limits.auth_client_lockout, 900);
	/* paths below state_dir */
	snprintf(path, sizeof(path), "%s/users", c->state_dir);
	assert_string_equal(c->users_file, path);
	snprintf(path, sizeof(path), "%s/control.sock", c->state_dir);
	assert_string_equal(c->control_socket, path);
	snprintf(path, sizeof(path), "%s/maildrop", c->state_dir);
	assert_string_equal(c->maildrop_dir, path);
	snprintf(path, sizeof(path), "%s/mail/%%d/%%u", c->state_dir);
	assert_string_equal(c->mailbox_path, path);
	/* the listener "smtp"'s own defaults */
	assert_non_null(l);
	assert_int_equal(l->tls, TLS_MODE_STARTTLS);
	assert_int_equal(l->auth, AUTH_MODE_NONE);
	assert_null(l->tls_cert);
	assert_null(l->tls_key);
}

/* Without a file: "smtp" on 127.0.0.1:2525, everything on loopback, default limits. */
static void test_defaults(void **state)
{
	char err[256] = "";
	struct conf *c;
	const struct listener_conf *l;
	const struct sockaddr_in *sa;

	(void)state;
	unsetenv("HATO_STATE");
	c = conf_load(NULL, err, sizeof(err));
	assert_non_null(c);
	assert_null(c->path);
	assert_string_equal(c->state_dir, "./var/hato");
	assert_string_equal(c->user, "hato");
	l = find_listener(c, "smtp");
	assert_non_null(l);
	assert_string_equal(l->address, "127.0.0.1:2525");
	sa = (const struct sockaddr_in *)&l->ss;
	assert_int_equal(sa->sin_family, AF_INET);
	assert_int_equal(ntohs(sa->sin_port), 2525);
	assert_int_equal(l->sslen, sizeof(struct sockaddr_in));
	for (size_t i = 0; i < c->nlisteners; i++) {
		sa = (const struct sockaddr_in *)&c->listeners[i].ss;
		assert_int_equal(sa->sin_family, AF_INET);
		assert_int_equal(ntohl(sa->sin_addr.s_addr), INADDR_LOOPBACK);
	}
	assert_default_values(c);
	assert_true(c->reverse_dns);
	assert_true(route_is_local(c, "localhost"));
	/* No network is trusted by default, loopback included. */
	assert_int_equal(c->ntrusted, 0);
	conf_free(c);
	setenv("HATO_STATE", "/srv/hato-state", 1);
	c = conf_load(NULL, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->state_dir, "/srv/hato-state");
	conf_free(c);
	unsetenv("HATO_STATE");
}

/* A file that names only a listener has the same defaults, with the
 * paths below the state_dir it names. */
static void test_file_defaults(void **state)
{
	struct conf *c;

	(void)state;
	c = load_ok("[server]\nstate_dir = /srv/spool\n" LISTENER);
	assert_default_values(c);
	assert_string_equal(c->users_file, "/srv/spool/users");
	conf_free(c);
	c = load_ok("[server]\nusers_file = /etc/hato/users\n" LISTENER);
	assert_string_equal(c->users_file, "/etc/hato/users");
	conf_free(c);
}

/* Every key of every section is read into its field. */
static void test_all_keys(void **state)
{
	struct conf *c;

	(void)state;
	c = load_ok("; a comment\n"
		    "[server]\n"
		    "hostname = mx.example.org\n"
		    "state_dir = /var/spool/hato\n"
		    "user = mail\n"
		    "group = mailgrp\n"
		    "local_domains = example.org, example.net\n"
		    "trusted_networks = 10.0.0.0/8\n"
		    "reverse_dns = no\n"
		    "commit_threads = 8\n"
		    "log_format = json\n"
		    "[limits]\n"
		    "command_line_max = 1024\n"
		    "text_line_max = 2000\n"
		    "message_size_max = 10m\n"
		    "recipients_max = 50\n"
		    "received_max = 30\n"
		    "errors_soft = 2\n"
		    "errors_hard = 10\n"
		    "error_delay_ms = 500\n"
		    "sessions_max = 100\n"
		    "min_free_space = 1g\n"
		    "timeout_command = 60\n"
		    "timeout_data = 61\n"
		    "timeout_data_total = 62\n" LISTENER);
	assert_string_equal(c->hostname, "mx.example.org");
	assert_string_equal(c->state_dir, "/var/spool/hato");
	assert_string_equal(c->user, "mail");
	assert_string_equal(c->group, "mailgrp");
	assert_int_equal(c->nlocal_domains, 2);
	assert_string_equal(c->local_domains[0], "example.org");
	assert_string_equal(c->local_domains[1], "example.net");
	assert_int_equal(c->ntrusted, 1);
	assert_false(c->reverse_dns);
	assert_int_equal(c->commit_threads, 8);
	assert_true(c->log_json);
	assert_int_equal(c->limits.command_line_max, 1024);
	assert_int_equal(c->limits.text_line_max, 2000);
	assert_int_equal(c->limits.message_size_max, 10 * 1024 * 1024);
	assert_int_equal(c->limits.recipients_max, 50);
	assert_int_equal(c->limits.received_max, 30);
	assert_int_equal(c->limits.errors_soft, 2);
	assert_int_equal(c->limits.errors_hard, 10);
	assert_int_equal(c->limits.error_delay_ms, 500);
	assert_int_equal(c->limits.sessions_max, 100);
	assert_int_equal(c->limits.min_free_space, 1024 * 1024 * 1024);
	assert_int_equal(c->limits.timeout_command, 60);
	assert_int_equal(c->limits.timeout_data, 61);
	assert_int_equal(c->limits.timeout_data_total, 62);
	conf_free(c);
}

/* "[listener NAME]" sections with IPv4, "[::1]:25" and wildcard addresses. */
static void test_listeners(void **state)
{
	struct conf *c;
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;
	struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;

	(void)state;
	c = load_ok("[listener smtp]\naddress = 192.0.2.10:25\n"
		    "[listener submission]\naddress = [::1]:25\n"
		    "[listener any]\naddress = *:2465\n");
	assert_int_equal(c->nlisteners, 3);
	assert_string_equal(c->listeners[0].name, "smtp");
	assert_string_equal(c->listeners[0].address, "192.0.2.10:25");
	s4 = (const struct sockaddr_in *)&c->listeners[0].ss;
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 25);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0xC000020A);
	assert_string_equal(c->listeners[1].name, "submission");
	assert_string_equal(c->listeners[1].address, "[::1]:25");
	s6 = (const struct sockaddr_in6 *)&c->listeners[1].ss;
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 25);
	assert_memory_equal(&s6->sin6_addr, &lo6, sizeof(lo6));
	assert_int_equal(c->listeners[1].sslen, sizeof(struct sockaddr_in6));
	assert_string_equal(c->listeners[2].name, "any");
	assert_int_equal(ntohs(((const struct sockaddr_in *)&c->listeners[2].ss)->sin_port), 2465);
	conf_free(c);
}

/* Bad listener addresses are refused, naming the listener and the key. */
static void test_bad_listener_address(void **state)
{
	static const char *const bad[] = {
		"localhost:25", "127.0.0.1", "127.0.0.1:",    "127.0.0.1:65536", "[::1]25", "[::1]",
		"::1]:25",      "1.2.3.4:x", "[127.0.0.1:25", "256.0.0.1:25",    "::1:25",
	};
	char text[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[listener mx]\naddress = %s\n", bad[i]);
		load_fail(text, 0, "mx", "address");
	}
}

/* An unknown key names file, line and key. */
static void test_unknown_key(void **state)
{
	(void)state;
	load_fail("[server]\nhostname = mx.example.org\nbogus_key = 1\n" LISTENER, 3, "bogus_key",
		  NULL);
	load_fail(LISTENER "[limits]\n\n; comment\nmax_size = 10\n", 6, "max_size", NULL);
	load_fail("[listener smtp]\naddress = 127.0.0.1:25\nport = 25\n", 3, "port", NULL);
	/* Keys belong to their own section. */
	load_fail("[limits]\nhostname = x\n" LISTENER, 2, "hostname", NULL);
}

/* A bad value names file, line, key and value. */
static void test_bad_values(void **state)
{
	static const struct {
		const char *text;
		const char *key;
		const char *value;
	} bad[] = {
		{"[server]\ncommit_threads = 0\n", "commit_threads", "0"},
		{"[server]\ncommit_threads = 65\n", "commit_threads", "65"},
		{"[server]\ncommit_threads = four\n", "commit_threads", "four"},
		{"[server]\nreverse_dns = maybe\n", "reverse_dns", "maybe"},
		{"[server]\nlog_format = JSON\n", "log_format", "JSON"},
		{"[server]\nlog_format = syslog\n", "log_format", "syslog"},
		{"[server]\nhostname =\n", "hostname", NULL},
		{"[server]\ntrusted_networks = 10.0.0.0/33\n", "trusted_networks", "10.0.0.0/33"},
		{"[server]\ntrusted_networks = 10.0.0.0/8, bogus\n", "trusted_networks", "bogus"},
		{"[limits]\ntext_line_max = 999\n", "text_line_max", "999"},
		{"[limits]\nmessage_size_max = 10x\n", "message_size_max", "10x"},
		{"[limits]\nmessage_size_max = 1023\n", "message_size_max", "1023"},
		{"[limits]\nmessage_size_max = 2048g\n", "message_size_max", "2048g"},
		{"[limits]\nrecipients_max = -1\n", "recipients_max", "-1"},
		{"[limits]\ntimeout_data = 86401\n", "timeout_data", "86401"},
		{"[listener smtp]\naddress =\n", "address", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		load_fail(bad[i].text, 2, bad[i].key, bad[i].value);
}

/* parse_duration: every unit, plain seconds, and what is refused. */
static void test_parse_duration(void **state)
{
	static const struct {
		const char *text;
		unsigned secs;
	} good[] = {
		{"0", 0},
		{"30", 30},
		{"30s", 30},
		{"5m", 300},
		{"2h", 7200},
		{"5d", 432000},
		{"49710d", 49710u * 86400},
		{"4294967295", 4294967295u},
		{"4294967295s", 4294967295u},
	};
	static const char *const bad[] = {
		"",     "s",   "m",          "5x",        "-1",     "+5",
		" 5",   "5 ",  "5 m",        "5M",        "1.5h",   "5ms",
		"0x10", "5mm", "4294967296", "71582789m", "49711d", "99999999999999999999999",
	};
	unsigned v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		if (!parse_duration(good[i].text, &v))
			fail_msg("\"%s\" refused", good[i].text);
		assert_int_equal(v, good[i].secs);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_duration(bad[i], &v))
			fail_msg("\"%s\" accepted as %u s", bad[i], v);
}

/* Every key that is a time span takes durations, plain numbers staying
 * seconds; garbage, negatives, overflow and values out of range are
 * errors naming the key. */
static void test_duration_keys(void **state)
{
	static const char *const bad[] = {"5x", "-1", "4294967296", "71582789m", "2d", "0", "5ms"};
	char text[256];
	struct conf *c;

	(void)state;
	c = load_ok(
		"[limits]\ntimeout_command = 5m\ntimeout_data = 3m\ntimeout_data_total = 1h\n"
		"timeout_tls = 30s\nauth_client_window = 10m\nauth_client_lockout = 1d\n"
		"[delivery]\nqueue_lifetime = 2d\nretry_schedule = 30s, 1m 90\n"
		"[remote]\ntimeout_command = 120\nreuse_time = 0\ndelay_warning = 4h\n" LISTENER);
	assert_int_equal(c->limits.timeout_command, 300);
	assert_int_equal(c->limits.timeout_data, 180);
	assert_int_equal(c->limits.timeout_data_total, 3600);
	assert_int_equal(c->limits.timeout_tls, 30);
	assert_int_equal(c->limits.auth_client_window, 600);
	assert_int_equal(c->limits.auth_client_lockout, 86400);
	assert_int_equal(c->queue_lifetime, 2 * 86400);
	assert_int_equal(c->nretry, 3);
	assert_int_equal(c->retry_schedule[0], 30);
	assert_int_equal(c->retry_schedule[1], 60);
	assert_int_equal(c->retry_schedule[2], 90);
	assert_int_equal(c->remote_timeout_command, 120);
	assert_int_equal(c->remote_reuse_time, 0);
	assert_int_equal(c->delay_warning, 4 * 3600);
	conf_free(c);
	/* the top of a range, in another unit */
	c = load_ok("[limits]\ntimeout_command = 24h\ntimeout_tls = 1h\n" LISTENER);
	assert_int_equal(c->limits.timeout_command, 86400);
	assert_int_equal(c->limits.timeout_tls, 3600);
	conf_free(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[limits]\ntimeout_command = %s\n" LISTENER, bad[i]);
		load_fail(text, 2, "key \"timeout_command\" in [limits]", bad[i]);
	}
	load_fail("[limits]\ntimeout_tls = 61m\n" LISTENER, 2, "timeout_tls", "61m");
	load_fail("[limits]\nauth_client_window = 1d1h\n" LISTENER, 2, "auth_client_window", NULL);
	load_fail("[delivery]\nretry_schedule = 5m 0\n" LISTENER, 2, "retry_schedule", NULL);
	load_fail("[delivery]\nretry_schedule = 5m 5x\n" LISTENER, 2, "retry_schedule", NULL);
	/* milliseconds keys keep their unit */
	load_fail("[limits]\nerror_delay_ms = 1s\n" LISTENER, 2, "error_delay_ms", "1s");
}

/* Expect an unknown-section error naming the file and the header line
 * (header) or the line of its first key (header + 1). */
static void load_fail_section(const char *text, int header, const char *section)
{
	char err[512] = "", at_header[256], at_key[256];
	const char *path = write_conf(text);
	struct conf *c = conf_load(path, err, sizeof(err));

	if (c != NULL) {
		conf_free(c);
		fail_msg("accepted:\n%s", text);
	}
	snprintf(at_header, sizeof(at_header), "%s:%d:", path, header);
	snprintf(at_key, sizeof(at_key), "%s:%d:", path, header + 1);
	if (strstr(err, at_header) == NULL && strstr(err, at_key) == NULL)
		fail_msg("error \"%s\" does not name line %d or %d", err, header, header + 1);
	if (strstr(err, section) == NULL)
		fail_msg("error \"%s\" does not name [%s]", err, section);
}

/* An unknown section is an error naming it. */
static void test_unknown_section(void **state)
{
	(void)state;
	load_fail_section(LISTENER "[srever]\nhostname = x\n", 3, "[srever]");
	load_fail_section("[listener]\naddress = 127.0.0.1:25\n", 1, "[listener]");
	load_fail_section("[Server]\nhostname = x\n" LISTENER, 1, "[Server]");
	/* A key before any section. */
	load_fail("hostname = x\n" LISTENER, 1, "section", NULL);
}

/* An unknown section with no keys in it is an error too (conf.h). */
static void test_unknown_empty_section(void **state)
{
	(void)state;
	load_fail("[limit]\n; recipients_max = 10\n" LISTENER, 0, "limit", NULL);
}

/*
 * A long (but sensible) list of local domains on one line is either read
 * whole or refused with an error naming that line: never cut into pieces
 * that are reported as a "syntax error" on a line that does not exist.
 */
static void test_long_line(void **state)
{
	char text[1024] = "[server]\nlocal_domains =", err[512] = "", want[256];
	const char *path;
	struct conf *c;

	(void)state;
	for (int i = 0; i < 20; i++) {
		char one[32];
		snprintf(one, sizeof(one), " domain%02d.example.org", i);
		strcat(text, one);
	}
	strcat(text, "\n" LISTENER);
	path = write_conf(text);
	c = conf_load(path, err, sizeof(err));
	if (c == NULL) {
		snprintf(want, sizeof(want), "%s:2:", path);
		if (strstr(err, want) == NULL || strstr(err, "syntax error") != NULL)
			fail_msg("long line refused with \"%s\"", err);
		return;
	}
	assert_int_equal(c->nlocal_domains, 20);
	assert_true(route_is_local(c, "domain19.example.org"));
	conf_free(c);
}

/*
 * A list continued on an indented line (inih's multi-line values) must not
 * silently lose its first line: either every domain is read, or the file
 * is refused with an error naming the key.
 */
static void test_multiline_list(void **state)
{
	char err[512] = "";
	const char *path = write_conf("[server]\nlocal_domains = a.example\n  b.example\n"
				      "trusted_networks = 10.0.0.0/8\n  192.168.0.0/16\n" LISTENER);
	struct conf *c = conf_load(path, err, sizeof(err));

	(void)state;
	if (c == NULL) {
		assert_non_null(strstr(err, "local_domains"));
		return;
	}
	assert_true(route_is_local(c, "b.example"));
	if (!route_is_local(c, "a.example"))
		fail_msg("local_domains continued on a second line lost \"a.example\"");
	assert_true(c->ntrusted >= 1);
	assert_int_equal(c->trusted[c->ntrusted - 1].prefix, 16);
	if (c->ntrusted != 2 || c->trusted[0].prefix != 8 || c->trusted[0].addr[0] != 10)
		fail_msg("trusted_networks continued on a second line lost \"10.0.0.0/8\"");
	conf_free(c);
}

/*
 * An indented first key of a section is an ordinary key for inih (there is
 * nothing to continue): local_domains there replaces the built-in list,
 * it is not appended to it.
 */
static void test_indented_first_key(void **state)
{
	char err[512] = "";
	const char *path = write_conf("[server]\n  local_domains = a.example\n" LISTENER);
	struct conf *c = conf_load(path, err, sizeof(err));

	(void)state;
	if (c == NULL)
		return; /* refusing indented keys is fine too */
	assert_true(route_is_local(c, "a.example"));
	if (route_is_local(c, "localhost")) {
		conf_free(c);
		fail_msg("the built-in local_domains were kept next to the file's list");
	}
	conf_free(c);
}

/* Cross-key checks: no listener, errors_soft over errors_hard, no domains. */
static void test_cross_checks(void **state)
{
	(void)state;
	load_fail("[server]\nhostname = x\n", 0, "listener", NULL);
	load_fail("[limits]\nerrors_soft = 5\nerrors_hard = 4\n" LISTENER, 0, "errors_soft", NULL);
	load_fail("[server]\nlocal_domains = ,\n" LISTENER, 0, "local_domains", NULL);
}

/* A missing file is an error naming it. */
static void test_missing_file(void **state)
{
	char err[512] = "", path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	assert_null(conf_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
}

/* cidr_parse: IPv4 and IPv6 with and without a prefix length. */
static void test_cidr_parse(void **state)
{
	static const char *const bad[] = {
		"",          "/8",     "10.0.0.0/33", "::/129",       "10.0.0.0/",   "10.0.0.0/x",
		"10.0.0/8",  "host/8", "10.0.0.0/-1", "10.0.0.0/8/9", "10.0.0.0 /8", "10.0.0.0/ 8",
		"[::1]/128",
	};
	struct cidr n;
	unsigned char want4[4] = {10, 0, 0, 0};

	(void)state;
	assert_true(cidr_parse("10.0.0.0/8", &n));
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 8);
	assert_memory_equal(n.addr, want4, 4);
	assert_true(cidr_parse("192.0.2.1", &n));
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 32);
	assert_true(cidr_parse("2001:db8::/32", &n));
	assert_int_equal(n.family, AF_INET6);
	assert_int_equal(n.prefix, 32);
	assert_int_equal(n.addr[0], 0x20);
	assert_int_equal(n.addr[3], 0xb8);
	assert_true(cidr_parse("::1", &n));
	assert_int_equal(n.family, AF_INET6);
	assert_int_equal(n.prefix, 128);
	assert_true(cidr_parse("0.0.0.0/0", &n));
	assert_int_equal(n.prefix, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cidr_parse(bad[i], &n))
			fail_msg("\"%s\" accepted", bad[i]);
}

/* route_is_local ignores case and matches whole names only. */
static void test_local_domains(void **state)
{
	struct conf *c;

	(void)state;
	c = load_ok("[server]\nlocal_domains = Example.ORG mail.example.net\n" LISTENER);
	assert_true(route_is_local(c, "example.org"));
	assert_true(route_is_local(c, "EXAMPLE.ORG"));
	assert_true(route_is_local(c, "MAIL.Example.Net"));
	assert_false(route_is_local(c, "example.com"));
	assert_false(route_is_local(c, "sub.example.org"));
	assert_false(route_is_local(c, "example.org."));
	assert_false(route_is_local(c, "example"));
	assert_false(route_is_local(c, ""));
	/* The file replaces the default list. */
	assert_false(route_is_local(c, "localhost"));
	conf_free(c);
}

/* The text form of a parsed DNS server: "1.2.3.4 53" or "::1 53". */
static void server_text(const struct dns_server *d, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (d->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&d->ss;
		assert_int_equal(d->len, sizeof(*s));
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s %u", ip, ntohs(s->sin_port));
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&d->ss;
		assert_int_equal(d->ss.ss_family, AF_INET6);
		assert_int_equal(d->len, sizeof(*s));
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s %u", ip, ntohs(s->sin6_port));
	}
}

/* Every form of a server, the default port, separators and the limit. */
static void test_dns_servers_parse(void **state)
{
	struct dns_server d[DNS_SERVERS_MAX + 1];
	char text[80];
	size_t n = 99;

	(void)state;
	assert_true(conf_parse_dns_servers("127.0.0.1:5353, [::1]:53 192.0.2.1\t2001:db8::1,"
					   "[2001:db8::2] ::ffff:192.0.2.3",
					   d, DNS_SERVERS_MAX, &n));
	assert_int_equal(n, 6);
	server_text(&d[0], text, sizeof(text));
	assert_string_equal(text, "127.0.0.1 5353");
	server_text(&d[1], text, sizeof(text));
	assert_string_equal(text, "::1 53");
	server_text(&d[2], text, sizeof(text));
	assert_string_equal(text, "192.0.2.1 53");
	server_text(&d[3], text, sizeof(text));
	assert_string_equal(text, "2001:db8::1 53");
	server_text(&d[4], text, sizeof(text));
	assert_string_equal(text, "2001:db8::2 53");
	server_text(&d[5], text, sizeof(text));
	assert_string_equal(text, "::ffff:192.0.2.3 53");
	/* "2001:db8::1:53" is itself an address: a port needs the brackets */
	assert_true(conf_parse_dns_servers("2001:db8::1:53", d, DNS_SERVERS_MAX, &n));
	assert_int_equal(n, 1);
	server_text(&d[0], text, sizeof(text));
	assert_string_equal(text, "2001:db8::1:53 53");
	assert_true(conf_parse_dns_servers("[::1]:65535", d, DNS_SERVERS_MAX, &n));
	server_text(&d[0], text, sizeof(text));
	assert_string_equal(text, "::1 65535");
	/* empty: the system's resolver */
	assert_true(conf_parse_dns_servers("", d, DNS_SERVERS_MAX, &n));
	assert_int_equal(n, 0);
	assert_true(conf_parse_dns_servers(" , ", d, DNS_SERVERS_MAX, &n));
	assert_int_equal(n, 0);
	/* exactly the limit, and one more */
	assert_true(conf_parse_dns_servers("1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5 6.6.6.6 "
					   "7.7.7.7 8.8.8.8",
					   d, DNS_SERVERS_MAX, &n));
	assert_int_equal(n, DNS_SERVERS_MAX);
	assert_false(conf_parse_dns_servers("1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5 6.6.6.6 "
					    "7.7.7.7 8.8.8.8 9.9.9.9",
					    d, DNS_SERVERS_MAX, &n));
	assert_false(conf_parse_dns_servers("1.1.1.1 2.2.2.2", d, 1, &n));
}

/* Anything that is not a numeric address with an optional port. */
static void test_dns_servers_bad(void **state)
{
	static const char *const bad[] = {
		"localhost",
		"ns1.example.org:53",
		"127.0.0.1:",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:53x",
		"127.0.0.1:-1",
		"127.0.0.1: 53",
		"127.0.0.1:+53",
		"127.0.0.1.5",
		"256.0.0.1",
		"[127.0.0.1]:53",
		"[127.0.0.1]",
		"[::1",
		"[::1]53",
		"[::1]:",
		"[::1]:99999",
		"[]:53",
		"[]",
		":53",
		"::1::2",
		"[fe80::1%lo]:53",
		"2001:db8::1:53:54:55:56:57:58",
		"127.0.0.1:53 bogus",
		"[0000:0000:0000:0000:0000:0000:0000:0000:0000]:53",
		"\xc3\xa9",
	};
	struct dns_server d[DNS_SERVERS_MAX];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_parse_dns_servers(bad[i], d, DNS_SERVERS_MAX, &n))
			fail_msg("accepted \"%s\"", bad[i]);
}

/* [dns]: defaults, every key, the error for a bad value. */
static void test_dns_section(void **state)
{
	struct conf *c;

	(void)state;
	c = load_ok(LISTENER);
	assert_null(c->dns_servers);
	assert_int_equal(c->dns_timeout_ms, 5000);
	assert_int_equal(c->dns_tries, 2);
	conf_free(c);
	c = load_ok(
		"[dns]\nservers = 127.0.0.1:5353, [::1]:53\ntimeout = 250ms\ntries = 3\n" LISTENER);
	assert_string_equal(c->dns_servers, "127.0.0.1:5353, [::1]:53");
	assert_int_equal(c->dns_timeout_ms, 250);
	assert_int_equal(c->dns_tries, 3);
	conf_free(c);
	c = load_ok("[dns]\nservers =\ntimeout = 1m\ntries = 1\n" LISTENER);
	assert_null(c->dns_servers);
	assert_int_equal(c->dns_timeout_ms, 60000);
	conf_free(c);
	c = load_ok("[dns]\ntimeout = 7\n" LISTENER);
	assert_int_equal(c->dns_timeout_ms, 7000);
	conf_free(c);
	load_fail("[dns]\nservers = localhost:53\n" LISTENER, 2, "key \"servers\" in [dns]",
		  "bad value \"localhost:53\"");
	load_fail("[dns]\ntimeout = 9ms\n" LISTENER, 2, "key \"timeout\" in [dns]", "\"9ms\"");
	load_fail("[dns]\ntimeout = 61s\n" LISTENER, 2, "key \"timeout\" in [dns]", "\"61s\"");
	load_fail("[dns]\ntimeout = ms\n" LISTENER, 2, "key \"timeout\" in [dns]", NULL);
	load_fail("[dns]\ntries = 0\n" LISTENER, 2, "key \"tries\" in [dns]", "\"0\"");
	load_fail("[dns]\ntries = 6\n" LISTENER, 2, "key \"tries\" in [dns]", "\"6\"");
	load_fail("[dns]\nport = 53\n" LISTENER, 2, "unknown key \"port\" in [dns]", NULL);
}

/* No command or file delivery: alias_commands/alias_files may only be no. */
static void test_alias_commands_and_files_must_be_off(void **state)
{
	(void)state;
	conf_free(load_ok(LISTENER "[delivery]\nalias_commands = no\nalias_files = no\n"));
	load_fail(LISTENER "[delivery]\nalias_commands = yes\n", 0, "alias_commands",
		  "no command delivery");
	load_fail(LISTENER "[delivery]\nalias_files = yes\n", 0, "alias_files", "no file delivery");
}

/* greeting_delay: 3 s where mail comes in, 0 where people submit, unless
 * written; and [dnsbl] zones, a list that may span lines. */
static void test_postscreen_keys(void **state)
{
	char err[256] = "";
	struct conf *c;

	(void)state;
	c = conf_load(NULL, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(find_listener(c, "smtp")->greeting_delay_ms, 3000);
	assert_int_equal(find_listener(c, "submission")->greeting_delay_ms, 0);
	assert_int_equal(find_listener(c, "submissions")->greeting_delay_ms, 0);
	assert_int_equal(c->limits.client_sessions_max, 50);
	assert_int_equal(c->ndnsbl_zones, 0);
	assert_false(c->greylist_enabled);
	assert_int_equal(c->greylist_delay, 300);
	assert_int_equal(c->greylist_max_entries, 100000);
	assert_int_equal(c->check_fcrdns, CLIENT_CHECK_OFF);
	assert_int_equal(c->check_helo, CLIENT_CHECK_OFF);
	conf_free(c);
	c = load_ok(
		"[listener mx]\naddress = 127.0.0.1:25\ngreeting_delay = 1500ms\n"
		"[listener sub]\naddress = 127.0.0.1:587\nauth = required\ngreeting_delay = 2s\n"
		"[dnsbl]\nzones = bl.example*2,\n  wl.example=127.0.[0..255].[1..3]*-5\n"
		"threshold = 2\n");
	assert_int_equal(find_listener(c, "mx")->greeting_delay_ms, 1500);
	assert_int_equal(find_listener(c, "sub")->greeting_delay_ms, 2000);
	assert_int_equal(c->ndnsbl_zones, 2);
	assert_string_equal(c->dnsbl_zones[1].zone, "wl.example");
	assert_int_equal(c->dnsbl_zones[1].weight, -5);
	assert_int_equal(c->dnsbl_threshold, 2);
	conf_free(c);
	load_fail(LISTENER "[dnsbl]\nzones = bl.example*x\n", 0, "zones", "bl.example*x");
	load_fail(LISTENER "[dnsbl]\nthreshold = 0\n", 0, "threshold", NULL);
	load_fail(LISTENER "[client_checks]\nhelo = maybe\n", 0, "helo", NULL);
	load_fail(LISTENER "[server]\nreverse_dns = no\n[client_checks]\nfcrdns = mark\n", 0,
		  "fcrdns", "reverse_dns");
	c = load_ok(LISTENER "[client_checks]\nfcrdns = refuse\nhelo = mark\n");
	assert_int_equal(c->check_fcrdns, CLIENT_CHECK_REFUSE);
	assert_int_equal(c->check_helo, CLIENT_CHECK_MARK);
	conf_free(c);
	load_fail("[listener smtp]\naddress = 127.0.0.1:2525\ngreeting_delay = 6m\n", 0,
		  "greeting_delay", NULL);
}

/* A reload takes every change but the restart keys, which keep their
 * running values and are named. */
static void test_reload_keeps_restart_keys(void **state)
{
	char restart[512], err[512];
	struct conf *old, *c;
	const char *path;

	(void)state;
	old = load_ok("[server]\nstate_dir = /tmp/a\nlocal_domains = a.example\n"
		      "[limits]\nmessage_size_max = 10m\n"
		      "[listener smtp]\naddress = 127.0.0.1:2525\ntls = none\n"
		      "[dns]\ntries = 2\n");
	path = old->path;
	rewrite(path, "[server]\nstate_dir = /tmp/b\nlocal_domains = a.example, b.example\n"
		      "user = someone\n"
		      "[limits]\nmessage_size_max = 1m\n"
		      "[listener smtp]\naddress = 127.0.0.1:2526\ntls = none\n"
		      "[dns]\ntries = 3\n"
		      "[transport]\nb.example = [192.0.2.1]:25\n");
	c = conf_reload(old, restart, sizeof(restart), err, sizeof(err));
	if (c == NULL)
		fail_msg("conf_reload failed: %s", err);
	assert_int_equal(c->generation, old->generation + 1);
	/* what can change did */
	assert_int_equal(c->limits.message_size_max, 1024 * 1024);
	assert_int_equal(c->nlocal_domains, 2);
	assert_int_equal(c->ntransport, 1);
	/* what cannot kept the running value, named */
	assert_string_equal(c->state_dir, "/tmp/a");
	assert_string_equal(c->users_file, "/tmp/a/users"); /* below the kept state_dir */
	assert_string_equal(c->user, "hato");
	assert_int_equal(c->dns_tries, 2);
	assert_string_equal(c->listeners[0].address, "127.0.0.1:2525");
	assert_non_null(strstr(restart, "[server] state_dir"));
	assert_non_null(strstr(restart, "[server] user"));
	assert_non_null(strstr(restart, "[dns] tries"));
	assert_non_null(strstr(restart, "[listener smtp] address"));
	assert_null(strstr(restart, "message_size_max"));
	conf_free(c);

	/* nothing that needs a restart changed: nothing named */
	rewrite(path, "[server]\nstate_dir = /tmp/a\nlocal_domains = a.example\n"
		      "[listener smtp]\naddress = 127.0.0.1:2525\ntls = none\n");
	c = conf_reload(old, restart, sizeof(restart), err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(restart, "");
	conf_free(c);

	/* a new listener needs a restart too */
	rewrite(path, "[server]\nstate_dir = /tmp/a\nlocal_domains = a.example\n"
		      "[listener smtp]\naddress = 127.0.0.1:2525\ntls = none\n"
		      "[listener more]\naddress = 127.0.0.1:2527\n");
	c = conf_reload(old, restart, sizeof(restart), err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->nlisteners, 1);
	assert_string_equal(restart, "[listener more] address");
	conf_free(c);
	conf_free(old);
}

/* A file that does not load is refused with its line and key; the
 * running configuration is untouched. */
static void test_reload_broken_file(void **state)
{
	char restart[512], err[512], want[256];
	struct conf *old;

	(void)state;
	old = load_ok("[limits]\nmessage_size_max = 10m\n[listener smtp]\naddress = "
		      "127.0.0.1:2525\n");
	rewrite(old->path, "[limits]\nmessage_size_max = 10m\nrecipients_max = lots\n"
			   "[listener smtp]\naddress = 127.0.0.1:2525\n");
	assert_null(conf_reload(old, restart, sizeof(restart), err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3:", old->path);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "recipients_max"));
	assert_int_equal(old->limits.message_size_max, 10 * 1024 * 1024);
	conf_free(old);
}

/* A configuration stays until its last holder lets go. */
static void test_conf_holders(void **state)
{
	char err[512];
	struct conf *c = conf_load(NULL, err, sizeof(err));
	const struct conf *held;

	(void)state;
	assert_non_null(c);
	held = conf_hold(c);
	assert_ptr_equal(held, c);
	conf_free(c);                             /* one holder left */
	assert_non_null(held->listeners[0].name); /* still there (ASan would say) */
	conf_free(held);
	assert_true(conf_restart_key("server", "state_dir"));
	assert_true(conf_restart_key("listener", "address"));
	assert_false(conf_restart_key("limits", "message_size_max"));
	assert_false(conf_restart_key("listener", "tls"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postscreen_keys),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_listeners),
		cmocka_unit_test(test_bad_listener_address),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_duration_keys),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_unknown_empty_section),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_multiline_list),
		cmocka_unit_test(test_indented_first_key),
		cmocka_unit_test(test_cross_checks),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_local_domains),
		cmocka_unit_test(test_dns_servers_parse),
		cmocka_unit_test(test_dns_servers_bad),
		cmocka_unit_test(test_dns_section),
		cmocka_unit_test(test_alias_commands_and_files_must_be_off),
		cmocka_unit_test(test_reload_keeps_restart_keys),
		cmocka_unit_test(test_reload_broken_file),
		cmocka_unit_test(test_conf_holders),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
