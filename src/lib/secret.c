/*
 * secret.c - passwords from a descriptor or the terminal.  See secret.h.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "durable.h"

/* The signal that interrupted a prompt, 0 when none. */
static volatile sig_atomic_t secret_signal;

/* Remember a signal that arrived while the terminal had echo off. */
static void secret_catch(int sig)
{
	secret_signal = sig;
}

/* See secret.h. */
enum secret_status secret_read_line(int fd, char *buf, size_t size, unsigned flags)
{
	size_t n = 0;
	bool too_long = false, nul = false;

	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1); /* byte by byte: no copy left in a stdio buffer */

		if (r < 0 && errno == EINTR && secret_signal == 0)
			continue;
		if (r < 0) {
			buf[n] = '\0';
			return secret_signal != 0 ? SECRET_INTERRUPTED : SECRET_IO;
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
	if ((flags & SECRET_STRIP_CR) && n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (too_long)
		return SECRET_TOO_LONG;
	if (nul && (flags & SECRET_REFUSE_NUL))
		return SECRET_NUL;
	return n == 0 ? SECRET_EMPTY : SECRET_OK;
}

/* See secret.h. */
enum secret_status secret_ask_tty(const char *const *prompts, char *const *answers,
				  const size_t *sizes, size_t n, unsigned flags)
{
	static const int sigs[] = {SIGINT, SIGHUP, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};
	struct sigaction sa, old_sa[sizeof(sigs) / sizeof(sigs[0])];
	struct termios old, quiet;
	enum secret_status st = SECRET_OK;
	int fd, e;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return SECRET_NO_TTY;
	if (tcgetattr(fd, &old) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return SECRET_NO_TERMIOS;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = secret_catch; /* no SA_RESTART: the signal ends the read */
	sigemptyset(&sa.sa_mask);
	secret_signal = 0;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &old_sa[i]);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	quiet.c_lflag |= ICANON;
	/* echo goes off before the prompt shows: nothing typed is echoed */
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
		st = SECRET_NO_QUIET;
	for (size_t i = 0; st == SECRET_OK && i < n; i++) {
		if (!write_all(fd, prompts[i], strlen(prompts[i])))
			st = SECRET_IO;
		else
			st = secret_read_line(fd, answers[i], sizes[i], flags);
		(void)write_all(fd, "\n", 1); /* the typed newline was not echoed */
	}
	e = errno;
	tcsetattr(fd, TCSAFLUSH, &old);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	close(fd);
	if (secret_signal != 0) {
		for (size_t i = 0; i < n; i++)
			explicit_bzero(answers[i], sizes[i]);
		raise(secret_signal); /* dies, or stops and continues here */
		return SECRET_INTERRUPTED;
	}
	errno = e;
	return st;
}
