/*
 * bench/load.c: the backend and the load generator of bench/run.
 *
 *   load serve   --listen ADDR
 *   load check   --connect ADDR [--bytes N]
 *   load bulk    --connect ADDR --streams N --seconds S
 *   load rate    --connect ADDR --concurrency N --seconds S [--msg B]
 * [--timeout S] load latency --connect ADDR --conns N --seconds S [--msg B]
 * [--warmup MS] load hold    --connect ADDR --count N [--concurrency N]
 * [--seconds MAX]
 *
 * ADDR is 127.x.y.z:PORT: this tool talks to loopback addresses only.
 *
 * Wire protocol with the backend (serve): the first byte of every
 * connection picks the mode and is not echoed.
 *   'E' echo: every later byte comes back; at end of stream the backend
 *       finishes writing and closes (so a half-close round trips).
 *   'S' sink: bytes are counted and dropped; at end of stream the backend
 *       answers "<count>\n" and closes.
 *
 * Every client mode prints one line of key=value pairs on stdout (hold
 * prints a second one when it lets go) and exits non-zero when the
 * measurement could not be made at all.  Every loop is bounded in time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MODE_ECHO 'E'
#define MODE_SINK 'S'

/* ---- small helpers ------------------------------------------------------ */

static struct sockaddr_in g_addr;
static volatile sig_atomic_t g_stop;

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

static double
secs_since(uint64_t t0)
{
	return ((double)(now_ns() - t0) / 1e9);
}

/* Parse "127.x.y.z:PORT"; anything off loopback is refused. */
static void
parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		die("bad address \"%s\" (want 127.0.0.1:PORT)", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	port = strtol(colon + 1, NULL, 10);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 || port <= 0 ||
	    port > 65535)
		die("bad address \"%s\"", s);
	if ((ntohl(sa->sin_addr.s_addr) >> 24) != 127)
		die("%s is not a loopback address: refused", s);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void
set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A non-blocking connect to g_addr; -1 with errno on immediate failure. */
static int
connect_nb(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return (-1);
	set_nodelay(fd);
	if (connect(fd, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0 &&
	    errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return (-1);
	}
	return (fd);
}

/* A blocking connect with send/receive timeouts. */
static int
connect_blocking(int timeout_s)
{
	struct timeval tv = {timeout_s, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return (-1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return (-1);
	}
	return (fd);
}

static void
on_stop_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void
catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/* The q-quantile (0..1) of n sorted values, nearest rank. */
static uint64_t
quantile(const uint64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return (0);
	i = (size_t)(q * (double)n);
	if (i >= n)
		i = n - 1;
	return (v[i]);
}

/* A growable array of samples (nanoseconds), capped. */
struct samples {
	uint64_t *v;
	size_t n, cap, max;
};

static void
samples_add(struct samples *s, uint64_t x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		if (cap > s->max)
			cap = s->max;
		if (s->n == cap)
			return; /* full: keep what we have */
		uint64_t *v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL)
			return;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
}

/* ---- serve: the echo / sink backend ------------------------------------- */

struct bconn {
	int fd;
	int mode; /* 0 until the first byte */
	uint64_t count;
	uint8_t *pend; /* echo bytes not yet written */
	size_t pend_off, pend_len;
	int reading; /* EPOLLIN registered */
};

static uint8_t g_iobuf[256 * 1024];

static void
bconn_close(int ep, struct bconn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pend);
	free(c);
}

static void
bconn_events(int ep, struct bconn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};

	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Write what echo still owes; 1 when done, 0 when blocked, -1 on error. */
static int
bconn_flush(struct bconn *c)
{
	while (c->pend_len > 0) {
		ssize_t n = send(c->fd, c->pend + c->pend_off, c->pend_len,
		                 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN ? 0 : -1);
		}
		c->pend_off += (size_t)n;
		c->pend_len -= (size_t)n;
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_off = 0;
	return (1);
}

/* End of stream from the client: answer and close. */
static void
bconn_eof(int ep, struct bconn *c)
{
	if (c->mode == MODE_SINK) {
		char line[32];
		int len =
		    snprintf(line, sizeof(line), "%" PRIu64 "\n", c->count);
		/* A few bytes into an empty send buffer: never blocks. */
		if (send(c->fd, line, (size_t)len, MSG_NOSIGNAL) < 0)
			(void)0;
	}
	/* All the client's bytes are read, so close() sends FIN, not RST. */
	bconn_close(ep, c);
}

static void
bconn_readable(int ep, struct bconn *c)
{
	for (int budget = 64; budget > 0; budget--) {
		ssize_t n = recv(c->fd, g_iobuf, sizeof(g_iobuf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			bconn_close(ep, c);
			return;
		}
		if (n == 0) {
			bconn_eof(ep, c);
			return;
		}
		uint8_t *p = g_iobuf;
		size_t len = (size_t)n;
		if (c->mode == 0) {
			c->mode = p[0];
			p++;
			len--;
			if (c->mode != MODE_ECHO && c->mode != MODE_SINK) {
				bconn_close(ep, c);
				return;
			}
		}
		if (c->mode == MODE_SINK) {
			c->count += len;
			continue;
		}
		/* Echo: write at once; keep the rest and stop reading. */
		while (len > 0) {
			ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno != EAGAIN) {
				bconn_close(ep, c);
				return;
			}
			if (w < 0)
				break;
			p += w;
			len -= (size_t)w;
		}
		if (len > 0) {
			if ((c->pend = malloc(len)) == NULL) {
				bconn_close(ep, c);
				return;
			}
			memcpy(c->pend, p, len);
			c->pend_off = 0;
			c->pend_len = len;
			c->reading = 0;
			bconn_events(ep, c, EPOLLOUT);
			return;
		}
	}
}

static int
cmd_serve(void)
{
	int one = 1, ep, lfd;
	struct epoll_event e, evs[256];

	raise_nofile();
	catch_stop_signals();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0 ||
	    listen(lfd, 4096) != 0)
		die("listen: %s", strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	e.events = EPOLLIN;
	e.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
	printf("ready\n");
	fflush(stdout);
	while (!g_stop) {
		int n = epoll_wait(ep, evs, 256, 500);
		for (int i = 0; i < n; i++) {
			struct bconn *c = evs[i].data.ptr;
			if (c == NULL) {
				for (int k = 0; k < 64; k++) {
					int fd = accept4(lfd, NULL, NULL,
					                 SOCK_NONBLOCK |
					                     SOCK_CLOEXEC);
					if (fd < 0)
						break;
					set_nodelay(fd);
					c = calloc(1, sizeof(*c));
					if (c == NULL) {
						close(fd);
						continue;
					}
					c->fd = fd;
					c->reading = 1;
					e.events = EPOLLIN;
					e.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			if (!c->reading) {
				int r = bconn_flush(c);
				if (r < 0) {
					bconn_close(ep, c);
				} else if (r > 0) {
					c->reading = 1;
					bconn_events(ep, c, EPOLLIN);
				}
				continue;
			}
			bconn_readable(ep, c);
		}
	}
	return (0);
}

/* ---- check: one echo round trip with half-close, one sink count ---------- */

/* Send ${out} (after the mode byte) with half-close, collect the answer
 * until EOF into ${in} (capacity ${cap}); the number of bytes or -1. */
static ssize_t
exchange(int mode, const uint8_t *out, size_t outlen, uint8_t *in, size_t cap,
         int timeout_s, const char **why)
{
	int fd = connect_nb();
	size_t sent = 0, got = 0;
	int shut = 0;
	uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000ull;
	uint8_t m = (uint8_t)mode;

	if (fd < 0) {
		*why = "connect";
		return (-1);
	}
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	if (poll(&pfd, 1, timeout_s * 1000) != 1 ||
	    send(fd, &m, 1, MSG_NOSIGNAL) != 1) {
		*why = "connect";
		close(fd);
		return (-1);
	}
	for (;;) {
		if (now_ns() > deadline) {
			*why = "timeout";
			break;
		}
		pfd.events = POLLIN | (shut ? 0 : POLLOUT);
		if (poll(&pfd, 1, 200) < 0 && errno != EINTR) {
			*why = "poll";
			break;
		}
		if (!shut && (pfd.revents & POLLOUT)) {
			ssize_t n = send(fd, out + sent, outlen - sent,
			                 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN) {
				*why = "send";
				break;
			}
			if (sent == outlen) {
				shutdown(fd, SHUT_WR);
				shut = 1;
			}
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(fd, in + got, cap - got, MSG_DONTWAIT);
			if (n == 0 && shut) {
				close(fd);
				return ((ssize_t)got);
			}
			if (n == 0) {
				*why = "eof before the request was sent";
				break;
			}
			if (n < 0 && errno != EAGAIN) {
				*why = "recv (reset)";
				break;
			}
			if (n > 0)
				got += (size_t)n;
			if (got == cap) {
				*why = "too much data";
				break;
			}
		}
	}
	close(fd);
	return (-1);
}

static int
cmd_check(long bytes)
{
	uint8_t *out = malloc((size_t)bytes), *in = malloc((size_t)bytes + 64);
	const char *why = "";
	char ans[64];
	ssize_t n;

	for (long i = 0; i < bytes; i++)
		out[i] = (uint8_t)(i * 131 + (i >> 8));
	n = exchange(MODE_ECHO, out, (size_t)bytes, in, (size_t)bytes + 64, 10,
	             &why);
	if (n < 0) {
		printf("check=fail step=echo reason=\"%s\"\n", why);
		return (1);
	}
	if (n != bytes || memcmp(in, out, (size_t)bytes) != 0) {
		printf("check=fail step=echo reason=\"got %zd bytes back, "
		       "want the %ld sent\"\n",
		       n, bytes);
		return (1);
	}
	n = exchange(MODE_SINK, out, (size_t)bytes, (uint8_t *)ans,
	             sizeof(ans) - 1, 10, &why);
	if (n < 0) {
		printf("check=fail step=sink reason=\"%s\"\n", why);
		return (1);
	}
	ans[n] = '\0';
	if (strtol(ans, NULL, 10) != bytes) {
		printf("check=fail step=sink reason=\"sink counted %s, want "
		       "%ld\"\n",
		       ans, bytes);
		return (1);
	}
	printf("check=ok echo_bytes=%ld sink_bytes=%ld halfclose=ok\n", bytes,
	       bytes);
	free(out);
	free(in);
	return (0);
}

/* ---- bulk: N streams into the sink ----------------------------------------
 */

struct stream {
	pthread_t th;
	double seconds;
	uint64_t sent;
	uint64_t t_end;
	int ok;
	char why[96];
};

static uint64_t g_bulk_t0;

static void *
bulk_stream(void *arg)
{
	struct stream *s = arg;
	static uint8_t chunk[64 * 1024];
	uint8_t m = MODE_SINK;
	char ans[64];
	size_t got = 0;
	int fd = connect_blocking(30);
	uint64_t until = g_bulk_t0 + (uint64_t)(s->seconds * 1e9);

	if (fd < 0) {
		snprintf(s->why, sizeof(s->why), "connect: %s",
		         strerror(errno));
		return (NULL);
	}
	if (send(fd, &m, 1, MSG_NOSIGNAL) != 1)
		goto fail;
	while (now_ns() < until && !g_stop) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		s->sent += (uint64_t)n;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n = recv(fd, ans + got, sizeof(ans) - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof(ans) - 1)
			break;
	}
	s->t_end = now_ns();
	ans[got] = '\0';
	if (got == 0 || strtoull(ans, NULL, 10) != s->sent) {
		snprintf(s->why, sizeof(s->why),
		         "sink counted \"%.20s\" of %" PRIu64 " bytes", ans,
		         s->sent);
		close(fd);
		return (NULL);
	}
	s->ok = 1;
	close(fd);
	return (NULL);
fail:
	snprintf(s->why, sizeof(s->why), "i/o: %s", strerror(errno));
	close(fd);
	return (NULL);
}

static int
cmd_bulk(int streams, double seconds)
{
	struct stream *ss = calloc((size_t)streams, sizeof(*ss));
	uint64_t total = 0, t_end = 0;
	int ok = 0;
	const char *why = "";

	catch_stop_signals();
	g_bulk_t0 = now_ns();
	for (int i = 0; i < streams; i++) {
		ss[i].seconds = seconds;
		pthread_create(&ss[i].th, NULL, bulk_stream, &ss[i]);
	}
	for (int i = 0; i < streams; i++) {
		pthread_join(ss[i].th, NULL);
		if (ss[i].ok) {
			ok++;
			total += ss[i].sent;
			if (ss[i].t_end > t_end)
				t_end = ss[i].t_end;
		} else {
			why = ss[i].why;
		}
	}
	double el = t_end > g_bulk_t0 ? (double)(t_end - g_bulk_t0) / 1e9 : 0;
	printf("mode=bulk direction=upload streams=%d ok=%d errors=%d "
	       "bytes=%" PRIu64 " seconds=%.3f mbps=%.1f",
	       streams, ok, streams - ok, total, el,
	       el > 0 ? (double)total / el / 1e6 : 0.0);
	if (ok < streams)
		printf(" error=\"%s\"", why);
	printf("\n");
	return (ok == 0);
}

/* ---- rate: new tunnels per second ---------------------------------------- */

enum cstate { C_IDLE, C_CONNECTING, C_READING, C_HELD };

struct cslot {
	int fd;
	enum cstate st;
	size_t got;
	uint64_t t0, deadline;
};

struct errcount {
	uint64_t connect, reset, eof, timeout, mismatch;
};

static uint64_t
err_total(const struct errcount *e)
{
	return (e->connect + e->reset + e->eof + e->timeout + e->mismatch);
}

static void
err_print(const struct errcount *e)
{
	printf(" err_connect=%" PRIu64 " err_reset=%" PRIu64 " err_eof=%" PRIu64
	       " err_timeout=%" PRIu64 " err_mismatch=%" PRIu64,
	       e->connect, e->reset, e->eof, e->timeout, e->mismatch);
}

static uint8_t g_msg[4096];

/* Start a new tunnel in ${c}: connect, then send the mode byte + message. */
static int
slot_start(int ep, struct cslot *c, uint64_t timeout_ns, struct errcount *err)
{
	struct epoll_event e;

	c->t0 = now_ns();
	c->deadline = c->t0 + timeout_ns;
	c->got = 0;
	if ((c->fd = connect_nb()) < 0) {
		err->connect++;
		c->st = C_IDLE;
		return (-1);
	}
	c->st = C_CONNECTING;
	e.events = EPOLLOUT;
	e.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
	return (0);
}

static void
slot_end(int ep, struct cslot *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->st = C_IDLE;
}

/* Advance ${c} on an event: 1 once its echo is complete, 0 while in
 * progress, -1 after an error (counted, slot ended). */
static int
slot_event(int ep, struct cslot *c, size_t msglen, struct errcount *err)
{
	uint8_t buf[4096];

	if (c->st == C_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		/* The message with its mode byte: one small write. */
		g_msg[0] = MODE_ECHO;
		if (soerr != 0 || send(c->fd, g_msg, msglen, MSG_NOSIGNAL) !=
		                      (ssize_t)msglen) {
			err->connect++;
			slot_end(ep, c);
			return (-1);
		}
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		c->st = C_READING;
		return (0);
	}
	if (c->st == C_READING) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return (0);
		if (n < 0) {
			err->reset++;
			slot_end(ep, c);
			return (-1);
		}
		if (n == 0) {
			err->eof++;
			slot_end(ep, c);
			return (-1);
		}
		if (memcmp(buf, g_msg + 1 + c->got, (size_t)n) != 0 ||
		    c->got + (size_t)n > msglen - 1) {
			err->mismatch++;
			slot_end(ep, c);
			return (-1);
		}
		c->got += (size_t)n;
		return (c->got == msglen - 1);
	}
	/* C_HELD: anything now means the tunnel went away. */
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return (0);
	err->reset++;
	slot_end(ep, c);
	return (-1);
}

static int
cmd_rate(int conc, double seconds, size_t msglen, int timeout_s)
{
	struct cslot *slots = calloc((size_t)conc, sizeof(*slots));
	struct epoll_event evs[512];
	struct errcount err = {0};
	struct samples lat = {.max = 20000000};
	uint64_t ok = 0, ok_in = 0,
	         timeout_ns = (uint64_t)timeout_s * 1000000000ull;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint64_t t0 = now_ns(), t_end = t0 + (uint64_t)(seconds * 1e9);
	uint64_t drain_end = t_end + timeout_ns, last_scan = t0;
	int active = 0;

	raise_nofile();
	catch_stop_signals();
	for (size_t i = 1; i < msglen; i++)
		g_msg[i] = (uint8_t)('a' + i % 26);
	for (int i = 0; i < conc; i++) {
		slots[i].fd = -1;
		if (slot_start(ep, &slots[i], timeout_ns, &err) == 0)
			active++;
	}
	for (;;) {
		uint64_t now = now_ns();
		int running = now < t_end && !g_stop;
		if ((!running && active == 0) || now > drain_end || g_stop)
			break;
		int n = epoll_wait(ep, evs, 512, 50);
		for (int i = 0; i < n; i++) {
			struct cslot *c = evs[i].data.ptr;
			int r = slot_event(ep, c, msglen, &err);
			if (r == 0)
				continue;
			if (r > 0) {
				uint64_t t = now_ns();
				ok++;
				if (t <= t_end) {
					ok_in++;
					samples_add(&lat, t - c->t0);
				}
				slot_end(ep, c);
			}
			active--;
			if (now_ns() < t_end && !g_stop &&
			    slot_start(ep, c, timeout_ns, &err) == 0)
				active++;
		}
		now = now_ns();
		if (now - last_scan > 100000000ull) {
			last_scan = now;
			for (int i = 0; i < conc; i++) {
				struct cslot *c = &slots[i];
				if (c->st == C_IDLE) {
					/* A failed connect: retry while
					 * running, after a pause. */
					if (now < t_end && !g_stop &&
					    slot_start(ep, c, timeout_ns,
					               &err) == 0)
						active++;
					continue;
				}
				if (now > c->deadline) {
					err.timeout++;
					slot_end(ep, c);
					active--;
				}
			}
		}
	}
	for (int i = 0; i < conc; i++) {
		if (slots[i].st != C_IDLE) {
			err.timeout++;
			slot_end(ep, &slots[i]);
		}
	}
	qsort(lat.v, lat.n, sizeof(uint64_t), cmp_u64);
	printf("mode=rate concurrency=%d msg=%zu seconds=%.3f ok=%" PRIu64
	       " rate=%.1f errors=%" PRIu64 " setup_p50_ms=%.2f "
	       "setup_p99_ms=%.2f",
	       conc, msglen, seconds, ok, (double)ok_in / seconds,
	       err_total(&err), quantile(lat.v, lat.n, 0.50) / 1e6,
	       quantile(lat.v, lat.n, 0.99) / 1e6);
	err_print(&err);
	printf("\n");
	return (ok == 0);
}

/* ---- latency: ping-pong on persistent tunnels -----------------------------
 */

static int
cmd_latency(int nconns, double seconds, size_t msglen, int warmup_ms)
{
	struct cslot *slots = calloc((size_t)nconns, sizeof(*slots));
	struct samples lat = {.max = 50000000};
	struct errcount err = {0};
	struct epoll_event evs[256];
	uint8_t buf[4096];
	int ep = epoll_create1(EPOLL_CLOEXEC), alive = 0;
	uint64_t t0, t_meas, t_end;

	catch_stop_signals();
	for (size_t i = 0; i < msglen; i++)
		g_msg[i] = (uint8_t)('A' + i % 26);
	for (int i = 0; i < nconns; i++) {
		struct cslot *c = &slots[i];
		uint8_t m = MODE_ECHO;
		if ((c->fd = connect_blocking(10)) < 0 ||
		    send(c->fd, &m, 1, MSG_NOSIGNAL) != 1) {
			err.connect++;
			if (c->fd >= 0)
				close(c->fd);
			c->fd = -1;
			continue;
		}
		set_nodelay(c->fd);
		set_nonblock(c->fd);
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
		alive++;
	}
	t0 = now_ns();
	t_meas = t0 + (uint64_t)warmup_ms * 1000000ull;
	t_end = t_meas + (uint64_t)(seconds * 1e9);
	for (int i = 0; i < nconns; i++) {
		struct cslot *c = &slots[i];
		if (c->fd < 0)
			continue;
		c->t0 = now_ns();
		c->got = 0;
		if (send(c->fd, g_msg, msglen, MSG_NOSIGNAL) != (ssize_t)msglen)
			err.reset++;
	}
	while (alive > 0 && !g_stop) {
		uint64_t now = now_ns();
		if (now >= t_end)
			break;
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct cslot *c = evs[i].data.ptr;
			ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0) {
				if (r == 0)
					err.eof++;
				else
					err.reset++;
				slot_end(ep, c);
				alive--;
				continue;
			}
			c->got += (size_t)r;
			if (c->got < msglen)
				continue;
			if (c->got > msglen) {
				err.mismatch++;
				slot_end(ep, c);
				alive--;
				continue;
			}
			uint64_t t = now_ns();
			if (c->t0 >= t_meas)
				samples_add(&lat, t - c->t0);
			c->t0 = t;
			c->got = 0;
			if (send(c->fd, g_msg, msglen, MSG_NOSIGNAL) !=
			    (ssize_t)msglen) {
				err.reset++;
				slot_end(ep, c);
				alive--;
			}
		}
		/* A reply that never comes counts as a timeout. */
		for (int i = 0; i < nconns; i++) {
			struct cslot *c = &slots[i];
			if (c->fd >= 0 && now_ns() - c->t0 > 10000000000ull) {
				err.timeout++;
				slot_end(ep, c);
				alive--;
			}
		}
	}
	for (int i = 0; i < nconns; i++) {
		if (slots[i].fd >= 0)
			slot_end(ep, &slots[i]);
	}
	qsort(lat.v, lat.n, sizeof(uint64_t), cmp_u64);
	printf("mode=latency conns=%d msg=%zu seconds=%.3f samples=%zu "
	       "rtt_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
	       "max_us=%.1f errors=%" PRIu64,
	       nconns, msglen, seconds, lat.n, (double)lat.n / seconds,
	       quantile(lat.v, lat.n, 0.50) / 1e3,
	       quantile(lat.v, lat.n, 0.99) / 1e3,
	       quantile(lat.v, lat.n, 0.999) / 1e3,
	       lat.n ? lat.v[lat.n - 1] / 1e3 : 0.0, err_total(&err));
	err_print(&err);
	printf("\n");
	return (lat.n == 0);
}

/* ---- hold: open N tunnels and keep them idle ------------------------------
 */

static int
cmd_hold(int count, int conc, double max_seconds)
{
	struct cslot *slots = calloc((size_t)count, sizeof(*slots));
	struct epoll_event evs[512];
	struct errcount err = {0};
	const size_t msglen = 2; /* mode byte + one byte */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int next = 0, opening = 0, held = 0, failed = 0;
	uint64_t t0 = now_ns(), t_give_up = t0 + (uint64_t)(max_seconds * 1e9);
	uint64_t timeout_ns = 30000000000ull, last_scan = t0;

	raise_nofile();
	catch_stop_signals();
	g_msg[1] = 'h';
	/* Phase 1: open them, at most ${conc} in progress at once. */
	while (held + failed < count && !g_stop && now_ns() < t_give_up) {
		while (opening < conc && next < count) {
			struct cslot *c = &slots[next++];
			if (slot_start(ep, c, timeout_ns, &err) == 0)
				opening++;
			else
				failed++;
		}
		int n = epoll_wait(ep, evs, 512, 50);
		for (int i = 0; i < n; i++) {
			struct cslot *c = evs[i].data.ptr;
			int r = slot_event(ep, c, msglen, &err);
			if (r == 0)
				continue;
			opening--;
			if (r < 0) {
				failed++;
				continue;
			}
			held++;
			c->st = C_HELD;
		}
		uint64_t now = now_ns();
		if (now - last_scan > 200000000ull) {
			last_scan = now;
			for (int i = 0; i < next; i++) {
				struct cslot *c = &slots[i];
				if ((c->st == C_CONNECTING ||
				     c->st == C_READING) &&
				    now > c->deadline) {
					err.timeout++;
					slot_end(ep, c);
					opening--;
					failed++;
				}
			}
		}
	}
	printf("mode=hold count=%d held=%d errors=%d open_seconds=%.3f", count,
	       held, failed, secs_since(t0));
	err_print(&err);
	printf("\n");
	fflush(stdout);
	/* Phase 2: hold until told to stop (SIGTERM) or the deadline. */
	uint64_t dropped_before = err.reset + err.eof;
	while (!g_stop && now_ns() < t_give_up) {
		int n = epoll_wait(ep, evs, 512, 100);
		for (int i = 0; i < n; i++) {
			struct cslot *c = evs[i].data.ptr;
			if (c->st == C_HELD &&
			    slot_event(ep, c, msglen, &err) < 0)
				held--;
		}
	}
	printf("mode=hold released=%d dropped=%" PRIu64 " seconds=%.3f\n", held,
	       err.reset + err.eof - dropped_before, secs_since(t0));
	fflush(stdout);
	for (int i = 0; i < count; i++) {
		if (slots[i].st != C_IDLE && slots[i].fd >= 0)
			close(slots[i].fd);
	}
	return (held == 0);
}

/* ---- main -----------------------------------------------------------------
 */

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: load serve   --listen ADDR\n"
	    "       load check   --connect ADDR [--bytes N]\n"
	    "       load bulk    --connect ADDR --streams N --seconds S\n"
	    "       load rate    --connect ADDR --concurrency N --seconds S "
	    "[--msg B] [--timeout S]\n"
	    "       load latency --connect ADDR --conns N --seconds S "
	    "[--msg B] [--warmup MS]\n"
	    "       load hold    --connect ADDR --count N "
	    "[--concurrency N] [--seconds MAX]\n"
	    "ADDR: 127.x.y.z:PORT (loopback only)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *cmd, *addr = NULL;
	long streams = 1, conc = 64, count = 1000, conns = 4, msg = 64;
	long bytes = 1 << 20, timeout = 10, warmup = 200;
	double seconds = 5;

	if (argc < 2)
		usage();
	cmd = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(k, "--listen") == 0 || strcmp(k, "--connect") == 0)
			addr = v;
		else if (strcmp(k, "--streams") == 0)
			streams = atol(v);
		else if (strcmp(k, "--concurrency") == 0)
			conc = atol(v);
		else if (strcmp(k, "--count") == 0)
			count = atol(v);
		else if (strcmp(k, "--conns") == 0)
			conns = atol(v);
		else if (strcmp(k, "--msg") == 0)
			msg = atol(v);
		else if (strcmp(k, "--bytes") == 0)
			bytes = atol(v);
		else if (strcmp(k, "--timeout") == 0)
			timeout = atol(v);
		else if (strcmp(k, "--warmup") == 0)
			warmup = atol(v);
		else if (strcmp(k, "--seconds") == 0)
			seconds = atof(v);
		else
			usage();
	}
	if (addr == NULL)
		usage();
	parse_addr(addr, &g_addr);
	if (seconds <= 0 || seconds > 3600 || streams < 1 || streams > 1024 ||
	    conc < 1 || conc > 100000 || count < 1 || count > 1000000 ||
	    conns < 1 || conns > 10000 || msg < 2 ||
	    msg > (long)sizeof(g_msg) || bytes < 1 || bytes > (1l << 30) ||
	    timeout < 1 || timeout > 600 || warmup < 0 || warmup > 60000)
		die("an option is out of range");
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(cmd, "serve") == 0)
		return (cmd_serve());
	if (strcmp(cmd, "check") == 0)
		return (cmd_check(bytes));
	if (strcmp(cmd, "bulk") == 0)
		return (cmd_bulk((int)streams, seconds));
	if (strcmp(cmd, "rate") == 0)
		return (
		    cmd_rate((int)conc, seconds, (size_t)msg, (int)timeout));
	if (strcmp(cmd, "latency") == 0)
		return (
		    cmd_latency((int)conns, seconds, (size_t)msg, (int)warmup));
	if (strcmp(cmd, "hold") == 0)
		return (cmd_hold((int)count, (int)conc, seconds));
	usage();
	return (2);
}
