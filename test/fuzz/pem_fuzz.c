/*
 * libFuzzer harness for PEM loading (proxy/tls/pem.c): certificate files
 * (chains, anchors) and private key files.
 *
 * Input: a whole file.  Checked:
 * - a refusal names the file, for certificates and keys alike;
 * - reading from memory (pp_pem_parse_certs) and from the file
 *   (pp_pem_load_certs) gives the same certificates or both refuse;
 * - a text dump before the file (Swaptacular's CA scripts write one)
 *   changes nothing, for certificates and keys;
 * - round trip: the certificates read, written out as PEM again, read
 *   back to the same DER, in the same order; a key read, written out as
 *   PKCS#8 PEM again, reads back to the same key.
 * Seeds: certificates and keys whose dates do not matter (nothing here
 * looks at time).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>

#include "fuzztmp.h"
#include "tls/pem.h"

static const char dump[] = "Certificate:\n"
                           "    Data:\n"
                           "        Version: 3 (0x2)\n"
                           "        Subject: O = Swaptacular Nodes Registry\n";

static char dir[256], file_plain[300], file_dumped[300];

static void
write_file(const char *path, const void *a, size_t alen, const void *b,
           size_t blen)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(a, 1, alen, f) != alen ||
	    fwrite(b, 1, blen, f) != blen || fclose(f) != 0)
		abort();
}

static void
cleanup(void)
{
	char path[300];

	unlink(file_plain);
	unlink(file_dumped);
	snprintf(path, sizeof(path), "%s/again.pem", dir);
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmpdir("pem_fuzz", dir, sizeof(dir));
	snprintf(file_plain, sizeof(file_plain), "%s/file.pem", dir);
	snprintf(file_dumped, sizeof(file_dumped), "%s/dumped.pem", dir);
	atexit(cleanup);
	return (0);
}

/* The DER of every certificate in ${sk} (NULL: none), concatenated with
 * lengths, for comparison. */
static uint8_t *
ders(STACK_OF(X509) * sk, size_t *len)
{
	uint8_t *out = NULL;
	size_t n = 0;

	for (size_t i = 0; sk != NULL && i < sk_X509_num(sk); i++) {
		uint8_t *der = NULL;
		int k = i2d_X509(sk_X509_value(sk, i), &der);

		if (k <= 0 || (out = realloc(out, n + 4 + (size_t)k)) == NULL)
			abort();
		memcpy(out + n, &k, 4);
		memcpy(out + n + 4, der, (size_t)k);
		n += 4 + (size_t)k;
		OPENSSL_free(der);
	}
	*len = n;
	return (out);
}

static void
same_certs(STACK_OF(X509) * a, STACK_OF(X509) * b)
{
	size_t alen, blen;
	uint8_t *da, *db;

	if ((a == NULL) != (b == NULL))
		abort();
	da = ders(a, &alen);
	db = ders(b, &blen);
	if (alen != blen || (alen > 0 && memcmp(da, db, alen) != 0))
		abort();
	free(da);
	free(db);
}

static void
check_error(const char *err, const char *what)
{
	size_t n = strlen(what);

	if (strncmp(err, what, n) != 0 || strncmp(err + n, ": ", 2) != 0 ||
	    err[n + 2] == '\0')
		abort();
}

static void
certs(const uint8_t *data, size_t size)
{
	STACK_OF(X509) * mem, *file, *dumped, *again;
	char err[512] = "", err2[512] = "";
	BIO *out;
	const uint8_t *pem;
	size_t pem_len;

	mem = pp_pem_parse_certs((const char *)data, size, "mem.pem", err,
	                         sizeof(err));
	if (mem == NULL)
		check_error(err, "mem.pem");
	else if (sk_X509_num(mem) == 0)
		abort();
	file = pp_pem_load_certs(file_plain, err2, sizeof(err2));
	if (file == NULL)
		check_error(err2, file_plain);
	same_certs(mem, file);
	dumped = pp_pem_load_certs(file_dumped, err2, sizeof(err2));
	same_certs(mem, dumped);
	if (mem != NULL) {
		if ((out = BIO_new(BIO_s_mem())) == NULL)
			abort();
		for (size_t i = 0; i < sk_X509_num(mem); i++)
			if (!PEM_write_bio_X509(out, sk_X509_value(mem, i)))
				abort();
		if (!BIO_mem_contents(out, &pem, &pem_len))
			abort();
		again = pp_pem_parse_certs((const char *)pem, pem_len,
		                           "again.pem", err, sizeof(err));
		same_certs(mem, again);
		sk_X509_pop_free(again, X509_free);
		BIO_free(out);
	}
	sk_X509_pop_free(mem, X509_free);
	sk_X509_pop_free(file, X509_free);
	sk_X509_pop_free(dumped, X509_free);
}

static void
key(void)
{
	char err[512] = "", again_file[300];
	EVP_PKEY *k, *dumped, *again;
	BIO *out;
	const uint8_t *pem;
	size_t pem_len;

	k = pp_pem_load_key(file_plain, err, sizeof(err));
	if (k == NULL)
		check_error(err, file_plain);
	dumped = pp_pem_load_key(file_dumped, err, sizeof(err));
	if ((k == NULL) != (dumped == NULL) ||
	    (k != NULL && EVP_PKEY_cmp(k, dumped) != 1))
		abort();
	if (k != NULL) {
		if ((out = BIO_new(BIO_s_mem())) == NULL ||
		    !PEM_write_bio_PKCS8PrivateKey(out, k, NULL, NULL, 0, NULL,
		                                   NULL) ||
		    !BIO_mem_contents(out, &pem, &pem_len))
			abort();
		snprintf(again_file, sizeof(again_file), "%s/again.pem", dir);
		write_file(again_file, pem, pem_len, "", 0);
		again = pp_pem_load_key(again_file, err, sizeof(err));
		if (again == NULL || EVP_PKEY_cmp(k, again) != 1)
			abort();
		EVP_PKEY_free(again);
		BIO_free(out);
	}
	EVP_PKEY_free(k);
	EVP_PKEY_free(dumped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	write_file(file_plain, data, size, "", 0);
	write_file(file_dumped, dump, sizeof(dump) - 1, data, size);
	certs(data, size);
	key();
	ERR_clear_error();
	return (0);
}
