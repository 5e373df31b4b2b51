/*
 * log.c - write diagnostics to stderr or syslog, one line each.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <sys/time.h>

static bool log_fg = true;
static bool log_verb;

/* Choose the destination and verbosity for the rest of the process. */
void log_init(const char *progname, bool foreground, bool verbose)
{
	log_fg = foreground;
	log_verb = verbose;
	if (!foreground)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* Is debug logging on? */
bool log_verbose(void)
{
	return log_verb;
}

/* Emit one line at a level, with an optional errno text. */
static void log_vemit(int pri, const char *level, int err, const char *fmt, va_list ap)
{
	char msg[2048];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	if (log_fg) {
		struct timeval tv;
		struct tm tm;
		char ts[32];

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		if (err)
			fprintf(stderr, "%s.%03ldZ level=%s %s error=\"%s\"\n", ts,
				(long)(tv.tv_usec / 1000), level, msg, strerror(err));
		else
			fprintf(stderr, "%s.%03ldZ level=%s %s\n", ts, (long)(tv.tv_usec / 1000),
				level, msg);
	} else {
		if (err)
			syslog(pri, "level=%s %s error=\"%s\"", level, msg, strerror(err));
		else
			syslog(pri, "level=%s %s", level, msg);
	}
}

#define LOG_BODY(pri, level, err)                                                                  \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vemit(pri, level, err, fmt, ap);                                               \
		va_end(ap);                                                                        \
	} while (0)

/* Protocol-level detail, only with -v. */
void log_debug(const char *fmt, ...)
{
	if (log_verb)
		LOG_BODY(LOG_DEBUG, "debug", 0);
}

/* Normal events: connections, transactions. */
void log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, "info", 0);
}

/* Something failed; errno says what. */
void log_warn(const char *fmt, ...)
{
	int err = errno;
	LOG_BODY(LOG_WARNING, "warning", err);
}

/* Something is wrong; no errno involved. */
void log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, "warning", 0);
}

/* Unrecoverable, with errno. */
void fatal(const char *fmt, ...)
{
	int err = errno;
	LOG_BODY(LOG_CRIT, "fatal", err);
	exit(1);
}

/* Unrecoverable, no errno. */
void fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, "fatal", 0);
	exit(1);
}
