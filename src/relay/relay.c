/*
 * relay.c - the SMTP client of remote delivery (see relay.h).
 *
 * The client state machine, one connection at a time:
 *
 *   CONNECT -> [TLS when implicit] -> GREETING -> EHLO (-> HELO) ->
 *   [STARTTLS -> TLS -> EHLO] -> [AUTH] -> READY
 *   READY -> MAIL -> RCPT... -> DATA -> DOT -> READY (kept for reuse)
 *   READY -> RSET -> READY (a reused connection)   READY -> QUIT
 *
 * Everything up to READY belongs to the host: a failure there moves on to
 * the next address.  From MAIL on, replies belong to the recipients.  The
 * states are enum relay_state; relay_enter_state() logs each transition
 * (hatod -v: event=relay_state transition="EHLO -> STARTTLS").
 */
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mx.h"
#include "smtp_conn.h"
#include "strbuf.h"
#include "util.h"

#define RELAY_QUIT_TIMEOUT 10 /* seconds for QUIT: everything is decided by then */

/* Enhanced status codes of failures decided here, in one place. */
#define ESC_CONNECT "4.4.1" /* no answer from host */
#define ESC_SESSION "4.4.2" /* bad connection */
#define ESC_TLS "4.7.5"     /* the TLS the policy asks for could not be had */
#define ESC_LOOP "5.4.6"    /* routing loop */
#define ESC_8BIT "5.6.3"    /* conversion required but not supported */
#define ESC_UTF8 "5.6.7"    /* SMTPUTF8 required but not supported */
#define ESC_SIZE "5.3.4"    /* message too big for the system */
#define ESC_MESSAGE "4.3.0" /* the queued message cannot be read */
#define ESC_AUTH "4.7.0"    /* no way to log in safely */
#define ESC_CONFIG "4.3.5"  /* the configured next hop is unusable */

/* Where a client connection is (see the diagram above). */
enum relay_state {
	RELAY_CONNECT,
	RELAY_TLS,
	RELAY_GREETING,
	RELAY_EHLO,
	RELAY_HELO,
	RELAY_STARTTLS,
	RELAY_AUTH,
	RELAY_READY,
	RELAY_RSET,
	RELAY_MAIL,
	RELAY_RCPT,
	RELAY_DATA,
	RELAY_DOT,
	RELAY_QUIT,
	RELAY_CLOSED,
};

static const char *const relay_state_names[] = {"CONNECT",  "TLS",  "GREETING", "EHLO", "HELO",
						"STARTTLS", "AUTH", "READY",    "RSET", "MAIL",
						"RCPT",     "DATA", "DOT",      "QUIT", "CLOSED"};

/* One connection, in use or idle for reuse. */
struct rconn {
	struct rconn *next;
	enum relay_state state;
	char key[320];    /* the route it serves */
	char host[256];   /* the name we connected to */
	char remote[300]; /* "host[addr]:port" for logs and results */
	struct smtp_caps caps;
	time_t idle_since;
	struct smtp_conn c;
};

struct relay {
	const struct conf *conf;
	pthread_mutex_t lock;
	struct rconn *idle; /* connections waiting for the next message */
	size_t nidle;
};

/* Name of a client state for logs. */
static const char *relay_strstate(enum relay_state st)
{
	return relay_state_names[st];
}

/* Enter a state: logged (verbose) as a transition. */
static void relay_enter_state(struct rconn *k, enum relay_state st)
{
	if (k->state == st)
		return;
	log_debug("event=relay_state relay=%s transition=\"%s -> %s\"", k->remote,
		  relay_strstate(k->state), relay_strstate(st));
	k->state = st;
}

/* See relay.h. */
void relay_route(const struct conf *c, const char *domain, struct relay_route *out)
{
	const char *t = map_lookup(c->transport, c->ntransport, domain);
	const char *p = map_lookup(c->tls_policies, c->ntls_policies, domain);

	memset(out, 0, sizeof(*out));
	strcpy_bounded(out->domain, domain, sizeof(out->domain));
	out->tls = c->remote_tls;
	if (c->relayhost != NULL) {
		nexthop_parse(c->relayhost, &out->hop); /* checked when the config was read */
		out->tls = c->relayhost_tls;
		out->implicit_tls = c->relayhost_implicit_tls;
		out->auth = c->relay_user != NULL;
		out->configured = true;
		snprintf(out->key, sizeof(out->key), "smtp:%s", c->relayhost);
		return;
	}
	if (t != NULL) {
		nexthop_parse(t, &out->hop);
		out->configured = true;
		snprintf(out->key, sizeof(out->key), "smtp:%s", t);
	} else {
		strcpy_bounded(out->hop.host, domain, sizeof(out->hop.host));
		out->hop.mx = true;
		snprintf(out->key, sizeof(out->key), "smtp:%s", domain);
	}
	if (p != NULL)
		tls_policy_parse(p, &out->tls);
	/* domains sharing a hop share connections only under the same policy */
	snprintf(out->key + strlen(out->key), sizeof(out->key) - strlen(out->key), " tls=%s",
		 tls_policy_name(out->tls));
}

/* See relay.h. */
struct relay *relay_new(const struct conf *c)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	r->conf = c;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

/* Set every recipient still without an answer (res.esc empty) to the same outcome. */
static void settle_open(struct relay_msg *m, const char *remote, enum outcome o, const char *esc,
			const char *text)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].res.esc[0] == '\0') {
			result_set(&m->rcpts[i].res, o, esc, "%s", text);
			strcpy_bounded(m->rcpts[i].remote, remote, sizeof(m->rcpts[i].remote));
		}
}

/* Record the server's reply as recipient i's answer. */
static void rcpt_answer(struct relay_msg *m, size_t i, const struct rconn *k,
			const struct smtp_reply *rep)
{
	result_set(&m->rcpts[i].res, outcome_from_reply(rep->code), rep->esc, "%s said: %s",
		   k->remote, rep->text);
	strcpy_bounded(m->rcpts[i].remote, k->remote, sizeof(m->rcpts[i].remote));
}

/* The address of one of our listeners, so mail never comes back to us? */
static bool is_own_listener(const struct conf *c, const struct sockaddr *sa)
{
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct sockaddr *l = (const struct sockaddr *)&c->listeners[i].ss;

		if (l->sa_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)sa, *b = (const void *)l;
			if (a->sin_port == b->sin_port &&
			    (a->sin_addr.s_addr == b->sin_addr.s_addr ||
			     b->sin_addr.s_addr == htonl(INADDR_ANY)))
				return true;
		} else if (sa->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)sa, *b = (const void *)l;
			if (a->sin6_port == b->sin6_port &&
			    (memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0 ||
			     IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr)))
				return true;
		}
	}
	return false;
}

/* Set the port of every address in hosts. */
static void set_port(struct mx_list *hosts, unsigned port)
{
	for (size_t h = 0; h < hosts->n; h++)
		for (size_t a = 0; a < hosts->hosts[h].naddrs; a++) {
			struct sockaddr *sa = (struct sockaddr *)&hosts->hosts[h].addrs[a].ss;

			if (sa->sa_family == AF_INET)
				((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
			else if (sa->sa_family == AF_INET6)
				((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
		}
}

/* The hosts of the route, in the order to try them, without our own
 * listeners.  false with why when there is none to try. */
static bool route_hosts(const struct relay *r, const struct relay_route *rt, struct mx_list *hosts,
			struct delivery_result *why)
{
	const struct conf *c = r->conf;
	struct dns_opts o = {c->dns_servers, c->dns_timeout_ms, c->dns_tries};
	size_t before = 0, after = 0;

	memset(hosts, 0, sizeof(*hosts));
	if (rt->hop.mx
		    ? mx_lookup(&o, rt->hop.host, hosts, why) != OUTCOME_DELIVERED
		    : host_lookup(&o, rt->hop.host, &hosts->hosts[0], why) != OUTCOME_DELIVERED) {
		/* a configured hop that does not resolve is our mistake, not the mail's */
		if (rt->configured && why->outcome == OUTCOME_PERMFAIL) {
			char text[sizeof(why->text)];

			strcpy_bounded(text, why->text, sizeof(text));
			result_set(why, OUTCOME_TEMPFAIL, ESC_CONFIG, "next hop %s: %s",
				   rt->hop.host, text);
		}
		return false;
	}
	if (!rt->hop.mx)
		hosts->n = 1;
	set_port(hosts, rt->hop.port ? rt->hop.port : c->remote_port);
	for (size_t h = 0; h < hosts->n; h++) {
		struct mx_host *x = &hosts->hosts[h];
		size_t kept = 0;

		before += x->naddrs;
		for (size_t a = 0; a < x->naddrs; a++)
			if (!is_own_listener(c, (struct sockaddr *)&x->addrs[a].ss))
				x->addrs[kept++] = x->addrs[a];
		x->naddrs = kept;
		after += kept;
	}
	if (before > 0 && after == 0) {
		result_set(why, OUTCOME_PERMFAIL, ESC_LOOP,
			   "mail for %s loops back to myself (%s is one of my listeners)",
			   rt->domain, hosts->hosts[0].name);
		return false;
	}
	if (after == 0) {
		result_set(why, OUTCOME_TEMPFAIL, ESC_CONNECT, "no address to connect to for %s",
			   rt->hop.host);
		return false;
	}
	return true;
}

/* "host[addr]:port" of sa. */
static void remote_name(const char *host, const struct sockaddr *sa, socklen_t len, char *out,
			size_t size)
{
	char addr[INET6_ADDRSTRLEN] = "?", port[8] = "?";

	getnameinfo(sa, len, addr, sizeof(addr), port, sizeof(port),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(out, size, "%s[%s]:%s", host, addr, port);
}

/* A host-level failure of k: why gets it, as TEMPFAIL unless o says otherwise. */
static bool __attribute__((format(printf, 5, 6)))
host_fail(struct rconn *k, struct delivery_result *why, enum outcome o, const char *esc,
	  const char *fmt, ...)
{
	char text[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	result_set(why, o, esc, "%s: %s", k->remote, text);
	return false;
}

/* A refused greeting or EHLO: the host's state, not the mail's, so another host may do. */
static bool host_refused(struct rconn *k, struct delivery_result *why, const char *what,
			 const struct smtp_reply *rep)
{
	return host_fail(k, why, OUTCOME_TEMPFAIL, rep->code / 100 == 4 ? rep->esc : ESC_SESSION,
			 "%s refused: %s", what, rep->text);
}

/* The TLS handshake by the route's policy. */
static bool session_tls(struct relay *r, const struct relay_route *rt, struct rconn *k,
			struct delivery_result *why)
{
	struct smtp_tls_opts t = {.host = k->host,
				  .verify = rt->tls == TLS_POLICY_VERIFY,
				  .ca_file = r->conf->remote_tls_ca_file,
				  .timeout = r->conf->remote_timeout_command};

	relay_enter_state(k, RELAY_TLS);
	if (smtp_conn_tls(&k->c, &t))
		return true;
	return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_TLS, "%s", k->c.err);
}

/* EHLO, or HELO when the server refuses EHLO. */
static bool session_ehlo(struct relay *r, struct rconn *k, struct delivery_result *why)
{
	const struct conf *c = r->conf;
	const char *name = c->remote_helo ? c->remote_helo : c->hostname;
	char cmd[300];
	struct smtp_reply rep;

	snprintf(cmd, sizeof(cmd), "EHLO %s", name);
	relay_enter_state(k, RELAY_EHLO);
	if (!smtp_conn_cmd(&k->c, &rep, "EHLO", NULL, cmd, c->remote_timeout_command, &k->caps))
		return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_SESSION, "%s", k->c.err);
	if (rep.code == 250)
		return true;
	memset(&k->caps, 0, sizeof(k->caps));
	if (rep.code / 100 != 5)
		return host_refused(k, why, "EHLO", &rep);
	snprintf(cmd, sizeof(cmd), "HELO %s", name);
	relay_enter_state(k, RELAY_HELO);
	if (!smtp_conn_cmd(&k->c, &rep, "HELO", NULL, cmd, c->remote_timeout_command, NULL))
		return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_SESSION, "%s", k->c.err);
	return rep.code == 250 || host_refused(k, why, "HELO", &rep);
}

/* Does the greeting name us (mail that would loop back)? */
static bool greets_as_us(const struct conf *c, const struct smtp_reply *rep)
{
	const char *name = rep->text + 4;
	size_t n = strcspn(name, " ");

	return strlen(rep->text) > 4 && n == strlen(c->hostname) &&
	       strncasecmp(name, c->hostname, n) == 0;
}

/* From a connected socket to READY: greeting, EHLO, STARTTLS, AUTH.  use_tls
 * false: STARTTLS is not tried (policy may, after a failed handshake). */
static bool session_open(struct relay *r, const struct relay_route *rt, struct rconn *k,
			 bool use_tls, struct delivery_result *why)
{
	const struct conf *c = r->conf;
	struct smtp_reply rep;

	if (rt->implicit_tls && !session_tls(r, rt, k, why))
		return false;
	relay_enter_state(k, RELAY_GREETING);
	k->c.phase = "the greeting";
	if (!smtp_conn_reply(&k->c, &rep, c->remote_timeout_greeting, NULL))
		return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_SESSION, "%s", k->c.err);
	if (rep.code != 220)
		return host_refused(k, why, "greeting", &rep);
	if (greets_as_us(c, &rep))
		return host_fail(k, why, OUTCOME_PERMFAIL, ESC_LOOP,
				 "mail for %s loops back to myself (the server greets as %s)",
				 rt->domain, c->hostname);
	if (!session_ehlo(r, k, why))
		return false;
	if (!rt->implicit_tls && rt->tls != TLS_POLICY_NONE && use_tls) {
		if (!k->caps.starttls) {
			if (rt->tls != TLS_POLICY_MAY)
				return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_TLS,
						 "TLS is required (tls policy %s) but the server "
						 "does not offer STARTTLS",
						 tls_policy_name(rt->tls));
		} else {
			relay_enter_state(k, RELAY_STARTTLS);
			if (!smtp_conn_cmd(&k->c, &rep, "STARTTLS", NULL, "STARTTLS",
					   c->remote_timeout_command, NULL))
				return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_SESSION, "%s",
						 k->c.err);
			if (rep.code != 220 && rt->tls != TLS_POLICY_MAY)
				return host_refused(k, why, "STARTTLS", &rep);
			if (rep.code != 220) /* may: the session is in step, go on in plaintext */
				log_info("event=relay_starttls_refused relay=%s reply=\"%s\"",
					 k->remote, rep.text);
			else if (smtp_conn_pending(
					 &k->c)) /* response injection: never read as TLS */
				return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_SESSION,
						 "data after the reply to STARTTLS, before TLS "
						 "began");
			else if (!session_tls(r, rt, k, why) || !session_ehlo(r, k, why))
				return false;
		}
	}
	if (rt->auth) {
		if (k->c.ssl == NULL)
			return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_AUTH,
					 "refusing to send the relayhost password without TLS");
		if (!k->caps.auth_plain && !k->caps.auth_login)
			return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_AUTH,
					 "no AUTH PLAIN or LOGIN offered (only: %s)",
					 k->caps.auth_mechs);
		relay_enter_state(k, RELAY_AUTH);
		if (!smtp_conn_auth(&k->c, &k->caps, c->relay_user, c->relay_password,
				    c->remote_timeout_command, &rep))
			return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_SESSION, "AUTH: %s",
					 k->c.err);
		if (rep.code != 235)
			return host_refused(k, why, "AUTH", &rep);
	}
	relay_enter_state(k, RELAY_READY);
	return true;
}

/* Close k's connection, with QUIT when it is still in step. */
static void conn_quit(struct relay *r, struct rconn *k)
{
	struct smtp_reply rep;
	unsigned secs = r->conf->remote_timeout_command < RELAY_QUIT_TIMEOUT
				? r->conf->remote_timeout_command
				: RELAY_QUIT_TIMEOUT;

	if (!k->c.broken && k->c.fd >= 0) {
		relay_enter_state(k, RELAY_QUIT);
		if (smtp_conn_cmd(&k->c, &rep, "QUIT", NULL, "QUIT", secs, NULL) &&
		    k->c.ssl != NULL)
			(void)SSL_shutdown(k->c.ssl);
	}
	relay_enter_state(k, RELAY_CLOSED);
	smtp_conn_close(&k->c);
}

/* conn_quit, and free k. */
static void conn_end(struct relay *r, struct rconn *k)
{
	conn_quit(r, k);
	free(k);
}

/* An idle connection for the route, checked with RSET; NULL when none. */
static struct rconn *conn_take(struct relay *r, const struct relay_route *rt)
{
	time_t now = time(NULL);
	struct rconn **pp, *k = NULL;
	struct smtp_reply rep;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->idle; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->key, rt->key) == 0 &&
		    now - (*pp)->idle_since <= (time_t)r->conf->remote_reuse_time) {
			k = *pp;
			*pp = k->next;
			r->nidle--;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	if (k == NULL)
		return NULL;
	relay_enter_state(k, RELAY_RSET);
	if (smtp_conn_cmd(&k->c, &rep, "RSET", NULL, "RSET", r->conf->remote_timeout_command,
			  NULL) &&
	    rep.code / 100 == 2) {
		relay_enter_state(k, RELAY_READY);
		return k;
	}
	k->c.broken = true;
	conn_end(r, k);
	return NULL;
}

/* Keep k for the next message to its route, or end it. */
static void conn_put(struct relay *r, struct rconn *k)
{
	size_t same = 0;

	if (k->c.broken || r->conf->remote_reuse_time == 0) {
		conn_end(r, k);
		return;
	}
	k->idle_since = time(NULL);
	pthread_mutex_lock(&r->lock);
	for (struct rconn *x = r->idle; x != NULL; x = x->next)
		same += strcmp(x->key, k->key) == 0;
	if (same < r->conf->delivery_concurrency_domain) {
		k->next = r->idle;
		r->idle = k;
		r->nidle++;
		k = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	if (k != NULL)
		conn_end(r, k);
}

/* A new READY connection for the route, trying each host and address in
 * turn; NULL with why telling the last failure. */
static struct rconn *conn_open(struct relay *r, const struct relay_route *rt,
			       struct delivery_result *why)
{
	const struct conf *c = r->conf;
	struct mx_list *hosts = xmalloc(sizeof(*hosts));
	struct rconn *k = xmalloc(sizeof(*k));

	if (!route_hosts(r, rt, hosts, why)) {
		free(hosts);
		free(k);
		return NULL;
	}
	for (size_t h = 0; h < hosts->n; h++) {
		const struct mx_host *x = &hosts->hosts[h];

		for (size_t a = 0; a < x->naddrs; a++) {
			const struct sockaddr *sa = (const struct sockaddr *)&x->addrs[a].ss;

			/* policy may: a failed handshake is tried once more without TLS */
			for (int use_tls = 1; use_tls >= 0; use_tls--) {
				memset(k, 0, offsetof(struct rconn, c)); /* state RELAY_CONNECT */
				smtp_conn_init(&k->c);
				strcpy_bounded(k->key, rt->key, sizeof(k->key));
				strcpy_bounded(k->host, x->name, sizeof(k->host));
				remote_name(x->name, sa, x->addrs[a].len, k->remote,
					    sizeof(k->remote));
				if (!smtp_conn_connect(&k->c, sa, x->addrs[a].len,
						       c->remote_timeout_connect)) {
					host_fail(k, why, OUTCOME_TEMPFAIL, ESC_CONNECT,
						  "connect: %s", k->c.err);
					log_info("event=relay_connect_failed domain=%s relay=%s "
						 "error=\"%s\"",
						 rt->domain, k->remote, k->c.err);
					break;
				}
				if (session_open(r, rt, k, use_tls, why)) {
					free(hosts);
					return k;
				}
				log_info("event=relay_session_failed domain=%s relay=%s "
					 "error=\"%s\"",
					 rt->domain, k->remote, why->text);
				conn_quit(r, k);
				if (why->outcome ==
				    OUTCOME_PERMFAIL) { /* a loop: no use going on */
					free(hosts);
					free(k);
					return NULL;
				}
				if (!(rt->tls == TLS_POLICY_MAY && k->c.fail == CONN_FAIL_TLS))
					break;
			}
		}
	}
	free(hosts);
	free(k);
	return NULL;
}

/* Does the queued message hold an octet above 127?  (Only asked of messages
 * not declared 8BITMIME, for a server without 8BITMIME; an unreadable file
 * counts as 8-bit, so nothing unchecked goes out.) */
static bool file_has_8bit(int fd, uint64_t len)
{
	unsigned char buf[32 * 1024];
	bool found = false;
	ssize_t n = 0;
	uint64_t off = 0;

	while (!found && off < len &&
	       (n = pread(fd, buf, len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf),
			  (off_t)off)) > 0) {
		off += (uint64_t)n;
		for (ssize_t i = 0; i < n && !found; i++)
			found = buf[i] > 127;
	}
	return found || n < 0;
}

/* Fail every recipient at once for what the message is, before sending it.
 * true when the server can take it. */
static bool message_fits(const struct rconn *k, struct relay_msg *m)
{
	char text[700];

	if (!m->eightbit && !k->caps.eightbit && file_has_8bit(m->fd, m->size))
		m->eightbit = true; /* 8-bit data the client did not declare */
	if (m->smtputf8 && !k->caps.smtputf8)
		snprintf(text, sizeof(text),
			 "%s does not support SMTPUTF8, which this message needs", k->remote);
	else if (m->eightbit && !k->caps.eightbit)
		snprintf(text, sizeof(text),
			 "%s does not support 8BITMIME, and this message has 8-bit data",
			 k->remote);
	else if (k->caps.size > 0 && m->size > k->caps.size)
		snprintf(text, sizeof(text),
			 "the message (%llu octets) is larger than %s takes (%llu)",
			 (unsigned long long)m->size, k->remote, (unsigned long long)k->caps.size);
	else
		return true;
	settle_open(m, k->remote, OUTCOME_PERMFAIL,
		    m->smtputf8 && !k->caps.smtputf8   ? ESC_UTF8
		    : m->eightbit && !k->caps.eightbit ? ESC_8BIT
						       : ESC_SIZE,
		    text);
	return false;
}

/* Enter st and read the reply to its command, sent before (pipelined) or now. */
static bool step(struct rconn *k, enum relay_state st, const struct strbuf *cmds, size_t *sent,
		 size_t end, bool pipelined, const char *phase, unsigned timeout,
		 struct smtp_reply *rep)
{
	relay_enter_state(k, st);
	k->c.phase = phase;
	if (!pipelined) {
		if (!smtp_conn_write(&k->c, cmds->s + *sent, end - *sent, timeout))
			return false;
		*sent = end;
	}
	return smtp_conn_reply(&k->c, rep, timeout, NULL);
}

/* DATA got 354 with no recipient accepted (RFC 2920 §3.1): an empty message, its reply ignored. */
static bool end_empty(struct rconn *k, const struct conf *c)
{
	struct smtp_reply rep;

	relay_enter_state(k, RELAY_DOT);
	k->c.phase = "the reply to an empty DATA";
	return smtp_conn_write(&k->c, ".\r\n", 3, c->remote_timeout_command) &&
	       smtp_conn_reply(&k->c, &rep, c->remote_timeout_data_end, NULL);
}

/* One transaction on a READY connection: MAIL, RCPT..., DATA, the message.
 * Every recipient gets its answer; false when the connection broke. */
static bool transaction(struct relay *r, struct rconn *k, struct relay_msg *m)
{
	const struct conf *c = r->conf;
	bool pipe = k->caps.pipelining, dsn = k->caps.dsn;
	size_t *ends = xcalloc(m->nrcpts + 2, sizeof(*ends)), sent = 0, accepted = 0;
	struct smtp_reply rep, mail;
	struct strbuf b;
	bool ok = false;

	if (!message_fits(k, m)) {
		free(ends);
		return true;
	}
	strbuf_init(&b);
	strbuf_printf(&b, "MAIL FROM:%s", m->sender);
	if (k->caps.size > 0)
		strbuf_printf(&b, " SIZE=%llu", (unsigned long long)m->size);
	if (m->eightbit)
		strbuf_adds(&b, " BODY=8BITMIME");
	if (m->smtputf8)
		strbuf_adds(&b, " SMTPUTF8");
	strbuf_printf(&b, "%s\r\n", dsn && m->mail_params ? m->mail_params : "");
	ends[0] = b.len;
	for (size_t i = 0; i < m->nrcpts; i++) {
		const char *params = dsn && m->rcpts[i].params ? m->rcpts[i].params : "";

		strbuf_printf(&b, "RCPT TO:%s%s\r\n", m->rcpts[i].addr, params);
		ends[i + 1] = b.len;
	}
	strbuf_adds(&b, "DATA\r\n");
	ends[m->nrcpts + 1] = b.len;
	if (pipe) { /* RFC 2920: the whole batch, then the replies in order */
		k->c.phase = "the reply to MAIL FROM";
		if (!smtp_conn_write(&k->c, b.s, b.len, c->remote_timeout_command))
			goto out;
		sent = b.len;
	}
	if (!step(k, RELAY_MAIL, &b, &sent, ends[0], pipe, "the reply to MAIL FROM",
		  c->remote_timeout_command, &mail))
		goto out;
	for (size_t i = 0; i < m->nrcpts && (pipe || mail.code / 100 == 2); i++) {
		if (!step(k, RELAY_RCPT, &b, &sent, ends[i + 1], pipe, "the reply to RCPT TO",
			  c->remote_timeout_command, &rep))
			goto out;
		if (mail.code / 100 != 2) /* MAIL's refusal answers for everyone */
			continue;
		if (rep.code / 100 == 2)
			accepted++;
		else
			rcpt_answer(m, i, k, &rep);
	}
	if (mail.code / 100 != 2) {
		for (size_t i = 0; i < m->nrcpts; i++)
			rcpt_answer(m, i, k, &mail);
		if (pipe && !step(k, RELAY_DATA, &b, &sent, b.len, pipe, "the reply to DATA",
				  c->remote_timeout_command, &rep))
			goto out;
		ok = !pipe || rep.code != 354 || end_empty(k, c);
		goto out;
	}
	if (!pipe && accepted == 0) {
		ok = true;
		goto out;
	}
	if (!step(k, RELAY_DATA, &b, &sent, b.len, pipe, "the reply to DATA",
		  c->remote_timeout_command, &rep))
		goto out;
	if (rep.code != 354 && (rep.code / 100 == 4 || rep.code / 100 == 5)) {
		for (size_t i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].res.esc[0] == '\0')
				rcpt_answer(m, i, k, &rep);
		ok = true;
		goto out;
	}
	if (rep.code != 354) { /* 2xx or 3xx to DATA: nothing was sent, nothing delivered */
		char text[sizeof(k->remote) + 400];

		snprintf(text, sizeof(text), "%s answered DATA with %d, not 354: %.300s", k->remote,
			 rep.code, rep.text);
		settle_open(m, k->remote, OUTCOME_TEMPFAIL, ESC_SESSION, text);
		k->c.broken = true;
		goto out;
	}
	if (accepted == 0) { /* 354 though no recipient was accepted */
		ok = end_empty(k, c);
		goto out;
	}
	/* from its start, whatever an earlier try sent */
	if (m->fd < 0 || lseek(m->fd, 0, SEEK_SET) != 0) {
		char text[300];

		snprintf(text, sizeof(text), "cannot read the queued message: %s",
			 strerror(m->fd < 0 ? m->read_err : errno));
		settle_open(m, k->remote, OUTCOME_TEMPFAIL, ESC_MESSAGE, text);
		k->c.broken = true; /* in DATA with nothing to send: drop the connection */
		goto out;
	}
	relay_enter_state(k, RELAY_DOT);
	if (!smtp_conn_send_file(&k->c, m->fd, m->size, c->remote_timeout_command))
		goto out;
	k->c.phase = "the reply to the end of DATA";
	if (!smtp_conn_reply(&k->c, &rep, c->remote_timeout_data_end, NULL))
		goto out;
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].res.esc[0] == '\0')
			rcpt_answer(m, i, k, &rep);
	ok = true;
out:
	if (!k->c.broken)
		relay_enter_state(k, RELAY_READY);
	if (!ok && k->c.broken && k->c.err[0] != '\0') {
		char text[900];

		snprintf(text, sizeof(text), "%s: %s", k->remote, k->c.err);
		settle_open(m, k->remote, OUTCOME_TEMPFAIL, ESC_SESSION, text);
	}
	strbuf_free(&b);
	free(ends);
	return ok;
}

/* See relay.h. */
void relay_deliver(struct relay *r, const struct relay_route *rt, struct relay_msg *m)
{
	struct delivery_result why;
	struct rconn *k;

	for (size_t i = 0; i < m->nrcpts; i++) {
		m->rcpts[i].res.esc[0] = '\0';
		m->rcpts[i].remote[0] = '\0';
	}
	strcpy_bounded(m->tls, "none", sizeof(m->tls));
	m->dsn = false;
	memset(&why, 0, sizeof(why));
	k = conn_take(r, rt);
	if (k == NULL)
		k = conn_open(r, rt, &why);
	if (k == NULL) {
		settle_open(m, "", why.outcome, why.esc, why.text);
		return;
	}
	if (k->c.ssl != NULL)
		strcpy_bounded(m->tls, SSL_get_version(k->c.ssl), sizeof(m->tls));
	m->dsn = k->caps.dsn;
	transaction(r, k, m);
	settle_open(m, k->remote, OUTCOME_TEMPFAIL, ESC_SESSION, "no reply for this recipient");
	conn_put(r, k);
}

/* See relay.h. */
size_t relay_idle(struct relay *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->nidle;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* See relay.h. */
void relay_expire(struct relay *r, bool all)
{
	time_t now = time(NULL);
	struct rconn *done = NULL, **pp, *k;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->idle; (k = *pp) != NULL;) {
		if (all || now - k->idle_since > (time_t)r->conf->remote_reuse_time) {
			*pp = k->next;
			r->nidle--;
			k->next = done;
			done = k;
		} else {
			pp = &k->next;
		}
	}
	pthread_mutex_unlock(&r->lock);
	while ((k = done) != NULL) {
		done = k->next;
		conn_end(r, k);
	}
}

/* See relay.h. */
void relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	relay_expire(r, true);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
