/*
 * hato.c - the command line.  `hato queue` lists the spool; `hato user`
 * adds, removes, re-keys and lists the SMTP AUTH users in the users file.
 * Both work on the files directly, whether or not hatod is running (hatod
 * re-reads the users file when it changes); they find them like hatod
 * does (-c FILE, $HATO_CONFIG, $HATO_STATE, or the built-in ./var/hato).
 * `hato queue show ID` prints one message's timeline and `hato queue
 * corrupt` what recovery set aside, from the spool too (queue_view.h).
 * `hato queue flush`, and `delete`, `hold`, `release`, `retry` and `bounce`
 * of one ID, ask the running hatod over its control socket
 * (control_client.h) and print its reply; without hatod they say that it
 * must run, rather than change files a starting hatod is reading.  `hato
 * route ADDRESS` (or DOMAIN) shows where its mail would go: the route
 * (route.h), after aliases for a local address, and the MX hosts the [dns]
 * servers give.
 *
 * Installed as (or linked to as) `sendmail`, and for `hato send` without
 * --server, hato is the sendmail command (sendmail.h): the message on
 * stdin goes into the maildrop directory for hatod.  As `mailq`, or with
 * sendmail -bp, it lists the queue.  hato may be installed set-gid
 * maildrop_group for that: main() gives the group up at once, takes it
 * back only to write a drop file, and for good for every other command.
 *
 * Exit codes are sysexits(3): EX_USAGE bad arguments or no terminal to ask
 * on, EX_DATAERR a malformed users file or unusable password, EX_NOUSER no
 * such user, EX_CANTCREAT the user exists already or the file cannot be
 * created, EX_IOERR other I/O, EX_NOPERM permission denied, EX_CONFIG a bad
 * configuration, EX_NOINPUT no spool, EX_UNAVAILABLE hatod not running,
 * EX_TEMPFAIL hatod did not answer in time, EX_PROTOCOL a garbled reply; 1
 * when hatod refused the request (ERR) or `hato queue show` knows no such
 * message (EX_DATAERR: its files do not parse); for `hato route`, EX_TEMPFAIL a
 * temporary DNS failure and EX_UNAVAILABLE a permanent one.  Errors are one line on stderr,
 * "hato: ...".  Passwords are read without echo (or from stdin with
 * --stdin), never printed, and wiped from memory once hashed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "control.h"
#include "control_client.h"
#include "durable.h"
#include "envelope.h"
#include "hato_cli.h"
#include "local.h"
#include "mx.h"
#include "queue.h"
#include "queue_view.h"
#include "route.h"
#include "secret.h"
#include "sendmail.h"
#include "status.h"
#include "submit.h"
#include "users.h"
#include "util.h"

/* Longest password accepted, in octets: longer input is refused, not cut. */
#define PASSWORD_MAX 1024
#define HATO_STR_(x) #x
#define HATO_STR(x) HATO_STR_(x)

/* Usage text. */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: hato [-c FILE] COMMAND\n"
		"commands:\n"
		"  aliases check               check the aliases file: loops, refused and\n"
		"                              unknown targets (exit 65 on a problem)\n"
		"  dkim keygen DOMAIN SELECTOR [--algorithm ed25519|rsa] [--bits N] [--key FILE]\n"
		"                              make a DKIM signing key (0600, STATE/dkim/ by\n"
		"                              default); print its [dkim] section and TXT record\n"
		"  dkim check DOMAIN SELECTOR [--key FILE]  does the published TXT record match\n"
		"                              the key? (exit 0 match, 1 mismatch, 69 no record,\n"
		"                              75 DNS failure)\n"
		"  dkim verify                 verify every DKIM signature of the message on\n"
		"                              stdin, a line each (exit 0 when all pass)\n"
		"  queue                       list the queue: ID, age, size, sender and, per\n"
		"                              recipient, its state, attempts, next attempt,\n"
		"                              original address and last error\n"
		"  queue show ID               one message: its envelope and, per recipient,\n"
		"                              its state, attempts and next attempt\n"
		"  queue corrupt               the messages recovery set aside as damaged\n"
		"  queue flush                 ask hatod to retry all pending recipients now\n"
		"  queue retry ID              ask hatod to retry one message now\n"
		"  queue hold ID [REASON...]   ask hatod to deliver nothing of a message until\n"
		"                              it is released (kept across restarts)\n"
		"  queue release ID            ask hatod to deliver a held message again\n"
		"  queue bounce ID             ask hatod to return a message to its sender:\n"
		"                              pending recipients fail now, with a report\n"
		"  queue delete ID             ask hatod to drop a message (no bounce)\n"
		"  route ADDRESS | DOMAIN      where its mail goes, as delivery decides:\n"
		"                              \"maildir WHO DIR\", \"lmtp WHO TARGET\",\n"
		"                              \"relayhost WHO HOP ...\", \"transport WHO HOP\n"
		"                              ...\", or the MX hosts in order, \"mx PREF NAME\n"
		"                              ADDR...\" or \"implicit NAME ADDR...\" (exit 75\n"
		"                              temporary, 69 permanent failure)\n"
		"  route --host HOST           the addresses of one host (\"host NAME ADDR...\")\n"
		"  send [-t] [-i] [-f ADDR] [RCPT...]  queue the message on stdin for\n"
		"                              hatod, as sendmail does (hato send --help)\n"
		"  send --server HOST[:PORT] ... [RCPT...]  submit the message on stdin to a\n"
		"                              server (hato send --help)\n"
		"  user add NAME [--stdin]     add an SMTP AUTH user; the password is asked "
		"twice\n"
		"                              without echo, or read as one line from stdin\n"
		"  user passwd NAME [--stdin]  change a user's password (asked the same way)\n"
		"  user del NAME               remove a user\n"
		"  user list                   list the users, one name a line\n"
		"  version                     print the version\n"
		"The users file is [server] users_file (default STATE/users).\n");
}

/* Print text from an envelope for a terminal: control characters (from a
 * remote server's reply, say) as \xNN, everything else as it is. */
static void print_text(const char *s)
{
	queue_view_text(stdout, s);
}

struct listing {
	size_t count;
	time_t now;
};

/* queue_scan_dir callback: one message of the listing. */
static void print_message(const struct envelope *e, uint64_t msg_size, void *arg)
{
	struct listing *l = arg;

	queue_view_list_message(stdout, e, msg_size, l->now);
	l->count++;
}

/* queue_aside_dir callback: count what recovery set aside. */
static void count_aside(const struct queue_aside *a, void *arg)
{
	(void)a;
	(*(size_t *)arg)++;
}

/* hato queue: list the spool, with or without hatod running. */
static int queue_list(const struct conf *c)
{
	struct listing l = {0, time(NULL)};
	char err[512], *qdir;
	size_t aside = 0;

	queue_view_list_header(stdout);
	if (!queue_scan_dir(c->state_dir, print_message, &l, err, sizeof(err))) {
		int e = errno;

		fprintf(stderr, "hato: %s\n", err);
		return e == ENOENT ? EX_NOINPUT : e == EACCES ? EX_NOPERM : EX_IOERR;
	}
	qdir = queue_dir_name(c->state_dir);
	printf("-- %zu message%s in %s\n", l.count, l.count == 1 ? "" : "s", qdir);
	free(qdir);
	if (queue_aside_dir(c->state_dir, count_aside, &aside, err, sizeof(err)) && aside > 0)
		printf("-- %zu message%s set aside by recovery as damaged: hato queue corrupt\n",
		       aside, aside == 1 ? "" : "s");
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "hato: cannot write the list: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

/* Send request to hatod and print its reply: 0 for OK, 1 for ERR (the
 * reason on stderr), a sysexits code when hatod cannot be reached. */
static int queue_control(const struct conf *c, const char *verb, const char *request)
{
	const char *path = c->control_socket, *text;
	char reply[CONTROL_REPLY_MAX + 1];
	int e = control_request(path, request, CONTROL_TIMEOUT_SECONDS * 1000u, reply,
				sizeof(reply));

	switch (e) {
	case 0:
		break;
	case ENOENT:
	case ECONNREFUSED:
		fprintf(stderr,
			"hato: hatod is not running (no control socket at %s): queue %s needs it; "
			"hato queue and hato queue show ID work without it\n",
			path, verb);
		return EX_UNAVAILABLE;
	case ENAMETOOLONG:
		fprintf(stderr, "hato: control_socket %s: too long for a unix socket\n", path);
		return EX_CONFIG;
	case EACCES:
	case EPERM:
		fprintf(stderr,
			"hato: cannot connect to hatod at %s: %s (see control_socket_mode)\n", path,
			strerror(e));
		return EX_NOPERM;
	case ETIMEDOUT:
		fprintf(stderr, "hato: hatod did not answer within %d s (%s)\n",
			CONTROL_TIMEOUT_SECONDS, path);
		return EX_TEMPFAIL;
	case EPROTO:
		fprintf(stderr, "hato: no valid reply from hatod at %s\n", path);
		return EX_PROTOCOL;
	case EPIPE:
	case ECONNRESET:
		fprintf(stderr, "hato: hatod at %s closed the connection: %s\n", path, strerror(e));
		return EX_UNAVAILABLE;
	default:
		fprintf(stderr, "hato: cannot talk to hatod at %s: %s\n", path, strerror(e));
		return EX_IOERR;
	}
	switch (control_reply_kind(reply, &text)) {
	case CONTROL_REPLY_OK:
		printf("%s\n", reply);
		return 0;
	case CONTROL_REPLY_ERR:
		fprintf(stderr, "hato: %s\n", text);
		return 1;
	case CONTROL_REPLY_OTHER:
		break;
	}
	fprintf(stderr, "hato: unexpected reply from hatod: %s\n", reply);
	return EX_PROTOCOL;
}

/* One-line usage of `hato queue`, as an error. */
static int queue_usage(void)
{
	fprintf(stderr, "hato: usage: hato [-c FILE] queue [flush | corrupt | show ID | hold ID "
			"[REASON...] | release ID | retry ID | bounce ID | delete ID]\n");
	return EX_USAGE;
}

/* The queue ID in arg, as `hato queue` shows it (case does not matter),
 * into id; false with a message on stderr when it is not one. */
static bool queue_arg_id(const char *arg, char id[QUEUE_ID_LEN + 1])
{
	char shown[QUEUE_ID_LEN * 4 + 8];
	size_t len = strlen(arg);

	for (size_t i = 0; i < len && i < QUEUE_ID_LEN; i++)
		id[i] = (char)toupper((unsigned char)arg[i]);
	id[len < QUEUE_ID_LEN ? len : QUEUE_ID_LEN] = '\0';
	if (len == QUEUE_ID_LEN && queue_id_valid(id))
		return true;
	escape_text(arg, len < QUEUE_ID_LEN * 2 ? len : QUEUE_ID_LEN * 2, shown, sizeof(shown));
	fprintf(stderr, "hato: bad queue ID \"%s\": %d hex digits, as hato queue lists them\n",
		shown, QUEUE_ID_LEN);
	return false;
}

/* hato queue delete|release|retry|bounce ID, and hold ID [REASON...]
 * (args: the words of the reason): ask hatod. */
static int queue_message(const struct conf *c, const char *verb, const char *arg, int nargs,
			 char **args)
{
	char id[QUEUE_ID_LEN + 1], request[CONTROL_LINE_MAX + 1], upper[16];
	size_t n, reason = 0;

	if (!queue_arg_id(arg, id))
		return EX_USAGE;
	for (n = 0; verb[n] != '\0' && n < sizeof(upper) - 1; n++)
		upper[n] = (char)toupper((unsigned char)verb[n]);
	upper[n] = '\0';
	n = (size_t)snprintf(request, sizeof(request), "%s %s", upper, id);
	for (int i = 0; i < nargs; i++) {
		size_t len = strlen(args[i]);

		for (size_t k = 0; k < len; k++)
			if ((unsigned char)args[i][k] < 0x20 || args[i][k] == 0x7f) {
				fprintf(stderr, "hato: the reason must be printable text\n");
				return EX_USAGE;
			}
		reason += (i > 0) + len;
		if (reason > ENVELOPE_HOLD_REASON_MAX) {
			fprintf(stderr, "hato: the reason is too long (at most %d octets)\n",
				ENVELOPE_HOLD_REASON_MAX);
			return EX_USAGE;
		}
		n += (size_t)snprintf(request + n, sizeof(request) - n, " %s", args[i]);
	}
	return queue_control(c, verb, request);
}

/* The set-aside message hato queue show looks for. */
struct aside_find {
	const char *id;
	bool found;
};

/* queue_aside_dir callback: print the set-aside message looked for. */
static void find_aside(const struct queue_aside *a, void *arg)
{
	struct aside_find *af = arg;

	if (strcmp(a->id, af->id) != 0)
		return;
	af->found = true;
	queue_view_aside(stdout, a, time(NULL));
}

/* hato queue show ID: the message's envelope and timeline, read from the
 * spool (hatod need not run).  A message recovery set aside is named. */
static int queue_show(const struct conf *c, const char *arg)
{
	char id[QUEUE_ID_LEN + 1], err[1024];
	struct envelope e;
	uint64_t size;
	int rc = 0;

	if (!queue_arg_id(arg, id))
		return EX_USAGE;
	if (!queue_envelope_dir(c->state_dir, id, &e, &size, err, sizeof(err))) {
		int saved = errno;
		struct aside_find af = {id, false};

		if (saved == ENOENT &&
		    queue_aside_dir(c->state_dir, find_aside, &af, err, sizeof(err)) && af.found) {
			printf("-- set aside by recovery as damaged: not delivered "
			       "(docs/queue.md)\n");
			return fflush(stdout) == 0 ? 0 : EX_IOERR;
		}
		fprintf(stderr, "hato: %s\n", err);
		return saved == ENOENT    ? 1
		       : saved == ENOTDIR ? EX_NOINPUT
		       : saved == EACCES  ? EX_NOPERM
		       : saved == EBADMSG ? EX_DATAERR
					  : EX_IOERR;
	}
	queue_view_show(stdout, &e, size, time(NULL));
	envelope_free(&e);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "hato: cannot write the message: %s\n", strerror(errno));
		rc = EX_IOERR;
	}
	return rc;
}

/* queue_aside_dir callback for hato queue corrupt. */
static void print_aside(const struct queue_aside *a, void *arg)
{
	struct listing *l = arg;

	queue_view_aside(stdout, a, l->now);
	l->count++;
}

/* hato queue corrupt: what recovery set aside, from the spool. */
static int queue_corrupt(const struct conf *c)
{
	struct listing l = {0, time(NULL)};
	char err[512], *qdir;

	if (!queue_aside_dir(c->state_dir, print_aside, &l, err, sizeof(err))) {
		int e = errno;

		fprintf(stderr, "hato: %s\n", err);
		return e == ENOENT ? EX_NOINPUT : e == EACCES ? EX_NOPERM : EX_IOERR;
	}
	qdir = queue_dir_name(c->state_dir);
	printf("-- %zu message%s set aside by recovery in %s\n", l.count, l.count == 1 ? "" : "s",
	       qdir);
	free(qdir);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "hato: cannot write the list: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

/* hato queue [...]: argv[0] is "queue". */
static int cmd_queue(const struct conf *c, int argc, char **argv)
{
	static const char *const by_id[] = {"delete", "release", "retry", "bounce"};

	if (argc == 1)
		return queue_list(c);
	if (argc == 2 && strcmp(argv[1], "flush") == 0)
		return queue_control(c, "flush", "FLUSH");
	if (argc == 2 && strcmp(argv[1], "corrupt") == 0)
		return queue_corrupt(c);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return queue_show(c, argv[2]);
	if (argc >= 3 && strcmp(argv[1], "hold") == 0)
		return queue_message(c, "hold", argv[2], argc - 3, argv + 3);
	for (size_t i = 0; argc == 3 && i < sizeof(by_id) / sizeof(by_id[0]); i++)
		if (strcmp(argv[1], by_id[i]) == 0)
			return queue_message(c, by_id[i], argv[2], 0, NULL);
	return queue_usage();
}

/* The exit code for a users-file failure with errno e; other for the rest. */
int users_exit_code(int e, int other)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case EROFS:
		return EX_NOPERM;
	case EINVAL: /* malformed file */
	case EFBIG:
		return EX_DATAERR;
	default:
		return other;
	}
}

/* One-line usage of `hato user`, as an error. */
static int user_usage(void)
{
	fprintf(stderr,
		"hato: usage: hato [-c FILE] user add|passwd NAME [--stdin] | user del NAME "
		"| user list\n");
	return EX_USAGE;
}

/* Print one user name. */
static void print_user(const char *user, void *arg)
{
	(void)arg;
	printf("%s\n", user);
}

/* hato user list */
static int user_list(const struct conf *c)
{
	struct userdb *db;
	char err[1024];

	db = userdb_open(c->users_file, err, sizeof(err));
	if (db == NULL) {
		int e = errno;
		fprintf(stderr, "hato: %s\n", err);
		return users_exit_code(e, EX_IOERR);
	}
	userdb_each(db, print_user, NULL);
	userdb_free(db);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "hato: cannot write the list: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

/* The message and exit code of a password that could not be read. */
static int password_error(enum secret_status st, const char **why)
{
	switch (st) {
	case SECRET_OK:
		*why = NULL;
		return 0;
	case SECRET_TOO_LONG:
		*why = "password too long (at most " HATO_STR(PASSWORD_MAX) " octets)";
		return EX_DATAERR;
	case SECRET_NUL:
		*why = "password contains a NUL byte";
		return EX_DATAERR;
	case SECRET_EMPTY:
		*why = "empty password";
		return EX_DATAERR;
	case SECRET_INTERRUPTED:
		*why = "interrupted";
		return EX_IOERR;
	case SECRET_NO_QUIET:
		*why = "cannot turn the terminal's echo off";
		return EX_IOERR;
	default:
		*why = "cannot read the password";
		return EX_IOERR;
	}
}

/* --stdin: the password is the first line of standard input. */
static int read_password_stdin(char *buf, size_t size)
{
	const char *why;
	int rc = password_error(secret_read_line(STDIN_FILENO, buf, size, SECRET_REFUSE_NUL), &why);

	if (rc != 0)
		fprintf(stderr, "hato: %s\n", why);
	return rc;
}

/*
 * Ask for the password twice on /dev/tty with echo off (so it works with
 * stdin redirected, and never shows the password); see secret.h.
 */
static int read_password_tty(const char *user, char *pw, size_t size)
{
	char again[PASSWORD_MAX + 1], prompt[128];
	const char *prompts[2] = {prompt, "Retype the password: "};
	char *answers[2] = {pw, again};
	size_t sizes[2] = {size, sizeof(again)};
	const char *why;
	enum secret_status st;
	int rc;

	snprintf(prompt, sizeof(prompt), "Password for %s: ", user); /* name <= 64 */
	st = secret_ask_tty(prompts, answers, sizes, 2, SECRET_REFUSE_NUL);
	if (st == SECRET_NO_TTY || st == SECRET_NO_TERMIOS) {
		fprintf(stderr, "hato: %s (%s): use --stdin\n",
			st == SECRET_NO_TTY ? "no terminal to ask for the password on"
					    : "cannot use the terminal",
			strerror(errno));
		return EX_USAGE;
	}
	rc = password_error(st, &why);
	if (rc == 0 && strcmp(pw, again) != 0) {
		why = "the passwords do not match";
		rc = EX_DATAERR;
	}
	explicit_bzero(again, sizeof(again));
	if (rc != 0)
		fprintf(stderr, "hato: %s\n", why);
	return rc;
}

/*
 * As root, give path (a file or directory hato has just made) to the daemon
 * user and group ([server] user, group): what is in hatod's state directory
 * belongs to hatod's user.  It goes through a descriptor opened without
 * following links, and only a directory or a regular file with one link:
 * the directory may belong to that user, who could swap the name for a link
 * to another file.  When it cannot, it says why.  Not as root: hatod
 * started by this user runs as this user.
 */
int give_to_daemon(const struct conf *c, const char *path)
{
	struct passwd *pw;
	struct group *gr;
	struct stat st;
	int fd, e = 0;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam(c->user);
	if (pw == NULL) {
		fprintf(stderr,
			"hato: %s stays owned by root: there is no user %s ([server] user) for "
			"hatod to run as\n",
			path, c->user);
		return EX_NOUSER;
	}
	if (pw->pw_uid == 0)
		return 0;
	gr = getgrnam(c->group);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) != 0)
		e = errno;
	else if (!S_ISDIR(st.st_mode) && (!S_ISREG(st.st_mode) || st.st_nlink != 1))
		e = EPERM; /* not what hato made: leave it alone */
	else if (fchown(fd, pw->pw_uid, gr != NULL ? gr->gr_gid : pw->pw_gid) != 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	if (e != 0) {
		fprintf(stderr, "hato: cannot give %s to %s: %s\n", path, c->user, strerror(e));
		return EX_IOERR;
	}
	return 0;
}

/* The users file [0] and its edit lock [1], which an edit may create. */
struct users_files {
	char path[2][4096];
	bool existed[2];
};

/* Note which of the users files exist before an edit; false when a name does not fit. */
static bool users_files_before(const struct conf *c, struct users_files *f)
{
	struct stat st;

	if (!strcpy_bounded(f->path[0], c->users_file, sizeof(f->path[0])) ||
	    !xsnprintf_ok(f->path[1], sizeof(f->path[1]), "%s%s", c->users_file,
			  USERDB_LOCK_SUFFIX)) {
		fprintf(stderr, "hato: %s: name too long\n", c->users_file);
		return false;
	}
	for (size_t i = 0; i < 2; i++)
		f->existed[i] = !(lstat(f->path[i], &st) != 0 && errno == ENOENT);
	return true;
}

/* After an edit: give each users file it created to the daemon user; 0 or an exit code. */
static int users_files_after(const struct conf *c, const struct users_files *f)
{
	struct stat st;
	int rc = 0;

	for (size_t i = 0; i < 2; i++)
		if (!f->existed[i] && lstat(f->path[i], &st) == 0 && rc == 0)
			rc = give_to_daemon(c, f->path[i]);
	return rc;
}

/* Create the state directory (0700) when it is not there yet, as hatod
 * would, before the users file is written. */
int prepare_state_dir(const struct conf *c)
{
	if (mkdir(c->state_dir, 0700) != 0) {
		int e = errno;

		if (e == EEXIST)
			return 0;
		fprintf(stderr, "hato: cannot create state directory %s: %s\n", c->state_dir,
			strerror(e));
		return users_exit_code(e, EX_CANTCREAT);
	}
	return give_to_daemon(c, c->state_dir);
}

/* hato user add NAME / hato user passwd NAME: a new hash for name. */
static int user_set(const struct conf *c, const char *name, bool add, bool from_stdin)
{
	char pw[PASSWORD_MAX + 1], err[1024], *hash;
	struct users_files files;
	struct userdb *db;
	bool exists;
	int rc;

	db = userdb_open(c->users_file, err, sizeof(err));
	if (db == NULL) {
		int e = errno;
		fprintf(stderr, "hato: %s\n", err);
		return users_exit_code(e, EX_IOERR);
	}
	exists = userdb_exists(db, name);
	userdb_free(db);
	if (add && exists) {
		fprintf(stderr,
			"hato: user %s exists already (hato user passwd changes the password)\n",
			name);
		return EX_CANTCREAT;
	}
	if (!add && !exists) {
		fprintf(stderr, "hato: no such user %s\n", name);
		return EX_NOUSER;
	}
	rc = from_stdin ? read_password_stdin(pw, sizeof(pw))
			: read_password_tty(name, pw, sizeof(pw));
	if (rc != 0) {
		explicit_bzero(pw, sizeof(pw));
		return rc;
	}
	hash = password_hash(pw);
	explicit_bzero(pw, sizeof(pw));
	if (hash == NULL) {
		fprintf(stderr, "hato: cannot hash the password: %s\n", strerror(errno));
		return EX_SOFTWARE;
	}
	if ((rc = prepare_state_dir(c)) != 0 || !users_files_before(c, &files)) {
		free(hash);
		return rc != 0 ? rc : EX_CANTCREAT;
	}
	if (!userdb_set(c->users_file, name, hash, err, sizeof(err))) {
		int e = errno;
		fprintf(stderr, "hato: %s\n", err);
		free(hash);
		users_files_after(c, &files); /* a lock it made is the daemon's all the same */
		return users_exit_code(e, EX_CANTCREAT);
	}
	free(hash);
	return users_files_after(c, &files);
}

/* hato user del NAME */
static int user_del(const struct conf *c, const char *name)
{
	struct users_files files;
	char err[1024];

	if (!users_files_before(c, &files))
		return EX_CANTCREAT;
	if (!userdb_delete(c->users_file, name, err, sizeof(err))) {
		int e = errno;
		fprintf(stderr, "hato: %s\n", err);
		users_files_after(c, &files);
		return e == ENOENT ? EX_NOUSER : users_exit_code(e, EX_CANTCREAT);
	}
	return users_files_after(c, &files);
}

/* hato user add|passwd|del|list ...: argv[0] is "user". */
static int cmd_user(const struct conf *c, int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "", *name = NULL;
	bool from_stdin = false, options = true;
	char shown[USERDB_NAME_MAX * 4 + 8];

	for (int i = 2; i < argc; i++) {
		if (options && strcmp(argv[i], "--") == 0)
			options = false;
		else if (options && strcmp(argv[i], "--stdin") == 0)
			from_stdin = true;
		else if ((options && argv[i][0] == '-') || name != NULL)
			return user_usage();
		else
			name = argv[i];
	}
	if (strcmp(verb, "list") == 0) {
		if (name != NULL || from_stdin)
			return user_usage();
		return user_list(c);
	}
	if (strcmp(verb, "add") != 0 && strcmp(verb, "passwd") != 0 && strcmp(verb, "del") != 0)
		return user_usage();
	if (name == NULL || (from_stdin && strcmp(verb, "del") == 0))
		return user_usage();
	if (!userdb_name_ok(name)) {
		escape_text(name, strlen(name), shown, sizeof(shown));
		fprintf(stderr,
			"hato: bad user name \"%s\": 1-%d characters of A-Z a-z 0-9 . _ + - @\n",
			shown, USERDB_NAME_MAX);
		return EX_USAGE;
	}
	if (strcmp(verb, "del") == 0)
		return user_del(c, name);
	return user_set(c, name, strcmp(verb, "add") == 0, from_stdin);
}

/* Print one problem that `hato aliases check` found. */
static void print_alias_problem(const char *problem, void *arg)
{
	(void)arg;
	fprintf(stderr, "hato: aliases: %s\n", problem);
}

/*
 * hato aliases check: parse [delivery] aliases_file and resolve every entry
 * in each local domain it applies to (local_check_aliases).  0 when clean,
 * EX_DATAERR for problems or a syntax error, EX_NOINPUT when the file is
 * missing or not configured, EX_NOPERM, EX_IOERR.
 */
static int cmd_aliases(const struct conf *c, int argc, char **argv)
{
	struct aliases *al;
	struct userdb *db;
	char err[1024];
	size_t problems;
	int e;

	if (argc != 2 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "hato: usage: hato [-c FILE] aliases check\n");
		return EX_USAGE;
	}
	if (c->aliases_file == NULL) {
		fprintf(stderr, "hato: aliases: no aliases_file in [delivery]\n");
		return EX_NOINPUT;
	}
	if ((al = aliases_open(c->aliases_file, err, sizeof(err))) == NULL) {
		e = errno;
		fprintf(stderr, "hato: aliases: %s\n", err);
		return e == ENOENT ? EX_NOINPUT : users_exit_code(e, EX_IOERR);
	}
	if ((db = userdb_open(c->users_file, err, sizeof(err))) == NULL) {
		e = errno;
		fprintf(stderr, "hato: %s\n", err);
		aliases_free(al);
		return users_exit_code(e, EX_IOERR);
	}
	problems = local_check_aliases(c, db, al, print_alias_problem, NULL);
	printf("aliases: %zu entries, %zu problems\n", aliases_count(al), problems);
	aliases_free(al);
	userdb_free(db);
	return problems == 0 ? 0 : EX_DATAERR;
}

/* Print one host of a route: its kind, preference, name and addresses. */
static void print_route_host(const char *kind, const struct mx_host *h, bool pref)
{
	char addr[MX_ADDR_TEXT_MAX];

	printf("%s ", kind);
	if (pref)
		printf("%u ", h->pref);
	print_text(h->name);
	for (size_t i = 0; i < h->naddrs; i++)
		printf(" %s", mx_addr_text(&h->addrs[i], addr, sizeof(addr)));
	putchar('\n');
}

/* Exit code of a failed route: EX_TEMPFAIL for a 4.x.x code, else EX_UNAVAILABLE. */
static int route_fail(const char *esc, const char *text)
{
	fprintf(stderr, "hato: %s %s\n", esc, text);
	return esc[0] == '4' ? EX_TEMPFAIL : EX_UNAVAILABLE;
}

/* The MX hosts of an MX route, one line each (mx.h), and its TLS policy
 * when it is not the default; 0 or the failure's exit code. */
static int print_route_mx(const struct conf *c, const struct route *rt)
{
	struct dns_opts o = {c->dns_servers, c->dns_timeout_ms, c->dns_tries};
	struct mx_list *l = xmalloc(sizeof(*l));
	struct delivery_result why;
	enum outcome res = mx_lookup(&o, rt->hop.host, l, &why);

	for (size_t i = 0; res == OUTCOME_DELIVERED && i < l->n; i++)
		print_route_host(l->implicit ? "implicit" : "mx", &l->hosts[i], !l->implicit);
	if (res == OUTCOME_DELIVERED && l->nskipped > 0)
		fprintf(stderr, "hato: note: %s\n", why.text);
	free(l);
	if (res != OUTCOME_DELIVERED)
		return route_fail(why.esc, why.text);
	if (rt->tls_policy_key != NULL || rt->tls != TLS_POLICY_MAY) {
		printf("tls %s", tls_policy_name(rt->tls));
		if (rt->tls_policy_key != NULL)
			printf(" tls_policy=%s", rt->tls_policy_key);
		putchar('\n');
	}
	return 0;
}

/* Print one route: "maildir WHO MAILBOX", "lmtp WHO TARGET", "relayhost
 * WHO HOP ...", "transport WHO HOP ..." or the MX hosts (WHO: the
 * recipient, or the domain); 0 or an exit code. */
static int print_route(const struct conf *c, const struct route *rt)
{
	char who[sizeof(rt->local) + sizeof(rt->domain)];

	snprintf(who, sizeof(who), "%s%s%s", rt->local, rt->local[0] ? "@" : "", rt->domain);
	switch (rt->transport) {
	case ROUTE_MAILDIR:
		if (rt->local[0] != '\0' && rt->mailbox[0] == '\0')
			return route_fail("5.1.3", "no valid mailbox path for the recipient");
		printf("maildir ");
		print_text(who);
		putchar(' ');
		print_text(rt->local[0] ? rt->mailbox : c->mailbox_path);
		break;
	case ROUTE_LMTP:
		printf("lmtp ");
		print_text(who);
		printf(" %s", rt->lmtp);
		break;
	case ROUTE_SMTP:
		if (rt->rule == ROUTE_RULE_MX)
			return print_route_mx(c, rt);
		printf("%s ", rt->rule == ROUTE_RULE_RELAYHOST ? "relayhost" : "transport");
		print_text(who);
		printf(" %s", rt->hop_text);
		if (rt->rule == ROUTE_RULE_TRANSPORT)
			printf(" entry=%s", rt->transport_key);
		printf(" tls=%s", tls_policy_name(rt->tls));
		if (rt->rule == ROUTE_RULE_RELAYHOST)
			printf(" implicit_tls=%s auth=%s", rt->implicit_tls ? "yes" : "no",
			       rt->auth ? "yes" : "no");
		if (rt->tls_policy_key != NULL)
			printf(" tls_policy=%s", rt->tls_policy_key);
		break;
	}
	putchar('\n');
	return 0;
}

/* hato route ADDRESS of a local domain: the route of each final target,
 * after aliases and subaddresses as RCPT resolves them. */
static int route_local(const struct conf *c, const struct mailaddr *a)
{
	char err[1024], why[512];
	struct aliases *al = aliases_open(c->aliases_file, err, sizeof(err));
	struct userdb *db = al ? userdb_open(c->users_file, err, sizeof(err)) : NULL;
	struct local_targets t = {0};
	enum local_status ls;
	int rc = 0;

	if (db == NULL) {
		fprintf(stderr, "hato: %s\n", err);
		aliases_free(al);
		return EX_CONFIG;
	}
	ls = local_resolve(c, db, al, NULL, a->local, a->domain, &t, why, sizeof(why));
	if (ls != LOCAL_OK)
		rc = route_fail(status_esc(ls == LOCAL_UNKNOWN ? STATUS_USER_UNKNOWN
							       : STATUS_MISCONFIGURED),
				why);
	for (size_t i = 0; i < t.n; i++) {
		struct route rt;
		int r;

		route_rcpt(c, t.t[i].addr, &rt);
		if ((r = print_route(c, &rt)) != 0 && rc == 0)
			rc = r;
	}
	local_targets_free(&t);
	userdb_free(db);
	aliases_free(al);
	return rc;
}

/*
 * hato route ADDRESS | DOMAIN: where its mail would go, as delivery decides
 * (route.h): a local Maildir or LMTP server (for an address of a local
 * domain, of each target its aliases give), the relayhost, a [transport]
 * hop, or the MX hosts the [dns] servers give.  hato route --host HOST:
 * the addresses of one host.  0 when found, EX_TEMPFAIL or EX_UNAVAILABLE
 * with the enhanced status code and the reason on stderr otherwise.
 */
static int cmd_route(const struct conf *c, int argc, char **argv)
{
	struct dns_opts o = {c->dns_servers, c->dns_timeout_ms, c->dns_tries};
	struct delivery_result why;
	bool host = argc == 3 && strcmp(argv[1], "--host") == 0;
	struct route rt;
	int rc;

	if (!host && (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0')) {
		/* ADDRESS is a DOMAIN with a local part; the line is pinned by scripts */
		fprintf(stderr, "hato: usage: hato [-c FILE] route DOMAIN | route --host HOST\n");
		return EX_USAGE;
	}
	if (host) {
		struct mx_host h;

		if (host_lookup(&o, argv[2], &h, &why) != OUTCOME_DELIVERED)
			return route_fail(why.esc, why.text);
		print_route_host("host", &h, false);
		rc = 0;
	} else if (strchr(argv[1], '@') != NULL) {
		char path[ADDR_PATH_MAX + 3];
		struct mailaddr a;
		const char *end;

		snprintf(path, sizeof(path), "<%s>", argv[1]);
		if (addr_parse_path(path, &end, &a, 0) != ADDR_OK || *end != '\0') {
			fprintf(stderr, "hato: route: not an address (want LOCAL@DOMAIN)\n");
			return EX_USAGE;
		}
		if (!a.literal && route_is_local(c, a.domain)) {
			rc = route_local(c, &a);
		} else {
			route_rcpt(c, path, &rt);
			rc = print_route(c, &rt);
		}
	} else {
		route_domain(c, argv[1], &rt);
		rc = print_route(c, &rt);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "hato: cannot write the route: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return rc;
}

/*
 * sendmail, mailq, and `hato send` without --server (argv[0] is the program
 * or "send"; path is the configuration named so far: hato -c FILE or
 * $HATO_CONFIG).  -c FILE among the sendmail options wins.
 */
static int cmd_sendmail(const char *path, int argc, char **argv, bool mailq)
{
	struct sendmail_opts o;
	struct conf *c;
	char err[1024];
	int rc;

	rc = sendmail_parse_args(argc, argv, mailq, &o, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "hato: %s\n", err);
		return rc;
	}
	if (o.help) {
		char *submit_help[] = {"send", "--help", NULL};

		sendmail_usage(stdout);
		if (strcmp(argv[0], "send") != 0)
			return 0;
		printf("\nWith --server, hato send is an SMTP client instead:\n");
		fflush(stdout);
		return submit_main(2, submit_help);
	}
	if (o.config != NULL)
		path = o.config;
	if (path != NULL && *path == '\0')
		path = NULL;
	if (o.list_queue && !sendmail_setgid_off(true)) {
		fprintf(stderr, "hato: cannot give up the set-gid group: %s\n", strerror(errno));
		return EX_OSERR;
	}
	c = conf_load(path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "hato: %s\n", err);
		return EX_CONFIG;
	}
	rc = o.list_queue ? queue_list(c) : sendmail_run(&o, c);
	conf_free(c);
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = getenv("HATO_CONFIG"), *prog;
	struct conf *c;
	char err[1024];
	int ch, rc;

	/* set-gid maildrop_group (make install): only a drop file gets the group */
	if (!sendmail_setgid_off(false)) {
		fprintf(stderr, "hato: cannot give up the set-gid group: %s\n", strerror(errno));
		return EX_OSERR;
	}
	if (argc < 1) {
		usage(stderr);
		return EX_USAGE;
	}
	prog = strrchr(argv[0], '/') != NULL ? strrchr(argv[0], '/') + 1 : argv[0];
	if (strcmp(prog, "sendmail") == 0)
		return cmd_sendmail(path, argc, argv, false);
	if (strcmp(prog, "mailq") == 0)
		return cmd_sendmail(path, argc, argv, true);
	while ((ch = getopt(argc, argv, "+c:hV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("hato %s\n", HATO_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[optind], "version") == 0) {
		printf("hato %s\n", HATO_VERSION);
		return 0;
	}
	if (strcmp(argv[optind], "send") == 0 &&
	    !sendmail_wants_server(argc - optind, argv + optind))
		return cmd_sendmail(path, argc - optind, argv + optind, false);
	if (!sendmail_setgid_off(true)) {
		fprintf(stderr, "hato: cannot give up the set-gid group: %s\n", strerror(errno));
		return EX_OSERR;
	}
	if (strcmp(argv[optind], "send") == 0) /* a client: no configuration needed */
		return submit_main(argc - optind, argv + optind);
	if (path != NULL && *path == '\0')
		path = NULL;
	c = conf_load(path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "hato: %s\n", err);
		return EX_CONFIG;
	}
	if (strcmp(argv[optind], "queue") == 0) {
		rc = cmd_queue(c, argc - optind, argv + optind);
	} else if (strcmp(argv[optind], "user") == 0) {
		rc = cmd_user(c, argc - optind, argv + optind);
	} else if (strcmp(argv[optind], "aliases") == 0) {
		rc = cmd_aliases(c, argc - optind, argv + optind);
	} else if (strcmp(argv[optind], "route") == 0) {
		rc = cmd_route(c, argc - optind, argv + optind);
	} else if (strcmp(argv[optind], "dkim") == 0) {
		rc = cmd_dkim(c, argc - optind, argv + optind);
	} else {
		fprintf(stderr, "hato: unknown command \"%s\"\n", argv[optind]);
		usage(stderr);
		rc = 64;
	}
	conf_free(c);
	return rc;
}
