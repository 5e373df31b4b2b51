/*
 * relay.c - remote delivery (see relay.h): what is remote-delivery's own
 * around the client session (smtpc.h) that speaks to each host: the
 * route's hosts and addresses in turn, the TLS policy turned into the
 * session's TLS options (and a second try in plaintext when policy may
 * meets a failed handshake), mail loops, the message checks before it is
 * sent, each recipient's result, and the pool of idle connections.
 *
 * Everything up to READY belongs to the host: a failure there moves on to
 * the next address.  From MAIL on, replies belong to the recipients.
 * Each transition of the session is logged (hatod -v: event=relay_state
 * transition="EHLO -> STARTTLS").
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
#include "smtpc.h"
#include "strbuf.h"
#include "util.h"

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

/* One connection, in use or idle for reuse. */
struct rconn {
	struct rconn *next;
	char key[ROUTE_KEY_MAX]; /* the route it serves */
	char host[256];          /* the name we connected to */
	char remote[300];        /* "host[addr]:port" for logs and results */
	unsigned generation;     /* of the configuration it was opened under */
	time_t idle_since;
	struct smtpc s;
};

struct relay {
	unsigned reuse_time; /* [remote] reuse_time, under lock (relay_configure) */
	unsigned generation; /* the newest configuration's: older connections end */
	pthread_mutex_t lock;
	struct rconn *idle; /* connections waiting for the next message */
	size_t nidle;
};

/* The session's on_state: each transition logged (verbose), and a STARTTLS
 * refused under policy may noted when the session goes on without it. */
static void relay_state_changed(void *arg, enum smtpc_state from, enum smtpc_state to)
{
	struct rconn *k = arg;

	log_debug("event=relay_state relay=%s transition=\"%s -> %s\"", k->remote,
		  smtpc_strstate(from), smtpc_strstate(to));
	if (from == SMTPC_STATE_STARTTLS && k->s.tls_refusal.code != 0)
		log_info("event=relay_starttls_refused relay=%s reply=\"%s\"", k->remote,
			 k->s.tls_refusal.text);
}

/* See relay.h. */
struct relay *relay_new(const struct conf *c)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	pthread_mutex_init(&r->lock, NULL);
	relay_configure(r, c);
	return r;
}

/* See relay.h. */
void relay_configure(struct relay *r, const struct conf *c)
{
	pthread_mutex_lock(&r->lock);
	r->reuse_time = c->remote_reuse_time;
	r->generation = c->generation;
	pthread_mutex_unlock(&r->lock);
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
static bool route_hosts(const struct conf *c, const struct route *rt, struct mx_list *hosts,
			struct delivery_result *why)
{
	struct dns_opts o = {c->dns_servers, c->dns_timeout_ms, c->dns_tries};
	size_t before = 0, after = 0;

	memset(hosts, 0, sizeof(*hosts));
	if (rt->hop.mx
		    ? mx_lookup(&o, rt->hop.host, hosts, why) != OUTCOME_DELIVERED
		    : host_lookup(&o, rt->hop.host, &hosts->hosts[0], why) != OUTCOME_DELIVERED) {
		/* a configured hop that does not resolve is our mistake, not the mail's */
		if (rt->rule != ROUTE_RULE_MX && why->outcome == OUTCOME_PERMFAIL) {
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

/* The session's options for route rt to host k->host; use_tls false: no
 * STARTTLS (policy may, after a failed handshake). */
static void session_opts(const struct conf *c, const struct route *rt, struct rconn *k,
			 bool use_tls, struct smtpc_opts *o)
{

	memset(o, 0, sizeof(*o));
	o->helo = c->remote_helo ? c->remote_helo : c->hostname;
	o->helo_fallback = true;
	o->pipelining = true;
	o->tls = rt->implicit_tls                         ? SMTPC_TLS_IMPLICIT
		 : !use_tls || rt->tls == TLS_POLICY_NONE ? SMTPC_TLS_NONE
		 : rt->tls == TLS_POLICY_MAY              ? SMTPC_TLS_MAY
							  : SMTPC_TLS_STARTTLS;
	o->tls_host = k->host;
	o->tls_verify = rt->tls == TLS_POLICY_VERIFY;
	o->tls_ca_file = c->remote_tls_ca_file;
	if (rt->auth) { /* the credentials hatod read at start (relay_auth_load) */
		o->user = rt->auth_user;
		o->password = rt->auth_password;
	}
	o->loop_name = c->hostname;
	o->timeout_greeting = c->remote_timeout_greeting;
	o->timeout_command = c->remote_timeout_command;
	o->timeout_data_end = c->remote_timeout_data_end;
	o->on_state = relay_state_changed;
	o->state_arg = k;
}

/* From a connected socket to READY (smtpc_open); false with why telling what failed. */
static bool session_open(const struct conf *c, const struct route *rt, struct rconn *k,
			 struct delivery_result *why)
{
	const struct smtpc *s = &k->s;

	if (smtpc_open(&k->s))
		return true;
	switch (s->fail) {
	case SMTPC_FAIL_REFUSED:
		return host_refused(k, why,
				    s->state == SMTPC_STATE_GREETING ? "greeting"
								     : smtpc_strstate(s->state),
				    &s->reply);
	case SMTPC_FAIL_LOOP:
		return host_fail(k, why, OUTCOME_PERMFAIL, ESC_LOOP,
				 "mail for %s loops back to myself (the server greets as %s)",
				 rt->domain, c->hostname);
	case SMTPC_FAIL_NO_STARTTLS:
		return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_TLS,
				 "TLS is required (tls policy %s) but the server does not offer "
				 "STARTTLS",
				 tls_policy_name(rt->tls));
	case SMTPC_FAIL_INJECTION:
		return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_SESSION,
				 "data after the reply to STARTTLS, before TLS began");
	case SMTPC_FAIL_AUTH_NO_TLS:
		return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_AUTH,
				 "refusing to send the relayhost password without TLS");
	case SMTPC_FAIL_AUTH_NO_MECH:
		return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_AUTH,
				 "no AUTH PLAIN or LOGIN offered (only: %s)", s->caps.auth_mechs);
	default:
		break;
	}
	if (s->state == SMTPC_STATE_TLS)
		return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_TLS, "%s", s->conn.err);
	return host_fail(k, why, OUTCOME_TEMPFAIL, ESC_SESSION, "%s%s",
			 s->state == SMTPC_STATE_AUTH ? "AUTH: " : "", s->conn.err);
}

/* Close k's connection, with QUIT when it is still in step, and free k. */
static void conn_end(struct rconn *k)
{
	smtpc_close(&k->s);
	free(k);
}

/* An idle connection for the route, checked with RSET; NULL when none. */
static struct rconn *conn_take(struct relay *r, const struct conf *c, const struct route *rt)
{
	time_t now = time(NULL);
	struct rconn **pp, *k = NULL;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->idle; *pp != NULL; pp = &(*pp)->next)
		/* one opened under another configuration may have other
		 * credentials or TLS under the same route key */
		if (strcmp((*pp)->key, rt->key) == 0 && (*pp)->generation == c->generation &&
		    now - (*pp)->idle_since <= (time_t)c->remote_reuse_time) {
			k = *pp;
			*pp = k->next;
			r->nidle--;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	if (k == NULL || smtpc_rset(&k->s))
		return k;
	conn_end(k);
	return NULL;
}

/* Keep k for the next message to its route, or end it. */
static void conn_put(struct relay *r, const struct conf *c, struct rconn *k)
{
	size_t same = 0;

	if (k->s.conn.broken || c->remote_reuse_time == 0) {
		conn_end(k);
		return;
	}
	k->idle_since = time(NULL);
	pthread_mutex_lock(&r->lock);
	for (struct rconn *x = r->idle; x != NULL; x = x->next)
		same += strcmp(x->key, k->key) == 0;
	if (same < c->delivery_concurrency_domain) {
		k->next = r->idle;
		r->idle = k;
		r->nidle++;
		k = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	if (k != NULL)
		conn_end(k);
}

/* A new READY connection for the route, trying each host and address in
 * turn; NULL with why telling the last failure. */
static struct rconn *conn_open(const struct conf *c, const struct route *rt,
			       struct delivery_result *why)
{
	struct mx_list *hosts = xmalloc(sizeof(*hosts));
	struct rconn *k = xmalloc(sizeof(*k));

	if (!route_hosts(c, rt, hosts, why)) {
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
				struct smtpc_opts o;

				memset(k, 0, offsetof(struct rconn, s));
				strcpy_bounded(k->key, rt->key, sizeof(k->key));
				k->generation = c->generation;
				strcpy_bounded(k->host, x->name, sizeof(k->host));
				remote_name(x->name, sa, x->addrs[a].len, k->remote,
					    sizeof(k->remote));
				session_opts(c, rt, k, use_tls, &o);
				smtpc_init(&k->s, &o);
				if (!smtpc_connect(&k->s, sa, x->addrs[a].len,
						   c->remote_timeout_connect)) {
					host_fail(k, why, OUTCOME_TEMPFAIL, ESC_CONNECT,
						  "connect: %s", k->s.conn.err);
					log_info("event=relay_connect_failed domain=%s relay=%s "
						 "error=\"%s\"",
						 rt->domain, k->remote, k->s.conn.err);
					break;
				}
				if (session_open(c, rt, k, why)) {
					free(hosts);
					return k;
				}
				log_info("event=relay_session_failed domain=%s relay=%s "
					 "error=\"%s\"",
					 rt->domain, k->remote, why->text);
				smtpc_close(&k->s);
				if (why->outcome ==
				    OUTCOME_PERMFAIL) { /* a loop: no use going on */
					free(hosts);
					free(k);
					return NULL;
				}
				if (!(rt->tls == TLS_POLICY_MAY && k->s.conn.fail == CONN_FAIL_TLS))
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
	const struct smtp_caps *caps = &k->s.caps;
	char text[700];

	if (!m->eightbit && !caps->eightbit && file_has_8bit(m->fd, m->size))
		m->eightbit = true; /* 8-bit data the client did not declare */
	if (m->smtputf8 && !caps->smtputf8)
		snprintf(text, sizeof(text),
			 "%s does not support SMTPUTF8, which this message needs", k->remote);
	else if (m->eightbit && !caps->eightbit)
		snprintf(text, sizeof(text),
			 "%s does not support 8BITMIME, and this message has 8-bit data",
			 k->remote);
	else if (caps->size > 0 && m->size > caps->size)
		snprintf(text, sizeof(text),
			 "the message (%llu octets) is larger than %s takes (%llu)",
			 (unsigned long long)m->size, k->remote, (unsigned long long)caps->size);
	else
		return true;
	settle_open(m, k->remote, OUTCOME_PERMFAIL,
		    m->smtputf8 && !caps->smtputf8   ? ESC_UTF8
		    : m->eightbit && !caps->eightbit ? ESC_8BIT
						     : ESC_SIZE,
		    text);
	return false;
}

/* The MAIL FROM parameters for m to a server offering caps. */
static void mail_params(const struct smtp_caps *caps, const struct relay_msg *m, struct strbuf *b)
{
	if (caps->size > 0)
		strbuf_printf(b, " SIZE=%llu", (unsigned long long)m->size);
	if (m->eightbit)
		strbuf_adds(b, " BODY=8BITMIME");
	if (m->smtputf8)
		strbuf_adds(b, " SMTPUTF8");
	if (caps->dsn && m->mail_params != NULL)
		strbuf_adds(b, m->mail_params);
}

/* One transaction on a READY connection (smtpc_send): every recipient gets
 * its answer, or none when the connection broke first. */
static void transaction(struct rconn *k, struct relay_msg *m)
{
	const struct smtp_caps *caps = &k->s.caps;
	struct smtpc_rcpt *rc;
	struct smtpc_msg sm;
	struct strbuf params;
	char text[900] = "", unreadable[300] = "";
	int fd = m->fd;

	if (!message_fits(k, m))
		return;
	/* from its start, whatever an earlier try sent; an unreadable message still has
	 * its envelope sent, so that a refusal is final (smtpc: SMTPC_TX_NO_MESSAGE) */
	if (fd < 0 || lseek(fd, 0, SEEK_SET) != 0) {
		snprintf(unreadable, sizeof(unreadable), "cannot read the queued message: %s",
			 strerror(fd < 0 ? m->read_err : errno));
		fd = -1;
	}
	strbuf_init(&params);
	mail_params(caps, m, &params);
	rc = xcalloc(m->nrcpts, sizeof(*rc));
	for (size_t i = 0; i < m->nrcpts; i++) {
		rc[i].addr = m->rcpts[i].addr;
		rc[i].params = caps->dsn ? m->rcpts[i].params : NULL;
	}
	sm = (struct smtpc_msg){.sender = m->sender,
				.mail_params = params.s,
				.rcpts = rc,
				.nrcpts = m->nrcpts,
				.fd = fd,
				.len = m->size};
	switch (smtpc_send(&k->s, &sm)) {
	case SMTPC_TX_BROKEN:
		snprintf(text, sizeof(text), "%s: %s", k->remote, k->s.conn.err);
		break;
	case SMTPC_TX_NOT_354:
		snprintf(text, sizeof(text), "%s answered DATA with %d, not 354: %.300s", k->remote,
			 sm.data_reply.code, sm.data_reply.text);
		break;
	default: /* done; or no message, settled below */
		break;
	}
	for (size_t i = 0; i < m->nrcpts; i++)
		if (rc[i].answer != SMTPC_ANSWER_NONE)
			rcpt_answer(m, i, k, &rc[i].reply);
	if (text[0] != '\0')
		settle_open(m, k->remote, OUTCOME_TEMPFAIL, ESC_SESSION, text);
	if (unreadable[0] != '\0')
		settle_open(m, k->remote, OUTCOME_TEMPFAIL, ESC_MESSAGE, unreadable);
	strbuf_free(&params);
	free(rc);
}

/* See relay.h. */
void relay_deliver(struct relay *r, const struct conf *c, const struct route *rt,
		   struct relay_msg *m)
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
	k = conn_take(r, c, rt);
	if (k == NULL)
		k = conn_open(c, rt, &why);
	if (k == NULL) {
		settle_open(m, "", why.outcome, why.esc, why.text);
		return;
	}
	if (k->s.conn.ssl != NULL)
		strcpy_bounded(m->tls, SSL_get_version(k->s.conn.ssl), sizeof(m->tls));
	m->dsn = k->s.caps.dsn;
	transaction(k, m);
	settle_open(m, k->remote, OUTCOME_TEMPFAIL, ESC_SESSION, "no reply for this recipient");
	conn_put(r, c, k);
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
		if (all || k->generation != r->generation ||
		    now - k->idle_since > (time_t)r->reuse_time) {
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
		conn_end(k);
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
