/*
 * secret.h - read a password: one line from a descriptor, or asked on the
 * terminal with echo off.  Callers choose their own messages from the
 * status; errno is kept for the I/O ones.
 *
 * Reading is byte by byte, so no copy of the secret stays in a stdio
 * buffer.  While the terminal has echo off, the job-control and terminating
 * signals are caught; the terminal and the old handlers are restored first,
 * then the signal is raised again to take its default course.
 */
#ifndef HATO_SECRET_H
#define HATO_SECRET_H

#include <stdbool.h>
#include <stddef.h>

enum secret_status {
	SECRET_OK,
	SECRET_EMPTY,       /* an empty line */
	SECRET_TOO_LONG,    /* longer than size-1: nothing kept */
	SECRET_NUL,         /* a NUL octet in the line (only when refused) */
	SECRET_IO,          /* a read or write failed; errno says why */
	SECRET_INTERRUPTED, /* a signal arrived while asking */
	SECRET_NO_TTY,      /* /dev/tty cannot be opened; errno says why */
	SECRET_NO_TERMIOS,  /* it is no terminal; errno says why */
	SECRET_NO_QUIET,    /* echo cannot be turned off */
};

#define SECRET_STRIP_CR 0x1   /* "\r\n" ends a line too */
#define SECRET_REFUSE_NUL 0x2 /* a NUL octet is SECRET_NUL */

/* One line from fd into buf (at most size-1 octets), its newline stripped;
 * buf always NUL-terminated. */
enum secret_status secret_read_line(int fd, char *buf, size_t size, unsigned flags);

/* Ask prompts[i] on /dev/tty in turn, echo off, each answer into
 * answers[i] (sizes[i] octets); stops at the first that is not SECRET_OK. */
enum secret_status secret_ask_tty(const char *const *prompts, char *const *answers,
				  const size_t *sizes, size_t n, unsigned flags);

#endif
