/*
 * outcome.c - delivery outcomes as data.
 */
#include "outcome.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* See outcome.h. */
const char *outcome_name(enum outcome o)
{
	static const char *const names[] = {"delivered", "deferred", "failed"};
	return names[o];
}

/* See outcome.h. */
void result_set(struct delivery_result *r, enum outcome o, const char *esc, const char *fmt, ...)
{
	va_list ap;

	r->outcome = o;
	strcpy_bounded(r->esc, esc, sizeof(r->esc));
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	for (char *p = r->text; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
}

/* See outcome.h. */
enum outcome outcome_from_reply(int code)
{
	if (code >= 200 && code < 300)
		return OUTCOME_DELIVERED;
	if (code >= 500 && code < 600)
		return OUTCOME_PERMFAIL;
	return OUTCOME_TEMPFAIL;
}
