/*
 * submit.c - `hato send` (submit.h): options, the envelope, the password,
 * standard input or a batch directory, and the exit code.
 *
 * Everything that can be refused without the server is refused before
 * connecting: bad options, bad addresses, a message with a bare CR, no
 * recipients, a password that cannot be had.  The password is asked for
 * (or read) before the message, so that nothing waits on the terminal with
 * a connection open; it is wiped from memory at the end.
 *
 * The envelope sender is -f ADDR ("" or "<>" for the null sender), by
 * default the invoking user at this machine's FQDN (gethostname(), then
 * getaddrinfo() with AI_CANONNAME; the host name as it is when that
 * fails).  The same address is the From: added to a message without one
 * (the null sender never is).  Recipients are the arguments, each an
 * address list ("a@b, Name <c@d>"), plus with -t those of To, Cc and Bcc.
 *
 * --batch DIR sends each regular file in DIR whose name does not start
 * with "." (editors' and other programs' temporary files), in the byte
 * order of the names, over one connection with RSET between messages.  A
 * file that cannot be read or prepared, or that the server refuses, is
 * reported with its name and the rest go on; a lost connection or a
 * timeout stops the batch.
 */
#include "submit.h"
#include "secret.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "durable.h"
#include "mail_date.h"
#include "mail_id.h"
#include "message.h"
#include "strbuf.h"
#include "submit_session.h"
#include "util.h"

#define SEND_MESSAGE_MAX (256u * 1024 * 1024) /* octets read for one message */
#define SEND_PASSWORD_MAX 1024                /* octets, as `hato user` accepts */
#define SEND_TIMEOUT_CONNECT 30               /* seconds, per address */
#define SEND_TIMEOUT_GREETING 30
#define SEND_TIMEOUT_COMMAND 60
#define SEND_TIMEOUT_DATA_END 600 /* RFC 5321 §4.5.3.2.6: the server may be slow to commit */
#define SEND_TIMEOUT_MAX 86400
#define SEND_PORT_STARTTLS 587 /* RFC 6409 */
#define SEND_PORT_IMPLICIT 465 /* RFC 8314 */
#define SEND_PORT_NONE 25

#define SEND_USAGE                                                                                 \
	"usage: hato send --server HOST[:PORT] [--tls starttls|implicit|none] [--user NAME]\n"     \
	"                 [--password-file FILE] [--insecure] [-f ADDR] [-t] [-v]\n"               \
	"                 [--batch DIR] [--timeout SECONDS] [RECIPIENT...]\n"

/* The options, and what follows from them. */
struct send_args {
	char host[256]; /* from --server, without brackets */
	unsigned port;  /* 0 until chosen */
	enum submit_tls tls;
	const char *user; /* --user */
	const char *password_file;
	const char *batch; /* --batch DIR */
	bool insecure, extract, verbose;
	unsigned timeout;                    /* --timeout, 0 for the defaults */
	const char *from_arg;                /* -f as given, NULL when not */
	struct message_addrs rcpts;          /* from the arguments */
	char fqdn[256];                      /* this machine */
	char sender[ADDR_PATH_MAX + 1];      /* envelope sender, "" for <> */
	char header_from[ADDR_PATH_MAX + 1]; /* From: for a message without one */
};

/* Long options that have no short form. */
enum {
	OPT_SERVER = 256,
	OPT_TLS,
	OPT_USER,
	OPT_PASSWORD_FILE,
	OPT_INSECURE,
	OPT_BATCH,
	OPT_TIMEOUT,
	OPT_HELP,
};

/* A usage error: one line, the usage, EX_USAGE. */
static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("hato: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(SEND_USAGE, stderr);
	return EX_USAGE;
}

/* Full help, for --help. */
static void send_help(void)
{
	printf(SEND_USAGE
	       "Submit the message on standard input to a mail server.\n"
	       "  --server HOST[:PORT]  the server; the port defaults to 587 (starttls),\n"
	       "                        465 (implicit) or 25 (none)\n"
	       "  --tls MODE            starttls (default), implicit, or none (no AUTH then)\n"
	       "  --user NAME           log in (AUTH PLAIN, or LOGIN) as NAME\n"
	       "  --password-file FILE  its password is the first line of FILE; otherwise\n"
	       "                        $HATO_PASSWORD, otherwise asked on the terminal\n"
	       "  --insecure            do not verify the server's certificate\n"
	       "  -f ADDR               envelope sender and From: (default USER@FQDN)\n"
	       "  -t                    also send to the To, Cc and Bcc addresses\n"
	       "  -v                    show the dialogue on stderr (credentials hidden)\n"
	       "  --batch DIR           send every file in DIR, on one connection\n"
	       "  --timeout SECONDS     wait at most this long for each step\n"
	       "Bcc: is removed; From:, Date: and Message-ID: are added when missing.\n");
}

/* "HOST", "HOST:PORT", "[V6ADDR]:PORT", "[V6ADDR]" or a bare IPv6 address. */
static bool parse_server(const char *arg, struct send_args *a)
{
	const char *colon = strrchr(arg, ':'), *port = NULL;
	size_t hlen;
	uint64_t v;

	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return false;
		arg++;
		hlen = (size_t)(close - arg);
		port = close[1] == ':' ? close + 2 : NULL;
	} else if (colon != NULL && strchr(arg, ':') == colon) {
		hlen = (size_t)(colon - arg);
		port = colon + 1;
	} else {
		hlen = strlen(arg); /* a name, or an IPv6 address without a port */
	}
	if (hlen == 0 || hlen >= sizeof(a->host))
		return false;
	memcpy(a->host, arg, hlen);
	a->host[hlen] = '\0';
	if (strpbrk(a->host, " \t\r\n[]/") != NULL)
		return false;
	if (port != NULL) {
		if (!parse_u64(port, 1, 65535, &v))
			return false;
		a->port = (unsigned)v;
	}
	return true;
}

/* This machine's fully qualified name: the canonical name of the host
 * name, or the host name itself. */
static void local_fqdn(char *buf, size_t size)
{
	struct addrinfo hints = {.ai_flags = AI_CANONNAME, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char host[256];

	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		strcpy_bounded(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if (getaddrinfo(host, NULL, &hints, &res) == 0 && res != NULL &&
	    res->ai_canonname != NULL && res->ai_canonname[0] != '\0' &&
	    strcpy_bounded(buf, res->ai_canonname, size)) {
		freeaddrinfo(res);
		return;
	}
	if (res != NULL)
		freeaddrinfo(res);
	strcpy_bounded(buf, host, size);
}

/* Parse one address (an address list with exactly one member) into out. */
static bool one_address(const char *text, char *out, size_t size, char *err, size_t errsize)
{
	struct message_addrs l;
	bool ok;

	message_addrs_init(&l);
	ok = message_parse_addr_list(text, strlen(text), &l, err, errsize);
	if (ok && l.n != 1) {
		snprintf(err, errsize, "not one address");
		ok = false;
	}
	if (ok && !strcpy_bounded(out, l.v[0], size)) {
		snprintf(err, errsize, "too long");
		ok = false;
	}
	message_addrs_free(&l);
	return ok;
}

/* The envelope sender and the From: for messages without one. */
static int choose_sender(struct send_args *a)
{
	char dflt[ADDR_PATH_MAX + 1], err[256], text[600];
	const struct passwd *pw = getpwuid(getuid());
	const char *user = pw != NULL ? pw->pw_name : getenv("LOGNAME");
	bool have_dflt = false;

	if (user != NULL && user[0] != '\0' &&
	    xsnprintf_ok(text, sizeof(text), "%s@%s", user, a->fqdn))
		have_dflt = one_address(text, dflt, sizeof(dflt), err, sizeof(err));
	if (a->from_arg != NULL && (a->from_arg[0] == '\0' || strcmp(a->from_arg, "<>") == 0)) {
		a->sender[0] = '\0'; /* the null sender */
	} else if (a->from_arg != NULL) {
		if (!one_address(a->from_arg, a->sender, sizeof(a->sender), err, sizeof(err)))
			return usage_error("-f %s: %s", a->from_arg, err);
		strcpy_bounded(a->header_from, a->sender, sizeof(a->header_from));
		return 0;
	} else if (have_dflt) {
		strcpy_bounded(a->sender, dflt, sizeof(a->sender));
	}
	if (!have_dflt)
		return usage_error("cannot make an address of user \"%s\" at %s: give -f ADDR",
				   user != NULL ? user : "?", a->fqdn);
	strcpy_bounded(a->header_from, dflt, sizeof(a->header_from));
	return 0;
}

/* The option values, checked.  0 or EX_USAGE (printed). */
static int parse_args(int argc, char **argv, struct send_args *a)
{
	static const struct option longopts[] = {
		{"server", required_argument, NULL, OPT_SERVER},
		{"tls", required_argument, NULL, OPT_TLS},
		{"user", required_argument, NULL, OPT_USER},
		{"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
		{"insecure", no_argument, NULL, OPT_INSECURE},
		{"batch", required_argument, NULL, OPT_BATCH},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *server = NULL, *tls = NULL;
	char err[256];
	uint64_t v;
	int ch;

	opterr = 0;
	optind = 0; /* glibc: start afresh; argv[0] ("send") is skipped */
	while ((ch = getopt_long(argc, argv, ":f:tvh", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_SERVER:
			server = optarg;
			break;
		case OPT_TLS:
			tls = optarg;
			break;
		case OPT_USER:
			a->user = optarg;
			break;
		case OPT_PASSWORD_FILE:
			a->password_file = optarg;
			break;
		case OPT_INSECURE:
			a->insecure = true;
			break;
		case OPT_BATCH:
			a->batch = optarg;
			break;
		case OPT_TIMEOUT:
			if (!parse_u64(optarg, 1, SEND_TIMEOUT_MAX, &v))
				return usage_error("--timeout %s: seconds, 1-%d", optarg,
						   SEND_TIMEOUT_MAX);
			a->timeout = (unsigned)v;
			break;
		case 'f':
			a->from_arg = optarg;
			break;
		case 't':
			a->extract = true;
			break;
		case 'v':
			a->verbose = true;
			break;
		case 'h':
		case OPT_HELP:
			send_help();
			return -1;
		case ':':
			return usage_error("option %s needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (server == NULL)
		return usage_error("--server HOST[:PORT] is required");
	if (!parse_server(server, a))
		return usage_error("--server %s: not HOST, HOST:PORT or [ADDRESS]:PORT", server);
	if (tls == NULL || strcmp(tls, "starttls") == 0)
		a->tls = SUBMIT_TLS_STARTTLS;
	else if (strcmp(tls, "implicit") == 0)
		a->tls = SUBMIT_TLS_IMPLICIT;
	else if (strcmp(tls, "none") == 0)
		a->tls = SUBMIT_TLS_NONE;
	else
		return usage_error("--tls %s: starttls, implicit or none", tls);
	if (a->port == 0)
		a->port = a->tls == SUBMIT_TLS_STARTTLS   ? SEND_PORT_STARTTLS
			  : a->tls == SUBMIT_TLS_IMPLICIT ? SEND_PORT_IMPLICIT
							  : SEND_PORT_NONE;
	if (a->user != NULL && a->tls == SUBMIT_TLS_NONE)
		return usage_error("refusing to send a password over an unencrypted connection "
				   "(--tls none): use --tls starttls or implicit, or leave out "
				   "--user");
	if (a->user != NULL) {
		for (const char *p = a->user; *p != '\0'; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				return usage_error("--user: control characters in the name");
		if (a->user[0] == '\0' || strlen(a->user) > 255)
			return usage_error("--user: 1-255 characters");
	}
	if (a->password_file != NULL && a->user == NULL)
		return usage_error("--password-file needs --user");
	for (int i = optind; i < argc; i++) {
		if (!message_parse_addr_list(argv[i], strlen(argv[i]), &a->rcpts, err, sizeof(err)))
			return usage_error("recipient %s: %s", argv[i], err);
	}
	if (a->rcpts.n == 0 && !a->extract)
		return usage_error("no recipients: give them as arguments, or -t to take them from "
				   "To, Cc and Bcc");
	local_fqdn(a->fqdn, sizeof(a->fqdn));
	return choose_sender(a);
}

/* --- the password --------------------------------------------------------------- */

/* The message of a password that could not be read (see secret.h). */
static const char *password_why(enum secret_status st)
{
	switch (st) {
	case SECRET_TOO_LONG:
		return "password too long";
	case SECRET_EMPTY:
		return "empty password";
	case SECRET_INTERRUPTED:
		return "interrupted";
	case SECRET_NO_QUIET:
		return "cannot turn the terminal's echo off";
	default:
		return strerror(errno);
	}
}

/* Read one line from fd into buf, its line ending stripped: 0, or an exit
 * code with *why set. */
static int read_line_fd(int fd, char *buf, size_t size, const char **why)
{
	enum secret_status st = secret_read_line(fd, buf, size, SECRET_STRIP_CR);

	if (st == SECRET_OK)
		return 0;
	*why = password_why(st);
	return st == SECRET_TOO_LONG || st == SECRET_EMPTY ? EX_DATAERR : EX_IOERR;
}

/* Ask on /dev/tty with echo off (secret.h). */
static int ask_password(const struct send_args *a, char *pw, size_t size)
{
	char prompt[600];
	const char *prompts[1] = {prompt};
	char *answers[1] = {pw};
	size_t sizes[1] = {size};
	enum secret_status st;

	snprintf(prompt, sizeof(prompt), "Password for %s at %s: ", a->user, a->host);
	st = secret_ask_tty(prompts, answers, sizes, 1, SECRET_STRIP_CR);
	if (st == SECRET_NO_TTY || st == SECRET_NO_TERMIOS) {
		fprintf(stderr,
			"hato: no terminal to ask for the password on: use --password-file or "
			"HATO_PASSWORD\n");
		return EX_USAGE;
	}
	if (st == SECRET_OK)
		return 0;
	fprintf(stderr, "hato: %s\n", password_why(st));
	return st == SECRET_TOO_LONG || st == SECRET_EMPTY ? EX_DATAERR : EX_IOERR;
}

/* The password: --password-file, $HATO_PASSWORD, or the terminal. */
static int get_password(const struct send_args *a, char *pw, size_t size)
{
	const char *env = getenv("HATO_PASSWORD"), *why;
	int fd, rc;

	if (a->password_file != NULL) {
		fd = open(a->password_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "hato: cannot open the password file %s: %s\n",
				a->password_file, strerror(errno));
			return EX_NOINPUT;
		}
		rc = read_line_fd(fd, pw, size, &why);
		close(fd);
		if (rc != 0)
			fprintf(stderr, "hato: password file %s: %s\n", a->password_file, why);
		return rc;
	}
	if (env != NULL && env[0] != '\0') {
		if (!strcpy_bounded(pw, env, size)) {
			fprintf(stderr, "hato: HATO_PASSWORD: password too long\n");
			return EX_DATAERR;
		}
		return 0;
	}
	return ask_password(a, pw, size);
}

/* --- messages --------------------------------------------------------------------- */

/* Read all of fd into b: 0, or an exit code with the error printed. */
static int read_all(int fd, const char *what, struct strbuf *b)
{
	char chunk[65536];

	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "hato: cannot read %s: %s\n", what, strerror(errno));
			return EX_IOERR;
		}
		if (r == 0)
			return 0;
		if (b->len + (size_t)r > SEND_MESSAGE_MAX) {
			fprintf(stderr, "hato: %s: the message is larger than %u octets\n", what,
				SEND_MESSAGE_MAX);
			return EX_DATAERR;
		}
		strbuf_add(b, chunk, (size_t)r);
	}
}

/* A fresh Date: and Message-ID: for the next message. */
static void fresh_ids(const struct send_args *a, char *date, size_t dsize, char *msgid,
		      size_t msize)
{
	time_t now = time(NULL);

	if (!mail_date(now, date, dsize))
		strcpy_bounded(date, MAIL_DATE_EPOCH, dsize);
	mail_msgid(now, a->fqdn, msgid, msize);
}

/* Prepare raw[0..len) for sending into out, its recipients into rcpts:
 * 0, or an exit code with the error printed (label first). */
static int prepare(const struct send_args *a, const char *label, const char *raw, size_t len,
		   struct strbuf *out, struct message_addrs *rcpts)
{
	char date[MAIL_DATE_SIZE], msgid[MAIL_MSGID_SIZE], err[512];
	struct message_fill fill = {.extract = a->extract};

	fresh_ids(a, date, sizeof(date), msgid, sizeof(msgid));
	fill.from = a->header_from[0] != '\0' ? a->header_from : NULL;
	fill.date = date;
	fill.msgid = msgid;
	for (size_t i = 0; i < a->rcpts.n; i++)
		message_addrs_add(rcpts, a->rcpts.v[i]);
	if (!message_prepare(raw, len, &fill, out, rcpts, err, sizeof(err))) {
		fprintf(stderr, "hato: %smessage: %s\n", label, err);
		return EX_DATAERR;
	}
	if (rcpts->n == 0) {
		fprintf(stderr, "hato: %sno recipients: To, Cc and Bcc name nobody\n", label);
		return EX_DATAERR;
	}
	return 0;
}

/* Send one prepared message over s. */
static int send_one(struct submit_session *s, const struct send_args *a, const char *label,
		    const struct strbuf *msg, const struct message_addrs *rcpts)
{
	struct submit_message m = {
		.label = label,
		.sender = a->sender,
		.rcpts = (const char *const *)rcpts->v,
		.nrcpts = rcpts->n,
		.data = msg->s,
		.len = msg->len,
	};

	return submit_session_send(s, &m);
}

/* The message on standard input. */
static int send_stdin(const struct send_args *a, const struct submit_opts *o)
{
	struct strbuf raw, msg;
	struct message_addrs rcpts;
	struct submit_session *s;
	int rc;

	strbuf_init(&raw);
	strbuf_init(&msg);
	message_addrs_init(&rcpts);
	rc = read_all(STDIN_FILENO, "standard input", &raw);
	if (rc == 0)
		rc = prepare(a, "", raw.s, raw.len, &msg, &rcpts);
	strbuf_free(&raw);
	if (rc == 0 && (s = submit_session_open(o, &rc)) != NULL) {
		rc = send_one(s, a, "", &msg, &rcpts);
		submit_session_close(s);
	}
	strbuf_free(&msg);
	message_addrs_free(&rcpts);
	return rc;
}

static int compare_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The names of the files to send in dir, sorted: NULL with the error printed. */
static char **batch_list(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t cap = 0;

	*n = 0;
	if (d == NULL) {
		fprintf(stderr, "hato: cannot read the batch directory %s: %s\n", dir,
			strerror(errno));
		return NULL;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
		    !S_ISREG(st.st_mode)) {
			errno = 0;
			continue;
		}
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[(*n)++] = xstrdup(de->d_name);
		errno = 0;
	}
	if (errno != 0) {
		fprintf(stderr, "hato: cannot read the batch directory %s: %s\n", dir,
			strerror(errno));
		for (size_t i = 0; i < *n; i++)
			free(names[i]);
		free(names);
		closedir(d);
		return NULL;
	}
	closedir(d);
	if (*n > 0)
		qsort(names, *n, sizeof(*names), compare_names);
	return names != NULL ? names : xcalloc(1, sizeof(*names));
}

/* Read and prepare one batch file: 0 or an exit code (printed). */
static int batch_prepare(const struct send_args *a, const char *path, const char *label,
			 struct strbuf *msg, struct message_addrs *rcpts)
{
	struct strbuf raw;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "hato: %scannot open: %s\n", label, strerror(errno));
		return EX_NOINPUT;
	}
	strbuf_init(&raw);
	rc = read_all(fd, path, &raw);
	close(fd);
	if (rc == 0)
		rc = prepare(a, label, raw.s, raw.len, msg, rcpts);
	strbuf_free(&raw);
	return rc;
}

/* --batch DIR: every file, one connection, RSET in between. */
static int send_batch(const struct send_args *a, const struct submit_opts *o)
{
	struct submit_session *s = NULL;
	size_t n, sent = 0, i;
	char **names = batch_list(a->batch, &n);
	int first = 0;

	if (names == NULL)
		return EX_NOINPUT;
	for (i = 0; i < n; i++) {
		struct strbuf msg;
		struct message_addrs rcpts;
		char path[4096 + 256], label[4096 + 260];
		int rc;

		if (!xsnprintf_ok(path, sizeof(path), "%s/%s", a->batch, names[i]) ||
		    !xsnprintf_ok(label, sizeof(label), "%s: ", path)) {
			fprintf(stderr, "hato: %s/%s: path too long\n", a->batch, names[i]);
			first = first != 0 ? first : EX_NOINPUT;
			continue;
		}
		strbuf_init(&msg);
		message_addrs_init(&rcpts);
		rc = batch_prepare(a, path, label, &msg, &rcpts);
		if (rc == 0 && s == NULL && (s = submit_session_open(o, &rc)) == NULL)
			i = n; /* no connection: nothing more can go */
		else if (rc == 0)
			rc = send_one(s, a, label, &msg, &rcpts);
		strbuf_free(&msg);
		message_addrs_free(&rcpts);
		if (rc == 0)
			sent++;
		else if (first == 0)
			first = rc;
		if (s != NULL && !submit_session_usable(s))
			break;
	}
	submit_session_close(s);
	if (sent < n)
		fprintf(stderr, "hato: %zu of %zu messages in %s sent\n", sent, n, a->batch);
	else if (a->verbose)
		fprintf(stderr, "* %zu message%s in %s sent\n", sent, sent == 1 ? "" : "s",
			a->batch);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return first;
}

/* See submit.h. */
int submit_main(int argc, char **argv)
{
	struct send_args a;
	struct submit_opts o;
	char pw[SEND_PASSWORD_MAX + 1] = "";
	int rc;

	memset(&a, 0, sizeof(a));
	message_addrs_init(&a.rcpts);
	rc = parse_args(argc, argv, &a);
	if (rc != 0) {
		message_addrs_free(&a.rcpts);
		return rc < 0 ? 0 : rc; /* -1: --help */
	}
	signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(2): a lost peer is EPIPE */
	if (a.user != NULL && (rc = get_password(&a, pw, sizeof(pw))) != 0) {
		explicit_bzero(pw, sizeof(pw));
		message_addrs_free(&a.rcpts);
		return rc;
	}
	o = (struct submit_opts){
		.host = a.host,
		.port = a.port,
		.tls = a.tls,
		.insecure = a.insecure,
		.verbose = a.verbose,
		.helo = a.fqdn,
		.user = a.user,
		.password = pw,
		.timeout_connect = a.timeout != 0 ? a.timeout : SEND_TIMEOUT_CONNECT,
		.timeout_greeting = a.timeout != 0 ? a.timeout : SEND_TIMEOUT_GREETING,
		.timeout_command = a.timeout != 0 ? a.timeout : SEND_TIMEOUT_COMMAND,
		.timeout_data_end = a.timeout != 0 ? a.timeout : SEND_TIMEOUT_DATA_END,
	};
	rc = a.batch != NULL ? send_batch(&a, &o) : send_stdin(&a, &o);
	explicit_bzero(pw, sizeof(pw));
	message_addrs_free(&a.rcpts);
	return rc;
}
