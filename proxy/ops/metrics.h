#ifndef PP_METRICS_H
#define PP_METRICS_H

/*
 * Per-tunnel counters for the metrics endpoint.  One set per tunnel name,
 * kept in the tunnel's limit record so it survives reloads (see
 * runtime/limits.h).  Workers add to them with relaxed atomics, once per
 * connection event and once per buffer written (never per byte); readers
 * load them on a scrape.  Failure reasons are few and rare, so their table
 * takes a mutex.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "util/strbuf.h"

/* How a connection ended up, counted once per accepted connection. */
enum pp_result {
	PP_RESULT_ESTABLISHED,    /* verified and admitted */
	PP_RESULT_REFUSED,        /* the trust policy said no */
	PP_RESULT_FAILED,         /* handshake error, timeout, bad protocol */
	PP_RESULT_LIMITED,        /* max_connections(_per_peer) */
	PP_RESULT_UPSTREAM_ERROR, /* the target could not be reached */
	PP_RESULT_N
};

/* Upper bounds (microseconds) of the handshake duration histogram. */
#define PP_HS_BUCKETS 12
extern const uint64_t pp_hs_bucket_us[PP_HS_BUCKETS];

#define PP_FAIL_REASONS    32
#define PP_FAIL_REASON_MAX 40

struct pp_tstats {
	atomic_ullong results[PP_RESULT_N];
	atomic_ullong bytes_up;                     /* caller -> target */
	atomic_ullong bytes_down;                   /* target -> caller */
	atomic_ullong hs_bucket[PP_HS_BUCKETS + 1]; /* last: above all bounds */
	atomic_ullong hs_sum_us;
	pthread_mutex_t lock; /* guards the failure table */
	struct {
		char reason[PP_FAIL_REASON_MAX];
		uint64_t n;
	} failures[PP_FAIL_REASONS];
	unsigned nfailures;
};

/* pp_tstats_init(s): zero counters. */
void pp_tstats_init(struct pp_tstats *s);

/* pp_tstats_result(s, r): count one connection with result ${r}. */
void pp_tstats_result(struct pp_tstats *s, enum pp_result r);

/* pp_tstats_failure(s, reason): count one failed or refused handshake of
 * reason ${reason} (a refusal name such as "untrusted"); reasons past the
 * table's size are counted as "other". */
void pp_tstats_failure(struct pp_tstats *s, const char *reason);

/* pp_result_of_reason(reason): the connection result a refusal of
 * ${reason} stands for (limited, failed or refused). */
enum pp_result pp_result_of_reason(const char *reason);

/* pp_tstats_handshake(s, us): observe one completed handshake of ${us}
 * microseconds. */
void pp_tstats_handshake(struct pp_tstats *s, uint64_t us);

/* pp_result_name(r): the label value of ${r} ("established", ...). */
const char *pp_result_name(enum pp_result r);

/* pp_tstats_render(b, name, s, open): append the samples of the tunnel
 * ${name} (counters ${s}, ${open} connections open now) to the families
 * in Prometheus text format.  Called once per family position: ${family}
 * selects which family's samples are written (PP_FAMILY_*), so that each
 * family's samples stay together as the format requires. */
enum pp_family {
	PP_FAMILY_CONNECTIONS,
	PP_FAMILY_ACTIVE,
	PP_FAMILY_FAILURES,
	PP_FAMILY_BYTES,
	PP_FAMILY_HANDSHAKE,
	PP_FAMILY_N
};
void pp_tstats_render(struct pp_sb *b, enum pp_family family, const char *name,
                      struct pp_tstats *s, uint32_t open);

/* pp_family_header(b, family): append the HELP and TYPE lines of
 * ${family}. */
void pp_family_header(struct pp_sb *b, enum pp_family family);

#endif
