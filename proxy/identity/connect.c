#include "identity/connect.h"

#include <string.h>

const char pp_connect_200[] = "HTTP/1.1 200 Connection established\r\n\r\n";
const char pp_connect_400[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";
const char pp_connect_403[] = "HTTP/1.1 403 Forbidden\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";
const char pp_connect_502[] = "HTTP/1.1 502 Bad Gateway\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct pp_connect_req *r = p->data;

	if (r->target_len + len >= sizeof(r->target)) {
		r->overlong = 1;
		return (1);
	}
	memcpy(r->target + r->target_len, at, len);
	r->target_len += len;
	r->target[r->target_len] = '\0';
	return (0);
}

static int
on_headers_complete(http_parser *p)
{
	((struct pp_connect_req *)p->data)->complete = 1;
	return (0);
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
};

void
pp_connect_init(struct pp_connect_req *r)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
}

int
pp_connect_feed(struct pp_connect_req *r, const char *data, size_t len,
                size_t *consumed)
{
	size_t n = http_parser_execute(&r->parser, &settings, data, len);

	*consumed = n;
	if (r->overlong)
		return (-1);
	if (r->complete) {
		/* http-parser stops after a CONNECT head (upgrade). */
		if (r->parser.method != HTTP_CONNECT || !r->parser.upgrade)
			return (-1);
		return (1);
	}
	if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || n != len)
		return (-1);
	return (0);
}

int
pp_connect_peer(const struct pp_connect_req *r, char *out, size_t len)
{
	const char *colon = strrchr(r->target, ':');
	size_t n;

	if (colon == NULL || colon[1] == '\0')
		return (-1);
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return (-1);
	}
	n = (size_t)(colon - r->target);
	if (n == 0 || n >= len)
		return (-1);
	memcpy(out, r->target, n);
	out[n] = '\0';
	return (0);
}
