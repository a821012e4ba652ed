#include "ops/metrics.h"

#include <stdio.h>
#include <string.h>

const uint64_t pp_hs_bucket_us[PP_HS_BUCKETS] = {
    1000,   2500,   5000,   10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 10000000};

static const char *const result_names[PP_RESULT_N] = {
    "established", "refused", "failed", "limited", "upstream_error"};

/* Refusals that are not the trust policy's verdict. */
static const char *const limited_reasons[] = {"max_connections",
                                              "max_connections_per_peer"};
static const char *const failed_reasons[] = {
    "handshake_error", "handshake_timeout", "protocol_version",
    "peer_alert",      "tls_error",         "no_certificate"};

void
pp_tstats_init(struct pp_tstats *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < PP_RESULT_N; i++)
		atomic_init(&s->results[i], 0);
	atomic_init(&s->bytes_up, 0);
	atomic_init(&s->bytes_down, 0);
	for (int i = 0; i <= PP_HS_BUCKETS; i++)
		atomic_init(&s->hs_bucket[i], 0);
	atomic_init(&s->hs_sum_us, 0);
	pthread_mutex_init(&s->lock, NULL);
}

void
pp_tstats_result(struct pp_tstats *s, enum pp_result r)
{
	atomic_fetch_add_explicit(&s->results[r], 1, memory_order_relaxed);
}

static unsigned
failure_slot(const struct pp_tstats *s, const char *reason)
{
	unsigned i;

	for (i = 0; i < s->nfailures; i++) {
		if (strcmp(s->failures[i].reason, reason) == 0)
			break;
	}
	return (i);
}

void
pp_tstats_failure(struct pp_tstats *s, const char *reason)
{
	unsigned i;

	pthread_mutex_lock(&s->lock);
	i = failure_slot(s, reason);
	/* The last slot is kept for "other". */
	if (i == s->nfailures && i >= PP_FAIL_REASONS - 1)
		i = failure_slot(s, reason = "other");
	if (i == s->nfailures) {
		snprintf(s->failures[i].reason, PP_FAIL_REASON_MAX, "%s",
		         reason);
		s->nfailures++;
	}
	s->failures[i].n++;
	pthread_mutex_unlock(&s->lock);
}

enum pp_result
pp_result_of_reason(const char *reason)
{
	for (size_t i = 0;
	     i < sizeof(limited_reasons) / sizeof(limited_reasons[0]); i++)
		if (strcmp(reason, limited_reasons[i]) == 0)
			return (PP_RESULT_LIMITED);
	for (size_t i = 0;
	     i < sizeof(failed_reasons) / sizeof(failed_reasons[0]); i++)
		if (strcmp(reason, failed_reasons[i]) == 0)
			return (PP_RESULT_FAILED);
	return (PP_RESULT_REFUSED);
}

void
pp_tstats_handshake(struct pp_tstats *s, uint64_t us)
{
	int i = 0;

	while (i < PP_HS_BUCKETS && us > pp_hs_bucket_us[i])
		i++;
	atomic_fetch_add_explicit(&s->hs_bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->hs_sum_us, us, memory_order_relaxed);
}

const char *
pp_result_name(enum pp_result r)
{
	return (result_names[r]);
}

static const struct {
	const char *name, *type, *help;
} families[PP_FAMILY_N] = {
    {"peerproxy_connections_total", "counter",
     "Accepted connections by how they ended up."},
    {"peerproxy_active_connections", "gauge", "Connections open now."},
    {"peerproxy_handshake_failures_total", "counter",
     "Refused or failed TLS handshakes by reason."},
    {"peerproxy_bytes_total", "counter",
     "Bytes forwarded; direction up is caller to target."},
    {"peerproxy_handshake_duration_seconds", "histogram",
     "Duration of completed TLS handshakes."},
};

void
pp_family_header(struct pp_sb *b, enum pp_family f)
{
	pp_sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
	             families[f].help, families[f].name, families[f].type);
}

static void
sample(struct pp_sb *b, const char *family, const char *suffix,
       const char *tunnel, const char *key, const char *value,
       unsigned long long n)
{
	pp_sb_printf(b, "%s%s{tunnel=\"", family, suffix);
	pp_sb_label(b, tunnel);
	if (key != NULL) {
		pp_sb_printf(b, "\",%s=\"", key);
		pp_sb_label(b, value);
	}
	pp_sb_printf(b, "\"} %llu\n", n);
}

static void
render_histogram(struct pp_sb *b, const char *tunnel, struct pp_tstats *s)
{
	const char *f = families[PP_FAMILY_HANDSHAKE].name;
	unsigned long long cum = 0;
	char le[32];

	for (int i = 0; i <= PP_HS_BUCKETS; i++) {
		cum += atomic_load_explicit(&s->hs_bucket[i],
		                            memory_order_relaxed);
		if (i < PP_HS_BUCKETS)
			snprintf(le, sizeof(le), "%g",
			         (double)pp_hs_bucket_us[i] / 1e6);
		else
			snprintf(le, sizeof(le), "+Inf");
		sample(b, f, "_bucket", tunnel, "le", le, cum);
	}
	pp_sb_printf(b, "%s_sum{tunnel=\"", f);
	pp_sb_label(b, tunnel);
	pp_sb_printf(b, "\"} %.6f\n", (double)atomic_load(&s->hs_sum_us) / 1e6);
	sample(b, f, "_count", tunnel, NULL, NULL, cum);
}

void
pp_tstats_render(struct pp_sb *b, enum pp_family f, const char *tunnel,
                 struct pp_tstats *s, uint32_t open)
{
	const char *name = families[f].name;

	switch (f) {
	case PP_FAMILY_CONNECTIONS:
		for (int r = 0; r < PP_RESULT_N; r++)
			sample(b, name, "", tunnel, "result", result_names[r],
			       atomic_load_explicit(&s->results[r],
			                            memory_order_relaxed));
		break;
	case PP_FAMILY_ACTIVE:
		sample(b, name, "", tunnel, NULL, NULL, open);
		break;
	case PP_FAMILY_FAILURES:
		pthread_mutex_lock(&s->lock);
		for (unsigned i = 0; i < s->nfailures; i++)
			sample(b, name, "", tunnel, "reason",
			       s->failures[i].reason, s->failures[i].n);
		pthread_mutex_unlock(&s->lock);
		break;
	case PP_FAMILY_BYTES:
		sample(b, name, "", tunnel, "direction", "up",
		       atomic_load(&s->bytes_up));
		sample(b, name, "", tunnel, "direction", "down",
		       atomic_load(&s->bytes_down));
		break;
	case PP_FAMILY_HANDSHAKE:
		render_histogram(b, tunnel, s);
		break;
	case PP_FAMILY_N:
		break;
	}
}
