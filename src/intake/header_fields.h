/*
 * header_fields.h - the header section of a stored message, split into its
 * fields, for the end-of-message stages (intake_msg.c) that read and edit
 * it.  Pure functions over octets that came from a client: bounded by the
 * input, no allocation.
 *
 * A line ends at LF (CRLF or a bare LF).  The header section ends at the
 * empty line (the separator, which belongs to neither side), or just before
 * the first line that is neither a field ("name:", the name printable
 * ASCII without ':', optionally followed by whitespace before the colon,
 * RFC 5322 §4.5) nor a continuation (leading SP or HTAB): that line is the
 * body's first.  A continuation as the very first line is a field of its
 * own with no name.  A message without an end (only fields) is all header.
 */
#ifndef HATO_HEADER_FIELDS_H
#define HATO_HEADER_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Look for the end of the header section in p[0..n), scanning whole lines
 * from *pos (0 at first; kept between calls as more octets arrive, so no
 * line is judged twice).  true when found: *hdr_len is the octets of the
 * fields, *body_off where the body starts, *sep whether an empty line came
 * between.  false: more octets are needed (*pos is the first line not yet
 * judged); with eof set, the whole input is header and true is returned.
 */
bool header_fields_end(const char *p, size_t n, bool eof, size_t *pos, size_t *hdr_len,
		       size_t *body_off, bool *sep);

/* The length of the field that starts p[0..n) (a header section as found by
 * header_fields_end): its first line and its continuations; *namelen is
 * the length of its name (0 for a leading continuation). */
size_t header_fields_next(const char *p, size_t n, size_t *namelen);

/* The length of the name of the field line p[0..n), 0 when it is none. */
size_t header_fields_name(const char *p, size_t n);

#endif
