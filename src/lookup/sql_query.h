/*
 * sql_query.h - a lookup query as the configuration writes it, turned into
 * SQL with bound parameters.
 *
 * An [sql] query names the looked-up address with %s (the whole address,
 * local@domain), %u (its local part) and %d (its domain); %% is a percent
 * sign.  sql_query_compile() replaces each placeholder by a positional
 * parameter in the backend's style ("$1" for PostgreSQL, "?1" for SQLite),
 * one number per distinct placeholder in the order they first appear, so
 * the values are always bound and never pasted into the SQL.  Refused,
 * with a message: another "%x", a placeholder inside a quoted string or
 * identifier (it would be text, not a parameter), a parameter written
 * directly ("?" or "$1": only the placeholders bind values), an unclosed
 * quote, a query longer than SQL_QUERY_MAX.  Pure code, no I/O.
 */
#ifndef HATO_SQL_QUERY_H
#define HATO_SQL_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#define SQL_QUERY_MAX 4096 /* octets of a query as written */
#define SQL_PARAMS_MAX 3   /* %s, %u, %d */

/* What a parameter is bound to. */
enum sql_param {
	SQL_PARAM_ADDRESS, /* %s: local@domain */
	SQL_PARAM_LOCAL,   /* %u: the local part */
	SQL_PARAM_DOMAIN,  /* %d: the domain */
};

/* How the backend writes positional parameters. */
enum sql_style {
	SQL_STYLE_DOLLAR,   /* $1 (PostgreSQL) */
	SQL_STYLE_QUESTION, /* ?1 (SQLite) */
};

struct sql_query {
	char *text;                            /* the SQL handed to the backend */
	enum sql_param params[SQL_PARAMS_MAX]; /* params[i]: what parameter i+1 is */
	size_t nparams;
};

/* Compile the template in into q (q->text allocated); false with a
 * message in err, q untouched. */
bool sql_query_compile(const char *in, enum sql_style style, struct sql_query *q, char *err,
		       size_t errsz);

/* Free q->text. */
void sql_query_free(struct sql_query *q);

#endif
