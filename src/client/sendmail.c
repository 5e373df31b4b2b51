/*
 * sendmail.c - sendmail compatibility (sendmail.h): the options programs
 * pass to /usr/sbin/sendmail (PHP's "-t -i", cron's "-FCronDaemon -i
 * -B8BITMIME -oem root", mutt's "-oem -oi"), the message on standard
 * input, and the drop file that hands it to hatod.
 *
 * Options are read by hand, getopt-style (grouped flags, attached or
 * separate values, the first non-option ends them, as Sendmail and Postfix
 * do), so that the table of what is accepted and ignored is one switch and
 * the parser keeps no global state.  Recipients on the command line are
 * added to those of To, Cc and Bcc with -t (Postfix's rule; Sendmail's
 * was to leave them out).
 *
 * The drop file is written with maildrop.h's protocol.  Two traps:
 *
 *   - the maildrop directory is mode 1730 hato:hatodrop - the group may
 *     create files but not list them (so nobody reads another user's mail
 *     by name) - so a user cannot open the directory to fsync it.  Then
 *     syncfs() on the new file's descriptor flushes its file system, the
 *     new directory entry included.
 *   - a umask such as 077 would leave the file unreadable for hatod's
 *     group: the mode is set with fchmod, and the group (the directory's),
 *     when the process is not running set-gid, with fchown where allowed
 *     (a member of it, or root - cron's mail, say).
 *
 * If the directory cannot be made durable after the rename, the file is
 * taken back (unlinked) and the exit code says "not sent"; if hatod took it
 * already, it has committed it to its queue (it removes a drop file only
 * then), so the message is sent and the exit code is 0.
 */
#include "sendmail.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "durable.h"
#include "mail_date.h"
#include "mail_id.h"
#include "maildrop.h"
#include "util.h"

#define SENDMAIL_READ_CHUNK 65536
#define SENDMAIL_NAME_TRIES 8 /* fresh names tried when .tmp-UNIQUE exists */
#define SENDMAIL_PATH_MAX 4096

/* Format one line into err; returns code, for `return fail(...)`. */
static int __attribute__((format(printf, 4, 5)))
fail(int code, char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	if (errsize > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errsize, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* --- options ------------------------------------------------------------------------ */

/* Does option letter c take a value ("-f ADDR")? */
static bool takes_value(char c)
{
	return strchr("BFNRVbcfor", c) != NULL;
}

/* Apply "-o VALUE": -oi is the one that matters; the error and delivery
 * modes and the old 7/8-bit switches are accepted and ignored. */
static int apply_o(const char *v, struct sendmail_opts *o, char *err, size_t errsize)
{
	if (strcmp(v, "i") == 0) {
		o->ignore_dots = true;
		return 0;
	}
	if (v[0] == 'e' || v[0] == 'd' || strcmp(v, "m") == 0 || strcmp(v, "o") == 0 ||
	    strcmp(v, "7") == 0 || strcmp(v, "8") == 0)
		return 0; /* -oem -oee -odb -odi ...: there is one mode, the drop file */
	return fail(EX_USAGE, err, errsize, "unknown option -o%s", v);
}

/* Apply option c with its value v (NULL for a flag). */
static int apply_option(char c, const char *v, struct sendmail_opts *o, char *err, size_t errsize)
{
	switch (c) {
	case 'i':
		o->ignore_dots = true;
		return 0;
	case 't':
		o->extract = true;
		return 0;
	case 'v':
		o->verbose = true;
		return 0;
	case 'm': /* "me too": the sender gets a copy when on a list */
	case 'n': /* no aliasing: hatod resolves aliases at delivery */
	case 'U': /* initial submission */
		return 0;
	case 'B': /* body type: 7BIT, 8BITMIME; hatod looks at the message */
		return 0;
	case 'N': /* DSN: when to notify, for every recipient (RFC 3461 NOTIFY) */
		if (!dsn_parse_notify(v, &o->notify))
			return fail(EX_USAGE, err, errsize,
				    "-N: \"never\" or a list of success, failure and delay");
		return 0;
	case 'R': /* DSN: what a failure report returns (RET) */
		if (!dsn_parse_ret(v, &o->ret))
			return fail(EX_USAGE, err, errsize, "-R: \"full\" or \"hdrs\"");
		return 0;
	case 'V': /* DSN: the envelope ID (ENVID), xtext as sendmail takes it */
		if (!dsn_valid_envid(v))
			return fail(EX_USAGE, err, errsize,
				    "-V: an envelope ID is 1 to %d characters of xtext",
				    DSN_ENVID_MAX);
		o->envid = v;
		return 0;
	case 'b':
		if (strcmp(v, "m") == 0)
			return 0; /* deliver mail: the default */
		if (strcmp(v, "p") == 0) {
			o->list_queue = true;
			return 0;
		}
		return fail(EX_USAGE, err, errsize, "unknown option -b%s", v);
	case 'c':
		o->config = v;
		return 0;
	case 'f':
	case 'r':
		o->sender = v;
		return 0;
	case 'F':
		for (const char *p = v; *p != '\0'; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				return fail(EX_USAGE, err, errsize,
					    "-F: control characters in the name");
		if (strlen(v) > SENDMAIL_FULLNAME_MAX)
			return fail(EX_USAGE, err, errsize, "-F: longer than %d octets",
				    SENDMAIL_FULLNAME_MAX);
		o->fullname = v;
		return 0;
	case 'o':
		return apply_o(v, o, err, errsize);
	default:
		return fail(EX_USAGE, err, errsize, "unknown option -%c", c);
	}
}

/* See sendmail.h. */
int sendmail_parse_args(int argc, char *const *argv, bool mailq, struct sendmail_opts *o, char *err,
			size_t errsize)
{
	int i, rc;

	memset(o, 0, sizeof(*o));
	o->list_queue = mailq;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if (strcmp(arg, "--help") == 0) {
			o->help = true;
			return 0;
		}
		if (arg[1] == '-')
			return fail(EX_USAGE, err, errsize, "unknown option %s", arg);
		for (const char *p = arg + 1; *p != '\0'; p++) {
			const char *v = NULL;

			if (takes_value(*p)) {
				v = p[1] != '\0' ? p + 1 : i + 1 < argc ? argv[++i] : NULL;
				if (v == NULL)
					return fail(EX_USAGE, err, errsize,
						    "option -%c needs a value", *p);
			}
			if ((rc = apply_option(*p, v, o, err, errsize)) != 0)
				return rc;
			if (v != NULL)
				break; /* the rest of the argument was the value */
		}
	}
	o->rcpts = argv + (i < argc ? i : argc);
	o->nrcpts = i < argc ? (size_t)(argc - i) : 0;
	if (o->list_queue && o->nrcpts > 0)
		return fail(EX_USAGE, err, errsize,
			    "listing the queue (-bp, mailq) takes no recipients");
	if (!o->list_queue && !o->extract && o->nrcpts == 0)
		return fail(EX_USAGE, err, errsize, "no recipients");
	return 0;
}

/* See sendmail.h. */
bool sendmail_wants_server(int argc, char *const *argv)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0)
			return false;
		if (arg[0] != '-' || arg[1] == '\0')
			continue; /* a recipient: submit's getopt_long looks past them */
		if (arg[1] == '-')
			return strcmp(arg, "--help") != 0;
		for (const char *p = arg + 1; *p != '\0'; p++) {
			if (!takes_value(*p))
				continue;
			if (p[1] == '\0')
				i++; /* "-F --name": the value is no option */
			break;
		}
	}
	return false;
}

/* See sendmail.h. */
void sendmail_usage(FILE *f)
{
	fprintf(f,
		"usage: sendmail [-t] [-i] [-f ADDR] [-F NAME] [-N DSN] [-R RET] [-V ENVID] [-v]\n"
		"                [-c FILE] [RECIPIENT...]\n"
		"       hato [-c FILE] send [the same]    (without --server)\n"
		"       mailq [-c FILE], sendmail -bp     list the queue\n"
		"Queue the message on standard input for hatod, through the maildrop\n"
		"directory; hatod need not be running.\n"
		"  -t         also send to the To, Cc and Bcc addresses\n"
		"  -i, -oi    a line with a lone \".\" is text, not the end of the message\n"
		"  -f ADDR    envelope sender (default USER@HOSTNAME; \"<>\" for none)\n"
		"  -F NAME    full name for the From: added to a message without one\n"
		"  -N DSN     delivery reports wanted: never, or some of success,failure,delay\n"
		"  -R RET     what a failure report returns of the message: full or hdrs\n"
		"  -V ENVID   envelope ID for delivery reports (xtext, RFC 3461)\n"
		"  -v         say on stderr what is done\n"
		"  -c FILE    configuration file (default $HATO_CONFIG, else built in)\n"
		"  -bp        list the queue\n"
		"Accepted and ignored: -bm -oe* -od* -om -oo -m -n -U -B TYPE.  Bcc: is\n"
		"removed; From:, Date: and Message-ID: are added when missing; a recipient\n"
		"without a domain gets @HOSTNAME.\n");
}

/* --- the message -------------------------------------------------------------------- */

/* See sendmail.h. */
bool sendmail_dot_end(const char *buf, size_t len, size_t *pos, bool eof, size_t *end)
{
	while (*pos < len) {
		size_t start = *pos;
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t n = nl != NULL ? (size_t)(nl - (buf + start)) : len - start;

		if (buf[start] == '.' &&
		    (n == 1 || (n == 2 && buf[start + 1] == '\r' && nl != NULL)) &&
		    (nl != NULL || eof)) {
			*end = start;
			return true;
		}
		if (nl == NULL)
			return false; /* an unended line: wait for the rest of it */
		*pos = start + n + 1;
	}
	return false;
}

/* See sendmail.h. */
void sendmail_msg_init(struct sendmail_msg *m)
{
	m->sender[0] = '\0';
	m->ret = DSN_RET_UNSPEC;
	m->envid[0] = '\0';
	m->notify = 0;
	message_addrs_init(&m->rcpts);
	strbuf_init(&m->data);
}

/* See sendmail.h. */
void sendmail_msg_free(struct sendmail_msg *m)
{
	message_addrs_free(&m->rcpts);
	strbuf_free(&m->data);
}

/* Parse text as exactly one address (a bare name gets "@host") into out,
 * "local@domain"; false with err set. */
static bool one_address(const char *text, const char *host, char *out, size_t size, char *err,
			size_t errsize)
{
	struct message_addrs l;
	bool ok;

	message_addrs_init(&l);
	ok = message_parse_addr_list_in(text, strlen(text), host, &l, err, errsize);
	if (ok && l.n != 1) {
		fail(0, err, errsize, "not one address");
		ok = false;
	}
	if (ok && !strcpy_bounded(out, l.v[0], size)) {
		fail(0, err, errsize, "too long");
		ok = false;
	}
	message_addrs_free(&l);
	return ok;
}

/* The envelope sender into m->sender (a path) and the address of an added
 * From: into from: 0 or an exit code. */
static int choose_sender(const struct sendmail_opts *o, const struct sendmail_env *env,
			 struct sendmail_msg *m, char *from, size_t fromsize, char *err,
			 size_t errsize)
{
	char addr[ADDR_PATH_MAX + 1], why[256], shown[200], text[ADDR_PATH_MAX * 2];
	bool have_user = false;

	if (env->user != NULL && env->user[0] != '\0' &&
	    xsnprintf_ok(text, sizeof(text), "%s@%s", env->user, env->host))
		have_user = one_address(text, env->host, from, fromsize, why, sizeof(why));
	if (o->sender != NULL && (o->sender[0] == '\0' || strcmp(o->sender, "<>") == 0)) {
		strcpy_bounded(m->sender, "<>", sizeof(m->sender)); /* the null sender */
	} else if (o->sender != NULL) {
		escape_text(o->sender, strlen(o->sender), shown, sizeof(shown));
		if (!one_address(o->sender, env->host, addr, sizeof(addr), why, sizeof(why)))
			return fail(EX_DATAERR, err, errsize, "-f \"%s\": %s", shown, why);
		if (!xsnprintf_ok(m->sender, sizeof(m->sender), "<%s>", addr))
			return fail(EX_DATAERR, err, errsize, "-f \"%s\": too long", shown);
		strcpy_bounded(from, addr, fromsize);
		return 0;
	} else if (have_user) {
		have_user = xsnprintf_ok(m->sender, sizeof(m->sender), "<%s>", from);
	}
	if (!have_user) {
		const char *u = env->user != NULL ? env->user : "?";

		escape_text(u, strlen(u), shown, sizeof(shown));
		return fail(EX_USAGE, err, errsize,
			    "cannot make an address of user \"%s\" at %s: give -f ADDR", shown,
			    env->host);
	}
	return 0;
}

/* Where the message starts: past a leading mbox "From " line, which is no
 * header field (Postfix drops it too). */
static size_t skip_mbox_from(const char *raw, size_t len)
{
	const char *nl;

	if (len < 5 || memcmp(raw, "From ", 5) != 0)
		return 0;
	nl = memchr(raw, '\n', len);
	return nl != NULL ? (size_t)(nl - raw) + 1 : len;
}

/* See sendmail.h. */
int sendmail_prepare(const struct sendmail_opts *o, const struct sendmail_env *env, const char *raw,
		     size_t len, struct sendmail_msg *m, char *err, size_t errsize)
{
	char from_addr[ADDR_PATH_MAX + 1], why[512], shown[200];
	struct message_fill fill = {
		.date = env->date,
		.msgid = env->msgid,
		.extract = o->extract,
		.domain = env->host,
	};
	struct strbuf from;
	size_t skip;
	int rc;

	rc = choose_sender(o, env, m, from_addr, sizeof(from_addr), err, errsize);
	if (rc != 0)
		return rc;
	m->ret = o->ret;
	m->notify = o->notify;
	if (o->envid != NULL && !strcpy_bounded(m->envid, o->envid, sizeof(m->envid)))
		return fail(EX_USAGE, err, errsize, "-V: too long");
	for (size_t i = 0; i < o->nrcpts; i++) {
		const char *r = o->rcpts[i];

		if (!message_parse_addr_list_in(r, strlen(r), env->host, &m->rcpts, why,
						sizeof(why))) {
			escape_text(r, strlen(r), shown, sizeof(shown));
			return fail(EX_DATAERR, err, errsize, "recipient \"%s\": %s", shown, why);
		}
	}
	strbuf_init(&from);
	if (!message_format_mailbox(o->fullname != NULL ? o->fullname : "", from_addr, &from)) {
		strbuf_free(&from);
		return fail(EX_USAGE, err, errsize, "-F: control characters in the name");
	}
	fill.from = from.s;
	skip = skip_mbox_from(raw, len);
	if (!message_prepare(raw + skip, len - skip, &fill, &m->data, &m->rcpts, why,
			     sizeof(why))) {
		strbuf_free(&from);
		return fail(EX_DATAERR, err, errsize, "message: %s", why);
	}
	strbuf_free(&from);
	if (m->rcpts.n == 0)
		return fail(EX_USAGE, err, errsize, "no recipients");
	return 0;
}

/* --- the drop file ------------------------------------------------------------------ */

/* See sendmail.h. */
bool sendmail_drop_name(uint64_t usec, pid_t pid, uint64_t rnd, char *buf, size_t size)
{
	return xsnprintf_ok(buf, size, "%016llx-%ld-%016llx", (unsigned long long)usec, (long)pid,
			    (unsigned long long)rnd);
}

/* See sendmail.h. */
bool sendmail_setgid_off(bool forever)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) != 0)
		return false;
	if (forever)
		return (e == r && s == r) || setresgid(r, r, r) == 0;
	return e == r || setresgid((gid_t)-1, r, (gid_t)-1) == 0;
}

/* Take the set-gid group back (the saved one) for the drop file. */
static bool setgid_on(void)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) != 0)
		return false;
	return e == s || setresgid((gid_t)-1, s, (gid_t)-1) == 0;
}

/* 64 bits that another sendmail in the same microsecond will not have. */
static uint64_t drop_random(void)
{
	uint64_t x;

	random_octets(&x, sizeof(x));
	return x;
}

/* Microseconds since the epoch. */
static uint64_t now_usec(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* The exit code for errno e while creating (create) or writing the file. */
static int drop_exit_code(int e, bool create)
{
	switch (e) {
	case ENOENT: /* no maildrop directory (yet): hatod creates it */
	case ENOSPC:
	case EDQUOT:
	case EAGAIN:
	case EINTR:
		return EX_TEMPFAIL;
	case EACCES:
	case EPERM:
	case EROFS:
		return EX_CANTCREAT;
	default:
		return create ? EX_CANTCREAT : EX_IOERR;
	}
}

/* Print why the file could not be created in dir; the exit code. */
static int create_failed(const struct conf *c, int e)
{
	if (e == ENOENT)
		fprintf(stderr,
			"hato: maildrop directory %s does not exist (hatod creates it when it "
			"starts)\n",
			c->maildrop_dir);
	else if (e == EACCES || e == EPERM)
		fprintf(stderr,
			"hato: cannot create a file in maildrop directory %s: %s (hato must be "
			"installed set-gid %s: see make install)\n",
			c->maildrop_dir, strerror(e), c->maildrop_group);
	else
		fprintf(stderr, "hato: cannot create a file in maildrop directory %s: %s\n",
			c->maildrop_dir, strerror(e));
	return drop_exit_code(e, true);
}

/* Create dir/.tmp-UNIQUE: the descriptor, or -1 with errno; tmp and final
 * get the two paths. */
static int create_tmp(const char *dir, char *tmp, char *final, size_t size)
{
	char unique[64];

	for (int i = 0; i < SENDMAIL_NAME_TRIES; i++) {
		int fd;

		if (!sendmail_drop_name(now_usec(), getpid(), drop_random(), unique,
					sizeof(unique)) ||
		    !xsnprintf_ok(tmp, size, "%s/.tmp-%s", dir, unique) ||
		    !xsnprintf_ok(final, size, "%s/%s%s", dir, unique, MAILDROP_SUFFIX)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1; /* EEXIST every time */
}

/* Make the file readable for hatod: mode 0640 whatever the umask, and the
 * directory's group (maildrop_group, or hatod's own when that group does
 * not exist) when it is not the file's already - best effort: allowed for
 * a member of that group and for root; set-gid hato has it from the start
 * (stat, not open: the directory cannot be read, only searched). */
static bool set_mode_group(int fd, const char *dir)
{
	struct stat st, dst;

	if (fchmod(fd, 0640) != 0)
		return false;
	if (fstat(fd, &st) == 0 && stat(dir, &dst) == 0 && st.st_gid != dst.st_gid)
		(void)fchown(fd, (uid_t)-1, dst.st_gid);
	return true;
}

/* Make the rename of the file open as fd durable: fsync the directory or,
 * when the directory cannot be opened (mode 1730: no read), the file
 * system.  False with errno. */
static bool sync_entry(const char *dir, int fd)
{
	if (fsync_dir(dir))
		return true;
	if (errno != EACCES && errno != EPERM)
		return false;
	return syncfs(fd) == 0;
}

/* See sendmail.h. */
int sendmail_drop(const struct conf *c, const struct sendmail_msg *m, char *path, size_t pathsize)
{
	char tmp[SENDMAIL_PATH_MAX], final[SENDMAIL_PATH_MAX];
	const char **paths = xcalloc(m->rcpts.n + 1, sizeof(*paths));
	const struct maildrop_dsn dsn = {
		.ret = m->ret, .envid = m->envid[0] ? m->envid : NULL, .notify = m->notify};
	struct strbuf head;
	int fd = -1, e, rc = 0;

	strbuf_init(&head);
	for (size_t i = 0; i < m->rcpts.n; i++) {
		char *p = xmalloc(strlen(m->rcpts.v[i]) + 3);

		sprintf(p, "<%s>", m->rcpts.v[i]);
		paths[i] = p;
	}
	maildrop_format_header(&head, m->sender, &dsn, paths, m->rcpts.n);
	for (size_t i = 0; i < m->rcpts.n; i++)
		free((char *)paths[i]);
	free(paths);
	if (head.len > MAILDROP_HEADER_MAX) {
		fprintf(stderr, "hato: too many recipients (%zu) for one drop file\n", m->rcpts.n);
		strbuf_free(&head);
		return EX_DATAERR;
	}
	if (!setgid_on()) {
		fprintf(stderr, "hato: cannot take the set-gid group back: %s\n", strerror(errno));
		strbuf_free(&head);
		return EX_OSERR;
	}
	fd = create_tmp(c->maildrop_dir, tmp, final, sizeof(tmp));
	if (fd < 0) {
		rc = create_failed(c, errno);
		strbuf_free(&head);
		return rc;
	}
	if (!set_mode_group(fd, c->maildrop_dir) || !write_all(fd, head.s, head.len) ||
	    !write_all(fd, m->data.s, m->data.len) || fsync(fd) != 0) {
		e = errno;
		fprintf(stderr, "hato: cannot write %s: %s\n", tmp, strerror(e));
		rc = drop_exit_code(e, false);
	} else if (rename(tmp, final) != 0) {
		e = errno;
		fprintf(stderr, "hato: cannot rename %s to %s: %s\n", tmp, final, strerror(e));
		rc = drop_exit_code(e, false);
	} else if (!sync_entry(c->maildrop_dir, fd)) {
		e = errno;
		if (unlink(final) == 0 || errno != ENOENT) {
			fprintf(stderr, "hato: cannot sync maildrop directory %s: %s\n",
				c->maildrop_dir, strerror(e));
			rc = drop_exit_code(e, false);
		} /* else hatod has queued it already: sent */
	}
	if (rc != 0)
		unlink(tmp); /* ENOENT after a rename: nothing left */
	close(fd);           /* the data is on disk already (fsync) */
	strbuf_free(&head);
	if (rc == 0 && !strcpy_bounded(path, final, pathsize) && pathsize > 0)
		path[0] = '\0';
	return rc;
}

/* --- the command -------------------------------------------------------------------- */

/* See sendmail.h. */
int sendmail_read_message(int fd, bool ignore_dots, uint64_t max, struct strbuf *raw)
{
	char chunk[SENDMAIL_READ_CHUNK];
	size_t pos = 0, end;

	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "hato: cannot read standard input: %s\n", strerror(errno));
			return EX_IOERR;
		}
		strbuf_add(raw, chunk, (size_t)r);
		if (!ignore_dots && sendmail_dot_end(raw->s, raw->len, &pos, r == 0, &end)) {
			raw->len = end; /* the rest of the input is not read: sendmail's way */
			raw->s[end] = '\0';
			r = 0;
		}
		if (raw->len > max) {
			fprintf(stderr,
				"hato: the message is larger than message_size_max (%llu octets)\n",
				(unsigned long long)max);
			return EX_DATAERR;
		}
		if (r == 0)
			return 0;
	}
}

/* The invoking user's login name: the password entry of the real uid, as
 * a set-gid program must (never $USER first); NULL when there is none. */
static const char *login_name(void)
{
	const struct passwd *pw = getpwuid(getuid());

	if (pw != NULL && pw->pw_name[0] != '\0')
		return pw->pw_name;
	return getenv("LOGNAME");
}

/* See sendmail.h. */
int sendmail_run(const struct sendmail_opts *o, const struct conf *c)
{
	char date[MAIL_DATE_SIZE], msgid[MAIL_MSGID_SIZE], err[768], path[SENDMAIL_PATH_MAX];
	time_t now = time(NULL);
	const char *host = c->hostname;
	struct sendmail_env env;
	struct sendmail_msg m;
	struct strbuf raw;
	int rc;

	strbuf_init(&raw);
	rc = sendmail_read_message(STDIN_FILENO, o->ignore_dots, c->limits.message_size_max, &raw);
	if (rc != 0) {
		strbuf_free(&raw);
		return rc;
	}
	if (!mail_date(now, date, sizeof(date)))
		strcpy_bounded(date, MAIL_DATE_EPOCH, sizeof(date));
	mail_msgid(now, host, msgid, sizeof(msgid));
	env = (struct sendmail_env){
		.user = login_name(), .host = host, .date = date, .msgid = msgid};
	sendmail_msg_init(&m);
	rc = sendmail_prepare(o, &env, raw.s, raw.len, &m, err, sizeof(err));
	strbuf_free(&raw);
	if (rc != 0) {
		fprintf(stderr, "hato: %s\n", err);
		sendmail_msg_free(&m);
		return rc;
	}
	if (o->verbose) {
		fprintf(stderr, "hato: sender %s\n", m.sender);
		for (size_t i = 0; i < m.rcpts.n; i++)
			fprintf(stderr, "hato: recipient <%s>\n", m.rcpts.v[i]);
	}
	rc = sendmail_drop(c, &m, path, sizeof(path));
	if (rc == 0 && o->verbose)
		fprintf(stderr, "hato: %zu octets dropped as %s for hatod\n", m.data.len, path);
	sendmail_msg_free(&m);
	return rc;
}
