/*
 * The HTTP identity rewriter: identity headers added and never spoofed,
 * requests intact across every split of the input, and every request
 * smuggling pattern refused.
 */

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/httpid.h"

static const struct pp_httpid_ids ids = {
    .peer_id = "1234abcd",
    .xfcc = "Hash=00ff;Subject=\"O=Test\"",
    .client_ip = "192.0.2.7",
};

/* What the rewriter adds to every request for ${ids}. */
#define ADDED                                                                  \
	"X-Forwarded-For: 192.0.2.7\r\n"                                       \
	"X-Forwarded-Proto: https\r\n"                                         \
	"X-Peer-Id: 1234abcd\r\n"                                              \
	"X-Forwarded-Client-Cert: Hash=00ff;Subject=\"O=Test\"\r\n"

struct result {
	int rc;
	char *out; /* malloc'd, NUL-terminated */
	size_t len;
};

/* Feed ${in} to a fresh rewriter in pieces ending at the offsets ${cuts}
 * (then the rest), with output buffers of ${cap} bytes; collect all output
 * until the end or the first failure. */
static struct result
drive_cuts(const char *in, size_t len, const size_t *cuts, size_t ncuts,
           size_t cap)
{
	struct pp_httpid *r = malloc(sizeof(*r));
	uint8_t *buf = malloc(cap);
	struct result res = {0, malloc(1), 0};
	size_t start = 0;

	cr_assert(r != NULL && buf != NULL && res.out != NULL);
	pp_httpid_init(r, &ids);
	for (size_t k = 0; k <= ncuts && res.rc == 0; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t off = start;
		int stuck = 0;

		while (res.rc == 0 && (off < end || pp_httpid_pending(r))) {
			size_t used, made;
			res.rc =
			    pp_httpid_feed(r, (const uint8_t *)in + off,
			                   end - off, &used, buf, cap, &made);
			res.out = realloc(res.out, res.len + made + 1);
			memcpy(res.out + res.len, buf, made);
			res.len += made;
			off += used;
			stuck = used == 0 && made == 0 ? stuck + 1 : 0;
			cr_assert(stuck < 2, "no progress at offset %zu", off);
		}
		start = end;
	}
	res.out[res.len] = '\0';
	if (res.rc != 0)
		cr_assert_not_null(pp_httpid_error(r));
	free(buf);
	free(r);
	return (res);
}

static struct result
drive(const char *in, size_t len)
{
	return (drive_cuts(in, len, NULL, 0, 16384));
}

static struct result
drive_s(const char *in)
{
	return (drive(in, strlen(in)));
}

/* Every split of ${in} in two, and one byte at a time, gives ${want}. */
static void
assert_every_split(const char *in, const char *want)
{
	size_t len = strlen(in);
	size_t *all = malloc(len * sizeof(size_t));
	struct result res;

	for (size_t cut = 0; cut <= len; cut++) {
		res = drive_cuts(in, len, &cut, 1, 16384);
		cr_assert_eq(res.rc, 0, "split at %zu", cut);
		cr_assert_str_eq(res.out, want, "split at %zu", cut);
		free(res.out);
	}
	for (size_t i = 0; i < len; i++)
		all[i] = i + 1;
	res = drive_cuts(in, len, all, len, 16384);
	cr_assert_eq(res.rc, 0);
	cr_assert_str_eq(res.out, want, "one byte at a time");
	free(res.out);
	free(all);
}

static void
assert_refused(const char *in, const char *why)
{
	struct result res = drive_s(in);

	cr_assert_eq(res.rc, -1, "%s: accepted, output %s", why, res.out);
	cr_assert_eq(res.len, 0, "%s: bytes of it reached the app: %s", why,
	             res.out);
	free(res.out);
}

/* ${in}'s head is fine and goes out; its body is not: nothing after the
 * head may follow it. */
static void
assert_body_refused(const char *in, const char *why)
{
	struct result res = drive_s(in);
	const char *end = strstr(res.out, "\r\n\r\n");

	cr_assert_eq(res.rc, -1, "%s: accepted, output %s", why, res.out);
	cr_assert_not_null(end);
	cr_assert_eq(res.out + res.len, end + 4, "%s: body bytes passed: %s",
	             why, res.out);
	free(res.out);
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return (n);
}

Test(httpid, adds_the_identity_headers)
{
	struct result res = drive_s("GET /a?b=1 HTTP/1.1\r\nHost: app\r\n"
	                            "Accept:  */*  \r\n\r\n");

	cr_assert_eq(res.rc, 0);
	cr_assert_str_eq(res.out, "GET /a?b=1 HTTP/1.1\r\nHost: app\r\n"
	                          "Accept: */*\r\n" ADDED "\r\n");
	free(res.out);
}

Test(httpid, pipelined_requests_split_at_every_byte)
{
	const char *in = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
	                 "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	                 "\r\nhello"
	                 "PUT /3 HTTP/1.1\r\nHost: a\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n"
	                 "5\r\nhello\r\n0\r\n\r\n"
	                 "GET /4 HTTP/1.0\r\n\r\n";
	const char *want =
	    "GET /1 HTTP/1.1\r\nHost: a\r\n" ADDED "\r\n"
	    "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n" ADDED
	    "\r\nhello"
	    "PUT /3 HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\n" ADDED "\r\n"
	    "5\r\nhello\r\n0\r\n\r\n"
	    "GET /4 HTTP/1.0\r\n" ADDED "\r\n";

	assert_every_split(in, want);
}

Test(httpid, chunked_bodies_are_framed_again)
{
	/* Leading zeros, extensions, LF-only lines and trailers: the app gets
	 * one plain form of the same body. */
	const char *in = "POST /c HTTP/1.1\r\nHost: a\r\n"
	                 "Transfer-Encoding: Chunked\r\n\r\n"
	                 "0003;ext=1\r\nabc\r\n"
	                 "A\r\nhellohello\r\n"
	                 "0\r\nTrailer-X: 1\r\nX-Peer-Id: evil\r\n\r\n"
	                 "GET /after HTTP/1.1\r\nHost: a\r\n\r\n";
	const char *want = "POST /c HTTP/1.1\r\nHost: a\r\n"
	                   "Transfer-Encoding: Chunked\r\n" ADDED "\r\n"
	                   "3\r\nabc\r\na\r\nhellohello\r\n0\r\n\r\n"
	                   "GET /after HTTP/1.1\r\nHost: a\r\n" ADDED "\r\n";

	assert_every_split(in, want);
}

Test(httpid, a_large_body_streams_through_small_buffers)
{
	size_t body = 100000, n;
	char *in = malloc(body + 200), *want = malloc(body + 600);
	struct result res;

	n = (size_t)sprintf(
	    in, "POST /big HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", body);
	for (size_t i = 0; i < body; i++)
		in[n + i] = (char)('a' + i % 26);
	sprintf(want,
	        "POST /big HTTP/1.1\r\nContent-Length: %zu\r\n" ADDED "\r\n",
	        body);
	memcpy(want + strlen(want), in + n, body);
	res = drive_cuts(in, n + body, NULL, 0, 1000);
	cr_assert_eq(res.rc, 0);
	cr_assert_eq(res.len, strlen("POST /big HTTP/1.1\r\nContent-Length: "
	                             "100000\r\n" ADDED "\r\n") +
	                          body);
	cr_assert(memcmp(res.out, want, res.len) == 0);
	free(res.out);
	free(in);
	free(want);
}

Test(httpid, many_small_requests_in_one_read_wait_for_output_room)
{
	char in[8000] = "", want[60000] = "";
	struct result res;

	for (int i = 0; i < 200; i++) {
		sprintf(in + strlen(in), "GET /%d HTTP/1.1\r\n\r\n", i);
		sprintf(want + strlen(want),
		        "GET /%d HTTP/1.1\r\n" ADDED "\r\n", i);
	}
	res = drive_cuts(in, strlen(in), NULL, 0, 16384);
	cr_assert_eq(res.rc, 0);
	cr_assert_str_eq(res.out, want);
	free(res.out);
}

Test(httpid, expect_100_continue_head_goes_out_before_the_body)
{
	const char *head = "PUT /up HTTP/1.1\r\nHost: a\r\n"
	                   "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n";
	struct pp_httpid r;
	uint8_t out[16384];
	size_t used, made;

	pp_httpid_init(&r, &ids);
	cr_assert_eq(pp_httpid_feed(&r, (const uint8_t *)head, strlen(head),
	                            &used, out, sizeof(out), &made),
	             0);
	cr_assert_eq(used, strlen(head));
	out[made] = '\0';
	cr_assert_str_eq((char *)out,
	                 "PUT /up HTTP/1.1\r\nHost: a\r\n"
	                 "Expect: 100-continue\r\nContent-Length: 4\r\n" ADDED
	                 "\r\n",
	                 "the app must see the head to answer 100 Continue");
	cr_assert_eq(pp_httpid_feed(&r, (const uint8_t *)"data", 4, &used, out,
	                            sizeof(out), &made),
	             0);
	cr_assert_eq(made, 4);
	cr_assert(memcmp(out, "data", 4) == 0);
}

Test(httpid, spoofed_identity_headers_are_removed)
{
	struct result res = drive_s(
	    "GET / HTTP/1.1\r\nHost: a\r\n"
	    "X-Peer-Id: ffffffff\r\nx-peer-id: eeeeeeee\r\nX_PEER_ID: dd\r\n"
	    "X-PEER-ID: cc\r\nx-forwarded-client-cert: Hash=bad\r\n"
	    "X_Forwarded_Client_Cert: Hash=bad2\r\n"
	    "X-Forwarded-Proto: http\r\nX-Other: keep\r\n\r\n");

	cr_assert_eq(res.rc, 0);
	cr_assert_str_eq(res.out, "GET / HTTP/1.1\r\nHost: a\r\n"
	                          "X-Other: keep\r\n" ADDED "\r\n");
	cr_assert_eq(count(res.out, "ffffffff") + count(res.out, "eeeeeeee") +
	                 count(res.out, "bad"),
	             0);
	free(res.out);
}

Test(httpid, spoofing_on_every_keep_alive_request)
{
	char in[4096] = "";
	struct result res;

	for (int i = 0; i < 5; i++)
		strcat(in, "GET / HTTP/1.1\r\nX-Peer-Id: spoof\r\n\r\n");
	res = drive_s(in);
	cr_assert_eq(res.rc, 0);
	cr_assert_eq(count(res.out, "X-Peer-Id: 1234abcd\r\n"), 5);
	cr_assert_eq(count(res.out, "spoof"), 0);
	free(res.out);
}

Test(httpid, forwarded_for_is_appended_to)
{
	struct result res =
	    drive_s("GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\n"
	            "x-forwarded-for: 10.0.0.2, 10.0.0.3\r\n\r\n");

	cr_assert_eq(res.rc, 0);
	cr_assert_str_eq(res.out,
	                 "GET / HTTP/1.1\r\n"
	                 "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, "
	                 "192.0.2.7\r\n"
	                 "X-Forwarded-Proto: https\r\nX-Peer-Id: 1234abcd\r\n"
	                 "X-Forwarded-Client-Cert: Hash=00ff;Subject=\"O=Test\""
	                 "\r\n\r\n");
	free(res.out);
}

Test(httpid, no_peer_id_no_header_but_spoofs_still_go)
{
	static const struct pp_httpid_ids none = {NULL, NULL, NULL};
	struct pp_httpid r;
	const char *in = "GET / HTTP/1.1\r\nX-Peer-Id: spoof\r\n\r\n";
	uint8_t out[1024];
	size_t used, made;

	pp_httpid_init(&r, &none);
	cr_assert_eq(pp_httpid_feed(&r, (const uint8_t *)in, strlen(in), &used,
	                            out, sizeof(out), &made),
	             0);
	out[made] = '\0';
	cr_assert_str_eq((char *)out,
	                 "GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\n\r\n");
}

/* ---- smuggling and bad HTTP ---- */

Test(httpid, content_length_and_transfer_encoding)
{
	assert_refused("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	               "CL.TE");
	assert_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	               "Content-Length: 5\r\n\r\n0\r\n\r\n",
	               "TE.CL");
}

Test(httpid, two_content_lengths)
{
	assert_refused("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	               "Content-Length: 6\r\n\r\nhello!",
	               "different");
	assert_refused("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	               "content-length: 5\r\n\r\nhello",
	               "equal");
	assert_refused("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello",
	               "a list");
}

Test(httpid, transfer_encodings_other_than_chunked)
{
	assert_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, "
	               "identity\r\n\r\n0\r\n\r\n",
	               "list");
	assert_refused("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
	               "xchunked");
	assert_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	               "twice");
	assert_refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
	               "0\r\n\r\n",
	               "HTTP/1.0");
	assert_refused("POST / HTTP/1.1\r\nTransfer_Encoding: chunked\r\n"
	               "Content-Length: 3\r\n\r\nabc",
	               "underscore");
}

Test(httpid, obsolete_line_folding)
{
	assert_refused("GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", "SP");
	assert_refused("GET / HTTP/1.1\r\nX-A: 1\r\n\tfolded\r\n\r\n", "HTAB");
	assert_refused("POST / HTTP/1.1\r\nContent-Length: 1\r\n 0\r\n\r\n"
	               "0123456789",
	               "folded Content-Length");
}

Test(httpid, bad_chunk_sizes)
{
	assert_body_refused(
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "zz\r\nab\r\n0\r\n\r\n",
	    "not hex");
	assert_body_refused(
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "fffffffffffffffffff\r\n",
	    "overflow");
	assert_body_refused(
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "-1\r\n",
	    "negative");
}

Test(httpid, the_bad_request_reaches_nothing_but_earlier_ones_do)
{
	struct result res =
	    drive_s("GET /ok HTTP/1.1\r\n\r\n"
	            "POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled "
	            "HTTP/1.1\r\n\r\n");

	cr_assert_eq(res.rc, -1);
	cr_assert_str_eq(res.out, "GET /ok HTTP/1.1\r\n" ADDED "\r\n");
	free(res.out);
}

Test(httpid, oversized_heads)
{
	char *in = malloc(PP_HTTPID_HEAD_MAX + 100);
	char *many = malloc(PP_HTTPID_HEADERS_MAX * 16 + 100);

	strcpy(in, "GET / HTTP/1.1\r\nX-Big: ");
	memset(in + strlen(in), 'a', PP_HTTPID_HEAD_MAX);
	strcpy(in + strlen("GET / HTTP/1.1\r\nX-Big: ") + PP_HTTPID_HEAD_MAX,
	       "\r\n\r\n");
	assert_refused(in, "one long header");
	strcpy(many, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= PP_HTTPID_HEADERS_MAX; i++)
		sprintf(many + strlen(many), "X-H%d: v\r\n", i);
	strcat(many, "\r\n");
	assert_refused(many, "too many headers");
	free(in);
	free(many);
}

Test(httpid, invalid_syntax_and_control_bytes)
{
	assert_refused("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", "space");
	assert_refused("GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n", "control");
	assert_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host");
	assert_refused("NOTHTTP\r\n\r\n", "garbage");
	assert_refused("GET / HTTP/1.1\r\n: novalue\r\n\r\n", "empty name");
}

Test(httpid, versions_and_connect_bodies)
{
	assert_refused("GET /\r\nHost: a\r\n\r\n", "HTTP/0.9 with headers");
	assert_refused("GET / HTTP/2.0\r\n\r\n", "2.0");
	assert_refused(
	    "CONNECT a:1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\n\r\n",
	    "CONNECT with chunked");
	assert_refused("CONNECT a:1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	               "CONNECT with Content-Length");
}

Test(httpid, refusal_is_final)
{
	struct pp_httpid r;
	uint8_t out[256];
	size_t used, made;

	pp_httpid_init(&r, &ids);
	cr_assert_eq(pp_httpid_feed(&r, (const uint8_t *)"BAD\r\n\r\n", 7,
	                            &used, out, sizeof(out), &made),
	             -1);
	cr_assert_eq(pp_httpid_feed(&r,
	                            (const uint8_t *)"GET / HTTP/1.1\r\n\r\n",
	                            18, &used, out, sizeof(out), &made),
	             -1);
	cr_assert_eq(made, 0);
}

/* ---- switching to a raw tunnel ---- */

Test(httpid, upgrade_switches_to_raw)
{
	const char *in =
	    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\nX-Peer-Id: spoof\r\n\r\n"
	    "\x81\x05hello GET / HTTP/1.1\r\nX-Peer-Id: raw\r\n\r\n";
	const char *want =
	    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\n" ADDED "\r\n"
	    "\x81\x05hello GET / HTTP/1.1\r\nX-Peer-Id: raw\r\n\r\n";

	assert_every_split(in, want);
}

Test(httpid, connect_switches_to_raw)
{
	const char *in = "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n"
	                 "\x00\x01raw bytes\r\n\r\n";
	const char *want = "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n" ADDED
	                   "\r\n\x00\x01raw bytes\r\n\r\n";
	size_t inlen =
	    strlen("CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n") + 2 +
	    strlen("raw bytes\r\n\r\n");
	struct result res = drive(in, inlen);

	cr_assert_eq(res.rc, 0);
	cr_assert_eq(res.len, strlen(want) + 2 + strlen("raw bytes\r\n\r\n"));
	cr_assert(memcmp(res.out, want, strlen(want)) == 0);
	cr_assert(memcmp(res.out + strlen(want), "\x00\x01raw bytes\r\n\r\n",
	                 res.len - strlen(want)) == 0);
	free(res.out);
}

Test(httpid, upgrade_header_without_connection_upgrade_stays_http)
{
	struct result res =
	    drive_s("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
	            "GET /2 HTTP/1.1\r\nX-Peer-Id: s\r\n\r\n");

	cr_assert_eq(res.rc, 0);
	cr_assert_eq(count(res.out, "X-Peer-Id: 1234abcd"), 2);
	cr_assert_eq(count(res.out, "X-Peer-Id: s\r\n"), 0);
	free(res.out);
}
