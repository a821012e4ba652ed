#ifndef PP_TRUST_H
#define PP_TRUST_H

/*
 * Trust policy: which peer chains are accepted, and who the peer is.
 *
 * A policy holds the trust anchors (nothing from the system store), the
 * identity mode, and the allow lists.  pp_trust_check runs the whole
 * decision for one presented chain: drop self-signed extras, validate the
 * path with name constraints, bound the chain for the Swaptacular profile,
 * extract the peer id, apply the identity rules and the allow lists.  A
 * policy is immutable once built and shared read-only by every worker.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>

#include "tls/identity.h"

enum pp_identity_mode {
	PP_IDENTITY_AUTO,
	PP_IDENTITY_SWAPTACULAR,
	PP_IDENTITY_X509,
};

/* Why a chain was refused.  The names (pp_refusal_name) appear in logs and
 * metrics labels and are part of the interface. */
enum pp_refusal {
	PP_ACCEPTED = 0,
	PP_R_NAME_CONSTRAINTS,
	PP_R_EXPIRED,
	PP_R_NOT_YET_VALID,
	PP_R_UNTRUSTED,
	PP_R_NOT_CA,
	PP_R_CHAIN_TOO_LONG,
	PP_R_BAD_IDENTITY,
	PP_R_PEER_NOT_ALLOWED,
	PP_R_BAD_USAGE,
	PP_R_HOSTNAME_MISMATCH,
	PP_R_NO_CERTIFICATE,
	PP_R_PEER_INACTIVE,
	PP_R_BAD_KEY,
	PP_R_COUNT
};

/* Allow lists: a peer passes if any entry of any list matches it; with all
 * lists empty every verified chain passes. */
struct pp_allow {
	char **peers; /* peer ids (serialNumber) */
	size_t npeers;
	char **cns; /* subject CN */
	size_t ncns;
	char **dns; /* SAN dNSName, case-insensitive */
	size_t ndns;
	char **uris; /* SAN URI, exact */
	size_t nuris;
};

/* Optional admission gate consulted after everything else (node data uses
 * it for ACTIVE/DEACTIVATED).  Returns 0 to admit, or -1 with a reason. */
typedef int pp_trust_gate_fn(void *arg, const char *peer_id, char *detail,
                             size_t len);

struct pp_trust_params {
	const char *ca_file;
	enum pp_identity_mode mode;
	int verify_server; /* 1: the peer is a TLS server (outbound) */
	const struct pp_allow *allow;
	const char *required_peer; /* outbound --peer; NULL for none */
	const char *hostname;      /* outbound --server-name; NULL for none */
	pp_trust_gate_fn *gate;
	void *gate_arg;
};

struct pp_trust;

/* The outcome of one check.  ${leaf_subject} and ${peer_id} are filled as
 * far as they could be read, also for refusals. */
struct pp_verdict {
	enum pp_refusal reason;
	/* room for the longest: a name constraints violation naming two
	 * subjects of up to 255 bytes (trust.c, describe_failure) */
	char detail[640];
	char peer_id[PP_PEER_ID_MAX + 1];
	char leaf_subject[256];
	char leaf_cn[128];
};

/* pp_trust_new(p, err, errlen): build a policy from ${p} (its strings are
 * copied).  Loads the anchors from p->ca_file and resolves
 * PP_IDENTITY_AUTO: swaptacular when an anchor's subject has O equal to
 * PP_SWPT_ORG, else x509.  Return NULL with the reason in ${err}. */
struct pp_trust *pp_trust_new(const struct pp_trust_params *p, char *err,
                              size_t errlen);

/* pp_trust_free(t): free ${t}; NULL does nothing. */
void pp_trust_free(struct pp_trust *t);

/* pp_trust_mode(t): the resolved identity mode of ${t}. */
enum pp_identity_mode pp_trust_mode(const struct pp_trust *t);

/* pp_trust_anchors(t): the anchors of ${t} (owned by ${t}). */
STACK_OF(X509) * pp_trust_anchors(const struct pp_trust *t);

/* pp_trust_check(t, leaf, extra, v): decide on the chain ${leaf} followed by
 * ${extra} (may be NULL) as presented by a peer, filling ${v}.  Return 0 if
 * accepted, -1 if refused (v->reason says why). */
int pp_trust_check(const struct pp_trust *t, X509 *leaf,
                   const STACK_OF(X509) * extra, struct pp_verdict *v);

/* pp_trust_check_print(t, leaf, extra, v, out): as pp_trust_check, also
 * writing the verified path to ${out} (a FILE *) on success. */
int pp_trust_check_print(const struct pp_trust *t, X509 *leaf,
                         const STACK_OF(X509) * extra, struct pp_verdict *v,
                         void *out);

/* pp_identity_mode_parse(s, out): parse auto|swaptacular|x509 into ${out}.
 * Return 0, or -1 if ${s} names no mode. */
int pp_identity_mode_parse(const char *s, enum pp_identity_mode *out);

/* pp_refusal_name(r): the stable name of ${r} ("name_constraints", ...). */
const char *pp_refusal_name(enum pp_refusal r);

/* pp_refusal_alert(r): the TLS alert that tells the peer about ${r}. */
uint8_t pp_refusal_alert(enum pp_refusal r);

/* pp_cert_is_self_signed(x): non-zero if ${x} is signed by its own key
 * (a name match alone is not enough: a Swaptacular server leaf carries its
 * issuer's name). */
int pp_cert_is_self_signed(X509 *x);

#endif
