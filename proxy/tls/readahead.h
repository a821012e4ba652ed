#ifndef PP_READAHEAD_H
#define PP_READAHEAD_H

/*
 * A socket BIO with read-ahead for a TLS connection.  BoringSSL asks for
 * exactly one record header and then exactly one record body, two system
 * calls per record; this BIO reads whatever the socket holds (up to one
 * pool buffer) in one call and serves those asks from it.  Writes go
 * straight to the socket.  The buffer is
 * taken from the worker's pool only while bytes wait in it, so an idle
 * connection holds none.  Readiness stays honest: BoringSSL only sees
 * "would block" once the buffer is empty and the socket has nothing.
 */

#include <openssl/base.h>

struct pp_bufpool;

/* pp_readahead_new(fd, pool): a BIO on socket ${fd} (not closed by it)
 * reading through buffers of ${pool}, which must outlive it and be used by the
 * same thread only.  Return NULL on allocation failure. */
BIO *pp_readahead_new(int fd, struct pp_bufpool *pool);

#endif
