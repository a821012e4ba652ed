/*
 * The symbol-clash guard.  criterion pulls OpenSSL 3's libcrypto into every
 * test binary (libgit2 -> libssh2 -> libcrypto.so.3), and its symbols have
 * the same names as BoringSSL's.  If the link order ever let OpenSSL win,
 * every TLS test would silently exercise the wrong library: fail loudly.
 */

#include <dlfcn.h>
#include <string.h>

#include <criterion/criterion.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef OPENSSL_IS_BORINGSSL
#error "the unit tests must compile against BoringSSL's headers"
#endif

Test(tls_lib, openssl_version_is_boringssl)
{
	const char *v = OpenSSL_version(OPENSSL_VERSION);

	cr_assert_not_null(v);
	cr_assert(strstr(v, "BoringSSL") != NULL,
	          "OpenSSL_version(OPENSSL_VERSION) is \"%s\": the process "
	          "binds to another TLS library than BoringSSL",
	          v);
}

/* The same question asked of the dynamic linker: where do the functions
 * the proxy calls come from?  Never from OpenSSL 3's libcrypto.so.3 or
 * libssl.so.3 (BoringSSL is either linked statically, into the binary, or
 * Debian's android libcrypto.so.0 / libssl.so.0). */
static void
assert_not_openssl3(void *fn, const char *name)
{
	Dl_info info;

	cr_assert_neq(dladdr(fn, &info), 0, "dladdr(%s) failed", name);
	cr_assert_not_null(info.dli_fname);
	cr_assert(strstr(info.dli_fname, ".so.3") == NULL,
	          "%s is bound to %s (OpenSSL 3?)", name, info.dli_fname);
}

Test(tls_lib, symbols_bind_to_boringssl)
{
	assert_not_openssl3((void *)OpenSSL_version, "OpenSSL_version");
	assert_not_openssl3((void *)X509_verify_cert, "X509_verify_cert");
	assert_not_openssl3((void *)SSL_CTX_new, "SSL_CTX_new");
	assert_not_openssl3((void *)ERR_get_error, "ERR_get_error");
}

/* Behaviour only BoringSSL has: custom verification callbacks and fixed
 * TLS 1.3 suites (OpenSSL 3 has SSL_CTX_set_ciphersuites instead). */
Test(tls_lib, boringssl_only_api_works)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	cr_assert_not_null(ctx);
	cr_assert_eq(SSL_CTX_set_strict_cipher_list(
	                 ctx, "ECDHE-ECDSA-AES128-GCM-SHA256"),
	             1);
	cr_assert_eq(SSL_CTX_set_strict_cipher_list(ctx, "NO-SUCH-CIPHER"), 0,
	             "strict cipher lists must refuse unknown names");
	ERR_clear_error();
	cr_assert_eq(SSL_CTX_set1_curves_list(ctx, "P-256"), 1);
	SSL_CTX_free(ctx);
}
