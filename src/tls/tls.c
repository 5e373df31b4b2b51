/*
 * tls.c - OpenSSL server contexts: load or generate certificates, policy
 * (TLS 1.2+, forward-secret AEAD ciphers), SNI selection and reload.
 */
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include "conf.h"
#include "durable.h"
#include "log.h"
#include "util.h"

#define SELFSIGNED_DAYS 3650

/* Every context one configuration needs; replaced whole on reload. */
struct tls_set {
	SSL_CTX **listener; /* per conf->listeners[i]; NULL where tls = none */
	size_t nlisteners;
	SSL_CTX **sni; /* [certificate NAME] sections, matched by SNI */
	size_t nsni;
};

static struct {
	const struct conf *conf;
	char *selfsigned_cert; /* paths of the generated pair, when used */
	char *selfsigned_key;
	struct tls_set *cur;
} tls;

/* Text of an OpenSSL error code. */
const char *tls_error_text(unsigned long code, char *buf, size_t size)
{
	if (code == 0) {
		strcpy_bounded(buf, "", size);
		return buf;
	}
	ERR_error_string_n(code, buf, size);
	return buf;
}

/* The last OpenSSL error, or errno's text, for a message. */
static const char *last_error(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		return strcpy_bounded(buf, strerror(errno), size), buf;
	tls_error_text(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* SHA-256 fingerprint "AB:CD:..." of a certificate. */
static void fingerprint(X509 *x, char *out, size_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	size_t o = 0;

	out[0] = '\0';
	if (!X509_digest(x, EVP_sha256(), md, &len))
		return;
	for (unsigned int i = 0; i < len && o + 4 <= size; i++)
		o += (size_t)snprintf(out + o, size - o, i ? ":%02X" : "%02X", md[i]);
}

/* SNI: switch to the [certificate] whose names match the client's. */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	struct tls_set *set = tls.cur;

	(void)alert;
	(void)arg;
	if (name == NULL || set == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < set->nsni; i++) {
		X509 *x = SSL_CTX_get0_certificate(set->sni[i]);
		if (x && X509_check_host(x, name, 0, 0, NULL) == 1) {
			SSL_set_SSL_CTX(ssl, set->sni[i]);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* A server context with hato's policy and one certificate chain. */
static SSL_CTX *ctx_new(const struct conf *c, const char *cert, const char *key, char *err,
			size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char e[256];

	if (ctx == NULL) {
		snprintf(err, errsz, "TLS context: %s", last_error(e, sizeof(e)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(
		ctx, strcmp(c->tls_min_version, "TLSv1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"hato", 4);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	if (SSL_CTX_set_cipher_list(ctx, c->tls_ciphers) != 1) {
		snprintf(err, errsz, "tls_ciphers \"%s\": %s", c->tls_ciphers,
			 last_error(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_set_ciphersuites(ctx, c->tls_ciphersuites) != 1) {
		snprintf(err, errsz, "tls_ciphersuites \"%s\": %s", c->tls_ciphersuites,
			 last_error(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errsz, "certificate %s: %s", cert, last_error(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errsz, "key %s: %s", key, last_error(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errsz, "key %s does not match certificate %s", key, cert);
		goto fail;
	}
	{
		char fp[128];
		fingerprint(SSL_CTX_get0_certificate(ctx), fp, sizeof(fp));
		log_info("event=tls_certificate file=%s sha256=%s", cert, fp);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Write a PEM object durably with mode 0600 and the daemon user as owner. */
static bool write_pem(const char *dir, const char *name, BIO *bio, uid_t uid, gid_t gid)
{
	char *data, path[4096];
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0 || !durable_write_file(dir, name, data, (size_t)len))
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return uid == (uid_t)-1 || chown(path, uid, gid) == 0;
}

/* Add one X509v3 extension from its config text. */
static bool add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	bool ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return false;
	ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* Make a self-signed ECDSA P-256 certificate for hostname in dir. */
static bool generate_selfsigned(const char *dir, const char *hostname, uid_t uid, gid_t gid,
				char *err, size_t errsz)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *kbio = BIO_new(BIO_s_mem()), *cbio = BIO_new(BIO_s_mem());
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char san[512], e[256];
	bool ok = false;

	if (pkey == NULL || x == NULL || kbio == NULL || cbio == NULL ||
	    RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	if (bn == NULL || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_set_version(x, 2) || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)SELFSIGNED_DAYS * 86400) ||
	    !X509_set_pubkey(x, pkey) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
					(const unsigned char *)hostname, -1, -1, 0) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(x)) ||
	    !add_ext(x, NID_subject_alt_name, san) ||
	    !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
	    !add_ext(x, NID_ext_key_usage, "serverAuth") || !X509_sign(x, pkey, EVP_sha256()) ||
	    !PEM_write_bio_PrivateKey(kbio, pkey, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cbio, x))
		goto out;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		goto out;
	if (uid != (uid_t)-1 && chown(dir, uid, gid) != 0)
		goto out;
	if (!write_pem(dir, "selfsigned.key", kbio, uid, gid) ||
	    !write_pem(dir, "selfsigned.crt", cbio, uid, gid))
		goto out;
	ok = true;
	log_info("event=tls_selfsigned_generated dir=%s hostname=%s", dir, hostname);
out:
	if (!ok)
		snprintf(err, errsz, "cannot generate a self-signed certificate in %s: %s", dir,
			 last_error(e, sizeof(e)));
	BN_free(bn);
	BIO_free(kbio);
	BIO_free(cbio);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ok;
}

/* Free a set; sessions keep their own references to the contexts. */
static void set_free(struct tls_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->nlisteners; i++)
		SSL_CTX_free(set->listener[i]);
	for (size_t i = 0; i < set->nsni; i++)
		SSL_CTX_free(set->sni[i]);
	free(set->listener);
	free(set->sni);
	free(set);
}

/* Build every context of the configuration c; NULL with err on failure. */
static struct tls_set *set_load(const struct conf *c, char *err, size_t errsz)
{
	struct tls_set *set = xcalloc(1, sizeof(*set));
	const char *dcert = c->tls_cert ? c->tls_cert : tls.selfsigned_cert;
	const char *dkey = c->tls_key ? c->tls_key : tls.selfsigned_key;
	SSL_CTX *def = NULL;

	set->nlisteners = c->nlisteners;
	set->listener = xcalloc(c->nlisteners, sizeof(SSL_CTX *));
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct listener_conf *l = &c->listeners[i];
		if (l->tls == TLS_MODE_NONE)
			continue;
		if (l->tls_cert) {
			set->listener[i] = ctx_new(c, l->tls_cert, l->tls_key, err, errsz);
		} else {
			if (def == NULL && (def = ctx_new(c, dcert, dkey, err, errsz)) == NULL)
				goto fail;
			SSL_CTX_up_ref(def);
			set->listener[i] = def;
		}
		if (set->listener[i] == NULL)
			goto fail;
	}
	set->sni = xcalloc(c->ncerts ? c->ncerts : 1, sizeof(SSL_CTX *));
	for (size_t i = 0; i < c->ncerts; i++) {
		if ((set->sni[i] = ctx_new(c, c->certs[i].cert, c->certs[i].key, err, errsz)) ==
		    NULL)
			goto fail;
		set->nsni++;
	}
	SSL_CTX_free(def); /* the listeners hold their references */
	return set;
fail:
	SSL_CTX_free(def);
	set_free(set);
	return NULL;
}

/* Does any listener use TLS with the server's default certificate? */
static bool needs_selfsigned(const struct conf *c)
{
	if (c->tls_cert)
		return false;
	for (size_t i = 0; i < c->nlisteners; i++)
		if (c->listeners[i].tls != TLS_MODE_NONE && c->listeners[i].tls_cert == NULL)
			return true;
	return false;
}

/* The self-signed pair in STATE/tls, made when missing, for a configuration
 * whose listeners need the server's certificate and name none. */
static bool selfsigned_prepare(const struct conf *c, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	size_t n;
	char *dir;
	bool ok = true;

	if (!needs_selfsigned(c))
		return true;
	n = strlen(c->state_dir) + 32;
	dir = xmalloc(n);
	snprintf(dir, n, "%s/tls", c->state_dir);
	if (tls.selfsigned_cert == NULL) { /* state_dir does not change (conf_reload) */
		tls.selfsigned_cert = xmalloc(n + 16);
		tls.selfsigned_key = xmalloc(n + 16);
		snprintf(tls.selfsigned_cert, n + 16, "%s/selfsigned.crt", dir);
		snprintf(tls.selfsigned_key, n + 16, "%s/selfsigned.key", dir);
	}
	if (access(tls.selfsigned_cert, R_OK) != 0 || access(tls.selfsigned_key, R_OK) != 0)
		ok = generate_selfsigned(dir, c->hostname, uid, gid, err, errsz);
	free(dir);
	return ok;
}

/* See tls.h. */
bool tls_init(const struct conf *c, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	if (!selfsigned_prepare(c, uid, gid, err, errsz))
		return false;
	tls.cur = set_load(c, err, errsz);
	if (tls.cur == NULL)
		return false;
	tls.conf = conf_hold(c);
	return true;
}

/* See tls.h. */
bool tls_reload(const struct conf *c, char *err, size_t errsz)
{
	struct tls_set *set;

	if (!selfsigned_prepare(c, (uid_t)-1, (gid_t)-1, err, errsz))
		return false;
	set = set_load(c, err, errsz);
	if (set == NULL)
		return false;
	set_free(tls.cur);
	tls.cur = set;
	conf_free(tls.conf);
	tls.conf = conf_hold(c);
	return true;
}

/* See tls.h. */
SSL *tls_new_ssl(const struct listener_conf *lc)
{
	const struct conf *c = tls.conf;

	/* by name: a session that began before a reload has its own copy of
	 * the listener's configuration, and gets the certificate in use now */
	for (size_t i = 0; tls.cur && i < c->nlisteners; i++)
		if (strcmp(c->listeners[i].name, lc->name) == 0 && tls.cur->listener[i])
			return SSL_new(tls.cur->listener[i]);
	return NULL;
}

/* See tls.h. */
bool tls_handshake_done(SSL *ssl)
{
	return SSL_is_init_finished(ssl);
}

/* See tls.h. */
const char *tls_version(SSL *ssl)
{
	return SSL_get_version(ssl);
}

/* See tls.h. */
const char *tls_cipher(SSL *ssl)
{
	return SSL_get_cipher_name(ssl);
}

/* See tls.h. */
void tls_shutdown(void)
{
	set_free(tls.cur);
	tls.cur = NULL;
	conf_free(tls.conf);
	tls.conf = NULL;
	free(tls.selfsigned_cert);
	free(tls.selfsigned_key);
	tls.selfsigned_cert = tls.selfsigned_key = NULL;
}
