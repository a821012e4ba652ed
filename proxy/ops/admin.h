#ifndef PP_ADMIN_H
#define PP_ADMIN_H

/*
 * The admin HTTP endpoint: a small HTTP/1.1 server on the main thread's
 * loop, never on a worker's, so nothing it does can slow a tunnel.
 * Requests are read by ops/adminreq (http-parser); one request per
 * connection (every reply carries "Connection: close").  Limits: the
 * request head must fit in PP_ADMIN_HEAD_MAX bytes and the target in
 * PP_ADMIN_TARGET_MAX (else 431), a body in PP_ADMIN_BODY_MAX (else 413),
 * malformed requests get 400; a request has
 * PP_ADMIN_TIMEOUT_MS to arrive in full; at most PP_ADMIN_CONNS
 * connections are open, the oldest being dropped for a newcomer, so a
 * flood of slow clients cannot lock probes out.  After a reply the
 * connection is half-closed and the client's leftovers are read and
 * dropped for up to PP_ADMIN_LINGER_MS, so that it reads the reply before
 * any reset.
 */

#include <stddef.h>

#include <uv.h>

#include "net/addr.h"
#include "ops/adminreq.h"
#include "util/strbuf.h"

#define PP_ADMIN_TIMEOUT_MS 5000
#define PP_ADMIN_CONNS      64
#define PP_ADMIN_LINGER_MS  2000

struct pp_admin;

struct pp_admin_req {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* without the query string */
};

/* What a handler fills in; the server adds the framing headers. */
struct pp_admin_reply {
	int status;
	const char *content_type; /* default text/plain; charset=utf-8 */
	const char *allow;        /* for 405: the methods the path allows */
	struct pp_sb body;
};

/* Answers one request; runs on the loop thread. */
typedef void pp_admin_fn(void *arg, const struct pp_admin_req *req,
                         struct pp_admin_reply *reply);

/* pp_admin_start(loop, addr, fn, arg, err, errlen): listen on ${addr} and
 * answer each complete request with ${fn}(${arg}, ...).  Return the
 * server, or NULL with the reason in ${err}. */
struct pp_admin *pp_admin_start(uv_loop_t *loop, const struct pp_addr *addr,
                                pp_admin_fn *fn, void *arg, char *err,
                                size_t errlen);

/* pp_admin_stop(a): stop listening, close every connection and free ${a}
 * once its handles are closed (the loop must run on).  NULL does
 * nothing. */
void pp_admin_stop(struct pp_admin *a);

/* pp_admin_status_text(status): the reason phrase of ${status}. */
const char *pp_admin_status_text(int status);

#endif
