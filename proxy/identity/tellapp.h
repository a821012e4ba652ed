#ifndef PP_TELLAPP_H
#define PP_TELLAPP_H

/*
 * What an inbound tunnel tells its app about the verified caller, per its
 * configuration (proxy_protocol, proxy_protocol_cert, http_identity): the
 * PROXY header to send first, and the HTTP rewriter for the caller's
 * bytes.  One per connection, made once the target is connected.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

#include "config/config.h"
#include "identity/httpid.h"

struct pp_tellapp;

/* pp_tellapp_wanted(tc): non-zero if tunnel ${tc} tells its app anything
 * (an inbound tunnel with proxy_protocol or http_identity on). */
int pp_tellapp_wanted(const struct pp_tunnel_conf *tc);

/* pp_tellapp_new(tc, ssl, peer_id, fd, conn_id): gather what tunnel ${tc}
 * tells its app about the peer of the finished server handshake ${ssl}
 * (verified as ${peer_id}), accepted on socket ${fd}, connection
 * ${conn_id}.  Return NULL if memory is short or the peer's certificate is
 * not at hand. */
struct pp_tellapp *pp_tellapp_new(const struct pp_tunnel_conf *tc, SSL *ssl,
                                  const char *peer_id, int fd,
                                  uint64_t conn_id);

/* pp_tellapp_header(ta, buf, cap): write the PROXY header to ${buf}.
 * Return its length (0 with proxy_protocol off), or -1 if ${cap} bytes do
 * not hold it. */
int pp_tellapp_header(const struct pp_tellapp *ta, uint8_t *buf, size_t cap);

/* pp_tellapp_http(ta): the request rewriter for the caller's bytes, or
 * NULL with http_identity off. */
struct pp_httpid *pp_tellapp_http(struct pp_tellapp *ta);

/* pp_tellapp_peer(ta): the verified peer id ("" if none). */
const char *pp_tellapp_peer(const struct pp_tellapp *ta);

/* pp_tellapp_free(ta): free ${ta}; NULL does nothing. */
void pp_tellapp_free(struct pp_tellapp *ta);

#endif
