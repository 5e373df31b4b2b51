/*
 * data_reader.h - the DATA phase byte stream (RFC 5321 §4.1.1.4, §4.5.2).
 *
 * data_reader_feed() removes dot-stuffing and finds the end of data.  The
 * message ends only at <CRLF>.<CRLF>: a dot line after a bare LF or bare CR,
 * or ending in a bare LF or CR, is never an end (SMTP smuggling), and any
 * bare CR or LF is reported in flags so the server can refuse the message
 * once it has read to the real end.  Streaming: the input may be split
 * anywhere; memory does not depend on line or message length.
 *
 * header_scan counts Received: headers in the unstuffed message (mail loop
 * detection) across the same arbitrary splits.
 */
#ifndef HATO_DATA_READER_H
#define HATO_DATA_READER_H

#include <stdbool.h>
#include <stddef.h>

#define DATA_BARE_LF 0x1   /* a LF not preceded by CR */
#define DATA_BARE_CR 0x2   /* a CR not followed by LF */
#define DATA_LONG_LINE 0x4 /* a line over the text line limit */
#define DATA_NUL 0x8       /* a NUL octet */

struct data_reader {
	int state;
	size_t linelen;  /* octets of the current line as sent */
	size_t line_max; /* text line limit, CRLF included */
	unsigned flags;  /* DATA_* seen so far */
};

void data_reader_init(struct data_reader *r, size_t line_max);

/*
 * Consume bytes of in[0..len) until the end of data.  Unstuffed message
 * bytes go to out, which must hold len + 2 bytes; *outlen says how many.
 * Returns how many input bytes were consumed; *done becomes true when the
 * terminating <CRLF>.<CRLF> was consumed (bytes after it are not).
 */
size_t data_reader_feed(struct data_reader *r, const char *in, size_t len, char *out,
			size_t *outlen, bool *done);

/*
 * BDAT: chunks carry the message as it is, with no dot-stuffing and no end
 * marker, but (without BINARYMIME) the same rules for lines: feed each
 * chunk's octets to data_reader_scan for the same flags, and call
 * data_reader_scan_end after the last one (a CR at the very end is bare).
 */
void data_reader_scan(struct data_reader *r, const char *p, size_t len);
void data_reader_scan_end(struct data_reader *r);

struct header_scan {
	bool in_header; /* still inside the header section */
	int match;      /* octets of "Received:" matched on this line, -1 none */
	size_t linelen;
	unsigned received; /* Received: headers counted */
};

void header_scan_init(struct header_scan *h);

/* Account for message bytes (unstuffed, CRLF lines). */
void header_scan_feed(struct header_scan *h, const char *p, size_t len);

#endif
