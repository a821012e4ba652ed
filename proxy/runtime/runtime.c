#include "runtime/runtime.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "net/listen.h"
#include "runtime/worker.h"
#include "util/log.h"

struct pp_runtime {
	struct pp_config *conf;
	uv_loop_t *loop;
	int nworkers;
	struct pp_worker *workers;
	uv_signal_t sigint, sigterm, sighup;
	uv_timer_t drain_timer;
	uv_async_t worker_exit;
	atomic_int workers_left;
	int draining;
};

void
pp_runtime_worker_done(struct pp_runtime *rt)
{
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
open_tunnels(struct pp_runtime *rt)
{
	size_t n = 0;

	for (int i = 0; i < rt->nworkers; i++)
		n += atomic_load(&rt->workers[i].stats.active);
	return (n);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct pp_runtime *rt = h->data;
	struct pp_logline l;

	if (signum == SIGHUP) {
		pp_log_msg(
		    PP_LOG_INFO, "reload_skipped",
		    "SIGHUP: nothing to reload for command-line tunnels");
		return;
	}
	if (rt->draining) {
		pp_log_msg(PP_LOG_WARN, "exit_forced",
		           "second %s: exiting at once", strsignal(signum));
		_exit(1);
	}
	rt->draining = 1;
	pp_log_begin(&l, PP_LOG_INFO, "draining");
	pp_log_str(&l, "signal", strsignal(signum));
	pp_log_u64(&l, "open_tunnels", open_tunnels(rt));
	pp_log_secs(&l, "deadline", rt->conf->drain_timeout_ms);
	pp_log_end(&l);
	for (int i = 0; i < rt->nworkers; i++)
		pp_worker_stop_accepting(&rt->workers[i]);
	uv_timer_start(&rt->drain_timer, on_drain_deadline,
	               rt->conf->drain_timeout_ms, 0);
}

/* Open every listener for every worker: fds[w * ntunnels + t]. */
static int
open_listeners(struct pp_runtime *rt, int *fds)
{
	struct pp_config *c = rt->conf;
	size_t nt = c->ntunnels, nw = (size_t)rt->nworkers;
	int *one = calloc(nw, sizeof(int));
	char err[256], addr[PP_HOST_MAX + 16];

	if (one == NULL)
		return (-1);
	for (size_t t = 0; t < nt; t++) {
		if (!pp_tunnel_listens(&c->tunnels[t])) {
			for (size_t w = 0; w < nw; w++)
				fds[w * nt + t] = -1;
			continue;
		}
		pp_addr_format(&c->tunnels[t].listen, addr, sizeof(addr));
		if (pp_listen_open(&c->tunnels[t].listen, nw, one, err,
		                   sizeof(err)) != 0) {
			struct pp_logline l;
			pp_log_begin(&l, PP_LOG_ERROR, "listen_failed");
			pp_log_str(&l, "tunnel", c->tunnels[t].name);
			pp_log_str(&l, "addr", addr);
			pp_log_str(&l, "error", err);
			pp_log_end(&l);
			for (size_t u = 0; u < t; u++)
				for (size_t w = 0; w < nw; w++)
					if (fds[w * nt + u] >= 0)
						close(fds[w * nt + u]);
			free(one);
			return (-1);
		}
		for (size_t w = 0; w < nw; w++)
			fds[w * nt + t] = one[w];
	}
	free(one);
	return (0);
}

static void
log_listening(struct pp_runtime *rt)
{
	char addr[PP_HOST_MAX + 16];

	for (size_t t = 0; t < rt->conf->ntunnels; t++) {
		const struct pp_tunnel_conf *tc = &rt->conf->tunnels[t];
		static const char *const kinds[] = {"inbound", "outbound",
		                                    "connect"};
		struct pp_logline l;

		if (!pp_tunnel_listens(tc))
			continue;
		pp_addr_format(&tc->listen, addr, sizeof(addr));
		pp_log_begin(&l, PP_LOG_INFO, "listening");
		pp_log_str(&l, "tunnel", tc->name);
		pp_log_str(&l, "kind", kinds[tc->kind]);
		pp_log_str(&l, "addr", addr);
		if (tc->trust != NULL)
			pp_log_str(&l, "identity",
			           pp_trust_mode(tc->trust) ==
			                   PP_IDENTITY_SWAPTACULAR
			               ? "swaptacular"
			               : "x509");
		pp_log_end(&l);
	}
}

static void
unlink_unix_listeners(struct pp_config *c)
{
	for (size_t t = 0; t < c->ntunnels; t++) {
		if (c->tunnels[t].listen.kind == PP_ADDR_UNIX)
			unlink(c->tunnels[t].listen.path);
	}
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
pp_runtime_run(struct pp_config *conf)
{
	struct pp_runtime rt;
	struct pp_logline l;
	int *fds, started = 0, rc = 1;

	memset(&rt, 0, sizeof(rt));
	rt.conf = conf;
	rt.loop = uv_default_loop();
	rt.nworkers = pp_config_workers(conf);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	srandom((unsigned)(getpid() ^ (unsigned)uv_hrtime()));

	fds =
	    calloc((size_t)rt.nworkers * (conf->ntunnels ? conf->ntunnels : 1),
	           sizeof(int));
	rt.workers = calloc((size_t)rt.nworkers, sizeof(*rt.workers));
	if (fds == NULL || rt.workers == NULL)
		goto done;
	if (open_listeners(&rt, fds) != 0)
		goto done;

	uv_async_init(rt.loop, &rt.worker_exit, on_worker_exit);
	rt.worker_exit.data = &rt;
	uv_timer_init(rt.loop, &rt.drain_timer);
	rt.drain_timer.data = &rt;
	uv_unref((uv_handle_t *)&rt.drain_timer);
	uv_signal_init(rt.loop, &rt.sigint);
	uv_signal_init(rt.loop, &rt.sigterm);
	uv_signal_init(rt.loop, &rt.sighup);
	rt.sigint.data = rt.sigterm.data = rt.sighup.data = &rt;
	uv_signal_start(&rt.sigint, on_signal, SIGINT);
	uv_signal_start(&rt.sigterm, on_signal, SIGTERM);
	uv_signal_start(&rt.sighup, on_signal, SIGHUP);

	atomic_init(&rt.workers_left, rt.nworkers);
	for (int i = 0; i < rt.nworkers; i++) {
		if (pp_worker_init(&rt.workers[i], i, &rt, conf,
		                   &fds[(size_t)i * conf->ntunnels]) != 0 ||
		    pp_worker_start(&rt.workers[i]) != 0) {
			pp_log_msg(PP_LOG_ERROR, "start_failed",
			           "cannot start worker %d", i);
			/* Let the ones running stop; their fds go with them. */
			atomic_fetch_sub(&rt.workers_left, rt.nworkers - i);
			for (int j = 0; j < i; j++)
				pp_worker_stop_accepting(&rt.workers[j]);
			rt.draining = 1;
			break;
		}
		started++;
	}
	if (!rt.draining) {
		log_listening(&rt);
		pp_log_begin(&l, PP_LOG_INFO, "ready");
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
	unlink_unix_listeners(conf);
	if (rc == 0)
		pp_log_msg(PP_LOG_INFO, "stopped", "all tunnels closed");
done:
	free(fds);
	free(rt.workers);
	return (rc);
}
