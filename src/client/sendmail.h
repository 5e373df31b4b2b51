/*
 * sendmail.h - sendmail compatibility: `sendmail`, `hato send` without
 * --server, and `mailq`.  The message on standard input becomes one drop
 * file in [server] maildrop_dir (maildrop.h), which hatod queues; nothing
 * goes over the network and hatod need not be running.
 *
 *   sendmail [-t] [-i] [-f ADDR] [-F NAME] [-N DSN] [-R RET] [-V ENVID] [-v]
 *            [-c FILE] [RECIPIENT...]
 *   sendmail -bp        (mailq): list the queue, as `hato queue` does
 *
 * The pure half - options, the lone-dot end of input, the envelope and
 * the message - is separate from the I/O (standard input, the drop file),
 * so that the unit tests need neither.  hato.c loads the configuration and
 * lists the queue for -bp; sendmail_run() does the rest.
 *
 * Exit codes are sysexits(3), each with one line "hato: ..." on stderr:
 * 0 only once the drop file is renamed into place (the message is then
 * hatod's); EX_USAGE bad options or no recipients; EX_DATAERR a bad
 * address (named), a bare CR or NUL, a message over message_size_max;
 * EX_IOERR standard input unreadable or a failed write; EX_TEMPFAIL the
 * maildrop directory missing (hatod creates it) or the disk full;
 * EX_CANTCREAT the directory not writable (hato not set-gid
 * maildrop_group: see `make install`).
 */
#ifndef HATO_SENDMAIL_H
#define HATO_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "conf.h"
#include "dsn.h"
#include "hato_limits.h"
#include "message.h"
#include "strbuf.h"

#define SENDMAIL_FULLNAME_MAX 256 /* octets of -F NAME */

/* The command line.  Strings point into argv. */
struct sendmail_opts {
	const char *config;   /* -c FILE, NULL when not given */
	const char *sender;   /* -f ADDR / -r ADDR as given, NULL when not */
	const char *fullname; /* -F NAME, NULL when not given */
	unsigned notify;      /* -N never|success,failure,delay: enum dsn_notify, 0: none */
	enum dsn_ret ret;     /* -R full|hdrs, DSN_RET_UNSPEC when not given */
	const char *envid;    /* -V ENVID (xtext, checked), NULL when not given */
	bool extract;         /* -t: recipients from To, Cc and Bcc too */
	bool ignore_dots;     /* -i, -oi: a line "." is text, not the end */
	bool verbose;         /* -v */
	bool list_queue;      /* -bp, or invoked as mailq */
	bool help;            /* --help */
	char *const *rcpts;   /* the arguments after the options */
	size_t nrcpts;
};

/*
 * Parse argv (argv[0] is the program: "sendmail", "mailq" or "send") into
 * o.  Options end at the first argument that is not one, or after "--";
 * flags may be grouped ("-ti") and an option's value attached or separate
 * ("-fADDR", "-f ADDR").  mailq: list the queue (recipients refused).  0,
 * or EX_USAGE with one line in err ("unknown option -X", "no recipients").
 */
int sendmail_parse_args(int argc, char *const *argv, bool mailq, struct sendmail_opts *o, char *err,
			size_t errsize);

/* Is `hato send` argv (argv[0] "send") meant for the SMTP client
 * (submit.h) - does it hold a long option such as --server? */
bool sendmail_wants_server(int argc, char *const *argv);

/* Print the usage and option summary to f. */
void sendmail_usage(FILE *f);

/*
 * Without -i, input ends at a line that is "." alone (LF or CRLF ended,
 * or unended at the end of input).  Look for it in buf[*pos..len), *pos
 * being the start of a line (0 at first): true with *end the offset of
 * that line (the message is buf[0..*end)); false with *pos advanced past
 * the complete lines looked at, to call again once more input is in buf.
 * eof: no more input will come, so an unended last line is complete.
 */
bool sendmail_dot_end(const char *buf, size_t len, size_t *pos, bool eof, size_t *end);

/*
 * Read fd to its end or, unless ignore_dots (-i), to the lone-dot line
 * (sendmail_dot_end; what follows it is left unread, as far as a read()
 * went) into raw, at most max octets.  0, or EX_IOERR / EX_DATAERR (too
 * big) with the reason printed.
 */
int sendmail_read_message(int fd, bool ignore_dots, uint64_t max, struct strbuf *raw);

/* What sendmail_prepare() needs from the system, so that it stays pure. */
struct sendmail_env {
	const char *user;  /* the invoking user's login name, NULL when unknown */
	const char *host;  /* domain of bare names and of the default sender */
	const char *date;  /* the value of a Date: to add (mail_date) */
	const char *msgid; /* the value of a Message-ID: to add */
};

/* A message ready for the drop file. */
struct sendmail_msg {
	char sender[ADDR_PATH_MAX + 1]; /* RFC 5321 path: "<a@b>", or "<>" */
	struct message_addrs rcpts;     /* "local@domain" each, no duplicates */
	struct strbuf data;             /* CRLF lines, not dot-stuffed */
	enum dsn_ret ret;               /* the DSN requests of the options */
	char envid[DSN_ENVID_MAX + 1];  /* "" when not given */
	unsigned notify;
};

void sendmail_msg_init(struct sendmail_msg *m);
void sendmail_msg_free(struct sendmail_msg *m);

/*
 * Make m from the options and the input raw[0..len) (the lone dot already
 * cut off): the envelope sender (-f, "" or "<>" for none; default
 * user@host), the recipients (the arguments, each an address list, plus
 * To, Cc and Bcc with -t; a name without "@" gets "@host"), the message
 * with a leading mbox "From " line dropped, its lines CRLF, Bcc removed,
 * and From: (with -F "NAME <addr>"), Date: and Message-ID: added when
 * missing, and the DSN requests of -N, -R and -V.  0, or an exit code
 * with one line in err naming what is wrong.
 */
int sendmail_prepare(const struct sendmail_opts *o, const struct sendmail_env *env, const char *raw,
		     size_t len, struct sendmail_msg *m, char *err, size_t errsize);

/* The unique part of a drop file's name: "TTTTTTTTTTTTTTTT-PID-RRRRRRRRRRRRRRRR",
 * the time in µs and 64 random bits in hex (names sort by time); false
 * when size is too small. */
bool sendmail_drop_name(uint64_t usec, pid_t pid, uint64_t rnd, char *buf, size_t size);

/*
 * Write m as a drop file into c->maildrop_dir (maildrop.h), with the
 * set-gid group when hato has one: .tmp-UNIQUE (O_EXCL, mode 0640, the
 * directory's group when that can be set), header part and message, fsync,
 * rename to UNIQUE.drop, fsync the directory.  0, or an exit code (printed);
 * on failure no drop file is left behind.  The final path goes into path.
 */
int sendmail_drop(const struct conf *c, const struct sendmail_msg *m, char *path, size_t pathsize);

/* Read standard input, prepare and drop it (-bp is the caller's). */
int sendmail_run(const struct sendmail_opts *o, const struct conf *c);

/*
 * hato may be installed set-gid maildrop_group, for the drop file alone.
 * Give the group up: for now (the effective gid becomes the real one,
 * sendmail_drop() takes it back for the write), or for good (every other
 * command).  True when done or nothing to do.
 */
bool sendmail_setgid_off(bool forever);

#endif
