/*
 * libFuzzer harness for the HTTP identity rewriter.
 *
 * Input: one byte choosing how the rest is cut into reads and how small
 * the output buffers are, then the bytes a caller sends.  Checked:
 * - no read or write outside the buffers (ASan, with exact-size buffers);
 * - progress: every call takes input or makes output until it fails;
 * - the same output and verdict however the input is cut;
 * - what the app gets is a fixed point: rewriting it again changes nothing
 *   (two parsers agree on where every request ends), unless the written
 *   out head outgrew the limit on heads (it may grow: identity headers,
 *   CRLF for LF).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/httpid.h"

static const struct pp_httpid_ids ids = {
    .peer_id = "1234abcd",
    .xfcc = "Hash=00;Subject=\"O=Fuzz\"",
    .client_ip = NULL, /* so that a second pass adds nothing new */
};

struct out {
	uint8_t *p;
	size_t len;
	int rc;
	const char *error;
};

/* Run ${in} through a fresh rewriter in reads of ${step} bytes (0: one
 * read) with output buffers of ${cap} bytes. */
static struct out
run(const uint8_t *in, size_t len, size_t step, size_t cap)
{
	struct pp_httpid *r = malloc(sizeof(*r));
	uint8_t *buf = malloc(cap);
	struct out o = {malloc(len * 2 + 65536), 0, 0, NULL};
	size_t off = 0, o_cap = len * 2 + 65536;

	if (r == NULL || buf == NULL || o.p == NULL)
		abort();
	pp_httpid_init(r, &ids);
	while (o.rc == 0 && (off < len || pp_httpid_pending(r))) {
		size_t end = step == 0 || len - off < step ? len : off + step;
		size_t used, made;

		o.rc = pp_httpid_feed(r, in + off, end - off, &used, buf, cap,
		                      &made);
		if (used > end - off || made > cap)
			abort();
		if (o.rc == 0 && used == 0 && made == 0)
			abort(); /* stalled */
		if (o.len + made > o_cap) {
			o_cap = (o.len + made) * 2;
			if ((o.p = realloc(o.p, o_cap)) == NULL)
				abort();
		}
		memcpy(o.p + o.len, buf, made);
		o.len += made;
		off += used;
	}
	if (o.rc != 0 && (o.error = pp_httpid_error(r)) == NULL)
		abort();
	free(buf);
	free(r);
	return (o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 1000};
	struct out whole, cut, again;
	size_t step;

	if (size < 1)
		return (0);
	step = steps[data[0] % 6];
	data++;
	size--;
	whole = run(data, size, 0, 16384);
	cut = run(data, size, step, 16384);
	if (whole.rc != cut.rc || whole.len != cut.len ||
	    memcmp(whole.p, cut.p, whole.len) != 0)
		abort(); /* the cuts changed the outcome */
	if (whole.rc == 0) {
		again = run(whole.p, whole.len, 0, 16384);
		if (again.rc != 0 &&
		    strcmp(again.error, "request head too large") == 0) {
			/* grown past the limit: what came before agrees */
			if (again.len > whole.len ||
			    memcmp(again.p, whole.p, again.len) != 0)
				abort();
		} else if (again.rc != 0 || again.len != whole.len ||
		           memcmp(again.p, whole.p, whole.len) != 0) {
			abort(); /* the app would read it differently */
		}
		free(again.p);
	}
	free(whole.p);
	free(cut.p);
	return (0);
}
