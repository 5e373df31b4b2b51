/*
 * smtp_session.c - the SMTP server session: socket I/O, the bounded line
 * reader, states and their side effects, the DATA and BDAT streams, and
 * the hand-off to the queue.  Commands themselves live in smtp_commands.c.
 *
 * Input is processed in one loop (smtp_resume_input) that runs until the
 * buffer holds no complete unit or the session must wait (commit, error
 * delay, close).  Replies are appended to the session's own output buffer
 * and leave together once the callback that made them returns (flush_ev,
 * made active by the first reply), which is how a pipelined batch gets its
 * replies in order and flushed at the end of the batch (RFC 2920 §3.2).
 * On a plain connection the flush writes straight to the socket, one
 * writev and no write event per batch; only what the socket does not take
 * at once goes to the bufferevent, which sends it when the socket is
 * writable and calls write_cb once it has.  Under TLS everything goes
 * through the bufferevent.
 *
 * Failure handling: any failure during DATA or BDAT is sticky (intake.h):
 * the rest of the message is read and dropped, then one reply is chosen.
 * A session whose client vanished while a commit or lookup is in flight is
 * marked gone and freed by that callback, never before.
 */
#include "smtp_internal.h"
#include "smtp_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"
#include "conf.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "postscreen.h"
#include "scheduler.h"
#include "sqlmap.h"
#include "tls.h"
#include "util.h"

#define READ_HIGH_WATER (256 * 1024) /* input bytes buffered per session at most */
#define WRITE_HIGH_WATER (64 * 1024) /* replies queued before input processing waits */
#define SCRATCH_SIZE 65536

static const char *const state_names[SMTP_STATE_COUNT] = {
	[SMTP_STATE_CONNECTED] = "CONNECTED", [SMTP_STATE_GREETED] = "GREETED",
	[SMTP_STATE_READY] = "READY",         [SMTP_STATE_MAIL] = "MAIL",
	[SMTP_STATE_RCPT] = "RCPT",           [SMTP_STATE_DATA] = "DATA",
	[SMTP_STATE_BDAT] = "BDAT",           [SMTP_STATE_COMMIT] = "COMMIT",
	[SMTP_STATE_CLOSING] = "CLOSING",     [SMTP_STATE_AUTH] = "AUTH",
};

static void session_free(struct smtp_session *s);
static void start_tls(struct smtp_session *s);
static void tls_established(struct smtp_session *s);
static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void session_drained(struct smtp_session *s);
static bool intake_waits(struct smtp_session *s);
static void check_errors(struct smtp_session *s, unsigned before);

/* Name of a state for logs. */
const char *smtp_strstate(enum smtp_state st)
{
	return state_names[st];
}

/* Set the read timeout that belongs to the current phase. */
void smtp_set_timeouts(struct smtp_session *s)
{
	const struct limits *lim = &s->conf->limits;
	bool data = s->state == SMTP_STATE_DATA || s->in_chunk;
	struct timeval rt = {data ? lim->timeout_data : lim->timeout_command, 0};
	struct timeval wt = {lim->timeout_command, 0};
	/* while a commit or a password check runs, the client waits for us:
	 * no read timeout (it would free the session under their callback) */
	bool ours = s->state == SMTP_STATE_COMMIT || s->auth_pending || s->milter_pending ||
		    s->lookup_pending;

	bufferevent_set_timeouts(s->bev, ours ? NULL : &rt, &wt);
}

/* The whole DATA/BDAT phase took too long. */
static void data_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	log_info("event=timeout session=%s state=%s phase=data_total", s->id,
		 smtp_strstate(s->state));
	smtp_close(s, STATUS_TIMEOUT);
}

/* Enter a state and perform what entering it means. */
void smtp_enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("event=state session=%s transition=\"%s -> %s\"", s->id, smtp_strstate(s->state),
		  smtp_strstate(st));
	s->state = st;
	switch (st) {
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
		if (!evtimer_pending(s->data_timer, NULL)) {
			struct timeval tv = {s->conf->limits.timeout_data_total, 0};
			evtimer_add(s->data_timer, &tv);
		}
		break;
	case SMTP_STATE_CLOSING:
		bufferevent_disable(s->bev, EV_READ);
		/* session_drained frees s once the output is out; with nothing
		 * left to send, flush_cb calls it */
		event_active(s->flush_ev, EV_WRITE, 0);
		/* fall through */
	default:
		evtimer_del(s->data_timer);
		break;
	}
	if (st != SMTP_STATE_CLOSING)
		smtp_set_timeouts(s);
}

/* Replies waiting in the session or in the bufferevent, not yet sent. */
static size_t output_pending(struct smtp_session *s)
{
	return evbuffer_get_length(s->out) + evbuffer_get_length(bufferevent_get_output(s->bev));
}

/* Hand the replies to the bufferevent, which sends them when it can. */
static void output_to_bufferevent(struct smtp_session *s)
{
	if (evbuffer_get_length(s->out) > 0)
		bufferevent_write_buffer(s->bev, s->out);
}

/*
 * The replies of the callback that just ran: with nothing queued in the
 * bufferevent, written straight to the socket; what the socket did not
 * take goes on through the bufferevent, and write_cb runs once that is
 * out.  (Under TLS replies go to the bufferevent at once: reply_line.)
 */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct evbuffer *bout;

	(void)fd;
	(void)what;
	if (s->bev == NULL) {
		evbuffer_drain(s->out, evbuffer_get_length(s->out));
		return;
	}
	bout = bufferevent_get_output(s->bev);
	if (evbuffer_get_length(bout) > 0 || s->ssl) {
		output_to_bufferevent(s); /* write_cb follows */
		return;
	}
	/* a failed or short write leaves the rest for the bufferevent, which
	 * reports the error or sends it once the socket is writable */
	while (evbuffer_get_length(s->out) > 0 &&
	       evbuffer_write(s->out, bufferevent_getfd(s->bev)) > 0)
		;
	if (evbuffer_get_length(s->out) > 0) {
		output_to_bufferevent(s);
		return;
	}
	session_drained(s);
}

/* Queue reply octets (whole CRLF lines) for the client. */
static void put_reply(struct smtp_session *s, const char *line, size_t n)
{
	if (s->ssl) {
		/* TLS: straight into the bufferevent, before any state change: the
		 * TLS bufferevent arms a write timeout when output arrives, and
		 * only the timeouts set on the next state change disarm it */
		output_to_bufferevent(s);
		bufferevent_write(s->bev, line, n);
	} else {
		evbuffer_add(s->out, line, n);
		/* already active (an earlier reply of this callback): a no-op */
		event_active(s->flush_ev, EV_WRITE, 0);
	}
}

/* Queue one reply line for the client. */
static void reply_line(struct smtp_session *s, enum status st, const char *text, bool last)
{
	char line[1024];
	size_t n = status_format(line, sizeof(line), st, text, last);

	if (n == 0) /* the text was too long: the default text always fits */
		n = status_format(line, sizeof(line), st, NULL, last);
	put_reply(s, line, n);
	s->last_status = st;
	if (status_code(st) >= 500)
		s->errors++;
	if (log_verbose()) {
		char esc[256];
		escape_text(line, n - 2, esc, sizeof(esc));
		log_debug("event=reply session=%s text=\"%s\"", s->id, esc);
	}
}

/* Send a reply; fmt == NULL uses the status' default text. */
void smtp_reply(struct smtp_session *s, enum status st, const char *fmt, ...)
{
	char text[900];

	if (s->bev == NULL)
		return;
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
	}
	reply_line(s, st, fmt ? text : NULL, true);
}

/* Send a multi-line reply (EHLO): every line but the last as "CODE-". */
void smtp_reply_multi(struct smtp_session *s, enum status st, const char *const *lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		reply_line(s, st, lines[i], i + 1 == n);
}

/* Drop the transaction: the incoming file goes, the session stays. */
void smtp_transaction_reset(struct smtp_session *s)
{
	intake_abort(&s->in);
	checks_reset(s->checks);
	if (s->milter != NULL && !s->milter_pending)
		milter_abort(s->milter);
	envelope_free(&s->env);
	s->declared_size = 0;
	s->bdat_last = false;
}

/* Say st (421, 221) and close once the output has left. */
void smtp_close(struct smtp_session *s, enum status st)
{
	if (s->state == SMTP_STATE_CLOSING)
		return;
	smtp_reply(s, st, NULL);
	smtp_transaction_reset(s);
	s->in_chunk = false;
	smtp_enter_state(s, SMTP_STATE_CLOSING);
}

/* The connection goes now; the callback in flight, which still points at
 * s (commit, password check, PTR lookup), frees s. */
static void session_mark_gone(struct smtp_session *s)
{
	s->gone = true;
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
}

/* Close without a reply: the peer is gone or must not be answered. */
void smtp_close_now(struct smtp_session *s, const char *reason)
{
	log_debug("event=close session=%s reason=\"%s\"", s->id, reason);
	if (s->milter_pending) { /* a filter's answer is no use any more */
		milter_cancel(s->milter);
		s->milter_pending = false;
	}
	if (intake_waits(s) || s->auth_pending || s->lookup_pending) {
		session_mark_gone(s);
		return;
	}
	session_free(s); /* or marks it gone while a PTR lookup runs */
}

/* Open the message in intake: free space, the queue file, our Received:
 * header, the fix-ups for a submission; STATUS_OK or the error to answer. */
enum status smtp_open_message(struct smtp_session *s)
{
	char key[INTAKE_LOG_KEY_MAX], mark[64];
	const struct intake_origin o = {
		.source = INTAKE_SMTP,
		.esmtp = s->esmtp,
		.tls_version = s->tls ? s->tls_version : NULL,
		.tls_cipher = s->tls ? s->tls_cipher : NULL,
		.fixups = s->auth_user != NULL,
		/* our users' mail, never mail relayed in from the internet */
		.sign = s->auth_user != NULL || s->trusted,
		.log_key = key,
		.client_mark = postscreen_mark(s, mark, sizeof(mark)),
	};
	enum status st;

	snprintf(key, sizeof(key), "session=%s", s->id);
	st = intake_open(&s->in, &s->env, &o, s->declared_size);
	if (st == STATUS_OK)
		data_reader_init(&s->dr, s->conf->limits.text_line_max);
	return st;
}

/* DATA accepted: the stream follows. */
void smtp_begin_data(struct smtp_session *s)
{
	smtp_enter_state(s, SMTP_STATE_DATA);
}

/* BDAT accepted (or refused: error != STATUS_OK): size octets follow. */
void smtp_begin_chunk(struct smtp_session *s, uint64_t size, bool last, enum status error)
{
	if (error != STATUS_OK)
		metrics_add(METRIC_SMTP_REFUSED, METRICS_COMMAND_BDAT, error, 1);
	s->in_chunk = true;
	s->bdat_remaining = size;
	s->bdat_last = last;
	s->chunk_error = error;
	smtp_set_timeouts(s);
}

/* Log how intake settled the message. */
static void log_result(const struct smtp_session *s, const struct intake_result *r)
{
	char from[ESCAPED_WORD_MAX];

	escape_word(s->env.sender, from, sizeof(from));
	switch (r->outcome) {
	case INTAKE_QUEUED:
		log_info("event=queued session=%s queue_id=%s from=%s size=%llu rcpts=%zu%s%s",
			 s->id, s->env.id, from, (unsigned long long)s->env.size, s->env.nrcpts,
			 r->quarantine ? " held=yes" : "", s->gone ? " client=gone" : "");
		break;
	case INTAKE_DISCARDED:
		log_info("event=discarded session=%s queue_id=%s from=%s size=%llu rcpts=%zu "
			 "stage=%s",
			 s->id, s->env.id, from, (unsigned long long)s->env.size, s->env.nrcpts,
			 r->stage ? r->stage : "intake");
		break;
	case INTAKE_REFUSED:
		if (r->err != 0)
			log_warnx("event=commit_failed session=%s queue_id=%s error=\"%s\"", s->id,
				  s->env.id, strerror(r->err));
		else
			log_info("event=rejected session=%s from=%s size=%llu rcpts=%zu status=%d "
				 "esc=%s%s%s",
				 s->id, from, (unsigned long long)s->env.size, s->env.nrcpts,
				 status_code(r->status), status_esc(r->status),
				 r->stage ? " stage=" : "", r->stage ? r->stage : "");
		break;
	}
}

/* Say what intake decided: queued (or discarded: the client is told the
 * same), or refused with the status or a stage's own reply lines. */
static void reply_result(struct smtp_session *s, const struct intake_result *r)
{
	if (r->outcome != INTAKE_REFUSED) {
		s->messages++;
		smtp_reply(s, STATUS_QUEUED, "OK queued as %s", s->env.id);
	} else {
		/* a stage's lines are complete, checked by intake: "550-5.7.1 ...\r\n..." */
		smtp_reply_filter(s, r->reply, r->status);
	}
}

/* intake settled the message (on the loop): answer and go on. */
static void intake_done(void *arg, const struct intake_result *r)
{
	struct smtp_session *s = arg;
	unsigned before;

	log_result(s, r);
	if (r->outcome == INTAKE_QUEUED)
		scheduler_add(s->srv->scheduler, &s->env); /* delivered at once */
	if (s->gone) {
		s->state = SMTP_STATE_CLOSING;
		session_free(s);
		return;
	}
	before = s->errors;
	reply_result(s, r);
	smtp_transaction_reset(s);
	smtp_enter_state(s, SMTP_STATE_READY);
	if (s->srv->stopping) {
		smtp_close(s, STATUS_SHUTDOWN);
		return;
	}
	check_errors(s, before); /* a refused message counts as an error */
	smtp_continue(s);
}

/* See smtp_internal.h. */
void smtp_continue(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_CLOSING || s->paused)
		return;
	if (s->srv->stopping) {
		smtp_close(s, STATUS_SHUTDOWN);
		return;
	}
	smtp_resume_input(s);
	if (s->peer_eof && s->state != SMTP_STATE_CLOSING && s->state != SMTP_STATE_COMMIT &&
	    !s->milter_pending && !s->auth_pending && !s->lookup_pending && s->bev != NULL)
		smtp_enter_state(s, SMTP_STATE_CLOSING); /* freed once the reply is out */
}

/* Say a filter's refusal: its own reply lines, or the status. */
void smtp_reply_filter(struct smtp_session *s, const char *reply, enum status st)
{
	if (reply == NULL) {
		smtp_reply(s, st, NULL);
		return;
	}
	put_reply(s, reply, strlen(reply));
	if (reply[0] == '5')
		s->errors++;
}

/* The octets' form as DATA's line rules judge it (RFC 5321 §2.3.8, §4.5.3.1.6). */
static enum status message_form(const struct smtp_session *s)
{
	if (s->dr.flags & (DATA_BARE_LF | DATA_BARE_CR))
		return STATUS_BAD_LINE_ENDING;
	if (s->dr.flags & DATA_NUL)
		return STATUS_BAD_CONTENT;
	if (s->dr.flags & DATA_LONG_LINE)
		return STATUS_DATA_LINE_LONG;
	return STATUS_OK;
}

/* End of DATA or last BDAT chunk: intake decides (the limits, the
 * end-of-message stages) and commits; intake_done answers. */
static void message_end(struct smtp_session *s)
{
	smtp_enter_state(s, SMTP_STATE_COMMIT);
	intake_finish(&s->in, message_form(s), intake_done, s);
}

/* Does a callback of intake's still point at s?  A message the stages
 * were still deciding is dropped instead. */
static bool intake_waits(struct smtp_session *s)
{
	return s->state == SMTP_STATE_COMMIT && !intake_cancel(&s->in);
}

/* Feed buffered DATA octets; true when the end of data was reached. */
static bool data_consume(struct smtp_session *s, struct evbuffer *in)
{
	static char scratch[SCRATCH_SIZE + 2];

	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t take, used, outlen;
		bool done;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		take = v.iov_len < SCRATCH_SIZE ? v.iov_len : SCRATCH_SIZE;
		used = data_reader_feed(&s->dr, v.iov_base, take, scratch, &outlen, &done);
		intake_write(&s->in, scratch, outlen);
		evbuffer_drain(in, used);
		if (done) {
			message_end(s);
			return true;
		}
	}
	return false;
}

/* Feed buffered BDAT octets; true when the chunk is complete. */
static bool chunk_consume(struct smtp_session *s, struct evbuffer *in)
{
	while (s->bdat_remaining > 0) {
		struct evbuffer_iovec v;
		size_t take;

		/* peek may report an empty chain of an empty buffer: check length */
		if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return false;
		take = v.iov_len < s->bdat_remaining ? v.iov_len : (size_t)s->bdat_remaining;
		if (s->chunk_error == STATUS_OK) {
			data_reader_scan(&s->dr, v.iov_base, take); /* DATA's line rules */
			intake_write(&s->in, v.iov_base, take);
		}
		evbuffer_drain(in, take);
		s->bdat_remaining -= take;
	}
	s->in_chunk = false;
	smtp_set_timeouts(s);
	if (s->chunk_error != STATUS_OK) {
		smtp_reply(s, s->chunk_error, NULL);
		if (s->state >= SMTP_STATE_MAIL) { /* a refused chunk fails the transaction */
			smtp_transaction_reset(s);
			smtp_enter_state(s, SMTP_STATE_READY);
		}
		return true;
	}
	if (s->bdat_last) {
		data_reader_scan_end(&s->dr);
		message_end(s);
	} else if (intake_status(&s->in) != STATUS_OK) {
		smtp_reply(s, intake_status(&s->in), NULL);
		smtp_transaction_reset(s);
		smtp_enter_state(s, SMTP_STATE_READY);
	} else {
		smtp_reply(s, STATUS_CHUNK_OK, "%llu octets received",
			   (unsigned long long)s->env.size);
	}
	return true;
}

/* Take one command line out of the buffer; false when none is complete. */
static bool read_command(struct smtp_session *s, struct evbuffer *in)
{
	static char line[65536 + 2];
	size_t max = s->conf->limits.command_line_max, len = evbuffer_get_length(in);
	bool auth_line = s->state == SMTP_STATE_AUTH;
	struct evbuffer_ptr eol;

	if (len == 0)
		return false;
	eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (!s->discarding && (eol.pos < 0 ? len > max : (size_t)eol.pos + 1 > max)) {
		/* remember whether the over-long line is an AUTH exchange (500 5.5.6) */
		char head[5];
		evbuffer_copyout(in, head, sizeof(head));
		s->discarding_auth = auth_line || strncasecmp(head, "AUTH ", 5) == 0;
		s->discarding = true;
	}
	if (eol.pos < 0) {
		if (s->discarding) /* a line that never ends: memory stays bounded */
			evbuffer_drain(in, len);
		return false;
	}
	len = (size_t)eol.pos + 1; /* with the LF */
	if (s->discarding) {
		evbuffer_drain(in, len);
		s->discarding = false;
		log_info("event=line_too_long session=%s", s->id);
		if (s->discarding_auth)
			smtp_auth_abort(s, STATUS_AUTH_LINE_TOO_LONG);
		else
			smtp_reply(s, STATUS_LINE_TOO_LONG, NULL);
		return true;
	}
	evbuffer_remove(in, line, len);
	if (len < 2 || line[len - 2] != '\r' || memchr(line, '\0', len - 2) ||
	    memchr(line, '\r', len - 2)) {
		if (auth_line)
			smtp_auth_abort(s, STATUS_BAD_CHAR);
		else
			smtp_reply(s, STATUS_BAD_CHAR, NULL);
		return true;
	}
	line[len - 2] = '\0';
	if (auth_line) {
		smtp_auth_continue(s, line);
		explicit_bzero(line, len);
		return true;
	}
	s->ncommands++;
	smtp_dispatch(s, line);
	if (has_prefix_ci(line, "AUTH "))
		explicit_bzero(line, len); /* an initial response holds a password */
	return true;
}

/*
 * Close from inside the input path (a forbidden command such as GET, a TLS
 * filter that cannot be made): the replies already made go out if the
 * socket takes them at once, and the connection closes now.  The session
 * is freed on the next turn of the loop (delay_cb): callers up the stack
 * (commit_done, event_cb) still use it when this returns.
 */
static void close_soon(struct smtp_session *s, const char *reason)
{
	static const struct timeval now = {0, 0};

	if (intake_waits(s) || s->dns_pending || s->auth_pending || s->lookup_pending) {
		smtp_close_now(s, reason); /* freed by that callback */
		return;
	}
	log_debug("event=close session=%s reason=\"%s\"", s->id, reason);
	if (s->bev != NULL && !s->ssl && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		evbuffer_write(s->out, bufferevent_getfd(s->bev));
	evbuffer_drain(s->out, evbuffer_get_length(s->out));
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->state = SMTP_STATE_CLOSING;
	evtimer_del(s->data_timer);
	evtimer_add(s->delay_ev, &now);
}

/* Error limits after each unit of input: soft delays, hard closes. */
static void check_errors(struct smtp_session *s, unsigned before)
{
	const struct limits *lim = &s->conf->limits;

	if (s->errors == before || s->state == SMTP_STATE_CLOSING)
		return;
	if (s->errors >= lim->errors_hard) {
		log_info("event=too_many_errors session=%s errors=%u", s->id, s->errors);
		smtp_close(s, STATUS_TOO_MANY_ERRORS);
	} else if (s->errors > lim->errors_soft && lim->error_delay_ms > 0) {
		struct timeval tv = {lim->error_delay_ms / 1000,
				     (lim->error_delay_ms % 1000) * 1000};
		s->paused = true;
		evtimer_add(s->delay_ev, &tv);
	}
}

/* Run everything the buffered input allows. */
void smtp_resume_input(struct smtp_session *s)
{
	struct evbuffer *in;

	if (s->bev == NULL)
		return;
	/* Input can arrive with the client's TLS Finished, before libevent's
	 * CONNECTED event: the session must know it is encrypted first. */
	if (s->ssl && !s->tls && tls_handshake_done(s->ssl))
		tls_established(s);
	in = bufferevent_get_input(s->bev);
	while (!s->paused) {
		unsigned before = s->errors;
		bool progressed;

		/* A client that pipelines and never reads its replies: stop here;
		 * the input fills to READ_HIGH_WATER and reading stops too.
		 * session_drained resumes once the replies have left. */
		if (output_pending(s) > WRITE_HIGH_WATER) {
			s->output_full = true;
			return;
		}

		if (s->in_chunk)
			progressed = chunk_consume(s, in);
		else if (s->state == SMTP_STATE_DATA)
			progressed = data_consume(s, in);
		else if (s->state == SMTP_STATE_CONNECTED) {
			postscreen_input(s, in); /* talk before the greeting */
			return;
		} else if (s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_CLOSING ||
			   s->auth_pending || s->milter_pending || s->lookup_pending)
			return;
		else
			progressed = read_command(s, in);
		if (s->drop) {
			close_soon(s, "forbidden command");
			return;
		}
		if (s->starttls_pending) {
			start_tls(s);
			return;
		}
		check_errors(s, before);
		if (!progressed)
			return;
	}
}

/* The error delay is over. */
static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->state == SMTP_STATE_CLOSING) { /* see session_drained */
		session_free(s);
		return;
	}
	smtp_auth_delay_done(s); /* a delayed 535, if that is what waited */
	s->paused = false;
	if (s->state == SMTP_STATE_CLOSING)
		return;
	if (s->srv->stopping) { /* SIGTERM came while it waited: nothing more is read */
		smtp_close(s, STATUS_SHUTDOWN);
		return;
	}
	smtp_resume_input(s);
}

/* Input arrived. */
static void read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	smtp_resume_input(arg);
}

/* The socket's own buffer under a STARTTLS filter changed. */
static void underlying_drained_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
				  void *arg)
{
	struct smtp_session *s = arg;
	struct timeval now = {0, 0};

	(void)info;
	if (evbuffer_get_length(buf) == 0)
		evtimer_add(s->delay_ev, &now); /* free outside libevent's write path */
}

/* The bufferevent's output drained. */
static void write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_drained(arg);
}

/*
 * Every reply is out: a closing session can go now, one that stopped
 * reading because replies piled up reads on.  Under a STARTTLS filter,
 * "out" means handed to the socket's bufferevent, not sent: wait for
 * that buffer to empty too, or the last reply (221, 421) would be lost.
 */
static void session_drained(struct smtp_session *s)
{
	struct bufferevent *under;

	if (evbuffer_get_length(s->out) > 0)
		return; /* flush_cb runs next and comes back here */
	if (s->state != SMTP_STATE_CLOSING) {
		if (s->output_full) {
			s->output_full = false;
			smtp_resume_input(s);
		}
		return;
	}
	under = bufferevent_get_underlying(s->bev);
	if (under && evbuffer_get_length(bufferevent_get_output(under)) > 0) {
		evbuffer_add_cb(bufferevent_get_output(under), underlying_drained_cb, s);
		return;
	}
	session_free(s);
}

/*
 * A STARTTLS filter arms its write timeout when a reply arrives and keeps
 * it armed after the reply has gone to the socket, until the timeouts are
 * set again on the next state change.  Firing with nothing left to send,
 * it is no timeout (the read timeout answers an idle client, with its
 * 421), but libevent has turned writing off: turn it on again (which arms
 * the write timer anew; the read timer stays as it is).  True when the
 * timeout was such a one.
 */
static bool stale_write_timeout(struct smtp_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);

	if (under == NULL || s->state == SMTP_STATE_CLOSING || output_pending(s) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(under)) > 0)
		return false;
	bufferevent_enable(s->bev, EV_WRITE);
	return true;
}

/* EOF, error or timeout on the connection. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		return;
	}
	if (s->ssl && !s->tls) {
		char reason[256];
		unsigned long e = bufferevent_get_openssl_error(s->bev);
		log_info("event=tls_failed session=%s client=%s reason=\"%s\"", s->id, s->peer_addr,
			 e                            ? tls_error_text(e, reason, sizeof(reason))
			 : (what & BEV_EVENT_EOF)     ? "client closed the connection"
			 : (what & BEV_EVENT_TIMEOUT) ? "timeout"
						      : "handshake failed");
		metrics_add(METRIC_TLS_FAILURES, s->l->index, 0, 1);
		smtp_close_now(s, "tls handshake failed");
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING) && stale_write_timeout(s))
		return;
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->state != SMTP_STATE_CLOSING) {
		log_info("event=timeout session=%s state=%s", s->id, smtp_strstate(s->state));
		smtp_close(s, STATUS_TIMEOUT);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !s->peer_eof) {
		/* A half-close still wants its replies: a client may send its whole
		 * pipelined session and then shut down its side. */
		s->peer_eof = true;
		smtp_resume_input(s);
		if (s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_CLOSING ||
		    s->milter_pending || s->lookup_pending || s->bev == NULL)
			return; /* intake_done / a filter's or lookup's answer / session_drained
				 * finish the job
				 */
		if (s->state < SMTP_STATE_MAIL && output_pending(s) > 0) {
			smtp_enter_state(s, SMTP_STATE_CLOSING); /* flush the replies first */
			return;
		}
	}
	if (s->state != SMTP_STATE_CLOSING && s->state != SMTP_STATE_COMMIT &&
	    s->state >= SMTP_STATE_MAIL)
		log_info("event=lost session=%s state=%s", s->id, smtp_strstate(s->state));
	smtp_close_now(s, (what & BEV_EVENT_EOF)       ? "eof"
			  : (what & BEV_EVENT_TIMEOUT) ? "timeout"
						       : "error");
}

/* The handshake did not finish in time. */
static void tls_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	log_info("event=tls_failed session=%s client=%s reason=\"handshake timeout\"", s->id,
		 s->peer_addr);
	metrics_add(METRIC_TLS_FAILURES, s->l->index, 0, 1);
	smtp_close_now(s, "tls handshake timeout");
}

/* Callbacks, buffer limits and timeouts of a (new) bufferevent. */
static void session_attach(struct smtp_session *s, struct bufferevent *bev)
{
	s->bev = bev;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, READ_HIGH_WATER);
	if (s->ssl)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
}

/* Arm the handshake deadline. */
static void tls_arm_timer(struct smtp_session *s)
{
	struct timeval tv = {s->conf->limits.timeout_tls, 0};

	evtimer_add(s->tls_timer, &tv);
}

/* The handshake finished. */
static void tls_established(struct smtp_session *s)
{
	if (s->tls)
		return; /* seen already, from the input path */
	s->tls = true;
	evtimer_del(s->tls_timer);
	strcpy_bounded(s->tls_version, tls_version(s->ssl), sizeof(s->tls_version));
	strcpy_bounded(s->tls_cipher, tls_cipher(s->ssl), sizeof(s->tls_cipher));
	log_info("event=tls_established session=%s client=%s version=%s cipher=%s", s->id,
		 s->peer_addr, s->tls_version, s->tls_cipher);
	metrics_add(METRIC_TLS_HANDSHAKES, s->l->index, 0, 1);
}

/*
 * After "220 Ready to start TLS": everything the client sent after STARTTLS
 * in plaintext is discarded, never executed inside TLS (CVE-2011-0411), and
 * the session forgets what it knew (RFC 3207 §4.2).
 */
static void start_tls(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);
	struct bufferevent *fb;

	s->starttls_pending = false;
	output_to_bufferevent(s); /* replies before the 220 stay plaintext too */
	if (junk > 0) {
		log_info("event=starttls_plaintext_discarded session=%s client=%s octets=%zu",
			 s->id, s->peer_addr, junk);
		evbuffer_drain(in, junk);
	}
	/* the filter's own timeouts apply from now on: one the socket's
	 * bufferevent kept would reach event_cb through the filter whatever
	 * the filter's say (none while a commit or password check runs) */
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	fb = bufferevent_openssl_filter_new(s->srv->base, s->bev, s->ssl, BUFFEREVENT_SSL_ACCEPTING,
					    BEV_OPT_CLOSE_ON_FREE);
	if (fb == NULL) {
		log_warnx("event=tls_failed session=%s reason=\"cannot create TLS filter\"", s->id);
		close_soon(s, "tls filter");
		return;
	}
	session_attach(s, fb);
	smtp_transaction_reset(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	smtp_enter_state(s, SMTP_STATE_GREETED);
	bufferevent_enable(fb, EV_READ | EV_WRITE);
	tls_arm_timer(s);
}

/* The listener's TLS mode. */
enum tls_mode smtp_tls_mode(const struct smtp_session *s)
{
	return s->lc->tls;
}

/* Send the greeting and start reading. */
static void greet(struct smtp_session *s)
{
	smtp_reply(s, STATUS_GREETING, "%s ESMTP hato", s->conf->hostname);
	smtp_enter_state(s, SMTP_STATE_GREETED);
	/* writing is on from the start; enabling it again on a plain socket
	 * would arm a write event for an empty buffer */
	bufferevent_enable(s->bev, s->ssl ? EV_READ | EV_WRITE : EV_READ);
	smtp_resume_input(s);
}

/* Reverse DNS answered (or failed). */
static void dns_done(void *arg, const char *name)
{
	struct smtp_session *s = arg;

	s->dns_pending = false;
	if (s->gone) {
		session_free(s);
		return;
	}
	strcpy_bounded(s->peer_name, name ? name : "unknown", sizeof(s->peer_name));
	postscreen_reverse_done(s, name);
	smtp_greet_ready(s);
}

/* See smtp_internal.h. */
void smtp_greet_ready(struct smtp_session *s)
{
	if (s->state != SMTP_STATE_CONNECTED || s->dns_pending || postscreen_waiting(s))
		return;
	if (s->srv->stopping) {
		smtp_close(s, STATUS_SHUTDOWN);
		return;
	}
	if (postscreen_verdict(s))
		greet(s);
}

/* Refuse a connection before it has a bufferevent: the reply goes
 * straight to the socket, in plaintext, as for sessions_max. */
static void refuse_early(struct smtp_session *s, evutil_socket_t fd, enum status st)
{
	char line[128];
	size_t n = status_format(line, sizeof(line), st, NULL, true);

	if (write(fd, line, n) < 0) {
		/* the client is told if it can be told; closing is what matters */
	}
	evutil_closesocket(fd);
	session_free(s);
}

/* Numeric text of a socket address. */
static void addr_text(const struct sockaddr *sa, char *buf, size_t size, unsigned *port)
{
	const void *a;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		a = &s6->sin6_addr;
		*port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, (const char *)a + 12, buf, (socklen_t)size);
			return;
		}
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		a = &s4->sin_addr;
		*port = ntohs(s4->sin_port);
	}
	if (inet_ntop(sa->sa_family, a, buf, (socklen_t)size) == NULL)
		strcpy_bounded(buf, "unknown", size);
}

/* See smtp_internal.h. */
void smtp_session_set_peer(struct smtp_session *s, const struct sockaddr *peer, socklen_t len,
			   const struct sockaddr *local)
{
	memcpy(&s->peer, peer, len);
	addr_text(peer, s->peer_addr, sizeof(s->peer_addr), &s->peer_port);
	if (local != NULL) {
		unsigned lport;
		addr_text(local, s->local_addr, sizeof(s->local_addr), &lport);
	}
}

/* See smtp_session.h. */
void smtp_session_new(struct listener *l, evutil_socket_t fd, const struct sockaddr *sa,
		      socklen_t salen)
{
	static uint64_t counter;
	struct server *srv = l->srv;
	struct smtp_session *s;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	const struct sockaddr *local_sa = NULL;

	if (srv->nsessions >= srv->conf->limits.sessions_max) {
		char line[128];
		size_t n = status_format(line, sizeof(line), STATUS_TOO_MANY_SESSIONS, NULL, true);
		log_warnx("event=session_limit listener=%s sessions=%zu", l->lc->name,
			  srv->nsessions);
		if (write(fd, line, n) < 0) {
			/* the client is told if it can be told; closing is what matters */
		}
		evutil_closesocket(fd);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->l = l;
	/* a reload swaps srv->conf: the session goes on with this one */
	s->conf = conf_hold(srv->conf);
	s->lc = l->lc;
	snprintf(s->id, sizeof(s->id), "%08llX%08llX", (unsigned long long)time(NULL) & 0xFFFFFFFF,
		 (unsigned long long)++counter & 0xFFFFFFFF);
	if (l->local_addr[0] != '\0')
		strcpy_bounded(s->local_addr, l->local_addr, sizeof(s->local_addr));
	else if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		local_sa = (struct sockaddr *)&local;
	smtp_session_set_peer(s, sa, salen, local_sa);
	strcpy_bounded(s->peer_name, "unknown", sizeof(s->peer_name));
	envelope_init(&s->env);
	intake_init(&s->in, s->conf, srv->queue);
	if (checks_enabled(s->conf) && s->lc->auth != AUTH_MODE_REQUIRED) {
		char key[INTAKE_LOG_KEY_MAX];

		snprintf(key, sizeof(key), "session=%s", s->id);
		s->checks = checks_new(s->conf, srv->base, key);
		intake_stage_add(&s->in, &checks_stage, s->checks);
	}
	if (intake_dkim_enabled())
		intake_stage_add(&s->in, &intake_dkim_stage, NULL);
	{
		char key[INTAKE_LOG_KEY_MAX];
		snprintf(key, sizeof(key), "session=%s", s->id);
		s->milter = milter_session_new(s->conf, srv->base, s->lc->name, key);
		if (s->milter != NULL)
			intake_stage_add(&s->in, &milter_stage, s->milter);
	}
	s->state = SMTP_STATE_CONNECTED;
	s->delay_ev = evtimer_new(srv->base, delay_cb, s);
	s->data_timer = evtimer_new(srv->base, data_timer_cb, s);
	s->tls_timer = evtimer_new(srv->base, tls_timer_cb, s);
	s->out = evbuffer_new();
	s->flush_ev = event_new(srv->base, -1, 0, flush_cb, s);
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	metrics_add(METRIC_SESSIONS, l->index, 0, 1);
	metrics_add(METRIC_SESSIONS_OPEN, l->index, 0, 1);
	if (s->lc->proxy_protocol)
		smtp_proxy_start(s, fd); /* smtp_session_begin once the header is read */
	else
		smtp_session_begin(s, fd);
}

/* See smtp_internal.h. */
void smtp_session_begin(struct smtp_session *s, evutil_socket_t fd)
{
	struct server *srv = s->srv;
	struct listener *l = s->l;
	enum status st;

	s->trusted = policy_client_trusted(s->conf, (struct sockaddr *)&s->peer);
	if ((st = postscreen_connect(s)) != STATUS_OK) {
		refuse_early(s, fd, st);
		return;
	}
	if (s->lc->tls == TLS_MODE_IMPLICIT) {
		s->ssl = tls_new_ssl(s->lc);
		if (s->ssl == NULL) {
			log_warnx(
				"event=tls_failed listener=%s client=%s reason=\"no TLS context\"",
				l->lc->name, s->peer_addr);
			evutil_closesocket(fd);
			session_free(s);
			return;
		}
		session_attach(s, bufferevent_openssl_socket_new(srv->base, fd, s->ssl,
								 BUFFEREVENT_SSL_ACCEPTING,
								 BEV_OPT_CLOSE_ON_FREE));
		tls_arm_timer(s);
	} else {
		session_attach(s, bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE));
	}
	log_info("event=connect session=%s listener=%s client=%s port=%u trusted=%s%s%s", s->id,
		 l->lc->name, s->peer_addr, s->peer_port, s->trusted ? "yes" : "no",
		 s->proxy_addr[0] ? " proxy=" : "", s->proxy_addr);
	if (s->conf->reverse_dns) {
		s->dns_pending = true;
		dns_reverse((struct sockaddr *)&s->peer, dns_done, s);
	}
	postscreen_start(s);
	smtp_greet_ready(s);
}

/* See smtp_session.h. */
void smtp_session_shutdown(struct smtp_session *s)
{
	if (s->proxy != NULL) { /* still reading the PROXY header: nothing to say */
		smtp_close_now(s, "shutdown");
		return;
	}
	if (s->state == SMTP_STATE_COMMIT || s->dns_pending || s->auth_pending ||
	    s->milter_pending || s->lookup_pending)
		return; /* their callbacks see srv->stopping */
	smtp_close(s, STATUS_SHUTDOWN);
}

/* Unlink, log, release. */
static void session_free(struct smtp_session *s)
{
	struct server *srv = s->srv;
	char counts[256];

	if (s->dns_pending) { /* a PTR lookup still points at s: dns_done frees it */
		session_mark_gone(s);
		return;
	}
	postscreen_end(s);
	log_info("event=disconnect session=%s client=%s tls=%s messages=%u errors=%u %s", s->id,
		 s->peer_addr, s->tls ? s->tls_version : "no", s->messages, s->errors,
		 smtp_command_counts(s, counts, sizeof(counts)));
	smtp_proxy_free(s);
	smtp_transaction_reset(s);
	free(s->auth_user);
	free(s->auth_name);
	sqlmap_ask_free(s->ask);
	free(s->lookup_arg);
	intake_free(&s->in);
	checks_free(s->checks);
	intake_free(&s->in); /* stops the milter stage, if it runs */
	milter_session_free(s->milter);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	metrics_add(METRIC_SESSIONS_OPEN, s->l->index, 0, -1);
	event_free(s->delay_ev);
	event_free(s->data_timer);
	event_free(s->tls_timer);
	event_free(s->flush_ev);
	evbuffer_free(s->out);
	if (s->bev)
		bufferevent_free(s->bev);
	conf_free(s->conf);
	free(s);
	if (srv->stopping && server_drained(srv))
		event_base_loopexit(srv->base, NULL);
}
