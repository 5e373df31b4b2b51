/*
 * metrics_http.c - the /metrics endpoint on the event loop (see
 * metrics_http.h).
 *
 * Each connection is a bufferevent with read and write timeouts.  Its
 * input is parsed again from the start whenever more arrives
 * (http_request.c) until the head is whole, malformed or too large; the
 * answer is written at once, reading stops, and the connection is freed
 * when the answer has left (or the write times out).  The read high-water
 * mark is request_max, so a client cannot make hatod buffer more.
 */
#include "metrics_http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_request.h"
#include "log.h"
#include "metrics.h"
#include "strbuf.h"
#include "util.h"

#define LISTEN_BACKLOG 64
#define METRICS_PATH "/metrics"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_conn {
	struct metrics_conn *prev, *next;
	struct metrics_http *mh;
	struct bufferevent *bev;
	bool answered; /* the answer is written: free once it has left */
};

struct metrics_http {
	struct event_base *base;
	struct evconnlistener *ev;
	struct metrics_http_conf conf;
	struct metrics_conn *conns;
	size_t nconns;
};

/* Unlink and free a connection. */
static void conn_free(struct metrics_conn *c)
{
	struct metrics_http *mh = c->mh;

	if (c->prev)
		c->prev->next = c->next;
	else
		mh->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	mh->nconns--;
	bufferevent_free(c->bev);
	free(c);
}

/* Write the status line, the fields and (unless HEAD) the body; stop reading. */
static void respond(struct metrics_conn *c, int code, const char *reason, const char *extra,
		    const char *body, size_t len, bool head)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			    "Connection: close\r\n\r\n",
			    code, reason, code == 200 ? CONTENT_TYPE : "text/plain; charset=utf-8",
			    len, extra ? extra : "");
	if (!head)
		evbuffer_add(out, body, len);
	c->answered = true;
	bufferevent_disable(c->bev, EV_READ);
}

/* A short plain-text error answer. */
static void respond_error(struct metrics_conn *c, int code, const char *reason, const char *extra,
			  bool head)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%d %s\n", code, reason);

	respond(c, code, reason, extra, body, n > 0 ? (size_t)n : 0, head);
}

/* Answer a whole, well-formed request. */
static void answer(struct metrics_conn *c, const struct http_request *req)
{
	bool head = strcmp(req->method, "HEAD") == 0;
	struct strbuf b;

	if (!head && strcmp(req->method, "GET") != 0) {
		respond_error(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", false);
		return;
	}
	if (req->path_too_long || strcmp(req->path, METRICS_PATH) != 0) {
		respond_error(c, 404, "Not Found", NULL, head);
		return;
	}
	strbuf_init(&b);
	metrics_render(&b);
	respond(c, 200, "OK", NULL, b.s ? b.s : "", b.len, head);
	strbuf_free(&b);
}

/* Input arrived: answer once the head is whole, malformed or too large. */
static void read_cb(struct bufferevent *bev, void *arg)
{
	struct metrics_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in), max = c->mh->conf.request_max;
	struct http_request req;
	enum http_parse r;

	if (c->answered)
		return;
	if (len == 0)
		return;
	r = http_request_parse((const char *)evbuffer_pullup(in, -1), len, &req);
	if (r == HTTP_PARSE_INCOMPLETE && len >= max)
		respond_error(c, 431, "Request Header Fields Too Large", NULL, false);
	else if (r == HTTP_PARSE_BAD)
		respond_error(c, 400, "Bad Request", NULL, false);
	else if (r == HTTP_PARSE_OK && req.length > max)
		respond_error(c, 431, "Request Header Fields Too Large", NULL, false);
	else if (r == HTTP_PARSE_OK)
		answer(c, &req);
	/* an incomplete head stays, to be parsed again with what follows */
	if (c->answered)
		evbuffer_drain(in, len);
}

/* The answer has left: done. */
static void write_cb(struct bufferevent *bev, void *arg)
{
	struct metrics_conn *c = arg;

	if (c->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

/* EOF, error or timeout: drop the connection. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

/* A client connected. */
static void accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct metrics_http *mh = arg;
	struct timeval tv = {mh->conf.timeout, 0};
	struct metrics_conn *c;

	(void)ev;
	(void)sa;
	(void)salen;
	if (mh->nconns >= mh->conf.clients_max) {
		log_warnx("event=metrics_client_limit clients=%zu", mh->nconns);
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->mh = mh;
	c->bev = bufferevent_socket_new(mh->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = mh->conns;
	if (mh->conns)
		mh->conns->prev = c;
	mh->conns = c;
	mh->nconns++;
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, mh->conf.request_max);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* accept() failed (out of descriptors): keep running. */
static void accept_error_cb(struct evconnlistener *ev, void *arg)
{
	(void)ev;
	(void)arg;
	log_warn("event=accept_failed listener=metrics");
}

/* See metrics_http.h. */
struct metrics_http *metrics_http_open(struct event_base *base, const struct metrics_http_conf *mc,
				       char *err, size_t errsz)
{
	struct metrics_http *mh = xcalloc(1, sizeof(*mh));

	mh->base = base;
	mh->conf = *mc;
	mh->ev = evconnlistener_new_bind(
		base, accept_cb, mh,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC |
			(mc->addr->sa_family == AF_INET6 ? LEV_OPT_BIND_IPV6ONLY : 0),
		LISTEN_BACKLOG, mc->addr, (int)mc->addrlen);
	if (mh->ev == NULL) {
		snprintf(err, errsz, "[metrics]: cannot listen on %s: %s", mc->address,
			 strerror(errno));
		free(mh);
		return NULL;
	}
	evconnlistener_set_error_cb(mh->ev, accept_error_cb);
	log_info("event=listening listener=metrics address=%s", mc->address);
	return mh;
}

/* See metrics_http.h. */
void metrics_http_close(struct metrics_http *mh)
{
	if (mh == NULL)
		return;
	while (mh->conns)
		conn_free(mh->conns);
	evconnlistener_free(mh->ev);
	free(mh);
}
