/*
 * Failure paths, with the failures injected: this suite is linked with
 * --wrap for the allocation functions (malloc, calloc, realloc, strdup,
 * strndup) and for a few libuv calls, so every such call peerproxy's code
 * and the statically linked BoringSSL make goes through the wrappers
 * below, which fail on demand.  (libyaml and libuv are shared libraries:
 * their own allocations are not reached.)
 *
 * - Loading and building a configuration fails cleanly at every
 *   allocation: a failure is reported as out of memory, never as a wrong
 *   diagnosis, never as success with a different configuration; nothing
 *   leaks (the ASan build checks every iteration's process).
 * - A worker that cannot be set up or started, and an admin endpoint whose
 *   socket libuv refuses, leave no descriptor open.
 * - A reload short of memory for one worker's swap moves no worker.
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <uv.h>

#include "config/config.h"
#include "config/load.h"
#include "config/nodedata.h"
#include "ops/admin.h"
#include "runtime/runtime.h"
#include "runtime/worker.h"
#include "support.h"
#include "util/log.h"

/* ---- the wrappers ------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_uv_poll_init_socket(uv_loop_t *loop, uv_poll_t *h, int fd);
int __real_uv_thread_create(uv_thread_t *t, uv_thread_cb cb, void *arg);
int __real_uv_tcp_open(uv_tcp_t *h, uv_os_sock_t fd);
struct pp_swap *__real_pp_swap_new(struct pp_config *conf, const int *fds);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t m, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_uv_poll_init_socket(uv_loop_t *loop, uv_poll_t *h, int fd);
int __wrap_uv_thread_create(uv_thread_t *t, uv_thread_cb cb, void *arg);
int __wrap_uv_tcp_open(uv_tcp_t *h, uv_os_sock_t fd);
struct pp_swap *__wrap_pp_swap_new(struct pp_config *conf, const int *fds);

/* What fails: the ${countdown}th call (1: the next one) of ${armed}, once.
 * Workers allocate too, hence atomics. */
enum fault { F_NONE, F_ALLOC, F_POLL_INIT, F_THREAD, F_TCP_OPEN, F_SWAP };
static _Atomic enum fault armed;
static atomic_long countdown;
static atomic_int failed; /* how many calls were failed */

static void
arm(enum fault f, long nth)
{
	atomic_store(&failed, 0);
	atomic_store(&countdown, nth);
	atomic_store(&armed, f);
}

static void
disarm(void)
{
	atomic_store(&armed, F_NONE);
}

static int
fail_now(enum fault f)
{
	if (atomic_load(&armed) != f || atomic_fetch_sub(&countdown, 1) != 1)
		return (0);
	atomic_fetch_add(&failed, 1);
	return (1);
}

void *
__wrap_malloc(size_t n)
{
	if (fail_now(F_ALLOC)) {
		errno = ENOMEM;
		return (NULL);
	}
	return (__real_malloc(n));
}

void *
__wrap_calloc(size_t m, size_t n)
{
	if (fail_now(F_ALLOC)) {
		errno = ENOMEM;
		return (NULL);
	}
	return (__real_calloc(m, n));
}

void *
__wrap_realloc(void *p, size_t n)
{
	if (fail_now(F_ALLOC)) {
		errno = ENOMEM;
		return (NULL);
	}
	return (__real_realloc(p, n));
}

char *
__wrap_strdup(const char *s)
{
	if (fail_now(F_ALLOC)) {
		errno = ENOMEM;
		return (NULL);
	}
	return (__real_strdup(s));
}

char *
__wrap_strndup(const char *s, size_t n)
{
	if (fail_now(F_ALLOC)) {
		errno = ENOMEM;
		return (NULL);
	}
	return (__real_strndup(s, n));
}

int
__wrap_uv_poll_init_socket(uv_loop_t *loop, uv_poll_t *h, int fd)
{
	return (fail_now(F_POLL_INIT)
	            ? UV_ENOMEM
	            : __real_uv_poll_init_socket(loop, h, fd));
}

int
__wrap_uv_thread_create(uv_thread_t *t, uv_thread_cb cb, void *arg)
{
	return (fail_now(F_THREAD) ? UV_EAGAIN
	                           : __real_uv_thread_create(t, cb, arg));
}

int
__wrap_uv_tcp_open(uv_tcp_t *h, uv_os_sock_t fd)
{
	return (fail_now(F_TCP_OPEN) ? UV_EINVAL : __real_uv_tcp_open(h, fd));
}

struct pp_swap *
__wrap_pp_swap_new(struct pp_config *conf, const int *fds)
{
	return (fail_now(F_SWAP) ? NULL : __real_pp_swap_new(conf, fds));
}

/* ---- helpers ------------------------------------------------------------ */

static struct t_node nodes[3];
static char tmp[512];

static void
setup(void)
{
	uv_loop_t loop;
	uv_signal_t sig;

	t_nodes(nodes, 3);
	t_tmpdir(tmp, sizeof(tmp));
	/* libuv opens one pipe for signals per process, for good, the first
	 * time a signal handle is made: open it before anything is counted. */
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(uv_signal_init(&loop, &sig), 0);
	uv_close((uv_handle_t *)&sig, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

static void
teardown(void)
{
	disarm();
	t_rmtree(tmp);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 240);

/* The descriptors this process has open. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return (n - 1); /* the directory's own */
}

/* Append to ${b} (of ${len}) like printf. */
static void put(char *b, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
put(char *b, size_t len, const char *fmt, ...)
{
	size_t used = strlen(b);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b + used, len - used, fmt, ap);
	va_end(ap);
}

static void
put_strv(char *b, size_t len, const char *what, char **v, size_t n)
{
	put(b, len, " %s[", what);
	for (size_t i = 0; i < n; i++)
		put(b, len, "%s%s", i ? "," : "", v[i]);
	put(b, len, "]");
}

static void
put_addr(char *b, size_t len, const struct pp_addr *a)
{
	char s[PP_HOST_MAX + 16];

	pp_addr_format(a, s, sizeof(s));
	put(b, len, " %s", s);
}

/* Everything ${c} says, as text: two configurations are the same if their
 * texts are. */
static void
describe(const struct pp_config *c, char *b, size_t len)
{
	b[0] = '\0';
	put(b, len, "workers=%d drain=%llu log=%d/%d admin=%d", c->workers,
	    (unsigned long long)c->drain_timeout_ms, (int)c->log_level,
	    c->log_json, c->admin_enabled);
	put_addr(b, len, &c->admin_listen);
	put(b, len, " source=%s\n", c->source ? c->source : "-");
	if (c->nodedata != NULL)
		put(b, len, "nodedata %s %s %s %s %llu\n", c->nodedata->path,
		    c->nodedata->cert, c->nodedata->key,
		    c->nodedata->socket_dir ? c->nodedata->socket_dir : "-",
		    (unsigned long long)c->nodedata->rescan_ms);
	for (size_t i = 0; i < c->ntunnels; i++) {
		const struct pp_tunnel_conf *t = &c->tunnels[i];
		put(b, len, "tunnel %s kind=%d", t->name, (int)t->kind);
		put_addr(b, len, &t->listen);
		for (size_t j = 0; j < t->ntargets; j++)
			put_addr(b, len, &t->targets[j]);
		put(b, len, " files=%s,%s,%s,%s", t->ca_file ? t->ca_file : "-",
		    t->cert_file ? t->cert_file : "-",
		    t->chain_file ? t->chain_file : "-",
		    t->key_file ? t->key_file : "-");
		put(b, len, " peer=%s sni=%s id=%d gate=%d,%s opt=%d own=%d",
		    t->peer ? t->peer : "-",
		    t->server_name ? t->server_name : "-", (int)t->identity,
		    t->gate != NULL, t->gate_dir ? t->gate_dir : "-",
		    t->optional, t->check_own_chain);
		put_strv(b, len, "peers", t->allow.peers, t->allow.npeers);
		put_strv(b, len, "cn", t->allow.cns, t->allow.ncns);
		put_strv(b, len, "dns", t->allow.dns, t->allow.ndns);
		put_strv(b, len, "uri", t->allow.uris, t->allow.nuris);
		for (size_t j = 0; j < t->nroutes; j++) {
			put_strv(b, len, "route", t->routes[j].peers,
			         t->routes[j].npeers);
			put_addr(b, len, &t->routes[j].target);
		}
		put(b, len,
		    " limits=%llu,%llu,%llu,%u,%u tls=%d,%d pp=%d,%d,%d",
		    (unsigned long long)t->handshake_timeout_ms,
		    (unsigned long long)t->connect_timeout_ms,
		    (unsigned long long)t->idle_timeout_ms, t->max_connections,
		    t->max_connections_per_peer, t->tls_min,
		    t->session_resumption, (int)t->proxy_protocol,
		    t->proxy_protocol_cert, t->http_identity);
		put(b, len, " built=%d,%d,%d key=", t->limit != NULL,
		    t->trust != NULL, t->ctx != NULL);
		for (size_t j = 0; j < sizeof(t->session_key); j++)
			put(b, len, "%02x", t->session_key[j]);
		put(b, len, "\n");
	}
}

/* ---- loading and building a configuration ------------------------------- */

/* A file with every kind of tunnel, routes, allow lists, limits and node
 * data (whose peers are optional tunnels checked against their roots). */
static void
write_config(const char *path)
{
	const char *n0 = nodes[0].dir, *id1 = nodes[1].id, *id2 = nodes[2].id;
	char *text;

	cr_assert(
	    asprintf(&text,
	             "workers: 2\n"
	             "log: {level: warn}\n"
	             "admin: {listen: 127.0.0.1:19901}\n"
	             "limits: {max_connections: 100, idle_timeout: 1m}\n"
	             "tls: {min_version: \"1.3\"}\n"
	             "inbound:\n"
	             "  - name: in\n"
	             "    listen: 127.0.0.1:19902\n"
	             "    ca: %s/root-ca.crt\n"
	             "    cert: %s/server.crt\n"
	             "    key: %s/server.key\n"
	             "    allow_peers: [%s, %s]\n"
	             "    allow_cn: [someone]\n"
	             "    routes:\n"
	             "      - {peers: [%s], target: 127.0.0.1:19903}\n"
	             "      - {peers: [\"*\"], target: unix:%s/app.sock}\n"
	             "    proxy_protocol: v2\n"
	             "outbound:\n"
	             "  - name: out\n"
	             "    listen: 127.0.0.1:19904\n"
	             "    targets: [127.0.0.1:19905, localhost:19906]\n"
	             "    ca: %s/peers/%s/root-ca.crt\n"
	             "    cert: %s/server.crt\n"
	             "    chain: %s/peers/%s/sub-ca.crt\n"
	             "    key: %s/server.key\n"
	             "    peer: %s\n"
	             "    server_name: peer.example\n"
	             "    limits: {connect_timeout: 2s}\n"
	             "nodedata:\n"
	             "  path: %s\n"
	             "  cert: %s/server.crt\n"
	             "  key: %s/server.key\n"
	             "  inbound: {listen: 127.0.0.1:19907, target: "
	             "127.0.0.1:19908}\n"
	             "  outbound: {socket_dir: %s/socks, connect_listen: "
	             "127.0.0.1:19909}\n"
	             "  rescan_interval: 5s\n",
	             n0, n0, n0, id1, id2, id1, tmp, n0, id1, n0, n0, id1, n0,
	             id1, n0, n0, n0, tmp) > 0);
	t_write(path, text);
	free(text);
}

/* Load and build ${path}; the configuration, or NULL with ${p} filled. */
static struct pp_config *
load_and_build(const char *path, struct pp_problems *p)
{
	struct pp_config *c = pp_config_load(path, p);

	if (c != NULL && pp_config_build(c, p) != 0) {
		pp_config_unref(c);
		c = NULL;
	}
	return (c);
}

Test(faults, a_configuration_short_of_memory_fails_cleanly)
{
	static char want[65536], got[65536];
	struct pp_problems p = {0};
	struct pp_config *c;
	char path[600];
	long n, failures = 0, survived = 0;

	write_config(t_path(path, sizeof(path), tmp, "peerproxy.yaml"));
	c = load_and_build(path, &p);
	cr_assert_not_null(c, "the file loads: %s",
	                   p.n ? p.items[0] : "(no reason)");
	cr_assert_eq(p.nwarnings, 0, "%s", p.warnings[0]);
	cr_assert_geq(c->ntunnels, 6, "in, out, and node data's");
	describe(c, want, sizeof(want));
	pp_config_unref(c);
	pp_problems_free(&p);

	/* Fail the first allocation, then the second, ... until one run
	 * makes fewer allocations than that: every one has failed once. */
	for (n = 1;; n++) {
		arm(F_ALLOC, n);
		c = load_and_build(path, &p);
		disarm();
		if (!atomic_load(&failed)) {
			cr_assert_not_null(c);
			pp_config_unref(c);
			pp_problems_free(&p);
			break;
		}
		if (c != NULL) {
			/* Survived (a cache BoringSSL could not fill): then it
			 * must be the very same configuration. */
			describe(c, got, sizeof(got));
			cr_assert_str_eq(got, want, "allocation %ld", n);
			pp_config_unref(c);
			survived++;
		} else {
			cr_assert_gt(p.n + p.lost, 0,
			             "allocation %ld: failed, saying nothing",
			             n);
			for (size_t i = 0; i < p.n; i++)
				cr_assert(strstr(p.items[i], "out of memory"),
				          "allocation %ld: \"%s\" is not what "
				          "went wrong",
				          n, p.items[i]);
			failures++;
		}
		cr_assert_eq(p.nwarnings, 0,
		             "allocation %ld: a warning (a peer skipped?): %s",
		             n, p.warnings[0]);
		pp_problems_free(&p);
	}
	cr_log_info("%ld allocations: %ld failed the load, %ld survived", n - 1,
	            failures, survived);
	cr_assert_gt(n, 100, "the wrappers see the allocations");
}

/* ---- the runtime -------------------------------------------------------- */

/* One inbound tunnel on a unix socket, ${workers} workers, no admin
 * endpoint, node data rescans (driving reloads) every ${rescan_ms} if not
 * 0; not built. */
static struct pp_config *
serving_conf(int workers, uint64_t rescan_ms)
{
	struct pp_config *c = pp_config_new();
	struct pp_tunnel_conf *t;
	char addr[700], file[1200], err[160];

	cr_assert_not_null(c);
	c->workers = workers;
	c->admin_enabled = 0;
	c->log_level = PP_LOG_DEBUG; /* quiet rescans say "reloaded" too */
	if (rescan_ms > 0) {
		struct pp_nodedata *nd = calloc(1, sizeof(*nd));
		cr_assert_not_null(nd);
		nd->path = strdup(tmp);
		nd->rescan_ms = rescan_ms;
		pp_nodedata_attach(c, nd);
	}
	t = pp_config_add_tunnel(c, PP_TUNNEL_INBOUND, "in");
	cr_assert_not_null(t);
	snprintf(addr, sizeof(addr), "unix:%s/in.sock", tmp);
	cr_assert_eq(pp_addr_parse(addr, &t->listen, err, sizeof(err)), 0, "%s",
	             err);
	t->targets = calloc(1, sizeof(*t->targets));
	cr_assert_not_null(t->targets);
	cr_assert_eq(
	    pp_addr_parse("127.0.0.1:9", &t->targets[0], err, sizeof(err)), 0);
	t->ntargets = 1;
	t->ca_file =
	    strdup(t_path(file, sizeof(file), nodes[0].dir, "root-ca.crt"));
	t->cert_file =
	    strdup(t_path(file, sizeof(file), nodes[0].dir, "server.crt"));
	t->key_file =
	    strdup(t_path(file, sizeof(file), nodes[0].dir, "server.key"));
	return (c);
}

static struct pp_config *
built(struct pp_config *c)
{
	struct pp_problems p = {0};

	cr_assert_eq(pp_config_build(c, &p), 0, "%s", p.n ? p.items[0] : "?");
	pp_problems_free(&p);
	return (c);
}

/* Serve ${c} (pp_runtime_run takes its reference) with ${f} failing its
 * ${nth} call; the exit code.  Every descriptor the runtime opened must
 * be closed by then. */
static int
run_failing(struct pp_config *c, enum fault f, long nth)
{
	int before = open_fds(), rc;

	arm(f, nth);
	rc = pp_runtime_run(c, NULL, NULL);
	disarm();
	cr_assert_eq(atomic_load(&failed), 1, "the fault was injected");
	cr_assert_eq(open_fds(), before, "descriptors left open");
	return (rc);
}

Test(faults, a_worker_that_cannot_be_set_up_leaves_nothing_open)
{
	struct pp_config *c = built(serving_conf(3, 0));

	/* The second worker's listener: worker 0 is running, 2 not made. */
	cr_assert_eq(run_failing(c, F_POLL_INIT, 2), 1);
	/* pp_runtime_run took our reference to c */
}

Test(faults, a_worker_that_cannot_be_started_leaves_nothing_open)
{
	struct pp_config *c = built(serving_conf(3, 0));

	cr_assert_eq(run_failing(c, F_THREAD, 2), 1);
	/* pp_runtime_run took our reference to c */
}

Test(faults, no_worker_started_leaves_nothing_open)
{
	struct pp_config *c = built(serving_conf(2, 0));

	cr_assert_eq(run_failing(c, F_THREAD, 1), 1);
	/* pp_runtime_run took our reference to c */
}

/* Reloads, one per rescan: the first is short of memory for the second
 * worker's swap, the second goes through, the third stops the runtime. */
static atomic_int reloads;

static struct pp_config *
reload_three_times(void *arg, struct pp_problems *p)
{
	(void)arg;
	switch (atomic_fetch_add(&reloads, 1)) {
	case 0:
		arm(F_SWAP, 2);
		return (serving_conf(2, 0));
	case 1:
		disarm();
		return (serving_conf(2, 0));
	case 2:
		raise(SIGTERM); /* handled on this loop: a drain */
		break;
	}
	pp_problems_add(p, "test: no more reloads");
	return (NULL);
}

Test(faults, a_reload_short_of_memory_for_one_worker_moves_none)
{
	struct pp_config *c = built(serving_conf(2, 10));
	struct t_capture cap;
	int before = open_fds();
	char *out;

	t_capture_begin(&cap);
	cr_assert_eq(pp_runtime_run(c, reload_three_times, NULL), 0);
	out = t_capture_end(&cap);
	cr_assert_eq(open_fds(), before, "descriptors left open");
	cr_assert(t_contains(out, "event=reload_failed trigger=rescan "
	                          "problems=1 error=\"out of memory\""),
	          "%s", out);
	/* The next reload is applied to both workers: none is left behind
	 * on a swap it never got (the runtime waits for every worker to take
	 * the last one before the next). */
	cr_assert(t_contains(out, "event=reloaded trigger=rescan tunnels=1"),
	          "%s", out);
	cr_assert(!t_contains(out, "reload_partial"), "%s", out);
	free(out);
	/* pp_runtime_run took our reference to c */
}

/* ---- the admin endpoint ------------------------------------------------- */

static void
no_request(void *arg, const struct pp_admin_req *req, struct pp_admin_reply *r)
{
	(void)arg;
	(void)req;
	(void)r;
}

Test(faults, an_admin_socket_libuv_refuses_is_closed)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct pp_addr a;
	uv_loop_t loop;
	char err[256], addr[64];
	int before = open_fds(), s;

	/* A port free a moment ago. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(s = socket(AF_INET, SOCK_STREAM, 0), 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	close(s);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	cr_assert_eq(pp_addr_parse(addr, &a, err, sizeof(err)), 0);
	cr_assert_eq(uv_loop_init(&loop), 0);
	arm(F_TCP_OPEN, 1);
	cr_assert_null(
	    pp_admin_start(&loop, &a, no_request, NULL, err, sizeof(err)));
	disarm();
	cr_assert_eq(atomic_load(&failed), 1);
	cr_assert(err[0] != '\0', "the reason is given");
	uv_run(&loop, UV_RUN_DEFAULT); /* the handle's close */
	cr_assert_eq(uv_loop_close(&loop), 0);
	cr_assert_eq(open_fds(), before, "the socket was left open");
}
