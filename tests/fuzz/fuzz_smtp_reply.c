/*
 * fuzz_smtp_reply.c - the SMTP client's reply reader (src/smtpc/smtp_conn.c),
 * which reads what a remote server sends: the input goes into one end of a
 * socketpair and smtp_conn_reply() reads replies from the other, with an EHLO
 * capability list, until the input ends.  Invariants: every reply has a code
 * 200..599 and an esc of the reply's class; no text holds a control octet.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp_conn.h"

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_conn *c;
	struct smtp_reply rep;
	struct smtp_caps caps;
	int sv[2];

	if (size > 16384 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	if (write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	close(sv[1]); /* the end of the input: a closed connection */
	c = malloc(sizeof(*c));
	smtp_conn_init(c);
	c->fd = sv[0];
	for (int i = 0; i < 200 && smtp_conn_reply(c, &rep, 1, &caps); i++) {
		if (rep.code < 200 || rep.code > 599 || rep.esc[0] != rep.text[0])
			abort();
		for (const char *p = rep.text; *p; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f)
				abort();
	}
	smtp_conn_close(c);
	free(c);
	return 0;
}
