/*
 * The admin endpoint's routes (pp_routes_handle) against a stand-in for
 * the runtime: the status, content type and body of each route, what a
 * reload's outcome becomes, and that /quitquitquit asks for one drain.
 */

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "config/config.h"
#include "ops/routes.h"
#include "support.h"

/* What the stand-in runtime says and was asked. */
struct fake {
	struct pp_config *conf;
	int draining;
	const char *last_error;
	int reload_rc; /* what a reload returns */
	int reloads, drains;
	const char *drain_why;
};

static void
view(void *arg, struct pp_ops_view *v)
{
	struct fake *f = arg;

	memset(v, 0, sizeof(*v));
	v->conf = f->conf;
	v->serving = 1;
	v->draining = f->draining;
	v->last_reload_error = f->last_error;
	v->workers = 1;
}

static int
reload(void *arg)
{
	struct fake *f = arg;

	f->reloads++;
	return (f->reload_rc);
}

static size_t
open_tunnels(void *arg)
{
	(void)arg;
	return (3);
}

static void
drain(void *arg, const char *why)
{
	struct fake *f = arg;

	f->drains++;
	f->drain_why = why;
	f->draining = 1;
}

static struct fake f;
static struct pp_routes routes = {.view = view,
                                  .reload = reload,
                                  .open_tunnels = open_tunnels,
                                  .drain = drain,
                                  .arg = &f};
static struct pp_admin_reply reply;

static void
setup(void)
{
	memset(&f, 0, sizeof(f));
	cr_assert_not_null(f.conf = pp_config_new());
	cr_assert_not_null(
	    pp_config_add_tunnel(f.conf, PP_TUNNEL_OUTBOUND, "one"));
	memset(&reply, 0, sizeof(reply));
}

static void
teardown(void)
{
	pp_sb_free(&reply.body);
	pp_config_unref(f.conf);
}

TestSuite(routes, .init = setup, .fini = teardown, .timeout = 30);

/* Ask ${method} ${path}; the reply's body ("" if none). */
static const char *
ask(const char *method, const char *path)
{
	struct pp_admin_req req = {.method = method, .path = path};

	pp_sb_free(&reply.body);
	memset(&reply, 0, sizeof(reply));
	pp_routes_handle(&routes, &req, &reply);
	cr_assert(!reply.body.failed);
	return (reply.body.len ? reply.body.buf : "");
}

Test(routes, an_unknown_path_is_404_naming_it)
{
	cr_assert_str_eq(ask("GET", "/nope"), "no such endpoint: /nope\n");
	cr_assert_eq(reply.status, 404);
}

Test(routes, a_wrong_method_is_405_with_the_one_allowed)
{
	cr_assert_str_eq(ask("GET", "/reload"), "/reload takes POST only\n");
	cr_assert_eq(reply.status, 405);
	cr_assert_str_eq(reply.allow, "POST");
	cr_assert_eq(f.reloads, 0);
	cr_assert_str_eq(ask("POST", "/healthz"), "/healthz takes GET only\n");
	cr_assert_eq(reply.status, 405);
	cr_assert_str_eq(reply.allow, "GET");
}

Test(routes, healthz_and_status)
{
	cr_assert_str_eq(ask("GET", "/healthz"), "ok\n");
	cr_assert_eq(reply.status, 200);
	cr_assert(t_contains(ask("GET", "/status"), "\"tunnels\":[{"));
	cr_assert_eq(reply.status, 200);
	cr_assert_str_eq(reply.content_type, "application/json");
	cr_assert(t_contains(ask("GET", "/metrics"),
	                     "peerproxy_reloads_total{result=\"success\"}"));
	cr_assert(t_contains(reply.content_type, "version=0.0.4"));
}

Test(routes, a_reload_answers_with_its_outcome)
{
	cr_assert_str_eq(ask("POST", "/reload"),
	                 "{\"result\":\"success\",\"tunnels\":1}\n");
	cr_assert_eq(reply.status, 200);
	cr_assert_eq(f.reloads, 1);

	f.reload_rc = 1;
	cr_assert(
	    t_contains(ask("POST", "/reload"), "\"result\":\"retrying\""));
	cr_assert_eq(reply.status, 503);

	f.reload_rc = -1;
	f.last_error = "peerproxy.yaml:3: \"x\" is not a key";
	cr_assert_str_eq(ask("POST", "/reload"),
	                 "{\"result\":\"failure\",\"error\":"
	                 "\"peerproxy.yaml:3: \\\"x\\\" is not a key\"}\n");
	cr_assert_eq(reply.status, 500);

	f.draining = 1;
	f.last_error = "draining";
	ask("POST", "/reload");
	cr_assert_eq(reply.status, 503, "refused while draining");
	cr_assert_eq(f.reloads, 4);
}

Test(routes, quitquitquit_drains_once)
{
	cr_assert_str_eq(ask("POST", "/quitquitquit"),
	                 "{\"result\":\"draining\",\"open_tunnels\":3}\n");
	cr_assert_eq(reply.status, 200);
	cr_assert_eq(f.drains, 1);
	cr_assert_str_eq(f.drain_why, "quitquitquit");
	ask("POST", "/quitquitquit");
	cr_assert_eq(reply.status, 200);
	cr_assert_eq(f.drains, 1, "already draining");
}
