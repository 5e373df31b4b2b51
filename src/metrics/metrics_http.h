/*
 * metrics_http.h - the HTTP endpoint that serves /metrics ([metrics]
 * listen): a minimal HTTP/1.0 and 1.1 server on the event loop.
 *
 * One request per connection: GET or HEAD /metrics answers 200 with
 * metrics_render()'s text (Content-Type text/plain; version=0.0.4), any
 * other path 404, any other method 405, a malformed head 400, a head
 * larger than request_max 431; then the connection closes.  A client that
 * is silent or does not read for timeout seconds is dropped; beyond
 * clients_max connections a new one is closed at once.  Nothing blocks
 * the loop, nothing is kept between requests.
 *
 * Bound before the privilege drop (hatod.c), like the SMTP listeners;
 * whether the address may be a non-loopback one is the configuration's
 * check ([metrics] allow_remote).
 */
#ifndef HATO_METRICS_HTTP_H
#define HATO_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct metrics_http;

struct metrics_http_conf {
	const struct sockaddr *addr;
	socklen_t addrlen;
	const char *address; /* its text, for logs and errors */
	unsigned timeout;    /* seconds of silence before a client is dropped */
	size_t request_max;  /* octets of a request head at most */
	unsigned clients_max;
};

/* Listen on mc->addr; NULL with err when the address cannot be bound. */
struct metrics_http *metrics_http_open(struct event_base *base, const struct metrics_http_conf *mc,
				       char *err, size_t errsz);
/* Close the listener and every connection. */
void metrics_http_close(struct metrics_http *mh);

#endif
