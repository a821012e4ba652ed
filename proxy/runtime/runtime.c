#include "runtime/runtime.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <uv.h>

#include "config/nodedata.h"
#include "net/listen.h"
#include "ops/routes.h"
#include "ops/watch.h"
#include "runtime/trim.h"
#include "runtime/worker.h"
#include "tls/context.h"
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
	size_t n = 0;

	for (int i = 0; i < rt->nworkers; i++)
		n += atomic_load(&rt->workers[i].stats.active);
	return (n);
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

/* A configuration's tunnels sorted by name and by listen address: a
 * reload compares two whole configurations, and a node may have
 * thousands of peers, so every lookup is a binary search. */
struct tref {
	char *key;
	size_t i; /* the tunnel's index */
};

struct tindex {
	const struct pp_config *c;
	struct tref *names, *addrs;
	size_t naddrs;
};

static int
tref_cmp(const void *a, const void *b)
{
	return (strcmp(((const struct tref *)a)->key,
	               ((const struct tref *)b)->key));
}

static void
tindex_free(struct tindex *x)
{
	for (size_t i = 0; x->c != NULL && i < x->c->ntunnels; i++)
		free(x->names[i].key);
	for (size_t i = 0; i < x->naddrs; i++)
		free(x->addrs[i].key);
	free(x->names);
	free(x->addrs);
	memset(x, 0, sizeof(*x));
}

/* Index ${c} into ${x}.  Return 0, or -1 if memory is short. */
static int
tindex_build(struct tindex *x, const struct pp_config *c)
{
	size_t n = c->ntunnels ? c->ntunnels : 1;
	char a[PP_HOST_MAX + 16];

	memset(x, 0, sizeof(*x));
	if ((x->names = calloc(n, sizeof(*x->names))) == NULL ||
	    (x->addrs = calloc(n, sizeof(*x->addrs))) == NULL) {
		free(x->names);
		x->names = NULL;
		return (-1);
	}
	x->c = c;
	for (size_t i = 0; i < c->ntunnels; i++) {
		x->names[i].i = i;
		if ((x->names[i].key = strdup(c->tunnels[i].name)) == NULL)
			goto oom;
		if (!pp_tunnel_listens(&c->tunnels[i]))
			continue;
		pp_addr_format(&c->tunnels[i].listen, a, sizeof(a));
		x->addrs[x->naddrs].i = i;
		if ((x->addrs[x->naddrs++].key = strdup(a)) == NULL)
			goto oom;
	}
	qsort(x->names, c->ntunnels, sizeof(*x->names), tref_cmp);
	qsort(x->addrs, x->naddrs, sizeof(*x->addrs), tref_cmp);
	return (0);
oom:
	tindex_free(x);
	return (-1);
}

/* The index of the tunnel whose ${key} (a name, or a listen address) it
 * is among the ${n} sorted ${v}, or -1. */
static long
tindex_find(const struct tref *v, size_t n, const char *key)
{
	struct tref want = {.key = (char *)key};
	const struct tref *hit = bsearch(&want, v, n, sizeof(*v), tref_cmp);

	return (hit != NULL ? (long)hit->i : -1);
}

static long
find_listener(const struct tindex *x, const char *addr)
{
	return (tindex_find(x->addrs, x->naddrs, addr));
}

static long
find_name(const struct tindex *x, const char *name)
{
	return (tindex_find(x->names, x->c->ntunnels, name));
}

/* Close the sockets reload_listeners opened for the first ${upto} tunnels
 * of ${next} (not those carried over from ${cur}). */
static void
close_new_listeners(struct pp_runtime *rt, struct pp_config *next, int *fds,
                    size_t upto, const struct tindex *cur)
{
	size_t nw = (size_t)rt->nworkers, nt = next->ntunnels;
	char addr[PP_HOST_MAX + 16];

	for (size_t u = 0; u < upto; u++) {
		if (!pp_tunnel_listens(&next->tunnels[u]))
			continue;
		pp_addr_format(&next->tunnels[u].listen, addr, sizeof(addr));
		if (find_listener(cur, addr) >= 0)
			continue;
		for (size_t w = 0; w < nw; w++)
			close(fds[w * nt + u]);
	}
}

/* Descriptors for ${next}: the current ones (of ${cur}, the index of the
 * current configuration) where an address carries over, new sockets
 * elsewhere.  Return the table, or NULL (nothing left open) with the
 * failure in ${err}. */
static int *
reload_listeners(struct pp_runtime *rt, struct pp_config *next,
                 const struct tindex *cur, char *err, size_t errlen)
{
	size_t nw = (size_t)rt->nworkers, nt = next->ntunnels;
	size_t ot = rt->conf->ntunnels;
	int *fds = malloc(nw * (nt ? nt : 1) * sizeof(int));
	int *one = malloc(nw * sizeof(int));
	char addr[PP_HOST_MAX + 16], why[PP_HOST_MAX + 128];

	if (fds == NULL || one == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t t = 0; t < nt; t++) {
		long o;

		for (size_t w = 0; w < nw; w++)
			fds[w * nt + t] = -1;
		if (!pp_tunnel_listens(&next->tunnels[t]))
			continue;
		pp_addr_format(&next->tunnels[t].listen, addr, sizeof(addr));
		if ((o = find_listener(cur, addr)) >= 0) {
			for (size_t w = 0; w < nw; w++)
				fds[w * nt + t] = rt->fds[w * ot + (size_t)o];
			continue;
		}
		if (pp_listen_open(&next->tunnels[t].listen, nw, one, why,
		                   sizeof(why)) != 0) {
			snprintf(err, errlen, "listen %s: %s", addr, why);
			close_new_listeners(rt, next, fds, t, cur);
			goto fail;
		}
		for (size_t w = 0; w < nw; w++)
			fds[w * nt + t] = one[w];
	}
	free(one);
	return (fds);
fail:
	free(one);
	free(fds);
	return (NULL);
}

/* Unlink the socket files of unix listeners ${old} has and ${next} (its
 * index) no longer has. */
static void
unlink_dropped(const struct pp_config *old, const struct tindex *next)
{
	char addr[PP_HOST_MAX + 16];

	for (size_t i = 0; i < old->ntunnels; i++) {
		if (old->tunnels[i].listen.kind != PP_ADDR_UNIX ||
		    !pp_tunnel_listens(&old->tunnels[i]))
			continue;
		pp_addr_format(&old->tunnels[i].listen, addr, sizeof(addr));
		if (find_listener(next, addr) < 0)
			unlink(old->tunnels[i].listen.path);
	}
}

/* Count the tunnel names of ${a} that ${b} (an index) lacks. */
static size_t
names_missing(const struct pp_config *a, const struct tindex *b)
{
	size_t n = 0;

	for (size_t i = 0; i < a->ntunnels; i++)
		n += find_name(b, a->tunnels[i].name) < 0;
	return (n);
}

/* The names (comma-separated into ${out}) of the tunnels of ${b} that
 * serve a different certificate than the tunnel of that name in ${a} (an
 * index): all of them, however many (node data: one per peer). */
static void
certs_changed(const struct tindex *a, const struct pp_config *b,
              struct pp_sb *out)
{
	for (size_t i = 0; i < b->ntunnels; i++) {
		const struct pp_tunnel_conf *nt = &b->tunnels[i], *ot;
		long j = find_name(a, nt->name);
		X509 *x, *y;

		if (j < 0)
			continue;
		ot = &a->c->tunnels[j];
		if (ot->ctx == NULL || nt->ctx == NULL)
			continue;
		x = pp_tls_ctx_leaf(ot->ctx);
		y = pp_tls_ctx_leaf(nt->ctx);
		if (x != NULL && y != NULL && X509_cmp(x, y) != 0)
			pp_sb_printf(out, "%s%s", out->len ? "," : "",
			             nt->name);
	}
}

/* Wait a moment for every worker to take the last swap (a worker takes
 * it on its next loop turn; this thread serves nothing but signals and
 * the admin endpoint, so it may block that long).  1 if they all did. */
static int
swaps_taken(struct pp_runtime *rt)
{
	const struct timespec tick = {0, 1000000};

	for (int waited = 0; waited < 200; waited++) {
		int pending = 0;
		for (int i = 0; i < rt->nworkers; i++)
			pending |= pp_worker_swap_pending(&rt->workers[i]);
		if (!pending)
			return (1);
		nanosleep(&tick, NULL);
	}
	return (0);
}

/* Read the configuration again and swap it in.  Return 0 if it was,
 * 1 if it will be retried shortly (a worker has not taken the last one
 * yet), -1 if it is invalid (logged; the old one keeps serving). */
static int
reload(struct pp_runtime *rt, const char *why)
{
	struct pp_problems p = {0};
	struct tindex cur = {0}, nxt = {0};
	struct pp_config *next;
	struct pp_logline l;
	char err[1024]; /* reload_listeners' "listen <addr>: <why>" fits */
	struct pp_sb changed = {0};
	size_t added, removed, nt;
	struct pp_swap **swaps;
	int *fds;

	if (rt->draining || rt->reload == NULL) {
		set_last_error(rt,
		               rt->draining ? "draining" : "nothing to reload");
		return (-1);
	}
	if (!swaps_taken(rt)) {
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
	pp_problems_log_warnings(&p);
	pp_problems_free(&p);
	if (pp_config_workers(next) != rt->nworkers)
		pp_log_msg(PP_LOG_WARN, "reload_partial",
		           "the worker count changes only with a restart");
	if (tindex_build(&cur, rt->conf) != 0 ||
	    tindex_build(&nxt, next) != 0) {
		reload_failed(rt, why, NULL, "out of memory");
		goto fail;
	}
	if ((fds = reload_listeners(rt, next, &cur, err, sizeof(err))) ==
	    NULL) {
		reload_failed(rt, why, NULL, err);
		goto fail;
	}
	nt = next->ntunnels;
	/* Every worker's swap before any is sent: all move on, or none. */
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
	if ((swaps = calloc((size_t)rt->nworkers, sizeof(*swaps))) != NULL)
		for (int i = 0; i < rt->nworkers; i++)
			if ((swaps[i] = pp_swap_new(
			         next, &fds[(size_t)i * nt])) == NULL)
				break;
	if (swaps == NULL || swaps[rt->nworkers - 1] == NULL) {
		for (int i = 0; swaps != NULL && i < rt->nworkers; i++)
			pp_swap_drop(swaps[i]);
		free(swaps);
		close_new_listeners(rt, next, fds, nt, &cur);
		free(fds);
		reload_failed(rt, why, NULL, "out of memory");
		goto fail;
	}
	for (int i = 0; i < rt->nworkers; i++)
		pp_worker_swap(&rt->workers[i], swaps[i]);
	free(swaps);
	unlink_dropped(rt->conf, &nxt);
	added = names_missing(next, &cur);
	removed = names_missing(rt->conf, &nxt);
	certs_changed(&cur, next, &changed);
	tindex_free(&cur);
	tindex_free(&nxt);
	pp_log_configure(next->log_level, next->log_json);
	pp_log_begin(&l,
	             strcmp(why, "rescan") == 0 && added + removed == 0
	                 ? PP_LOG_DEBUG
	                 : PP_LOG_INFO,
	             "reloaded");
	pp_log_str(&l, "trigger", why);
	pp_log_u64(&l, "tunnels", nt);
	pp_log_u64(&l, "added", added);
	pp_log_u64(&l, "removed", removed);
	if (changed.len > 0)
		pp_log_str(&l, "new_certificates", changed.buf);
	pp_log_end(&l);
	pp_sb_free(&changed);
	rt->reloads_ok++;
	set_last_error(rt, NULL);
	free(rt->fds);
	rt->fds = fds;
	pp_config_unref(rt->conf);
	rt->conf = next;
	rt->trim.reloaded = 1;
	watch_update(rt);
	return (0);
fail:
	tindex_free(&cur);
	tindex_free(&nxt);
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
		pp_log_begin_always(&l, PP_LOG_INFO, "listening");
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

	fds =
	    calloc((size_t)rt.nworkers * (conf->ntunnels ? conf->ntunnels : 1),
	           sizeof(int));
	rt.workers = calloc((size_t)rt.nworkers, sizeof(*rt.workers));
	if (fds == NULL || rt.workers == NULL)
		goto done;
	if (open_listeners(&rt, fds) != 0)
		goto done;
	rt.fds = fds;
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

		if (pp_worker_init(&rt.workers[i], i, &rt, conf, mine) == 0 &&
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
		log_listening(&rt);
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
	unlink_unix_listeners(rt.conf);
	if (rc == 0)
		pp_log_msg(PP_LOG_INFO, "stopped", "all tunnels closed");
done:
	if (rt.fds != NULL)
		free(rt.fds);
	else
		free(fds);
	free(rt.workers);
	free(rt.last_error);
	pp_config_unref(rt.conf);
	return (rc);
}
