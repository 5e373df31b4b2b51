/*
 * errbuf.h - report an error the "char *err, size_t errsz" way: a message
 * in the caller's buffer, the reason in errno.
 *
 * A message too long for the buffer is cut, not refused: a cut message is
 * still a message.  errno is set after the message is formatted, so the
 * formatting cannot clobber it.
 */
#ifndef HATO_ERRBUF_H
#define HATO_ERRBUF_H

#include <stddef.h>

/* Fill err (errsz octets) from fmt and set errno to e. */
void set_err(char *err, size_t errsz, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
