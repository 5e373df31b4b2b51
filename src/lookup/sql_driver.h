/*
 * sql_driver.h - one database connection, the same way for every backend
 * of the [sql] lookup tables: PostgreSQL (sql_pgsql.c, libpq) and SQLite
 * (sql_sqlite.c, libsqlite3).
 *
 * Blocking code, for the lookup threads only (sqlmap.c): open connects,
 * run runs one compiled query (sql_query.h) with its values bound and
 * gives the first column of every row that is not NULL.  Each call is
 * bounded by timeout seconds (connecting, waiting for a lock, waiting for
 * the answer).  A connection is used by one thread at a time.  On failure
 * the message says what, for the log; a connection that run reports
 * broken (ok() false) is closed and opened again for the next lookup.
 */
#ifndef HATO_SQL_DRIVER_H
#define HATO_SQL_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "sql_query.h"

#define SQL_ROWS_MAX 1000  /* rows one lookup may answer; more is an error */
#define SQL_VALUE_MAX 8192 /* octets of one answer; longer is an error */
#define SQL_SLOTS_MAX 8    /* queries a connection keeps prepared */

struct sql_conn;

/* The answer of one lookup: the first column of each row. */
struct sql_rows {
	char **v;
	size_t n;
};

struct sql_driver {
	const char *name;
	enum sql_style style;
	/* Connect to database (a libpq conninfo string, or an SQLite file). */
	struct sql_conn *(*open)(const char *database, unsigned timeout, char *err, size_t errsz);
	/* Run q (the query of slot, below SQL_SLOTS_MAX, which a backend
	 * may keep prepared) with values[i] bound to parameter i+1; rows
	 * appended to out (empty first). */
	bool (*run)(struct sql_conn *conn, unsigned slot, const struct sql_query *q,
		    const char *const *values, unsigned timeout, struct sql_rows *out, char *err,
		    size_t errsz);
	/* Is the connection still worth keeping after a failed run? */
	bool (*ok)(struct sql_conn *conn);
	void (*close)(struct sql_conn *conn);
};

extern const struct sql_driver sql_pgsql_driver;
extern const struct sql_driver sql_sqlite_driver;

/* Add a copy of n octets at v to rows; false when SQL_ROWS_MAX or
 * SQL_VALUE_MAX would be passed (err says which). */
bool sql_rows_add(struct sql_rows *rows, const char *v, size_t n, char *err, size_t errsz);

/* Free the rows and make them empty. */
void sql_rows_free(struct sql_rows *rows);

#endif
