#ifndef PP_LIMITS_H
#define PP_LIMITS_H

/*
 * Connection counters that outlive configuration snapshots, so a reload
 * (every node data rescan is one) does not reset max_connections and
 * max_connections_per_peer.  One counter set per tunnel name, created on
 * first use and kept for the life of the process.  The tunnel count is
 * one atomic; the per-peer counts take a mutex, once per connection and
 * never per byte.  The record also holds the tunnel's metrics.
 */

#include <stdint.h>

#include "ops/metrics.h"

struct pp_limit;

/* pp_limit_get(name): the counters of tunnel ${name}, created if needed;
 * NULL if memory is short.  Thread-safe. */
struct pp_limit *pp_limit_get(const char *name);

/* pp_limit_enter(l, max): count one more open tunnel unless ${max} (0: no
 * limit) are open already.  Return 0, or -1 (nothing counted). */
int pp_limit_enter(struct pp_limit *l, uint32_t max);

/* pp_limit_leave(l): one tunnel counted by pp_limit_enter ended. */
void pp_limit_leave(struct pp_limit *l);

/* pp_limit_open(l): the tunnels open now. */
uint32_t pp_limit_open(struct pp_limit *l);

/* pp_limit_peer_enter(l, peer, max): as pp_limit_enter, for the tunnels
 * of ${peer} (a peer id, at most PP_PEER_ID_MAX bytes).  Return 0, or -1
 * when over the limit, out of memory or given a longer ${peer}. */
int pp_limit_peer_enter(struct pp_limit *l, const char *peer, uint32_t max);

/* pp_limit_peer_leave(l, peer): one tunnel of ${peer} ended. */
void pp_limit_peer_leave(struct pp_limit *l, const char *peer);

/* pp_limit_peers_each(l, fn, arg): call ${fn}(arg, peer, n) for every
 * peer with ${n} > 0 tunnels open, under the record's lock (${fn} must not
 * call back into ${l}). */
void pp_limit_peers_each(struct pp_limit *l,
                         void (*fn)(void *arg, const char *peer, uint32_t n),
                         void *arg);

/* pp_limit_stats(l): the metrics of the tunnel of ${l}. */
struct pp_tstats *pp_limit_stats(struct pp_limit *l);

#endif
