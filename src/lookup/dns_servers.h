/*
 * dns_servers.h - point a c-ares channel at the [dns] servers.
 */
#ifndef HATO_DNS_SERVERS_H
#define HATO_DNS_SERVERS_H

#include <ares.h>

/* Give ch the servers of a [dns] servers list ("127.0.0.1:5353, [::1]").
 * ARES_SUCCESS (also for NULL or an empty list: the channel keeps
 * /etc/resolv.conf's), ARES_EBADSTR for a list that does not parse, or
 * c-ares' error. */
int dns_servers_set(ares_channel ch, const char *servers);

#endif
