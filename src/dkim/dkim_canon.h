/*
 * dkim_canon.h - canonicalization (RFC 6376 §3.4) and the body hash.
 *
 * Header fields are canonicalized one at a time from their raw text (the
 * name, the colon and the value with its folding, without the final line
 * break).  The body is canonicalized as it streams past, in pieces of any
 * size, straight into a SHA-256 context: nothing of it is kept but a
 * count of the empty lines not yet known to be trailing.  A line break is
 * LF with or without a CR before it (a message in the queue has CRLF).
 *
 * Failure: only OpenSSL's allocation can fail (dkim_body_init false).
 */
#ifndef HATO_DKIM_CANON_H
#define HATO_DKIM_CANON_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define DKIM_HASH_LEN 32 /* SHA-256 */
#define DKIM_BODY_CHUNK 4096

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

/* Append the canonical form of the field raw[0..n) to out, then CRLF when
 * crlf (every field but the DKIM-Signature being signed or checked). */
void dkim_canon_header(enum dkim_canon c, const char *raw, size_t n, bool crlf, struct strbuf *out);

/* A body hash in progress. */
struct dkim_body {
	EVP_MD_CTX *md;
	enum dkim_canon canon;
	uint64_t limit;       /* octets hashed at most (l=); UINT64_MAX: all */
	uint64_t hashed;      /* canonical octets so far */
	uint64_t empty_lines; /* empty lines held back: trailing ones are dropped */
	bool line_started;    /* the current line has content */
	bool wsp;             /* relaxed: white space held back in the line */
	bool cr;              /* a CR held back: a line break if LF follows */
	bool any;             /* a line was hashed */
	size_t outlen;
	unsigned char out[DKIM_BODY_CHUNK];
};

/* Start a body hash; false when OpenSSL cannot. */
bool dkim_body_init(struct dkim_body *b, enum dkim_canon c, uint64_t limit);
/* Body octets, in order, in pieces of any size. */
void dkim_body_feed(struct dkim_body *b, const char *p, size_t n);
/* The end of the body: the hash into hash (the context is freed). */
void dkim_body_final(struct dkim_body *b, unsigned char hash[DKIM_HASH_LEN]);
/* Release a body hash that was not finished. */
void dkim_body_free(struct dkim_body *b);

#endif
