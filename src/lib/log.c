/*
 * log.c - write diagnostics to stderr or syslog, one line each.
 *
 * A line is formatted once, as key=value text; with log_format = json
 * log_json_line() turns that text into the JSON object that is written
 * instead, so both formats carry the same fields.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

#include "log_json.h"

static bool log_fg = true;
static bool log_verb;
static atomic_bool log_json; /* may change on reload while workers log */

/* Choose the destination and verbosity for the rest of the process. */
void log_init(const char *progname, bool foreground, bool verbose)
{
	log_fg = foreground;
	log_verb = verbose;
	if (!foreground)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* Choose key=value lines or JSON objects from now on. */
void log_set_format(enum log_format format)
{
	atomic_store_explicit(&log_json, format == LOG_FORMAT_JSON, memory_order_relaxed);
}

/* Is debug logging on? */
bool log_verbose(void)
{
	return log_verb;
}

/* "2024-01-02T03:04:05" of a second, formatted once per second and thread. */
static const char *log_stamp(time_t sec)
{
	static _Thread_local time_t last = -1;
	static _Thread_local char ts[32];

	if (sec != last) {
		struct tm tm;

		gmtime_r(&sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		last = sec;
	}
	return ts;
}

/* Write a whole line to stderr with one write(2), as an unbuffered stream would. */
static void log_write(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Append s to buf[*len..size), as much as fits. */
static void log_append(char *buf, size_t *len, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n > size - *len)
		n = size - *len;
	memcpy(buf + *len, s, n);
	*len += n;
}

/* "2024-01-02T03:04:05.678Z" of now into ts (at least 32 bytes). */
static void log_now(char *ts)
{
	struct timeval tv;
	long ms;
	size_t len = 0;

	gettimeofday(&tv, NULL);
	ms = (long)(tv.tv_usec / 1000);
	log_append(ts, &len, 24, log_stamp(tv.tv_sec));
	ts[len++] = '.';
	ts[len++] = (char)('0' + ms / 100);
	ts[len++] = (char)('0' + ms / 10 % 10);
	ts[len++] = (char)('0' + ms % 10);
	ts[len++] = 'Z';
	ts[len] = '\0';
}

/* Write the message as one JSON object (see log_json.h). */
static void log_emit_json(int pri, const char *level, int err, const char *msg, size_t len)
{
	static _Thread_local char json[LOG_JSON_MAX]; /* off the stack: worker threads log too */
	char ts[32];
	size_t n;

	if (log_fg)
		log_now(ts);
	n = log_json_line(log_fg ? ts : NULL, level, msg, len, err ? strerror(err) : NULL, json,
			  sizeof(json));
	if (log_fg)
		log_write(json, n);
	else
		syslog(pri, "%.*s", (int)(n - 1), json); /* syslog stamps it; no newline */
}

/* Emit one line at a level, with an optional errno text. */
static void log_vemit(int pri, const char *level, int err, const char *fmt, va_list ap)
{
	enum { MSG_MAX = 2048 }; /* the message, "..." at its end when cut */
	char line[64 + MSG_MAX + 320], *msg;
	size_t len = 0;
	bool json = atomic_load_explicit(&log_json, memory_order_relaxed);
	int n;

	if (log_fg && !json) {
		/* "2024-01-02T03:04:05.678Z level=info " + message + error + newline,
		 * formatted in place and written at once */
		log_now(line);
		len = strlen(line);
		log_append(line, &len, 64, " level=");
		log_append(line, &len, 63, level);
		line[len++] = ' ';
	}
	msg = line + len;
	n = vsnprintf(msg, MSG_MAX, fmt, ap);
	if (n < 0)
		return;
	if (n >= MSG_MAX) {
		memcpy(msg + MSG_MAX - 4, "...", 4);
		n = MSG_MAX - 1;
	}
	if (json) {
		log_emit_json(pri, level, err, msg, (size_t)n);
		return;
	}
	if (!log_fg) {
		if (err)
			syslog(pri, "level=%s %s error=\"%s\"", level, msg, strerror(err));
		else
			syslog(pri, "level=%s %s", level, msg);
		return;
	}
	len += (size_t)n;
	if (err) {
		log_append(line, &len, sizeof(line) - 2, " error=\"");
		log_append(line, &len, sizeof(line) - 2, strerror(err));
		log_append(line, &len, sizeof(line) - 2, "\"");
	}
	line[len++] = '\n';
	log_write(line, len);
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
