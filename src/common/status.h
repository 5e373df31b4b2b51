/*
 * status.h - every SMTP reply hato's server sends, with its enhanced status
 * code (RFC 3463), named once.
 *
 * Handlers say which status they answer with (STATUS_BAD_SEQUENCE), and
 * status_format() turns it into wire text; nowhere else types "5.5.1".
 * A handler may replace the default text, never the codes.
 */
#ifndef HATO_STATUS_H
#define HATO_STATUS_H

#include <stdbool.h>
#include <stddef.h>

enum status {
	STATUS_GREETING,           /* 220, no enhanced code (RFC 2034 §3) */
	STATUS_EHLO,               /* 250, no enhanced code (RFC 2034 §3) */
	STATUS_OK,                 /* 250 2.0.0 */
	STATUS_SENDER_OK,          /* 250 2.1.0 */
	STATUS_RCPT_OK,            /* 250 2.1.5 */
	STATUS_QUEUED,             /* 250 2.0.0 queued as */
	STATUS_CHUNK_OK,           /* 250 2.0.0 octets received */
	STATUS_RESET,              /* 250 2.0.0 */
	STATUS_NOOP,               /* 250 2.0.0 */
	STATUS_HELP,               /* 214 2.0.0 */
	STATUS_VRFY,               /* 252 2.5.0 */
	STATUS_BYE,                /* 221 2.0.0 */
	STATUS_START_DATA,         /* 354 */
	STATUS_SHUTDOWN,           /* 421 4.3.2 */
	STATUS_TIMEOUT,            /* 421 4.4.2 */
	STATUS_TOO_MANY_ERRORS,    /* 421 4.7.0 */
	STATUS_TOO_MANY_SESSIONS,  /* 421 4.7.0 */
	STATUS_LOCAL_ERROR,        /* 451 4.3.0 */
	STATUS_DISK_FULL,          /* 452 4.3.1 */
	STATUS_TOO_MANY_RCPTS,     /* 452 4.5.3 */
	STATUS_UNKNOWN_CMD,        /* 500 5.5.1 */
	STATUS_LINE_TOO_LONG,      /* 500 5.5.2 */
	STATUS_BAD_CHAR,           /* 500 5.5.2 */
	STATUS_SYNTAX,             /* 501 5.5.2 */
	STATUS_BAD_ARGS,           /* 501 5.5.4 */
	STATUS_BAD_PARAM_VALUE,    /* 501 5.5.4 repeated or invalid ESMTP parameter */
	STATUS_BAD_SENDER,         /* 501 5.1.7 */
	STATUS_BAD_RCPT,           /* 501 5.1.3 */
	STATUS_NOT_IMPLEMENTED,    /* 502 5.5.1 */
	STATUS_BAD_SEQUENCE,       /* 503 5.5.1 */
	STATUS_NO_RCPTS,           /* 554 5.5.1 */
	STATUS_TOO_BIG,            /* 552 5.3.4 */
	STATUS_SENDER_TOO_LONG,    /* 553 5.1.7 */
	STATUS_RCPT_TOO_LONG,      /* 553 5.1.3 */
	STATUS_NON_ASCII,          /* 553 5.6.7 */
	STATUS_RELAY_DENIED,       /* 554 5.7.1 */
	STATUS_LOOP,               /* 554 5.4.6 */
	STATUS_BAD_LINE_ENDING,    /* 554 5.6.0 bare CR/LF */
	STATUS_BAD_CONTENT,        /* 554 5.6.0 NUL */
	STATUS_DATA_LINE_LONG,     /* 500 5.5.2 (DATA text line) */
	STATUS_UNKNOWN_PARAM,      /* 555 5.5.4 */
	STATUS_TLS_READY,          /* 220 2.0.0 */
	STATUS_TLS_UNAVAILABLE,    /* 454 4.7.0 */
	STATUS_TLS_REQUIRED,       /* 530 5.7.0 */
	STATUS_AUTH_OK,            /* 235 2.7.0 */
	STATUS_AUTH_CHALLENGE,     /* 334, no enhanced code: text is base64 */
	STATUS_AUTH_CANCELLED,     /* 501 5.7.0 */
	STATUS_AUTH_BAD_BASE64,    /* 501 5.5.2 */
	STATUS_AUTH_LINE_TOO_LONG, /* 500 5.5.6 */
	STATUS_AUTH_FAILED,        /* 535 5.7.8 */
	STATUS_AUTH_ENCRYPT,       /* 538 5.7.11 */
	STATUS_AUTH_REQUIRED,      /* 530 5.7.0 */
	STATUS_AUTH_MECH,          /* 504 5.5.4 */
	STATUS_AUTH_LOCKED,        /* 454 4.7.0 */
	STATUS_AUTH_TEMPFAIL,      /* 454 4.7.0 */
	STATUS_AUTH_TOO_MANY,      /* 421 4.7.0 */
	STATUS_SENDER_NOT_OWNED,   /* 553 5.7.1 */
	STATUS_USER_UNKNOWN,       /* 550 5.1.1 */
	STATUS_BAD_MAILBOX,        /* 553 5.1.3 a local part that can be no mailbox */
	STATUS_MISCONFIGURED,      /* 451 4.3.5 */
	STATUS_CONTENT_REFUSED,    /* 550 5.7.1 a content filter's refusal */
	STATUS_CONTENT_TEMPFAIL,   /* 451 4.7.1 a content filter's "not now" */
	STATUS_CLIENT_SESSIONS,    /* 421 4.7.0 sessions at once from one address */
	STATUS_CLIENT_CONN_RATE,   /* 421 4.7.0 connections per minute from one address */
	STATUS_CLIENT_MSG_RATE,    /* 451 4.7.1 messages per minute from one address */
	STATUS_CLIENT_RCPT_RATE,   /* 452 4.5.3 recipients per minute from one address */
	STATUS_PREGREET,           /* 554 5.5.1 spoke before the greeting */
	STATUS_DNSBL,              /* 554 5.7.1 listed by DNS blocklists */
	STATUS_GREYLISTED,         /* 450 4.7.1 a first attempt: try again later */
	STATUS_FCRDNS,             /* 554 5.7.25 reverse DNS does not confirm forward */
	STATUS_HELO_REFUSED,       /* 550 5.7.1 a bare IP or our own name as HELO */
	STATUS_LOOKUP_FAILED,      /* 451 4.3.0 a lookup table could not answer */
	STATUS_COUNT
};

/* The reply code of a status: 250, 354, 550 ... */
int status_code(enum status st);

/*
 * Format one reply line, CRLF included.  text == NULL uses the default text.
 * last == false produces the "250-" continuation form.  Returns the length,
 * or 0 when the result would not fit in size (never a truncated line).
 */
size_t status_format(char *buf, size_t size, enum status st, const char *text, bool last);

/* "2.0.0" and friends, for logs. */
const char *status_esc(enum status st);

/* The enumerator's name in lower case without its prefix: "relay_denied"
 * (metrics labels); "unnamed" for a status missing from the table. */
const char *status_name(enum status st);

#endif
