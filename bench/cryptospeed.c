/*
 * bench/cryptospeed.c: the public-key operations of one TLS 1.3 mutual
 * handshake, timed on the PKI's own keys with the BoringSSL that peerproxy
 * links (bench/run builds it with the flags of peerproxy's own link line).
 * It fills a gap of `bssl speed`, which in BoringSSL 13 (Debian 12) has RSA
 * 2048 and 4096 but not the RSA-3072 Swaptacular uses.
 *
 *   cryptospeed KEY.pem CERT.pem ISSUER.pem [SECONDS]
 *
 * KEY signs like a CertificateVerify (RSA-PSS-SHA256 or ECDSA-SHA256, 130
 * bytes of input as TLS 1.3 signs), CERT's public key verifies that, and
 * ISSUER's public key verifies CERT's own signature (one link of a chain).
 * Prints one line: sign_per_s= verify_per_s= certsig_per_s=
 * x25519_keygen_per_s= x25519_shared_per_s=
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/curve25519.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "pemfile.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static void *
load(const char *path, int cert)
{
	return (pem_read_or_exit("cryptospeed", path, cert));
}

/* The digest-sign/verify context for ${key} as TLS 1.3 uses it. */
static int
md_init(EVP_MD_CTX *ctx, EVP_PKEY *key, int sign)
{
	EVP_PKEY_CTX *pctx;
	int ok =
	    sign ? EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, key)
	         : EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, key);

	if (!ok)
		return (0);
	if (EVP_PKEY_id(key) == EVP_PKEY_RSA) {
		ok =
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1);
	}
	return (ok);
}

/* Run ${op} for about ${secs} seconds; operations per second. */
#define TIMED(secs, op)                                                        \
	({                                                                     \
		double t0_ = now(), el_;                                       \
		long n_ = 0;                                                   \
		do {                                                           \
			for (int k_ = 0; k_ < 8; k_++, n_++) {                 \
				op;                                            \
			}                                                      \
		} while ((el_ = now() - t0_) < (secs));                        \
		(double)n_ / el_;                                              \
	})

int
main(int argc, char **argv)
{
	uint8_t msg[130], sig[1024], scratch[1024], pub[32], priv[32], peer[32],
	    out[32];
	size_t siglen = sizeof(sig);
	double secs = argc > 4 ? atof(argv[4]) : 1.0;
	EVP_PKEY *key, *certkey, *issuerkey;
	X509 *cert, *issuer;
	EVP_MD_CTX ctx;
	int bad = 0;

	if (argc < 4) {
		fprintf(stderr,
		        "usage: cryptospeed KEY.pem CERT.pem ISSUER.pem "
		        "[SECONDS]\n");
		return (2);
	}
	key = load(argv[1], 0);
	cert = load(argv[2], 1);
	issuer = load(argv[3], 1);
	certkey = X509_get_pubkey(cert);
	issuerkey = X509_get_pubkey(issuer);
	memset(msg, ' ', 64);
	memcpy(msg + 64, "TLS 1.3, server CertificateVerify", 34);
	memset(msg + 98, 0xa5, sizeof(msg) - 98);

	EVP_MD_CTX_init(&ctx);
	if (!md_init(&ctx, key, 1) ||
	    !EVP_DigestSign(&ctx, sig, &siglen, msg, sizeof(msg))) {
		fprintf(stderr, "cryptospeed: cannot sign with %s\n", argv[1]);
		return (1);
	}
	EVP_MD_CTX_cleanup(&ctx);
	if (X509_verify(cert, issuerkey) != 1) {
		fprintf(stderr, "cryptospeed: %s is not signed by %s\n",
		        argv[2], argv[3]);
		return (1);
	}

	double sign = TIMED(secs, {
		size_t l = sizeof(scratch);
		EVP_MD_CTX_init(&ctx);
		bad |= !md_init(&ctx, key, 1) ||
		       !EVP_DigestSign(&ctx, scratch, &l, msg, sizeof(msg));
		EVP_MD_CTX_cleanup(&ctx);
	});
	double verify = TIMED(secs, {
		EVP_MD_CTX_init(&ctx);
		bad |= !md_init(&ctx, certkey, 0) ||
		       !EVP_DigestVerify(&ctx, sig, siglen, msg, sizeof(msg));
		EVP_MD_CTX_cleanup(&ctx);
	});
	double certsig =
	    TIMED(secs, { bad |= X509_verify(cert, issuerkey) != 1; });
	X25519_keypair(peer, priv);
	double keygen = TIMED(secs, { X25519_keypair(pub, priv); });
	double shared = TIMED(secs, { bad |= !X25519(out, priv, peer); });
	if (bad) {
		fprintf(stderr, "cryptospeed: an operation failed\n");
		return (1);
	}
	printf("key=%s bits=%d sign_per_s=%.1f verify_per_s=%.1f "
	       "certsig_per_s=%.1f x25519_keygen_per_s=%.1f "
	       "x25519_shared_per_s=%.1f\n",
	       EVP_PKEY_id(key) == EVP_PKEY_RSA ? "rsa" : "ec",
	       EVP_PKEY_bits(key), sign, verify, certsig, keygen, shared);
	EVP_PKEY_free(key);
	EVP_PKEY_free(certkey);
	EVP_PKEY_free(issuerkey);
	X509_free(cert);
	X509_free(issuer);
	return (0);
}
