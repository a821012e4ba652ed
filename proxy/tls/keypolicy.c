#include "tls/keypolicy.h"

#include <errno.h>
#include <stdio.h>

#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>

#include "tls/identity.h"
#include "tls/tlserr.h"

static const char accepted[] =
    "accepted: RSA of 2048 to 16384 bits, ECDSA P-256 or P-384, Ed25519";

int
pp_keypolicy_check(const EVP_PKEY *key, char *why, size_t len)
{
	const EC_KEY *ec;
	int bits, nid;

	switch (EVP_PKEY_id(key)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_bits(key);
		if (bits >= PP_RSA_BITS_MIN && bits <= PP_RSA_BITS_MAX)
			return (0);
		snprintf(why, len, "RSA key of %d bits: too %s (%s)", bits,
		         bits < PP_RSA_BITS_MIN ? "weak" : "large", accepted);
		return (-1);
	case EVP_PKEY_EC:
		ec = EVP_PKEY_get0_EC_KEY(key);
		nid = ec != NULL
		          ? EC_GROUP_get_curve_name(EC_KEY_get0_group(ec))
		          : NID_undef;
		if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1)
			return (0);
		snprintf(why, len, "ECDSA key on %s: not supported (%s)",
		         nid == NID_secp521r1 ? "P-521"
		         : EC_curve_nid2nist(nid) != NULL
		             ? EC_curve_nid2nist(nid)
		             : "an unnamed curve",
		         accepted);
		return (-1);
	case EVP_PKEY_ED25519:
		return (0);
	default:
		snprintf(why, len, "%s key: not supported (%s)",
		         OBJ_nid2sn(EVP_PKEY_id(key)) != NULL
		             ? OBJ_nid2sn(EVP_PKEY_id(key))
		             : "unknown",
		         accepted);
		return (-1);
	}
}

int
pp_keypolicy_check_cert(X509 *x, char *why, size_t len)
{
	EVP_PKEY *key;
	int rc;

	errno = 0;
	if ((key = X509_get_pubkey(x)) == NULL) {
		if (pp_tls_lacked_memory())
			snprintf(why, len, "out of memory");
		else
			snprintf(why, len, "its public key cannot be read (%s)",
			         accepted);
		return (-1);
	}
	rc = pp_keypolicy_check(key, why, len);
	EVP_PKEY_free(key);
	return (rc);
}

int
pp_keypolicy_check_file(STACK_OF(X509) * certs, const char *file, char *err,
                        size_t errlen)
{
	char why[200], subj[256];

	for (size_t i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		if (pp_keypolicy_check_cert(x, why, sizeof(why)) == 0)
			continue;
		pp_identity_name_text(X509_get_subject_name(x), subj,
		                      sizeof(subj));
		snprintf(err, errlen, "%s: certificate #%zu (\"%s\"): %s", file,
		         i + 1, subj, why);
		return (-1);
	}
	return (0);
}

/* BoringSSL's default list, plus Ed25519 (off by default there). */
static const uint16_t sigalgs[] = {
    SSL_SIGN_ECDSA_SECP256R1_SHA256,
    SSL_SIGN_RSA_PSS_RSAE_SHA256,
    SSL_SIGN_RSA_PKCS1_SHA256,
    SSL_SIGN_ECDSA_SECP384R1_SHA384,
    SSL_SIGN_RSA_PSS_RSAE_SHA384,
    SSL_SIGN_RSA_PKCS1_SHA384,
    SSL_SIGN_RSA_PSS_RSAE_SHA512,
    SSL_SIGN_RSA_PKCS1_SHA512,
    SSL_SIGN_ED25519,
    SSL_SIGN_RSA_PKCS1_SHA1,
};

const uint16_t *
pp_keypolicy_sigalgs(size_t *n)
{
	*n = sizeof(sigalgs) / sizeof(sigalgs[0]);
	return (sigalgs);
}
