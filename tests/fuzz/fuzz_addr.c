/*
 * fuzz_addr.c - libFuzzer target for src/common/addr.c.
 *
 * The input, as a NUL-terminated string, goes through addr_parse_path()
 * under every flag combination.  Accepted paths must respect the RFC 5321
 * limits, report utf8 truthfully, and survive addr_format() + parse again
 * unchanged.  addr_valid_domain() gets the raw bytes in a buffer of exactly
 * their size, so reading past len is caught by ASan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Does s hold an octet >= 0x80? */
static bool has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* Parse s with flags and check every promise addr.h makes. */
static void check_path(const char *s, unsigned flags)
{
	struct mailaddr a, b;
	const char *end = NULL, *end2 = NULL;
	char buf[ADDR_PATH_MAX + 1];
	enum addr_error e = addr_parse_path(s, &end, &a, flags);

	if (e != ADDR_OK) {
		CHECK(e == ADDR_ERR_SYNTAX || e == ADDR_ERR_TOO_LONG);
		return;
	}
	CHECK(s[0] == '<');
	CHECK(end > s && end <= s + strlen(s));
	CHECK(end[-1] == '>');
	CHECK((size_t)(end - s) <= ADDR_PATH_MAX);
	CHECK(strlen(a.local) <= ADDR_LOCAL_MAX);
	CHECK(strlen(a.domain) <= ADDR_DOMAIN_MAX);
	switch (a.kind) {
	case ADDR_KIND_NULL:
		CHECK(flags & ADDR_ALLOW_NULL);
		CHECK(a.local[0] == '\0' && a.domain[0] == '\0');
		break;
	case ADDR_KIND_POSTMASTER:
		CHECK(flags & ADDR_ALLOW_POSTMASTER);
		CHECK(strcasecmp(a.local, "postmaster") == 0 && a.domain[0] == '\0');
		break;
	case ADDR_KIND_MAILBOX:
		CHECK(a.local[0] != '\0' && a.domain[0] != '\0');
		CHECK(a.literal == (a.domain[0] == '['));
		if (!a.literal)
			CHECK(addr_valid_domain(a.domain, strlen(a.domain)));
		break;
	default:
		CHECK(!"unknown kind");
	}
	CHECK(a.utf8 == (has_8bit(a.local) || has_8bit(a.domain)));
	/* What was accepted formats (route dropped) and parses back the same. */
	CHECK(addr_format(&a, buf, sizeof(buf)));
	CHECK(strlen(buf) <= (size_t)(end - s));
	CHECK(addr_parse_path(buf, &end2, &b, flags) == ADDR_OK);
	CHECK(*end2 == '\0');
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
}

/* Entry point: one input, every flag combination. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *exact = malloc(size ? size : 1);

	if (s == NULL || exact == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	for (unsigned flags = 0; flags <= (ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER); flags++)
		check_path(s, flags);
	/* The same bytes after a '<', so that most inputs reach the parser body. */
	if (size > 0 && s[0] != '<') {
		char *t = malloc(size + 2);
		if (t == NULL)
			abort();
		t[0] = '<';
		memcpy(t + 1, s, size + 1);
		check_path(t, ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER);
		free(t);
	}
	memcpy(exact, data, size);
	(void)addr_valid_domain(exact, size);
	free(exact);
	free(s);
	return 0;
}
