#ifndef PP_CONFIG_H
#define PP_CONFIG_H

/*
 * The configuration model: one immutable, reference-counted snapshot of
 * everything the data path needs.  The command-line flags, the YAML loader
 * and the node data expansion all build this model through
 * pp_config_add_tunnel, so there is one code path.  A running
 * connection holds a reference to the snapshot it started with; a reload
 * builds a new snapshot and swaps a pointer.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

#include "net/addr.h"
#include "tls/session_cache.h"
#include "tls/trust.h"
#include "util/log.h"

/* Node data (config/nodedata.h): the model holds it without looking
 * inside. */
struct pp_nodedata;

/* CONNECT: plain HTTP CONNECT requests choosing an outbound tunnel of the
 * same configuration by its peer id (node data mode). */
enum pp_tunnel_kind {
	PP_TUNNEL_INBOUND,
	PP_TUNNEL_OUTBOUND,
	PP_TUNNEL_CONNECT
};

/* What an inbound tunnel writes to its app before the caller's bytes. */
enum pp_proxy_protocol {
	PP_PROXY_PROTOCOL_OFF,
	PP_PROXY_PROTOCOL_V1,
	PP_PROXY_PROTOCOL_V2
};

/* Everything wrong with a configuration, so that one run of "check" lists
 * it all.  At most PP_PROBLEMS_KEPT problems and as many warnings are
 * kept; the rest are only counted, so a hostile file cannot make the list
 * (or the output) grow without bound. */
#define PP_PROBLEMS_KEPT 100
struct pp_problems {
	char **items;
	size_t n;         /* kept in items */
	size_t more;      /* problems counted but not kept */
	size_t nwarnings; /* kept in warnings; they do not stop the
	                     configuration */
	size_t more_warnings;
	char **warnings;
	size_t lost; /* problems or warnings memory was too short to record:
	                each counts as a problem (pp_problems_count) */
};

/* An inbound route: callers whose verified peer id is in ${peers} (or any
 * caller, with ${any}) go to ${target}.  Routes match in order. */
struct pp_route {
	char **peers;
	size_t npeers;
	int any;
	struct pp_addr target;
};

/* The limits and TLS settings every tunnel starts from: the README's
 * defaults (PP_TUNNEL_DEFAULTS), replaced by the configuration file's
 * top-level limits: and tls:, overridden per tunnel. */
struct pp_tunnel_defaults {
	uint64_t handshake_timeout_ms;
	uint64_t connect_timeout_ms;
	uint64_t idle_timeout_ms;          /* 0: none */
	uint32_t max_connections;          /* 0: unlimited */
	uint32_t max_connections_per_peer; /* 0: unlimited */
	int tls_min; /* TLS1_2_VERSION or TLS1_3_VERSION */
	int session_resumption;
};

/* The README's defaults (TLS 1.3 is 0x0304, as TLS1_3_VERSION). */
#define PP_TLS_MIN_DEFAULT 0x0304
#define PP_TUNNEL_DEFAULTS                                                     \
	((struct pp_tunnel_defaults){.handshake_timeout_ms = 10000,            \
	                             .connect_timeout_ms = 5000,               \
	                             .idle_timeout_ms = 0,                     \
	                             .max_connections = 10000,                 \
	                             .max_connections_per_peer = 0,            \
	                             .tls_min = PP_TLS_MIN_DEFAULT,            \
	                             .session_resumption = 1})

struct pp_tunnel_conf {
	char *name;
	enum pp_tunnel_kind kind;
	struct pp_addr listen;
	struct pp_addr *targets; /* failover set, tried in random order */
	size_t ntargets;
	char *ca_file;
	char *cert_file;
	char *chain_file; /* NULL if none */
	char *key_file;
	enum pp_identity_mode identity;
	struct pp_allow allow;
	char *peer;        /* outbound: required server id, or NULL */
	char *server_name; /* outbound: SNI and hostname check, or NULL */
	int tls_min;       /* TLS1_2_VERSION or TLS1_3_VERSION */
	uint64_t handshake_timeout_ms;
	uint64_t connect_timeout_ms;
	uint64_t idle_timeout_ms; /* 0: none */
	int session_resumption;   /* TLS session tickets / client cache */
	uint32_t max_connections; /* 0: unlimited */
	uint32_t max_connections_per_peer; /* 0: unlimited */
	/* Node data: admit a caller only if gate(gate_dir, its id, ...)
	 * does, i.e. its peer directory is active (config/nodedata.c sets
	 * both; gate_dir is freed with the tunnel).  NULL: no gate. */
	pp_trust_gate_fn *gate;
	char *gate_dir;
	int optional;        /* node data peer: skipped, not fatal, if broken */
	int check_own_chain; /* node data: our chain must verify against the
	                        peer's root, as the peer will check it */
	struct pp_route *routes; /* inbound: instead of targets */
	size_t nroutes;
	/* Inbound: telling the app who called (README, "Telling the app who
	 * called").  Both may be on: the PROXY header comes first. */
	enum pp_proxy_protocol proxy_protocol;
	int proxy_protocol_cert; /* v2: the DER leaf in TLV 0xE1 */
	int http_identity;       /* rewrite HTTP/1.x requests */

	/* Built by pp_config_build: counters shared by every snapshot that
	 * has a tunnel of this name (they survive reloads). */
	struct pp_limit *limit;

	/* Built by pp_config_build. */
	struct pp_trust *trust;
	SSL_CTX *ctx;
	/* Outbound: the key of the tunnel's sessions in a worker's session
	 * cache (tls/session_cache.h): a SHA-256 digest of its name and of
	 * everything its trust rests on, as loaded: the anchors' DER (so a
	 * ca file rewritten in place is new trust, and one rewritten with the
	 * same certificates is not), our certificate and chain's DER, peer,
	 * server_name, the resolved identity mode and the allow lists.  A
	 * reload that changes none of them keeps the key, and resumption; a
	 * session is never offered under other trust. */
	uint8_t session_key[PP_SESSION_KEY_LEN];
};

/* The most tunnels one configuration may hold: the file's, or node data's
 * (one per active peer), README "Limits". */
#define PP_TUNNELS_MAX 10000

/* Where the admin endpoint listens unless told otherwise. */
#define PP_ADMIN_DEFAULT "127.0.0.1:9901"

struct pp_config {
	atomic_int refs;
	int workers; /* 0: one per online CPU */
	uint64_t drain_timeout_ms;
	enum pp_log_level log_level;
	int log_json;
	/* Node data mode: the directory the tunnels come from, read only by
	 * config/nodedata.c (pp_nodedata_attach sets both); NULL otherwise.
	 * nodedata_free frees it with the snapshot. */
	struct pp_nodedata *nodedata;
	void (*nodedata_free)(struct pp_nodedata *nd);
	int admin_enabled; /* the admin endpoint */
	struct pp_addr admin_listen;
	char *source; /* the configuration file, or NULL (command line) */
	/* What pp_config_add_tunnel gives every new tunnel. */
	struct pp_tunnel_defaults defaults;
	struct pp_tunnel_conf *tunnels;
	size_t ntunnels;
	/* The warnings this snapshot was made with, as logged (set by
	 * pp_config_log_warnings): the next snapshot's are compared with
	 * them, so a rescan repeats none at warn level. */
	char **warnings;
	size_t nwarnings;
	size_t more_warnings;
};

/* pp_config_new(): an empty configuration with the defaults (tunnel
 * defaults PP_TUNNEL_DEFAULTS), holding one reference. */
struct pp_config *pp_config_new(void);

/* pp_config_add_tunnel(c, kind, name): append a tunnel of ${kind} named
 * ${name}, its limits and TLS settings copied from c->defaults; return it,
 * or NULL on allocation failure (${c} unchanged).  Every tunnel, whether
 * from flags, YAML or node data, is made here. */
struct pp_tunnel_conf *pp_config_add_tunnel(struct pp_config *c,
                                            enum pp_tunnel_kind kind,
                                            const char *name);

/* pp_tunnel_conf_set_defaults(t, d): give ${t} the limits and TLS
 * settings ${d}. */
void pp_tunnel_conf_set_defaults(struct pp_tunnel_conf *t,
                                 const struct pp_tunnel_defaults *d);

/* pp_config_build(c, p): load every certificate, key and anchor, build the
 * TLS contexts and check the tunnels against each other (duplicate listen
 * addresses, certificates expiring within 30 days: a warning) and against
 * the open file limit (a descriptor per listener and worker).  Return 0,
 * or -1 with every problem (naming the tunnel and file) added to ${p}. */
int pp_config_build(struct pp_config *c, struct pp_problems *p);

/* pp_config_route(t, peer_id, n): the targets for a caller of inbound
 * tunnel ${t} with the verified ${peer_id}: the first matching route's
 * target, or t->targets; NULL if no route matches.  ${n} gets the count. */
const struct pp_addr *pp_config_route(const struct pp_tunnel_conf *t,
                                      const char *peer_id, size_t *n);

/* pp_problems_add(p, fmt, ...): record a problem. */
void pp_problems_add(struct pp_problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* pp_problems_warn(p, fmt, ...): record a warning (does not fail). */
void pp_problems_warn(struct pp_problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* pp_problems_count(p): the problems recorded in ${p}, kept or only
 * counted, and those lost: whatever added to it failed if this grew. */
size_t pp_problems_count(const struct pp_problems *p);

/* pp_problem_is_oom(why): non-zero if ${why}, the reason a loader (PEM
 * files, TLS contexts, trust, stomp.toml) gave for a failure, is a lack of
 * memory: each says "out of memory" then.  Such a failure fails the whole
 * configuration; it never makes a node data peer look broken (skipped). */
int pp_problem_is_oom(const char *why);

/* pp_problems_print(p, prefix, f): print every kept problem and warning
 * to ${f} (a FILE *), each line starting with ${prefix}, and how many
 * more there were. */
void pp_problems_print(const struct pp_problems *p, const char *prefix,
                       void *f);

/* pp_config_log_warnings(c, p, before): log every kept warning of ${p}
 * (found making ${c}) as a config_warning line, and how many more there
 * were: at warn level, or at debug level if ${before} (the snapshot ${c}
 * replaces; NULL at start) was made with the same warning, so that a
 * reload or rescan that finds the same broken peer again says so only at
 * debug.  The warnings move from ${p} to ${c}, which keeps them for the
 * next snapshot's comparison (a warning memory is short for is logged
 * and dropped). */
void pp_config_log_warnings(struct pp_config *c, struct pp_problems *p,
                            const struct pp_config *before);

/* pp_problems_free(p): free the recorded problems (not ${p} itself). */
void pp_problems_free(struct pp_problems *p);

/* pp_tunnel_listens(t): non-zero if ${t} has a listener of its own (a node
 * data peer reached only through CONNECT has none). */
int pp_tunnel_listens(const struct pp_tunnel_conf *t);

/* pp_config_workers(c): the number of worker threads ${c} asks for. */
int pp_config_workers(const struct pp_config *c);

/* pp_config_ref(c): take a reference to ${c}; return ${c}. */
struct pp_config *pp_config_ref(struct pp_config *c);

/* pp_config_unref(c): drop a reference, freeing ${c} with the last one.
 * NULL does nothing.  Safe from any thread. */
void pp_config_unref(struct pp_config *c);

/* pp_proxy_protocol_parse(s, out): parse off|v1|v2 into ${out}.  Return
 * 0, or -1 if ${s} is none of them. */
int pp_proxy_protocol_parse(const char *s, enum pp_proxy_protocol *out);

/* pp_strv_push(v, n, s): append a copy of ${s} to the vector ${v} of ${n}
 * strings.  Return 0, or -1 on allocation failure. */
int pp_strv_push(char ***v, size_t *n, const char *s);

#endif
