/*
 * Trust policy decisions on real chains.  The PKI is generated at test
 * time by test/pki/pki (the ctest fixture unit_pki):
 *   $PEERPROXY_TEST_PKI/nodes     pki nodes --nodes 3 --forged (p256)
 *   $PEERPROXY_TEST_PKI/generic   pki generic
 * nodes.json names the nodes; forged/vectors.json lists every forged
 * presentation with the outcome a correct verifier must reach.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "support.h"
#include "tls/trust.h"

static struct t_node nodes[3];

static void
load_nodes(void)
{
	t_nodes(nodes, 3);
}

TestSuite(trust, .init = load_nodes);

/* nodes[n].dir/rel */
static const char *
nd(int slot, int n, const char *rel)
{
	static char bufs[4][1200];

	return (t_path(bufs[slot], sizeof(bufs[slot]), nodes[n].dir, rel));
}

/* generic/rel */
static const char *
gen(int slot, const char *rel)
{
	static char bufs[4][1200];

	return (t_pki_path(bufs[slot], sizeof(bufs[slot]), "generic/%s", rel));
}

static struct pp_trust *
policy(const struct pp_trust_params *p)
{
	char err[512] = "";
	struct pp_trust *t = pp_trust_new(p, err, sizeof(err));

	cr_assert_not_null(t, "pp_trust_new(%s): %s", p->ca_file, err);
	return (t);
}

/* node0's inbound side: its own root only, chains from clients. */
static struct pp_trust *
node0_inbound(void)
{
	struct pp_trust_params p = {.ca_file = nd(3, 0, "root-ca.crt"),
	                            .mode = PP_IDENTITY_AUTO};

	return (policy(&p));
}

/* Check the chain in the PEM file ${path} (leaf first) against ${t}. */
static int
check_file(const struct pp_trust *t, const char *path, struct pp_verdict *v)
{
	STACK_OF(X509) *certs = t_certs(path);
	X509 *leaf = sk_X509_shift(certs);
	int rc = pp_trust_check(t, leaf, certs, v);

	cr_assert(rc == 0 || rc == -1);
	cr_assert_eq(rc == 0, v->reason == PP_ACCEPTED,
	             "return value and verdict disagree");
	X509_free(leaf);
	sk_X509_pop_free(certs, X509_free);
	return (rc);
}

/* Check leaf file ${leaf_path} followed by the certs of ${extra_path}
 * (may be NULL). */
static int
check_pair(const struct pp_trust *t, const char *leaf_path,
           const char *extra_path, struct pp_verdict *v)
{
	X509 *leaf = t_cert(leaf_path);
	STACK_OF(X509) *extra = extra_path ? t_certs(extra_path) : NULL;
	int rc = pp_trust_check(t, leaf, extra, v);

	X509_free(leaf);
	sk_X509_pop_free(extra, X509_free);
	return (rc);
}

static void
accepted(int rc, const struct pp_verdict *v, const char *what)
{
	cr_assert_eq(rc, 0, "%s: refused: %s: %s", what,
	             pp_refusal_name(v->reason), v->detail);
	cr_assert_eq(v->reason, PP_ACCEPTED);
}

static void
refused(int rc, const struct pp_verdict *v, enum pp_refusal want,
        const char *what)
{
	cr_assert_eq(rc, -1, "%s: accepted, want %s", what,
	             pp_refusal_name(want));
	cr_assert_str_eq(pp_refusal_name(v->reason), pp_refusal_name(want),
	                 "%s: detail: %s", what, v->detail);
	cr_assert_str_not_empty(v->detail, "%s: a refusal says why", what);
}

/* ---- forged vectors ------------------------------------------------ */

/* The one other refusal category a vector may get, or NULL. */
static const char *
alternative_reason(const char *vector)
{
	/* BoringSSL differs from OpenSSL on extra-cn: a leaf with a CN and no
	 * SAN under a CA with name constraints is refused by path validation
	 * ("Issuer has name constraints but leaf has no SANs",
	 * name_constraints) before our identity rule (bad_identity) is
	 * reached.  Either refusal is right, for this vector only. */
	if (strcmp(vector, "extra-cn") == 0)
		return ("name_constraints");
	/* server-other-serial: the leaf is a valid Swaptacular subject whose
	 * serialNumber is another node's; the generator calls that
	 * bad_identity, peerproxy's required-peer rule (--peer) calls it
	 * peer_not_allowed (trust.h).  Either is a correct refusal, as in
	 * test/integration/test_trust.py's PEER_MISMATCH. */
	if (strcmp(vector, "server-other-serial") == 0)
		return ("peer_not_allowed");
	return (NULL);
}

/* Run every vector of ${side} against ${t}; return how many ran. */
static size_t
run_vectors(const struct pp_trust *t, const char *side)
{
	char path[1024];
	struct tj *list = t_json_file(
	    t_pki_path(path, sizeof(path), "nodes/forged/vectors.json"));
	size_t ran = 0;

	cr_assert_eq(list->type, TJ_ARRAY);
	for (size_t i = 0; i < list->n; i++) {
		const struct tj *vec = list->items[i];
		const char *name = tj_str(vec, "name");
		const char *expect = tj_str(vec, "expect");
		const char *reason = tj_str(vec, "reason");
		const char *alt;
		struct pp_verdict v;
		int rc;

		cr_assert(name != NULL && expect != NULL &&
		              tj_str(vec, "side") != NULL,
		          "vector #%zu lacks name/side/expect", i);
		if (strcmp(tj_str(vec, "side"), side) != 0)
			continue;
		ran++;
		rc = check_file(t,
		                t_pki_path(path, sizeof(path),
		                           "nodes/forged/%s/chain.pem", name),
		                &v);
		if (strcmp(expect, "accepted") == 0) {
			cr_expect_eq(rc, 0,
			             "vector %s: want accepted, got %s: %s",
			             name, pp_refusal_name(v.reason), v.detail);
			continue;
		}
		cr_assert_str_eq(expect, "refused", "vector %s", name);
		cr_assert_not_null(reason, "vector %s: refused without reason",
		                   name);
		cr_expect_eq(rc, -1, "vector %s: accepted, want %s", name,
		             reason);
		if (rc != -1)
			continue;
		alt = alternative_reason(name);
		cr_expect(strcmp(pp_refusal_name(v.reason), reason) == 0 ||
		              (alt != NULL &&
		               strcmp(pp_refusal_name(v.reason), alt) == 0),
		          "vector %s: want %s%s%s, got %s: %s", name, reason,
		          alt ? " or " : "", alt ? alt : "",
		          pp_refusal_name(v.reason), v.detail);
		cr_expect_str_not_empty(v.detail, "vector %s: no detail", name);
		cr_log_info("vector %s (%s): %s: %s", name, side,
		            pp_refusal_name(v.reason), v.detail);
	}
	tj_free(list);
	return (ran);
}

Test(trust, forged_client_vectors_against_node0_inbound)
{
	struct pp_trust *t = node0_inbound();

	cr_assert_eq(pp_trust_mode(t), PP_IDENTITY_SWAPTACULAR);
	cr_assert_geq(run_vectors(t, "client"), 15,
	              "vectors.json lists fewer client vectors than expected");
	pp_trust_free(t);
}

/* node0's outbound side towards node1: node1's root only, a TLS server's
 * chain, and the server must be node1. */
Test(trust, forged_server_vectors_against_node0_outbound)
{
	struct pp_trust_params p = {
	    .ca_file = NULL,
	    .mode = PP_IDENTITY_AUTO,
	    .verify_server = 1,
	};
	char ca[1200];
	struct pp_trust *t;
	struct pp_verdict v;

	snprintf(ca, sizeof(ca), "%s/peers/%s/root-ca.crt", nodes[0].dir,
	         nodes[1].id);
	p.ca_file = ca;
	p.required_peer = nodes[1].id;
	t = policy(&p);
	cr_assert_geq(run_vectors(t, "server"), 1);

	/* And node1's genuine server certificate passes. */
	accepted(check_pair(t, nd(0, 1, "server.crt"), NULL, &v), &v,
	         "node1 server.crt");
	cr_assert_str_eq(v.peer_id, nodes[1].id);
	pp_trust_free(t);
}

/* ---- the genuine chain ---------------------------------------------- */

Test(trust, genuine_chain_gives_node1s_id)
{
	struct pp_trust *t = node0_inbound();
	struct pp_verdict v;
	char path[1024];

	accepted(check_file(t,
	                    t_pki_path(path, sizeof(path),
	                               "nodes/forged/genuine/chain.pem"),
	                    &v),
	         &v, "genuine");
	cr_assert_str_eq(v.peer_id, nodes[1].id);
	cr_assert(t_contains(v.leaf_subject, nodes[1].id), "%s",
	          v.leaf_subject);
	cr_assert_str_empty(v.leaf_cn, "the profile has no CN");
	pp_trust_free(t);
}

/* The same chain assembled from the node data directories, the way node1
 * presents it: its server.crt, then peers/<node0>/sub-ca.crt. */
Test(trust, node_data_chain_for_every_peer)
{
	for (int client = 1; client < 3; client++) {
		struct pp_trust *t = node0_inbound();
		struct pp_verdict v;
		char sub[1200];

		snprintf(sub, sizeof(sub), "%s/peers/%s/sub-ca.crt",
		         nodes[client].dir, nodes[0].id);
		accepted(check_pair(t, nd(0, client, "server.crt"), sub, &v),
		         &v, "node data chain");
		cr_assert_str_eq(v.peer_id, nodes[client].id);
		pp_trust_free(t);
	}
}

/* A cross certificate signed by someone else's root does not lead to
 * node0: node2's cross certificate for node1 is useless at node0. */
Test(trust, cross_certificate_for_another_node_is_untrusted)
{
	struct pp_trust *t = node0_inbound();
	struct pp_verdict v;
	char sub[1200];

	snprintf(sub, sizeof(sub), "%s/peers/%s/sub-ca.crt", nodes[1].dir,
	         nodes[2].id);
	refused(check_pair(t, nd(0, 1, "server.crt"), sub, &v), &v,
	        PP_R_UNTRUSTED, "node2's cross cert presented to node0");
	pp_trust_free(t);
}

/* ---- required peer, allow lists, gate ------------------------------- */

Test(trust, required_peer)
{
	struct pp_trust_params p = {.mode = PP_IDENTITY_AUTO};
	struct pp_trust *t;
	struct pp_verdict v;
	char sub[1200];

	snprintf(sub, sizeof(sub), "%s/peers/%s/sub-ca.crt", nodes[1].dir,
	         nodes[0].id);
	p.ca_file = nd(3, 0, "root-ca.crt");
	p.required_peer = nodes[2].id;
	t = policy(&p);
	refused(check_pair(t, nd(0, 1, "server.crt"), sub, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "required_peer = node2");
	cr_assert_str_eq(v.peer_id, nodes[1].id,
	                 "the refused peer's id is still reported");
	pp_trust_free(t);

	p.required_peer = nodes[1].id;
	t = policy(&p);
	accepted(check_pair(t, nd(0, 1, "server.crt"), sub, &v), &v,
	         "required_peer = node1");
	pp_trust_free(t);
}

Test(trust, allow_peers_with_node_ids)
{
	struct pp_allow allow = {0};
	struct pp_trust_params p = {.mode = PP_IDENTITY_AUTO, .allow = &allow};
	char *ids[2];
	struct pp_trust *t;
	struct pp_verdict v;
	char sub[1200];

	snprintf(sub, sizeof(sub), "%s/peers/%s/sub-ca.crt", nodes[1].dir,
	         nodes[0].id);
	p.ca_file = nd(3, 0, "root-ca.crt");

	ids[0] = nodes[2].id;
	allow.peers = ids;
	allow.npeers = 1;
	t = policy(&p);
	refused(check_pair(t, nd(0, 1, "server.crt"), sub, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "allow-peer node2 only");
	pp_trust_free(t);

	ids[1] = nodes[1].id;
	allow.npeers = 2;
	t = policy(&p);
	accepted(check_pair(t, nd(0, 1, "server.crt"), sub, &v), &v,
	         "allow-peer node2, node1");
	pp_trust_free(t);
}

/* The policy copies its strings: the caller's may go away. */
Test(trust, policy_copies_its_parameters)
{
	struct pp_allow allow = {0};
	struct pp_trust_params p = {.mode = PP_IDENTITY_AUTO, .allow = &allow};
	char id[PP_PEER_ID_MAX + 1], req[PP_PEER_ID_MAX + 1];
	char *ids[1] = {id};
	struct pp_trust *t;
	struct pp_verdict v;
	char sub[1200];

	snprintf(sub, sizeof(sub), "%s/peers/%s/sub-ca.crt", nodes[1].dir,
	         nodes[0].id);
	strcpy(id, nodes[1].id);
	strcpy(req, nodes[1].id);
	allow.peers = ids;
	allow.npeers = 1;
	p.ca_file = nd(3, 0, "root-ca.crt");
	p.required_peer = req;
	t = policy(&p);
	memset(id, 'z', strlen(id));
	memset(req, 'z', strlen(req));
	accepted(check_pair(t, nd(0, 1, "server.crt"), sub, &v), &v,
	         "after the caller's strings changed");
	pp_trust_free(t);
}

struct gate_state {
	int calls;
	char seen[PP_PEER_ID_MAX + 1];
	int admit;
};

static int
gate(void *arg, const char *peer_id, char *detail, size_t len)
{
	struct gate_state *g = arg;

	g->calls++;
	snprintf(g->seen, sizeof(g->seen), "%s", peer_id);
	if (g->admit)
		return (0);
	snprintf(detail, len, "peer %s is DEACTIVATED (test gate)", peer_id);
	return (-1);
}

Test(trust, gate_refusal_is_peer_inactive)
{
	struct gate_state g = {0, "", 0};
	struct pp_trust_params p = {
	    .mode = PP_IDENTITY_AUTO, .gate = gate, .gate_arg = &g};
	struct pp_trust *t;
	struct pp_verdict v;
	char sub[1200];

	snprintf(sub, sizeof(sub), "%s/peers/%s/sub-ca.crt", nodes[1].dir,
	         nodes[0].id);
	p.ca_file = nd(3, 0, "root-ca.crt");
	t = policy(&p);
	refused(check_pair(t, nd(0, 1, "server.crt"), sub, &v), &v,
	        PP_R_PEER_INACTIVE, "gate refuses");
	cr_assert_eq(g.calls, 1);
	cr_assert_str_eq(g.seen, nodes[1].id, "the gate sees the peer id");
	cr_assert(t_contains(v.detail, "DEACTIVATED"),
	          "the gate's reason is kept: %s", v.detail);

	g.admit = 1;
	accepted(check_pair(t, nd(0, 1, "server.crt"), sub, &v), &v,
	         "gate admits");
	cr_assert_eq(g.calls, 2);
	pp_trust_free(t);
}

Test(trust, gate_is_not_consulted_for_untrusted_chains)
{
	struct gate_state g = {0, "", 1};
	struct pp_trust_params p = {
	    .mode = PP_IDENTITY_AUTO, .gate = gate, .gate_arg = &g};
	struct pp_trust *t;
	struct pp_verdict v;

	p.ca_file = nd(3, 0, "root-ca.crt");
	t = policy(&p);
	refused(check_pair(t, nd(0, 1, "server.crt"), NULL, &v), &v,
	        PP_R_UNTRUSTED, "leaf alone");
	cr_assert_eq(g.calls, 0, "the gate comes after everything else");
	pp_trust_free(t);
}

/* ---- identity modes ------------------------------------------------- */

Test(trust, auto_mode_resolution)
{
	struct pp_trust_params p = {.mode = PP_IDENTITY_AUTO};
	struct pp_trust *t;

	p.ca_file = nd(3, 0, "root-ca.crt");
	t = policy(&p);
	cr_assert_eq(pp_trust_mode(t), PP_IDENTITY_SWAPTACULAR,
	             "a Swaptacular anchor means swaptacular");
	cr_assert_eq(sk_X509_num(pp_trust_anchors(t)), 1);
	pp_trust_free(t);

	p.ca_file = gen(0, "ca.crt");
	t = policy(&p);
	cr_assert_eq(pp_trust_mode(t), PP_IDENTITY_X509,
	             "a generic CA means x509");
	pp_trust_free(t);

	/* An explicit mode is kept as given. */
	p.mode = PP_IDENTITY_X509;
	p.ca_file = nd(3, 0, "root-ca.crt");
	t = policy(&p);
	cr_assert_eq(pp_trust_mode(t), PP_IDENTITY_X509);
	pp_trust_free(t);
	p.mode = PP_IDENTITY_SWAPTACULAR;
	p.ca_file = gen(0, "ca.crt");
	t = policy(&p);
	cr_assert_eq(pp_trust_mode(t), PP_IDENTITY_SWAPTACULAR);
	pp_trust_free(t);
}

/* pki.md pitfall 2: plain X.509 validation accepts a self-issued
 * intermediate under a pathlen:0 cross certificate; only the Swaptacular
 * chain bound refuses it. */
Test(trust, self_issued_intermediate_x509_accepts_swaptacular_refuses)
{
	struct pp_trust_params p = {.mode = PP_IDENTITY_X509};
	struct pp_trust *t;
	struct pp_verdict v;
	char path[1024];

	t_pki_path(path, sizeof(path),
	           "nodes/forged/self-issued-intermediate/chain.pem");
	p.ca_file = nd(3, 0, "root-ca.crt");
	t = policy(&p);
	accepted(check_file(t, path, &v), &v,
	         "x509 mode: the pitfall is plain X.509 behaviour");
	cr_assert_str_eq(v.peer_id, nodes[1].id);
	pp_trust_free(t);

	p.mode = PP_IDENTITY_SWAPTACULAR;
	t = policy(&p);
	refused(check_file(t, path, &v), &v, PP_R_CHAIN_TOO_LONG,
	        "swaptacular mode");
	pp_trust_free(t);
}

/* In x509 mode the Swaptacular subject rules do not apply. */
Test(trust, x509_mode_skips_the_swaptacular_profile)
{
	struct pp_trust_params p = {.mode = PP_IDENTITY_X509};
	struct pp_trust *t;
	struct pp_verdict v;
	char path[1024];

	p.ca_file = nd(3, 0, "root-ca.crt");
	t = policy(&p);
	accepted(check_file(t,
	                    t_pki_path(path, sizeof(path),
	                               "nodes/forged/lowercase-o/chain.pem"),
	                    &v),
	         &v, "lowercase-o in x509 mode");
	pp_trust_free(t);
}

/* ---- self-signed detection ------------------------------------------ */

Test(trust, cert_is_self_signed)
{
	X509 *x;
	char sub[1200];

	x = t_cert(nd(0, 0, "root-ca.crt"));
	cr_assert(pp_cert_is_self_signed(x), "a root is self-signed");
	X509_free(x);

	/* pki.md pitfall 4: the server leaf's subject equals its issuer's,
	 * but it is signed by the root's key, not its own. */
	x = t_cert(nd(0, 0, "server.crt"));
	cr_assert_eq(
	    X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0,
	    "fixture: subject == issuer");
	cr_assert_not(pp_cert_is_self_signed(x),
	              "a Swaptacular server.crt is NOT self-signed");
	X509_free(x);

	snprintf(sub, sizeof(sub), "%s/peers/%s/sub-ca.crt", nodes[0].dir,
	         nodes[1].id);
	x = t_cert(sub);
	cr_assert_not(pp_cert_is_self_signed(x), "a cross certificate");
	X509_free(x);

	x = t_cert(gen(0, "ca.crt"));
	cr_assert(pp_cert_is_self_signed(x));
	X509_free(x);
	x = t_cert(gen(0, "client.crt"));
	cr_assert_not(pp_cert_is_self_signed(x));
	X509_free(x);
}

Test(trust, impostor_root_is_self_signed_but_untrusted)
{
	char path[1024];
	STACK_OF(X509) *chain = t_certs(t_pki_path(
	    path, sizeof(path), "nodes/forged/impostor-root/chain.pem"));
	X509 *root = t_cert(nd(0, 1, "root-ca.crt"));

	cr_assert_eq(sk_X509_num(chain), 2);
	cr_assert(pp_cert_is_self_signed(sk_X509_value(chain, 1)));
	/* Same name as node1's real root, different key. */
	cr_assert_eq(
	    X509_NAME_cmp(X509_get_subject_name(root),
	                  X509_get_subject_name(sk_X509_value(chain, 1))),
	    0);
	cr_assert_neq(X509_cmp(root, sk_X509_value(chain, 1)), 0);
	X509_free(root);
	sk_X509_pop_free(chain, X509_free);
}

/* ---- the generic PKI (x509 mode) ------------------------------------ */

static struct pp_trust *
generic_inbound(const struct pp_allow *allow)
{
	struct pp_trust_params p = {.mode = PP_IDENTITY_AUTO, .allow = allow};

	p.ca_file = gen(3, "ca.crt");
	return (policy(&p));
}

Test(trust, generic_client_without_allow_lists)
{
	struct pp_trust *t = generic_inbound(NULL);
	struct pp_verdict v;

	accepted(check_pair(t, gen(0, "client.crt"), NULL, &v), &v, "client1");
	cr_assert_str_eq(v.leaf_cn, "client1");
	cr_assert_str_empty(v.peer_id, "no serialNumber, no peer id");
	accepted(check_pair(t, gen(0, "client2.crt"), NULL, &v), &v, "client2");
	refused(check_pair(t, gen(0, "other-client.crt"), NULL, &v), &v,
	        PP_R_UNTRUSTED, "a client of another CA");
	pp_trust_free(t);
}

Test(trust, generic_allow_cn)
{
	char *cns[] = {"client1"};
	struct pp_allow allow = {.cns = cns, .ncns = 1};
	struct pp_trust *t = generic_inbound(&allow);
	struct pp_verdict v;

	accepted(check_pair(t, gen(0, "client.crt"), NULL, &v), &v, "client1");
	refused(check_pair(t, gen(0, "client2.crt"), NULL, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "client2 not in allow-cn");
	pp_trust_free(t);
}

Test(trust, generic_allow_dns_is_case_insensitive)
{
	char *dns[] = {"CLIENT1.Example.ORG"};
	struct pp_allow allow = {.dns = dns, .ndns = 1};
	struct pp_trust *t = generic_inbound(&allow);
	struct pp_verdict v;

	accepted(check_pair(t, gen(0, "client.crt"), NULL, &v), &v, "client1");
	refused(check_pair(t, gen(0, "client2.crt"), NULL, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "client2 not in allow-dns");
	pp_trust_free(t);
}

Test(trust, generic_allow_uri_is_exact)
{
	char *uris[] = {"spiffe://example.org/client1"};
	char *upper[] = {"SPIFFE://example.org/client1"};
	char *prefix[] = {"spiffe://example.org/client"};
	struct pp_allow allow = {.uris = uris, .nuris = 1};
	struct pp_trust *t = generic_inbound(&allow);
	struct pp_verdict v;

	accepted(check_pair(t, gen(0, "client.crt"), NULL, &v), &v, "client1");
	refused(check_pair(t, gen(0, "client2.crt"), NULL, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "client2 not in allow-uri");
	pp_trust_free(t);

	allow.uris = upper;
	t = generic_inbound(&allow);
	refused(check_pair(t, gen(0, "client.crt"), NULL, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "URIs compare exactly");
	pp_trust_free(t);

	allow.uris = prefix;
	t = generic_inbound(&allow);
	refused(check_pair(t, gen(0, "client.crt"), NULL, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "no prefix match");
	pp_trust_free(t);
}

Test(trust, generic_allow_peers_needs_a_serial_number)
{
	char *peers[] = {"client1"};
	struct pp_allow allow = {.peers = peers, .npeers = 1};
	struct pp_trust *t = generic_inbound(&allow);
	struct pp_verdict v;

	refused(check_pair(t, gen(0, "client.crt"), NULL, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "CN is not a peer id");
	pp_trust_free(t);
}

Test(trust, generic_any_list_may_admit)
{
	char *cns[] = {"nobody"};
	char *uris[] = {"spiffe://example.org/client2"};
	struct pp_allow allow = {
	    .cns = cns, .ncns = 1, .uris = uris, .nuris = 1};
	struct pp_trust *t = generic_inbound(&allow);
	struct pp_verdict v;

	accepted(check_pair(t, gen(0, "client2.crt"), NULL, &v), &v,
	         "client2 by URI");
	refused(check_pair(t, gen(0, "client.crt"), NULL, &v), &v,
	        PP_R_PEER_NOT_ALLOWED, "client1 matches neither list");
	pp_trust_free(t);
}

Test(trust, generic_intermediate_name_constraints)
{
	struct pp_trust *t = generic_inbound(NULL);
	struct pp_verdict v;

	accepted(check_file(t, gen(0, "nc-good-chain.pem"), &v), &v,
	         "svc.allowed.example");
	refused(check_file(t, gen(0, "nc-bad-chain.pem"), &v), &v,
	        PP_R_NAME_CONSTRAINTS, "svc.evil.example");
	refused(check_pair(t, gen(0, "nc-good.crt"), NULL, &v), &v,
	        PP_R_UNTRUSTED, "intermediate missing");
	pp_trust_free(t);
}

static struct pp_trust *
generic_outbound(const char *hostname)
{
	struct pp_trust_params p = {
	    .mode = PP_IDENTITY_AUTO, .verify_server = 1, .hostname = hostname};

	p.ca_file = gen(3, "ca.crt");
	return (policy(&p));
}

Test(trust, hostname_check)
{
	struct pp_trust *t = generic_outbound("localhost");
	struct pp_verdict v;

	accepted(check_pair(t, gen(0, "server.crt"), NULL, &v), &v,
	         "localhost");
	pp_trust_free(t);

	t = generic_outbound("LocalHost");
	accepted(check_pair(t, gen(0, "server.crt"), NULL, &v), &v,
	         "host names compare case-insensitively");
	pp_trust_free(t);

	t = generic_outbound("example.com");
	refused(check_pair(t, gen(0, "server.crt"), NULL, &v), &v,
	        PP_R_HOSTNAME_MISMATCH, "example.com");
	pp_trust_free(t);

	t = generic_outbound("sub.localhost");
	refused(check_pair(t, gen(0, "server.crt"), NULL, &v), &v,
	        PP_R_HOSTNAME_MISMATCH, "sub.localhost");
	pp_trust_free(t);

	t = generic_outbound(NULL);
	accepted(check_pair(t, gen(0, "server.crt"), NULL, &v), &v,
	         "no hostname: no check");
	pp_trust_free(t);
}

Test(trust, purpose_client_cert_cannot_serve)
{
	struct pp_trust *t = generic_outbound(NULL);
	struct pp_verdict v;

	/* client.crt has extendedKeyUsage clientAuth only. */
	refused(check_pair(t, gen(0, "client.crt"), NULL, &v), &v,
	        PP_R_BAD_USAGE, "clientAuth-only leaf as a server");
	pp_trust_free(t);
}

/* ---- limits and errors ---------------------------------------------- */

Test(trust, too_many_sent_certificates)
{
	struct pp_trust *t = node0_inbound();
	struct pp_verdict v;
	char sub[1200];
	X509 *leaf = t_cert(nd(0, 1, "server.crt")), *cross;
	STACK_OF(X509) *extra = sk_X509_new_null();

	snprintf(sub, sizeof(sub), "%s/peers/%s/sub-ca.crt", nodes[1].dir,
	         nodes[0].id);
	cross = t_cert(sub);
	for (int i = 0; i < 20; i++) {
		X509_up_ref(cross);
		cr_assert(sk_X509_push(extra, cross));
	}
	refused(pp_trust_check(t, leaf, extra, &v), &v, PP_R_CHAIN_TOO_LONG,
	        "21 certificates");
	X509_free(cross);
	X509_free(leaf);
	sk_X509_pop_free(extra, X509_free);
	pp_trust_free(t);
}

Test(trust, new_fails_on_a_missing_ca_file)
{
	char err[512] = "";
	struct pp_trust_params p = {.mode = PP_IDENTITY_AUTO};

	p.ca_file = nd(0, 0, "no-such-root.crt");
	cr_assert_null(pp_trust_new(&p, err, sizeof(err)));
	cr_assert(t_contains(err, p.ca_file), "names the file: %s", err);

	/* A key file holds no certificate. */
	p.ca_file = nd(0, 0, "root-ca.key");
	cr_assert_null(pp_trust_new(&p, err, sizeof(err)));
	cr_assert(t_contains(err, p.ca_file), "names the file: %s", err);
}

/* A bundle of several anchors, one of them twice (cat'ed roots). */
Test(trust, ca_bundle_with_several_and_duplicate_anchors)
{
	struct pp_trust_params p = {.mode = PP_IDENTITY_AUTO};
	char dir[512], bundle[1024], path[1024];
	struct pp_trust *t;
	struct pp_verdict v;

	t_tmpdir(dir, sizeof(dir));
	t_path(bundle, sizeof(bundle), dir, "bundle.crt");
	cr_assert_eq(t_sh("cat '%s' '%s' '%s' > '%s'", nd(0, 0, "root-ca.crt"),
	                  gen(1, "ca.crt"), nd(2, 0, "root-ca.crt"), bundle),
	             0);
	p.ca_file = bundle;
	t = policy(&p);
	cr_assert_eq(pp_trust_mode(t), PP_IDENTITY_SWAPTACULAR,
	             "any Swaptacular anchor makes auto swaptacular");
	accepted(check_file(t,
	                    t_pki_path(path, sizeof(path),
	                               "nodes/forged/genuine/chain.pem"),
	                    &v),
	         &v, "genuine against the bundle");
	pp_trust_free(t);
	t_rmtree(dir);
}

Test(trust, free_null_does_nothing)
{
	pp_trust_free(NULL);
}

Test(trust, check_print_writes_the_path)
{
	struct pp_trust *t = node0_inbound();
	struct pp_verdict v;
	char path[1024], buf[4096];
	STACK_OF(X509) *certs = t_certs(
	    t_pki_path(path, sizeof(path), "nodes/forged/genuine/chain.pem"));
	X509 *leaf = sk_X509_shift(certs);
	FILE *f = tmpfile();
	size_t n;

	cr_assert_not_null(f);
	accepted(pp_trust_check_print(t, leaf, certs, &v, f), &v, "genuine");
	fflush(f);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	cr_assert(t_contains(buf, nodes[1].id), "%s", buf);
	cr_assert(t_contains(buf, nodes[0].id), "the anchor is node0's: %s",
	          buf);
	X509_free(leaf);
	sk_X509_pop_free(certs, X509_free);
	pp_trust_free(t);
}

Test(trust, refusal_names_are_stable)
{
	static const char *const want[PP_R_COUNT] = {
	    "accepted",       "name_constraints",  "expired",
	    "not_yet_valid",  "untrusted",         "not_ca",
	    "chain_too_long", "bad_identity",      "peer_not_allowed",
	    "bad_usage",      "hostname_mismatch", "no_certificate",
	    "peer_inactive",  "bad_key",
	};

	for (int r = 0; r < PP_R_COUNT; r++)
		cr_expect_str_eq(pp_refusal_name((enum pp_refusal)r), want[r]);
	cr_assert_str_eq(pp_refusal_name(PP_R_COUNT), "unknown");
	cr_assert_str_eq(pp_refusal_name((enum pp_refusal) - 1), "unknown");
}

Test(trust, refusal_alerts)
{
	cr_assert_eq(pp_refusal_alert(PP_R_UNTRUSTED), SSL_AD_UNKNOWN_CA);
	cr_assert_eq(pp_refusal_alert(PP_R_EXPIRED),
	             SSL_AD_CERTIFICATE_EXPIRED);
	cr_assert_eq(pp_refusal_alert(PP_R_PEER_NOT_ALLOWED),
	             SSL_AD_ACCESS_DENIED);
	cr_assert_eq(pp_refusal_alert(PP_R_PEER_INACTIVE),
	             SSL_AD_ACCESS_DENIED);
	cr_assert_eq(pp_refusal_alert(PP_R_NO_CERTIFICATE),
	             SSL_AD_CERTIFICATE_REQUIRED);
	cr_assert_eq(pp_refusal_alert(PP_R_BAD_IDENTITY),
	             SSL_AD_BAD_CERTIFICATE);
	cr_assert_eq(pp_refusal_alert(PP_R_BAD_KEY),
	             SSL_AD_UNSUPPORTED_CERTIFICATE);
}

/* ---- the key policy, on peers' chains and on our anchors ---- */

/* In ${dir}: a CA (key ${ca_key}, as openssl req -newkey takes it) and a
 * client leaf under it (key ${leaf_key}). */
static void
ca_and_leaf(const char *dir, const char *ca_key, const char *leaf_key)
{
	cr_assert_eq(
	    t_sh("cd '%s' && printf 'basicConstraints=CA:false\\n"
	         "extendedKeyUsage=clientAuth\\n' > leaf.ext && "
	         "openssl req -x509 -new -newkey %s -nodes -keyout ca.key "
	         "-subj /CN=ca -days 2 -addext "
	         "basicConstraints=critical,CA:true -addext "
	         "keyUsage=critical,keyCertSign -out ca.crt && "
	         "openssl req -new -newkey %s -nodes -keyout leaf.key "
	         "-subj /CN=leaf -out leaf.csr && "
	         "openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key "
	         "-CAcreateserial -days 2 -extfile leaf.ext -out leaf.crt",
	         dir, ca_key, leaf_key),
	    0, "openssl could not make %s + %s", ca_key, leaf_key);
}

/* The verdict on ${dir}/leaf.crt under the x509 policy of ${dir}/ca.crt. */
static int
check_leaf(const char *dir, struct pp_verdict *v)
{
	char path[600];
	struct pp_trust_params p = {
	    .ca_file = t_path(path, sizeof(path), dir, "ca.crt"),
	    .mode = PP_IDENTITY_X509};
	struct pp_trust *t = policy(&p);
	X509 *leaf = t_cert(t_path(path, sizeof(path), dir, "leaf.crt"));
	int rc = pp_trust_check(t, leaf, NULL, v);

	X509_free(leaf);
	pp_trust_free(t);
	return (rc);
}

Test(trust, a_peer_leaf_with_a_weak_or_unsupported_key_is_refused)
{
	static const struct {
		const char *key, *why;
	} bad[] = {
	    {"rsa:1024", "RSA key of 1024 bits: too weak"},
	    {"ec -pkeyopt ec_paramgen_curve:P-521", "ECDSA key on P-521: not "
	                                            "supported"},
	};
	char dir[512];
	struct pp_verdict v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t_tmpdir(dir, sizeof(dir));
		ca_and_leaf(dir, "ec -pkeyopt ec_paramgen_curve:P-256",
		            bad[i].key);
		cr_assert_eq(check_leaf(dir, &v), -1, "%s", bad[i].key);
		cr_assert_eq(v.reason, PP_R_BAD_KEY, "%s: %s", bad[i].key,
		             pp_refusal_name(v.reason));
		cr_assert(t_contains(v.detail, "leaf \"CN=leaf\""), "%s",
		          v.detail);
		cr_assert(t_contains(v.detail, bad[i].why), "%s", v.detail);
		t_rmtree(dir);
	}
}

Test(trust, peer_leaves_with_accepted_keys_pass)
{
	static const char *const good[] = {
	    "rsa:2048", "ec -pkeyopt ec_paramgen_curve:P-384", "ed25519"};
	char dir[512];
	struct pp_verdict v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		t_tmpdir(dir, sizeof(dir));
		ca_and_leaf(dir, "ed25519", good[i]);
		cr_assert_eq(check_leaf(dir, &v), 0, "%s: %s: %s", good[i],
		             pp_refusal_name(v.reason), v.detail);
		t_rmtree(dir);
	}
}

Test(trust, an_anchor_with_a_weak_key_is_refused_naming_the_file)
{
	char dir[512], path[600], err[512] = "";
	struct pp_trust_params p = {.mode = PP_IDENTITY_X509};

	t_tmpdir(dir, sizeof(dir));
	ca_and_leaf(dir, "rsa:1024", "rsa:2048");
	p.ca_file = t_path(path, sizeof(path), dir, "ca.crt");
	cr_assert_null(pp_trust_new(&p, err, sizeof(err)));
	cr_assert(t_contains(err, path), "%s", err);
	cr_assert(t_contains(err, "certificate #1 (\"CN=ca\"): RSA key of "
	                          "1024 bits: too weak"),
	          "%s", err);
	t_rmtree(dir);
}
