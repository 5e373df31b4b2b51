/*
 * http_request.h - the head of an HTTP/1.0 or HTTP/1.1 request, as the
 * /metrics endpoint reads it: the request line and the header fields up
 * to the empty line (RFC 9112 §2-§5).  Pure code; the input is untrusted
 * (tests/fuzz/fuzz_http_request.c).
 *
 * Strict: a request line of exactly METHOD SP TARGET SP HTTP/1.x, header
 * fields NAME ":" VALUE with a token for NAME and no control octet but
 * HTAB in VALUE, no line folding, every line ending in CRLF or LF.  The
 * fields themselves are checked and skipped: the endpoint needs none.
 * The caller bounds the input (the size it waits for at most).
 */
#ifndef HATO_HTTP_REQUEST_H
#define HATO_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

/* A method longer than this is refused (the longest is 7: CONNECT, OPTIONS). */
#define HTTP_METHOD_MAX 16
/* Room for the path kept; a longer one is marked too long. */
#define HTTP_PATH_MAX 256
/* Header fields in one request at most. */
#define HTTP_FIELDS_MAX 100

enum http_parse {
	HTTP_PARSE_INCOMPLETE, /* no empty line yet: read more */
	HTTP_PARSE_OK,         /* a whole, well-formed head */
	HTTP_PARSE_BAD,        /* malformed: answer 400 and close */
};

struct http_request {
	char method[HTTP_METHOD_MAX]; /* "GET" */
	char path[HTTP_PATH_MAX];     /* the target up to '?' or '#': "/metrics" */
	bool path_too_long;           /* path holds only its start */
	unsigned minor;               /* HTTP/1.minor */
	size_t fields;                /* header fields seen */
	size_t length;                /* octets of the head, the empty line included */
};

/* Parse the head at buf[0..len); req is filled when HTTP_PARSE_OK. */
enum http_parse http_request_parse(const char *buf, size_t len, struct http_request *req);

#endif
