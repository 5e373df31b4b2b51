/*
 * test_queue_msg.c - unit tests for src/queue/queue_msg.c: the queued
 * message file's trailer (queue_msg_seal's exact form, queue_msg_trailer
 * on good and bad files, with and without a checksum), queue_msg_verify,
 * queue_msg_open's message length,
 * and queue_msg_envelope.  (Removal is queue_remove's: test_queue.c.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "crc32c.h"
#include "queue_msg.h"
#include "strbuf.h"

#define MSG "Received: from x\r\n\r\nbody\r\n"
#define ENV "hato-envelope: 1\nid: 0006A1B2C3D4E5F60001\n"

static char dir[64];

/* A scratch directory for the files of one test. */
static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hato-qmsg-XXXXXX");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Remove the scratch directory's files and itself. */
static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write len octets to dir/name; returns the path (static). */
static const char *put(const char *name, const void *data, size_t len)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* A whole queue file: MSG, ENV and the trailer. */
static void whole(struct strbuf *b)
{
	strbuf_init(b);
	strbuf_adds(b, MSG);
	strbuf_adds(b, ENV);
	queue_msg_seal(b, strlen(MSG), strlen(MSG), NULL);
}

/* The trailer's exact form, and reading it back. */
static void test_seal_and_read(void **state)
{
	struct strbuf b;
	char want[128];
	uint64_t len;
	int fd;

	(void)state;
	whole(&b);
	snprintf(want, sizeof(want), MSG ENV "hato-queue: 1 message=%zu envelope=%zu\n",
		 strlen(MSG), strlen(ENV));
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.s, want, b.len);
	fd = queue_msg_open(put("0006A1B2C3D4E5F60001.msg", b.s, b.len), &len);
	assert_true(fd >= 0);
	assert_int_equal(len, strlen(MSG));
	close(fd);
	strbuf_free(&b);
}

/* The envelope inside, with the message's length. */
static void test_envelope(void **state)
{
	struct strbuf b;
	size_t envlen;
	uint64_t msglen;
	char *text;
	int dfd;

	(void)state;
	whole(&b);
	put("0006A1B2C3D4E5F60001.msg", b.s, b.len);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	text = queue_msg_envelope(dfd, "0006A1B2C3D4E5F60001.msg", &envlen, &msglen);
	assert_non_null(text);
	assert_string_equal(text, ENV);
	assert_int_equal(envlen, strlen(ENV));
	assert_int_equal(msglen, strlen(MSG));
	free(text);
	errno = 0;
	assert_null(queue_msg_envelope(dfd, "missing.msg", &envlen, &msglen));
	assert_int_equal(errno, ENOENT);
	close(dfd);
	strbuf_free(&b);
}

/* Files that are not whole queue files: never a message length. */
static void test_bad_trailers(void **state)
{
	static const char *const tails[] = {
		"",                                           /* no trailer at all */
		"hato-queue: 1 message=26 envelope=42",       /* no final newline */
		"hato-queue: 2 message=26 envelope=42\n",     /* unknown version */
		"hato-queue: 1 message=027 envelope=42\n",    /* leading zero */
		"hato-queue: 1 message=26 envelope=43\n",     /* lengths too long */
		"hato-queue: 1 message=25 envelope=42\n",     /* lengths too short */
		"hato-queue: 1 message=26  envelope=42\n",    /* two spaces */
		"hato-queue: 1 message=26 envelope=42 x=1\n", /* more */
		"hato-queue: 1 message=-1 envelope=42\n",
		"hato-queue: 1 message=18446744073709551615 envelope=42\n", /* overflow */
		"hato-queue: 1 message=99999999999999999999 envelope=42\n",
		"x-queue: 1 message=26 envelope=42\n",
		"hato-queue: 1 message=26 envelope=42 crc32c=1234567\n",   /* 7 digits */
		"hato-queue: 1 message=26 envelope=42 crc32c=1234567A\n",  /* upper case */
		"hato-queue: 1 message=26 envelope=42 crc32c=1234567g\n",  /* not hex */
		"hato-queue: 1 message=26 envelope=42 crc32c=\n",          /* empty */
		"hato-queue: 1 message=26 envelope=42 crc=12345678\n",     /* other key */
		"hato-queue: 1 message=26 envelope=42 crc32c=12345678 \n", /* trailing space */
	};
	char text[256];
	uint64_t len;

	(void)state;
	assert_int_equal(strlen(MSG), 26);
	assert_int_equal(strlen(ENV), 42);
	/* the same text with the right trailer opens */
	{
		int n = snprintf(text, sizeof(text), "%s%s%s", MSG, ENV,
				 "hato-queue: 1 message=26 envelope=42\n");
		int fd = queue_msg_open(put("good.msg", text, (size_t)n), &len);

		assert_true(fd >= 0);
		assert_int_equal(len, 26);
		close(fd);
	}
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		int n = snprintf(text, sizeof(text), "%s%s%s", MSG, ENV, tails[i]);
		const char *path = put("bad.msg", text, (size_t)n);

		errno = 0;
		assert_int_equal(queue_msg_open(path, &len), -1);
		assert_int_equal(errno, EBADMSG);
	}
	/* a NUL in the trailer, which a C string would stop at */
	{
		static const char nul[] =
			"hato-queue: 1 message=26 envelope=42\0 crc32c=12345678\n";
		size_t n = strlen(MSG ENV);

		memcpy(text, MSG ENV, n);
		memcpy(text + n, nul, sizeof(nul) - 1);
		errno = 0;
		assert_int_equal(queue_msg_open(put("nul.msg", text, n + sizeof(nul) - 1), &len),
				 -1);
		assert_int_equal(errno, EBADMSG);
	}
	/* cut short, and grown: the lengths no longer add up */
	{
		struct strbuf b;

		whole(&b);
		assert_int_equal(queue_msg_open(put("cut.msg", b.s + 1, b.len - 1), &len), -1);
		strbuf_adds(&b, "\n");
		assert_int_equal(queue_msg_open(put("grown.msg", b.s, b.len), &len), -1);
		strbuf_free(&b);
	}
	/* empty, and a lone newline */
	assert_int_equal(queue_msg_open(put("empty.msg", "", 0), &len), -1);
	assert_int_equal(queue_msg_open(put("nl.msg", "\n", 1), &len), -1);
	/* a long last line: no line start within reach */
	memset(text, 'x', 200);
	text[199] = '\n';
	assert_int_equal(queue_msg_open(put("long.msg", text, 200), &len), -1);
}

/* With a checksum: written, read back, verified, and a changed octet caught. */
static void test_checksum(void **state)
{
	struct strbuf b;
	struct queue_trailer t;
	uint32_t crc = crc32c(0, MSG ENV, strlen(MSG ENV));
	char want[160];
	int fd;

	(void)state;
	strbuf_init(&b);
	strbuf_adds(&b, MSG ENV);
	queue_msg_seal(&b, strlen(MSG), strlen(MSG), &crc);
	snprintf(want, sizeof(want), MSG ENV "hato-queue: 1 message=26 envelope=42 crc32c=%08x\n",
		 (unsigned)crc);
	assert_string_equal(b.s, want);
	fd = open(put("c.msg", b.s, b.len), O_RDONLY);
	assert_true(fd >= 0);
	assert_true(queue_msg_trailer(fd, b.len, &t));
	assert_true(t.has_crc);
	assert_int_equal(t.crc, crc);
	assert_int_equal(t.msglen, 26);
	assert_int_equal(t.envlen, 42);
	assert_true(queue_msg_verify(fd, &t));
	close(fd);

	/* one octet of the message changed: the trailer still parses, the check fails */
	b.s[3] ^= 1;
	fd = open(put("c.msg", b.s, b.len), O_RDONLY);
	assert_true(queue_msg_trailer(fd, b.len, &t));
	errno = 0;
	assert_false(queue_msg_verify(fd, &t));
	assert_int_equal(errno, EBADMSG);
	close(fd);

	/* a block of zeros where the envelope was (a crash before it reached the disk) */
	b.s[3] ^= 1;
	memset(b.s + 26, 0, 41); /* all but its final newline */
	fd = open(put("c.msg", b.s, b.len), O_RDONLY);
	assert_true(queue_msg_trailer(fd, b.len, &t));
	assert_false(queue_msg_verify(fd, &t));
	close(fd);
	strbuf_free(&b);

	/* without a checksum there is nothing to check */
	whole(&b);
	fd = open(put("n.msg", b.s, b.len), O_RDONLY);
	assert_true(queue_msg_trailer(fd, b.len, &t));
	assert_false(t.has_crc);
	assert_true(queue_msg_verify(fd, &t));
	close(fd);
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seal_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_trailers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checksum, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
