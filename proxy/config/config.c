#include "config/config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "runtime/limits.h"
#include "tls/context.h"
#include "tls/tickets.h"

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

/* Arrays that grow one item at a time (tunnels, list values) double
 * their room whenever their count reaches a power of two, so the room is
 * always the next power of two: 17 reallocations for 100,000 items, not
 * 100,000 (a copy each, with sanitizers). */
static int
grows(size_t n)
{
	return ((n & (n - 1)) == 0); /* 0, 1, 2, 4, 8, ... */
}

static size_t
room(size_t n)
{
	return (n == 0 ? 1 : 2 * n);
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

	if ((copy = strdup(name)) == NULL)
		return (NULL);
	if (grows(c->ntunnels)) {
		t = realloc(c->tunnels, room(c->ntunnels) * sizeof(*t));
		if (t == NULL) {
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
	if (grows(*n)) {
		char **nv = realloc(*v, room(*n) * sizeof(char *));
		if (nv == NULL)
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
	if (leaf == NULL) /* a built context has one: never read v unset */
		snprintf(why, len, "%s: no certificate to present",
		         t->cert_file);
	else if (pp_trust_check(peer_view, leaf, chain, &v) == 0)
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

/* Hash ${len} bytes at ${p} after their length, so that no two different
 * sequences of fields hash alike. */
static void
key_put(SHA256_CTX *h, const void *p, size_t len)
{
	uint8_t n[8];

	for (int i = 0; i < 8; i++)
		n[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	SHA256_Update(h, n, sizeof(n));
	SHA256_Update(h, p, len);
}

/* A string, NULL (absent) told apart from "". */
static void
key_str(SHA256_CTX *h, const char *s)
{
	key_put(h, s != NULL ? "+" : "-", 1);
	if (s != NULL)
		key_put(h, s, strlen(s));
}

static void
key_strv(SHA256_CTX *h, char *const *v, size_t n)
{
	key_put(h, &(uint64_t){n}, sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		key_str(h, v[i]);
}

/* The DER of ${x}.  Return 0, or -1 if memory is short. */
static int
key_cert(SHA256_CTX *h, X509 *x)
{
	uint8_t *der = NULL;
	int len = i2d_X509(x, &der);

	if (len <= 0)
		return (-1);
	key_put(h, der, (size_t)len);
	OPENSSL_free(der);
	return (0);
}

static int
key_certs(SHA256_CTX *h, const STACK_OF(X509) * v)
{
	size_t n = sk_X509_num(v);

	key_put(h, &(uint64_t){n}, sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		if (key_cert(h, sk_X509_value(v, i)) != 0)
			return (-1);
	return (0);
}

/* t->session_key: see config.h.  The certificates as loaded, not the file
 * names: trust is what the files held when the context was built.  Return
 * 0, or -1 if memory is short. */
static int
session_key(struct pp_tunnel_conf *t)
{
	X509 *leaf = pp_tls_ctx_leaf(t->ctx);
	STACK_OF(X509) *chain = pp_tls_ctx_chain(t->ctx);
	uint8_t mode = (uint8_t)pp_trust_mode(t->trust);
	SHA256_CTX h;

	SHA256_Init(&h);
	key_str(&h, t->name);
	if (key_certs(&h, pp_trust_anchors(t->trust)) != 0 || leaf == NULL ||
	    key_cert(&h, leaf) != 0 ||
	    key_certs(&h, chain) != 0) /* none: counted as 0 */
		return (-1);
	key_str(&h, t->peer);
	key_str(&h, t->server_name);
	key_put(&h, &mode, 1);
	key_strv(&h, t->allow.peers, t->allow.npeers);
	key_strv(&h, t->allow.cns, t->allow.ncns);
	key_strv(&h, t->allow.dns, t->allow.ndns);
	key_strv(&h, t->allow.uris, t->allow.nuris);
	SHA256_Final(t->session_key, &h);
	return (0);
}

/* Build ${t}'s trust and TLS context; 0, or -1 with the reason in ${why}
 * (room for two paths and a verdict: see pp_config_build). */
static int
build_tunnel(struct pp_tunnel_conf *t, char *why, size_t len)
{
	struct pp_trust_params tp = {
	    .ca_file = t->ca_file,
	    .mode = t->identity,
	    .verify_server = t->kind == PP_TUNNEL_OUTBOUND,
	    .allow = &t->allow,
	    .required_peer = t->peer,
	    .hostname = t->server_name,
	    .gate = t->gate,
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

	if ((t->limit = pp_limit_get(t->name)) == NULL ||
	    (p.server && (p.tickets = pp_tickets_get(t->name)) == NULL)) {
		snprintf(why, len, "out of memory");
		return (-1);
	}
	if (t->kind == PP_TUNNEL_CONNECT) /* plain: no TLS of its own */
		return (0);
	if ((t->trust = pp_trust_new(&tp, why, len)) == NULL)
		return (-1);
	if (check_peer_ids(t, why, len) != 0)
		return (-1);
	p.trust = t->trust;
	if ((t->ctx = pp_tls_ctx_new(&p, why, len)) == NULL)
		return (-1);
	if (t->check_own_chain && check_own_chain(t, why, len) != 0)
		return (-1);
	if (t->kind == PP_TUNNEL_OUTBOUND && session_key(t) != 0) {
		snprintf(why, len, "out of memory");
		return (-1);
	}
	return (0);
}

/* A listener's address as text, and its tunnel. */
struct listen_ref {
	char addr[PP_HOST_MAX + 16];
	size_t i;
};

static int
listen_ref_cmp(const void *a, const void *b)
{
	const struct listen_ref *x = a, *y = b;
	int c = strcmp(x->addr, y->addr);

	return (c != 0 ? c : (x->i > y->i) - (x->i < y->i));
}

/* Two tunnels may not listen on one address.  Sorted, not pair by pair:
 * a node may have thousands of peers, each with its socket. */
static void
check_listen_addresses(const struct pp_config *c, struct pp_problems *p)
{
	struct listen_ref *refs =
	    calloc(c->ntunnels ? c->ntunnels : 1, sizeof(*refs));
	size_t n = 0;

	if (refs == NULL) {
		pp_problems_add(p, "out of memory");
		return;
	}
	for (size_t i = 0; i < c->ntunnels; i++) {
		if (!pp_tunnel_listens(&c->tunnels[i]))
			continue;
		pp_addr_format(&c->tunnels[i].listen, refs[n].addr,
		               sizeof(refs[n].addr));
		refs[n++].i = i;
	}
	qsort(refs, n, sizeof(*refs), listen_ref_cmp);
	for (size_t k = 1; k < n; k++)
		if (strcmp(refs[k].addr, refs[k - 1].addr) == 0)
			pp_problems_add(
			    p, "tunnels %s and %s both listen on %s",
			    c->tunnels[refs[k - 1].i].name,
			    c->tunnels[refs[k].i].name, refs[k].addr);
	free(refs);
}

/* Descriptors the process holds besides its listeners: stdio, the admin
 * endpoint, the file watch, and a loop with its wakeups per worker. */
#define FDS_RESERVED(workers) (32 + 4 * (size_t)(workers))
/* Fewer than this left for connections (two each) draws a warning. */
#define FDS_FOR_CONNECTIONS 1024

/* Every listener takes one descriptor per worker for as long as it
 * exists, so a node with thousands of peers can need more than the open
 * file limit allows.  Judge against the hard limit: run raises the soft
 * one to it.  Say so here, naming the limit, rather than fail at the
 * thousandth socket. */
static void
check_fd_limit(const struct pp_config *c, struct pp_problems *p)
{
	size_t workers = (size_t)pp_config_workers(c), listeners = 0, need;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY)
		return;
	for (size_t i = 0; i < c->ntunnels; i++)
		listeners += pp_tunnel_listens(&c->tunnels[i]) != 0;
	need = listeners * workers + FDS_RESERVED(workers);
	if (need > rl.rlim_max)
		pp_problems_add(
		    p,
		    "%zu listeners x %zu workers need %zu open files (with "
		    "%zu for the process itself), more than the open file "
		    "limit RLIMIT_NOFILE of %llu: raise it (ulimit -n, "
		    "systemd LimitNOFILE=) or run fewer workers",
		    listeners, workers, need, FDS_RESERVED(workers),
		    (unsigned long long)rl.rlim_max);
	else if (rl.rlim_max - need < FDS_FOR_CONNECTIONS)
		pp_problems_warn(
		    p,
		    "%zu listeners x %zu workers leave %llu of the open file "
		    "limit RLIMIT_NOFILE (%llu) for connections, two each",
		    listeners, workers,
		    (unsigned long long)(rl.rlim_max - need),
		    (unsigned long long)rl.rlim_max);
}

int
pp_config_build(struct pp_config *c, struct pp_problems *p)
{
	size_t before = pp_problems_count(p);
	/* The longest reason names two files (check_own_chain). */
	char why[2 * PATH_MAX + 1024];
	time_t soon = time(NULL) + EXPIRY_WARNING_S;

	for (size_t i = 0; i < c->ntunnels; i++) {
		struct pp_tunnel_conf *t = &c->tunnels[i];
		if (build_tunnel(t, why, sizeof(why)) != 0) {
			if (!t->optional || pp_problem_is_oom(why)) {
				pp_problems_add(p, "tunnel %s: %s", t->name,
				                why);
				continue;
			}
			pp_problems_warn(p, "tunnel %s: %s: skipped", t->name,
			                 why);
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
	check_listen_addresses(c, p);
	check_fd_limit(c, p);
	return (pp_problems_count(p) > before ? -1 : 0);
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

static void vadd(struct pp_problems *p, char ***items, size_t *n, size_t *more,
                 const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* Append the message to ${items} (${n} kept), or count it in ${more} once
 * PP_PROBLEMS_KEPT are kept; when memory is too short for it, count it in
 * p->lost instead, so that it still fails what it should. */
static void
vadd(struct pp_problems *p, char ***items, size_t *n, size_t *more,
     const char *fmt, va_list ap)
{
	char **nv;

	if (*n >= PP_PROBLEMS_KEPT) {
		(*more)++;
		return;
	}
	if ((nv = realloc(*items, (*n + 1) * sizeof(char *))) == NULL) {
		p->lost++;
		return;
	}
	*items = nv;
	/* Allocated whole: a problem naming a long path is never cut. */
	if (vasprintf(&nv[*n], fmt, ap) < 0) {
		p->lost++;
		return;
	}
	(*n)++;
}

void
pp_problems_add(struct pp_problems *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(p, &p->items, &p->n, &p->more, fmt, ap);
	va_end(ap);
}

void
pp_problems_warn(struct pp_problems *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(p, &p->warnings, &p->nwarnings, &p->more_warnings, fmt, ap);
	va_end(ap);
}

int
pp_problem_is_oom(const char *why)
{
	return (strstr(why, "out of memory") != NULL);
}

size_t
pp_problems_count(const struct pp_problems *p)
{
	return (p->n + p->more + p->lost);
}

void
pp_problems_print(const struct pp_problems *p, const char *prefix, void *fp)
{
	FILE *f = fp;

	for (size_t i = 0; i < p->n; i++)
		fprintf(f, "%s%s\n", prefix, p->items[i]);
	if (p->more > 0)
		fprintf(f, "%s... and %zu more problems\n", prefix, p->more);
	if (p->lost > 0)
		fprintf(f, "%sout of memory (%zu more problems not recorded)\n",
		        prefix, p->lost);
	for (size_t i = 0; i < p->nwarnings; i++)
		fprintf(f, "%swarning: %s\n", prefix, p->warnings[i]);
	if (p->more_warnings > 0)
		fprintf(f, "%swarning: ... and %zu more warnings\n", prefix,
		        p->more_warnings);
}

/* 1 if ${c} (may be NULL) was made with the warning ${w}. */
static int
had_warning(const struct pp_config *c, const char *w)
{
	for (size_t i = 0; c != NULL && i < c->nwarnings; i++)
		if (strcmp(c->warnings[i], w) == 0)
			return (1);
	return (0);
}

void
pp_config_log_warnings(struct pp_config *c, struct pp_problems *p,
                       const struct pp_config *before)
{
	char **nv = NULL;
	size_t n = c->nwarnings + p->nwarnings;
	int again;

	if (p->nwarnings > 0 &&
	    (nv = realloc(c->warnings, n * sizeof(*nv))) != NULL)
		c->warnings = nv;
	for (size_t i = 0; i < p->nwarnings; i++) {
		again = had_warning(before, p->warnings[i]);
		pp_log_msg(again ? PP_LOG_DEBUG : PP_LOG_WARN, "config_warning",
		           "%s", p->warnings[i]);
		if (nv != NULL)
			c->warnings[c->nwarnings++] = p->warnings[i];
		else
			free(p->warnings[i]);
	}
	free(p->warnings);
	p->warnings = NULL;
	p->nwarnings = 0;
	if (p->more_warnings > 0) {
		again =
		    before != NULL && before->more_warnings ==
		                          c->more_warnings + p->more_warnings;
		pp_log_msg(again ? PP_LOG_DEBUG : PP_LOG_WARN, "config_warning",
		           "... and %zu more warnings", p->more_warnings);
	}
	c->more_warnings += p->more_warnings;
	p->more_warnings = 0;
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
	if (c->nodedata_free != NULL)
		c->nodedata_free(c->nodedata);
	free(c->source);
	strv_free(c->warnings, c->nwarnings);
	free(c);
}
