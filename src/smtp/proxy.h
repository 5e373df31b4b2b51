/*
 * proxy.h - the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) a load balancer sends before its client's first byte,
 * so that the server learns the client's address.
 *
 * Version 1 is one text line, "PROXY TCP4|TCP6|UNKNOWN ...\r\n", at most
 * PROXY_V1_MAX octets.  Version 2 is binary: a 12-octet signature, a
 * version/command octet, a family octet, a 16-bit length and that many
 * octets of addresses and TLVs (which are skipped).  A v1 UNKNOWN line,
 * a v2 LOCAL command (the balancer's own health check) and a v2 UNSPEC
 * family carry no client: the connection's own addresses stand.
 *
 * proxy_parse is pure (no I/O, no allocation) and reads exactly the
 * header, never past it: what follows belongs to SMTP or TLS.  Anything
 * that is not a header, a header of another family (UDP, UNIX), bad
 * addresses or ports, or a header longer than the caller's maximum is
 * refused with a short reason for the log.
 */
#ifndef HATO_PROXY_H
#define HATO_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "hato_limits.h" /* PROXY_V1_MAX, PROXY_V2_FIXED */

enum proxy_result {
	PROXY_INCOMPLETE, /* every octet so far can begin a header: read more */
	PROXY_DONE,       /* a whole header: see struct proxy_header */
	PROXY_BAD,        /* not an acceptable header: close the connection */
};

struct proxy_header {
	int version;                 /* 1 or 2 */
	bool local;                  /* no client carried: the connection's addresses stand */
	struct sockaddr_storage src; /* the client, when !local */
	struct sockaddr_storage dst; /* the address the client connected to, when !local */
	socklen_t srclen, dstlen;
	size_t length; /* octets of the header */
};

/* Parse the first len octets of a connection as a PROXY header of at most
 * max octets (v1 lines are limited to PROXY_V1_MAX whatever max says).
 * PROXY_BAD sets *reason to a constant string. */
enum proxy_result proxy_parse(const unsigned char *p, size_t len, size_t max,
			      struct proxy_header *h, const char **reason);

#endif
