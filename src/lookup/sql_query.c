/*
 * sql_query.c - placeholders of an [sql] query into bound parameters (see
 * sql_query.h).  The scan knows SQL's quoting: '...' strings (with ''
 * inside) and "..." identifiers, where a placeholder is refused rather
 * than left as text that looks bound and is not.
 */
#include "sql_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "util.h"

/* The parameter %c names, or -1. */
static int param_of(char c)
{
	switch (c) {
	case 's':
		return SQL_PARAM_ADDRESS;
	case 'u':
		return SQL_PARAM_LOCAL;
	case 'd':
		return SQL_PARAM_DOMAIN;
	}
	return -1;
}

/* Append parameter p's positional name, numbering it on first use. */
static void add_param(struct sql_query *q, enum sql_style style, enum sql_param p, struct strbuf *b)
{
	size_t i;

	for (i = 0; i < q->nparams; i++)
		if (q->params[i] == p)
			break;
	if (i == q->nparams)
		q->params[q->nparams++] = p;
	strbuf_printf(b, "%c%zu", style == SQL_STYLE_DOLLAR ? '$' : '?', i + 1);
}

/* See sql_query.h. */
bool sql_query_compile(const char *in, enum sql_style style, struct sql_query *q, char *err,
		       size_t errsz)
{
	struct sql_query out = {0};
	struct strbuf b;
	char quote = 0; /* the quote we are inside, or 0 */
	size_t len = strlen(in);

	if (len == 0 || len > SQL_QUERY_MAX) {
		snprintf(err, errsz, "a query is 1 to %d octets", SQL_QUERY_MAX);
		return false;
	}
	strbuf_init(&b);
	for (const char *p = in; *p != '\0'; p++) {
		if (quote != 0) {
			if (*p == '%' && param_of(p[1]) >= 0) {
				snprintf(err, errsz,
					 "%%%c inside quotes would be text, not a parameter: "
					 "write it without quotes",
					 p[1]);
				goto fail;
			}
			if (*p == quote)
				quote = 0; /* '' inside a string closes and reopens it */
			strbuf_add(&b, p, 1);
			continue;
		}
		if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '?' || (*p == '$' && p[1] >= '0' && p[1] <= '9')) {
			snprintf(err, errsz, "write parameters as %%s, %%u or %%d, not \"%c\"", *p);
			goto fail;
		} else if (*p == '%') {
			int param = param_of(p[1]);

			if (p[1] == '%') {
				strbuf_add(&b, "%", 1);
				p++;
				continue;
			}
			if (param < 0) {
				snprintf(err, errsz,
					 "unknown placeholder \"%%%c\": %%s, %%u, %%d or %%%%",
					 p[1] != '\0' ? p[1] : ' ');
				goto fail;
			}
			add_param(&out, style, (enum sql_param)param, &b);
			p++;
			continue;
		}
		strbuf_add(&b, p, 1);
	}
	if (quote != 0) {
		snprintf(err, errsz, "unclosed %c quote", quote);
		goto fail;
	}
	out.text = b.s; /* the buffer is the text now */
	*q = out;
	return true;
fail:
	strbuf_free(&b);
	return false;
}

/* See sql_query.h. */
void sql_query_free(struct sql_query *q)
{
	free(q->text);
	q->text = NULL;
	q->nparams = 0;
}
