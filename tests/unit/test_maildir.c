/*
 * test_maildir.c - unit tests for src/mda/maildir.c: mailbox_path template
 * expansion and its refusals, and Maildir delivery on a real file system
 * (directories made on demand, exact bytes with LF line endings, 0600,
 * S= size, unique names, a 5 MB copy, CRLF split across reads, concurrent
 * threads, every failure leaving tmp/ and new/
 * clean, and a full disk on a tiny tmpfs when we may mount one), and the
 * sweep of leftovers older than 36 hours from tmp/.
 * Each test works in its own mkdtemp() directory under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"
#include "maildir_path.h"
#include "queued_file.h"

#define HDR "Return-Path: <a@b>\nDelivered-To: c@d\n"
#define MSG "Subject: hi\r\n\r\nhello\r\n" /* as queued */
#define MSG_LF "Subject: hi\n\nhello\n"    /* as the Maildir has it */
#define COPY_CHUNK (64 * 1024)             /* maildir.c reads the message in these */

/* Per-test scratch: a fresh directory and the message file inside it. */
struct fixture {
	char root[64];
	char md[128]; /* root/mail/example.org/c: missing until delivery */
	char msg[128];
};

/* Remove one entry during the depth-first walk. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Write len bytes to path, mode 0600. */
static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Read a whole file into a malloc'd buffer; its length in *len. */
static char *read_whole(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* Number of entries (other than . and ..) in dir/sub; the last name in name if given. */
static int count_in(const char *dir, const char *sub, char *name, size_t namesz)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (name != NULL)
			snprintf(name, namesz, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* maildir_deliver of the queue file at path, opened as the queue hands a
 * message to delivery (an fd and the message's length). */
static void deliver(const char *md, const char *path, const char *return_path,
		    const char *delivered_to, const char *hostname, struct delivery_result *r)
{
	uint64_t len;
	int fd = queue_msg_open(path, &len);

	assert_true(fd >= 0);
	maildir_deliver(md, fd, len, return_path, delivered_to, hostname, r);
	close(fd);
}

/* Make the scratch directory and the default message. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/hato-maildir-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->md, sizeof(f->md), "%s/mail/example.org/c", f->root);
	snprintf(f->msg, sizeof(f->msg), "%s/msg", f->root);
	assert_true(write_queued(f->msg, MSG, strlen(MSG)));
	*state = f;
	return 0;
}

/* Remove the scratch directory (detaching the disk-full test's tmpfs if a check failed). */
static int teardown(void **state)
{
	struct fixture *f = *state;
	char mnt[128];

	snprintf(mnt, sizeof(mnt), "%s/tiny", f->root);
	umount2(mnt, MNT_DETACH);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Templates expand %d, %u and %%, lower-casing ASCII and keeping other bytes. */
static void test_path_expand(void **state)
{
	char out[256];

	(void)state;
	assert_true(maildir_path("/var/mail/%d/%u", "Bob", "Example.ORG", out, sizeof(out)));
	assert_string_equal(out, "/var/mail/example.org/bob");
	assert_true(maildir_path("/m/%u@%d/100%%", "a.b", "x", out, sizeof(out)));
	assert_string_equal(out, "/m/a.b@x/100%");
	assert_true(maildir_path("/m/%u", "\xc3\x9cSER", "x", out, sizeof(out)));
	assert_string_equal(out, "/m/\xc3\x9c"
				 "ser");
	assert_true(maildir_path("plain", "u", "d", out, sizeof(out)));
	assert_string_equal(out, "plain");
	assert_true(maildir_path("/m/%u", "100%d", "x", out, sizeof(out)));
	assert_string_equal(out, "/m/100%d"); /* substituted text is not expanded again */
}

/* Users and domains that could leave the mail tree, or are empty, are refused. */
static void test_path_refusals(void **state)
{
	static const char *const bad[] = {"../x", "a/b", ".hidden", "", ".", "..", "/"};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(out, "junk");
		if (maildir_path("/m/%d/%u", bad[i], "example.org", out, sizeof(out)))
			fail_msg("user \"%s\" accepted", bad[i]);
		assert_string_equal(out, "");
		if (maildir_path("/m/%d/%u", "bob", bad[i], out, sizeof(out)))
			fail_msg("domain \"%s\" accepted", bad[i]);
	}
	assert_false(maildir_path("/m/%u", NULL, "d", out, sizeof(out)));
	assert_false(maildir_path("/m/%x", "u", "d", out, sizeof(out)));
	assert_false(maildir_path("/m/%u%", "u", "d", out, sizeof(out)));
	assert_false(maildir_path(NULL, "u", "d", out, sizeof(out)));
}

/* A result must fit with its NUL: exactly fitting works, one byte less is refused. */
static void test_path_overflow(void **state)
{
	char out[16];

	(void)state;
	assert_true(maildir_path("/m/%d/%u", "user", "dom.ain", out, 16)); /* 15 + NUL */
	assert_string_equal(out, "/m/dom.ain/user");
	assert_false(maildir_path("/m/%d/%u", "user", "dom.ain", out, 15));
	assert_string_equal(out, "");
	assert_false(maildir_path("/m/%%/%u", "u", "d", out, 5)); /* "/m/%/u" is 6 */
	assert_false(maildir_path("", "u", "d", out, 0));
}

/* Delivery makes dir (and parents) with tmp/new/cur 0700 and one exact 0600 file in new/. */
static void test_deliver_creates_exact_file(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char name[300], path[512], want_text[600];
	struct stat st;
	size_t len;
	char *got;

	deliver(f->md, f->msg, "<a@b>", "c@d", "mx.example", &r);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	assert_string_equal(r.esc, "2.0.0");
	assert_int_equal(count_in(f->md, "new", name, sizeof(name)), 1);
	assert_int_equal(count_in(f->md, "tmp", NULL, 0), 0);
	assert_int_equal(count_in(f->md, "cur", NULL, 0), 0);
	for (const char *sub = "tmp"; sub != NULL; sub = strcmp(sub, "tmp") == 0   ? "new"
							 : strcmp(sub, "new") == 0 ? "cur"
										   : NULL) {
		snprintf(path, sizeof(path), "%s/%s", f->md, sub);
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0700);
	}
	snprintf(path, sizeof(path), "%s/mail", f->root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	snprintf(path, sizeof(path), "%s/new/%s", f->md, name);
	snprintf(want_text, sizeof(want_text), "delivered to maildir %s", path);
	assert_string_equal(r.text, want_text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	got = read_whole(path, &len);
	assert_int_equal(len, strlen(HDR MSG_LF));
	assert_memory_equal(got, HDR MSG_LF, len);
	free(got);
}

/* The name is "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>" and S= is the file's size. */
static void test_deliver_name_and_size(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char name[300], path[512], pid[32];
	unsigned long long sec, usec, q, size;
	struct stat st;
	int used = 0;

	deliver(f->md, f->msg, "<a@b>", "c@d", "mx/a:b,c", &r);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	assert_int_equal(count_in(f->md, "new", name, sizeof(name)), 1);
	assert_int_equal(sscanf(name, "%llu.M%lluP%31[0-9]Q%llu.%n", &sec, &usec, pid, &q, &used),
			 4);
	assert_true(used > 0);
	assert_true(usec < 1000000);
	assert_int_equal(strtol(pid, NULL, 10), getpid());
	/* '/', ':' and ',' in the host are escaped so they cannot split the name. */
	assert_true(strncmp(name + used, "mx\\057a\\072b\\054c,S=", 19) == 0);
	assert_int_equal(sscanf(strstr(name, ",S=") + 3, "%llu", &size), 1);
	snprintf(path, sizeof(path), "%s/new/%s", f->md, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(size, (unsigned long long)st.st_size);
	assert_int_equal(size, strlen(HDR MSG_LF));
}

/* Two deliveries of the same message give two distinct files. */
static void test_deliver_twice_distinct(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r1, r2;

	deliver(f->md, f->msg, "<a@b>", "c@d", "h", &r1);
	deliver(f->md, f->msg, "<a@b>", "c@d", "h", &r2);
	assert_int_equal(r1.outcome, OUTCOME_DELIVERED);
	assert_int_equal(r2.outcome, OUTCOME_DELIVERED);
	assert_string_not_equal(r1.text, r2.text);
	assert_int_equal(count_in(f->md, "new", NULL, 0), 2);
	assert_int_equal(count_in(f->md, "tmp", NULL, 0), 0);
}

/* msg[0..n) with each CRLF as LF, into out; returns the length.  The plain
 * definition, byte by byte, that maildir.c's chunked copy must match. */
static size_t lf_of(const char *msg, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		if (!(msg[i] == '\r' && i + 1 < n && msg[i + 1] == '\n'))
			out[o++] = msg[i];
	return o;
}

/* Deliver msg[0..n) and check the file is HDR and lf_of(msg), its name's S= its size. */
static void deliver_and_compare(struct fixture *f, const char *msg, size_t n)
{
	struct delivery_result r;
	char *want = malloc(n + 1), *got, name[300], path[512];
	size_t len, wlen = lf_of(msg, n, want), hl = strlen(HDR);
	unsigned long long size;

	assert_non_null(want);
	assert_true(write_queued(f->msg, msg, n));
	deliver(f->md, f->msg, "<a@b>", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	assert_int_equal(count_in(f->md, "new", name, sizeof(name)), 1);
	snprintf(path, sizeof(path), "%s/new/%s", f->md, name);
	got = read_whole(path, &len);
	assert_int_equal(len, hl + wlen);
	assert_memory_equal(got, HDR, hl);
	assert_true(memcmp(got + hl, want, wlen) == 0);
	assert_int_equal(sscanf(strstr(name, ",S=") + 3, "%llu", &size), 1);
	assert_int_equal(size, len);
	assert_int_equal(unlink(path), 0);
	free(got);
	free(want);
}

/* CRLF becomes LF also when a read ends between its CR and LF; a lone CR
 * or LF stays, at a read's end too, and so does a CR that ends the message. */
static void test_deliver_crlf_across_reads(void **state)
{
	struct fixture *f = *state;
	const size_t n = 2 * COPY_CHUNK + 3;
	char *msg = malloc(n);

	assert_non_null(msg);
	memset(msg, 'x', n);
	msg[10] = '\n';                          /* a bare LF */
	memcpy(msg + 20, "\r\r\n", 3);           /* CR CR LF: the first CR stays */
	memcpy(msg + COPY_CHUNK - 1, "\r\n", 2); /* CRLF split by a read */
	msg[2 * COPY_CHUNK - 1] = '\r';          /* CR ending a read, no LF after */
	msg[n - 1] = '\r';                       /* CR ending the message */
	deliver_and_compare(f, msg, n);
	/* a CRLF at the very end, split by a read */
	memcpy(msg + 2 * COPY_CHUNK - 1, "\r\n", 2);
	deliver_and_compare(f, msg, 2 * COPY_CHUNK + 1);
	/* nothing but CRLF */
	for (size_t i = 0; i + 1 < n; i += 2)
		memcpy(msg + i, "\r\n", 2);
	deliver_and_compare(f, msg, n - 1);
	free(msg);
}

/* A 5 MB message (many buffer-fulls, odd tail) is copied byte for byte but CRLF. */
static void test_deliver_large(void **state)
{
	struct fixture *f = *state;
	const size_t n = 5 * 1024 * 1024 + 7;
	char *msg = malloc(n);
	uint32_t x = 12345;

	assert_non_null(msg);
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		msg[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)(x >> 24);
	}
	deliver_and_compare(f, msg, n);
	free(msg);
}

/* The null sender "<>" is written as "Return-Path: <>". */
static void test_deliver_null_sender(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char name[300], path[512];
	const char *want = "Return-Path: <>\nDelivered-To: c@d\n" MSG_LF;
	size_t len;
	char *got;

	deliver(f->md, f->msg, "<>", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	assert_int_equal(count_in(f->md, "new", name, sizeof(name)), 1);
	snprintf(path, sizeof(path), "%s/new/%s", f->md, name);
	got = read_whole(path, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(got, want, len);
	free(got);
}

/* A regular file where a directory should be: TEMPFAIL 4.2.0 naming the path and errno. */
static void test_deliver_component_not_dir(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char file[256], md[300];

	snprintf(file, sizeof(file), "%s/file", f->root);
	write_file(file, "x", 1);
	snprintf(md, sizeof(md), "%s/sub/Maildir", file);
	deliver(md, f->msg, "<a@b>", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(r.esc, "4.2.0");
	assert_non_null(strstr(r.text, "Not a directory"));
	assert_non_null(strstr(r.text, file));
}

/* new/ is a regular file: the link fails, 4.2.0, and the written tmp file is removed. */
static void test_deliver_new_not_dir_cleans_tmp(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char path[512];

	snprintf(path, sizeof(path), "%s/mail", f->root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/mail/example.org", f->root);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mkdir(f->md, 0700), 0);
	snprintf(path, sizeof(path), "%s/tmp", f->md);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/new", f->md);
	write_file(path, "x", 1);

	deliver(f->md, f->msg, "<a@b>", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(r.esc, "4.2.0");
	assert_non_null(strstr(r.text, "Not a directory"));
	assert_non_null(strstr(r.text, path));
	assert_int_equal(count_in(f->md, "tmp", NULL, 0), 0);
}

/* A half-made Maildir (tmp/ only) gets its new/ and cur/ on demand. */
static void test_deliver_completes_half_maildir(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char path[512];

	snprintf(path, sizeof(path), "%s/half", f->root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/half/tmp", f->root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/half/", f->root); /* trailing slash is fine too */
	deliver(path, f->msg, "<a@b>", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	assert_null(strstr(r.text, "//"));
	assert_int_equal(count_in(path, "new", NULL, 0), 1);
	assert_int_equal(count_in(path, "cur", NULL, 0), 0);
	assert_int_equal(count_in(path, "tmp", NULL, 0), 0);
}

/* A message that cannot be read is TEMPFAIL 4.2.0 and leaves nothing behind. */
static void test_deliver_bad_message_file(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	uint64_t len;
	int fd;

	/* no message at all */
	maildir_deliver(f->md, -1, 10, "<a@b>", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(r.esc, "4.2.0");
	assert_true(count_in(f->md, "new", NULL, 0) <= 0); /* -1: not even created */

	/* A directory opens but cannot be read: pread() says EISDIR. */
	fd = open(f->root, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	maildir_deliver(f->md, fd, 10, "<a@b>", "c@d", "h", &r);
	close(fd);
	assert_int_equal(r.outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(r.esc, "4.2.0");
	assert_non_null(strstr(r.text, "Is a directory"));
	assert_true(count_in(f->md, "new", NULL, 0) <= 0);
	assert_true(count_in(f->md, "tmp", NULL, 0) <= 0);

	/* shorter than it was said to be: the copy would be cut, so it is tried again later */
	fd = queue_msg_open(f->msg, &len);
	assert_true(fd >= 0);
	maildir_deliver(f->md, fd, 1 << 20, "<a@b>", "c@d", "h", &r);
	close(fd);
	assert_int_equal(r.outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(r.esc, "4.2.0");
	assert_non_null(strstr(r.text, "changed size"));
	assert_int_equal(count_in(f->md, "new", NULL, 0), 0);
	assert_int_equal(count_in(f->md, "tmp", NULL, 0), 0);
}

/* The fd's position does not matter: the message is read from its start. */
static void test_deliver_reads_from_start(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char name[300], path[512];
	uint64_t len;
	size_t got_len;
	char *got;
	int fd = queue_msg_open(f->msg, &len);

	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 5, SEEK_SET), 5);
	maildir_deliver(f->md, fd, len, "<a@b>", "c@d", "h", &r);
	close(fd);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	assert_int_equal(count_in(f->md, "new", name, sizeof(name)), 1);
	snprintf(path, sizeof(path), "%s/new/%s", f->md, name);
	got = read_whole(path, &got_len);
	assert_int_equal(got_len, strlen(HDR MSG_LF));
	assert_memory_equal(got, HDR MSG_LF, got_len);
	free(got);
}

/* Addresses with CR/LF (header injection) or without brackets are refused, nothing written. */
static void test_deliver_bad_addresses(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;

	deliver(f->md, f->msg, "<a@b>\r\nX-Evil: 1", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_PERMFAIL);
	assert_string_equal(r.esc, "5.1.7");
	deliver(f->md, f->msg, "a@b", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_PERMFAIL);
	deliver(f->md, f->msg, "", "c@d", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_PERMFAIL);
	deliver(f->md, f->msg, "<a@b>", "c@d\nX-Evil: 1", "h", &r);
	assert_int_equal(r.outcome, OUTCOME_PERMFAIL);
	assert_string_equal(r.esc, "5.1.3");
	assert_int_equal(count_in(f->md, "new", NULL, 0), -1); /* never even created */
}

struct thread_arg {
	const struct fixture *f;
	int failures;
};

#define THREADS 4
#define PER_THREAD 25

/* Deliver PER_THREAD messages from one thread. */
static void *deliver_many(void *p)
{
	struct thread_arg *a = p;
	struct delivery_result r;

	for (int i = 0; i < PER_THREAD; i++) {
		deliver(a->f->md, a->f->msg, "<a@b>", "c@d", "h", &r);
		if (r.outcome != OUTCOME_DELIVERED)
			a->failures++;
	}
	return NULL;
}

/* Threads delivering at once (same second, same pid) never collide on a name. */
static void test_deliver_concurrent(void **state)
{
	struct fixture *f = *state;
	pthread_t t[THREADS];
	struct thread_arg a[THREADS];

	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct thread_arg){f, 0};
		assert_int_equal(pthread_create(&t[i], NULL, deliver_many, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].failures, 0);
	}
	assert_int_equal(count_in(f->md, "new", NULL, 0), THREADS * PER_THREAD);
	assert_int_equal(count_in(f->md, "tmp", NULL, 0), 0);
}

/* A full disk (64 KiB tmpfs) is TEMPFAIL 4.3.1, nothing in new/ or tmp/, earlier mail intact. */
static void test_deliver_disk_full(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char mnt[256], cmd[512], md[300];
	const size_t n = 256 * 1024;
	char *big;

	snprintf(mnt, sizeof(mnt), "%s/tiny", f->root);
	assert_int_equal(mkdir(mnt, 0700), 0);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=64k tmpfs %s 2>/dev/null", mnt);
	if (system(cmd) != 0) {
		print_message("SKIP disk-full test: cannot mount a tmpfs (needs root)\n");
		skip();
	}
	snprintf(md, sizeof(md), "%s/Maildir", mnt);
	deliver(md, f->msg, "<a@b>", "c@d", "h", &r); /* a small one fits */
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);

	big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n);
	assert_true(write_queued(f->msg, big, n));
	free(big);
	deliver(md, f->msg, "<a@b>", "c@d", "h", &r);

	snprintf(cmd, sizeof(cmd), "umount %s", mnt);
	int new_count = count_in(md, "new", NULL, 0), tmp_count = count_in(md, "tmp", NULL, 0);
	assert_int_equal(system(cmd), 0);

	assert_int_equal(r.outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(r.esc, "4.3.1");
	assert_non_null(strstr(r.text, "No space left on device"));
	assert_int_equal(new_count, 1);
	assert_int_equal(tmp_count, 0);
}

/* Make an empty regular file dir/tmp/name. */
static void tmp_file(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/tmp/%s", dir, name);
	write_file(path, "", 0);
}

/* Does dir/tmp/name exist (without following a link)? */
static bool tmp_has(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/tmp/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* maildir_clean_tmp removes regular files of tmp/ whose mtime and ctime are
 * both over 36 hours old, and nothing else: not a younger file, not one
 * whose mtime alone is old, not a dot-file, directory or link, nothing in
 * new/. */
static void test_clean_tmp_only_old_leftovers(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	struct timespec old_mtime[2] = {{0, UTIME_OMIT}, {0, 0}};
	char path[512], target[512];
	time_t now;

	deliver(f->md, f->msg, "<a@b>", "c@d", "mx.example", &r);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	tmp_file(f->md, "1700000000.M1P2Q3.mx,S=10");
	tmp_file(f->md, ".hidden");
	snprintf(path, sizeof(path), "%s/tmp/sub", f->md);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/tmp/link", f->md);
	snprintf(target, sizeof(target), "%s/msg", f->root);
	assert_int_equal(symlink(target, path), 0);
	now = time(NULL);
	assert_int_equal(maildir_clean_tmp(f->md, now), 0);
	assert_int_equal(maildir_clean_tmp(f->md, now + MAILDIR_TMP_MAX_AGE - 60), 0);
	assert_int_equal(count_in(f->md, "tmp", NULL, 0), 4);
	/* an old mtime alone (a tool staging a file) is not enough */
	tmp_file(f->md, "staged");
	old_mtime[1].tv_sec = now - MAILDIR_TMP_MAX_AGE - 3600;
	snprintf(path, sizeof(path), "%s/tmp/staged", f->md);
	assert_int_equal(utimensat(AT_FDCWD, path, old_mtime, 0), 0);
	assert_int_equal(maildir_clean_tmp(f->md, now), 0);
	assert_true(tmp_has(f->md, "staged"));
	/* 36 hours on, both regular files are leftovers */
	assert_int_equal(maildir_clean_tmp(f->md, now + MAILDIR_TMP_MAX_AGE + 60), 2);
	assert_false(tmp_has(f->md, "1700000000.M1P2Q3.mx,S=10"));
	assert_false(tmp_has(f->md, "staged"));
	assert_true(tmp_has(f->md, ".hidden") && tmp_has(f->md, "sub") && tmp_has(f->md, "link"));
	assert_int_equal(stat(target, &(struct stat){0}), 0);
	assert_int_equal(count_in(f->md, "new", NULL, 0), 1);
	/* a Maildir without tmp/ is nothing to do */
	snprintf(path, sizeof(path), "%s/none", f->root);
	assert_int_equal(maildir_clean_tmp(path, now + MAILDIR_TMP_MAX_AGE + 60), 0);
}

/* maildir_sweep_tmp cleans one Maildir's tmp/ at most once per
 * MAILDIR_TMP_SWEEP_INTERVAL; another Maildir has its own turn. */
static void test_sweep_tmp_once_per_interval(void **state)
{
	struct fixture *f = *state;
	struct delivery_result r;
	char other[160];
	time_t t0 = time(NULL) + MAILDIR_TMP_MAX_AGE + 60; /* every file is old by then */

	deliver(f->md, f->msg, "<a@b>", "c@d", "mx.example", &r);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	snprintf(other, sizeof(other), "%s/mail/example.org/d", f->root);
	deliver(other, f->msg, "<a@b>", "d@d", "mx.example", &r);
	assert_int_equal(r.outcome, OUTCOME_DELIVERED);
	tmp_file(f->md, "a");
	assert_int_equal(maildir_sweep_tmp(f->md, t0), 1);
	tmp_file(f->md, "b");
	tmp_file(other, "c");
	assert_int_equal(maildir_sweep_tmp(f->md, t0 + MAILDIR_TMP_SWEEP_INTERVAL - 1), 0);
	assert_true(tmp_has(f->md, "b"));
	assert_int_equal(maildir_sweep_tmp(other, t0 + 1), 1);
	assert_int_equal(maildir_sweep_tmp(f->md, t0 + MAILDIR_TMP_SWEEP_INTERVAL), 1);
	assert_false(tmp_has(f->md, "b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_expand),
		cmocka_unit_test(test_path_refusals),
		cmocka_unit_test(test_path_overflow),
		cmocka_unit_test_setup_teardown(test_deliver_creates_exact_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_name_and_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_twice_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_crlf_across_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_null_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_component_not_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_new_not_dir_cleans_tmp, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deliver_completes_half_maildir, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deliver_bad_message_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_reads_from_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_bad_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_tmp_only_old_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_tmp_once_per_interval, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
