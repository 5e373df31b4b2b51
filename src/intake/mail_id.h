/*
 * mail_id.h - the Message-ID (RFC 5322 §3.6.4) of a message hato makes
 * or completes without a queue ID of its own: `hato send`, sendmail and
 * delivery reports.  (Intake's submission fix-up names a message by its
 * queue ID instead: "<QUEUEID@hostname>".)
 */
#ifndef HATO_MAIL_ID_H
#define HATO_MAIL_ID_H

#include <stddef.h>
#include <time.h>

#include "addr.h"

/* Room for any Message-ID mail_msgid() makes, NUL included. */
#define MAIL_MSGID_SIZE (ADDR_DOMAIN_MAX + 64)

/* "<20240101000000.0123456789abcdef@host>": t in UTC, 8 random octets,
 * and host ("localhost" when host is not a valid domain).  size must be at
 * least MAIL_MSGID_SIZE. */
void mail_msgid(time_t t, const char *host, char *buf, size_t size);

#endif
