#ifndef PP_TUNNEL_INTERNAL_H
#define PP_TUNNEL_INTERNAL_H

/*
 * What the files of proxy/tunnel/ share and nothing else includes: the
 * tunnel itself and its set, and the calls between
 *   tunnel.c         the state machine: handshake, dial, pump, close
 *   set.c            the set: accepting a tunnel, the open and the deferred
 *                    tunnels, reload checks, abort
 *   connect_front.c  the HTTP CONNECT front end (node data mode)
 *   tell.c           what the app is told: PROXY header, HTTP identity
 *   side.c           one side, TLS or plain (its own header, side.h)
 */

#include <stdint.h>

#include "config/config.h"
#include "runtime/limits.h"
#include "tls/context.h"
#include "tunnel/side.h"
#include "tunnel/tunnel.h"

struct pp_connect_req;
struct pp_dial;
struct pp_httpid;
struct pp_tellapp;

/* Records moved per direction before yielding to other tunnels. */
#define PP_PUMP_BUDGET 16

enum pp_tunnel_state {
	T_REQUEST,   /* CONNECT front end: reading the request head */
	T_HANDSHAKE, /* TLS handshake and verification */
	T_DIAL,      /* connecting to the target */
	T_PUMP,      /* moving bytes both ways */
	T_LINGER,    /* refused: the client reads our alert before the close */
	T_CLOSING    /* handles closing; freed when the last one is */
};

/* One direction of a tunnel: at most one buffer in flight. */
struct pp_pipe {
	uint8_t *buf; /* from the pool while bytes are in flight, else NULL */
	uint32_t off, len;
	uint64_t bytes;
	atomic_ullong *metric; /* the tunnel's bytes_total for this direction */
};

struct pp_tunnel {
	struct pp_tunnels *set;          /* owns the struct; outlives it */
	struct pp_tunnel *prev, *next;   /* the set's open tunnels */
	struct pp_tunnel *dprev, *dnext; /* the set's deferred tunnels */
	int deferred;
	const struct pp_tunnel_host *host; /* the set's */
	const struct pp_tunnel_conf *tc;
	struct pp_config *conf; /* reference held for the tunnel's life */
	enum pp_tunnel_state state;
	struct pp_side acc; /* the accepted connection */
	struct pp_side up;  /* the connection we made */
	struct pp_side *tls;
	struct pp_pipe fwd;  /* acc -> up */
	struct pp_pipe back; /* up -> acc */
	uv_timer_t timer;    /* handshake timeout, then idle timeout */
	struct pp_dial *dial;
	int handles; /* open handles and the dial: freed at zero */
	uint64_t id;
	uint64_t start_ms, last_ms;
	char remote[PP_HOST_MAX + 16]; /* unix:<sun_path> fits */
	char target[PP_HOST_MAX + 16];
	struct pp_tls_conn tlsc; /* verdict and session slot of the TLS side */
	struct pp_limit *limit;  /* counts this tunnel (max_connections) */
	struct pp_limit *peer_limit; /* and its peer's, once counted there */
	char peer_counted[PP_PEER_ID_MAX + 1];
	struct pp_connect_req *req; /* T_REQUEST: the CONNECT head so far */
	int via_connect; /* the app asked by CONNECT: it gets 200 or 502 */
	int counted;     /* its connections_total result is counted */
	uint64_t hs_start_ns;

	struct pp_tellapp *tell; /* what the app learns of the caller */
	struct pp_httpid *http;  /* its HTTP rewriter, or NULL */
	struct pp_pipe hin; /* http_identity: client bytes not yet rewritten */
	const char *bad_request; /* why the caller's HTTP was refused */
	int bad_replied;         /* ... and the 400 is on its way */
};

struct pp_tunnels {
	struct pp_tunnel_host host;
	struct pp_tunnel *open; /* every tunnel not freed */
	size_t nopen;
	struct pp_tunnel *deferred; /* tunnels to pump again soon */
};

/* ---- tunnel.c ---- */

/* pp_tunnel_open(t, fd, sa, salen): set up ${t} (made by the set, with
 * set, host, tc, conf, id and limit filled in) on the accepted socket
 * ${fd} from ${sa} and start it.  On failure it is closing. */
void pp_tunnel_open(struct pp_tunnel *t, int fd, const struct sockaddr *sa,
                    socklen_t salen);

/* pp_tunnel_close(t, reason, detail, mode): end ${t}, logging
 * tunnel_closed with ${reason} and ${detail} (${reason} NULL: the caller
 * logged why already).  Its handles close; the last frees it. */
void pp_tunnel_close(struct pp_tunnel *t, const char *reason,
                     const char *detail, enum pp_close_mode mode);

/* pp_tunnel_dial(t): connect ${t} to its target (inbound: the route of
 * its verified peer). */
void pp_tunnel_dial(struct pp_tunnel *t);

/* pp_tunnel_resume(t): pump ${t} again, if it is pumping. */
void pp_tunnel_resume(struct pp_tunnel *t);

/* pp_tunnel_recheck(t, conf): close ${t} if its peer is no longer
 * trusted under ${conf} (pp_tunnels_recheck_all). */
void pp_tunnel_recheck(struct pp_tunnel *t, const struct pp_config *conf);

/* ---- set.c ---- */

/* pp_tunnels_defer(t): pump ${t} again on a later loop turn. */
void pp_tunnels_defer(struct pp_tunnel *t);

/* pp_tunnels_undefer(t): forget a pp_tunnels_defer of ${t}. */
void pp_tunnels_undefer(struct pp_tunnel *t);

/* pp_tunnels_forget(t): free ${t}, whose handles are closed and whose own
 * resources are released, and tell the host. */
void pp_tunnels_forget(struct pp_tunnel *t);

/* ---- connect_front.c ---- */

/* pp_connect_front_start(t): read the CONNECT request of the client of
 * ${t}, which then names the outbound tunnel to take. */
void pp_connect_front_start(struct pp_tunnel *t);

/* pp_connect_front_read(t): the client's socket is readable: read more of
 * the request; once it is complete, dial or refuse. */
void pp_connect_front_read(struct pp_tunnel *t);

/* pp_connect_front_reply(t, msg): send the short answer ${msg} (200, 403,
 * 502) to the plain client of ${t}. */
void pp_connect_front_reply(struct pp_tunnel *t, const char *msg);

/* ---- tell.c ---- */

/* pp_tell_start(t): the target of the inbound tunnel ${t} is connected:
 * gather what the app is told of the caller and put the PROXY header at
 * the front of the app-bound pipe.  Return 0, or -1 if ${t} is closing. */
int pp_tell_start(struct pp_tunnel *t);

/* pp_tell_fill(t, out, reason, detail, dlen): with http_identity, fill
 * ${out} (PP_BUF_SIZE bytes) with the caller's bytes as the app must see
 * them.  As pp_side_read: bytes written, 0 at the end (of the caller's
 * stream or of acceptable HTTP), PP_IO_AGAIN or PP_IO_ERROR. */
ssize_t pp_tell_fill(struct pp_tunnel *t, uint8_t *out, const char **reason,
                     char *detail, size_t dlen);

/* pp_tell_bad_request_reply(t, p): the app ended its stream: if the
 * caller's HTTP was refused, put the 400 in ${p} (the caller-bound pipe,
 * holding an empty buffer) as the app's last bytes.  Return 1 if it
 * did. */
int pp_tell_bad_request_reply(struct pp_tunnel *t, struct pp_pipe *p);

#endif
