/*
 * dsn.h - the parameters of the SMTP DSN extension (RFC 3461) and the xtext
 * encoding they travel in (§4).
 *
 *   MAIL FROM:<...> RET=FULL|HDRS ENVID=xtext
 *   RCPT TO:<...> NOTIFY=NEVER|SUCCESS,FAILURE,DELAY ORCPT=addr-type;xtext
 *
 * Pure functions over strings; nothing is allocated.  ENVID and ORCPT are
 * checked here and kept in their encoded form, as they came on the wire:
 * a next hop gets them unchanged, and a delivery report decodes them
 * (dsn_xtext_decode) when it is made.  The same parsers read the values back
 * from envelope and drop files.
 */
#ifndef HATO_DSN_H
#define HATO_DSN_H

#include <stdbool.h>
#include <stddef.h>

#define DSN_ENVID_MAX 100      /* octets of the encoded ENVID (RFC 3461 §4.4) */
#define DSN_ORCPT_MAX 500      /* octets of the ORCPT value, addr-type included */
#define DSN_NOTIFY_TEXT_MAX 32 /* "success,failure,delay" and its NUL */

/* RET: what a failure report carries of the message. */
enum dsn_ret {
	DSN_RET_UNSPEC, /* not given: the reporting MTA chooses */
	DSN_RET_FULL,
	DSN_RET_HDRS,
};

/* NOTIFY: the conditions a report is wanted for; 0 means not given. */
enum dsn_notify {
	DSN_NOTIFY_NEVER = 1u << 0, /* never alone with another */
	DSN_NOTIFY_SUCCESS = 1u << 1,
	DSN_NOTIFY_FAILURE = 1u << 2,
	DSN_NOTIFY_DELAY = 1u << 3,
};

/*
 * Decode xtext into out (NUL-terminated, size octets with the NUL): "+XX"
 * is the octet XX in hex, any other octet must be printable ASCII other
 * than "+" and "=".  False on bad syntax, "+00", an empty result or one
 * that does not fit.  *len (when not NULL) gets the decoded length.
 */
bool dsn_xtext_decode(const char *in, char *out, size_t size, size_t *len);

/* RET value, any case: "FULL" or "HDRS". */
bool dsn_parse_ret(const char *v, enum dsn_ret *ret);

/* "full" or "hdrs" for the envelope file; NULL for DSN_RET_UNSPEC. */
const char *dsn_ret_name(enum dsn_ret ret);

/* Is v a valid ENVID: at most DSN_ENVID_MAX octets of xtext that decode to
 * printable ASCII (space included)? */
bool dsn_valid_envid(const char *v);

/* NOTIFY value, any case: "NEVER", or a comma list of SUCCESS, FAILURE and
 * DELAY, each at most once, into *notify (enum dsn_notify bits). */
bool dsn_parse_notify(const char *v, unsigned *notify);

/* The lower-case form of a NOTIFY bit set ("success,failure", "never"),
 * as the envelope file keeps it; false for 0, bits that do not go
 * together, or a buffer too small. */
bool dsn_format_notify(unsigned notify, char *buf, size_t size);

/*
 * ORCPT value "addr-type;address", at most DSN_ORCPT_MAX octets, into out
 * with the addr-type lower-cased.  "rfc822": the address is xtext of
 * printable ASCII.  "utf-8" (RFC 6533): printable ASCII but "+" and "=",
 * "\x{HEX}" escapes (a code point, not a control character or a
 * surrogate) and, when utf8 (the transaction is SMTPUTF8), UTF-8
 * characters as they are.  Any other addr-type is refused.
 */
bool dsn_parse_orcpt(const char *v, bool utf8, char *out, size_t size);

#endif
