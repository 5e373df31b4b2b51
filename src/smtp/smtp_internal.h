/*
 * smtp_internal.h - the session structure, shared by smtp_session.c (I/O,
 * states, DATA and BDAT streams, commit) and smtp_commands.c (the command
 * table and its handlers).  Nothing outside src/smtp includes it.
 */
#ifndef HATO_SMTP_INTERNAL_H
#define HATO_SMTP_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/util.h>

#include "conf.h"
#include "data_reader.h"
#include "envelope.h"
#include "intake.h"
#include "intake_dkim.h"
#include "milter.h"
#include "server.h"
#include "status.h"

struct bufferevent;
struct evbuffer;
struct smtp_proxy;
struct sqlmap_ask;
struct event;
struct dnsbl_check;
struct dns_query;
typedef struct ssl_st SSL;

/* The states of RFC 5321 §4.1.4 as hato tracks them (DESIGN.md). */
enum smtp_state {
	SMTP_STATE_CONNECTED, /* accepted, reverse DNS running, no greeting yet */
	SMTP_STATE_GREETED,   /* 220 sent, waiting for EHLO/HELO */
	SMTP_STATE_READY,     /* EHLO/HELO done, no transaction */
	SMTP_STATE_MAIL,      /* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,      /* at least one recipient accepted */
	SMTP_STATE_DATA,      /* reading the DATA stream */
	SMTP_STATE_BDAT,      /* inside a CHUNKING transaction */
	SMTP_STATE_AUTH,      /* inside an AUTH exchange (RFC 4954) */
	SMTP_STATE_COMMIT,    /* message complete, waiting for the disk */
	SMTP_STATE_CLOSING,   /* last reply queued, closing after the flush */
	SMTP_STATE_COUNT
};

#define STATE_BIT(st) (1u << (st))

struct smtp_session {
	struct smtp_session *prev, *next; /* server's session list */
	struct checks *checks; /* SPF and DMARC on a listener without AUTH required; or NULL */
	struct server *srv;
	struct listener *l;
	const struct conf *conf;        /* the configuration it started under, held */
	const struct listener_conf *lc; /* its listener's part of conf */
	char id[17];
	struct bufferevent *bev;
	struct evbuffer *out;   /* replies not yet handed to the socket */
	struct event *flush_ev; /* made active by a reply: flushes out after this callback */
	enum smtp_state state;

	struct sockaddr_storage peer; /* the client: from the PROXY header, if any */
	char peer_addr[INET6_ADDRSTRLEN];
	unsigned peer_port;
	char peer_name[256]; /* reverse DNS or "unknown" */
	char local_addr[INET6_ADDRSTRLEN];
	bool trusted; /* client in trusted_networks */
	/* PROXY protocol (smtp_proxy.c): the header being read, and the
	 * balancer's address once it named another client ("" otherwise) */
	struct smtp_proxy *proxy;
	char proxy_addr[INET6_ADDRSTRLEN];
	char helo[256];
	bool esmtp;

	/* TLS */
	SSL *ssl;             /* set once TLS starts (implicit or STARTTLS) */
	bool tls;             /* handshake done */
	char tls_version[16]; /* "TLSv1.3", kept past the SSL object */
	char tls_cipher[64];
	bool starttls_pending;   /* 220 sent; switch after this input step */
	struct event *tls_timer; /* handshake deadline */

	/* AUTH (smtp_auth.c) */
	char *auth_user; /* set once authenticated */
	int auth_step;   /* enum auth_step of smtp_auth.c */
	char *auth_name; /* LOGIN: the user name, awaiting the password */
	unsigned auth_failures;
	bool auth_pending; /* a password check runs on a worker */

	/* content filters ([milter NAME]): NULL when none applies */
	struct milter_session *milter;
	bool milter_pending;     /* a filter's answer to MAIL or RCPT is awaited */
	size_t milter_rcpt_from; /* the recipients the RCPT in question added start here */

	/* the transaction */
	struct envelope env;
	struct intake in; /* the message on its way to the queue (intake.h) */
	uint64_t declared_size;
	struct data_reader dr;
	uint64_t bdat_remaining;
	bool bdat_last;
	bool in_chunk;           /* reading BDAT octets */
	enum status chunk_error; /* error to answer once the chunk is consumed */

	/* input handling */
	bool discarding;      /* dropping an over-long line up to its LF */
	bool discarding_auth; /* ... and it belongs to an AUTH exchange */
	bool paused;          /* error delay running */
	bool output_full;     /* replies piled up: input waits for write_cb */
	bool gone;            /* connection lost while a lookup or commit runs */
	bool drop;            /* close without a reply once the current input step ends */
	bool peer_eof;        /* the client half-closed: answer what it sent, then close */
	bool dns_pending;
	/* [sql] lookups: MAIL or RCPT decided through ask; while its fetch
	 * runs (lookup_pending) nothing is read, and the command (its
	 * handler and a copy of its argument) runs again once it ends */
	struct sqlmap_ask *ask;
	bool lookup_pending;
	bool lookup_again; /* the command is decided again, after its lookups */
	void (*lookup_cmd)(struct smtp_session *s, char *arg);
	char *lookup_arg;
	struct event *delay_ev;
	struct event *data_timer;

	/* before the greeting (postscreen.c) */
	struct event *greet_timer; /* the greeting delay */
	struct event *dnsbl_timer; /* how long the greeting waits for the lists */
	struct dnsbl_check *dnsbl; /* lookups in flight */
	bool greet_delaying;       /* the delay runs */
	bool client_counted;       /* one of its client's sessions (client_limits.c) */
	int dnsbl_score;
	int dnsbl_zone;             /* the list a refusal names; -1: none */
	struct dns_query *fcrdns_q; /* the forward lookup of the PTR name */
	int fcrdns;                 /* enum fcrdns_result of postscreen.c */
	int helo_fault;             /* enum helo_fault of postscreen.h */

	/* counters for limits and the disconnect log line */
	unsigned errors;
	unsigned messages;
	enum status last_status; /* of the last reply line queued (metrics) */
	unsigned cmd_counts[20];
	unsigned ncommands;
};

/* smtp_session.c */
void smtp_reply(struct smtp_session *s, enum status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void smtp_reply_multi(struct smtp_session *s, enum status st, const char *const *lines, size_t n);
/* A filter's refusal: its own reply lines (complete, CRLF-terminated, as
 * intake_reply_lines makes them), or st when it gave none. */
void smtp_reply_filter(struct smtp_session *s, const char *reply, enum status st);
void smtp_enter_state(struct smtp_session *s, enum smtp_state st);
void smtp_resume_input(struct smtp_session *s);
/* Set the read and write timeouts that belong to the current phase. */
void smtp_set_timeouts(struct smtp_session *s);
const char *smtp_strstate(enum smtp_state st);
void smtp_close(struct smtp_session *s, enum status st);
void smtp_close_now(struct smtp_session *s, const char *reason);
void smtp_transaction_reset(struct smtp_session *s);
enum status smtp_open_message(struct smtp_session *s);
void smtp_begin_data(struct smtp_session *s);
void smtp_begin_chunk(struct smtp_session *s, uint64_t size, bool last, enum status error);
enum tls_mode smtp_tls_mode(const struct smtp_session *s);
/* Go on after an answer that came from a callback (milter, AUTH): the
 * input waiting is read, unless the session pauses, stops or closes. */
void smtp_continue(struct smtp_session *s);
/* Greet the client once nothing holds the greeting back any more. */
void smtp_greet_ready(struct smtp_session *s);
/* Set the client's address (and, unless NULL, the one it connected to). */
void smtp_session_set_peer(struct smtp_session *s, const struct sockaddr *peer, socklen_t len,
			   const struct sockaddr *local);
/* The connection is the client's (after any PROXY header): TLS, greeting. */
void smtp_session_begin(struct smtp_session *s, evutil_socket_t fd);

/* smtp_proxy.c */
/* Read the PROXY header from fd, then smtp_session_begin; on a refusal
 * the connection is logged and closed, and s freed. */
void smtp_proxy_start(struct smtp_session *s, evutil_socket_t fd);
/* Release what smtp_proxy_start holds (the socket too, when unread). */
void smtp_proxy_free(struct smtp_session *s);

/* smtp_auth.c */
void smtp_cmd_auth(struct smtp_session *s, char *arg);
void smtp_auth_continue(struct smtp_session *s, char *line);
void smtp_auth_abort(struct smtp_session *s, enum status st);
bool smtp_auth_delay_done(struct smtp_session *s);
bool smtp_auth_offered(const struct smtp_session *s);

/* smtp_commands.c */
void smtp_dispatch(struct smtp_session *s, char *line);
const char *smtp_command_counts(const struct smtp_session *s, char *buf, size_t size);

#endif
