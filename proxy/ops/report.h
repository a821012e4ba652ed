#ifndef PP_REPORT_H
#define PP_REPORT_H

/*
 * What the admin endpoint reports about a running process: readiness,
 * Prometheus metrics and the status document.  Pure functions of a view
 * the runtime fills in; they read the configuration snapshot, its
 * certificates, the per-tunnel counters and the node data directory, and
 * write text into a buffer.  Run on the main thread, off the data path.
 */

#include <stdint.h>

#include "config/config.h"
#include "util/strbuf.h"

struct pp_ops_view {
	const struct pp_config *conf; /* the snapshot serving new tunnels */
	uint64_t start_unix_ms;       /* wall clock at start */
	uint64_t uptime_ms;
	int serving; /* every listener bound and every worker running */
	int draining;
	uint64_t reloads_ok, reloads_failed;
	const char *last_reload_error; /* NULL if the last reload worked */
	int workers;
};

/* pp_report_ready(v, out): 1 if ${v} is ready for traffic (serving, not
 * draining, every certificate and anchor currently valid); else 0 with a
 * JSON object {"ready":false,"reason":...} describing the first problem
 * appended to ${out}.  Ready: {"ready":true} is appended. */
int pp_report_ready(const struct pp_ops_view *v, struct pp_sb *out);

/* pp_report_metrics(v, out): append every metric family in the
 * Prometheus text exposition format (version 0.0.4). */
void pp_report_metrics(const struct pp_ops_view *v, struct pp_sb *out);

/* pp_report_status(v, out): append the status JSON document: version,
 * uptime, tunnels with their certificates and open connections (per
 * peer), node data peers and their state. */
void pp_report_status(const struct pp_ops_view *v, struct pp_sb *out);

#endif
