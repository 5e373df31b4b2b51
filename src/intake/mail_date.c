/*
 * mail_date.c - RFC 5322 §3.3 date-time.  See mail_date.h.
 */
#include "mail_date.h"

#include "util.h"

/* See mail_date.h. */
bool mail_date(time_t t, char *buf, size_t size)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	long off;

	if (size > 0)
		buf[0] = '\0';
	if (localtime_r(&t, &tm) == NULL)
		return false;
	off = tm.tm_gmtoff / 60;
	if (xsnprintf_ok(buf, size, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
			 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
			 (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60))
		return true;
	buf[0] = '\0';
	return false;
}
