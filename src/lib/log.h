/*
 * log.h - graded diagnostics as key=value lines.
 *
 * Callers write "event=... session=... key=value" themselves; log_* adds the
 * time (on stderr) and the level.  log_warn appends errno's text, log_warnx
 * does not; fatal/fatalx log and exit(1).  In the foreground lines go to
 * stderr, otherwise to syslog (facility mail).  With LOG_FORMAT_JSON each
 * line is written as one JSON object with the same fields (log_json.h).
 */
#ifndef HATO_LOG_H
#define HATO_LOG_H

#include <stdbool.h>

enum log_format {
	LOG_FORMAT_KEYVALUE, /* time level=... event=... key=value (the default) */
	LOG_FORMAT_JSON,     /* {"time":...,"level":...,"event":...} */
};

void log_init(const char *progname, bool foreground, bool verbose);
void log_set_format(enum log_format format);
bool log_verbose(void);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
