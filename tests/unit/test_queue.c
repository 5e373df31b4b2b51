/*
 * test_queue.c - unit tests for the spool's API in src/queue/queue.h, on a
 * real spool in a fresh temporary directory: queue_id_new (valid, strictly
 * increasing, time-prefixed IDs), queue_inject (one queue file, message
 * bytes and envelope as given, a new ID, nothing left behind when it
 * fails, safe from several threads at once), queue_update (ID.env stands
 * for the envelope, the message untouched), queue_remove (both files go;
 * an unknown ID is ENOENT, a malformed one EINVAL), queue_read (fd and
 * length of the message alone; ENOENT, EBADMSG for a damaged file, EINVAL)
 * queue_scan / queue_scan_dir (the same listing, sorted by ID),
 * queue_envelope_dir (one message's envelope as it stands: ID.env over the
 * one in ID.msg; EINVAL, ENOENT, ENOTDIR, EBADMSG) and queue_aside_dir (what
 * recovery set aside, once per ID, with its envelope when it parses).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "envelope.h"
#include "queue.h"
#include "spool_fixture.h"
#include "strbuf.h"
#include "util.h"

#define MSG "Received: by test\r\nSubject: hi\r\n\r\nhello\r\n"
#define INJECT_THREADS 4
#define INJECT_PER_THREAD 50

struct fixture {
	char dir[64];
	struct queue *q;
};

/* One listed message, as queue_scan gave it. */
struct listed {
	char id[QUEUE_ID_LEN + 1];
	uint64_t size;
	char sender[64];
	enum rcpt_state state;
	unsigned attempts;
};

struct listing {
	struct listed items[INJECT_THREADS * INJECT_PER_THREAD + 4];
	size_t n;
};

/* A spool in a fresh temporary directory (no event loop: nothing is committed). */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	strcpy(f->dir, "/tmp/hato-test-queue.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->q = queue_open(f->dir, 1, false, NULL, err, sizeof(err));
	if (f->q == NULL)
		return -1;
	*state = f;
	return 0;
}

/* Close the spool and remove the directory. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	queue_close(f->q);
	spool_rm_tree(f->dir);
	free(f);
	return 0;
}

/* Does STATE/queue/NAME exist? */
static bool exists(const struct fixture *f, const char *id, const char *ext)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/queue/%s%s", f->dir, id, ext);
	return stat(path, &st) == 0;
}

/* Files in STATE/queue. */
static int files_in_queue(const struct fixture *f)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/queue", f->dir);
	return spool_count(path);
}

/* An envelope from sender to one recipient (its ID left for the queue). */
static void make_envelope(struct envelope *e, const char *sender)
{
	spool_envelope(e, sender, "<bob@example.org>", strlen(MSG), 1764370000);
}

/* queue_scan callback: note what was listed. */
static void note(const struct envelope *e, uint64_t size, void *arg)
{
	struct listing *l = arg;
	struct listed *it = &l->items[l->n++];

	assert_true(l->n <= sizeof(l->items) / sizeof(l->items[0]));
	strcpy(it->id, e->id);
	it->size = size;
	snprintf(it->sender, sizeof(it->sender), "%s", e->sender);
	it->state = e->nrcpts > 0 ? e->rcpts[0].state : RCPT_PENDING;
	it->attempts = e->nrcpts > 0 ? e->rcpts[0].attempts : 0;
}

/* Read the first len octets of fd from its start. */
static char *read_msg(int fd, uint64_t len)
{
	char *buf = malloc((size_t)len + 1);

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)len, 0), (ssize_t)len);
	buf[len] = '\0';
	return buf;
}

/* queue_id_new: valid IDs, strictly increasing, time-prefixed. */
static void test_queue_id_new(void **state)
{
	char prev[QUEUE_ID_LEN + 1], id[QUEUE_ID_LEN + 1], prefix[15];
	struct timeval tv;
	uint64_t now_us, id_us;

	(void)state;
	gettimeofday(&tv, NULL);
	now_us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	queue_id_new(prev);
	assert_int_equal(strlen(prev), QUEUE_ID_LEN);
	assert_true(queue_id_valid(prev));
	memcpy(prefix, prev, 14);
	prefix[14] = '\0';
	assert_int_equal(sscanf(prefix, "%14" SCNx64, &id_us), 1);
	assert_true(id_us + 1000000 > now_us && id_us < now_us + 10000000);
	for (int i = 0; i < 100000; i++) {
		queue_id_new(id);
		if (!queue_id_valid(id))
			fail_msg("invalid id %s", id);
		if (strcmp(prev, id) >= 0)
			fail_msg("ids not increasing: %s then %s", prev, id);
		strcpy(prev, id);
	}
}

/* An injected message is one queue file under a new ID: read gives back the
 * message's bytes alone, scan its envelope and size. */
static void test_inject_read_scan(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	struct listing l = {.n = 0};
	uint64_t len = 0;
	char err[256], *got;
	int fd;

	make_envelope(&e, "<alice@example.org>");
	assert_true(queue_inject(f->q, &e, MSG, strlen(MSG)));
	assert_true(queue_id_valid(e.id));
	assert_true(exists(f, e.id, ".msg"));
	assert_false(exists(f, e.id, ".env"));
	assert_false(exists(f, e.id, ".msg.tmp"));
	assert_int_equal(files_in_queue(f), 1);

	fd = queue_read(f->q, e.id, &len);
	assert_true(fd >= 0);
	assert_int_equal(len, strlen(MSG));
	got = read_msg(fd, len);
	assert_string_equal(got, MSG);
	free(got);
	close(fd);

	assert_true(queue_scan(f->q, note, &l, err, sizeof(err)));
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].id, e.id);
	assert_int_equal(l.items[0].size, strlen(MSG));
	assert_string_equal(l.items[0].sender, "<alice@example.org>");
	assert_int_equal(l.items[0].state, RCPT_PENDING);
	envelope_free(&e);
}

/* An inject that cannot write leaves nothing, and no ID.msg.tmp either. */
static void test_inject_fails_cleanly(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	struct listing l = {.n = 0};
	char from[128], to[128], err[256];

	/* queue/ gone for a moment (as root no mode keeps a file out) */
	snprintf(from, sizeof(from), "%s/queue", f->dir);
	snprintf(to, sizeof(to), "%s/elsewhere", f->dir);
	assert_int_equal(rename(from, to), 0);
	make_envelope(&e, "<alice@example.org>");
	errno = 0;
	assert_false(queue_inject(f->q, &e, MSG, strlen(MSG)));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(rename(to, from), 0);
	assert_int_equal(files_in_queue(f), 0);
	assert_true(queue_scan(f->q, note, &l, err, sizeof(err)));
	assert_int_equal(l.n, 0);
	envelope_free(&e);
}

/* Threads injecting at once. */
static void *inject_many(void *arg)
{
	struct fixture *f = arg;

	for (int i = 0; i < INJECT_PER_THREAD; i++) {
		struct envelope e;
		bool ok;

		make_envelope(&e, "<t@example.org>");
		ok = queue_inject(f->q, &e, MSG, strlen(MSG));
		envelope_free(&e);
		if (!ok)
			return (void *)1;
	}
	return NULL;
}

/* Delivery threads inject reports at the same time: every one is queued
 * under its own ID, and the listing is sorted by ID. */
static void test_inject_from_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t t[INJECT_THREADS];
	static struct listing l;
	char err[256];

	l.n = 0;
	for (int i = 0; i < INJECT_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, inject_many, f), 0);
	for (int i = 0; i < INJECT_THREADS; i++) {
		void *r;

		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
	assert_true(queue_scan(f->q, note, &l, err, sizeof(err)));
	assert_int_equal(l.n, INJECT_THREADS * INJECT_PER_THREAD);
	for (size_t i = 1; i < l.n; i++)
		assert_true(strcmp(l.items[i - 1].id, l.items[i].id) < 0);
}

/* An update writes ID.env, which the listing reads from then on; the
 * message file stays as it was. */
static void test_update(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	struct listing l = {.n = 0};
	uint64_t len = 0;
	char err[256];
	int fd;

	make_envelope(&e, "<alice@example.org>");
	assert_true(queue_inject(f->q, &e, MSG, strlen(MSG)));
	e.rcpts[0].attempts = 3;
	e.rcpts[0].next_attempt = 1764379999;
	assert_true(queue_update(f->q, &e));
	assert_true(exists(f, e.id, ".env"));
	assert_false(exists(f, e.id, ".env.tmp"));
	assert_true(queue_scan(f->q, note, &l, err, sizeof(err)));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.items[0].attempts, 3);
	fd = queue_read(f->q, e.id, &len);
	assert_true(fd >= 0);
	assert_int_equal(len, strlen(MSG));
	close(fd);

	/* an ID that is none is refused, nothing written */
	strcpy(e.id, "../../../../tmp/x");
	errno = 0;
	assert_false(queue_update(f->q, &e));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(files_in_queue(f), 2);
	envelope_free(&e);
}

/* Removal takes both files; a second one, or one of an ID never queued,
 * is ENOENT; a malformed ID is EINVAL and touches nothing. */
static void test_remove(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	struct listing l = {.n = 0};
	char err[256], id[QUEUE_ID_LEN + 1];
	int fd;

	make_envelope(&e, "<alice@example.org>");
	assert_true(queue_inject(f->q, &e, MSG, strlen(MSG)));
	assert_true(queue_update(f->q, &e));
	assert_true(queue_remove(f->q, e.id));
	assert_false(exists(f, e.id, ".msg"));
	assert_false(exists(f, e.id, ".env"));
	assert_true(queue_scan(f->q, note, &l, err, sizeof(err)));
	assert_int_equal(l.n, 0);

	errno = 0;
	assert_false(queue_remove(f->q, e.id));
	assert_int_equal(errno, ENOENT);
	queue_id_new(id);
	errno = 0;
	assert_false(queue_remove(f->q, id));
	assert_int_equal(errno, ENOENT);

	/* an ID.env left without its message goes, though the message is unknown */
	assert_true(queue_update(f->q, &e));
	assert_true(exists(f, e.id, ".env"));
	assert_false(queue_remove(f->q, e.id));
	assert_int_equal(errno, ENOENT);
	assert_false(exists(f, e.id, ".env"));

	errno = 0;
	assert_false(queue_remove(f->q, "0006a1b2c3d4e5f60001")); /* lower case: none of ours */
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_false(queue_remove(f->q, "../queue"));
	assert_int_equal(errno, EINVAL);

	/* removing under an open reader: the reader keeps its message */
	assert_true(queue_inject(f->q, &e, MSG, strlen(MSG)));
	{
		uint64_t len = 0;
		char *got;

		fd = queue_read(f->q, e.id, &len);
		assert_true(fd >= 0);
		assert_true(queue_remove(f->q, e.id));
		got = read_msg(fd, len);
		assert_string_equal(got, MSG);
		free(got);
		close(fd);
	}
	envelope_free(&e);
}

/* Reading fails for an unknown ID (ENOENT), a damaged file (EBADMSG: its
 * trailer does not add up) and a malformed ID (EINVAL). */
static void test_read_failures(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	char path[256], id[QUEUE_ID_LEN + 1];
	uint64_t len = 0;
	struct stat st;

	queue_id_new(id);
	errno = 0;
	assert_int_equal(queue_read(f->q, id, &len), -1);
	assert_int_equal(errno, ENOENT);

	errno = 0;
	assert_int_equal(queue_read(f->q, "nope", &len), -1);
	assert_int_equal(errno, EINVAL);

	/* cut short by one octet */
	make_envelope(&e, "<alice@example.org>");
	assert_true(queue_inject(f->q, &e, MSG, strlen(MSG)));
	snprintf(path, sizeof(path), "%s/queue/%s.msg", f->dir, e.id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 1), 0);
	errno = 0;
	assert_int_equal(queue_read(f->q, e.id, &len), -1);
	assert_int_equal(errno, EBADMSG);

	/* grown by one */
	assert_int_equal(truncate(path, st.st_size + 1), 0);
	errno = 0;
	assert_int_equal(queue_read(f->q, e.id, &len), -1);
	assert_int_equal(errno, EBADMSG);
	envelope_free(&e);
}

/* queue_scan_dir lists a spool nobody opened exactly as queue_scan does,
 * and says why when there is none. */
static void test_scan_dir(void **state)
{
	struct fixture *f = *state;
	struct envelope a, b;
	static struct listing open_l, dir_l;
	char err[256];

	open_l.n = dir_l.n = 0;
	make_envelope(&a, "<a@example.org>");
	make_envelope(&b, "<b@example.org>");
	assert_true(queue_inject(f->q, &a, MSG, strlen(MSG)));
	assert_true(queue_inject(f->q, &b, MSG "more\r\n", strlen(MSG) + 6));
	assert_true(queue_scan(f->q, note, &open_l, err, sizeof(err)));
	assert_true(queue_scan_dir(f->dir, note, &dir_l, err, sizeof(err)));
	assert_int_equal(open_l.n, 2);
	assert_int_equal(dir_l.n, 2);
	assert_memory_equal(&open_l.items, &dir_l.items, 2 * sizeof(open_l.items[0]));
	assert_string_equal(dir_l.items[0].id, a.id);
	assert_string_equal(dir_l.items[1].id, b.id);
	assert_int_equal(dir_l.items[1].size, strlen(MSG) + 6);

	errno = 0;
	assert_false(queue_scan_dir("/nonexistent/hato", note, &dir_l, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "/nonexistent/hato/queue"));
	envelope_free(&a);
	envelope_free(&b);
}

/* Write text into STATE/queue/NAME. */
static void put_file(const struct fixture *f, const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/* queue_envelope_dir: the envelope as it stands, and each failure. */
static void test_envelope_dir(void **state)
{
	struct fixture *f = *state;
	struct envelope a, got;
	uint64_t size = 0;
	char err[512], name[64];

	make_envelope(&a, "<a@example.org>");
	assert_true(queue_inject(f->q, &a, MSG, strlen(MSG)));
	assert_true(queue_envelope_dir(f->dir, a.id, &got, &size, err, sizeof(err)));
	assert_string_equal(got.sender, "<a@example.org>");
	assert_int_equal(size, strlen(MSG));
	assert_int_equal(got.rcpts[0].ntries, 0);
	envelope_free(&got);
	/* after an attempt ID.env stands for it, history and hold included */
	env_rcpt_add_attempt(&a.rcpts[0], 1764370100, OUTCOME_TEMPFAIL, "mx[192.0.2.7]:25",
			     "TLSv1.3", "4.2.0 full");
	envelope_set_hold(&a, "spam run", 1764370200);
	assert_true(queue_update(f->q, &a));
	assert_true(queue_envelope_dir(f->dir, a.id, &got, &size, err, sizeof(err)));
	assert_string_equal(got.hold, "spam run");
	assert_int_equal(got.rcpts[0].ntries, 1);
	assert_string_equal(got.rcpts[0].tries[0].host, "mx[192.0.2.7]:25");
	envelope_free(&got);

	errno = 0;
	assert_false(queue_envelope_dir(f->dir, "../queue/x", &got, &size, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_false(
		queue_envelope_dir(f->dir, "0006A1B2C3D4E5F60001", &got, &size, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "no message 0006A1B2C3D4E5F60001"));
	errno = 0;
	assert_false(queue_envelope_dir("/nonexistent/hato", a.id, &got, &size, err, sizeof(err)));
	assert_int_equal(errno, ENOTDIR);
	/* an envelope that does not parse, and a file without a trailer */
	snprintf(name, sizeof(name), "%s.env", a.id);
	put_file(f, name, "hato-envelope: 1\nbogus: x\n");
	errno = 0;
	assert_false(queue_envelope_dir(f->dir, a.id, &got, &size, err, sizeof(err)));
	assert_int_equal(errno, EBADMSG);
	assert_non_null(strstr(err, "line 2"));
	snprintf(name, sizeof(name), "%s.msg", a.id);
	put_file(f, name, "no trailer\n");
	errno = 0;
	assert_false(queue_envelope_dir(f->dir, a.id, &got, &size, err, sizeof(err)));
	assert_int_equal(errno, EBADMSG);
	envelope_free(&a);
}

/* What queue_aside_dir reported. */
struct asides {
	char ids[4][QUEUE_ID_LEN + 1];
	bool msg[4], env[4], parsed[4];
	uint64_t size[4];
	size_t n;
};

/* queue_aside_dir callback: note what was listed. */
static void note_aside(const struct queue_aside *a, void *arg)
{
	struct asides *l = arg;

	assert_true(l->n < 4);
	strcpy(l->ids[l->n], a->id);
	l->msg[l->n] = a->msg_path != NULL;
	l->env[l->n] = a->env_path != NULL;
	l->parsed[l->n] = a->e != NULL;
	l->size[l->n] = a->msg_size;
	assert_true(a->when > 0);
	l->n++;
}

/* queue_aside_dir: each set-aside ID once, sorted, its envelope when it parses. */
static void test_aside_dir(void **state)
{
	struct fixture *f = *state;
	struct envelope a;
	struct strbuf b;
	struct asides l = {.n = 0};
	char err[256];

	make_envelope(&a, "<a@example.org>");
	strcpy(a.id, "0006A1B2C3D4E5F60002");
	strbuf_init(&b);
	envelope_format(&a, &b);
	assert_true(queue_aside_dir(f->dir, note_aside, &l, err, sizeof(err)));
	assert_int_equal(l.n, 0);
	put_file(f, "0006A1B2C3D4E5F60002.env.corrupt", b.s);
	put_file(f, "0006A1B2C3D4E5F60002.msg.corrupt", "12345");
	put_file(f, "0006A1B2C3D4E5F60001.msg.corrupt", "1");
	put_file(f, "0006A1B2C3D4E5F60003.env.corrupt", "not an envelope");
	put_file(f, "0006a1b2c3d4e5f60004.msg.corrupt", "not an ID"); /* ignored */
	put_file(f, "0006A1B2C3D4E5F60005.txt.corrupt", "not ours");  /* ignored */
	assert_true(queue_aside_dir(f->dir, note_aside, &l, err, sizeof(err)));
	assert_int_equal(l.n, 3);
	assert_string_equal(l.ids[0], "0006A1B2C3D4E5F60001");
	assert_true(l.msg[0] && !l.env[0] && !l.parsed[0]);
	assert_string_equal(l.ids[1], "0006A1B2C3D4E5F60002");
	assert_true(l.msg[1] && l.env[1] && l.parsed[1]);
	assert_int_equal(l.size[1], 5);
	assert_string_equal(l.ids[2], "0006A1B2C3D4E5F60003");
	assert_true(!l.msg[2] && l.env[2] && !l.parsed[2]);
	errno = 0;
	assert_false(queue_aside_dir("/nonexistent/hato", note_aside, &l, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	strbuf_free(&b);
	envelope_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_id_new),
		cmocka_unit_test_setup_teardown(test_inject_read_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inject_fails_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inject_from_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aside_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
