#ifndef PP_HTTPID_H
#define PP_HTTPID_H

/*
 * The HTTP identity rewriter: a streaming filter over the bytes a caller
 * sends to an HTTP/1.x app.  Every request is parsed (http-parser) and its
 * head written out again in a normal form, without any client-sent copy of
 * the identity headers, and with the identity peerproxy verified:
 *
 *   X-Forwarded-For: <client values, merged>, <caller address>
 *   X-Forwarded-Proto: https
 *   X-Peer-Id: <verified peer id>
 *   X-Forwarded-Client-Cert: Hash=...;Subject="...";URI=...
 *
 * Header names match case-insensitively with '_' standing for '-' (some
 * app frameworks fold both to '_').  Bodies pass through (chunked ones
 * with their framing normalised and trailers dropped).  After a request
 * that upgrades the connection (Upgrade, CONNECT) every later byte passes
 * untouched.  Anything that could let two parsers disagree on where a
 * request ends is refused: invalid syntax, Content-Length together with
 * Transfer-Encoding, two Content-Lengths, a Transfer-Encoding other than
 * "chunked", obsolete line folding, bad chunk sizes, control bytes in a
 * value, two Host headers, versions other than HTTP/1.0 and 1.1, CONNECT
 * with a body, heads over PP_HTTPID_HEAD_MAX bytes or
 * PP_HTTPID_HEADERS_MAX headers.
 */

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

/* Request heads (request line and headers, as sent) are at most this long
 * and have at most this many headers. */
#define PP_HTTPID_HEAD_MAX    8192
#define PP_HTTPID_HEADERS_MAX 100

/* What is added to every request; the strings must outlive the rewriter.
 * NULL or "": that header is not added (client copies are still
 * removed). */
struct pp_httpid_ids {
	const char *peer_id;
	const char *xfcc;
	const char *client_ip;
};

struct pp_httpid_hdr {
	uint16_t name, name_len, value, value_len; /* offsets into store */
};

struct pp_httpid {
	http_parser parser;
	const struct pp_httpid_ids *ids;
	int state;
	int head_ready;   /* a head waits to be written out */
	int message_done; /* set by the parser's callback */
	int last_cb;      /* the previous head callback: field or value */
	int line_start, first_line; /* obsolete line folding scan */
	int overflow;               /* the head outgrew its limits */
	int last_chunk;             /* the last chunk's size line is out */
	size_t raw_len;             /* bytes of this head so far */
	char store[PP_HTTPID_HEAD_MAX];
	size_t store_len;
	uint16_t url, url_len;
	struct pp_httpid_hdr hdr[PP_HTTPID_HEADERS_MAX];
	size_t nhdr;
	const char *error;
	uint8_t *out; /* during a feed */
	size_t cap, made;
};

/* pp_httpid_init(r, ids): prepare ${r} for a new connection whose requests
 * get the headers of ${ids}. */
void pp_httpid_init(struct pp_httpid *r, const struct pp_httpid_ids *ids);

/* pp_httpid_feed(r, in, len, used, out, cap, made): take bytes the caller
 * sent from ${in} (${len}; NULL if 0), writing what the app must get to ${out}
 * (${cap} bytes; an empty buffer of 16 KiB holds any head).  ${used} gets
 * how many input bytes were taken (the rest must be offered again, after
 * the output is written), ${made} how many bytes were written.  Return 0,
 * or -1 if the stream is not acceptable HTTP/1.x: ${made} bytes (the
 * requests before the bad one) may still go to the app, nothing after; every
 * later call fails. */
int pp_httpid_feed(struct pp_httpid *r, const uint8_t *in, size_t len,
                   size_t *used, uint8_t *out, size_t cap, size_t *made);

/* pp_httpid_pending(r): non-zero if ${r} has output to write without more
 * input (a head that did not fit the last output buffer). */
int pp_httpid_pending(const struct pp_httpid *r);

/* pp_httpid_raw(r): non-zero once ${r} passes bytes untouched (after an
 * Upgrade or CONNECT request). */
int pp_httpid_raw(const struct pp_httpid *r);

/* pp_httpid_error(r): why the last feed failed, or NULL. */
const char *pp_httpid_error(const struct pp_httpid *r);

#endif
