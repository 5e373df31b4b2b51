/*
 * maildrop.c - drop file header format and parser.  See maildrop.h.
 */
#include "maildrop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "util.h"

/* See maildrop.h. */
void maildrop_format_header(struct strbuf *b, const char *sender, const struct maildrop_dsn *dsn,
			    const char *const *rcpts, size_t n)
{
	char notify[DSN_NOTIFY_TEXT_MAX];

	strbuf_printf(b, "hato-drop: %d\n", MAILDROP_VERSION);
	strbuf_printf(b, "sender: %s\n", sender);
	if (dsn && dsn_ret_name(dsn->ret))
		strbuf_printf(b, "ret: %s\n", dsn_ret_name(dsn->ret));
	if (dsn && dsn->envid)
		strbuf_printf(b, "envid: %s\n", dsn->envid);
	if (dsn && dsn_format_notify(dsn->notify, notify, sizeof(notify)))
		strbuf_printf(b, "notify: %s\n", notify);
	for (size_t i = 0; i < n; i++)
		strbuf_printf(b, "rcpt: %s\n", rcpts[i]);
	strbuf_adds(b, "\n");
}

/* Is v one whole valid path (flags as addr_parse_path)? */
static bool valid_path(const char *v, unsigned flags)
{
	struct mailaddr a;
	const char *end;

	return addr_parse_path(v, &end, &a, flags) == ADDR_OK && *end == '\0';
}

/* Apply a "ret", "envid" or "notify" line to h; false when it is none of
 * them, one seen before, or a bad value. */
static bool dsn_line(const char *key, const char *v, struct maildrop_header *h)
{
	enum dsn_ret ret;

	if (strcmp(key, "ret") == 0 && h->ret == DSN_RET_UNSPEC && dsn_parse_ret(v, &ret) &&
	    strcmp(v, dsn_ret_name(ret)) == 0) {
		h->ret = ret;
		return true;
	}
	if (strcmp(key, "envid") == 0 && h->envid == NULL && dsn_valid_envid(v)) {
		h->envid = xstrdup(v);
		return true;
	}
	return strcmp(key, "notify") == 0 && h->notify == 0 && dsn_parse_notify(v, &h->notify);
}

/* See maildrop.h. */
bool maildrop_parse_header(const char *buf, size_t len, struct maildrop_header *h, char *err,
			   size_t errsz)
{
	size_t pos = 0;
	unsigned lineno = 0;
	bool version = false;

	memset(h, 0, sizeof(*h));
	for (;;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		char line[1024], *v;
		size_t n;

		if (nl == NULL || (size_t)(nl - buf) >= MAILDROP_HEADER_MAX) {
			snprintf(err, errsz, "no end of the drop header");
			goto fail;
		}
		n = (size_t)(nl - (buf + pos));
		lineno++;
		if (n == 0) {
			pos++;
			break;
		}
		if (n >= sizeof(line) || memchr(buf + pos, '\0', n)) {
			snprintf(err, errsz, "line %u: too long or NUL", lineno);
			goto fail;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if ((v = strstr(line, ": ")) == NULL) {
			snprintf(err, errsz, "line %u: no \"key: value\"", lineno);
			goto fail;
		}
		*v = '\0';
		v += 2;
		if (strcmp(line, "hato-drop") == 0 && strcmp(v, "1") == 0) {
			version = true;
		} else if (strcmp(line, "sender") == 0 && h->sender == NULL &&
			   valid_path(v, ADDR_ALLOW_NULL)) {
			h->sender = xstrdup(v);
		} else if (strcmp(line, "rcpt") == 0 && valid_path(v, ADDR_ALLOW_POSTMASTER)) {
			h->rcpts = xrealloc(h->rcpts, (h->nrcpts + 1) * sizeof(char *));
			h->rcpts[h->nrcpts++] = xstrdup(v);
		} else if (!dsn_line(line, v, h)) {
			snprintf(err, errsz, "line %u: bad \"%s\"", lineno, line);
			goto fail;
		}
	}
	if (!version || h->sender == NULL || h->nrcpts == 0) {
		snprintf(err, errsz, "missing hato-drop, sender or rcpt");
		goto fail;
	}
	h->length = pos;
	return true;
fail:
	maildrop_header_free(h);
	return false;
}

/* See maildrop.h. */
void maildrop_header_free(struct maildrop_header *h)
{
	free(h->sender);
	free(h->envid);
	for (size_t i = 0; i < h->nrcpts; i++)
		free(h->rcpts[i]);
	free(h->rcpts);
	memset(h, 0, sizeof(*h));
}
