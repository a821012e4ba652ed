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

static void
assert_same(struct outcome a, struct outcome b, const char *how, size_t at)
{
	cr_assert_eq(a.rc, b.rc, "answer %d whole, %d %s %zu", a.rc, b.rc, how,
	             at);
	cr_assert_eq(a.status, b.status, "status %d whole, %d %s %zu", a.status,
	             b.status, how, at);
	cr_assert_str_eq(a.method, b.method, "%s %zu", how, at);
	cr_assert_str_eq(a.path, b.path, "%s %zu", how, at);
}

/* The verdict depends on the bytes alone: whole, byte by byte, in pieces
 * of 2..7 and of the endpoint's 4096-byte reads.  Returns the whole-input
 * outcome. */
static struct outcome
assert_cut_invariant(const char *in, size_t len)
{
	static const size_t steps[] = {1, 2, 3, 4, 5, 6, 7, 4096};
	struct outcome whole = feed(in, len, 0);

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		assert_same(whole, feed(in, len, steps[i]), "in pieces of",
		            steps[i]);
	return (whole);
}

Test(adminreq, a_head_over_8_KiB_is_refused_however_it_arrives)
{
	static char text[PP_ADMIN_HEAD_MAX + 808];
	size_t n;
	struct outcome o;

	/* A head one header too long: refused in one read or many (the
	 * endpoint counted only the reads before the one that finished the
	 * head, so a head of up to 12 KiB could pass). */
	n = (size_t)snprintf(text, sizeof(text),
	                     "GET /healthz HTTP/1.1\r\nX-Pad: ");
	memset(text + n, 'p', sizeof(text) - 1 - n - 4);
	memcpy(text + sizeof(text) - 5, "\r\n\r\n", 4);
	o = assert_cut_invariant(text, sizeof(text) - 1);
	cr_assert_eq(o.rc, -1);
	cr_assert_eq(o.status, 431);
	/* ... and a head of exactly PP_ADMIN_HEAD_MAX bytes is read. */
	text[PP_ADMIN_HEAD_MAX - 4] = '\0';
	strcat(text, "\r\n\r\n");
	o = assert_cut_invariant(text, PP_ADMIN_HEAD_MAX);
	cr_assert_eq(o.rc, 1);
	cr_assert_str_eq(o.path, "/healthz");
}

/* Found by fuzzing (test/fuzz/regressions/admin/long-target-then-nul): a
 * target past 1 KiB that then breaks the request line got 431 when its
 * bytes came in small reads (the target callback fired at each read's
 * end) and 400 in one read (the parser failed first). */
Test(adminreq, a_long_bad_target_gets_one_answer_however_cut)
{
	FILE *f = fopen(PP_SOURCE_DIR
	                "/test/fuzz/regressions/admin/long-target-then-nul",
	                "rb");
	char buf[4096];
	size_t n;
	struct outcome o;

	cr_assert_not_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	cr_assert_eq(n, 1038);
	/* The harness's first byte chose the cuts; the request follows. */
	o = assert_cut_invariant(buf + 1, n - 1);
	cr_assert_eq(o.rc, -1);
	cr_assert_eq(o.status, 400, "a malformed request line");
}

Test(adminreq, tricky_requests_get_one_answer_however_cut)
{
	static const struct {
		const char *in;
		int rc, status;
	} cases[] = {
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE", 1, 0},
	    {"\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n", 1, 0},
	    {"GET /healthz HTTP/1.1\nHost: x\n\n", 1, 0},
	    {"POST /reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	     "3\r\nabc\r\n0\r\n\r\n",
	     1, 0},
	    {"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", -1, 400},
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\n", 0, 0},
	    /* Non-strict http-parser ends a line at a CR followed by any
	     * byte and takes that byte: a bare CR is malformed (found by
	     * fuzzing). */
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\n\rX", -1, 400},
	    {"GET /healthz HTTP/1.1\r\n\r\r\n", -1, 400},
	    {"GET /healthz HTTP/1.1\r\nUser-Agent: a\rL\n\n", -1, 400},
	    {"POST /reload HTTP/1.1\r\nContent-Length: 2\r\n\r\n\r.", 1, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct outcome o =
		    assert_cut_invariant(cases[i].in, strlen(cases[i].in));

		cr_assert_eq(o.rc, cases[i].rc, "case %zu: %d, not %d", i, o.rc,
		             cases[i].rc);
		cr_assert_eq(o.status, cases[i].status, "case %zu: %d", i,
		             o.status);
	}
}
