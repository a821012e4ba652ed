#ifndef PP_CONNECT_H
#define PP_CONNECT_H

/*
 * The HTTP CONNECT front door of node data mode: an app opens a plain
 * connection, sends "CONNECT <peer-id>:<port> HTTP/1.1" and, once
 * peerproxy answers "200 Connection established", talks to that peer as
 * through its socket.  Requests are parsed with http-parser; anything but
 * one well-formed CONNECT is refused.
 */

#include <stddef.h>

#include <http_parser.h>

#define PP_CONNECT_HEAD_MAX 8192

struct pp_connect_req {
	http_parser parser;
	char target[300]; /* the request target, "<id>:<port>" */
	size_t target_len;
	int begun;     /* a request has started */
	int complete;  /* a CONNECT head has been read (sticky) */
	int failed;    /* malformed or not a CONNECT (sticky) */
	int too_large; /* failed: no complete head in PP_CONNECT_HEAD_MAX */
	int overlong;  /* the target does not fit: refused at the head's end */
	size_t nread;  /* bytes of the head parsed so far */
	int cr;        /* the last of them was a CR */
	int bare_cr;   /* a CR without LF: refused at the head's end */
};

/* pp_connect_init(r): prepare ${r} for a new request. */
void pp_connect_init(struct pp_connect_req *r);

/* pp_connect_feed(r, data, len, consumed): parse ${len} more bytes of the
 * request head (at most PP_CONNECT_HEAD_MAX bytes in all; a longer one
 * fails with r->too_large set).  Return 1 when the head is complete
 * (${consumed} bytes of ${data} belong to it; the rest is tunnel data), 0
 * when more is needed (all ${len} consumed), or -1 if the request is
 * malformed (a CR without LF included) or is not one "CONNECT target
 * HTTP/1.x" head.  The answer and
 * the total bytes consumed depend only on the bytes, never on how they
 * are split between calls.  Once it has returned 1 or -1 it returns the
 * same again, consuming nothing. */
int pp_connect_feed(struct pp_connect_req *r, const char *data, size_t len,
                    size_t *consumed);

/* pp_connect_peer(r, out, len): the peer id of a complete request (the
 * host part of "<id>:<port>", the port 1 to 65535 in at most 5 digits),
 * or -1 if the target is not of that form. */
int pp_connect_peer(const struct pp_connect_req *r, char *out, size_t len);

/* Replies.  Each is a complete HTTP/1.1 response. */
extern const char pp_connect_200[];
extern const char pp_connect_400[];
extern const char pp_connect_403[];
extern const char pp_connect_502[];

#endif
