#include "runtime/runtime.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "config/nodedata.h"
#include "ops/routes.h"
#include "ops/watch.h"
#include "runtime/listeners.h"
#include "runtime/reloadplan.h"
#include "runtime/trim.h"
#include "runtime/worker.h"
#include "runtime/workers.h"
#include "util/log.h"
#include "util/strbuf.h"

/* How long file changes must settle before a reload. */
#define WATCH_DEBOUNCE_MS 200

struct pp_runtime {
	struct pp_config *conf; /* the current snapshot (reference held) */
	int *fds;               /* its listeners: fds[w * ntunnels + t] */
	pp_reload_fn *reload;
	void *reload_arg;
	uv_timer_t rescan_timer; /* node data: reload every rescan_interval */
	uv_timer_t retry_timer;  /* a reload waiting for the last one */
	uint64_t reloads_ok, reloads_failed;
	uv_loop_t *loop;
	int nworkers;
	struct pp_worker *workers;
	uv_signal_t sigint, sigterm, sighup;
	uv_timer_t drain_timer;
	uv_async_t worker_exit;
	atomic_int workers_left;
	int draining;
	int serving;             /* listeners bound, workers running */
	struct pp_admin *admin;  /* NULL: admin endpoint off */
	struct pp_watch *watch;  /* NULL: no file watch */
	uv_timer_t second_timer; /* each second: suppressed log lines, trim */
	struct pp_trim trim;
	struct pp_routes routes; /* what the admin endpoint asks of us */
	uint64_t start_unix_ms, start_ms;
	char *last_error; /* of the last reload, whole; NULL if it worked */
};

/* A worker's loop ended (called on its thread). */
static void
on_worker_done(void *arg)
{
	struct pp_runtime *rt = arg;

	atomic_fetch_sub(&rt->workers_left, 1);
	uv_async_send(&rt->worker_exit);
}

static void
on_worker_exit(uv_async_t *h)
{
	struct pp_runtime *rt = h->data;

	if (atomic_load(&rt->workers_left) > 0)
		return;
	/* Every worker is done: let the main loop end. */
	uv_close((uv_handle_t *)&rt->worker_exit, NULL);
	uv_close((uv_handle_t *)&rt->sigint, NULL);
	uv_close((uv_handle_t *)&rt->sigterm, NULL);
	uv_close((uv_handle_t *)&rt->sighup, NULL);
	uv_close((uv_handle_t *)&rt->drain_timer, NULL);
	uv_close((uv_handle_t *)&rt->rescan_timer, NULL);
	uv_close((uv_handle_t *)&rt->retry_timer, NULL);
	uv_close((uv_handle_t *)&rt->second_timer, NULL);
	pp_admin_stop(rt->admin);
	rt->admin = NULL;
	pp_watch_free(rt->watch);
	rt->watch = NULL;
	pp_log_flush_suppressed();
}

static void
on_drain_deadline(uv_timer_t *h)
{
	struct pp_runtime *rt = h->data;

	pp_log_msg(PP_LOG_WARN, "drain_deadline",
	           "closing the tunnels still open");
	for (int i = 0; i < rt->nworkers; i++)
		pp_worker_abort(&rt->workers[i]);
}

static size_t
open_tunnels(void *arg)
{
	struct pp_runtime *rt = arg;

	return (pp_workers_open_tunnels(rt->workers, rt->nworkers));
}

/* ---- reload: a new snapshot, swapped in for new connections ---- */

static int reload(struct pp_runtime *rt, const char *why);

static void
on_retry(uv_timer_t *h)
{
	reload(h->data, "retry");
}

/* Watch every file ${rt}'s configuration names (and, in node data mode,
 * the peer markers). */
static void
watch_update(struct pp_runtime *rt)
{
	const struct pp_config *c = rt->conf;
	char **nd = NULL;
	size_t n = 0, nnd = 0;
	const char **paths;

	if (rt->watch == NULL)
		return;
	if (c->nodedata != NULL)
		nnd = pp_nodedata_watch_paths(c->nodedata, &nd);
	if ((paths = calloc(1 + 4 * c->ntunnels + nnd, sizeof(*paths))) !=
	    NULL) {
		paths[n++] = c->source;
		for (size_t i = 0; i < c->ntunnels; i++) {
			paths[n++] = c->tunnels[i].ca_file;
			paths[n++] = c->tunnels[i].cert_file;
			paths[n++] = c->tunnels[i].chain_file;
			paths[n++] = c->tunnels[i].key_file;
		}
		for (size_t i = 0; i < nnd; i++)
			paths[n++] = nd[i];
		pp_watch_set(rt->watch, paths, n);
		free(paths);
	}
	for (size_t i = 0; i < nnd; i++)
		free(nd[i]);
	free(nd);
}

static void
on_files_changed(void *arg)
{
	reload(arg, "file_change");
}

static void
on_rescan(uv_timer_t *h)
{
	reload(h->data, "rescan");
}

/* Keep a copy of ${msg} (NULL: none) as the last reload's error. */
static void
set_last_error(struct pp_runtime *rt, const char *msg)
{
	free(rt->last_error);
	rt->last_error = msg != NULL ? strdup(msg) : NULL;
}

static void
reload_failed(struct pp_runtime *rt, const char *why,
              const struct pp_problems *p, const char *msg)
{
	struct pp_logline l;

	rt->reloads_failed++;
	/* With problems lost for lack of memory, say so. */
	if (p != NULL && p->n == 0 && p->lost > 0)
		msg = "out of memory";
	set_last_error(rt, p && p->n ? p->items[0] : msg);
	pp_log_begin(&l, PP_LOG_ERROR, "reload_failed");
	pp_log_str(&l, "trigger", why);
	pp_log_u64(&l, "problems", p ? pp_problems_count(p) : 1);
	pp_log_str(&l, "error", p && p->n ? p->items[0] : msg);
	pp_log_end(&l);
	for (size_t i = 1; p != NULL && i < p->n && i < 20; i++)
		pp_log_msg(PP_LOG_ERROR, "reload_problem", "%s", p->items[i]);
}

/* Log the reload ${plan} carried out, ${why} naming its trigger: quiet
 * (debug) for a rescan that added and removed no tunnel. */
static void
log_reloaded(const char *why, const struct pp_reload_plan *plan)
{
	struct pp_sb certs = {0};
	struct pp_logline l;
	int quiet = strcmp(why, "rescan") == 0 && plan->nadded == 0 &&
	            plan->nremoved == 0;

	for (size_t i = 0; i < plan->nnew_certs; i++)
		pp_sb_printf(&certs, "%s%s", certs.len ? "," : "",
		             plan->new_certs[i]);
	pp_log_begin(&l, quiet ? PP_LOG_DEBUG : PP_LOG_INFO, "reloaded");
	pp_log_str(&l, "trigger", why);
	pp_log_u64(&l, "tunnels", plan->ntunnels);
	pp_log_u64(&l, "added", plan->nadded);
	pp_log_u64(&l, "removed", plan->nremoved);
	if (certs.len > 0)
		pp_log_str(&l, "new_certificates", certs.buf);
	pp_log_end(&l);
	pp_sb_free(&certs);
}

/* Read the configuration again and swap it in.  Return 0 if it was,
 * 1 if it will be retried shortly (a worker has not taken the last one
 * yet), -1 if it is invalid (logged; the old one keeps serving). */
static int
reload(struct pp_runtime *rt, const char *why)
{
	struct pp_problems p = {0};
	struct pp_reload_plan plan;
	struct pp_config *next;
	char err[1024], reason[PP_HOST_MAX + 128], addr[PP_HOST_MAX + 16];
	size_t bad;

	if (rt->draining || rt->reload == NULL) {
		set_last_error(rt,
		               rt->draining ? "draining" : "nothing to reload");
		return (-1);
	}
	if (!pp_workers_swap_wait(rt->workers, rt->nworkers)) {
		uv_timer_start(&rt->retry_timer, on_retry, 100, 0);
		return (1);
	}
	if ((next = rt->reload(rt->reload_arg, &p)) == NULL ||
	    pp_config_build(next, &p) != 0) {
		reload_failed(rt, why, &p, "cannot read the configuration");
		pp_problems_free(&p);
		pp_config_unref(next);
		return (-1);
	}
	pp_config_log_warnings(next, &p, rt->conf);
	pp_problems_free(&p);
	if (pp_config_workers(next) != rt->nworkers)
		pp_log_msg(PP_LOG_WARN, "reload_partial",
		           "the worker count changes only with a restart");
	if (pp_reload_plan(rt->conf, rt->fds, next, (size_t)rt->nworkers,
	                   &plan) != 0) {
		reload_failed(rt, why, NULL, "out of memory");
		pp_config_unref(next);
		return (-1);
	}
	if (pp_listeners_open(&plan, next, &bad, reason, sizeof(reason)) != 0) {
		if (bad < next->ntunnels) {
			pp_addr_format(&next->tunnels[bad].listen, addr,
			               sizeof(addr));
			snprintf(err, sizeof(err), "listen %s: %s", addr,
			         reason);
		} else {
			snprintf(err, sizeof(err), "%s", reason);
		}
		reload_failed(rt, why, NULL, err);
		goto fail;
	}
	if (pp_workers_swap(rt->workers, rt->nworkers, next, plan.fds) != 0) {
		pp_listeners_close_new(&plan);
		reload_failed(rt, why, NULL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < plan.nunlink; i++)
		unlink(plan.unlink[i]);
	pp_log_configure(next->log_level, next->log_json);
	log_reloaded(why, &plan);
	rt->reloads_ok++;
	set_last_error(rt, NULL);
	free(rt->fds);
	rt->fds = plan.fds;
	plan.fds = NULL;
	pp_reload_plan_free(&plan); /* before the snapshot it borrows from */
	pp_config_unref(rt->conf);
	rt->conf = next;
	rt->trim.reloaded = 1;
	watch_update(rt);
	return (0);
fail:
	pp_reload_plan_free(&plan);
	pp_config_unref(next);
	return (-1);
}

/* Stop accepting, let open tunnels finish until drain_timeout, then
 * exit; ${why} names the trigger in the log. */
static void
begin_drain(struct pp_runtime *rt, const char *why)
{
	struct pp_logline l;

	rt->draining = 1;
	pp_log_begin(&l, PP_LOG_INFO, "draining");
	pp_log_str(&l, "signal", why);
	pp_log_u64(&l, "open_tunnels", open_tunnels(rt));
	pp_log_secs(&l, "deadline", rt->conf->drain_timeout_ms);
	pp_log_end(&l);
	for (int i = 0; i < rt->nworkers; i++)
		pp_worker_stop_accepting(&rt->workers[i]);
	uv_timer_stop(&rt->rescan_timer);
	uv_timer_stop(&rt->retry_timer);
	uv_timer_start(&rt->drain_timer, on_drain_deadline,
	               rt->conf->drain_timeout_ms, 0);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct pp_runtime *rt = h->data;

	if (signum == SIGHUP) {
		reload(rt, "SIGHUP");
		return;
	}
	if (rt->draining) {
		pp_log_msg(PP_LOG_WARN, "exit_forced",
		           "second %s: exiting at once", strsignal(signum));
		_exit(1);
	}
	begin_drain(rt, strsignal(signum));
}

/* ---- what the admin endpoint asks (ops/routes) ---- */

static void
ops_view(void *arg, struct pp_ops_view *v)
{
	struct pp_runtime *rt = arg;

	memset(v, 0, sizeof(*v));
	v->conf = rt->conf;
	v->start_unix_ms = rt->start_unix_ms;
	v->uptime_ms = uv_now(rt->loop) - rt->start_ms;
	v->serving = rt->serving;
	v->draining = rt->draining;
	v->reloads_ok = rt->reloads_ok;
	v->reloads_failed = rt->reloads_failed;
	v->last_reload_error = rt->last_error;
	v->workers = rt->nworkers;
}

static int
admin_reload(void *arg)
{
	return (reload(arg, "admin"));
}

static void
admin_drain(void *arg, const char *why)
{
	begin_drain(arg, why);
}

static void
on_second(uv_timer_t *h)
{
	struct pp_runtime *rt = h->data;

	pp_log_flush_suppressed();
	pp_trim_tick(&rt->trim, rt->workers, rt->nworkers, uv_now(rt->loop));
}

/* Every tunnel holds two descriptors: take all the kernel lets us. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		pp_log_msg(PP_LOG_WARN, "fd_limit",
		           "cannot raise the open file limit: %s",
		           strerror(errno));
}

int
pp_runtime_run(struct pp_config *conf, pp_reload_fn *reload_fn, void *arg)
{
	struct pp_runtime rt;
	struct pp_logline l;
	int *fds, started = 0, rc = 1;

	memset(&rt, 0, sizeof(rt));
	rt.conf = conf; /* the caller's reference, now ours */
	rt.reload = reload_fn;
	rt.reload_arg = arg;
	rt.loop = uv_default_loop();
	rt.nworkers = pp_config_workers(conf);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	srandom((unsigned)(getpid() ^ (unsigned)uv_hrtime()));

	rt.workers = calloc((size_t)rt.nworkers, sizeof(*rt.workers));
	if (rt.workers == NULL ||
	    pp_listeners_start(conf, (size_t)rt.nworkers, &rt.fds) != 0)
		goto done;
	pp_listeners_sweep(conf);
	fds = rt.fds;
	rt.routes = (struct pp_routes){.view = ops_view,
	                               .reload = admin_reload,
	                               .open_tunnels = open_tunnels,
	                               .drain = admin_drain,
	                               .arg = &rt};

	uv_async_init(rt.loop, &rt.worker_exit, on_worker_exit);
	rt.worker_exit.data = &rt;
	uv_timer_init(rt.loop, &rt.drain_timer);
	rt.drain_timer.data = &rt;
	uv_unref((uv_handle_t *)&rt.drain_timer);
	uv_timer_init(rt.loop, &rt.retry_timer);
	rt.retry_timer.data = &rt;
	uv_timer_init(rt.loop, &rt.rescan_timer);
	rt.rescan_timer.data = &rt;
	uv_timer_init(rt.loop, &rt.second_timer);
	rt.second_timer.data = &rt;
	uv_timer_start(&rt.second_timer, on_second, 1000, 1000);
	uv_unref((uv_handle_t *)&rt.second_timer);
	rt.start_ms = uv_now(rt.loop);
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		rt.start_unix_ms =
		    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	}
	if (reload_fn != NULL &&
	    (rt.watch = pp_watch_new(rt.loop, WATCH_DEBOUNCE_MS,
	                             on_files_changed, &rt)) != NULL)
		watch_update(&rt);
	if (conf->nodedata != NULL && conf->nodedata->rescan_ms > 0)
		uv_timer_start(&rt.rescan_timer, on_rescan,
		               conf->nodedata->rescan_ms,
		               conf->nodedata->rescan_ms);
	uv_signal_init(rt.loop, &rt.sigint);
	uv_signal_init(rt.loop, &rt.sigterm);
	uv_signal_init(rt.loop, &rt.sighup);
	rt.sigint.data = rt.sigterm.data = rt.sighup.data = &rt;
	uv_signal_start(&rt.sigint, on_signal, SIGINT);
	uv_signal_start(&rt.sigterm, on_signal, SIGTERM);
	uv_signal_start(&rt.sighup, on_signal, SIGHUP);

	atomic_init(&rt.workers_left, rt.nworkers);
	for (int i = 0; i < rt.nworkers; i++) {
		int *mine = &fds[(size_t)i * conf->ntunnels];

		if (pp_worker_init(&rt.workers[i], i, conf, mine,
		                   on_worker_done, &rt) == 0 &&
		    pp_worker_start(&rt.workers[i]) == 0) {
			started++;
			continue;
		}
		pp_log_msg(PP_LOG_ERROR, "start_failed",
		           "cannot start worker %d", i);
		/* A worker that failed to start closes its descriptors
		 * (pp_worker_init did if it failed); those of the workers
		 * not made are closed here, and the ones running stop,
		 * their descriptors going with them. */
		if (rt.workers[i].conf != NULL)
			pp_worker_discard(&rt.workers[i]);
		for (size_t j = (size_t)i + 1; j < (size_t)rt.nworkers; j++)
			for (size_t t = 0; t < conf->ntunnels; t++)
				if (fds[j * conf->ntunnels + t] >= 0)
					close(fds[j * conf->ntunnels + t]);
		atomic_fetch_sub(&rt.workers_left, rt.nworkers - i);
		for (int j = 0; j < i; j++)
			pp_worker_stop_accepting(&rt.workers[j]);
		rt.draining = 1;
		break;
	}
	if (!rt.draining && conf->admin_enabled &&
	    (rt.admin = pp_routes_serve(rt.loop, &conf->admin_listen,
	                                &rt.routes)) == NULL) {
		for (int j = 0; j < started; j++)
			pp_worker_stop_accepting(&rt.workers[j]);
		rt.draining = 1;
	}
	if (!rt.draining) {
		rt.serving = 1;
		pp_listeners_log(conf);
		pp_log_begin_always(&l, PP_LOG_INFO, "ready");
		pp_log_u64(&l, "workers", (uint64_t)rt.nworkers);
		pp_log_u64(&l, "tunnels", conf->ntunnels);
		pp_log_end(&l);
		rc = 0;
	}
	if (started == 0)
		on_worker_exit(&rt.worker_exit);
	uv_run(rt.loop, UV_RUN_DEFAULT);
	for (int i = 0; i < started; i++)
		pp_worker_join(&rt.workers[i]);
	uv_loop_close(rt.loop);
	pp_listeners_unlink(rt.conf);
	if (rc == 0)
		pp_log_msg(PP_LOG_INFO, "stopped", "all tunnels closed");
done:
	free(rt.fds);
	free(rt.workers);
	free(rt.last_error);
	pp_config_unref(rt.conf);
	return (rc);
}
