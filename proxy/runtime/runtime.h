#ifndef PP_RUNTIME_H
#define PP_RUNTIME_H

/*
 * The process: binds every listener, starts the workers, handles signals
 * on the main thread's loop, and runs the graceful drain.
 */

#include "config/config.h"

/* Reads the configuration again for a reload (SIGHUP, node data rescan):
 * a new, unbuilt snapshot, or NULL with the problems in ${p}. */
typedef struct pp_config *pp_reload_fn(void *arg, struct pp_problems *p);

/* pp_runtime_run(conf, reload, arg): bind the listeners of ${conf} (already
 * built; the caller's reference is taken over, so a reload can free the
 * first snapshot as it frees later ones), serve until SIGINT/SIGTERM,
 * drain, and return the exit code: 0 after a drain, 1 if serving could
 * not start.  On SIGHUP, and every nodedata rescan_interval, ${reload}
 * builds a new snapshot; if it is valid it is swapped in for new
 * connections (listeners kept where addresses carry over), else the old
 * one keeps serving.  ${reload} NULL: SIGHUP is ignored. */
int pp_runtime_run(struct pp_config *conf, pp_reload_fn *reload, void *arg);

#endif
