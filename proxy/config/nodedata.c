#include "config/nodedata.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/stomp.h"
#include "tls/identity.h"
#include "tls/pem.h"

static int
exists(const char *dir, const char *name)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return (stat(path, &st) == 0);
}

int
pp_nodedata_gate(void *arg, const char *id, char *detail, size_t len)
{
	const char *dir = arg;
	char peer[1024];
	struct stat st;

	if (!pp_identity_node_id_valid(id)) {
		snprintf(detail, len, "\"%s\" is not a node id", id);
		return (-1);
	}
	snprintf(peer, sizeof(peer), "%s/peers/%s", dir, id);
	if (stat(peer, &st) != 0 || !S_ISDIR(st.st_mode)) {
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
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s/%s", a, b);
	return (s);
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
	t->gate_dir = strdup(nd->path);
	t->proxy_protocol = nd->in_proxy_protocol;
	t->proxy_protocol_cert = nd->in_proxy_protocol_cert;
	t->http_identity = nd->in_http_identity;
	if (t->targets == NULL || t->ca_file == NULL || t->cert_file == NULL ||
	    t->key_file == NULL || t->gate_dir == NULL)
		pp_problems_add(p, "nodedata: out of memory");
}

/* Why peer directory ${dir} cannot have an outbound tunnel, or NULL. */
static const char *
peer_unusable(const char *dir)
{
	if (exists(dir, "DEACTIVATED"))
		return ("deactivated");
	if (!exists(dir, "ACTIVE"))
		return ("not activated");
	if (!exists(dir, "root-ca.crt"))
		return ("root-ca.crt is missing");
	if (!exists(dir, "sub-ca.crt"))
		return ("sub-ca.crt is missing");
	return (NULL);
}

static void
add_outbound(struct pp_config *c, const struct pp_nodedata *nd, const char *id,
             struct pp_problems *p)
{
	char dir[1024], name[64], err[512], sock[200];
	struct pp_tunnel_conf *t;
	struct pp_addr *servers;
	const char *why;
	size_t n;

	snprintf(dir, sizeof(dir), "%s/peers/%s", nd->path, id);
	if ((why = peer_unusable(dir)) != NULL) {
		if (strcmp(why, "not activated") != 0 &&
		    strcmp(why, "deactivated") != 0)
			pp_problems_warn(p, "nodedata: peer %s skipped: %s", id,
			                 why);
		return;
	}
	snprintf(sock, sizeof(sock), "%s/nodeinfo/stomp.toml", dir);
	if (pp_stomp_servers(sock, &servers, &n, err, sizeof(err)) != 0) {
		/* Short of memory, the peer is not broken: the rescan fails. */
		if (pp_problem_is_oom(err))
			pp_problems_add(p, "nodedata: peer %s: %s", id, err);
		else
			pp_problems_warn(p, "nodedata: peer %s skipped: %s", id,
			                 err);
		return;
	}
	snprintf(name, sizeof(name), "peer-%s", id);
	if ((t = pp_config_add_tunnel(c, PP_TUNNEL_OUTBOUND, name)) == NULL) {
		free(servers);
		pp_problems_add(p, "nodedata: out of memory");
		return;
	}
	/* Without socket_dir the peer is reachable through CONNECT only. */
	snprintf(sock, sizeof(sock), "unix:%s/%s.sock", nd->socket_dir, id);
	if (nd->socket_dir != NULL &&
	    pp_addr_parse(sock, &t->listen, err, sizeof(err)) != 0)
		pp_problems_add(p, "nodedata.outbound.socket_dir: %s", err);
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
	char path[1024], err[256], id[40];
	struct dirent *e;
	char *text;
	size_t len;
	DIR *d;

	snprintf(path, sizeof(path), "%s/db/nodeid", nd->path);
	if ((text = pp_file_read(path, 1024, &len, err, sizeof(err))) == NULL) {
		pp_problems_add(p, "nodedata: %s", err);
		return;
	}
	snprintf(id, sizeof(id), "%.*s", (int)strcspn(text, " \r\n"), text);
	free(text);
	if (!pp_identity_node_id_valid(id)) {
		pp_problems_add(p, "nodedata: %s: \"%s\" is not a node id",
		                path, id);
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
		if ((t->gate_dir = strdup(nd->path)) == NULL) {
			pp_problems_add(p, "nodedata: out of memory");
			return;
		}
	}
	if (nd->socket_dir == NULL && !nd->has_connect)
		return;
	snprintf(path, sizeof(path), "%s/peers", nd->path);
	if ((d = opendir(path)) == NULL) {
		pp_problems_add(p, "nodedata: %s: %s", path, strerror(errno));
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (!pp_identity_node_id_valid(e->d_name)) {
			pp_problems_warn(
			    p, "nodedata: %s/%s skipped: not a node id", path,
			    e->d_name);
			continue;
		}
		add_outbound(c, nd, e->d_name, p);
	}
	closedir(d);
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
