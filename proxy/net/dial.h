#ifndef PP_DIAL_H
#define PP_DIAL_H

/*
 * Connecting to an upstream: resolve names afresh for every connection,
 * try the targets in random order and each of their addresses in turn,
 * failing over on a connect error or a per-attempt timeout.
 *
 * A dial owns its handles and frees itself: its callback runs exactly once,
 * after every handle of the dial is closed, with the connected socket or an
 * error.  Cancelling leads to the callback too.
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "net/addr.h"

struct pp_dial;

/* The dial's outcome: ${fd} is a connected non-blocking socket the
 * callee now owns (status 0), or -1 with ${status} a negative errno
 * (UV_ETIMEDOUT, UV_ECANCELED, ...) and ${why} describing the last failure.
 * ${peer} names the address connected to or last tried. */
typedef void pp_dial_cb(void *arg, int fd, int status, const char *why,
                        const char *peer);

/* pp_dial_start(loop, targets, n, timeout_ms, cb, arg): begin connecting
 * to one of the ${n} ${targets} (borrowed: they must outlive the dial).
 * Return the dial, or NULL if it could not start. */
struct pp_dial *pp_dial_start(uv_loop_t *loop, const struct pp_addr *targets,
                              size_t n, uint64_t timeout_ms, pp_dial_cb *cb,
                              void *arg);

/* pp_dial_cancel(d): stop ${d}; its callback follows with UV_ECANCELED. */
void pp_dial_cancel(struct pp_dial *d);

/* pp_socket_tune(fd, tcp): set TCP_NODELAY and keepalive on a TCP socket
 * (${tcp} non-zero); nothing for unix sockets. */
void pp_socket_tune(int fd, int tcp);

#endif
