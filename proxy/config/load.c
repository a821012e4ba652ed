#include "config/load.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>
#include <yaml.h>

#include "config/nodedata.h"
#include "tls/context.h"
#include "tls/pem.h"
#include "util/duration.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define PATH_MAX_LEN    256
/* Bounds on what a file may ask of the loader, far past any real
 * configuration: libyaml's time grows with the square of the nesting
 * depth and of the number of anchors, and aliases let a small file name
 * the same values again and again (a "billion laughs"). */
#define YAML_DEPTH_MAX   64
#define YAML_ANCHORS_MAX 128
#define VALUES_COST_MAX  (16 * 1024 * 1024) /* bytes, + 16 per value */
#define TUNNELS_MAX      4096

struct loader {
	const char *file;
	char *dir; /* for relative paths */
	yaml_document_t doc;
	struct pp_problems *p;
	struct pp_config *c; /* its defaults: the top-level limits: and tls: */
	int pass;            /* 1: global settings, 2: tunnels */
	size_t cost;         /* of the values read so far (VALUES_COST_MAX) */
	int exhausted;       /* read too much: the walk stops */
};

typedef void key_fn(struct loader *L, yaml_node_t *v, const char *path,
                    void *obj);

struct key {
	const char *name;
	key_fn *fn;
	int pass; /* the pass that handles it */
};

static void problem(struct loader *L, const yaml_node_t *n, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
problem(struct loader *L, const yaml_node_t *n, const char *path,
        const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pp_problems_add(L->p, "%s:%zu:%zu: %s: %s", L->file,
	                n->start_mark.line + 1, n->start_mark.column + 1, path,
	                msg);
}

static yaml_node_t *
node(struct loader *L, int i)
{
	return (yaml_document_get_node(&L->doc, i));
}

/* YAML's null: ~, null or an empty plain scalar. */
static int
is_null(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;

	return (n->type == YAML_SCALAR_NODE &&
	        n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	        (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0));
}

static const char *
scalar(struct loader *L, yaml_node_t *n, const char *path)
{
	if (n->type != YAML_SCALAR_NODE) {
		problem(L, n, path, "expected a single value");
		return (NULL);
	}
	return ((const char *)n->data.scalar.value);
}

/* Count reading the value ${n} (plus ${more} bytes); 0, or -1 once the
 * file has cost more than VALUES_COST_MAX, then the problem is added
 * (once) and the walk stops. */
static int
spend(struct loader *L, const yaml_node_t *n, const char *path, size_t more)
{
	if (L->exhausted)
		return (-1);
	L->cost += 16 + more +
	           (n->type == YAML_SCALAR_NODE ? n->data.scalar.length : 0);
	if (L->cost <= VALUES_COST_MAX)
		return (0);
	L->exhausted = 1;
	problem(L, n, path,
	        "the file names more values than a configuration needs (over "
	        "%d MiB with its aliases expanded); stopped reading here",
	        VALUES_COST_MAX / (1024 * 1024));
	return (-1);
}

/* Walk the mapping ${n} with the handlers in ${keys}. */
static void
walk(struct loader *L, yaml_node_t *n, const char *path, const struct key *keys,
     void *obj)
{
	char sub[PATH_MAX_LEN], seen[64] = {0};

	if (n->type != YAML_MAPPING_NODE) {
		problem(L, n, path, "expected a mapping (key: value lines)");
		return;
	}
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
	     pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(L, pr->key), *v = node(L, pr->value);
		const char *name;
		const struct key *hit = NULL;

		if (spend(L, k, path,
		          v->type == YAML_SCALAR_NODE ? v->data.scalar.length
		                                      : 0) != 0)
			return;
		if ((name = scalar(L, k, path)) == NULL)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "",
		         name);
		for (const struct key *x = keys; x->name != NULL; x++) {
			if (strcmp(x->name, name) == 0)
				hit = x;
		}
		if (hit == NULL) {
			if (L->pass <= 1)
				problem(L, k, sub, "unknown key");
			continue;
		}
		/* Only known keys can be duplicates that matter: a flag per
		 * key (no table has 64) keeps the walk linear in the
		 * mapping's size. */
		if (seen[hit - keys]) {
			if (L->pass <= 1)
				problem(L, k, sub, "duplicate key");
			continue;
		}
		seen[hit - keys] = 1;
		if (hit->pass == 0 || hit->pass == L->pass)
			hit->fn(L, v, sub, obj);
	}
}

static void
set_str(struct loader *L, yaml_node_t *v, const char *path, char **dst)
{
	const char *s;

	if (is_null(v))
		return;
	if ((s = scalar(L, v, path)) == NULL)
		return;
	free(*dst);
	*dst = strdup(s);
}

/* A file name: relative ones resolve against the config file's directory. */
static void
set_file(struct loader *L, yaml_node_t *v, const char *path, char **dst)
{
	const char *s;

	if ((s = scalar(L, v, path)) == NULL)
		return;
	if (*s == '\0') {
		problem(L, v, path, "empty file name");
		return;
	}
	free(*dst);
	if (*s == '/' || L->dir == NULL) {
		*dst = strdup(s);
	} else {
		size_t n = strlen(L->dir) + strlen(s) + 2;
		if ((*dst = malloc(n)) != NULL)
			snprintf(*dst, n, "%s/%s", L->dir, s);
	}
}

static void
set_dur(struct loader *L, yaml_node_t *v, const char *path, uint64_t *dst)
{
	const char *s = scalar(L, v, path);

	if (s != NULL && pp_duration_parse(s, dst) != 0)
		problem(L, v, path,
		        "\"%s\" is not a duration (like 500ms, 10s, 2m)", s);
}

static void
set_uint(struct loader *L, yaml_node_t *v, const char *path, uint32_t *dst,
         uint32_t max)
{
	const char *s = scalar(L, v, path);
	char *end;
	unsigned long n;

	if (s == NULL)
		return;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || n > max) {
		problem(L, v, path, "\"%s\" is not a number from 0 to %u", s,
		        max);
		return;
	}
	*dst = (uint32_t)n;
}

static void
set_bool(struct loader *L, yaml_node_t *v, const char *path, int *dst)
{
	const char *s = scalar(L, v, path);

	if (s == NULL)
		return;
	if (!strcasecmp(s, "true") || !strcasecmp(s, "on") ||
	    !strcasecmp(s, "yes"))
		*dst = 1;
	else if (!strcasecmp(s, "false") || !strcasecmp(s, "off") ||
	         !strcasecmp(s, "no"))
		*dst = 0;
	else
		problem(L, v, path, "\"%s\" is not true or false", s);
}

static void
set_addr(struct loader *L, yaml_node_t *v, const char *path,
         struct pp_addr *dst)
{
	const char *s = scalar(L, v, path);
	char err[160];

	if (s != NULL && pp_addr_parse(s, dst, err, sizeof(err)) != 0)
		problem(L, v, path, "\"%s\": %s", s, err);
}

/* A list of strings (a single value is a list of one). */
static void
set_list(struct loader *L, yaml_node_t *v, const char *path, char ***dst,
         size_t *n)
{
	char sub[PATH_MAX_LEN];
	const char *s;

	if (v->type == YAML_SCALAR_NODE) {
		if (!is_null(v) && (s = scalar(L, v, path)) != NULL)
			pp_strv_push(dst, n, s);
		return;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		problem(L, v, path, "expected a list");
		return;
	}
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = node(L, *it);
		snprintf(sub, sizeof(sub), "%s[%d]", path,
		         (int)(it - v->data.sequence.items.start));
		if (spend(L, e, sub, 0) != 0)
			return;
		if ((s = scalar(L, e, sub)) == NULL)
			continue;
		if (*s == '\0')
			problem(L, e, sub, "empty value");
		else
			pp_strv_push(dst, n, s);
	}
}

static void
set_targets(struct loader *L, yaml_node_t *v, const char *path,
            struct pp_tunnel_conf *t)
{
	char **list = NULL, err[160], sub[PATH_MAX_LEN];
	size_t n = 0;

	set_list(L, v, path, &list, &n);
	free(t->targets);
	t->targets = n ? calloc(n, sizeof(*t->targets)) : NULL;
	t->ntargets = 0;
	for (size_t i = 0; i < n; i++) {
		if (v->type == YAML_SEQUENCE_NODE)
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		else
			snprintf(sub, sizeof(sub), "%s", path);
		if (t->targets == NULL)
			break;
		if (pp_addr_parse(list[i], &t->targets[t->ntargets], err,
		                  sizeof(err)) != 0)
			problem(L, v, sub, "\"%s\": %s", list[i], err);
		else
			t->ntargets++;
		free(list[i]);
	}
	free(list);
}

/* ---- limits: and tls: (top level: defaults; in a tunnel: overrides) ---- */

#define LIMIT_KEY(field, fn)                                                   \
	static void k_##field(struct loader *L, yaml_node_t *v,                \
	                      const char *path, void *obj)                     \
	{                                                                      \
		struct pp_tunnel_defaults *d = obj;                            \
		fn;                                                            \
	}

LIMIT_KEY(handshake_timeout, set_dur(L, v, path, &d->handshake_timeout_ms))
LIMIT_KEY(connect_timeout, set_dur(L, v, path, &d->connect_timeout_ms))
LIMIT_KEY(idle_timeout, set_dur(L, v, path, &d->idle_timeout_ms))
LIMIT_KEY(max_connections, set_uint(L, v, path, &d->max_connections, 10000000))
LIMIT_KEY(session_resumption, set_bool(L, v, path, &d->session_resumption))

static void
k_drain_timeout(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	set_dur(L, v, path, &L->c->drain_timeout_ms);
}

static void
k_max_per_peer(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct pp_tunnel_defaults *d = obj;

	set_uint(L, v, path, &d->max_connections_per_peer, 10000000);
}

static void
k_min_version(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct pp_tunnel_defaults *d = obj;
	const char *s = scalar(L, v, path);

	if (s == NULL)
		return;
	if (pp_tls_version_parse(s, &d->tls_min) != 0)
		problem(L, v, path, "\"%s\" is not \"1.2\" or \"1.3\"", s);
}

static const struct key tunnel_limit_keys[] = {
    {"handshake_timeout", k_handshake_timeout, 0},
    {"connect_timeout", k_connect_timeout, 0},
    {"idle_timeout", k_idle_timeout, 0},
    {"max_connections", k_max_connections, 0},
    {"max_connections_per_peer", k_max_per_peer, 0},
    {NULL, NULL, 0},
};

static const struct key global_limit_keys[] = {
    {"handshake_timeout", k_handshake_timeout, 0},
    {"connect_timeout", k_connect_timeout, 0},
    {"idle_timeout", k_idle_timeout, 0},
    {"max_connections", k_max_connections, 0},
    {"max_connections_per_peer", k_max_per_peer, 0},
    {"drain_timeout", k_drain_timeout, 0},
    {NULL, NULL, 0},
};

static const struct key tls_keys[] = {
    {"min_version", k_min_version, 0},
    {"session_resumption", k_session_resumption, 0},
    {NULL, NULL, 0},
};

/* ---- tunnels ---- */

/* A tunnel being read: its model and its own limits/tls overrides. */
struct tunnel_ctx {
	struct pp_tunnel_conf *t;
	struct pp_tunnel_defaults d; /* the file's defaults, then its own */
	const yaml_node_t *n;
	int has_name, has_listen, has_target, has_routes;
};

#define TUNNEL_KEY(name, body)                                                 \
	static void t_##name(struct loader *L, yaml_node_t *v,                 \
	                     const char *path, void *obj)                      \
	{                                                                      \
		struct tunnel_ctx *x = obj;                                    \
		struct pp_tunnel_conf *t = x->t;                               \
		(void)t;                                                       \
		body;                                                          \
	}

TUNNEL_KEY(name, {
	x->has_name = 1;
	set_str(L, v, path, &t->name);
})
TUNNEL_KEY(listen, {
	x->has_listen = 1;
	set_addr(L, v, path, &t->listen);
})
TUNNEL_KEY(ca, set_file(L, v, path, &t->ca_file))
TUNNEL_KEY(cert, set_file(L, v, path, &t->cert_file))
TUNNEL_KEY(key, set_file(L, v, path, &t->key_file))
TUNNEL_KEY(chain, {
	if (!is_null(v))
		set_file(L, v, path, &t->chain_file);
})
TUNNEL_KEY(peer, set_str(L, v, path, &t->peer))
TUNNEL_KEY(server_name, set_str(L, v, path, &t->server_name))
TUNNEL_KEY(allow_peers, set_list(L, v, path, &t->allow.peers, &t->allow.npeers))
TUNNEL_KEY(allow_cn, set_list(L, v, path, &t->allow.cns, &t->allow.ncns))
TUNNEL_KEY(allow_dns, set_list(L, v, path, &t->allow.dns, &t->allow.ndns))
TUNNEL_KEY(allow_uri, set_list(L, v, path, &t->allow.uris, &t->allow.nuris))
TUNNEL_KEY(limits, walk(L, v, path, tunnel_limit_keys, &x->d))
TUNNEL_KEY(tls, walk(L, v, path, tls_keys, &x->d))
/* No value at all: null, or a list of nothing. */
static int
is_empty(const yaml_node_t *v)
{
	return (is_null(v) ||
	        (v->type == YAML_SEQUENCE_NODE &&
	         v->data.sequence.items.top == v->data.sequence.items.start));
}

TUNNEL_KEY(target, {
	x->has_target = 1;
	set_targets(L, v, path, t);
	if (is_empty(v))
		problem(L, v, path, "is empty: give one HOST:PORT");
	else if (t->ntargets > 1)
		problem(L, v, path,
		        "an inbound tunnel has one target (or "
		        "routes)");
})
TUNNEL_KEY(targets, {
	x->has_target = 1;
	set_targets(L, v, path, t);
})

static void
t_identity(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct tunnel_ctx *x = obj;
	const char *s = scalar(L, v, path);

	if (s == NULL)
		return;
	if (pp_identity_mode_parse(s, &x->t->identity) != 0)
		problem(L, v, path,
		        "\"%s\" is not one of auto, swaptacular, x509", s);
}

/* off|v1|v2 into ${out}. */
static void
set_proxy_protocol(struct loader *L, yaml_node_t *v, const char *path,
                   enum pp_proxy_protocol *out)
{
	const char *s = scalar(L, v, path);

	/* YAML 1.1 readers take a bare off for false: accept the word. */
	if (s != NULL && pp_proxy_protocol_parse(s, out) != 0)
		problem(L, v, path, "\"%s\" is not off, v1 or v2", s);
}

static void
t_proxy_protocol(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct tunnel_ctx *x = obj;

	set_proxy_protocol(L, v, path, &x->t->proxy_protocol);
}

TUNNEL_KEY(proxy_protocol_cert, set_bool(L, v, path, &t->proxy_protocol_cert))
TUNNEL_KEY(http_identity, set_bool(L, v, path, &t->http_identity))

/* Outbound tunnels originate TLS: there is no verified caller to tell the
 * target about. */
static void
t_inbound_only(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	problem(L, v, path,
	        "applies to inbound tunnels only (an outbound tunnel's "
	        "caller is local and unverified)");
}

/* One route: {peers: [...], target: ADDR}; "*" matches every peer. */
static void
r_peers(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct pp_route *r = obj;

	set_list(L, v, path, &r->peers, &r->npeers);
	for (size_t i = 0; i < r->npeers; i++)
		r->any |= strcmp(r->peers[i], "*") == 0;
}

static void
r_target(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	set_addr(L, v, path, &((struct pp_route *)obj)->target);
}

static const struct key route_keys[] = {
    {"peers", r_peers, 0},
    {"target", r_target, 0},
    {NULL, NULL, 0},
};

static void
t_routes(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct tunnel_ctx *x = obj;
	struct pp_tunnel_conf *t = x->t;
	char sub[PATH_MAX_LEN];
	size_t n;

	x->has_routes = 1;
	if (is_empty(v)) {
		problem(L, v, path, "is empty: give at least one route");
		return;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		problem(L, v, path, "expected a list of routes");
		return;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if ((t->routes = calloc(n, sizeof(*t->routes))) == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *e = node(L, v->data.sequence.items.start[i]);
		struct pp_route *r = &t->routes[t->nroutes++];

		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (spend(L, e, sub, 0) != 0)
			return;
		walk(L, e, sub, route_keys, r);
		if (e->type == YAML_MAPPING_NODE && r->target.port == 0 &&
		    r->target.path[0] == '\0')
			problem(L, e, sub, "target is required");
		if (e->type == YAML_MAPPING_NODE && r->npeers == 0)
			problem(L, e, sub, "peers is required (\"*\" for any)");
	}
}

static const struct key inbound_keys[] = {
    {"name", t_name, 0},
    {"listen", t_listen, 0},
    {"ca", t_ca, 0},
    {"cert", t_cert, 0},
    {"key", t_key, 0},
    {"identity", t_identity, 0},
    {"allow_peers", t_allow_peers, 0},
    {"allow_cn", t_allow_cn, 0},
    {"allow_dns", t_allow_dns, 0},
    {"allow_uri", t_allow_uri, 0},
    {"target", t_target, 0},
    {"routes", t_routes, 0},
    {"limits", t_limits, 0},
    {"tls", t_tls, 0},
    {"proxy_protocol", t_proxy_protocol, 0},
    {"proxy_protocol_cert", t_proxy_protocol_cert, 0},
    {"http_identity", t_http_identity, 0},
    {NULL, NULL, 0},
};

static const struct key outbound_keys[] = {
    {"name", t_name, 0},
    {"listen", t_listen, 0},
    {"targets", t_targets, 0},
    {"ca", t_ca, 0},
    {"cert", t_cert, 0},
    {"chain", t_chain, 0},
    {"key", t_key, 0},
    {"peer", t_peer, 0},
    {"server_name", t_server_name, 0},
    {"identity", t_identity, 0},
    {"limits", t_limits, 0},
    {"tls", t_tls, 0},
    {"proxy_protocol", t_inbound_only, 0},
    {"proxy_protocol_cert", t_inbound_only, 0},
    {"http_identity", t_inbound_only, 0},
    {NULL, NULL, 0},
};

static void
check_tunnel(struct loader *L, struct tunnel_ctx *x, const char *path)
{
	struct pp_tunnel_conf *t = x->t;
	const yaml_node_t *n = x->n;
	int inbound = t->kind == PP_TUNNEL_INBOUND;

	if (!x->has_name)
		problem(L, n, path, "name is required");
	if (!x->has_listen)
		problem(L, n, path, "listen is required");
	if (t->ca_file == NULL)
		problem(L, n, path, "ca is required");
	if (t->cert_file == NULL)
		problem(L, n, path, "cert is required");
	if (t->key_file == NULL)
		problem(L, n, path, "key is required");
	if (inbound && x->has_target == x->has_routes)
		problem(L, n, path, "give either target or routes");
	if (t->proxy_protocol_cert && t->proxy_protocol != PP_PROXY_PROTOCOL_V2)
		problem(
		    L, n, path,
		    "proxy_protocol_cert needs proxy_protocol: v2 (version 1 "
		    "has no room for the certificate)");
	if (!inbound && t->ntargets == 0)
		problem(L, n, path, "targets must name at least one HOST:PORT");
	for (size_t i = 0; i < L->c->ntunnels; i++) {
		struct pp_tunnel_conf *o = &L->c->tunnels[i];
		if (o != t && o->name && t->name &&
		    strcmp(o->name, t->name) == 0) {
			/* Once per tunnel, not once per earlier namesake. */
			problem(L, n, path, "name \"%s\" is used twice",
			        t->name);
			break;
		}
	}
	pp_tunnel_conf_set_defaults(t, &x->d);
}

static void
tunnels(struct loader *L, yaml_node_t *v, const char *path,
        enum pp_tunnel_kind kind)
{
	char sub[PATH_MAX_LEN], name[32];
	int pass = L->pass;

	if (is_null(v))
		return;
	L->pass = 0; /* inside a tunnel, every key is read and checked */
	if (v->type != YAML_SEQUENCE_NODE) {
		problem(L, v, path, "expected a list of tunnels");
		L->pass = pass;
		return;
	}
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		size_t i = (size_t)(it - v->data.sequence.items.start);
		struct tunnel_ctx x = {.d = L->c->defaults, .n = node(L, *it)};

		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		snprintf(name, sizeof(name), "%s-%zu", path, i);
		if (spend(L, x.n, sub, 0) != 0)
			break;
		if (L->c->ntunnels == TUNNELS_MAX) {
			/* Each tunnel's name is checked against the others. */
			problem(L, x.n, sub, "more than %d tunnels",
			        TUNNELS_MAX);
			break;
		}
		if ((x.t = pp_config_add_tunnel(L->c, kind, name)) == NULL) {
			problem(L, v, sub, "out of memory");
			break;
		}
		walk(L, node(L, *it), sub,
		     kind == PP_TUNNEL_INBOUND ? inbound_keys : outbound_keys,
		     &x);
		if (x.n->type == YAML_MAPPING_NODE)
			check_tunnel(L, &x, sub);
	}
	L->pass = pass;
}

/* ---- top level ---- */

static void
g_workers(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	const char *s = scalar(L, v, path);
	char *end;
	long n;

	(void)obj;
	if (s == NULL || strcmp(s, "auto") == 0) {
		L->c->workers = 0;
		return;
	}
	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n < 1 || n > 64)
		problem(L, v, path,
		        "\"%s\" is not auto or a number from 1 to 64", s);
	else
		L->c->workers = (int)n;
}

static void
a_listen(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	set_addr(L, v, path, &L->c->admin_listen);
}

static const struct key admin_keys[] = {
    {"listen", a_listen, 0},
    {NULL, NULL, 0},
};

static void
g_admin(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	if (v->type == YAML_SCALAR_NODE &&
	    strcmp((char *)v->data.scalar.value, "off") == 0) {
		L->c->admin_enabled = 0;
		return;
	}
	L->c->admin_enabled = 1;
	walk(L, v, path, admin_keys, NULL);
}

static void
l_level(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	const char *s = scalar(L, v, path);

	(void)obj;
	if (s != NULL && pp_log_level_parse(s, &L->c->log_level) != 0)
		problem(L, v, path, "\"%s\" is not debug, info, warn or error",
		        s);
}

static void
l_format(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	const char *s = scalar(L, v, path);

	(void)obj;
	if (s == NULL)
		return;
	if (strcmp(s, "text") == 0 || strcmp(s, "json") == 0)
		L->c->log_json = strcmp(s, "json") == 0;
	else
		problem(L, v, path, "\"%s\" is not text or json", s);
}

static const struct key log_keys[] = {
    {"level", l_level, 0},
    {"format", l_format, 0},
    {NULL, NULL, 0},
};

static void
g_log(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	walk(L, v, path, log_keys, NULL);
}

static void
g_limits(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	walk(L, v, path, global_limit_keys, &L->c->defaults);
}

static void
g_tls(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	walk(L, v, path, tls_keys, &L->c->defaults);
}

static void
g_inbound(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	tunnels(L, v, path, PP_TUNNEL_INBOUND);
}

static void
g_outbound(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	(void)obj;
	tunnels(L, v, path, PP_TUNNEL_OUTBOUND);
}

/* ---- nodedata: ---- */

#define ND_KEY(name, body)                                                     \
	static void n_##name(struct loader *L, yaml_node_t *v,                 \
	                     const char *path, void *obj)                      \
	{                                                                      \
		struct pp_nodedata *nd = obj;                                  \
		body;                                                          \
	}

ND_KEY(path, set_file(L, v, path, &nd->path))
ND_KEY(cert, set_file(L, v, path, &nd->cert))
ND_KEY(key, set_file(L, v, path, &nd->key))
ND_KEY(rescan_interval, set_dur(L, v, path, &nd->rescan_ms))
ND_KEY(in_listen, set_addr(L, v, path, &nd->inbound_listen))
ND_KEY(in_target, set_addr(L, v, path, &nd->inbound_target))
ND_KEY(socket_dir, set_file(L, v, path, &nd->socket_dir))

static void
n_connect_listen(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct pp_nodedata *nd = obj;

	if (is_null(v))
		return;
	nd->has_connect = 1;
	set_addr(L, v, path, &nd->connect_listen);
}

ND_KEY(in_proxy_protocol,
       set_proxy_protocol(L, v, path, &nd->in_proxy_protocol))
ND_KEY(in_proxy_protocol_cert,
       set_bool(L, v, path, &nd->in_proxy_protocol_cert))
ND_KEY(in_http_identity, set_bool(L, v, path, &nd->in_http_identity))

static const struct key nd_inbound_keys[] = {
    {"listen", n_in_listen, 0},
    {"target", n_in_target, 0},
    {"proxy_protocol", n_in_proxy_protocol, 0},
    {"proxy_protocol_cert", n_in_proxy_protocol_cert, 0},
    {"http_identity", n_in_http_identity, 0},
    {NULL, NULL, 0},
};

static const struct key nd_outbound_keys[] = {
    {"socket_dir", n_socket_dir, 0},
    {"connect_listen", n_connect_listen, 0},
    {NULL, NULL, 0},
};

static void
n_inbound(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct pp_nodedata *nd = obj;

	nd->has_inbound = 1;
	walk(L, v, path, nd_inbound_keys, nd);
	if (nd->inbound_listen.port == 0 && nd->inbound_listen.path[0] == '\0')
		problem(L, v, path, "listen is required");
	if (nd->inbound_target.port == 0 && nd->inbound_target.path[0] == '\0')
		problem(L, v, path, "target is required");
	if (nd->in_proxy_protocol_cert &&
	    nd->in_proxy_protocol != PP_PROXY_PROTOCOL_V2)
		problem(L, v, path,
		        "proxy_protocol_cert needs proxy_protocol: v2");
}

static void
n_outbound(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	walk(L, v, path, nd_outbound_keys, obj);
}

static const struct key nd_keys[] = {
    {"path", n_path, 0},
    {"cert", n_cert, 0},
    {"key", n_key, 0},
    {"inbound", n_inbound, 0},
    {"outbound", n_outbound, 0},
    {"rescan_interval", n_rescan_interval, 0},
    {NULL, NULL, 0},
};

static void
g_nodedata(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct pp_nodedata *nd;

	(void)obj;
	if (is_null(v))
		return;
	if ((nd = calloc(1, sizeof(*nd))) == NULL)
		return;
	nd->rescan_ms = 60000;
	L->c->nodedata = nd;
	walk(L, v, path, nd_keys, nd);
	if (nd->path == NULL)
		problem(L, v, path, "path is required");
	if (nd->cert == NULL)
		problem(L, v, path, "cert is required");
	if (nd->key == NULL)
		problem(L, v, path, "key is required");
	if (!nd->has_inbound && nd->socket_dir == NULL && !nd->has_connect)
		problem(L, v, path,
		        "give inbound and/or outbound.socket_dir: nothing to "
		        "serve");
}

/* Pass 1 reads the settings tunnels inherit, wherever they appear in the
 * file; pass 2 the tunnels. */
static const struct key root_keys[] = {
    {"workers", g_workers, 1}, {"admin", g_admin, 1},
    {"log", g_log, 1},         {"limits", g_limits, 1},
    {"tls", g_tls, 1},         {"nodedata", g_nodedata, 1},
    {"inbound", g_inbound, 2}, {"outbound", g_outbound, 2},
    {NULL, NULL, 0},
};

/* The anchor an event defines, or NULL. */
static const yaml_char_t *
anchor_of(const yaml_event_t *e)
{
	switch (e->type) {
	case YAML_SCALAR_EVENT:
		return (e->data.scalar.anchor);
	case YAML_SEQUENCE_START_EVENT:
		return (e->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return (e->data.mapping_start.anchor);
	default:
		return (NULL);
	}
}

/* Read the first document's events before libyaml loads it, and refuse
 * it past YAML_DEPTH_MAX or YAML_ANCHORS_MAX: the scanner's time grows
 * with the square of the depth, the loader's with the square of the
 * anchors, and stopping at the limit keeps both small.  Return 0 (a
 * syntax error is left to the load, which reports it), or -1 with the
 * problem added. */
static int
prescan(struct loader *L, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t e;
	int depth = 0, anchors = 0, rc = 0, done = 0;

	if (!yaml_parser_initialize(&parser))
		return (0);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && yaml_parser_parse(&parser, &e)) {
		char why[64] = "";

		if (anchor_of(&e) != NULL && ++anchors > YAML_ANCHORS_MAX)
			snprintf(why, sizeof(why), "more than %d anchors",
			         YAML_ANCHORS_MAX);
		switch (e.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > YAML_DEPTH_MAX)
				snprintf(why, sizeof(why),
				         "YAML nested deeper than %d levels",
				         YAML_DEPTH_MAX);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_DOCUMENT_END_EVENT:
		case YAML_STREAM_END_EVENT:
			done = 1; /* the load reads the first document only */
			break;
		default:
			break;
		}
		if (why[0] != '\0') {
			pp_problems_add(L->p, "%s:%zu:%zu: %s", L->file,
			                e.start_mark.line + 1,
			                e.start_mark.column + 1, why);
			rc = -1;
			done = 1;
		}
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&parser);
	return (rc);
}

static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;

	if (slash == NULL)
		return (strdup("."));
	if (slash == path)
		return (strdup("/"));
	if ((d = strndup(path, (size_t)(slash - path))) == NULL)
		return (NULL);
	return (d);
}

struct pp_config *
pp_config_load(const char *path, struct pp_problems *p)
{
	struct loader L = {.file = path, .p = p};
	yaml_parser_t parser;
	yaml_node_t *root;
	char err[512];
	size_t len, before = p->n;
	char *text;

	if ((text = pp_file_read(path, CONFIG_FILE_MAX, &len, err,
	                         sizeof(err))) == NULL) {
		pp_problems_add(p, "%s", err);
		return (NULL);
	}
	if ((L.c = pp_config_new()) == NULL || (L.dir = dir_of(path)) == NULL ||
	    !yaml_parser_initialize(&parser)) {
		pp_problems_add(p, "%s: out of memory", path);
		free(text);
		free(L.dir);
		pp_config_unref(L.c);
		return (NULL);
	}
	/* run: the admin endpoint is on unless the file says "admin: off". */
	L.c->admin_enabled = 1;
	pp_addr_parse(PP_ADMIN_DEFAULT, &L.c->admin_listen, err, sizeof(err));
	L.c->source = strdup(path);
	if (prescan(&L, text, len) != 0) {
		yaml_parser_delete(&parser);
		goto out;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &L.doc)) {
		pp_problems_add(p, "%s:%zu:%zu: YAML error: %s", path,
		                parser.problem_mark.line + 1,
		                parser.problem_mark.column + 1,
		                parser.problem ? parser.problem : "unreadable");
		yaml_parser_delete(&parser);
		goto out;
	}
	yaml_parser_delete(&parser);
	root = yaml_document_get_root_node(&L.doc);
	if (root == NULL) {
		pp_problems_add(p, "%s: the file is empty", path);
	} else {
		L.pass = 1;
		walk(&L, root, "", root_keys, NULL);
		L.pass = 2;
		walk(&L, root, "", root_keys, NULL);
		if (p->n == before && L.c->nodedata != NULL)
			pp_nodedata_expand(L.c, L.c->nodedata, p);
		if (p->n == before && L.c->ntunnels == 0)
			pp_problems_add(p, "%s: no inbound or outbound tunnel",
			                path);
	}
	yaml_document_delete(&L.doc);
out:
	free(text);
	free(L.dir);
	if (p->n > before) {
		pp_config_unref(L.c);
		return (NULL);
	}
	return (L.c);
}
