/*
 * addr.h - RFC 5321 §4.1.2 paths: "<local@domain>", "<>", "<postmaster>".
 *
 * addr_parse_path() validates a path strictly: dot-string or quoted local
 * part, domain names or address literals, source routes accepted and
 * dropped, length limits enforced.  UTF-8 is accepted in local parts and
 * domain labels (RFC 6531) and reported in addr->utf8, so the caller can
 * refuse it when the client did not say SMTPUTF8.  The local part is kept
 * exactly as written (quotes included): it never routes mail anywhere, so
 * "%", "!" and a quoted "@" are plain characters.
 */
#ifndef HATO_ADDR_H
#define HATO_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "hato_limits.h"

enum addr_kind {
	ADDR_KIND_MAILBOX,    /* local@domain */
	ADDR_KIND_NULL,       /* <> */
	ADDR_KIND_POSTMASTER, /* <postmaster> without a domain */
};

enum addr_error {
	ADDR_OK,
	ADDR_ERR_SYNTAX,
	ADDR_ERR_TOO_LONG,
};

#define ADDR_ALLOW_NULL 0x1       /* MAIL FROM:<> */
#define ADDR_ALLOW_POSTMASTER 0x2 /* RCPT TO:<postmaster> */

struct mailaddr {
	enum addr_kind kind;
	bool literal; /* domain is an address literal "[...]" */
	bool utf8;    /* contains non-ASCII octets */
	char local[ADDR_LOCAL_MAX + 1];
	char domain[ADDR_DOMAIN_MAX + 1];
};

/*
 * Parse the path starting at s (which must be '<').  On success *end points
 * just past the closing '>'.
 */
enum addr_error addr_parse_path(const char *s, const char **end, struct mailaddr *a,
				unsigned flags);

/* Write "<local@domain>" (or "<>", "<postmaster>"); false when too small. */
bool addr_format(const struct mailaddr *a, char *buf, size_t size);

/*
 * Length of a well-formed UTF-8 sequence at p (non-ASCII lead), 0 if bad:
 * RFC 3629 §4, so no overlong forms, no surrogates, nothing past U+10FFFF.
 * avail: the octets there are at p.
 */
size_t addr_utf8_len(const unsigned char *p, size_t avail);

/* Is name a syntactically valid domain (letters, digits, hyphens, U-labels)? */
bool addr_valid_domain(const char *name, size_t len);

/* The A-label (xn--) form of domain in ASCII lower case, in a new
 * allocation (free it); NULL when it is not a valid IDNA2008 name. */
char *addr_domain_alabel(const char *domain);

#endif
