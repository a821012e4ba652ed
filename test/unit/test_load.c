/*
 * The YAML configuration loader: the model it builds, and the problems it
 * reports (file:line:column: key path: what is wrong).
 */

#include <criterion/criterion.h>

#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config/load.h"
#include "support.h"

static char dir[512];

/* Write ${text} to a config file in a fresh directory; return its path. */
static const char *
write_config(const char *text)
{
	static char path[600];
	FILE *f;

	t_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/peerproxy.yaml", dir);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	return (path);
}

/* Load ${text}; expect failure; return all problems joined by newlines. */
static char *
load_fails(const char *text)
{
	struct pp_problems p = {0};
	struct pp_config *c = pp_config_load(write_config(text), &p);
	size_t len = 1;
	char *all;

	cr_assert_null(c, "the configuration should be refused");
	cr_assert_gt(p.n, 0);
	for (size_t i = 0; i < p.n; i++)
		len += strlen(p.items[i]) + 1;
	all = calloc(1, len);
	len = 0;
	for (size_t i = 0; i < p.n; i++) {
		size_t n = strlen(p.items[i]);

		memcpy(all + len, p.items[i], n);
		all[len + n] = '\n';
		len += n + 1;
	}
	pp_problems_free(&p);
	return (all);
}

static struct pp_config *
load_ok(const char *text)
{
	struct pp_problems p = {0};
	struct pp_config *c = pp_config_load(write_config(text), &p);

	cr_assert_not_null(c, "refused: %s", p.n ? p.items[0] : "?");
	pp_problems_free(&p);
	return (c);
}

#define INBOUND                                                                \
	"inbound:\n"                                                           \
	"  - name: in\n"                                                       \
	"    listen: 127.0.0.1:8443\n"                                         \
	"    ca: ca.crt\n"                                                     \
	"    cert: /abs/server.crt\n"                                          \
	"    key: server.key\n"

Test(load, a_full_file_builds_the_model)
{
	struct pp_config *c = load_ok(
	    "workers: 3\n"
	    "log: {level: warn, format: json}\n"
	    "limits: {handshake_timeout: 2s, idle_timeout: 1m, "
	    "drain_timeout: 7s, max_connections: 50}\n"
	    "tls: {min_version: \"1.2\", session_resumption: false}\n" INBOUND
	    "    allow_peers: [1234abcd]\n"
	    "    allow_dns: a.example\n"
	    "    target: unix:/run/app.sock\n"
	    "    limits: {idle_timeout: 5s}\n"
	    "outbound:\n"
	    "  - name: out\n"
	    "    listen: 127.0.0.1:7000\n"
	    "    targets: [a.example:1, \"[::1]:2\"]\n"
	    "    ca: ca.crt\n"
	    "    cert: c.crt\n"
	    "    chain: sub-ca.crt\n"
	    "    key: k.key\n"
	    "    peer: 1234abcd\n"
	    "    server_name: null\n");
	struct pp_tunnel_conf *in = &c->tunnels[0], *out = &c->tunnels[1];
	char want[700];

	cr_assert_eq(c->ntunnels, 2);
	cr_assert_eq(c->workers, 3);
	cr_assert_eq(c->log_level, PP_LOG_WARN);
	cr_assert_eq(c->log_json, 1);
	cr_assert_eq(c->drain_timeout_ms, 7000);
	cr_assert_str_eq(in->name, "in");
	cr_assert_eq(in->kind, PP_TUNNEL_INBOUND);
	cr_assert_eq(in->listen.port, 8443);
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	cr_assert_str_eq(in->ca_file, want, "relative to the file's dir");
	cr_assert_str_eq(in->cert_file, "/abs/server.crt");
	cr_assert_eq(in->handshake_timeout_ms, 2000, "inherited");
	cr_assert_eq(in->idle_timeout_ms, 5000, "overridden");
	cr_assert_eq(in->max_connections, 50);
	cr_assert_eq(in->tls_min, TLS1_2_VERSION);
	cr_assert_eq(in->session_resumption, 0);
	cr_assert_eq(in->allow.npeers, 1);
	cr_assert_eq(in->allow.ndns, 1, "a single value is a list of one");
	cr_assert_eq(in->ntargets, 1);
	cr_assert_str_eq(in->targets[0].path, "/run/app.sock");
	cr_assert_eq(out->ntargets, 2);
	cr_assert_str_eq(out->targets[1].host, "::1");
	cr_assert_str_eq(out->peer, "1234abcd");
	cr_assert_null(out->server_name, "null means unset");
	cr_assert_eq(out->idle_timeout_ms, 60000);
	pp_config_unref(c);
}

Test(load, limits_after_the_tunnels_still_apply)
{
	struct pp_config *c =
	    load_ok(INBOUND "    target: 127.0.0.1:1\n"
	                    "limits: {connect_timeout: 3s}\n");

	cr_assert_eq(c->tunnels[0].connect_timeout_ms, 3000);
	pp_config_unref(c);
}

/* Every tunnel starts from c->defaults: the README's values, then the
 * file's top-level limits: and tls:, so tunnels added after the YAML (node
 * data, flags) get them as well. */
Test(load, one_set_of_defaults_for_every_tunnel)
{
	struct pp_config *c = pp_config_new(), *f;
	const struct pp_tunnel_conf *t;

	cr_assert_not_null(
	    t = pp_config_add_tunnel(c, PP_TUNNEL_OUTBOUND, "x"));
	cr_assert_eq(t->handshake_timeout_ms, 10000);
	cr_assert_eq(t->connect_timeout_ms, 5000);
	cr_assert_eq(t->idle_timeout_ms, 0);
	cr_assert_eq(t->max_connections, 10000);
	cr_assert_eq(t->max_connections_per_peer, 0);
	cr_assert_eq(t->tls_min, TLS1_3_VERSION);
	cr_assert_eq(t->session_resumption, 1);
	pp_config_unref(c);

	f = load_ok("limits: {max_connections: 3, max_connections_per_peer: 2,"
	            " connect_timeout: 1s}\n"
	            "tls: {min_version: \"1.2\"}\n" INBOUND
	            "    target: 127.0.0.1:1\n");
	cr_assert_eq(f->defaults.max_connections, 3);
	cr_assert_eq(f->defaults.max_connections_per_peer, 2);
	cr_assert_eq(f->defaults.connect_timeout_ms, 1000);
	cr_assert_eq(f->defaults.handshake_timeout_ms, 10000,
	             "not in the file");
	cr_assert_eq(f->defaults.tls_min, TLS1_2_VERSION);
	cr_assert_not_null(
	    t = pp_config_add_tunnel(f, PP_TUNNEL_INBOUND, "late"));
	cr_assert_eq(t->max_connections, 3, "a tunnel added after the file");
	cr_assert_eq(t->max_connections_per_peer, 2);
	cr_assert_eq(t->connect_timeout_ms, 1000);
	cr_assert_eq(t->tls_min, TLS1_2_VERSION);
	cr_assert_eq(f->tunnels[0].max_connections, 3, "the file's own tunnel");
	pp_config_unref(f);
}

Test(load, routes_match_in_order)
{
	struct pp_config *c =
	    load_ok(INBOUND "    routes:\n"
	                    "      - {peers: [aaaaaaaa], target: "
	                    "127.0.0.1:2000}\n"
	                    "      - {peers: [\"*\"], target: "
	                    "unix:/run/app.sock}\n");
	const struct pp_tunnel_conf *t = &c->tunnels[0];
	const struct pp_addr *a;
	size_t n;

	cr_assert_eq(t->nroutes, 2);
	a = pp_config_route(t, "aaaaaaaa", &n);
	cr_assert(a != NULL && n == 1 && a->port == 2000);
	a = pp_config_route(t, "bbbbbbbb", &n);
	cr_assert(a != NULL && strcmp(a->path, "/run/app.sock") == 0);
	pp_config_unref(c);
}

Test(load, no_route_matches)
{
	struct pp_config *c = load_ok(INBOUND "    routes:\n"
	                                      "      - {peers: [aaaaaaaa], "
	                                      "target: 127.0.0.1:2000}\n");
	size_t n = 9;

	cr_assert_null(pp_config_route(&c->tunnels[0], "bbbbbbbb", &n));
	cr_assert_null(pp_config_route(&c->tunnels[0], "", &n));
	cr_assert_eq(n, 0);
	pp_config_unref(c);
}

Test(load, unknown_key_is_named_by_path_line_and_column)
{
	char *p = load_fails(INBOUND "    alow_peers: [x]\n"
	                             "    target: 127.0.0.1:1\n");

	cr_assert(t_contains(p, "peerproxy.yaml:7:5: inbound[0].alow_peers: "
	                        "unknown key"),
	          "%s", p);
	free(p);
}

Test(load, every_problem_is_listed)
{
	char *p = load_fails("workers: many\n"
	                     "limits: {idle_timeout: soon}\n"
	                     "tls: {min_version: \"1.1\"}\n"
	                     "log: {level: loud}\n"
	                     "bogus: 1\n" INBOUND "    target: nowhere\n"
	                     "outbound:\n"
	                     "  - name: in\n"
	                     "    listen: 127.0.0.1:8443\n");

	cr_assert(t_contains(p, "workers: \"many\""), "%s", p);
	cr_assert(t_contains(p, "limits.idle_timeout: \"soon\" is not a "
	                        "duration"),
	          "%s", p);
	cr_assert(t_contains(p, "tls.min_version"), "%s", p);
	cr_assert(t_contains(p, "log.level"), "%s", p);
	cr_assert(t_contains(p, ":5:1: bogus: unknown key"), "%s", p);
	cr_assert(t_contains(p, "inbound[0].target: \"nowhere\""), "%s", p);
	cr_assert(t_contains(p, "outbound[0]: name \"in\" is used twice"), "%s",
	          p);
	cr_assert(t_contains(p, "outbound[0]: targets must name"), "%s", p);
	cr_assert(t_contains(p, "outbound[0]: ca is required"), "%s", p);
	free(p);
}

Test(load, wrong_types_are_named)
{
	char *p = load_fails("inbound: {name: x}\n");

	cr_assert(t_contains(p, "inbound: expected a list of tunnels"), "%s",
	          p);
	free(p);
	p = load_fails(INBOUND "    target: 127.0.0.1:1\n"
	                       "    allow_peers: {a: b}\n");
	cr_assert(t_contains(p, "inbound[0].allow_peers: expected a list"),
	          "%s", p);
	free(p);
}

Test(load, target_xor_routes)
{
	char *p = load_fails(INBOUND);

	cr_assert(t_contains(p, "give either target or routes"), "%s", p);
	free(p);
}

/* An inbound tunnel must send its callers somewhere: an empty target or
 * an empty list of routes was accepted (found by config_fuzz, whose
 * accepted models must be whole; test/fuzz/regressions/config/). */
Test(load, an_inbound_tunnel_needs_a_target_or_a_route)
{
	static const char *const empty[] = {"    target: []\n",
	                                    "    target: ~\n", "    target:\n",
	                                    "    routes: []\n"};
	char text[512];

	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		char *p;

		snprintf(text, sizeof(text), "%s%s", INBOUND, empty[i]);
		p = load_fails(text);
		cr_assert(t_contains(p, ":7:") && t_contains(p, "is empty"),
		          "%s: %s", empty[i], p);
		free(p);
	}
}

Test(load, yaml_syntax_errors_have_line_and_column)
{
	char *p = load_fails("inbound:\n  - name: [\n");

	cr_assert(t_contains(p, "peerproxy.yaml:3:1: YAML error:"), "%s", p);
	free(p);
}

Test(load, duplicate_keys_are_refused)
{
	char *p = load_fails("workers: 1\nworkers: 2\n");

	cr_assert(t_contains(p, ":2:1: workers: duplicate key"), "%s", p);
	free(p);
}

Test(load, empty_and_missing_files)
{
	struct pp_problems p = {0};
	char *all;

	cr_assert_null(pp_config_load("/nonexistent/peerproxy.yaml", &p));
	cr_assert(t_contains(p.items[0], "/nonexistent/peerproxy.yaml"));
	pp_problems_free(&p);
	all = load_fails("");
	cr_assert(t_contains(all, "empty"), "%s", all);
	free(all);
	all = load_fails("workers: 1\n");
	cr_assert(t_contains(all, "no inbound or outbound tunnel"), "%s", all);
	free(all);
}

Test(load, telling_the_app_who_called)
{
	struct pp_config *c = load_ok(INBOUND "    target: 127.0.0.1:1\n"
	                                      "    proxy_protocol: v2\n"
	                                      "    proxy_protocol_cert: true\n"
	                                      "    http_identity: yes\n"
	                                      "  - name: plain\n"
	                                      "    listen: 127.0.0.1:8444\n"
	                                      "    ca: ca.crt\n"
	                                      "    cert: c.crt\n"
	                                      "    key: k.key\n"
	                                      "    target: 127.0.0.1:1\n");
	char *p;

	cr_assert_eq(c->tunnels[0].proxy_protocol, PP_PROXY_PROTOCOL_V2);
	cr_assert_eq(c->tunnels[0].proxy_protocol_cert, 1);
	cr_assert_eq(c->tunnels[0].http_identity, 1);
	cr_assert_eq(c->tunnels[1].proxy_protocol, PP_PROXY_PROTOCOL_OFF,
	             "off by default");
	cr_assert_eq(c->tunnels[1].http_identity, 0);
	pp_config_unref(c);

	p = load_fails(INBOUND "    target: 127.0.0.1:1\n"
	                       "    proxy_protocol: 2\n"
	                       "    proxy_protocol_cert: true\n");
	cr_assert(t_contains(p, "inbound[0].proxy_protocol: \"2\" is not off, "
	                        "v1 or v2"),
	          "%s", p);
	cr_assert(t_contains(p, "proxy_protocol_cert needs proxy_protocol: v2"),
	          "%s", p);
	free(p);
	p = load_fails("outbound:\n"
	               "  - name: out\n"
	               "    listen: 127.0.0.1:7000\n"
	               "    targets: [a.example:1]\n"
	               "    ca: ca.crt\n"
	               "    cert: c.crt\n"
	               "    key: k.key\n"
	               "    proxy_protocol: v1\n");
	cr_assert(t_contains(p, "outbound[0].proxy_protocol: applies to "
	                        "inbound tunnels only"),
	          "%s", p);
	free(p);
}

/* Every example in config/ loads (its files need not exist to load). */
Test(load, the_examples_in_config_load)
{
	static const char *const examples[] = {"tunnels.yaml",
	                                       "swaptacular-node.yaml"};
	char path[1024];

	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		struct pp_problems p = {0};
		struct pp_config *c;

		snprintf(path, sizeof(path), "%s/config/%s", PP_SOURCE_DIR,
		         examples[i]);
		c = pp_config_load(path, &p);
		cr_assert_not_null(c, "%s: %s", path, p.n ? p.items[0] : "?");
		cr_assert_gt(c->ntunnels, 0);
		pp_config_unref(c);
		pp_problems_free(&p);
	}
}

Test(load, nodedata_keys_are_checked)
{
	char *p = load_fails("nodedata:\n"
	                     "  cert: server.crt\n"
	                     "  inbound: {listen: 0.0.0.0:1234}\n"
	                     "  outbound: {connect_listen: nowhere}\n"
	                     "  rescan: 1m\n");

	cr_assert(t_contains(p, "nodedata: path is required"), "%s", p);
	cr_assert(t_contains(p, "nodedata: key is required"), "%s", p);
	cr_assert(t_contains(p, "nodedata.inbound: target is required"), "%s",
	          p);
	cr_assert(
	    t_contains(p, "nodedata.outbound.connect_listen: \"nowhere\""),
	    "%s", p);
	cr_assert(t_contains(p, "nodedata.rescan: unknown key"), "%s", p);
	free(p);
}

Test(load, nodedata_needs_a_readable_node)
{
	char *p = load_fails("nodedata:\n"
	                     "  path: /nonexistent/nodedata\n"
	                     "  cert: server.crt\n"
	                     "  key: server.key\n"
	                     "  inbound: {listen: 0.0.0.0:1234, target: "
	                     "127.0.0.1:1235}\n");

	cr_assert(t_contains(p, "/nonexistent/nodedata/db/nodeid"), "%s", p);
	free(p);
}

/* ---- hostile files: bounded time and memory --------------------------- */

/* Seconds and kilobytes a load may take at most, even under ASan (whose
 * quarantine alone keeps up to 256 MiB of freed memory) on a loaded
 * machine; each file below took minutes or gigabytes before. */
#define HOSTILE_SECONDS 20.0
#define HOSTILE_KB      (768 * 1024)

/* Load the generated ${text} (freed here); expect a refusal in bounded
 * time and memory; return every problem joined by newlines. */
static char *
load_hostile(char *text)
{
	struct timespec t0, t1;
	struct rusage ru;
	char *all;
	double s;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	all = load_fails(text);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(text);
	s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(s, HOSTILE_SECONDS, "took %.1f s", s);
	cr_assert_eq(getrusage(RUSAGE_SELF, &ru), 0);
	cr_assert_lt(ru.ru_maxrss, HOSTILE_KB, "took %ld KB", ru.ru_maxrss);
	return (all);
}

/* ${head}, then ${body} ${n} times, then ${tail}, malloc'd. */
static char *
repeat(const char *head, const char *body, size_t n, const char *tail)
{
	size_t hl = strlen(head), bl = strlen(body), tl = strlen(tail);
	char *s = malloc(hl + bl * n + tl + 1), *p = s;

	cr_assert_not_null(s);
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += bl)
		memcpy(p, body, bl);
	memcpy(p, tail, tl + 1);
	return (s);
}

Test(load, deep_nesting_is_refused_at_once)
{
	/* 450k nested flow sequences: libyaml's scanner spends time
	 * quadratic in the depth (minutes here). */
	char *open = repeat("a: ", "[", 450000, ""), *text;
	char *p;

	text = repeat(open, "]", 450000, "\n");
	free(open);
	p = load_hostile(text);
	cr_assert(t_contains(p, ":1:") &&
	              t_contains(p, "nested deeper than 64"),
	          "%.300s", p);
	free(p);
	/* ... and block sequences, one inside the other on one line. */
	p = load_hostile(repeat("a:\n", "- ", 450000, "x\n"));
	cr_assert(t_contains(p, "nested deeper than 64"), "%.300s", p);
	free(p);
}

Test(load, a_flood_of_anchors_is_refused_at_once)
{
	/* libyaml checks each anchor against every earlier one. */
	char *text = malloc(1024 * 1024), *p;
	size_t n = 0;

	cr_assert_not_null(text);
	for (int i = 0; n < 1000000; i++)
		n += (size_t)sprintf(text + n, "k%d: &a%d v\n", i, i);
	p = load_hostile(text);
	cr_assert(t_contains(p, "more than 128 anchors"), "%.300s", p);
	free(p);
}

Test(load, a_mapping_of_many_keys_is_read_in_linear_time)
{
	/* Duplicate keys were found by comparing each key with all before
	 * it: 100k keys took minutes. */
	char *text = malloc(1024 * 1024), *p;
	size_t n = 0;

	cr_assert_not_null(text);
	for (int i = 0; n < 1000000; i++)
		n += (size_t)sprintf(text + n, "k%d: 1\n", i);
	p = load_hostile(text);
	cr_assert(t_contains(p, "k99999: unknown key"), "%.300s", p);
	free(p);
}

Test(load, aliases_cannot_amplify_the_file)
{
	/* A list of 5000 values aliased into 5000 tunnels: 25 million
	 * strings from 25 KB (a billion laughs). */
	char *list = repeat("l: &l [", "x,", 5000, "x]\n"), *head, *text, *p;

	cr_assert_not_null(head = malloc(strlen(list) + 256));
	sprintf(head,
	        "%st: &t {name: a, listen: \"127.0.0.1:1\", ca: c, cert: c, "
	        "key: k, target: \"127.0.0.1:2\", allow_cn: *l}\ninbound: [*t",
	        list);
	free(list);
	text = repeat(head, ",*t", 5000, "]\n");
	free(head);
	p = load_hostile(text);
	cr_assert(t_contains(p, "values than"), "%.300s", p);
	free(p);
}

Test(load, at_most_4096_tunnels)
{
	/* Every tunnel's name was compared with every other's. */
	char *p = load_hostile(repeat("inbound:\n", "- {}\n", 200000, ""));

	cr_assert(t_contains(p, "more than 4096 tunnels"), "%.300s", p);
	free(p);
}

Test(load, a_name_used_again_is_one_problem_per_tunnel)
{
	/* Each tunnel was named once per earlier namesake: 4096 tunnels
	 * called "a" made 8 million problems. */
	char *p = load_hostile(repeat("inbound:\n", "- {name: a}\n", 4000, ""));
	size_t n = 0;

	for (const char *q = p; (q = strstr(q, "is used twice")) != NULL; q++)
		n++;
	cr_assert_eq(n, 3999);
	free(p);
}

Test(load, aliases_still_share_values)
{
	struct pp_config *c = load_ok(
	    "limits: &limits {max_connections: 7}\n"
	    "inbound:\n"
	    "  - {name: a, listen: \"127.0.0.1:1\", target: \"127.0.0.1:2\",\n"
	    "     ca: ca.crt, cert: s.crt, key: s.key, limits: *limits,\n"
	    "     allow_peers: &peers [1234abcd, 5678ef01]}\n"
	    "  - {name: b, listen: \"127.0.0.1:3\", target: \"127.0.0.1:4\",\n"
	    "     ca: ca.crt, cert: s.crt, key: s.key, allow_peers: *peers}\n");

	cr_assert_eq(c->ntunnels, 2);
	cr_assert_eq(c->tunnels[0].max_connections, 7);
	cr_assert_eq(c->tunnels[1].allow.npeers, 2);
	cr_assert_str_eq(c->tunnels[1].allow.peers[1], "5678ef01");
	pp_config_unref(c);
}
