/*
 * Tunnels (tunnel/tunnel.h) on a bare libuv loop with a host made here: no
 * worker, no runtime.  An app's client speaks plain bytes over a socketpair
 * to an outbound tunnel (node1), which speaks TLS to an inbound tunnel
 * (node0) reached through a unix socket this suite listens on; the inbound
 * tunnel dials the app, another unix socket of this suite.  Both sets of
 * tunnels run on one loop, each with its own host.  The configuration is a
 * YAML file built from the test PKI, loaded and built as `run` does.
 *
 * Every wait runs the loop until a condition holds, failing the test after
 * WAIT_MS; the loop's own handles (the ends and listeners here, the
 * tunnels' polls and timers) drive everything.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <uv.h>

#include "config/load.h"
#include "support.h"
#include "tls/session_cache.h"
#include "tunnel/tunnel.h"
#include "util/bufpool.h"
#include "util/log.h"

/* The longest wait for a condition: generous for a loaded machine under
 * ASan; a passing run takes a fraction of a second. */
#define WAIT_MS 30000

#define MAX_ENDS 8

/* The loop's host of one set of tunnels. */
struct host {
	struct pp_tunnel_stats stats;
	struct pp_tunnels *ts;
	uv_idle_t idle;  /* runs the deferred tunnels */
	uint64_t ids;    /* the last connection id given */
	int freed;       /* on_freed calls */
	int resumes;     /* resume_soon calls */
	size_t at_freed; /* pp_tunnels_count seen by the last on_freed */
};

/* One end this suite holds: the app's client, or the app. */
struct end {
	int fd;
	uv_poll_t poll;
	const uint8_t *out; /* to send, then shut down if asked */
	size_t outlen, outoff;
	int shut_when_sent, shut;
	uint8_t *in; /* everything received */
	size_t inlen, incap;
	int eof;     /* read the end of the stream */
	int err;     /* errno of a failed read or write */
	int closing; /* the handle is closing */
};

/* A listening unix socket of this suite: its connections go to a tunnel
 * configuration's set (an inbound tunnel) or become app ends. */
struct listener {
	int fd;
	uv_poll_t poll;
	struct host *host;               /* NULL: the app */
	const struct pp_tunnel_conf *tc; /* the inbound tunnel, with host */
};

static struct t_node nodes[3];
static char dir[512];
static struct pp_config *conf;
static uv_loop_t loop;
static uv_timer_t guard;
static struct pp_bufpool pool;
static struct pp_session_cache *sessions;
static struct host out_host, in_host; /* node1's and node0's sets */
static struct listener in_l, strict_l, app_l;
static struct end clients[MAX_ENDS], apps[MAX_ENDS];
static int nclients, napps;
static struct t_capture cap;
static int capturing;
static char *logs; /* what the tunnels logged, once captured */

/* ---- the host ---- */

static uint64_t
next_id(void *arg)
{
	struct host *h = arg;

	/* Ids of the two sets differ in their top byte: a log line's conn
	 * shows which host gave it. */
	return (((uint64_t)(h == &in_host ? 0xa0 : 0xb0) << 56) + ++h->ids);
}

static void
on_idle(uv_idle_t *i)
{
	struct host *h = i->data;

	if (!pp_tunnels_run_deferred(h->ts))
		uv_idle_stop(&h->idle);
}

static void
resume_soon(void *arg)
{
	struct host *h = arg;

	h->resumes++;
	uv_idle_start(&h->idle, on_idle);
}

static void
on_freed(void *arg)
{
	struct host *h = arg;

	h->freed++;
	h->at_freed = pp_tunnels_count(h->ts);
}

static void
host_init(struct host *h, int worker)
{
	struct pp_tunnel_host th = {.loop = &loop,
	                            .pool = &pool,
	                            .sessions = sessions,
	                            .stats = &h->stats,
	                            .worker = worker,
	                            .next_id = next_id,
	                            .resume_soon = resume_soon,
	                            .on_freed = on_freed,
	                            .arg = h};

	memset(h, 0, sizeof(*h));
	cr_assert_not_null(h->ts = pp_tunnels_new(&th));
	cr_assert_eq(uv_idle_init(&loop, &h->idle), 0);
	h->idle.data = h;
}

/* ---- the loop ---- */

static void
on_guard(uv_timer_t *t)
{
	(void)t; /* only wakes the loop up to check the deadline */
}

/* Run the loop until ${cond}(${arg}) holds; fail naming ${what} if it does
 * not within WAIT_MS. */
static void
run_until(int (*cond)(void *), void *arg, const char *what)
{
	uint64_t start;

	uv_update_time(&loop);
	start = uv_now(&loop);
	while (!cond(arg)) {
		cr_assert_lt(uv_now(&loop) - start, WAIT_MS,
		             "timed out waiting for %s", what);
		uv_run(&loop, UV_RUN_ONCE);
	}
}

/* ---- the ends ---- */

static void
nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	cr_assert(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

static void on_end(uv_poll_t *p, int status, int events);

/* Watch what ${e} waits for: bytes until the end of the stream, room
 * while it has bytes (or a shutdown) to send. */
static void
end_update(struct end *e)
{
	int ev = 0;

	if (e->closing)
		return;
	if (!e->eof && !e->err)
		ev |= UV_READABLE;
	if (!e->err &&
	    (e->outoff < e->outlen || (e->shut_when_sent && !e->shut)))
		ev |= UV_WRITABLE;
	if (ev != 0)
		uv_poll_start(&e->poll, ev, on_end);
	else
		uv_poll_stop(&e->poll);
}

static void
end_read(struct end *e)
{
	for (;;) {
		ssize_t n;

		if (e->incap - e->inlen < 65536) {
			e->incap = e->incap * 2 + 65536;
			cr_assert_not_null(e->in = realloc(e->in, e->incap));
		}
		n = read(e->fd, e->in + e->inlen, e->incap - e->inlen);
		if (n > 0) {
			e->inlen += (size_t)n;
			continue;
		}
		if (n == 0)
			e->eof = 1;
		else if (errno != EAGAIN && errno != EINTR)
			e->err = errno;
		return;
	}
}

static void
end_write(struct end *e)
{
	while (e->outoff < e->outlen) {
		ssize_t n = send(e->fd, e->out + e->outoff,
		                 e->outlen - e->outoff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				e->err = errno;
			return;
		}
		e->outoff += (size_t)n;
	}
	if (e->shut_when_sent && !e->shut) {
		cr_assert_eq(shutdown(e->fd, SHUT_WR), 0);
		e->shut = 1;
	}
}

static void
on_end(uv_poll_t *p, int status, int events)
{
	struct end *e = p->data;

	if (status < 0) {
		e->err = -status;
	} else {
		if (events & UV_READABLE)
			end_read(e);
		if (events & UV_WRITABLE)
			end_write(e);
	}
	end_update(e);
}

static void
end_open(struct end *e, int fd)
{
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	nonblocking(fd);
	cr_assert_eq(uv_poll_init_socket(&loop, &e->poll, fd), 0);
	e->poll.data = e;
	end_update(e);
}

/* Send ${len} bytes of ${data} from ${e}, then end its stream if ${shut}. */
static void
end_send(struct end *e, const void *data, size_t len, int shut)
{
	e->out = data;
	e->outlen = len;
	e->outoff = 0;
	e->shut_when_sent = shut;
	end_write(e);
	end_update(e);
}

static void
on_end_closed(uv_handle_t *h)
{
	struct end *e = h->data;

	close(e->fd);
	e->fd = -1;
	free(e->in);
	e->in = NULL;
}

static void
end_close(struct end *e)
{
	if (e->closing || e->fd < 0)
		return;
	e->closing = 1;
	uv_close((uv_handle_t *)&e->poll, on_end_closed);
}

static const struct pp_tunnel_conf *
tunnel_conf(const char *name)
{
	for (size_t i = 0; i < conf->ntunnels; i++)
		if (strcmp(conf->tunnels[i].name, name) == 0)
			return (&conf->tunnels[i]);
	cr_assert_fail("no tunnel %s", name);
	return (NULL);
}

/* A new client of the outbound tunnel ${tunnel}: the tunnel gets one end of a
 * socketpair as its accepted socket, this suite the other. */
static struct end *
client_start_type(const char *tunnel, int type)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const struct pp_tunnel_conf *tc = tunnel_conf(tunnel);
	int fd[2];

	cr_assert_lt(nclients, MAX_ENDS);
	cr_assert_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fd), 0);
	nonblocking(fd[0]);
	/* An unnamed peer, as accept(2) reports one. */
	pp_tunnels_start(out_host.ts, conf, tc, fd[0], (struct sockaddr *)&sun,
	                 (socklen_t)sizeof(sa_family_t));
	end_open(&clients[nclients], fd[1]);
	return (&clients[nclients++]);
}

static struct end *
client_start(const char *tunnel)
{
	return (client_start_type(tunnel, SOCK_STREAM));
}

/* ---- the listeners ---- */

static void
on_listener(uv_poll_t *p, int status, int events)
{
	struct listener *l = p->data;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	(void)events;
	cr_assert_eq(status, 0, "listener: %s", uv_strerror(status));
	while ((fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
	                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (l->host != NULL) {
			ss.ss_family = AF_UNIX;
			pp_tunnels_start(l->host->ts, conf, l->tc, fd,
			                 (struct sockaddr *)&ss,
			                 (socklen_t)sizeof(sa_family_t));
		} else {
			cr_assert_lt(napps, MAX_ENDS);
			end_open(&apps[napps++], fd);
		}
		len = sizeof(ss);
	}
	cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "accept: %s",
	          strerror(errno));
}

static void
listener_open(struct listener *l, const char *name, struct host *h,
              const char *tunnel)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char path[600];

	memset(l, 0, sizeof(*l));
	l->host = h;
	l->tc = tunnel != NULL ? tunnel_conf(tunnel) : NULL;
	t_path(path, sizeof(path), dir, name);
	cr_assert_lt(strlen(path), sizeof(sun.sun_path), "path too long");
	memcpy(sun.sun_path, path, strlen(path) + 1);
	cr_assert_geq(
	    l->fd =
	        socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
	    0);
	cr_assert_eq(bind(l->fd, (struct sockaddr *)&sun, sizeof(sun)), 0,
	             "bind %s: %s", sun.sun_path, strerror(errno));
	cr_assert_eq(listen(l->fd, 16), 0);
	cr_assert_eq(uv_poll_init_socket(&loop, &l->poll, l->fd), 0);
	l->poll.data = l;
	cr_assert_eq(uv_poll_start(&l->poll, UV_READABLE, on_listener), 0);
}

static void
on_listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	close(l->fd);
}

/* ---- the fixture ---- */

static void
write_config(const char *path)
{
	const char *n0 = nodes[0].dir, *n1 = nodes[1].dir;
	const char *id0 = nodes[0].id, *id2 = nodes[2].id;
	FILE *f = fopen(path, "w");
	int n;

	/* The tunnels' own listen addresses are never bound: this suite
	 * hands them their sockets. */
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	n = fprintf(
	    f,
	    "admin: off\n"
	    "inbound:\n"
	    "  - {name: in, listen: unix:%s/unused-in.sock,\n"
	    "     ca: %s/root-ca.crt, cert: %s/server.crt, key: "
	    "%s/server.key,\n"
	    "     target: unix:%s/app.sock}\n"
	    "  - {name: in-strict, listen: unix:%s/unused-strict.sock,\n"
	    "     ca: %s/root-ca.crt, cert: %s/server.crt, key: "
	    "%s/server.key,\n"
	    "     allow_peers: [%s], target: unix:%s/app.sock}\n"
	    "outbound:\n"
	    "  - {name: out, listen: unix:%s/unused-out.sock,\n"
	    "     targets: [unix:%s/in.sock],\n"
	    "     ca: %s/peers/%s/root-ca.crt, cert: %s/server.crt,\n"
	    "     chain: %s/peers/%s/sub-ca.crt, key: %s/server.key,\n"
	    "     peer: %s}\n"
	    "  - {name: out-strict, listen: unix:%s/unused-out-strict.sock,\n"
	    "     targets: [unix:%s/strict.sock],\n"
	    "     ca: %s/peers/%s/root-ca.crt, cert: %s/server.crt,\n"
	    "     chain: %s/peers/%s/sub-ca.crt, key: %s/server.key,\n"
	    "     peer: %s}\n"
	    "  - {name: out-wrong, listen: unix:%s/unused-out-wrong.sock,\n"
	    "     targets: [unix:%s/in.sock],\n"
	    "     ca: %s/peers/%s/root-ca.crt, cert: %s/server.crt,\n"
	    "     chain: %s/peers/%s/sub-ca.crt, key: %s/server.key,\n"
	    "     peer: %s}\n",
	    dir, n0, n0, n0, dir, dir, n0, n0, n0, id2, dir, dir, dir, n1, id0,
	    n1, n1, id0, n1, id0, dir, dir, n1, id0, n1, n1, id0, n1, id0, dir,
	    dir, n1, id0, n1, n1, id0, n1, id2);
	cr_assert(n > 0 && fclose(f) == 0, "cannot write %s", path);
}

static void
setup(void)
{
	struct pp_problems p = {0};
	char path[600];

	t_nodes(nodes, 3);
	t_tmpdir(dir, sizeof(dir));
	write_config(t_path(path, sizeof(path), dir, "peerproxy.yaml"));
	conf = pp_config_load(path, &p);
	cr_assert_not_null(conf, "load: %s", p.n ? p.items[0] : "?");
	cr_assert_eq(pp_config_build(conf, &p), 0, "build: %s",
	             p.n ? p.items[0] : "?");
	pp_problems_free(&p);

	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(pp_bufpool_init(&pool, 8), 0);
	cr_assert_not_null(sessions = pp_session_cache_new(16));
	host_init(&out_host, 1);
	host_init(&in_host, 0);
	listener_open(&in_l, "in.sock", &in_host, "in");
	listener_open(&strict_l, "strict.sock", &in_host, "in-strict");
	listener_open(&app_l, "app.sock", NULL, NULL);
	uv_timer_init(&loop, &guard);
	uv_timer_start(&guard, on_guard, 50, 50);
	nclients = napps = 0;

	pp_log_configure(PP_LOG_INFO, 1);
	t_capture_begin(&cap);
	capturing = 1;
	logs = NULL;
}

static int
sets_empty(void *arg)
{
	(void)arg;
	return (pp_tunnels_count(out_host.ts) == 0 &&
	        pp_tunnels_count(in_host.ts) == 0);
}

/* Stop capturing the log into ${logs}. */
static void
logs_end(void)
{
	if (!capturing)
		return;
	capturing = 0;
	logs = t_capture_end(&cap);
}

static void
teardown(void)
{
	logs_end();
	/* A test that failed half-way leaves tunnels open: end them. */
	pp_tunnels_abort_all(out_host.ts);
	pp_tunnels_abort_all(in_host.ts);
	for (int i = 0; i < nclients; i++)
		end_close(&clients[i]);
	for (int i = 0; i < napps; i++)
		end_close(&apps[i]);
	uv_close((uv_handle_t *)&in_l.poll, on_listener_closed);
	uv_close((uv_handle_t *)&strict_l.poll, on_listener_closed);
	uv_close((uv_handle_t *)&app_l.poll, on_listener_closed);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_close((uv_handle_t *)&out_host.idle, NULL);
	uv_close((uv_handle_t *)&in_host.idle, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "a handle outlived the test");
	pp_tunnels_free(out_host.ts);
	pp_tunnels_free(in_host.ts);
	cr_assert_eq(pool.in_use, 0, "a buffer outlived its tunnel");
	pp_bufpool_destroy(&pool);
	pp_session_cache_free(sessions);
	pp_config_unref(conf);
	free(logs);
	t_rmtree(dir);
}

TestSuite(tunnel, .init = setup, .fini = teardown);

/* ---- the log ---- */

static int
streq(const char *a, const char *b)
{
	return (a != NULL && strcmp(a, b) == 0);
}

/* The ${nth} (from 0) JSON log line of ${event} for tunnel ${tunnel}, or
 * NULL (tj_free it). */
static struct tj *
log_find(const char *event, const char *tunnel, int nth)
{
	const char *p = logs;

	cr_assert_not_null(logs, "the log is not captured yet");
	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		char err[128];
		struct tj *j = tj_parse(p, len, err, sizeof(err));

		cr_assert_not_null(j, "log line %.*s: %s", (int)len, p, err);
		if (streq(tj_str(j, "event"), event) &&
		    streq(tj_str(j, "tunnel"), tunnel) && nth-- == 0)
			return (j);
		tj_free(j);
		p = nl != NULL ? nl + 1 : NULL;
	}
	return (NULL);
}

/* How many lines of ${event} for ${tunnel} the log holds. */
static int
log_count(const char *event, const char *tunnel)
{
	int n = 0;
	struct tj *j;

	while ((j = log_find(event, tunnel, n)) != NULL) {
		tj_free(j);
		n++;
	}
	return (n);
}

/* Field ${key} of ${j} must be ${want}. */
static void
expect_field(const struct tj *j, const char *key, const char *want)
{
	const char *v = tj_str(j, key);

	cr_assert(v != NULL && strcmp(v, want) == 0,
	          "log field %s is %s, want %s (log:\n%s)", key,
	          v != NULL ? v : "(none)", want, logs);
}

/* The number in field ${key} of ${j} (logged as a string or a number). */
static unsigned long long
field_u64(const struct tj *j, const char *key)
{
	const struct tj *v = tj_get(j, key);

	cr_assert_not_null(v, "no log field %s", key);
	if (v->type == TJ_NUMBER)
		return ((unsigned long long)v->number);
	cr_assert_eq(v->type, TJ_STRING);
	return (strtoull(v->string, NULL, 10));
}

/* ---- conditions ---- */

static int
end_done(void *arg)
{
	struct end *e = arg;

	return (e->eof || e->err);
}

/* An end and how many bytes it must have received. */
struct got {
	struct end *e;
	size_t n;
};

static int
has_bytes(void *arg)
{
	struct got *g = arg;

	return (g->e->inlen >= g->n || g->e->eof || g->e->err);
}

static int
apps_connected(void *arg)
{
	return (napps >= *(int *)arg);
}

/* ${len} bytes of a pattern that differs for each ${seed}. */
static uint8_t *
pattern(size_t len, unsigned seed)
{
	uint8_t *b = malloc(len);

	cr_assert_not_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)((i * 131 + seed * 17 + (i >> 12)) & 0xff);
	return (b);
}

/* The app end whose first bytes are ${want}'s. */
static struct end *
app_with(const uint8_t *want)
{
	for (int i = 0; i < napps; i++)
		if (apps[i].inlen >= 64 && memcmp(apps[i].in, want, 64) == 0)
			return (&apps[i]);
	cr_assert_fail("no app got the client's first bytes");
	return (NULL);
}

/* ---- the tests ---- */

/* Three clients at once, each sending more than the pipes hold, then
 * ending its stream: each app gets exactly its client's bytes and the
 * end of the stream (through close_notify), answers after that (the
 * other direction is still open), and its client gets the answer and the
 * end.  Both tunnels close "done"; each host is told once per tunnel. */
Test(tunnel, bytes_both_ways_and_half_close_through_tls)
{
	enum { N = 3 };
	const size_t up = 3 * 1024 * 1024 + 1234, down = 1024 * 1024 + 77;
	uint8_t *req[N], *resp[N];
	struct end *c[N], *a[N];
	int n = N;

	for (int i = 0; i < N; i++) {
		req[i] = pattern(up, (unsigned)i);
		resp[i] = pattern(down, 100 + (unsigned)i);
		c[i] = client_start("out");
	}
	cr_assert_eq(pp_tunnels_count(out_host.ts), N);
	/* Every inbound tunnel is open and has dialed the app before any
	 * byte flows: the peak of each set is N. */
	run_until(apps_connected, &n, "the apps' connections");
	for (int i = 0; i < N; i++)
		end_send(c[i], req[i], up, 1);
	for (int i = 0; i < N; i++)
		run_until(end_done, &apps[i], "the end of a client's stream");
	for (int i = 0; i < N; i++) {
		a[i] = app_with(req[i]);
		cr_assert_eq(a[i]->err, 0, "app: %s", strerror(a[i]->err));
		cr_assert_eq(a[i]->inlen, up);
		cr_assert(memcmp(a[i]->in, req[i], up) == 0,
		          "the app got other bytes than its client sent");
		cr_assert_eq(c[i]->inlen, 0, "nothing came back yet");
		cr_assert_not(c[i]->eof, "the client's stream is still open");
	}
	cr_assert_eq(pp_tunnels_count(out_host.ts), N, "half-closed, open");
	cr_assert_eq(pp_tunnels_count(in_host.ts), N);
	for (int i = 0; i < N; i++)
		end_send(a[i], resp[i], down, 1);
	for (int i = 0; i < N; i++) {
		run_until(end_done, c[i], "the end of an app's stream");
		cr_assert_eq(c[i]->err, 0, "client: %s", strerror(c[i]->err));
		cr_assert_eq(c[i]->inlen, down);
		cr_assert(memcmp(c[i]->in, resp[i], down) == 0,
		          "the client got other bytes than its app sent");
	}
	run_until(sets_empty, NULL, "both sets to empty");

	cr_assert_eq(out_host.freed, N);
	cr_assert_eq(in_host.freed, N);
	cr_assert_eq(out_host.at_freed, 0);
	cr_assert_eq(in_host.at_freed, 0);
	cr_assert_eq(out_host.ids, N);
	cr_assert_eq(in_host.ids, N);
	cr_assert_eq(atomic_load(&out_host.stats.active), 0);
	cr_assert_eq(atomic_load(&in_host.stats.active), 0);
	cr_assert_eq(atomic_load(&out_host.stats.peak), N);
	cr_assert_eq(atomic_load(&in_host.stats.peak), N);

	logs_end();
	cr_assert_eq(log_count("tunnel_closed", "out"), N, "%s", logs);
	cr_assert_eq(log_count("tunnel_closed", "in"), N, "%s", logs);
	for (int i = 0; i < N; i++) {
		struct tj *o = log_find("tunnel_closed", "out", i);
		struct tj *in = log_find("tunnel_closed", "in", i);

		expect_field(o, "reason", "done");
		expect_field(in, "reason", "done");
		expect_field(o, "peer", nodes[0].id);
		expect_field(in, "peer", nodes[1].id);
		cr_assert_eq(field_u64(o, "bytes_up"), up);
		cr_assert_eq(field_u64(o, "bytes_down"), down);
		cr_assert_eq(field_u64(in, "bytes_up"), up);
		cr_assert_eq(field_u64(in, "bytes_down"), down);
		cr_assert_eq(field_u64(o, "worker"), 1, "the host's number");
		cr_assert_eq(field_u64(in, "worker"), 0);
		/* The conn ids are the hosts' own. */
		cr_assert_eq(strncmp(tj_str(o, "conn"), "b0", 2), 0);
		cr_assert_eq(strncmp(tj_str(in, "conn"), "a0", 2), 0);
		tj_free(o);
		tj_free(in);
	}
	cr_assert_eq(log_count("handshake_refused", "out"), 0, "%s", logs);
	cr_assert_eq(log_count("handshake_refused", "in"), 0, "%s", logs);
	for (int i = 0; i < N; i++) {
		free(req[i]);
		free(resp[i]);
	}
}

/* A tunnel that uses up its share of a loop turn asks its host to resume
 * it soon, and carries on when the host runs the deferred tunnels.  The
 * client's socket keeps message boundaries (SOCK_SEQPACKET), so each read
 * takes one message: the messages queued while the tunnel shakes hands
 * are more reads than one turn's share (PP_PUMP_BUDGET, 16). */
Test(tunnel, a_busy_tunnel_is_resumed_through_its_host)
{
	enum { MSGS = 64, LEN = 100 };
	struct end *c = client_start_type("out", SOCK_SEQPACKET);
	uint8_t *all = pattern(MSGS * LEN, 7);
	int one = 1;

	for (int i = 0; i < MSGS; i++)
		cr_assert_eq(send(c->fd, all + i * LEN, LEN, MSG_NOSIGNAL), LEN,
		             "send: %s", strerror(errno));
	cr_assert_eq(shutdown(c->fd, SHUT_WR), 0);
	run_until(apps_connected, &one, "the app's connection");
	run_until(end_done, &apps[0], "the client's end of stream");
	cr_assert_eq(apps[0].inlen, MSGS * LEN);
	cr_assert(memcmp(apps[0].in, all, MSGS * LEN) == 0,
	          "the app got other bytes than the client sent");
	cr_assert_geq(out_host.resumes, 1, "the tunnel was never deferred");
	end_send(&apps[0], NULL, 0, 1);
	run_until(sets_empty, NULL, "both sets to empty");
	cr_assert_eq(out_host.freed, 1);
	free(all);
}

/* A second tunnel after a first resumes the TLS session the first one
 * left in the host's session cache.  The app answers before the client
 * ends its stream: BoringSSL drops session tickets that arrive after its
 * side sent close_notify. */
Test(tunnel, a_later_tunnel_resumes_from_the_hosts_session_cache)
{
	static const char hello[] = "hello", bye[] = "bye";
	struct got g;

	for (int i = 0; i < 2; i++) {
		struct end *c = client_start("out");
		int want = i + 1;

		run_until(apps_connected, &want, "the app's connection");
		end_send(c, hello, sizeof(hello) - 1, 0);
		g = (struct got){&apps[i], sizeof(hello) - 1};
		run_until(has_bytes, &g, "the client's bytes");
		end_send(&apps[i], bye, sizeof(bye) - 1, 0);
		g = (struct got){c, sizeof(bye) - 1};
		run_until(has_bytes, &g, "the app's bytes");
		cr_assert(memcmp(c->in, bye, sizeof(bye) - 1) == 0);
		end_send(c, NULL, 0, 1);
		run_until(end_done, &apps[i], "the client's end of stream");
		end_send(&apps[i], NULL, 0, 1);
		run_until(end_done, c, "the app's end of stream");
		cr_assert_eq(apps[i].inlen, sizeof(hello) - 1);
		cr_assert_eq(c->inlen, sizeof(bye) - 1);
		run_until(sets_empty, NULL, "both sets to empty");
	}
	logs_end();
	for (int i = 0; i < 2; i++) {
		struct tj *o = log_find("tunnel_closed", "out", i);
		struct tj *in = log_find("tunnel_closed", "in", i);

		cr_assert(o != NULL && in != NULL, "%s", logs);
		expect_field(o, "reason", "done");
		expect_field(o, "resumed", i == 0 ? "no" : "yes");
		expect_field(in, "resumed", i == 0 ? "no" : "yes");
		tj_free(o);
		tj_free(in);
	}
	cr_assert_eq(out_host.freed, 2);
	cr_assert_eq(in_host.freed, 2);
}

/* refused_before_the_app(name): a client of the outbound tunnel ${name}
 * sends bytes that a refused handshake must never deliver: its client sees
 * the end of the stream with nothing in it, both sets empty, no app is
 * dialed, and each host is told of its one tunnel's end. */
static void
refused_before_the_app(const char *name)
{
	static const char hello[] = "never delivered";
	struct end *c = client_start(name);

	end_send(c, hello, sizeof(hello) - 1, 0);
	run_until(end_done, c, "the client's end of stream");
	cr_assert_eq(c->inlen, 0);
	run_until(sets_empty, NULL, "both sets to empty");
	cr_assert_eq(napps, 0, "no app is dialed");
	cr_assert_eq(out_host.freed, 1);
	cr_assert_eq(in_host.freed, 1);
}

/* The outbound tunnel refuses a server that is not its peer: it logs why,
 * its client sees the end of the stream with nothing in it, no app is
 * dialed, and both hosts are told the tunnels are gone. */
Test(tunnel, an_outbound_refusal_closes_both_tunnels)
{
	struct tj *j;

	refused_before_the_app("out-wrong");
	cr_assert_eq(atomic_load(&out_host.stats.active), 0);
	cr_assert_eq(atomic_load(&in_host.stats.active), 0);

	logs_end();
	cr_assert_not_null(j = log_find("handshake_refused", "out-wrong", 0),
	                   "%s", logs);
	expect_field(j, "reason", "peer_not_allowed");
	cr_assert(t_contains(tj_str(j, "detail"), nodes[2].id),
	          "the detail names the peer it wanted: %s",
	          tj_str(j, "detail"));
	tj_free(j);
	/* The inbound tunnel learns of it from the client's alert. */
	cr_assert_not_null(j = log_find("handshake_refused", "in", 0), "%s",
	                   logs);
	expect_field(j, "reason", "peer_alert");
	tj_free(j);
	cr_assert_eq(log_count("tunnel_closed", "out-wrong"), 0,
	             "a refusal is logged once, as such: %s", logs);
}

/* The inbound tunnel refuses a caller its allow list leaves out, after
 * the caller's (TLS 1.3) handshake has finished: the outbound tunnel
 * learns of it from the alert and closes with that reason; the app is
 * never dialed. */
Test(tunnel, an_inbound_refusal_reaches_the_outbound_tunnel)
{
	struct tj *j;

	refused_before_the_app("out-strict");

	logs_end();
	cr_assert_not_null(j = log_find("handshake_refused", "in-strict", 0),
	                   "%s", logs);
	expect_field(j, "reason", "peer_not_allowed");
	expect_field(j, "claimed_peer", nodes[1].id);
	tj_free(j);
	cr_assert_not_null(j = log_find("tunnel_closed", "out-strict", 0), "%s",
	                   logs);
	expect_field(j, "reason", "peer_alert");
	cr_assert_eq(field_u64(j, "bytes_down"), 0);
	tj_free(j);
}

/* Abort (the drain deadline) closes open tunnels at once with reason
 * "shutdown"; the client and the app see their streams end. */
Test(tunnel, abort_all_closes_open_tunnels)
{
	struct end *c = client_start("out");
	int one = 1;

	run_until(apps_connected, &one, "the app's connection");
	pp_tunnels_abort_all(out_host.ts);
	pp_tunnels_abort_all(in_host.ts);
	run_until(sets_empty, NULL, "both sets to empty");
	run_until(end_done, c, "the client's end of stream");
	run_until(end_done, &apps[0], "the app's end of stream");
	cr_assert_eq(out_host.freed, 1);
	cr_assert_eq(in_host.freed, 1);
	logs_end();
	for (int k = 0; k < 2; k++) {
		struct tj *j = log_find("tunnel_closed", k ? "in" : "out", 0);

		cr_assert_not_null(j, "%s", logs);
		expect_field(j, "reason", "shutdown");
		tj_free(j);
	}
}
