/*
 * tls.h - the server's TLS contexts (OpenSSL 3): certificates, protocol
 * and cipher policy, SNI, reload.
 *
 * tls_init() runs before privileges are dropped: it reads every configured
 * certificate and key, or, when none is configured, generates a
 * self-signed ECDSA P-256 certificate for the host name into
 * STATE/tls/ on first start (and reuses it afterwards), and logs the
 * SHA-256 fingerprint of each certificate.  tls_reload() builds a new set
 * of contexts from a new configuration (its files, ciphers, listeners) and
 * swaps it in only if all of it loaded: connections already in TLS keep
 * the context they started with, new handshakes get the new one.  The
 * session code never calls OpenSSL for anything but the version and
 * cipher names.
 */
#ifndef HATO_TLS_H
#define HATO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct conf;
struct listener_conf;
typedef struct ssl_st SSL;

/* Load (or generate) every certificate; owner is who the generated files
 * belong to (the daemon user when started as root, else -1). */
bool tls_init(const struct conf *c, uid_t owner_uid, gid_t owner_gid, char *err, size_t errsz);

/* Load every context of c (a reload: certificates, keys, ciphers; the
 * self-signed pair made if c needs it now); on failure the old ones stay
 * and err says what failed. */
bool tls_reload(const struct conf *c, char *err, size_t errsz);

/* A new server-side SSL for a connection on this listener. */
SSL *tls_new_ssl(const struct listener_conf *lc);

/* Has the handshake of ssl completed? */
bool tls_handshake_done(SSL *ssl);

/* "TLSv1.3" and "TLS_AES_256_GCM_SHA384" of an established connection. */
const char *tls_version(SSL *ssl);
const char *tls_cipher(SSL *ssl);

/* The first queued OpenSSL error as text (for logs), "" when none. */
const char *tls_error_text(unsigned long code, char *buf, size_t size);

void tls_shutdown(void);

#endif
