/*
 * One side of a tunnel (tunnel/side.h), plain and TLS, over socketpairs
 * (and a loopback TCP pair where only TCP behaves so): what "again" means
 * and the want mask it grows, errors with their reason and detail, sticky
 * errors, half-close, the handshake's failures, close and release.  The
 * peer is driven by hand in the same thread: every byte one end writes is
 * in the other's socket before the next call.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "support.h"
#include "tls/context.h"
#include "tunnel/side.h"
#include "util/bufpool.h"

static struct t_node nodes[2];
static struct pp_bufpool pool;           /* read-ahead buffers of the SSLs */
static struct t_tls node0_in, node1_out; /* node1 calls node0 */

static void
setup(void)
{
	t_nodes(nodes, 2);
	cr_assert_eq(pp_bufpool_init(&pool, 4), 0);
	t_tls_server(&node0_in, &nodes[0]);
	t_tls_client(&node1_out, &nodes[1], &nodes[0]);
}

static void
teardown(void)
{
	t_tls_free(&node0_in);
	t_tls_free(&node1_out);
	pp_bufpool_destroy(&pool);
}

TestSuite(side, .init = setup, .fini = teardown);

/* The side under test on one end of a connection, its peer on the other
 * (raw, or speaking TLS through peer_ssl). */
struct pair {
	struct pp_side s;
	int peer;
	SSL *peer_ssl;
	struct pp_tls_conn sc, pc;
	const char *reason; /* of the last failure */
	char detail[256];
};

static void
nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	cr_assert(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

static void
plain_pair(struct pair *p)
{
	int fd[2];

	memset(p, 0, sizeof(*p));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	nonblocking(fd[0]);
	nonblocking(fd[1]);
	pp_side_init(&p->s, fd[0], 0, "client");
	p->peer = fd[1];
}

/* A pair whose side accepts TLS as node0 and whose peer is node1. */
static void
tls_pair(struct pair *p)
{
	plain_pair(p);
	p->s.ssl = pp_tls_ssl_new(node0_in.ctx, p->s.fd, &pool, &p->sc);
	p->peer_ssl = pp_tls_ssl_new(node1_out.ctx, p->peer, &pool, &p->pc);
	cr_assert(p->s.ssl != NULL && p->peer_ssl != NULL);
	SSL_set_accept_state(p->s.ssl);
	SSL_set_connect_state(p->peer_ssl);
}

/* Run the handshake of a tls_pair; the side's last result. */
static int
handshake(struct pair *p)
{
	int r = PP_IO_AGAIN, peer_done = 0;

	for (int i = 0; i < 50 && !(r == 1 && peer_done); i++) {
		if (!peer_done) {
			peer_done = SSL_do_handshake(p->peer_ssl) == 1;
			ERR_clear_error();
		}
		if (r == PP_IO_AGAIN)
			r = pp_side_handshake(&p->s, &p->reason, p->detail,
			                      sizeof(p->detail));
		if (r == PP_IO_ERROR)
			break;
	}
	return (r);
}

static void
tls_ready(struct pair *p)
{
	tls_pair(p);
	cr_assert_eq(handshake(p), 1, "handshake: %s (%s)", p->reason,
	             p->detail);
}

static void
pair_free(struct pair *p)
{
	SSL_free(p->peer_ssl);
	close(p->peer);
	pp_side_release(&p->s);
	cr_assert_eq(pool.in_use, 0, "a buffer outlived its SSL");
}

static ssize_t
rd(struct pair *p, uint8_t *buf, size_t cap)
{
	p->reason = "(unset)";
	p->detail[0] = '\0';
	return (pp_side_read(&p->s, buf, cap, &p->reason, p->detail,
	                     sizeof(p->detail)));
}

static ssize_t
wr(struct pair *p, const void *buf, size_t len)
{
	p->reason = "(unset)";
	p->detail[0] = '\0';
	return (pp_side_write(&p->s, buf, len, &p->reason, p->detail,
	                      sizeof(p->detail)));
}

static int
shut(struct pair *p)
{
	p->reason = "(unset)";
	p->detail[0] = '\0';
	return (
	    pp_side_shutdown(&p->s, &p->reason, p->detail, sizeof(p->detail)));
}

/* What the TLS peer reads now: bytes, 0 at close_notify, -1 if it must
 * wait, -2 on a failure. */
static int
peer_read(struct pair *p, char *buf, int cap)
{
	int r = SSL_read(p->peer_ssl, buf, cap), e;

	if (r > 0)
		return (r);
	e = SSL_get_error(p->peer_ssl, r);
	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN)
		return (0);
	return (e == SSL_ERROR_WANT_READ ? -1 : -2);
}

/* ---- plain ------------------------------------------------------------ */

Test(side, plain_again_grows_the_want_mask)
{
	static uint8_t big[65536];
	uint8_t buf[16];
	struct pair p;
	ssize_t n;
	int i;

	plain_pair(&p);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), PP_IO_AGAIN);
	cr_assert_eq(p.s.want, UV_READABLE);
	cr_assert_eq(write(p.peer, "abc", 3), 3);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 3);
	cr_assert(memcmp(buf, "abc", 3) == 0);
	cr_assert_eq(wr(&p, "xyz", 3), 3);
	cr_assert_eq(read(p.peer, buf, sizeof(buf)), 3);
	cr_assert(memcmp(buf, "xyz", 3) == 0);
	/* The peer reads nothing: the socket fills, the write waits, and
	 * both waits are in the mask (the owner clears it per round). */
	for (i = 0; i < 1000 && (n = wr(&p, big, sizeof(big))) > 0; i++)
		;
	cr_assert_eq(n, PP_IO_AGAIN);
	cr_assert_eq(p.s.want, UV_READABLE | UV_WRITABLE);
	pair_free(&p);
}

Test(side, plain_end_of_stream_and_half_close)
{
	uint8_t buf[16];
	struct pair p;

	plain_pair(&p);
	cr_assert_eq(shutdown(p.peer, SHUT_WR), 0);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 0, "the end of the stream");
	cr_assert_eq(shut(&p), 0);
	cr_assert(p.s.shut);
	cr_assert_eq(read(p.peer, buf, sizeof(buf)), 0, "the peer sees FIN");
	cr_assert_eq(shut(&p), 0, "a second shutdown is harmless");
	pair_free(&p);
}

Test(side, plain_write_error_names_the_side)
{
	struct pair p;

	plain_pair(&p);
	close(p.peer);
	p.peer = -1;
	/* MSG_NOSIGNAL: a failure, not a SIGPIPE that would end the test */
	cr_assert_eq(wr(&p, "x", 1), PP_IO_ERROR);
	cr_assert_null(p.reason, "a socket failure: the owner names it");
	cr_assert_str_eq(p.detail, "client write: Broken pipe");
	cr_assert_eq(p.s.want, 0, "a failure waits for nothing");
	pp_side_release(&p.s);
}

/* A unix socket closed with bytes unread resets its peer: the read fails
 * once, and the next one sees the end of the stream (no sticky state on
 * a plain side). */
Test(side, plain_read_error_is_reported_once)
{
	uint8_t buf[16];
	struct pair p;

	plain_pair(&p);
	cr_assert_eq(wr(&p, "unread", 6), 6);
	close(p.peer);
	p.peer = -1;
	cr_assert_eq(rd(&p, buf, sizeof(buf)), PP_IO_ERROR);
	cr_assert_null(p.reason);
	cr_assert_str_eq(p.detail, "client read: Connection reset by peer");
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 0);
	pp_side_release(&p.s);
}

/* ---- TLS -------------------------------------------------------------- */

Test(side, tls_handshake_waits_then_carries_bytes_both_ways)
{
	uint8_t buf[64];
	char got[64];
	struct pair p;

	tls_pair(&p);
	/* Nothing from the client yet: the handshake waits to read. */
	cr_assert_eq(
	    pp_side_handshake(&p.s, &p.reason, p.detail, sizeof(p.detail)),
	    PP_IO_AGAIN);
	cr_assert_eq(p.s.want, UV_READABLE);
	cr_assert_eq(handshake(&p), 1, "%s (%s)", p.reason, p.detail);
	cr_assert_eq(p.s.want, 0, "a finished handshake waits for nothing");
	cr_assert_str_eq(p.sc.verdict.peer_id, nodes[1].id);

	/* Three records: one read takes them all. */
	cr_assert_eq(SSL_write(p.peer_ssl, "one", 3), 3);
	cr_assert_eq(SSL_write(p.peer_ssl, "two", 3), 3);
	cr_assert_eq(SSL_write(p.peer_ssl, "six", 3), 3);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 9);
	cr_assert(memcmp(buf, "onetwosix", 9) == 0);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), PP_IO_AGAIN);
	cr_assert_eq(p.s.want, UV_READABLE);
	cr_assert_eq(wr(&p, "back", 4), 4);
	cr_assert_eq(peer_read(&p, got, sizeof(got)), 4);
	cr_assert(memcmp(got, "back", 4) == 0);
	pair_free(&p);
}

Test(side, tls_write_waits_and_carries_on_with_the_same_bytes)
{
	static uint8_t big[PP_BUF_SIZE];
	char got[PP_BUF_SIZE];
	struct pair p;
	size_t sent = 0, read_back = 0;
	ssize_t n = 0;
	int r;

	memset(big, 'b', sizeof(big));
	tls_ready(&p);
	for (int i = 0; i < 1000 && (n = wr(&p, big, sizeof(big))) > 0; i++)
		sent += (size_t)n;
	cr_assert_eq(n, PP_IO_AGAIN);
	cr_assert_eq(p.s.want, UV_WRITABLE);
	/* The peer reads everything: the same write now goes through. */
	while ((r = peer_read(&p, got, sizeof(got))) > 0)
		read_back += (size_t)r;
	cr_assert_eq(r, -1);
	cr_assert_gt(wr(&p, big, sizeof(big)), 0);
	cr_assert_gt(read_back, 0);
	cr_assert_gt(sent, 0);
	pair_free(&p);
}

Test(side, tls_end_of_stream_after_bytes_is_sticky)
{
	uint8_t buf[64];
	struct pair p;

	tls_ready(&p);
	cr_assert_eq(SSL_write(p.peer_ssl, "tail", 4), 4);
	cr_assert_geq(SSL_shutdown(p.peer_ssl), 0); /* close_notify */
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 4, "the bytes first");
	cr_assert(memcmp(buf, "tail", 4) == 0);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 0, "then the end");
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 0, "and again");
	pair_free(&p);
}

Test(side, tls_failure_after_bytes_is_sticky)
{
	/* Not a TLS record: an unknown content type. */
	static const uint8_t junk[] = {0x99, 0x03, 0x03, 0x00, 0x01, 'x'};
	uint8_t buf[64];
	char first[256];
	struct pair p;

	tls_ready(&p);
	cr_assert_eq(SSL_write(p.peer_ssl, "tail", 4), 4);
	cr_assert_eq(write(p.peer, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 4, "the bytes first");
	cr_assert(memcmp(buf, "tail", 4) == 0);
	cr_assert_eq(ERR_peek_error(), 0, "the error queue is left empty");
	cr_assert_eq(rd(&p, buf, sizeof(buf)), PP_IO_ERROR);
	cr_assert_str_eq(p.reason, "tls_error");
	cr_assert(p.detail[0] != '\0');
	cr_assert_eq(ERR_peek_error(), 0, "the error queue is left empty");
	snprintf(first, sizeof(first), "%s", p.detail);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), PP_IO_ERROR, "and again");
	cr_assert_str_eq(p.reason, "tls_error");
	cr_assert_str_eq(p.detail, first);
	pair_free(&p);
}

Test(side, tls_alert_from_the_peer)
{
	uint8_t buf[64];
	struct pair p;

	tls_ready(&p);
	SSL_send_fatal_alert(p.peer_ssl, SSL_AD_ACCESS_DENIED);
	ERR_clear_error();
	cr_assert_eq(rd(&p, buf, sizeof(buf)), PP_IO_ERROR);
	cr_assert_str_eq(p.reason, "peer_alert");
	cr_assert(t_contains(p.detail, "ACCESS_DENIED"), "%s", p.detail);
	pair_free(&p);
}

Test(side, tls_fin_without_close_notify_ends_the_stream)
{
	uint8_t buf[64];
	struct pair p;

	tls_ready(&p);
	cr_assert_eq(SSL_write(p.peer_ssl, "last", 4), 4);
	cr_assert_eq(shutdown(p.peer, SHUT_WR), 0);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 4);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 0, "passed on as the end");
	pair_free(&p);
}

Test(side, tls_shutdown_ends_one_direction_only)
{
	uint8_t buf[64];
	char got[64];
	struct pair p;

	tls_ready(&p);
	cr_assert_eq(shut(&p), 0);
	cr_assert(p.s.shut);
	cr_assert_eq(peer_read(&p, got, sizeof(got)), 0, "close_notify");
	cr_assert_eq(SSL_write(p.peer_ssl, "more", 4), 4);
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 4, "the other way flows");
	cr_assert(memcmp(buf, "more", 4) == 0);
	pair_free(&p);
}

/* ---- the handshake's failures ----------------------------------------- */

Test(side, handshake_without_a_client_certificate)
{
	SSL_CTX *anon = SSL_CTX_new(TLS_method());
	struct pair p;

	cr_assert_not_null(anon);
	SSL_CTX_set_custom_verify(anon, SSL_VERIFY_NONE, NULL);
	plain_pair(&p);
	p.s.ssl = pp_tls_ssl_new(node0_in.ctx, p.s.fd, &pool, &p.sc);
	p.peer_ssl = SSL_new(anon);
	cr_assert(p.s.ssl != NULL && p.peer_ssl != NULL);
	SSL_set_fd(p.peer_ssl, p.peer);
	SSL_set_accept_state(p.s.ssl);
	SSL_set_connect_state(p.peer_ssl);
	cr_assert_eq(handshake(&p), PP_IO_ERROR);
	cr_assert_str_eq(p.reason, "no_certificate", "%s", p.detail);
	cr_assert_eq(ERR_peek_error(), 0);
	pair_free(&p);
	SSL_CTX_free(anon);
}

Test(side, handshake_below_the_minimum_version)
{
	struct pair p;

	tls_pair(&p);
	cr_assert(SSL_set_min_proto_version(p.peer_ssl, TLS1_2_VERSION));
	cr_assert(SSL_set_max_proto_version(p.peer_ssl, TLS1_2_VERSION));
	cr_assert_eq(handshake(&p), PP_IO_ERROR);
	cr_assert_str_eq(p.reason, "protocol_version", "%s", p.detail);
	pair_free(&p);
}

Test(side, handshake_cut_short_by_the_peer)
{
	struct pair p;

	tls_pair(&p);
	close(p.peer);
	p.peer = -1;
	errno = 0;
	cr_assert_eq(
	    pp_side_handshake(&p.s, &p.reason, p.detail, sizeof(p.detail)),
	    PP_IO_ERROR);
	cr_assert_str_eq(p.reason, "handshake_error");
	cr_assert_str_eq(p.detail, "connection closed during handshake");
	SSL_free(p.peer_ssl);
	pp_side_release(&p.s);
}

/* ---- the loop, close and release -------------------------------------- */

static int ready_calls;
static int closed_calls;

static void
on_ready(uv_poll_t *h, int status, int events)
{
	cr_assert_eq(status, 0);
	cr_assert(events & UV_READABLE);
	cr_assert_eq(*(int *)h->data, 42, "the owner's data");
	ready_calls++;
}

static void
on_closed(uv_handle_t *h)
{
	(void)h;
	closed_calls++;
}

Test(side, the_loop_watches_the_want_mask)
{
	uv_loop_t loop;
	struct pair p;
	int owner = 42;
	uint8_t buf[8];
	char got[8];

	cr_assert_eq(uv_loop_init(&loop), 0);
	tls_ready(&p);
	cr_assert_eq(pp_side_watch(&p.s, &loop, on_ready, &owner), 0);
	cr_assert_eq(p.s.events, 0, "nothing watched before an update");
	cr_assert_eq(rd(&p, buf, sizeof(buf)), PP_IO_AGAIN);
	pp_side_update(&p.s);
	cr_assert_eq(p.s.events, UV_READABLE);
	cr_assert(uv_is_active((uv_handle_t *)&p.s.poll));
	cr_assert_eq(SSL_write(p.peer_ssl, "hi", 2), 2);
	uv_run(&loop, UV_RUN_ONCE);
	cr_assert_eq(ready_calls, 1);
	p.s.want = 0;
	pp_side_update(&p.s);
	cr_assert_eq(p.s.events, 0);
	cr_assert_not(uv_is_active((uv_handle_t *)&p.s.poll));

	/* An orderly close sends close_notify and closes the handle; the
	 * socket stays until the release. */
	pp_side_close(&p.s, PP_CLOSE_GRACEFUL, on_closed);
	cr_assert_eq(peer_read(&p, got, sizeof(got)), 0, "close_notify");
	cr_assert_eq(rd(&p, buf, sizeof(buf)), 2, "still readable");
	cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	cr_assert_eq(closed_calls, 1);
	cr_assert_eq(uv_loop_close(&loop), 0);
	pp_side_release(&p.s);
	cr_assert_eq(p.s.fd, -1);
	cr_assert_null(p.s.ssl);
	SSL_free(p.peer_ssl);
	close(p.peer);
}

/* A connected loopback TCP pair: fd[0] accepted, fd[1] connecting. */
static void
tcp_pair(int fd[2])
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int l;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(l = socket(AF_INET, SOCK_STREAM, 0), 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	cr_assert_geq(fd[1] = socket(AF_INET, SOCK_STREAM, 0), 0);
	cr_assert_eq(connect(fd[1], (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_geq(fd[0] = accept(l, NULL, NULL), 0);
	close(l);
}

Test(side, an_abortive_close_resets_a_tcp_peer)
{
	struct pp_side s;
	char buf[8];
	int fd[2];

	tcp_pair(fd);
	pp_side_init(&s, fd[0], 1, "target");
	pp_side_close(&s, PP_CLOSE_ABORT, on_closed);
	pp_side_release(&s);
	errno = 0;
	cr_assert_eq(read(fd[1], buf, sizeof(buf)), -1);
	cr_assert_eq(errno, ECONNRESET, "%s", strerror(errno));
	cr_assert_eq(closed_calls, 0, "no handle: no callback");
	close(fd[1]);

	tcp_pair(fd);
	pp_side_init(&s, fd[0], 1, "target");
	pp_side_close(&s, PP_CLOSE_GRACEFUL, on_closed);
	pp_side_release(&s);
	cr_assert_eq(read(fd[1], buf, sizeof(buf)), 0, "an orderly FIN");
	close(fd[1]);
}
