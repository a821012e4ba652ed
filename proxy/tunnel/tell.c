/*
 * What an inbound tunnel tells its app of the verified caller: the PROXY
 * header ahead of the caller's first byte, and, with http_identity, the
 * caller's HTTP requests through the identity rewriter.  A request the
 * rewriter refuses ends what the app gets; the caller gets a 400 once the
 * app has answered the requests before it.
 */

#include <stdio.h>
#include <string.h>

#include "identity/connect.h"
#include "identity/tellapp.h"
#include "tunnel/internal.h"
#include "util/bufpool.h"
#include "util/log.h"

/* How long the app may take to answer the requests before a refused one
 * and close (or the idle timeout, if shorter); then the tunnel is cut. */
#define BAD_REQUEST_GRACE_MS 10000

int
pp_tell_start(struct pp_tunnel *t)
{
	int n;

	if (!pp_tellapp_wanted(t->tc))
		return (0);
	if ((t->tell =
	         pp_tellapp_new(t->tc, t->acc.ssl, t->tlsc.verdict.peer_id,
	                        t->acc.fd, t->id)) == NULL) {
		pp_tunnel_close(t, "error",
		                "cannot gather the caller's identity",
		                PP_CLOSE_ABORT);
		return (-1);
	}
	t->http = pp_tellapp_http(t->tell);
	if (t->tc->proxy_protocol == PP_PROXY_PROTOCOL_OFF)
		return (0);
	if ((t->fwd.buf = pp_bufpool_get(t->host->pool)) == NULL) {
		pp_tunnel_close(t, "error", "out of memory", PP_CLOSE_ABORT);
		return (-1);
	}
	if ((n = pp_tellapp_header(t->tell, t->fwd.buf, PP_BUF_SIZE)) < 0) {
		pp_tunnel_close(t, "error", "PROXY header too large",
		                PP_CLOSE_ABORT);
		return (-1);
	}
	t->fwd.off = 0;
	t->fwd.len = (uint32_t)n;
	return (0);
}

static void
on_bad_request_timeout(uv_timer_t *h)
{
	struct pp_tunnel *t = h->data;

	pp_tunnel_close(t, "bad_request", t->bad_request, PP_CLOSE_ABORT);
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

ssize_t
pp_tell_fill(struct pp_tunnel *t, uint8_t *out, const char **reason,
             char *detail, size_t dlen)
{
	struct pp_pipe *in = &t->hin;
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
				pp_bufpool_put(t->host->pool, in->buf);
				in->buf = NULL;
			}
			if (rc != 0)
				http_refused(t);
			if (made > 0)
				return ((ssize_t)made);
			if (used == 0 && rc == 0) {
				*reason = "error";
				snprintf(detail, dlen, "HTTP rewriter stalled");
				return (PP_IO_ERROR);
			}
			continue;
		}
		if (in->buf == NULL &&
		    (in->buf = pp_bufpool_get(t->host->pool)) == NULL) {
			*reason = "error";
			snprintf(detail, dlen, "out of memory");
			return (PP_IO_ERROR);
		}
		in->off = 0;
		n = pp_side_read(&t->acc, in->buf, PP_BUF_SIZE, reason, detail,
		                 dlen);
		if (n <= 0) {
			pp_bufpool_put(t->host->pool, in->buf);
			in->buf = NULL;
			return (n);
		}
		in->len = (uint32_t)n;
	}
	return (0);
}

int
pp_tell_bad_request_reply(struct pp_tunnel *t, struct pp_pipe *p)
{
	size_t n = strlen(pp_connect_400);

	if (t->bad_request == NULL || t->bad_replied)
		return (0);
	t->bad_replied = 1;
	memcpy(p->buf, pp_connect_400, n);
	p->len = (uint32_t)n;
	return (1);
}
