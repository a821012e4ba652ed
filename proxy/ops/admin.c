#include "ops/admin.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "net/listen.h"
#include "ops/adminreq.h"

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	uv_shutdown_t sd;
	struct pp_admin_parse req;
	struct pp_admin *a;
	struct conn *prev, *next; /* oldest first */
	int replying;
	int handles;
	char readbuf[4096];
	struct pp_sb out;
};

struct pp_admin {
	uv_tcp_t listener;
	uv_loop_t *loop;
	pp_admin_fn *fn;
	void *arg;
	struct conn *head, *tail;
	int nconns;
	int stopping;
	int handles;
};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

const char *
pp_admin_status_text(int status)
{
	switch (status) {
	case 200:
		return ("OK");
	case 400:
		return ("Bad Request");
	case 404:
		return ("Not Found");
	case 405:
		return ("Method Not Allowed");
	case 408:
		return ("Request Timeout");
	case 413:
		return ("Payload Too Large");
	case 431:
		return ("Request Header Fields Too Large");
	case 500:
		return ("Internal Server Error");
	case 503:
		return ("Service Unavailable");
	default:
		return ("Unknown");
	}
}

static void
admin_release(struct pp_admin *a)
{
	if (--a->handles == 0)
		free(a);
}

static void
on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles > 0)
		return;
	pp_sb_free(&c->out);
	admin_release(c->a);
	free(c);
}

static void
conn_close(struct conn *c)
{
	struct pp_admin *a = c->a;

	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		a->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		a->tail = c->prev;
	a->nconns--;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void
on_linger_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

/* After the reply: discard what the client still sends until it closes
 * (closing with unread bytes would reset the connection, and the client
 * could lose our reply), for at most PP_ADMIN_LINGER_MS. */
static void
on_discard(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	if (n < 0)
		conn_close(s->data);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	if (status != 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_linger_timeout, PP_ADMIN_LINGER_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_discard) != 0)
		conn_close(c);
}

static void
on_written(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	if (status != 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
		conn_close(c);
		return;
	}
	c->sd.data = c;
	if (uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
		conn_close(c);
}

/* Send ${reply} (its body is taken over) and close afterwards. */
static void
conn_reply(struct conn *c, struct pp_admin_reply *reply, int head_only)
{
	struct pp_sb *o = &c->out;
	uv_buf_t buf;

	c->replying = 1;
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_timer_stop(&c->timer);
	pp_sb_printf(o, "HTTP/1.1 %d %s\r\n", reply->status,
	             pp_admin_status_text(reply->status));
	pp_sb_printf(o, "Content-Type: %s\r\n",
	             reply->content_type ? reply->content_type
	                                 : "text/plain; charset=utf-8");
	if (reply->allow != NULL)
		pp_sb_printf(o, "Allow: %s\r\n", reply->allow);
	pp_sb_printf(o,
	             "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	             "Connection: close\r\n\r\n",
	             reply->body.len);
	if (!head_only && reply->body.len > 0)
		pp_sb_append(o, reply->body.buf, reply->body.len);
	pp_sb_free(&reply->body);
	if (o->failed) {
		conn_close(c);
		return;
	}
	buf = uv_buf_init(o->buf, (unsigned)o->len);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
		conn_close(c);
}

/* Answer with a fixed error and close. */
static void
conn_error(struct conn *c, int status, const char *msg)
{
	struct pp_admin_reply r = {.status = status};

	pp_sb_printf(&r.body, "%s\n", msg);
	conn_reply(c, &r, 0);
}

static void
on_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;

	conn_error(c, 408, "request not received in time");
}

static void
dispatch(struct conn *c)
{
	struct pp_admin_reply r = {.status = 500};
	struct pp_admin_req req = {
	    .method = pp_admin_parse_method(&c->req),
	    .path = pp_admin_parse_path(&c->req),
	};

	c->a->fn(c->a->arg, &req, &r);
	conn_reply(c, &r, pp_admin_parse_head(&c->req));
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->readbuf, sizeof(c->readbuf));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (n == 0)
		return;
	if (n < 0) {
		/* EOF before a complete request, or a reset. */
		conn_close(c);
		return;
	}
	if (c->replying)
		return;
	switch (pp_admin_parse_request(&c->req, buf->base, (size_t)n)) {
	case 1:
		dispatch(c);
		break;
	case -1:
		conn_error(c, c->req.status, c->req.error);
		break;
	}
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct pp_admin *a = server->data;
	struct conn *c;

	if (status != 0 || a->stopping)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;
	uv_tcp_init(a->loop, &c->tcp);
	c->tcp.data = c;
	c->a = a;
	a->handles++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		c->handles = 1;
		uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
		return;
	}
	if (a->nconns >= PP_ADMIN_CONNS)
		conn_close(a->head); /* the oldest gives way */
	c->handles = 2;
	uv_timer_init(a->loop, &c->timer);
	c->timer.data = c;
	c->prev = a->tail;
	if (a->tail != NULL)
		a->tail->next = c;
	else
		a->head = c;
	a->tail = c;
	a->nconns++;
	pp_admin_parse_init(&c->req);
	uv_timer_start(&c->timer, on_timeout, PP_ADMIN_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		conn_close(c);
}

static void
on_listener_closed(uv_handle_t *h)
{
	admin_release(h->data);
}

struct pp_admin *
pp_admin_start(uv_loop_t *loop, const struct pp_addr *addr, pp_admin_fn *fn,
               void *arg, char *err, size_t errlen)
{
	struct pp_admin *a;
	int fd, r;

	if (addr->kind == PP_ADDR_UNIX) {
		snprintf(err, errlen, "a unix socket is not supported here");
		return (NULL);
	}
	if (pp_listen_open(addr, 1, &fd, err, errlen) != 0)
		return (NULL);
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	a->loop = loop;
	a->fn = fn;
	a->arg = arg;
	a->handles = 1;
	uv_tcp_init(loop, &a->listener);
	a->listener.data = a;
	if ((r = uv_tcp_open(&a->listener, fd)) != 0) {
		close(fd); /* the handle did not take it */
		goto fail;
	}
	if ((r = uv_listen((uv_stream_t *)&a->listener, 128, on_connection)) !=
	    0)
		goto fail; /* the handle closes the descriptor */
	return (a);

fail:
	snprintf(err, errlen, "%s", uv_strerror(r));
	uv_close((uv_handle_t *)&a->listener, on_listener_closed);
	return (NULL);
}

void
pp_admin_stop(struct pp_admin *a)
{
	if (a == NULL)
		return;
	a->stopping = 1;
	while (a->head != NULL)
		conn_close(a->head);
	uv_close((uv_handle_t *)&a->listener, on_listener_closed);
}
