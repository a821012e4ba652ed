#ifndef PP_CONFIG_H
#define PP_CONFIG_H

/*
 * The configuration model: one immutable, reference-counted snapshot of
 * everything the data path needs.  The command-line flags and (later) the
 * YAML loader both build this model, so there is one code path.  A running
 * connection holds a reference to the snapshot it started with; a reload
 * builds a new snapshot and swaps a pointer.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

#include "net/addr.h"
#include "tls/trust.h"
#include "util/log.h"

enum pp_tunnel_kind { PP_TUNNEL_INBOUND, PP_TUNNEL_OUTBOUND };

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

	/* Built by pp_config_build. */
	struct pp_trust *trust;
	SSL_CTX *ctx;
};

struct pp_config {
	atomic_int refs;
	int workers; /* 0: one per online CPU */
	uint64_t drain_timeout_ms;
	enum pp_log_level log_level;
	int log_json;
	struct pp_tunnel_conf *tunnels;
	size_t ntunnels;
};

/* pp_config_new(): an empty configuration with the defaults, holding one
 * reference. */
struct pp_config *pp_config_new(void);

/* pp_config_add_tunnel(c, kind, name): append a tunnel of ${kind} with the
 * default timeouts and TLS 1.3 minimum; return it, or NULL. */
struct pp_tunnel_conf *pp_config_add_tunnel(struct pp_config *c,
                                            enum pp_tunnel_kind kind,
                                            const char *name);

/* pp_config_build(c, err, errlen): load every certificate, key and anchor
 * and build the TLS contexts.  Return 0, or -1 with the first problem
 * (naming the tunnel and file) in ${err}. */
int pp_config_build(struct pp_config *c, char *err, size_t errlen);

/* pp_config_workers(c): the number of worker threads ${c} asks for. */
int pp_config_workers(const struct pp_config *c);

/* pp_config_ref(c): take a reference to ${c}; return ${c}. */
struct pp_config *pp_config_ref(struct pp_config *c);

/* pp_config_unref(c): drop a reference, freeing ${c} with the last one.
 * NULL does nothing.  Safe from any thread. */
void pp_config_unref(struct pp_config *c);

/* pp_strv_push(v, n, s): append a copy of ${s} to the vector ${v} of ${n}
 * strings.  Return 0, or -1 on allocation failure. */
int pp_strv_push(char ***v, size_t *n, const char *s);

#endif
