/*
 * Peer identity rules on X509_NAMEs built in code, so that every corner
 * of the profile (multi-valued RDNs, duplicates, order, string contents)
 * can be reached without a CA.
 */

#include <string.h>

#include <criterion/criterion.h>

#include <openssl/asn1.h>
#include <openssl/nid.h>
#include <openssl/x509.h>

#include "tls/identity.h"

#define ID8  "0123abcd"
#define ID32 "0123456789abcdef0123456789abcdef"

/* set argument of X509_NAME_add_entry_*: NEW starts an RDN, SAME joins the
 * last one (a multi-valued RDN). */
#define NEW  0
#define SAME (-1)

static void
add(X509_NAME *n, const char *field, int type, const char *value, int set)
{
	cr_assert_eq(X509_NAME_add_entry_by_txt(n, field, type,
	                                        (const unsigned char *)value,
	                                        -1, -1, set),
	             1, "cannot add %s=%s", field, value);
}

static void
add_nid(X509_NAME *n, int nid, int type, const char *value, int set)
{
	cr_assert_eq(X509_NAME_add_entry_by_NID(n, nid, type,
	                                        (const unsigned char *)value,
	                                        -1, -1, set),
	             1, "cannot add nid %d=%s", nid, value);
}

/* The exact Swaptacular subject: O, OU (UTF8String), serialNumber
 * (PrintableString). */
static X509_NAME *
swpt(const char *ou, const char *id)
{
	X509_NAME *n = X509_NAME_new();

	cr_assert_not_null(n);
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "OU", MBSTRING_UTF8, ou, NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, id, NEW);
	return (n);
}

static void
peer_id_is(const X509_NAME *n, const char *want)
{
	char out[PP_PEER_ID_MAX + 1];

	memset(out, 'X', sizeof(out));
	cr_assert_eq(pp_identity_peer_id(n, out), 0, "want id %s", want);
	cr_assert_str_eq(out, want);
}

static void
no_peer_id(const X509_NAME *n, const char *why)
{
	char out[PP_PEER_ID_MAX + 1];

	memset(out, 'X', sizeof(out));
	cr_assert_eq(pp_identity_peer_id(n, out), -1, "%s: must fail", why);
	cr_assert_str_empty(out, "%s: out must be empty on failure", why);
}

static void
profile_ok(const X509_NAME *n)
{
	char detail[256] = "";

	cr_assert_eq(pp_identity_swaptacular(n, detail, sizeof(detail)), 0,
	             "profile refused: %s", detail);
}

static void
profile_bad(const X509_NAME *n, const char *why)
{
	char detail[256] = "";

	cr_assert_eq(pp_identity_swaptacular(n, detail, sizeof(detail)), -1,
	             "%s: must be refused", why);
	cr_assert_str_not_empty(detail, "%s: refusal must say why", why);
}

/* ---- pp_identity_peer_id ------------------------------------------- */

Test(identity, peer_id_single_serial)
{
	X509_NAME *n = swpt("Creditors Agents", ID32);

	peer_id_is(n, ID32);
	X509_NAME_free(n);

	/* Any name with one serialNumber alone in its RDN. */
	n = X509_NAME_new();
	add(n, "CN", MBSTRING_UTF8, "somebody", NEW);
	add_nid(n, NID_serialNumber, MBSTRING_ASC, "peer-42", NEW);
	peer_id_is(n, "peer-42");
	X509_NAME_free(n);
}

Test(identity, peer_id_two_serials_fail)
{
	X509_NAME *n = swpt("Creditors Agents", ID32);

	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, "ffffffff", NEW);
	no_peer_id(n, "trailing second serialNumber");
	X509_NAME_free(n);

	n = swpt("Creditors Agents", ID32);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
	no_peer_id(n, "the same serialNumber twice");
	X509_NAME_free(n);
}

Test(identity, peer_id_in_multi_valued_rdn_fails)
{
	X509_NAME *n = X509_NAME_new();

	/* serialNumber first in its RDN, CN joins it. */
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID8, NEW);
	add(n, "CN", MBSTRING_UTF8, "x", SAME);
	cr_assert_eq(X509_NAME_entry_count(n), 3);
	no_peer_id(n, "serialNumber + CN in one RDN");
	X509_NAME_free(n);

	/* serialNumber last in its RDN. */
	n = X509_NAME_new();
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "OU", MBSTRING_UTF8, "Debtors Agents", NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID8, SAME);
	no_peer_id(n, "OU + serialNumber in one RDN");
	X509_NAME_free(n);

	/* serialNumber in the middle of a three-valued first RDN. */
	n = X509_NAME_new();
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID8, SAME);
	add(n, "CN", MBSTRING_UTF8, "x", SAME);
	no_peer_id(n, "O + serialNumber + CN in one RDN");
	X509_NAME_free(n);
}

Test(identity, peer_id_none_fails)
{
	X509_NAME *n = X509_NAME_new();

	no_peer_id(n, "empty name");
	add(n, "CN", MBSTRING_UTF8, "client1", NEW);
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	no_peer_id(n, "no serialNumber");
	X509_NAME_free(n);
}

Test(identity, peer_id_non_printable_fails)
{
	static const char *const bad[] = {
	    "abc\001def", /* octal: at most 3 digits, 'd' is not eaten */
	    "tab\there",
	    "caf\xc3\xa9", /* UTF-8 e-acute */
	    "del\x7f",
	};

	/* A V_ASN1_* type (not MBSTRING_*) stores the bytes as given,
	 * bypassing the library's string table, as a forger would. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		X509_NAME *n = X509_NAME_new();
		add_nid(n, NID_serialNumber, V_ASN1_UTF8STRING, bad[i], NEW);
		no_peer_id(n, "non-printable serialNumber (UTF8String)");
		X509_NAME_free(n);
		n = X509_NAME_new();
		add_nid(n, NID_serialNumber, V_ASN1_PRINTABLESTRING, bad[i],
		        NEW);
		no_peer_id(n, "non-printable bytes in a PrintableString");
		X509_NAME_free(n);
	}
}

Test(identity, peer_id_length_limit)
{
	char id[PP_PEER_ID_MAX + 2];
	X509_NAME *n;

	memset(id, 'a', PP_PEER_ID_MAX);
	id[PP_PEER_ID_MAX] = '\0';
	n = X509_NAME_new();
	add_nid(n, NID_serialNumber, MBSTRING_ASC, id, NEW);
	peer_id_is(n, id);
	X509_NAME_free(n);

	id[PP_PEER_ID_MAX] = 'a';
	id[PP_PEER_ID_MAX + 1] = '\0';
	n = X509_NAME_new();
	/* The string table caps serialNumber at 64: store it raw. */
	add_nid(n, NID_serialNumber, V_ASN1_PRINTABLESTRING, id, NEW);
	no_peer_id(n, "serialNumber longer than PP_PEER_ID_MAX");
	X509_NAME_free(n);
}

/* ---- pp_identity_swaptacular --------------------------------------- */

Test(identity, profile_passes_for_each_node_kind)
{
	static const char *const ous[] = {"Accounting Authorities",
	                                  "Creditors Agents", "Debtors Agents"};
	static const char *const ids[] = {ID8, ID32, ID32};

	for (size_t i = 0; i < 3; i++) {
		X509_NAME *n = swpt(ous[i], ids[i]);
		profile_ok(n);
		peer_id_is(n, ids[i]);
		X509_NAME_free(n);
	}
}

Test(identity, profile_lowercase_o_fails)
{
	X509_NAME *n = X509_NAME_new();

	add(n, "O", MBSTRING_UTF8, "swaptacular nodes registry", NEW);
	add(n, "OU", MBSTRING_UTF8, "Creditors Agents", NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
	profile_bad(n, "lower-cased O");
	X509_NAME_free(n);
}

Test(identity, profile_o_must_match_exactly)
{
	static const char *const bad[] = {
	    "Swaptacular Nodes Registry ", " Swaptacular Nodes Registry",
	    "Swaptacular Nodes", "Swaptacular Nodes Registry2", ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		X509_NAME *n = X509_NAME_new();
		if (bad[i][0] != '\0')
			add(n, "O", MBSTRING_UTF8, bad[i], NEW);
		else
			add(n, "CN", MBSTRING_UTF8, "no O at all", NEW);
		add(n, "OU", MBSTRING_UTF8, "Creditors Agents", NEW);
		add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
		profile_bad(n, bad[i]);
		X509_NAME_free(n);
	}
}

Test(identity, profile_unknown_ou_fails)
{
	X509_NAME *n = swpt("Creditors agents", ID32);

	profile_bad(n, "OU in the wrong case");
	X509_NAME_free(n);
	n = swpt("Random Agents", ID32);
	profile_bad(n, "unknown OU");
	X509_NAME_free(n);
}

Test(identity, profile_extra_cn_fails)
{
	X509_NAME *n = swpt("Creditors Agents", ID32);

	add(n, "CN", MBSTRING_UTF8, "extra", NEW);
	profile_bad(n, "trailing CN");
	X509_NAME_free(n);
}

Test(identity, profile_four_attributes_fail)
{
	X509_NAME *n = X509_NAME_new();

	add(n, "C", MBSTRING_UTF8, "BG", NEW);
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "OU", MBSTRING_UTF8, "Creditors Agents", NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
	profile_bad(n, "leading C");
	X509_NAME_free(n);

	n = swpt("Creditors Agents", ID32);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
	profile_bad(n, "duplicate serialNumber");
	X509_NAME_free(n);
}

Test(identity, profile_too_few_attributes_fail)
{
	X509_NAME *n = X509_NAME_new();

	profile_bad(n, "empty subject");
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
	profile_bad(n, "no OU");
	X509_NAME_free(n);
}

Test(identity, profile_reordered_fails)
{
	X509_NAME *n = X509_NAME_new();

	add(n, "OU", MBSTRING_UTF8, "Creditors Agents", NEW);
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
	profile_bad(n, "OU, O, serialNumber");
	X509_NAME_free(n);

	n = X509_NAME_new();
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "OU", MBSTRING_UTF8, "Creditors Agents", NEW);
	profile_bad(n, "serialNumber, O, OU");
	X509_NAME_free(n);
}

Test(identity, profile_multi_valued_fails)
{
	/* Three attributes, but OU and serialNumber share one RDN. */
	X509_NAME *n = X509_NAME_new();

	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "OU", MBSTRING_UTF8, "Creditors Agents", NEW);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, SAME);
	cr_assert_eq(X509_NAME_entry_count(n), 3);
	profile_bad(n, "OU + serialNumber multi-valued");
	X509_NAME_free(n);

	/* O and OU share one RDN. */
	n = X509_NAME_new();
	add(n, "O", MBSTRING_UTF8, PP_SWPT_ORG, NEW);
	add(n, "OU", MBSTRING_UTF8, "Creditors Agents", SAME);
	add(n, "serialNumber", V_ASN1_PRINTABLESTRING, ID32, NEW);
	profile_bad(n, "O + OU multi-valued");
	X509_NAME_free(n);
}

Test(identity, profile_bad_node_ids_fail)
{
	static const char *const bad[] = {
	    "0123abc",                           /* 7 */
	    "0123abcde",                         /* 9 */
	    "0123456789abcdef0123456789abcde",   /* 31 */
	    "0123456789abcdef0123456789abcdef0", /* 33 */
	    "0123ABCD",                          /* uppercase */
	    "0123456789ABCDEF0123456789abcdef",  /* uppercase */
	    "0123abcg",                          /* non-hex */
	    "0123456789abcdef0123456789abcdez",  /* non-hex */
	    "../../x",                           /* path */
	    "0123abc ",                          /* space */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		X509_NAME *n = swpt("Creditors Agents", bad[i]);
		profile_bad(n, bad[i]);
		X509_NAME_free(n);
	}
}

Test(identity, profile_detail_is_bounded)
{
	X509_NAME *n = swpt("Creditors Agents", "nothex!!");
	char detail[8];

	memset(detail, 'X', sizeof(detail));
	cr_assert_eq(pp_identity_swaptacular(n, detail, sizeof(detail)), -1);
	cr_assert_eq(detail[sizeof(detail) - 1], '\0',
	             "detail must stay terminated within its length");
	X509_NAME_free(n);
}

/* ---- pp_identity_node_id_valid ------------------------------------- */

Test(identity, node_id_valid)
{
	cr_assert(pp_identity_node_id_valid(ID8));
	cr_assert(pp_identity_node_id_valid(ID32));
	cr_assert(pp_identity_node_id_valid("00000000"));
	cr_assert(
	    pp_identity_node_id_valid("ffffffffffffffffffffffffffffffff"));
}

Test(identity, node_id_invalid)
{
	static const char *const bad[] = {
	    "",
	    "0123abc",
	    "0123abcde",
	    "0123456789abcdef",
	    "0123456789abcdef0123456789abcde",
	    "0123456789abcdef0123456789abcdef0",
	    "0123ABCD",
	    "0123abcg",
	    "0123abc/",
	    "../../et",
	    "0123abc\n",
	    " 0123abc",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_not(pp_identity_node_id_valid(bad[i]),
		              "\"%s\" is not a node id", bad[i]);
}

/* ---- pp_identity_has_swpt_org, pp_identity_name_text --------------- */

Test(identity, has_swpt_org)
{
	X509_NAME *n = swpt("Debtors Agents", ID32);

	cr_assert(pp_identity_has_swpt_org(n));
	X509_NAME_free(n);

	n = X509_NAME_new();
	add(n, "CN", MBSTRING_UTF8, "peerproxy Test Root CA", NEW);
	add(n, "O", MBSTRING_UTF8, "peerproxy tests", NEW);
	cr_assert_not(pp_identity_has_swpt_org(n));
	X509_NAME_free(n);

	n = X509_NAME_new();
	add(n, "O", MBSTRING_UTF8, "swaptacular nodes registry", NEW);
	cr_assert_not(pp_identity_has_swpt_org(n), "must compare exactly");
	X509_NAME_free(n);
}

Test(identity, name_text_rfc2253)
{
	X509_NAME *n = swpt("Creditors Agents", ID32);
	char buf[256];

	pp_identity_name_text(n, buf, sizeof(buf));
	cr_assert(strstr(buf, "O=Swaptacular Nodes Registry") != NULL, "%s",
	          buf);
	cr_assert(strstr(buf, "OU=Creditors Agents") != NULL, "%s", buf);
	cr_assert(strstr(buf, ID32) != NULL, "%s", buf);
	/* RFC 2253 writes the last RDN first. */
	cr_assert(strstr(buf, ID32) < strstr(buf, "O=Swaptacular"), "%s", buf);

	pp_identity_name_text(n, buf, 10);
	cr_assert_eq(strlen(buf), 9, "truncated to the buffer");
	X509_NAME_free(n);
}
