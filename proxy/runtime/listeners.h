#ifndef PP_LISTENERS_H
#define PP_LISTENERS_H

/*
 * A configuration's listening sockets across the workers: opening those a
 * reload plan (runtime/reloadplan.h) says are new, closing them again if
 * the reload fails, and the listening lines and socket files of a
 * configuration being served.  Main thread only.
 */

#include <stddef.h>

#include "config/config.h"
#include "runtime/reloadplan.h"

/* pp_listeners_open(plan, next, bad, why, len): open the sockets ${plan}
 * says ${next} needs, for every worker, into plan->fds.  Return 0, or -1
 * with none of them left open, the index of the tunnel that could not
 * listen in ${bad} (next->ntunnels if memory was short) and the reason in
 * ${why}. */
int pp_listeners_open(struct pp_reload_plan *plan, const struct pp_config *next,
                      size_t *bad, char *why, size_t len);

/* pp_listeners_close_new(plan): close every socket pp_listeners_open opened
 * for ${plan} (those carried over stay open). */
void pp_listeners_close_new(const struct pp_reload_plan *plan);

/* pp_listeners_start(c, nworkers, fds): open every listener of ${c} for
 * ${nworkers} workers into a new table *${fds} (fds[w * ntunnels + t], -1
 * for a tunnel without one; the caller frees it).  Return 0, or -1 with
 * nothing open and a listener that could not be opened logged
 * (listen_failed). */
int pp_listeners_start(const struct pp_config *c, size_t nworkers, int **fds);

/* pp_listeners_log(c): log a listening line for each listener of ${c}. */
void pp_listeners_log(const struct pp_config *c);

/* pp_listeners_unlink(c): remove the socket files of ${c}'s unix
 * listeners (at exit, once nothing listens on them). */
void pp_listeners_unlink(const struct pp_config *c);

/* pp_listeners_sweep(c): in node data mode, remove from ${c}'s socket_dir
 * the stale peer sockets ("<id>.sock" that nothing listens on) of peers
 * ${c} has no tunnel for, each logged (stale_socket_removed): left by a
 * process that was killed, they would look like a socket for a peer that
 * is no longer active.  Anything else there is left as it is. */
void pp_listeners_sweep(const struct pp_config *c);

#endif
