/*
 * fuzz_cmdline.c - libFuzzer target for src/common/cmdline.c.
 *
 * The input up to its first NUL is a command line: cmdline_split() must
 * give an upper-case verb of at most CMD_VERB_MAX letters and an argument
 * inside the line; esmtp_parse_params() on the argument (and on the whole
 * line, with a small max) must return keys and values that obey the RFC
 * 5321 esmtp-keyword / esmtp-value rules and point into the buffer.  The
 * DSN parsers (dsn.c) then run on every value under a DSN keyword: what
 * they accept must be within RFC 3461's limits and read back the same
 * from the form the envelope file keeps.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmdline.h"
#include "dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Is p inside buf[0..len]? */
static bool inside(const char *p, const char *buf, size_t len)
{
	return p >= buf && p <= buf + len;
}

/* Run the DSN parser of key (if it is a DSN keyword) on value v. */
static void check_dsn(const char *key, const char *v)
{
	char out[DSN_ORCPT_MAX + 1], again_out[DSN_ORCPT_MAX + 1], text[DSN_NOTIFY_TEXT_MAX];
	enum dsn_ret ret;
	unsigned bits, again;

	if (strcasecmp(key, "RET") == 0 && dsn_parse_ret(v, &ret)) {
		CHECK(dsn_ret_name(ret) != NULL && strcasecmp(dsn_ret_name(ret), v) == 0);
	} else if (strcasecmp(key, "ENVID") == 0 && dsn_valid_envid(v)) {
		CHECK(strlen(v) <= DSN_ENVID_MAX);
		CHECK(dsn_xtext_decode(v, out, sizeof(out), NULL));
	} else if (strcasecmp(key, "NOTIFY") == 0 && dsn_parse_notify(v, &bits)) {
		CHECK(bits != 0 && (bits == DSN_NOTIFY_NEVER || !(bits & DSN_NOTIFY_NEVER)));
		CHECK(dsn_format_notify(bits, text, sizeof(text)));
		CHECK(dsn_parse_notify(text, &again) && again == bits);
	} else if (strcasecmp(key, "ORCPT") == 0) {
		bool plain = dsn_parse_orcpt(v, false, out, sizeof(out));

		if (!dsn_parse_orcpt(v, true, out, sizeof(out))) {
			CHECK(!plain); /* SMTPUTF8 only ever allows more */
			return;
		}
		CHECK(strlen(out) == strlen(v) && strlen(out) <= DSN_ORCPT_MAX);
		CHECK(strncmp(out, "rfc822;", 7) == 0 || strncmp(out, "utf-8;", 6) == 0);
		CHECK(strcasecmp(out, v) == 0 && strcmp(strchr(out, ';'), strchr(v, ';')) == 0);
		CHECK(dsn_parse_orcpt(out, true, again_out, sizeof(again_out)));
		CHECK(strcmp(again_out, out) == 0);
	}
}

/* Parse s (len octets, NUL-terminated) as parameters and check the result. */
static void check_params(char *s, size_t len, size_t max)
{
	struct esmtp_param p[ESMTP_PARAMS_MAX];
	size_t n = 999;
	enum param_error e = esmtp_parse_params(s, p, max, &n);

	if (e != PARAM_OK) {
		CHECK(e == PARAM_ERR_SYNTAX || e == PARAM_ERR_TOO_MANY);
		return;
	}
	CHECK(n <= max);
	for (size_t i = 0; i < n; i++) {
		const char *k = p[i].key, *v = p[i].value;
		CHECK(inside(k, s, len));
		CHECK(isalnum((unsigned char)k[0]));
		for (const char *q = k; *q; q++)
			CHECK(isalnum((unsigned char)*q) || *q == '-');
		if (v == NULL)
			continue;
		CHECK(inside(v, s, len));
		CHECK(*v != '\0');
		for (const char *q = v; *q; q++)
			CHECK((unsigned char)*q > 32 && *q != '=' && *q != 127);
		check_dsn(k, v);
	}
}

/* Entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), *copy = malloc(size + 1);
	struct cmdline cmd;
	size_t len;

	if (line == NULL || copy == NULL)
		abort();
	memcpy(line, data, size);
	line[size] = '\0';
	len = strlen(line);
	memcpy(copy, line, len + 1);
	if (cmdline_split(line, &cmd)) {
		size_t vlen = strlen(cmd.verb);
		CHECK(vlen <= CMD_VERB_MAX);
		for (size_t i = 0; i < vlen; i++)
			CHECK(isupper((unsigned char)cmd.verb[i]));
		CHECK(strncasecmp(copy, cmd.verb, vlen) == 0);
		CHECK(inside(cmd.arg, line, len));
		CHECK(cmd.arg == line + vlen || cmd.arg == line + vlen + 1);
		check_params(cmd.arg, strlen(cmd.arg), ESMTP_PARAMS_MAX);
	}
	check_params(copy, len, 3);
	free(line);
	free(copy);
	return 0;
}
