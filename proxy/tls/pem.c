#include "tls/pem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>

#include "tls/keypolicy.h"
#include "tls/tlserr.h"
#include "util/file.h"

static const char begin_cert[] = "-----BEGIN CERTIFICATE-----";
static const char end_cert[] = "-----END CERTIFICATE-----";

/* Find ${needle} in the ${len} bytes at ${hay} (which may hold NULs). */
static const char *
find(const char *hay, size_t len, const char *needle)
{
	size_t nl = strlen(needle);

	if (len < nl)
		return (NULL);
	for (size_t i = 0; i + nl <= len; i++) {
		if (hay[i] == needle[0] && memcmp(hay + i, needle, nl) == 0)
			return (hay + i);
	}
	return (NULL);
}

STACK_OF(X509) * pp_pem_parse_certs(const char *data, size_t len,
                                    const char *what, char *err, size_t errlen)
{
	STACK_OF(X509) * certs;
	const char *p = data, *end = data + len;
	int n = 0;

	if ((certs = sk_X509_new_null()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", what);
		return (NULL);
	}
	while ((p = find(p, (size_t)(end - p), begin_cert)) != NULL) {
		const char *e = find(p, (size_t)(end - p), end_cert);
		BIO *bio;
		X509 *x;

		n++;
		if (e == NULL) {
			snprintf(err, errlen,
			         "%s: certificate #%d has no END line", what,
			         n);
			goto err1;
		}
		e += sizeof(end_cert) - 1;
		errno = 0;
		bio = BIO_new_mem_buf(p, (int)(e - p));
		x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		if (x == NULL) {
			if (pp_tls_lacked_memory() || bio == NULL)
				snprintf(err, errlen, "%s: out of memory",
				         what);
			else
				snprintf(err, errlen,
				         "%s: certificate #%d is not a valid "
				         "certificate",
				         what, n);
			goto err1;
		}
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			snprintf(err, errlen, "%s: out of memory", what);
			goto err1;
		}
		p = e;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: no PEM certificate found", what);
		goto err1;
	}
	return (certs);

err1:
	sk_X509_pop_free(certs, X509_free);
	return (NULL);
}

STACK_OF(X509) * pp_pem_load_certs(const char *path, char *err, size_t errlen)
{
	STACK_OF(X509) * certs;
	size_t len;
	char *data;

	if ((data = pp_file_read(path, PP_FILE_MAX_PEM, &len, err, errlen)) ==
	    NULL)
		return (NULL);
	certs = pp_pem_parse_certs(data, len, path, err, errlen);
	free(data);
	return (certs);
}

/* Refuse to prompt for a passphrase: the proxy runs unattended. */
static int
no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return (-1);
}

EVP_PKEY *
pp_pem_load_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key;
	size_t len;
	char *data;
	char why[200];
	BIO *bio;
	int asked = 0;

	if ((data = pp_file_read(path, PP_FILE_MAX_PEM, &len, err, errlen)) ==
	    NULL)
		return (NULL);
	if (find(data, len, "PRIVATE KEY-----") == NULL) {
		snprintf(err, errlen, "%s: no PEM private key found", path);
		goto err1;
	}
	errno = 0;
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto err1;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, no_password, &asked);
	BIO_free(bio);
	if (key == NULL) {
		snprintf(err, errlen, "%s: %s", path,
		         pp_tls_lacked_memory() ? "out of memory"
		         : asked || find(data, len, "ENCRYPTED") != NULL
		             ? "encrypted private keys are not supported"
		             : "private key could not be parsed");
		goto err1;
	}
	OPENSSL_cleanse(data, len);
	free(data);
	if (pp_keypolicy_check(key, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		EVP_PKEY_free(key);
		return (NULL);
	}
	return (key);

err1:
	OPENSSL_cleanse(data, len);
	free(data);
	return (NULL);
}
