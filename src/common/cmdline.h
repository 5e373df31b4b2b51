/*
 * cmdline.h - split an SMTP command line into verb, argument and ESMTP
 * parameters (RFC 5321 §4.1.1, §4.1.2).  Pure functions over a mutable
 * copy of the line; nothing is allocated.
 */
#ifndef HATO_CMDLINE_H
#define HATO_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "hato_limits.h"

#define CMD_VERB_MAX 15

struct cmdline {
	char verb[CMD_VERB_MAX + 1]; /* upper-cased; "" for an empty line */
	char *arg;                   /* after the single SP; "" when none */
};

/* Split line (NUL-terminated, CRLF removed) in place; false if the verb is
 * too long or contains anything but letters. */
bool cmdline_split(char *line, struct cmdline *cmd);

struct esmtp_param {
	char *key;   /* keyword as sent */
	char *value; /* NULL when the parameter has no "=value" */
};

enum param_error {
	PARAM_OK,
	PARAM_ERR_SYNTAX,
	PARAM_ERR_TOO_MANY,
};

/*
 * Parse "KEY[=VALUE] KEY[=VALUE] ..." in place (s is what follows the path).
 * Leading spaces are skipped.  Keywords are (ALPHA/DIGIT) *(ALPHA/DIGIT/"-");
 * values are printable, no "=" or SP (RFC 5321 esmtp-value, with UTF-8 per
 * RFC 6531).
 */
enum param_error esmtp_parse_params(char *s, struct esmtp_param *params, size_t max, size_t *n);

#endif
