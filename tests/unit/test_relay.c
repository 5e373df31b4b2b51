/*
 * test_relay.c - unit tests for remote delivery (src/relay/relay.c):
 * relay_deliver() against a scripted fake SMTP server (fake_smtp.h), the
 * route a [transport] entry "[127.0.0.1]:PORT" so that no DNS is asked.
 *
 * Covered: per-recipient results (a refused RCPT fails alone, the others
 * get the reply to the final dot, each text "host[addr]:port said: ..."),
 * the DSN and SIZE parameters sent to a server offering them; a connection
 * kept idle and reused for the next message after RSET; a message over the
 * server's SIZE failing 5.3.4 without being sent; a refused greeting
 * deferring every recipient with the host's reply.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>

#include "conf.h"
#include "fake_smtp.h"
#include "queued_file.h"
#include "relay.h"

#define MSG "Subject: hi\r\n\r\n.hello\r\n"

/* One test: a directory with the config and the queued message, the fake, the relay. */
struct t {
	char root[64];
	char msg[128];
	struct fake_smtp f;
	struct conf *conf;
	struct relay *relay;
	struct route rt;
	char remote[64]; /* "127.0.0.1[127.0.0.1]:PORT" */
};

/* Remove one entry during the depth-first walk. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->f.lfd = -1;
	strcpy(t->root, "/tmp/hato-relay-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	snprintf(t->msg, sizeof(t->msg), "%s/msg", t->root);
	assert_true(write_queued(t->msg, MSG, strlen(MSG)));
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	relay_free(t->relay);
	fake_smtp_free(&t->f);
	conf_free(t->conf);
	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

/* Start the fake with script; a config routing example.net to it (reuse_time as
 * given); the relay and the route. */
static void start(struct t *t, const char *script[], const char *reuse_time)
{
	char path[128], err[256];
	FILE *fp;

	assert_true(fake_smtp_start(&t->f, script));
	snprintf(t->remote, sizeof(t->remote), "127.0.0.1[127.0.0.1]:%u", t->f.port);
	snprintf(path, sizeof(path), "%s/hato.conf", t->root);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp,
		"[server]\nhostname = mx.test.example\nstate_dir = %s/state\n"
		"[remote]\ntls = none\nreuse_time = %s\ntimeout_command = 5s\n"
		"timeout_greeting = 5s\ntimeout_data_end = 5s\n"
		"[transport]\nexample.net = [127.0.0.1]:%u\n"
		"[listener smtp]\naddress = 127.0.0.1:1\n", /* never bound here */
		t->root, reuse_time, t->f.port);
	assert_int_equal(fclose(fp), 0);
	t->conf = conf_load(path, err, sizeof(err));
	if (t->conf == NULL)
		fail_msg("conf_load: %s", err);
	t->relay = relay_new(t->conf);
	route_domain(t->conf, "example.net", &t->rt);
}

/* Deliver the queued message to the n recipients in rc. */
static void deliver(struct t *t, struct relay_rcpt *rc, size_t n, struct relay_msg *m)
{
	uint64_t len = 0;
	int fd = queue_msg_open(t->msg, &len);

	assert_true(fd >= 0);
	assert_int_equal(len, strlen(MSG));
	*m = (struct relay_msg){.queue_id = "0001",
				.sender = "<alice@test.example>",
				.fd = fd,
				.size = len,
				.mail_params = " RET=HDRS",
				.rcpts = rc,
				.nrcpts = n};
	relay_deliver(t->relay, t->conf, &t->rt, m);
	close(fd);
}

/* End the relay (QUIT to the idle connections) and check the fake's script went as written. */
static void finish(struct t *t)
{
	relay_free(t->relay);
	t->relay = NULL;
	fake_smtp_stop(&t->f);
	if (t->f.err[0] != '\0')
		fail_msg("the fake server: %s", t->f.err);
}

/* Assert one recipient's result: outcome, esc, and text "REMOTE said: said". */
static void check(const struct t *t, const struct relay_rcpt *r, enum outcome o, const char *esc,
		  const char *said)
{
	char want[300];

	assert_int_equal(r->res.outcome, o);
	assert_string_equal(r->res.esc, esc);
	snprintf(want, sizeof(want), "%s said: %s", t->remote, said);
	assert_string_equal(r->res.text, want);
	assert_string_equal(r->remote, t->remote);
}

/* A refused RCPT fails alone; the others get the reply to the final dot.  DSN and
 * SIZE parameters go to a server that offers them. */
static void test_per_recipient_results(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake ESMTP",
				"C:EHLO mx.test.example",
				"S:250-fake\r\n250-PIPELINING\r\n250-DSN\r\n250-SIZE 100000\r\n"
				"250 ENHANCEDSTATUSCODES",
				"C:MAIL FROM:<alice@test.example> SIZE=23 RET=HDRS",
				"C=RCPT TO:<a@example.net> NOTIFY=NEVER",
				"C=RCPT TO:<b@example.net>",
				"C=RCPT TO:<c@example.net>",
				"C=DATA",
				"S:250 2.1.0 ok",
				"S:250 2.1.5 ok",
				"S:550 5.1.1 <b@example.net> no such user",
				"S:250 2.1.5 ok",
				"S:354 go ahead",
				"D",
				"S:250 2.0.0 queued as Q1",
				"C:QUIT",
				"S:221 bye",
				NULL};
	struct relay_rcpt rc[3] = {{.addr = "<a@example.net>", .params = " NOTIFY=NEVER"},
				   {.addr = "<b@example.net>"},
				   {.addr = "<c@example.net>"}};
	struct relay_msg m;

	start(t, script, "0");
	deliver(t, rc, 3, &m);
	check(t, &rc[0], OUTCOME_DELIVERED, "2.0.0", "250 2.0.0 queued as Q1");
	check(t, &rc[1], OUTCOME_PERMFAIL, "5.1.1", "550 5.1.1 <b@example.net> no such user");
	check(t, &rc[2], OUTCOME_DELIVERED, "2.0.0", "250 2.0.0 queued as Q1");
	assert_string_equal(m.tls, "none");
	assert_true(m.dsn);
	assert_int_equal(relay_idle(t->relay), 0); /* reuse_time 0: QUIT at once */
	finish(t);
	assert_string_equal(t->f.data, "Subject: hi\r\n\r\n..hello\r\n.\r\n");
}

/* With reuse_time the connection waits for the next message, which sends RSET first. */
static void test_reuse_with_rset(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake ESMTP",
				"C:EHLO",
				"S:250-fake\r\n250 PIPELINING",
				"C:MAIL FROM:<alice@test.example>",
				"C=RCPT TO:<a@example.net>",
				"C=DATA",
				"S:250 ok",
				"S:250 ok",
				"S:354 go",
				"D",
				"S:250 first",
				"C:RSET",
				"S:250 ok",
				"C:MAIL",
				"C=RCPT TO:<b@example.net>",
				"C=DATA",
				"S:250 ok",
				"S:250 ok",
				"S:354 go",
				"D",
				"S:250 second",
				"C:QUIT",
				"S:221 bye",
				NULL};
	struct relay_rcpt a[1] = {{.addr = "<a@example.net>"}},
			  b[1] = {{.addr = "<b@example.net>"}};
	struct relay_msg m;

	start(t, script, "30s");
	deliver(t, a, 1, &m);
	check(t, &a[0], OUTCOME_DELIVERED, "2.0.0", "250 first");
	assert_false(m.dsn);
	assert_int_equal(relay_idle(t->relay), 1);
	deliver(t, b, 1, &m);
	check(t, &b[0], OUTCOME_DELIVERED, "2.0.0", "250 second");
	assert_int_equal(relay_idle(t->relay), 1);
	finish(t);
	assert_null(strstr(t->f.lines, "RET=")); /* no DSN offered: no DSN parameters */
	assert_null(strstr(strstr(t->f.lines, "EHLO") + 4, "EHLO")); /* one session */
}

/* A message over the server's SIZE fails every recipient 5.3.4 without being sent. */
static void test_size_check(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:220 fake ESMTP", "C:EHLO",    "S:250-fake\r\n250 SIZE 10",
				"C:QUIT",           "S:221 bye", NULL};
	struct relay_rcpt rc[2] = {{.addr = "<a@example.net>"}, {.addr = "<b@example.net>"}};
	struct relay_msg m;
	char want[200];

	start(t, script, "0");
	deliver(t, rc, 2, &m);
	snprintf(want, sizeof(want), "the message (23 octets) is larger than %s takes (10)",
		 t->remote);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(rc[i].res.outcome, OUTCOME_PERMFAIL);
		assert_string_equal(rc[i].res.esc, "5.3.4");
		assert_string_equal(rc[i].res.text, want);
	}
	finish(t);
	assert_string_equal(t->f.lines, "EHLO mx.test.example\nQUIT\n");
}

/* A refused greeting is the host's state: every recipient deferred with its reply. */
static void test_greeting_refused(void **state)
{
	struct t *t = *state;
	const char *script[] = {"S:554 5.3.2 go away", "C:QUIT", "S:221 bye", NULL};
	struct relay_rcpt rc[1] = {{.addr = "<a@example.net>"}};
	struct relay_msg m;
	char want[200];

	start(t, script, "0");
	deliver(t, rc, 1, &m);
	snprintf(want, sizeof(want), "%s: greeting refused: 554 5.3.2 go away", t->remote);
	assert_int_equal(rc[0].res.outcome, OUTCOME_TEMPFAIL);
	assert_string_equal(rc[0].res.esc, "4.4.2");
	assert_string_equal(rc[0].res.text, want);
	finish(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_per_recipient_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse_with_rset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_greeting_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
