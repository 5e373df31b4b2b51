/*
 * milter_proto.h - the Sendmail/Postfix milter protocol, version 6, as the
 * MTA speaks it: the command and reply codes, the flags of the option
 * negotiation, packets written into a strbuf, and the parser of what a
 * filter sends back.  Pure code, no I/O: the connection is milter.c's.
 *
 * A packet is a 32-bit length in network order (the code octet and the
 * data), one code octet, then the data.  Strings in the data end in NUL.
 *
 * What a filter sends is untrusted: milter_frame() refuses a length of
 * zero or over the configured packet_max before anything is buffered, and
 * milter_reply_decode() checks every string ends inside the packet and every
 * number is there; anything else is a reply that does not parse.
 */
#ifndef HATO_MILTER_PROTO_H
#define HATO_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "strbuf.h"

#define MILTER_VERSION 6
#define MILTER_CHUNK_MAX 65535 /* body octets in one SMFIC_BODY (libmilter's) */

/* MTA -> filter */
#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'

/* filter -> MTA */
#define SMFIR_ADDRCPT '+'
#define SMFIR_DELRCPT '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN '4'
#define SMFIR_ACCEPT 'a'
#define SMFIR_REPLBODY 'b'
#define SMFIR_CONTINUE 'c'
#define SMFIR_DISCARD 'd'
#define SMFIR_CHGFROM 'e'
#define SMFIR_CONN_FAIL 'f'
#define SMFIR_ADDHEADER 'h'
#define SMFIR_INSHEADER 'i'
#define SMFIR_SETSYMLIST 'l'
#define SMFIR_CHGHEADER 'm'
#define SMFIR_PROGRESS 'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT 'r'
#define SMFIR_SKIP 's'
#define SMFIR_TEMPFAIL 't'
#define SMFIR_REPLYCODE 'y'
#define SMFIR_OPTNEG 'O'

/* actions a filter may take (negotiated) */
#define SMFIF_ADDHDRS 0x01u
#define SMFIF_CHGBODY 0x02u
#define SMFIF_ADDRCPT 0x04u
#define SMFIF_DELRCPT 0x08u
#define SMFIF_CHGHDRS 0x10u
#define SMFIF_QUARANTINE 0x20u
#define SMFIF_CHGFROM 0x40u
#define SMFIF_ADDRCPT_PAR 0x80u
#define SMFIF_SETSYMLIST 0x100u
#define SMFIF_ALL 0x1ffu

/* protocol steps a filter does not want, or does not answer */
#define SMFIP_NOCONNECT 0x1u
#define SMFIP_NOHELO 0x2u
#define SMFIP_NOMAIL 0x4u
#define SMFIP_NORCPT 0x8u
#define SMFIP_NOBODY 0x10u
#define SMFIP_NOHDRS 0x20u
#define SMFIP_NOEOH 0x40u
#define SMFIP_NR_HDR 0x80u
#define SMFIP_NOUNKNOWN 0x100u
#define SMFIP_NODATA 0x200u
#define SMFIP_SKIP 0x400u
#define SMFIP_RCPT_REJ 0x800u
#define SMFIP_NR_CONN 0x1000u
#define SMFIP_NR_HELO 0x2000u
#define SMFIP_NR_MAIL 0x4000u
#define SMFIP_NR_RCPT 0x8000u
#define SMFIP_NR_DATA 0x10000u
#define SMFIP_NR_UNKN 0x20000u
#define SMFIP_NR_EOH 0x40000u
#define SMFIP_NR_BODY 0x80000u
#define SMFIP_HDR_LEADSPC 0x100000u
/* what hato offers: every step may be declined or left unanswered, SKIP
 * is understood; not RCPT_REJ (refused recipients are not sent) */
#define SMFIP_OFFERED 0x1ff7ffu

/* One packet from a filter, decoded; pointers into the packet's data. */
struct milter_reply {
	char cmd;
	const char *data; /* the data after the code */
	size_t len;
	uint32_t version, actions, protocol; /* SMFIR_OPTNEG */
	uint32_t index;                      /* SMFIR_INSHEADER, SMFIR_CHGHEADER */
	const char *name, *value;            /* the header replies */
	const char *addr, *args;             /* recipients, sender; args may be NULL */
	const char *text;                    /* SMFIR_REPLYCODE, SMFIR_QUARANTINE */
};

/* Start a packet with code cmd in b; returns where its length goes. */
size_t milter_packet_begin(struct strbuf *b, char cmd);
/* Close the packet begun at start (writes its length). */
void milter_packet_end(struct strbuf *b, size_t start);
/* Append a string with its NUL / a 32-bit or 16-bit number in network order. */
void milter_put_str(struct strbuf *b, const char *s);
void milter_put_u32(struct strbuf *b, uint32_t v);
void milter_put_u16(struct strbuf *b, uint16_t v);

/* The octets the next packet of buf[0..n) takes, length field included:
 * 0 when it is not all there yet, -1 when its length is 0 or over max. */
ssize_t milter_frame(const unsigned char *buf, size_t n, size_t max);

/* Decode a packet's code and data (buf without the length field); false
 * when it does not parse (an unknown code, a string without its NUL, a
 * number missing). */
bool milter_reply_decode(const char *buf, size_t n, struct milter_reply *r);

/* The name of a reply code for logs ("continue", "addheader" ...). */
const char *milter_reply_name(char cmd);

#endif
