#include "identity/connect.h"

#include <string.h>

const char pp_connect_200[] = "HTTP/1.1 200 Connection established\r\n\r\n";
const char pp_connect_400[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";
const char pp_connect_403[] = "HTTP/1.1 403 Forbidden\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";
const char pp_connect_502[] = "HTTP/1.1 502 Bad Gateway\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";

/* The callbacks make the answer depend on the bytes alone, never on how
 * they were cut: one message only (a second one is an error even when it
 * arrives in the same read), and the verdict on the head is given the
 * moment it completes, inside the parser, so that no later byte of the
 * same read can change it. */

static int
on_message_begin(http_parser *p)
{
	struct pp_connect_req *r = p->data;

	if (r->begun)
		return (1); /* a second request: not a CONNECT head */
	r->begun = 1;
	return (0);
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct pp_connect_req *r = p->data;

	/* Refused when the head completes, not here: where the callback
	 * comes depends on how the bytes were cut. */
	if (r->overlong || r->target_len + len >= sizeof(r->target)) {
		r->overlong = 1;
		return (0);
	}
	memcpy(r->target + r->target_len, at, len);
	r->target_len += len;
	r->target[r->target_len] = '\0';
	return (0);
}

static int
on_headers_complete(http_parser *p)
{
	struct pp_connect_req *r = p->data;

	/* Only "CONNECT target HTTP/1.x": http-parser then stops right after
	 * the head (an upgrade); anything else stops here, as an error. */
	if (p->method != HTTP_CONNECT || p->http_major != 1 || !p->upgrade ||
	    r->overlong)
		return (-1);
	r->complete = 1;
	return (0);
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
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
	size_t room = PP_CONNECT_HEAD_MAX - r->nread, n;

	if (r->complete || r->failed) {
		*consumed = 0;
		return (r->complete ? 1 : -1);
	}
	/* The head limit counts bytes, so it too is the same however they
	 * come: the parser never sees a byte past it. */
	n = http_parser_execute(&r->parser, &settings, data,
	                        len < room ? len : room);
	r->nread += n;
	*consumed = n;
	/* Every byte taken is the head's (the parser stops at its end).
	 * Non-strict http-parser ends a line at a CR followed by any byte
	 * and takes that byte, at the head's end the tunnel's first: a CR
	 * without LF makes the head malformed, judged at its end. */
	for (size_t i = 0; i < n; i++) {
		r->bare_cr |= r->cr && data[i] != '\n';
		r->cr = data[i] == '\r';
	}
	if (r->complete && r->bare_cr) {
		r->complete = 0;
		r->failed = 1;
		return (-1);
	}
	if (r->complete)
		return (1);
	if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || n != len ||
	    r->nread == PP_CONNECT_HEAD_MAX) {
		r->too_large = HTTP_PARSER_ERRNO(&r->parser) == HPE_OK &&
		               r->nread == PP_CONNECT_HEAD_MAX;
		r->failed = 1;
		return (-1);
	}
	return (0);
}

int
pp_connect_peer(const struct pp_connect_req *r, char *out, size_t len)
{
	const char *colon = strrchr(r->target, ':');
	unsigned long port = 0;
	size_t n;

	if (colon == NULL || colon[1] == '\0')
		return (-1);
	/* The port is not used (the peer's stomp.toml says where it
	 * listens), but it must be one: 1 to 65535. */
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || p - colon > 5)
			return (-1);
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port == 0 || port > 65535)
		return (-1);
	n = (size_t)(colon - r->target);
	if (n == 0 || n >= len)
		return (-1);
	memcpy(out, r->target, n);
	out[n] = '\0';
	return (0);
}
