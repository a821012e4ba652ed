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

struct pp_tls_params {
	const char *cert_file;  /* leaf, optionally followed by more */
	const char *chain_file; /* NULL, or certificates sent after them */
	const char *key_file;
	int min_version;         /* TLS1_2_VERSION or TLS1_3_VERSION */
	int server;              /* 1: accept TLS (inbound) */
	const char *server_name; /* client: SNI; NULL for none */
	struct pp_trust *trust;  /* borrowed; must outlive the context */
};

/* pp_tls_ctx_new(p, err, errlen): build a context from ${p}, checking that
 * the key matches the leaf.  A server context demands a client
 * certificate.  Return NULL with the reason (naming the file) in ${err}. */
SSL_CTX *pp_tls_ctx_new(const struct pp_tls_params *p, char *err,
                        size_t errlen);

/* pp_tls_ssl_new(ctx, fd, v): a connection on socket ${fd} whose
 * verification outcome is written to ${v} during the handshake. */
SSL *pp_tls_ssl_new(SSL_CTX *ctx, int fd, struct pp_verdict *v);

/* pp_tls_leaf_not_after(ctx): the notAfter of our leaf, as a Unix time. */
long long pp_tls_leaf_not_after(SSL_CTX *ctx);

/* pp_tls_error_text(buf, len): describe and clear the thread's TLS error
 * queue ("" if empty). */
void pp_tls_error_text(char *buf, size_t len);

#endif
