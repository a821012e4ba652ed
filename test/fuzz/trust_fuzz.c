/*
 * libFuzzer harness for the trust and identity decision
 * (proxy/tls/trust.c, proxy/tls/identity.c) on arbitrary DER chains.
 *
 * Input: a flags byte (identity mode auto/swaptacular/x509, peer is a
 * server, --peer and --allow-peer set to the leaf's own id), then
 * certificates, each a 2-byte big-endian length and its DER: the trust
 * anchor first (the ca file), then the leaf, then what else the peer
 * sent.  Certificates BoringSSL cannot parse are left out.  Seeds are
 * made at run time from test/pki (test/fuzz/trust_seeds: genuine and
 * forged Swaptacular presentations, a plain X.509 PKI), so that they are
 * valid now; nothing committed can expire into testing only "expired".
 * Checked:
 * - never more accepting than the plain X.509 path check: a chain
 *   pp_trust_check accepts is accepted by X509_verify_cert on freshly
 *   parsed copies with the same single anchor, the same purpose, the
 *   current time, and the certificates the peer sent less its
 *   self-signed ones (the README's one documented departure: a peer's own
 *   root is dropped); and no more than 9 certificates sent;
 * - in the Swaptacular mode an accepted path is at most leaf, cross
 *   certificate and anchor, and the leaf's subject passes the profile;
 * - agreement with a second reader: the peer id (pp_identity_peer_id and
 *   the verdict's) and the Swaptacular subject verdict
 *   (pp_identity_swaptacular) equal what a reader written here finds in
 *   the leaf's DER subject (one serialNumber alone in its RDN, printable
 *   ASCII; exactly O, OU, serialNumber with the profile's values), for
 *   every leaf, accepted or not;
 * - with --peer set, an accepted leaf has that id; the decision on the
 *   same chain is the same twice.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fuzztmp.h"
#include "tls/identity.h"
#include "tls/trust.h"

#define MAX_CERTS 12

static char dir[256], ca_file[300];
static unsigned long runs, accepted;

static void
cleanup(void)
{
	if (getenv("PP_FUZZ_STATS") != NULL)
		fprintf(stderr, "trust_fuzz: %lu chains, %lu accepted\n", runs,
		        accepted);
	unlink(ca_file);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmpdir("trust_fuzz", dir, sizeof(dir));
	snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", dir);
	atexit(cleanup);
	return (0);
}

/* ---- the second reader of subjects ------------------------------------ */

enum { REF_NO = 0, REF_YES = 1, REF_UNKNOWN = -1 };

static const uint8_t oid_o[] = {0x55, 0x04, 0x0a};
static const uint8_t oid_ou[] = {0x55, 0x04, 0x0b};
static const uint8_t oid_serial[] = {0x55, 0x04, 0x05};

static int
oid_is(const CBS *oid, const uint8_t *want)
{
	return (CBS_len(oid) == 3 && memcmp(CBS_data(oid), want, 3) == 0);
}

/* One attribute of a subject: its RDN, type and value bytes. */
struct attr {
	size_t rdn;
	CBS oid, value;
	int text; /* the value is one of the plain string types */
};

struct subject {
	struct attr a[16];
	size_t n, rdns;
	size_t per_rdn[16];
};

/* The leaf's subject, read from its DER: REF_YES, or REF_UNKNOWN where
 * this reader gives up (more than 16 attributes, unusual encodings). */
static int
read_subject(const uint8_t *der, size_t len, struct subject *s)
{
	CBS cert, c, tbs, name, rdn, atv, any;
	int present;

	memset(s, 0, sizeof(*s));
	CBS_init(&cert, der, len);
	if (!CBS_get_asn1(&cert, &c, CBS_ASN1_SEQUENCE) ||
	    !CBS_get_asn1(&c, &tbs, CBS_ASN1_SEQUENCE) ||
	    !CBS_get_optional_asn1(&tbs, &any, &present,
	                           CBS_ASN1_CONSTRUCTED |
	                               CBS_ASN1_CONTEXT_SPECIFIC | 0) ||
	    !CBS_get_any_asn1_element(&tbs, &any, NULL, NULL) || /* serial */
	    !CBS_get_any_asn1_element(&tbs, &any, NULL, NULL) || /* sig alg */
	    !CBS_get_any_asn1_element(&tbs, &any, NULL, NULL) || /* issuer */
	    !CBS_get_any_asn1_element(&tbs, &any, NULL, NULL) || /* validity */
	    !CBS_get_asn1(&tbs, &name, CBS_ASN1_SEQUENCE))
		return (REF_UNKNOWN);
	while (CBS_len(&name) > 0) {
		if (!CBS_get_asn1(&name, &rdn, CBS_ASN1_SET) ||
		    CBS_len(&rdn) == 0 || s->rdns == 16)
			return (REF_UNKNOWN);
		while (CBS_len(&rdn) > 0) {
			struct attr *a = &s->a[s->n];
			unsigned tag;

			if (s->n == 16 ||
			    !CBS_get_asn1(&rdn, &atv, CBS_ASN1_SEQUENCE) ||
			    !CBS_get_asn1(&atv, &a->oid, CBS_ASN1_OBJECT) ||
			    !CBS_get_any_asn1(&atv, &a->value, &tag) ||
			    CBS_len(&atv) != 0)
				return (REF_UNKNOWN);
			a->text = tag == CBS_ASN1_UTF8STRING ||
			          tag == CBS_ASN1_PRINTABLESTRING ||
			          tag == CBS_ASN1_IA5STRING ||
			          tag == CBS_ASN1_T61STRING ||
			          tag == CBS_ASN1_NUMERICSTRING ||
			          tag == CBS_ASN1_VISIBLESTRING;
			a->rdn = s->rdns;
			s->per_rdn[s->rdns]++;
			s->n++;
		}
		s->rdns++;
	}
	return (REF_YES);
}

static int
value_is(const struct attr *a, const char *want)
{
	return (CBS_len(&a->value) == strlen(want) &&
	        memcmp(CBS_data(&a->value), want, strlen(want)) == 0);
}

/* The peer id: REF_YES with ${id}, REF_NO, or REF_UNKNOWN. */
static int
ref_peer_id(const struct subject *s, char *id)
{
	const struct attr *hit = NULL;

	id[0] = '\0';
	for (size_t i = 0; i < s->n; i++) {
		if (!oid_is(&s->a[i].oid, oid_serial))
			continue;
		if (hit != NULL || s->per_rdn[s->a[i].rdn] != 1)
			return (REF_NO);
		hit = &s->a[i];
	}
	if (hit == NULL)
		return (REF_NO);
	if (!hit->text)
		return (REF_UNKNOWN);
	if (CBS_len(&hit->value) == 0 || CBS_len(&hit->value) > PP_PEER_ID_MAX)
		return (REF_NO);
	for (size_t i = 0; i < CBS_len(&hit->value); i++)
		if (CBS_data(&hit->value)[i] < 0x20 ||
		    CBS_data(&hit->value)[i] > 0x7e)
			return (REF_NO);
	memcpy(id, CBS_data(&hit->value), CBS_len(&hit->value));
	id[CBS_len(&hit->value)] = '\0';
	return (REF_YES);
}

/* The Swaptacular subject profile: REF_YES, REF_NO or REF_UNKNOWN. */
static int
ref_swaptacular(const struct subject *s)
{
	static const uint8_t *const oids[3] = {oid_o, oid_ou, oid_serial};
	const struct attr *a = s->a;
	char id[PP_PEER_ID_MAX + 1];
	size_t n;

	if (s->n != 3 || s->rdns != 3)
		return (REF_NO);
	for (int i = 0; i < 3; i++) {
		if (!oid_is(&a[i].oid, oids[i]))
			return (REF_NO);
		if (!a[i].text)
			return (REF_UNKNOWN);
	}
	if (!value_is(&a[0], PP_SWPT_ORG))
		return (REF_NO);
	if (!value_is(&a[1], "Accounting Authorities") &&
	    !value_is(&a[1], "Creditors Agents") &&
	    !value_is(&a[1], "Debtors Agents"))
		return (REF_NO);
	if (ref_peer_id(s, id) != REF_YES)
		return (REF_NO);
	n = strlen(id);
	if (n != 8 && n != 32)
		return (REF_NO);
	return (strspn(id, "0123456789abcdef") == n ? REF_YES : REF_NO);
}

/* ---- the plain path check --------------------------------------------- */

/* Self-signed as the README defines it: issuer and subject names match
 * and the signature verifies with its own key. */
static int
self_signed(X509 *x)
{
	EVP_PKEY *k;
	int r;

	if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)))
		return (0);
	if ((k = X509_get_pubkey(x)) == NULL)
		return (0);
	r = X509_verify(x, k) == 1;
	EVP_PKEY_free(k);
	return (r);
}

/* X509_verify_cert on fresh copies: 1 if accepted, with the path length
 * in ${path_len}. */
static int
plain_check(const uint8_t *const *der, const size_t *len, size_t n, int purpose,
            size_t *path_len)
{
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509 *x[MAX_CERTS];
	int ok;

	if (store == NULL || untrusted == NULL || ctx == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = der[i];
		if ((x[i] = d2i_X509(NULL, &p, (long)len[i])) == NULL)
			abort(); /* parsed once already */
	}
	if (!X509_STORE_add_cert(store, x[0]))
		abort();
	for (size_t i = 2; i < n; i++)
		if (!self_signed(x[i]) && !sk_X509_push(untrusted, x[i]))
			abort();
	if (!X509_STORE_CTX_init(ctx, store, x[1], untrusted))
		abort();
	X509_STORE_CTX_set_purpose(ctx, purpose);
	ok = X509_verify_cert(ctx) == 1;
	*path_len = ok ? sk_X509_num(X509_STORE_CTX_get0_chain(ctx)) : 0;
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	X509_STORE_free(store);
	for (size_t i = 0; i < n; i++)
		X509_free(x[i]);
	ERR_clear_error();
	return (ok);
}

/* ---- the harness -------------------------------------------------------- */

static int
write_anchor(X509 *anchor)
{
	FILE *f = fopen(ca_file, "w");
	int ok;

	if (f == NULL)
		abort();
	ok = PEM_write_X509(f, anchor);
	if (fclose(f) != 0)
		abort();
	return (ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum pp_identity_mode modes[4] = {
	    PP_IDENTITY_AUTO, PP_IDENTITY_SWAPTACULAR, PP_IDENTITY_X509,
	    PP_IDENTITY_AUTO};
	const uint8_t *der[MAX_CERTS];
	size_t len[MAX_CERTS], n = 0, off = 1, path_len;
	X509 *x[MAX_CERTS];
	STACK_OF(X509) * extra;
	struct pp_trust_params tp = {.ca_file = ca_file};
	struct pp_trust *t;
	struct pp_verdict v, v2;
	struct subject subj;
	struct pp_allow allow = {0};
	char id[PP_PEER_ID_MAX + 1], pid[PP_PEER_ID_MAX + 1], err[512];
	char *peers[1] = {id};
	int id_rc = REF_UNKNOWN, swpt_rc = REF_UNKNOWN, rc;

	if (size < 1)
		return (0);
	while (n < MAX_CERTS && size - off >= 2) {
		size_t l = (size_t)data[off] << 8 | data[off + 1];
		const uint8_t *p = data + off + 2;

		off += 2;
		if (l > size - off)
			l = size - off;
		off += l;
		if ((x[n] = d2i_X509(NULL, &p, (long)l)) == NULL)
			continue;
		der[n] = data + off - l;
		len[n++] = l;
	}
	ERR_clear_error();
	if (n < 2)
		goto out;

	/* The identity rules against the second reader, on every leaf. */
	if (read_subject(der[1], len[1], &subj) == REF_YES) {
		id_rc = ref_peer_id(&subj, id);
		swpt_rc = ref_swaptacular(&subj);
	}
	rc = pp_identity_peer_id(X509_get_subject_name(x[1]), pid);
	if (id_rc != REF_UNKNOWN && ((rc == 0) != (id_rc == REF_YES) ||
	                             (rc == 0 && strcmp(pid, id) != 0)))
		abort();
	rc = pp_identity_swaptacular(X509_get_subject_name(x[1]), err,
	                             sizeof(err));
	if (swpt_rc != REF_UNKNOWN && (rc == 0) != (swpt_rc == REF_YES))
		abort();

	/* The decision. */
	if (!write_anchor(x[0]))
		goto out;
	tp.mode = modes[data[0] & 3];
	tp.verify_server = (data[0] & 4) != 0;
	if (id_rc == REF_YES && (data[0] & 8))
		tp.required_peer = id;
	if (id_rc == REF_YES && (data[0] & 16)) {
		allow.peers = peers;
		allow.npeers = 1;
		tp.allow = &allow;
	}
	if ((t = pp_trust_new(&tp, err, sizeof(err))) == NULL)
		goto out;
	if ((extra = sk_X509_new_null()) == NULL)
		abort();
	for (size_t i = 2; i < n; i++)
		if (!sk_X509_push(extra, x[i]))
			abort();
	rc = pp_trust_check(t, x[1], extra, &v);
	if (pp_trust_check(t, x[1], extra, &v2) != rc || v.reason != v2.reason)
		abort(); /* the same chain, another answer */
	if (id_rc != REF_UNKNOWN &&
	    strcmp(v.peer_id, id_rc == REF_YES ? id : "") != 0)
		abort(); /* the verdict names another peer */
	runs++;
	if (rc == 0) {
		accepted++;
		if (v.reason != PP_ACCEPTED || n - 2 > 8)
			abort();
		if (!plain_check(der, len, n,
		                 tp.verify_server ? X509_PURPOSE_SSL_SERVER
		                                  : X509_PURPOSE_SSL_CLIENT,
		                 &path_len))
			abort(); /* accepted what the plain check refuses */
		if (pp_trust_mode(t) == PP_IDENTITY_SWAPTACULAR &&
		    (path_len > 3 || swpt_rc == REF_NO))
			abort();
		if (tp.required_peer != NULL && strcmp(v.peer_id, id) != 0)
			abort();
	} else if (v.reason == PP_ACCEPTED || v.detail[0] == '\0') {
		abort(); /* a refusal says why */
	}
	sk_X509_free(extra);
	pp_trust_free(t);
out:
	for (size_t i = 0; i < n; i++)
		X509_free(x[i]);
	ERR_clear_error();
	return (0);
}
