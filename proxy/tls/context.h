#ifndef PP_CONTEXT_H
#define PP_CONTEXT_H

/*
 * TLS contexts: our certificate chain and key, protocol versions, ciphers,
 * and chain verification handed to a pp_trust policy.  A context is built
 * once per tunnel configuration and shared read-only by every worker.
 */

#include <stddef.h>

#include <openssl/base.h>

#include "tls/trust.h"

struct pp_bufpool;
struct pp_tickets;

struct pp_tls_params {
	const char *cert_file;  /* leaf, optionally followed by more */
	const char *chain_file; /* NULL, or certificates sent after them */
	const char *key_file;
	int min_version;         /* TLS1_2_VERSION or TLS1_3_VERSION */
	int server;              /* 1: accept TLS (inbound) */
	const char *server_name; /* client: SNI; NULL for none */
	int session_resumption;  /* server: issue tickets; client: offer them */
	struct pp_trust *trust;  /* borrowed; must outlive the context */
	/* server, with session_resumption: the tunnel's ticket keys (kept
	 * across reloads: tls/tickets.h); NULL: keys of the context's own */
	struct pp_tickets *tickets;
};

/* pp_tls_ctx_new(p, err, errlen): build a context from ${p}, checking that
 * the key matches the leaf.  A server context demands a client
 * certificate.  Return NULL with the reason (naming the file) in ${err}. */
SSL_CTX *pp_tls_ctx_new(const struct pp_tls_params *p, char *err,
                        size_t errlen);

/* Per-connection TLS state the owner keeps for the life of the SSL. */
struct pp_tls_conn {
	struct pp_verdict verdict; /* written during the handshake */
	/* Client resumption: the session to offer (borrowed; NULL for none),
	 * and what to do with each new session the server sends (takes the
	 * reference; NULL to ignore them). */
	SSL_SESSION *offer;
	void (*keep_session)(struct pp_tls_conn *c, SSL_SESSION *sess);
};

/* pp_tls_version_parse(s, out): parse "1.2" or "1.3" into the protocol
 * version ${out}.  Return 0, or -1. */
int pp_tls_version_parse(const char *s, int *out);

/* pp_tls_ssl_new(ctx, fd, pool, c): a connection on socket ${fd} using ${c}
 * (which must outlive it), reading ahead through buffers of ${pool} (see
 * tls/readahead.h; the pool's thread only); a client offers c->offer if
 * set. */
SSL *pp_tls_ssl_new(SSL_CTX *ctx, int fd, struct pp_bufpool *pool,
                    struct pp_tls_conn *c);

/* pp_tls_verify(ssl, v): run the context's trust policy on the peer chain
 * of ${ssl} (also of a resumed session), filling ${v}.  Return 0 if
 * accepted, -1 if refused. */
int pp_tls_verify(SSL *ssl, struct pp_verdict *v);

/* pp_tls_verify_with(ssl, trust, v): as pp_tls_verify, under the policy
 * ${trust} instead of the context's (a reloaded configuration's). */
int pp_tls_verify_with(SSL *ssl, const struct pp_trust *trust,
                       struct pp_verdict *v);

/* pp_tls_ctx_keep_certs(ctx, certs): record ${certs} (our leaf first, then
 * the chain sent with it) as what ${ctx} serves, for pp_tls_ctx_leaf and
 * pp_tls_ctx_chain; on success the context owns them.  Once per context
 * (pp_tls_ctx_new does it).  Return 0, or -1. */
int pp_tls_ctx_keep_certs(SSL_CTX *ctx, STACK_OF(X509) * certs);

/* pp_tls_ctx_leaf(ctx), pp_tls_ctx_chain(ctx): the certificate ${ctx}
 * serves and the chain sent with it, parsed (BoringSSL itself keeps them
 * as DER only); borrowed from the context, NULL if none recorded. */
X509 *pp_tls_ctx_leaf(const SSL_CTX *ctx);
STACK_OF(X509) * pp_tls_ctx_chain(const SSL_CTX *ctx);

/* pp_tls_leaf_not_after(ctx): the notAfter of our leaf, as a Unix time. */
long long pp_tls_leaf_not_after(SSL_CTX *ctx);

/* pp_tls_error_text(buf, len): describe and clear the thread's TLS error
 * queue ("" if empty). */
void pp_tls_error_text(char *buf, size_t len);

#endif
