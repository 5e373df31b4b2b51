/*
 * log_json.c - read a key=value log line back and write it as JSON.
 *
 * Two steps: log_kv_split() finds the pairs (spans into the line, nothing
 * copied), then the writer emits them.  The writer reserves room for the
 * few bytes that close an object, so a line too long for the buffer is cut
 * at a whole escape and still ends as valid JSON (rules in log_json.h).
 */
#include "log_json.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* What closing a cut object can take: ..."}\n and the NUL, and room to spare. */
#define JSON_RESERVE 16

/* One key=value pair: spans into the line. */
struct kv_field {
	const char *key;
	size_t klen;
	const char *val;
	size_t vlen;
};

/* Where the writer is: what a cut must close. */
enum json_open { JSON_NONE, JSON_IN_KEY, JSON_IN_VALUE };

/* The object being written into a bounded buffer. */
struct json_out {
	char *p;
	size_t len;
	size_t cap; /* the buffer's size less JSON_RESERVE */
	bool full;  /* something did not fit: everything after is dropped */
	enum json_open open;
	size_t field_start; /* len before the field being written */
};

/* Can c be part of a key? */
static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* The value of hex digit c, or -1. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Does a key=value pair start at m[at]? */
static bool pair_at(const char *m, size_t len, size_t at)
{
	size_t k = at;

	while (k < len && key_char(m[k]))
		k++;
	return k > at && k < len && m[k] == '=';
}

/* Does the quote at m[at] close a quoted value: is it followed by the end
 * of the line, or by spaces and then the end or another pair? */
static bool closing_quote(const char *m, size_t len, size_t at)
{
	size_t k = at + 1;

	if (k < len && m[k] != ' ')
		return false;
	while (k < len && m[k] == ' ')
		k++;
	return k == len || pair_at(m, len, k);
}

/*
 * Split the line into pairs (at most max); words before the first pair
 * are *lead (NULL when none).  Returns the number of pairs.
 */
static size_t log_kv_split(const char *m, size_t len, struct kv_field *f, size_t max,
			   const char **lead, size_t *lead_len)
{
	size_t i = 0, n = 0;

	*lead = NULL;
	*lead_len = 0;
	while (i < len) {
		size_t tok, k, e;

		while (i < len && m[i] == ' ')
			i++;
		if (i >= len)
			break;
		tok = i;
		if (pair_at(m, len, tok) && n < max) {
			for (k = tok; m[k] != '='; k++)
				;
			f[n].key = m + tok;
			f[n].klen = k - tok;
			e = k + 1;
			if (e < len && m[e] == '"') {
				/* quoted: up to the quote before the next pair */
				size_t start = e + 1;

				for (e = start; e < len; e++)
					if (m[e] == '"' && closing_quote(m, len, e))
						break;
				f[n].val = m + start;
				f[n].vlen = e - start;
				i = e < len ? e + 1 : len;
			} else {
				size_t start = e;

				while (e < len && m[e] != ' ')
					e++;
				f[n].val = m + start;
				f[n].vlen = e - start;
				i = e;
			}
			n++;
			continue;
		}
		/* a word that is no pair: free text, or more of the value before it */
		for (e = tok; e < len && m[e] != ' '; e++)
			;
		if (n == 0) {
			if (*lead == NULL)
				*lead = m + tok;
			*lead_len = (size_t)(m + e - *lead);
		} else {
			f[n - 1].vlen = (size_t)(m + e - f[n - 1].val);
		}
		i = e;
	}
	return n;
}

/* Append n bytes, or mark the object full when they do not fit. */
static void jput(struct json_out *o, const char *s, size_t n)
{
	if (o->full)
		return;
	if (n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* The byte at v[*i], decoding \xHH; advances *i past it. */
static unsigned char next_byte(const char *v, size_t vlen, size_t *i)
{
	size_t at = *i;

	if (v[at] == '\\' && at + 3 < vlen && v[at + 1] == 'x' && hex_value(v[at + 2]) >= 0 &&
	    hex_value(v[at + 3]) >= 0) {
		*i = at + 4;
		return (unsigned char)(hex_value(v[at + 2]) << 4 | hex_value(v[at + 3]));
	}
	*i = at + 1;
	return (unsigned char)v[at];
}

/* The length of the UTF-8 sequence that lead starts (0: lead starts none),
 * and the range its second byte must be in. */
static size_t utf8_lead(unsigned char lead, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (lead >= 0xc2 && lead <= 0xdf)
		return 2;
	if (lead >= 0xe0 && lead <= 0xef) {
		if (lead == 0xe0)
			*lo = 0xa0; /* no overlong forms */
		else if (lead == 0xed)
			*hi = 0x9f; /* no surrogates */
		return 3;
	}
	if (lead >= 0xf0 && lead <= 0xf4) {
		if (lead == 0xf0)
			*lo = 0x90;
		else if (lead == 0xf4)
			*hi = 0x8f; /* nothing above U+10FFFF */
		return 4;
	}
	return 0;
}

/* Write one byte below 0x80 as JSON string content. */
static void put_ascii(struct json_out *o, unsigned char c)
{
	char esc[8];

	switch (c) {
	case '"':
		jput(o, "\\\"", 2);
		return;
	case '\\':
		jput(o, "\\\\", 2);
		return;
	case '\n':
		jput(o, "\\n", 2);
		return;
	case '\r':
		jput(o, "\\r", 2);
		return;
	case '\t':
		jput(o, "\\t", 2);
		return;
	default:
		break;
	}
	if (c < 0x20 || c == 0x7f) {
		snprintf(esc, sizeof(esc), "\\u%04x", c);
		jput(o, esc, 6);
		return;
	}
	jput(o, (const char *)&c, 1);
}

/* Is c written as it is (printable ASCII that needs no escape)? */
static bool plain_char(char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Append the n plain bytes at s, as many as fit: each is a whole character. */
static void jput_plain(struct json_out *o, const char *s, size_t n)
{
	if (o->full)
		return;
	if (n > o->cap - o->len) {
		n = o->cap - o->len;
		o->full = true;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* Write vlen bytes of a key=value value as JSON string content (rules in log_json.h). */
static void put_text(struct json_out *o, const char *v, size_t vlen)
{
	size_t i = 0;

	while (i < vlen && !o->full) {
		unsigned char seq[4], lo, hi;
		size_t next, need, got = 1, run = i;

		while (run < vlen && plain_char(v[run]))
			run++;
		if (run > i) { /* the common case: a run copied at once */
			jput_plain(o, v + i, run - i);
			i = run;
			continue;
		}
		seq[0] = next_byte(v, vlen, &i);
		if (seq[0] < 0x80) {
			put_ascii(o, seq[0]);
			continue;
		}
		need = utf8_lead(seq[0], &lo, &hi);
		next = i;
		while (need > 0 && got < need && next < vlen) {
			size_t after = next;
			unsigned char c = next_byte(v, vlen, &after);

			if (got == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf))
				break;
			seq[got++] = c;
			next = after;
		}
		if (need > 0 && got == need) {
			jput(o, (const char *)seq, need);
			i = next;
		} else {
			jput(o, "\\ufffd", 6); /* this byte alone; the next starts afresh */
		}
	}
}

/* A key as written: the name and, when n > 1, "_n" after it. */
struct json_key {
	const char *name;
	size_t len;
	unsigned n;
};

/* The suffix of k ("" or "_n") into buf; returns its length. */
static size_t key_suffix(const struct json_key *k, char *buf, size_t size)
{
	buf[0] = '\0';
	if (k->n > 1)
		snprintf(buf, size, "_%u", k->n);
	return strlen(buf);
}

/* Are a and b the same key as written? */
static bool key_same(const struct json_key *a, const struct json_key *b)
{
	char sa[16], sb[16];
	size_t la = a->len + key_suffix(a, sa, sizeof(sa));
	size_t lb = b->len + key_suffix(b, sb, sizeof(sb));

	if (la != lb)
		return false;
	for (size_t i = 0; i < la; i++) {
		char ca = i < a->len ? a->name[i] : sa[i - a->len];
		char cb = i < b->len ? b->name[i] : sb[i - b->len];

		if (ca != cb)
			return false;
	}
	return true;
}

/* The keys written so far, so that none is written twice. */
struct json_keys {
	struct json_key k[LOG_JSON_FIELDS_MAX + 4]; /* + time, level, msg, error */
	size_t n;
};

/* Write "name":"value" with name made unique by the lowest free "_n". */
static void put_field(struct json_out *o, struct json_keys *used, const char *name, size_t len,
		      const char *val, size_t vlen)
{
	struct json_key k = {name, len, 1};
	char suffix[16];

	for (size_t i = 0; i < used->n; i++)
		if (key_same(&used->k[i], &k)) {
			k.n++;
			i = (size_t)-1; /* every key again: "a_2" may be written already */
		}
	used->k[used->n++] = k;
	o->field_start = o->len;
	jput(o, o->len > 1 ? ",\"" : "\"", o->len > 1 ? 2 : 1);
	if (o->full)
		return;
	o->open = JSON_IN_KEY;
	put_text(o, name, len);
	jput(o, suffix, key_suffix(&k, suffix, sizeof(suffix)));
	jput(o, "\":\"", 3);
	if (o->full)
		return;
	o->open = JSON_IN_VALUE;
	put_text(o, val, vlen);
	jput(o, "\"", 1);
	if (!o->full)
		o->open = JSON_NONE;
}

/* See log_json.h. */
size_t log_json_line(const char *time, const char *level, const char *msg, size_t msg_len,
		     const char *err, char *out, size_t outsz)
{
	struct kv_field f[LOG_JSON_FIELDS_MAX];
	struct json_keys used = {.n = 0};
	const char *lead;
	size_t nf, lead_len;
	struct json_out o = {out, 0, outsz - JSON_RESERVE, false, JSON_NONE, 0};

	nf = log_kv_split(msg, msg_len, f, LOG_JSON_FIELDS_MAX, &lead, &lead_len);
	jput(&o, "{", 1);
	if (time != NULL)
		put_field(&o, &used, "time", 4, time, strlen(time));
	put_field(&o, &used, "level", 5, level, strlen(level));
	if (lead != NULL)
		put_field(&o, &used, "msg", 3, lead, lead_len);
	for (size_t i = 0; i < nf && !o.full; i++)
		put_field(&o, &used, f[i].key, f[i].klen, f[i].val, f[i].vlen);
	if (err != NULL && !o.full)
		put_field(&o, &used, "error", 5, err, strlen(err));
	/* a cut key goes with its field; the reserve has room for closing a value */
	if (o.full && o.open == JSON_IN_KEY)
		o.len = o.field_start;
	else if (o.full && o.open == JSON_IN_VALUE) {
		memcpy(o.p + o.len, "...\"", 4);
		o.len += 4;
	}
	memcpy(o.p + o.len, "}\n", 3);
	return o.len + 2;
}
