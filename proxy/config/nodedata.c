#include "config/nodedata.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/stomp.h"
#include "tls/identity.h"
#include "util/file.h"
#include "util/strbuf.h"

/* Every path below is the node data path plus at most this much (the
 * longest: "/peers/<id>/nodeinfo/stomp.toml"); pp_nodedata_expand refuses
 * a node data path too long for it, so no path here is ever cut. */
#define SUFFIX_MAX (sizeof("/peers//nodeinfo/stomp.toml") + PP_PEER_ID_MAX)

/* 1 if ${dir}/${name} exists.  A name over PATH_MAX does not: stat(2)
 * would refuse it too (ENAMETOOLONG), never look at a cut name. */
static int
exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (pp_fmt(path, sizeof(path), "%s/%s", dir, name) != 0)
		return (0);
	return (stat(path, &st) == 0);
}

int
pp_nodedata_gate(void *arg, const char *id, char *detail, size_t len)
{
	const char *dir = arg;
	char peer[PATH_MAX];
	struct stat st;

	if (!pp_identity_node_id_valid(id)) {
		snprintf(detail, len, "\"%s\" is not a node id", id);
		return (-1);
	}
	/* lstat: a symbolic link is no peer directory (pp_nodedata_peers). */
	if (pp_fmt(peer, sizeof(peer), "%s/peers/%s", dir, id) != 0 ||
	    lstat(peer, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(detail, len, "peer %s is unknown to this node", id);
		return (-1);
	}
	if (exists(peer, "DEACTIVATED")) {
		snprintf(detail, len, "peer %s is deactivated", id);
		return (-1);
	}
	if (!exists(peer, "ACTIVE")) {
		snprintf(detail, len, "peer %s is not activated", id);
		return (-1);
	}
	return (0);
}

static char *
join(const char *a, const char *b)
{
	char *s;

	return (asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s);
}

static void
add_inbound(struct pp_config *c, const struct pp_nodedata *nd,
            struct pp_problems *p)
{
	struct pp_tunnel_conf *t;

	if ((t = pp_config_add_tunnel(c, PP_TUNNEL_INBOUND, "nodedata")) ==
	    NULL) {
		pp_problems_add(p, "nodedata: out of memory");
		return;
	}
	t->listen = nd->inbound_listen;
	if ((t->targets = malloc(sizeof(*t->targets))) != NULL) {
		t->targets[0] = nd->inbound_target;
		t->ntargets = 1;
	}
	t->ca_file = join(nd->path, "root-ca.crt");
	t->cert_file = strdup(nd->cert);
	t->key_file = strdup(nd->key);
	t->identity = PP_IDENTITY_SWAPTACULAR;
	/* Without it every peer with a chain would be admitted: never serve
	 * a tunnel missing a field. */
	t->gate = pp_nodedata_gate;
	t->gate_dir = strdup(nd->path);
	t->proxy_protocol = nd->in_proxy_protocol;
	t->proxy_protocol_cert = nd->in_proxy_protocol_cert;
	t->http_identity = nd->in_http_identity;
	if (t->targets == NULL || t->ca_file == NULL || t->cert_file == NULL ||
	    t->key_file == NULL || t->gate_dir == NULL)
		pp_problems_add(p, "nodedata: out of memory");
}

/* The file an active peer's outbound tunnel needs that its directory
 * ${dir} lacks, or NULL. */
static const char *
peer_lacks(const char *dir)
{
	if (!exists(dir, "root-ca.crt"))
		return ("root-ca.crt");
	if (!exists(dir, "sub-ca.crt"))
		return ("sub-ca.crt");
	return (NULL);
}

/* ${s} with every byte that is not printable ASCII written as \xNN (a
 * directory entry may hold any byte but '/' and NUL). */
static void
printable(const char *s, char *out, size_t len)
{
	size_t n = 0;

	for (; *s != '\0' && n + 5 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, len - n, "\\x%02x", ch);
	}
	out[n] = '\0';
}

/* What pp_nodedata_expand's peer callback needs. */
struct expand {
	struct pp_config *c;
	const struct pp_nodedata *nd;
	struct pp_problems *p;
	long left; /* peers still allowed (PP_NODEDATA_PEERS_MAX) */
};

/* An outbound tunnel for the peer ${id}, if it is active and whole. */
static void
add_outbound(void *arg, const char *id, enum pp_peer_state state)
{
	struct expand *x = arg;
	struct pp_config *c = x->c;
	const struct pp_nodedata *nd = x->nd;
	struct pp_problems *p = x->p;
	char dir[PATH_MAX], toml[PATH_MAX], err[PATH_MAX + 256];
	char name[sizeof("peer-") + PP_PEER_ID_MAX];
	char sock[sizeof("unix:") + sizeof(((struct pp_addr *)0)->path)];
	struct pp_tunnel_conf *t;
	struct pp_addr *servers;
	const char *why;
	size_t n;

	if (state != PP_PEER_ACTIVE || x->left-- <= 0)
		return;
	/* ${id} is a node id (pp_nodedata_peers checked) and the node
	 * data path leaves room for SUFFIX_MAX more: these always fit. */
	if (pp_fmt(dir, sizeof(dir), "%s/peers/%s", nd->path, id) != 0 ||
	    pp_fmt(toml, sizeof(toml), "%s/nodeinfo/stomp.toml", dir) != 0 ||
	    pp_fmt(name, sizeof(name), "peer-%s", id) != 0) {
		pp_problems_add(p, "nodedata: peer %s: path too long", id);
		return;
	}
	if ((why = peer_lacks(dir)) != NULL) {
		pp_problems_warn(p,
		                 "nodedata: peer %s skipped: %s/%s is missing",
		                 id, dir, why);
		return;
	}
	if (pp_stomp_servers(toml, &servers, &n, err, sizeof(err)) != 0) {
		/* Short of memory, the peer is not broken: the rescan fails. */
		if (pp_problem_is_oom(err))
			pp_problems_add(p, "nodedata: peer %s: %s", id, err);
		else
			pp_problems_warn(p, "nodedata: peer %s skipped: %s", id,
			                 err);
		return;
	}
	if ((t = pp_config_add_tunnel(c, PP_TUNNEL_OUTBOUND, name)) == NULL) {
		free(servers);
		pp_problems_add(p, "nodedata: out of memory");
		return;
	}
	/* Without socket_dir the peer is reachable through CONNECT only.  A
	 * socket name that does not fit sun_path is an error naming it: a
	 * cut name would listen on another socket. */
	if (nd->socket_dir != NULL &&
	    (pp_fmt(sock, sizeof(sock), "unix:%s/%s.sock", nd->socket_dir,
	            id) != 0 ||
	     pp_addr_parse(sock, &t->listen, err, sizeof(err)) != 0))
		pp_problems_add(p,
		                "nodedata.outbound.socket_dir: peer %s: socket "
		                "%s/%s.sock is longer than the %zu bytes of a "
		                "unix socket path",
		                id, nd->socket_dir, id,
		                sizeof(t->listen.path) - 1);
	t->targets = servers;
	t->ntargets = n;
	t->ca_file = join(dir, "root-ca.crt");
	t->chain_file = join(dir, "sub-ca.crt");
	t->cert_file = strdup(nd->cert);
	t->key_file = strdup(nd->key);
	t->peer = strdup(id); /* without it, any server of that root passes */
	t->identity = PP_IDENTITY_SWAPTACULAR;
	t->optional = 1; /* a broken peer must not stop the others */
	t->check_own_chain = 1;
	if (t->ca_file == NULL || t->chain_file == NULL ||
	    t->cert_file == NULL || t->key_file == NULL || t->peer == NULL)
		pp_problems_add(p, "nodedata: peer %s: out of memory", id);
}

void
pp_nodedata_expand(struct pp_config *c, const struct pp_nodedata *nd,
                   struct pp_problems *p)
{
	struct expand x = {
	    .c = c, .nd = nd, .p = p, .left = PP_NODEDATA_PEERS_MAX};
	char path[PATH_MAX], err[PATH_MAX + 128], id[PP_PEER_ID_MAX + 1];
	char shown[4 * PP_PEER_ID_MAX + 8];
	char *text;
	size_t len;
	long np;

	if (strlen(nd->path) >= sizeof(path) - SUFFIX_MAX) {
		pp_problems_add(p,
		                "nodedata.path: \"%s\" is longer than %zu "
		                "bytes (the files under it must fit PATH_MAX)",
		                nd->path, sizeof(path) - SUFFIX_MAX - 1);
		return;
	}
	snprintf(path, sizeof(path), "%s/db/nodeid", nd->path);
	if ((text = pp_file_read(path, PP_FILE_MAX_NODEID, &len, err,
	                         sizeof(err))) == NULL) {
		pp_problems_add(p, "nodedata: %s", err);
		return;
	}
	len = strcspn(text, " \r\n");
	if (len >= sizeof(id)) {
		pp_problems_add(p,
		                "nodedata: %s: %zu bytes, not a node id (8 or "
		                "32 lowercase hex digits)",
		                path, len);
		free(text);
		return;
	}
	memcpy(id, text, len);
	id[len] = '\0';
	free(text);
	if (!pp_identity_node_id_valid(id)) {
		printable(id, shown, sizeof(shown));
		pp_problems_add(p, "nodedata: %s: \"%s\" is not a node id",
		                path, shown);
		return;
	}
	if (nd->has_inbound)
		add_inbound(c, nd, p);
	if (nd->has_connect) {
		struct pp_tunnel_conf *t =
		    pp_config_add_tunnel(c, PP_TUNNEL_CONNECT, "connect");
		if (t == NULL) {
			pp_problems_add(p, "nodedata: out of memory");
			return;
		}
		t->listen = nd->connect_listen;
		t->gate = pp_nodedata_gate;
		if ((t->gate_dir = strdup(nd->path)) == NULL) {
			pp_problems_add(p, "nodedata: out of memory");
			return;
		}
	}
	if (nd->socket_dir == NULL && !nd->has_connect)
		return;
	/* Count first: a hostile tree of a million peers costs a directory
	 * read, not a million tunnels. */
	if ((np = pp_nodedata_peers(nd->path, NULL, NULL, NULL)) < 0) {
		pp_problems_add(p, "nodedata: %s/peers: %s", nd->path,
		                strerror(errno));
		return;
	}
	if (np > PP_NODEDATA_PEERS_MAX) {
		pp_problems_add(p,
		                "nodedata: %s/peers: %ld peer directories, "
		                "more than the %d a node may have",
		                nd->path, np, PP_NODEDATA_PEERS_MAX);
		return;
	}
	pp_nodedata_peers(nd->path, add_outbound, &x, p);
}

static const char *const state_names[PP_PEER_NSTATES] = {
    [PP_PEER_ACTIVE] = "active",
    [PP_PEER_INACTIVE] = "inactive",
    [PP_PEER_DEACTIVATED] = "deactivated",
};

const char *
pp_nodedata_state_name(enum pp_peer_state s)
{
	return (state_names[s]);
}

/* The state of the peer directory ${dir}. */
static enum pp_peer_state
peer_state(const char *dir)
{
	if (exists(dir, "DEACTIVATED"))
		return (PP_PEER_DEACTIVATED);
	if (exists(dir, "ACTIVE"))
		return (PP_PEER_ACTIVE);
	return (PP_PEER_INACTIVE);
}

long
pp_nodedata_peers(const char *path, pp_nodedata_peer_fn *fn, void *arg,
                  struct pp_problems *p)
{
	char peers[PATH_MAX], dir[PATH_MAX], shown[4 * NAME_MAX + 8];
	struct dirent *e;
	struct stat st;
	long n = 0;
	DIR *d;

	if (pp_fmt(peers, sizeof(peers), "%s/peers", path) != 0) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	if ((d = opendir(peers)) == NULL)
		return (-1);
	while ((e = readdir(d)) != NULL) {
		const char *why = NULL;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* The name first: nothing but a node id reaches a path
		 * (pki.md pitfall 5), then the entry itself, not what a
		 * link leads to. */
		if (!pp_identity_node_id_valid(e->d_name))
			why = "not a node id (8 or 32 lowercase hex digits)";
		else if (fstatat(dirfd(d), e->d_name, &st,
		                 AT_SYMLINK_NOFOLLOW) != 0)
			why = strerror(errno);
		else if (S_ISLNK(st.st_mode))
			why = "a symbolic link (a peer directory must be a "
			      "directory of its own)";
		else if (!S_ISDIR(st.st_mode))
			why = "not a directory";
		if (why == NULL &&
		    pp_fmt(dir, sizeof(dir), "%s/%s", peers, e->d_name) != 0)
			why = "path too long";
		if (why != NULL) {
			if (p != NULL) {
				printable(e->d_name, shown, sizeof(shown));
				pp_problems_warn(p,
				                 "nodedata: %s/%s skipped: %s",
				                 peers, shown, why);
			}
			continue;
		}
		n++;
		if (fn != NULL)
			fn(arg, e->d_name, peer_state(dir));
	}
	closedir(d);
	return (n);
}

/* The paths pp_nodedata_watch_paths collects. */
struct path_list {
	const char *peers; /* <node data>/peers */
	char **v;
	size_t n, cap;
};

/* Append "${dir}/${name}" to ${l} (room for it made by the caller). */
static void
push_path(struct path_list *l, const char *dir, const char *name)
{
	if (l->n < l->cap && asprintf(&l->v[l->n], "%s/%s", dir, name) >= 0)
		l->n++;
}

/* Every file of the peer ${id}, whatever its state: any of them changing
 * may give the peer a tunnel, take it away or change it. */
static void
push_peer_files(void *arg, const char *id, enum pp_peer_state state)
{
	struct path_list *l = arg;
	char dir[PATH_MAX + NAME_MAX + 1], info[PATH_MAX];
	struct stat st;

	(void)state;
	if (l->n + 6 > l->cap) {
		size_t cap = 2 * l->cap;
		char **nv = realloc(l->v, cap * sizeof(*nv));
		if (nv == NULL)
			return;
		l->v = nv;
		l->cap = cap;
	}
	snprintf(dir, sizeof(dir), "%s/%s", l->peers, id);
	push_path(l, dir, "ACTIVE");
	push_path(l, dir, "DEACTIVATED");
	push_path(l, dir, "root-ca.crt");
	push_path(l, dir, "sub-ca.crt");
	/* nodeinfo/ itself, in the peer directory watched already: its
	 * coming or going is a change.  Its stomp.toml only while it is a
	 * directory: watching a missing one fails, with a warning at every
	 * reload. */
	push_path(l, dir, "nodeinfo");
	if (pp_fmt(info, sizeof(info), "%s/nodeinfo", dir) == 0 &&
	    stat(info, &st) == 0 && S_ISDIR(st.st_mode))
		push_path(l, info, "stomp.toml");
}

size_t
pp_nodedata_watch_paths(const struct pp_nodedata *nd, char ***paths)
{
	char peers[PATH_MAX];
	struct path_list l = {.peers = peers, .cap = 64};

	/* Over PATH_MAX: nothing there to watch (the loader refuses it). */
	if (pp_fmt(peers, sizeof(peers), "%s/peers", nd->path) != 0 ||
	    (l.v = calloc(l.cap, sizeof(*l.v))) == NULL)
		return (0);
	push_path(&l, peers, ".");
	push_path(&l, nd->path, "db/nodeid");
	pp_nodedata_peers(nd->path, push_peer_files, &l, NULL);
	*paths = l.v;
	return (l.n);
}

void
pp_nodedata_attach(struct pp_config *c, struct pp_nodedata *nd)
{
	c->nodedata = nd;
	c->nodedata_free = pp_nodedata_free;
}

void
pp_nodedata_free(struct pp_nodedata *nd)
{
	if (nd == NULL)
		return;
	free(nd->path);
	free(nd->cert);
	free(nd->key);
	free(nd->socket_dir);
	free(nd);
}
