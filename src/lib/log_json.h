/*
 * log_json.h - one key=value log line as one JSON object.
 *
 * hato's log lines are written once, as "event=... key=value key="text""
 * (log.h); with log_format = json, log.c hands each line to
 * log_json_line(), which reads it back with the same rules the lines are
 * written by and writes {"time":...,"level":...,"event":...,...}: one
 * source of truth for the fields.
 *
 * - Every value is a JSON string, as it is text in the key=value line.
 * - A quoted value ends at the first '"' followed by the end of the line or
 *   by spaces and the next key=; a '"' inside the text (from an error
 *   message, say) stays part of the value.
 * - \xHH in a value (how escape_text() and escape_word() write bytes from
 *   peers) is decoded back to its byte; a backslash that starts no \xHH
 *   stays a backslash.
 * - The bytes are then written as JSON: '"' and '\' escaped, \n \r \t as
 *   such, the other control characters and DEL as \u00XX, valid UTF-8 as
 *   it is, and each byte that is not part of valid UTF-8 as \ufffd (U+FFFD,
 *   the replacement character).
 * - Words that are no key=value pair: before the first pair they become
 *   "msg"; after one, they belong to the value before them.
 * - A key written before ("time", "level" and "msg" included) gets the
 *   lowest of "_2", "_3"... that makes it new: no object holds a key twice.
 * - An object that does not fit in outsz is cut at a whole character: the
 *   value being written ends in "..." (a field cut in its key is left out)
 *   and the object is closed.
 */
#ifndef HATO_LOG_JSON_H
#define HATO_LOG_JSON_H

#include <stddef.h>

/* Room for the JSON of any line log.c writes (its message is at most 2 KiB). */
#define LOG_JSON_MAX 16384
/* Pairs read from one line; words after the last one join its value. */
#define LOG_JSON_FIELDS_MAX 64
/* The smallest outsz log_json_line() takes. */
#define LOG_JSON_OUT_MIN 64

/*
 * Write msg (msg_len bytes of key=value text) into out as one JSON object
 * and a newline: "time" first unless time is NULL, then "level", the
 * message's fields in their order, and "error" (err, an errno text) unless
 * err is NULL.  outsz >= LOG_JSON_OUT_MIN.  Returns the length written;
 * out is NUL-terminated.
 */
size_t log_json_line(const char *time, const char *level, const char *msg, size_t msg_len,
		     const char *err, char *out, size_t outsz);

#endif
