/*
 * The HTTP CONNECT request parser of node data mode.
 */

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "identity/connect.h"

static const char req[] = "CONNECT 1234abcd:443 HTTP/1.1\r\n"
                          "Host: 1234abcd:443\r\n"
                          "Proxy-Agent: test\r\n\r\n";

/* Feed ${text} in two parts split at ${cut}; return the feed result and
 * the head length in ${head}. */
static int
feed_split(const char *text, size_t len, size_t cut, size_t *head,
           struct pp_connect_req *r)
{
	size_t used;
	int rc;

	pp_connect_init(r);
	rc = pp_connect_feed(r, text, cut, &used);
	if (rc != 0) {
		*head = used;
		return (rc);
	}
	rc = pp_connect_feed(r, text + cut, len - cut, &used);
	*head = cut + used;
	return (rc);
}

Test(connect, a_request_split_at_every_byte)
{
	char with_data[256];
	size_t n = strlen(req), head;
	struct pp_connect_req r;
	char id[64];

	snprintf(with_data, sizeof(with_data), "%sTUNNEL", req);
	for (size_t cut = 0; cut <= n + 6; cut++) {
		cr_assert_eq(feed_split(with_data, n + 6, cut, &head, &r), 1,
		             "cut at %zu", cut);
		cr_assert_eq(head, n, "the head ends before the data (cut %zu)",
		             cut);
		cr_assert_eq(pp_connect_peer(&r, id, sizeof(id)), 0);
		cr_assert_str_eq(id, "1234abcd");
	}
}

Test(connect, incomplete_heads_want_more)
{
	struct pp_connect_req r;
	size_t used;

	pp_connect_init(&r);
	cr_assert_eq(pp_connect_feed(&r, req, 20, &used), 0);
	cr_assert_eq(used, 20);
}

Test(connect, anything_but_connect_is_refused)
{
	static const char *const bad[] = {
	    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	    "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
	    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	    "CONNECT 1234abcd:443 HTTP/1.1\r\nBad Header\r\n\r\n",
	};
	struct pp_connect_req r;
	size_t used;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pp_connect_init(&r);
		cr_assert_eq(pp_connect_feed(&r, bad[i], strlen(bad[i]), &used),
		             -1, "request %zu", i);
	}
}

Test(connect, targets_must_be_id_and_port)
{
	static const char *const targets[] = {"1234abcd", "1234abcd:", ":443",
	                                      "1234abcd:44x"};
	struct pp_connect_req r;
	char text[128], id[64];
	size_t used;

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		snprintf(text, sizeof(text), "CONNECT %s HTTP/1.1\r\n\r\n",
		         targets[i]);
		pp_connect_init(&r);
		if (pp_connect_feed(&r, text, strlen(text), &used) == 1)
			cr_assert_eq(pp_connect_peer(&r, id, sizeof(id)), -1,
			             "%s", targets[i]);
	}
}

Test(connect, an_overlong_target_is_refused)
{
	char text[1024];
	struct pp_connect_req r;
	size_t used;

	memset(text, 0, sizeof(text));
	strcpy(text, "CONNECT ");
	memset(text + 8, 'a', 600);
	strcat(text, ":1 HTTP/1.1\r\n\r\n");
	pp_connect_init(&r);
	cr_assert_eq(pp_connect_feed(&r, text, strlen(text), &used), -1);
}
