/*
 * smtp_auth.c - SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN.
 *
 * AUTH is offered and accepted only over TLS; before TLS it is refused
 * with 538 5.7.11 without looking at the credentials.  With [auth]
 * backend = file the password check (yescrypt: slow on purpose) runs on a
 * worker thread, and takes the same time for unknown users
 * (userdb_hash_for gives a dummy hash); with backend = dovecot Dovecot's
 * auth server checks it, asked on the event loop (dovecot_auth.h), and
 * answers unknown users as wrong passwords.  When the backend cannot say
 * (Dovecot down, a timeout) the reply is 454 4.7.0 and nothing is counted.  Each
 * failure - a wrong password, or credentials that could never be right
 * (a NUL inside, empty, too long, another authzid) - is logged and delays
 * its 535 reply, doubling per failure; at auth_failures_max the session
 * gets 421, and failures also count against the client's address across
 * sessions (auth_limit.c).  Credentials are never logged;
 * the buffers that held a password are wiped.
 */
#include "smtp_internal.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth_limit.h"
#include "base64.h"
#include "dovecot_auth.h"
#include "log.h"
#include "metrics.h"
#include "users.h"
#include "util.h"
#include "worker.h"

#define AUTH_USER_MAX 255
#define AUTH_PASSWORD_MAX 1024
#define AUTH_DELAY_CAP_MS 30000

enum auth_step {
	AUTH_STEP_NONE,
	AUTH_STEP_PLAIN,      /* waiting for the PLAIN response */
	AUTH_STEP_LOGIN_USER, /* waiting for the LOGIN user name */
	AUTH_STEP_LOGIN_PASS, /* waiting for the LOGIN password */
	AUTH_STEP_CHECKING,   /* a worker checks the password */
	AUTH_STEP_DELAY,      /* a failure reply waits out its delay */
};

enum auth_result {
	AUTH_RESULT_OK,
	AUTH_RESULT_FAILED,   /* wrong password, unknown user */
	AUTH_RESULT_TEMPFAIL, /* the backend could not say: 454 */
};

/* A check by Dovecot (dovecot_auth.h). */
struct dovecot_job {
	struct smtp_session *s;
	char *user;
};

struct auth_job {
	struct smtp_session *s;
	char *user;
	char *password;
	char *hash;
	bool ok;
};

/* Is AUTH listed in EHLO (and accepted) in this session? */
bool smtp_auth_offered(const struct smtp_session *s)
{
	return s->lc->auth != AUTH_MODE_NONE && s->tls && s->auth_user == NULL;
}

/* Leave the exchange with a reply; the session goes back to READY. */
void smtp_auth_abort(struct smtp_session *s, enum status st)
{
	free(s->auth_name);
	s->auth_name = NULL;
	s->auth_step = AUTH_STEP_NONE;
	smtp_enter_state(s, SMTP_STATE_READY);
	smtp_reply(s, st, NULL);
}

/* Decode a client response; false (and the reply sent) when it is bad. */
static bool auth_decode(struct smtp_session *s, const char *line, unsigned char *out, size_t outsz,
			size_t *outlen)
{
	size_t len = strlen(line);

	if (strcmp(line, "*") == 0) {
		smtp_auth_abort(s, STATUS_AUTH_CANCELLED);
		return false;
	}
	if (strcmp(line, "=") == 0) { /* an empty initial response (RFC 4954 §4) */
		*outlen = 0;
		return true;
	}
	if (BASE64_DECODED_MAX(len) > outsz || !base64_decode(line, len, out, outlen)) {
		smtp_auth_abort(s, STATUS_AUTH_BAD_BASE64);
		return false;
	}
	return true;
}

/* Worker thread: the slow part. */
static void auth_check_work(void *arg)
{
	struct auth_job *j = arg;

	j->ok = password_verify(j->password, j->hash);
}

/*
 * A failed attempt, whatever failed (the password, or credentials that
 * could never be right: a NUL inside, empty, too long, another authzid):
 * logged with the user name as sent (ulen octets, escaped; detail, already
 * escaped, is appended), counted for the session and the client's address,
 * and answered with 535 only after the delay, which doubles per failure.
 * Nothing is read meanwhile (paused).
 */
static void auth_fail(struct smtp_session *s, const char *user, size_t ulen, const char *detail)
{
	const struct limits *lim = &s->conf->limits;
	unsigned shift = s->auth_failures < 15 ? s->auth_failures : 15;
	unsigned delay = lim->auth_delay_ms << shift;
	char shown[AUTH_USER_MAX * 4 + 1];
	struct timeval tv;

	s->auth_failures++;
	metrics_add(METRIC_AUTH_FAILURES, s->l->index, 0, 1);
	if (delay > AUTH_DELAY_CAP_MS)
		delay = AUTH_DELAY_CAP_MS;
	escape_text(user, ulen, shown, sizeof(shown));
	log_info("event=auth session=%s client=%s result=failed user=\"%s\" failures=%u%s%s", s->id,
		 s->peer_addr, shown, s->auth_failures, detail != NULL ? " " : "",
		 detail != NULL ? detail : "");
	if (auth_limit_fail(server_clients(s->srv), lim, (struct sockaddr *)&s->peer, time(NULL)))
		log_warnx("event=auth_lockout client=%s seconds=%u", s->peer_addr,
			  lim->auth_client_lockout);
	free(s->auth_name);
	s->auth_name = NULL;
	s->auth_step = AUTH_STEP_DELAY;
	s->paused = true;
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(s->delay_ev, &tv);
}

/* The check is done (on the loop), whichever backend made it: answer;
 * takes user.  A temporary failure (the backend could not say) is 454
 * and no failed attempt. */
static void auth_finish(struct smtp_session *s, char *user, enum auth_result r)
{
	char shown[AUTH_USER_MAX * 4 + 1];

	s->auth_pending = false;
	if (s->gone) {
		free(user);
		smtp_close_now(s, "gone during AUTH");
		return;
	}
	smtp_set_timeouts(s); /* the client's turn again */
	if (r == AUTH_RESULT_OK) {
		escape_text(user, strlen(user), shown, sizeof(shown));
		log_info("event=auth session=%s client=%s result=ok user=\"%s\"", s->id,
			 s->peer_addr, shown);
		metrics_add(METRIC_AUTH_SUCCESSES, s->l->index, 0, 1);
		s->auth_user = user;
		s->auth_step = AUTH_STEP_NONE;
		smtp_enter_state(s, SMTP_STATE_READY);
		smtp_reply(s, STATUS_AUTH_OK, NULL);
	} else if (r == AUTH_RESULT_TEMPFAIL) {
		smtp_auth_abort(s, STATUS_AUTH_TEMPFAIL);
		free(user);
	} else {
		auth_fail(s, user, strlen(user), NULL);
		free(user);
	}
	if (s->paused)
		return;
	if (s->srv->stopping) {
		smtp_close(s, STATUS_SHUTDOWN);
		return;
	}
	smtp_resume_input(s);
}

/* Loop: the worker's check is done. */
static void auth_check_done(void *arg)
{
	struct auth_job *j = arg;
	struct smtp_session *s = j->s;
	char *user = j->user;
	bool ok = j->ok;

	explicit_bzero(j->password, strlen(j->password));
	free(j->password);
	free(j->hash);
	free(j);
	auth_finish(s, user, ok ? AUTH_RESULT_OK : AUTH_RESULT_FAILED);
}

/* Loop: Dovecot answered (or could not). */
static void auth_dovecot_done(void *arg, enum dovecot_auth_result r, const char *canonical,
			      const char *reason)
{
	struct dovecot_job *j = arg;
	struct smtp_session *s = j->s;
	char *user = j->user;

	free(j);
	if (r == DOVECOT_AUTH_TEMPFAIL) {
		char shown[AUTH_USER_MAX * 4 + 1], why[256];
		escape_text(user, strlen(user), shown, sizeof(shown));
		escape_text(reason, strlen(reason), why, sizeof(why));
		log_warnx("event=auth session=%s client=%s result=tempfail user=\"%s\" "
			  "backend=dovecot reason=\"%s\"",
			  s->id, s->peer_addr, shown, why);
		auth_finish(s, user, AUTH_RESULT_TEMPFAIL);
		return;
	}
	if (r == DOVECOT_AUTH_OK && canonical != NULL && strcmp(canonical, user) != 0) {
		/* Dovecot's name for the user is the one that counts (as in Postfix) */
		free(user);
		user = xstrdup(canonical);
	}
	auth_finish(s, user, r == DOVECOT_AUTH_OK ? AUTH_RESULT_OK : AUTH_RESULT_FAILED);
}

/* Ask Dovecot's auth server; takes ownership of user and password. */
static void auth_check_dovecot(struct smtp_session *s, char *user, char *password)
{
	const struct conf *c = s->conf;
	struct dovecot_job *j = xcalloc(1, sizeof(*j));
	const struct dovecot_query q = {
		.user = user,
		.password = password,
		.client_addr = s->peer_addr,
		.local_addr = s->local_addr[0] != '\0' ? s->local_addr : NULL,
		.session = s->id,
	};

	j->s = s;
	j->user = user;
	s->auth_step = AUTH_STEP_CHECKING;
	s->auth_pending = true;
	smtp_set_timeouts(s); /* none for reading while the check runs */
	dovecot_auth_check(s->srv->base, c->dovecot_socket, c->dovecot_timeout, &q,
			   auth_dovecot_done, j);
	explicit_bzero(password, strlen(password));
	free(password);
}

/* Called by the delay timer: send the delayed 535 (and maybe 421). */
bool smtp_auth_delay_done(struct smtp_session *s)
{
	if (s->auth_step != AUTH_STEP_DELAY)
		return false;
	smtp_auth_abort(s, STATUS_AUTH_FAILED);
	if (s->auth_failures >= s->conf->limits.auth_failures_max) {
		log_info("event=auth_too_many session=%s client=%s failures=%u", s->id,
			 s->peer_addr, s->auth_failures);
		smtp_close(s, STATUS_AUTH_TOO_MANY);
	}
	return true;
}

/* Hand user/password to a worker; takes ownership of both. */
static void auth_check(struct smtp_session *s, char *user, char *password)
{
	struct auth_job *j;
	char err[512];

	if (s->conf->auth_backend == AUTH_BACKEND_DOVECOT) {
		auth_check_dovecot(s, user, password);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	if (!userdb_refresh(s->srv->users, err, sizeof(err)))
		log_warnx("event=users_reload_failed error=\"%s\" note=\"the previous users stay\"",
			  err);
	j->s = s;
	j->user = user;
	j->password = password;
	j->hash = userdb_hash_for(s->srv->users, user);
	if (j->hash == NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
		free(user);
		free(j);
		smtp_auth_abort(s, STATUS_AUTH_TEMPFAIL);
		return;
	}
	s->auth_step = AUTH_STEP_CHECKING;
	s->auth_pending = true;
	smtp_set_timeouts(s); /* none for reading while the check runs */
	workers_submit(s->srv->workers, auth_check_work, auth_check_done, j);
}

/* A NUL-free C string from n octets, or NULL when too long or NUL inside. */
static char *octets_string(const unsigned char *p, size_t n, size_t max)
{
	if (n == 0 || n > max || memchr(p, '\0', n))
		return NULL;
	return xstrndup((const char *)p, n);
}

/* PLAIN: authzid NUL authcid NUL passwd (RFC 4616), lengths explicit. */
static void auth_plain(struct smtp_session *s, const unsigned char *msg, size_t n)
{
	const unsigned char *nul1 = memchr(msg, '\0', n), *nul2;
	size_t zlen, clen;
	char *user, *password, detail[128];

	if (nul1 == NULL || (nul2 = memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - msg))) == NULL) {
		auth_fail(s, "", 0, "reason=\"not authzid NUL user NUL password\"");
		return;
	}
	zlen = (size_t)(nul1 - msg);
	clen = (size_t)(nul2 - nul1 - 1);
	/* an authorization identity, if given, must be the user itself */
	if (zlen > 0 && (zlen != clen || memcmp(msg, nul1 + 1, clen) != 0)) {
		char esc[64];
		escape_text((const char *)msg, zlen, esc, sizeof(esc));
		snprintf(detail, sizeof(detail), "reason=\"authzid differs\" authzid=\"%s\"", esc);
		auth_fail(s, (const char *)nul1 + 1, clen, detail);
		return;
	}
	user = octets_string(nul1 + 1, clen, AUTH_USER_MAX);
	password = octets_string(nul2 + 1, n - (size_t)(nul2 + 1 - msg), AUTH_PASSWORD_MAX);
	if (user == NULL || password == NULL) {
		free(user);
		if (password) {
			explicit_bzero(password, strlen(password));
			free(password);
		}
		auth_fail(s, (const char *)nul1 + 1, clen < AUTH_USER_MAX ? clen : AUTH_USER_MAX,
			  "reason=\"unusable user name or password\"");
		return;
	}
	auth_check(s, user, password);
}

/* A line of the exchange arrived (never a command). */
void smtp_auth_continue(struct smtp_session *s, char *line)
{
	unsigned char buf[BASE64_DECODED_MAX(65536)];
	size_t n;

	if (!auth_decode(s, line, buf, sizeof(buf), &n))
		return;
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN:
		auth_plain(s, buf, n);
		break;
	case AUTH_STEP_LOGIN_USER:
		if ((s->auth_name = octets_string(buf, n, AUTH_USER_MAX)) == NULL) {
			auth_fail(s, (const char *)buf, n < AUTH_USER_MAX ? n : AUTH_USER_MAX,
				  "reason=\"unusable user name\"");
			break;
		}
		s->auth_step = AUTH_STEP_LOGIN_PASS;
		smtp_reply(s, STATUS_AUTH_CHALLENGE, "UGFzc3dvcmQ6"); /* "Password:" */
		break;
	case AUTH_STEP_LOGIN_PASS: {
		char *password = octets_string(buf, n, AUTH_PASSWORD_MAX);
		char *user = s->auth_name;
		s->auth_name = NULL;
		if (password == NULL) {
			auth_fail(s, user, strlen(user), "reason=\"unusable password\"");
			free(user);
			break;
		}
		auth_check(s, user, password);
		break;
	}
	default:
		smtp_auth_abort(s, STATUS_BAD_SEQUENCE);
		break;
	}
	explicit_bzero(buf, n);
}

/* AUTH mechanism [initial-response] */
void smtp_cmd_auth(struct smtp_session *s, char *arg)
{
	char *mech = arg, *initial = strchr(arg, ' ');

	if (initial)
		*initial++ = '\0';
	if (s->lc->auth == AUTH_MODE_NONE) {
		smtp_reply(s, STATUS_NOT_IMPLEMENTED, "AUTH not offered here");
		return;
	}
	if (!s->tls) { /* never look at credentials sent in the clear */
		smtp_reply(s, STATUS_AUTH_ENCRYPT, NULL);
		return;
	}
	if (s->auth_user != NULL) {
		smtp_reply(s, STATUS_BAD_SEQUENCE, "Already authenticated");
		return;
	}
	if (auth_limit_locked(server_clients(s->srv), (struct sockaddr *)&s->peer, time(NULL))) {
		log_info("event=auth session=%s client=%s result=refused reason=lockout", s->id,
			 s->peer_addr);
		smtp_reply(s, STATUS_AUTH_LOCKED, NULL);
		return;
	}
	if (strcasecmp(mech, "PLAIN") == 0) {
		s->auth_step = AUTH_STEP_PLAIN;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		s->auth_step = AUTH_STEP_LOGIN_USER;
	} else {
		smtp_reply(s, *mech ? STATUS_AUTH_MECH : STATUS_SYNTAX, NULL);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_AUTH);
	if (initial && *initial) {
		smtp_auth_continue(s, initial);
		return;
	}
	smtp_reply(s, STATUS_AUTH_CHALLENGE,
		   s->auth_step == AUTH_STEP_PLAIN ? "" : "VXNlcm5hbWU6"); /* "Username:" */
}
