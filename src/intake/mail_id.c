/*
 * mail_id.c - Message-IDs of messages hato makes.  See mail_id.h.
 */
#include "mail_id.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

/* See mail_id.h. */
void mail_msgid(time_t t, const char *host, char *buf, size_t size)
{
	unsigned char rnd[8];
	struct tm tm;

	if (!addr_valid_domain(host, strlen(host)))
		host = "localhost";
	random_octets(rnd, sizeof(rnd));
	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(buf, size, "<%04d%02d%02d%02d%02d%02d.%02x%02x%02x%02x%02x%02x%02x%02x@%s>",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], host);
}
