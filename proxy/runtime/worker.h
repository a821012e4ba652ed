#ifndef PP_WORKER_H
#define PP_WORKER_H

/*
 * A worker: one thread, one libuv loop, its own listening sockets and
 * buffer pool.  Nothing on the data path is shared between workers except
 * read-only configuration; the runtime talks to a worker only through its
 * uv_async handle and atomic flags.
 */

#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"
#include "tls/session_cache.h"
#include "tunnel/tunnel.h"
#include "util/bufpool.h"

/* A listening socket polled by one worker. */
struct pp_listener {
	uv_poll_t poll;
	int fd;
	int is_unix;
	struct pp_worker *w;
	const struct pp_tunnel_conf *tc;
	uv_timer_t pause; /* backs off while out of file descriptors */
	int handles;      /* open handles; the last close frees it */
};

/* A new configuration for a worker: descriptors fds[i] (or -1) for each
 * tunnel i of conf.  A descriptor equal to one the worker listens on
 * already means "keep that listener". */
struct pp_swap {
	struct pp_config *conf; /* reference owned by the swap */
	int *fds;
};

struct pp_worker {
	int id;
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t wake;
	uv_idle_t resume;           /* runs the tunnels' deferred work */
	void (*on_exit)(void *arg); /* the loop ended (on the thread) */
	void *exit_arg;
	struct pp_config *conf; /* reference held */

	struct pp_listener **listeners;
	size_t nlisteners;
	int listening;

	struct pp_tunnels *tunnels; /* the worker is their host */
	struct pp_bufpool pool;
	struct pp_session_cache *sessions; /* client TLS sessions per target */
	uint64_t conn_seq;
	/* Tunnels open and their peak, written by the tunnel set; readers sum
	 * them across workers (the per-tunnel metrics live in the tunnel's
	 * limit record, ops/metrics.h). */
	struct pp_tunnel_stats stats;

	atomic_int cmd_stop_accepting;
	atomic_int cmd_abort;
	_Atomic(struct pp_swap *) pending_swap;
	int stopping;
};

/* pp_worker_init(w, id, conf, fds, on_exit, arg): prepare worker ${id} to
 * serve listeners ${fds} (one per tunnel of ${conf}, -1 for none; taken
 * over by the worker, also when it fails).  Once started, the worker calls
 * ${on_exit}(${arg}) on its own thread as its loop ends.  Return 0, or -1
 * (logged) with the descriptors closed and nothing left to free. */
int pp_worker_init(struct pp_worker *w, int id, struct pp_config *conf,
                   const int *fds, void (*on_exit)(void *arg), void *arg);

/* pp_worker_start(w): run the worker's loop on a new thread.  Return 0, or
 * -1 (the worker is as pp_worker_init left it: see pp_worker_discard). */
int pp_worker_start(struct pp_worker *w);

/* pp_worker_discard(w): free worker ${w}, initialised but never started,
 * closing its listening descriptors. */
void pp_worker_discard(struct pp_worker *w);

/* pp_worker_stop_accepting(w): from any thread: close the worker's
 * listeners; the loop ends once its last tunnel closes. */
void pp_worker_stop_accepting(struct pp_worker *w);

/* pp_worker_abort(w): from any thread: close every open tunnel now. */
void pp_worker_abort(struct pp_worker *w);

/* pp_worker_swap(w, s): from the main thread: serve configuration ${s}
 * (taken over) for new connections; open tunnels keep theirs, except that
 * those no longer trusted under it are closed. */
void pp_worker_swap(struct pp_worker *w, struct pp_swap *s);

/* pp_worker_swap_pending(w): non-zero while a swap sent to ${w} has not
 * been taken yet. */
int pp_worker_swap_pending(struct pp_worker *w);

/* pp_swap_new(conf, fds): a swap to ${conf} (a reference is taken) with a
 * copy of ${fds}, one per tunnel of ${conf}; or NULL. */
struct pp_swap *pp_swap_new(struct pp_config *conf, const int *fds);

/* pp_swap_drop(s): free a swap never sent to a worker, leaving its
 * descriptors open (the caller still owns them).  NULL does nothing. */
void pp_swap_drop(struct pp_swap *s);

/* pp_swap_free(s, keep, nkeep): free a swap that was not applied, closing
 * its descriptors except those of the ${nkeep} listeners in ${keep}.  NULL
 * does nothing. */
void pp_swap_free(struct pp_swap *s, struct pp_listener **keep, size_t nkeep);

/* pp_worker_join(w): wait for the thread to end and free its resources. */
void pp_worker_join(struct pp_worker *w);

#endif
