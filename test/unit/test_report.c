/*
 * What the admin endpoint reports: readiness against the validity of the
 * certificates a tunnel serves, the metrics exposition and the status
 * document, for configurations put together here from the generated PKI
 * (the expired and not-yet-valid forged vectors could never pass
 * pp_config_build, yet a running certificate can expire).
 */

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "config/config.h"
#include "ops/report.h"
#include "runtime/limits.h"
#include "support.h"
#include "tls/context.h"
#include "tls/pem.h"

/* A configuration with one inbound tunnel "t" serving the leaf of the
 * forged vector ${vector} (or of node0 for "genuine"). */
static struct pp_config *
config_serving(const char *vector)
{
	char path[1024], err[256];
	struct pp_config *c = pp_config_new();
	struct pp_tunnel_conf *t;
	STACK_OF(X509) * certs;

	cr_assert_not_null(c);
	t = pp_config_add_tunnel(c, PP_TUNNEL_INBOUND, "t");
	cr_assert_not_null(t);
	t_pki_path(path, sizeof(path), "nodes/forged/%s/chain.pem", vector);
	certs = pp_pem_load_certs(path, err, sizeof(err));
	cr_assert_not_null(certs, "%s: %s", path, err);
	t->ctx = SSL_CTX_new(TLS_with_buffers_method());
	cr_assert_not_null(t->ctx);
	cr_assert_eq(pp_tls_ctx_keep_certs(t->ctx, certs), 0);
	t->limit = pp_limit_get("t");
	return (c);
}

/* Assert that the report ${buf} contains ${needle}. */
static void
assert_has(const char *buf, const char *needle)
{
	cr_assert(strstr(buf, needle) != NULL, "no %s in:\n%s", needle, buf);
}

static struct pp_ops_view
view_of(const struct pp_config *c)
{
	struct pp_ops_view v = {.conf = c, .serving = 1, .workers = 1};
	return (v);
}

Test(report, ready_with_valid_certificates)
{
	struct pp_config *c = config_serving("genuine");
	struct pp_ops_view v = view_of(c);
	struct pp_sb b = {0};

	cr_assert_eq(pp_report_ready(&v, &b), 1);
	cr_assert_str_eq(b.buf, "{\"ready\":true}\n");
	pp_sb_free(&b);
	pp_config_unref(c);
}

Test(report, not_ready_with_an_expired_certificate)
{
	struct pp_config *c = config_serving("expired");
	struct pp_ops_view v = view_of(c);
	struct pp_sb b = {0};

	cr_assert_eq(pp_report_ready(&v, &b), 0);
	assert_has(b.buf, "\"reason\":\"certificate expired\"");
	assert_has(b.buf, "\"tunnel\":\"t\"");
	assert_has(b.buf, "\"certificate\":\"cert\"");
	assert_has(b.buf, "\"not_after\":\"");
	pp_sb_free(&b);
	pp_config_unref(c);
}

Test(report, not_ready_with_a_certificate_not_yet_valid)
{
	struct pp_config *c = config_serving("not-yet-valid");
	struct pp_ops_view v = view_of(c);
	struct pp_sb b = {0};

	cr_assert_eq(pp_report_ready(&v, &b), 0);
	assert_has(b.buf, "certificate not yet valid");
	assert_has(b.buf, "\"not_before\":\"");
	pp_sb_free(&b);
	pp_config_unref(c);
}

Test(report, draining_and_starting_are_not_ready)
{
	struct pp_config *c = config_serving("genuine");
	struct pp_ops_view v = view_of(c);
	struct pp_sb b = {0};

	v.draining = 1;
	cr_assert_eq(pp_report_ready(&v, &b), 0);
	cr_assert_str_eq(b.buf, "{\"ready\":false,\"reason\":\"draining\"}\n");
	pp_sb_free(&b);
	v.draining = 0;
	v.serving = 0;
	cr_assert_eq(pp_report_ready(&v, &b), 0);
	cr_assert_str_eq(b.buf, "{\"ready\":false,\"reason\":\"starting\"}\n");
	pp_sb_free(&b);
	pp_config_unref(c);
}

Test(report, metrics_and_status_describe_the_tunnel)
{
	struct pp_config *c = config_serving("genuine");
	struct pp_ops_view v = view_of(c);
	struct pp_sb b = {0};

	v.reloads_ok = 3;
	v.reloads_failed = 1;
	v.last_reload_error = "bad \"key\"";
	pp_tstats_result(pp_limit_stats(c->tunnels[0].limit),
	                 PP_RESULT_ESTABLISHED);
	pp_report_metrics(&v, &b);
	assert_has(b.buf, "peerproxy_connections_total{tunnel=\"t\","
	                  "result=\"established\"} 1\n");
	assert_has(b.buf, "peerproxy_reloads_total{result=\"success\"} "
	                  "3\n");
	assert_has(b.buf, "peerproxy_certificate_expiry_timestamp_"
	                  "seconds{tunnel=\"t\",certificate=\"cert\"} ");
	cr_assert_null(strstr(b.buf, "peerproxy_peers"), "no node data");
	pp_sb_free(&b);
	pp_report_status(&v, &b);
	assert_has(b.buf, "\"last_error\":\"bad \\\"key\\\"\"");
	assert_has(b.buf, "\"tunnels\":[{\"name\":\"t\",\"kind\":"
	                  "\"inbound\"");
	assert_has(b.buf, "\"nodedata\":null}");
	pp_sb_free(&b);
	pp_config_unref(c);
}

/* The value of the sample line starting with ${name} and a space. */
static double
sample(const char *buf, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = buf; p != NULL && *p != '\0';) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return (strtod(p + n + 1, NULL));
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : NULL;
	}
	cr_assert_fail("no sample %s in:\n%s", name, buf);
	return (-1);
}

Test(report, process_metrics_follow_the_process)
{
	struct pp_config *c = config_serving("genuine");
	struct pp_ops_view v = view_of(c);
	struct pp_sb b = {0};
	struct rlimit rl;
	double fds;
	int extra[5];

	v.start_unix_ms = 1700000000250ULL;
	pp_report_metrics(&v, &b);
	assert_has(b.buf, "# TYPE process_cpu_seconds_total counter\n");
	assert_has(b.buf, "# TYPE process_resident_memory_bytes gauge\n");
	cr_assert_gt(sample(b.buf, "process_resident_memory_bytes"), 1 << 20);
	cr_assert_geq(sample(b.buf, "process_virtual_memory_bytes"),
	              sample(b.buf, "process_resident_memory_bytes"));
	cr_assert_geq(sample(b.buf, "process_cpu_seconds_total"), 0);
	cr_assert_eq(sample(b.buf, "process_start_time_seconds"),
	             1700000000.25);
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur != RLIM_INFINITY)
		cr_assert_eq(sample(b.buf, "process_max_fds"),
		             (double)rl.rlim_cur);
	fds = sample(b.buf, "process_open_fds");
	cr_assert_geq(fds, 3);
	pp_sb_free(&b);
	/* Five more descriptors show as five more. */
	for (int i = 0; i < 5; i++)
		cr_assert_geq(extra[i] = dup(0), 0);
	pp_report_metrics(&v, &b);
	cr_assert_eq(sample(b.buf, "process_open_fds"), fds + 5);
	for (int i = 0; i < 5; i++)
		close(extra[i]);
	pp_sb_free(&b);
	pp_config_unref(c);
}
