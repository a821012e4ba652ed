#ifndef PP_RUNTIME_H
#define PP_RUNTIME_H

/*
 * The process: binds every listener, starts the workers, handles signals
 * on the main thread's loop, and runs the graceful drain.
 */

#include "config/config.h"

struct pp_runtime;

/* pp_runtime_run(conf): bind the listeners of ${conf} (already built), serve
 * until SIGINT/SIGTERM, drain, and return the exit code: 0 after a drain,
 * 1 if serving could not start. */
int pp_runtime_run(struct pp_config *conf);

/* pp_runtime_worker_done(rt): called by a worker thread as its loop ends. */
void pp_runtime_worker_done(struct pp_runtime *rt);

#endif
