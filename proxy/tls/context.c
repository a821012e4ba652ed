#include "tls/context.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/keypolicy.h"
#include "tls/pem.h"
#include "tls/readahead.h"
#include "tls/tickets.h"
#include "tls/tlserr.h"

#ifndef OPENSSL_IS_BORINGSSL
#error "peerproxy must be built against BoringSSL"
#endif

/* TLS 1.2 only: forward secrecy and AEAD, nothing else.  TLS 1.3's suites
 * are fixed by BoringSSL and all qualify. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* Lifetime of a session (ticket or client cache entry).  A resumed session
 * is verified again anyway; this bounds how long a ticket is worth keeping,
 * and a ticket key lives as long (tls/tickets.h). */
#define SESSION_LIFETIME_S PP_TICKETS_ROTATE_S

int
pp_tls_verify(SSL *ssl, struct pp_verdict *v)
{
	return (pp_tls_verify_with(
	    ssl, SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)), v));
}

int
pp_tls_verify_with(SSL *ssl, const struct pp_trust *trust, struct pp_verdict *v)
{
	const STACK_OF(CRYPTO_BUFFER) *bufs = SSL_get0_peer_certificates(ssl);
	STACK_OF(X509) *extra = NULL;
	X509 *leaf = NULL;
	int rc = -1;

	memset(v, 0, sizeof(*v));
	if (bufs == NULL || sk_CRYPTO_BUFFER_num(bufs) == 0) {
		v->reason = PP_R_NO_CERTIFICATE;
		snprintf(v->detail, sizeof(v->detail),
		         "peer sent no certificate");
		goto done;
	}
	if ((extra = sk_X509_new_null()) == NULL)
		goto done;
	for (size_t i = 0; i < sk_CRYPTO_BUFFER_num(bufs); i++) {
		X509 *x =
		    X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(bufs, i));
		if (x == NULL) {
			v->reason = PP_R_UNTRUSTED;
			snprintf(
			    v->detail, sizeof(v->detail),
			    "certificate #%zu sent by the peer does not parse",
			    i + 1);
			goto done;
		}
		if (i == 0)
			leaf = x;
		else if (!sk_X509_push(extra, x)) {
			X509_free(x);
			goto done;
		}
	}
	rc = pp_trust_check(trust, leaf, extra, v);
done:
	if (rc != 0 && v->reason == PP_ACCEPTED) {
		v->reason = PP_R_UNTRUSTED;
		snprintf(v->detail, sizeof(v->detail), "out of memory");
	}
	X509_free(leaf);
	sk_X509_pop_free(extra, X509_free);
	ERR_clear_error();
	return (rc);
}

/*
 * Contexts use TLS_with_buffers_method: BoringSSL keeps every certificate
 * as DER in a CRYPTO_BUFFER and parses none of them, so an idle connection
 * holds no X509 copies of its peer's chain (measured with bench/sslmem:
 * 4.7 KiB instead of 15.7 KiB per server connection, 3.9 instead of 9.5
 * per client).  One process-wide buffer pool shares identical
 * certificates: every connection of a peer points at one copy of its
 * chain.  Our own certificates are kept parsed beside the context for the
 * reports (ex_data, freed with it).
 */
static CRYPTO_BUFFER_POOL *cert_pool;
static int own_index = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

struct own_certs {
	X509 *leaf;
	STACK_OF(X509) * chain;
};

static void
free_own(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl,
         void *argp)
{
	struct own_certs *own = ptr;

	(void)parent;
	(void)ad;
	(void)index;
	(void)argl;
	(void)argp;
	if (own == NULL)
		return;
	X509_free(own->leaf);
	sk_X509_pop_free(own->chain, X509_free);
	free(own);
}

static void
init_once(void)
{
	cert_pool = CRYPTO_BUFFER_POOL_new();
	own_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_own);
}

/* A CRYPTO_BUFFER (from the shared pool) holding ${x}'s DER, or NULL. */
static CRYPTO_BUFFER *
der_buffer_of(X509 *x)
{
	uint8_t *der = NULL;
	int len = i2d_X509(x, &der);
	CRYPTO_BUFFER *b = NULL;

	if (len > 0)
		b = CRYPTO_BUFFER_new(der, (size_t)len, cert_pool);
	OPENSSL_free(der);
	return (b);
}

int
pp_tls_ctx_keep_certs(SSL_CTX *ctx, STACK_OF(X509) * certs)
{
	struct own_certs *own;

	pthread_once(&once, init_once);
	if (own_index < 0 || sk_X509_num(certs) == 0 ||
	    SSL_CTX_get_ex_data(ctx, own_index) != NULL ||
	    (own = calloc(1, sizeof(*own))) == NULL)
		return (-1);
	if (!SSL_CTX_set_ex_data(ctx, own_index, own)) {
		free(own);
		return (-1);
	}
	own->leaf = sk_X509_shift(certs);
	own->chain = certs;
	return (0);
}

static const struct own_certs *
own_of(const SSL_CTX *ctx)
{
	return (own_index >= 0 ? SSL_CTX_get_ex_data(ctx, own_index) : NULL);
}

X509 *
pp_tls_ctx_leaf(const SSL_CTX *ctx)
{
	const struct own_certs *own = own_of(ctx);

	return (own != NULL ? own->leaf : NULL);
}

STACK_OF(X509) * pp_tls_ctx_chain(const SSL_CTX *ctx)
{
	const struct own_certs *own = own_of(ctx);

	return (own != NULL ? own->chain : NULL);
}

/* 1 if ${key} is the private half of ${leaf}'s public key. */
static int
key_matches(X509 *leaf, EVP_PKEY *key)
{
	EVP_PKEY *pub = X509_get_pubkey(leaf);
	int same = pub != NULL && EVP_PKEY_cmp(pub, key) == 1;

	EVP_PKEY_free(pub);
	return (same);
}

/* Serve ${own} (leaf first, then the chain) with ${key}.  Return 0, or -1
 * if memory is short or BoringSSL refuses a certificate. */
static int
set_chain_and_key(SSL_CTX *ctx, STACK_OF(X509) * own, EVP_PKEY *key)
{
	size_t n = sk_X509_num(own);
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
	CRYPTO_BUFFER **bufs = calloc(n, sizeof(*bufs));
	int ok = bufs != NULL;

	for (size_t i = 0; ok && i < n; i++)
		ok = (bufs[i] = der_buffer_of(sk_X509_value(own, i))) != NULL;
	ok = ok && SSL_CTX_set_chain_and_key(ctx, bufs, n, key, NULL);
	for (size_t i = 0; bufs != NULL && i < n; i++)
		CRYPTO_BUFFER_free(bufs[i]);
	free(bufs);
	return (ok ? 0 : -1);
}

/* Name ${anchors} in the CertificateRequest, so clients holding several
 * identities pick the right one.  Return 0, or -1. */
static int
set_client_cas(SSL_CTX *ctx, STACK_OF(X509) * anchors)
{
	STACK_OF(CRYPTO_BUFFER) *names = sk_CRYPTO_BUFFER_new_null();

	if (names == NULL)
		return (-1);
	for (size_t i = 0; i < sk_X509_num(anchors); i++) {
		uint8_t *der = NULL;
		int len = i2d_X509_NAME(
		    X509_get_subject_name(sk_X509_value(anchors, i)), &der);
		CRYPTO_BUFFER *b =
		    len > 0 ? CRYPTO_BUFFER_new(der, (size_t)len, cert_pool)
		            : NULL;
		OPENSSL_free(der);
		if (b == NULL || !sk_CRYPTO_BUFFER_push(names, b)) {
			CRYPTO_BUFFER_free(b);
			sk_CRYPTO_BUFFER_pop_free(names, CRYPTO_BUFFER_free);
			return (-1);
		}
	}
	SSL_CTX_set0_client_CAs(ctx, names);
	return (0);
}

static enum ssl_verify_result_t
verify_peer(SSL *ssl, uint8_t *out_alert)
{
	struct pp_tls_conn *c = SSL_get_app_data(ssl);

	if (pp_tls_verify(ssl, &c->verdict) == 0)
		return (ssl_verify_ok);
	*out_alert = pp_refusal_alert(c->verdict.reason);
	return (ssl_verify_invalid);
}

/* A client learned a new session (TLS 1.3: after the handshake): hand it to
 * the connection's owner for the next connection to the same target. */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct pp_tls_conn *c = SSL_get_app_data(ssl);

	if (c == NULL || c->keep_session == NULL)
		return (0);
	c->keep_session(c, sess);
	return (1); /* the owner took the reference */
}

SSL_CTX *
pp_tls_ctx_new(const struct pp_tls_params *p, char *err, size_t errlen)
{
	STACK_OF(X509) *certs = NULL, *chain = NULL;
	size_t nsigalgs;
	const uint16_t *sigalgs = pp_keypolicy_sigalgs(&nsigalgs);
	EVP_PKEY *key = NULL;
	SSL_CTX *ctx;

	pthread_once(&once, init_once);
	if (cert_pool == NULL || own_index < 0 ||
	    (ctx = SSL_CTX_new(TLS_with_buffers_method())) == NULL) {
		snprintf(err, errlen, "out of memory (TLS context)");
		ERR_clear_error();
		return (NULL);
	}
	SSL_CTX_set0_buffer_pool(ctx, cert_pool);
	if (!SSL_CTX_set_min_proto_version(ctx, (uint16_t)p->min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_strict_cipher_list(ctx, tls12_ciphers) ||
	    !SSL_CTX_set1_curves_list(ctx, "X25519:P-256:P-384") ||
	    !SSL_CTX_set_verify_algorithm_prefs(ctx, sigalgs, nsigalgs))
		goto oom;
	/* The key first: a weak leaf is named by its key file. */
	if ((key = pp_pem_load_key(p->key_file, err, errlen)) == NULL)
		goto err1;
	if ((certs = pp_pem_load_certs(p->cert_file, err, errlen)) == NULL ||
	    pp_keypolicy_check_file(certs, p->cert_file, err, errlen) != 0)
		goto err1;
	if (p->chain_file != NULL &&
	    ((chain = pp_pem_load_certs(p->chain_file, err, errlen)) == NULL ||
	     pp_keypolicy_check_file(chain, p->chain_file, err, errlen) != 0))
		goto err1;
	/* The served chain: the file's certificates, then --chain's. */
	while (chain != NULL && sk_X509_num(chain) > 0) {
		X509 *x = sk_X509_shift(chain);
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			goto oom;
		}
	}
	errno = 0;
	if (!key_matches(sk_X509_value(certs, 0), key)) {
		if (pp_tls_lacked_memory())
			goto oom;
		snprintf(err, errlen,
		         "%s: private key does not match the certificate in %s",
		         p->key_file, p->cert_file);
		goto err1;
	}
	errno = 0;
	if (set_chain_and_key(ctx, certs, key) != 0)
		goto badcert;
	if (pp_tls_ctx_keep_certs(ctx, certs) != 0)
		goto oom;
	certs = NULL; /* the context's now */
	/* Resumption skips the certificate exchange; the tunnel verifies a
	 * resumed session's chain again (pp_tls_verify), so a peer removed or
	 * deactivated meanwhile is still refused. */
	SSL_CTX_set_timeout(ctx, SESSION_LIFETIME_S);
	SSL_CTX_set_session_psk_dhe_timeout(ctx, SESSION_LIFETIME_S);
	if (!p->session_resumption) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	} else if (p->server) {
		/* Stateless tickets only, sealed with the tunnel's keys when
		 * it has them (they outlive this context: tls/tickets.h), else
		 * with keys BoringSSL makes and rotates for this context. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_session_id_context(ctx,
		                               (const uint8_t *)"peerproxy", 9);
		if (p->tickets != NULL &&
		    pp_tickets_attach(ctx, p->tickets) != 0)
			goto oom;
	} else {
		SSL_CTX_set_session_cache_mode(
		    ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
		SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	}
	SSL_CTX_set_app_data(ctx, p->trust);
	if (p->server) {
		SSL_CTX_set_custom_verify(
		    ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		    verify_peer);
		if (set_client_cas(ctx, pp_trust_anchors(p->trust)) != 0)
			goto oom;
	} else {
		SSL_CTX_set_custom_verify(ctx, SSL_VERIFY_PEER, verify_peer);
	}
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	return (ctx);

badcert:
	if (pp_tls_lacked_memory())
		goto oom;
	snprintf(err, errlen, "%s: certificate cannot be used", p->cert_file);
	goto err1;
oom:
	snprintf(err, errlen, "out of memory (TLS context)");
err1:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return (NULL);
}

int
pp_tls_version_parse(const char *s, int *out)
{
	if (strcmp(s, "1.3") == 0)
		*out = TLS1_3_VERSION;
	else if (strcmp(s, "1.2") == 0)
		*out = TLS1_2_VERSION;
	else
		return (-1);
	return (0);
}

SSL *
pp_tls_ssl_new(SSL_CTX *ctx, int fd, struct pp_bufpool *pool,
               struct pp_tls_conn *c)
{
	SSL *ssl;
	BIO *bio;

	if ((ssl = SSL_new(ctx)) == NULL)
		return (NULL);
	if ((bio = pp_readahead_new(fd, pool)) == NULL) {
		SSL_free(ssl);
		return (NULL);
	}
	SSL_set_bio(ssl, bio, bio); /* one reference, now the SSL's */
	SSL_set_app_data(ssl, c);
	if (c->offer != NULL)
		SSL_set_session(ssl, c->offer);
	return (ssl);
}

long long
pp_tls_leaf_not_after(SSL_CTX *ctx)
{
	X509 *leaf = pp_tls_ctx_leaf(ctx);
	ASN1_TIME *epoch;
	int days, secs;

	if (leaf == NULL || (epoch = ASN1_TIME_set(NULL, 0)) == NULL)
		return (0);
	if (!ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(leaf)))
		days = secs = 0;
	ASN1_TIME_free(epoch);
	return ((long long)days * 86400 + secs);
}

void
pp_tls_error_text(char *buf, size_t len)
{
	uint32_t e = ERR_get_error();

	buf[0] = '\0';
	if (e != 0)
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}
