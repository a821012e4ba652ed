/*
 * The YAML configuration loader: the model it builds, and the problems it
 * reports (file:line:column: key path: what is wrong).
 */

#include <criterion/criterion.h>

#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/load.h"
#include "config/nodedata.h"
#include "support.h"

static char dir[512];

/* The test's directory, made at its first write_config, goes with it. */
static void
teardown(void)
{
	t_rmtree(dir);
	dir[0] = '\0';
}

TestSuite(load, .fini = teardown);

/* Write ${text} to the config file of the test's directory; return its
 * path. */
static const char *
write_config(const char *text)
{
	static char path[600];
	FILE *f;

	if (dir[0] == '\0')
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
	for (size_t i = 0; i < p.n; i++) {
		strcat(all, p.items[i]);
		strcat(all, "\n");
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

Test(load, a_bad_nodedata_listen_is_one_problem)
{
	char *p = load_fails("nodedata:\n"
	                     "  path: /n\n  cert: c\n  key: k\n"
	                     "  inbound: {listen: 0.0.0.0:0, target: x:1}\n");

	cr_assert(t_contains(p, "nodedata.inbound.listen: \"0.0.0.0:0\": bad "
	                        "port"),
	          "%s", p);
	/* Given, if bad: not also "required". */
	cr_assert(!t_contains(p, "listen is required"), "%s", p);
	free(p);
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

/* ---- hostile files: bounded time and memory, errors naming the line ---- */

/* ${head}, then ${item} ${n} times, then ${tail}, malloc'd. */
static char *
repeat(const char *head, const char *item, size_t n, const char *tail)
{
	size_t hl = strlen(head), il = strlen(item), tl = strlen(tail);
	char *s = malloc(hl + il * n + tl + 1), *q = s;

	cr_assert_not_null(s);
	memcpy(q, head, hl);
	q += hl;
	for (size_t i = 0; i < n; i++, q += il)
		memcpy(q, item, il);
	memcpy(q, tail, tl + 1);
	return (s);
}

Test(load, aliases_are_refused_at_their_line)
{
	/* The first lines of a billion laughs: each alias would be walked
	 * once per use. */
	char *p = load_fails("a: &a [lol, lol, lol, lol, lol, lol, lol]\n"
	                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                     "inbound: [*b, *b, *b, *b, *b, *b, *b, *b]\n");

	cr_assert(t_contains(p, "peerproxy.yaml:2:8: YAML alias *a: aliases "
	                        "are not supported"),
	          "%s", p);
	free(p);
	/* A merge key is an alias too; an alias of an enclosing node would
	 * make the document a cycle. */
	p = load_fails("limits: &l {max_connections: 5}\n"
	               "tls: {<<: *l}\n");
	cr_assert(t_contains(p, ":2:11: YAML alias *l"), "%s", p);
	free(p);
	p = load_fails("inbound: &x [*x]\n");
	cr_assert(t_contains(p, ":1:14: YAML alias *x"), "%s", p);
	free(p);
}

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

Test(load, a_flood_of_anchors_is_refused_at_once)
{
	/* libyaml's loader looks each anchor up among every earlier one:
	 * 60,000 took 88 s.  The 129th is refused, at its line. */
	char *text = malloc(1024 * 1024), *p;
	size_t n = 0;

	cr_assert_not_null(text);
	for (int i = 0; n < 1000000; i++)
		n += (size_t)snprintf(text + n, 64, "k%d: &a%d v\n", i, i);
	p = load_fails(text);
	cr_assert(t_contains(p, "peerproxy.yaml:129:7: more than 128 YAML "
	                        "anchors (&a128)"),
	          "%.300s", p);
	free(p);
	free(text);
}

Test(load, an_anchor_without_an_alias_is_fine)
{
	struct pp_config *c =
	    load_ok("limits: &l {max_connections: 5}\n" INBOUND
	            "    target: 127.0.0.1:1\n");

	cr_assert_eq(c->tunnels[0].max_connections, 5);
	pp_config_unref(c);
}

Test(load, nesting_is_bounded_before_it_is_built)
{
	/* 100,000 levels: refused at the 65th, fast. */
	char *text = repeat("inbound: ", "[", 100000, "\n");
	char *p = load_fails(text);

	/* The root mapping is level 1; the 64th bracket is level 65. */
	cr_assert(t_contains(p, "peerproxy.yaml:1:73: nested more than 64 "
	                        "levels deep"),
	          "%s", p);
	free(p);
	free(text);
	/* Block style and flow mappings alike. */
	text = repeat("x:\n", "- ", 5000, "a\n");
	p = load_fails(text);
	cr_assert(t_contains(p, "nested more than 64 levels deep"), "%s", p);
	free(p);
	free(text);
	text = repeat("x: ", "{a: ", 5000, "\n");
	p = load_fails(text);
	cr_assert(t_contains(p, "nested more than 64 levels deep"), "%s", p);
	free(p);
	free(text);
}

Test(load, sixty_four_levels_are_allowed)
{
	/* The root and 63 lists: the parser takes it; the loader then says
	 * what is wrong with the key. */
	char *text = repeat("deep: ", "[", 63, "");
	char *all, *close = repeat(text, "]", 63, "\n");
	char *p = load_fails(close);

	cr_assert(t_contains(p, "deep: unknown key"), "%s", p);
	cr_assert(!t_contains(p, "nested"), "%s", p);
	free(p);
	free(close);
	free(text);
	text = repeat("deep: ", "[", 64, "");
	close = repeat(text, "]", 64, "\n");
	all = load_fails(close);
	cr_assert(t_contains(all, "nested more than 64 levels deep"), "%s",
	          all);
	free(all);
	free(close);
	free(text);
}

Test(load, the_number_of_values_is_bounded)
{
	/* Eight values before the list's items (root, inbound, its list,
	 * the tunnel, name, x, allow_peers, its list): with 99,992 items,
	 * 100,000 in all. */
	char *text = repeat("inbound:\n  - name: x\n    allow_peers: [", "a,",
	                    99992, "]\n");
	char *p = load_fails(text);

	cr_assert(!t_contains(p, "values in the file"), "%s", p);
	free(p);
	free(text);
	text = repeat("inbound:\n  - name: x\n    allow_peers: [", "a,", 99993,
	              "]\n");
	p = load_fails(text);
	cr_assert(t_contains(p, "peerproxy.yaml:3:200003: more than 100000 "
	                        "values in the file"),
	          "%s", p);
	free(p);
	free(text);
}

Test(load, a_mapping_of_many_keys_is_checked_in_time)
{
	/* 40,000 copies of one key: each is named a duplicate (only the
	 * first PP_PROBLEMS_KEPT are kept), without 40,000^2 comparisons. */
	char *text = repeat("", "workers: 1\n", 40000, "");
	struct pp_problems pr = {0};

	cr_assert_null(pp_config_load(write_config(text), &pr));
	cr_assert_eq(pp_problems_count(&pr), 39999);
	cr_assert_eq(pr.n, PP_PROBLEMS_KEPT);
	cr_assert(t_contains(pr.items[0], ":2:1: workers: duplicate key"), "%s",
	          pr.items[0]);
	pp_problems_free(&pr);
	free(text);
}

Test(load, the_number_of_tunnels_is_bounded)
{
	char *text = repeat("inbound:\n", "- {}\n", PP_TUNNELS_MAX + 1, "");
	char *p = load_fails(text);

	cr_assert(t_contains(p,
	                     "peerproxy.yaml:2:1: inbound: more than 10000 "
	                     "tunnels (10001, inbound and outbound together)"),
	          "%s", p);
	free(p);
	free(text);
}

Test(load, many_tunnels_with_one_name_are_each_named)
{
	char *text = repeat("inbound:\n", "- {name: same}\n", 3, "");
	char *p = load_fails(text);

	cr_assert(t_contains(p, ":2:3: inbound[0]: name \"same\" is used "
	                        "twice"),
	          "%s", p);
	cr_assert(t_contains(p, ":4:3: inbound[2]: name \"same\" is used "
	                        "twice"),
	          "%s", p);
	free(p);
	free(text);
}

Test(load, problems_past_the_kept_ones_are_counted_and_told)
{
	struct pp_problems pr = {0};
	struct t_capture cap;
	char *out;

	for (int i = 0; i < PP_PROBLEMS_KEPT + 5; i++)
		pp_problems_add(&pr, "problem %d", i);
	pp_problems_warn(&pr, "a warning");
	cr_assert_eq(pr.n, PP_PROBLEMS_KEPT);
	cr_assert_eq(pp_problems_count(&pr), PP_PROBLEMS_KEPT + 5);
	t_capture_begin(&cap);
	pp_problems_print(&pr, "x: ", stderr);
	fflush(stderr);
	out = t_capture_end(&cap);
	cr_assert(t_contains(out, "x: problem 99\nx: ... and 5 more "
	                          "problems\nx: warning: a warning\n"),
	          "%s", out);
	free(out);
	pp_problems_free(&pr);
}

Test(load, a_config_larger_than_its_limit_is_refused_unread)
{
	struct pp_problems pr = {0};
	const char *path = write_config("workers: 1\n");

	cr_assert_eq(truncate(path, 200 * 1000 * 1000), 0);
	cr_assert_null(pp_config_load(path, &pr));
	cr_assert_eq(pr.n, 1);
	cr_assert(t_contains(pr.items[0], path), "%s", pr.items[0]);
	cr_assert(t_contains(pr.items[0], "larger than the 1 MiB limit"), "%s",
	          pr.items[0]);
	pp_problems_free(&pr);
}

/* A node data tree at ${root}: node 1234abcd with one active peer ${peer}
 * whose stomp.toml names one server. */
static void
make_node(const char *root, const char *peer)
{
	char p[8192];

	cr_assert_eq(
	    t_sh("mkdir -p '%s/db' '%s/peers/%s/nodeinfo'", root, root, peer),
	    0);
	snprintf(p, sizeof(p), "%s/db/nodeid", root);
	t_write(p, "1234abcd\n");
	snprintf(p, sizeof(p), "%s/peers/%s/ACTIVE", root, peer);
	t_write(p, "");
	snprintf(p, sizeof(p), "%s/peers/%s/root-ca.crt", root, peer);
	t_write(p, "");
	snprintf(p, sizeof(p), "%s/peers/%s/sub-ca.crt", root, peer);
	t_write(p, "");
	snprintf(p, sizeof(p), "%s/peers/%s/nodeinfo/stomp.toml", root, peer);
	t_write(p, "servers = [\"127.0.0.1:1234\"]\n");
}

/* Load a node data config for ${root} with outbound sockets in ${sockets};
 * return the problems (errors and warnings) joined by newlines, and the
 * configuration in ${out} (NULL if refused). */
static char *
load_node(const char *root, const char *sockets, struct pp_config **out)
{
	struct pp_problems p = {0};
	char text[8192 + 512], *all;
	size_t len = 1;

	snprintf(text, sizeof(text),
	         "nodedata:\n"
	         "  path: %s\n"
	         "  cert: server.crt\n"
	         "  key: server.key\n"
	         "  outbound: {socket_dir: %s}\n",
	         root, sockets);
	*out = pp_config_load(write_config(text), &p);
	for (size_t i = 0; i < p.n; i++)
		len += strlen(p.items[i]) + 1;
	for (size_t i = 0; i < p.nwarnings; i++)
		len += strlen(p.warnings[i]) + 1;
	cr_assert_not_null(all = calloc(1, len));
	for (size_t i = 0; i < p.n; i++)
		strcat(strcat(all, p.items[i]), "\n");
	for (size_t i = 0; i < p.nwarnings; i++)
		strcat(strcat(all, p.warnings[i]), "\n");
	pp_problems_free(&p);
	return (all);
}

#define PEER32 "0123456789abcdef0123456789abcdef"

/* A node data directory 300 bytes deep is an ordinary path: every peer
 * file under it must be found.  (The stomp.toml path was built in 200
 * bytes: the peer was skipped, "cannot open" a cut name.) */
Test(load, nodedata_deep_path_keeps_its_peers)
{
	char base[512], root[1024], sockets[600];
	struct pp_config *c;
	char *probs;
	size_t i;

	t_tmpdir(base, sizeof(base));
	snprintf(root, sizeof(root), "%s/%s/%s/%s/node", base,
	         "a-rather-long-directory-name-for-a-node-data-volume-000000",
	         "a-rather-long-directory-name-for-a-node-data-volume-111111",
	         "a-rather-long-directory-name-for-a-node-data-volume-222222");
	cr_assert_gt(strlen(root), 200);
	snprintf(sockets, sizeof(sockets), "%s/s", base);
	make_node(root, PEER32);
	probs = load_node(root, sockets, &c);
	cr_assert_not_null(c, "%s", probs);
	cr_assert_eq(probs[0], '\0', "no problem expected: %s", probs);
	for (i = 0; i < c->ntunnels; i++)
		if (strcmp(c->tunnels[i].name, "peer-" PEER32) == 0)
			break;
	cr_assert_lt(i, c->ntunnels, "no tunnel for the peer");
	cr_assert_eq(c->tunnels[i].ntargets, 1);
	cr_assert_str_eq(c->tunnels[i].targets[0].host, "127.0.0.1");
	pp_config_unref(c);
	t_rmtree(base);
	free(probs);
}

/* A peer socket name over sun_path's 107 bytes is refused naming the whole
 * socket path, never cut to another name. */
Test(load, nodedata_overlong_socket_is_named)
{
	char base[512], root[600], sockets[600];
	struct pp_config *c;
	char *probs;

	t_tmpdir(base, sizeof(base));
	snprintf(root, sizeof(root), "%s/node", base);
	snprintf(
	    sockets, sizeof(sockets), "%s/%s", base,
	    "sockets-in-a-directory-whose-name-is-long-enough-to-overflow");
	make_node(root, PEER32);
	probs = load_node(root, sockets, &c);
	cr_assert_null(c);
	cr_assert(t_contains(probs, "nodedata.outbound.socket_dir: peer " PEER32
	                            ": socket "),
	          "%s", probs);
	cr_assert(t_contains(probs, sockets), "%s", probs);
	cr_assert(t_contains(probs, "/" PEER32 ".sock is longer than the 107 "
	                            "bytes of a unix socket path"),
	          "%s", probs);
	t_rmtree(base);
	free(probs);
}

/* rescan_interval: a minute unless set; 0s (no timed rescan) is taken. */
Test(load, nodedata_rescan_interval_defaults_to_60s)
{
	static const struct {
		const char *line;
		uint64_t ms;
	} cases[] = {{"", 60000},
	             {"  rescan_interval: 0s\n", 0},
	             {"  rescan_interval: 2m\n", 120000}};
	char base[512], root[600], text[2048];
	struct pp_problems p = {0};
	struct pp_config *c;

	t_tmpdir(base, sizeof(base));
	snprintf(root, sizeof(root), "%s/node", base);
	make_node(root, PEER32);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
		         "nodedata:\n"
		         "  path: %s\n"
		         "  cert: server.crt\n"
		         "  key: server.key\n"
		         "  outbound: {connect_listen: 127.0.0.1:3128}\n"
		         "%s",
		         root, cases[i].line);
		c = pp_config_load(write_config(text), &p);
		cr_assert_not_null(c, "%s", p.n ? p.items[0] : "");
		cr_assert_not_null(c->nodedata);
		cr_assert_eq(c->nodedata->rescan_ms, cases[i].ms, "%s: %llu",
		             cases[i].line,
		             (unsigned long long)c->nodedata->rescan_ms);
		pp_config_unref(c);
		pp_problems_free(&p);
	}
	t_rmtree(base);
}

/* The README's numbers: a socket_dir of 69 bytes leaves room for a 32-digit
 * id's "/<id>.sock" in the 107 bytes of a unix socket path; 70 does not. */
Test(load, nodedata_socket_dir_of_69_bytes_fits_70_does_not)
{
	char base[512], root[600], sockets[600];
	struct pp_config *c;
	char *probs;

	t_tmpdir(base, sizeof(base));
	snprintf(root, sizeof(root), "%s/node", base);
	make_node(root, PEER32);
	cr_assert_lt(strlen(base) + 2, 69, "the test directory is too deep");
	for (size_t len = 69; len <= 70; len++) {
		snprintf(sockets, sizeof(sockets), "%s/", base);
		while (strlen(sockets) < len)
			strcat(sockets, "s");
		cr_assert_eq(strlen(sockets), len);
		probs = load_node(root, sockets, &c);
		if (len == 69) {
			cr_assert_not_null(c, "%s", probs);
			cr_assert(!t_contains(probs, "socket_dir"), "%s",
			          probs);
			pp_config_unref(c);
		} else {
			cr_assert_null(c);
			cr_assert(t_contains(probs,
			                     "is longer than the 107 "
			                     "bytes of a unix socket path"),
			          "%s", probs);
		}
		free(probs);
	}
	t_rmtree(base);
}

/* The README's number: a node data path of up to 4003 bytes is taken
 * (and then fails for what is, or is not, under it), one of 4004 bytes is
 * refused for its length. */
Test(load, nodedata_path_limit_is_4003_bytes)
{
	char root[4100];
	struct pp_config *c;
	char *probs;

	for (size_t len = 4003; len <= 4004; len++) {
		memset(root, 'x', len);
		root[0] = '/';
		root[len] = '\0';
		probs = load_node(root, "/tmp", &c);
		cr_assert_null(c);
		if (len == 4003) {
			cr_assert(!t_contains(probs, "is longer than"), "%s",
			          probs);
			cr_assert(t_contains(probs, "xxx/db/nodeid"), "%s",
			          probs);
		} else {
			cr_assert(t_contains(probs, "xxx\" is longer than 4003 "
			                            "bytes"),
			          "%s", probs);
		}
		free(probs);
	}
}

/* A node data path so long that the files under it would pass PATH_MAX
 * is refused by name (it was cut, and the error named another file). */
Test(load, nodedata_path_over_path_max_is_refused)
{
	char root[4200];
	struct pp_config *c;
	char *probs;

	memset(root, 'x', sizeof(root) - 1);
	root[0] = '/';
	root[sizeof(root) - 1] = '\0';
	probs = load_node(root, "/tmp", &c);
	cr_assert_null(c);
	cr_assert(t_contains(probs, "nodedata.path: \"/xxx"), "%s", probs);
	cr_assert(t_contains(probs, "xxx\" is longer than "), "%s", probs);
	free(probs);
}
