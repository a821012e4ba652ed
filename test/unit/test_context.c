/*
 * TLS contexts built from the generated PKI, and a few in-process
 * handshakes over a socketpair to see the verification callback decide
 * with the real library (BoringSSL) in between.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "support.h"
#include "tls/context.h"
#include "tls/tickets.h"
#include "tls/trust.h"
#include "util/bufpool.h"

static struct t_node nodes[3];
static struct pp_bufpool pool; /* the read-ahead buffers of every SSL */

static void
load_nodes(void)
{
	t_nodes(nodes, 3);
	cr_assert_eq(pp_bufpool_init(&pool, 4), 0);
}

static void
drop_pool(void)
{
	pp_bufpool_destroy(&pool);
}

TestSuite(context, .init = load_nodes, .fini = drop_pool);

/* nodes[n].dir/rel, in one of a few static buffers. */
static const char *
nd(int slot, int n, const char *rel)
{
	static char bufs[6][1200];

	return (t_path(bufs[slot], sizeof(bufs[slot]), nodes[n].dir, rel));
}

/* nodes[n].dir/peers/<nodes[peer].id>/file */
static const char *
peer_file(int slot, int n, int peer, const char *file)
{
	static char bufs[4][1400];

	snprintf(bufs[slot], sizeof(bufs[slot]), "%s/peers/%s/%s", nodes[n].dir,
	         nodes[peer].id, file);
	return (bufs[slot]);
}

static struct pp_trust *
trust(const char *ca, int verify_server, const char *required_peer)
{
	struct pp_trust_params p = {.ca_file = ca,
	                            .mode = PP_IDENTITY_AUTO,
	                            .verify_server = verify_server,
	                            .required_peer = required_peer};
	char err[512] = "";
	struct pp_trust *t = pp_trust_new(&p, err, sizeof(err));

	cr_assert_not_null(t, "pp_trust_new: %s", err);
	return (t);
}

static SSL_CTX *
ctx_ok(const struct pp_tls_params *p)
{
	char err[512] = "";
	SSL_CTX *ctx = pp_tls_ctx_new(p, err, sizeof(err));

	cr_assert_not_null(ctx, "pp_tls_ctx_new: %s", err);
	return (ctx);
}

static void
ctx_fails(const struct pp_tls_params *p, const char *mention1,
          const char *mention2)
{
	char err[512] = "";
	SSL_CTX *ctx = pp_tls_ctx_new(p, err, sizeof(err));

	cr_assert_null(ctx, "must fail");
	cr_assert(t_contains(err, mention1), "\"%s\" lacks \"%s\"", err,
	          mention1);
	if (mention2 != NULL)
		cr_assert(t_contains(err, mention2), "\"%s\" lacks \"%s\"", err,
		          mention2);
	cr_assert_eq(ERR_peek_error(), 0, "the TLS error queue is left clean");
}

/* node0, accepting. */
static struct pp_tls_params
node0_server(struct pp_trust *t)
{
	struct pp_tls_params p = {.cert_file = nd(0, 0, "server.crt"),
	                          .key_file = nd(1, 0, "server.key"),
	                          .min_version = TLS1_3_VERSION,
	                          .server = 1,
	                          .trust = t};
	return (p);
}

/* node1, connecting to node0: its leaf plus the cross certificate node0
 * signed for it. */
static struct pp_tls_params
node1_client(struct pp_trust *t)
{
	struct pp_tls_params p = {.cert_file = nd(2, 1, "server.crt"),
	                          .chain_file =
	                              peer_file(0, 1, 0, "sub-ca.crt"),
	                          .key_file = nd(3, 1, "server.key"),
	                          .min_version = TLS1_3_VERSION,
	                          .server = 0,
	                          .trust = t};
	return (p);
}

Test(context, server_context_with_matching_key)
{
	struct pp_trust *t = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_tls_params p = node0_server(t);
	SSL_CTX *ctx = ctx_ok(&p);
	long long not_after = pp_tls_leaf_not_after(ctx);
	long long now = (long long)time(NULL);

	/* pki nodes: server certificates for 365 days from now. */
	cr_assert_gt(not_after, now + 360LL * 86400, "%lld", not_after);
	cr_assert_lt(not_after, now + 370LL * 86400, "%lld", not_after);
	cr_assert_geq(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
	SSL_CTX_free(ctx);
	pp_trust_free(t);
}

Test(context, client_context_with_chain)
{
	struct pp_trust *t =
	    trust(peer_file(1, 1, 0, "root-ca.crt"), 1, nodes[0].id);
	struct pp_tls_params p = node1_client(t);
	SSL_CTX *ctx = ctx_ok(&p);
	STACK_OF(X509) *chain = pp_tls_ctx_chain(ctx);
	const STACK_OF(CRYPTO_BUFFER) *sent = SSL_CTX_get0_chain(ctx);

	cr_assert_not_null(chain);
	cr_assert_eq(sk_X509_num(chain), 1, "the cross certificate is kept");
	cr_assert_not_null(pp_tls_ctx_leaf(ctx));
	cr_assert_not_null(sent);
	cr_assert_eq(sk_CRYPTO_BUFFER_num(sent), 2, "leaf + cross are sent");
	SSL_CTX_free(ctx);
	pp_trust_free(t);
}

Test(context, tls12_minimum)
{
	struct pp_trust *t = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_tls_params p = node0_server(t);
	SSL_CTX *ctx;

	p.min_version = TLS1_2_VERSION;
	ctx = ctx_ok(&p);
	cr_assert_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);
	pp_trust_free(t);
}

Test(context, mismatched_key)
{
	struct pp_trust *t = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_tls_params p = node0_server(t);

	p.key_file = nd(1, 1, "server.key"); /* node1's key, node0's cert */
	ctx_fails(&p, "does not match", p.key_file);
	pp_trust_free(t);
}

Test(context, missing_files_are_named)
{
	struct pp_trust *t = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_tls_params p = node0_server(t);

	p.cert_file = nd(0, 0, "no-such.crt");
	ctx_fails(&p, p.cert_file, NULL);
	p = node0_server(t);
	p.key_file = nd(1, 0, "no-such.key");
	ctx_fails(&p, p.key_file, NULL);
	p = node0_server(t);
	p.chain_file = nd(2, 0, "no-such-chain.crt");
	ctx_fails(&p, p.chain_file, NULL);
	pp_trust_free(t);
}

Test(context, wrong_kind_of_file)
{
	struct pp_trust *t = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_tls_params p = node0_server(t);

	p.cert_file = nd(0, 0, "server.key"); /* no certificate in it */
	ctx_fails(&p, p.cert_file, NULL);
	p = node0_server(t);
	p.key_file = nd(1, 0, "server.crt"); /* no key in it */
	ctx_fails(&p, p.key_file, NULL);
	pp_trust_free(t);
}

Test(context, generic_server_context)
{
	char ca[1024], crt[1024], key[1024];
	struct pp_trust *t =
	    trust(t_pki_path(ca, sizeof(ca), "generic/ca.crt"), 0, NULL);
	struct pp_tls_params p = {
	    .cert_file = t_pki_path(crt, sizeof(crt), "generic/server.crt"),
	    .key_file = t_pki_path(key, sizeof(key), "generic/server.key"),
	    .min_version = TLS1_2_VERSION,
	    .server = 1,
	    .trust = t};
	SSL_CTX *ctx = ctx_ok(&p);

	SSL_CTX_free(ctx);
	t_pki_path(key, sizeof(key), "generic/client.key");
	ctx_fails(&p, "does not match", NULL);
	pp_trust_free(t);
}

/* ---- in-process handshakes ------------------------------------------ */

struct side {
	SSL *ssl;
	struct pp_tls_conn c;
	int done, failed;
};

static void
nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	cr_assert(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

/* Advance ${s}'s handshake by one step. */
static void
step(struct side *s)
{
	int r, e;

	if (s->done || s->failed)
		return;
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->done = 1;
		return;
	}
	e = SSL_get_error(s->ssl, r);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		s->failed = 1;
	ERR_clear_error();
}

/* Run a handshake between ${server_ctx} and ${client_ctx} over a
 * socketpair; fd[0] is the server's, fd[1] the client's.  The client offers
 * cli->c.offer and keeps new sessions with cli->c.keep_session if the
 * caller set them. */
static void
handshake(SSL_CTX *server_ctx, SSL_CTX *client_ctx, struct side *srv,
          struct side *cli, int fd[2])
{
	struct pp_tls_conn keep = cli->c; /* the caller's resumption hooks */

	memset(srv, 0, sizeof(*srv));
	memset(cli, 0, sizeof(*cli));
	cli->c.offer = keep.offer;
	cli->c.keep_session = keep.keep_session;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0, "%s",
	             strerror(errno));
	nonblocking(fd[0]);
	nonblocking(fd[1]);
	srv->ssl = pp_tls_ssl_new(server_ctx, fd[0], &pool, &srv->c);
	cli->ssl = pp_tls_ssl_new(client_ctx, fd[1], &pool, &cli->c);
	cr_assert_not_null(srv->ssl);
	cr_assert_not_null(cli->ssl);
	SSL_set_accept_state(srv->ssl);
	SSL_set_connect_state(cli->ssl);
	for (int i = 0; i < 100 && !(srv->done && cli->done); i++) {
		step(cli);
		step(srv);
		if (srv->failed || cli->failed) {
			/* Let the other side see the alert. */
			step(cli);
			step(srv);
			break;
		}
	}
}

static void
finish(struct side *srv, struct side *cli, int fd[2])
{
	SSL_free(srv->ssl);
	SSL_free(cli->ssl);
	cr_assert_eq(pool.in_use, 0, "a read-ahead buffer outlived its SSL");
	close(fd[0]);
	close(fd[1]);
}

/* Read from ${s} until data or a final error; return the byte count, or
 * -1 on a TLS error (such as a received alert). */
static int
read_some(struct side *s, char *buf, int len)
{
	for (int i = 0; i < 100; i++) {
		int r = SSL_read(s->ssl, buf, len);
		int e;

		if (r > 0)
			return (r);
		e = SSL_get_error(s->ssl, r);
		ERR_clear_error();
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return (-1);
		usleep(1000);
	}
	return (0);
}

Test(context, handshake_node1_to_node0)
{
	struct pp_trust *st = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_trust *ct =
	    trust(peer_file(1, 1, 0, "root-ca.crt"), 1, nodes[0].id);
	struct pp_tls_params sp = node0_server(st), cp = node1_client(ct);
	SSL_CTX *sctx = ctx_ok(&sp), *cctx = ctx_ok(&cp);
	struct side srv = {0}, cli = {0};
	char buf[64];
	int fd[2];

	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(srv.done && cli.done,
	          "handshake did not complete: server %s (%s), client %s "
	          "(%s)",
	          pp_refusal_name(srv.c.verdict.reason), srv.c.verdict.detail,
	          pp_refusal_name(cli.c.verdict.reason), cli.c.verdict.detail);
	cr_assert_eq(SSL_version(srv.ssl), TLS1_3_VERSION);
	cr_assert_eq(srv.c.verdict.reason, PP_ACCEPTED);
	cr_assert_str_eq(srv.c.verdict.peer_id, nodes[1].id,
	                 "server sees node1");
	cr_assert_eq(cli.c.verdict.reason, PP_ACCEPTED);
	cr_assert_str_eq(cli.c.verdict.peer_id, nodes[0].id,
	                 "client sees node0");

	cr_assert_eq(SSL_write(cli.ssl, "ping", 4), 4);
	cr_assert_eq(read_some(&srv, buf, sizeof(buf)), 4);
	cr_assert(memcmp(buf, "ping", 4) == 0);
	cr_assert_eq(SSL_write(srv.ssl, "pong", 4), 4);
	cr_assert_eq(read_some(&cli, buf, sizeof(buf)), 4);
	cr_assert(memcmp(buf, "pong", 4) == 0);

	finish(&srv, &cli, fd);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	pp_trust_free(st);
	pp_trust_free(ct);
}

/* A forged client (dup-serial: passes the name constraint, fails the
 * identity rule).  In TLS 1.3 the client finishes first and learns of the
 * refusal from an alert on its first read (pki.md pitfall 6). */
Test(context, handshake_refuses_a_forged_client)
{
	char chain[1024], key[1024];
	struct pp_trust *st = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_trust *ct =
	    trust(peer_file(1, 1, 0, "root-ca.crt"), 1, nodes[0].id);
	struct pp_tls_params sp = node0_server(st),
	                     cp = {.cert_file = t_pki_path(
	                               chain, sizeof(chain),
	                               "nodes/forged/dup-serial/chain.pem"),
	                           .key_file = t_pki_path(
	                               key, sizeof(key),
	                               "nodes/forged/dup-serial/key.pem"),
	                           .min_version = TLS1_3_VERSION,
	                           .trust = ct};
	SSL_CTX *sctx = ctx_ok(&sp), *cctx = ctx_ok(&cp);
	struct side srv = {0}, cli = {0};
	char buf[64];
	int fd[2];

	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(srv.failed, "the server must refuse");
	cr_assert_str_eq(pp_refusal_name(srv.c.verdict.reason), "bad_identity",
	                 "%s", srv.c.verdict.detail);
	cr_assert_str_eq(srv.c.verdict.peer_id, "",
	                 "two serialNumbers: no peer id");
	if (!cli.failed)
		cr_assert_eq(read_some(&cli, buf, sizeof(buf)), -1,
		             "the client must learn of the refusal");
	finish(&srv, &cli, fd);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	pp_trust_free(st);
	pp_trust_free(ct);
}

/* The outbound side refuses a server that is not the required peer:
 * node1 expects node2 but reaches node0. */
Test(context, handshake_refuses_the_wrong_server)
{
	struct pp_trust *st = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_trust *ct =
	    trust(peer_file(1, 1, 0, "root-ca.crt"), 1, nodes[2].id);
	struct pp_tls_params sp = node0_server(st), cp = node1_client(ct);
	SSL_CTX *sctx = ctx_ok(&sp), *cctx = ctx_ok(&cp);
	struct side srv = {0}, cli = {0};
	int fd[2];

	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(cli.failed, "the client must refuse");
	cr_assert_str_eq(pp_refusal_name(cli.c.verdict.reason),
	                 "peer_not_allowed", "%s", cli.c.verdict.detail);
	cr_assert_not(srv.done, "the server must not complete");
	finish(&srv, &cli, fd);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	pp_trust_free(st);
	pp_trust_free(ct);
}

/* A server context demands a client certificate. */
Test(context, handshake_requires_a_client_certificate)
{
	struct pp_trust *st = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_tls_params sp = node0_server(st);
	SSL_CTX *sctx = ctx_ok(&sp), *cctx = SSL_CTX_new(TLS_method());
	struct side srv = {0}, cli = {0};
	char buf[16];
	int fd[2];

	cr_assert_not_null(cctx);
	SSL_CTX_set_custom_verify(cctx, SSL_VERIFY_NONE, NULL);
	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(srv.failed, "no client certificate: the server refuses");
	if (!cli.failed)
		cr_assert_eq(read_some(&cli, buf, sizeof(buf)), -1);
	finish(&srv, &cli, fd);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	pp_trust_free(st);
}

/* The resumption test's client session cache: the latest session. */
static SSL_SESSION *kept;

static void
keep_session(struct pp_tls_conn *c, SSL_SESSION *sess)
{
	(void)c;
	SSL_SESSION_free(kept);
	kept = sess;
}

/* The gate of the resumption test: refuses while *arg is non-zero. */
static int
gate_flag(void *arg, const char *peer_id, char *detail, size_t len)
{
	if (*(int *)arg == 0)
		return (0);
	snprintf(detail, len, "peer %s deactivated", peer_id);
	return (-1);
}

/* A session resumed after the peer was deactivated must be refused: the
 * certificate exchange is skipped, so the tunnel runs pp_tls_verify on the
 * session's chain again. */
Test(context, resumed_session_is_verified_again)
{
	int deactivated = 0;
	struct pp_trust_params stp = {.ca_file = nd(5, 0, "root-ca.crt"),
	                              .mode = PP_IDENTITY_AUTO,
	                              .gate = gate_flag,
	                              .gate_arg = &deactivated};
	char err[512] = "", buf[64];
	struct pp_trust *st = pp_trust_new(&stp, err, sizeof(err));
	struct pp_trust *ct =
	    trust(peer_file(1, 1, 0, "root-ca.crt"), 1, nodes[0].id);
	struct pp_tls_params sp = node0_server(st), cp = node1_client(ct);
	SSL_CTX *sctx, *cctx;
	struct side srv = {0}, cli = {0};
	int fd[2];

	cr_assert_not_null(st, "%s", err);
	sp.session_resumption = cp.session_resumption = 1;
	sctx = ctx_ok(&sp);
	cctx = ctx_ok(&cp);

	/* First connection: full handshake; the ticket arrives after it. */
	cli.c.keep_session = keep_session;
	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(srv.done && cli.done);
	cr_assert_not(SSL_session_reused(srv.ssl));
	cr_assert_eq(SSL_write(srv.ssl, "x", 1), 1);
	cr_assert_eq(read_some(&cli, buf, sizeof(buf)), 1);
	cr_assert_not_null(kept, "the client kept the server's ticket");
	finish(&srv, &cli, fd);

	/* Second connection resumes and passes the re-check. */
	cli.c.offer = kept;
	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(srv.done && cli.done);
	cr_assert(SSL_session_reused(srv.ssl), "the session was resumed");
	cr_assert_eq(pp_tls_verify(srv.ssl, &srv.c.verdict), 0, "%s",
	             srv.c.verdict.detail);
	cr_assert_str_eq(srv.c.verdict.peer_id, nodes[1].id);
	finish(&srv, &cli, fd);

	/* Deactivated meanwhile: the resumed session is refused. */
	deactivated = 1;
	cli.c.offer = kept;
	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(SSL_session_reused(srv.ssl), "the session was resumed");
	cr_assert_eq(pp_tls_verify(srv.ssl, &srv.c.verdict), -1);
	cr_assert_str_eq(pp_refusal_name(srv.c.verdict.reason),
	                 "peer_inactive");
	finish(&srv, &cli, fd);

	SSL_SESSION_free(kept);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	pp_trust_free(st);
	pp_trust_free(ct);
}

/* One connection from ${cctx} to ${sctx}, offering ${offer} (NULL: none);
 * 1 if the server resumed it.  The ticket the server sends is in kept. */
static int
connect_once(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer)
{
	struct side srv = {0}, cli = {0};
	char buf[8];
	int fd[2], reused;

	cli.c.offer = offer;
	cli.c.keep_session = keep_session;
	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(srv.done && cli.done);
	reused = SSL_session_reused(srv.ssl);
	cr_assert_eq(SSL_write(srv.ssl, "x", 1), 1);
	cr_assert_eq(read_some(&cli, buf, sizeof(buf)), 1);
	finish(&srv, &cli, fd);
	return (reused);
}

static uint64_t fake_now = 1000;

static uint64_t
fake_clock(void)
{
	return (fake_now);
}

/* A server context of node0 sealing its tickets with ring ${k}. */
static SSL_CTX *
ticket_server(struct pp_trust *st, struct pp_tickets *k)
{
	struct pp_tls_params sp = node0_server(st);

	sp.session_resumption = 1;
	sp.tickets = k;
	return (ctx_ok(&sp));
}

Test(context, tickets_outlive_the_context_that_sealed_them)
{
	struct pp_trust *st = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_trust *ct =
	    trust(peer_file(1, 1, 0, "root-ca.crt"), 1, nodes[0].id);
	struct pp_tls_params cp = node1_client(ct);
	struct pp_tickets *a = pp_tickets_get("in-a");
	SSL_CTX *cctx, *s1, *s2, *other, *own;
	SSL_SESSION *ticket;

	pp_tickets_set_clock(fake_clock);
	cr_assert_not_null(a);
	cr_assert_eq(pp_tickets_get("in-a"), a, "one ring per name");
	cp.session_resumption = 1;
	cctx = ctx_ok(&cp);
	s1 = ticket_server(st, a);
	cr_assert_not(connect_once(s1, cctx, NULL));
	cr_assert_not_null(kept, "the client kept the server's ticket");
	ticket = kept;
	SSL_SESSION_up_ref(ticket);

	/* A reload: a new context of the same tunnel opens the ticket. */
	s2 = ticket_server(st, a);
	cr_assert(connect_once(s2, cctx, ticket), "resumed after a reload");
	/* Another tunnel's ring, or a context's own keys, do not. */
	other = ticket_server(st, pp_tickets_get("in-b"));
	cr_assert_not(connect_once(other, cctx, ticket));
	own = ticket_server(st, NULL);
	cr_assert_not(connect_once(own, cctx, ticket));

	/* One rotation later the old key still opens it; two, no more. */
	fake_now += PP_TICKETS_ROTATE_S;
	cr_assert(connect_once(s2, cctx, ticket), "the previous key opens it");
	fake_now += PP_TICKETS_ROTATE_S;
	cr_assert_not(connect_once(s2, cctx, ticket), "its key is gone");
	/* Idle for longer than both keys live: a fresh key, tickets work. */
	fake_now += 10 * PP_TICKETS_ROTATE_S;
	cr_assert_not(connect_once(s1, cctx, NULL));
	cr_assert(connect_once(s2, cctx, kept), "a new key's ticket opens");

	pp_tickets_set_clock(NULL);
	SSL_SESSION_free(ticket);
	SSL_SESSION_free(kept);
	kept = NULL;
	SSL_CTX_free(s1);
	SSL_CTX_free(s2);
	SSL_CTX_free(other);
	SSL_CTX_free(own);
	SSL_CTX_free(cctx);
	pp_trust_free(st);
	pp_trust_free(ct);
}

Test(context, connections_share_one_copy_of_a_peer_chain)
{
	struct pp_trust *st = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	struct pp_trust *ct =
	    trust(peer_file(1, 1, 0, "root-ca.crt"), 1, nodes[0].id);
	struct pp_tls_params sp = node0_server(st), cp = node1_client(ct);
	SSL_CTX *sctx = ctx_ok(&sp), *cctx = ctx_ok(&cp);
	struct side srv[2] = {0}, cli[2] = {0};
	int fd[2][2];

	for (int i = 0; i < 2; i++) {
		handshake(sctx, cctx, &srv[i], &cli[i], fd[i]);
		cr_assert(srv[i].done && cli[i].done, "handshake %d", i);
	}
	/* BoringSSL keeps the chain as DER only: no parsed X509 per
	 * connection ... */
	cr_assert_null(SSL_get_peer_certificate(srv[0].ssl));
	const STACK_OF(CRYPTO_BUFFER) *a =
	    SSL_get0_peer_certificates(srv[0].ssl);
	const STACK_OF(CRYPTO_BUFFER) *b =
	    SSL_get0_peer_certificates(srv[1].ssl);
	cr_assert_eq(sk_CRYPTO_BUFFER_num(a), 2, "leaf + cross certificate");
	cr_assert_eq(sk_CRYPTO_BUFFER_num(b), 2);
	/* ... and the pool makes both connections point at one copy. */
	for (size_t i = 0; i < 2; i++)
		cr_assert_eq(sk_CRYPTO_BUFFER_value(a, i),
		             sk_CRYPTO_BUFFER_value(b, i),
		             "certificate %zu stored twice", i);
	for (int i = 0; i < 2; i++)
		finish(&srv[i], &cli[i], fd[i]);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	pp_trust_free(st);
	pp_trust_free(ct);
}

/* ---- key types ------------------------------------------------------- */

/* In ${dir}: ca.crt/ca.key and the leaves server and client under it, each
 * with a key made by "openssl req -newkey ${spec}". */
static void
x509_pki(const char *dir, const char *spec)
{
	cr_assert_eq(
	    t_sh("cd '%s' && openssl req -x509 -new -newkey %s -nodes "
	         "-keyout ca.key -subj /CN=ca -days 2 -addext "
	         "basicConstraints=critical,CA:true -addext "
	         "keyUsage=critical,keyCertSign -out ca.crt && "
	         "for n in server client; do "
	         "openssl req -new -newkey %s -nodes -keyout $n.key "
	         "-subj /CN=$n -out $n.csr && "
	         "openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key "
	         "-CAcreateserial -days 2 -out $n.crt || exit 1; done",
	         dir, spec, spec),
	    0, "openssl could not make a %s PKI", spec);
}

Test(context, ed25519_keys_make_a_handshake)
{
	char dir[512], ca[600], sc[600], sk[600], cc[600], ck[600];
	struct pp_trust *st, *ct;
	struct pp_tls_params sp = {.min_version = TLS1_3_VERSION, .server = 1},
	                     cp = {.min_version = TLS1_3_VERSION};
	struct side srv = {0}, cli = {0};
	SSL_CTX *sctx, *cctx;
	int fd[2];

	t_tmpdir(dir, sizeof(dir));
	x509_pki(dir, "ed25519");
	st = trust(t_path(ca, sizeof(ca), dir, "ca.crt"), 0, NULL);
	ct = trust(ca, 1, NULL);
	sp.cert_file = t_path(sc, sizeof(sc), dir, "server.crt");
	sp.key_file = t_path(sk, sizeof(sk), dir, "server.key");
	cp.cert_file = t_path(cc, sizeof(cc), dir, "client.crt");
	cp.key_file = t_path(ck, sizeof(ck), dir, "client.key");
	sp.trust = st;
	cp.trust = ct;
	sctx = ctx_ok(&sp);
	cctx = ctx_ok(&cp);
	handshake(sctx, cctx, &srv, &cli, fd);
	cr_assert(srv.done && cli.done,
	          "handshake did not complete: server %s (%s), client %s (%s)",
	          pp_refusal_name(srv.c.verdict.reason), srv.c.verdict.detail,
	          pp_refusal_name(cli.c.verdict.reason), cli.c.verdict.detail);
	cr_assert_eq(SSL_get_peer_signature_algorithm(srv.ssl),
	             SSL_SIGN_ED25519);
	cr_assert_eq(SSL_get_peer_signature_algorithm(cli.ssl),
	             SSL_SIGN_ED25519);
	finish(&srv, &cli, fd);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	pp_trust_free(st);
	pp_trust_free(ct);
	t_rmtree(dir);
}

Test(context, a_weak_key_anywhere_in_our_files_is_named)
{
	char dir[512], crt[600], key[600], chain[600];
	struct pp_trust *t;
	struct pp_tls_params p = {.min_version = TLS1_3_VERSION, .server = 1};

	t_tmpdir(dir, sizeof(dir));
	x509_pki(dir, "rsa:1024");
	t = trust(nd(5, 0, "root-ca.crt"), 0, NULL);
	p.trust = t;
	/* Our own key: named by its file, with its size. */
	p.cert_file = t_path(crt, sizeof(crt), dir, "server.crt");
	p.key_file = t_path(key, sizeof(key), dir, "server.key");
	ctx_fails(&p, key, "RSA key of 1024 bits: too weak");
	/* A chain certificate: named by its file, number and subject. */
	p.cert_file = nd(0, 0, "server.crt");
	p.key_file = nd(1, 0, "server.key");
	p.chain_file = t_path(chain, sizeof(chain), dir, "ca.crt");
	ctx_fails(&p, chain,
	          "certificate #1 (\"CN=ca\"): RSA key of 1024 "
	          "bits");
	pp_trust_free(t);
	t_rmtree(dir);
}
