/*
 * libFuzzer harness for the CONNECT parser of node data mode
 * (proxy/identity/connect.c).
 *
 * Input: one byte seeding how the rest is cut into reads, then the bytes
 * an app sends to connect_listen.  Checked:
 * - cut-invariance: whole, byte by byte and in seeded pieces, the parser
 *   gives the same answer, consumes the same number of bytes and finds
 *   the same peer (pp_connect_feed's contract);
 * - while it answers 0 it takes every byte it is given; once it has
 *   answered 1 or -1 it answers the same again and takes nothing; a head
 *   is never longer than PP_CONNECT_HEAD_MAX bytes;
 * - agreement with a second reader: a complete head ends with a line feed
 *   and its target is the word after "CONNECT" on the request line, read
 *   here without http-parser; the peer id is that target up to a ":port"
 *   of digits.
 * The input the fuzzer found first (a second request in the same
 * read slipped past the parser) is regressions/connect/issue-13.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuts.h"
#include "identity/connect.h"

struct outcome {
	int rc;
	size_t total; /* bytes consumed in all */
	int peer_rc;  /* pp_connect_peer on a complete head, else 2 */
	char peer[300];
	char target[300];
};

static struct outcome
feed(const uint8_t *in, size_t len, struct cuts *cuts)
{
	struct pp_connect_req r;
	struct outcome o = {.peer_rc = 2};
	size_t off = 0, used;

	pp_connect_init(&r);
	while (off < len) {
		size_t n = cuts_next(cuts, len - off);

		o.rc = pp_connect_feed(&r, (const char *)in + off, n, &used);
		if (used > n)
			abort();
		o.total += used;
		off += n;
		if (o.rc != 0)
			break;
		if (used != n)
			abort(); /* 0 means every byte was taken */
	}
	if (o.rc != 0) {
		/* Sticky: the same answer again, nothing taken. */
		used = 1;
		if (pp_connect_feed(&r, "x", 1, &used) != o.rc || used != 0)
			abort();
	}
	if (o.total > PP_CONNECT_HEAD_MAX)
		abort();
	if (o.rc == 1) {
		o.peer_rc = pp_connect_peer(&r, o.peer, sizeof(o.peer));
		memcpy(o.target, r.target, sizeof(o.target));
	}
	return (o);
}

static void
same(const struct outcome *a, const struct outcome *b)
{
	if (a->rc != b->rc || a->total != b->total || a->peer_rc != b->peer_rc)
		abort();
	if (a->rc == 1 && (strcmp(a->target, b->target) != 0 ||
	                   (a->peer_rc == 0 && strcmp(a->peer, b->peer) != 0)))
		abort();
}

/* The second reader: the head of a complete request as read without
 * http-parser. */
static void
check_head(const uint8_t *in, const struct outcome *o)
{
	size_t i = 0, t, n = o->total;

	if (n == 0 || in[n - 1] != '\n')
		abort(); /* a head ends with its empty line */
	while (i < n && (in[i] == '\r' || in[i] == '\n'))
		i++; /* http-parser skips empty lines before a request */
	if (n - i < 8 || memcmp(in + i, "CONNECT ", 8) != 0)
		abort();
	i += 8;
	while (i < n && in[i] == ' ')
		i++;
	for (t = i; t < n && in[t] != ' ' && in[t] != '\r' && in[t] != '\n';)
		t++;
	if (t - i != strlen(o->target) || memcmp(in + i, o->target, t - i))
		abort(); /* the parser routes on another target */
	if (o->peer_rc == 0) {
		size_t p = strlen(o->peer);

		if (p == 0 || o->target[p] != ':' || o->target[p + 1] == '\0')
			abort();
		for (const char *d = o->target + p + 1; *d; d++)
			if (*d < '0' || *d > '9')
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, other;
	struct cuts c;

	if (size < 1)
		return (0);
	cuts_init(&c, CUTS_WHOLE, 0);
	whole = feed(data + 1, size - 1, &c);
	cuts_init(&c, CUTS_BYTES, 0);
	other = feed(data + 1, size - 1, &c);
	same(&whole, &other);
	cuts_init(&c, CUTS_SEEDED, data[0]);
	other = feed(data + 1, size - 1, &c);
	same(&whole, &other);
	if (whole.rc == 1)
		check_head(data + 1, &whole);
	return (0);
}
