#ifndef PP_CALLER_H
#define PP_CALLER_H

/*
 * What an inbound tunnel tells its app about the verified caller, gathered
 * once per connection after the handshake: the facts the PROXY protocol
 * header and the HTTP identity headers carry.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/base.h>

#include "tls/identity.h"

#define PP_CALLER_SUBJECT_MAX 1024
#define PP_CALLER_URI_MAX     512

struct pp_caller {
	char peer_id[PP_PEER_ID_MAX + 1];    /* "" if the policy gave none */
	char cn[128];                        /* the leaf's CN, "" if none */
	char subject[PP_CALLER_SUBJECT_MAX]; /* RFC 2253 */
	char uri[PP_CALLER_URI_MAX];         /* the first SAN URI, "" if none */
	char sha256[65];         /* of the leaf's DER, lowercase hex */
	const char *tls_version; /* static strings of the library */
	const char *cipher;
	int cert_in_conn;   /* not a resumed session */
	CRYPTO_BUFFER *der; /* the leaf (a reference), or NULL */
	char ip[64];        /* the caller's address without port, or "" */
	struct sockaddr_storage src, dst; /* AF_UNSPEC when unknown */
};

/* pp_caller_new(ssl, peer_id, fd): the facts about the verified peer of
 * the finished server-side handshake ${ssl} whose verdict named
 * ${peer_id}, and the addresses of the accepted socket ${fd}.  Return
 * NULL if memory is short or the peer sent no certificate. */
struct pp_caller *pp_caller_new(SSL *ssl, const char *peer_id, int fd);

/* pp_caller_xfcc(c, out, len): write the X-Forwarded-Client-Cert value for
 * ${c} (Hash=...;Subject="...";URI=...) to ${out}.  Return 0, or -1 if it
 * does not fit. */
int pp_caller_xfcc(const struct pp_caller *c, char *out, size_t len);

/* pp_caller_free(c): free ${c}; NULL does nothing. */
void pp_caller_free(struct pp_caller *c);

#endif
