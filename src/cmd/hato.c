/*
 * hato.c - the command line.  `hato queue` lists the spool; `hato user`
 * adds, removes, re-keys and lists the SMTP AUTH users in the users file.
 * Both work on the files directly, whether or not hatod is running (hatod
 * re-reads the users file when it changes); they find them like hatod
 * does (-c FILE, $HATO_CONFIG, $HATO_STATE, or the built-in ./var/hato).
 *
 * Exit codes are sysexits(3): EX_USAGE bad arguments or no terminal to ask
 * on, EX_DATAERR a malformed users file or unusable password, EX_NOUSER no
 * such user, EX_CANTCREAT the user exists already or the file cannot be
 * created, EX_IOERR other I/O, EX_NOPERM permission denied, EX_CONFIG a bad
 * configuration.  Errors are one line on stderr, "hato: ...".  Passwords
 * are read without echo (or from stdin with --stdin), never printed, and
 * wiped from memory once hashed.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "durable.h"
#include "envelope.h"
#include "queue.h"
#include "users.h"
#include "util.h"

/* Longest password accepted, in octets: longer input is refused, not cut. */
#define PASSWORD_MAX 1024
#define HATO_STR_(x) #x
#define HATO_STR(x) HATO_STR_(x)

/* Usage text. */
static void usage(FILE *f)
{
	fprintf(f, "usage: hato [-c FILE] COMMAND\n"
	           "commands:\n"
	           "  queue                       list queued messages: ID, age, size, sender, "
	           "recipients\n"
	           "  user add NAME [--stdin]     add an SMTP AUTH user; the password is asked "
	           "twice\n"
	           "                              without echo, or read as one line from stdin\n"
	           "  user passwd NAME [--stdin]  change a user's password (asked the same way)\n"
	           "  user del NAME               remove a user\n"
	           "  user list                   list the users, one name a line\n"
	           "  version                     print the version\n"
	           "The users file is [server] users_file (default STATE/users).\n");
}

/* "3d4h", "12m", "40s": an age for people. */
static void format_age(time_t secs, char *buf, size_t size)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		snprintf(buf, size, "%lldd%lldh", (long long)secs / 86400,
			 (long long)(secs % 86400) / 3600);
	else if (secs >= 3600)
		snprintf(buf, size, "%lldh%lldm", (long long)secs / 3600, (long long)(secs % 3600) / 60);
	else if (secs >= 60)
		snprintf(buf, size, "%lldm", (long long)secs / 60);
	else
		snprintf(buf, size, "%llds", (long long)secs);
}

struct listing {
	size_t count;
	time_t now;
};

/* Print one queued message. */
static void print_message(const struct envelope *e, uint64_t msg_size, void *arg)
{
	struct listing *l = arg;
	char age[32];

	format_age(l->now - e->arrival, age, sizeof(age));
	printf("%-20s %6s %9llu %s\n", e->id, age, (unsigned long long)msg_size, e->sender);
	for (size_t i = 0; i < e->nrcpts; i++)
		printf("%38s %s\n", "", e->rcpts[i].addr);
	l->count++;
}

/* hato queue */
static int cmd_queue(const struct conf *c)
{
	struct listing l = {0, time(NULL)};
	char err[512];

	printf("%-20s %6s %9s %s\n", "ID", "AGE", "SIZE", "SENDER / RECIPIENTS");
	if (!queue_scan(c->state_dir, print_message, &l, err, sizeof(err))) {
		fprintf(stderr, "hato: %s\n", err);
		return 1;
	}
	printf("-- %zu message%s in %s/queue\n", l.count, l.count == 1 ? "" : "s", c->state_dir);
	return 0;
}

/* The exit code for a users-file failure with errno e; other for the rest. */
static int users_exit_code(int e, int other)
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

/* The signal that interrupted a password prompt, 0 when none. */
static volatile sig_atomic_t tty_signal;

/*
 * Read one line of password from fd into buf (at most size-1 octets), its
 * newline stripped.  0, or an exit code with *why set; the caller prints
 * it (after ending the prompt's line) and wipes buf either way.
 */
static int read_password_line(int fd, char *buf, size_t size, const char **why)
{
	size_t n = 0;
	bool too_long = false, nul = false;

	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1); /* byte by byte: no copy left in a stdio buffer */

		if (r < 0 && errno == EINTR && tty_signal == 0)
			continue;
		if (r < 0) {
			*why = tty_signal != 0 ? "interrupted" : "cannot read the password";
			buf[n] = '\0';
			return EX_IOERR;
		}
		if (r == 0 || ch == '\n')
			break;
		if (ch == '\0')
			nul = true;
		if (n + 1 < size)
			buf[n++] = ch;
		else
			too_long = true; /* read on to the newline, keep nothing */
	}
	buf[n] = '\0';
	*why = too_long ? "password too long (at most " HATO_STR(PASSWORD_MAX) " octets)"
	       : nul    ? "password contains a NUL byte"
	       : n == 0 ? "empty password"
	                : NULL;
	return *why != NULL ? EX_DATAERR : 0;
}

/* --stdin: the password is the first line of standard input. */
static int read_password_stdin(char *buf, size_t size)
{
	const char *why;
	int rc = read_password_line(STDIN_FILENO, buf, size, &why);

	if (rc != 0)
		fprintf(stderr, "hato: %s\n", why);
	return rc;
}

/* Remember a signal that arrived while the terminal had echo off. */
static void tty_catch(int sig)
{
	tty_signal = sig;
}

/* Show prompt on the terminal and read a line there (echo is off). */
static int tty_ask(int fd, const char *prompt, char *buf, size_t size, const char **why)
{
	int rc;

	if (!write_all(fd, prompt, strlen(prompt))) {
		*why = "cannot write to the terminal";
		return EX_IOERR;
	}
	rc = read_password_line(fd, buf, size, why);
	(void)write_all(fd, "\n", 1); /* the typed newline was not echoed either */
	return rc;
}

/*
 * Ask for the password twice on /dev/tty with echo off (so it works with
 * stdin redirected, and never shows the password).  A signal while asking
 * restores the terminal first, then takes its default course.
 */
static int read_password_tty(const char *user, char *pw, size_t size)
{
	static const int sigs[] = {SIGINT, SIGHUP, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};
	struct sigaction sa, old_sa[sizeof(sigs) / sizeof(sigs[0])];
	struct termios old, quiet;
	char again[PASSWORD_MAX + 1], prompt[128];
	const char *why = NULL;
	int fd, rc;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "hato: no terminal to ask for the password on (%s): use --stdin\n",
		        strerror(errno));
		return EX_USAGE;
	}
	if (tcgetattr(fd, &old) != 0) {
		fprintf(stderr, "hato: cannot use the terminal (%s): use --stdin\n",
		        strerror(errno));
		close(fd);
		return EX_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_catch; /* no SA_RESTART: the signal ends the read */
	sigemptyset(&sa.sa_mask);
	tty_signal = 0;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &old_sa[i]);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	quiet.c_lflag |= ICANON;
	/* echo goes off before the prompt shows: nothing typed is echoed */
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
		why = "cannot turn the terminal's echo off";
		rc = EX_IOERR;
	} else {
		snprintf(prompt, sizeof(prompt), "Password for %s: ", user); /* name <= 64 */
		rc = tty_ask(fd, prompt, pw, size, &why);
		if (rc == 0)
			rc = tty_ask(fd, "Retype the password: ", again, sizeof(again), &why);
		if (rc == 0 && strcmp(pw, again) != 0) {
			why = "the passwords do not match";
			rc = EX_DATAERR;
		}
	}
	explicit_bzero(again, sizeof(again));
	tcsetattr(fd, TCSAFLUSH, &old);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	close(fd);
	if (tty_signal != 0) {
		explicit_bzero(pw, size);
		raise(tty_signal); /* dies, or stops and continues here */
		why = "interrupted";
		rc = EX_IOERR;
	}
	if (rc != 0)
		fprintf(stderr, "hato: %s\n", why);
	return rc;
}

/* As root, chown path to the daemon user and group ([server] user, group)
 * when that user exists, so hatod, which runs as it, can read it. */
static int give_to_daemon(const struct conf *c, const char *path)
{
	struct passwd *pw;
	struct group *gr;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam(c->user);
	if (pw == NULL || pw->pw_uid == 0)
		return 0;
	gr = getgrnam(c->group);
	if (chown(path, pw->pw_uid, gr != NULL ? gr->gr_gid : pw->pw_gid) != 0) {
		fprintf(stderr, "hato: cannot chown %s to %s: %s\n", path, c->user,
		        strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

/* Create the state directory (0700) when it is not there yet, as hatod
 * would, before the users file is written. */
static int prepare_state_dir(const struct conf *c)
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
	struct userdb *db;
	struct stat st;
	bool exists, created;
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
	if ((rc = prepare_state_dir(c)) != 0) {
		free(hash);
		return rc;
	}
	created = lstat(c->users_file, &st) != 0 && errno == ENOENT;
	if (!userdb_set(c->users_file, name, hash, err, sizeof(err))) {
		int e = errno;
		fprintf(stderr, "hato: %s\n", err);
		free(hash);
		return users_exit_code(e, EX_CANTCREAT);
	}
	free(hash);
	return created ? give_to_daemon(c, c->users_file) : 0;
}

/* hato user del NAME */
static int user_del(const struct conf *c, const char *name)
{
	char err[1024];

	if (!userdb_delete(c->users_file, name, err, sizeof(err))) {
		int e = errno;
		fprintf(stderr, "hato: %s\n", err);
		return e == ENOENT ? EX_NOUSER : users_exit_code(e, EX_CANTCREAT);
	}
	return 0;
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

int main(int argc, char **argv)
{
	const char *path = getenv("HATO_CONFIG");
	struct conf *c;
	char err[1024];
	int ch, rc;

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
	if (path != NULL && *path == '\0')
		path = NULL;
	c = conf_load(path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "hato: %s\n", err);
		return EX_CONFIG;
	}
	if (strcmp(argv[optind], "queue") == 0) {
		rc = cmd_queue(c);
	} else if (strcmp(argv[optind], "user") == 0) {
		rc = cmd_user(c, argc - optind, argv + optind);
	} else {
		fprintf(stderr, "hato: unknown command \"%s\"\n", argv[optind]);
		usage(stderr);
		rc = 64;
	}
	conf_free(c);
	return rc;
}
