/*
 * dns.h - asynchronous DNS on the event loop (c-ares).
 *
 * dns_reverse() looks up the PTR name of an address and calls back on the
 * loop with the name, or NULL when there is none (NXDOMAIN, timeout,
 * SERVFAIL: the caller says "unknown").  Lookups are bounded by a short
 * timeout so a broken resolver cannot hold a session.  /etc/hosts is
 * consulted first, as the system resolver does.
 */
#ifndef HATO_DNS_H
#define HATO_DNS_H

#include <stdbool.h>
#include <sys/socket.h>

struct event_base;

typedef void (*dns_name_cb)(void *arg, const char *name);

bool dns_init(struct event_base *base, char *err, size_t errsz);
void dns_shutdown(void);

/* Start a PTR lookup; cb always runs exactly once, later, on the loop. */
void dns_reverse(const struct sockaddr *sa, dns_name_cb cb, void *arg);

#endif
