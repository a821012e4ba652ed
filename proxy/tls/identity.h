#ifndef PP_IDENTITY_H
#define PP_IDENTITY_H

/*
 * Peer identity taken from a verified leaf certificate.
 *
 * The peer id is the subject's serialNumber attribute, but only when there
 * is exactly one and it sits alone in its RDN: a name constraint on a
 * directoryName matches by prefix, so a trailing second serialNumber or a
 * multi-valued RDN could otherwise smuggle in another id.
 */

#include <stddef.h>

#include <openssl/base.h>

#define PP_PEER_ID_MAX 64

/* The exact O value of every certificate in Swaptacular's peer PKI. */
#define PP_SWPT_ORG "Swaptacular Nodes Registry"

/* pp_identity_peer_id(name, out): write the peer id of ${name} into ${out}
 * (PP_PEER_ID_MAX + 1 bytes).  Return 0, or -1 (and an empty ${out}) if the
 * name has no serialNumber, more than one, one inside a multi-valued RDN,
 * or one that is not printable ASCII of at most PP_PEER_ID_MAX bytes. */
int pp_identity_peer_id(const X509_NAME *name, char *out);

/* pp_identity_swaptacular(name, detail, len): check ${name} against the
 * Swaptacular subject profile: exactly three single-valued RDNs O, OU,
 * serialNumber in that order, O exactly PP_SWPT_ORG, OU one of the three
 * node kinds, and serialNumber a node id.  Return 0, or -1 with the broken
 * rule written to ${detail}. */
int pp_identity_swaptacular(const X509_NAME *name, char *detail, size_t len);

/* pp_identity_node_id_valid(id): non-zero if ${id} is 8 or 32 lowercase
 * hex digits, the only node id forms (safe to use in a path). */
int pp_identity_node_id_valid(const char *id);

/* pp_identity_has_swpt_org(name): non-zero if ${name} has an O attribute
 * equal to PP_SWPT_ORG. */
int pp_identity_has_swpt_org(const X509_NAME *name);

/* pp_identity_name_text(name, buf, len): write ${name} in RFC 2253 form. */
void pp_identity_name_text(const X509_NAME *name, char *buf, size_t len);

#endif
