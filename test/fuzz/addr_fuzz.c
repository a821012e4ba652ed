/*
 * libFuzzer harness for addresses (proxy/net/addr.c) and durations
 * (proxy/util/duration.c), the two value syntaxes every flag and file
 * shares.
 *
 * Input: one byte choosing the target, then its text (up to the first
 * NUL) or, for socket addresses, raw bytes.  Checked:
 * - addresses ("host:port", "[v6]:port", "unix:/path"): agreement with a
 *   second reader written here (which reads the same grammar from the
 *   other end); parse -> pp_addr_format -> parse gives the same address,
 *   and the text fits the buffers callers format into; an IP literal
 *   goes to a sockaddr (pp_addr_literal) and back through
 *   pp_sockaddr_format and pp_addr_parse to the same bytes;
 * - socket addresses as the kernel reports them (IPv4, IPv6, unix):
 *   pp_sockaddr_format -> pp_addr_parse -> pp_addr_literal gives them
 *   back;
 * - durations ("500ms", "10s", "2m", "1h", "0"): agreement with a second
 *   reader; parse -> "<ms>ms" -> parse, and parse -> the largest exact
 *   unit -> parse, give the same value.
 */

#include <arpa/inet.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/addr.h"
#include "util/duration.h"

/* What callers format an address into (config.c, runtime.c, tunnel.c). */
#define FORMAT_MAX (PP_HOST_MAX + 16)

/* ---- the second address reader -------------------------------------- */

static int
ref_port(const char *s, uint16_t *out)
{
	size_t n = strlen(s);
	unsigned long v = 0;

	if (n < 1 || n > 5 || strspn(s, "0123456789") != n)
		return (-1);
	v = strtoul(s, NULL, 10);
	if (v < 1 || v > 65535)
		return (-1);
	*out = (uint16_t)v;
	return (0);
}

/* Read ${s} as an address without pp_addr_parse: 0 with ${a} filled, or
 * -1. */
static int
ref_addr(const char *s, struct pp_addr *a)
{
	static const char host_chars[] = "abcdefghijklmnopqrstuvwxyz"
	                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                 "0123456789-._";
	const char *colon;
	unsigned char buf[16];
	size_t hlen;

	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] == '\0' || strlen(s + 5) >= sizeof(a->path))
			return (-1);
		a->kind = PP_ADDR_UNIX;
		memcpy(a->path, s + 5, strlen(s + 5) + 1);
		return (0);
	}
	a->kind = PP_ADDR_TCP;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return (-1);
		hlen = (size_t)(close - s) - 1;
		if (hlen == 0 || hlen >= sizeof(a->host))
			return (-1);
		memcpy(a->host, s + 1, hlen);
		if (inet_pton(AF_INET6, a->host, buf) != 1)
			return (-1);
		return (ref_port(close + 2, &a->port));
	}
	/* host:port: the host is everything before the one colon. */
	if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':'))
		return (-1);
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen >= sizeof(a->host) ||
	    strspn(s, host_chars) != hlen)
		return (-1);
	memcpy(a->host, s, hlen);
	return (ref_port(colon + 1, &a->port));
}

/* Two literals are the same socket address. */
static int
same_sockaddr(const struct sockaddr_storage *a, socklen_t alen,
              const struct sockaddr_storage *b, socklen_t blen)
{
	if (a->ss_family != b->ss_family || alen != blen)
		return (0);
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a,
		                         *y = (const void *)b;
		return (x->sin_port == y->sin_port &&
		        x->sin_addr.s_addr == y->sin_addr.s_addr);
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a,
		                          *y = (const void *)b;
		return (x->sin6_port == y->sin6_port &&
		        memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0);
	}
	return (strcmp(((const struct sockaddr_un *)a)->sun_path,
	               ((const struct sockaddr_un *)b)->sun_path) == 0);
}

/* A literal ${a} through the kernel's form and back. */
static void
literal_round_trip(const struct pp_addr *a)
{
	struct sockaddr_storage ss, ss2;
	socklen_t len, len2;
	struct pp_addr back;
	char text[FORMAT_MAX], err[160];
	int lit = pp_addr_literal(a, &ss, &len);

	if (a->kind == PP_ADDR_TCP && lit != (pp_addr_is_ip(a->host) ? 0 : 1))
		abort();
	if (lit != 0)
		return;
	pp_sockaddr_format((struct sockaddr *)&ss, len, text, sizeof(text));
	if (pp_addr_parse(text, &back, err, sizeof(err)) != 0 ||
	    pp_addr_literal(&back, &ss2, &len2) != 0 ||
	    !same_sockaddr(&ss, len, &ss2, len2))
		abort();
}

static void
fuzz_addr(const char *s)
{
	struct pp_addr a, b, ref;
	char text[1024], err[160];
	int rc = pp_addr_parse(s, &a, err, sizeof(err));

	if (rc != ref_addr(s, &ref))
		abort(); /* the two readers disagree on the verdict */
	if (rc != 0) {
		if (err[0] == '\0')
			abort(); /* a refusal says why */
		return;
	}
	if (memcmp(&a, &ref, sizeof(a)) != 0)
		abort(); /* ... or on the address */
	pp_addr_format(&a, text, sizeof(text));
	if (strlen(text) >= FORMAT_MAX)
		abort(); /* callers' buffers would cut it */
	if (pp_addr_parse(text, &b, err, sizeof(err)) != 0 ||
	    memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	literal_round_trip(&a);
}

/* Raw bytes as a socket address the kernel could report. */
static void
fuzz_sockaddr(const uint8_t *d, size_t n)
{
	struct sockaddr_storage ss, lit;
	struct pp_addr a;
	socklen_t len, litlen;
	char text[FORMAT_MAX], err[160];

	memset(&ss, 0, sizeof(ss));
	if (n < 1)
		return;
	switch (d[0] % 3) {
	case 0: {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;
		if (n < 7)
			return;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, d + 1, 4);
		memcpy(&s->sin_port, d + 5, 2);
		len = sizeof(*s);
		break;
	}
	case 1: {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		if (n < 19)
			return;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, d + 1, 16);
		memcpy(&s->sin6_port, d + 17, 2);
		len = sizeof(*s);
		break;
	}
	default: {
		struct sockaddr_un *s = (struct sockaddr_un *)&ss;
		size_t k = n - 1 < sizeof(s->sun_path) - 1
		               ? n - 1
		               : sizeof(s->sun_path) - 1;
		s->sun_family = AF_UNIX;
		memcpy(s->sun_path, d + 1, k);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + k);
		break;
	}
	}
	pp_sockaddr_format((struct sockaddr *)&ss, len, text, sizeof(text));
	if (pp_addr_parse(text, &a, err, sizeof(err)) != 0) {
		/* Only a port 0 or an unnamed unix socket has no address. */
		if (ss.ss_family == AF_UNIX
		        ? ((struct sockaddr_un *)&ss)->sun_path[0] != '\0'
		        : ((struct sockaddr_in *)&ss)->sin_port != 0)
			abort();
		return;
	}
	if (pp_addr_literal(&a, &lit, &litlen) != 0)
		abort();
	if (ss.ss_family == AF_UNIX) {
		if (strcmp(((struct sockaddr_un *)&lit)->sun_path,
		           ((struct sockaddr_un *)&ss)->sun_path) != 0)
			abort();
	} else if (!same_sockaddr(&ss, len, &lit, litlen)) {
		abort();
	}
}

/* ---- durations ------------------------------------------------------ */

#define MAX_MS (30ULL * 24 * 3600 * 1000)

/* The second duration reader. */
static int
ref_duration(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	size_t digits = strspn(s, "0123456789");
	uint64_t n = 0;

	if (digits == 0)
		return (-1);
	/* Leading zeros do not count towards the size of the number. */
	for (size_t i = 0; i < digits; i++) {
		if (n > MAX_MS)
			return (-1);
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	if (s[digits] == '\0')
		return (n == 0 ? (*out = 0, 0) : -1);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + digits, units[i].suffix) == 0) {
			if (n > MAX_MS / units[i].ms)
				return (-1);
			*out = n * units[i].ms;
			return (0);
		}
	}
	return (-1);
}

static void
fuzz_duration(const char *s)
{
	uint64_t ms = 0, ref = 0, again = 0;
	char text[64];
	int rc = pp_duration_parse(s, &ms);

	if (rc != ref_duration(s, &ref) || (rc == 0 && ms != ref))
		abort();
	if (rc != 0)
		return;
	snprintf(text, sizeof(text), "%" PRIu64 "ms", ms);
	if (pp_duration_parse(text, &again) != 0 || again != ms)
		abort();
	if (ms % 3600000 == 0)
		snprintf(text, sizeof(text), "%" PRIu64 "h", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(text, sizeof(text), "%" PRIu64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(text, sizeof(text), "%" PRIu64 "s", ms / 1000);
	if (pp_duration_parse(text, &again) != 0 || again != ms)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return (0);
	if (data[0] % 4 == 3) {
		fuzz_sockaddr(data + 1, size - 1);
		return (0);
	}
	if ((s = malloc(size)) == NULL)
		abort();
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (data[0] % 4 == 2)
		fuzz_duration(s);
	else
		fuzz_addr(s);
	free(s);
	return (0);
}
