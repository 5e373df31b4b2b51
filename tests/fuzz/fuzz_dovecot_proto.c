/*
 * fuzz_dovecot_proto.c - the reader of Dovecot auth server lines
 * (src/lookup/dovecot_proto.c): the input is split at LF into lines as the
 * client reads them.  Invariants: a mechanism or user name taken is
 * NUL-terminated within its field and holds no control octet; an answer
 * has its type's fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dovecot_proto.h"

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No control octets, and terminated within size. */
static void printable(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == size)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t len = lf ? (size_t)(lf - p) : (size_t)(end - p);
		struct dovecot_line l;

		if (dovecot_line_parse(p, len, &l)) {
			printable(l.mech, sizeof(l.mech));
			printable(l.user, sizeof(l.user));
			if (l.type == DOVECOT_LINE_MECH && l.mech[0] == '\0')
				abort();
		}
		p += len + 1;
	}
	return 0;
}
