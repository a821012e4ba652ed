/*
 * PROXY protocol headers, byte for byte against the layout of HAProxy's
 * specification, and parsed back by a reader written here from that
 * layout alone.
 */

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "identity/proxyproto.h"

static struct sockaddr_in
v4(const char *ip, unsigned port)
{
	struct sockaddr_in s = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port)};

	cr_assert_eq(inet_pton(AF_INET, ip, &s.sin_addr), 1);
	return (s);
}

static struct sockaddr_in6
v6(const char *ip, unsigned port)
{
	struct sockaddr_in6 s = {.sin6_family = AF_INET6,
	                         .sin6_port = htons((uint16_t)port)};

	cr_assert_eq(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
	return (s);
}

static const uint8_t sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* ---- version 1 ---- */

static void
assert_v1(const struct pp_proxyproto_info *info, const char *want)
{
	uint8_t out[PP_PROXYPROTO_V1_MAX];
	int n = pp_proxyproto_v1(info, out, sizeof(out));

	cr_assert_eq(n, (int)strlen(want));
	cr_assert(memcmp(out, want, (size_t)n) == 0, "got %.*s", n, out);
	cr_assert_eq(pp_proxyproto_v1(info, out, (size_t)n - 1), -1,
	             "a buffer one byte short");
}

Test(proxyproto, v1_ipv4)
{
	struct sockaddr_in s = v4("192.0.2.1", 56324), d = v4("10.1.2.3", 443);
	struct pp_proxyproto_info info = {.src = (struct sockaddr *)&s,
	                                  .dst = (struct sockaddr *)&d};

	assert_v1(&info, "PROXY TCP4 192.0.2.1 10.1.2.3 56324 443\r\n");
}

Test(proxyproto, v1_ipv6)
{
	struct sockaddr_in6 s = v6("2001:db8::1", 65535), d = v6("::1", 8443);
	struct pp_proxyproto_info info = {.src = (struct sockaddr *)&s,
	                                  .dst = (struct sockaddr *)&d};

	assert_v1(&info, "PROXY TCP6 2001:db8::1 ::1 65535 8443\r\n");
}

Test(proxyproto, v1_longest_ipv6_fits)
{
	struct sockaddr_in6 s = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
	                           65535),
	                    d = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	                           65535);
	struct pp_proxyproto_info info = {.src = (struct sockaddr *)&s,
	                                  .dst = (struct sockaddr *)&d};
	uint8_t out[PP_PROXYPROTO_V1_MAX];

	cr_assert_eq(pp_proxyproto_v1(&info, out, sizeof(out)), 104);
}

Test(proxyproto, v1_v4_mapped_is_tcp4)
{
	struct sockaddr_in6 s = v6("::ffff:192.0.2.9", 1000),
	                    d = v6("::ffff:127.0.0.1", 2000);
	struct pp_proxyproto_info info = {.src = (struct sockaddr *)&s,
	                                  .dst = (struct sockaddr *)&d};

	assert_v1(&info, "PROXY TCP4 192.0.2.9 127.0.0.1 1000 2000\r\n");
}

Test(proxyproto, v1_unix_is_unknown)
{
	struct sockaddr_un s = {.sun_family = AF_UNIX}, d = s;
	struct pp_proxyproto_info info = {.src = (struct sockaddr *)&s,
	                                  .dst = (struct sockaddr *)&d};

	assert_v1(&info, "PROXY UNKNOWN\r\n");
	info.src = info.dst = NULL;
	assert_v1(&info, "PROXY UNKNOWN\r\n");
}

/* ---- version 2: an independent reader ---- */

struct tlv {
	unsigned type;
	const uint8_t *v;
	size_t len;
};

struct v2 {
	unsigned ver, cmd, fam, proto;
	const uint8_t *addr;
	size_t addr_len;
	struct tlv tlv[16];
	size_t ntlv;
};

/* Walk TLVs in [p, end): each 1 byte type, 2 bytes big-endian length,
 * value; they must fill the range exactly. */
static size_t
walk_tlvs(const uint8_t *p, const uint8_t *end, struct tlv *out, size_t max)
{
	size_t n = 0;

	while (p < end) {
		cr_assert(end - p >= 3, "a truncated TLV header");
		cr_assert(n < max);
		out[n].type = p[0];
		out[n].len = (size_t)p[1] << 8 | p[2];
		out[n].v = p + 3;
		cr_assert(out[n].len <= (size_t)(end - p - 3),
		          "TLV 0x%02x overruns its container", p[0]);
		p += 3 + out[n].len;
		n++;
	}
	return (n);
}

static void
parse_v2(const uint8_t *b, size_t n, struct v2 *h)
{
	size_t len, alen;

	cr_assert(n >= 16);
	cr_assert(memcmp(b, sig, 12) == 0, "signature");
	h->ver = b[12] >> 4;
	h->cmd = b[12] & 0xF;
	h->fam = b[13] >> 4;
	h->proto = b[13] & 0xF;
	len = (size_t)b[14] << 8 | b[15];
	cr_assert_eq(16 + len, n, "the length field covers the rest");
	alen = h->fam == 1 ? 12 : h->fam == 2 ? 36 : h->fam == 3 ? 216 : 0;
	cr_assert(alen <= len);
	h->addr = b + 16;
	h->addr_len = alen;
	h->ntlv = walk_tlvs(b + 16 + alen, b + n, h->tlv, 16);
}

static const struct tlv *
find(const struct tlv *t, size_t n, unsigned type)
{
	for (size_t i = 0; i < n; i++) {
		if (t[i].type == type)
			return (&t[i]);
	}
	return (NULL);
}

static void
assert_str_tlv(const struct tlv *t, size_t n, unsigned type, const char *want)
{
	const struct tlv *x = find(t, n, type);

	cr_assert_not_null(x, "TLV 0x%02x missing", type);
	cr_assert_eq(x->len, strlen(want));
	cr_assert(memcmp(x->v, want, x->len) == 0, "TLV 0x%02x: %.*s", type,
	          (int)x->len, x->v);
}

static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x05};

static struct pp_proxyproto_info
full_info(const struct sockaddr *s, const struct sockaddr *d)
{
	struct pp_proxyproto_info info = {
	    .src = s,
	    .dst = d,
	    .tls_version = "TLSv1.3",
	    .cipher = "TLS_AES_128_GCM_SHA256",
	    .cn = "client.example",
	    .peer_id = "1234abcd",
	    .unique_id = "0123456789abcdef",
	    .cert_in_conn = 1,
	    .der = der,
	    .der_len = sizeof(der),
	};
	return (info);
}

/* The TLVs of full_info, checked through the reader. */
static void
assert_tlvs(const struct v2 *h, int with_der)
{
	const struct tlv *ssl = find(h->tlv, h->ntlv, PP_PP2_TYPE_SSL);
	struct tlv sub[8];
	size_t nsub;

	cr_assert_not_null(ssl);
	cr_assert(ssl->len >= 5);
	cr_assert_eq(ssl->v[0], 0x01 | 0x02 | 0x04, "client flags %#x",
	             ssl->v[0]);
	cr_assert(memcmp(ssl->v + 1, "\0\0\0\0", 4) == 0, "verify = 0");
	nsub = walk_tlvs(ssl->v + 5, ssl->v + ssl->len, sub, 8);
	assert_str_tlv(sub, nsub, 0x21, "TLSv1.3");
	assert_str_tlv(sub, nsub, 0x23, "TLS_AES_128_GCM_SHA256");
	assert_str_tlv(sub, nsub, 0x22, "client.example");
	assert_str_tlv(h->tlv, h->ntlv, 0x05, "0123456789abcdef");
	assert_str_tlv(h->tlv, h->ntlv, 0xE0, "1234abcd");
	if (with_der) {
		const struct tlv *c = find(h->tlv, h->ntlv, 0xE1);
		cr_assert_not_null(c);
		cr_assert_eq(c->len, sizeof(der));
		cr_assert(memcmp(c->v, der, sizeof(der)) == 0);
	} else {
		cr_assert_null(find(h->tlv, h->ntlv, 0xE1));
	}
}

/* full_info from 192.0.2.1:56324 to 10.1.2.3:443, written out by hand
 * from the specification. */
static const uint8_t want_v4[] = {
    /* signature */
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
    /* v2 PROXY, TCP over IPv4, 12 + 60 + 19 + 11 + 8 bytes follow */
    0x21, 0x11, 0x00, 110,
    /* 192.0.2.1, 10.1.2.3, 56324, 443 */
    192, 0, 2, 1, 10, 1, 2, 3, 0xDC, 0x04, 0x01, 0xBB,
    /* PP2_TYPE_SSL, 5 + 10 + 17 + 25 bytes: client
     * SSL|CERT_CONN|CERT_SESS, verify 0 */
    0x20, 0x00, 57, 0x07, 0, 0, 0, 0,
    /* version */
    0x21, 0x00, 7, 'T', 'L', 'S', 'v', '1', '.', '3',
    /* CN */
    0x22, 0x00, 14, 'c', 'l', 'i', 'e', 'n', 't', '.', 'e', 'x', 'a', 'm', 'p',
    'l', 'e',
    /* cipher */
    0x23, 0x00, 22, 'T', 'L', 'S', '_', 'A', 'E', 'S', '_', '1', '2', '8', '_',
    'G', 'C', 'M', '_', 'S', 'H', 'A', '2', '5', '6',
    /* PP2_TYPE_UNIQUE_ID */
    0x05, 0x00, 16, '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b',
    'c', 'd', 'e', 'f',
    /* 0xE0: the peer id */
    0xE0, 0x00, 8, '1', '2', '3', '4', 'a', 'b', 'c', 'd',
    /* 0xE1: the DER leaf */
    0xE1, 0x00, 5, 0x30, 0x03, 0x02, 0x01, 0x05};

/* Where the TLVs start in want_v4: signature, 4 bytes, 12 of addresses. */
#define V4_TLVS 28

Test(proxyproto, v2_ipv4_byte_exact)
{
	struct sockaddr_in s = v4("192.0.2.1", 56324), d = v4("10.1.2.3", 443);
	struct pp_proxyproto_info info =
	    full_info((struct sockaddr *)&s, (struct sockaddr *)&d);
	uint8_t out[512];
	int n = pp_proxyproto_v2(&info, out, sizeof(out));
	struct v2 h;

	cr_assert_eq(n, (int)sizeof(want_v4));
	cr_assert(memcmp(out, want_v4, sizeof(want_v4)) == 0);
	parse_v2(out, (size_t)n, &h);
	cr_assert_eq(h.ver, 2);
	cr_assert_eq(h.cmd, 1);
	cr_assert_eq(h.fam, 1);
	cr_assert_eq(h.proto, 1);
	assert_tlvs(&h, 1);
	cr_assert_eq(pp_proxyproto_v2(&info, out, (size_t)n - 1), -1);
}

Test(proxyproto, v2_ipv6)
{
	struct sockaddr_in6 s = v6("2001:db8::1", 40000), d = v6("::1", 8443);
	struct pp_proxyproto_info info =
	    full_info((struct sockaddr *)&s, (struct sockaddr *)&d);
	uint8_t out[512];
	int n;
	struct v2 h;

	size_t tlvs = sizeof(want_v4) - V4_TLVS;
	static const uint8_t head[] = {
	    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54,
	    0x0A, 0x21, 0x21, 0x00, 36 + 98,
	    /* 2001:db8::1 */
	    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	    /* ::1 */
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	    /* 40000, 8443 */
	    0x9c, 0x40, 0x20, 0xfb};

	/* Byte for byte: this head, then the very TLVs of the IPv4 case. */
	cr_assert_eq(tlvs, 98);
	n = pp_proxyproto_v2(&info, out, sizeof(out));
	cr_assert_eq(n, (int)(sizeof(head) + tlvs));
	cr_assert(memcmp(out, head, sizeof(head)) == 0);
	cr_assert(memcmp(out + sizeof(head), want_v4 + V4_TLVS, tlvs) == 0);
	parse_v2(out, (size_t)n, &h);
	cr_assert_eq(h.ver, 2);
	cr_assert_eq(h.cmd, 1);
	cr_assert_eq(h.fam, 2);
	cr_assert_eq(h.proto, 1);
	cr_assert_eq(out[13], 0x21);
	cr_assert(memcmp(h.addr, &s.sin6_addr, 16) == 0);
	cr_assert(memcmp(h.addr + 16, &d.sin6_addr, 16) == 0);
	cr_assert(memcmp(h.addr + 32, "\x9c\x40\x20\xfb", 4) == 0, "ports");
	assert_tlvs(&h, 1);
}

Test(proxyproto, v2_unix_is_unspec_with_tlvs)
{
	struct sockaddr_un s = {.sun_family = AF_UNIX}, d = s;
	struct pp_proxyproto_info info =
	    full_info((struct sockaddr *)&s, (struct sockaddr *)&d);
	uint8_t out[512];
	int n = pp_proxyproto_v2(&info, out, sizeof(out));
	struct v2 h;

	size_t tlvs = sizeof(want_v4) - V4_TLVS;

	/* Byte for byte: PROXY command, AF_UNSPEC, no addresses, the very
	 * TLVs of the IPv4 case. */
	cr_assert_eq(n, (int)(16 + tlvs));
	cr_assert(memcmp(out, want_v4, 12) == 0);
	cr_assert(memcmp(out + 12, "\x21\x00\x00\x62", 4) == 0);
	cr_assert(memcmp(out + 16, want_v4 + V4_TLVS, tlvs) == 0);
	parse_v2(out, (size_t)n, &h);
	cr_assert_eq(h.addr_len, 0);
	assert_tlvs(&h, 1);
}

Test(proxyproto, v2_resumed_and_empty_fields)
{
	struct sockaddr_in s = v4("127.0.0.1", 1), d = v4("127.0.0.1", 2);
	struct pp_proxyproto_info info = {.src = (struct sockaddr *)&s,
	                                  .dst = (struct sockaddr *)&d,
	                                  .tls_version = "TLSv1.3",
	                                  .peer_id = ""};
	uint8_t out[256];
	int n = pp_proxyproto_v2(&info, out, sizeof(out));
	struct v2 h;
	const struct tlv *ssl;
	struct tlv sub[4];

	cr_assert_gt(n, 0);
	parse_v2(out, (size_t)n, &h);
	cr_assert_null(find(h.tlv, h.ntlv, 0xE0), "no peer id, no TLV");
	cr_assert_null(find(h.tlv, h.ntlv, 0x05));
	ssl = find(h.tlv, h.ntlv, 0x20);
	cr_assert_not_null(ssl);
	cr_assert_eq(ssl->v[0], 0x01 | 0x04, "resumed: no CERT_CONN");
	cr_assert_eq(walk_tlvs(ssl->v + 5, ssl->v + ssl->len, sub, 4), 1);
	cr_assert_eq(sub[0].type, 0x21);
}

Test(proxyproto, v2_large_certificate)
{
	static uint8_t big[4000], out[8192];
	struct sockaddr_in s = v4("127.0.0.1", 1), d = v4("127.0.0.1", 2);
	struct pp_proxyproto_info info =
	    full_info((struct sockaddr *)&s, (struct sockaddr *)&d);
	struct v2 h;
	const struct tlv *c;
	int n;

	memset(big, 0xAB, sizeof(big));
	info.der = big;
	info.der_len = sizeof(big);
	n = pp_proxyproto_v2(&info, out, sizeof(out));
	cr_assert_gt(n, 4000);
	parse_v2(out, (size_t)n, &h);
	c = find(h.tlv, h.ntlv, 0xE1);
	cr_assert_not_null(c);
	cr_assert_eq(c->len, sizeof(big));
	cr_assert_eq(pp_proxyproto_v2(&info, out, 1000), -1);
}
