#ifndef PP_NODEDATA_H
#define PP_NODEDATA_H

/*
 * Swaptacular node data as configuration.  A node data directory (layout in
 * README: root-ca.crt, db/nodeid, peers/<id>/{root-ca.crt, sub-ca.crt,
 * nodeinfo/stomp.toml, ACTIVE, DEACTIVATED}) becomes one inbound tunnel
 * trusting only the node's root and admitting only active peers, and one
 * outbound tunnel per active peer, listening on <socket_dir>/<id>.sock,
 * and optionally an HTTP CONNECT listener choosing among them by peer id.
 *
 * This module is the only reader of that layout: the tunnels, the peers and
 * their states (for the reports), the files a watch must follow, and the
 * gate that admits active peers all come from here.
 */

#include <stdint.h>

#include "config/config.h"

struct pp_nodedata {
	char *path;
	char *cert;
	char *key;
	struct pp_addr inbound_listen;
	struct pp_addr inbound_target;
	int has_inbound;
	enum pp_proxy_protocol in_proxy_protocol; /* inbound: as in a tunnel */
	int in_proxy_protocol_cert;
	int in_http_identity;
	char *socket_dir; /* NULL: no outbound tunnels */
	struct pp_addr connect_listen;
	int has_connect;
	uint64_t rescan_ms;
};

/* pp_nodedata_expand(c, nd, p): add the tunnels ${nd} describes to ${c}:
 * problems with the node itself are errors in ${p}; a peer whose files are
 * missing or broken is skipped with a warning naming why. */
void pp_nodedata_expand(struct pp_config *c, const struct pp_nodedata *nd,
                        struct pp_problems *p);

/* pp_nodedata_attach(c, nd): make ${nd} the node data of ${c}, freed with
 * it (the configuration model holds it without looking inside). */
void pp_nodedata_attach(struct pp_config *c, struct pp_nodedata *nd);

/* pp_nodedata_gate(dir, id, detail, len): a pp_trust_gate_fn admitting the
 * caller ${id} only if <dir>/peers/<id>/ exists with ACTIVE and without
 * DEACTIVATED.  Read at every handshake, so a deactivation takes effect
 * for the next connection.  pp_nodedata_expand makes it the gate of the
 * tunnels it makes that admit peers (inbound and CONNECT). */
int pp_nodedata_gate(void *dir, const char *id, char *detail, size_t len);

/* The most peer directories a node data directory may hold (README,
 * "Limits"): every one is read at every rescan, and an active one costs a
 * tunnel and a listening socket per worker. */
#define PP_NODEDATA_PEERS_MAX 10000

/* What the markers of a peer directory say. */
enum pp_peer_state {
	PP_PEER_ACTIVE,      /* ACTIVE present, DEACTIVATED absent */
	PP_PEER_INACTIVE,    /* no ACTIVE yet */
	PP_PEER_DEACTIVATED, /* DEACTIVATED present */
	PP_PEER_NSTATES
};

/* pp_nodedata_state_name(s): "active", "inactive" or "deactivated". */
const char *pp_nodedata_state_name(enum pp_peer_state s);

typedef void pp_nodedata_peer_fn(void *arg, const char *id,
                                 enum pp_peer_state s);

/* pp_nodedata_peers(path, fn, arg, p): call ${fn}(${arg}, id, state) for
 * every peer of the node data directory ${path}: each entry of peers/
 * whose name is a node id (8 or 32 lowercase hex digits) and that is a
 * directory of its own, not a symbolic link.  No other entry's name is
 * ever put in a path; each is skipped with a warning naming it and why
 * added to ${p} (if not NULL), "." and ".." silently.  Return the number
 * of peers, or -1 if peers/ cannot be read (errno set). */
long pp_nodedata_peers(const char *path, pp_nodedata_peer_fn *fn, void *arg,
                       struct pp_problems *p);

/* pp_nodedata_watch_paths(nd, paths): the files under ${nd}'s directory
 * that change the configuration without being named in it: peers/. (a
 * peer added or removed changes the directory's times), db/nodeid, and
 * each peer's ACTIVE, DEACTIVATED, root-ca.crt, sub-ca.crt and nodeinfo,
 * whether they exist or not, and its nodeinfo/stomp.toml while nodeinfo
 * is a directory (so a peer broken or not active yet is followed too).
 * Store them
 * in ${paths}, a malloc'd vector of malloc'd strings (free each, then the
 * vector), and return how many; 0 and nothing to free if memory is short
 * for the vector (a marker it is short for is left out). */
size_t pp_nodedata_watch_paths(const struct pp_nodedata *nd, char ***paths);

/* pp_nodedata_free(nd): free ${nd}; NULL does nothing. */
void pp_nodedata_free(struct pp_nodedata *nd);

#endif
