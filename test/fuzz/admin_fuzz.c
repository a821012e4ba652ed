/*
 * libFuzzer harness for the admin endpoint's request reader
 * (proxy/ops/adminreq.c, which proxy/ops/admin.c feeds every read).
 *
 * Input: one byte seeding how the rest is cut into reads, then the bytes
 * a client sends.  Checked:
 * - cut-invariance: whole, byte by byte and in seeded pieces, the same
 *   verdict: more wanted, the same request (method and path), or the
 *   same refusal status;
 * - a refusal is one of the statuses the README documents for a request
 *   (400 malformed, 413 body, 431 head or target), with a reason; the
 *   verdict is sticky;
 * - agreement with a second reader: the method and path of a whole
 *   request are the first word and the target (up to '?') of its request
 *   line, read here without http-parser (HEAD answered as GET), and its
 *   head ends with an empty line.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuts.h"
#include "ops/adminreq.h"

struct outcome {
	int rc;
	int status;
	int head;
	char method[32];
	char path[PP_ADMIN_TARGET_MAX];
};

static struct outcome
feed(const uint8_t *in, size_t len, struct cuts *cuts)
{
	struct pp_admin_parse r;
	struct outcome o;
	size_t off = 0;

	memset(&o, 0, sizeof(o));
	pp_admin_parse_init(&r);
	while (off < len && o.rc == 0) {
		size_t n = cuts_next(cuts, len - off);

		o.rc = pp_admin_parse_request(&r, (const char *)in + off, n);
		off += n;
	}
	if (o.rc != 0 && pp_admin_parse_request(&r, "x", 1) != o.rc)
		abort(); /* not sticky */
	if (o.rc == -1) {
		o.status = r.status;
		if ((o.status != 400 && o.status != 413 && o.status != 431) ||
		    r.error[0] == '\0')
			abort();
	} else if (r.status != 0) {
		abort();
	}
	if (o.rc == 1) {
		const char *m = pp_admin_parse_method(&r);
		const char *p = pp_admin_parse_path(&r);

		if (m == NULL || strlen(m) >= sizeof(o.method) ||
		    strlen(p) >= sizeof(o.path))
			abort();
		strcpy(o.method, m);
		strcpy(o.path, p);
		o.head = pp_admin_parse_head(&r);
	}
	return (o);
}

static void
same(const struct outcome *a, const struct outcome *b)
{
	if (a->rc != b->rc || a->status != b->status || a->head != b->head ||
	    strcmp(a->method, b->method) != 0 || strcmp(a->path, b->path) != 0)
		abort();
}

/* The second reader: the request line of a whole request, and the empty
 * line that ends its head. */
static void
check_line(const uint8_t *in, size_t len, const struct outcome *o)
{
	size_t i = 0, m, t, e;

	while (i < len && (in[i] == '\r' || in[i] == '\n'))
		i++;
	for (e = i; e + 1 < len; e++)
		if (in[e] == '\n' &&
		    (in[e + 1] == '\n' ||
		     (in[e + 1] == '\r' && e + 2 < len && in[e + 2] == '\n')))
			break;
	if (e + 1 >= len)
		abort(); /* whole, without an empty line */
	for (m = i; m < len && in[m] != ' ';)
		m++;
	if (o->head) {
		if (m - i != 4 || memcmp(in + i, "HEAD", 4) != 0 ||
		    strcmp(o->method, "GET") != 0)
			abort();
	} else if (m - i != strlen(o->method) ||
	           memcmp(in + i, o->method, m - i) != 0) {
		abort();
	}
	for (i = m; i < len && in[i] == ' ';)
		i++;
	for (t = i; t < len && in[t] != ' ' && in[t] != '\r' && in[t] != '\n' &&
	            in[t] != '?';)
		t++;
	if (t - i != strlen(o->path) || memcmp(in + i, o->path, t - i) != 0)
		abort();
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
		check_line(data + 1, size - 1, &whole);
	return (0);
}
