/*
 * test_scheduler.c - unit tests for src/scheduler/scheduler.c driving a
 * real scheduler over a real queue (a fresh state directory under /tmp),
 * real Maildir delivery and a real event loop; nothing is faked.  A
 * configuration file names example.org local, Maildirs under the test's
 * directory and a retry schedule of an hour.  Messages go in by the
 * queue's commit path, as the SMTP session commits them, then
 * scheduler_add.  A recipient is made to fail for a while by putting a
 * plain file where its Maildir would be (ENOTDIR: 4.2.0, retried), and
 * for good by a local part the mailbox_path template refuses (5.1.3).
 *
 * Asserted: a delivered message is in the Maildir byte for byte and has
 * left the queue (ID.msg and ID.env); a temporary failure keeps the
 * message, with ID.env written, the attempt counted and the next attempt
 * an hour on; a permanent failure removes the message and queues a
 * delivery report (queue_inject), which queue_scan lists; scheduler_delete
 * removes both files (and knows no message twice); scheduler_flush retries
 * at once what was to wait an hour.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "envelope.h"
#include "queue.h"
#include "scheduler.h"
#include "strbuf.h"
#include "spool_fixture.h"
#include "util.h"

#define MSG "Subject: test\r\n\r\nhello\r\n"
#define RETRY 3600        /* the retry schedule's one wait, seconds */
#define WAIT_MAX_MS 10000 /* how long a test waits for the scheduler */
#define LIST_MAX 8

struct fixture {
	char dir[64];
	char state[128];
	struct conf *conf;
	struct event_base *base;
	struct queue *q;
	struct scheduler *sc;
};

/* The queue's envelopes, as queue_scan listed them. */
struct listing {
	struct envelope env[LIST_MAX];
	size_t n;
};

/* A configuration, a queue and a scheduler on an event loop, in a fresh directory. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[128], err[512];
	FILE *fp;

	strcpy(f->dir, "/tmp/hato-test-sched.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(path, sizeof(path), "%s/hato.conf", f->dir);
	fp = fopen(path, "w");
	if (fp == NULL)
		return -1;
	fprintf(fp,
		"[server]\nhostname = mx.test.example\nstate_dir = %s\n"
		"local_domains = example.org\n"
		"[listener smtp]\naddress = 127.0.0.1:2525\n" /* required; never bound here */
		"[delivery]\nmailbox_path = %s/mail/%%d/%%u\nretry_schedule = %ds\n",
		f->state, f->dir, RETRY);
	fclose(fp);
	f->conf = conf_load(path, err, sizeof(err));
	if (f->conf == NULL) {
		print_error("conf_load: %s\n", err);
		return -1;
	}
	f->base = event_base_new();
	f->q = queue_open(f->state, 1, false, f->base, err, sizeof(err));
	if (f->base == NULL || f->q == NULL) {
		print_error("queue_open: %s\n", err);
		return -1;
	}
	f->sc = scheduler_new(f->conf, f->base, f->q);
	scheduler_load(f->sc);
	*state = f;
	return 0;
}

/* Stop and free everything, and remove the directory. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	scheduler_stop(f->sc);
	scheduler_free(f->sc);
	queue_close(f->q);
	event_base_free(f->base);
	conf_free(f->conf);
	spool_rm_tree(f->dir);
	free(f);
	return 0;
}

/* Does STATE/queue/ID.ext exist? */
static bool queued_file(const struct fixture *f, const char *id, const char *ext)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/queue/%s.%s", f->state, id, ext);
	return stat(path, &st) == 0;
}

/* Run the loop until cond(f, arg) holds with no delivery in flight; false
 * after WAIT_MAX_MS. */
static bool run_until(struct fixture *f, bool (*cond)(struct fixture *, const void *),
		      const void *arg)
{
	for (int ms = 0; ms < WAIT_MAX_MS; ms++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		if (scheduler_active(f->sc) == 0 && cond(f, arg))
			return true;
		usleep(1000);
	}
	return false;
}

/* run_until: the message is gone from queue/. */
static bool gone(struct fixture *f, const void *id)
{
	return !queued_file(f, id, "msg") && !queued_file(f, id, "env");
}

/* run_until: the message's envelope was written. */
static bool env_written(struct fixture *f, const void *id)
{
	return queued_file(f, id, "env");
}

/* The commit finished (queue_commit_cb). */
static void committed(void *arg, int err)
{
	*(int *)arg = err;
}

/* Commit MSG from sender to rcpt as the SMTP session does (the queue's
 * commit path), hand it to the scheduler, and put its ID into id. */
static void commit(struct fixture *f, const char *sender, const char *rcpt,
		   char id[QUEUE_ID_LEN + 1])
{
	struct qfile qf;
	struct envelope e;
	int err = -1;

	assert_true(queue_file_open(f->q, &qf));
	spool_envelope(&e, sender, rcpt, strlen(MSG), time(NULL));
	memcpy(e.id, qf.id, sizeof(e.id));
	assert_true(queue_file_write(&qf, MSG, strlen(MSG)));
	queue_commit(&qf, &e, committed, &err);
	for (int ms = 0; err == -1 && ms < WAIT_MAX_MS; ms++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	assert_int_equal(err, 0);
	assert_true(queued_file(f, e.id, "msg"));
	scheduler_add(f->sc, &e);
	strcpy(id, e.id);
	envelope_free(&e);
}

/* queue_scan callback: keep a copy of each envelope. */
static void keep(const struct envelope *e, uint64_t size, void *arg)
{
	struct listing *l = arg;
	struct strbuf b;
	char err[128];

	(void)size;
	assert_true(l->n < LIST_MAX);
	strbuf_init(&b);
	envelope_format(e, &b);
	assert_true(envelope_parse(b.s, b.len, &l->env[l->n++], err, sizeof(err)));
	strbuf_free(&b);
}

/* List the queue into l. */
static void list(struct fixture *f, struct listing *l)
{
	char err[256];

	l->n = 0;
	assert_true(queue_scan(f->q, keep, l, err, sizeof(err)));
}

/* Free what list() kept. */
static void list_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		envelope_free(&l->env[i]);
	l->n = 0;
}

/* Files in the Maildir mail/example.org/USER/new; the last one's name in name. */
static int in_new(const struct fixture *f, const char *user, char *name, size_t namesz)
{
	char path[256];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/mail/example.org/%s/new", f->dir, user);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (name != NULL)
			snprintf(name, namesz, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Make USER's Maildir impossible for now: a plain file where its directory goes. */
static void block_mailbox(const struct fixture *f, const char *user)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/mail", f->dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/mail/example.org", f->dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/mail/example.org/%s", f->dir, user);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
}

/* Undo block_mailbox. */
static void unblock_mailbox(const struct fixture *f, const char *user)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/mail/example.org/%s", f->dir, user);
	assert_int_equal(unlink(path), 0);
}

/* A committed message is delivered into the Maildir (its CRLF lines as LF)
 * and leaves the queue: ID.msg and ID.env both gone, nothing listed. */
static void test_delivered_and_removed(void **state)
{
	struct fixture *f = *state;
	static const char want[] =
		"Return-Path: <alice@example.org>\nDelivered-To: bob@example.org\n"
		"Subject: test\n\nhello\n";
	char id[QUEUE_ID_LEN + 1], name[300], path[512], got[sizeof(want) + 16];
	struct listing l;
	ssize_t n;
	int fd;

	commit(f, "<alice@example.org>", "<bob@example.org>", id);
	assert_true(run_until(f, gone, id));
	assert_int_equal(in_new(f, "bob", name, sizeof(name)), 1);
	snprintf(path, sizeof(path), "%s/mail/example.org/bob/new/%s", f->dir, name);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, got, sizeof(got));
	close(fd);
	assert_int_equal(n, (ssize_t)strlen(want));
	assert_memory_equal(got, want, strlen(want));
	list(f, &l);
	assert_int_equal(l.n, 0);
}

/* A temporary failure keeps the message: ID.env records the attempt, the
 * error and the next attempt an hour on; then flush delivers it at once. */
static void test_tempfail_then_flush(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1];
	struct listing l;
	time_t before = time(NULL);

	block_mailbox(f, "carol");
	commit(f, "<alice@example.org>", "<carol@example.org>", id);
	assert_true(run_until(f, env_written, id));
	assert_true(queued_file(f, id, "msg"));
	list(f, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.env[0].id, id);
	assert_int_equal(l.env[0].rcpts[0].state, RCPT_PENDING);
	assert_int_equal(l.env[0].rcpts[0].attempts, 1);
	assert_true(l.env[0].rcpts[0].next_attempt >= before + RETRY);
	assert_non_null(l.env[0].rcpts[0].error);
	assert_true(strncmp(l.env[0].rcpts[0].error, "4.2.0 ", 6) == 0);
	list_free(&l);

	/* nothing more happens by itself within the hour ... */
	for (int i = 0; i < 200; i++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	assert_true(queued_file(f, id, "msg"));
	assert_int_equal(in_new(f, "carol", NULL, 0), 0);

	/* ... but a flush tries again now, and this time it goes */
	unblock_mailbox(f, "carol");
	scheduler_flush(f->sc);
	assert_true(run_until(f, gone, id));
	assert_int_equal(in_new(f, "carol", NULL, 0), 1);
}

/* A permanent failure removes the message and queues a report to its
 * sender through the queue (inject), which the listing shows. */
static void test_permfail_queues_report(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1];
	struct listing l;
	uint64_t len = 0;
	char *text;
	int fd;

	/* the report itself waits: the sender's Maildir cannot be made yet */
	block_mailbox(f, "alice");
	commit(f, "<alice@example.org>", "<.dot@example.org>", id);
	assert_true(run_until(f, gone, id));
	list(f, &l);
	assert_int_equal(l.n, 1);
	assert_string_not_equal(l.env[0].id, id);
	assert_true(l.env[0].dsn_report);
	assert_string_equal(l.env[0].sender, "<>");
	assert_int_equal(l.env[0].nrcpts, 1);
	assert_string_equal(l.env[0].rcpts[0].addr, "<alice@example.org>");

	/* it is a bounce about the message, with the failed recipient's reason */
	fd = queue_read(f->q, l.env[0].id, &len);
	assert_true(fd >= 0);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(pread(fd, text, (size_t)len, 0), (ssize_t)len);
	close(fd);
	assert_non_null(strstr(text, "Subject: Undelivered Mail Returned to Sender"));
	assert_non_null(strstr(text, "Final-Recipient: rfc822; .dot@example.org"));
	assert_non_null(strstr(text, "Status: 5.1.3"));
	assert_non_null(strstr(text, id));
	free(text);
	list_free(&l);
}

/* scheduler_delete removes both files of a waiting message; a second
 * delete knows no such message. */
static void test_delete(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1], err[256] = "";
	struct listing l;

	block_mailbox(f, "dave");
	commit(f, "<alice@example.org>", "<dave@example.org>", id);
	assert_true(run_until(f, env_written, id));
	assert_true(scheduler_delete(f->sc, id, err, sizeof(err)));
	assert_false(queued_file(f, id, "msg"));
	assert_false(queued_file(f, id, "env"));
	list(f, &l);
	assert_int_equal(l.n, 0);
	assert_false(scheduler_delete(f->sc, id, err, sizeof(err)));
	assert_non_null(strstr(err, "no message"));
}

/* At start the scheduler delivers what the queue already holds. */
static void test_load_delivers_queued(void **state)
{
	struct fixture *f = *state;
	struct envelope e;

	spool_envelope(&e, "<alice@example.org>", "<erin@example.org>", strlen(MSG), time(NULL));
	assert_true(queue_inject(f->q, &e, MSG, strlen(MSG)));
	scheduler_load(f->sc);
	assert_true(run_until(f, gone, e.id));
	assert_int_equal(in_new(f, "erin", NULL, 0), 1);
	envelope_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delivered_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tempfail_then_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permfail_queues_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_delivers_queued, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
