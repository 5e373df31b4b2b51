/*
 * envelope.c - envelope records, their text format, and the queue ID format
 * (queue_id_new, which makes IDs, is the queue's: src/queue/queue_id.c).
 */
#include "envelope.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const body_names[] = {"unspecified", "7bit", "8bitmime"};
static const char *const state_names[] = {"pending", "delivered", "failed"};
static const char *const report_names[] = {"none", "failed", "delayed", "delivered", "relayed"};

/* Free what an attempt record owns. */
static void attempt_free(struct env_attempt *a)
{
	free(a->host);
	free(a->tls);
	free(a->reply);
}

/* An empty envelope. */
void envelope_init(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
}

/* Release what one recipient holds. */
static void rcpt_free(struct env_rcpt *r)
{
	free(r->addr);
	free(r->orig);
	free(r->error);
	free(r->orcpt);
	for (size_t k = 0; k < r->ntries; k++)
		attempt_free(&r->tries[k]);
	free(r->tries);
}

/* Free everything the envelope owns. */
void envelope_free(struct envelope *e)
{
	free(e->sender);
	free(e->client);
	free(e->client_name);
	free(e->helo);
	free(e->auth_user);
	free(e->auth_param);
	free(e->envid);
	free(e->hold);
	for (size_t i = 0; i < e->nrcpts; i++)
		rcpt_free(&e->rcpts[i]);
	free(e->rcpts);
	envelope_init(e);
}

/* See envelope.h. */
void envelope_remove_rcpt(struct envelope *e, size_t i)
{
	if (i >= e->nrcpts)
		return;
	rcpt_free(&e->rcpts[i]);
	memmove(&e->rcpts[i], &e->rcpts[i + 1], (e->nrcpts - i - 1) * sizeof(*e->rcpts));
	e->nrcpts--;
}

/* Append a pending recipient. */
void envelope_add_rcpt(struct envelope *e, const char *addr)
{
	struct env_rcpt *r;

	e->rcpts = xrealloc(e->rcpts, (e->nrcpts + 1) * sizeof(*e->rcpts));
	r = &e->rcpts[e->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(addr);
	r->state = RCPT_PENDING;
}

/* See envelope.h. */
void env_rcpt_set_error(struct env_rcpt *r, const char *text)
{
	free(r->error);
	r->error = text ? xstrdup(text) : NULL;
	for (char *p = r->error; p && *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
}

/* See envelope.h. */
void env_rcpt_set_orig(struct env_rcpt *r, const char *orig)
{
	free(r->orig);
	r->orig = orig ? xstrdup(orig) : NULL;
}

/* See envelope.h. */
void env_rcpt_set_orcpt(struct env_rcpt *r, const char *orcpt)
{
	free(r->orcpt);
	r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
}

/* A copy of s cut to max octets (never inside a UTF-8 sequence), with
 * every octet for which bad() holds replaced by repl. */
static char *clean_copy(const char *s, size_t max, int (*bad)(int), char repl)
{
	size_t n = strlen(s);
	char *c;

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--; /* s[n] continues a sequence: cut before its start */
	}
	c = xstrndup(s, n);
	for (char *p = c; *p; p++)
		if (bad((unsigned char)*p))
			*p = repl;
	return c;
}

/* A byte that cannot be in a word of an envelope line: space, control. */
static int bad_in_word(int ch)
{
	return ch <= ' ' || ch == 0x7f;
}

/* A byte that cannot be in a value: a line end. */
static int bad_in_line(int ch)
{
	return ch == '\r' || ch == '\n';
}

/* An attempt's host or TLS word: NULL for nothing ("" or "-"). */
static char *attempt_word(const char *w)
{
	if (w == NULL || w[0] == '\0' || strcmp(w, "-") == 0)
		return NULL;
	return clean_copy(w, ENVELOPE_WORD_MAX, bad_in_word, '_');
}

/* See envelope.h. */
void env_rcpt_add_attempt(struct env_rcpt *r, time_t at, enum outcome result, const char *host,
			  const char *tls, const char *reply)
{
	struct env_attempt *a;

	if (r->ntries == ENVELOPE_ATTEMPTS_MAX) { /* the oldest goes */
		attempt_free(&r->tries[0]);
		memmove(r->tries, r->tries + 1, (r->ntries - 1) * sizeof(*r->tries));
		r->ntries--;
	} else {
		r->tries = xrealloc(r->tries, (r->ntries + 1) * sizeof(*r->tries));
	}
	a = &r->tries[r->ntries++];
	a->at = at;
	a->result = result;
	a->host = attempt_word(host);
	a->tls = attempt_word(tls);
	a->reply = clean_copy(reply ? reply : "", ENVELOPE_REPLY_MAX, bad_in_line, ' ');
}

/* See envelope.h. */
void envelope_set_hold(struct envelope *e, const char *reason, time_t since)
{
	free(e->hold);
	e->hold = reason ? clean_copy(reason, ENVELOPE_HOLD_REASON_MAX, bad_in_line, ' ') : NULL;
	e->held_since = reason ? since : 0;
}

/* See envelope.h. */
size_t envelope_pending(const struct envelope *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->nrcpts; i++)
		n += e->rcpts[i].state == RCPT_PENDING;
	return n;
}

/* A value for one line: CR and LF (which no value may hold) become spaces,
 * so no value can ever add a line to the envelope. */
static const char *one_line(const char *v, char *buf, size_t size)
{
	if (v == NULL || strpbrk(v, "\r\n") == NULL)
		return v ? v : "";
	strcpy_bounded(buf, v, size);
	for (char *p = buf; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return buf;
}

/* See envelope.h. */
void envelope_format(const struct envelope *e, struct strbuf *b)
{
	char t[1024], notify[DSN_NOTIFY_TEXT_MAX + sizeof(" notify=")];

	strbuf_printf(b, "hato-envelope: %d\n", ENVELOPE_VERSION);
	strbuf_printf(b, "id: %s\n", e->id);
	strbuf_printf(b, "arrival: %lld\n", (long long)e->arrival);
	strbuf_printf(b, "sender: %s\n", e->sender ? one_line(e->sender, t, sizeof(t)) : "<>");
	strbuf_printf(b, "size: %" PRIu64 "\n", e->size);
	strbuf_printf(b, "body: %s\n", body_names[e->body]);
	strbuf_printf(b, "smtputf8: %s\n", e->smtputf8 ? "yes" : "no");
	strbuf_printf(b, "client: %s\n", one_line(e->client, t, sizeof(t)));
	strbuf_printf(b, "client-name: %s\n", one_line(e->client_name, t, sizeof(t)));
	strbuf_printf(b, "helo: %s\n", one_line(e->helo, t, sizeof(t)));
	if (e->auth_user)
		strbuf_printf(b, "auth-user: %s\n", one_line(e->auth_user, t, sizeof(t)));
	if (e->auth_param)
		strbuf_printf(b, "auth-param: %s\n", one_line(e->auth_param, t, sizeof(t)));
	if (dsn_ret_name(e->ret))
		strbuf_printf(b, "ret: %s\n", dsn_ret_name(e->ret));
	if (e->envid)
		strbuf_printf(b, "envid: %s\n", one_line(e->envid, t, sizeof(t)));
	if (e->dsn_report)
		strbuf_printf(b, "dsn-report: yes\n");
	if (e->junk)
		strbuf_printf(b, "junk: yes\n");
	if (e->delay_warned)
		strbuf_printf(b, "delay-warned: yes\n");
	if (e->hold)
		strbuf_printf(b, "hold: since=%lld reason=%s\n", (long long)e->held_since,
			      one_line(e->hold, t, sizeof(t)));
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct env_rcpt *r = &e->rcpts[i];
		char words[DSN_NOTIFY_TEXT_MAX];

		notify[0] = '\0';
		if (dsn_format_notify(r->notify, words, sizeof(words)))
			snprintf(notify, sizeof(notify), " notify=%s", words);
		strbuf_printf(b, "rcpt: state=%s attempts=%u next=%lld%s%s%s addr=%s\n",
			      state_names[r->state], r->attempts, (long long)r->next_attempt,
			      notify, r->report ? " report=" : "",
			      r->report ? report_names[r->report] : "",
			      one_line(r->addr, t, sizeof(t)));
		if (r->orig)
			strbuf_printf(b, "rcpt-orig: %s\n", one_line(r->orig, t, sizeof(t)));
		if (r->local)
			strbuf_printf(b, "rcpt-local: yes\n");
		if (r->orcpt)
			strbuf_printf(b, "rcpt-orcpt: %s\n", one_line(r->orcpt, t, sizeof(t)));
		if (r->error)
			strbuf_printf(b, "rcpt-error: %s\n", one_line(r->error, t, sizeof(t)));
		for (size_t k = 0; k < r->ntries; k++) {
			const struct env_attempt *a = &r->tries[k];

			strbuf_printf(
				b, "rcpt-attempt: at=%lld result=%s host=%s tls=%s reply=%s\n",
				(long long)a->at, outcome_name(a->result), a->host ? a->host : "-",
				a->tls ? a->tls : "-", one_line(a->reply, t, sizeof(t)));
		}
	}
}

/* Index of name in a table, -1 when absent. */
static int lookup_name(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

/* Take an optional "key=WORD " from the front of *v into word: 1 taken,
 * 0 absent, -1 malformed. */
static int take_word(char **v, const char *key, char *word, size_t size)
{
	size_t k = strlen(key), n;

	if (strncmp(*v, key, k) != 0 || (*v)[k] != '=')
		return 0;
	n = strcspn(*v + k + 1, " ");
	if (n >= size || (*v)[k + 1 + n] != ' ')
		return -1;
	memcpy(word, *v + k + 1, n);
	word[n] = '\0';
	*v += k + 1 + n + 1;
	return 1;
}

/* Parse "state=S attempts=N next=T [notify=W,W] [report=R] addr=<...>". */
static bool parse_rcpt(char *v, struct envelope *e)
{
	char state[16], words[DSN_NOTIFY_TEXT_MAX];
	unsigned attempts, notify = 0;
	long long next;
	int off = 0, st, report = REPORT_NONE, got;

	if (sscanf(v, "state=%15s attempts=%u next=%lld %n", state, &attempts, &next, &off) != 3 ||
	    off == 0)
		return false;
	v += off;
	if ((got = take_word(&v, "notify", words, sizeof(words))) < 0 ||
	    (got > 0 && !dsn_parse_notify(words, &notify)))
		return false;
	if ((got = take_word(&v, "report", words, sizeof(words))) < 0 ||
	    (got > 0 && (report = lookup_name(report_names, 5, words)) <= REPORT_NONE))
		return false;
	if (strncmp(v, "addr=<", 6) != 0)
		return false;
	if ((st = lookup_name(state_names, 3, state)) < 0)
		return false;
	envelope_add_rcpt(e, v + 5);
	e->rcpts[e->nrcpts - 1].state = (enum rcpt_state)st;
	e->rcpts[e->nrcpts - 1].attempts = attempts;
	e->rcpts[e->nrcpts - 1].next_attempt = (time_t)next;
	e->rcpts[e->nrcpts - 1].notify = notify;
	e->rcpts[e->nrcpts - 1].report = (enum rcpt_report)report;
	return true;
}

/* Parse "at=T result=R host=H tls=V reply=TEXT" into an attempt of r. */
static bool parse_attempt(char *v, struct env_rcpt *r)
{
	char at[24], result[16], host[ENVELOPE_WORD_MAX + 1], tls[ENVELOPE_WORD_MAX + 1];
	uint64_t when;
	int o;

	if (take_word(&v, "at", at, sizeof(at)) != 1 || !parse_u64(at, 0, INT64_MAX, &when) ||
	    take_word(&v, "result", result, sizeof(result)) != 1 ||
	    take_word(&v, "host", host, sizeof(host)) != 1 ||
	    take_word(&v, "tls", tls, sizeof(tls)) != 1 || strncmp(v, "reply=", 6) != 0)
		return false;
	for (o = OUTCOME_DELIVERED; o <= OUTCOME_PERMFAIL; o++)
		if (strcmp(result, outcome_name((enum outcome)o)) == 0)
			break;
	if (o > OUTCOME_PERMFAIL)
		return false;
	env_rcpt_add_attempt(r, (time_t)when, (enum outcome)o, host, tls, v + 6);
	return true;
}

/* Parse "since=T reason=TEXT" into e's hold. */
static bool parse_hold(char *v, struct envelope *e)
{
	char since[24];
	uint64_t when;

	if (take_word(&v, "since", since, sizeof(since)) != 1 ||
	    !parse_u64(since, 0, INT64_MAX, &when) || strncmp(v, "reason=", 7) != 0)
		return false;
	envelope_set_hold(e, v + 7, (time_t)when);
	return true;
}

/* Apply one "key: value" line; false if the key is unknown or value bad. */
static bool parse_line(char *key, char *v, struct envelope *e, bool *have_version)
{
	uint64_t n;
	int i;

	if (strcmp(key, "hato-envelope") == 0) {
		*have_version = true;
		return parse_u64(v, ENVELOPE_VERSION, ENVELOPE_VERSION, &n);
	} else if (strcmp(key, "id") == 0) {
		return queue_id_valid(v) && strcpy_bounded(e->id, v, sizeof(e->id));
	} else if (strcmp(key, "arrival") == 0) {
		if (!parse_u64(v, 0, INT64_MAX, &n))
			return false;
		e->arrival = (time_t)n;
	} else if (strcmp(key, "sender") == 0) {
		free(e->sender);
		e->sender = xstrdup(v);
	} else if (strcmp(key, "size") == 0) {
		return parse_u64(v, 0, UINT64_MAX, &e->size);
	} else if (strcmp(key, "body") == 0) {
		if ((i = lookup_name(body_names, 3, v)) < 0)
			return false;
		e->body = (enum body_type)i;
	} else if (strcmp(key, "smtputf8") == 0) {
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
			return false;
		e->smtputf8 = v[0] == 'y';
	} else if (strcmp(key, "client") == 0) {
		free(e->client);
		e->client = xstrdup(v);
	} else if (strcmp(key, "client-name") == 0) {
		free(e->client_name);
		e->client_name = xstrdup(v);
	} else if (strcmp(key, "helo") == 0) {
		free(e->helo);
		e->helo = xstrdup(v);
	} else if (strcmp(key, "auth-user") == 0) {
		free(e->auth_user);
		e->auth_user = xstrdup(v);
	} else if (strcmp(key, "auth-param") == 0) {
		free(e->auth_param);
		e->auth_param = xstrdup(v);
	} else if (strcmp(key, "ret") == 0) {
		if (!dsn_parse_ret(v, &e->ret) || strcmp(v, dsn_ret_name(e->ret)) != 0)
			return false;
	} else if (strcmp(key, "envid") == 0) {
		if (!dsn_valid_envid(v))
			return false;
		free(e->envid);
		e->envid = xstrdup(v);
	} else if (strcmp(key, "dsn-report") == 0 || strcmp(key, "delay-warned") == 0 ||
		   strcmp(key, "junk") == 0) {
		if (strcmp(v, "yes") != 0)
			return false;
		if (strcmp(key, "dsn-report") == 0)
			e->dsn_report = true;
		else if (strcmp(key, "junk") == 0)
			e->junk = true;
		else
			e->delay_warned = true;
	} else if (strcmp(key, "hold") == 0) {
		return e->hold == NULL && parse_hold(v, e);
	} else if (strcmp(key, "rcpt") == 0) {
		return parse_rcpt(v, e);
	} else if (strcmp(key, "rcpt-local") == 0) {
		if (e->nrcpts == 0 || strcmp(v, "yes") != 0)
			return false;
		e->rcpts[e->nrcpts - 1].local = true;
	} else if (strcmp(key, "rcpt-attempt") == 0) {
		return e->nrcpts > 0 && parse_attempt(v, &e->rcpts[e->nrcpts - 1]);
	} else if (strcmp(key, "rcpt-orig") == 0 || strcmp(key, "rcpt-error") == 0 ||
		   strcmp(key, "rcpt-orcpt") == 0) {
		char orcpt[DSN_ORCPT_MAX + 1];

		if (e->nrcpts == 0)
			return false; /* belongs to the rcpt line before it */
		if (strcmp(key, "rcpt-orig") == 0) {
			env_rcpt_set_orig(&e->rcpts[e->nrcpts - 1], v);
		} else if (strcmp(key, "rcpt-error") == 0) {
			env_rcpt_set_error(&e->rcpts[e->nrcpts - 1], v);
		} else {
			if (!dsn_parse_orcpt(v, true, orcpt, sizeof(orcpt)))
				return false;
			env_rcpt_set_orcpt(&e->rcpts[e->nrcpts - 1], orcpt);
		}
	} else {
		return false;
	}
	return true;
}

/* See envelope.h. */
bool envelope_parse(const char *text, size_t len, struct envelope *e, char *err, size_t errsz)
{
	char *copy = xstrndup(text, len), *line, *next;
	bool have_version = false, ok = true;
	unsigned lineno = 0;

	envelope_init(e);
	if (strlen(copy) != len) {
		snprintf(err, errsz, "NUL byte in envelope");
		free(copy);
		return false;
	}
	for (line = copy; line && *line; line = next) {
		char *colon;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if (*line == '\0')
			continue;                 /* blank lines are counted, not meaningful */
		if (strchr(line, '\r') != NULL) { /* never written: no value holds one */
			snprintf(err, errsz, "line %u: carriage return", lineno);
			ok = false;
			break;
		}
		colon = strstr(line, ": ");
		if (colon == NULL) {
			snprintf(err, errsz, "line %u: no \"key: value\"", lineno);
			ok = false;
			break;
		}
		*colon = '\0';
		if (!parse_line(line, colon + 2, e, &have_version)) {
			snprintf(err, errsz, "line %u: bad key or value for \"%s\"", lineno, line);
			ok = false;
			break;
		}
	}
	if (ok && (!have_version || e->id[0] == '\0' || e->sender == NULL)) {
		snprintf(err, errsz, "missing hato-envelope, id or sender");
		ok = false;
	}
	free(copy);
	if (!ok)
		envelope_free(e);
	return ok;
}

/* Exactly QUEUE_ID_LEN upper-case hex digits. */
bool queue_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isxdigit((unsigned char)s[i]) || islower((unsigned char)s[i]))
			return false;
	return i == QUEUE_ID_LEN;
}
