#include "identity/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "util/wbuf.h"

static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* The address family both ends share once IPv4-mapped IPv6 addresses are
 * seen as IPv4: AF_INET, AF_INET6, or AF_UNSPEC for anything else. */
static int
family_of(const struct pp_proxyproto_info *info)
{
	const struct sockaddr_in6 *a, *b;

	if (info->src == NULL || info->dst == NULL ||
	    info->src->sa_family != info->dst->sa_family)
		return (AF_UNSPEC);
	if (info->src->sa_family == AF_INET)
		return (AF_INET);
	if (info->src->sa_family != AF_INET6)
		return (AF_UNSPEC);
	a = (const struct sockaddr_in6 *)info->src;
	b = (const struct sockaddr_in6 *)info->dst;
	if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) &&
	    IN6_IS_ADDR_V4MAPPED(&b->sin6_addr))
		return (AF_INET);
	return (AF_INET6);
}

/* The IPv4 address and port of ${sa} (AF_INET or a v4-mapped AF_INET6), in
 * network order. */
static void
v4_of(const struct sockaddr *sa, uint8_t addr[4], uint8_t port[2])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		memcpy(addr, &s->sin_addr, 4);
		memcpy(port, &s->sin_port, 2);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		memcpy(addr, s->sin6_addr.s6_addr + 12, 4);
		memcpy(port, &s->sin6_port, 2);
	}
}

int
pp_proxyproto_v1(const struct pp_proxyproto_info *info, uint8_t *out,
                 size_t cap)
{
	/* Room for any address text inet_ntop writes; the spec's limit is
	 * checked below (an IPv6 address prints in at most 39 bytes, so a
	 * real line is at most 104). */
	char
	    line[sizeof("PROXY TCP6   65535 65535\r\n") + 2 * INET6_ADDRSTRLEN],
	    sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	uint8_t a[4], b[4], sp[2], dp[2];
	int fam = family_of(info), n;

	if (fam == AF_INET) {
		v4_of(info->src, a, sp);
		v4_of(info->dst, b, dp);
		inet_ntop(AF_INET, a, sa, sizeof(sa));
		inet_ntop(AF_INET, b, da, sizeof(da));
		n = snprintf(line, sizeof(line), "PROXY TCP4 %s %s %u %u\r\n",
		             sa, da, (unsigned)((sp[0] << 8) | sp[1]),
		             (unsigned)((dp[0] << 8) | dp[1]));
	} else if (fam == AF_INET6) {
		const struct sockaddr_in6 *s =
		    (const struct sockaddr_in6 *)info->src;
		const struct sockaddr_in6 *d =
		    (const struct sockaddr_in6 *)info->dst;
		inet_ntop(AF_INET6, &s->sin6_addr, sa, sizeof(sa));
		inet_ntop(AF_INET6, &d->sin6_addr, da, sizeof(da));
		n = snprintf(line, sizeof(line), "PROXY TCP6 %s %s %u %u\r\n",
		             sa, da, ntohs(s->sin6_port), ntohs(d->sin6_port));
	} else {
		n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
	}
	if (n < 0 || (size_t)n > PP_PROXYPROTO_V1_MAX || (size_t)n > cap)
		return (-1);
	memcpy(out, line, (size_t)n);
	return (n);
}

static void
put_u8(struct pp_wbuf *w, unsigned v)
{
	uint8_t b = (uint8_t)v;

	pp_wbuf_put(w, &b, 1);
}

static void
put_u16(struct pp_wbuf *w, size_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	pp_wbuf_put(w, b, 2);
}

/* Patch the 16-bit length at ${at} with the bytes written after it. */
static void
patch_len(struct pp_wbuf *w, size_t at)
{
	size_t n = w->len - at - 2;

	if (w->len <= w->cap) {
		w->p[at] = (uint8_t)(n >> 8);
		w->p[at + 1] = (uint8_t)n;
	}
}

static void
put_tlv(struct pp_wbuf *w, unsigned type, const void *v, size_t n)
{
	put_u8(w, type);
	put_u16(w, n);
	pp_wbuf_put(w, v, n);
}

static void
put_str_tlv(struct pp_wbuf *w, unsigned type, const char *s)
{
	if (s != NULL && s[0] != '\0')
		put_tlv(w, type, s, strlen(s));
}

static void
put_addresses(struct pp_wbuf *w, const struct pp_proxyproto_info *info, int fam)
{
	uint8_t a[4], b[4], sp[2], dp[2];

	if (fam == AF_INET) {
		v4_of(info->src, a, sp);
		v4_of(info->dst, b, dp);
		pp_wbuf_put(w, a, 4);
		pp_wbuf_put(w, b, 4);
		pp_wbuf_put(w, sp, 2);
		pp_wbuf_put(w, dp, 2);
	} else if (fam == AF_INET6) {
		const struct sockaddr_in6 *s =
		    (const struct sockaddr_in6 *)info->src;
		const struct sockaddr_in6 *d =
		    (const struct sockaddr_in6 *)info->dst;
		pp_wbuf_put(w, &s->sin6_addr, 16);
		pp_wbuf_put(w, &d->sin6_addr, 16);
		pp_wbuf_put(w, &s->sin6_port, 2);
		pp_wbuf_put(w, &d->sin6_port, 2);
	}
}

int
pp_proxyproto_v2(const struct pp_proxyproto_info *info, uint8_t *out,
                 size_t cap)
{
	struct pp_wbuf w = {out, 0, cap};
	int fam = family_of(info);
	size_t len_at, ssl_at;
	unsigned client = PP_PP2_CLIENT_SSL | PP_PP2_CLIENT_CERT_SESS;

	pp_wbuf_put(&w, v2_signature, sizeof(v2_signature));
	/* Version 2, command PROXY.  A caller on a unix socket still gets
	 * PROXY (with AF_UNSPEC), not LOCAL: receivers drop the TLVs of a
	 * LOCAL header, and with them the peer id. */
	put_u8(&w, 0x21);
	put_u8(&w, fam == AF_INET ? 0x11 : fam == AF_INET6 ? 0x21 : 0x00);
	len_at = w.len;
	put_u16(&w, 0);
	put_addresses(&w, info, fam);

	if (info->cert_in_conn)
		client |= PP_PP2_CLIENT_CERT_CONN;
	put_u8(&w, PP_PP2_TYPE_SSL);
	ssl_at = w.len;
	put_u16(&w, 0);
	put_u8(&w, client);
	pp_wbuf_put(&w, "\0\0\0\0", 4); /* verify: 0, the chain was verified */
	put_str_tlv(&w, PP_PP2_SUBTYPE_SSL_VERSION, info->tls_version);
	put_str_tlv(&w, PP_PP2_SUBTYPE_SSL_CN, info->cn);
	put_str_tlv(&w, PP_PP2_SUBTYPE_SSL_CIPHER, info->cipher);
	patch_len(&w, ssl_at);

	put_str_tlv(&w, PP_PP2_TYPE_UNIQUE_ID, info->unique_id);
	put_str_tlv(&w, PP_PP2_TYPE_PEER_ID, info->peer_id);
	if (info->der != NULL && info->der_len > 0)
		put_tlv(&w, PP_PP2_TYPE_PEER_CERT, info->der, info->der_len);

	if (w.len > w.cap || w.len - len_at - 2 > 0xFFFF)
		return (-1);
	patch_len(&w, len_at);
	return ((int)w.len);
}
