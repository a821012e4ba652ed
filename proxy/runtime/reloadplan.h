#ifndef PP_RELOADPLAN_H
#define PP_RELOADPLAN_H

/*
 * Reload planning: what moving from the configuration snapshot being
 * served to the next one does with the listening sockets, and what the
 * reload reports, decided from the two snapshots and the current
 * descriptors alone.  Nothing is opened, closed or unlinked here and no
 * thread is involved: the runtime carries the plan out.  A node may have
 * thousands of peers, so both snapshots are indexed by tunnel name and
 * listen address and every lookup is a binary search.
 */

#include <stddef.h>

#include "config/config.h"

struct pp_reload_plan {
	size_t nworkers;
	size_t ntunnels; /* of the next snapshot */
	/* The next snapshot's listeners, fds[w * ntunnels + t] (never NULL,
	 * even without tunnels): a descriptor of the current snapshot where
	 * the address carries over, else -1 (no listener, or one to open). */
	int *fds;
	/* The tunnels of the next snapshot (indices, ascending) that listen
	 * on an address the current one does not: their sockets are new. */
	size_t *open;
	size_t nopen;
	/* The socket files of the current snapshot's unix listeners whose
	 * address the next one drops: to unlink once the workers have moved
	 * on.  Borrowed from the current snapshot. */
	const char **unlink;
	size_t nunlink;
	/* Tunnel names only the next snapshot has, and only the current one
	 * has, each in its snapshot's order; borrowed from them. */
	const char **added;
	size_t nadded;
	const char **removed;
	size_t nremoved;
	/* Tunnels (of the next snapshot, in its order) that the current one
	 * has by the same name serving another certificate.  Borrowed. */
	const char **new_certs;
	size_t nnew_certs;
};

/* pp_reload_plan(cur, cur_fds, next, nworkers, plan): plan the move from
 * ${cur} (NULL: none, as at start), whose listeners are ${cur_fds}
 * (cur_fds[w * cur->ntunnels + t], for ${nworkers} workers), to ${next},
 * into ${plan}: a tunnel of ${next} listening on an address (formatted as
 * pp_addr_format does) that a tunnel of ${cur} listens on takes that
 * tunnel's descriptors, whatever either is named; any other listening
 * tunnel of ${next} needs new sockets.  Certificates are compared only
 * between built tunnels (their TLS contexts).  Return 0, or -1 if memory
 * is short (${plan} then holds nothing to free).  ${plan} borrows from
 * both snapshots: free it before either. */
int pp_reload_plan(const struct pp_config *cur, const int *cur_fds,
                   const struct pp_config *next, size_t nworkers,
                   struct pp_reload_plan *plan);

/* pp_reload_plan_free(plan): free what ${plan} holds (not the descriptors
 * in it) and empty it; an emptied plan may be freed again. */
void pp_reload_plan_free(struct pp_reload_plan *plan);

#endif
