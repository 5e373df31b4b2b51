/*
 * lmtp.h - delivery to a mail store by LMTP (RFC 2033), e.g. Dovecot's
 * lmtp service (blocking: call it from a worker thread, never from the
 * event loop).
 *
 * lmtp_deliver() hands one queued message to all of its recipients for one
 * LMTP server in a single transaction: LHLO, MAIL FROM, one RCPT TO per
 * recipient, DATA with the message dot-stuffed, then one reply per accepted
 * recipient (RFC 2033 §4.2), and QUIT.
 *
 * Failure: every recipient's outcome comes back in its own struct
 * delivery_result.  A recipient refused at RCPT keeps that reply (4xx
 * TEMPFAIL, 5xx PERMFAIL); an accepted one gets its reply after the final
 * dot.  A refused MAIL FROM or DATA, or a 421 (the server is closing),
 * applies to every recipient still without a final answer.  A connection
 * that cannot be made is TEMPFAIL 4.4.1; a timeout, a lost connection or a
 * garbled reply is TEMPFAIL 4.4.2 for every recipient that has no reply of
 * its own yet (so the queue retries them: a recipient whose reply was lost
 * may see the message twice, never zero times).  Thread-safe.
 */
#ifndef HATO_LMTP_H
#define HATO_LMTP_H

#include <stddef.h>
#include <stdint.h>

#include "outcome.h"

/*
 * Deliver the queued message, the first msg_len octets of msg_fd (CRLF
 * lines; sent from offset 0, the fd's position is moved, the caller keeps
 * it open), to the n recipients rcpts ("<a@b>") at target ("unix:/path", "host:port" or
 * "[v6addr]:port"), naming ourselves hostname in LHLO; sender is "<...>" or "<>".  Every connect,
 * read and write waits at most timeout_seconds.  results[i] gets rcpts[i]'s outcome; its text is
 * "lmtp TARGET said: CODE TEXT" for a server reply, and its esc the reply's enhanced status code
 * (or X.0.0 from the reply code when it has none).
 */
void lmtp_deliver(const char *target, const char *hostname, int msg_fd, uint64_t msg_len,
		  const char *sender, const char *const *rcpts, size_t n, unsigned timeout_seconds,
		  struct delivery_result *results);

#endif
