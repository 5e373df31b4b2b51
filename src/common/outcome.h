/*
 * outcome.h - the three outcomes of a delivery attempt, decided once where
 * the result is known (Maildir writer, LMTP reply, SMTP reply, DNS) and
 * carried as data to the scheduler from there.
 *
 *   OUTCOME_DELIVERED  the recipient is done
 *   OUTCOME_TEMPFAIL   try again later (retry schedule), 4.x.x
 *   OUTCOME_PERMFAIL   give up now (bounce), 5.x.x
 */
#ifndef HATO_OUTCOME_H
#define HATO_OUTCOME_H

#include <stdbool.h>

enum outcome {
	OUTCOME_DELIVERED,
	OUTCOME_TEMPFAIL,
	OUTCOME_PERMFAIL,
};

struct delivery_result {
	enum outcome outcome;
	char esc[12];   /* enhanced status code, "2.0.0", "4.3.1", "5.1.1" */
	char text[256]; /* one line for logs and the queue: no CR/LF */
};

/* "delivered", "deferred", "failed" */
const char *outcome_name(enum outcome o);

/* Fill r; the text is formatted, truncated to fit, CR/LF replaced. */
void result_set(struct delivery_result *r, enum outcome o, const char *esc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The outcome an SMTP/LMTP reply code means: 2xx/4xx/5xx (else TEMPFAIL). */
enum outcome outcome_from_reply(int code);

#endif
