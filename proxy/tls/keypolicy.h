#ifndef PP_KEYPOLICY_H
#define PP_KEYPOLICY_H

/*
 * Which keys peerproxy accepts (README, "Limits"): RSA of 2048 to 16384
 * bits, ECDSA on P-256 or P-384, and Ed25519; for its own private key,
 * for every certificate its files hold, and for every certificate of a
 * peer's verified path.  Weaker RSA is refused as too weak; P-521 and
 * other curves as not supported (BoringSSL, like the browsers, offers no
 * P-521 signatures in TLS, so a P-521 certificate could not be used in a
 * handshake anyway).
 */

#include <stddef.h>

#include <openssl/base.h>
#include <openssl/x509.h>

#define PP_RSA_BITS_MIN 2048
#define PP_RSA_BITS_MAX 16384

/* pp_keypolicy_check(key, why, len): 0 if ${key} is accepted, or -1 with
 * the reason (naming the key's type and size) in ${why}. */
int pp_keypolicy_check(const EVP_PKEY *key, char *why, size_t len);

/* pp_keypolicy_check_cert(x, why, len): as pp_keypolicy_check, for the
 * public key of the certificate ${x}. */
int pp_keypolicy_check_cert(X509 *x, char *why, size_t len);

/* pp_keypolicy_check_file(certs, file, err, errlen): check the key of
 * every certificate of ${certs}, read from ${file}.  Return 0, or -1 with
 * the first refusal, naming ${file}, the certificate's number and its
 * subject, in ${err}. */
int pp_keypolicy_check_file(STACK_OF(X509) * certs, const char *file, char *err,
                            size_t errlen);

/* pp_keypolicy_sigalgs(n): the TLS signature algorithms peerproxy offers
 * and accepts, matching the keys above (${n} gets their count). */
const uint16_t *pp_keypolicy_sigalgs(size_t *n);

#endif
