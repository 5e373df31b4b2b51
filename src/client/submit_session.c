/*
 * submit_session.c - the blocking SMTP submission client behind `hato send`.
 *
 * Lock-step, no pipelining: every command waits for its reply.  The socket
 * is non-blocking and every wait is a poll() bounded by a deadline, so a
 * server that stalls anywhere - during connect, the TLS handshake, a reply
 * trickling in octet by octet - is given up after the step's timeout.  A
 * reply must arrive whole before its step's deadline; a write must make
 * progress within timeout_command (a big message on a slow link is fine,
 * a stuck one is not).
 *
 * Input from the server is bounded: SUBMIT_LINE_MAX octets per reply line,
 * SUBMIT_REPLY_LINES_MAX lines per reply; more, or a line that is not
 * "DDD", "DDD text" or "DDD-text" with the same code throughout, is a
 * garbled reply (EX_PROTOCOL) and ends the session without QUIT.  So does
 * a 421 (the server is closing), a timeout or a lost connection
 * (EX_TEMPFAIL).  Any other refusal leaves the session in step: the
 * caller may send another message (after RSET) or QUIT.
 *
 * STARTTLS: octets that arrive after the 220 but before the handshake
 * would be read as if they came over TLS (the command injection of
 * CVE-2011-0411, from the server side); they are refused as a protocol
 * error.  The capabilities are forgotten and EHLO is sent again after the
 * handshake (RFC 3207 §4.2).
 *
 * Credentials: the AUTH lines are built in local buffers that are wiped
 * after use, and -v prints "********" in their place.
 */
#include "submit_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "addr.h"
#include "base64.h"
#include "message.h"
#include "strbuf.h"
#include "util.h"

#define SUBMIT_LINE_MAX 4096       /* one reply line; RFC 5321 §4.5.3.1.5 says 512 */
#define SUBMIT_REPLY_LINES_MAX 100 /* lines in one multi-line reply (EHLO) */
#define SUBMIT_CMD_MAX 4096        /* one command line, CRLF included (AUTH PLAIN is long) */
#define SUBMIT_READ_BUF 4096
#define SUBMIT_WRITE_CHUNK (64 * 1024) /* octets of message per write */
#define SUBMIT_QUIT_TIMEOUT 10         /* seconds for QUIT: everything is decided by then */
#define SUBMIT_PASSWORD_MAX 1024       /* octets: as many as `hato user` accepts */

/* One reply: "550 5.1.1 <x@y> no such user" has code 550. */
struct reply {
	int code;
	char text[1024]; /* the first line whole, the text of each further line after a space */
};

/* What the server's EHLO reply offers. */
struct caps {
	bool starttls;
	bool auth; /* AUTH with any mechanism */
	bool auth_plain;
	bool auth_login;
	bool eightbit;           /* 8BITMIME */
	bool smtputf8;           /* SMTPUTF8 */
	unsigned long long size; /* SIZE limit, 0 when none given */
	char auth_mechs[200];    /* as offered, for errors */
};

struct submit_session {
	const struct submit_opts *o;
	const char *label; /* "" or "FILE: " before each error line */
	const char *phase; /* what we wait for, for I/O errors: "the greeting" */
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	bool broken; /* out of step: no more commands, not even QUIT */
	bool used;   /* a transaction ran: RSET before the next */
	bool quiet;  /* QUIT: whatever fails now is not worth a line */
	struct caps caps;
	char helo[ADDR_DOMAIN_MAX + 1];
	size_t rpos, rlen;
	char rbuf[SUBMIT_READ_BUF];
	char line[SUBMIT_LINE_MAX + 1];
};

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Print one error line "hato: [label]..." and return rc. */
static int __attribute__((format(printf, 3, 4)))
sess_error(const struct submit_session *s, int rc, const char *fmt, ...)
{
	va_list ap;

	if (s->quiet)
		return rc;
	fprintf(stderr, "hato: %s", s->label);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

/* The connection is out of step: print why, remember it, return rc. */
static int __attribute__((format(printf, 3, 4)))
sess_break(struct submit_session *s, int rc, const char *fmt, ...)
{
	va_list ap;

	s->broken = true;
	if (s->quiet)
		return rc;
	fprintf(stderr, "hato: %s", s->label);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

/* -v: one line of the dialogue (or of what happens around it). */
static void __attribute__((format(printf, 2, 3)))
trace(const struct submit_session *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->o->verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The first queued OpenSSL error as text, or fallback. */
static const char *ssl_error_text(char *buf, size_t size, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		return fallback;
	ERR_error_string_n(e, buf, size);
	return buf;
}

/* Wait for events on the socket until deadline: 0, or an exit code with
 * the session broken. */
static int conn_wait(struct submit_session *s, short events, long long deadline, unsigned secs)
{
	for (;;) {
		struct pollfd p = {.fd = s->fd, .events = events};
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return sess_break(s, EX_TEMPFAIL, "timeout after %u s waiting for %s", secs,
					  s->phase);
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return sess_break(s, EX_TEMPFAIL, "poll: %s", strerror(errno));
	}
}

/* What an OpenSSL I/O call that returned r wants: 0 and *events to wait
 * for, or an exit code with the session broken. */
static int ssl_want(struct submit_session *s, int r, short *events)
{
	char buf[256];
	int e = SSL_get_error(s->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*events = POLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*events = POLLOUT;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return sess_break(s, EX_TEMPFAIL, "the server closed the connection during %s",
				  s->phase);
	case SSL_ERROR_SYSCALL:
		if (errno != 0 && ERR_peek_error() == 0)
			return sess_break(s, EX_TEMPFAIL, "connection lost during %s: %s", s->phase,
					  strerror(errno));
		break;
	default:
		break;
	}
	if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
	    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
		ERR_clear_error();
		return sess_break(s, EX_TEMPFAIL, "the server closed the connection during %s",
				  s->phase);
	}
	return sess_break(s, EX_PROTOCOL, "TLS error during %s: %s", s->phase,
			  ssl_error_text(buf, sizeof(buf), "unknown"));
}

/* Write all of buf; each wait may last timeout_command.  0 or an exit code. */
static int conn_write(struct submit_session *s, const char *buf, size_t len)
{
	unsigned secs = s->o->timeout_command;

	while (len > 0) {
		size_t n = len > SUBMIT_WRITE_CHUNK ? SUBMIT_WRITE_CHUNK : len;
		short events = POLLOUT;
		ssize_t w;
		int rc;

		if (s->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			w = SSL_write(s->ssl, buf, (int)n);
			if (w <= 0 && (rc = ssl_want(s, (int)w, &events)) != 0)
				return rc;
		} else {
			w = send(s->fd, buf, n, MSG_NOSIGNAL);
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return sess_break(s, EX_TEMPFAIL, "connection lost during %s: %s",
						  s->phase, strerror(errno));
		}
		if (w > 0) {
			buf += w;
			len -= (size_t)w;
		} else if ((rc = conn_wait(s, events, now_ms() + secs * 1000LL, secs)) != 0) {
			return rc;
		}
	}
	return 0;
}

/* Refill the empty read buffer before deadline.  0 or an exit code. */
static int conn_fill(struct submit_session *s, long long deadline, unsigned secs)
{
	s->rpos = s->rlen = 0;
	for (;;) {
		short events = POLLIN;
		ssize_t r;
		int rc;

		if (s->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			r = SSL_read(s->ssl, s->rbuf, sizeof(s->rbuf));
			if (r <= 0 && (rc = ssl_want(s, (int)r, &events)) != 0)
				return rc;
		} else {
			r = recv(s->fd, s->rbuf, sizeof(s->rbuf), 0);
			if (r == 0)
				return sess_break(s, EX_TEMPFAIL,
						  "the server closed the connection during %s",
						  s->phase);
			if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return sess_break(s, EX_TEMPFAIL, "connection lost during %s: %s",
						  s->phase, strerror(errno));
		}
		if (r > 0) {
			s->rlen = (size_t)r;
			return 0;
		}
		if ((rc = conn_wait(s, events, deadline, secs)) != 0)
			return rc;
	}
}

/* Read one line into s->line, CRLF removed and control octets made '?'. */
static int conn_getline(struct submit_session *s, long long deadline, unsigned secs)
{
	size_t n = 0;
	int rc;

	for (;;) {
		char ch;

		if (s->rpos == s->rlen && (rc = conn_fill(s, deadline, secs)) != 0)
			return rc;
		ch = s->rbuf[s->rpos++];
		if (ch == '\n')
			break;
		if (n == SUBMIT_LINE_MAX)
			return sess_break(s, EX_PROTOCOL,
					  "garbled reply: a line longer than %d octets during %s",
					  SUBMIT_LINE_MAX, s->phase);
		s->line[n++] = ch;
	}
	if (n > 0 && s->line[n - 1] == '\r')
		n--;
	s->line[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s->line[i] < ' ' || s->line[i] == 0x7f)
			s->line[i] = '?';
	return 0;
}

/* Parse "DDD", "DDD text" or "DDD-text": the code (200..599) and the separator. */
static bool reply_code(const char *line, int *code, char *sep)
{
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
	    line[2] > '9' || (line[3] != '\0' && line[3] != ' ' && line[3] != '-'))
		return false;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*sep = line[3];
	return true;
}

/* Note one line of an EHLO reply (the text after "250-"). */
static void caps_line(struct caps *c, const char *text)
{
	char word[32];
	size_t n = strcspn(text, " =");
	const char *rest = text + n;

	if (n == 0 || n >= sizeof(word))
		return;
	memcpy(word, text, n);
	word[n] = '\0';
	if (*rest != '\0')
		rest++;
	if (strcasecmp(word, "STARTTLS") == 0) {
		c->starttls = true;
	} else if (strcasecmp(word, "8BITMIME") == 0) {
		c->eightbit = true;
	} else if (strcasecmp(word, "SMTPUTF8") == 0) {
		c->smtputf8 = true;
	} else if (strcasecmp(word, "SIZE") == 0) {
		uint64_t v;

		if (parse_u64(rest, 1, UINT64_MAX, &v))
			c->size = v;
	} else if (strcasecmp(word, "AUTH") == 0) {
		/* "AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN" */
		c->auth = true;
		strcpy_bounded(c->auth_mechs, rest, sizeof(c->auth_mechs));
		while (*rest != '\0') {
			size_t m = strcspn(rest, " ");

			if (m == 5 && strncasecmp(rest, "PLAIN", 5) == 0)
				c->auth_plain = true;
			if (m == 5 && strncasecmp(rest, "LOGIN", 5) == 0)
				c->auth_login = true;
			rest += m;
			rest += strspn(rest, " ");
		}
	}
}

/* Read one whole reply before deadline; with caps, note what EHLO offers.
 * 0 or an exit code. */
static int conn_reply(struct submit_session *s, struct reply *rep, long long deadline,
		      unsigned secs, struct caps *caps)
{
	size_t len = 0;
	char sep = '-';

	for (unsigned i = 0; sep == '-'; i++) {
		const char *text;
		size_t tlen;
		int code, rc;

		if (i == SUBMIT_REPLY_LINES_MAX)
			return sess_break(s, EX_PROTOCOL,
					  "garbled reply: more than %d lines during %s",
					  SUBMIT_REPLY_LINES_MAX, s->phase);
		if ((rc = conn_getline(s, deadline, secs)) != 0)
			return rc;
		trace(s, "S: %s", s->line);
		if (!reply_code(s->line, &code, &sep) || (i > 0 && code != rep->code))
			return sess_break(s, EX_PROTOCOL, "garbled reply \"%s\" during %s", s->line,
					  s->phase);
		rep->code = code;
		if (caps != NULL && i > 0 && code == 250)
			caps_line(caps, s->line + 4); /* the first line is the server's name */
		/* the first line whole ("451 4.3.0 try", its '-' made a space), the text
		 * of each further line after a space */
		if (i == 0 && sep == '-')
			s->line[3] = ' ';
		text = i == 0 ? s->line : sep == '\0' ? "" : s->line + 4;
		tlen = strlen(text);
		if (i > 0 && tlen > 0 && len + 1 < sizeof(rep->text))
			rep->text[len++] = ' ';
		if (tlen > sizeof(rep->text) - 1 - len)
			tlen = sizeof(rep->text) - 1 - len;
		memcpy(rep->text + len, text, tlen);
		len += tlen;
		rep->text[len] = '\0';
	}
	if (rep->code == 421) /* the server is closing the connection */
		s->broken = true;
	return 0;
}

/*
 * Send the command line cmd (no CRLF) and read its reply within secs.
 * phase names the command in errors; shown, when set, is what -v prints
 * instead of the line (credentials).  0 or an exit code.
 */
static int conn_cmd(struct submit_session *s, struct reply *rep, const char *phase,
		    const char *shown, const char *cmd, unsigned secs, struct caps *caps)
{
	char line[SUBMIT_CMD_MAX];
	size_t len = strlen(cmd);
	char wait_for[300];
	int rc;

	if (s->broken)
		return EX_SOFTWARE;
	if (len + 2 > sizeof(line))
		return sess_error(s, EX_SOFTWARE, "%s: command too long", phase);
	memcpy(line, cmd, len);
	memcpy(line + len, "\r\n", 2);
	trace(s, "C: %s", shown != NULL ? shown : cmd);
	snprintf(wait_for, sizeof(wait_for), "the reply to %s", phase);
	s->phase = wait_for;
	rc = conn_write(s, line, len + 2);
	explicit_bzero(line, sizeof(line));
	if (rc == 0)
		rc = conn_reply(s, rep, now_ms() + secs * 1000LL, secs, caps);
	s->phase = "";
	return rc;
}

/* The exit code for a refusal: 4xx is temporary, otherwise perm. */
static int refusal_rc(const struct reply *rep, int perm)
{
	return rep->code / 100 == 4 ? EX_TEMPFAIL : perm;
}

/* --- connection ----------------------------------------------------------------- */

/* Connect to one address within timeout_connect: 0, or an errno. */
static int connect_one(struct submit_session *s, const struct addrinfo *ai)
{
	long long deadline = now_ms() + s->o->timeout_connect * 1000LL;
	socklen_t elen = sizeof(int);
	int fd, err = 0;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			err = errno;
		} else {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int n;

			do {
				long long left = deadline - now_ms();

				n = left <= 0 ? 0 : poll(&p, 1, left > 60000 ? 60000 : (int)left);
			} while ((n < 0 && errno == EINTR) || (n == 0 && now_ms() < deadline));
			if (n == 0)
				err = ETIMEDOUT;
			else if (n < 0)
				err = errno;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
				err = errno;
		}
	}
	if (err != 0) {
		close(fd);
		return err;
	}
	s->fd = fd;
	return 0;
}

/* Resolve the host and connect to its first address that answers. */
static int sess_connect(struct submit_session *s)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[8], addr[INET6_ADDRSTRLEN] = "?";
	int rc, err = 0;

	snprintf(port, sizeof(port), "%u", s->o->port);
	rc = getaddrinfo(s->o->host, port, &hints, &res);
	if (rc != 0)
		return sess_error(s, rc == EAI_AGAIN ? EX_TEMPFAIL : EX_UNAVAILABLE,
				  "cannot resolve %s: %s", s->o->host,
				  rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0,
				NI_NUMERICHOST) != 0)
			strcpy_bounded(addr, "?", sizeof(addr));
		trace(s, "* connecting to %s (%s) port %u", s->o->host, addr, s->o->port);
		if ((err = connect_one(s, ai)) == 0)
			break;
		trace(s, "* %s: %s", addr, strerror(err));
	}
	freeaddrinfo(res);
	if (s->fd >= 0)
		return 0;
	return sess_error(s, err == ETIMEDOUT ? EX_TEMPFAIL : EX_UNAVAILABLE,
			  "cannot connect to %s port %u (%s): %s", s->o->host, s->o->port, addr,
			  strerror(err));
}

/* Is host an IPv4 or IPv6 address rather than a name? */
static bool host_is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The TLS handshake on the connected socket, with verification unless insecure. */
static int sess_tls(struct submit_session *s)
{
	const struct submit_opts *o = s->o;
	long long deadline = now_ms() + o->timeout_command * 1000LL;
	char buf[256];

	s->ctx = SSL_CTX_new(TLS_client_method());
	if (s->ctx == NULL)
		return sess_break(s, EX_SOFTWARE, "cannot set up TLS: %s",
				  ssl_error_text(buf, sizeof(buf), "unknown"));
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
	if (o->insecure) {
		SSL_CTX_set_verify(s->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		if (SSL_CTX_set_default_verify_paths(s->ctx) != 1)
			return sess_break(s, EX_SOFTWARE,
					  "cannot load the system's CA certificates: %s",
					  ssl_error_text(buf, sizeof(buf), "unknown"));
		SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	}
	s->ssl = SSL_new(s->ctx);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
		return sess_break(s, EX_SOFTWARE, "cannot set up TLS: %s",
				  ssl_error_text(buf, sizeof(buf), "unknown"));
	if (host_is_ip(o->host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), o->host) != 1)
			return sess_break(s, EX_SOFTWARE, "cannot set up TLS for %s", o->host);
	} else if (SSL_set_tlsext_host_name(s->ssl, o->host) != 1 ||
		   SSL_set1_host(s->ssl, o->host) != 1) {
		return sess_break(s, EX_SOFTWARE, "cannot set up TLS for %s", o->host);
	}
	s->phase = "the TLS handshake";
	for (;;) {
		short events = POLLIN;
		int r, e, rc;

		ERR_clear_error();
		errno = 0;
		r = SSL_connect(s->ssl);
		if (r == 1)
			break;
		e = SSL_get_error(s->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
			if ((rc = conn_wait(s, events, deadline, o->timeout_command)) != 0)
				return rc;
			continue;
		}
		if (!o->insecure && SSL_get_verify_result(s->ssl) != X509_V_OK)
			return sess_break(
				s, EX_UNAVAILABLE,
				"TLS certificate verification failed for %s: %s "
				"(--insecure skips the check)",
				o->host,
				X509_verify_cert_error_string(SSL_get_verify_result(s->ssl)));
		return sess_break(s, EX_UNAVAILABLE, "TLS handshake with %s failed: %s", o->host,
				  ssl_error_text(buf, sizeof(buf),
						 errno != 0 ? strerror(errno)
							    : "the server closed the connection"));
	}
	trace(s, "* TLS %s %s, certificate %s", SSL_get_version(s->ssl),
	      SSL_CIPHER_get_name(SSL_get_current_cipher(s->ssl)),
	      o->insecure ? "not verified (--insecure)" : "verified");
	s->phase = "";
	return 0;
}

/* EHLO (HELO when EHLO is not understood and nothing needs extensions). */
static int sess_ehlo(struct submit_session *s)
{
	char cmd[sizeof(s->helo) + 8];
	struct reply rep;
	int rc;

	memset(&s->caps, 0, sizeof(s->caps));
	snprintf(cmd, sizeof(cmd), "EHLO %s", s->helo);
	if ((rc = conn_cmd(s, &rep, "EHLO", NULL, cmd, s->o->timeout_command, &s->caps)) != 0)
		return rc;
	if (rep.code == 250)
		return 0;
	if ((rep.code == 500 || rep.code == 502) && s->o->tls == SUBMIT_TLS_NONE) {
		snprintf(cmd, sizeof(cmd), "HELO %s", s->helo);
		if ((rc = conn_cmd(s, &rep, "HELO", NULL, cmd, s->o->timeout_command, NULL)) != 0)
			return rc;
		if (rep.code == 250)
			return 0;
		return sess_error(s, refusal_rc(&rep, EX_UNAVAILABLE), "HELO refused: %s",
				  rep.text);
	}
	return sess_error(s, refusal_rc(&rep, EX_UNAVAILABLE), "EHLO refused: %s", rep.text);
}

/* STARTTLS, the handshake, and EHLO again. */
static int sess_starttls(struct submit_session *s)
{
	struct reply rep;
	int rc;

	if (!s->caps.starttls)
		return sess_error(s, EX_UNAVAILABLE,
				  "%s does not offer STARTTLS (--tls implicit for port 465; "
				  "--tls none sends everything in the clear)",
				  s->o->host);
	if ((rc = conn_cmd(s, &rep, "STARTTLS", NULL, "STARTTLS", s->o->timeout_command, NULL)) !=
	    0)
		return rc;
	if (rep.code != 220)
		return sess_error(s, refusal_rc(&rep, EX_UNAVAILABLE), "STARTTLS refused: %s",
				  rep.text);
	if (s->rpos != s->rlen)
		return sess_break(s, EX_PROTOCOL,
				  "%s sent data after its reply to STARTTLS, before TLS began",
				  s->o->host);
	if ((rc = sess_tls(s)) != 0)
		return rc;
	return sess_ehlo(s);
}

/* Base64 of len octets at p into out (BASE64_ENCODED_SIZE(len) octets). */
static void b64(const char *p, size_t len, char *out)
{
	base64_encode((const unsigned char *)p, len, out);
}

/* AUTH PLAIN, or LOGIN when only that is offered (RFC 4954, RFC 4616). */
static int sess_auth(struct submit_session *s)
{
	enum { RAW_MAX = 2 + 256 + SUBMIT_PASSWORD_MAX };
	const struct submit_opts *o = s->o;
	size_t ulen = strlen(o->user), plen = strlen(o->password);
	char raw[RAW_MAX], enc[BASE64_ENCODED_SIZE(RAW_MAX)], cmd[sizeof(enc) + 16];
	const char *mech = s->caps.auth_plain ? "PLAIN" : "LOGIN";
	struct reply rep;
	int rc;

	if (s->ssl == NULL) /* submit.c refuses --user with --tls none; never in the clear */
		return sess_error(s, EX_SOFTWARE, "refusing to send a password without TLS");
	if (!s->caps.auth)
		return sess_error(s, EX_UNAVAILABLE,
				  "%s does not offer AUTH (cannot log in as %s; leave out --user?)",
				  o->host, o->user);
	if (!s->caps.auth_plain && !s->caps.auth_login)
		return sess_error(
			s, EX_UNAVAILABLE,
			"%s offers no AUTH mechanism hato can use (PLAIN, LOGIN), only: %s",
			o->host, s->caps.auth_mechs);
	if (ulen > 255 || plen > SUBMIT_PASSWORD_MAX)
		return sess_error(s, EX_USAGE, "user name or password too long");
	if (s->caps.auth_plain) {
		/* authzid (empty) NUL authcid NUL passwd */
		raw[0] = '\0';
		memcpy(raw + 1, o->user, ulen);
		raw[1 + ulen] = '\0';
		memcpy(raw + 2 + ulen, o->password, plen);
		b64(raw, 2 + ulen + plen, enc);
		snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s", enc);
		rc = conn_cmd(s, &rep, "AUTH PLAIN", "AUTH PLAIN ********", cmd, o->timeout_command,
			      NULL);
		if (rc == 0 && rep.code == 334) /* wanted the response after an empty challenge */
			rc = conn_cmd(s, &rep, "AUTH PLAIN", "********", enc, o->timeout_command,
				      NULL);
	} else {
		rc = conn_cmd(s, &rep, "AUTH LOGIN", NULL, "AUTH LOGIN", o->timeout_command, NULL);
		if (rc == 0 && rep.code == 334) {
			b64(o->user, ulen, enc);
			rc = conn_cmd(s, &rep, "AUTH LOGIN", "********", enc, o->timeout_command,
				      NULL);
		}
		if (rc == 0 && rep.code == 334) {
			b64(o->password, plen, enc);
			rc = conn_cmd(s, &rep, "AUTH LOGIN", "********", enc, o->timeout_command,
				      NULL);
		}
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(enc, sizeof(enc));
	explicit_bzero(cmd, sizeof(cmd));
	if (rc != 0)
		return rc;
	if (rep.code == 334) { /* a third challenge: give up the exchange */
		if ((rc = conn_cmd(s, &rep, "AUTH", NULL, "*", o->timeout_command, NULL)) != 0)
			return rc;
		return sess_error(s, EX_PROTOCOL, "AUTH %s as %s: unexpected challenge", mech,
				  o->user);
	}
	if (rep.code != 235)
		return sess_error(s, refusal_rc(&rep, EX_NOPERM), "AUTH %s as %s refused: %s", mech,
				  o->user, rep.text);
	return 0;
}

/* Our name for EHLO: o->helo when it is a domain, else the address literal
 * of our end of the connection. */
static void sess_helo_name(struct submit_session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];

	if (s->o->helo != NULL && addr_valid_domain(s->o->helo, strlen(s->o->helo)) &&
	    strcpy_bounded(s->helo, s->o->helo, sizeof(s->helo)))
		return;
	strcpy_bounded(s->helo, "[127.0.0.1]", sizeof(s->helo));
	if (getsockname(s->fd, (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST) !=
		    0)
		return;
	snprintf(s->helo, sizeof(s->helo), ss.ss_family == AF_INET6 ? "[IPv6:%s]" : "[%s]", addr);
}

/* See submit_session.h. */
struct submit_session *submit_session_open(const struct submit_opts *o, int *rc)
{
	struct submit_session *s = xcalloc(1, sizeof(*s));
	struct reply rep;

	s->o = o;
	s->fd = -1;
	s->label = "";
	s->phase = "";
	if ((*rc = sess_connect(s)) != 0) {
		s->broken = true;
		goto fail;
	}
	sess_helo_name(s);
	if (o->tls == SUBMIT_TLS_IMPLICIT && (*rc = sess_tls(s)) != 0)
		goto fail;
	s->phase = "the greeting";
	if ((*rc = conn_reply(s, &rep, now_ms() + o->timeout_greeting * 1000LL, o->timeout_greeting,
			      NULL)) != 0)
		goto fail;
	if (rep.code != 220) {
		*rc = sess_error(s, refusal_rc(&rep, EX_UNAVAILABLE), "%s refused the session: %s",
				 o->host, rep.text);
		goto fail;
	}
	if ((*rc = sess_ehlo(s)) != 0)
		goto fail;
	if (o->tls == SUBMIT_TLS_STARTTLS && (*rc = sess_starttls(s)) != 0)
		goto fail;
	if (o->user != NULL && (*rc = sess_auth(s)) != 0)
		goto fail;
	return s;
fail:
	submit_session_close(s);
	return NULL;
}

/* Does s contain octets above 127? */
static bool non_ascii(const char *s)
{
	return message_is_8bit(s, strlen(s));
}

/* MAIL FROM with the parameters the server understands and the message needs. */
static int sess_mail(struct submit_session *s, const struct submit_message *m)
{
	char cmd[SUBMIT_CMD_MAX], phase[ADDR_PATH_MAX + 16];
	bool utf8 = non_ascii(m->sender);
	struct reply rep;
	int rc;

	for (size_t i = 0; i < m->nrcpts; i++)
		utf8 = utf8 || non_ascii(m->rcpts[i]);
	snprintf(phase, sizeof(phase), "MAIL FROM:<%s>", m->sender);
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", m->sender);
	if (s->caps.size > 0)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " SIZE=%zu", m->len);
	if (s->caps.eightbit && message_is_8bit(m->data, m->len))
		strcpy_bounded(cmd + strlen(cmd), " BODY=8BITMIME", sizeof(cmd) - strlen(cmd));
	if (s->caps.smtputf8 && utf8)
		strcpy_bounded(cmd + strlen(cmd), " SMTPUTF8", sizeof(cmd) - strlen(cmd));
	if ((rc = conn_cmd(s, &rep, phase, NULL, cmd, s->o->timeout_command, NULL)) != 0)
		return rc;
	if (rep.code / 100 == 2)
		return 0;
	if (rep.code == 530)
		return sess_error(s, EX_NOPERM, "%s refused: %s (log in with --user)", phase,
				  rep.text);
	return sess_error(s, refusal_rc(&rep, EX_DATAERR), "%s refused: %s", phase, rep.text);
}

/* One RCPT TO per recipient; every refusal is printed.  0 when all were
 * accepted, else EX_DATAERR if any refusal was permanent, else EX_TEMPFAIL. */
static int sess_rcpts(struct submit_session *s, const struct submit_message *m)
{
	char cmd[ADDR_PATH_MAX + 16];
	struct reply rep;
	int worst = 0, rc;

	for (size_t i = 0; i < m->nrcpts; i++) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", m->rcpts[i]);
		if ((rc = conn_cmd(s, &rep, cmd, NULL, cmd, s->o->timeout_command, NULL)) != 0)
			return rc;
		if (rep.code / 100 == 2)
			continue;
		rc = sess_error(s, refusal_rc(&rep, EX_DATAERR), "%s refused: %s", cmd, rep.text);
		if (worst != EX_DATAERR)
			worst = rc;
		if (s->broken)
			return worst;
	}
	return worst;
}

/* DATA, the message, the final dot. */
static int sess_data(struct submit_session *s, const struct submit_message *m)
{
	struct strbuf wire;
	struct reply rep;
	int rc;

	if ((rc = conn_cmd(s, &rep, "DATA", NULL, "DATA", s->o->timeout_command, NULL)) != 0)
		return rc;
	if (rep.code != 354)
		return sess_error(s, refusal_rc(&rep, EX_DATAERR), "DATA refused: %s", rep.text);
	strbuf_init(&wire);
	message_dot_stuff(m->data, m->len, &wire);
	trace(s, "C: [%zu octets of message]", m->len);
	trace(s, "C: .");
	s->phase = "the message transfer";
	rc = conn_write(s, wire.s, wire.len);
	strbuf_free(&wire);
	if (rc != 0)
		return rc;
	s->phase = "the reply to the end of DATA";
	if ((rc = conn_reply(s, &rep, now_ms() + s->o->timeout_data_end * 1000LL,
			     s->o->timeout_data_end, NULL)) != 0)
		return rc;
	s->phase = "";
	if (rep.code / 100 != 2)
		return sess_error(s, refusal_rc(&rep, EX_DATAERR), "message refused after DATA: %s",
				  rep.text);
	return 0;
}

/* See submit_session.h. */
int submit_session_send(struct submit_session *s, const struct submit_message *m)
{
	struct reply rep;
	int rc;

	s->label = m->label;
	if (s->broken)
		return sess_error(s, EX_SOFTWARE, "the connection is no longer usable");
	if (s->used) {
		if ((rc = conn_cmd(s, &rep, "RSET", NULL, "RSET", s->o->timeout_command, NULL)) !=
		    0)
			return rc;
		if (rep.code / 100 != 2) /* out of step: no telling what a next MAIL meets */
			return sess_break(s, refusal_rc(&rep, EX_PROTOCOL), "RSET refused: %s",
					  rep.text);
	}
	s->used = true;
	if (s->caps.size > 0 && m->len > s->caps.size)
		return sess_error(s, EX_DATAERR,
				  "the message is %zu octets, more than the %llu that %s accepts",
				  m->len, s->caps.size, s->o->host);
	if ((rc = sess_mail(s, m)) != 0 || (rc = sess_rcpts(s, m)) != 0)
		return rc;
	return sess_data(s, m);
}

/* See submit_session.h. */
bool submit_session_usable(const struct submit_session *s)
{
	return !s->broken;
}

/* See submit_session.h. */
void submit_session_close(struct submit_session *s)
{
	struct reply rep;

	if (s == NULL)
		return;
	s->label = "";
	if (!s->broken && s->fd >= 0) {
		unsigned secs = s->o->timeout_command < SUBMIT_QUIT_TIMEOUT ? s->o->timeout_command
									    : SUBMIT_QUIT_TIMEOUT;
		s->quiet = true; /* the messages are decided: a failing QUIT changes nothing */
		if (conn_cmd(s, &rep, "QUIT", NULL, "QUIT", secs, NULL) == 0 && s->ssl != NULL)
			(void)SSL_shutdown(s->ssl); /* close_notify, best effort */
	}
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	if (s->ctx != NULL)
		SSL_CTX_free(s->ctx);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}
