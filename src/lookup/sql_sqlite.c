/*
 * sql_sqlite.c - the SQLite backend of the lookup tables (sql_driver.h), on
 * libsqlite3.
 *
 * The file is opened read-only: hato never writes the tables.  Each
 * connection keeps its queries prepared (one per slot).  A table locked by
 * a writer is waited for up to the timeout (sqlite3_busy_timeout), then
 * the lookup fails; a file that cannot be opened or read (missing, not a
 * database, I/O error) fails too, and the connection is opened again for
 * the next lookup, so a file that comes back is used again.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql_driver.h"
#include "util.h"

struct sql_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[SQL_SLOTS_MAX];
	bool broken;
};

/* Is this result code one after which the connection is not kept? */
static bool fatal_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_SCHEMA:
		return true;
	}
	return false;
}

/* Open the file (sql_driver.h). */
static struct sql_conn *lite_open(const char *database, unsigned timeout, char *err, size_t errsz)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(database, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	struct sql_conn *c;

	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "cannot open %s: %s", database,
			 db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, (int)(timeout > 3600 ? 3600000 : timeout * 1000));
	c = xcalloc(1, sizeof(*c));
	c->db = db;
	return c;
}

/* Run one query (sql_driver.h). */
static bool lite_run(struct sql_conn *c, unsigned slot, const struct sql_query *q,
		     const char *const *values, unsigned timeout, struct sql_rows *out, char *err,
		     size_t errsz)
{
	sqlite3_stmt *st;
	int rc;
	bool ok = true;

	(void)timeout; /* the busy timeout set at open bounds the wait for a lock */
	if (slot >= SQL_SLOTS_MAX) {
		snprintf(err, errsz, "no such query slot");
		return false;
	}
	if (c->stmts[slot] == NULL) {
		rc = sqlite3_prepare_v2(c->db, q->text, -1, &c->stmts[slot], NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errsz, "query failed: %s", sqlite3_errmsg(c->db));
			c->broken = fatal_code(rc);
			return false;
		}
	}
	st = c->stmts[slot];
	for (size_t i = 0; i < q->nparams; i++)
		sqlite3_bind_text(st, (int)i + 1, values[i], -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);

		if (v != NULL && ok)
			ok = sql_rows_add(out, (const char *)v, (size_t)sqlite3_column_bytes(st, 0),
					  err, errsz);
		if (!ok)
			break;
	}
	if (ok && rc != SQLITE_DONE) {
		snprintf(err, errsz, "query failed: %s", sqlite3_errmsg(c->db));
		c->broken = fatal_code(rc);
		ok = false;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ok;
}

/* Worth keeping (sql_driver.h)? */
static bool lite_ok(struct sql_conn *c)
{
	return !c->broken;
}

/* Close the file. */
static void lite_close(struct sql_conn *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < SQL_SLOTS_MAX; i++)
		sqlite3_finalize(c->stmts[i]);
	sqlite3_close(c->db);
	free(c);
}

const struct sql_driver sql_sqlite_driver = {
	.name = "sqlite",
	.style = SQL_STYLE_QUESTION,
	.open = lite_open,
	.run = lite_run,
	.ok = lite_ok,
	.close = lite_close,
};
