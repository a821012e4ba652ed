#include "tls/identity.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/nid.h>
#include <openssl/x509.h>

static const char *const swpt_ous[] = {
    "Accounting Authorities",
    "Creditors Agents",
    "Debtors Agents",
};

/* Does the RDN holding entry ${i} of ${name} hold other entries too? */
static int
multi_valued(const X509_NAME *name, int i)
{
	int n = X509_NAME_entry_count(name);
	int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i));

	if (i > 0 &&
	    X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i - 1)) == set)
		return (1);
	if (i + 1 < n &&
	    X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i + 1)) == set)
		return (1);
	return (0);
}

/* Copy an attribute value into ${out} (cap bytes) if it is printable
 * ASCII; return its length or -1. */
static int
entry_ascii(const X509_NAME_ENTRY *e, char *out, size_t cap)
{
	const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int len = ASN1_STRING_length(s);

	if (len <= 0 || (size_t)len >= cap)
		return (-1);
	for (int i = 0; i < len; i++) {
		if (d[i] < 0x20 || d[i] > 0x7e)
			return (-1);
	}
	memcpy(out, d, (size_t)len);
	out[len] = '\0';
	return (len);
}

int
pp_identity_peer_id(const X509_NAME *name, char *out)
{
	int found = -1;

	out[0] = '\0';
	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) !=
		    NID_serialNumber)
			continue;
		if (found >= 0 || multi_valued(name, i))
			return (-1);
		found = i;
	}
	if (found < 0)
		return (-1);
	if (entry_ascii(X509_NAME_get_entry(name, found), out,
	                PP_PEER_ID_MAX + 1) < 0) {
		out[0] = '\0';
		return (-1);
	}
	return (0);
}

int
pp_identity_node_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n != 8 && n != 32)
		return (0);
	for (size_t i = 0; i < n; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return (0);
	}
	return (1);
}

/* Does entry ${e} hold exactly the bytes of ${want}? */
static int
entry_equals(const X509_NAME_ENTRY *e, const char *want)
{
	const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);

	return ((size_t)ASN1_STRING_length(s) == strlen(want) &&
	        memcmp(ASN1_STRING_get0_data(s), want, strlen(want)) == 0);
}

int
pp_identity_has_swpt_org(const X509_NAME *name)
{
	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) ==
		        NID_organizationName &&
		    entry_equals(e, PP_SWPT_ORG))
			return (1);
	}
	return (0);
}

int
pp_identity_swaptacular(const X509_NAME *name, char *detail, size_t len)
{
	static const int want[3] = {
	    NID_organizationName, NID_organizationalUnitName, NID_serialNumber};
	static const char *const want_names[3] = {"O", "OU", "serialNumber"};
	char id[PP_PEER_ID_MAX + 1];
	int n = X509_NAME_entry_count(name);
	int ou_ok = 0;

	if (n != 3) {
		snprintf(
		    detail, len,
		    "subject has %d attributes; the profile has exactly O, OU, "
		    "serialNumber",
		    n);
		return (-1);
	}
	for (int i = 0; i < 3; i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		if (X509_NAME_ENTRY_set(e) != i) {
			snprintf(detail, len, "subject has a multi-valued RDN");
			return (-1);
		}
		if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != want[i]) {
			snprintf(
			    detail, len,
			    "subject attribute %d is not %s (expected O, OU, "
			    "serialNumber in that order)",
			    i + 1, want_names[i]);
			return (-1);
		}
	}
	if (!entry_equals(X509_NAME_get_entry(name, 0), PP_SWPT_ORG)) {
		snprintf(detail, len, "subject O is not exactly \"%s\"",
		         PP_SWPT_ORG);
		return (-1);
	}
	for (size_t i = 0; i < sizeof(swpt_ous) / sizeof(swpt_ous[0]); i++)
		ou_ok |=
		    entry_equals(X509_NAME_get_entry(name, 1), swpt_ous[i]);
	if (!ou_ok) {
		snprintf(detail, len,
		         "subject OU is not a Swaptacular node kind");
		return (-1);
	}
	if (entry_ascii(X509_NAME_get_entry(name, 2), id, sizeof(id)) < 0 ||
	    !pp_identity_node_id_valid(id)) {
		snprintf(
		    detail, len,
		    "subject serialNumber is not a node id (8 or 32 lowercase "
		    "hex digits)");
		return (-1);
	}
	return (0);
}

void
pp_identity_name_text(const X509_NAME *name, char *buf, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *data;
	size_t n = 0;

	buf[0] = '\0';
	if (bio == NULL)
		return;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    BIO_mem_contents(bio, &data, &n)) {
		if (n >= len)
			n = len - 1;
		memcpy(buf, data, n);
		buf[n] = '\0';
	}
	BIO_free(bio);
}
