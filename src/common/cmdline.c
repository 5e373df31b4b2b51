/*
 * cmdline.c - command line and ESMTP parameter splitting.
 */
#include "cmdline.h"

#include <ctype.h>
#include <string.h>

/* See cmdline.h. */
bool cmdline_split(char *line, struct cmdline *cmd)
{
	size_t i = 0;

	while (line[i] != '\0' && line[i] != ' ') {
		if (i >= CMD_VERB_MAX || !isalpha((unsigned char)line[i]))
			return false;
		cmd->verb[i] = (char)toupper((unsigned char)line[i]);
		i++;
	}
	cmd->verb[i] = '\0';
	cmd->arg = line[i] == ' ' ? line + i + 1 : line + i;
	return true;
}

/* See cmdline.h. */
enum param_error esmtp_parse_params(char *s, struct esmtp_param *params, size_t max, size_t *n)
{
	*n = 0;
	for (;;) {
		char *key;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			return PARAM_OK;
		if (*n == max)
			return PARAM_ERR_TOO_MANY;
		key = s;
		if (!isalnum((unsigned char)*s))
			return PARAM_ERR_SYNTAX;
		while (isalnum((unsigned char)*s) || *s == '-')
			s++;
		params[*n].key = key;
		params[*n].value = NULL;
		if (*s == '=') {
			*s++ = '\0';
			params[*n].value = s;
			while (*s != '\0' && *s != ' ') {
				unsigned char c = (unsigned char)*s;
				if (c < 33 || c == '=' || c == 127)
					return PARAM_ERR_SYNTAX;
				s++;
			}
			if (s == params[*n].value)
				return PARAM_ERR_SYNTAX;
		}
		if (*s != '\0' && *s != ' ')
			return PARAM_ERR_SYNTAX;
		if (*s == ' ')
			*s++ = '\0';
		(*n)++;
	}
}
