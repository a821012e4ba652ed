/*
 * The state machine of one tunnel: handshake, dial, pump with half-close,
 * close.  Its sides are side.c's, its set is set.c's; the CONNECT front
 * end (connect_front.c) and what the app is told (tell.c) hook in here.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "identity/connect.h"
#include "identity/tellapp.h"
#include "net/addr.h"
#include "net/dial.h"
#include "tls/session_cache.h"
#include "tunnel/internal.h"
#include "util/bufpool.h"
#include "util/log.h"

/* How long a refused client gets to read our alert before the close. */
#define LINGER_MS 2000

/* The metrics of the tunnel configuration ${t} runs under now. */
static struct pp_tstats *
stats_of(struct pp_tunnel *t)
{
	return (pp_limit_stats(t->tc->limit));
}

/* Count the tunnel's connections_total result, once. */
static void
count_result(struct pp_tunnel *t, enum pp_result r)
{
	if (t->counted)
		return;
	t->counted = 1;
	pp_tstats_result(stats_of(t), r);
}

static void on_poll(uv_poll_t *h, int status, int events);
static void on_dialed(void *arg, int fd, int status, const char *why,
                      const char *peer);

/* Drop one of the tunnel's holds (a handle or the dial); the last frees
 * it. */
static void
tunnel_release(struct pp_tunnel *t)
{
	if (--t->handles > 0)
		return;
	free(t->req);
	pp_tellapp_free(t->tell);
	pp_side_release(&t->acc);
	pp_side_release(&t->up);
	if (t->limit != NULL) /* a tunnel freed before it was closed */
		pp_limit_leave(t->limit);
	pp_config_unref(t->conf);
	pp_tunnels_forget(t);
}

static void
on_closed(uv_handle_t *h)
{
	tunnel_release(h->data);
}

/* Let the loop watch side ${s} of ${t}: one more handle to close. */
static int
watch(struct pp_tunnel *t, struct pp_side *s)
{
	if (pp_side_watch(s, t->host->loop, on_poll, t) != 0)
		return (-1);
	t->handles++;
	return (0);
}

static void
log_closed(struct pp_tunnel *t, const char *reason, const char *detail)
{
	struct pp_logline l;
	uint64_t now = uv_now(t->host->loop);

	pp_log_begin(&l, PP_LOG_INFO, "tunnel_closed");
	pp_log_str(&l, "tunnel", t->tc->name);
	pp_log_fmt(&l, "conn", "%016llx", (unsigned long long)t->id);
	pp_log_u64(&l, "worker", (uint64_t)t->host->worker);
	pp_log_str(&l, "peer",
	           t->tlsc.verdict.peer_id[0] ? t->tlsc.verdict.peer_id : "-");
	pp_log_str(&l, "remote", t->remote);
	pp_log_str(&l, "target", t->target[0] ? t->target : "-");
	pp_log_u64(&l, "bytes_up", t->fwd.bytes);
	pp_log_u64(&l, "bytes_down", t->back.bytes);
	pp_log_secs(&l, "duration", now - t->start_ms);
	if (t->tls != NULL && t->tls->ssl != NULL &&
	    SSL_is_init_finished(t->tls->ssl))
		pp_log_str(&l, "resumed",
		           SSL_session_reused(t->tls->ssl) ? "yes" : "no");
	pp_log_str(&l, "reason", reason);
	if (detail != NULL && detail[0] != '\0')
		pp_log_str(&l, "detail", detail);
	pp_log_end(&l);
}

void
pp_tunnel_close(struct pp_tunnel *t, const char *reason, const char *detail,
                enum pp_close_mode mode)
{
	struct pp_bufpool *pool = t->host->pool;

	if (t->state == T_CLOSING)
		return;
	/* The tunnel's and the peer's slots are free before anyone can read
	 * that it closed: a client that sees the line and connects again
	 * must not be refused for a tunnel that is gone. */
	pp_limit_leave(t->limit);
	t->limit = NULL;
	if (t->peer_counted[0] != '\0') {
		pp_limit_peer_leave(t->peer_limit, t->peer_counted);
		t->peer_counted[0] = '\0';
	}
	if (reason != NULL)
		log_closed(t, reason, detail);
	t->state = T_CLOSING;
	pp_tunnels_undefer(t);
	pp_bufpool_put(pool, t->fwd.buf);
	pp_bufpool_put(pool, t->back.buf);
	pp_bufpool_put(pool, t->hin.buf);
	t->fwd.buf = t->back.buf = t->hin.buf = NULL;
	if (t->dial != NULL)
		pp_dial_cancel(t->dial); /* its callback drops the handle */
	pp_side_close(&t->acc, mode, on_closed);
	pp_side_close(&t->up, mode, on_closed);
	uv_close((uv_handle_t *)&t->timer, on_closed);
}

/* The close reason for an I/O failure on ${s} with no TLS-specific one. */
static const char *
reset_reason(struct pp_tunnel *t, const struct pp_side *s)
{
	return (s == &t->acc ? "client_reset" : "target_reset");
}

/* Move bytes ${src} -> ${dst} through ${p} until something would block.
 * Return 0, or -1 if the tunnel was closed. */
static int
pipe_run(struct pp_tunnel *t, struct pp_side *src, struct pp_side *dst,
         struct pp_pipe *p)
{
	struct pp_bufpool *pool = t->host->pool;
	const char *reason = NULL;
	char detail[256] = "";
	int budget = PP_PUMP_BUDGET;
	ssize_t n;

	for (;;) {
		if (p->len > 0) {
			n = pp_side_write(dst, p->buf + p->off, p->len, &reason,
			                  detail, sizeof(detail));
			if (n == PP_IO_AGAIN)
				return (0);
			if (n < 0)
				goto fail_dst;
			p->off += (uint32_t)n;
			p->len -= (uint32_t)n;
			p->bytes += (uint64_t)n;
			atomic_fetch_add_explicit(p->metric, (uint64_t)n,
			                          memory_order_relaxed);
			t->last_ms = uv_now(t->host->loop);
			continue;
		}
		if (p->buf != NULL) {
			pp_bufpool_put(pool, p->buf);
			p->buf = NULL;
		}
		if (src->eof) {
			if (dst->shut)
				return (0);
			n = pp_side_shutdown(dst, &reason, detail,
			                     sizeof(detail));
			if (n == PP_IO_AGAIN || n == 0)
				return (0);
			goto fail_dst;
		}
		if (budget-- == 0) {
			pp_tunnels_defer(t);
			return (0);
		}
		if ((p->buf = pp_bufpool_get(pool)) == NULL) {
			pp_tunnel_close(t, "error", "out of memory",
			                PP_CLOSE_ABORT);
			return (-1);
		}
		p->off = 0;
		if (p == &t->fwd && t->http != NULL)
			n = pp_tell_fill(t, p->buf, &reason, detail,
			                 sizeof(detail));
		else
			n = pp_side_read(src, p->buf, PP_BUF_SIZE, &reason,
			                 detail, sizeof(detail));
		if (n > 0) {
			p->len = (uint32_t)n;
		} else if (n == 0 && p == &t->back &&
		           pp_tell_bad_request_reply(t, p)) {
			continue;
		} else if (n == 0) {
			src->eof = 1;
		} else if (n == PP_IO_AGAIN) {
			pp_bufpool_put(pool, p->buf);
			p->buf = NULL;
			return (0);
		} else {
			pp_tunnel_close(t,
			                reason ? reason : reset_reason(t, src),
			                detail, PP_CLOSE_ABORT);
			return (-1);
		}
	}

fail_dst:
	pp_tunnel_close(t, reason ? reason : reset_reason(t, dst), detail,
	                PP_CLOSE_ABORT);
	return (-1);
}

static void
pump(struct pp_tunnel *t)
{
	t->acc.want = t->up.want = 0;
	if (pipe_run(t, &t->acc, &t->up, &t->fwd) != 0)
		return;
	if (pipe_run(t, &t->up, &t->acc, &t->back) != 0)
		return;
	if (t->acc.eof && t->up.eof && t->fwd.len == 0 && t->back.len == 0 &&
	    t->acc.shut && t->up.shut) {
		pp_tunnel_close(t, t->bad_request ? "bad_request" : "done",
		                t->bad_request, PP_CLOSE_GRACEFUL);
		return;
	}
	pp_side_update(&t->acc);
	pp_side_update(&t->up);
}

void
pp_tunnel_resume(struct pp_tunnel *t)
{
	if (t->state == T_PUMP)
		pump(t);
}

static void
on_idle_timer(uv_timer_t *h)
{
	struct pp_tunnel *t = h->data;
	uint64_t idle = t->tc->idle_timeout_ms;
	uint64_t quiet = uv_now(t->host->loop) - t->last_ms;

	if (quiet >= idle) {
		pp_tunnel_close(t, "idle_timeout", NULL, PP_CLOSE_GRACEFUL);
		return;
	}
	uv_timer_start(&t->timer, on_idle_timer, idle - quiet, 0);
}

static void
start_pumping(struct pp_tunnel *t)
{
	t->state = T_PUMP;
	t->fwd.metric = &stats_of(t)->bytes_up;
	t->back.metric = &stats_of(t)->bytes_down;
	if (t->via_connect)
		pp_connect_front_reply(t, pp_connect_200);
	t->last_ms = uv_now(t->host->loop);
	uv_timer_stop(&t->timer);
	if (t->tc->idle_timeout_ms > 0)
		uv_timer_start(&t->timer, on_idle_timer, t->tc->idle_timeout_ms,
		               0);
	pump(t);
}

static void
log_refused(struct pp_tunnel *t, const char *reason, const char *detail)
{
	struct pp_logline l;

	/* Counted before the line is written: whoever reads the line and then
	 * the metrics sees both. */
	pp_tstats_failure(stats_of(t), reason);
	count_result(t, pp_result_of_reason(reason));
	pp_log_begin(&l, PP_LOG_WARN, "handshake_refused");
	pp_log_str(&l, "tunnel", t->tc->name);
	pp_log_fmt(&l, "conn", "%016llx", (unsigned long long)t->id);
	pp_log_str(&l, "remote",
	           t->tc->kind == PP_TUNNEL_INBOUND ? t->remote : t->target);
	if (t->tlsc.verdict.peer_id[0] != '\0')
		pp_log_str(&l, "claimed_peer", t->tlsc.verdict.peer_id);
	if (t->tlsc.verdict.leaf_subject[0] != '\0')
		pp_log_str(&l, "subject", t->tlsc.verdict.leaf_subject);
	/* Refused after a resumed handshake: the session's chain was judged
	 * again under the current policy. */
	if (t->tls != NULL && t->tls->ssl != NULL &&
	    SSL_is_init_finished(t->tls->ssl) &&
	    SSL_session_reused(t->tls->ssl))
		pp_log_str(&l, "resumed", "yes");
	pp_log_str(&l, "reason", reason);
	pp_log_str(&l, "detail", detail);
	pp_log_end(&l);
}

static void
on_linger_timeout(uv_timer_t *h)
{
	pp_tunnel_close(h->data, NULL, NULL, PP_CLOSE_GRACEFUL);
}

/* A TLS 1.3 client learns of its refusal from our alert on its first read.
 * Closing at once with its data unread would send a RST that can overtake
 * the alert, so half-close and discard its bytes for a moment first. */
static void
linger_start(struct pp_tunnel *t)
{
	t->state = T_LINGER;
	shutdown(t->acc.fd, SHUT_WR);
	t->acc.want = UV_READABLE;
	pp_side_update(&t->acc);
	uv_timer_start(&t->timer, on_linger_timeout, LINGER_MS, 0);
}

/* End a tunnel whose peer was refused (the refusal is logged): a TLS
 * client gets time to read our alert, a CONNECT client a 502. */
static void
refused_close(struct pp_tunnel *t)
{
	if (t->tls == &t->acc) {
		linger_start(t);
		return;
	}
	if (t->via_connect)
		pp_connect_front_reply(t, pp_connect_502);
	pp_tunnel_close(t, NULL, NULL, PP_CLOSE_GRACEFUL);
}

static void
on_handshake_timeout(uv_timer_t *h)
{
	struct pp_tunnel *t = h->data;

	log_refused(t, "handshake_timeout",
	            "TLS handshake not finished in time");
	pp_tunnel_close(t, NULL, NULL, PP_CLOSE_ABORT);
}

void
pp_tunnel_dial(struct pp_tunnel *t)
{
	const struct pp_addr *targets = t->tc->targets;
	size_t n = t->tc->ntargets;

	if (t->tc->kind == PP_TUNNEL_INBOUND) {
		targets = pp_config_route(t->tc, t->tlsc.verdict.peer_id, &n);
		if (targets == NULL) {
			log_refused(t, "no_route",
			            "no route matches the verified peer");
			linger_start(t);
			return;
		}
	}
	t->state = T_DIAL;
	t->dial = pp_dial_start(t->host->loop, targets, n,
	                        t->tc->connect_timeout_ms, on_dialed, t);
	if (t->dial == NULL) {
		pp_tunnel_close(t, "error", "cannot start connecting",
		                PP_CLOSE_ABORT);
		return;
	}
	t->handles++;
}

/* A resumed session skipped the certificate exchange: judge its chain again
 * under the current policy (a peer may have been removed or deactivated
 * since the session was made).  Return 1 if it passes; else the tunnel is
 * closing. */
static int
resumed_still_trusted(struct pp_tunnel *t)
{
	if (pp_tls_verify(t->tls->ssl, &t->tlsc.verdict) == 0)
		return (1);
	SSL_send_fatal_alert(t->tls->ssl,
	                     pp_refusal_alert(t->tlsc.verdict.reason));
	ERR_clear_error();
	log_refused(t, pp_refusal_name(t->tlsc.verdict.reason),
	            t->tlsc.verdict.detail);
	refused_close(t);
	return (0);
}

/* max_connections_per_peer, counted once the peer is verified.  Return 1
 * if admitted; else the tunnel is closing. */
static int
peer_admitted(struct pp_tunnel *t)
{
	const char *id = t->tlsc.verdict.peer_id;
	char detail[128];

	/* Counted even without a limit: /status shows tunnels per peer. */
	if (id[0] == '\0')
		return (1);
	if (pp_limit_peer_enter(t->tc->limit, id,
	                        t->tc->max_connections_per_peer) == 0) {
		t->peer_limit = t->tc->limit;
		snprintf(t->peer_counted, sizeof(t->peer_counted), "%s", id);
		return (1);
	}
	if (t->tc->max_connections_per_peer == 0)
		return (1); /* no limit, only short of memory: not counted */
	snprintf(detail, sizeof(detail), "peer %s has %u tunnels open already",
	         id, t->tc->max_connections_per_peer);
	log_refused(t, "max_connections_per_peer", detail);
	SSL_send_fatal_alert(t->tls->ssl, SSL_AD_ACCESS_DENIED);
	ERR_clear_error();
	refused_close(t);
	return (0);
}

static void
handshake_step(struct pp_tunnel *t)
{
	char detail[sizeof(((struct pp_verdict *)0)->detail)] = "";
	const char *reason = NULL;
	int r;

	r = pp_side_handshake(t->tls, &reason, detail, sizeof(detail));
	if (r == PP_IO_AGAIN) {
		pp_side_update(t->tls);
		return;
	}
	if (r == PP_IO_ERROR) {
		/* A refusal of our policy fails the handshake too: it is the
		 * better reason. */
		if (t->tlsc.verdict.reason != PP_ACCEPTED) {
			reason = pp_refusal_name(t->tlsc.verdict.reason);
			snprintf(detail, sizeof(detail), "%s",
			         t->tlsc.verdict.detail);
		}
		log_refused(t, reason, detail);
		refused_close(t);
		return;
	}
	uv_timer_stop(&t->timer);
	pp_side_update(t->tls);
	if (SSL_session_reused(t->tls->ssl) && !resumed_still_trusted(t))
		return;
	if (!peer_admitted(t))
		return;
	pp_tstats_handshake(stats_of(t), (uv_hrtime() - t->hs_start_ns) / 1000);
	count_result(t, PP_RESULT_ESTABLISHED);
	if (t->tc->kind == PP_TUNNEL_INBOUND)
		pp_tunnel_dial(t);
	else
		start_pumping(t);
}

static void
start_handshake(struct pp_tunnel *t)
{
	t->state = T_HANDSHAKE;
	t->hs_start_ns = uv_hrtime();
	uv_timer_start(&t->timer, on_handshake_timeout,
	               t->tc->handshake_timeout_ms, 0);
	handshake_step(t);
}

/* The server sent a new session: it replaces the cached one for this
 * (tunnel name and trust, target). */
static void
keep_session(struct pp_tls_conn *c, SSL_SESSION *sess)
{
	struct pp_tunnel *t =
	    (struct pp_tunnel *)((char *)c - offsetof(struct pp_tunnel, tlsc));
	SSL_SESSION **slot = pp_session_cache_slot(
	    t->host->sessions, t->tc->session_key, t->target);

	if (slot == NULL) {
		SSL_SESSION_free(sess);
		return;
	}
	SSL_SESSION_free(*slot);
	*slot = sess;
}

static void
on_dialed(void *arg, int fd, int status, const char *why, const char *peer)
{
	struct pp_tunnel *t = arg;
	struct sockaddr_storage ss = {0};
	socklen_t sslen = sizeof(ss);

	t->dial = NULL;
	snprintf(t->target, sizeof(t->target), "%s", peer);
	if (t->state == T_CLOSING) {
		if (fd >= 0)
			close(fd);
		tunnel_release(t);
		return;
	}
	t->handles--;
	if (fd < 0) {
		if (t->via_connect)
			pp_connect_front_reply(t, pp_connect_502);
		count_result(t, PP_RESULT_UPSTREAM_ERROR);
		pp_tunnel_close(t,
		                status == UV_ETIMEDOUT ? "connect_timeout"
		                                       : "connect_failed",
		                why, PP_CLOSE_GRACEFUL);
		return;
	}
	t->up.fd = fd;
	t->up.tcp = getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
	            ss.ss_family != AF_UNIX;
	if (watch(t, &t->up) != 0) {
		pp_tunnel_close(t, "error", "cannot watch upstream socket",
		                PP_CLOSE_ABORT);
		return;
	}
	if (t->tc->kind == PP_TUNNEL_INBOUND) {
		if (pp_tell_start(t) == 0)
			start_pumping(t);
		return;
	}
	if (t->tc->session_resumption) {
		SSL_SESSION **slot = pp_session_cache_slot(
		    t->host->sessions, t->tc->session_key, t->target);
		t->tlsc.offer = slot != NULL ? *slot : NULL;
		t->tlsc.keep_session = keep_session;
	}
	t->up.ssl = pp_tls_ssl_new(t->tc->ctx, fd, t->host->pool, &t->tlsc);
	if (t->up.ssl == NULL ||
	    (t->tc->server_name != NULL && !pp_addr_is_ip(t->tc->server_name) &&
	     !SSL_set_tlsext_host_name(t->up.ssl, t->tc->server_name))) {
		pp_tunnel_close(t, "error", "cannot create TLS connection",
		                PP_CLOSE_ABORT);
		return;
	}
	SSL_set_connect_state(t->up.ssl);
	t->tls = &t->up;
	start_handshake(t);
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct pp_tunnel *t = h->data;

	(void)events;
	if (status < 0) {
		/* libuv reports a socket error (POLLERR) as UV_EBADF. */
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(h == &t->acc.poll ? t->acc.fd : t->up.fd, SOL_SOCKET,
		           SO_ERROR, &err, &len);
		if (t->state == T_LINGER) /* the refusal is logged already */
			pp_tunnel_close(t, NULL, NULL, PP_CLOSE_ABORT);
		else
			pp_tunnel_close(
			    t,
			    h == &t->acc.poll ? "client_reset" : "target_reset",
			    err ? strerror(err) : "connection error",
			    PP_CLOSE_ABORT);
		return;
	}
	switch (t->state) {
	case T_HANDSHAKE:
		handshake_step(t);
		break;
	case T_PUMP:
		pump(t);
		break;
	case T_REQUEST:
		pp_connect_front_read(t);
		break;
	case T_LINGER:
		if (pp_side_discard(&t->acc, PP_PUMP_BUDGET) != 0)
			pp_tunnel_close(t, NULL, NULL, PP_CLOSE_GRACEFUL);
		break;
	default:
		break;
	}
}

void
pp_tunnel_open(struct pp_tunnel *t, int fd, const struct sockaddr *sa,
               socklen_t salen)
{
	const struct pp_tunnel_conf *tc = t->tc;

	t->start_ms = uv_now(t->host->loop);
	t->fwd.metric = &stats_of(t)->bytes_up;    /* again once pumping: */
	t->back.metric = &stats_of(t)->bytes_down; /* CONNECT moves tc */
	pp_side_init(&t->acc, fd, sa->sa_family != AF_UNIX, "client");
	pp_side_init(&t->up, -1, 0, "target");
	pp_sockaddr_format(sa, salen, t->remote, sizeof(t->remote));
	pp_socket_tune(fd, t->acc.tcp);

	uv_timer_init(t->host->loop, &t->timer);
	t->timer.data = t;
	t->handles = 1;
	if (watch(t, &t->acc) != 0) {
		pp_tunnel_close(t, "error", "cannot watch accepted socket",
		                PP_CLOSE_ABORT);
		return;
	}
	if (tc->kind == PP_TUNNEL_OUTBOUND) {
		pp_tunnel_dial(t);
		return;
	}
	if (tc->kind == PP_TUNNEL_CONNECT) {
		pp_connect_front_start(t);
		return;
	}
	t->acc.ssl = pp_tls_ssl_new(tc->ctx, fd, t->host->pool, &t->tlsc);
	if (t->acc.ssl == NULL) {
		pp_tunnel_close(t, "error", "cannot create TLS connection",
		                PP_CLOSE_ABORT);
		return;
	}
	SSL_set_accept_state(t->acc.ssl);
	t->tls = &t->acc;
	start_handshake(t);
}

static const struct pp_tunnel_conf *
find_tunnel(const struct pp_config *c, const char *name)
{
	for (size_t i = 0; i < c->ntunnels; i++) {
		if (strcmp(c->tunnels[i].name, name) == 0)
			return (&c->tunnels[i]);
	}
	return (NULL);
}

void
pp_tunnel_recheck(struct pp_tunnel *t, const struct pp_config *conf)
{
	const struct pp_tunnel_conf *n = find_tunnel(conf, t->tc->name);
	struct pp_verdict v;

	if (t->state != T_DIAL && t->state != T_PUMP)
		return;
	if (t->tc->kind == PP_TUNNEL_INBOUND && n != NULL && n->trust != NULL &&
	    pp_tls_verify_with(t->acc.ssl, n->trust, &v) != 0)
		pp_tunnel_close(t, "peer_untrusted", v.detail, PP_CLOSE_ABORT);
	else if (t->tc->kind == PP_TUNNEL_OUTBOUND && t->tc->peer != NULL &&
	         (n == NULL || n->peer == NULL ||
	          strcmp(n->peer, t->tc->peer) != 0))
		pp_tunnel_close(t, "peer_removed",
		                "the peer has no tunnel after the reload",
		                PP_CLOSE_ABORT);
}
