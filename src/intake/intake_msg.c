/*
 * intake_msg.c - the message as the end-of-message stages see and edit it:
 * its header fields (read from the queue file the first time a stage asks),
 * its body (the file's, or a replacement), its envelope; and the one
 * rewrite of the queue file after the stages, when they changed the
 * header or the body.  See intake.h.
 */
#include "intake.h"
#include "intake_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "conf.h"
#include "header_fields.h"
#include "log.h"
#include "util.h"

/* Octets read from the queue file at a time. */
#define MSG_READ_CHUNK 65536

/* Forget the view of the last message. */
void intake_msg_reset(struct intake_msg *m)
{
	for (size_t i = 0; i < m->nf; i++)
		free(m->f[i].text);
	m->nf = 0;
	m->parsed = false;
	m->hdr_changed = false;
	m->body_replaced = false;
	m->sep = false;
	m->body_off = 0;
	if (m->body.s != NULL)
		m->body.len = 0;
}

/* Release what the view holds. */
void intake_msg_free(struct intake_msg *m)
{
	intake_msg_reset(m);
	free(m->f);
	m->f = NULL;
	m->cap = 0;
	if (m->body.s != NULL)
		strbuf_free(&m->body);
}

/* Make room for one more field at pos. */
static void field_insert(struct intake_msg *m, size_t pos, char *text, size_t len, size_t namelen)
{
	if (m->nf == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 32;
		m->f = xrealloc(m->f, m->cap * sizeof(*m->f));
	}
	if (pos > m->nf)
		pos = m->nf;
	memmove(m->f + pos + 1, m->f + pos, (m->nf - pos) * sizeof(*m->f));
	m->f[pos] = (struct intake_field){.text = text, .len = len, .namelen = namelen};
	m->nf++;
}

/* Split the header section hdr[0..len) into the view's fields. */
static void split_fields(struct intake_msg *m, const char *hdr, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t namelen, n = header_fields_next(hdr + off, len - off, &namelen);
		char *t = xmalloc(n + 1);

		memcpy(t, hdr + off, n);
		t[n] = '\0';
		field_insert(m, m->nf, t, n, namelen);
		off += n;
	}
}

/* Read the header section from the queue file, once. */
static bool msg_parse(struct intake *in)
{
	struct intake_msg *m = &in->msg;
	struct strbuf b;
	size_t pos = 0, hdr_len = 0, body_off = 0;
	bool found = false;

	if (m->parsed)
		return true;
	strbuf_init(&b);
	while (!found) {
		char chunk[MSG_READ_CHUNK];
		ssize_t r = queue_file_read(&in->qf, chunk, sizeof(chunk), b.len);

		if (r < 0) {
			int e = errno;
			strbuf_free(&b);
			errno = e;
			return false;
		}
		strbuf_add(&b, chunk, (size_t)r);
		found = header_fields_end(b.s, b.len, r == 0, &pos, &hdr_len, &body_off, &m->sep);
	}
	split_fields(m, b.s, hdr_len);
	m->body_off = body_off;
	m->parsed = true;
	strbuf_free(&b);
	return true;
}

/* See intake.h. */
const struct intake_field *intake_headers(struct intake *in, size_t *n)
{
	*n = 0;
	if (!msg_parse(in))
		return NULL;
	*n = in->msg.nf;
	return in->msg.f;
}

/* Is name a field name (RFC 5322 §3.6.8: printable ASCII but ':')? */
static bool valid_name(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= HEADER_FIX_VALUE_MAX &&
	       strspn(name, "!\"#$%&'()*+,-./0123456789;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
			    "abcdefghijklmnopqrstuvwxyz{|}~") == n;
}

/* "name: value\r\n" with the value's line ends made CRLF and each line
 * after the first starting with whitespace. */
static char *field_text(const char *name, const char *value, size_t *len)
{
	struct strbuf b;
	const char *v = value;

	strbuf_init(&b);
	strbuf_printf(&b, "%s:%s", name, (*v == ' ' || *v == '\t') ? "" : " ");
	while (*v != '\0') {
		if (*v == '\r' && v[1] == '\n')
			v++;
		if (*v == '\n' || *v == '\r') {
			strbuf_add(&b, "\r\n", 2);
			v++;
			if (*v == '\0')
				break;
			if (*v != ' ' && *v != '\t')
				strbuf_add(&b, "\t", 1);
			continue;
		}
		strbuf_add(&b, v, 1);
		v++;
	}
	if (b.len < 2 || memcmp(b.s + b.len - 2, "\r\n", 2) != 0)
		strbuf_add(&b, "\r\n", 2);
	*len = b.len;
	return b.s; /* the strbuf's text, NUL-terminated, now the field's */
}

/* See intake.h. */
bool intake_header_insert(struct intake *in, size_t pos, const char *name, const char *value)
{
	size_t len;
	char *t;

	if (!valid_name(name) || !msg_parse(in))
		return false;
	/* a last field without its line end (a message of only fields) gets one */
	if (pos > 0 && in->msg.nf > 0) {
		struct intake_field *last = &in->msg.f[in->msg.nf - 1];
		if (last->len > 0 && last->text[last->len - 1] != '\n') {
			last->text = xrealloc(last->text, last->len + 3);
			memcpy(last->text + last->len, "\r\n", 3);
			last->len += 2;
		}
	}
	t = field_text(name, value ? value : "", &len);
	field_insert(&in->msg, pos, t, len, strlen(name));
	in->msg.hdr_changed = true;
	return true;
}

/* See intake.h. */
bool intake_header_add(struct intake *in, const char *name, const char *value)
{
	return intake_header_insert(in, SIZE_MAX, name, value);
}

/* See intake.h. */
bool intake_header_change(struct intake *in, const char *name, size_t nth, const char *value)
{
	struct intake_msg *m = &in->msg;
	size_t seen = 0, nlen = strlen(name);

	if (!valid_name(name) || !msg_parse(in))
		return false;
	for (size_t i = 0; i < m->nf; i++) {
		struct intake_field *f = &m->f[i];
		size_t len;

		if (f->namelen != nlen || strncasecmp(f->text, name, nlen) != 0 || ++seen != nth)
			continue;
		if (value == NULL || *value == '\0') {
			free(f->text);
			memmove(f, f + 1, (m->nf - i - 1) * sizeof(*f));
			m->nf--;
		} else { /* the name as the message wrote it */
			char *t;
			f->text[nlen] = '\0';
			t = field_text(f->text, value, &len);
			free(f->text);
			f->text = t;
			f->len = len;
		}
		m->hdr_changed = true;
		return true;
	}
	if (value == NULL || *value == '\0')
		return true; /* nothing to delete */
	return intake_header_add(in, name, value);
}

/* See intake.h. */
uint64_t intake_body_size(struct intake *in)
{
	if (in->msg.body_replaced)
		return in->msg.body.len;
	if (!msg_parse(in))
		return 0;
	return in->qf.size - in->msg.body_off;
}

/* See intake.h. */
ssize_t intake_body_read(struct intake *in, uint64_t off, void *buf, size_t n)
{
	struct intake_msg *m = &in->msg;

	if (m->body_replaced) {
		if (off >= m->body.len)
			return 0;
		if (n > m->body.len - off)
			n = (size_t)(m->body.len - off);
		memcpy(buf, m->body.s + off, n);
		return (ssize_t)n;
	}
	if (!msg_parse(in))
		return -1;
	return queue_file_read(&in->qf, buf, n, m->body_off + off);
}

/* See intake.h. */
bool intake_body_replace(struct intake *in)
{
	struct intake_msg *m = &in->msg;

	if (!msg_parse(in))
		return false;
	if (m->body.s == NULL)
		strbuf_init(&m->body);
	m->body.len = 0;
	m->body_replaced = true;
	return true;
}

/* See intake.h. */
bool intake_body_append(struct intake *in, const void *p, size_t n)
{
	struct intake_msg *m = &in->msg;

	if (!m->body_replaced && !intake_body_replace(in))
		return false;
	if (m->body.len + n > in->conf->limits.message_size_max)
		return false;
	strbuf_add(&m->body, p, n);
	return true;
}

/* addr as a path "<...>" in buf; false when it is not one. */
static bool as_path(const char *addr, char *buf, size_t size, unsigned flags)
{
	struct mailaddr a;
	const char *end;
	char tmp[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 8];

	if (*addr != '<') {
		if (!xsnprintf_ok(tmp, sizeof(tmp), "<%s>", addr))
			return false;
		addr = tmp;
	}
	if (addr_parse_path(addr, &end, &a, flags) != ADDR_OK || *end != '\0')
		return false;
	return addr_format(&a, buf, size);
}

/* See intake.h. */
bool intake_rcpt_add(struct intake *in, const char *addr)
{
	char path[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 8];

	if (!as_path(addr, path, sizeof(path), ADDR_ALLOW_POSTMASTER))
		return false;
	envelope_add_rcpt(in->env, path);
	return true;
}

/* See intake.h: every recipient that came from that RCPT TO goes. */
bool intake_rcpt_delete(struct intake *in, const char *addr)
{
	char path[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 8];
	struct envelope *e = in->env;
	bool found = false;
	size_t i = 0;

	if (!as_path(addr, path, sizeof(path), ADDR_ALLOW_POSTMASTER))
		return false;
	while (i < e->nrcpts) {
		struct env_rcpt *r = &e->rcpts[i];
		const char *was = r->orig ? r->orig : r->addr;

		if (strcasecmp(was, path) != 0 && strcasecmp(r->addr, path) != 0) {
			i++;
			continue;
		}
		envelope_remove_rcpt(e, i);
		found = true;
	}
	return found;
}

/* See intake.h. */
bool intake_sender_change(struct intake *in, const char *addr)
{
	char path[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 8];

	if (*addr == '\0')
		addr = "<>";
	if (!as_path(addr, path, sizeof(path), ADDR_ALLOW_NULL))
		return false;
	free(in->env->sender);
	in->env->sender = xstrdup(path);
	return true;
}

/* See intake.h. */
void intake_junk(struct intake *in)
{
	in->env->junk = true;
}

/* Copy the old file's body [from, end) into the new file. */
static bool copy_body(struct intake *in, const struct qfile *old, uint64_t from)
{
	char chunk[MSG_READ_CHUNK];

	while (from < old->size) {
		ssize_t r = queue_file_read(old, chunk, sizeof(chunk), from);
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return false;
		}
		if (!queue_file_write(&in->qf, chunk, (size_t)r))
			return false;
		from += (uint64_t)r;
	}
	return true;
}

/* Write the fields, the separator and the body into the restarted file. */
static bool write_message(struct intake *in, const struct qfile *old)
{
	struct intake_msg *m = &in->msg;
	bool body = m->body_replaced ? m->body.len > 0 : old->size > m->body_off;

	for (size_t i = 0; i < m->nf; i++)
		if (!queue_file_write(&in->qf, m->f[i].text, m->f[i].len))
			return false;
	if ((m->sep || body) && !queue_file_write(&in->qf, "\r\n", 2))
		return false;
	if (m->body_replaced)
		return queue_file_write(&in->qf, m->body.s, m->body.len);
	return copy_body(in, old, m->body_off);
}

/* After the stages: write the message again if they changed its header or
 * body; false with errno when that failed (the message is then lost to the
 * receiver's answer, never committed half-written). */
bool intake_msg_apply(struct intake *in)
{
	struct intake_msg *m = &in->msg;
	struct qfile old;
	bool ok;

	if (!m->hdr_changed && !m->body_replaced)
		return true;
	if (!queue_file_restart(&in->qf, &old))
		return false;
	ok = write_message(in, &old);
	if (ok) {
		uint64_t before = in->env->size;
		in->env->size = in->qf.size > in->received_len ? in->qf.size - in->received_len : 0;
		log_info("event=message_rewritten %s queue_id=%s size_before=%llu size=%llu "
			 "header_changed=%s body_replaced=%s",
			 in->log_key, in->qf.id, (unsigned long long)before,
			 (unsigned long long)in->env->size, m->hdr_changed ? "yes" : "no",
			 m->body_replaced ? "yes" : "no");
	}
	int e = errno;
	queue_file_abort(&old);
	errno = e;
	return ok;
}
