/*
 * smtp_conn.c - one blocking SMTP/LMTP client connection (see smtp_conn.h).
 *
 * Every wait is a poll() bounded by a deadline.  A reply must arrive whole
 * before its step's deadline; a write must make progress within its
 * timeout (a big message on a slow link is fine, a stuck one is not).
 */
#include "smtp_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "util.h"

#define CONN_WRITE_CHUNK (64 * 1024) /* octets per write */
#define CONN_FILE_CHUNK (32 * 1024)  /* message octets per read; dot-stuffed, at most twice */

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Record a failure of kind k; the connection is out of step.  Returns false. */
static bool __attribute__((format(printf, 3, 4)))
conn_break(struct smtp_conn *c, enum conn_fail k, const char *fmt, ...)
{
	va_list ap;

	c->broken = true;
	c->fail = k;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return false;
}

/* One traced line: "C: ..." or "S: ...". */
static void __attribute__((format(printf, 2, 3)))
trace(const struct smtp_conn *c, const char *fmt, ...)
{
	char line[SMTP_CONN_LINE_MAX + 8];
	va_list ap;

	if (c->trace == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->trace(c->trace_arg, line);
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

/* errno as text, thread-safe. */
static const char *errtext(int err, char *buf, size_t size)
{
	return strerror_r(err, buf, size); /* GNU: returns the text */
}

/* Wait for events on the socket until deadline. */
static bool conn_wait(struct smtp_conn *c, short events, long long deadline, unsigned secs)
{
	char eb[128];

	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = events};
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return conn_break(c, CONN_FAIL_TEMP, "timeout after %u s waiting for %s",
					  secs, c->phase);
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return conn_break(c, CONN_FAIL_TEMP, "poll: %s",
					  errtext(errno, eb, sizeof(eb)));
	}
}

/* What an OpenSSL I/O call that returned r wants: true and *events to wait
 * for, or false with the connection broken. */
static bool ssl_want(struct smtp_conn *c, int r, short *events)
{
	char buf[256];
	int e = SSL_get_error(c->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*events = POLLIN;
		return true;
	case SSL_ERROR_WANT_WRITE:
		*events = POLLOUT;
		return true;
	case SSL_ERROR_ZERO_RETURN:
		return conn_break(c, CONN_FAIL_TEMP, "the server closed the connection during %s",
				  c->phase);
	case SSL_ERROR_SYSCALL:
		if (errno != 0 && ERR_peek_error() == 0)
			return conn_break(c, CONN_FAIL_TEMP, "connection lost during %s: %s",
					  c->phase, errtext(errno, buf, sizeof(buf)));
		break;
	default:
		break;
	}
	if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
	    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
		ERR_clear_error();
		return conn_break(c, CONN_FAIL_TEMP, "the server closed the connection during %s",
				  c->phase);
	}
	return conn_break(c, CONN_FAIL_PROTOCOL, "TLS error during %s: %s", c->phase,
			  ssl_error_text(buf, sizeof(buf), "unknown"));
}

/* See smtp_conn.h. */
void smtp_conn_init(struct smtp_conn *c)
{
	memset(c, 0, offsetof(struct smtp_conn, rbuf));
	c->fd = -1;
	c->phase = "";
}

/* See smtp_conn.h. */
bool smtp_conn_connect(struct smtp_conn *c, const struct sockaddr *sa, socklen_t len,
		       unsigned timeout)
{
	long long deadline = now_ms() + timeout * 1000LL;
	socklen_t elen = sizeof(int);
	char eb[128];
	int fd, err = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
	} else if (connect(fd, sa, len) != 0) {
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
		if (fd >= 0)
			close(fd);
		c->fail = CONN_FAIL_TEMP;
		snprintf(c->err, sizeof(c->err), "%s", errtext(err, eb, sizeof(eb)));
		return false;
	}
	c->fd = fd;
	c->broken = false;
	c->fail = CONN_FAIL_NONE;
	c->rpos = c->rlen = 0;
	return true;
}

/* Is host an IPv4 or IPv6 address rather than a name? */
static bool host_is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Set up the context and the SSL object for o. */
static bool tls_setup(struct smtp_conn *c, const struct smtp_tls_opts *o)
{
	char buf[256];

	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL)
		return conn_break(c, CONN_FAIL_SOFTWARE, "cannot set up TLS: %s",
				  ssl_error_text(buf, sizeof(buf), "unknown"));
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	if (!o->verify) {
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		int ok = o->ca_file != NULL
				 ? SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL)
				 : SSL_CTX_set_default_verify_paths(c->ctx);
		if (ok != 1)
			return conn_break(c, CONN_FAIL_SOFTWARE,
					  "cannot load the CA certificates%s%s: %s",
					  o->ca_file ? " from " : "", o->ca_file ? o->ca_file : "",
					  ssl_error_text(buf, sizeof(buf), "unknown"));
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	}
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return conn_break(c, CONN_FAIL_SOFTWARE, "cannot set up TLS: %s",
				  ssl_error_text(buf, sizeof(buf), "unknown"));
	if (host_is_ip(o->host)) {
		if (o->verify &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), o->host) != 1)
			return conn_break(c, CONN_FAIL_SOFTWARE, "cannot set up TLS for %s",
					  o->host);
	} else if (SSL_set_tlsext_host_name(c->ssl, o->host) != 1 ||
		   (o->verify && SSL_set1_host(c->ssl, o->host) != 1)) {
		return conn_break(c, CONN_FAIL_SOFTWARE, "cannot set up TLS for %s", o->host);
	}
	return true;
}

/* See smtp_conn.h. */
bool smtp_conn_tls(struct smtp_conn *c, const struct smtp_tls_opts *o)
{
	long long deadline = now_ms() + o->timeout * 1000LL;
	char buf[256], eb[128];

	if (!tls_setup(c, o))
		return false;
	c->phase = "the TLS handshake";
	for (;;) {
		int r, e;

		ERR_clear_error();
		errno = 0;
		r = SSL_connect(c->ssl);
		if (r == 1)
			break;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (!conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline,
				       o->timeout))
				return false;
			continue;
		}
		if (o->verify && SSL_get_verify_result(c->ssl) != X509_V_OK) {
			c->verify_failed = true;
			return conn_break(
				c, CONN_FAIL_TLS, "TLS certificate verification failed for %s: %s",
				o->host,
				X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
		}
		return conn_break(c, CONN_FAIL_TLS, "TLS handshake with %s failed: %s", o->host,
				  ssl_error_text(buf, sizeof(buf),
						 errno != 0 ? errtext(errno, eb, sizeof(eb))
							    : "the server closed the connection"));
	}
	c->phase = "";
	return true;
}

/* See smtp_conn.h. */
bool smtp_conn_pending(const struct smtp_conn *c)
{
	return c->rpos != c->rlen;
}

/* See smtp_conn.h. */
bool smtp_conn_write(struct smtp_conn *c, const char *buf, size_t len, unsigned timeout)
{
	char eb[128];

	while (len > 0) {
		size_t n = len > CONN_WRITE_CHUNK ? CONN_WRITE_CHUNK : len;
		short events = POLLOUT;
		ssize_t w;

		if (c->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			w = SSL_write(c->ssl, buf, (int)n);
			if (w <= 0 && !ssl_want(c, (int)w, &events))
				return false;
		} else {
			w = send(c->fd, buf, n, MSG_NOSIGNAL);
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return conn_break(c, CONN_FAIL_TEMP,
						  "connection lost during %s: %s", c->phase,
						  errtext(errno, eb, sizeof(eb)));
		}
		if (w > 0) {
			buf += w;
			len -= (size_t)w;
		} else if (!conn_wait(c, events, now_ms() + timeout * 1000LL, timeout)) {
			return false;
		}
	}
	return true;
}

/* See smtp_conn.h. */
bool smtp_conn_write_cmds(struct smtp_conn *c, const char *buf, size_t len, unsigned timeout)
{
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - buf) : len;

		trace(c, "C: %.*s", (int)(end > i && buf[end - 1] == '\r' ? end - 1 - i : end - i),
		      buf + i);
		i = end + 1;
	}
	return smtp_conn_write(c, buf, len, timeout);
}

/* Refill the empty read buffer before deadline. */
static bool conn_fill(struct smtp_conn *c, long long deadline, unsigned secs)
{
	char eb[128];

	c->rpos = c->rlen = 0;
	for (;;) {
		short events = POLLIN;
		ssize_t r;

		if (c->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			r = SSL_read(c->ssl, c->rbuf, sizeof(c->rbuf));
			if (r <= 0 && !ssl_want(c, (int)r, &events))
				return false;
		} else {
			r = recv(c->fd, c->rbuf, sizeof(c->rbuf), 0);
			if (r == 0)
				return conn_break(c, CONN_FAIL_TEMP,
						  "the server closed the connection during %s",
						  c->phase);
			if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return conn_break(c, CONN_FAIL_TEMP,
						  "connection lost during %s: %s", c->phase,
						  errtext(errno, eb, sizeof(eb)));
		}
		if (r > 0) {
			c->rlen = (size_t)r;
			return true;
		}
		if (!conn_wait(c, events, deadline, secs))
			return false;
	}
}

/* Read one line into c->line, CRLF removed and control octets made '?'. */
static bool conn_getline(struct smtp_conn *c, long long deadline, unsigned secs)
{
	size_t n = 0;

	for (;;) {
		char ch;

		if (c->rpos == c->rlen && !conn_fill(c, deadline, secs))
			return false;
		ch = c->rbuf[c->rpos++];
		if (ch == '\n')
			break;
		if (n == SMTP_CONN_LINE_MAX)
			return conn_break(c, CONN_FAIL_PROTOCOL,
					  "garbled reply: a line longer than %d octets during %s",
					  SMTP_CONN_LINE_MAX, c->phase);
		c->line[n++] = ch;
	}
	if (n > 0 && c->line[n - 1] == '\r')
		n--;
	c->line[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c->line[i] < ' ' || c->line[i] == 0x7f)
			c->line[i] = '?';
	return true;
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

/* Length of a run of 1..3 digits at s, or 0. */
static size_t digits13(const char *s)
{
	size_t n = 0;

	while (n < 4 && s[n] >= '0' && s[n] <= '9')
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/* The reply's enhanced status code (RFC 2034) when its text starts with one of
 * the reply's class, else "X.0.0" from the reply code. */
static void reply_esc(struct smtp_reply *rep)
{
	const char *p = rep->text + 4, *q = p + 2;
	size_t a, b = 0;

	if (strlen(rep->text) > 4 && p[0] == rep->text[0] && p[1] == '.' && (a = digits13(q)) > 0 &&
	    q[a] == '.' && (b = digits13(q + a + 1)) > 0 &&
	    (q[a + 1 + b] == '\0' || q[a + 1 + b] == ' ')) {
		memcpy(rep->esc, p, 2 + a + 1 + b);
		rep->esc[2 + a + 1 + b] = '\0';
		return;
	}
	snprintf(rep->esc, sizeof(rep->esc), "%c.0.0", rep->text[0]);
}

/* Note one line of an EHLO reply (the text after "250-"). */
static void caps_line(struct smtp_caps *c, const char *text)
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
	} else if (strcasecmp(word, "PIPELINING") == 0) {
		c->pipelining = true;
	} else if (strcasecmp(word, "DSN") == 0) {
		c->dsn = true;
	} else if (strcasecmp(word, "ENHANCEDSTATUSCODES") == 0) {
		c->enhanced = true;
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

/* See smtp_conn.h. */
bool smtp_conn_reply(struct smtp_conn *c, struct smtp_reply *rep, unsigned timeout,
		     struct smtp_caps *caps)
{
	long long deadline = now_ms() + timeout * 1000LL;
	size_t len = 0;
	char sep = '-';

	if (caps != NULL)
		memset(caps, 0, sizeof(*caps));
	for (unsigned i = 0; sep == '-'; i++) {
		const char *text;
		size_t tlen;
		int code;

		if (i == SMTP_CONN_REPLY_LINES_MAX)
			return conn_break(c, CONN_FAIL_PROTOCOL,
					  "garbled reply: more than %d lines during %s",
					  SMTP_CONN_REPLY_LINES_MAX, c->phase);
		if (!conn_getline(c, deadline, timeout))
			return false;
		trace(c, "S: %s", c->line);
		if (!reply_code(c->line, &code, &sep) || (i > 0 && code != rep->code))
			return conn_break(c, CONN_FAIL_PROTOCOL,
					  "garbled reply \"%.200s\" during %s", c->line, c->phase);
		rep->code = code;
		if (caps != NULL && i > 0 && code == 250)
			caps_line(caps, c->line + 4); /* the first line is the server's name */
		/* the first line whole ("451 4.3.0 try", its '-' made a space), the text
		 * of each further line after a space */
		if (i == 0 && sep == '-')
			c->line[3] = ' ';
		text = i == 0 ? c->line : sep == '\0' ? "" : c->line + 4;
		tlen = strlen(text);
		if (i > 0 && tlen > 0 && len + 1 < sizeof(rep->text))
			rep->text[len++] = ' ';
		if (tlen > sizeof(rep->text) - 1 - len)
			tlen = sizeof(rep->text) - 1 - len;
		memcpy(rep->text + len, text, tlen);
		len += tlen;
		rep->text[len] = '\0';
	}
	reply_esc(rep);
	if (rep->code == 421) /* the server is closing the connection */
		c->broken = true;
	return true;
}

/* See smtp_conn.h. */
bool smtp_conn_cmd(struct smtp_conn *c, struct smtp_reply *rep, const char *phase,
		   const char *shown, const char *cmd, unsigned timeout, struct smtp_caps *caps)
{
	char line[SMTP_CONN_CMD_MAX];
	size_t len = strlen(cmd);
	char wait_for[300];
	bool ok;

	if (c->broken)
		return false;
	if (len + 2 > sizeof(line)) {
		c->fail = CONN_FAIL_SOFTWARE;
		snprintf(c->err, sizeof(c->err), "%s: command too long", phase);
		return false;
	}
	memcpy(line, cmd, len);
	memcpy(line + len, "\r\n", 2);
	trace(c, "C: %s", shown != NULL ? shown : cmd);
	snprintf(wait_for, sizeof(wait_for), "the reply to %s", phase);
	c->phase = wait_for;
	ok = smtp_conn_write(c, line, len + 2, timeout);
	explicit_bzero(line, sizeof(line));
	if (ok)
		ok = smtp_conn_reply(c, rep, timeout, caps);
	c->phase = "";
	return ok;
}

/* See smtp_conn.h. */
bool smtp_conn_auth(struct smtp_conn *c, const struct smtp_caps *caps, const char *user,
		    const char *password, unsigned timeout, struct smtp_reply *rep)
{
	enum { RAW_MAX = 2 + SMTP_CONN_USER_MAX + 1 + SMTP_CONN_PASSWORD_MAX };
	size_t ulen = strlen(user), plen = strlen(password);
	char raw[RAW_MAX], enc[BASE64_ENCODED_SIZE(RAW_MAX)], cmd[sizeof(enc) + 16];
	bool ok;

	if (ulen > SMTP_CONN_USER_MAX || plen > SMTP_CONN_PASSWORD_MAX) {
		c->fail = CONN_FAIL_SOFTWARE;
		snprintf(c->err, sizeof(c->err), "user name or password too long");
		return false;
	}
	if (caps->auth_plain) {
		/* authzid (empty) NUL authcid NUL passwd */
		raw[0] = '\0';
		memcpy(raw + 1, user, ulen);
		raw[1 + ulen] = '\0';
		memcpy(raw + 2 + ulen, password, plen);
		base64_encode((const unsigned char *)raw, 2 + ulen + plen, enc);
		snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s", enc);
		ok = smtp_conn_cmd(c, rep, "AUTH PLAIN", "AUTH PLAIN ********", cmd, timeout, NULL);
		if (ok && rep->code == 334) /* wanted the response after an empty challenge */
			ok = smtp_conn_cmd(c, rep, "AUTH PLAIN", "********", enc, timeout, NULL);
	} else {
		ok = smtp_conn_cmd(c, rep, "AUTH LOGIN", NULL, "AUTH LOGIN", timeout, NULL);
		if (ok && rep->code == 334) {
			base64_encode((const unsigned char *)user, ulen, enc);
			ok = smtp_conn_cmd(c, rep, "AUTH LOGIN", "********", enc, timeout, NULL);
		}
		if (ok && rep->code == 334) {
			base64_encode((const unsigned char *)password, plen, enc);
			ok = smtp_conn_cmd(c, rep, "AUTH LOGIN", "********", enc, timeout, NULL);
		}
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(enc, sizeof(enc));
	explicit_bzero(cmd, sizeof(cmd));
	if (ok && rep->code == 334) { /* a third challenge: give up the exchange */
		if (!smtp_conn_cmd(c, rep, "AUTH", NULL, "*", timeout, NULL))
			return false;
		c->fail = CONN_FAIL_PROTOCOL;
		snprintf(c->err, sizeof(c->err), "unexpected challenge");
		return false;
	}
	return ok;
}

/* Append in[0..n) to out dot-stuffed (RFC 5321 §4.5.2), bol telling whether
 * in starts a line; returns the octets put in out (at most 2n). */
static size_t dot_stuff(const char *in, size_t n, char *out, bool *bol)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (*bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		*bol = in[i] == '\n';
	}
	return o;
}

/* The final dot, after a CRLF when the message's last line lacks one. */
static bool send_dot(struct smtp_conn *c, bool bol, unsigned timeout)
{
	trace(c, "C: .");
	return bol ? smtp_conn_write(c, ".\r\n", 3, timeout)
		   : smtp_conn_write(c, "\r\n.\r\n", 5, timeout);
}

/* See smtp_conn.h. */
bool smtp_conn_send_file(struct smtp_conn *c, int fd, uint64_t len, unsigned timeout)
{
	char in[CONN_FILE_CHUNK], out[2 * CONN_FILE_CHUNK], eb[128];
	bool bol = true; /* at the beginning of a line */

	trace(c, "C: [%llu octets of message]", (unsigned long long)len);
	c->phase = "the message transfer";
	while (len > 0) {
		ssize_t r = read(fd, in, len < sizeof(in) ? (size_t)len : sizeof(in));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return conn_break(c, CONN_FAIL_SOFTWARE, "reading the queued message: %s",
					  errtext(errno, eb, sizeof(eb)));
		if (r == 0)
			return conn_break(c, CONN_FAIL_SOFTWARE,
					  "reading the queued message: it ended early");
		len -= (uint64_t)r;
		if (!smtp_conn_write(c, out, dot_stuff(in, (size_t)r, out, &bol), timeout))
			return false;
	}
	return send_dot(c, bol, timeout);
}

/* See smtp_conn.h. */
bool smtp_conn_send_data(struct smtp_conn *c, const char *data, size_t len, unsigned timeout)
{
	char out[2 * CONN_FILE_CHUNK];
	bool bol = true;

	trace(c, "C: [%zu octets of message]", len);
	c->phase = "the message transfer";
	while (len > 0) {
		size_t n = len < CONN_FILE_CHUNK ? len : CONN_FILE_CHUNK;

		if (!smtp_conn_write(c, out, dot_stuff(data, n, out, &bol), timeout))
			return false;
		data += n;
		len -= n;
	}
	return send_dot(c, bol, timeout);
}

/* See smtp_conn.h. */
void smtp_conn_close(struct smtp_conn *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->ctx != NULL)
		SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->ctx = NULL;
	c->fd = -1;
	c->broken = true;
}
