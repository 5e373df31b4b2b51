/*
 * hato_limits.h - protocol constants fixed by the RFCs, and the built-in defaults
 * of every configurable limit.  The configurable ones live in struct
 * limits (conf.h) and are documented in docs/configuration.md.
 */
#ifndef HATO_HATO_LIMITS_H
#define HATO_HATO_LIMITS_H

/* RFC 5321 §4.5.3.1: fixed by the protocol. */
#define ADDR_LOCAL_MAX 64   /* local part, octets */
#define ADDR_DOMAIN_MAX 255 /* domain, octets */
#define ADDR_PATH_MAX 256   /* path including the angle brackets */
#define ADDR_LABEL_MAX 63   /* one DNS label */
#define ESMTP_PARAMS_MAX 16 /* parameters on one MAIL/RCPT line */

/* Defaults of the configurable limits (see struct limits). */
#define DEFAULT_COMMAND_LINE_MAX 2048 /* 512 + room for ESMTP parameters */
#define DEFAULT_TEXT_LINE_MAX 1000    /* RFC 5321 §4.5.3.1.6, CRLF included */
#define DEFAULT_MESSAGE_SIZE_MAX (35u * 1024 * 1024)
#define DEFAULT_RECIPIENTS_MAX 100
#define DEFAULT_RECEIVED_MAX 100
#define DEFAULT_ERRORS_SOFT 3
#define DEFAULT_ERRORS_HARD 20
#define DEFAULT_ERROR_DELAY_MS 1000
#define DEFAULT_SESSIONS_MAX 10000
#define DEFAULT_MIN_FREE_SPACE (100u * 1024 * 1024)
#define DEFAULT_TIMEOUT_COMMAND 300     /* RFC 5321 §4.5.3.2.7: server timeout */
#define DEFAULT_TIMEOUT_DATA 180        /* §4.5.3.2.5: data block */
#define DEFAULT_TIMEOUT_DATA_TOTAL 600  /* §4.5.3.2.6: the whole DATA phase */
#define DEFAULT_TIMEOUT_TLS 30          /* a TLS handshake */
#define DEFAULT_AUTH_FAILURES_MAX 3     /* per session, then 421 */
#define DEFAULT_AUTH_DELAY_MS 1000      /* first failure; doubles each time */
#define DEFAULT_AUTH_CLIENT_FAILURES 10 /* per client address ... */
#define DEFAULT_AUTH_CLIENT_WINDOW 600  /* ... within this many seconds ... */
#define DEFAULT_AUTH_CLIENT_LOCKOUT 900 /* ... then AUTH is refused this long */

/* Delivery: retries 5m, 10m, 20m, 40m, then hourly, for 5 days. */
#define DEFAULT_RETRY_SCHEDULE                                                                     \
	{                                                                                          \
		300, 600, 1200, 2400, 3600                                                         \
	}
#define DEFAULT_QUEUE_LIFETIME (5 * 86400)
#define DEFAULT_DELIVERY_CONCURRENCY 20
#define DEFAULT_DELIVERY_CONCURRENCY_DOMAIN 20

/* Remote delivery (RFC 5321 §4.5.3.2 client timeouts). */
#define DEFAULT_REMOTE_PORT 25
#define DEFAULT_REMOTE_TIMEOUT_CONNECT 30
#define DEFAULT_REMOTE_TIMEOUT_GREETING 300
#define DEFAULT_REMOTE_TIMEOUT_COMMAND 300
#define DEFAULT_REMOTE_TIMEOUT_DATA_END 600
#define DEFAULT_REMOTE_REUSE_TIME 2 /* seconds an idle connection is kept */
/* DNS for remote delivery ([dns]): c-ares waits timeout for the first try
 * and doubles it for each further round over the servers. */
#define DEFAULT_DNS_TIMEOUT_MS 5000
#define DEFAULT_DNS_TRIES 2
#define DNS_SERVERS_MAX 8 /* servers in [dns] servers */

/* TLS 1.2 ciphers: forward secrecy and AEAD only.  TLS 1.3: OpenSSL's set. */
#define DEFAULT_TLS_CIPHERS                                                                        \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
#define DEFAULT_TLS_CIPHERSUITES                                                                   \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

#endif
