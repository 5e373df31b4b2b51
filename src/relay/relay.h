/*
 * relay.h - remote delivery: the recipients of one message that share a
 * next hop go there over SMTP (RFC 5321) in one transaction.  Blocking:
 * called on delivery worker threads, never on the event loop.
 *
 * The route (route.h) names the hop: the relayhost, a [transport] entry
 * or the domain's MX hosts, with its TLS policy and credentials.  Hosts are
 * tried in order, each of their addresses in turn, until one takes the
 * transaction; a connection that cannot be made, a refused greeting or
 * EHLO, a TLS failure or a TLS policy the host cannot meet moves on to
 * the next address.  The session itself is smtpc's (smtpc.h): EHLO (HELO
 * when EHLO is refused), STARTTLS by the destination's TLS policy, AUTH to
 * the relayhost (only over TLS), then MAIL, RCPT and DATA, pipelined when
 * the server offers PIPELINING.
 *
 * Every recipient gets its own result: 2xx delivered, 4xx deferred, 5xx
 * failed, from its RCPT reply or the reply to the final dot; what ends the
 * session early defers the recipients not yet answered.  A message the
 * server cannot take as it is fails at once without being sent: 8-bit
 * data to a server without 8BITMIME (5.6.3), SMTPUTF8 to one without
 * SMTPUTF8 (5.6.7), more than its SIZE (5.3.4).  Mail that would come back
 * to us - the server greets with our own host name, or an MX host is one
 * of our listeners - fails with 5.4.6 instead of looping.
 *
 * Connections are reused: after a transaction the connection waits idle
 * (reuse_time) for the next message to the same route, which sends RSET
 * first.  relay_expire() says QUIT to those that waited long enough.
 */
#ifndef HATO_RELAY_H
#define HATO_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "outcome.h"
#include "route.h"

/* One recipient for relay_deliver(). */
struct relay_rcpt {
	const char *addr;           /* "<a@b>" */
	const char *params;         /* " NOTIFY=... ORCPT=..." for a server offering DSN, or NULL */
	struct delivery_result res; /* out: this recipient's outcome */
	char remote[300];           /* out: "host[addr]:port" that answered, "" when none did */
};

/* One queued message for relay_deliver(). */
struct relay_msg {
	const char *queue_id;
	const char *sender; /* "<...>", "<>" */
	int fd;        /* the queued message: its first size octets (the caller keeps it open) */
	int read_err;  /* fd -1: it cannot be read, for this errno (found out at DATA) */
	uint64_t size; /* the message's octets, Received: and fix-ups included: SIZE= */
	bool eightbit; /* it has 8-bit octets (BODY=8BITMIME) */
	bool smtputf8; /* it needs SMTPUTF8 */
	const char *mail_params; /* " RET=... ENVID=..." for a server offering DSN, or NULL */
	struct relay_rcpt *rcpts;
	size_t nrcpts;
	char tls[32]; /* out: the TLS version used, "none" */
	bool dsn;     /* out: the server offered DSN (and got the DSN parameters) */
};

struct relay;

/* A relay whose idle connections wait c's reuse_time. */
struct relay *relay_new(const struct conf *c);

/* A reload: idle connections wait c's reuse_time from now on, and those
 * opened under an older configuration are never used again (their
 * credentials or TLS may differ under the same route key): relay_expire
 * ends them.  Loop thread. */
void relay_configure(struct relay *r, const struct conf *c);

/* Deliver m to every recipient in m->rcpts by the SMTP route rt under the
 * configuration c, the delivery job's (worker thread). */
void relay_deliver(struct relay *r, const struct conf *c, const struct route *rt,
		   struct relay_msg *m);

/* Idle connections kept for reuse (for the caller's expiry timer). */
size_t relay_idle(struct relay *r);

/* QUIT the idle connections that waited reuse_time, or all of them (worker thread). */
void relay_expire(struct relay *r, bool all);

/* QUIT every idle connection and free r. */
void relay_free(struct relay *r);

#endif
