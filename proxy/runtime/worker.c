#include "runtime/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tunnel/tunnel.h"
#include "util/log.h"

/* Connections accepted per readiness event before serving other work. */
#define ACCEPT_BATCH 64
/* Spare I/O buffers a worker keeps (PP_BUF_SIZE each: 2 MiB). */
#define POOL_SPARE 64
/* Client TLS sessions a worker keeps: one per (tunnel, target address). */
#define SESSION_SLOTS 256
/* Back-off while the process is out of file descriptors. */
#define EMFILE_PAUSE_MS 100

static void on_accept(uv_poll_t *h, int status, int events);

static void
on_pause_done(uv_timer_t *h)
{
	struct pp_listener *l = h->data;

	if (l->w->listening)
		uv_poll_start(&l->poll, UV_READABLE, on_accept);
}

static void
on_accept(uv_poll_t *h, int status, int events)
{
	struct pp_listener *l = h->data;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	(void)events;
	if (status < 0) {
		pp_log_msg(PP_LOG_ERROR, "accept_failed", "tunnel %s: %s",
		           l->tc->name, uv_strerror(status));
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
		             SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (len == 0 || l->is_unix) {
				/* unnamed unix peers report no address */
				ss.ss_family = AF_UNIX;
				len = (socklen_t)sizeof(sa_family_t);
			}
			pp_tunnels_start(l->w->tunnels, l->w->conf, l->tc, fd,
			                 (struct sockaddr *)&ss, len);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			pp_log_msg(PP_LOG_ERROR, "accept_failed",
			           "tunnel %s: %s; pausing accepts",
			           l->tc->name, strerror(errno));
			uv_poll_stop(&l->poll);
			uv_timer_start(&l->pause, on_pause_done,
			               EMFILE_PAUSE_MS, 0);
			return;
		default:
			pp_log_msg(PP_LOG_ERROR, "accept_failed",
			           "tunnel %s: %s", l->tc->name,
			           strerror(errno));
			return;
		}
	}
}

static void
maybe_finish(struct pp_worker *w)
{
	if (!w->stopping || pp_tunnels_count(w->tunnels) > 0 || w->listening)
		return;
	if (!uv_is_closing((uv_handle_t *)&w->wake)) {
		uv_close((uv_handle_t *)&w->wake, NULL);
		uv_close((uv_handle_t *)&w->resume, NULL);
	}
}

/* A listener has two handles; the second close frees it and its fd. */
static void
on_listener_closed(uv_handle_t *h)
{
	struct pp_listener *l = h->data;

	if (--l->handles > 0)
		return;
	close(l->fd);
	free(l);
}

static void
listener_close(struct pp_listener *l)
{
	uv_close((uv_handle_t *)&l->poll, on_listener_closed);
	uv_close((uv_handle_t *)&l->pause, on_listener_closed);
}

/* A listener of tunnel ${tc} on ${fd} (taken over), or NULL. */
static struct pp_listener *
listener_new(struct pp_worker *w, const struct pp_tunnel_conf *tc, int fd)
{
	struct pp_listener *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return (NULL);
	if (uv_poll_init_socket(&w->loop, &l->poll, fd) != 0) {
		free(l);
		return (NULL);
	}
	l->fd = fd;
	l->w = w;
	l->tc = tc;
	l->is_unix = tc->listen.kind == PP_ADDR_UNIX;
	l->poll.data = l;
	uv_timer_init(&w->loop, &l->pause);
	l->pause.data = l;
	l->handles = 2;
	return (l);
}

static void
close_listeners(struct pp_worker *w)
{
	if (!w->listening)
		return;
	w->listening = 0;
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_close(w->listeners[i]);
	w->nlisteners = 0;
}

/* Serve the configuration of ${s}: listeners whose descriptor carries over
 * keep running for their new tunnel; others are closed or opened.  Open
 * tunnels keep the snapshot they started with. */
static void
apply_swap(struct pp_worker *w, struct pp_swap *s)
{
	struct pp_listener **next;
	size_t n = 0;

	if (w->stopping ||
	    /* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
	    (next = calloc(s->conf->ntunnels + 1, sizeof(*next))) == NULL) {
		pp_swap_free(s, w->listeners, w->nlisteners);
		return;
	}
	for (size_t i = 0; i < s->conf->ntunnels; i++) {
		const struct pp_tunnel_conf *tc = &s->conf->tunnels[i];
		struct pp_listener *l = NULL;

		if (s->fds[i] < 0)
			continue;
		for (size_t j = 0; j < w->nlisteners; j++) {
			if (w->listeners[j] &&
			    w->listeners[j]->fd == s->fds[i]) {
				l = w->listeners[j];
				w->listeners[j] = NULL;
				l->tc = tc;
			}
		}
		if (l == NULL && (l = listener_new(w, tc, s->fds[i])) != NULL)
			uv_poll_start(&l->poll, UV_READABLE, on_accept);
		if (l != NULL)
			next[n++] = l;
		else
			close(s->fds[i]);
	}
	for (size_t j = 0; j < w->nlisteners; j++) {
		if (w->listeners[j] != NULL)
			listener_close(w->listeners[j]);
	}
	free(w->listeners);
	w->listeners = next;
	w->nlisteners = n;
	pp_tunnels_recheck_all(w->tunnels, s->conf);
	pp_config_unref(w->conf);
	w->conf = s->conf; /* the swap's reference */
	free(s->fds);
	free(s);
}

struct pp_swap *
pp_swap_new(struct pp_config *conf, const int *fds)
{
	size_t n = conf->ntunnels;
	struct pp_swap *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (NULL);
	if ((s->fds = malloc((n ? n : 1) * sizeof(int))) == NULL) {
		free(s);
		return (NULL);
	}
	memcpy(s->fds, fds, n * sizeof(int));
	s->conf = pp_config_ref(conf);
	return (s);
}

void
pp_swap_drop(struct pp_swap *s)
{
	if (s == NULL)
		return;
	pp_config_unref(s->conf);
	free(s->fds);
	free(s);
}

void
pp_swap_free(struct pp_swap *s, struct pp_listener **keep, size_t nkeep)
{
	if (s == NULL)
		return;
	/* Close the descriptors no current listener owns. */
	for (size_t i = 0; i < s->conf->ntunnels; i++) {
		int owned = 0;
		for (size_t j = 0; j < nkeep; j++)
			owned |= keep[j] != NULL && keep[j]->fd == s->fds[i];
		if (s->fds[i] >= 0 && !owned)
			close(s->fds[i]);
	}
	pp_config_unref(s->conf);
	free(s->fds);
	free(s);
}

void
pp_worker_swap(struct pp_worker *w, struct pp_swap *s)
{
	/* The runtime sends a swap only once the previous one was taken
	 * (pp_worker_swap_pending), so nothing is overwritten here. */
	atomic_store(&w->pending_swap, s);
	uv_async_send(&w->wake);
}

int
pp_worker_swap_pending(struct pp_worker *w)
{
	return (atomic_load(&w->pending_swap) != NULL);
}

static void
on_wake(uv_async_t *h)
{
	struct pp_worker *w = h->data;
	struct pp_swap *s = atomic_exchange(&w->pending_swap, NULL);

	/* A swap first: a stop that came with it then closes its listeners. */
	if (s != NULL)
		apply_swap(w, s);
	if (atomic_load(&w->cmd_stop_accepting)) {
		close_listeners(w);
		w->stopping = 1;
	}
	if (atomic_exchange(&w->cmd_abort, 0))
		pp_tunnels_abort_all(w->tunnels);
	maybe_finish(w);
}

/* ---- the worker as the host of its tunnels ---- */

static void
on_resume(uv_idle_t *h)
{
	struct pp_worker *w = h->data;

	if (!pp_tunnels_run_deferred(w->tunnels))
		uv_idle_stop(&w->resume);
}

static void
resume_soon(void *arg)
{
	struct pp_worker *w = arg;

	uv_idle_start(&w->resume, on_resume);
}

/* A tunnel is gone: a stopping worker ends once its last one is. */
static void
tunnel_freed(void *arg)
{
	maybe_finish(arg);
}

/* A connection id unique in the process and unlikely to repeat across
 * restarts: the worker's sequence (seeded from the clock) and its id,
 * mixed. */
static uint64_t
next_conn_id(void *arg)
{
	struct pp_worker *w = arg;
	uint64_t z = ((uint64_t)w->id << 56) + ++w->conn_seq;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* Free what pp_worker_init made of ${w} on a loop that never ran: the
 * listeners (closing their descriptors), the handles, the loop. */
static void
worker_unmake(struct pp_worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_close(w->listeners[i]);
	w->nlisteners = 0;
	w->listening = 0;
	uv_close((uv_handle_t *)&w->wake, NULL);
	uv_close((uv_handle_t *)&w->resume, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT); /* the close callbacks */
	uv_loop_close(&w->loop);
	pp_tunnels_free(w->tunnels);
	pp_bufpool_destroy(&w->pool);
	pp_session_cache_free(w->sessions);
	free(w->listeners);
	pp_config_unref(w->conf);
	memset(w, 0, sizeof(*w));
}

int
pp_worker_init(struct pp_worker *w, int id, struct pp_config *conf,
               const int *fds, void (*on_exit)(void *arg), void *arg)
{
	struct pp_tunnel_host host = {.loop = &w->loop,
	                              .pool = &w->pool,
	                              .stats = &w->stats,
	                              .worker = id,
	                              .next_id = next_conn_id,
	                              .resume_soon = resume_soon,
	                              .on_freed = tunnel_freed,
	                              .arg = w};
	size_t i = 0;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->on_exit = on_exit;
	w->exit_arg = arg;
	w->conf = pp_config_ref(conf);
	w->conn_seq = uv_hrtime() << 16;
	if (uv_loop_init(&w->loop) != 0) {
		pp_config_unref(w->conf);
		w->conf = NULL;
		goto err;
	}
	uv_async_init(&w->loop, &w->wake, on_wake);
	w->wake.data = w;
	uv_idle_init(&w->loop, &w->resume);
	w->resume.data = w;
	if (pp_bufpool_init(&w->pool, POOL_SPARE) != 0 ||
	    (host.sessions = w->sessions =
	         pp_session_cache_new(SESSION_SLOTS)) == NULL ||
	    (w->tunnels = pp_tunnels_new(&host)) == NULL ||
	    (w->listeners =
	         /* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
	     calloc(conf->ntunnels + 1, sizeof(*w->listeners))) == NULL)
		goto err1;
	for (; i < conf->ntunnels; i++) {
		struct pp_listener *l;

		if (fds[i] < 0) /* a tunnel without a listener of its own */
			continue;
		if ((l = listener_new(w, &conf->tunnels[i], fds[i])) == NULL)
			goto err1;
		w->listeners[w->nlisteners++] = l; /* it owns fds[i] now */
	}
	w->listening = 1;
	return (0);

err1:
	worker_unmake(w);
err:
	/* The descriptors no listener took over. */
	for (; i < conf->ntunnels; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pp_log_msg(PP_LOG_ERROR, "worker_failed", "worker %d: cannot set up",
	           id);
	return (-1);
}

void
pp_worker_discard(struct pp_worker *w)
{
	worker_unmake(w);
}

static void
worker_main(void *arg)
{
	struct pp_worker *w = arg;

	for (size_t i = 0; i < w->nlisteners; i++)
		uv_poll_start(&w->listeners[i]->poll, UV_READABLE, on_accept);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	w->on_exit(w->exit_arg);
}

int
pp_worker_start(struct pp_worker *w)
{
	return (uv_thread_create(&w->thread, worker_main, w) == 0 ? 0 : -1);
}

void
pp_worker_stop_accepting(struct pp_worker *w)
{
	atomic_store(&w->cmd_stop_accepting, 1);
	uv_async_send(&w->wake);
}

void
pp_worker_abort(struct pp_worker *w)
{
	atomic_store(&w->cmd_abort, 1);
	uv_async_send(&w->wake);
}

void
pp_worker_join(struct pp_worker *w)
{
	uv_thread_join(&w->thread);
	uv_loop_close(&w->loop);
	pp_tunnels_free(w->tunnels);
	pp_bufpool_destroy(&w->pool);
	pp_session_cache_free(w->sessions);
	pp_swap_free(atomic_exchange(&w->pending_swap, NULL), NULL, 0);
	free(w->listeners);
	pp_config_unref(w->conf);
}
