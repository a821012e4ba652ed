#ifndef PP_LISTEN_H
#define PP_LISTEN_H

/*
 * Listening sockets.  Each worker gets its own TCP socket on the same
 * address (SO_REUSEPORT, set by hand: libuv 1.44 has no flag for it) so
 * the kernel spreads connections; a unix socket is one socket that every
 * worker polls through its own duplicate descriptor.
 */

#include <stddef.h>

#include "net/addr.h"

/* pp_listen_open(a, n, fds, err, errlen): open ${n} listening sockets for
 * ${a} into ${fds}.  Refuses an address another process already listens
 * on (even with SO_REUSEPORT) and replaces a stale unix socket file but
 * never any other file.  Return 0, or -1 with the reason in ${err}. */
int pp_listen_open(const struct pp_addr *a, size_t n, int *fds, char *err,
                   size_t errlen);

/* pp_listen_remove_stale(path): remove ${path} if it is a unix socket file
 * that no process listens on (connect refused); anything else is left as
 * it is.  Return 1 if it was removed, else 0. */
int pp_listen_remove_stale(const char *path);

#endif
