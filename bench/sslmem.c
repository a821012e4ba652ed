/*
 * bench/sslmem.c: heap that BoringSSL itself holds per idle TLS 1.3
 * connection, set up the way peerproxy sets up its contexts (custom
 * verify, no session cache, no tickets), to tell the library's share of
 * peerproxy's memory per idle tunnel from peerproxy's own.  A diagnostic:
 * bench/run does not run it.
 *
 *   cc -O2 -o sslmem bench/sslmem.c -I$BSSL/include $BSSL/lib/libssl.a \
 *       $BSSL/lib/libcrypto.a -lpthread -lstdc++
 *   sslmem PEMDIR N [x509|buffers]
 *
 * PEMDIR holds server-cert.pem, server-key.pem, client-leaf.pem,
 * client-cross.pem, client-key.pem (as bench/lib/setup.sh writes them).
 * N client/server pairs over socketpairs do a mutual handshake and echo one
 * byte each way, then sit idle; the heap in use (mallinfo2) before and
 * after, and after freeing the clients, gives KiB per server and per client
 * connection.  "x509" builds the contexts with TLS_method() and X509
 * objects; "buffers" with TLS_with_buffers_method() and CRYPTO_BUFFERs,
 * which keeps no parsed X509 copies of the peer's chain, as peerproxy does
 * (measured here: 15.7 -> 4.7 KiB per server connection, 9.5 -> 3.9 per
 * client, which is why it does).
 */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "pemfile.h"

static enum ssl_verify_result_t
accept_all(SSL *ssl, uint8_t *alert)
{
	(void)ssl;
	(void)alert;
	return (ssl_verify_ok);
}

static void *
read_pem(const char *dir, const char *name, int cert)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return (pem_read_or_exit("sslmem", path, cert));
}

static CRYPTO_BUFFER *
to_buffer(X509 *x)
{
	uint8_t *der = NULL;
	int len = i2d_X509(x, &der);
	CRYPTO_BUFFER *b = CRYPTO_BUFFER_new(der, (size_t)len, NULL);

	OPENSSL_free(der);
	return (b);
}

/* A context like peerproxy's: leaf (+ chain), key, TLS 1.3, no resumption. */
static SSL_CTX *
context(const char *dir, const char *cert, const char *chain, const char *key,
        int server, int buffers)
{
	X509 *leaf = read_pem(dir, cert, 1);
	X509 *extra = chain ? read_pem(dir, chain, 1) : NULL;
	EVP_PKEY *pkey = read_pem(dir, key, 0);
	SSL_CTX *ctx =
	    SSL_CTX_new(buffers ? TLS_with_buffers_method() : TLS_method());
	int ok;

	if (buffers) {
		CRYPTO_BUFFER *certs[2] = {to_buffer(leaf),
		                           extra ? to_buffer(extra) : NULL};
		ok = SSL_CTX_set_chain_and_key(ctx, certs, extra ? 2 : 1, pkey,
		                               NULL);
	} else {
		ok = SSL_CTX_use_certificate(ctx, leaf) &&
		     (extra == NULL || SSL_CTX_add1_chain_cert(ctx, extra)) &&
		     SSL_CTX_use_PrivateKey(ctx, pkey);
	}
	if (!ok) {
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_custom_verify(ctx,
	                          server ? SSL_VERIFY_PEER |
	                                       SSL_VERIFY_FAIL_IF_NO_PEER_CERT
	                                 : SSL_VERIFY_PEER,
	                          accept_all);
	return (ctx);
}

/* Read until the one expected byte came (bounded retries). */
static void
read_one(SSL *ssl)
{
	uint8_t b;

	for (int i = 0; i < 100 && SSL_read(ssl, &b, 1) != 1; i++)
		;
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: sslmem PEMDIR N [x509|buffers]\n");
		return (2);
	}
	const char *dir = argv[1];
	int n = atoi(argv[2]);
	int buffers = argc > 3 && strcmp(argv[3], "buffers") == 0;
	SSL_CTX *sctx =
	    context(dir, "server-cert.pem", NULL, "server-key.pem", 1, buffers);
	SSL_CTX *cctx = context(dir, "client-leaf.pem", "client-cross.pem",
	                        "client-key.pem", 0, buffers);
	SSL **srv = calloc((size_t)n, sizeof(*srv));
	SSL **cli = calloc((size_t)n, sizeof(*cli));
	size_t before = mallinfo2().uordblks;

	for (int i = 0; i < n; i++) {
		int sv[2], done_s = 0, done_c = 0;
		uint8_t b;

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
			perror("socketpair");
			return (1);
		}
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
		fcntl(sv[1], F_SETFL, O_NONBLOCK);
		srv[i] = SSL_new(sctx);
		cli[i] = SSL_new(cctx);
		SSL_set_fd(srv[i], sv[0]);
		SSL_set_fd(cli[i], sv[1]);
		SSL_set_accept_state(srv[i]);
		SSL_set_connect_state(cli[i]);
		for (int k = 0; k < 100 && !(done_s && done_c); k++) {
			done_c = done_c || SSL_do_handshake(cli[i]) == 1;
			done_s = done_s || SSL_do_handshake(srv[i]) == 1;
		}
		if (!(done_s && done_c)) {
			fprintf(stderr, "sslmem: handshake %d failed\n", i);
			ERR_print_errors_fp(stderr);
			return (1);
		}
		SSL_write(cli[i], "E", 1);
		read_one(srv[i]);
		SSL_write(srv[i], "h", 1);
		read_one(cli[i]);
		/* Leave both idle, as after a read that would block. */
		SSL_read(srv[i], &b, 1);
		SSL_read(cli[i], &b, 1);
	}
	size_t with_all = mallinfo2().uordblks;
	for (int i = 0; i < n; i++)
		SSL_free(cli[i]);
	size_t servers_only = mallinfo2().uordblks;
	printf("method=%s n=%d heap per idle connection: server %.1f KiB, "
	       "client %.1f KiB\n",
	       buffers ? "buffers" : "x509", n,
	       (double)(servers_only - before) / n / 1024,
	       (double)(with_all - servers_only) / n / 1024);
	return (0);
}
