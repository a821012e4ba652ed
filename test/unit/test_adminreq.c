/*
 * The admin endpoint's request reader: the verdict on the bytes a client
 * sends (README, "Admin endpoint").
 */

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/adminreq.h"

/* What one way of feeding a request came to. */
struct outcome {
	int rc;
	int status;
	char method[16];
	char path[PP_ADMIN_TARGET_MAX];
	int head;
};

/* Feed ${len} bytes of ${in} in pieces of ${step} bytes (0: whole). */
static struct outcome
feed(const char *in, size_t len, size_t step)
{
	struct pp_admin_parse r;
	struct outcome o;
	size_t off = 0;

	memset(&o, 0, sizeof(o));
	pp_admin_parse_init(&r);
	while (off < len && o.rc == 0) {
		size_t n = step == 0 || step > len - off ? len - off : step;

		o.rc = pp_admin_parse_request(&r, in + off, n);
		off += n;
	}
	if (o.rc == -1) {
		o.status = r.status;
		cr_assert_neq(r.error[0], '\0', "a refusal says why");
	}
	if (o.rc == 1) {
		snprintf(o.method, sizeof(o.method), "%s",
		         pp_admin_parse_method(&r));
		snprintf(o.path, sizeof(o.path), "%s", pp_admin_parse_path(&r));
		o.head = pp_admin_parse_head(&r);
	}
	return (o);
}

static struct outcome
feed_str(const char *in)
{
	return (feed(in, strlen(in), 0));
}

Test(adminreq, a_request_gives_its_method_and_path)
{
	struct outcome o = feed_str("GET /healthz?verbose=1 HTTP/1.1\r\n"
	                            "Host: x\r\n\r\n");

	cr_assert_eq(o.rc, 1);
	cr_assert_str_eq(o.method, "GET");
	cr_assert_str_eq(o.path, "/healthz", "the query string is cut off");
	cr_assert_eq(o.head, 0);
	o = feed_str("HEAD /readyz HTTP/1.0\r\n\r\n");
	cr_assert_eq(o.rc, 1);
	cr_assert_str_eq(o.method, "GET", "HEAD is answered as GET");
	cr_assert_eq(o.head, 1);
	o = feed_str("POST /reload HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
	cr_assert_eq(o.rc, 1);
	cr_assert_str_eq(o.method, "POST");
	cr_assert_str_eq(o.path, "/reload");
}

Test(adminreq, more_is_wanted_until_the_request_is_whole)
{
	cr_assert_eq(feed_str("GET /healthz HTTP/1.1\r\nHost: x\r\n").rc, 0);
	cr_assert_eq(feed_str("POST /reload HTTP/1.1\r\nContent-Length: 3\r\n"
	                      "\r\nab")
	                 .rc,
	             0);
}

Test(adminreq, bad_requests_get_400_431_413)
{
	static char big[3 * PP_ADMIN_HEAD_MAX];
	struct outcome o = feed_str("GARBAGE\r\n\r\n");

	cr_assert_eq(o.rc, -1);
	cr_assert_eq(o.status, 400);
	snprintf(big, sizeof(big), "GET /");
	memset(big + 5, 'a', 2000);
	strcpy(big + 2005, " HTTP/1.1\r\n\r\n");
	o = feed_str(big);
	cr_assert_eq(o.rc, -1);
	cr_assert_eq(o.status, 431, "target over 1 KiB");
	snprintf(big, sizeof(big),
	         "POST /reload HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
	memset(big + strlen(big), 'x', 8000);
	o = feed_str(big);
	cr_assert_eq(o.rc, -1);
	cr_assert_eq(o.status, 413, "body over %d bytes", PP_ADMIN_BODY_MAX);
}

Test(adminreq, the_verdict_is_sticky)
{
	struct pp_admin_parse r;
	const char req[] = "GET /status HTTP/1.1\r\n\r\n";

	pp_admin_parse_init(&r);
	cr_assert_eq(pp_admin_parse_request(&r, req, strlen(req)), 1);
	cr_assert_eq(pp_admin_parse_request(&r, "GARBAGE", 7), 1);
	cr_assert_str_eq(pp_admin_parse_path(&r), "/status");
	pp_admin_parse_init(&r);
	cr_assert_eq(pp_admin_parse_request(&r, "GARBAGE\r\n", 9), -1);
	cr_assert_eq(pp_admin_parse_request(&r, req, strlen(req)), -1);
	cr_assert_eq(r.status, 400);
}
