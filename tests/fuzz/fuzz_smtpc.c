/*
 * fuzz_smtpc.c - the client session (src/smtpc/smtpc.c) against whatever a
 * server may send: the first octet picks the options (LMTP, pipelining,
 * all or none, HELO fallback, STARTTLS may), the rest is the server's side
 * of the dialogue, read from one end of a socketpair; the session opens and
 * runs one transaction of three recipients from memory.  Invariants: an
 * answered recipient has a reply code 200..599; one refused at RCPT was not
 * accepted, one answered after the dot was; a transaction that ran to its
 * end (not all or none) answered every recipient.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtpc.h"

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpc_rcpt rc[3] = {{.addr = "<a@example.net>"},
				   {.addr = "<b@example.net>", .params = " NOTIFY=NEVER"},
				   {.addr = "<c@example.net>"}};
	struct smtpc_msg m = {.sender = "<s@example.org>",
			      .mail_params = " BODY=8BITMIME",
			      .rcpts = rc,
			      .nrcpts = 3,
			      .fd = -1,
			      .body = ".dot\r\nx\r\nend",
			      .len = 12};
	struct smtpc_opts o = {.helo = "client.example",
			       .tls_host = "127.0.0.1",
			       .timeout_greeting = 1,
			       .timeout_command = 1,
			       .timeout_data_end = 1};
	struct smtpc *s;
	enum smtpc_tx tx;
	int sv[2];

	if (size < 1 || size > 16384 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	o.lmtp = data[0] & 1;
	o.pipelining = data[0] & 2;
	m.all_or_none = data[0] & 4;
	o.helo_fallback = data[0] & 8;
	o.tls = data[0] & 16 ? SMTPC_TLS_MAY : SMTPC_TLS_NONE;
	if (write(sv[1], data + 1, size - 1) != (ssize_t)(size - 1)) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR); /* the end of the input: the server closed */
	s = malloc(sizeof(*s));
	smtpc_init(s, &o);
	s->conn.fd = sv[0];
	if (smtpc_open(s)) {
		tx = smtpc_send(s, &m);
		for (size_t i = 0; i < 3; i++) {
			const struct smtpc_rcpt *r = &rc[i];

			if (r->answer != SMTPC_ANSWER_NONE &&
			    (r->reply.code < 200 || r->reply.code > 599))
				abort();
			if ((r->answer == SMTPC_ANSWER_RCPT && r->accepted) ||
			    (r->answer == SMTPC_ANSWER_DOT && !r->accepted))
				abort();
			if (tx == SMTPC_TX_DONE && !m.all_or_none && r->answer == SMTPC_ANSWER_NONE)
				abort();
		}
		(void)smtpc_rset(s);
	}
	smtpc_close(s);
	close(sv[1]);
	free(s);
	return 0;
}
