/*
 * Node data as configuration: which entries of peers/ are peers, and what
 * becomes of the rest.  Each test copies node0 of the generated PKI
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
	static const char *const names[] = {"active", "inactive",
	                                    "deactivated"};
	struct seen *seen = arg;
	size_t used = strlen(seen->text);

	snprintf(seen->text + used, sizeof(seen->text) - used, "%s=%s ", id,
	         names[s]);
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
