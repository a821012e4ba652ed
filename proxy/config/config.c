#include "config/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "config/nodedata.h"
#include "runtime/limits.h"
#include "tls/context.h"

_Static_assert(PP_TLS_MIN_DEFAULT == TLS1_3_VERSION,
               "PP_TLS_MIN_DEFAULT spells TLS 1.3 as TLS1_3_VERSION");

/* check and run warn about certificates expiring this soon. */
#define EXPIRY_WARNING_S (30 * 86400)

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The new length to give an array of ${n} elements before appending one,
 * or 0 if it has room.  Arrays double when ${n} is 0 or a power of two,
 * so the capacity needs no field and appending n elements copies O(n)
 * (a file may name thousands of values, and ASan's realloc always
 * copies).  Shrinking ${n} keeps this true. */
static size_t
grown(size_t n)
{
	return (n == 0 ? 1 : (n & (n - 1)) == 0 ? 2 * n : 0);
}

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
	c->defaults = PP_TUNNEL_DEFAULTS;
	return (c);
}

void
pp_tunnel_conf_set_defaults(struct pp_tunnel_conf *t,
                            const struct pp_tunnel_defaults *d)
{
	t->handshake_timeout_ms = d->handshake_timeout_ms;
	t->connect_timeout_ms = d->connect_timeout_ms;
	t->idle_timeout_ms = d->idle_timeout_ms;
	t->max_connections = d->max_connections;
	t->max_connections_per_peer = d->max_connections_per_peer;
	t->tls_min = d->tls_min;
	t->session_resumption = d->session_resumption;
}

struct pp_tunnel_conf *
pp_config_add_tunnel(struct pp_config *c, enum pp_tunnel_kind kind,
                     const char *name)
{
	struct pp_tunnel_conf *t;
	char *copy;

	size_t cap = grown(c->ntunnels);

	if ((copy = strdup(name)) == NULL)
		return (NULL);
	if (cap != 0) {
		if ((t = realloc(c->tunnels, cap * sizeof(*t))) == NULL) {
			free(copy);
			return (NULL);
		}
		c->tunnels = t;
	}
	t = &c->tunnels[c->ntunnels++];
	memset(t, 0, sizeof(*t));
	t->name = copy;
	t->kind = kind;
	t->identity = PP_IDENTITY_AUTO;
	pp_tunnel_conf_set_defaults(t, &c->defaults);
	return (t);
}

int
pp_proxy_protocol_parse(const char *s, enum pp_proxy_protocol *out)
{
	if (strcmp(s, "off") == 0)
		*out = PP_PROXY_PROTOCOL_OFF;
	else if (strcmp(s, "v1") == 0)
		*out = PP_PROXY_PROTOCOL_V1;
	else if (strcmp(s, "v2") == 0)
		*out = PP_PROXY_PROTOCOL_V2;
	else
		return (-1);
	return (0);
}

int
pp_strv_push(char ***v, size_t *n, const char *s)
{
	size_t cap = grown(*n);
	char **nv;

	if (cap != 0) {
		if ((nv = realloc(*v, cap * sizeof(char *))) == NULL)
			return (-1);
		*v = nv;
	}
	if (((*v)[*n] = strdup(s)) == NULL)
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

static void tunnel_conf_free(struct pp_tunnel_conf *t);

/* The chain we present must pass the checks the peer will run: its root
 * (our ca_file) as the only anchor, the Swaptacular rules, client use. */
static int
check_own_chain(const struct pp_tunnel_conf *t, char *why, size_t len)
{
	struct pp_trust_params tp = {.ca_file = t->ca_file,
	                             .mode = PP_IDENTITY_SWAPTACULAR};
	STACK_OF(X509) *chain = NULL;
	struct pp_trust *peer_view;
	struct pp_verdict v;
	X509 *leaf;
	int rc = -1;

	if ((peer_view = pp_trust_new(&tp, why, len)) == NULL)
		return (-1);
	chain = pp_tls_ctx_chain(t->ctx); /* borrowed */
	leaf = pp_tls_ctx_leaf(t->ctx);
	if (leaf != NULL && pp_trust_check(peer_view, leaf, chain, &v) == 0)
		rc = 0;
	else
		snprintf(why, len,
		         "our chain (%s + %s) would be refused by the peer: "
		         "%s: %s",
		         t->cert_file, t->chain_file ? t->chain_file : "-",
		         pp_refusal_name(v.reason), v.detail);
	pp_trust_free(peer_view);
	return (rc);
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
	    .gate = t->gate_dir ? pp_nodedata_gate : NULL,
	    .gate_arg = t->gate_dir,
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

	if ((t->limit = pp_limit_get(t->name)) == NULL) {
		snprintf(err, errlen, "tunnel %s: out of memory", t->name);
		return (-1);
	}
	if (t->kind == PP_TUNNEL_CONNECT) /* plain: no TLS of its own */
		return (0);
	if ((t->trust = pp_trust_new(&tp, why, sizeof(why))) == NULL)
		goto err;
	if (check_peer_ids(t, why, sizeof(why)) != 0)
		goto err;
	p.trust = t->trust;
	if ((t->ctx = pp_tls_ctx_new(&p, why, sizeof(why))) == NULL)
		goto err;
	if (t->check_own_chain && check_own_chain(t, why, sizeof(why)) != 0)
		goto err;
	return (0);
err:
	snprintf(err, errlen, "tunnel %s: %s", t->name, why);
	return (-1);
}

int
pp_config_build(struct pp_config *c, struct pp_problems *p)
{
	size_t before = p->n;
	char err[768], a[PP_HOST_MAX + 16], b[PP_HOST_MAX + 16];
	time_t soon = time(NULL) + EXPIRY_WARNING_S;

	for (size_t i = 0; i < c->ntunnels; i++) {
		struct pp_tunnel_conf *t = &c->tunnels[i];
		if (build_tunnel(t, err, sizeof(err)) != 0) {
			if (!t->optional) {
				pp_problems_add(p, "%s", err);
				continue;
			}
			pp_problems_warn(p, "%s: skipped", err);
			tunnel_conf_free(t);
			memmove(t, t + 1, (c->ntunnels - i - 1) * sizeof(*t));
			c->ntunnels--;
			i--;
			continue;
		}
		long long na = t->ctx ? pp_tls_leaf_not_after(t->ctx) : 0;
		if (na != 0 && na < (long long)soon)
			pp_problems_warn(
			    p,
			    "tunnel %s: certificate %s expires in %lld "
			    "days",
			    t->name, t->cert_file,
			    (na - (long long)time(NULL)) / 86400);
	}
	for (size_t i = 0; i < c->ntunnels; i++) {
		if (!pp_tunnel_listens(&c->tunnels[i]))
			continue;
		pp_addr_format(&c->tunnels[i].listen, a, sizeof(a));
		for (size_t j = 0; j < i; j++) {
			pp_addr_format(&c->tunnels[j].listen, b, sizeof(b));
			if (strcmp(a, b) == 0)
				pp_problems_add(
				    p, "tunnels %s and %s both listen on %s",
				    c->tunnels[j].name, c->tunnels[i].name, a);
		}
	}
	return (p->n > before ? -1 : 0);
}

const struct pp_addr *
pp_config_route(const struct pp_tunnel_conf *t, const char *peer_id, size_t *n)
{
	if (t->nroutes == 0) {
		*n = t->ntargets;
		return (t->targets);
	}
	for (size_t i = 0; i < t->nroutes; i++) {
		const struct pp_route *r = &t->routes[i];
		int hit = r->any;
		for (size_t j = 0; !hit && j < r->npeers; j++)
			hit = peer_id[0] != '\0' &&
			      strcmp(r->peers[j], peer_id) == 0;
		if (hit) {
			*n = 1;
			return (&r->target);
		}
	}
	*n = 0;
	return (NULL);
}

static void
vadd(char ***items, size_t *n, const char *fmt, va_list ap)
{
	char buf[1024];
	char **nv;

	size_t cap = grown(*n);

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (cap != 0) {
		if ((nv = realloc(*items, cap * sizeof(char *))) == NULL)
			return;
		*items = nv;
	}
	if (((*items)[*n] = strdup(buf)) != NULL)
		(*n)++;
}

void
pp_problems_add(struct pp_problems *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(&p->items, &p->n, fmt, ap);
	va_end(ap);
}

void
pp_problems_warn(struct pp_problems *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(&p->warnings, &p->nwarnings, fmt, ap);
	va_end(ap);
}

void
pp_problems_print(const struct pp_problems *p, const char *prefix, void *fp)
{
	FILE *f = fp;

	for (size_t i = 0; i < p->n; i++)
		fprintf(f, "%s%s\n", prefix, p->items[i]);
	for (size_t i = 0; i < p->nwarnings; i++)
		fprintf(f, "%swarning: %s\n", prefix, p->warnings[i]);
}

void
pp_problems_free(struct pp_problems *p)
{
	strv_free(p->items, p->n);
	strv_free(p->warnings, p->nwarnings);
	memset(p, 0, sizeof(*p));
}

int
pp_tunnel_listens(const struct pp_tunnel_conf *t)
{
	return (t->listen.port != 0 || t->listen.path[0] != '\0');
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
	for (size_t i = 0; i < t->nroutes; i++)
		strv_free(t->routes[i].peers, t->routes[i].npeers);
	free(t->routes);
	free(t->peer);
	free(t->server_name);
	free(t->gate_dir);
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
	pp_nodedata_free(c->nodedata);
	free(c->source);
	free(c);
}
