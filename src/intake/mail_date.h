/*
 * mail_date.h - the one RFC 5322 date-time (§3.3) of hato: the Date: that
 * submission fix-ups and `hato send` add, the date of our Received: header
 * and of delivery reports.  "Mon, 01 Jan 2024 00:00:00 +0000", in the local
 * time zone, day and month names spelled here (strftime's %a and %b follow
 * the locale).
 */
#ifndef HATO_MAIL_DATE_H
#define HATO_MAIL_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Room for any date mail_date() makes, NUL included. */
#define MAIL_DATE_SIZE 64

/* The date of the epoch, for a caller whose clock cannot be read. */
#define MAIL_DATE_EPOCH "Thu, 01 Jan 1970 00:00:00 +0000"

/* The date-time of t into buf; false when t has no local time or size is
 * too small (buf then holds no date). */
bool mail_date(time_t t, char *buf, size_t size);

#endif
