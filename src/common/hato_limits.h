/*
 * hato_limits.h - limits fixed by the protocol, not configurable.  The
 * configurable limits live in struct limits (conf.h), with their defaults
 * and ranges in conf.c's key table, and are documented in
 * docs/configuration.md.
 */
#ifndef HATO_HATO_LIMITS_H
#define HATO_HATO_LIMITS_H

/* RFC 5321 §4.5.3.1: fixed by the protocol. */
#define ADDR_LOCAL_MAX 64   /* local part, octets */
#define ADDR_DOMAIN_MAX 255 /* domain, octets */
#define ADDR_PATH_MAX 256   /* path including the angle brackets */
#define ADDR_LABEL_MAX 63   /* one DNS label */
#define ESMTP_PARAMS_MAX 16 /* parameters on one MAIL/RCPT line */

/* HAProxy's proxy-protocol.txt: fixed by the protocol. */
#define PROXY_V1_MAX 107  /* a v1 line, CRLF included */
#define PROXY_V2_FIXED 16 /* a v2 header's fixed part */
/* the smallest proxy_header_max: every v1 line, and v2 with UNIX
 * addresses (16 + 216); the largest: v2's 16-bit length */
#define PROXY_HEADER_MIN 232
#define PROXY_HEADER_LIMIT (PROXY_V2_FIXED + 65535)

/* Bounds of configuration values that are not themselves configurable. */
#define DNS_SERVERS_MAX 8  /* servers in [dns] servers */
#define DNSBL_ZONES_MAX 16 /* lists in [dnsbl] zones */

#endif
