/*
 * sql_pgsql.c - the PostgreSQL backend of the lookup tables (sql_driver.h),
 * on libpq.
 *
 * libpq's blocking calls can wait without end (a server that accepts and
 * never answers), so both connecting and querying use its non-blocking
 * API with poll() and one deadline per call: PQconnectStartParams /
 * PQconnectPoll, then PQsendQueryParams / PQconsumeInput / PQgetResult.
 * A query past its deadline is cancelled and the connection dropped.
 * connect_timeout is passed too, so that the server's own side knows it;
 * the database string is a conninfo ("host=/run/postgresql dbname=mail")
 * or a postgresql:// URI, and what it says comes last, so it wins.
 */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sql_driver.h"
#include "util.h"

struct sql_conn {
	PGconn *pg;
	bool broken;
};

/* Milliseconds from now until deadline (a monotonic time), at least 0. */
static int ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

/* The monotonic time timeout seconds from now. */
static struct timespec deadline_in(unsigned timeout)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += timeout;
	return t;
}

/* Wait until the connection's socket is ready for events, or the
 * deadline; false on timeout or error. */
static bool wait_socket(PGconn *pg, short events, const struct timespec *deadline)
{
	struct pollfd pfd = {.fd = PQsocket(pg), .events = events};
	int ms, r;

	if (pfd.fd < 0)
		return false;
	do {
		ms = ms_left(deadline);
		r = poll(&pfd, 1, ms);
	} while (r < 0 && ms > 0);
	return r > 0;
}

/* libpq's last message, one line. */
static void pg_error(PGconn *pg, const char *what, char *err, size_t errsz)
{
	const char *m = pg != NULL ? PQerrorMessage(pg) : "out of memory";
	char line[512];

	strcpy_bounded(line, m, sizeof(line));
	for (char *p = line; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = *(p + 1) == '\0' ? '\0' : ' ';
	snprintf(err, errsz, "%s: %s", what, line[0] != '\0' ? line : "no message");
}

/* Connect (sql_driver.h). */
static struct sql_conn *pg_open(const char *database, unsigned timeout, char *err, size_t errsz)
{
	char secs[16];
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {secs, "hato", database, NULL};
	struct timespec deadline = deadline_in(timeout);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *pg;
	struct sql_conn *c;

	snprintf(secs, sizeof(secs), "%u", timeout < 2 ? 2 : timeout); /* libpq's minimum */
	pg = PQconnectStartParams(keys, vals, 1);
	if (pg == NULL || PQstatus(pg) == CONNECTION_BAD) {
		pg_error(pg, "cannot connect", err, errsz);
		PQfinish(pg);
		return NULL;
	}
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED) {
			pg_error(pg, "cannot connect", err, errsz);
			PQfinish(pg);
			return NULL;
		}
		if (!wait_socket(pg, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, &deadline)) {
			snprintf(err, errsz, "cannot connect: no answer within %us", timeout);
			PQfinish(pg);
			return NULL;
		}
		st = PQconnectPoll(pg);
	}
	if (PQsetnonblocking(pg, 1) != 0) {
		pg_error(pg, "cannot connect", err, errsz);
		PQfinish(pg);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->pg = pg;
	return c;
}

/* Send the query and flush it, within the deadline. */
static bool pg_send(struct sql_conn *c, const struct sql_query *q, const char *const *values,
		    const struct timespec *deadline, char *err, size_t errsz)
{
	int r;

	if (!PQsendQueryParams(c->pg, q->text, (int)q->nparams, NULL, values, NULL, NULL, 0)) {
		pg_error(c->pg, "query not sent", err, errsz);
		return false;
	}
	while ((r = PQflush(c->pg)) == 1)
		if (!wait_socket(c->pg, POLLOUT, deadline)) {
			snprintf(err, errsz, "query not sent within the timeout");
			return false;
		}
	if (r < 0) {
		pg_error(c->pg, "query not sent", err, errsz);
		return false;
	}
	return true;
}

/* The rows of one result into out; false with err for an error result. */
static bool pg_rows(struct sql_conn *c, PGresult *res, struct sql_rows *out, char *err,
		    size_t errsz)
{
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		const char *m = PQresultErrorMessage(res);
		char line[512];

		strcpy_bounded(line, m != NULL ? m : "", sizeof(line));
		line[strcspn(line, "\r\n")] = '\0';
		snprintf(err, errsz, "query failed: %s", line[0] != '\0' ? line : PQresStatus(st));
		return false;
	}
	if (st == PGRES_TUPLES_OK && PQnfields(res) < 1) {
		snprintf(err, errsz, "query failed: it returns no column");
		return false;
	}
	for (int i = 0; st == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, 0) &&
		    !sql_rows_add(out, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), err,
				  errsz))
			return false;
	(void)c;
	return true;
}

/* Run one query (sql_driver.h). */
static bool pg_run(struct sql_conn *c, unsigned slot, const struct sql_query *q,
		   const char *const *values, unsigned timeout, struct sql_rows *out, char *err,
		   size_t errsz)
{
	struct timespec deadline = deadline_in(timeout);
	PGresult *res;
	bool ok = true, any = false;

	(void)slot;
	if (PQstatus(c->pg) != CONNECTION_OK || !pg_send(c, q, values, &deadline, err, errsz)) {
		if (PQstatus(c->pg) != CONNECTION_OK)
			pg_error(c->pg, "connection lost", err, errsz);
		c->broken = true;
		return false;
	}
	for (;;) {
		while (PQisBusy(c->pg)) {
			if (!wait_socket(c->pg, POLLIN, &deadline)) {
				snprintf(err, errsz, "no answer within %us", timeout);
				c->broken = true; /* a cancelled query leaves it out of step */
				return false;
			}
			if (!PQconsumeInput(c->pg)) {
				pg_error(c->pg, "connection lost", err, errsz);
				c->broken = true;
				return false;
			}
		}
		if ((res = PQgetResult(c->pg)) == NULL)
			break;
		if (ok && !any)
			ok = pg_rows(c, res, out, err, errsz);
		any = true;
		PQclear(res);
	}
	if (!any) {
		snprintf(err, errsz, "no result");
		ok = false;
	}
	if (PQstatus(c->pg) != CONNECTION_OK)
		c->broken = true;
	return ok;
}

/* Worth keeping (sql_driver.h)? */
static bool pg_ok(struct sql_conn *c)
{
	return !c->broken && PQstatus(c->pg) == CONNECTION_OK;
}

/* Disconnect. */
static void pg_close(struct sql_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pg);
	free(c);
}

const struct sql_driver sql_pgsql_driver = {
	.name = "pgsql",
	.style = SQL_STYLE_DOLLAR,
	.open = pg_open,
	.run = pg_run,
	.ok = pg_ok,
	.close = pg_close,
};
