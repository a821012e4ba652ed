#ifndef PP_PEM_H
#define PP_PEM_H

/*
 * Tolerant PEM loading.  Swaptacular's CA scripts write a human-readable
 * text dump before each PEM block, so anything outside
 * "-----BEGIN CERTIFICATE-----" ... "-----END CERTIFICATE-----" is skipped.
 */

#include <stddef.h>

#include <openssl/base.h>
#include <openssl/x509.h>

/* pp_pem_load_certs(path, err, errlen): return every certificate in the
 * PEM file ${path}, in file order (at least one), or NULL with a reason
 * naming the file written to ${err}.  The caller frees the stack with
 * sk_X509_pop_free(..., X509_free). */
STACK_OF(X509) * pp_pem_load_certs(const char *path, char *err, size_t errlen);

/* pp_pem_parse_certs(data, len, what, err, errlen): as pp_pem_load_certs,
 * from memory; ${what} names the source in messages. */
STACK_OF(X509) * pp_pem_parse_certs(const char *data, size_t len,
                                    const char *what, char *err, size_t errlen);

/* pp_pem_load_key(path, err, errlen): return the first unencrypted private
 * key (PKCS#8, RSA or EC) in ${path}, of a type and size the key policy
 * accepts (tls/keypolicy.h), or NULL with a reason naming the file in
 * ${err}: an encrypted key is refused as such, never prompted for. */
EVP_PKEY *pp_pem_load_key(const char *path, char *err, size_t errlen);

#endif
