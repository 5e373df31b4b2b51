/*
 * auth_results.h - the Authentication-Results: header field (RFC 8601):
 * ours, written from the checks' results, and a test of whether a field
 * found in a message claims our authserv-id.
 */
#ifndef HATO_AUTH_RESULTS_H
#define HATO_AUTH_RESULTS_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim_verify.h"
#include "dmarc.h"
#include "spf.h"
#include "strbuf.h"

struct auth_results {
	const char *authserv_id; /* the [server] hostname */
	bool spf_on;
	enum spf_result spf;
	bool spf_helo;            /* the HELO name was checked (null sender) */
	const char *spf_identity; /* the sender address, or the HELO name */
	bool dkim_on;
	const struct dkim_verify *dkim; /* decided; NULL: none looked at */
	bool dmarc_on;
	const struct dmarc *dmarc;
};

/* The field's value (after "Authentication-Results:"), one result per
 * line: "mx.example.org;\n\tspf=pass smtp.mailfrom=a@example.com;\n\t..."
 * Lines end in LF (intake_header_insert makes them CRLF); a method that
 * did not run says "none". */
void auth_results_format(const struct auth_results *ar, struct strbuf *out);

/* Does the value v[0..len) of an Authentication-Results: field name id as
 * its authserv-id (ASCII case ignored, comments skipped)? */
bool auth_results_ours(const char *v, size_t len, const char *id);

#endif
