#include "ops/adminreq.h"

#include <stdio.h>
#include <string.h>

static void
refuse(struct pp_admin_parse *r, int status, const char *why)
{
	r->status = status;
	snprintf(r->error, sizeof(r->error), "%s", why);
}

/* The callbacks and the loop below make the verdict depend on the bytes
 * alone, never on how they were cut into reads: the parser is never shown
 * a byte of the head past PP_ADMIN_HEAD_MAX, and an overlong target is
 * refused where the head ends (http-parser calls on_url at the end of
 * every read, so a count kept there reaches the limit at a point that
 * depends on the cuts, and a malformed byte after it may or may not have
 * been seen). */

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct pp_admin_parse *r = p->data;

	if (r->url_overlong || r->url_len + len >= sizeof(r->url)) {
		r->url_overlong = 1;
		return (0);
	}
	memcpy(r->url + r->url_len, at, len);
	r->url_len += len;
	r->url[r->url_len] = '\0';
	return (0);
}

static int
on_headers_complete(http_parser *p)
{
	struct pp_admin_parse *r = p->data;

	if (r->url_overlong) {
		refuse(r, 431, "request target too long");
		return (-1);
	}
	r->head_done = 1;
	/* Stop on the head's last byte, so that it can be checked. */
	http_parser_pause(p, 1);
	return (0);
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct pp_admin_parse *r = p->data;

	(void)at;
	r->body_bytes += len;
	if (r->body_bytes > PP_ADMIN_BODY_MAX) {
		refuse(r, 413, "request body too large");
		return (-1);
	}
	return (0);
}

static int
on_message_complete(http_parser *p)
{
	struct pp_admin_parse *r = p->data;
	char *q;

	if ((q = strchr(r->url, '?')) != NULL)
		*q = '\0';
	r->complete = 1;
	http_parser_pause(p, 1);
	return (0);
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void
pp_admin_parse_init(struct pp_admin_parse *r)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
}

/* The http-parser error that stopped ${r} as a refusal. */
static int
parser_failed(struct pp_admin_parse *r)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);

	if (r->status != 0)
		return (-1); /* a callback refused */
	if (e == HPE_HEADER_OVERFLOW) {
		refuse(r, 431, "request head too large");
		return (-1);
	}
	r->status = 400;
	snprintf(r->error, sizeof(r->error), "malformed request: %s",
	         http_errno_description(e));
	return (-1);
}

/* Note a CR in the ${len} head bytes at ${p} that no LF follows.
 * Non-strict http-parser takes a CR followed by any byte for a line's
 * end (and, at the end of the head, takes that byte too). */
static void
scan_cr(struct pp_admin_parse *r, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		r->bare_cr |= r->cr && p[i] != '\n';
		r->cr = p[i] == '\r';
	}
}

int
pp_admin_parse_request(struct pp_admin_parse *r, const char *data, size_t len)
{
	if (r->complete)
		return (1);
	if (r->status != 0)
		return (-1);
	while (len > 0) {
		size_t n = len, done;
		int in_head = !r->head_done;

		if (in_head && n > PP_ADMIN_HEAD_MAX - r->head_bytes)
			n = PP_ADMIN_HEAD_MAX - r->head_bytes;
		done = http_parser_execute(&r->parser, &settings, data, n);
		if (r->complete)
			return (1);
		if (in_head && r->head_done) {
			/* Paused on the head's last byte, data[done]. */
			scan_cr(r, data, done + 1);
			if (r->bare_cr) {
				refuse(r, 400,
				       "malformed request: a CR without a LF "
				       "in the head");
				return (-1);
			}
			http_parser_pause(&r->parser, 0);
		} else if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK) {
			return (parser_failed(r));
		} else if (in_head) {
			scan_cr(r, data, done);
			r->head_bytes += done;
			if (r->head_bytes == PP_ADMIN_HEAD_MAX) {
				refuse(r, 431, "request head too large");
				return (-1);
			}
		}
		data += done;
		len -= done;
	}
	return (0);
}

const char *
pp_admin_parse_method(const struct pp_admin_parse *r)
{
	if (pp_admin_parse_head(r))
		return ("GET");
	return (http_method_str(r->parser.method));
}

int
pp_admin_parse_head(const struct pp_admin_parse *r)
{
	return (r->parser.method == HTTP_HEAD);
}

const char *
pp_admin_parse_path(const struct pp_admin_parse *r)
{
	return (r->url);
}
