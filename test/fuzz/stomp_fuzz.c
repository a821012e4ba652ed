/*
 * libFuzzer harness for the stomp.toml servers reader
 * (proxy/config/stomp.c).
 *
 * Input: a whole nodeinfo/stomp.toml.  Checked:
 * - a refusal names the file and a line that exists ("stomp.toml:N: ..."
 *   with N at most the file's line count, or "stomp.toml: ..." for the
 *   whole file); an answer is a non-empty list of TCP addresses;
 * - round trip: the list written out again as servers = [...] reads back
 *   to the same list;
 * - agreement with a second reader written here for a plain subset of
 *   TOML (comment and blank lines, bare keys, servers = [...] over any
 *   number of lines with basic and literal strings without escapes, other
 *   keys with a string or a number): wherever that reader has an answer,
 *   both accept the same list or both refuse.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/stomp.h"

#define NAME      "stomp.toml"
#define ENTRY_MAX (PP_HOST_MAX + 16) /* as the reader's entry buffer */
#define REF_MAX   64

/* ---- the second reader ------------------------------------------------ */

enum { REF_REFUSED = 0, REF_ACCEPTED = 1, REF_UNKNOWN = -1 };

struct ref {
	const unsigned char *s;
	size_t i, n;
	struct pp_addr list[REF_MAX];
	size_t count;
};

static int
ref_at(const struct ref *r, char ch)
{
	return (r->i < r->n && r->s[r->i] == ch);
}

static void
ref_blank(struct ref *r)
{
	while (ref_at(r, ' ') || ref_at(r, '\t'))
		r->i++;
}

/* A comment, then the end of the line: 1 if one was there, 0 if not,
 * REF_UNKNOWN at a lone carriage return. */
static int
ref_eol(struct ref *r)
{
	if (ref_at(r, '#'))
		while (r->i < r->n && r->s[r->i] != '\n')
			r->i++;
	if (r->i == r->n)
		return (1);
	if (ref_at(r, '\n')) {
		r->i++;
		return (1);
	}
	if (ref_at(r, '\r'))
		return (r->i + 1 < r->n && r->s[r->i + 1] == '\n'
		            ? (r->i += 2, 1)
		            : REF_UNKNOWN);
	return (0);
}

/* A one-line string without escapes into ${out} (NULL: skipped). */
static int
ref_string(struct ref *r, char *out, size_t *len)
{
	unsigned char q = r->s[r->i];

	if (r->i + 2 < r->n && r->s[r->i + 1] == q && r->s[r->i + 2] == q)
		return (REF_UNKNOWN); /* multi-line */
	r->i++;
	*len = 0;
	for (;;) {
		unsigned char ch;

		if (r->i == r->n)
			return (REF_REFUSED);
		ch = r->s[r->i++];
		if (ch == q)
			return (REF_ACCEPTED);
		if (ch == '\\' || ch == '\r')
			return (REF_UNKNOWN);
		if (ch == '\n' || (ch < 0x20 && ch != '\t'))
			return (REF_REFUSED);
		if (out != NULL) {
			if (*len + 1 >= ENTRY_MAX)
				return (REF_REFUSED);
			out[(*len)++] = (char)ch;
			out[*len] = '\0';
		}
	}
}

static int
ref_servers(struct ref *r)
{
	char entry[ENTRY_MAX], why[160];
	size_t len;
	int rc;

	if (!ref_at(r, '['))
		return (REF_REFUSED);
	r->i++;
	for (;;) {
		for (;;) { /* blanks, comments and line ends */
			ref_blank(r);
			if (r->i == r->n)
				return (REF_REFUSED);
			if (!ref_at(r, '#') && !ref_at(r, '\n') &&
			    !ref_at(r, '\r'))
				break;
			if ((rc = ref_eol(r)) != 1)
				return (rc == 0 ? REF_REFUSED : rc);
		}
		if (ref_at(r, ']')) {
			r->i++;
			return (REF_ACCEPTED);
		}
		if (!ref_at(r, '"') && !ref_at(r, '\''))
			return (REF_REFUSED);
		entry[0] = '\0';
		if ((rc = ref_string(r, entry, &len)) != REF_ACCEPTED)
			return (rc);
		if (r->count == REF_MAX)
			return (REF_UNKNOWN);
		if (pp_addr_parse(entry, &r->list[r->count], why,
		                  sizeof(why)) != 0 ||
		    r->list[r->count].kind != PP_ADDR_TCP)
			return (REF_REFUSED);
		r->count++;
		for (;;) {
			ref_blank(r);
			if (!ref_at(r, '#') && !ref_at(r, '\n') &&
			    !ref_at(r, '\r'))
				break;
			if (r->i == r->n)
				break;
			if ((rc = ref_eol(r)) != 1)
				return (rc == 0 ? REF_REFUSED : rc);
		}
		if (ref_at(r, ','))
			r->i++;
		else if (!ref_at(r, ']'))
			return (REF_REFUSED);
	}
}

static int
ref_read(struct ref *r)
{
	int seen = 0, rc;

	if (memchr(r->s, '\0', r->n) != NULL)
		return (REF_REFUSED);
	for (;;) {
		size_t k;

		ref_blank(r);
		if (r->i == r->n)
			break;
		if ((rc = ref_eol(r)) == 1)
			continue;
		if (rc != 0)
			return (rc);
		for (k = r->i; k < r->n && (strchr("abcdefghijklmnopqrstuvwxyz"
		                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                                   "0123456789_-",
		                                   r->s[k]) != NULL &&
		                            r->s[k] != '\0');)
			k++;
		if (k == r->i)
			return (REF_UNKNOWN); /* tables, quoted keys, ... */
		if (k - r->i == 7 && memcmp(r->s + r->i, "servers", 7) == 0) {
			r->i = k;
			ref_blank(r);
			if (!ref_at(r, '='))
				return (REF_UNKNOWN);
			r->i++;
			ref_blank(r);
			if (seen)
				return (REF_REFUSED);
			seen = 1;
			if ((rc = ref_servers(r)) != REF_ACCEPTED)
				return (rc);
		} else {
			size_t len;

			r->i = k;
			ref_blank(r);
			if (!ref_at(r, '='))
				return (REF_UNKNOWN);
			r->i++;
			ref_blank(r);
			if (ref_at(r, '"') || ref_at(r, '\'')) {
				if ((rc = ref_string(r, NULL, &len)) !=
				    REF_ACCEPTED)
					return (rc);
			} else {
				size_t d = r->i;
				while (r->i < r->n && r->s[r->i] >= '0' &&
				       r->s[r->i] <= '9')
					r->i++;
				if (r->i == d)
					return (REF_UNKNOWN);
				/* A number ends the value only before a
				 * blank, a comment or the line's end. */
				if (r->i < r->n &&
				    strchr(" \t#\r\n", r->s[r->i]) == NULL)
					return (REF_UNKNOWN);
				if (ref_at(r, ' ') && r->i + 1 < r->n &&
				    r->s[r->i + 1] >= '0' &&
				    r->s[r->i + 1] <= '9')
					return (REF_UNKNOWN); /* a date */
			}
		}
		ref_blank(r);
		if ((rc = ref_eol(r)) != 1)
			return (rc == 0 ? REF_REFUSED : rc);
	}
	return (seen && r->count > 0 ? REF_ACCEPTED : REF_REFUSED);
}

/* ---- the checks ------------------------------------------------------- */

/* "stomp.toml:N: why" with 1 <= N <= lines, or "stomp.toml: why". */
static void
check_error(const char *err, const uint8_t *data, size_t size)
{
	const size_t nl = strlen(NAME);
	unsigned long line, lines = 1;
	char *end;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (strncmp(err, NAME ":", nl + 1) != 0)
		abort();
	if (err[nl + 1] == ' ')
		return;
	line = strtoul(err + nl + 1, &end, 10);
	if (end == err + nl + 1 || strncmp(end, ": ", 2) != 0 || line < 1 ||
	    line > lines)
		abort();
}

static void
round_trip(const struct pp_addr *list, size_t n)
{
	char *text = malloc(n * (ENTRY_MAX + 4) + 32), err[512];
	struct pp_addr *again;
	size_t len = 0, m;

	if (text == NULL)
		abort();
	len += (size_t)sprintf(text, "servers = [");
	for (size_t i = 0; i < n; i++) {
		char a[ENTRY_MAX];

		pp_addr_format(&list[i], a, sizeof(a));
		len +=
		    (size_t)sprintf(text + len, "%s\"%s\"", i ? ", " : "", a);
	}
	len += (size_t)sprintf(text + len, "]\n");
	if (pp_stomp_servers_parse(text, len, NAME, &again, &m, err,
	                           sizeof(err)) != 0 ||
	    m != n || memcmp(again, list, n * sizeof(*list)) != 0)
		abort();
	free(again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ref *ref = calloc(1, sizeof(*ref));
	struct pp_addr *list = NULL;
	char err[512] = "";
	size_t n = 99;
	int rc, want;

	if (ref == NULL)
		abort();
	rc = pp_stomp_servers_parse((const char *)data, size, NAME, &list, &n,
	                            err, sizeof(err));
	if (rc != 0) {
		if (list != NULL || n != 0)
			abort();
		check_error(err, data, size);
	} else {
		if (list == NULL || n == 0)
			abort();
		for (size_t i = 0; i < n; i++)
			if (list[i].kind != PP_ADDR_TCP || list[i].port == 0 ||
			    list[i].host[0] == '\0')
				abort();
		round_trip(list, n);
	}
	ref->s = data;
	ref->n = size;
	want = ref_read(ref);
	if (want != REF_UNKNOWN) {
		if ((want == REF_ACCEPTED) != (rc == 0))
			abort(); /* the two readers disagree */
		if (rc == 0 &&
		    (n != ref->count ||
		     memcmp(list, ref->list, n * sizeof(*list)) != 0))
			abort();
	}
	free(list);
	free(ref);
	return (0);
}
