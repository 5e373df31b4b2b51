/*
 * dns_servers.c - a [dns] servers list (conf_parse_dns_servers) handed to a
 * c-ares channel with each server's port.
 */
#include "dns_servers.h"

#include <netinet/in.h>
#include <string.h>

#include "conf.h"
#include "hato_limits.h"

/* See dns_servers.h. */
int dns_servers_set(ares_channel ch, const char *servers)
{
	struct dns_server list[DNS_SERVERS_MAX];
	struct ares_addr_port_node nodes[DNS_SERVERS_MAX];
	size_t n = 0;

	if (servers == NULL)
		return ARES_SUCCESS;
	if (!conf_parse_dns_servers(servers, list, DNS_SERVERS_MAX, &n))
		return ARES_EBADSTR;
	if (n == 0)
		return ARES_SUCCESS;
	memset(nodes, 0, sizeof(nodes));
	for (size_t i = 0; i < n; i++) {
		struct ares_addr_port_node *d = &nodes[i];

		d->next = i + 1 < n ? &nodes[i + 1] : NULL;
		if (list[i].ss.ss_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&list[i].ss;

			d->family = AF_INET;
			memcpy(&d->addr.addr4, &sin->sin_addr, sizeof(d->addr.addr4));
			d->udp_port = d->tcp_port = ntohs(sin->sin_port);
		} else {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&list[i].ss;

			d->family = AF_INET6;
			memcpy(&d->addr.addr6, &sin6->sin6_addr, sizeof(d->addr.addr6));
			d->udp_port = d->tcp_port = ntohs(sin6->sin6_port);
		}
	}
	return ares_set_servers_ports(ch, nodes);
}
