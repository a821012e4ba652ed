#include "identity/caller.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Copy ${s} (${n} bytes) to ${out} only if it is printable ASCII (with
 * space if ${space}): a header value or TLV must not carry anything else. */
static void
copy_token(char *out, size_t len, const char *s, size_t n, int space)
{
	out[0] = '\0';
	if (n >= len)
		return;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < (space ? 0x20 : 0x21) || s[i] >= 0x7f)
			return;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

static void
first_uri(X509 *leaf, char *out, size_t len)
{
	GENERAL_NAMES *gens =
	    X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);

	out[0] = '\0';
	for (size_t i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_URI)
			continue;
		copy_token(out, len,
		           (const char *)ASN1_STRING_get0_data(g->d.ia5),
		           (size_t)ASN1_STRING_length(g->d.ia5), 0);
		break;
	}
	GENERAL_NAMES_free(gens);
}

static void
leaf_cn(X509 *leaf, char *out, size_t len)
{
	X509_NAME *name = X509_get_subject_name(leaf);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	uint8_t *utf8 = NULL;
	int n;

	out[0] = '\0';
	if (i < 0)
		return;
	n = ASN1_STRING_to_UTF8(
	    &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n > 0 && (size_t)n < len && memchr(utf8, 0, (size_t)n) == NULL) {
		memcpy(out, utf8, (size_t)n);
		out[n] = '\0';
	}
	OPENSSL_free(utf8);
}

static void
addresses(struct pp_caller *c, int fd)
{
	socklen_t sl = sizeof(c->src), dl = sizeof(c->dst);

	if (getpeername(fd, (struct sockaddr *)&c->src, &sl) != 0 ||
	    getsockname(fd, (struct sockaddr *)&c->dst, &dl) != 0) {
		c->src.ss_family = c->dst.ss_family = AF_UNSPEC;
		return;
	}
	if (c->src.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&c->src)->sin_addr,
		          c->ip, sizeof(c->ip));
	else if (c->src.ss_family == AF_INET6)
		inet_ntop(AF_INET6,
		          &((struct sockaddr_in6 *)&c->src)->sin6_addr, c->ip,
		          sizeof(c->ip));
}

struct pp_caller *
pp_caller_new(SSL *ssl, const char *peer_id, int fd)
{
	const STACK_OF(CRYPTO_BUFFER) *bufs = SSL_get0_peer_certificates(ssl);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	uint8_t md[SHA256_DIGEST_LENGTH];
	struct pp_caller *c;
	X509 *leaf;

	if (bufs == NULL || sk_CRYPTO_BUFFER_num(bufs) == 0)
		return (NULL);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (NULL);
	c->der = sk_CRYPTO_BUFFER_value(bufs, 0);
	CRYPTO_BUFFER_up_ref(c->der);
	if ((leaf = X509_parse_from_buffer(c->der)) == NULL) {
		ERR_clear_error();
		pp_caller_free(c);
		return (NULL);
	}
	copy_token(c->peer_id, sizeof(c->peer_id), peer_id, strlen(peer_id), 1);
	pp_identity_name_text(X509_get_subject_name(leaf), c->subject,
	                      sizeof(c->subject));
	leaf_cn(leaf, c->cn, sizeof(c->cn));
	first_uri(leaf, c->uri, sizeof(c->uri));
	X509_free(leaf);
	SHA256(CRYPTO_BUFFER_data(c->der), CRYPTO_BUFFER_len(c->der), md);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(c->sha256 + 2 * i, 3, "%02x", md[i]);
	c->tls_version = SSL_get_version(ssl);
	c->cipher = cipher != NULL ? SSL_CIPHER_get_name(cipher) : NULL;
	c->cert_in_conn = !SSL_session_reused(ssl);
	addresses(c, fd);
	return (c);
}

int
pp_caller_xfcc(const struct pp_caller *c, char *out, size_t len)
{
	size_t n = 0;
	int r;

	r = snprintf(out, len, "Hash=%s;Subject=\"", c->sha256);
	if (r < 0 || (size_t)r >= len)
		return (-1);
	n = (size_t)r;
	/* Quoted: a backslash escapes '"' and '\' (the RFC 2253 text has its
	 * own backslash escapes, kept intact by this second layer).  Control
	 * bytes cannot occur: RFC 2253 printing escapes them. */
	for (const char *s = c->subject; *s != '\0'; s++) {
		if (n + 3 >= len)
			return (-1);
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = (*s < 0x20 || *s == 0x7f) ? '?' : *s;
	}
	out[n++] = '"';
	out[n] = '\0';
	if (c->uri[0] != '\0') {
		int quote = strpbrk(c->uri, ",;=\"") != NULL;
		r = snprintf(out + n, len - n,
		             quote ? ";URI=\"%s\"" : ";URI=%s", c->uri);
		if (r < 0 || (size_t)r >= len - n)
			return (-1);
		/* a '"' inside a quoted URI: leave the URI out instead */
		if (quote && strchr(c->uri, '"') != NULL)
			out[n] = '\0';
	}
	return (0);
}

void
pp_caller_free(struct pp_caller *c)
{
	if (c == NULL)
		return;
	CRYPTO_BUFFER_free(c->der);
	free(c);
}
