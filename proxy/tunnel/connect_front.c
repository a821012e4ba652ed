/*
 * The HTTP CONNECT front end of node data mode: the app connects in plain
 * and asks "CONNECT <peer-id>:<port>"; the peer's outbound tunnel takes
 * over.  The app gets 200 once the peer is reached, or an error status.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "identity/connect.h"
#include "tunnel/internal.h"
#include "util/bufpool.h"
#include "util/log.h"

void
pp_connect_front_reply(struct pp_tunnel *t, const char *msg)
{
	/* A small reply: it fits the empty socket buffer of a fresh
	 * connection, so one send does. */
	(void)!send(t->acc.fd, msg, strlen(msg), MSG_NOSIGNAL);
}

static void
request_refused(struct pp_tunnel *t, const char *reply_msg, const char *reason,
                const char *detail)
{
	struct pp_logline l;

	pp_log_begin(&l, PP_LOG_WARN, "connect_refused");
	pp_log_str(&l, "tunnel", t->tc->name);
	pp_log_fmt(&l, "conn", "%016llx", (unsigned long long)t->id);
	pp_log_str(&l, "remote", t->remote);
	pp_log_str(&l, "reason", reason);
	pp_log_str(&l, "detail", detail);
	pp_log_end(&l);
	pp_connect_front_reply(t, reply_msg);
	pp_tunnel_close(t, NULL, NULL, PP_CLOSE_GRACEFUL);
}

/* The head is complete: find the active peer's outbound tunnel. */
static void
request_done(struct pp_tunnel *t)
{
	const struct pp_tunnel_conf *out = NULL;
	char id[PP_PEER_ID_MAX + 1], why[256];

	if (pp_connect_peer(t->req, id, sizeof(id)) != 0) {
		request_refused(t, pp_connect_400, "bad_request",
		                "the target is not <peer-id>:<port>");
		return;
	}
	for (size_t i = 0; i < t->conf->ntunnels; i++) {
		const struct pp_tunnel_conf *c = &t->conf->tunnels[i];
		if (c->kind == PP_TUNNEL_OUTBOUND && c->peer != NULL &&
		    strcmp(c->peer, id) == 0)
			out = c;
	}
	if (out == NULL) {
		snprintf(why, sizeof(why), "no active peer %s", id);
		request_refused(t, pp_connect_403, "unknown_peer", why);
		return;
	}
	if (t->tc->gate != NULL &&
	    t->tc->gate(t->tc->gate_dir, id, why, sizeof(why)) != 0) {
		request_refused(t, pp_connect_403, "peer_inactive", why);
		return;
	}
	free(t->req);
	t->req = NULL;
	t->acc.want = 0;
	pp_side_update(&t->acc);
	uv_timer_stop(&t->timer);
	t->tc = out;
	t->via_connect = 1;
	pp_tunnel_dial(t);
}

/* The parser refuses a head at PP_CONNECT_HEAD_MAX bytes, so the buffer
 * that collects it never fills. */
_Static_assert(PP_BUF_SIZE > PP_CONNECT_HEAD_MAX,
               "a CONNECT head fits in one buffer");

void
pp_connect_front_read(struct pp_tunnel *t)
{
	struct pp_pipe *p = &t->fwd;
	const char *reason = NULL;
	char detail[128];
	size_t used;
	ssize_t n;
	int r;

	if (p->buf == NULL &&
	    (p->buf = pp_bufpool_get(t->host->pool)) == NULL) {
		pp_tunnel_close(t, "error", "out of memory", PP_CLOSE_ABORT);
		return;
	}
	n = pp_side_read(&t->acc, p->buf + p->len, PP_BUF_SIZE - p->len,
	                 &reason, detail, sizeof(detail));
	if (n == PP_IO_AGAIN)
		return;
	if (n <= 0) {
		/* The app gave up: nothing to log. */
		pp_tunnel_close(t, NULL, NULL, PP_CLOSE_GRACEFUL);
		return;
	}
	r = pp_connect_feed(t->req, (char *)p->buf + p->len, (size_t)n, &used);
	if (r < 0) {
		request_refused(t, pp_connect_400, "bad_request",
		                t->req->too_large
		                    ? "request head too large"
		                    : "not a well-formed CONNECT request");
		return;
	}
	if (r == 0) {
		p->len += (uint32_t)n;
		return;
	}
	/* Bytes after the head are the app's first tunnel data. */
	p->off = p->len + (uint32_t)used;
	p->len = p->len + (uint32_t)n - p->off;
	if (p->len == 0) {
		pp_bufpool_put(t->host->pool, p->buf);
		p->buf = NULL;
		p->off = 0;
	}
	request_done(t);
}

static void
on_request_timeout(uv_timer_t *h)
{
	struct pp_tunnel *t = h->data;

	request_refused(t, pp_connect_400, "bad_request",
	                "request not complete in time");
}

void
pp_connect_front_start(struct pp_tunnel *t)
{
	if ((t->req = malloc(sizeof(*t->req))) == NULL) {
		pp_tunnel_close(t, "error", "out of memory", PP_CLOSE_ABORT);
		return;
	}
	pp_connect_init(t->req);
	t->state = T_REQUEST;
	uv_timer_start(&t->timer, on_request_timeout,
	               t->tc->handshake_timeout_ms, 0);
	t->acc.want = UV_READABLE;
	pp_side_update(&t->acc);
}
