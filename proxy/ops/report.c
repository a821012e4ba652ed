#include "ops/report.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config/nodedata.h"
#include "ops/metrics.h"
#include "runtime/limits.h"
#include "tls/context.h"
#include "tls/identity.h"
#include "util/procmem.h"

#ifndef PEERPROXY_VERSION
#define PEERPROXY_VERSION "0.0.0"
#endif

static const char *const kind_names[] = {"inbound", "outbound", "connect"};

/* ---- certificates ---- */

/* A certificate of a tunnel and its role: "cert", "chain", "ca" (with an
 * index after the first of a role: "chain.1"). */
struct cert_ref {
	X509 *x;
	char role[32]; /* a role, '.' and a size_t's 20 digits fit */
};

typedef void cert_fn(void *arg, const struct pp_tunnel_conf *tc,
                     const struct cert_ref *c);

static void
each_in(STACK_OF(X509) * sk, const char *role, const struct pp_tunnel_conf *tc,
        cert_fn *fn, void *arg)
{
	struct cert_ref c;

	for (size_t i = 0; sk != NULL && i < sk_X509_num(sk); i++) {
		c.x = sk_X509_value(sk, i);
		if (i == 0)
			snprintf(c.role, sizeof(c.role), "%s", role);
		else
			snprintf(c.role, sizeof(c.role), "%s.%zu", role, i);
		fn(arg, tc, &c);
	}
}

/* Call ${fn} for every certificate ${tc} serves or trusts. */
static void
each_cert(const struct pp_tunnel_conf *tc, cert_fn *fn, void *arg)
{
	STACK_OF(X509) *chain = NULL;
	struct cert_ref c;

	if (tc->ctx == NULL)
		return;
	if ((c.x = pp_tls_ctx_leaf(tc->ctx)) != NULL) {
		snprintf(c.role, sizeof(c.role), "cert");
		fn(arg, tc, &c);
	}
	if ((chain = pp_tls_ctx_chain(tc->ctx)) != NULL)
		each_in(chain, "chain", tc, fn, arg);
	if (tc->trust != NULL)
		each_in(pp_trust_anchors(tc->trust), "ca", tc, fn, arg);
}

/* Seconds since the epoch of ${t}. */
static int64_t
asn1_unix(const ASN1_TIME *t)
{
	int days = 0, secs = 0;

	if (!ASN1_TIME_diff(&days, &secs, NULL, t))
		return (0);
	return ((int64_t)time(NULL) + (int64_t)days * 86400 + secs);
}

static void
iso8601(int64_t unix_s, char *buf, size_t len)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- readiness ---- */

struct ready_check {
	struct pp_sb *out;
	int bad;
};

static void
check_cert(void *arg, const struct pp_tunnel_conf *tc, const struct cert_ref *c)
{
	struct ready_check *r = arg;
	int64_t now = (int64_t)time(NULL);
	int64_t nb = asn1_unix(X509_get0_notBefore(c->x));
	int64_t na = asn1_unix(X509_get0_notAfter(c->x));
	char when[32];

	if (r->bad || (now >= nb && now <= na))
		return;
	r->bad = 1;
	iso8601(now > na ? na : nb, when, sizeof(when));
	pp_sb_puts(r->out, "{\"ready\":false,\"reason\":");
	pp_sb_json_str(r->out, now > na ? "certificate expired"
	                                : "certificate not yet valid");
	pp_sb_puts(r->out, ",\"tunnel\":");
	pp_sb_json_str(r->out, tc->name);
	pp_sb_puts(r->out, ",\"certificate\":");
	pp_sb_json_str(r->out, c->role);
	pp_sb_puts(r->out, now > na ? ",\"not_after\":" : ",\"not_before\":");
	pp_sb_json_str(r->out, when);
	pp_sb_puts(r->out, "}\n");
}

static void
not_ready(struct pp_sb *out, const char *reason)
{
	pp_sb_puts(out, "{\"ready\":false,\"reason\":");
	pp_sb_json_str(out, reason);
	pp_sb_puts(out, "}\n");
}

int
pp_report_ready(const struct pp_ops_view *v, struct pp_sb *out)
{
	struct ready_check r = {out, 0};

	if (v->draining) {
		not_ready(out, "draining");
		return (0);
	}
	if (!v->serving) {
		not_ready(out, "starting");
		return (0);
	}
	for (size_t i = 0; i < v->conf->ntunnels && !r.bad; i++)
		each_cert(&v->conf->tunnels[i], check_cert, &r);
	if (r.bad)
		return (0);
	pp_sb_puts(out, "{\"ready\":true}\n");
	return (1);
}

/* ---- node data peers ---- */

static void
count_peer(void *arg, const char *id, enum pp_peer_state s)
{
	unsigned *n = arg;

	(void)id;
	n[s]++;
}

/* ---- metrics ---- */

static void
expiry_sample(void *arg, const struct pp_tunnel_conf *tc,
              const struct cert_ref *c)
{
	struct pp_sb *b = arg;

	pp_sb_puts(b,
	           "peerproxy_certificate_expiry_timestamp_seconds{tunnel=\"");
	pp_sb_label(b, tc->name);
	pp_sb_puts(b, "\",certificate=\"");
	pp_sb_label(b, c->role);
	pp_sb_printf(b, "\"} %lld\n",
	             (long long)asn1_unix(X509_get0_notAfter(c->x)));
}

/* The process_* families every Prometheus client library exports, so
 * dashboards made for them work unchanged. */
static void
process_metrics(const struct pp_ops_view *v, struct pp_sb *b)
{
	uint64_t virt, resident;
	struct rusage ru;
	struct rlimit rl;
	unsigned fds = 0;
	DIR *d;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		pp_sb_printf(
		    b,
		    "# HELP process_cpu_seconds_total User and system "
		    "CPU time spent in seconds.\n"
		    "# TYPE process_cpu_seconds_total counter\n"
		    "process_cpu_seconds_total %.3f\n",
		    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) /
		            1e6);
	if (pp_procmem(&virt, &resident) == 0)
		pp_sb_printf(b,
		             "# HELP process_virtual_memory_bytes "
		             "Virtual memory size in bytes.\n"
		             "# TYPE process_virtual_memory_bytes gauge\n"
		             "process_virtual_memory_bytes %llu\n"
		             "# HELP process_resident_memory_bytes "
		             "Resident memory size in bytes.\n"
		             "# TYPE process_resident_memory_bytes gauge\n"
		             "process_resident_memory_bytes %llu\n",
		             (unsigned long long)virt,
		             (unsigned long long)resident);
	if ((d = opendir("/proc/self/fd")) != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			fds += e->d_name[0] != '.';
		closedir(d);
		/* Less the one that read the directory. */
		pp_sb_printf(b,
		             "# HELP process_open_fds Number of open file "
		             "descriptors.\n"
		             "# TYPE process_open_fds gauge\n"
		             "process_open_fds %u\n",
		             fds > 0 ? fds - 1 : 0);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		pp_sb_printf(b,
		             "# HELP process_max_fds Maximum number of open "
		             "file descriptors.\n"
		             "# TYPE process_max_fds gauge\n"
		             "process_max_fds %llu\n",
		             (unsigned long long)rl.rlim_cur);
	pp_sb_printf(b,
	             "# HELP process_start_time_seconds Start time of the "
	             "process since unix epoch in seconds.\n"
	             "# TYPE process_start_time_seconds gauge\n"
	             "process_start_time_seconds %.3f\n",
	             (double)v->start_unix_ms / 1000.0);
}

void
pp_report_metrics(const struct pp_ops_view *v, struct pp_sb *b)
{
	const struct pp_config *c = v->conf;

	for (int f = 0; f < PP_FAMILY_N; f++) {
		pp_family_header(b, (enum pp_family)f);
		for (size_t i = 0; i < c->ntunnels; i++) {
			const struct pp_tunnel_conf *tc = &c->tunnels[i];
			if (tc->limit == NULL)
				continue;
			pp_tstats_render(b, (enum pp_family)f, tc->name,
			                 pp_limit_stats(tc->limit),
			                 pp_limit_open(tc->limit));
		}
	}
	pp_sb_puts(b, "# HELP peerproxy_certificate_expiry_timestamp_seconds "
	              "When each certificate a tunnel serves or trusts "
	              "expires.\n"
	              "# TYPE peerproxy_certificate_expiry_timestamp_seconds "
	              "gauge\n");
	for (size_t i = 0; i < c->ntunnels; i++)
		each_cert(&c->tunnels[i], expiry_sample, b);
	pp_sb_printf(b,
	             "# HELP peerproxy_reloads_total Configuration reloads "
	             "by result.\n"
	             "# TYPE peerproxy_reloads_total counter\n"
	             "peerproxy_reloads_total{result=\"success\"} %llu\n"
	             "peerproxy_reloads_total{result=\"failure\"} %llu\n",
	             (unsigned long long)v->reloads_ok,
	             (unsigned long long)v->reloads_failed);
	if (c->nodedata != NULL) {
		unsigned n[PP_PEER_NSTATES] = {0};
		pp_nodedata_peers(c->nodedata->path, count_peer, n, NULL);
		pp_sb_puts(b, "# HELP peerproxy_peers Node data peers by "
		              "state.\n# TYPE peerproxy_peers gauge\n");
		for (int s = 0; s < PP_PEER_NSTATES; s++)
			pp_sb_printf(
			    b, "peerproxy_peers{state=\"%s\"} %u\n",
			    pp_nodedata_state_name((enum pp_peer_state)s),
			    n[s]);
	}
	pp_sb_printf(b,
	             "# HELP peerproxy_draining 1 once a drain has begun.\n"
	             "# TYPE peerproxy_draining gauge\n"
	             "peerproxy_draining %d\n"
	             "# HELP peerproxy_start_time_seconds When the process "
	             "started.\n"
	             "# TYPE peerproxy_start_time_seconds gauge\n"
	             "peerproxy_start_time_seconds %.3f\n",
	             v->draining, (double)v->start_unix_ms / 1000.0);
	process_metrics(v, b);
}

/* ---- status ---- */

struct json_list {
	struct pp_sb *out;
	int n;
};

static void
cert_json(void *arg, const struct pp_tunnel_conf *tc, const struct cert_ref *c)
{
	struct json_list *l = arg;
	char subject[512], id[PP_PEER_ID_MAX + 1], when[32];
	int64_t na = asn1_unix(X509_get0_notAfter(c->x));

	(void)tc;
	pp_identity_name_text(X509_get_subject_name(c->x), subject,
	                      sizeof(subject));
	iso8601(na, when, sizeof(when));
	pp_sb_puts(l->out, l->n++ ? ",{\"certificate\":" : "{\"certificate\":");
	pp_sb_json_str(l->out, c->role);
	pp_sb_puts(l->out, ",\"subject\":");
	pp_sb_json_str(l->out, subject);
	pp_sb_puts(l->out, ",\"id\":");
	pp_sb_json_str(l->out,
	               pp_identity_peer_id(X509_get_subject_name(c->x), id) == 0
	                   ? id
	                   : NULL);
	pp_sb_puts(l->out, ",\"not_after\":");
	pp_sb_json_str(l->out, when);
	pp_sb_printf(l->out, ",\"expires_in_seconds\":%lld}",
	             (long long)(na - (int64_t)time(NULL)));
}

static void
peer_open_json(void *arg, const char *peer, uint32_t n)
{
	struct json_list *l = arg;

	pp_sb_puts(l->out, l->n++ ? "," : "");
	pp_sb_json_str(l->out, peer);
	pp_sb_printf(l->out, ":%u", n);
}

static void
tunnel_json(struct pp_sb *b, const struct pp_tunnel_conf *tc)
{
	struct json_list l = {b, 0};
	char addr[PP_HOST_MAX + 16];

	pp_sb_puts(b, "{\"name\":");
	pp_sb_json_str(b, tc->name);
	pp_sb_puts(b, ",\"kind\":");
	pp_sb_json_str(b, kind_names[tc->kind]);
	pp_sb_puts(b, ",\"listen\":");
	if (pp_tunnel_listens(tc)) {
		pp_addr_format(&tc->listen, addr, sizeof(addr));
		pp_sb_json_str(b, addr);
	} else {
		pp_sb_puts(b, "null");
	}
	pp_sb_puts(b, ",\"targets\":[");
	for (size_t i = 0; i < tc->ntargets; i++) {
		pp_addr_format(&tc->targets[i], addr, sizeof(addr));
		pp_sb_puts(b, i ? "," : "");
		pp_sb_json_str(b, addr);
	}
	pp_sb_puts(b, "],\"peer\":");
	pp_sb_json_str(b, tc->peer);
	pp_sb_printf(b,
	             ",\"limits\":{\"handshake_timeout_ms\":%llu,"
	             "\"connect_timeout_ms\":%llu,\"idle_timeout_ms\":%llu,"
	             "\"max_connections\":%u,\"max_connections_per_peer\":%u},"
	             "\"tls\":{\"min_version\":\"%s\","
	             "\"session_resumption\":%s}",
	             (unsigned long long)tc->handshake_timeout_ms,
	             (unsigned long long)tc->connect_timeout_ms,
	             (unsigned long long)tc->idle_timeout_ms,
	             tc->max_connections, tc->max_connections_per_peer,
	             tc->tls_min == TLS1_2_VERSION ? "1.2" : "1.3",
	             tc->session_resumption ? "true" : "false");
	pp_sb_printf(b, ",\"open_connections\":%u,\"open_by_peer\":{",
	             tc->limit ? pp_limit_open(tc->limit) : 0);
	if (tc->limit != NULL)
		pp_limit_peers_each(tc->limit, peer_open_json, &l);
	pp_sb_puts(b, "},\"certificates\":[");
	l.n = 0;
	each_cert(tc, cert_json, &l);
	pp_sb_puts(b, "]}");
}

static void
peer_json(void *arg, const char *id, enum pp_peer_state s)
{
	struct json_list *l = arg;

	pp_sb_puts(l->out, l->n++ ? ",{\"id\":" : "{\"id\":");
	pp_sb_json_str(l->out, id);
	pp_sb_puts(l->out, ",\"state\":");
	pp_sb_json_str(l->out, pp_nodedata_state_name(s));
	pp_sb_puts(l->out, "}");
}

void
pp_report_status(const struct pp_ops_view *v, struct pp_sb *b)
{
	const struct pp_config *c = v->conf;
	char started[32];

	iso8601((int64_t)(v->start_unix_ms / 1000), started, sizeof(started));
	pp_sb_puts(b, "{\"version\":");
	pp_sb_json_str(b, PEERPROXY_VERSION);
	pp_sb_puts(b, ",\"tls_library\":");
	pp_sb_json_str(b, OpenSSL_version(OPENSSL_VERSION));
	pp_sb_puts(b, ",\"started\":");
	pp_sb_json_str(b, started);
	pp_sb_printf(b,
	             ",\"uptime_seconds\":%.3f,\"workers\":%d,"
	             "\"draining\":%s,\"reloads\":{\"success\":%llu,"
	             "\"failure\":%llu,\"last_error\":",
	             (double)v->uptime_ms / 1000.0, v->workers,
	             v->draining ? "true" : "false",
	             (unsigned long long)v->reloads_ok,
	             (unsigned long long)v->reloads_failed);
	pp_sb_json_str(b, v->last_reload_error);
	pp_sb_puts(b, "},\"tunnels\":[");
	for (size_t i = 0; i < c->ntunnels; i++) {
		pp_sb_puts(b, i ? "," : "");
		tunnel_json(b, &c->tunnels[i]);
	}
	pp_sb_puts(b, "],\"nodedata\":");
	if (c->nodedata == NULL) {
		pp_sb_puts(b, "null");
	} else {
		struct json_list l = {b, 0};
		pp_sb_puts(b, "{\"path\":");
		pp_sb_json_str(b, c->nodedata->path);
		pp_sb_puts(b, ",\"peers\":[");
		pp_nodedata_peers(c->nodedata->path, peer_json, &l, NULL);
		pp_sb_puts(b, "]}");
	}
	pp_sb_puts(b, "}\n");
}
