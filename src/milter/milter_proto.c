/*
 * milter_proto.c - milter packets: writing the MTA's, decoding a filter's.
 * See milter_proto.h.
 */
#include "milter_proto.h"

#include <arpa/inet.h>
#include <string.h>

/* See milter_proto.h. */
size_t milter_packet_begin(struct strbuf *b, char cmd)
{
	size_t start = b->len;

	strbuf_add(b, "\0\0\0\0", 4);
	strbuf_add(b, &cmd, 1);
	return start;
}

/* See milter_proto.h. */
void milter_packet_end(struct strbuf *b, size_t start)
{
	uint32_t n = htonl((uint32_t)(b->len - start - 4));

	memcpy(b->s + start, &n, 4);
}

/* See milter_proto.h. */
void milter_put_str(struct strbuf *b, const char *s)
{
	strbuf_add(b, s, strlen(s) + 1);
}

/* See milter_proto.h. */
void milter_put_u32(struct strbuf *b, uint32_t v)
{
	v = htonl(v);
	strbuf_add(b, (const char *)&v, 4);
}

/* See milter_proto.h. */
void milter_put_u16(struct strbuf *b, uint16_t v)
{
	v = htons(v);
	strbuf_add(b, (const char *)&v, 2);
}

/* See milter_proto.h. */
ssize_t milter_frame(const unsigned char *buf, size_t n, size_t max)
{
	uint32_t len;

	if (n < 4)
		return 0;
	memcpy(&len, buf, 4);
	len = ntohl(len);
	if (len == 0 || len > max)
		return -1;
	return n - 4 < len ? 0 : (ssize_t)len + 4;
}

/* The NUL-terminated string at *p within end, advancing *p; NULL when it
 * has no NUL before end. */
static const char *take_str(const char **p, const char *end)
{
	const char *s = *p, *nul;

	if (s >= end || (nul = memchr(s, '\0', (size_t)(end - s))) == NULL)
		return NULL;
	*p = nul + 1;
	return s;
}

/* A 32-bit number at *p within end, advancing *p. */
static bool take_u32(const char **p, const char *end, uint32_t *v)
{
	if (end - *p < 4)
		return false;
	memcpy(v, *p, 4);
	*v = ntohl(*v);
	*p += 4;
	return true;
}

/* See milter_proto.h. */
bool milter_reply_decode(const char *buf, size_t n, struct milter_reply *r)
{
	const char *p, *end = buf + n;

	if (n < 1)
		return false;
	memset(r, 0, sizeof(*r));
	r->cmd = buf[0];
	r->data = p = buf + 1;
	r->len = n - 1;
	switch (r->cmd) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_DISCARD:
	case SMFIR_PROGRESS:
	case SMFIR_REJECT:
	case SMFIR_SKIP:
	case SMFIR_TEMPFAIL:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
	case SMFIR_REPLBODY: /* the data is the body's next octets */
		return true;
	case SMFIR_OPTNEG:
		return take_u32(&p, end, &r->version) && take_u32(&p, end, &r->actions) &&
		       take_u32(&p, end, &r->protocol);
	case SMFIR_ADDHEADER:
		return (r->name = take_str(&p, end)) != NULL &&
		       (r->value = take_str(&p, end)) != NULL;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		return take_u32(&p, end, &r->index) && (r->name = take_str(&p, end)) != NULL &&
		       (r->value = take_str(&p, end)) != NULL;
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
		return (r->addr = take_str(&p, end)) != NULL;
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_CHGFROM:
		if ((r->addr = take_str(&p, end)) == NULL)
			return false;
		r->args = take_str(&p, end); /* optional */
		return true;
	case SMFIR_REPLYCODE:
	case SMFIR_QUARANTINE:
		return (r->text = take_str(&p, end)) != NULL;
	case SMFIR_SETSYMLIST:
		return take_u32(&p, end, &r->index) && (r->text = take_str(&p, end)) != NULL;
	default:
		return false;
	}
}

/* See milter_proto.h. */
const char *milter_reply_name(char cmd)
{
	switch (cmd) {
	case SMFIR_ADDRCPT:
		return "addrcpt";
	case SMFIR_DELRCPT:
		return "delrcpt";
	case SMFIR_ADDRCPT_PAR:
		return "addrcpt_par";
	case SMFIR_SHUTDOWN:
		return "shutdown";
	case SMFIR_ACCEPT:
		return "accept";
	case SMFIR_REPLBODY:
		return "replbody";
	case SMFIR_CONTINUE:
		return "continue";
	case SMFIR_DISCARD:
		return "discard";
	case SMFIR_CHGFROM:
		return "chgfrom";
	case SMFIR_CONN_FAIL:
		return "conn_fail";
	case SMFIR_ADDHEADER:
		return "addheader";
	case SMFIR_INSHEADER:
		return "insheader";
	case SMFIR_SETSYMLIST:
		return "setsymlist";
	case SMFIR_CHGHEADER:
		return "chgheader";
	case SMFIR_PROGRESS:
		return "progress";
	case SMFIR_QUARANTINE:
		return "quarantine";
	case SMFIR_REJECT:
		return "reject";
	case SMFIR_SKIP:
		return "skip";
	case SMFIR_TEMPFAIL:
		return "tempfail";
	case SMFIR_REPLYCODE:
		return "replycode";
	case SMFIR_OPTNEG:
		return "optneg";
	default:
		return "unknown";
	}
}
