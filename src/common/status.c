/*
 * status.c - the one table of replies and their enhanced status codes.
 */
#include "status.h"

#include <stdio.h>

static const struct status_def {
	int code;
	const char *esc; /* NULL: greeting, EHLO/HELO and 354 carry none (RFC 2034 §3) */
	const char *text;
} status_table[STATUS_COUNT] = {
	[STATUS_GREETING] = {220, NULL, "ESMTP"},
	[STATUS_EHLO] = {250, NULL, "Hello"},
	[STATUS_OK] = {250, "2.0.0", "OK"},
	[STATUS_SENDER_OK] = {250, "2.1.0", "Sender OK"},
	[STATUS_RCPT_OK] = {250, "2.1.5", "Recipient OK"},
	[STATUS_QUEUED] = {250, "2.0.0", "OK queued"},
	[STATUS_CHUNK_OK] = {250, "2.0.0", "Chunk received"},
	[STATUS_RESET] = {250, "2.0.0", "Reset OK"},
	[STATUS_NOOP] = {250, "2.0.0", "OK"},
	[STATUS_HELP] = {214, "2.0.0",
			 "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA BDAT RSET "
			 "NOOP QUIT VRFY HELP"},
	[STATUS_VRFY] = {252, "2.5.0",
			 "Cannot VRFY user, but will accept message and attempt "
			 "delivery"},
	[STATUS_BYE] = {221, "2.0.0", "Bye"},
	[STATUS_START_DATA] = {354, NULL, "End data with <CR><LF>.<CR><LF>"},
	[STATUS_SHUTDOWN] = {421, "4.3.2", "Service shutting down, closing connection"},
	[STATUS_TIMEOUT] = {421, "4.4.2", "Timeout, closing connection"},
	[STATUS_TOO_MANY_ERRORS] = {421, "4.7.0", "Too many errors, closing connection"},
	[STATUS_TOO_MANY_SESSIONS] = {421, "4.7.0", "Too many connections, try again later"},
	[STATUS_LOCAL_ERROR] = {451, "4.3.0", "Local error in processing, try again later"},
	[STATUS_DISK_FULL] = {452, "4.3.1", "Insufficient system storage, try again later"},
	[STATUS_TOO_MANY_RCPTS] = {452, "4.5.3", "Too many recipients"},
	[STATUS_UNKNOWN_CMD] = {500, "5.5.1", "Command unrecognized"},
	[STATUS_LINE_TOO_LONG] = {500, "5.5.2", "Line too long"},
	[STATUS_BAD_CHAR] = {500, "5.5.2", "NUL or bare CR/LF in command"},
	[STATUS_SYNTAX] = {501, "5.5.2", "Syntax error"},
	[STATUS_BAD_ARGS] = {501, "5.5.4", "Invalid arguments"},
	[STATUS_BAD_PARAM_VALUE] = {501, "5.5.4", "Invalid parameter value"},
	[STATUS_BAD_SENDER] = {501, "5.1.7", "Bad sender address syntax"},
	[STATUS_BAD_RCPT] = {501, "5.1.3", "Bad recipient address syntax"},
	[STATUS_NOT_IMPLEMENTED] = {502, "5.5.1", "Command not implemented"},
	[STATUS_BAD_SEQUENCE] = {503, "5.5.1", "Bad sequence of commands"},
	[STATUS_NO_RCPTS] = {554, "5.5.1", "No valid recipients"},
	[STATUS_TOO_BIG] = {552, "5.3.4", "Message size exceeds fixed limit"},
	[STATUS_SENDER_TOO_LONG] = {553, "5.1.7", "Sender address too long"},
	[STATUS_RCPT_TOO_LONG] = {553, "5.1.3", "Recipient address too long"},
	[STATUS_NON_ASCII] = {553, "5.6.7", "Non-ASCII address requires SMTPUTF8"},
	[STATUS_RELAY_DENIED] = {554, "5.7.1", "Relay access denied"},
	[STATUS_LOOP] = {554, "5.4.6", "Too many Received headers, mail loop suspected"},
	[STATUS_BAD_LINE_ENDING] = {554, "5.6.0",
				    "Message contains bare CR or LF; lines must end "
				    "in CRLF"},
	[STATUS_BAD_CONTENT] = {554, "5.6.0", "Message contains NUL bytes"},
	[STATUS_DATA_LINE_LONG] = {500, "5.5.2", "Message line too long"},
	[STATUS_UNKNOWN_PARAM] = {555, "5.5.4", "Unsupported parameter"},
	[STATUS_TLS_READY] = {220, "2.0.0", "Ready to start TLS"},
	[STATUS_TLS_UNAVAILABLE] = {454, "4.7.0", "TLS not available due to temporary reason"},
	[STATUS_TLS_REQUIRED] = {530, "5.7.0", "Must issue a STARTTLS command first"},
	[STATUS_AUTH_OK] = {235, "2.7.0", "Authentication successful"},
	[STATUS_AUTH_CHALLENGE] = {334, NULL, ""},
	[STATUS_AUTH_CANCELLED] = {501, "5.7.0", "Authentication cancelled"},
	[STATUS_AUTH_BAD_BASE64] = {501, "5.5.2", "Cannot decode base64 response"},
	[STATUS_AUTH_LINE_TOO_LONG] = {500, "5.5.6", "Authentication exchange line is too long"},
	[STATUS_AUTH_FAILED] = {535, "5.7.8", "Authentication credentials invalid"},
	[STATUS_AUTH_ENCRYPT] = {538, "5.7.11",
				 "Encryption required for requested authentication "
				 "mechanism"},
	[STATUS_AUTH_REQUIRED] = {530, "5.7.0", "Authentication required"},
	[STATUS_AUTH_MECH] = {504, "5.5.4", "Unrecognized authentication type"},
	[STATUS_AUTH_LOCKED] = {454, "4.7.0",
				"Too many failed authentications from this address, "
				"try again later"},
	[STATUS_AUTH_TEMPFAIL] = {454, "4.7.0", "Temporary authentication failure"},
	[STATUS_AUTH_TOO_MANY] = {421, "4.7.0",
				  "Too many failed authentications, closing "
				  "connection"},
	[STATUS_USER_UNKNOWN] = {550, "5.1.1", "Recipient address rejected: user unknown"},
	[STATUS_BAD_MAILBOX] = {553, "5.1.3",
				"Recipient address rejected: not a valid mailbox name"},
	[STATUS_MISCONFIGURED] = {451, "4.3.5",
				  "Recipient address cannot be resolved: local "
				  "configuration error"},
	[STATUS_CONTENT_REFUSED] = {550, "5.7.1", "Message content rejected"},
	[STATUS_CONTENT_TEMPFAIL] = {451, "4.7.1",
				     "Message content not accepted now, try again later"},
	[STATUS_LOOKUP_FAILED] = {451, "4.3.0", "Temporary lookup failure, try again later"},
	[STATUS_SENDER_NOT_OWNED] = {553, "5.7.1",
				     "Sender address not owned by authenticated "
				     "user"},
	[STATUS_CLIENT_SESSIONS] = {421, "4.7.0",
				    "Too many sessions from your address, try again later"},
	[STATUS_CLIENT_CONN_RATE] = {421, "4.7.0",
				     "Too many connections from your address per minute, try "
				     "again later"},
	[STATUS_CLIENT_MSG_RATE] = {451, "4.7.1",
				    "Too many messages from your address per minute, try again "
				    "later"},
	[STATUS_CLIENT_RCPT_RATE] = {452, "4.5.3",
				     "Too many recipients from your address per minute, try "
				     "again later"},
	[STATUS_PREGREET] = {554, "5.5.1", "Protocol error: you spoke before the greeting"},
	[STATUS_DNSBL] = {554, "5.7.1", "Service unavailable; client listed by a DNS blocklist"},
	[STATUS_GREYLISTED] = {450, "4.7.1", "Greylisted, try again later"},
	[STATUS_FCRDNS] = {554, "5.7.25",
			   "Client host rejected: reverse DNS does not confirm your address"},
	[STATUS_HELO_REFUSED] = {550, "5.7.1", "HELO name refused"},
};

/* The name of each status, for metrics labels: the enumerator without its
 * prefix, in lower case. */
static const char *const status_names[STATUS_COUNT] = {
	[STATUS_GREETING] = "greeting",
	[STATUS_EHLO] = "ehlo",
	[STATUS_OK] = "ok",
	[STATUS_SENDER_OK] = "sender_ok",
	[STATUS_RCPT_OK] = "rcpt_ok",
	[STATUS_QUEUED] = "queued",
	[STATUS_CHUNK_OK] = "chunk_ok",
	[STATUS_RESET] = "reset",
	[STATUS_NOOP] = "noop",
	[STATUS_HELP] = "help",
	[STATUS_VRFY] = "vrfy",
	[STATUS_BYE] = "bye",
	[STATUS_START_DATA] = "start_data",
	[STATUS_SHUTDOWN] = "shutdown",
	[STATUS_TIMEOUT] = "timeout",
	[STATUS_TOO_MANY_ERRORS] = "too_many_errors",
	[STATUS_TOO_MANY_SESSIONS] = "too_many_sessions",
	[STATUS_LOCAL_ERROR] = "local_error",
	[STATUS_DISK_FULL] = "disk_full",
	[STATUS_TOO_MANY_RCPTS] = "too_many_rcpts",
	[STATUS_UNKNOWN_CMD] = "unknown_cmd",
	[STATUS_LINE_TOO_LONG] = "line_too_long",
	[STATUS_BAD_CHAR] = "bad_char",
	[STATUS_SYNTAX] = "syntax",
	[STATUS_BAD_ARGS] = "bad_args",
	[STATUS_BAD_PARAM_VALUE] = "bad_param_value",
	[STATUS_BAD_SENDER] = "bad_sender",
	[STATUS_BAD_RCPT] = "bad_rcpt",
	[STATUS_NOT_IMPLEMENTED] = "not_implemented",
	[STATUS_BAD_SEQUENCE] = "bad_sequence",
	[STATUS_NO_RCPTS] = "no_rcpts",
	[STATUS_TOO_BIG] = "too_big",
	[STATUS_SENDER_TOO_LONG] = "sender_too_long",
	[STATUS_RCPT_TOO_LONG] = "rcpt_too_long",
	[STATUS_NON_ASCII] = "non_ascii",
	[STATUS_RELAY_DENIED] = "relay_denied",
	[STATUS_LOOP] = "loop",
	[STATUS_BAD_LINE_ENDING] = "bad_line_ending",
	[STATUS_BAD_CONTENT] = "bad_content",
	[STATUS_DATA_LINE_LONG] = "data_line_long",
	[STATUS_UNKNOWN_PARAM] = "unknown_param",
	[STATUS_TLS_READY] = "tls_ready",
	[STATUS_TLS_UNAVAILABLE] = "tls_unavailable",
	[STATUS_TLS_REQUIRED] = "tls_required",
	[STATUS_AUTH_OK] = "auth_ok",
	[STATUS_AUTH_CHALLENGE] = "auth_challenge",
	[STATUS_AUTH_CANCELLED] = "auth_cancelled",
	[STATUS_AUTH_BAD_BASE64] = "auth_bad_base64",
	[STATUS_AUTH_LINE_TOO_LONG] = "auth_line_too_long",
	[STATUS_AUTH_FAILED] = "auth_failed",
	[STATUS_AUTH_ENCRYPT] = "auth_encrypt",
	[STATUS_AUTH_REQUIRED] = "auth_required",
	[STATUS_AUTH_MECH] = "auth_mech",
	[STATUS_AUTH_LOCKED] = "auth_locked",
	[STATUS_AUTH_TEMPFAIL] = "auth_tempfail",
	[STATUS_AUTH_TOO_MANY] = "auth_too_many",
	[STATUS_SENDER_NOT_OWNED] = "sender_not_owned",
	[STATUS_USER_UNKNOWN] = "user_unknown",
	[STATUS_BAD_MAILBOX] = "bad_mailbox",
	[STATUS_MISCONFIGURED] = "misconfigured",
	[STATUS_CONTENT_REFUSED] = "content_refused",
	[STATUS_CONTENT_TEMPFAIL] = "content_tempfail",
	[STATUS_CLIENT_SESSIONS] = "client_sessions",
	[STATUS_CLIENT_CONN_RATE] = "client_conn_rate",
	[STATUS_CLIENT_MSG_RATE] = "client_msg_rate",
	[STATUS_CLIENT_RCPT_RATE] = "client_rcpt_rate",
	[STATUS_PREGREET] = "pregreet",
	[STATUS_DNSBL] = "dnsbl",
	[STATUS_GREYLISTED] = "greylisted",
	[STATUS_FCRDNS] = "fcrdns",
	[STATUS_HELO_REFUSED] = "helo_refused",
	[STATUS_LOOKUP_FAILED] = "lookup_failed",
};

/* Reply code of a status. */
int status_code(enum status st)
{
	return status_table[st].code;
}

/* Enhanced status code of a status, "" for intermediate replies. */
const char *status_esc(enum status st)
{
	return status_table[st].esc ? status_table[st].esc : "";
}

/* One wire line: "CODE[-| ]ESC TEXT\r\n". */
size_t status_format(char *buf, size_t size, enum status st, const char *text, bool last)
{
	const struct status_def *d = &status_table[st];
	int n;

	if (text == NULL)
		text = d->text;
	if (d->esc)
		n = snprintf(buf, size, "%d%c%s %s\r\n", d->code, last ? ' ' : '-', d->esc, text);
	else
		n = snprintf(buf, size, "%d%c%s\r\n", d->code, last ? ' ' : '-', text);
	if (n < 0 || (size_t)n >= size)
		return 0;
	return (size_t)n;
}

/* The status' name: "relay_denied", "user_unknown" ... */
const char *status_name(enum status st)
{
	if ((unsigned)st >= STATUS_COUNT || status_names[st] == NULL)
		return "unnamed";
	return status_names[st];
}
