/*
 * strbuf.h - a growable string for building files and replies off the hot
 * path.  Always NUL-terminated; growth uses xrealloc (succeeds or dies).
 */
#ifndef HATO_STRBUF_H
#define HATO_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *s;
	size_t len;
	size_t cap;
};

void strbuf_init(struct strbuf *b);
void strbuf_free(struct strbuf *b);
void strbuf_add(struct strbuf *b, const char *p, size_t n);
void strbuf_adds(struct strbuf *b, const char *s);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
