#include "tunnel.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "net/addr.h"
#include "identity/connect.h"
#include "identity/tellapp.h"
#include "net/dial.h"
#include "runtime/limits.h"
#include "runtime/worker.h"
#include "tls/context.h"
#include "tls/session_cache.h"
#include "util/log.h"

/* Records moved per direction before yielding to other tunnels. */
#define PUMP_BUDGET 16

enum tstate { T_REQUEST, T_HANDSHAKE, T_DIAL, T_PUMP, T_LINGER, T_CLOSING };

/* How long a refused client gets to read our alert before the close. */
#define LINGER_MS 2000

/* How a tunnel ends: orderly (FIN / close_notify, nothing lost) or abortive
 * (RST, so neither side mistakes a failure for a complete stream). */
enum close_mode { CLOSE_GRACEFUL, CLOSE_ABORT };

#define IO_AGAIN (-1)
#define IO_ERROR (-2)

struct side {
	uv_poll_t poll;
	int fd;
	int polled; /* poll handle initialised */
	SSL *ssl;   /* NULL on the plain side */
	int events; /* registered with the loop */
	int want;   /* needed by the last operations */
	unsigned eof : 1;
	unsigned shut : 1;
	unsigned tcp : 1;
	const char *name; /* "client" (accepted) or "target" */
};

struct pipe {
	uint8_t *buf;
	uint32_t off, len;
	uint64_t bytes;
	atomic_ullong *metric; /* the tunnel's bytes_total for this direction */
};

struct pp_tunnel {
	struct pp_tunnel *prev, *next;   /* worker's open tunnels */
	struct pp_tunnel *dprev, *dnext; /* worker's deferred tunnels */
	int deferred;
	struct pp_worker *w;
	const struct pp_tunnel_conf *tc;
	struct pp_config *conf; /* reference held for the tunnel's life */
	enum tstate state;
	struct side acc; /* the accepted connection */
	struct side up;  /* the connection we made */
	struct side *tls;
	struct pipe fwd;  /* acc -> up */
	struct pipe back; /* up -> acc */
	uv_timer_t timer; /* handshake timeout, then idle timeout */
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
	struct pipe hin; /* http_identity: client bytes not yet rewritten */
	const char *bad_request; /* why the caller's HTTP was refused */
	int bad_replied;         /* ... and the 400 is on its way */
};

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
static void pump(struct pp_tunnel *t);
static void handshake_step(struct pp_tunnel *t);

/* Drop one of the tunnel's holds (a handle or the dial); the last frees
 * it. */
static void
tunnel_release(struct pp_tunnel *t)
{
	if (--t->handles > 0)
		return;
	free(t->req);
	pp_tellapp_free(t->tell);
	SSL_free(t->acc.ssl);
	SSL_free(t->up.ssl);
	if (t->acc.fd >= 0)
		close(t->acc.fd);
	if (t->up.fd >= 0)
		close(t->up.fd);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		t->w->tunnels = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->w->ntunnels--;
	if (t->limit != NULL) /* a tunnel freed before it was closed */
		pp_limit_leave(t->limit);
	atomic_fetch_sub_explicit(&t->w->stats.active, 1, memory_order_relaxed);
	pp_config_unref(t->conf);
	pp_worker_tunnel_freed(t->w);
	free(t);
}

static void
on_closed(uv_handle_t *h)
{
	tunnel_release(h->data);
}

static void
undefer(struct pp_tunnel *t)
{
	if (!t->deferred)
		return;
	if (t->dprev != NULL)
		t->dprev->dnext = t->dnext;
	else
		t->w->deferred = t->dnext;
	if (t->dnext != NULL)
		t->dnext->dprev = t->dprev;
	t->dprev = t->dnext = NULL;
	t->deferred = 0;
}

static void
defer(struct pp_tunnel *t)
{
	if (t->deferred)
		return;
	t->deferred = 1;
	t->dprev = NULL;
	t->dnext = t->w->deferred;
	if (t->dnext != NULL)
		t->dnext->dprev = t;
	t->w->deferred = t;
	pp_worker_resume_soon(t->w);
}

static void
log_closed(struct pp_tunnel *t, const char *reason, const char *detail)
{
	struct pp_logline l;
	uint64_t now = uv_now(&t->w->loop);

	pp_log_begin(&l, PP_LOG_INFO, "tunnel_closed");
	pp_log_str(&l, "tunnel", t->tc->name);
	pp_log_fmt(&l, "conn", "%016llx", (unsigned long long)t->id);
	pp_log_u64(&l, "worker", (uint64_t)t->w->id);
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

static void
close_side(struct side *s, enum close_mode mode)
{
	if (s->fd >= 0 && mode == CLOSE_ABORT && s->tcp) {
		struct linger lg = {1, 0};
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (s->ssl != NULL && !s->shut && SSL_is_init_finished(s->ssl)) {
		/* Best effort: one non-blocking close_notify. */
		SSL_shutdown(s->ssl);
		ERR_clear_error();
	}
	if (s->polled) {
		uv_close((uv_handle_t *)&s->poll, on_closed);
		s->polled = 0;
	}
}

/* End the tunnel.  ${reason} NULL: the caller already logged why. */
static void
tunnel_close(struct pp_tunnel *t, const char *reason, const char *detail,
             enum close_mode mode)
{
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
	undefer(t);
	pp_bufpool_put(&t->w->pool, t->fwd.buf);
	pp_bufpool_put(&t->w->pool, t->back.buf);
	pp_bufpool_put(&t->w->pool, t->hin.buf);
	t->fwd.buf = t->back.buf = t->hin.buf = NULL;
	if (t->dial != NULL)
		pp_dial_cancel(t->dial); /* its callback drops the handle */
	close_side(&t->acc, mode);
	close_side(&t->up, mode);
	uv_close((uv_handle_t *)&t->timer, on_closed);
}

/* Bring the loop's view of ${s} in line with what it wants. */
static void
side_update(struct side *s)
{
	if (!s->polled || s->want == s->events)
		return;
	if (s->want == 0)
		uv_poll_stop(&s->poll);
	else
		uv_poll_start(&s->poll, s->want, on_poll);
	s->events = s->want;
}

static int
side_poll_init(struct pp_tunnel *t, struct side *s)
{
	if (uv_poll_init_socket(&t->w->loop, &s->poll, s->fd) != 0)
		return (-1);
	s->poll.data = t;
	s->polled = 1;
	s->events = 0;
	t->handles++;
	return (0);
}

/* Describe the thread's TLS error queue for a log line. */
static const char *
tls_reason(char *detail, size_t len)
{
	uint32_t e = ERR_peek_error();
	int r = ERR_GET_REASON(e);

	pp_tls_error_text(detail, len);
	if (e == 0)
		return ("tls_error");
	if (ERR_GET_LIB(e) == ERR_LIB_SSL && r >= SSL_AD_REASON_OFFSET)
		return ("peer_alert");
	return ("tls_error");
}

/* A plain socket call on ${s} failed with errno: IO_AGAIN (waiting for
 * ${event}) or IO_ERROR with the failure in ${detail}. */
static ssize_t
plain_failed(struct side *s, int event, const char *op, const char **reason,
             char *detail, size_t dlen)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		s->want |= event;
		return (IO_AGAIN);
	}
	snprintf(detail, dlen, "%s %s: %s", s->name, op, strerror(errno));
	*reason = NULL;
	return (IO_ERROR);
}

/* An SSL call on ${s} returned ${r} <= 0: IO_AGAIN (with s->want set) or
 * IO_ERROR with the failure in ${reason} and ${detail}. */
static ssize_t
tls_failed(struct side *s, int r, const char *op, const char **reason,
           char *detail, size_t dlen)
{
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->want |= UV_READABLE;
		return (IO_AGAIN);
	case SSL_ERROR_WANT_WRITE:
		s->want |= UV_WRITABLE;
		return (IO_AGAIN);
	case SSL_ERROR_SYSCALL:
		snprintf(detail, dlen, "%s %s: %s", s->name, op,
		         strerror(errno));
		*reason = NULL;
		ERR_clear_error();
		return (IO_ERROR);
	default:
		*reason = tls_reason(detail, dlen);
		return (IO_ERROR);
	}
}

/* Non-blocking read from ${s}: bytes, 0 at end of stream, IO_AGAIN (with
 * s->want set) or IO_ERROR (with ${reason} and ${detail} set). */
static ssize_t
side_read(struct side *s, uint8_t *buf, size_t cap, const char **reason,
          char *detail, size_t dlen)
{
	ssize_t n;
	int r;

	if (s->ssl == NULL) {
		do {
			n = recv(s->fd, buf, cap, 0);
		} while (n < 0 && errno == EINTR);
		if (n >= 0)
			return (n);
		return (
		    plain_failed(s, UV_READABLE, "read", reason, detail, dlen));
	}
	if ((r = SSL_read(s->ssl, buf, (int)cap)) > 0) {
		/* SSL_read stops at a record's end: fill the buffer from
		 * what is already here, so one send carries several records.
		 * A failure or end of stream met on the way is sticky: the
		 * next call reports it. */
		size_t got = (size_t)r;
		while (got < cap &&
		       (r = SSL_read(s->ssl, buf + got, (int)(cap - got))) > 0)
			got += (size_t)r;
		ERR_clear_error();
		return ((ssize_t)got);
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_ZERO_RETURN: /* close_notify */
		return (0);
	case SSL_ERROR_SYSCALL:
		/* TCP FIN without close_notify: the peer is gone; pass the
		 * end of stream on. */
		if (ERR_peek_error() == 0 && (r == 0 || errno == 0))
			return (0);
		break;
	}
	return (tls_failed(s, r, "read", reason, detail, dlen));
}

/* Non-blocking write to ${s}: bytes written, IO_AGAIN or IO_ERROR as for
 * side_read. */
static ssize_t
side_write(struct side *s, const uint8_t *buf, size_t len, const char **reason,
           char *detail, size_t dlen)
{
	ssize_t n;
	int r;

	if (s->ssl == NULL) {
		do {
			n = send(s->fd, buf, len, MSG_NOSIGNAL);
		} while (n < 0 && errno == EINTR);
		if (n >= 0)
			return (n);
		return (plain_failed(s, UV_WRITABLE, "write", reason, detail,
		                     dlen));
	}
	if ((r = SSL_write(s->ssl, buf, (int)len)) > 0)
		return (r);
	return (tls_failed(s, r, "write", reason, detail, dlen));
}

/* Tell ${s} that no more bytes follow: TCP FIN or TLS close_notify, while
 * the other direction keeps flowing. */
static int
side_shutdown(struct side *s, const char **reason, char *detail, size_t dlen)
{
	int r;

	if (s->ssl == NULL) {
		if (shutdown(s->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
			snprintf(detail, dlen, "%s shutdown: %s", s->name,
			         strerror(errno));
			*reason = NULL;
			return (IO_ERROR);
		}
		s->shut = 1;
		return (0);
	}
	/* BoringSSL: the first call queues close_notify, a repeat finishes
	 * sending it; a call after that would read, so stop at >= 0. */
	if ((r = SSL_shutdown(s->ssl)) >= 0) {
		s->shut = 1;
		return (0);
	}
	return ((int)tls_failed(s, r, "shutdown", reason, detail, dlen));
}

/* The close reason for an I/O failure on ${s} with no TLS-specific one. */
static const char *
reset_reason(struct pp_tunnel *t, const struct side *s)
{
	return (s == &t->acc ? "client_reset" : "target_reset");
}

static ssize_t http_fill(struct pp_tunnel *t, uint8_t *out, const char **reason,
                         char *detail, size_t dlen);
static int bad_request_reply(struct pp_tunnel *t, struct pipe *p);

/* Move bytes ${src} -> ${dst} through ${p} until something would block.
 * Return 0, or -1 if the tunnel was closed. */
static int
pipe_run(struct pp_tunnel *t, struct side *src, struct side *dst,
         struct pipe *p)
{
	const char *reason = NULL;
	char detail[256] = "";
	int budget = PUMP_BUDGET;
	ssize_t n;

	for (;;) {
		if (p->len > 0) {
			n = side_write(dst, p->buf + p->off, p->len, &reason,
			               detail, sizeof(detail));
			if (n == IO_AGAIN)
				return (0);
			if (n < 0)
				goto fail_dst;
			p->off += (uint32_t)n;
			p->len -= (uint32_t)n;
			p->bytes += (uint64_t)n;
			atomic_fetch_add_explicit(p->metric, (uint64_t)n,
			                          memory_order_relaxed);
			t->last_ms = uv_now(&t->w->loop);
			continue;
		}
		if (p->buf != NULL) {
			pp_bufpool_put(&t->w->pool, p->buf);
			p->buf = NULL;
		}
		if (src->eof) {
			if (dst->shut)
				return (0);
			n = side_shutdown(dst, &reason, detail, sizeof(detail));
			if (n == IO_AGAIN || n == 0)
				return (0);
			goto fail_dst;
		}
		if (budget-- == 0) {
			defer(t);
			return (0);
		}
		if ((p->buf = pp_bufpool_get(&t->w->pool)) == NULL) {
			tunnel_close(t, "error", "out of memory", CLOSE_ABORT);
			return (-1);
		}
		p->off = 0;
		if (p == &t->fwd && t->http != NULL)
			n = http_fill(t, p->buf, &reason, detail,
			              sizeof(detail));
		else
			n = side_read(src, p->buf, PP_BUF_SIZE, &reason, detail,
			              sizeof(detail));
		if (n > 0) {
			p->len = (uint32_t)n;
		} else if (n == 0 && p == &t->back && bad_request_reply(t, p)) {
			continue;
		} else if (n == 0) {
			src->eof = 1;
		} else if (n == IO_AGAIN) {
			pp_bufpool_put(&t->w->pool, p->buf);
			p->buf = NULL;
			return (0);
		} else {
			tunnel_close(t, reason ? reason : reset_reason(t, src),
			             detail, CLOSE_ABORT);
			return (-1);
		}
	}

fail_dst:
	tunnel_close(t, reason ? reason : reset_reason(t, dst), detail,
	             CLOSE_ABORT);
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
		tunnel_close(t, t->bad_request ? "bad_request" : "done",
		             t->bad_request, CLOSE_GRACEFUL);
		return;
	}
	side_update(&t->acc);
	side_update(&t->up);
}

/* A small reply to a plain client (CONNECT answers): it fits the empty
 * socket buffer of a fresh connection, so one send does. */
static void
reply(struct pp_tunnel *t, const char *msg)
{
	(void)!send(t->acc.fd, msg, strlen(msg), MSG_NOSIGNAL);
}

static void
on_idle_timer(uv_timer_t *h)
{
	struct pp_tunnel *t = h->data;
	uint64_t idle = t->tc->idle_timeout_ms;
	uint64_t quiet = uv_now(&t->w->loop) - t->last_ms;

	if (quiet >= idle) {
		tunnel_close(t, "idle_timeout", NULL, CLOSE_GRACEFUL);
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
		reply(t, pp_connect_200);
	t->last_ms = uv_now(&t->w->loop);
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
	tunnel_close(h->data, NULL, NULL, CLOSE_GRACEFUL);
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
	side_update(&t->acc);
	uv_timer_start(&t->timer, on_linger_timeout, LINGER_MS, 0);
}

static void
linger_read(struct pp_tunnel *t)
{
	uint8_t sink[4096];
	ssize_t n;
	int budget = PUMP_BUDGET;

	while ((n = recv(t->acc.fd, sink, sizeof(sink), 0)) > 0) {
		if (--budget == 0)
			return; /* level-triggered: the rest comes next turn */
	}
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	tunnel_close(t, NULL, NULL, CLOSE_GRACEFUL);
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
		reply(t, pp_connect_502);
	tunnel_close(t, NULL, NULL, CLOSE_GRACEFUL);
}

static void
handshake_failed(struct pp_tunnel *t, int ssl_err)
{
	char detail[sizeof(((struct pp_verdict *)0)->detail)] = "";
	const char *reason = "handshake_error";
	uint32_t e = ERR_peek_error();
	int r = ERR_GET_REASON(e);

	if (t->tlsc.verdict.reason != PP_ACCEPTED) {
		reason = pp_refusal_name(t->tlsc.verdict.reason);
		snprintf(detail, sizeof(detail), "%s", t->tlsc.verdict.detail);
		ERR_clear_error();
	} else if (e != 0) {
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    (r == SSL_R_UNSUPPORTED_PROTOCOL ||
		     r == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION))
			reason = "protocol_version";
		else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		         (r == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE))
			reason = "no_certificate";
		else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		         r >= SSL_AD_REASON_OFFSET)
			reason = "peer_alert";
		pp_tls_error_text(detail, sizeof(detail));
	} else {
		snprintf(detail, sizeof(detail),
		         ssl_err == SSL_ERROR_SYSCALL && errno != 0
		             ? "connection error during handshake"
		             : "connection closed during handshake");
	}
	log_refused(t, reason, detail);
	refused_close(t);
}

static void
on_handshake_timeout(uv_timer_t *h)
{
	struct pp_tunnel *t = h->data;

	log_refused(t, "handshake_timeout",
	            "TLS handshake not finished in time");
	tunnel_close(t, NULL, NULL, CLOSE_ABORT);
}

static void on_dialed(void *arg, int fd, int status, const char *why,
                      const char *peer);

/* ---- telling the app who called: PROXY header, HTTP identity ---- */

/* The target is connected: if the tunnel tells the app who called,
 * gather it and put the PROXY header at the front of the app-bound pipe,
 * ahead of any caller byte.  Return 0, or -1 if the tunnel is closing. */
static int
tell_start(struct pp_tunnel *t)
{
	int n;

	if (!pp_tellapp_wanted(t->tc))
		return (0);
	if ((t->tell =
	         pp_tellapp_new(t->tc, t->acc.ssl, t->tlsc.verdict.peer_id,
	                        t->acc.fd, t->id)) == NULL) {
		tunnel_close(t, "error", "cannot gather the caller's identity",
		             CLOSE_ABORT);
		return (-1);
	}
	t->http = pp_tellapp_http(t->tell);
	if (t->tc->proxy_protocol == PP_PROXY_PROTOCOL_OFF)
		return (0);
	if ((t->fwd.buf = pp_bufpool_get(&t->w->pool)) == NULL) {
		tunnel_close(t, "error", "out of memory", CLOSE_ABORT);
		return (-1);
	}
	if ((n = pp_tellapp_header(t->tell, t->fwd.buf, PP_BUF_SIZE)) < 0) {
		tunnel_close(t, "error", "PROXY header too large", CLOSE_ABORT);
		return (-1);
	}
	t->fwd.off = 0;
	t->fwd.len = (uint32_t)n;
	return (0);
}

/* How long the app may take to answer the requests before a refused one
 * and close (or the idle timeout, if shorter); then the tunnel is cut. */
#define BAD_REQUEST_GRACE_MS 10000

static void
on_bad_request_timeout(uv_timer_t *h)
{
	struct pp_tunnel *t = h->data;

	tunnel_close(t, "bad_request", t->bad_request, CLOSE_ABORT);
}

/* The caller's HTTP is refused: the app gets no more of it (an end of
 * stream), and the caller a 400 once the app has answered what came
 * before. */
static void
http_refused(struct pp_tunnel *t)
{
	struct pp_logline l;

	t->bad_request = pp_httpid_error(t->http);
	pp_log_begin(&l, PP_LOG_WARN, "http_refused");
	pp_log_str(&l, "tunnel", t->tc->name);
	pp_log_fmt(&l, "conn", "%016llx", (unsigned long long)t->id);
	pp_log_str(&l, "peer", pp_tellapp_peer(t->tell));
	pp_log_str(&l, "remote", t->remote);
	pp_log_str(&l, "detail", t->bad_request);
	pp_log_end(&l);
	uv_timer_stop(&t->timer); /* the idle timeout, if any */
	uv_timer_start(&t->timer, on_bad_request_timeout,
	               t->tc->idle_timeout_ms > 0 &&
	                       t->tc->idle_timeout_ms < BAD_REQUEST_GRACE_MS
	                   ? t->tc->idle_timeout_ms
	                   : BAD_REQUEST_GRACE_MS,
	               0);
}

/* Fill ${out} with the caller's bytes as the app must see them: as
 * side_read, bytes written, 0 at the end (of the caller's stream or of
 * acceptable HTTP), IO_AGAIN or IO_ERROR. */
static ssize_t
http_fill(struct pp_tunnel *t, uint8_t *out, const char **reason, char *detail,
          size_t dlen)
{
	struct pipe *in = &t->hin;
	struct pp_httpid *rw = t->http;
	size_t used, made;
	ssize_t n;
	int rc;

	while (t->bad_request == NULL) {
		if (in->len > 0 || pp_httpid_pending(rw)) {
			rc = pp_httpid_feed(
			    rw, in->buf != NULL ? in->buf + in->off : NULL,
			    in->len, &used, out, PP_BUF_SIZE, &made);
			in->off += (uint32_t)used;
			in->len -= (uint32_t)used;
			if (in->len == 0) {
				pp_bufpool_put(&t->w->pool, in->buf);
				in->buf = NULL;
			}
			if (rc != 0)
				http_refused(t);
			if (made > 0)
				return ((ssize_t)made);
			if (used == 0 && rc == 0) {
				*reason = "error";
				snprintf(detail, dlen, "HTTP rewriter stalled");
				return (IO_ERROR);
			}
			continue;
		}
		if (in->buf == NULL &&
		    (in->buf = pp_bufpool_get(&t->w->pool)) == NULL) {
			*reason = "error";
			snprintf(detail, dlen, "out of memory");
			return (IO_ERROR);
		}
		in->off = 0;
		n = side_read(&t->acc, in->buf, PP_BUF_SIZE, reason, detail,
		              dlen);
		if (n <= 0) {
			pp_bufpool_put(&t->w->pool, in->buf);
			in->buf = NULL;
			return (n);
		}
		in->len = (uint32_t)n;
	}
	return (0);
}

/* The app ended its stream: if the caller's HTTP was refused, put the 400
 * in ${p} (the caller-bound pipe) as the app's last bytes.  Return 1 if
 * it did. */
static int
bad_request_reply(struct pp_tunnel *t, struct pipe *p)
{
	size_t n = strlen(pp_connect_400);

	if (t->bad_request == NULL || t->bad_replied)
		return (0);
	t->bad_replied = 1;
	memcpy(p->buf, pp_connect_400, n);
	p->len = (uint32_t)n;
	return (1);
}

static void
start_dial(struct pp_tunnel *t)
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
	t->dial = pp_dial_start(&t->w->loop, targets, n,
	                        t->tc->connect_timeout_ms, on_dialed, t);
	if (t->dial == NULL) {
		tunnel_close(t, "error", "cannot start connecting",
		             CLOSE_ABORT);
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
	struct side *s = t->tls;
	int r, err;

	s->want = 0;
	ERR_clear_error();
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		uv_timer_stop(&t->timer);
		s->want = 0;
		side_update(s);
		if (SSL_session_reused(s->ssl) && !resumed_still_trusted(t))
			return;
		if (!peer_admitted(t))
			return;
		pp_tstats_handshake(stats_of(t),
		                    (uv_hrtime() - t->hs_start_ns) / 1000);
		count_result(t, PP_RESULT_ESTABLISHED);
		if (t->tc->kind == PP_TUNNEL_INBOUND)
			start_dial(t);
		else
			start_pumping(t);
		return;
	}
	err = SSL_get_error(s->ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		s->want = UV_READABLE;
	} else if (err == SSL_ERROR_WANT_WRITE) {
		s->want = UV_WRITABLE;
	} else {
		handshake_failed(t, err);
		return;
	}
	side_update(s);
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
	    t->w->sessions, t->tc->session_key, t->target);

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
			reply(t, pp_connect_502);
		count_result(t, PP_RESULT_UPSTREAM_ERROR);
		tunnel_close(t,
		             status == UV_ETIMEDOUT ? "connect_timeout"
		                                    : "connect_failed",
		             why, CLOSE_GRACEFUL);
		return;
	}
	struct sockaddr_storage ss = {0};
	socklen_t sslen = sizeof(ss);
	t->up.fd = fd;
	t->up.tcp = getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
	            ss.ss_family != AF_UNIX;
	if (side_poll_init(t, &t->up) != 0) {
		tunnel_close(t, "error", "cannot watch upstream socket",
		             CLOSE_ABORT);
		return;
	}
	if (t->tc->kind == PP_TUNNEL_INBOUND) {
		if (tell_start(t) == 0)
			start_pumping(t);
		return;
	}
	if (t->tc->session_resumption) {
		SSL_SESSION **slot = pp_session_cache_slot(
		    t->w->sessions, t->tc->session_key, t->target);
		t->tlsc.offer = slot != NULL ? *slot : NULL;
		t->tlsc.keep_session = keep_session;
	}
	t->up.ssl = pp_tls_ssl_new(t->tc->ctx, fd, &t->w->pool, &t->tlsc);
	if (t->up.ssl == NULL ||
	    (t->tc->server_name != NULL && !pp_addr_is_ip(t->tc->server_name) &&
	     !SSL_set_tlsext_host_name(t->up.ssl, t->tc->server_name))) {
		tunnel_close(t, "error", "cannot create TLS connection",
		             CLOSE_ABORT);
		return;
	}
	SSL_set_connect_state(t->up.ssl);
	t->tls = &t->up;
	start_handshake(t);
}

/* ---- HTTP CONNECT: choose the outbound tunnel by peer id ---- */

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
	reply(t, reply_msg);
	tunnel_close(t, NULL, NULL, CLOSE_GRACEFUL);
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
	side_update(&t->acc);
	uv_timer_stop(&t->timer);
	t->tc = out;
	t->via_connect = 1;
	start_dial(t);
}

/* The parser refuses a head at PP_CONNECT_HEAD_MAX bytes, so the buffer
 * that collects it never fills. */
_Static_assert(PP_BUF_SIZE > PP_CONNECT_HEAD_MAX,
               "a CONNECT head fits in one buffer");

static void
request_read(struct pp_tunnel *t)
{
	struct pipe *p = &t->fwd;
	size_t used;
	ssize_t n;
	int r;

	if (p->buf == NULL && (p->buf = pp_bufpool_get(&t->w->pool)) == NULL) {
		tunnel_close(t, "error", "out of memory", CLOSE_ABORT);
		return;
	}
	do {
		n = recv(t->acc.fd, p->buf + p->len, PP_BUF_SIZE - p->len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		tunnel_close(t, NULL, NULL, CLOSE_GRACEFUL); /* app gave up */
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
		pp_bufpool_put(&t->w->pool, p->buf);
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

static void
start_request(struct pp_tunnel *t)
{
	if ((t->req = malloc(sizeof(*t->req))) == NULL) {
		tunnel_close(t, "error", "out of memory", CLOSE_ABORT);
		return;
	}
	pp_connect_init(t->req);
	t->state = T_REQUEST;
	uv_timer_start(&t->timer, on_request_timeout,
	               t->tc->handshake_timeout_ms, 0);
	t->acc.want = UV_READABLE;
	side_update(&t->acc);
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
			tunnel_close(t, NULL, NULL, CLOSE_ABORT);
		else
			tunnel_close(t,
			             h == &t->acc.poll ? "client_reset"
			                               : "target_reset",
			             err ? strerror(err) : "connection error",
			             CLOSE_ABORT);
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
		request_read(t);
		break;
	case T_LINGER:
		linger_read(t);
		break;
	default:
		break;
	}
}

/* A connection id unique in the process and unlikely to repeat across
 * restarts: the worker's sequence (seeded from the clock) and its id,
 * mixed. */
static uint64_t
conn_id(struct pp_worker *w)
{
	uint64_t z = ((uint64_t)w->id << 56) + ++w->conn_seq;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* Over max_connections: close at once, before any TLS work, and say so. */
static void
refuse_over_limit(const struct pp_tunnel_conf *tc, int fd,
                  const struct sockaddr *sa, socklen_t salen)
{
	struct pp_logline l;
	char remote[PP_HOST_MAX + 16]; /* unix:<sun_path> fits */

	close(fd);
	pp_tstats_failure(pp_limit_stats(tc->limit), "max_connections");
	pp_tstats_result(pp_limit_stats(tc->limit), PP_RESULT_LIMITED);
	pp_sockaddr_format(sa, salen, remote, sizeof(remote));
	pp_log_begin(&l, PP_LOG_WARN, "connection_refused");
	pp_log_str(&l, "tunnel", tc->name);
	pp_log_str(&l, "remote", remote);
	pp_log_str(&l, "reason", "max_connections");
	pp_log_u64(&l, "limit", tc->max_connections);
	pp_log_end(&l);
}

void
pp_tunnel_start(struct pp_worker *w, const struct pp_tunnel_conf *tc, int fd,
                const struct sockaddr *sa, socklen_t salen)
{
	struct pp_tunnel *t;

	if (pp_limit_enter(tc->limit, tc->max_connections) != 0) {
		refuse_over_limit(tc, fd, sa, salen);
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		pp_limit_leave(tc->limit);
		close(fd);
		pp_log_msg(PP_LOG_ERROR, "accept_failed", "out of memory");
		return;
	}
	t->w = w;
	t->tc = tc;
	t->limit = tc->limit;
	t->conf = pp_config_ref(w->conf);
	t->id = conn_id(w);
	t->start_ms = uv_now(&w->loop);
	t->fwd.metric = &stats_of(t)->bytes_up;    /* again once pumping: */
	t->back.metric = &stats_of(t)->bytes_down; /* CONNECT moves tc */
	t->acc.fd = fd;
	t->acc.tcp = sa->sa_family != AF_UNIX;
	t->acc.name = "client";
	t->up.fd = -1;
	t->up.name = "target";
	pp_sockaddr_format(sa, salen, t->remote, sizeof(t->remote));
	pp_socket_tune(fd, t->acc.tcp);

	t->next = w->tunnels;
	if (t->next != NULL)
		t->next->prev = t;
	w->tunnels = t;
	w->ntunnels++;
	unsigned long long open =
	    1 + atomic_fetch_add_explicit(&w->stats.active, 1,
	                                  memory_order_relaxed);
	if (open > atomic_load_explicit(&w->stats.peak, memory_order_relaxed))
		atomic_store_explicit(&w->stats.peak, open,
		                      memory_order_relaxed);

	uv_timer_init(&w->loop, &t->timer);
	t->timer.data = t;
	t->handles = 1;
	if (side_poll_init(t, &t->acc) != 0) {
		tunnel_close(t, "error", "cannot watch accepted socket",
		             CLOSE_ABORT);
		return;
	}
	if (tc->kind == PP_TUNNEL_OUTBOUND) {
		start_dial(t);
		return;
	}
	if (tc->kind == PP_TUNNEL_CONNECT) {
		start_request(t);
		return;
	}
	t->acc.ssl = pp_tls_ssl_new(tc->ctx, fd, &w->pool, &t->tlsc);
	if (t->acc.ssl == NULL) {
		tunnel_close(t, "error", "cannot create TLS connection",
		             CLOSE_ABORT);
		return;
	}
	SSL_set_accept_state(t->acc.ssl);
	t->tls = &t->acc;
	start_handshake(t);
}

void
pp_tunnel_run_deferred(struct pp_worker *w)
{
	struct pp_tunnel *t = w->deferred, *next;

	w->deferred = NULL;
	for (; t != NULL; t = next) {
		next = t->dnext;
		t->dprev = t->dnext = NULL;
		t->deferred = 0;
		if (t->state == T_PUMP)
			pump(t);
	}
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
pp_tunnel_recheck_all(struct pp_worker *w, const struct pp_config *conf)
{
	struct pp_verdict v;

	for (struct pp_tunnel *t = w->tunnels; t != NULL; t = t->next) {
		const struct pp_tunnel_conf *n = find_tunnel(conf, t->tc->name);

		if (t->state != T_DIAL && t->state != T_PUMP)
			continue;
		if (t->tc->kind == PP_TUNNEL_INBOUND && n != NULL &&
		    n->trust != NULL &&
		    pp_tls_verify_with(t->acc.ssl, n->trust, &v) != 0)
			tunnel_close(t, "peer_untrusted", v.detail,
			             CLOSE_ABORT);
		else if (t->tc->kind == PP_TUNNEL_OUTBOUND &&
		         t->tc->peer != NULL &&
		         (n == NULL || n->peer == NULL ||
		          strcmp(n->peer, t->tc->peer) != 0))
			tunnel_close(t, "peer_removed",
			             "the peer has no tunnel after the reload",
			             CLOSE_ABORT);
	}
}

void
pp_tunnel_abort_all(struct pp_worker *w)
{
	struct pp_tunnel *t;

	/* Closing unlinks nothing yet (that happens in the close callbacks),
	 * so the list is stable while we walk it. */
	for (t = w->tunnels; t != NULL; t = t->next)
		tunnel_close(t, "shutdown", "drain deadline reached",
		             CLOSE_ABORT);
}
