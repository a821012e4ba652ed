#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "tls/context.h"

struct pp_config *
pp_config_new(void)
{
	struct pp_config *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (NULL);
	atomic_init(&c->refs, 1);
	c->workers = 0;
	c->drain_timeout_ms = 30000;
	c->log_level = PP_LOG_INFO;
	return (c);
}

struct pp_tunnel_conf *
pp_config_add_tunnel(struct pp_config *c, enum pp_tunnel_kind kind,
                     const char *name)
{
	struct pp_tunnel_conf *t;

	t = realloc(c->tunnels, (c->ntunnels + 1) * sizeof(*t));
	if (t == NULL)
		return (NULL);
	c->tunnels = t;
	t = &c->tunnels[c->ntunnels];
	memset(t, 0, sizeof(*t));
	if ((t->name = strdup(name)) == NULL)
		return (NULL);
	c->ntunnels++;
	t->kind = kind;
	t->identity = PP_IDENTITY_AUTO;
	t->tls_min = TLS1_3_VERSION;
	t->handshake_timeout_ms = 10000;
	t->connect_timeout_ms = 5000;
	t->idle_timeout_ms = 0;
	t->session_resumption = 1;
	return (t);
}

int
pp_strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));

	if (nv == NULL)
		return (-1);
	*v = nv;
	if ((nv[*n] = strdup(s)) == NULL)
		return (-1);
	(*n)++;
	return (0);
}

/* Peer ids the user names must be able to match: in the Swaptacular mode
 * (known only once the anchor is read) they are node ids. */
static int
check_peer_ids(const struct pp_tunnel_conf *t, char *why, size_t len)
{
	int swpt = pp_trust_mode(t->trust) == PP_IDENTITY_SWAPTACULAR;

	for (size_t i = 0; i < t->allow.npeers; i++) {
		const char *id = t->allow.peers[i];
		if (swpt ? !pp_identity_node_id_valid(id) : id[0] == '\0') {
			snprintf(why, len,
			         "--allow-peer (allow_peers) \"%s\": not a "
			         "node id (8 or 32 "
			         "lowercase hex digits)",
			         id);
			return (-1);
		}
	}
	if (t->peer != NULL && swpt && !pp_identity_node_id_valid(t->peer)) {
		snprintf(
		    why, len,
		    "--peer (peer) \"%s\": not a node id (8 or 32 lowercase "
		    "hex digits)",
		    t->peer);
		return (-1);
	}
	return (0);
}

static int
build_tunnel(struct pp_tunnel_conf *t, char *err, size_t errlen)
{
	struct pp_trust_params tp = {
	    .ca_file = t->ca_file,
	    .mode = t->identity,
	    .verify_server = t->kind == PP_TUNNEL_OUTBOUND,
	    .allow = &t->allow,
	    .required_peer = t->peer,
	    .hostname = t->server_name,
	};
	struct pp_tls_params p = {
	    .cert_file = t->cert_file,
	    .chain_file = t->chain_file,
	    .key_file = t->key_file,
	    .min_version = t->tls_min,
	    .server = t->kind == PP_TUNNEL_INBOUND,
	    .server_name = t->server_name,
	    .session_resumption = t->session_resumption,
	};
	char why[512];

	if ((t->trust = pp_trust_new(&tp, why, sizeof(why))) == NULL)
		goto err;
	if (check_peer_ids(t, why, sizeof(why)) != 0)
		goto err;
	p.trust = t->trust;
	if ((t->ctx = pp_tls_ctx_new(&p, why, sizeof(why))) == NULL)
		goto err;
	return (0);
err:
	snprintf(err, errlen, "tunnel %s: %s", t->name, why);
	return (-1);
}

int
pp_config_build(struct pp_config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->ntunnels; i++) {
		if (build_tunnel(&c->tunnels[i], err, errlen) != 0)
			return (-1);
	}
	return (0);
}

int
pp_config_workers(const struct pp_config *c)
{
	long n;

	if (c->workers > 0)
		return (c->workers);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return (n < 1 ? 1 : n > 64 ? 64 : (int)n);
}

struct pp_config *
pp_config_ref(struct pp_config *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return (c);
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
tunnel_conf_free(struct pp_tunnel_conf *t)
{
	free(t->name);
	free(t->targets);
	free(t->ca_file);
	free(t->cert_file);
	free(t->chain_file);
	free(t->key_file);
	strv_free(t->allow.peers, t->allow.npeers);
	strv_free(t->allow.cns, t->allow.ncns);
	strv_free(t->allow.dns, t->allow.ndns);
	strv_free(t->allow.uris, t->allow.nuris);
	free(t->peer);
	free(t->server_name);
	SSL_CTX_free(t->ctx);
	pp_trust_free(t->trust);
}

void
pp_config_unref(struct pp_config *c)
{
	if (c == NULL)
		return;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < c->ntunnels; i++)
		tunnel_conf_free(&c->tunnels[i]);
	free(c->tunnels);
	free(c);
}
