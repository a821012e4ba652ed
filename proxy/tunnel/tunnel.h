#ifndef PP_TUNNEL_H
#define PP_TUNNEL_H

/*
 * Tunnels: an accepted connection joined to an upstream one, one side
 * speaking TLS and the other plain bytes.  The same state machine serves
 * both directions: inbound tunnels terminate TLS on the accepted side,
 * outbound tunnels originate it on the upstream side.
 *
 * Life of a tunnel: accept -> (inbound: TLS handshake and verification)
 * -> dial the target -> (outbound: TLS handshake and verification) ->
 * pump both directions with half-close until both are finished -> close.
 * Each direction has at most one buffer in flight; a slow reader stops
 * reads from the other side, so memory stays bounded.
 *
 * Tunnels live in a set, one per loop.  The set's owner (a worker, or a
 * test) is its host: it lends the set a loop and what the tunnels share
 * on it, and learns through callbacks when a tunnel is gone and when some
 * want another turn.  Everything here runs on the loop's thread, except
 * reading the counters of struct pp_tunnel_stats.
 */

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "config/config.h"

struct pp_bufpool;
struct pp_session_cache;
struct pp_tunnels;

/* Counters the set alone writes; any thread may read them. */
struct pp_tunnel_stats {
	atomic_ullong active; /* tunnels open: a drain waits for zero */
	atomic_ullong peak;   /* most open at once since a reader reset it */
};

/* What a set of tunnels runs on.  The host keeps each of these alive and
 * unchanged for the life of the set; the set copies the struct. */
struct pp_tunnel_host {
	uv_loop_t *loop;         /* every handle of the tunnels */
	struct pp_bufpool *pool; /* I/O and TLS read-ahead buffers */
	struct pp_session_cache
	    *sessions;                 /* TLS sessions of outbound tunnels */
	struct pp_tunnel_stats *stats; /* counted as tunnels come and go */
	int worker;                    /* the worker's number, in logs */
	/* A connection id for a new tunnel, for log lines and the app. */
	uint64_t (*next_id)(void *arg);
	/* Some tunnels used up their share of this loop turn: call
	 * pp_tunnels_run_deferred soon (on an idle handle, say). */
	void (*resume_soon)(void *arg);
	/* A tunnel was freed (pp_tunnels_count is one less already): a host
	 * waiting for the set to empty can check. */
	void (*on_freed)(void *arg);
	void *arg; /* passed to the three callbacks */
};

/* pp_tunnels_new(host): an empty set of tunnels run on ${host} (copied),
 * or NULL if memory is short. */
struct pp_tunnels *pp_tunnels_new(const struct pp_tunnel_host *host);

/* pp_tunnels_free(ts): free the set ${ts}, which must be empty (every
 * tunnel freed: pp_tunnels_count is 0).  NULL does nothing. */
void pp_tunnels_free(struct pp_tunnels *ts);

/* pp_tunnels_start(ts, conf, tc, fd, sa, salen): take over the accepted
 * socket ${fd} (peer address ${sa}) as a new tunnel of ${ts} under the
 * tunnel configuration ${tc} of the snapshot ${conf}, which the tunnel
 * holds a reference to for its life.  Refused over tc's max_connections;
 * on a refusal or a failure the socket is closed and the reason logged. */
void pp_tunnels_start(struct pp_tunnels *ts, struct pp_config *conf,
                      const struct pp_tunnel_conf *tc, int fd,
                      const struct sockaddr *sa, socklen_t salen);

/* pp_tunnels_run_deferred(ts): pump again the tunnels of ${ts} that used
 * up their share of an earlier loop turn.  Return non-zero if some of them
 * used it up again (the host has been asked to resume soon). */
int pp_tunnels_run_deferred(struct pp_tunnels *ts);

/* pp_tunnels_recheck_all(ts, conf): after a reload to ${conf}, close the
 * tunnels of ${ts} whose peer is no longer trusted: an inbound caller that
 * fails the new policy of the tunnel of the same name (allow lists, node
 * data deactivation), or an outbound peer that has no tunnel any more. */
void pp_tunnels_recheck_all(struct pp_tunnels *ts,
                            const struct pp_config *conf);

/* pp_tunnels_abort_all(ts): close every tunnel of ${ts} at once (drain
 * deadline), logging reason "shutdown".  They are freed as their handles
 * close, on later turns of the loop. */
void pp_tunnels_abort_all(struct pp_tunnels *ts);

/* pp_tunnels_count(ts): how many tunnels of ${ts} are not freed yet
 * (closing ones included). */
size_t pp_tunnels_count(const struct pp_tunnels *ts);

#endif
