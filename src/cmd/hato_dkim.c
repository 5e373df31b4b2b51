/*
 * hato_dkim.c - `hato dkim keygen` and `hato dkim check`.
 *
 * keygen makes a key pair (Ed25519 by default; RSA of --bits, 2048 by
 * default, never under 1024), writes the private key as PEM with mode
 * 0600 to --key FILE or STATE/dkim/DOMAIN.SELECTOR.key, never over an
 * existing file, gives it to hatod's user when run as root, and prints the
 * [dkim] section to paste into hato.conf and the TXT record to publish.
 *
 * check looks up SELECTOR._domainkey.DOMAIN (the [dns] servers, blocking)
 * and compares the record's key with the private key of the [dkim]
 * section for DOMAIN and SELECTOR (or --key FILE).  Exit 0: match; 1: the
 * record is there but holds another key, or none that parses; 69: no
 * record; 75: the DNS failed.
 *
 * verify reads a message on stdin (at most message_size_max octets) and
 * verifies every DKIM signature in it with the keys the [dns] servers
 * give, one line per signature; exit 0 when there is at least one and
 * every one passes, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "dkim.h"
#include "dkim_key.h"
#include "dkim_verify.h"
#include "hato_cli.h"
#include "mx.h"
#include "strbuf.h"
#include "util.h"

#define DKIM_RSA_BITS_DEFAULT 2048
#define TXT_STRING_MAX 255 /* octets of one DNS character-string */
#define KEY_PATH_MAX 4096

/* One-line usage of `hato dkim`, as an error. */
static int dkim_usage(void)
{
	fprintf(stderr, "hato: usage: hato [-c FILE] dkim keygen DOMAIN SELECTOR [--algorithm "
			"ed25519|rsa] [--bits N] [--key FILE] | dkim check DOMAIN SELECTOR "
			"[--key FILE] | dkim verify < MESSAGE\n");
	return EX_USAGE;
}

/* The options after DOMAIN SELECTOR. */
struct dkim_opts {
	const char *domain, *selector, *key;
	enum dkim_keytype type;
	unsigned bits;
};

/* Parse argv (argv[0] "keygen" or "check"); false on a usage error. */
static bool dkim_args(int argc, char **argv, bool keygen, struct dkim_opts *o)
{
	uint64_t bits;
	int pos = 0;

	memset(o, 0, sizeof(*o));
	o->type = DKIM_KEY_ED25519;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--key") == 0 && i + 1 < argc) {
			o->key = argv[++i];
		} else if (keygen && strcmp(a, "--algorithm") == 0 && i + 1 < argc) {
			a = argv[++i];
			if (strcmp(a, "rsa") == 0 || strcmp(a, "rsa-sha256") == 0)
				o->type = DKIM_KEY_RSA;
			else if (strcmp(a, "ed25519") != 0 && strcmp(a, "ed25519-sha256") != 0)
				return false;
		} else if (keygen && strcmp(a, "--bits") == 0 && i + 1 < argc) {
			if (!parse_u64(argv[++i], 1, 1u << 20, &bits))
				return false;
			o->bits = (unsigned)bits;
		} else if (a[0] == '-' || pos == 2) {
			return false;
		} else if (pos++ == 0) {
			o->domain = a;
		} else {
			o->selector = a;
		}
	}
	if (pos != 2)
		return false;
	if (o->bits != 0 && o->type != DKIM_KEY_RSA)
		return false; /* --bits is for RSA */
	return true;
}

/* Are DOMAIN and SELECTOR well-formed?  Says why on stderr when not. */
static bool names_ok(const struct dkim_opts *o)
{
	if (!addr_valid_domain(o->domain, strlen(o->domain))) {
		fprintf(stderr, "hato: dkim: \"%s\" is not a domain\n", o->domain);
		return false;
	}
	if (!conf_dkim_selector_valid(o->selector)) {
		fprintf(stderr, "hato: dkim: \"%s\" is not a selector (letters, digits, - and _)\n",
			o->selector);
		return false;
	}
	return true;
}

/* Print record as a zone file TXT record, in strings of at most 255 octets. */
static void print_txt(const struct dkim_opts *o, const char *record)
{
	size_t len = strlen(record);

	printf("%s._domainkey.%s. IN TXT (", o->selector, o->domain);
	for (size_t i = 0; i < len; i += TXT_STRING_MAX)
		printf(" \"%.*s\"", (int)(len - i < TXT_STRING_MAX ? len - i : TXT_STRING_MAX),
		       record + i);
	printf(" )\n");
}

/* The default key file: STATE/dkim/DOMAIN.SELECTOR.key, its folder made. */
static int default_key_path(const struct conf *c, const struct dkim_opts *o, char *path,
			    size_t size)
{
	char dir[KEY_PATH_MAX];
	int rc = prepare_state_dir(c);

	if (rc != 0)
		return rc;
	if (!xsnprintf_ok(dir, sizeof(dir), "%s/dkim", c->state_dir) ||
	    !xsnprintf_ok(path, size, "%s/%s.%s.key", dir, o->domain, o->selector)) {
		fprintf(stderr, "hato: dkim: the key's file name is too long\n");
		return EX_SOFTWARE;
	}
	if (mkdir(dir, 0700) == 0)
		return give_to_daemon(c, dir);
	if (errno != EEXIST) {
		fprintf(stderr, "hato: dkim: cannot create %s: %s\n", dir, strerror(errno));
		return users_exit_code(errno, EX_CANTCREAT);
	}
	return 0;
}

/* Write key to a new file at path, mode 0600, durably; 0 or an exit code. */
static int write_key(const struct conf *c, EVP_PKEY *key, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	bool ok;

	if (fd < 0) {
		int e = errno;

		fprintf(stderr, "hato: dkim: cannot create %s: %s%s\n", path, strerror(e),
			e == EEXIST ? " (a key is never overwritten)" : "");
		return users_exit_code(e, EX_CANTCREAT);
	}
	ok = fchmod(fd, 0600) == 0 && dkim_privkey_write(key, fd) && fsync(fd) == 0;
	if (close(fd) != 0)
		ok = false;
	if (!ok) {
		fprintf(stderr, "hato: dkim: cannot write %s: %s\n", path, strerror(errno));
		unlink(path);
		return EX_IOERR;
	}
	return give_to_daemon(c, path);
}

/* hato dkim keygen DOMAIN SELECTOR [...]. */
static int dkim_keygen_cmd(const struct conf *c, int argc, char **argv)
{
	struct dkim_opts o;
	char path[KEY_PATH_MAX], why[256];
	struct strbuf rec;
	EVP_PKEY *key;
	int rc;

	if (!dkim_args(argc, argv, true, &o))
		return dkim_usage();
	if (!names_ok(&o))
		return EX_USAGE;
	if (o.type == DKIM_KEY_RSA && o.bits == 0)
		o.bits = DKIM_RSA_BITS_DEFAULT;
	if (o.type == DKIM_KEY_RSA && (o.bits < DKIM_RSA_BITS_MIN || o.bits > DKIM_RSA_BITS_MAX)) {
		fprintf(stderr, "hato: dkim: an RSA key needs %d to %d bits (RFC 8301), not %u\n",
			DKIM_RSA_BITS_MIN, DKIM_RSA_BITS_MAX, o.bits);
		return EX_USAGE;
	}
	if (o.key != NULL) {
		if (!strcpy_bounded(path, o.key, sizeof(path)))
			return dkim_usage();
	} else if ((rc = default_key_path(c, &o, path, sizeof(path))) != 0) {
		return rc;
	}
	key = dkim_keygen(o.type, o.bits, why, sizeof(why));
	if (key == NULL) {
		fprintf(stderr, "hato: dkim: %s\n", why);
		return EX_SOFTWARE;
	}
	strbuf_init(&rec);
	rc = write_key(c, key, path);
	if (rc == 0 && !dkim_record_format(key, &rec)) {
		fprintf(stderr, "hato: dkim: cannot format the public key\n");
		rc = EX_SOFTWARE;
	}
	if (rc == 0) {
		printf("# hato.conf: sign mail from %s (and its subdomains) with this key\n"
		       "[dkim %s.%s]\ndomain = %s\nselector = %s\nkey = %s\nalgorithm = %s\n\n"
		       "# DNS: publish this record in the zone of %s\n",
		       o.domain, o.selector, o.domain, o.domain, o.selector, path,
		       o.type == DKIM_KEY_RSA ? "rsa-sha256" : "ed25519-sha256", o.domain);
		print_txt(&o, rec.s);
	}
	strbuf_free(&rec);
	EVP_PKEY_free(key);
	if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		rc = EX_IOERR;
	return rc;
}

/* The key path and algorithm of the [dkim] section for domain and selector. */
static const struct dkim_conf *dkim_section(const struct conf *c, const struct dkim_opts *o)
{
	for (size_t i = 0; i < c->ndkim; i++)
		if (strcasecmp(c->dkim[i].domain, o->domain) == 0 &&
		    strcmp(c->dkim[i].selector, o->selector) == 0)
			return &c->dkim[i];
	return NULL;
}

/* Load the private key to compare: --key FILE, else the [dkim] section's. */
static EVP_PKEY *check_key(const struct conf *c, const struct dkim_opts *o)
{
	const struct dkim_conf *d = dkim_section(c, o);
	char why[512];
	EVP_PKEY *k;

	if (o->key == NULL && d == NULL) {
		fprintf(stderr,
			"hato: dkim: no [dkim] section with domain = %s and selector = %s "
			"(or give --key FILE)\n",
			o->domain, o->selector);
		return NULL;
	}
	k = dkim_privkey_read(o->key != NULL ? o->key : d->key, why, sizeof(why));
	if (k == NULL)
		fprintf(stderr, "hato: dkim: %s\n", why);
	return k;
}

/* hato dkim check DOMAIN SELECTOR [--key FILE]. */
static int dkim_check_cmd(const struct conf *c, int argc, char **argv)
{
	struct dns_opts dns = {c->dns_servers, c->dns_timeout_ms, c->dns_tries};
	struct delivery_result res;
	struct dkim_opts o;
	struct dkim_pubkey pub;
	char name[DKIM_DOMAIN_MAX + 80], why[256], *txt;
	size_t len;
	struct strbuf want;
	EVP_PKEY *key;
	enum outcome out;
	int rc;

	if (!dkim_args(argc, argv, false, &o))
		return dkim_usage();
	if (!names_ok(&o))
		return EX_USAGE;
	if ((key = check_key(c, &o)) == NULL)
		return EX_CONFIG;
	snprintf(name, sizeof(name), "%s._domainkey.%s", o.selector, o.domain);
	txt = xmalloc(DKIM_KEY_RECORD_MAX + 1);
	out = txt_lookup(&dns, name, txt, DKIM_KEY_RECORD_MAX + 1, &len, &res);
	strbuf_init(&want);
	dkim_record_format(key, &want);
	if (out == OUTCOME_TEMPFAIL) {
		printf("dns failure: %s\n", res.text);
		rc = EX_TEMPFAIL;
	} else if (out != OUTCOME_DELIVERED) {
		printf("no record: %s\npublish: %s\n", res.text, want.s);
		rc = EX_UNAVAILABLE;
	} else if (!dkim_pubkey_parse(txt, len, &pub, why, sizeof(why))) {
		printf("mismatch: %s: the record is unusable: %s\npublish: %s\n", name, why,
		       want.s);
		rc = 1;
	} else {
		bool same = dkim_key_matches(pub.pkey, key);

		if (same)
			printf("match: %s publishes this key (%s%s)\n", name,
			       pub.type == DKIM_KEY_RSA ? "rsa" : "ed25519",
			       pub.testing ? ", testing: t=y" : "");
		else
			printf("mismatch: %s publishes another key\npublish: %s\n", name, want.s);
		rc = same ? 0 : 1;
		dkim_pubkey_free(&pub);
	}
	strbuf_free(&want);
	free(txt);
	EVP_PKEY_free(key);
	return rc;
}

/* dkim_verify_message's key lookup: a blocking TXT query. */
static enum dkim_key_status verify_lookup(void *arg, const char *name, char *text, size_t size,
					  size_t *len)
{
	struct delivery_result res;

	switch (txt_lookup(arg, name, text, size, len, &res)) {
	case OUTCOME_DELIVERED:
		return DKIM_KEY_FOUND;
	case OUTCOME_PERMFAIL:
		return DKIM_KEY_MISSING;
	default:
		return DKIM_KEY_TEMPFAIL;
	}
}

/* hato dkim verify < MESSAGE. */
static int dkim_verify_cmd(const struct conf *c, int argc)
{
	struct dns_opts dns = {c->dns_servers, c->dns_timeout_ms, c->dns_tries};
	struct strbuf msg;
	struct dkim_verify *v;
	char buf[65536];
	size_t n, count;
	bool all = true;

	if (argc != 1)
		return dkim_usage();
	strbuf_init(&msg);
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		if (msg.len + n > c->limits.message_size_max) {
			fprintf(stderr,
				"hato: dkim: the message is larger than message_size_max\n");
			strbuf_free(&msg);
			return EX_DATAERR;
		}
		strbuf_add(&msg, buf, n);
	}
	if (ferror(stdin)) {
		fprintf(stderr, "hato: dkim: cannot read the message: %s\n", strerror(errno));
		strbuf_free(&msg);
		return EX_IOERR;
	}
	v = dkim_verify_message(msg.s, msg.len, verify_lookup, &dns, time(NULL));
	count = dkim_verify_count(v);
	if (count == 0)
		printf("none: no DKIM signature\n");
	for (size_t i = 0; i < count; i++) {
		const struct dkim_sig_result *r = dkim_verify_result(v, i);

		printf("%s d=%s s=%s a=%s header.b=%s%s (%s)\n", dkim_result_name(r->result), r->d,
		       r->s, r->a, r->b, r->testing ? " testing" : "", r->reason);
		all = all && r->result == DKIM_RESULT_PASS;
	}
	dkim_verify_free(v);
	strbuf_free(&msg);
	return count > 0 && all ? 0 : 1;
}

/* See hato_cli.h. */
int cmd_dkim(const struct conf *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return dkim_keygen_cmd(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return dkim_check_cmd(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return dkim_verify_cmd(c, argc - 1);
	return dkim_usage();
}
