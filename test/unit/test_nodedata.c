/*
 * Node data as configuration: which entries of peers/ are peers, and what
 * becomes of the rest; the files a watch follows; the gate of the tunnels
 * that admit peers.  Each test copies node0 of the generated PKI
 * ($PEERPROXY_TEST_PKI/nodes) into a private directory it may change.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config/nodedata.h"
#include "support.h"

static struct t_node nodes[3];
static char dir[512];  /* the test's private directory */
static char node[600]; /* dir/node0: a copy of node0's node data */

static void
setup(void)
{
	t_nodes(nodes, 3);
	t_tmpdir(dir, sizeof(dir));
	t_path(node, sizeof(node), dir, "node0");
	cr_assert_eq(t_sh("cp -r '%s' '%s'", nodes[0].dir, node), 0);
}

static void
teardown(void)
{
	t_rmtree(dir);
}

TestSuite(nodedata, .init = setup, .fini = teardown, .timeout = 60);

/* node/rel */
static const char *
in_node(int slot, const char *rel)
{
	static char bufs[4][1200];

	return (t_path(bufs[slot], sizeof(bufs[slot]), node, rel));
}

/* node/peers/name, or node/peers/name/file */
static const char *
peer_path(int slot, const char *name, const char *file)
{
	static char bufs[4][1200];

	snprintf(bufs[slot], sizeof(bufs[slot]), "%s/peers/%s%s%s", node, name,
	         file ? "/" : "", file ? file : "");
	return (bufs[slot]);
}

/* The peers pp_nodedata_peers reports, as "id=state " words. */
struct seen {
	char text[4096];
	int n;
};

static void
record(void *arg, const char *id, enum pp_peer_state s)
{
	struct seen *seen = arg;
	size_t used = strlen(seen->text);

	snprintf(seen->text + used, sizeof(seen->text) - used, "%s=%s ", id,
	         pp_nodedata_state_name(s));
	seen->n++;
}

/* Every warning of ${p}, one per line. */
static char *
warnings(const struct pp_problems *p)
{
	static char all[8192];

	all[0] = '\0';
	for (size_t i = 0; i < p->nwarnings; i++) {
		strncat(all, p->warnings[i], sizeof(all) - strlen(all) - 2);
		strcat(all, "\n");
	}
	return (all);
}

Test(nodedata, only_node_id_directories_are_peers)
{
	struct pp_problems p = {0};
	struct seen seen = {0};
	char outside[600];
	const char *w;

	/* Entries that must never reach a path. */
	cr_assert_eq(mkdir(peer_path(0, "..evil", NULL), 0755), 0);
	cr_assert_eq(mkdir(peer_path(0, ".hidden", NULL), 0755), 0);
	cr_assert_eq(mkdir(peer_path(0, "ABCDEF01", NULL), 0755), 0);
	cr_assert_eq(mkdir(peer_path(0, "bad\nline", NULL), 0755), 0);
	t_write(peer_path(0, "0123abcd", NULL), "a file\n");
	/* A peer directory that is a link to elsewhere. */
	t_path(outside, sizeof(outside), dir, "outside");
	cr_assert_eq(mkdir(outside, 0755), 0);
	t_write(in_node(1, "../outside/ACTIVE"), "");
	cr_assert_eq(symlink(outside, peer_path(0, "fedcba98", NULL)), 0);

	cr_assert_eq(pp_nodedata_peers(node, record, &seen, &p), 2);
	cr_assert(t_contains(seen.text, nodes[1].id), "%s", seen.text);
	cr_assert(t_contains(seen.text, nodes[2].id), "%s", seen.text);
	cr_assert(!t_contains(seen.text, "fedcba98"), "%s", seen.text);
	w = warnings(&p);
	cr_assert_eq(p.nwarnings, 6, "%s", w);
	cr_assert(t_contains(w, "/peers/..evil skipped: not a node id"), "%s",
	          w);
	cr_assert(t_contains(w, "/peers/.hidden skipped: not a node id"), "%s",
	          w);
	cr_assert(t_contains(w, "/peers/ABCDEF01 skipped: not a node id"), "%s",
	          w);
	cr_assert(t_contains(w, "/peers/bad\\x0aline skipped"), "%s", w);
	cr_assert(t_contains(w, "/peers/0123abcd skipped: not a directory"),
	          "%s", w);
	cr_assert(t_contains(w, "/peers/fedcba98 skipped: a symbolic link"),
	          "%s", w);
	pp_problems_free(&p);
}

Test(nodedata, states_come_from_the_markers)
{
	struct seen seen = {0};
	char want[200];

	cr_assert_eq(unlink(peer_path(0, nodes[1].id, "ACTIVE")), 0);
	t_write(peer_path(0, nodes[2].id, "DEACTIVATED"), "now\n");
	cr_assert_eq(pp_nodedata_peers(node, record, &seen, NULL), 2);
	snprintf(want, sizeof(want), "%s=inactive", nodes[1].id);
	cr_assert(t_contains(seen.text, want), "%s", seen.text);
	snprintf(want, sizeof(want), "%s=deactivated", nodes[2].id);
	cr_assert(t_contains(seen.text, want), "%s", seen.text);
	cr_assert_str_eq(pp_nodedata_state_name(PP_PEER_ACTIVE), "active");
}

static int
strp_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* The ${n} strings ${v} sorted, one per line, into ${out}. */
static const char *
sorted_lines(char **v, size_t n, char *out, size_t len)
{
	qsort(v, n, sizeof(*v), strp_cmp);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strncat(out, v[i], len - strlen(out) - 2);
		strcat(out, "\n");
	}
	return (out);
}

/* The paths pp_nodedata_watch_paths gives for node, as sorted_lines puts
 * them; their number in ${n}. */
static const char *
watch_paths(size_t *n)
{
	static char all[8192];
	struct pp_nodedata nd = {.path = node};
	char **v = NULL;

	*n = pp_nodedata_watch_paths(&nd, &v);
	cr_assert_not_null(v);
	sorted_lines(v, *n, all, sizeof(all));
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	free(v);
	return (all);
}

/* The files of peer ${i} a watch follows, appended to ${v} from ${k}. */
static size_t
peer_watch(char **v, size_t k, int i)
{
	static const char *const files[] = {
	    "ACTIVE",     "DEACTIVATED", "root-ca.crt",
	    "sub-ca.crt", "nodeinfo",    "nodeinfo/stomp.toml"};

	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++)
		snprintf(v[k++], 1200, "%s",
		         peer_path(0, nodes[i].id, files[f]));
	return (k);
}

Test(nodedata, the_watch_follows_the_peers_directory_and_every_peer_file)
{
	static char paths[14][1200], want[8192];
	char *v[14];
	size_t n, k = 0;
	const char *got;

	/* Neither is a peer: no file of theirs is watched. */
	cr_assert_eq(mkdir(peer_path(0, "..evil", NULL), 0755), 0);
	cr_assert_eq(symlink("/etc", peer_path(0, "0badc0de", NULL)), 0);
	for (int i = 0; i < 14; i++)
		v[i] = paths[i];
	snprintf(v[k++], sizeof(paths[0]), "%s/peers/.", node);
	snprintf(v[k++], sizeof(paths[0]), "%s/db/nodeid", node);
	k = peer_watch(v, k, 1);
	k = peer_watch(v, k, 2);
	sorted_lines(v, k, want, sizeof(want));
	got = watch_paths(&n);
	cr_assert_eq(n, 14, "%s", got);
	cr_assert_str_eq(got, want);
	/* A peer without nodeinfo/: nodeinfo is followed (its coming back is
	 * a change), its stomp.toml is not (a missing directory cannot be
	 * watched). */
	cr_assert_eq(t_sh("rm -r '%s'", peer_path(0, nodes[2].id, "nodeinfo")),
	             0);
	got = watch_paths(&n);
	cr_assert_eq(n, 13, "%s", got);
	cr_assert(t_contains(got, peer_path(0, nodes[2].id, "nodeinfo\n")),
	          "%s", got);
	cr_assert(
	    !t_contains(got, peer_path(0, nodes[2].id, "nodeinfo/stomp.toml")),
	    "%s", got);
	/* Without peers/: the directory (its creation is a change) and the
	 * node id. */
	cr_assert_eq(rename(in_node(0, "peers"), in_node(1, "gone")), 0);
	got = watch_paths(&n);
	snprintf(want, sizeof(want), "%s/db/nodeid\n%s/peers/.\n", node, node);
	cr_assert_eq(n, 2, "%s", got);
	cr_assert_str_eq(got, want);
}

Test(nodedata, the_gate_admits_active_peers_of_their_own_directory)
{
	char detail[256];

	cr_assert_eq(
	    pp_nodedata_gate(node, nodes[1].id, detail, sizeof(detail)), 0,
	    "%s", detail);
	/* The same peer, its directory now a link to an active one. */
	cr_assert_eq(
	    rename(peer_path(0, nodes[1].id, NULL), in_node(1, "moved")), 0);
	cr_assert_eq(
	    symlink(in_node(0, "moved"), peer_path(1, nodes[1].id, NULL)), 0);
	cr_assert_eq(
	    pp_nodedata_gate(node, nodes[1].id, detail, sizeof(detail)), -1);
	cr_assert(t_contains(detail, "unknown"), "%s", detail);
	cr_assert_eq(
	    pp_nodedata_gate(node, "../../etc", detail, sizeof(detail)), -1);
	cr_assert(t_contains(detail, "is not a node id"), "%s", detail);
}

/* node0's node data as a configuration, serving its peers on sockets. */
static struct pp_config *
expand(struct pp_problems *p)
{
	static char cert[700], key[700], sockets[700];
	struct pp_nodedata nd = {
	    .path = node,
	    .cert = t_path(cert, sizeof(cert), node, "server.crt"),
	    .key = t_path(key, sizeof(key), node, "server.key"),
	    .socket_dir = t_path(sockets, sizeof(sockets), dir, "s")};
	struct pp_config *c = pp_config_new();

	cr_assert_not_null(c);
	pp_nodedata_expand(c, &nd, p);
	return (c);
}

Test(nodedata, the_tunnels_that_admit_peers_are_gated)
{
	static char cert[700], key[700], err[256];
	struct pp_nodedata *nd = calloc(1, sizeof(*nd));
	struct pp_problems p = {0};
	struct pp_config *c = pp_config_new();
	size_t gated = 0;

	cr_assert_not_null(nd);
	cr_assert_not_null(c);
	nd->path = strdup(node);
	nd->cert = strdup(t_path(cert, sizeof(cert), node, "server.crt"));
	nd->key = strdup(t_path(key, sizeof(key), node, "server.key"));
	nd->socket_dir = strdup(dir);
	nd->has_inbound = nd->has_connect = 1;
	cr_assert_eq(
	    pp_addr_parse("127.0.0.1:1", &nd->inbound_listen, err, sizeof(err)),
	    0);
	cr_assert_eq(
	    pp_addr_parse("127.0.0.1:2", &nd->inbound_target, err, sizeof(err)),
	    0);
	cr_assert_eq(
	    pp_addr_parse("127.0.0.1:3", &nd->connect_listen, err, sizeof(err)),
	    0);
	/* The configuration frees it (LeakSanitizer would say otherwise). */
	pp_nodedata_attach(c, nd);
	cr_assert_eq(c->nodedata, nd);
	pp_nodedata_expand(c, nd, &p);
	cr_assert_eq(pp_problems_count(&p), 0, "%s", p.n ? p.items[0] : "");
	cr_assert_eq(c->ntunnels, 4, "inbound, connect and two peers");
	for (size_t i = 0; i < c->ntunnels; i++) {
		const struct pp_tunnel_conf *t = &c->tunnels[i];
		if (t->kind == PP_TUNNEL_OUTBOUND) {
			cr_assert_null(t->gate, "%s", t->name);
			continue;
		}
		cr_assert_eq(t->gate, pp_nodedata_gate, "%s", t->name);
		cr_assert_str_eq(t->gate_dir, node, "%s", t->name);
		gated++;
	}
	cr_assert_eq(gated, 2);
	pp_config_unref(c);
	pp_problems_free(&p);
}

Test(nodedata, hostile_entries_leave_the_other_peers_working)
{
	struct pp_problems p = {0};
	struct pp_config *c;

	cr_assert_eq(mkdir(peer_path(0, "..x", NULL), 0755), 0);
	cr_assert_eq(symlink("/etc", peer_path(0, "0badc0de", NULL)), 0);
	c = expand(&p);
	cr_assert_eq(pp_problems_count(&p), 0, "%s", p.n ? p.items[0] : "");
	cr_assert_eq(c->ntunnels, 2, "one tunnel per real peer");
	cr_assert_eq(p.nwarnings, 2, "%s", warnings(&p));
	pp_config_unref(c);
	pp_problems_free(&p);
}

Test(nodedata, more_peer_directories_than_the_limit_are_refused)
{
	struct pp_problems p = {0};
	struct pp_config *c;
	char name[16];

	/* With node0's two: PP_NODEDATA_PEERS_MAX + 1. */
	for (int i = 0; i < PP_NODEDATA_PEERS_MAX - 1; i++) {
		snprintf(name, sizeof(name), "%08x", 0x10000000 + i);
		cr_assert_eq(mkdir(peer_path(0, name, NULL), 0755), 0, "%s",
		             strerror(errno));
	}
	c = expand(&p);
	cr_assert_eq(p.n, 1);
	cr_assert(t_contains(p.items[0], "/peers: 10001 peer directories, "
	                                 "more than the 10000 a node may "
	                                 "have"),
	          "%s", p.items[0]);
	cr_assert_eq(c->ntunnels, 0, "no tunnel made");
	pp_config_unref(c);
	pp_problems_free(&p);
}

Test(nodedata, a_nodeid_with_control_bytes_is_shown_escaped)
{
	struct pp_problems p = {0};
	struct pp_config *c;

	t_write(in_node(0, "db/nodeid"), "\x1b[2Jabc\n");
	c = expand(&p);
	cr_assert_eq(p.n, 1);
	cr_assert(t_contains(p.items[0], "\"\\x1b[2Jabc\" is not a node id"),
	          "%s", p.items[0]);
	pp_config_unref(c);
	pp_problems_free(&p);
}

/* The README's limits for the node data files: a db/nodeid over 1 KiB is
 * an error naming it; a peer's stomp.toml over 64 KiB skips that peer with
 * a warning naming the file, and the other peer keeps its tunnel. */
Test(nodedata, nodeid_and_stomp_toml_are_bounded)
{
	struct pp_problems p = {0};
	struct pp_config *c;
	const char *w;

	cr_assert_eq(truncate(peer_path(0, nodes[1].id, "nodeinfo/stomp.toml"),
	                      64 * 1024 + 1),
	             0);
	c = expand(&p);
	cr_assert_eq(pp_problems_count(&p), 0, "%s", p.n ? p.items[0] : "");
	cr_assert_eq(c->ntunnels, 1, "node2's tunnel only");
	cr_assert(t_contains(c->tunnels[0].name, nodes[2].id), "%s",
	          c->tunnels[0].name);
	w = warnings(&p);
	cr_assert(
	    t_contains(w, peer_path(0, nodes[1].id, "nodeinfo/stomp.toml")),
	    "%s", w);
	cr_assert(t_contains(w, "larger than the 64 KiB limit"), "%s", w);
	pp_config_unref(c);
	pp_problems_free(&p);

	cr_assert_eq(truncate(in_node(0, "db/nodeid"), 1024), 0);
	c = expand(&p);
	cr_assert_eq(p.n, 0, "exactly 1 KiB is read: %s",
	             p.n ? p.items[0] : "");
	pp_config_unref(c);
	pp_problems_free(&p);
	cr_assert_eq(truncate(in_node(0, "db/nodeid"), 1025), 0);
	c = expand(&p);
	cr_assert_eq(p.n, 1);
	cr_assert(t_contains(p.items[0], in_node(1, "db/nodeid")), "%s",
	          p.items[0]);
	cr_assert(t_contains(p.items[0], "larger than the 1 KiB limit"), "%s",
	          p.items[0]);
	pp_config_unref(c);
	pp_problems_free(&p);
}
