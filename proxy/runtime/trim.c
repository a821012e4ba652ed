#include "runtime/trim.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdatomic.h>

#include "runtime/workers.h"
#include "util/log.h"
#include "util/procmem.h"

/* Resident set size in KiB, or 0 if unknown. */
static uint64_t
rss_kib(void)
{
	uint64_t virt, resident;

	return (pp_procmem(&virt, &resident) == 0 ? resident / 1024 : 0);
}

/* Trim the heap; the resident size before it in KiB. */
static uint64_t
trim(void)
{
	uint64_t before = rss_kib();

#ifdef __GLIBC__
	malloc_trim(0);
#endif
	return (before);
}

void
pp_trim_tick(struct pp_trim *t, struct pp_worker *workers, int n,
             uint64_t now_ms)
{
	uint64_t open = 0, peak = 0, before;
	struct pp_logline l;

	for (int i = 0; i < n; i++) {
		struct pp_tunnel_stats *s = &workers[i].stats;
		uint64_t a = atomic_load(&s->active);
		uint64_t p = atomic_exchange(&s->peak, a);

		open += a;
		peak += p > a ? p : a;
	}
	if (peak > t->peak)
		t->peak = peak;
	if (t->reloaded && !pp_workers_swap_pending(workers, n)) {
		/* A reload built a whole new snapshot beside the old one
		 * (with thousands of node data peers, a hundred megabytes). */
		t->reloaded = 0;
		before = trim();
		pp_log_begin(&l, PP_LOG_DEBUG, "memory_trimmed");
		pp_log_str(&l, "after", "reload");
		pp_log_u64(&l, "rss_before_kib", before);
		pp_log_u64(&l, "rss_after_kib", rss_kib());
		pp_log_end(&l);
		return;
	}
	if (t->peak < open + PP_TRIM_DROP || open > t->peak / 2 ||
	    now_ms - t->last_ms < PP_TRIM_EVERY_MS)
		return;
	before = trim();
	pp_log_begin(&l, PP_LOG_INFO, "memory_trimmed");
	pp_log_u64(&l, "tunnels_peak", t->peak);
	pp_log_u64(&l, "tunnels_open", open);
	pp_log_u64(&l, "rss_before_kib", before);
	pp_log_u64(&l, "rss_after_kib", rss_kib());
	pp_log_end(&l);
	t->peak = open;
	t->last_ms = now_ms;
}
