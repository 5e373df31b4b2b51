/*
 * envelope.h - the envelope of a queued message and its file format.
 *
 * The file is versioned, human-readable "key: value" text, one key a line:
 *
 *   hato-envelope: 1
 *   id: 0006A1B2C3D4E5F60001
 *   arrival: 1764370000
 *   sender: <alice@example.org>
 *   size: 2048
 *   body: 8bitmime            (7bit, 8bitmime or unspecified)
 *   smtputf8: no
 *   client: 192.0.2.1
 *   client-name: mail.example.org
 *   helo: mail.example.org
 *   auth-user: alice          (only when authenticated)
 *   auth-param: <>            (only when MAIL had AUTH=)
 *   ret: hdrs                 (only when MAIL had RET=: full or hdrs)
 *   envid: abc+2Bdef          (only when MAIL had ENVID=, xtext as received)
 *   dsn-report: yes           (only for a delivery status notification hato made)
 *   junk: yes                 (only when a check of received mail said: the Junk folder)
 *   delay-warned: yes         (only once the sender was told of a delay)
 *   hold: since=1764370500 reason=held by the administrator  (only while held)
 *   rcpt: state=pending attempts=0 next=0 notify=success,failure report=failed
 * addr=<bob@example.net> rcpt-orig: <info@example.net>   (optional: the RCPT TO before aliases)
 *   rcpt-local: yes             (optional: accepted as local by a lookup table)
 *   rcpt-orcpt: rfc822;bob@example.net  (optional: the RCPT's ORCPT=)
 *   rcpt-error: 4.2.0 mailbox full  (optional: the last attempt's result)
 *   rcpt-attempt: at=1764370100 result=deferred host=mx.example.net[192.0.2.7]:25
 * tls=TLSv1.3 reply=4.2.0 mailbox full   (0 to ENVELOPE_ATTEMPTS_MAX, oldest first)
 *
 * Recipient lines keep "addr=" last: the rest of the line is the address,
 * so quoted local parts with spaces survive.  "notify=" (the RCPT's
 * NOTIFY=, lower case: never, or some of success,failure,delay) is there
 * only when the RCPT had one; "report=" (failed, delayed, delivered or
 * relayed) only while a notification to the sender is owed for it.  "rcpt-local: yes" says
 * the recipient's domain was local by a lookup table ([sql] domain_query) when it was
 * accepted: delivery routes it as local (route_rcpt_local).  rcpt-orig, rcpt-local, rcpt-orcpt,
 * rcpt-error and rcpt-attempt belong to the rcpt line before them.  rcpt-attempt lines are the
 * recipient's last attempts (time, outcome, who answered or "-", TLS version or "-", and the
 * reply last, so it may hold spaces); only the last ENVELOPE_ATTEMPTS_MAX are kept, and a file
 * holding more reads as its last ones.  "hold:" marks a message kept from delivery until it is
 * released, with why ("reason=" last) and since when.  The DSN values (RFC 3461: ret, envid,
 * notify, rcpt-orcpt) are optional, so files written before them read as "not given", as files
 * without hold or rcpt-attempt lines read as "not held" and "no attempt recorded". envelope_parse()
 * accepts exactly what envelope_format() writes and reports the first bad line.
 */
#ifndef HATO_ENVELOPE_H
#define HATO_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dsn.h"
#include "outcome.h"
#include "strbuf.h"

#define ENVELOPE_VERSION 1
#define QUEUE_ID_LEN 20
#define ENVELOPE_ATTEMPTS_MAX 10     /* attempts kept per recipient: the last ones */
#define ENVELOPE_HOLD_REASON_MAX 200 /* octets of a hold reason; a longer one is cut */
#define ENVELOPE_WORD_MAX 300        /* octets of an attempt's host or TLS version */
#define ENVELOPE_REPLY_MAX 512       /* octets of an attempt's reply */

enum body_type {
	BODY_UNSPECIFIED,
	BODY_7BIT,
	BODY_8BITMIME,
};

enum rcpt_state {
	RCPT_PENDING,
	RCPT_DELIVERED,
	RCPT_FAILED,
};

/* The delivery status notification a recipient owes its sender. */
enum rcpt_report {
	REPORT_NONE,
	REPORT_FAILED,
	REPORT_DELAYED,
	REPORT_DELIVERED,
	REPORT_RELAYED, /* handed to a next hop that will not report success itself */
};

/* One delivery attempt of a recipient, as the scheduler recorded it. */
struct env_attempt {
	time_t at;           /* when its result was known */
	enum outcome result; /* delivered, deferred or failed */
	char *host;          /* who answered ("host[addr]:port", the LMTP or Maildir
				destination), or NULL */
	char *tls;           /* the TLS version of a remote attempt ("none": plain), or NULL */
	char *reply;         /* "4.2.0 mailbox full": status and text, one line */
};

struct env_rcpt {
	char *addr; /* "<local@domain>": where it goes */
	char *orig; /* the RCPT TO it came from (aliases), or NULL when the same */
	enum rcpt_state state;
	unsigned attempts;
	time_t next_attempt;       /* 0: as soon as possible */
	char *error;               /* the last attempt's result, one line, or NULL */
	unsigned notify;           /* NOTIFY= as enum dsn_notify bits; 0: not given */
	char *orcpt;               /* ORCPT= "addr-type;xtext" (type lower case), or NULL */
	bool local;                /* local by a lookup table at RCPT time: route as local */
	enum rcpt_report report;   /* a notification owed, not yet queued */
	struct env_attempt *tries; /* the last ntries attempts, oldest first */
	size_t ntries;             /* at most ENVELOPE_ATTEMPTS_MAX */
};

struct envelope {
	char id[QUEUE_ID_LEN + 1];
	time_t arrival;
	char *sender; /* "<...>", "<>" for the null path */
	uint64_t size;
	enum body_type body;
	bool smtputf8;
	char *client;      /* peer IP address */
	char *client_name; /* reverse DNS name or "unknown" */
	char *helo;
	char *auth_user;   /* the authenticated submitter, or NULL */
	char *auth_param;  /* MAIL ... AUTH= (xtext-decoded), or NULL */
	enum dsn_ret ret;  /* MAIL ... RET=, DSN_RET_UNSPEC when not given */
	char *envid;       /* MAIL ... ENVID= as received (xtext), or NULL */
	bool dsn_report;   /* a notification hato made: its failure is not reported back */
	bool junk;         /* a check (DMARC p=quarantine) sends it to the Junk folder */
	bool delay_warned; /* the sender was told of a delay */
	char *hold;        /* why the message is held (no delivery until released), or NULL */
	time_t held_since; /* when it was held */
	struct env_rcpt *rcpts;
	size_t nrcpts;
};

void envelope_init(struct envelope *e);
void envelope_free(struct envelope *e);
void envelope_add_rcpt(struct envelope *e, const char *addr);
/* Remove recipient i (the later ones move up). */
void envelope_remove_rcpt(struct envelope *e, size_t i);
/* Set (or clear with NULL) a recipient's last error / original address /
 * ORCPT value. */
void env_rcpt_set_error(struct env_rcpt *r, const char *text);
void env_rcpt_set_orig(struct env_rcpt *r, const char *orig);
void env_rcpt_set_orcpt(struct env_rcpt *r, const char *orcpt);
/* Record an attempt of r (host and tls may be NULL); the oldest goes when
 * ENVELOPE_ATTEMPTS_MAX are kept already.  Line ends and spaces in host and
 * tls, and line ends in reply, become other characters: each stays one word
 * or one line. */
void env_rcpt_add_attempt(struct env_rcpt *r, time_t at, enum outcome result, const char *host,
			  const char *tls, const char *reply);
/* Hold the message since `since` for reason (cut to ENVELOPE_HOLD_REASON_MAX
 * octets, one line), or release it with reason NULL. */
void envelope_set_hold(struct envelope *e, const char *reason, time_t since);
/* Recipients not yet delivered or failed. */
size_t envelope_pending(const struct envelope *e);

/* Serialise into b (appends). */
void envelope_format(const struct envelope *e, struct strbuf *b);

/* Parse text; on failure returns false and a reason in err. */
bool envelope_parse(const char *text, size_t len, struct envelope *e, char *err, size_t errsz);

/* Is s a well-formed queue ID? */
bool queue_id_valid(const char *s);

#endif
