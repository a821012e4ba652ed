#ifndef PP_TRIM_H
#define PP_TRIM_H

/*
 * Handing freed heap back to the system.  glibc keeps the pages that freed
 * tunnels and replaced configuration snapshots leave behind, so after a
 * burst, or a reload of thousands of node data peers, the process would
 * stay at its peak size for good.  Runs on the main thread, once a second.
 */

#include <stdint.h>

#include "runtime/worker.h"

/* Once at least PP_TRIM_DROP tunnels have closed since the peak, and at
 * most half of the peak is still open (steady churn trims nothing), the
 * free pages go back, at most every PP_TRIM_EVERY_MS. */
#define PP_TRIM_DROP     128
#define PP_TRIM_EVERY_MS 10000

struct pp_trim {
	uint64_t peak;    /* most tunnels open since the last trim */
	uint64_t last_ms; /* when the last trim after a burst was */
	int reloaded;     /* set by a reload: an old snapshot is to be freed */
};

/* pp_trim_tick(t, workers, n, now_ms): take the open and peak tunnel
 * counts of the ${n} ${workers} (restarting their peaks) into ${t}; then
 * trim the heap and log memory_trimmed if a reload set t->reloaded and
 * every worker has taken its swap (let go of the old snapshot; tunnels
 * still open keep theirs until they close), or else if a burst has ended
 * as above, ${now_ms} being the loop's time. */
void pp_trim_tick(struct pp_trim *t, struct pp_worker *workers, int n,
                  uint64_t now_ms);

#endif
