#ifndef PP_ADMINREQ_H
#define PP_ADMINREQ_H

/*
 * The admin endpoint's request reader: the bytes a client sends in, one
 * verdict out.  Pure (no event loop, no socket), so that the endpoint, its
 * unit test and its fuzzer run the same code.  http-parser reads the
 * request; the limits are the endpoint's (README, "Admin endpoint").
 */

#include <stddef.h>

#include <http_parser.h>

#define PP_ADMIN_HEAD_MAX   8192
#define PP_ADMIN_BODY_MAX   4096
#define PP_ADMIN_TARGET_MAX 1024 /* a target this long or longer: 431 */

struct pp_admin_parse {
	http_parser parser;
	char url[PP_ADMIN_TARGET_MAX]; /* the request target so far */
	size_t url_len;
	int url_overlong;  /* refused once the head is complete */
	size_t head_bytes; /* read before the head was complete */
	int cr, bare_cr;   /* the last head byte was a CR; a CR without LF */
	size_t body_bytes;
	int head_done;
	int complete;    /* a whole request has been read (sticky) */
	int status;      /* refused with this status (sticky), else 0 */
	char error[160]; /* ... saying this */
};

/* pp_admin_parse_init(r): prepare ${r} for a new request. */
void pp_admin_parse_init(struct pp_admin_parse *r);

/* pp_admin_parse_request(r, data, len): read ${len} more bytes of the
 * request.  Return 1 when a whole request has been read (bytes after it
 * are ignored; pp_admin_parse_method and pp_admin_parse_path name it), 0
 * when more is needed, or -1 when it is refused: r->status is 400
 * (malformed), 431 (a head over PP_ADMIN_HEAD_MAX bytes or a target of
 * PP_ADMIN_TARGET_MAX bytes or more) or 413 (a body over
 * PP_ADMIN_BODY_MAX bytes) and r->error says why.  The answer depends
 * only on the bytes, never on how they are split between calls.  Once it
 * has returned 1 or -1 it returns the same again. */
int pp_admin_parse_request(struct pp_admin_parse *r, const char *data,
                           size_t len);

/* pp_admin_parse_method(r): the method of a whole request, HEAD read as
 * "GET" (the endpoint answers it as GET without the body). */
const char *pp_admin_parse_method(const struct pp_admin_parse *r);

/* pp_admin_parse_head(r): non-zero if the whole request is a HEAD. */
int pp_admin_parse_head(const struct pp_admin_parse *r);

/* pp_admin_parse_path(r): the target of a whole request without its
 * query string. */
const char *pp_admin_parse_path(const struct pp_admin_parse *r);

#endif
