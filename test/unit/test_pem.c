/*
 * Tolerant PEM loading.  Material is generated per test with the openssl
 * command line tool in a private temporary directory.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/x509.h>

#include "support.h"
#include "tls/pem.h"

static char dir[512];

static void
setup(void)
{
	t_tmpdir(dir, sizeof(dir));
}

static void
teardown(void)
{
	t_rmtree(dir);
}

TestSuite(pem, .init = setup, .fini = teardown);

/* dir/name, in a buffer that lives until the next call with the same
 * slot. */
static const char *
p(int slot, const char *name)
{
	static char bufs[4][1024];

	return (t_path(bufs[slot], sizeof(bufs[slot]), dir, name));
}

static void
sh_ok(const char *what, int rc)
{
	cr_assert_eq(rc, 0, "openssl failed: %s", what);
}

/* An EC P-256 key in PKCS#8 ("BEGIN PRIVATE KEY") at dir/name. */
static const char *
ec_key(const char *name)
{
	sh_ok(name, t_sh("openssl genpkey -algorithm EC -pkeyopt "
	                 "ec_paramgen_curve:P-256 -out '%s'",
	                 p(0, name)));
	return (p(0, name));
}

/* A self-signed certificate CN=${cn} for dir/key, written as
 * "openssl x509 -text" does: a text dump, then the PEM block (the way
 * Swaptacular's CA scripts write certificates). */
static void
cert_with_dump(const char *key, const char *cn, const char *out)
{
	sh_ok(cn, t_sh("cd '%s' && openssl req -x509 -new -key '%s' -subj "
	               "'/CN=%s' -days 2 -out tmp.pem && openssl x509 -in "
	               "tmp.pem -text > '%s' && rm tmp.pem",
	               dir, key, cn, out));
}

static void
assert_cn(X509 *x, const char *want)
{
	char cn[128] = "";

	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
	                          sizeof(cn));
	cr_assert_str_eq(cn, want);
}

static void
assert_cert_error(const char *path, const char *also)
{
	char err[512] = "";
	STACK_OF(X509) *certs = pp_pem_load_certs(path, err, sizeof(err));

	cr_assert_null(certs, "%s must be refused", path);
	cr_assert(t_contains(err, path), "error must name the file: \"%s\"",
	          err);
	if (also != NULL)
		cr_assert(t_contains(err, also), "error \"%s\" lacks \"%s\"",
		          err, also);
}

static void
assert_key_error(const char *path, const char *also)
{
	char err[512] = "";
	EVP_PKEY *key = pp_pem_load_key(path, err, sizeof(err));

	cr_assert_null(key, "%s must be refused", path);
	cr_assert(t_contains(err, path), "error must name the file: \"%s\"",
	          err);
	if (also != NULL)
		cr_assert(t_contains(err, also), "error \"%s\" lacks \"%s\"",
		          err, also);
}

static EVP_PKEY *
key_ok(const char *path)
{
	char err[512] = "";
	EVP_PKEY *key = pp_pem_load_key(path, err, sizeof(err));

	cr_assert_not_null(key, "%s must load: %s", path, err);
	return (key);
}

/* ---- certificates -------------------------------------------------- */

Test(pem, text_dump_before_the_block_is_skipped)
{
	char err[512] = "";
	STACK_OF(X509) * certs;
	char *text;

	cert_with_dump(ec_key("k.pem"), "dumped", p(1, "c.crt"));
	text = t_read(p(1, "c.crt"), NULL);
	cr_assert(strncmp(text, "Certificate:", 12) == 0,
	          "the fixture must start with a text dump");
	free(text);

	certs = pp_pem_load_certs(p(1, "c.crt"), err, sizeof(err));
	cr_assert_not_null(certs, "%s", err);
	cr_assert_eq(sk_X509_num(certs), 1);
	assert_cn(sk_X509_value(certs, 0), "dumped");
	sk_X509_pop_free(certs, X509_free);
}

Test(pem, several_certificates_in_file_order)
{
	static const char *const cns[] = {"one", "two", "three"};
	char err[512] = "";
	STACK_OF(X509) * certs;
	const char *key = ec_key("k.pem");

	for (int i = 0; i < 3; i++) {
		char name[32];
		snprintf(name, sizeof(name), "c%d.crt", i);
		cert_with_dump(key, cns[i], p(1, name));
	}
	/* Text dumps before every block, and prose between them. */
	sh_ok("cat", t_sh("cd '%s' && { cat c0.crt; echo 'some words'; cat "
	                  "c1.crt c2.crt; echo trailer; } > all.pem",
	                  dir));
	certs = pp_pem_load_certs(p(1, "all.pem"), err, sizeof(err));
	cr_assert_not_null(certs, "%s", err);
	cr_assert_eq(sk_X509_num(certs), 3);
	for (size_t i = 0; i < 3; i++)
		assert_cn(sk_X509_value(certs, i), cns[i]);
	sk_X509_pop_free(certs, X509_free);
}

Test(pem, crlf_line_endings)
{
	char err[512] = "";
	STACK_OF(X509) * certs;

	cert_with_dump(ec_key("k.pem"), "crlf", p(1, "c.crt"));
	sh_ok("crlf", t_sh("cd '%s' && sed 's/$/\\r/' c.crt > crlf.crt", dir));
	certs = pp_pem_load_certs(p(1, "crlf.crt"), err, sizeof(err));
	cr_assert_not_null(certs, "%s", err);
	assert_cn(sk_X509_value(certs, 0), "crlf");
	sk_X509_pop_free(certs, X509_free);
}

Test(pem, no_certificate_is_an_error_naming_the_file)
{
	t_write(p(0, "prose.crt"), "Certificate:\n    Data:\n  nothing here\n");
	assert_cert_error(p(0, "prose.crt"), NULL);
	t_write(p(0, "empty.crt"), "");
	assert_cert_error(p(0, "empty.crt"), NULL);
}

Test(pem, a_key_file_holds_no_certificate)
{
	assert_cert_error(ec_key("k.pem"), NULL);
}

Test(pem, truncated_block_is_an_error)
{
	cert_with_dump(ec_key("k.pem"), "cut", p(1, "c.crt"));
	/* Drop the END line (and everything after it). */
	sh_ok("truncate", t_sh("cd '%s' && sed '/END CERTIFICATE/,$d' c.crt > "
	                       "cut.crt",
	                       dir));
	assert_cert_error(p(1, "cut.crt"), NULL);
}

Test(pem, truncated_second_block_refuses_the_whole_file)
{
	cert_with_dump(ec_key("k.pem"), "whole", p(1, "c.crt"));
	sh_ok("cat", t_sh("cd '%s' && { cat c.crt; sed '/END CERTIFICATE/,$d' "
	                  "c.crt; } > half.crt",
	                  dir));
	assert_cert_error(p(1, "half.crt"), NULL);
}

Test(pem, truncated_first_block_refuses_the_whole_file)
{
	/* The first block lost its END line; a whole block follows.  Taking
	 * only the second certificate would silently change the chain. */
	cert_with_dump(ec_key("k.pem"), "whole", p(1, "c.crt"));
	sh_ok("cat", t_sh("cd '%s' && { sed '/END CERTIFICATE/,$d' c.crt; cat "
	                  "c.crt; } > half.crt",
	                  dir));
	assert_cert_error(p(1, "half.crt"), NULL);
}

Test(pem, garbage_base64_is_an_error)
{
	t_write(p(0, "garbage.crt"), "-----BEGIN CERTIFICATE-----\n"
	                             "!!!! this is not base64 @@@@ ****\n"
	                             "-----END CERTIFICATE-----\n");
	assert_cert_error(p(0, "garbage.crt"), NULL);
}

Test(pem, base64_that_is_not_a_certificate_is_an_error)
{
	t_write(p(0, "notcert.crt"),
	        "-----BEGIN CERTIFICATE-----\n"
	        "aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEgY2Vy\n"
	        "-----END CERTIFICATE-----\n");
	assert_cert_error(p(0, "notcert.crt"), NULL);
}

Test(pem, missing_file_is_an_error_naming_it)
{
	assert_cert_error(p(0, "does-not-exist.crt"), NULL);
}

Test(pem, directory_is_an_error)
{
	assert_cert_error(dir, NULL);
}

Test(pem, parse_from_memory_names_the_source)
{
	char err[512] = "";
	STACK_OF(X509) * certs;
	size_t len;
	char *data;

	cert_with_dump(ec_key("k.pem"), "mem", p(1, "c.crt"));
	data = t_read(p(1, "c.crt"), &len);
	certs =
	    pp_pem_parse_certs(data, len, "inline-source", err, sizeof(err));
	cr_assert_not_null(certs, "%s", err);
	assert_cn(sk_X509_value(certs, 0), "mem");
	sk_X509_pop_free(certs, X509_free);

	/* Only part of the buffer: the END line is outside ${len}. */
	certs = pp_pem_parse_certs(data, len - 10, "inline-source", err,
	                           sizeof(err));
	cr_assert_null(certs);
	cr_assert(t_contains(err, "inline-source"), "%s", err);
	free(data);

	certs =
	    pp_pem_parse_certs("nothing", 7, "inline-source", err, sizeof(err));
	cr_assert_null(certs);
	cr_assert(t_contains(err, "inline-source"), "%s", err);
}

/* ---- keys ---------------------------------------------------------- */

Test(pem, key_pkcs8_ec)
{
	const char *path = ec_key("k.pem");
	char *text = t_read(path, NULL);
	EVP_PKEY *key;

	cr_assert(t_contains(text, "-----BEGIN PRIVATE KEY-----"));
	free(text);
	key = key_ok(path);
	cr_assert_eq(EVP_PKEY_id(key), EVP_PKEY_EC);
	EVP_PKEY_free(key);
}

Test(pem, key_traditional_ec_with_parameters_block)
{
	EVP_PKEY *key;
	char *text;

	/* "openssl ecparam -genkey" writes an EC PARAMETERS block first. */
	sh_ok("ecparam", t_sh("openssl ecparam -name prime256v1 -genkey -out "
	                      "'%s'",
	                      p(0, "ec.pem")));
	text = t_read(p(0, "ec.pem"), NULL);
	cr_assert(t_contains(text, "-----BEGIN EC PARAMETERS-----"));
	cr_assert(t_contains(text, "-----BEGIN EC PRIVATE KEY-----"));
	free(text);
	key = key_ok(p(0, "ec.pem"));
	cr_assert_eq(EVP_PKEY_id(key), EVP_PKEY_EC);
	EVP_PKEY_free(key);
}

Test(pem, key_traditional_ec)
{
	EVP_PKEY *key;
	char *text;

	sh_ok("ecparam", t_sh("openssl ecparam -name prime256v1 -genkey "
	                      "-noout -out '%s'",
	                      p(0, "ec.pem")));
	text = t_read(p(0, "ec.pem"), NULL);
	cr_assert(strncmp(text, "-----BEGIN EC PRIVATE KEY-----", 30) == 0);
	free(text);
	key = key_ok(p(0, "ec.pem"));
	cr_assert_eq(EVP_PKEY_id(key), EVP_PKEY_EC);
	EVP_PKEY_free(key);
}

Test(pem, key_traditional_rsa)
{
	EVP_PKEY *key;
	char *text;

	sh_ok("genrsa", t_sh("openssl genrsa -traditional -out '%s' 2048",
	                     p(0, "rsa.pem")));
	text = t_read(p(0, "rsa.pem"), NULL);
	cr_assert(strncmp(text, "-----BEGIN RSA PRIVATE KEY-----", 31) == 0);
	free(text);
	key = key_ok(p(0, "rsa.pem"));
	cr_assert_eq(EVP_PKEY_id(key), EVP_PKEY_RSA);
	EVP_PKEY_free(key);
}

Test(pem, key_pkcs8_rsa)
{
	EVP_PKEY *key;

	sh_ok("genpkey", t_sh("openssl genpkey -algorithm RSA -pkeyopt "
	                      "rsa_keygen_bits:2048 -out '%s'",
	                      p(0, "rsa8.pem")));
	key = key_ok(p(0, "rsa8.pem"));
	cr_assert_eq(EVP_PKEY_id(key), EVP_PKEY_RSA);
	EVP_PKEY_free(key);
}

Test(pem, key_pkcs8_ed25519)
{
	EVP_PKEY *key;

	sh_ok("genpkey", t_sh("openssl genpkey -algorithm ED25519 -out '%s'",
	                      p(0, "ed.pem")));
	key = key_ok(p(0, "ed.pem"));
	cr_assert_eq(EVP_PKEY_id(key), EVP_PKEY_ED25519);
	EVP_PKEY_free(key);
}

Test(pem, key_matches_its_certificate)
{
	const char *kpath = ec_key("k.pem");
	EVP_PKEY *key;
	X509 *x;

	cert_with_dump(kpath, "pair", p(1, "c.crt"));
	key = key_ok(p(0, "k.pem"));
	x = t_cert(p(1, "c.crt"));
	cr_assert_eq(X509_check_private_key(x, key), 1);
	X509_free(x);
	EVP_PKEY_free(key);
}

Test(pem, key_after_a_certificate_in_one_file)
{
	EVP_PKEY *key;

	cert_with_dump(ec_key("k.pem"), "combined", p(1, "c.crt"));
	sh_ok("cat", t_sh("cd '%s' && cat c.crt k.pem > both.pem", dir));
	key = key_ok(p(1, "both.pem"));
	cr_assert_eq(EVP_PKEY_id(key), EVP_PKEY_EC);
	EVP_PKEY_free(key);
}

Test(pem, encrypted_pkcs8_key_is_refused)
{
	sh_ok("genpkey", t_sh("openssl genpkey -algorithm EC -pkeyopt "
	                      "ec_paramgen_curve:P-256 -aes256 -pass "
	                      "pass:secret -out '%s'",
	                      p(0, "enc.pem")));
	assert_key_error(p(0, "enc.pem"),
	                 "encrypted private keys are not supported");
}

Test(pem, encrypted_traditional_key_is_refused)
{
	const char *kpath = ec_key("k.pem");

	sh_ok("ec", t_sh("openssl ec -in '%s' -aes256 -passout pass:secret "
	                 "-out '%s'",
	                 kpath, p(1, "enc.pem")));
	assert_key_error(p(1, "enc.pem"),
	                 "encrypted private keys are not supported");
}

Test(pem, file_without_a_key_is_an_error)
{
	cert_with_dump(ec_key("k.pem"), "nokey", p(1, "c.crt"));
	assert_key_error(p(1, "c.crt"), NULL);
	t_write(p(0, "empty.key"), "");
	assert_key_error(p(0, "empty.key"), NULL);
}

Test(pem, corrupt_key_is_an_error_but_not_called_encrypted)
{
	char err[512] = "";

	t_write(p(0, "bad.key"), "-----BEGIN PRIVATE KEY-----\n"
	                         "aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEga2V5\n"
	                         "-----END PRIVATE KEY-----\n");
	assert_key_error(p(0, "bad.key"), NULL);
	cr_assert_null(pp_pem_load_key(p(0, "bad.key"), err, sizeof(err)));
	cr_assert(!t_contains(err, "encrypted"),
	          "a corrupt key is not an encrypted one: %s", err);
}

Test(pem, missing_key_file_is_an_error_naming_it)
{
	assert_key_error(p(0, "no-such.key"), NULL);
}

/* ---- the key policy ------------------------------------------------- */

Test(pem, a_weak_rsa_key_is_refused_with_its_size)
{
	sh_ok("genpkey", t_sh("openssl genpkey -algorithm RSA -pkeyopt "
	                      "rsa_keygen_bits:1024 -out '%s'",
	                      p(0, "rsa1024.pem")));
	assert_key_error(p(0, "rsa1024.pem"), "RSA key of 1024 bits: too weak "
	                                      "(accepted: RSA of 2048 to "
	                                      "16384 bits, ECDSA P-256 or "
	                                      "P-384, Ed25519)");
}

Test(pem, p521_and_other_curves_are_not_supported)
{
	sh_ok("genpkey", t_sh("openssl genpkey -algorithm EC -pkeyopt "
	                      "ec_paramgen_curve:P-521 -out '%s'",
	                      p(0, "p521.pem")));
	assert_key_error(p(0, "p521.pem"), "ECDSA key on P-521: not supported");
	sh_ok("genpkey", t_sh("openssl genpkey -algorithm EC -pkeyopt "
	                      "ec_paramgen_curve:P-224 -out '%s'",
	                      p(1, "p224.pem")));
	assert_key_error(p(1, "p224.pem"), "ECDSA key on P-224: not supported");
}

Test(pem, accepted_key_types_load)
{
	EVP_PKEY *key;

	sh_ok("genpkey", t_sh("openssl genpkey -algorithm EC -pkeyopt "
	                      "ec_paramgen_curve:P-384 -out '%s'",
	                      p(0, "p384.pem")));
	key = key_ok(p(0, "p384.pem"));
	cr_assert_eq(EVP_PKEY_bits(key), 384);
	EVP_PKEY_free(key);
}

Test(pem, a_directory_as_key_file_is_named)
{
	assert_key_error(dir, "is a directory, not a regular file");
}
