#include "identity/tellapp.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/pool.h>

#include "identity/caller.h"
#include "identity/proxyproto.h"

struct pp_tellapp {
	const struct pp_tunnel_conf *tc;
	struct pp_caller *caller;
	char conn[17]; /* PP2_TYPE_UNIQUE_ID: the conn id of the logs */
	int http;      /* rw is in use */
	struct pp_httpid rw;
	struct pp_httpid_ids ids;
	char xfcc[PP_CALLER_SUBJECT_MAX * 2 + PP_CALLER_URI_MAX + 128];
};

int
pp_tellapp_wanted(const struct pp_tunnel_conf *tc)
{
	return (
	    tc->kind == PP_TUNNEL_INBOUND &&
	    (tc->proxy_protocol != PP_PROXY_PROTOCOL_OFF || tc->http_identity));
}

struct pp_tellapp *
pp_tellapp_new(const struct pp_tunnel_conf *tc, SSL *ssl, const char *peer_id,
               int fd, uint64_t conn_id)
{
	struct pp_tellapp *ta;
	struct pp_caller *c;

	if ((ta = calloc(1, sizeof(*ta))) == NULL)
		return (NULL);
	if ((ta->caller = c = pp_caller_new(ssl, peer_id, fd)) == NULL) {
		free(ta);
		return (NULL);
	}
	ta->tc = tc;
	snprintf(ta->conn, sizeof(ta->conn), "%016llx",
	         (unsigned long long)conn_id);
	if (tc->http_identity) {
		/* Too long to fit (cannot happen with the bounds of
		 * pp_caller): the header is left out, never cut. */
		if (pp_caller_xfcc(c, ta->xfcc, sizeof(ta->xfcc)) != 0)
			ta->xfcc[0] = '\0';
		ta->ids = (struct pp_httpid_ids){c->peer_id, ta->xfcc, c->ip};
		pp_httpid_init(&ta->rw, &ta->ids);
		ta->http = 1;
	}
	return (ta);
}

int
pp_tellapp_header(const struct pp_tellapp *ta, uint8_t *buf, size_t cap)
{
	const struct pp_caller *c = ta->caller;
	struct pp_proxyproto_info info = {
	    .src = (const struct sockaddr *)&c->src,
	    .dst = (const struct sockaddr *)&c->dst,
	    .tls_version = c->tls_version,
	    .cipher = c->cipher,
	    .cn = c->cn,
	    .peer_id = c->peer_id,
	    .unique_id = ta->conn,
	    .cert_in_conn = c->cert_in_conn,
	};

	if (ta->tc->proxy_protocol_cert) {
		info.der = CRYPTO_BUFFER_data(c->der);
		info.der_len = CRYPTO_BUFFER_len(c->der);
	}
	switch (ta->tc->proxy_protocol) {
	case PP_PROXY_PROTOCOL_V1:
		return (pp_proxyproto_v1(&info, buf, cap));
	case PP_PROXY_PROTOCOL_V2:
		return (pp_proxyproto_v2(&info, buf, cap));
	default:
		return (0);
	}
}

struct pp_httpid *
pp_tellapp_http(struct pp_tellapp *ta)
{
	return (ta->http ? &ta->rw : NULL);
}

const char *
pp_tellapp_peer(const struct pp_tellapp *ta)
{
	return (ta->caller->peer_id);
}

void
pp_tellapp_free(struct pp_tellapp *ta)
{
	if (ta == NULL)
		return;
	pp_caller_free(ta->caller);
	free(ta);
}
