#ifndef PP_TUNNEL_H
#define PP_TUNNEL_H

/*
 * One tunnel: an accepted connection joined to an upstream one, one side
 * speaking TLS and the other plain bytes.  The same state machine serves
 * both directions: inbound tunnels terminate TLS on the accepted side,
 * outbound tunnels originate it on the upstream side.
 *
 * Life of a tunnel: accept -> (inbound: TLS handshake and verification)
 * -> dial the target -> (outbound: TLS handshake and verification) ->
 * pump both directions with half-close until both are finished -> close.
 * Each direction has at most one buffer in flight; a slow reader stops
 * reads from the other side, so memory stays bounded.
 */

#include <sys/socket.h>

#include "config/config.h"

struct pp_worker;
struct pp_tunnel;

/* pp_tunnel_start(w, tc, fd, sa, salen): take over the accepted socket
 * ${fd} (peer address ${sa}) as a new tunnel of configuration ${tc} on
 * worker ${w}.  On failure the socket is closed and the failure logged. */
void pp_tunnel_start(struct pp_worker *w, const struct pp_tunnel_conf *tc,
                     int fd, const struct sockaddr *sa, socklen_t salen);

/* pp_tunnel_run_deferred(w): pump again the tunnels of ${w} that used up
 * their share of an earlier loop turn. */
void pp_tunnel_run_deferred(struct pp_worker *w);

/* pp_tunnel_recheck_all(w, conf): after a reload to ${conf}, close the
 * tunnels of ${w} whose peer is no longer trusted: an inbound caller that
 * fails the new policy of the tunnel of the same name (allow lists, node
 * data deactivation), or an outbound peer that has no tunnel any more. */
void pp_tunnel_recheck_all(struct pp_worker *w, const struct pp_config *conf);

/* pp_tunnel_abort_all(w): close every tunnel of ${w} at once (drain
 * deadline), logging reason "shutdown". */
void pp_tunnel_abort_all(struct pp_worker *w);

#endif
