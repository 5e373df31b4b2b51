/*
 * message.c - preparing a message for `hato send`: line endings, the
 * header section, address lists, Bcc removal, missing fields.
 *
 * The message is held whole in memory (the caller bounds its size), so
 * every step is a plain pass over a buffer.  Address lists are read by a
 * small tokenizer over RFC 5322 §3.4 (with the obsolete forms of §4.4:
 * CFWS around "." and "@", routes, empty list elements):
 *
 *   address-list = address *("," address)
 *   address      = mailbox / group
 *   mailbox      = [display-name] "<" addr-spec ">" / addr-spec
 *   group        = display-name ":" [mailbox-list] ";"
 *
 * Comments and white space are dropped; quoted strings and domain literals
 * are kept as written (their folding CRLFs removed).  The address is what
 * was between the angle brackets or, without them, the tokens of the
 * addr-spec put together.  Two words with only white space between them
 * and no angle brackets ("John Smith") are a display name without an
 * address, and refused: joined up they would look like a local part.  The
 * result is checked and spelled by addr_parse_path(), the same RFC 5321
 * parser the server uses for RCPT TO, so what is accepted here is what can
 * be sent.
 */
#include "message.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "base64.h"
#include "header_fix.h"
#include "util.h"

/* Format one line of explanation into err. */
static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	if (errsize == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

/* See message.h. */
void message_addrs_init(struct message_addrs *a)
{
	a->v = NULL;
	a->n = a->cap = 0;
}

/* See message.h. */
void message_addrs_free(struct message_addrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	message_addrs_init(a);
}

/* Are x and y the same mailbox: local parts equal, domains equal in any case? */
static bool same_mailbox(const char *x, const char *y)
{
	const char *ax = strrchr(x, '@'), *ay = strrchr(y, '@');

	if (ax == NULL || ay == NULL)
		return strcmp(x, y) == 0;
	return ax - x == ay - y && memcmp(x, y, (size_t)(ax - x)) == 0 && strcasecmp(ax, ay) == 0;
}

/* See message.h. */
bool message_addrs_add(struct message_addrs *a, const char *addr)
{
	for (size_t i = 0; i < a->n; i++)
		if (same_mailbox(a->v[i], addr))
			return false;
	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 8 : a->cap * 2;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = xstrdup(addr);
	return true;
}

/* --- address lists ----------------------------------------------------- */

/* The tokenizer over one address list, and the address being read. */
struct alist {
	const char *p, *end;
	struct message_addrs *out;
	char *err;
	size_t errsize;
	const char *start;   /* where the current address began, for errors */
	struct strbuf spec;  /* addr-spec tokens without CFWS (no angle brackets) */
	struct strbuf angle; /* what was between "<" and ">", without CFWS */
	bool has_angle;      /* "<...>" seen */
	bool any;            /* a token went into spec */
	bool word_last;      /* the last token was a word (atom, quoted string, literal) */
	bool gap;            /* white space or a comment since the last token */
	bool phrase;         /* two words with only CFWS between: a display name */
	bool in_group;       /* between "name:" and ";" */
	const char *domain;  /* for a bare local part ("root"), or NULL: refused */
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 5322 specials: they end an atom. */
static bool is_special(char c)
{
	return strchr("()<>[]:;@\\,.\"", c) != NULL;
}

/* Refuse the list with an explanation; always false. */
static bool __attribute__((format(printf, 2, 3))) al_fail(struct alist *al, const char *fmt, ...)
{
	va_list ap;

	if (al->errsize == 0)
		return false;
	va_start(ap, fmt);
	vsnprintf(al->err, al->errsize, fmt, ap);
	va_end(ap);
	return false;
}

/* Start reading the next address at the current position. */
static void al_reset(struct alist *al)
{
	al->start = al->p;
	al->spec.len = al->angle.len = 0;
	al->spec.s[0] = al->angle.s[0] = '\0';
	al->has_angle = al->any = al->word_last = al->gap = al->phrase = false;
}

/* Skip white space and (nested) comments; *skipped tells whether there were any. */
static bool al_skip_cfws(struct alist *al, bool *skipped)
{
	*skipped = false;
	while (al->p < al->end) {
		int depth = 0;

		if (is_wsp(*al->p)) {
			al->p++;
			*skipped = true;
			continue;
		}
		if (*al->p != '(')
			break;
		do {
			char c = *al->p++;

			if (c == '\\' && al->p < al->end)
				al->p++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} while (depth > 0 && al->p < al->end);
		if (depth > 0)
			return al_fail(al, "unterminated comment");
		*skipped = true;
	}
	return true;
}

/* Copy the quoted string at al->p (its opening quote) to dst as written,
 * quotes and quoted pairs included, folding CRLFs removed. */
static bool al_quoted(struct alist *al, struct strbuf *dst)
{
	strbuf_add(dst, al->p++, 1);
	while (al->p < al->end && *al->p != '"') {
		if (*al->p == '\\') {
			if (al->p + 1 == al->end)
				break;
			strbuf_add(dst, al->p++, 1);
		}
		if (*al->p != '\r' && *al->p != '\n')
			strbuf_add(dst, al->p, 1);
		al->p++;
	}
	if (al->p == al->end)
		return al_fail(al, "unterminated quoted string");
	strbuf_add(dst, al->p++, 1);
	return true;
}

/* Copy the domain literal at al->p ("[") to dst without white space. */
static bool al_literal(struct alist *al, struct strbuf *dst)
{
	strbuf_add(dst, al->p++, 1);
	while (al->p < al->end && *al->p != ']') {
		if (*al->p == '[')
			return al_fail(al, "'[' inside a domain literal");
		if (*al->p == '\\' && al->p + 1 < al->end)
			strbuf_add(dst, al->p++, 1);
		if (!is_wsp(*al->p))
			strbuf_add(dst, al->p, 1);
		al->p++;
	}
	if (al->p == al->end)
		return al_fail(al, "unterminated domain literal (missing ']')");
	strbuf_add(dst, al->p++, 1);
	return true;
}

/* Read "<...>" at al->p into al->angle, CFWS dropped. */
static bool al_angle(struct alist *al)
{
	bool skipped;

	if (al->has_angle)
		return al_fail(al, "two <addresses> in one mailbox");
	al->p++;
	for (;;) {
		if (!al_skip_cfws(al, &skipped))
			return false;
		if (al->p == al->end)
			return al_fail(al, "missing '>'");
		if (*al->p == '>') {
			al->p++;
			break;
		}
		if (*al->p == '"') {
			if (!al_quoted(al, &al->angle))
				return false;
		} else if (*al->p == '[') {
			if (!al_literal(al, &al->angle))
				return false;
		} else if (*al->p == '<') {
			return al_fail(al, "'<' inside <...>");
		} else {
			const char *s = al->p;

			while (al->p < al->end && !is_wsp(*al->p) &&
			       strchr("(\"[<>", *al->p) == NULL)
				al->p++;
			strbuf_add(&al->angle, s, (size_t)(al->p - s));
		}
	}
	al->has_angle = true;
	return true;
}

/* Check addr[0..len) as an RFC 5321 mailbox and append its canonical form;
 * without an "@" it is a local part in al->domain, when that is set. */
static bool al_add(struct alist *al, const char *addr, size_t len, const char *shown)
{
	char path[ADDR_PATH_MAX + 8], canon[ADDR_PATH_MAX + 8];
	struct mailaddr m;
	const char *end;
	enum addr_error e;
	size_t dlen = 0;

	if (len == 0)
		return al_fail(al, "empty address <> in \"%s\"", shown);
	if (al->domain != NULL && memchr(addr, '@', len) == NULL)
		dlen = strlen(al->domain) + 1;
	if (len + dlen + 3 > sizeof(path))
		return al_fail(al, "address too long in \"%s\"", shown);
	path[0] = '<';
	memcpy(path + 1, addr, len);
	if (dlen > 0) {
		path[len + 1] = '@';
		memcpy(path + len + 2, al->domain, dlen - 1);
	}
	path[len + dlen + 1] = '>';
	path[len + dlen + 2] = '\0';
	e = addr_parse_path(path, &end, &m, 0);
	if (e == ADDR_ERR_TOO_LONG)
		return al_fail(al, "address too long in \"%s\"", shown);
	if (e != ADDR_OK || *end != '\0' || m.kind != ADDR_KIND_MAILBOX)
		return al_fail(al, "not a valid address: \"%s\"", shown);
	if (!addr_format(&m, canon, sizeof(canon)))
		return al_fail(al, "address too long in \"%s\"", shown);
	canon[strlen(canon) - 1] = '\0'; /* the angle brackets go */
	message_addrs_add(al->out, canon + 1);
	return true;
}

/* The current address is complete (at ",", ";" or the end): add it. */
static bool al_finish(struct alist *al)
{
	char shown[200];
	const char *s = al->start, *e = al->p;

	while (s < e && is_wsp(*s))
		s++;
	while (e > s && is_wsp(e[-1]))
		e--;
	escape_text(s, (size_t)(e - s), shown, sizeof(shown));
	if (al->has_angle)
		return al_add(al, al->angle.s, al->angle.len, shown);
	if (!al->any)
		return true; /* an empty list element: obsolete, harmless */
	if (al->phrase || (al->domain == NULL && memchr(al->spec.s, '@', al->spec.len) == NULL))
		return al_fail(al, "no <address> in \"%s\"", shown);
	return al_add(al, al->spec.s, al->spec.len, shown);
}

/* The list loop: one token at a time. */
static bool al_parse(struct alist *al)
{
	bool skipped;

	al_reset(al);
	for (;;) {
		char c;

		if (!al_skip_cfws(al, &skipped))
			return false;
		al->gap = al->gap || skipped;
		if (al->p == al->end)
			break;
		c = *al->p;
		if (c == ',' || c == ';') {
			if (c == ';' && !al->in_group)
				return al_fail(al, "';' outside a group");
			if (!al_finish(al))
				return false;
			al->p++;
			if (c == ';')
				al->in_group = false;
			al_reset(al);
			continue;
		}
		if (c == ':') {
			if (al->in_group || al->has_angle || !al->any || !al->word_last)
				return al_fail(al, "unexpected ':'");
			al->p++; /* the words before were the group's name */
			al->in_group = true;
			al_reset(al);
			continue;
		}
		if (c == '<') {
			if (!al_angle(al))
				return false;
			continue;
		}
		if (al->has_angle)
			return al_fail(al, "text after <address>");
		if (c == '"' || c == '[' || !is_special(c)) {
			if (al->word_last && al->gap)
				al->phrase = true;
			if (c == '"' && !al_quoted(al, &al->spec))
				return false;
			if (c == '[' && !al_literal(al, &al->spec))
				return false;
			if (c != '"' && c != '[') {
				const char *s = al->p;

				while (al->p < al->end && !is_wsp(*al->p) && !is_special(*al->p))
					al->p++;
				strbuf_add(&al->spec, s, (size_t)(al->p - s));
			}
			al->word_last = true;
		} else if (c == '.' || c == '@') {
			strbuf_add(&al->spec, al->p++, 1);
			al->word_last = false;
		} else {
			return al_fail(al, "unexpected '%c'", c);
		}
		al->any = true;
		al->gap = false;
	}
	if (al->in_group)
		return al_fail(al, "group without its closing ';'");
	return al_finish(al);
}

/* See message.h. */
bool message_parse_addr_list(const char *value, size_t len, struct message_addrs *out, char *err,
			     size_t errsize)
{
	return message_parse_addr_list_in(value, len, NULL, out, err, errsize);
}

/* See message.h. */
bool message_parse_addr_list_in(const char *value, size_t len, const char *domain,
				struct message_addrs *out, char *err, size_t errsize)
{
	struct alist al = {.p = value, .end = value + len, .out = out, .domain = domain};
	bool ok;

	al.err = err;
	al.errsize = errsize;
	strbuf_init(&al.spec);
	strbuf_init(&al.angle);
	if (memchr(value, '\0', len) != NULL)
		ok = al_fail(&al, "NUL octet");
	else
		ok = al_parse(&al);
	strbuf_free(&al.spec);
	strbuf_free(&al.angle);
	return ok;
}

/* --- lines and the header section -------------------------------------- */

/* See message.h. */
bool message_normalize(const char *in, size_t len, struct strbuf *out, char *err, size_t errsize)
{
	size_t run = 0, line = 1; /* run: start of the bytes not yet copied */

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\0') {
			set_err(err, errsize, "line %zu: NUL octet", line);
			return false;
		}
		if (in[i] == '\r' && (i + 1 == len || in[i + 1] != '\n')) {
			set_err(err, errsize, "line %zu: bare CR (a CR must be followed by LF)",
				line);
			return false;
		}
		if (in[i] != '\n')
			continue;
		line++;
		if (i > run && in[i - 1] == '\r')
			continue; /* CRLF already */
		strbuf_add(out, in + run, i - run);
		strbuf_add(out, "\r", 1);
		run = i; /* the LF is copied with the next run */
	}
	strbuf_add(out, in + run, len - run);
	if (len > 0 && in[len - 1] != '\n')
		strbuf_add(out, "\r\n", 2);
	return true;
}

/* If the line l[0..ll) starts a field, the length of its name (> 0) and the
 * offset just past its colon; else 0. */
static size_t field_name(const char *l, size_t ll, size_t *value)
{
	size_t n = 0, i;

	while (n < ll && l[n] > ' ' && l[n] < 0x7f && l[n] != ':')
		n++;
	if (n == 0)
		return 0;
	for (i = n; i < ll && (l[i] == ' ' || l[i] == '\t'); i++)
		;
	if (i == ll || l[i] != ':')
		return 0;
	*value = i + 1;
	return n;
}

/* Offset just past the line that starts at pos (its LF), or len. */
static size_t line_end(const char *msg, size_t len, size_t pos)
{
	const char *nl = memchr(msg + pos, '\n', len - pos);

	return nl != NULL ? (size_t)(nl - msg) + 1 : len;
}

/* See message.h. */
size_t message_header_end(const char *msg, size_t len, bool *blank)
{
	size_t pos = 0, value;

	*blank = false;
	while (pos < len) {
		size_t eol = line_end(msg, len, pos);
		const char *l = msg + pos;

		if (l[0] == '\n' || (l[0] == '\r' && eol - pos == 2 && l[1] == '\n')) {
			*blank = true;
			return pos;
		}
		if (l[0] != ' ' && l[0] != '\t' && field_name(l, eol - pos, &value) == 0)
			return pos;
		pos = eol;
	}
	return len;
}

/* One field of the header section, continuation lines included. */
struct field {
	size_t start, end; /* offsets of its first octet and just past its last LF */
	size_t name_len;   /* 0 for continuation lines at the very top (no name) */
	size_t value;      /* offset just past the colon */
};

/* The field at *pos before hend, advancing *pos past it; false at hend. */
static bool next_field(const char *msg, size_t hend, size_t *pos, struct field *f)
{
	size_t eol;

	if (*pos >= hend)
		return false;
	f->start = *pos;
	eol = line_end(msg, hend, *pos);
	f->value = 0;
	f->name_len = msg[*pos] == ' ' || msg[*pos] == '\t'
			      ? 0
			      : field_name(msg + *pos, eol - *pos, &f->value);
	f->value += *pos; /* a line without a name: its value is all of it */
	while (eol < hend && (msg[eol] == ' ' || msg[eol] == '\t'))
		eol = line_end(msg, hend, eol);
	f->end = *pos = eol;
	return true;
}

/* Is f the field called name? */
static bool field_is(const char *msg, const struct field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(msg + f->start, name, f->name_len) == 0;
}

/* See message.h. */
bool message_has_field(const char *msg, size_t len, const char *name)
{
	bool blank;
	size_t hend = message_header_end(msg, len, &blank), pos = 0;
	struct field f;

	while (next_field(msg, hend, &pos, &f))
		if (field_is(msg, &f, name))
			return true;
	return false;
}

/* A fill value for header_fix: NULL for none, or false (err set) when the
 * header could not hold it. */
static bool fill_value(const char *name, const char *value, const char **out, char *err,
		       size_t errsize)
{
	*out = value != NULL && value[0] != '\0' ? value : NULL;
	if (*out != NULL && strlen(value) >= HEADER_FIX_VALUE_MAX) {
		set_err(err, errsize, "%s: longer than %d octets", name, HEADER_FIX_VALUE_MAX - 1);
		return false;
	}
	return true;
}

/* With -t: the addresses of the To, Cc and Bcc fields of msg into rcpts. */
static bool extract_rcpts(const char *msg, size_t len, const char *domain,
			  struct message_addrs *rcpts, char *err, size_t errsize)
{
	static const char *const rcpt_fields[] = {"To", "Cc", "Bcc"};
	bool blank;
	size_t hend = message_header_end(msg, len, &blank), pos = 0;
	struct field f;
	char why[256];

	while (next_field(msg, hend, &pos, &f)) {
		for (size_t i = 0; i < 3; i++) {
			if (!field_is(msg, &f, rcpt_fields[i]))
				continue;
			if (!message_parse_addr_list_in(msg + f.value, f.end - f.value, domain,
							rcpts, why, sizeof(why))) {
				set_err(err, errsize, "%s: %s", rcpt_fields[i], why);
				return false;
			}
		}
	}
	return true;
}

/* See message.h.  The header is rewritten by header_fix, as hatod's
 * submission service rewrites it. */
bool message_prepare(const char *in, size_t len, const struct message_fill *fill,
		     struct strbuf *out, struct message_addrs *rcpts, char *err, size_t errsize)
{
	struct header_fix_fill hf = {.separate = true};
	struct header_fix h;
	struct strbuf m;
	bool ok;

	if (!fill_value("From", fill->from, &hf.from, err, errsize) ||
	    !fill_value("Date", fill->date, &hf.date, err, errsize) ||
	    !fill_value("Message-ID", fill->msgid, &hf.msgid, err, errsize))
		return false;
	strbuf_init(&m);
	ok = message_normalize(in, len, &m, err, errsize) &&
	     (!fill->extract || extract_rcpts(m.s, m.len, fill->domain, rcpts, err, errsize));
	if (ok) {
		header_fix_start(&h, &hf);
		header_fix_feed(&h, m.s, m.len, out);
		header_fix_finish(&h, out);
	}
	strbuf_free(&m);
	return ok;
}

/* RFC 5322 §3.2.3 atext: what a display name may hold without quotes. */
static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 2047 encoded-words for name[0..len), which holds non-ASCII octets
 * (taken to be UTF-8): each word at most 75 characters (45 octets of text),
 * a UTF-8 sequence never split between two words. */
static void encode_words(const unsigned char *name, size_t len, struct strbuf *out)
{
	enum { WORD_TEXT_MAX = 45 };
	char b64[BASE64_ENCODED_SIZE(WORD_TEXT_MAX)];
	size_t pos = 0;

	while (pos < len) {
		size_t n = len - pos < WORD_TEXT_MAX ? len - pos : WORD_TEXT_MAX;

		while (n > 1 && pos + n < len && (name[pos + n] & 0xc0) == 0x80)
			n--; /* the next word starts a character, not its middle */
		base64_encode(name + pos, n, b64);
		strbuf_printf(out, "%s=?UTF-8?B?%s?=", pos > 0 ? " " : "", b64);
		pos += n;
	}
}

/* See message.h. */
bool message_format_mailbox(const char *name, const char *addr, struct strbuf *out)
{
	const unsigned char *n = (const unsigned char *)name;
	size_t len = strlen(name);
	bool plain = true, ascii = true;

	for (size_t i = 0; i < len; i++) {
		if (n[i] < ' ' || n[i] == 0x7f)
			return false;
		ascii = ascii && n[i] < 0x80;
		plain = plain && (n[i] == ' ' || is_atext(n[i]));
	}
	while (len > 0 && n[0] == ' ')
		n++, len--;
	while (len > 0 && n[len - 1] == ' ')
		len--;
	if (len == 0) {
		strbuf_adds(out, addr);
		return true;
	}
	if (!ascii) {
		encode_words(n, len, out);
	} else if (plain) {
		strbuf_add(out, (const char *)n, len);
	} else {
		strbuf_add(out, "\"", 1);
		for (size_t i = 0; i < len; i++) {
			if (n[i] == '"' || n[i] == '\\')
				strbuf_add(out, "\\", 1);
			strbuf_add(out, (const char *)n + i, 1);
		}
		strbuf_add(out, "\"", 1);
	}
	strbuf_printf(out, " <%s>", addr);
	return true;
}
