/*
 * submit.h - `hato send`: submit a message from standard input, or every
 * file of a directory, straight to a mail server over SMTP, as a mail user
 * agent does (RFC 6409).  The command line, the password, the envelope;
 * message.h prepares each message and submit_session.h talks to the
 * server.
 *
 *   hato send --server HOST[:PORT] [--tls starttls|implicit|none]
 *             [--user NAME] [--password-file FILE] [--insecure]
 *             [-f ADDR] [-t] [-v] [--batch DIR] [--timeout SECONDS]
 *             [RECIPIENT...]
 *
 * Exit codes are sysexits(3): 0 when the server took every message;
 * EX_USAGE bad options; EX_NOINPUT an unreadable batch directory, batch
 * file or password file; EX_DATAERR a message that cannot be sent as it is
 * or a 5xx refusal of it or a recipient; EX_IOERR standard input cannot be
 * read; and the session's codes (submit_session.h).  With --batch the code
 * is that of the first failure.
 */
#ifndef HATO_SUBMIT_H
#define HATO_SUBMIT_H

/* Run `hato send`; argv[0] is "send".  Returns the exit code. */
int submit_main(int argc, char **argv);

#endif
