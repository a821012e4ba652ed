#ifndef PP_WORKERS_H
#define PP_WORKERS_H

/*
 * The workers as a set, as the main thread sees them: a new configuration
 * handed to all of them or to none, whether they have all taken it, and
 * the tunnels open across them.  Main thread only.
 */

#include <stddef.h>

#include "config/config.h"
#include "runtime/worker.h"

/* pp_workers_swap(w, n, next, fds): hand ${next} to each of the ${n}
 * workers ${w}, worker i with the listeners &fds[i * next->ntunnels].
 * Every swap is made before any is sent: return 0 once all are sent, or
 * -1 if memory is short, none sent (the descriptors stay the caller's). */
int pp_workers_swap(struct pp_worker *w, int n, struct pp_config *next,
                    const int *fds);

/* pp_workers_swap_pending(w, n): non-zero while one of the ${n} workers
 * ${w} has not taken the last swap sent to it. */
int pp_workers_swap_pending(struct pp_worker *w, int n);

/* pp_workers_swap_wait(w, n): wait up to 200 ms for the ${n} workers ${w}
 * to take their last swaps (a worker takes it on its next loop turn; the
 * main thread serves nothing but signals and the admin endpoint, so it
 * may block that long).  1 if they all have, else 0. */
int pp_workers_swap_wait(struct pp_worker *w, int n);

/* pp_workers_open_tunnels(w, n): the tunnels open across the ${n}
 * workers ${w}. */
size_t pp_workers_open_tunnels(struct pp_worker *w, int n);

#endif
