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
#include "util/duration.h"
#include "util/file.h"

#define PATH_MAX_LEN 256

/* Bounds on what a file may ask of the YAML parser (README, "Limits"):
 * mappings and lists nested at most this deep (ours need 7), and at most
 * this many values (scalars, lists and mappings) in all, which bounds the
 * memory of the parsed document. */
#define YAML_DEPTH_MAX 64
#define YAML_NODES_MAX 100000
/* Anchors serve only aliases, which are refused, but libyaml's loader
 * looks each new anchor up among all the earlier ones: 60,000 of them
 * took 88 s.  A file may keep a few (a template it no longer uses). */
#define YAML_ANCHORS_MAX 128

/* Where a tunnel of the file is: its node, and its place in the list of
 * its kind (its key path is "inbound[i]" or "outbound[i]"). */
struct tunnel_ref {
	const yaml_node_t *n;
	size_t i;
};

struct loader {
	const char *file;
	char *dir; /* for relative paths */
	yaml_document_t doc;
	struct pp_problems *p;
	struct pp_config *c; /* its defaults: the top-level limits: and tls: */
	int pass;            /* 1: global settings, 2: tunnels */
	struct tunnel_ref *tref; /* where each tunnel of the file is */
	int oom;                 /* memory ran out: the one problem reported */
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

	/* After memory ran out, what follows from it ("path is required"
	 * for the path it could not copy) would mislead. */
	if (L->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pp_problems_add(L->p, "%s:%zu:%zu: %s: %s", L->file,
	                n->start_mark.line + 1, n->start_mark.column + 1, path,
	                msg);
}

/* An allocation for the value at ${n} failed: the file cannot be loaded
 * (never a configuration quietly missing the value). */
static void
no_memory(struct loader *L, const yaml_node_t *n, const char *path)
{
	problem(L, n, path, "out of memory");
	L->oom = 1;
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

/* A key of a mapping, for finding duplicates by sorting. */
struct key_ref {
	const char *name; /* NULL: not a scalar */
	size_t i;         /* its pair's index */
};

static int
key_ref_cmp(const void *a, const void *b)
{
	const struct key_ref *x = a, *y = b;
	int c;

	if (x->name == NULL || y->name == NULL)
		c = (x->name == NULL) - (y->name == NULL);
	else
		c = strcmp(x->name, y->name);
	if (c == 0)
		c = x->i < y->i ? -1 : x->i > y->i;
	return (c);
}

/* Mark in ${dup} (one flag per pair of the mapping ${n}) every key that
 * repeats an earlier one.  Sorted, not pair by pair: a hostile file may
 * hold a mapping of a hundred thousand keys.  Return 0, or -1 if memory
 * is short. */
static int
find_duplicate_keys(struct loader *L, const yaml_node_t *n, char *dup)
{
	size_t k =
	    (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	struct key_ref *refs = calloc(k ? k : 1, sizeof(*refs));

	if (refs == NULL)
		return (-1);
	for (size_t i = 0; i < k; i++) {
		yaml_node_t *key = node(L, n->data.mapping.pairs.start[i].key);
		refs[i].i = i;
		if (key->type == YAML_SCALAR_NODE)
			refs[i].name = (const char *)key->data.scalar.value;
	}
	qsort(refs, k, sizeof(*refs), key_ref_cmp);
	for (size_t i = 1; i < k; i++)
		if (refs[i].name != NULL && refs[i - 1].name != NULL &&
		    strcmp(refs[i].name, refs[i - 1].name) == 0)
			dup[refs[i].i] = 1;
	free(refs);
	return (0);
}

/* Walk the mapping ${n} with the handlers in ${keys}. */
static void
walk(struct loader *L, yaml_node_t *n, const char *path, const struct key *keys,
     void *obj)
{
	char sub[PATH_MAX_LEN], *dup;
	size_t k;

	if (n->type != YAML_MAPPING_NODE) {
		problem(L, n, path, "expected a mapping (key: value lines)");
		return;
	}
	k = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if ((dup = calloc(k ? k : 1, 1)) == NULL ||
	    find_duplicate_keys(L, n, dup) != 0) {
		no_memory(L, n, path);
		free(dup);
		return;
	}
	for (size_t i = 0; i < k; i++) {
		yaml_node_pair_t *pr = &n->data.mapping.pairs.start[i];
		yaml_node_t *key = node(L, pr->key), *v = node(L, pr->value);
		const char *name = scalar(L, key, path);
		const struct key *hit = NULL;

		if (name == NULL)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "",
		         name);
		if (dup[i]) {
			if (L->pass <= 1)
				problem(L, key, sub, "duplicate key");
			continue;
		}
		for (const struct key *x = keys; x->name != NULL; x++) {
			if (strcmp(x->name, name) == 0)
				hit = x;
		}
		if (hit == NULL) {
			if (L->pass <= 1)
				problem(L, key, sub, "unknown key");
			continue;
		}
		if (hit->pass == 0 || hit->pass == L->pass)
			hit->fn(L, v, sub, obj);
	}
	free(dup);
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
	if ((*dst = strdup(s)) == NULL)
		no_memory(L, v, path);
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
	} else if (asprintf(dst, "%s/%s", L->dir, s) < 0) {
		*dst = NULL; /* out of memory: as strdup's NULL above */
	}
	if (*dst == NULL)
		no_memory(L, v, path);
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
		if (!is_null(v) && (s = scalar(L, v, path)) != NULL &&
		    pp_strv_push(dst, n, s) != 0)
			no_memory(L, v, path);
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
		if ((s = scalar(L, e, sub)) == NULL)
			continue;
		if (*s == '\0')
			problem(L, e, sub, "empty value");
		else if (pp_strv_push(dst, n, s) != 0)
			no_memory(L, e, sub);
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
	if (n > 0 && t->targets == NULL)
		no_memory(L, v, path);
	for (size_t i = 0; i < n && t->targets != NULL; i++) {
		if (v->type == YAML_SEQUENCE_NODE)
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		else
			snprintf(sub, sizeof(sub), "%s", path);
		if (pp_addr_parse(list[i], &t->targets[t->ntargets], err,
		                  sizeof(err)) != 0)
			problem(L, v, sub, "\"%s\": %s", list[i], err);
		else
			t->ntargets++;
	}
	for (size_t i = 0; i < n; i++)
		free(list[i]);
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
	if ((t->routes = calloc(n, sizeof(*t->routes))) == NULL) {
		no_memory(L, v, path);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *e = node(L, v->data.sequence.items.start[i]);
		struct pp_route *r = &t->routes[t->nroutes++];

		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
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
	pp_tunnel_conf_set_defaults(t, &x->d);
}

static void
tunnels(struct loader *L, yaml_node_t *v, const char *path,
        enum pp_tunnel_kind kind)
{
	char sub[PATH_MAX_LEN], name[32];
	struct tunnel_ref *tr;
	int pass = L->pass;
	size_t n;

	if (is_null(v))
		return;
	L->pass = 0; /* inside a tunnel, every key is read and checked */
	if (v->type != YAML_SEQUENCE_NODE) {
		problem(L, v, path, "expected a list of tunnels");
		L->pass = pass;
		return;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (L->c->ntunnels + n > PP_TUNNELS_MAX) {
		problem(L, v, path,
		        "more than %d tunnels (%zu, inbound and outbound "
		        "together)",
		        PP_TUNNELS_MAX, L->c->ntunnels + n);
		L->pass = pass;
		return;
	}
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		size_t i = (size_t)(it - v->data.sequence.items.start);
		struct tunnel_ctx x = {.d = L->c->defaults, .n = node(L, *it)};

		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		snprintf(name, sizeof(name), "%s-%zu", path, i);
		if (x.n->type != YAML_MAPPING_NODE) {
			problem(L, x.n, sub,
			        "expected a mapping (key: value lines)");
			continue;
		}
		if ((L->tref == NULL &&
		     (L->tref = calloc(PP_TUNNELS_MAX, sizeof(*tr))) == NULL) ||
		    (x.t = pp_config_add_tunnel(L->c, kind, name)) == NULL) {
			no_memory(L, v, sub);
			break;
		}
		tr = L->tref;
		tr[L->c->ntunnels - 1] = (struct tunnel_ref){x.n, i};
		walk(L, node(L, *it), sub,
		     kind == PP_TUNNEL_INBOUND ? inbound_keys : outbound_keys,
		     &x);
		check_tunnel(L, &x, sub);
	}
	L->pass = pass;
}

/* Every tunnel whose name another tunnel of the file has too is a problem
 * at its own place.  Sorted by name: the file may hold many tunnels. */
static void
check_names(struct loader *L)
{
	size_t n = L->c->ntunnels;
	struct key_ref *refs = calloc(n ? n : 1, sizeof(*refs));
	char *dup = calloc(n ? n : 1, 1);

	if (refs == NULL || dup == NULL) {
		pp_problems_add(L->p, "%s: out of memory", L->file);
		L->oom = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		refs[i] = (struct key_ref){L->c->tunnels[i].name, i};
	qsort(refs, n, sizeof(*refs), key_ref_cmp);
	for (size_t i = 1; i < n; i++) /* no name: memory ran out for it */
		if (refs[i].name != NULL && refs[i - 1].name != NULL &&
		    strcmp(refs[i].name, refs[i - 1].name) == 0)
			dup[refs[i].i] = dup[refs[i - 1].i] = 1;
	for (size_t i = 0; i < n; i++) {
		const struct pp_tunnel_conf *t = &L->c->tunnels[i];
		char path[32];

		if (!dup[i])
			continue;
		snprintf(path, sizeof(path), "%s[%zu]",
		         t->kind == PP_TUNNEL_INBOUND ? "inbound" : "outbound",
		         L->tref[i].i);
		problem(L, L->tref[i].n, path, "name \"%s\" is used twice",
		        t->name);
	}
out:
	free(refs);
	free(dup);
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

/* 1 if ${v} is a mapping with the key ${name}. */
static int
has_key(struct loader *L, const yaml_node_t *v, const char *name)
{
	if (v->type != YAML_MAPPING_NODE)
		return (0);
	for (yaml_node_pair_t *pr = v->data.mapping.pairs.start;
	     pr < v->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(L, pr->key);
		if (k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, name) == 0)
			return (1);
	}
	return (0);
}

static void
n_inbound(struct loader *L, yaml_node_t *v, const char *path, void *obj)
{
	struct pp_nodedata *nd = obj;

	nd->has_inbound = 1;
	walk(L, v, path, nd_inbound_keys, nd);
	/* Missing, not bad: a bad value was named where it was read. */
	if (!has_key(L, v, "listen"))
		problem(L, v, path, "listen is required");
	if (!has_key(L, v, "target"))
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
	if ((nd = calloc(1, sizeof(*nd))) == NULL) {
		no_memory(L, v, path);
		return;
	}
	nd->rescan_ms = 60000;
	pp_nodedata_attach(L->c, nd);
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

/* Read the file's events once before building its document: refuse
 * aliases (libyaml shares an aliased node, but a walk would visit it once
 * per alias, so a few lines can stand for billions of nodes), nesting
 * deeper than YAML_DEPTH_MAX, more than YAML_NODES_MAX values and more
 * than YAML_ANCHORS_MAX anchors, at the
 * line where they start, before anything deep or large is built.  Return 0 if
 * the document may be loaded, or -1 with the problem added to ${L->p}. */
static int
scan(struct loader *L, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, rc = -1, done = 0;
	size_t nodes = 0, anchors = 0;
	const yaml_char_t *anchor;

	if (!yaml_parser_initialize(&parser)) {
		pp_problems_add(L->p, "%s: out of memory", L->file);
		return (-1);
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			pp_problems_add(L->p, "%s:%zu:%zu: YAML error: %s",
			                L->file, parser.problem_mark.line + 1,
			                parser.problem_mark.column + 1,
			                parser.problem ? parser.problem
			                               : "unreadable");
			break;
		}
		switch (ev.type) {
		case YAML_ALIAS_EVENT:
			pp_problems_add(
			    L->p,
			    "%s:%zu:%zu: YAML alias *%s: aliases are not "
			    "supported (write the value out in full)",
			    L->file, ev.start_mark.line + 1,
			    ev.start_mark.column + 1,
			    (const char *)ev.data.alias.anchor);
			done = 1;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			anchor = ev.type == YAML_SCALAR_EVENT
			             ? ev.data.scalar.anchor
			         : ev.type == YAML_SEQUENCE_START_EVENT
			             ? ev.data.sequence_start.anchor
			             : ev.data.mapping_start.anchor;
			if (anchor != NULL && ++anchors > YAML_ANCHORS_MAX) {
				pp_problems_add(L->p,
				                "%s:%zu:%zu: more than %d YAML "
				                "anchors (&%s)",
				                L->file, ev.start_mark.line + 1,
				                ev.start_mark.column + 1,
				                YAML_ANCHORS_MAX,
				                (const char *)anchor);
				done = 1;
				break;
			}
			if (++nodes > YAML_NODES_MAX) {
				pp_problems_add(
				    L->p,
				    "%s:%zu:%zu: more than %d values in the "
				    "file",
				    L->file, ev.start_mark.line + 1,
				    ev.start_mark.column + 1, YAML_NODES_MAX);
				done = 1;
				break;
			}
			if (ev.type != YAML_SCALAR_EVENT &&
			    ++depth > YAML_DEPTH_MAX) {
				pp_problems_add(
				    L->p,
				    "%s:%zu:%zu: nested more than %d levels "
				    "deep",
				    L->file, ev.start_mark.line + 1,
				    ev.start_mark.column + 1, YAML_DEPTH_MAX);
				done = 1;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			rc = 0;
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return (rc);
}

struct pp_config *
pp_config_load(const char *path, struct pp_problems *p)
{
	struct loader L = {.file = path, .p = p};
	yaml_parser_t parser;
	yaml_node_t *root;
	char err[512];
	size_t len, before = pp_problems_count(p);
	char *text;

	if ((text = pp_file_read(path, PP_FILE_MAX_CONFIG, &len, err,
	                         sizeof(err))) == NULL) {
		pp_problems_add(p, "%s", err);
		return (NULL);
	}
	if (scan(&L, text, len) != 0) {
		free(text);
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
	if ((L.c->source = strdup(path)) == NULL) {
		pp_problems_add(p, "%s: out of memory", path);
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
		check_names(&L);
		if (pp_problems_count(p) == before && L.c->nodedata != NULL)
			pp_nodedata_expand(L.c, L.c->nodedata, p);
		if (pp_problems_count(p) == before && L.c->ntunnels == 0)
			pp_problems_add(p, "%s: no inbound or outbound tunnel",
			                path);
	}
	yaml_document_delete(&L.doc);
out:
	free(text);
	free(L.dir);
	free(L.tref);
	if (pp_problems_count(p) > before) {
		pp_config_unref(L.c);
		return (NULL);
	}
	return (L.c);
}
