/*
 * libFuzzer harness for the PROXY protocol header builder
 * (proxy/identity/proxyproto.c), versions 1 and 2.
 *
 * Input: the fields of a header, read from the bytes in turn: a flags
 * byte (address families of both ends, v4-mapped addresses, whether the
 * certificate came in this handshake), both addresses and ports, the five
 * strings (TLS version, CN, cipher, unique id, peer id) and the DER leaf,
 * each as a kind byte (NULL or not, short or long), a length and a
 * pattern repeated to it (so that a few bytes can ask for more than the
 * format's 64 KiB), and the output capacity.
 * Checked:
 * - the output, read back by an independent reader written here from the
 *   specification (version 1: the text line; version 2: signature,
 *   command, family, length, addresses, then every TLV and the SSL
 *   TLV's sub-TLVs walked with their lengths), says exactly what went in:
 *   family (IPv4-mapped pairs as IPv4, anything else UNKNOWN/AF_UNSPEC),
 *   addresses, ports, client flags, every non-empty string and the DER,
 *   nothing more;
 * - the length is the one the fields call for; -1 exactly when it exceeds
 *   the capacity (or version 2's 64 KiB); never a byte written past the
 *   capacity (the buffer is exactly that size under ASan);
 * - version 1 lines are at most 107 bytes.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "identity/proxyproto.h"

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t
u8(struct input *in)
{
	uint8_t b = 0;

	if (in->n > 0) {
		b = *in->p++;
		in->n--;
	}
	return (b);
}

/* Three bytes, big endian. */
static size_t
u24(struct input *in)
{
	size_t v = (size_t)u8(in) << 16;

	v |= (size_t)u8(in) << 8;
	return (v | u8(in));
}

static void
bytes(struct input *in, void *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)out)[i] = u8(in);
}

/* A length (one byte, or three after a ${kind} with its top bit set, so
 * that most values are short and some are past 64 KiB), then a pattern
 * of up to 16 bytes repeated to that length. */
static uint8_t *
blob(struct input *in, uint8_t kind, size_t *len)
{
	uint8_t pat[16], *b;
	size_t n = kind & 0x80 ? u24(in) % 70000 : u8(in);
	size_t k = u8(in) % sizeof(pat) + 1;

	bytes(in, pat, k);
	*len = n;
	if ((b = malloc(n + 1)) == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		b[i] = pat[i % k];
	b[n] = '\0';
	return (b);
}

/* A string: NULL, or a C string (a NUL in the pattern ends it). */
static char *
string(struct input *in, size_t *len)
{
	uint8_t kind = u8(in);
	size_t n;
	char *s;

	if (kind % 4 == 0) {
		*len = 0;
		return (NULL);
	}
	s = (char *)blob(in, kind, &n);
	*len = strlen(s);
	return (s);
}

/* One end of the connection. */
static void
address(struct input *in, unsigned kind, int mapped,
        struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (kind == 1) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		bytes(in, &s->sin_addr, 4);
		bytes(in, &s->sin_port, 2);
	} else if (kind == 2) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		bytes(in, &s->sin6_addr, 16);
		if (mapped)
			memcpy(s->sin6_addr.s6_addr,
			       "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
		bytes(in, &s->sin6_port, 2);
	} else if (kind == 3) {
		struct sockaddr_un *s = (struct sockaddr_un *)ss;
		s->sun_family = AF_UNIX;
		bytes(in, s->sun_path, 8);
	}
}

/* ---- what the header must say --------------------------------------- */

struct want {
	int family; /* AF_INET, AF_INET6 or AF_UNSPEC */
	uint8_t src[16], dst[16];
	uint8_t sport[2], dport[2]; /* network order */
	const char *str[5]; /* version, cn, cipher, unique id, peer id */
	size_t len[5];
	const uint8_t *der;
	size_t der_len;
	unsigned client;
};

static int
mapped(const struct sockaddr *sa)
{
	return (IN6_IS_ADDR_V4MAPPED(
	    &((const struct sockaddr_in6 *)sa)->sin6_addr));
}

/* The README's rules: both ends IPv4, or IPv4-mapped IPv6 on both ends:
 * IPv4; both IPv6: IPv6; anything else: no addresses. */
static void
expect_addresses(const struct pp_proxyproto_info *info, struct want *w)
{
	const struct sockaddr *s = info->src, *d = info->dst;

	w->family = AF_UNSPEC;
	if (s == NULL || d == NULL || s->sa_family != d->sa_family)
		return;
	if (s->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)s,
		                         *b = (const void *)d;
		w->family = AF_INET;
		memcpy(w->src, &a->sin_addr, 4);
		memcpy(w->dst, &b->sin_addr, 4);
		memcpy(w->sport, &a->sin_port, 2);
		memcpy(w->dport, &b->sin_port, 2);
	} else if (s->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)s,
		                          *b = (const void *)d;
		int v4 = mapped(s) && mapped(d);
		w->family = v4 ? AF_INET : AF_INET6;
		memcpy(w->src, a->sin6_addr.s6_addr + (v4 ? 12 : 0),
		       v4 ? 4 : 16);
		memcpy(w->dst, b->sin6_addr.s6_addr + (v4 ? 12 : 0),
		       v4 ? 4 : 16);
		memcpy(w->sport, &a->sin6_port, 2);
		memcpy(w->dport, &b->sin6_port, 2);
	}
}

/* ---- the independent reader, version 1 -------------------------------- */

/* The next space-separated field of the line [*p, end). */
static size_t
field(const char **p, const char *end, char *out, size_t cap)
{
	size_t n = 0;

	while (*p < end && **p != ' ' && **p != '\r') {
		if (n + 1 >= cap)
			abort();
		out[n++] = *(*p)++;
	}
	out[n] = '\0';
	return (n);
}

static unsigned
port_text(const char *s)
{
	unsigned v = 0;

	if (s[0] == '\0' || strlen(s) > 5 || (s[0] == '0' && s[1] != '\0'))
		abort(); /* decimal, no leading zero */
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			abort();
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > 65535)
		abort();
	return (v);
}

static void
read_v1(const uint8_t *out, size_t n, const struct want *w)
{
	const char *p = (const char *)out, *end = p + n - 2;
	char f[64];
	uint8_t a[16];
	int fam;

	if (n > PP_PROXYPROTO_V1_MAX || n < 8 || memcmp(end, "\r\n", 2) != 0 ||
	    memcmp(p, "PROXY ", 6) != 0)
		abort();
	p += 6;
	if (w->family == AF_UNSPEC) {
		if (n != 15 || memcmp(p, "UNKNOWN", 7) != 0)
			abort();
		return;
	}
	field(&p, end, f, sizeof(f));
	if (strcmp(f, w->family == AF_INET ? "TCP4" : "TCP6") != 0)
		abort();
	fam = w->family;
	for (int i = 0; i < 4; i++) {
		if (p >= end || *p++ != ' ')
			abort();
		field(&p, end, f, sizeof(f));
		if (i < 2) {
			if (inet_pton(fam, f, a) != 1 ||
			    memcmp(a, i == 0 ? w->src : w->dst,
			           fam == AF_INET ? 4 : 16) != 0)
				abort();
		} else {
			const uint8_t *pt = i == 2 ? w->sport : w->dport;
			if (port_text(f) != ((unsigned)pt[0] << 8 | pt[1]))
				abort();
		}
	}
	if (p != end)
		abort();
}

/* ---- the independent reader, version 2 -------------------------------- */

struct tlv {
	unsigned type;
	const uint8_t *v;
	size_t len;
};

/* The TLV at [*p, end), or abort if it runs past the end. */
static struct tlv
next_tlv(const uint8_t **p, const uint8_t *end)
{
	struct tlv t;

	if (end - *p < 3)
		abort();
	t.type = (*p)[0];
	t.len = (size_t)(*p)[1] << 8 | (*p)[2];
	t.v = *p + 3;
	if ((size_t)(end - t.v) < t.len)
		abort();
	*p = t.v + t.len;
	return (t);
}

static void
expect_tlv(const uint8_t **p, const uint8_t *end, unsigned type, const void *v,
           size_t len)
{
	struct tlv t;

	if (len == 0)
		return; /* an empty value is left out */
	t = next_tlv(p, end);
	if (t.type != type || t.len != len || memcmp(t.v, v, len) != 0)
		abort();
}

static void
read_v2(const uint8_t *out, size_t n, const struct want *w)
{
	static const uint8_t sig[12] = "\r\n\r\n\0\r\nQUIT\n";
	const uint8_t *p = out + 16, *end = out + n, *ssl_end;
	size_t alen = w->family == AF_INET ? 4 : w->family == AF_INET6 ? 16 : 0;
	struct tlv ssl;

	if (n < 16 || memcmp(out, sig, 12) != 0 || out[12] != 0x21)
		abort(); /* version 2, command PROXY */
	if (out[13] != (w->family == AF_INET    ? 0x11
	                : w->family == AF_INET6 ? 0x21
	                                        : 0x00))
		abort();
	if (((size_t)out[14] << 8 | out[15]) != n - 16)
		abort();
	if (alen > 0) {
		if ((size_t)(end - p) < 2 * alen + 4 ||
		    memcmp(p, w->src, alen) != 0 ||
		    memcmp(p + alen, w->dst, alen) != 0 ||
		    memcmp(p + 2 * alen, w->sport, 2) != 0 ||
		    memcmp(p + 2 * alen + 2, w->dport, 2) != 0)
			abort();
		p += 2 * alen + 4;
	}
	ssl = next_tlv(&p, end);
	if (ssl.type != PP_PP2_TYPE_SSL || ssl.len < 5 ||
	    ssl.v[0] != w->client || memcmp(ssl.v + 1, "\0\0\0\0", 4) != 0)
		abort();
	{
		const uint8_t *q = ssl.v + 5;
		ssl_end = ssl.v + ssl.len;
		expect_tlv(&q, ssl_end, PP_PP2_SUBTYPE_SSL_VERSION, w->str[0],
		           w->len[0]);
		expect_tlv(&q, ssl_end, PP_PP2_SUBTYPE_SSL_CN, w->str[1],
		           w->len[1]);
		expect_tlv(&q, ssl_end, PP_PP2_SUBTYPE_SSL_CIPHER, w->str[2],
		           w->len[2]);
		if (q != ssl_end)
			abort(); /* a sub-TLV nobody asked for */
	}
	expect_tlv(&p, end, PP_PP2_TYPE_UNIQUE_ID, w->str[3], w->len[3]);
	expect_tlv(&p, end, PP_PP2_TYPE_PEER_ID, w->str[4], w->len[4]);
	expect_tlv(&p, end, PP_PP2_TYPE_PEER_CERT, w->der, w->der_len);
	if (p != end)
		abort(); /* a TLV nobody asked for */
}

/* The version 2 length the fields call for. */
static size_t
v2_size(const struct want *w)
{
	size_t n = 16 + (w->family == AF_INET    ? 12
	                 : w->family == AF_INET6 ? 36
	                                         : 0);

	n += 3 + 5; /* the SSL TLV: client, verify */
	for (int i = 0; i < 5; i++)
		n += w->len[i] ? 3 + w->len[i] : 0;
	return (n + (w->der_len ? 3 + w->der_len : 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	struct sockaddr_storage src, dst;
	struct pp_proxyproto_info info;
	struct want w;
	static uint8_t big[1 << 18]; /* any header fits */
	uint8_t flags = u8(&in), kind, *out, *der;
	char *str[5];
	size_t cap, want_len, der_len;
	int rc, big_rc;

	memset(&info, 0, sizeof(info));
	memset(&w, 0, sizeof(w));
	address(&in, flags & 3, flags & 0x20, &src);
	address(&in, (flags >> 2) & 3, flags & 0x40, &dst);
	info.src = (flags & 3) ? (struct sockaddr *)&src : NULL;
	info.dst = ((flags >> 2) & 3) ? (struct sockaddr *)&dst : NULL;
	info.cert_in_conn = (flags & 0x10) != 0;
	for (int i = 0; i < 5; i++)
		str[i] = string(&in, &w.len[i]);
	/* In the order the reader meets them. */
	info.tls_version = w.str[0] = str[0];
	info.cn = w.str[1] = str[1];
	info.cipher = w.str[2] = str[2];
	info.unique_id = w.str[3] = str[3];
	info.peer_id = w.str[4] = str[4];
	kind = u8(&in);
	der = kind % 4 == 0 ? NULL : blob(&in, kind, &der_len);
	info.der = der;
	info.der_len = der ? der_len : 0;
	w.der = der;
	w.der_len = info.der_len;
	cap = u24(&in) % 70000;
	expect_addresses(&info, &w);
	w.client = PP_PP2_CLIENT_SSL | PP_PP2_CLIENT_CERT_SESS |
	           (info.cert_in_conn ? PP_PP2_CLIENT_CERT_CONN : 0);

	/* Version 1: from the line a roomy buffer gets. */
	if ((out = malloc(cap)) == NULL)
		abort();
	big_rc = pp_proxyproto_v1(&info, big, PP_PROXYPROTO_V1_MAX);
	if (big_rc <= 0)
		abort();
	read_v1(big, (size_t)big_rc, &w);
	rc = pp_proxyproto_v1(&info, out, cap);
	if (rc != ((size_t)big_rc > cap ? -1 : big_rc) ||
	    (rc > 0 && memcmp(out, big, (size_t)rc) != 0))
		abort();

	/* Version 2. */
	want_len = v2_size(&w);
	big_rc = pp_proxyproto_v2(&info, big, sizeof(big));
	if (want_len - 16 > 0xFFFF) {
		if (big_rc != -1)
			abort(); /* over the format's 64 KiB */
	} else {
		if (big_rc != (int)want_len)
			abort();
		read_v2(big, want_len, &w);
	}
	rc = pp_proxyproto_v2(&info, out, cap);
	if (rc != (big_rc < 0 || want_len > cap ? -1 : big_rc) ||
	    (rc > 0 && memcmp(out, big, (size_t)rc) != 0))
		abort();

	for (int i = 0; i < 5; i++)
		free(str[i]);
	free(der);
	free(out);
	return (0);
}
