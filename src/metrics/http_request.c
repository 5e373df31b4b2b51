/*
 * http_request.c - the strict reader of an HTTP request head (see
 * http_request.h).  It walks the buffer line by line and never reads
 * past len; it keeps nothing between calls, so the caller parses the
 * whole buffer again when more has arrived (a head is a few hundred
 * octets, bounded by the caller).
 */
#include "http_request.h"

#include <string.h>

/* RFC 9110 §5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The next line at buf[off..len): its length without CR LF in *n, the
 * offset after its LF in *next; false when no LF has arrived yet. */
static bool next_line(const char *buf, size_t len, size_t off, size_t *n, size_t *next)
{
	const char *lf = memchr(buf + off, '\n', len - off);

	if (lf == NULL)
		return false;
	*n = (size_t)(lf - (buf + off));
	*next = *n + off + 1;
	if (*n > 0 && buf[off + *n - 1] == '\r')
		(*n)--;
	return true;
}

/* METHOD SP TARGET SP HTTP/1.x into req; false when malformed. */
static bool request_line(const char *p, size_t n, struct http_request *req)
{
	size_t i = 0, m = 0, t;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= HTTP_METHOD_MAX || i == n || p[i] != ' ')
		return false;
	memcpy(req->method, p, i);
	req->method[i] = '\0';
	t = ++i;
	while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
		i++;
	if (i == t || i == n || p[i] != ' ')
		return false;
	/* the path: up to the query or fragment */
	while (t + m < i && p[t + m] != '?' && p[t + m] != '#')
		m++;
	req->path_too_long = m >= HTTP_PATH_MAX;
	if (req->path_too_long)
		m = HTTP_PATH_MAX - 1;
	memcpy(req->path, p + t, m);
	req->path[m] = '\0';
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || p[i + 7] < '0' || p[i + 7] > '9')
		return false;
	req->minor = (unsigned)(p[i + 7] - '0');
	return true;
}

/* NAME ":" VALUE; false when malformed (folded, a bad name, a control octet). */
static bool field_line(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return false;
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* See http_request.h. */
enum http_parse http_request_parse(const char *buf, size_t len, struct http_request *req)
{
	size_t off = 0, n, next;

	memset(req, 0, sizeof(*req));
	/* RFC 9112 §2.2: empty lines before the request line may be ignored */
	while (off < len && (buf[off] == '\r' || buf[off] == '\n')) {
		if (buf[off] == '\r' && (off + 1 >= len || buf[off + 1] != '\n'))
			return off + 1 >= len ? HTTP_PARSE_INCOMPLETE : HTTP_PARSE_BAD;
		off += buf[off] == '\r' ? 2 : 1;
	}
	if (!next_line(buf, len, off, &n, &next))
		return HTTP_PARSE_INCOMPLETE;
	if (!request_line(buf + off, n, req))
		return HTTP_PARSE_BAD;
	for (off = next;;) {
		if (!next_line(buf, len, off, &n, &next))
			return HTTP_PARSE_INCOMPLETE;
		if (n == 0) {
			req->length = next;
			return HTTP_PARSE_OK;
		}
		if (++req->fields > HTTP_FIELDS_MAX || !field_line(buf + off, n))
			return HTTP_PARSE_BAD;
		off = next;
	}
}
