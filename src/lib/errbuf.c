/*
 * errbuf.c - report an error the "char *err, size_t errsz" way.  See
 * errbuf.h.
 */
#include "errbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

/* See errbuf.h. */
void set_err(char *err, size_t errsz, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap); /* a cut message is still a message */
	va_end(ap);
	errno = e;
}
