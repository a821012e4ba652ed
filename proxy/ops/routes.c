#include "ops/routes.h"

#include <string.h>

#include "util/log.h"

static const struct {
	const char *path, *method;
} table[] = {
    {"/healthz", "GET"}, {"/readyz", "GET"},  {"/metrics", "GET"},
    {"/status", "GET"},  {"/reload", "POST"}, {"/quitquitquit", "POST"},
};

static void
reload(const struct pp_routes *rs, struct pp_admin_reply *r)
{
	int rc = rs->reload(rs->arg);
	struct pp_ops_view v;

	rs->view(rs->arg, &v);
	r->content_type = "application/json";
	if (rc == 0) {
		r->status = 200;
		pp_sb_printf(&r->body,
		             "{\"result\":\"success\",\"tunnels\":%zu}\n",
		             v.conf->ntunnels);
	} else if (rc == 1) {
		r->status = 503;
		pp_sb_puts(&r->body, "{\"result\":\"retrying\",\"error\":"
		                     "\"the last reload is still being "
		                     "applied\"}\n");
	} else {
		r->status = v.draining ? 503 : 500;
		pp_sb_puts(&r->body, "{\"result\":\"failure\",\"error\":");
		pp_sb_json_str(&r->body, v.last_reload_error);
		pp_sb_puts(&r->body, "}\n");
	}
}

void
pp_routes_handle(void *arg, const struct pp_admin_req *req,
                 struct pp_admin_reply *r)
{
	const struct pp_routes *rs = arg;
	struct pp_ops_view v;
	size_t i, n = sizeof(table) / sizeof(table[0]);

	for (i = 0; i < n; i++)
		if (strcmp(req->path, table[i].path) == 0)
			break;
	if (i == n) {
		r->status = 404;
		pp_sb_printf(&r->body, "no such endpoint: %s\n", req->path);
		return;
	}
	if (strcmp(req->method, table[i].method) != 0) {
		r->status = 405;
		r->allow = table[i].method;
		pp_sb_printf(&r->body, "%s takes %s only\n", req->path,
		             table[i].method);
		return;
	}
	rs->view(rs->arg, &v);
	r->status = 200;
	if (strcmp(req->path, "/healthz") == 0) {
		pp_sb_puts(&r->body, "ok\n");
	} else if (strcmp(req->path, "/readyz") == 0) {
		r->content_type = "application/json";
		r->status = pp_report_ready(&v, &r->body) ? 200 : 503;
	} else if (strcmp(req->path, "/metrics") == 0) {
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
		pp_report_metrics(&v, &r->body);
	} else if (strcmp(req->path, "/status") == 0) {
		r->content_type = "application/json";
		pp_report_status(&v, &r->body);
	} else if (strcmp(req->path, "/reload") == 0) {
		reload(rs, r);
	} else {
		r->content_type = "application/json";
		pp_sb_printf(&r->body,
		             "{\"result\":\"draining\",\"open_tunnels\":%zu}\n",
		             rs->open_tunnels(rs->arg));
		if (!v.draining)
			rs->drain(rs->arg, "quitquitquit");
	}
}

struct pp_admin *
pp_routes_serve(uv_loop_t *loop, const struct pp_addr *addr,
                struct pp_routes *routes)
{
	char err[256], text[PP_HOST_MAX + 16];
	struct pp_admin *a;
	struct pp_logline l;

	pp_addr_format(addr, text, sizeof(text));
	a = pp_admin_start(loop, addr, pp_routes_handle, routes, err,
	                   sizeof(err));
	if (a == NULL) {
		pp_log_begin(&l, PP_LOG_ERROR, "listen_failed");
		pp_log_str(&l, "endpoint", "admin");
		pp_log_str(&l, "addr", text);
		pp_log_str(&l, "error", err);
		pp_log_end(&l);
		return (NULL);
	}
	pp_log_begin_always(&l, PP_LOG_INFO, "admin_listening");
	pp_log_str(&l, "addr", text);
	pp_log_end(&l);
	return (a);
}
