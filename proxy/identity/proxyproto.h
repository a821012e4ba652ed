#ifndef PP_PROXYPROTO_H
#define PP_PROXYPROTO_H

/*
 * The PROXY protocol header (HAProxy's specification, versions 1 and 2)
 * that an inbound tunnel writes to the app before any byte of the caller,
 * so that an unmodified app learns who called: the caller's address and,
 * in version 2, the TLS facts and the verified peer id as TLVs.
 *
 * Pure: the header is built from a small struct into a caller buffer.
 *
 * Version 2 TLVs written (types from the specification, plus two of the
 * range it reserves for private use):
 *   0x20 PP2_TYPE_SSL: client flags, verify result 0, then sub-TLVs
 *        0x21 version ("TLSv1.3"), 0x23 cipher, 0x22 the leaf's CN if any
 *   0x05 PP2_TYPE_UNIQUE_ID: the tunnel's conn id (as logged)
 *   0xE0 PP_PP2_TYPE_PEER_ID: the verified peer id, ASCII
 *   0xE1 PP_PP2_TYPE_PEER_CERT: the DER leaf certificate (optional)
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The specification's TLV and flag numbers used here. */
#define PP_PP2_TYPE_UNIQUE_ID      0x05
#define PP_PP2_TYPE_SSL            0x20
#define PP_PP2_SUBTYPE_SSL_VERSION 0x21
#define PP_PP2_SUBTYPE_SSL_CN      0x22
#define PP_PP2_SUBTYPE_SSL_CIPHER  0x23
#define PP_PP2_CLIENT_SSL          0x01
#define PP_PP2_CLIENT_CERT_CONN    0x02
#define PP_PP2_CLIENT_CERT_SESS    0x04

/* peerproxy's own TLVs (the specification leaves 0xE0-0xEF to users). */
#define PP_PP2_TYPE_PEER_ID   0xE0
#define PP_PP2_TYPE_PEER_CERT 0xE1

/* The longest version 1 line, CRLF included (the specification's bound). */
#define PP_PROXYPROTO_V1_MAX 107

/* What the header says.  ${src}/${dst}: the caller's address and the
 * address it called (both AF_INET or both AF_INET6; NULL or anything else
 * writes UNKNOWN / AF_UNSPEC).  Strings may be NULL or empty: that TLV (or
 * sub-TLV) is left out.  ${der}: the leaf for PP_PP2_TYPE_PEER_CERT, or
 * NULL. */
struct pp_proxyproto_info {
	const struct sockaddr *src;
	const struct sockaddr *dst;
	const char *tls_version;
	const char *cipher;
	const char *cn;
	const char *peer_id;
	const char *unique_id;
	int cert_in_conn; /* the certificate came in this handshake (not a
	                     resumed session) */
	const uint8_t *der;
	size_t der_len;
};

/* pp_proxyproto_v1(info, out, cap): write the version 1 line for ${info}
 * ("PROXY TCP4 ...\r\n", "PROXY TCP6 ...\r\n" or "PROXY UNKNOWN\r\n") to
 * ${out}.  Return its length, or -1 if ${cap} bytes do not hold it. */
int pp_proxyproto_v1(const struct pp_proxyproto_info *info, uint8_t *out,
                     size_t cap);

/* pp_proxyproto_v2(info, out, cap): write the version 2 header for ${info}
 * (command PROXY; family TCP over IPv4, TCP over IPv6, or AF_UNSPEC with no
 * addresses) with the TLVs listed above to ${out}.  Return its length, or
 * -1 if ${cap} bytes (or the format's 64 KiB) do not hold it. */
int pp_proxyproto_v2(const struct pp_proxyproto_info *info, uint8_t *out,
                     size_t cap);

#endif
