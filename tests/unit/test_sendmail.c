/*
 * test_sendmail.c - unit tests for src/client/sendmail.c, sendmail mode:
 * the option table (what is honoured, accepted and ignored, refused), the
 * --server test that sends `hato send` to the SMTP client, the lone-dot
 * end of input with and without -i, the envelope and message made from the
 * input (LF -> CRLF, -t recipients plus arguments, bare names qualified,
 * From: with -F, Bcc removed, errors and their exit codes), the drop file
 * name, and a drop file written into a temporary directory and read back
 * with maildrop.h's parser, with and without the DSN requests of -N, -R
 * and -V.  Also message.c's helpers for it:
 * message_parse_addr_list_in() and message_format_mailbox().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "maildrop.h"
#include "message.h"
#include "sendmail.h"

#define ARGV_MAX 16

/* --- options ------------------------------------------------------------------------ */

/* One row: an argv (NULL-terminated, argv[0] included) and what it gives. */
struct opt_case {
	const char *argv[ARGV_MAX];
	bool mailq;
	int rc;            /* 0, or the exit code */
	const char *error; /* a substring of the error when rc != 0 */
	const char *sender, *fullname, *config;
	bool extract, ignore_dots, verbose, list_queue, help;
	size_t nrcpts;
	const char *rcpt0; /* the first recipient argument */
	unsigned notify;   /* -N */
	enum dsn_ret ret;  /* -R */
	const char *envid; /* -V */
};

static const struct opt_case opt_cases[] = {
	/* recipients and the honoured options */
	{{"sendmail", "bob@example.org"}, .nrcpts = 1, .rcpt0 = "bob@example.org"},
	{{"sendmail", "-t"}, .extract = true},
	{{"sendmail", "-t", "-i"}, .extract = true, .ignore_dots = true},
	{{"sendmail", "-ti"}, .extract = true, .ignore_dots = true},
	{{"sendmail", "-oi", "a@b.c"}, .ignore_dots = true, .nrcpts = 1, .rcpt0 = "a@b.c"},
	{{"sendmail", "-o", "i", "a@b.c"}, .ignore_dots = true, .nrcpts = 1, .rcpt0 = "a@b.c"},
	{{"sendmail", "-f", "me@x.org", "a@b.c"}, .sender = "me@x.org", .nrcpts = 1},
	{{"sendmail", "-fme@x.org", "a@b.c"}, .sender = "me@x.org", .nrcpts = 1},
	{{"sendmail", "-r", "me@x.org", "a@b.c"}, .sender = "me@x.org", .nrcpts = 1},
	{{"sendmail", "-f", "<>", "a@b.c"}, .sender = "<>", .nrcpts = 1},
	{{"sendmail", "-f", "", "a@b.c"}, .sender = "", .nrcpts = 1},
	{{"sendmail", "-F", "Ada Lovelace", "a@b.c"}, .fullname = "Ada Lovelace", .nrcpts = 1},
	{{"sendmail", "-FCronDaemon", "a@b.c"}, .fullname = "CronDaemon", .nrcpts = 1},
	{{"sendmail", "-F", "--not-an-option", "a@b.c"},
	 .fullname = "--not-an-option",
	 .nrcpts = 1},
	{{"sendmail", "-v", "-c", "/etc/hato.conf", "a@b.c"},
	 .verbose = true,
	 .config = "/etc/hato.conf",
	 .nrcpts = 1},
	{{"sendmail", "-tvi", "-fme@x.org"},
	 .extract = true,
	 .verbose = true,
	 .ignore_dots = true,
	 .sender = "me@x.org"},
	/* what real callers pass: cron (Debian, cronie), PHP, mutt */
	{{"sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
	 .fullname = "CronDaemon",
	 .ignore_dots = true,
	 .nrcpts = 1,
	 .rcpt0 = "root"},
	{{"sendmail", "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"},
	 .fullname = "CronDaemon",
	 .ignore_dots = true,
	 .extract = true,
	 .sender = "root"},
	{{"sendmail", "-t", "-i"}, .extract = true, .ignore_dots = true},
	{{"sendmail", "-oem", "-oi", "-N", "failure,delay", "-R", "hdrs", "-B", "8BITMIME", "--",
	  "a@b.c"},
	 .ignore_dots = true,
	 .nrcpts = 1,
	 .rcpt0 = "a@b.c",
	 .notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
	 .ret = DSN_RET_HDRS},
	{{"sendmail", "-bm", "-odb", "-oee", "-om", "-oo", "-m", "-n", "-U", "-V", "id1", "a@b.c"},
	 .nrcpts = 1,
	 .envid = "id1"},
	/* the DSN requests, in sendmail's spellings */
	{{"sendmail", "-Nnever", "-RFULL", "-Vabc+2Bdef", "a@b.c"},
	 .nrcpts = 1,
	 .notify = DSN_NOTIFY_NEVER,
	 .ret = DSN_RET_FULL,
	 .envid = "abc+2Bdef"},
	{{"sendmail", "-N", "SUCCESS,Failure,delay", "-t"},
	 .extract = true,
	 .notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY},
	{{"sendmail", "-N", "never,success", "a@b.c"}, .rc = EX_USAGE, .error = "-N:"},
	{{"sendmail", "-N", "success,success", "a@b.c"}, .rc = EX_USAGE, .error = "-N:"},
	{{"sendmail", "-N", "always", "a@b.c"}, .rc = EX_USAGE, .error = "-N:"},
	{{"sendmail", "-R", "both", "a@b.c"}, .rc = EX_USAGE, .error = "-R:"},
	{{"sendmail", "-V", "+ZZ", "a@b.c"}, .rc = EX_USAGE, .error = "-V:"},
	{{"sendmail", "-V", "two words", "a@b.c"}, .rc = EX_USAGE, .error = "-V:"},
	{{"sendmail", "-V",
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789x",
	  "a@b.c"},
	 .rc = EX_USAGE,
	 .error = "-V:"},
	/* the first non-option ends the options; "--" too */
	{{"sendmail", "a@b.c", "-t"}, .nrcpts = 2, .rcpt0 = "a@b.c"},
	{{"sendmail", "--", "-t"}, .nrcpts = 1, .rcpt0 = "-t"},
	/* the queue */
	{{"sendmail", "-bp"}, .list_queue = true},
	{{"mailq"}, .mailq = true, .list_queue = true},
	{{"mailq", "-c", "/x.conf"}, .mailq = true, .list_queue = true, .config = "/x.conf"},
	{{"sendmail", "--help"}, .help = true},
	/* refused */
	{{"sendmail"}, .rc = EX_USAGE, .error = "no recipients"},
	{{"sendmail", "-i", "-oem"}, .rc = EX_USAGE, .error = "no recipients"},
	{{"sendmail", "-q", "a@b.c"}, .rc = EX_USAGE, .error = "unknown option -q"},
	{{"sendmail", "-tX", "a@b.c"}, .rc = EX_USAGE, .error = "unknown option -X"},
	{{"sendmail", "-bs"}, .rc = EX_USAGE, .error = "unknown option -bs"},
	{{"sendmail", "-bi"}, .rc = EX_USAGE, .error = "unknown option -bi"},
	{{"sendmail", "-oQ/var/spool", "a@b.c"}, .rc = EX_USAGE, .error = "unknown option -oQ/var"},
	{{"sendmail", "--server", "h", "a@b.c"},
	 .rc = EX_USAGE,
	 .error = "unknown option --server"},
	{{"sendmail", "-f"}, .rc = EX_USAGE, .error = "option -f needs a value"},
	{{"sendmail", "-t", "-F"}, .rc = EX_USAGE, .error = "option -F needs a value"},
	{{"sendmail", "-F", "Evil\r\nBcc: x@y.z", "a@b.c"},
	 .rc = EX_USAGE,
	 .error = "-F: control characters"},
	{{"sendmail", "-bp", "a@b.c"}, .rc = EX_USAGE, .error = "takes no recipients"},
	{{"mailq", "a@b.c"}, .mailq = true, .rc = EX_USAGE, .error = "takes no recipients"},
};

/* Compare two optional strings. */
static void assert_opt_string(const char *got, const char *want, size_t row)
{
	if (want == NULL && got != NULL)
		fail_msg("row %zu: \"%s\" where nothing was wanted", row, got);
	if (want != NULL && (got == NULL || strcmp(got, want) != 0))
		fail_msg("row %zu: \"%s\", wanted \"%s\"", row, got != NULL ? got : "(null)", want);
}

static void test_parse_args_table(void **state)
{
	(void)state;
	for (size_t row = 0; row < sizeof(opt_cases) / sizeof(opt_cases[0]); row++) {
		const struct opt_case *t = &opt_cases[row];
		struct sendmail_opts o;
		char err[256] = "";
		int argc = 0, rc;

		while (t->argv[argc] != NULL)
			argc++;
		rc = sendmail_parse_args(argc, (char *const *)t->argv, t->mailq, &o, err,
					 sizeof(err));
		if (rc != t->rc)
			fail_msg("row %zu (%s %s): rc %d, wanted %d (%s)", row, t->argv[0],
				 t->argv[1] != NULL ? t->argv[1] : "", rc, t->rc, err);
		if (rc != 0) {
			if (strstr(err, t->error) == NULL)
				fail_msg("row %zu: error \"%s\" does not say \"%s\"", row, err,
					 t->error);
			continue;
		}
		assert_opt_string(o.sender, t->sender, row);
		assert_opt_string(o.fullname, t->fullname, row);
		assert_opt_string(o.config, t->config, row);
		if (o.extract != t->extract || o.ignore_dots != t->ignore_dots ||
		    o.verbose != t->verbose || o.list_queue != t->list_queue || o.help != t->help)
			fail_msg("row %zu: flags t%d i%d v%d bp%d help%d", row, o.extract,
				 o.ignore_dots, o.verbose, o.list_queue, o.help);
		if (o.help)
			continue;
		if (o.nrcpts != t->nrcpts)
			fail_msg("row %zu: %zu recipients, wanted %zu", row, o.nrcpts, t->nrcpts);
		if (t->rcpt0 != NULL)
			assert_string_equal(o.rcpts[0], t->rcpt0);
		if (o.notify != t->notify || o.ret != t->ret)
			fail_msg("row %zu: notify %u ret %d", row, o.notify, (int)o.ret);
		assert_opt_string(o.envid, t->envid, row);
	}
}

static void test_wants_server(void **state)
{
	static const struct {
		const char *argv[ARGV_MAX];
		bool want;
	} cases[] = {
		{{"send", "--server", "h:587", "a@b.c"}, true},
		{{"send", "a@b.c", "--server=h"}, true}, /* getopt_long looks past recipients */
		{{"send", "-t", "--tls", "none"}, true},
		{{"send", "-t", "-i"}, false},
		{{"send", "a@b.c"}, false},
		{{"send", "--help"}, false},
		{{"send", "-F", "--x", "a@b.c"}, false}, /* a value, not an option */
		{{"send", "-F--x", "a@b.c"}, false},
		{{"send", "--", "--server"}, false},
		{{"send"}, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int argc = 0;

		while (cases[i].argv[argc] != NULL)
			argc++;
		if (sendmail_wants_server(argc, (char *const *)cases[i].argv) != cases[i].want)
			fail_msg("case %zu: wanted %d", i, cases[i].want);
	}
}

/* --- the lone dot ------------------------------------------------------------------- */

/* Where sendmail_dot_end finds the end in all of s at once, or -1. */
static long dot_at(const char *s, bool eof)
{
	size_t pos = 0, end = 0;

	return sendmail_dot_end(s, strlen(s), &pos, eof, &end) ? (long)end : -1;
}

static void test_dot_end(void **state)
{
	(void)state;
	assert_int_equal(dot_at("a\n.\nb\n", false), 2);
	assert_int_equal(dot_at("a\r\n.\r\nb\r\n", false), 3);
	assert_int_equal(dot_at(".\n", false), 0);
	assert_int_equal(dot_at("a\n.", true), 2);   /* unended, at the end of input */
	assert_int_equal(dot_at("a\n.", false), -1); /* might still become ".x" */
	assert_int_equal(dot_at("a\n..\n", true), -1);
	assert_int_equal(dot_at("a\n. \n", true), -1);
	assert_int_equal(dot_at("a\n .\n", true), -1);
	assert_int_equal(dot_at("a.\n", true), -1);
	assert_int_equal(dot_at("a\n.\r", true), -1); /* a bare CR: not the dot line */
	assert_int_equal(dot_at("a\n.x\n", true), -1);
	assert_int_equal(dot_at("", true), -1);
}

/* Fed in pieces, as read() returns them: *pos carries over. */
static void test_dot_end_incremental(void **state)
{
	const char *in = "Subject: x\n\nline\n.\nafter\n";
	size_t pos = 0, end = 0, len;

	(void)state;
	for (len = 0; len <= strlen(in); len++) {
		if (sendmail_dot_end(in, len, &pos, false, &end))
			break;
		assert_true(pos <= len);
	}
	assert_int_equal(len, strlen("Subject: x\n\nline\n.\n"));
	assert_int_equal(end, strlen("Subject: x\n\nline\n"));
}

/* Read s through a pipe as standard input would be read. */
static int read_piped(const char *s, bool ignore_dots, uint64_t max, struct strbuf *raw)
{
	int p[2], rc;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], s, strlen(s)), (ssize_t)strlen(s));
	close(p[1]);
	strbuf_init(raw);
	rc = sendmail_read_message(p[0], ignore_dots, max, raw);
	close(p[0]);
	return rc;
}

static void test_read_lone_dot(void **state)
{
	const char *in = "Subject: x\n\nline\n.\nafter the dot\n";
	struct strbuf raw;

	(void)state;
	/* without -i the dot ends the message */
	assert_int_equal(read_piped(in, false, 1000, &raw), 0);
	assert_string_equal(raw.s, "Subject: x\n\nline\n");
	strbuf_free(&raw);
	/* with -i it is text */
	assert_int_equal(read_piped(in, true, 1000, &raw), 0);
	assert_string_equal(raw.s, in);
	strbuf_free(&raw);
	/* "..", and a dot at the end of input without a newline */
	assert_int_equal(read_piped("a\n..\nb\n.", false, 1000, &raw), 0);
	assert_string_equal(raw.s, "a\n..\nb\n");
	strbuf_free(&raw);
	/* CRLF input */
	assert_int_equal(read_piped("a\r\n.\r\nb\r\n", false, 1000, &raw), 0);
	assert_string_equal(raw.s, "a\r\n");
	strbuf_free(&raw);
	/* the size limit counts what is kept */
	assert_int_equal(read_piped("0123456789\n.\nmore text past the limit\n", false, 11, &raw),
			 0);
	strbuf_free(&raw);
	assert_int_equal(read_piped("0123456789\n", true, 10, &raw), EX_DATAERR);
	strbuf_free(&raw);
}

/* --- the message -------------------------------------------------------------------- */

static const struct sendmail_env test_env = {
	.user = "alice",
	.host = "host.example",
	.date = "Mon, 01 Jan 2024 00:00:00 +0000",
	.msgid = "<id@host.example>",
};

/* Parse argv (NULL-terminated) and prepare in; the exit code. */
static int prepare_with(const char *const *argv, const char *in, struct sendmail_msg *m, char *err,
			size_t errsize)
{
	struct sendmail_opts o;
	int argc = 0, rc;

	while (argv[argc] != NULL)
		argc++;
	rc = sendmail_parse_args(argc, (char *const *)argv, false, &o, err, errsize);
	assert_int_equal(rc, 0);
	sendmail_msg_init(m);
	return sendmail_prepare(&o, &test_env, in, strlen(in), m, err, errsize);
}

/* Assert the recipients of m: the NULL-terminated list that follows. */
static void check_rcpts(const struct sendmail_msg *m, ...)
{
	va_list ap;
	const char *want;
	size_t i = 0;

	va_start(ap, m);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (i >= m->rcpts.n)
			fail_msg("only %zu recipients, wanted %s", m->rcpts.n, want);
		assert_string_equal(m->rcpts.v[i], want);
		i++;
	}
	va_end(ap);
	assert_int_equal(m->rcpts.n, i);
}

static void test_prepare_crlf_and_fields(void **state)
{
	const char *argv[] = {"sendmail", "bob@example.org", NULL};
	struct sendmail_msg m;
	char err[256];

	(void)state;
	assert_int_equal(
		prepare_with(argv, "Subject: hi\n\nline 1\r\n.\n..x\nlast", &m, err, sizeof(err)),
		0);
	assert_string_equal(m.sender, "<alice@host.example>");
	check_rcpts(&m, "bob@example.org", NULL);
	/* CRLF everywhere, the dots as they were (no stuffing), fields added */
	assert_string_equal(m.data.s, "Subject: hi\r\n"
				      "From: alice@host.example\r\n"
				      "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
				      "Message-ID: <id@host.example>\r\n"
				      "\r\n"
				      "line 1\r\n"
				      ".\r\n"
				      "..x\r\n"
				      "last\r\n");
	sendmail_msg_free(&m);
}

static void test_prepare_keeps_present_fields(void **state)
{
	const char *argv[] = {"sendmail", "-F", "Not Used", "bob@example.org", NULL};
	const char *in = "From: Me <me@example.org>\nDate: Tue, 02 Jan 2024 00:00:00 +0000\n"
			 "Message-ID: <mine@example.org>\n\nbody\n";
	struct sendmail_msg m;
	char err[256];

	(void)state;
	assert_int_equal(prepare_with(argv, in, &m, err, sizeof(err)), 0);
	assert_string_equal(m.data.s, "From: Me <me@example.org>\r\n"
				      "Date: Tue, 02 Jan 2024 00:00:00 +0000\r\n"
				      "Message-ID: <mine@example.org>\r\n\r\nbody\r\n");
	sendmail_msg_free(&m);
}

static void test_prepare_extract_plus_arguments(void **state)
{
	const char *argv[] = {"sendmail", "-t", "extra@example.com", "Carol <carol@example.org>",
			      NULL};
	const char *in = "To: Bob <bob@example.org>, carol@example.org\n"
			 "Cc: dave@example.net\n"
			 "Bcc: secret@example.net,\n  other@example.net\n"
			 "Subject: s\n\nbody\n";
	struct sendmail_msg m;
	char err[256];

	(void)state;
	assert_int_equal(prepare_with(argv, in, &m, err, sizeof(err)), 0);
	/* the arguments first, then the header's, each once */
	check_rcpts(&m, "extra@example.com", "carol@example.org", "bob@example.org",
		    "dave@example.net", "secret@example.net", "other@example.net", NULL);
	assert_null(strstr(m.data.s, "Bcc"));
	assert_null(strstr(m.data.s, "secret"));
	assert_null(strstr(m.data.s, "other@"));
	assert_non_null(strstr(m.data.s, "Cc: dave@example.net\r\nSubject: s\r\n"));
	sendmail_msg_free(&m);
}

static void test_prepare_bcc_removed_without_t(void **state)
{
	const char *argv[] = {"sendmail", "bob@example.org", NULL};
	struct sendmail_msg m;
	char err[256];

	(void)state;
	assert_int_equal(prepare_with(argv, "To: x@example.org\nBcc: y@example.org\n\nb\n", &m, err,
				      sizeof(err)),
			 0);
	check_rcpts(&m, "bob@example.org", NULL); /* without -t the header names nobody */
	assert_null(strstr(m.data.s, "Bcc"));
	sendmail_msg_free(&m);
}

static void test_prepare_bare_names(void **state)
{
	const char *argv[] = {"sendmail", "-t", "-f", "daemon", "root", "<postmaster>", NULL};
	struct sendmail_msg m;
	char err[256];

	(void)state;
	assert_int_equal(
		prepare_with(argv, "To: www-data, Op <operator>\n\nb\n", &m, err, sizeof(err)), 0);
	assert_string_equal(m.sender, "<daemon@host.example>");
	check_rcpts(&m, "root@host.example", "postmaster@host.example", "www-data@host.example",
		    "operator@host.example", NULL);
	/* the header is left as written */
	assert_non_null(strstr(m.data.s, "To: www-data, Op <operator>\r\n"));
	assert_non_null(strstr(m.data.s, "From: daemon@host.example\r\n"));
	sendmail_msg_free(&m);
}

static void test_prepare_from_with_fullname(void **state)
{
	static const struct {
		const char *name, *from;
	} cases[] = {
		{"CronDaemon", "From: CronDaemon <alice@host.example>\r\n"},
		{"Ada Lovelace", "From: Ada Lovelace <alice@host.example>\r\n"},
		{"Smith, J. \"Jo\"", "From: \"Smith, J. \\\"Jo\\\"\" <alice@host.example>\r\n"},
		{"Jürgen", "From: =?UTF-8?B?SsO8cmdlbg==?= <alice@host.example>\r\n"},
		{"  ", "From: alice@host.example\r\n"},
	};
	struct sendmail_msg m;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = {"sendmail", "-F", cases[i].name, "bob@example.org", NULL};

		assert_int_equal(prepare_with(argv, "Subject: s\n\nb\n", &m, err, sizeof(err)), 0);
		if (strstr(m.data.s, cases[i].from) == NULL)
			fail_msg("-F \"%s\": no \"%s\" in:\n%s", cases[i].name, cases[i].from,
				 m.data.s);
		sendmail_msg_free(&m);
	}
	/* -f gives the address of the From:, the null sender does not */
	{
		const char *argv[] = {"sendmail",        "-F",    "Ops", "-f",
				      "ops@example.org", "b@c.d", NULL};

		assert_int_equal(prepare_with(argv, "\n", &m, err, sizeof(err)), 0);
		assert_string_equal(m.sender, "<ops@example.org>");
		assert_non_null(strstr(m.data.s, "From: Ops <ops@example.org>\r\n"));
		sendmail_msg_free(&m);
	}
	{
		const char *argv[] = {"sendmail", "-f", "<>", "b@c.d", NULL};

		assert_int_equal(prepare_with(argv, "\n", &m, err, sizeof(err)), 0);
		assert_string_equal(m.sender, "<>");
		assert_non_null(strstr(m.data.s, "From: alice@host.example\r\n"));
		sendmail_msg_free(&m);
	}
}

static void test_prepare_mbox_from_line(void **state)
{
	const char *argv[] = {"sendmail", "bob@example.org", NULL};
	struct sendmail_msg m;
	char err[256];

	(void)state;
	assert_int_equal(
		prepare_with(argv, "From alice Mon Jan  1 00:00:00 2024\nSubject: s\n\nFrom me\n",
			     &m, err, sizeof(err)),
		0);
	assert_true(strncmp(m.data.s, "Subject: s\r\n", 12) == 0);
	assert_non_null(strstr(m.data.s, "\r\n\r\nFrom me\r\n"));
	sendmail_msg_free(&m);
}

/* Prepare; assert the exit code and that err says why. */
static void check_refused(const char *const *argv, const char *in, int want_rc, const char *why)
{
	struct sendmail_msg m;
	char err[256] = "";
	int rc = prepare_with(argv, in, &m, err, sizeof(err));

	if (rc != want_rc)
		fail_msg("rc %d, wanted %d (%s)", rc, want_rc, err);
	if (strstr(err, why) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, why);
	sendmail_msg_free(&m);
}

static void test_prepare_refused(void **state)
{
	const char *bad_rcpt[] = {"sendmail", "ok@example.org", "bad@@example.org", NULL};
	const char *bad_sender[] = {"sendmail", "-f", "no spaces@x", "ok@example.org", NULL};
	const char *extract[] = {"sendmail", "-t", NULL};
	const char *plain[] = {"sendmail", "ok@example.org", NULL};

	(void)state;
	check_refused(bad_rcpt, "\n", EX_DATAERR, "recipient \"bad@@example.org\"");
	check_refused(bad_sender, "\n", EX_DATAERR, "-f \"no spaces@x\"");
	check_refused(extract, "Subject: nobody\n\nb\n", EX_USAGE, "no recipients");
	check_refused(extract, "To: undisclosed-recipients:;\n\nb\n", EX_USAGE, "no recipients");
	check_refused(extract, "To: <a@b\n\nb\n", EX_DATAERR, "To: ");
	check_refused(plain, "Subject: x\r\n\r\nbare\rCR\r\n", EX_DATAERR, "line 3: bare CR");
}

static void test_prepare_nul_refused(void **state)
{
	const char *argv[] = {"sendmail", "ok@example.org", NULL};
	const char in[] = "Subject: x\n\na\0b\n";
	struct sendmail_opts o;
	struct sendmail_msg m;
	char err[256] = "";

	(void)state;
	assert_int_equal(sendmail_parse_args(2, (char *const *)argv, false, &o, err, sizeof(err)),
			 0);
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_prepare(&o, &test_env, in, sizeof(in) - 1, &m, err, sizeof(err)),
			 EX_DATAERR);
	assert_non_null(strstr(err, "NUL"));
	sendmail_msg_free(&m);
}

static void test_prepare_no_user(void **state)
{
	const char *argv[] = {"sendmail", "ok@example.org", NULL};
	struct sendmail_env env = test_env;
	struct sendmail_opts o;
	struct sendmail_msg m;
	char err[256] = "";

	(void)state;
	env.user = NULL;
	assert_int_equal(sendmail_parse_args(2, (char *const *)argv, false, &o, err, sizeof(err)),
			 0);
	sendmail_msg_init(&m);
	assert_int_equal(sendmail_prepare(&o, &env, "\n", 1, &m, err, sizeof(err)), EX_USAGE);
	assert_non_null(strstr(err, "give -f ADDR"));
	sendmail_msg_free(&m);
}

/* --- message.c helpers -------------------------------------------------------------- */

static void test_addr_list_in(void **state)
{
	struct message_addrs a;
	char err[256];
	const char *v = "root, Ops <ops>, x@Example.ORG, \"q d\"";

	(void)state;
	message_addrs_init(&a);
	assert_true(message_parse_addr_list_in(v, strlen(v), "h.example", &a, err, sizeof(err)));
	assert_int_equal(a.n, 4);
	assert_string_equal(a.v[0], "root@h.example");
	assert_string_equal(a.v[1], "ops@h.example");
	assert_string_equal(a.v[2], "x@Example.ORG");
	assert_string_equal(a.v[3], "\"q d\"@h.example");
	message_addrs_free(&a);
	/* a display name alone is still no address; without a domain bare names are refused */
	assert_false(
		message_parse_addr_list_in("John Smith", 10, "h.example", &a, err, sizeof(err)));
	message_addrs_free(&a);
	assert_false(message_parse_addr_list_in("root", 4, NULL, &a, err, sizeof(err)));
	message_addrs_free(&a);
	assert_false(message_parse_addr_list_in("<>", 2, "h.example", &a, err, sizeof(err)));
	message_addrs_free(&a);
}

static void test_format_mailbox(void **state)
{
	struct strbuf b;
	/* 40 two-octet characters: two encoded-words, split between characters */
	char long_name[81];

	(void)state;
	strbuf_init(&b);
	assert_true(message_format_mailbox("  Ada  ", "a@b.c", &b));
	assert_string_equal(b.s, "Ada <a@b.c>");
	b.len = 0;
	assert_true(message_format_mailbox("a\\b", "a@b.c", &b));
	assert_string_equal(b.s, "\"a\\\\b\" <a@b.c>");
	b.len = 0;
	assert_false(message_format_mailbox("a\nBcc: x@y", "a@b.c", &b));
	assert_false(message_format_mailbox("tab\there", "a@b.c", &b));
	assert_int_equal(b.len, 0);
	for (size_t i = 0; i < 40; i++)
		memcpy(long_name + 2 * i, "\xc3\xa9", 2); /* é */
	long_name[80] = '\0';
	assert_true(message_format_mailbox(long_name, "a@b.c", &b));
	/* 22 characters (44 octets) in the first word, 18 in the second */
	assert_non_null(strstr(b.s, "?= =?UTF-8?B?"));
	assert_true(strchr(b.s, ' ') - b.s <= 75);
	strbuf_free(&b);
}

/* --- the drop file ------------------------------------------------------------------ */

static void test_drop_name(void **state)
{
	char buf[64];

	(void)state;
	assert_true(
		sendmail_drop_name(0x5f5e1000ull, 4242, 0x0123456789abcdefull, buf, sizeof(buf)));
	assert_string_equal(buf, "000000005f5e1000-4242-0123456789abcdef");
	assert_false(sendmail_drop_name(1, 1, 1, buf, 20));
}

/* The names in dir (at most 8), sorted by nothing: how many. */
static size_t list_dir(const char *dir, char names[][256])
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < 8)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			snprintf(names[n++], 256, "%s", de->d_name);
	closedir(d);
	return n;
}

static void test_drop_written_and_read_back(void **state)
{
	const char *argv[] = {"sendmail", "-t", "bob@example.org", NULL};
	char dir[] = "/tmp/test_sendmail.XXXXXX", names[8][256], path[4096], err[256];
	struct conf c = {0};
	struct sendmail_msg m;
	struct maildrop_header h;
	struct stat st;
	FILE *f;
	char *buf;
	long size;

	(void)state;
	assert_non_null(mkdtemp(dir));
	c.maildrop_dir = dir;
	c.maildrop_group = "hato-test-no-such-group";
	assert_int_equal(
		prepare_with(argv, "To: carol@example.org\n\nhello\n", &m, err, sizeof(err)), 0);
	umask(077); /* the file is 0640 anyway: hatod reads it by its group */
	assert_int_equal(sendmail_drop(&c, &m, path, sizeof(path)), 0);
	umask(022);
	/* one file, UNIQUE.drop, no temporary left */
	assert_int_equal(list_dir(dir, names), 1);
	assert_non_null(strstr(path, names[0]));
	assert_true(names[0][0] != '.');
	assert_string_equal(names[0] + strlen(names[0]) - strlen(MAILDROP_SUFFIX), MAILDROP_SUFFIX);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* what hatod will read */
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc((size_t)size + 1);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	if (!maildrop_parse_header(buf, (size_t)size, &h, err, sizeof(err)))
		fail_msg("drop header refused: %s", err);
	assert_string_equal(h.sender, "<alice@host.example>");
	assert_int_equal(h.nrcpts, 2);
	assert_string_equal(h.rcpts[0], "<bob@example.org>");
	assert_string_equal(h.rcpts[1], "<carol@example.org>");
	assert_int_equal((size_t)size - h.length, m.data.len);
	assert_memory_equal(buf + h.length, m.data.s, m.data.len);
	maildrop_header_free(&h);
	free(buf);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	sendmail_msg_free(&m);
}

/* -N, -R and -V go into the drop file's header and read back. */
static void test_drop_with_dsn(void **state)
{
	const char *argv[] = {"sendmail", "-N",        "failure,success", "-R", "hdrs",
			      "-V",       "abc+2Bdef", "bob@example.org", NULL};
	static const char head[] = "hato-drop: 1\n"
				   "sender: <alice@host.example>\n"
				   "ret: hdrs\n"
				   "envid: abc+2Bdef\n"
				   "notify: success,failure\n"
				   "rcpt: <bob@example.org>\n"
				   "\n";
	char dir[] = "/tmp/test_sendmail.XXXXXX", path[4096], err[256], buf[4096];
	struct conf c = {0};
	struct sendmail_msg m;
	struct maildrop_header h;
	FILE *f;
	size_t size;

	(void)state;
	assert_non_null(mkdtemp(dir));
	c.maildrop_dir = dir;
	c.maildrop_group = "hato-test-no-such-group";
	assert_int_equal(prepare_with(argv, "Subject: dsn\n\nhello\n", &m, err, sizeof(err)), 0);
	assert_int_equal(sendmail_drop(&c, &m, path, sizeof(path)), 0);
	f = fopen(path, "rb");
	assert_non_null(f);
	size = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_true(size > strlen(head));
	assert_memory_equal(buf, head, strlen(head));
	if (!maildrop_parse_header(buf, size, &h, err, sizeof(err)))
		fail_msg("drop header refused: %s", err);
	assert_int_equal(h.ret, DSN_RET_HDRS);
	assert_string_equal(h.envid, "abc+2Bdef");
	assert_int_equal(h.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE);
	assert_int_equal(h.length, strlen(head));
	maildrop_header_free(&h);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	sendmail_msg_free(&m);
}

/* A drop file without DSN lines has none; bad or repeated ones are refused. */
static void test_drop_header_dsn_lines(void **state)
{
	static const char *const bad[] = {
		"ret: both\n",
		"ret: HDRS\n",
		"ret: full\nret: full\n",
		"envid: +ZZ\n",
		"envid: a\nenvid: b\n",
		"notify: never,success\n",
		"notify: sometimes\n",
		"notify: delay\nnotify: delay\n",
	};
	static const char plain[] = "hato-drop: 1\nsender: <>\nrcpt: <b@x.example>\n\nbody";
	struct maildrop_header h;
	char text[256], err[256];

	(void)state;
	assert_true(maildrop_parse_header(plain, strlen(plain), &h, err, sizeof(err)));
	assert_int_equal(h.ret, DSN_RET_UNSPEC);
	assert_null(h.envid);
	assert_int_equal(h.notify, 0);
	maildrop_header_free(&h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "hato-drop: 1\nsender: <>\n%srcpt: <b@x.example>\n\n",
			 bad[i]);
		if (maildrop_parse_header(text, strlen(text), &h, err, sizeof(err)))
			fail_msg("accepted: %s", bad[i]);
		assert_null(h.envid);
	}
}

static void test_drop_no_directory(void **state)
{
	const char *argv[] = {"sendmail", "bob@example.org", NULL};
	char dir[] = "/tmp/test_sendmail.XXXXXX", sub[64], names[8][256], path[4096] = "", err[256];
	struct conf c = {0};
	struct sendmail_msg m;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/maildrop", dir);
	c.maildrop_dir = sub;
	c.maildrop_group = "hatodrop";
	assert_int_equal(prepare_with(argv, "x\n", &m, err, sizeof(err)), 0);
	assert_int_equal(sendmail_drop(&c, &m, path, sizeof(path)), EX_TEMPFAIL);
	assert_int_equal(list_dir(dir, names), 0);
	/* not writable: only for a user that is not root */
	if (geteuid() != 0) {
		assert_int_equal(mkdir(sub, 0500), 0);
		assert_int_equal(sendmail_drop(&c, &m, path, sizeof(path)), EX_CANTCREAT);
		assert_int_equal(list_dir(sub, names), 0);
		assert_int_equal(rmdir(sub), 0);
	}
	assert_int_equal(rmdir(dir), 0);
	sendmail_msg_free(&m);
}

static void test_drop_too_many_recipients(void **state)
{
	char addr[128], path[4096];
	struct conf c = {.maildrop_dir = "/nonexistent", .maildrop_group = "hatodrop"};
	struct sendmail_msg m;

	(void)state;
	sendmail_msg_init(&m);
	strcpy(m.sender, "<a@b.c>");
	for (int i = 0; i < 2000; i++) {
		snprintf(addr, sizeof(addr), "recipient-number-%04d-with-a-long-name@example.org",
			 i);
		message_addrs_add(&m.rcpts, addr);
	}
	/* refused before anything is created, rather than a file hatod cannot read */
	assert_int_equal(sendmail_drop(&c, &m, path, sizeof(path)), EX_DATAERR);
	sendmail_msg_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_args_table),
		cmocka_unit_test(test_wants_server),
		cmocka_unit_test(test_dot_end),
		cmocka_unit_test(test_dot_end_incremental),
		cmocka_unit_test(test_read_lone_dot),
		cmocka_unit_test(test_prepare_crlf_and_fields),
		cmocka_unit_test(test_prepare_keeps_present_fields),
		cmocka_unit_test(test_prepare_extract_plus_arguments),
		cmocka_unit_test(test_prepare_bcc_removed_without_t),
		cmocka_unit_test(test_prepare_bare_names),
		cmocka_unit_test(test_prepare_from_with_fullname),
		cmocka_unit_test(test_prepare_mbox_from_line),
		cmocka_unit_test(test_prepare_refused),
		cmocka_unit_test(test_prepare_nul_refused),
		cmocka_unit_test(test_prepare_no_user),
		cmocka_unit_test(test_addr_list_in),
		cmocka_unit_test(test_format_mailbox),
		cmocka_unit_test(test_drop_name),
		cmocka_unit_test(test_drop_written_and_read_back),
		cmocka_unit_test(test_drop_with_dsn),
		cmocka_unit_test(test_drop_header_dsn_lines),
		cmocka_unit_test(test_drop_no_directory),
		cmocka_unit_test(test_drop_too_many_recipients),
	};

	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
