/*
 * dovecot_proto.h - the lines of Dovecot's authentication client protocol
 * (doc.dovecot.org, "Authentication Protocol"), the one Postfix speaks
 * with smtpd_sasl_type = dovecot: tab-separated fields, one line per LF.
 *
 *   S: VERSION 1 2 / MECH PLAIN plaintext ... / SPID / CUID / COOKIE / DONE
 *   C: VERSION 1 2 / CPID pid
 *   C: AUTH id PLAIN service=smtp ... resp=base64
 *   S: OK id user=... | FAIL id [user=...] [temp] ... | CONT id base64
 *
 * Pure code, no I/O: dovecot_line_parse classifies one line from the
 * server (which hato treats as untrusted-ish input: bounded, every field
 * checked, values unescaped and refused when they hold a control
 * character), and dovecot_auth_line writes the one request hato sends.
 */
#ifndef HATO_DOVECOT_PROTO_H
#define HATO_DOVECOT_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* Longest line taken from the server, LF excluded. */
#define DOVECOT_LINE_MAX 16384
/* Longest mechanism name and user name kept from a line. */
#define DOVECOT_MECH_MAX 32
#define DOVECOT_USER_MAX 256

enum dovecot_line_type {
	DOVECOT_LINE_VERSION,
	DOVECOT_LINE_MECH,
	DOVECOT_LINE_DONE,
	DOVECOT_LINE_OK,
	DOVECOT_LINE_FAIL,
	DOVECOT_LINE_CONT,
	DOVECOT_LINE_OTHER, /* SPID, CUID, COOKIE, and what later versions add */
};

struct dovecot_line {
	enum dovecot_line_type type;
	unsigned long major, minor;  /* VERSION */
	char mech[DOVECOT_MECH_MAX]; /* MECH: the name */
	unsigned long id;            /* OK, FAIL, CONT: the request */
	bool temp;                   /* FAIL: a temporary failure */
	char user[DOVECOT_USER_MAX]; /* OK, FAIL: user=, unescaped; "" without */
};

/* Classify line[0..len) (no LF); false when it is malformed: a NUL, a
 * known line with missing or bad fields, an over-long or unprintable
 * user name. */
bool dovecot_line_parse(const char *line, size_t len, struct dovecot_line *out);

/* What a PLAIN request carries. */
struct dovecot_query {
	const char *user;
	const char *password;
	const char *client_addr; /* rip: the client's address */
	const char *local_addr;  /* lip: the address it connected to; NULL: none */
	const char *session;     /* hato's session id, for Dovecot's log */
};

/* Write "AUTH\tid\tPLAIN\t...\tresp=BASE64\n" into out (size octets) and
 * return its length; 0 when it does not fit or a field holds a tab or a
 * control character.  out holds the password: the caller wipes it. */
size_t dovecot_auth_line(char *out, size_t size, unsigned long id, const struct dovecot_query *q);

#endif
