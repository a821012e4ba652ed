#include "identity/httpid.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/wbuf.h"

enum { S_HEAD, S_BODY, S_RAW, S_FAILED };
enum { CB_NONE, CB_FIELD, CB_VALUE };

/* Output kept free in the body state beyond twice the input: one chunk
 * size line and the end of a chunked body (framing lines may grow from LF
 * to CRLF, so output is at most twice the input plus this). */
#define SLACK 64

static struct pp_httpid *
of(http_parser *p)
{
	return (p->data);
}

static int
fail(struct pp_httpid *r, const char *why)
{
	if (r->error == NULL)
		r->error = why;
	r->state = S_FAILED;
	return (-1);
}

/* Append head bytes to the store; the current element grows by ${n}. */
static int
store(struct pp_httpid *r, const char *at, size_t n, uint16_t *len)
{
	if (r->store_len + n > sizeof(r->store) || *len + n > 0xFFFF) {
		r->overflow = 1;
		return (1);
	}
	memcpy(r->store + r->store_len, at, n);
	r->store_len += n;
	*len = (uint16_t)(*len + n);
	return (0);
}

static int
on_url(http_parser *p, const char *at, size_t n)
{
	struct pp_httpid *r = of(p);

	if (r->state != S_HEAD)
		return (0);
	if (r->url_len == 0)
		r->url = (uint16_t)r->store_len;
	return (store(r, at, n, &r->url_len));
}

static int
on_header_field(http_parser *p, const char *at, size_t n)
{
	struct pp_httpid *r = of(p);
	struct pp_httpid_hdr *h;

	if (r->state != S_HEAD)
		return (0); /* a trailer: dropped */
	if (r->last_cb != CB_FIELD) {
		if (r->nhdr == PP_HTTPID_HEADERS_MAX) {
			r->overflow = 1;
			return (1);
		}
		h = &r->hdr[r->nhdr++];
		memset(h, 0, sizeof(*h));
		h->name = (uint16_t)r->store_len;
		r->last_cb = CB_FIELD;
	}
	h = &r->hdr[r->nhdr - 1];
	return (store(r, at, n, &h->name_len));
}

static int
on_header_value(http_parser *p, const char *at, size_t n)
{
	struct pp_httpid *r = of(p);
	struct pp_httpid_hdr *h;

	if (r->state != S_HEAD)
		return (0);
	h = &r->hdr[r->nhdr - 1];
	if (r->last_cb != CB_VALUE) {
		h->value = (uint16_t)r->store_len;
		r->last_cb = CB_VALUE;
	}
	return (store(r, at, n, &h->value_len));
}

static int
on_headers_complete(http_parser *p)
{
	struct pp_httpid *r = of(p);

	if (r->state != S_HEAD)
		return (0); /* the end of a trailer section */
	r->head_ready = 1;
	http_parser_pause(p, 1);
	return (0);
}

/* Body output: room for it is ensured by the size of the slice fed. */
static void
emit(struct pp_httpid *r, const void *data, size_t n)
{
	memcpy(r->out + r->made, data, n);
	r->made += n;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
	emit(of(p), at, n);
	return (0);
}

static int
on_chunk_header(http_parser *p)
{
	char line[32];

	if (p->content_length == 0)
		of(p)->last_chunk = 1;
	int n = snprintf(line, sizeof(line), "%llx\r\n",
	                 (unsigned long long)p->content_length);

	emit(of(p), line, (size_t)n);
	return (0);
}

static int
on_chunk_complete(http_parser *p)
{
	/* The last chunk's end is the end of the message (trailers are
	 * dropped): its CRLF comes with on_message_complete. */
	if (!(p->flags & F_TRAILING))
		emit(of(p), "\r\n", 2);
	return (0);
}

static int
on_message_complete(http_parser *p)
{
	struct pp_httpid *r = of(p);

	/* The end of the (dropped) trailer section after a last chunk.  Not
	 * F_CHUNKED alone: a request that upgrades has no body. */
	if (r->last_chunk)
		emit(r, "\r\n", 2);
	r->last_chunk = 0;
	r->message_done = 1;
	http_parser_pause(p, 1);
	return (0);
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_chunk_complete = on_chunk_complete,
    .on_message_complete = on_message_complete,
};

static void
head_reset(struct pp_httpid *r)
{
	r->state = S_HEAD;
	r->head_ready = 0;
	r->last_cb = CB_NONE;
	r->line_start = 1;
	r->first_line = 1;
	r->overflow = 0;
	r->raw_len = 0;
	r->store_len = 0;
	r->url = r->url_len = 0;
	r->nhdr = 0;
}

void
pp_httpid_init(struct pp_httpid *r, const struct pp_httpid_ids *ids)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
	r->ids = ids;
	head_reset(r);
}

/* Account for ${n} head bytes: refuse obsolete line folding (a header line
 * starting with SP or HTAB), which http-parser would join silently, and
 * heads over the limit. */
static int
scan_head(struct pp_httpid *r, const uint8_t *in, size_t n)
{
	r->raw_len += n;
	if (r->raw_len > PP_HTTPID_HEAD_MAX)
		return (fail(r, "request head too large"));
	for (size_t i = 0; i < n; i++) {
		if (r->line_start && !r->first_line &&
		    (in[i] == ' ' || in[i] == '\t'))
			return (fail(r, "obsolete line folding"));
		r->line_start = in[i] == '\n';
		if (in[i] == '\n')
			r->first_line = 0;
	}
	return (0);
}

/* ---- the head, written out again ---- */

static const char *
name_of(const struct pp_httpid *r, const struct pp_httpid_hdr *h)
{
	return (r->store + h->name);
}

/* Whether header ${h}'s name is ${want} (lowercase, '-'), ignoring case
 * and taking '_' for '-'. */
static int
name_is(const struct pp_httpid *r, const struct pp_httpid_hdr *h,
        const char *want)
{
	const char *s = name_of(r, h);

	if (strlen(want) != h->name_len)
		return (0);
	for (size_t i = 0; i < h->name_len; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '_')
			c = '-';
		if (c != want[i])
			return (0);
	}
	return (1);
}

/* The value of ${h} without trailing whitespace. */
static size_t
value_len(const struct pp_httpid *r, const struct pp_httpid_hdr *h)
{
	size_t n = h->value_len;

	while (n > 0 && (r->store[h->value + n - 1] == ' ' ||
	                 r->store[h->value + n - 1] == '\t'))
		n--;
	return (n);
}

static int
has_underscore(const struct pp_httpid *r, const struct pp_httpid_hdr *h)
{
	return (memchr(name_of(r, h), '_', h->name_len) != NULL);
}

/* The identity headers the caller must not set. */
static int
is_identity(const struct pp_httpid *r, const struct pp_httpid_hdr *h)
{
	return (name_is(r, h, "x-peer-id") ||
	        name_is(r, h, "x-forwarded-client-cert") ||
	        name_is(r, h, "x-forwarded-proto") ||
	        name_is(r, h, "x-forwarded-for"));
}

/* RFC 9110 token characters (http-parser lets a space through). */
static int
is_tchar(unsigned char c)
{
	return ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	        (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Refuse what two HTTP parsers could read differently. */
static int
check_head(struct pp_httpid *r)
{
	size_t ncl = 0, nte = 0, nhost = 0;

	if (r->overflow)
		return (fail(r, "request head too large"));
	for (size_t i = 0; i < r->nhdr; i++) {
		const struct pp_httpid_hdr *h = &r->hdr[i];
		const char *v = r->store + h->value;
		int cl = name_is(r, h, "content-length");
		int te = name_is(r, h, "transfer-encoding");

		if (h->name_len == 0)
			return (fail(r, "empty header name"));
		for (size_t k = 0; k < h->name_len; k++) {
			if (!is_tchar((unsigned char)name_of(r, h)[k]))
				return (fail(r, "bad byte in a header name"));
		}
		for (size_t k = 0; k < h->value_len; k++) {
			if (((unsigned char)v[k] < 0x20 && v[k] != '\t') ||
			    v[k] == 0x7f)
				return (fail(r, "control byte in a header"));
		}
		if ((cl || te) && has_underscore(r, h))
			return (fail(r, "'_' in a framing header's name"));
		ncl += (size_t)cl;
		nte += (size_t)te;
		nhost += (size_t)name_is(r, h, "host");
		if (te &&
		    (value_len(r, h) != 7 || strncasecmp(v, "chunked", 7) != 0))
			return (
			    fail(r, "Transfer-Encoding other than chunked"));
	}
	if (ncl > 1)
		return (fail(r, "more than one Content-Length"));
	if (nte > 1)
		return (fail(r, "more than one Transfer-Encoding"));
	if (ncl && nte)
		return (fail(r, "Content-Length and Transfer-Encoding"));
	if (nte && r->parser.http_major == 1 && r->parser.http_minor == 0)
		return (fail(r, "Transfer-Encoding in HTTP/1.0"));
	if (nhost > 1)
		return (fail(r, "more than one Host"));
	if (r->parser.http_major != 1 || r->parser.http_minor > 1)
		return (fail(r, "HTTP version other than 1.0 and 1.1"));
	/* http-parser reads no body after CONNECT; an app might. */
	if (r->parser.method == HTTP_CONNECT && (ncl || nte))
		return (fail(r, "CONNECT with a body"));
	return (0);
}

static void
puts_(struct pp_wbuf *w, const char *s)
{
	pp_wbuf_put(w, s, strlen(s));
}

static int
set(const char *s)
{
	return (s != NULL && s[0] != '\0');
}

static void
put_forwarded_for(struct pp_httpid *r, struct pp_wbuf *w)
{
	const char *sep = "";

	for (size_t i = 0; i < r->nhdr; i++) {
		const struct pp_httpid_hdr *h = &r->hdr[i];
		size_t n = value_len(r, h);
		if (!name_is(r, h, "x-forwarded-for") || n == 0)
			continue;
		puts_(w, *sep ? sep : "X-Forwarded-For: ");
		pp_wbuf_put(w, r->store + h->value, n);
		sep = ", ";
	}
	if (set(r->ids->client_ip)) {
		puts_(w, *sep ? sep : "X-Forwarded-For: ");
		puts_(w, r->ids->client_ip);
		sep = ", ";
	}
	if (*sep)
		puts_(w, "\r\n");
}

/* Write the checked head to the output.  Return 0; 1 if it must wait for
 * an empty output buffer; -1 if it is refused. */
static int
emit_head(struct pp_httpid *r)
{
	struct pp_wbuf w = {r->out + r->made, 0, r->cap - r->made};
	char line[32];

	if (check_head(r) != 0)
		return (-1);
	puts_(&w, http_method_str((enum http_method)r->parser.method));
	puts_(&w, " ");
	pp_wbuf_put(&w, r->store + r->url, r->url_len);
	snprintf(line, sizeof(line), " HTTP/%u.%u\r\n",
	         (unsigned)r->parser.http_major,
	         (unsigned)r->parser.http_minor);
	puts_(&w, line);
	for (size_t i = 0; i < r->nhdr; i++) {
		const struct pp_httpid_hdr *h = &r->hdr[i];
		if (is_identity(r, h))
			continue;
		pp_wbuf_put(&w, name_of(r, h), h->name_len);
		puts_(&w, ": ");
		pp_wbuf_put(&w, r->store + h->value, value_len(r, h));
		puts_(&w, "\r\n");
	}
	put_forwarded_for(r, &w);
	puts_(&w, "X-Forwarded-Proto: https\r\n");
	if (set(r->ids->peer_id)) {
		puts_(&w, "X-Peer-Id: ");
		puts_(&w, r->ids->peer_id);
		puts_(&w, "\r\n");
	}
	if (set(r->ids->xfcc)) {
		puts_(&w, "X-Forwarded-Client-Cert: ");
		puts_(&w, r->ids->xfcc);
		puts_(&w, "\r\n");
	}
	puts_(&w, "\r\n");
	if (w.len > w.cap)
		return (r->made == 0 ? fail(r, "request head too large") : 1);
	r->made += w.len;
	return (0);
}

int
pp_httpid_feed(struct pp_httpid *r, const uint8_t *in, size_t len, size_t *used,
               uint8_t *out, size_t cap, size_t *made)
{
	size_t n, slice;
	enum http_errno e;

	*used = *made = 0;
	if (len == 0)
		in = (const uint8_t *)""; /* no arithmetic on a NULL */
	r->out = out;
	r->cap = cap;
	r->made = 0;
	while (r->state != S_FAILED) {
		if (r->head_ready) {
			if (emit_head(r) != 0) /* no room yet, or refused */
				break;
			r->head_ready = 0;
			r->state = S_BODY;
		}
		if (r->state == S_RAW) {
			n = len - *used < cap - r->made ? len - *used
			                                : cap - r->made;
			memcpy(out + r->made, in + *used, n);
			r->made += n;
			*used += n;
			break;
		}
		if (*used == len)
			break;
		slice = len - *used;
		if (r->state == S_BODY) {
			if (cap - r->made < SLACK + 2)
				break;
			if (slice > (cap - r->made - SLACK) / 2)
				slice = (cap - r->made - SLACK) / 2;
		}
		n = http_parser_execute(&r->parser, &settings,
		                        (const char *)in + *used, slice);
		e = HTTP_PARSER_ERRNO(&r->parser);
		if (r->state == S_HEAD && scan_head(r, in + *used, n) != 0)
			break;
		*used += n;
		if (e == HPE_PAUSED) {
			http_parser_pause(&r->parser, 0);
		} else if (e != HPE_OK) {
			fail(r, r->overflow ? "request head too large"
			                    : http_errno_description(e));
			break;
		}
		if (r->message_done) {
			r->message_done = 0;
			if (r->parser.upgrade)
				r->state = S_RAW;
			else
				head_reset(r);
		} else if (n == 0 && e != HPE_PAUSED) {
			break; /* no progress: wait for more */
		}
	}
	*made = r->made;
	r->out = NULL;
	return (r->state == S_FAILED ? -1 : 0);
}

int
pp_httpid_pending(const struct pp_httpid *r)
{
	return (r->head_ready && r->state != S_FAILED);
}

int
pp_httpid_raw(const struct pp_httpid *r)
{
	return (r->state == S_RAW);
}

const char *
pp_httpid_error(const struct pp_httpid *r)
{
	return (r->error);
}
