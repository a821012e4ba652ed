#include "net/dial.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Addresses tried per resolved name. */
#define MAX_ADDRS 16

struct dial_attempt {
	uv_poll_t poll;
	int fd;
	struct pp_dial *d;
};

struct dial_gai {
	uv_getaddrinfo_t req;
	struct pp_dial *d; /* NULL once abandoned */
};

struct pp_dial {
	uv_loop_t *loop;
	uv_timer_t timer;
	const struct pp_addr *targets;
	size_t ntargets;
	size_t *order;
	size_t ti;
	struct sockaddr_storage addrs[MAX_ADDRS];
	socklen_t addrlens[MAX_ADDRS];
	size_t naddrs, ai;
	struct dial_attempt *cur;
	struct dial_gai *gai;
	uint64_t timeout_ms;
	pp_dial_cb *cb;
	void *arg;
	int handles;
	int done;
	int fd;
	int status;
	/* "<peer>: <what>": a formatted address, and a strerror or a fixed
	 * phrase (under 64 bytes): it fits, the log names the whole peer. */
	char why[PP_HOST_MAX + 16 + 128];
	char peer[PP_HOST_MAX + 16];
};

static void next_target(struct pp_dial *d);
static void try_addr(struct pp_dial *d);

void
pp_socket_tune(int fd, int tcp)
{
	int one = 1, idle = 60, intvl = 15, cnt = 4;

	if (!tcp)
		return;
	/* Latency first: records are already sized by the pump. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Links are long-lived: notice a vanished peer within minutes. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void
maybe_report(struct pp_dial *d)
{
	if (!d->done || d->handles > 0)
		return;
	d->cb(d->arg, d->fd, d->status, d->why, d->peer);
	free(d->order);
	free(d);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct pp_dial *d = h->data;

	d->handles--;
	maybe_report(d);
}

static void
on_attempt_closed(uv_handle_t *h)
{
	struct dial_attempt *a = h->data;
	struct pp_dial *d = a->d;

	if (a->fd >= 0)
		close(a->fd);
	free(a);
	d->handles--;
	maybe_report(d);
}

/* Abandon the in-flight attempt or resolution, if any. */
static void
drop_current(struct pp_dial *d)
{
	if (d->cur != NULL) {
		uv_close((uv_handle_t *)&d->cur->poll, on_attempt_closed);
		d->cur = NULL;
	}
	if (d->gai != NULL) {
		d->gai->d = NULL;
		uv_cancel((uv_req_t *)&d->gai->req);
		d->gai = NULL;
	}
}

static void
finish(struct pp_dial *d, int fd, int status)
{
	d->done = 1;
	d->fd = fd;
	d->status = status;
	drop_current(d);
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, on_handle_closed);
	maybe_report(d);
}

static void
fail_attempt(struct pp_dial *d, int err, const char *what)
{
	d->status = -err;
	snprintf(d->why, sizeof(d->why), "%s: %s", d->peer, what);
}

static void
on_timeout(uv_timer_t *h)
{
	struct pp_dial *d = h->data;

	d->status = UV_ETIMEDOUT;
	if (d->gai != NULL) {
		snprintf(d->why, sizeof(d->why),
		         "%s: name resolution timed out", d->peer);
		drop_current(d);
		next_target(d);
	} else {
		snprintf(d->why, sizeof(d->why), "%s: connect timed out",
		         d->peer);
		drop_current(d);
		try_addr(d);
	}
}

static void
on_connect_poll(uv_poll_t *h, int status, int events)
{
	struct dial_attempt *a = h->data;
	struct pp_dial *d = a->d;
	int err = 0, fd;
	socklen_t len = sizeof(err);

	(void)events;
	if (status < 0)
		err = -status;
	else if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	uv_timer_stop(&d->timer);
	if (err != 0) {
		fail_attempt(d, err, strerror(err));
		drop_current(d);
		try_addr(d);
		return;
	}
	fd = a->fd;
	a->fd = -1;
	pp_socket_tune(fd,
	               ((struct sockaddr *)&d->addrs[d->ai - 1])->sa_family !=
	                   AF_UNIX);
	finish(d, fd, 0);
}

static void
try_addr(struct pp_dial *d)
{
	while (d->ai < d->naddrs) {
		const struct sockaddr *sa =
		    (const struct sockaddr *)&d->addrs[d->ai];
		socklen_t salen = d->addrlens[d->ai];
		struct dial_attempt *a;
		int fd;

		d->ai++;
		pp_sockaddr_format(sa, salen, d->peer, sizeof(d->peer));
		fd = socket(sa->sa_family,
		            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			fail_attempt(d, errno, strerror(errno));
			continue;
		}
		if (connect(fd, sa, salen) == 0) {
			pp_socket_tune(fd, sa->sa_family != AF_UNIX);
			finish(d, fd, 0);
			return;
		}
		if (errno != EINPROGRESS) {
			/* A unix socket with a full backlog says EAGAIN: as
			 * good as refused for a failover set. */
			fail_attempt(d, errno, strerror(errno));
			close(fd);
			continue;
		}
		if ((a = calloc(1, sizeof(*a))) == NULL ||
		    uv_poll_init_socket(d->loop, &a->poll, fd) != 0) {
			free(a);
			close(fd);
			fail_attempt(d, ENOMEM, "out of memory");
			continue;
		}
		a->fd = fd;
		a->d = d;
		a->poll.data = a;
		d->handles++;
		d->cur = a;
		uv_poll_start(&a->poll, UV_WRITABLE, on_connect_poll);
		uv_timer_start(&d->timer, on_timeout, d->timeout_ms, 0);
		return;
	}
	next_target(d);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct dial_gai *g = (struct dial_gai *)req;
	struct pp_dial *d = g->d;

	free(g);
	if (d == NULL) { /* abandoned after a timeout or cancel */
		uv_freeaddrinfo(res);
		return;
	}
	d->gai = NULL;
	uv_timer_stop(&d->timer);
	if (status < 0) {
		d->status = status;
		snprintf(d->why, sizeof(d->why), "%s: cannot resolve: %s",
		         d->peer, uv_strerror(status));
		next_target(d);
		return;
	}
	d->naddrs = d->ai = 0;
	for (struct addrinfo *ai = res; ai != NULL && d->naddrs < MAX_ADDRS;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(d->addrs[0]))
			continue;
		memcpy(&d->addrs[d->naddrs], ai->ai_addr, ai->ai_addrlen);
		d->addrlens[d->naddrs++] = ai->ai_addrlen;
	}
	uv_freeaddrinfo(res);
	try_addr(d);
}

static void
next_target(struct pp_dial *d)
{
	const struct pp_addr *t;
	struct addrinfo hints;
	char port[8];

	if (d->ti == d->ntargets) {
		finish(d, -1, d->status ? d->status : UV_ECONNREFUSED);
		return;
	}
	t = &d->targets[d->order[d->ti++]];
	pp_addr_format(t, d->peer, sizeof(d->peer));
	d->naddrs = d->ai = 0;
	if (pp_addr_literal(t, &d->addrs[0], &d->addrlens[0]) == 0) {
		d->naddrs = 1;
		try_addr(d);
		return;
	}
	if ((d->gai = calloc(1, sizeof(*d->gai))) == NULL) {
		fail_attempt(d, ENOMEM, "out of memory");
		next_target(d);
		return;
	}
	d->gai->d = d;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", t->port);
	if (uv_getaddrinfo(d->loop, &d->gai->req, on_resolved, t->host, port,
	                   &hints) != 0) {
		free(d->gai);
		d->gai = NULL;
		fail_attempt(d, EAGAIN, "cannot start name resolution");
		next_target(d);
		return;
	}
	uv_timer_start(&d->timer, on_timeout, d->timeout_ms, 0);
}

struct pp_dial *
pp_dial_start(uv_loop_t *loop, const struct pp_addr *targets, size_t n,
              uint64_t timeout_ms, pp_dial_cb *cb, void *arg)
{
	struct pp_dial *d;

	if (n == 0 || (d = calloc(1, sizeof(*d))) == NULL)
		return (NULL);
	if ((d->order = calloc(n, sizeof(size_t))) == NULL) {
		free(d);
		return (NULL);
	}
	/* Fisher-Yates: spread callers over the failover set. */
	for (size_t i = 0; i < n; i++)
		d->order[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)random() % i, tmp = d->order[i - 1];
		d->order[i - 1] = d->order[j];
		d->order[j] = tmp;
	}
	d->loop = loop;
	d->targets = targets;
	d->ntargets = n;
	d->timeout_ms = timeout_ms;
	d->cb = cb;
	d->arg = arg;
	d->fd = -1;
	uv_timer_init(loop, &d->timer);
	d->timer.data = d;
	d->handles = 1;
	/* The timer closes from the loop, so handles stays 1 and nothing
	 * next_target does frees ${d} here (maybe_report waits for 0). */
	next_target(d);
	return (d); /* NOLINT(clang-analyzer-unix.Malloc) */
}

void
pp_dial_cancel(struct pp_dial *d)
{
	if (d->done)
		return;
	d->status = UV_ECANCELED;
	snprintf(d->why, sizeof(d->why), "cancelled");
	finish(d, -1, UV_ECANCELED);
}
