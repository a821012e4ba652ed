#ifndef PP_ROUTES_H
#define PP_ROUTES_H

/*
 * The admin endpoint's routes: which path answers what, and to which
 * method.  The reports come from ops/report, from a view of the process
 * the runtime fills in; a reload and a drain are asked of the runtime
 * through the functions it gives.  Runs on the main thread's loop.
 */

#include <stddef.h>

#include <uv.h>

#include "ops/admin.h"
#include "ops/report.h"

/* What the routes ask of the runtime, each called with ${arg}. */
struct pp_routes {
	/* Fill ${v} with the process as it is now. */
	void (*view)(void *arg, struct pp_ops_view *v);
	/* Reload: 0 if the new configuration serves, 1 if it will be
	 * retried shortly, -1 if it failed (the view's last_reload_error
	 * says why). */
	int (*reload)(void *arg);
	/* The tunnels open now, across the workers. */
	size_t (*open_tunnels)(void *arg);
	/* Begin a drain, ${why} naming the trigger (not yet draining). */
	void (*drain)(void *arg, const char *why);
	void *arg;
};

/* pp_routes_serve(loop, addr, routes): start the admin endpoint on
 * ${addr}, answering with ${routes} (which must outlive it), and log
 * admin_listening.  Return it, or NULL (listen_failed logged). */
struct pp_admin *pp_routes_serve(uv_loop_t *loop, const struct pp_addr *addr,
                                 struct pp_routes *routes);

/* pp_routes_handle(routes, req, reply): a pp_admin_fn answering ${req}
 * by the route table of README "Admin endpoint": 404 for an unknown path,
 * 405 (with Allow) for a method the path does not take; ${routes} is a
 * struct pp_routes. */
void pp_routes_handle(void *routes, const struct pp_admin_req *req,
                      struct pp_admin_reply *reply);

#endif
