#include "ops/adminreq.h"

#include <stdio.h>
#include <string.h>

static void
refuse(struct pp_admin_parse *r, int status, const char *why)
{
	r->status = status;
	snprintf(r->error, sizeof(r->error), "%s", why);
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct pp_admin_parse *r = p->data;

	if (r->url_len + len >= sizeof(r->url)) {
		refuse(r, 431, "request target too long");
		return (-1);
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

	r->head_done = 1;
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

int
pp_admin_parse_request(struct pp_admin_parse *r, const char *data, size_t len)
{
	enum http_errno e;
	size_t done;

	if (r->complete)
		return (1);
	if (r->status != 0)
		return (-1);
	done = http_parser_execute(&r->parser, &settings, data, len);
	if (!r->head_done) {
		r->head_bytes += done;
		if (r->head_bytes > PP_ADMIN_HEAD_MAX) {
			refuse(r, 431, "request head too large");
			return (-1);
		}
	}
	if (r->complete)
		return (1);
	if (r->status != 0)
		return (-1);
	e = HTTP_PARSER_ERRNO(&r->parser);
	if (e == HPE_HEADER_OVERFLOW) {
		refuse(r, 431, "request head too large");
		return (-1);
	}
	if (e != HPE_OK) {
		r->status = 400;
		snprintf(r->error, sizeof(r->error), "malformed request: %s",
		         http_errno_description(e));
		return (-1);
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
