#include "tls/trust.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/keypolicy.h"
#include "tls/pem.h"
#include "tls/tlserr.h"

/* Refuse absurd chains before spending signatures on them. */
#define MAX_SENT_CERTS 8
/* Leaf, cross certificate, anchor: the whole Swaptacular path. */
#define SWPT_MAX_PATH 3

struct pp_trust {
	X509_STORE *store;
	STACK_OF(X509) * anchors;
	enum pp_identity_mode mode;
	int purpose;
	struct pp_allow allow;
	char *required_peer;
	char *hostname;
	pp_trust_gate_fn *gate;
	void *gate_arg;
};

static const char *const refusal_names[PP_R_COUNT] = {
    [PP_ACCEPTED] = "accepted",
    [PP_R_NAME_CONSTRAINTS] = "name_constraints",
    [PP_R_EXPIRED] = "expired",
    [PP_R_NOT_YET_VALID] = "not_yet_valid",
    [PP_R_UNTRUSTED] = "untrusted",
    [PP_R_NOT_CA] = "not_ca",
    [PP_R_CHAIN_TOO_LONG] = "chain_too_long",
    [PP_R_BAD_IDENTITY] = "bad_identity",
    [PP_R_PEER_NOT_ALLOWED] = "peer_not_allowed",
    [PP_R_BAD_USAGE] = "bad_usage",
    [PP_R_HOSTNAME_MISMATCH] = "hostname_mismatch",
    [PP_R_NO_CERTIFICATE] = "no_certificate",
    [PP_R_PEER_INACTIVE] = "peer_inactive",
    [PP_R_BAD_KEY] = "bad_key",
};

int
pp_identity_mode_parse(const char *s, enum pp_identity_mode *out)
{
	if (strcmp(s, "auto") == 0)
		*out = PP_IDENTITY_AUTO;
	else if (strcmp(s, "swaptacular") == 0)
		*out = PP_IDENTITY_SWAPTACULAR;
	else if (strcmp(s, "x509") == 0)
		*out = PP_IDENTITY_X509;
	else
		return (-1);
	return (0);
}

const char *
pp_refusal_name(enum pp_refusal r)
{
	if ((unsigned)r >= PP_R_COUNT)
		return ("unknown");
	return (refusal_names[r]);
}

uint8_t
pp_refusal_alert(enum pp_refusal r)
{
	switch (r) {
	case PP_R_EXPIRED:
	case PP_R_NOT_YET_VALID:
		return (SSL_AD_CERTIFICATE_EXPIRED);
	case PP_R_UNTRUSTED:
		return (SSL_AD_UNKNOWN_CA);
	case PP_R_PEER_NOT_ALLOWED:
	case PP_R_PEER_INACTIVE:
		return (SSL_AD_ACCESS_DENIED);
	case PP_R_BAD_USAGE:
	case PP_R_BAD_KEY:
		return (SSL_AD_UNSUPPORTED_CERTIFICATE);
	case PP_R_NO_CERTIFICATE:
		return (SSL_AD_CERTIFICATE_REQUIRED);
	default:
		return (SSL_AD_BAD_CERTIFICATE);
	}
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
strv_copy(char ***dst, size_t *dn, char *const *src, size_t n)
{
	*dst = NULL;
	*dn = 0;
	if (n == 0)
		return (0);
	if ((*dst = calloc(n, sizeof(char *))) == NULL)
		return (-1);
	for (size_t i = 0; i < n; i++) {
		if (((*dst)[i] = strdup(src[i])) == NULL) {
			strv_free(*dst, i);
			*dst = NULL;
			return (-1);
		}
	}
	*dn = n;
	return (0);
}

static char *
strdup_or_null(const char *s)
{
	return (s != NULL ? strdup(s) : NULL);
}

struct pp_trust *
pp_trust_new(const struct pp_trust_params *p, char *err, size_t errlen)
{
	struct pp_trust *t;
	static const struct pp_allow none;
	const struct pp_allow *a = p->allow ? p->allow : &none;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto oom;
	if ((t->anchors = pp_pem_load_certs(p->ca_file, err, errlen)) == NULL ||
	    pp_keypolicy_check_file(t->anchors, p->ca_file, err, errlen) != 0)
		goto err1;
	if ((t->store = X509_STORE_new()) == NULL)
		goto oom;
	for (size_t i = 0; i < sk_X509_num(t->anchors); i++) {
		X509 *x = sk_X509_value(t->anchors, i);
		/* BoringSSL reads an anchor's extensions once, at its first
		 * use, and keeps an allocation failure then as "invalid
		 * extensions" for as long as the anchor lives: read them
		 * now, where a lack of memory fails the build. */
		errno = 0;
		X509_get_extension_flags(x);
		if (errno == ENOMEM)
			goto oom;
		if (!X509_STORE_add_cert(t->store, x)) {
			if (pp_tls_lacked_memory())
				goto oom;
			snprintf(
			    err, errlen,
			    "%s: certificate #%zu cannot be used as an anchor",
			    p->ca_file, i + 1);
			goto err1;
		}
	}
	t->mode = p->mode;
	if (t->mode == PP_IDENTITY_AUTO) {
		t->mode = PP_IDENTITY_X509;
		for (size_t i = 0; i < sk_X509_num(t->anchors); i++) {
			if (pp_identity_has_swpt_org(X509_get_subject_name(
			        sk_X509_value(t->anchors, i))))
				t->mode = PP_IDENTITY_SWAPTACULAR;
		}
	}
	t->purpose = p->verify_server ? X509_PURPOSE_SSL_SERVER
	                              : X509_PURPOSE_SSL_CLIENT;
	if (strv_copy(&t->allow.peers, &t->allow.npeers, a->peers, a->npeers) ||
	    strv_copy(&t->allow.cns, &t->allow.ncns, a->cns, a->ncns) ||
	    strv_copy(&t->allow.dns, &t->allow.ndns, a->dns, a->ndns) ||
	    strv_copy(&t->allow.uris, &t->allow.nuris, a->uris, a->nuris))
		goto oom;
	t->required_peer = strdup_or_null(p->required_peer);
	/* An empty name would match nothing: treat it as no name. */
	t->hostname = p->hostname && *p->hostname ? strdup(p->hostname) : NULL;
	if ((p->required_peer && !t->required_peer) ||
	    (p->hostname && *p->hostname && !t->hostname))
		goto oom;
	t->gate = p->gate;
	t->gate_arg = p->gate_arg;
	return (t);

oom:
	snprintf(err, errlen, "out of memory");
err1:
	pp_trust_free(t);
	return (NULL);
}

void
pp_trust_free(struct pp_trust *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->store);
	sk_X509_pop_free(t->anchors, X509_free);
	strv_free(t->allow.peers, t->allow.npeers);
	strv_free(t->allow.cns, t->allow.ncns);
	strv_free(t->allow.dns, t->allow.ndns);
	strv_free(t->allow.uris, t->allow.nuris);
	free(t->required_peer);
	free(t->hostname);
	free(t);
}

enum pp_identity_mode
pp_trust_mode(const struct pp_trust *t)
{
	return (t->mode);
}

STACK_OF(X509) * pp_trust_anchors(const struct pp_trust *t)
{
	return (t->anchors);
}

int
pp_cert_is_self_signed(X509 *x)
{
	EVP_PKEY *key;
	int r;

	if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)))
		return (0);
	if ((key = X509_get_pubkey(x)) == NULL)
		return (0);
	r = X509_verify(x, key);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return (r == 1);
}

static enum pp_refusal
map_x509_error(int e)
{
	switch (e) {
	case X509_V_ERR_PERMITTED_VIOLATION:
	case X509_V_ERR_EXCLUDED_VIOLATION:
	case X509_V_ERR_SUBTREE_MINMAX:
	case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
	case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
	case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
	case X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS:
		return (PP_R_NAME_CONSTRAINTS);
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return (PP_R_EXPIRED);
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return (PP_R_NOT_YET_VALID);
	case X509_V_ERR_INVALID_CA:
	case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
		return (PP_R_NOT_CA);
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		return (PP_R_CHAIN_TOO_LONG);
	case X509_V_ERR_INVALID_PURPOSE:
		return (PP_R_BAD_USAGE);
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return (PP_R_HOSTNAME_MISMATCH);
	default:
		return (PP_R_UNTRUSTED);
	}
}

static int
has_name_constraints(X509 *x)
{
	return (X509_get_ext_by_NID(x, NID_name_constraints, -1) >= 0);
}

/* Describe a path validation failure in words, naming the certificates. */
static void
describe_failure(X509_STORE_CTX *ctx, enum pp_refusal r, struct pp_verdict *v)
{
	int e = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
	char subj[256] = "?", by[256] = "?";

	if (cur != NULL)
		pp_identity_name_text(X509_get_subject_name(cur), subj,
		                      sizeof(subj));
	if (r == PP_R_NAME_CONSTRAINTS && chain != NULL) {
		for (size_t i = (size_t)(depth < 0 ? 0 : depth) + 1;
		     i < sk_X509_num(chain); i++) {
			X509 *ca = sk_X509_value(chain, i);
			if (has_name_constraints(ca)) {
				pp_identity_name_text(X509_get_subject_name(ca),
				                      by, sizeof(by));
				break;
			}
		}
		snprintf(
		    v->detail, sizeof(v->detail),
		    "%s: %s subject \"%s\" outside the name constraints of "
		    "\"%s\"",
		    e == X509_V_ERR_PERMITTED_VIOLATION
		        ? "permitted subtree violation"
		        : X509_verify_cert_error_string(e),
		    depth == 0 ? "leaf" : "certificate", subj, by);
		return;
	}
	snprintf(v->detail, sizeof(v->detail), "%s (depth %d: \"%s\")",
	         X509_verify_cert_error_string(e), depth, subj);
}

static int
str_in(char *const *list, size_t n, const char *s, int nocase)
{
	for (size_t i = 0; i < n; i++) {
		if ((nocase ? strcasecmp(list[i], s) : strcmp(list[i], s)) == 0)
			return (1);
	}
	return (0);
}

/* Does any SAN of ${leaf} of ${type} match the list? */
static int
san_in(X509 *leaf, int type, char *const *list, size_t n, int nocase)
{
	GENERAL_NAMES *sans;
	int hit = 0;

	if (n == 0)
		return (0);
	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (size_t i = 0;
	     sans != NULL && i < sk_GENERAL_NAME_num(sans) && !hit; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const ASN1_STRING *s;
		char val[512];
		int len;

		if (g->type != type)
			continue;
		s = type == GEN_DNS ? g->d.dNSName
		                    : g->d.uniformResourceIdentifier;
		len = ASN1_STRING_length(s);
		if (len <= 0 || (size_t)len >= sizeof(val))
			continue;
		memcpy(val, ASN1_STRING_get0_data(s), (size_t)len);
		val[len] = '\0';
		if (strlen(val) != (size_t)len) /* embedded NUL */
			continue;
		hit = str_in(list, n, val, nocase);
	}
	GENERAL_NAMES_free(sans);
	return (hit);
}

static int
cn_in(X509 *leaf, char *const *list, size_t n)
{
	const X509_NAME *name = X509_get_subject_name(leaf);
	char cn[256];

	for (int i = 0; n > 0 && i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		const ASN1_STRING *s;
		int len;

		if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) !=
		    NID_commonName)
			continue;
		s = X509_NAME_ENTRY_get_data(e);
		len = ASN1_STRING_length(s);
		if (len <= 0 || (size_t)len >= sizeof(cn))
			continue;
		memcpy(cn, ASN1_STRING_get0_data(s), (size_t)len);
		cn[len] = '\0';
		if (strlen(cn) == (size_t)len && str_in(list, n, cn, 0))
			return (1);
	}
	return (0);
}

static int
allowed(const struct pp_trust *t, X509 *leaf, const char *peer_id)
{
	const struct pp_allow *a = &t->allow;

	if (a->npeers + a->ncns + a->ndns + a->nuris == 0)
		return (1);
	if (peer_id[0] != '\0' && str_in(a->peers, a->npeers, peer_id, 0))
		return (1);
	return (cn_in(leaf, a->cns, a->ncns) ||
	        san_in(leaf, GEN_DNS, a->dns, a->ndns, 1) ||
	        san_in(leaf, GEN_URI, a->uris, a->nuris, 0));
}

static void
leaf_cn(X509 *leaf, char *out, size_t len)
{
	out[0] = '\0';
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf),
	                              NID_commonName, out, (int)len) < 0)
		out[0] = '\0';
}

static void
print_path(FILE *f, STACK_OF(X509) * chain)
{
	char subj[256], iss[256];

	fprintf(f, "verified path:\n");
	for (size_t i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		BIO *bio = BIO_new_fp(f, BIO_NOCLOSE);

		pp_identity_name_text(X509_get_subject_name(x), subj,
		                      sizeof(subj));
		pp_identity_name_text(X509_get_issuer_name(x), iss,
		                      sizeof(iss));
		fprintf(f, "  %zu %s\n    issuer: %s\n    not after: ", i, subj,
		        iss);
		fflush(f);
		if (bio != NULL) {
			ASN1_TIME_print(bio, X509_get0_notAfter(x));
			BIO_free(bio);
		}
		fprintf(f, "%s\n",
		        i + 1 == sk_X509_num(chain) ? " (trust anchor)" : "");
	}
}

/* Expect ${name} in the peer's certificate: an IP literal among its IP
 * SANs, anything else among its DNS names. */
static int
set_expected_name(X509_STORE_CTX *ctx, const char *name)
{
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
	unsigned char ip[16];

	if (inet_pton(AF_INET, name, ip) == 1 ||
	    inet_pton(AF_INET6, name, ip) == 1)
		return (X509_VERIFY_PARAM_set1_ip_asc(param, name) ? 0 : -1);
	return (X509_VERIFY_PARAM_set1_host(param, name, strlen(name)) ? 0
	                                                               : -1);
}

/* The peer's certificates in the verified ${chain} (the anchor, ours, was
 * checked when it was loaded) must carry keys the key policy accepts. */
static int
check_path_keys(STACK_OF(X509) * chain, struct pp_verdict *v)
{
	char why[200], subj[256];

	for (size_t i = 0; i + 1 < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		if (pp_keypolicy_check_cert(x, why, sizeof(why)) == 0)
			continue;
		pp_identity_name_text(X509_get_subject_name(x), subj,
		                      sizeof(subj));
		snprintf(v->detail, sizeof(v->detail), "%s \"%s\": %s",
		         i == 0 ? "leaf" : "certificate", subj, why);
		return (-1);
	}
	return (0);
}

static int
refuse(struct pp_verdict *v, enum pp_refusal r)
{
	v->reason = r;
	return (-1);
}

int
pp_trust_check_print(const struct pp_trust *t, X509 *leaf,
                     const STACK_OF(X509) * extra, struct pp_verdict *v,
                     void *out)
{
	STACK_OF(X509) *untrusted = NULL, *chain;
	X509_STORE_CTX *ctx = NULL;
	int rc = -1;

	memset(v, 0, sizeof(*v));
	pp_identity_name_text(X509_get_subject_name(leaf), v->leaf_subject,
	                      sizeof(v->leaf_subject));
	leaf_cn(leaf, v->leaf_cn, sizeof(v->leaf_cn));
	pp_identity_peer_id(X509_get_subject_name(leaf), v->peer_id);

	if (extra != NULL && sk_X509_num(extra) > MAX_SENT_CERTS) {
		snprintf(v->detail, sizeof(v->detail),
		         "peer sent %zu certificates; at most %d are accepted",
		         sk_X509_num(extra) + 1, MAX_SENT_CERTS + 1);
		return (refuse(v, PP_R_CHAIN_TOO_LONG));
	}
	if ((untrusted = sk_X509_new_null()) == NULL)
		goto oom;
	/* A peer may append its own root; our store lacks it on purpose, so
	 * keeping it would only make path building fail (pki.md #3). */
	for (size_t i = 0; extra != NULL && i < sk_X509_num(extra); i++) {
		X509 *x = sk_X509_value(extra, i);
		if (!pp_cert_is_self_signed(x) && !sk_X509_push(untrusted, x))
			goto oom;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, t->store, leaf, untrusted))
		goto oom;
	X509_STORE_CTX_set_purpose(ctx, t->purpose);
	if (t->hostname != NULL && set_expected_name(ctx, t->hostname) != 0)
		goto oom;
	errno = 0;
	if (X509_verify_cert(ctx) != 1) {
		/* Short of memory, BoringSSL may call a chain bad. */
		if (X509_STORE_CTX_get_error(ctx) == X509_V_ERR_OUT_OF_MEM ||
		    pp_tls_lacked_memory())
			goto oom;
		enum pp_refusal r =
		    map_x509_error(X509_STORE_CTX_get_error(ctx));
		describe_failure(ctx, r, v);
		refuse(v, r);
		goto done;
	}
	chain = X509_STORE_CTX_get0_chain(ctx);
	if (check_path_keys(chain, v) != 0) {
		refuse(v, PP_R_BAD_KEY);
		goto done;
	}
	if (t->mode == PP_IDENTITY_SWAPTACULAR) {
		if (sk_X509_num(chain) > SWPT_MAX_PATH) {
			snprintf(
			    v->detail, sizeof(v->detail),
			    "verified path has %zu certificates; the peer "
			    "profile allows leaf, cross certificate and anchor",
			    sk_X509_num(chain));
			refuse(v, PP_R_CHAIN_TOO_LONG);
			goto done;
		}
		if (pp_identity_swaptacular(X509_get_subject_name(leaf),
		                            v->detail,
		                            sizeof(v->detail)) != 0) {
			refuse(v, PP_R_BAD_IDENTITY);
			goto done;
		}
	}
	if (t->required_peer != NULL &&
	    strcmp(v->peer_id, t->required_peer) != 0) {
		snprintf(v->detail, sizeof(v->detail),
		         "peer id \"%s\" is not the required \"%s\"",
		         v->peer_id[0] ? v->peer_id : "(none)",
		         t->required_peer);
		refuse(v, PP_R_PEER_NOT_ALLOWED);
		goto done;
	}
	if (!allowed(t, leaf, v->peer_id)) {
		snprintf(v->detail, sizeof(v->detail),
		         "peer \"%s\" (id %s) matches no allow list",
		         v->leaf_subject,
		         v->peer_id[0] ? v->peer_id : "(none)");
		refuse(v, PP_R_PEER_NOT_ALLOWED);
		goto done;
	}
	if (t->gate != NULL &&
	    t->gate(t->gate_arg, v->peer_id, v->detail, sizeof(v->detail))) {
		refuse(v, PP_R_PEER_INACTIVE);
		goto done;
	}
	if (out != NULL)
		print_path(out, chain);
	v->reason = PP_ACCEPTED;
	rc = 0;
	goto done;

oom:
	snprintf(v->detail, sizeof(v->detail), "out of memory");
	refuse(v, PP_R_UNTRUSTED);
done:
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	ERR_clear_error();
	return (rc);
}

int
pp_trust_check(const struct pp_trust *t, X509 *leaf,
               const STACK_OF(X509) * extra, struct pp_verdict *v)
{
	return (pp_trust_check_print(t, leaf, extra, v, NULL));
}
