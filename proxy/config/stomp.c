#include "config/stomp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

#define NEST_MAX  32 /* arrays and inline tables inside each other */
#define ENTRY_MAX (PP_HOST_MAX + 16)

/* A reader over the file's bytes; errors name the file and the line. */
struct cur {
	const char *start, *p, *end;
	const char *name;
	char *err;
	size_t errlen;
	char shown[8]; /* show()'s answer */
};

/* The byte at c->p as an error message shows it: 'x', or 0xNN. */
static const char *
show(struct cur *c)
{
	unsigned char ch = (unsigned char)*c->p;

	if (ch > 0x20 && ch < 0x7F)
		snprintf(c->shown, sizeof(c->shown), "'%c'", ch);
	else
		snprintf(c->shown, sizeof(c->shown), "0x%02x", ch);
	return (c->shown);
}

static int fail(struct cur *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record why the file is unreadable, at the line of c->p; return -1. */
static int
fail(struct cur *c, const char *fmt, ...)
{
	char why[200];
	unsigned line = 1;
	va_list ap;

	for (const char *q = c->start; q < c->p && q < c->end; q++)
		line += *q == '\n';
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%u: %s", c->name, line, why);
	return (-1);
}

static int
at(const struct cur *c, char ch)
{
	return (c->p < c->end && *c->p == ch);
}

static int
at_str(const struct cur *c, const char *s)
{
	size_t n = strlen(s);

	return ((size_t)(c->end - c->p) >= n && memcmp(c->p, s, n) == 0);
}

/* Spaces and tabs. */
static void
skip_blank(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* A comment runs to the end of the line (the newline stays). */
static void
skip_comment(struct cur *c)
{
	if (!at(c, '#'))
		return;
	while (c->p < c->end && *c->p != '\n')
		c->p++;
}

/* Blanks, newlines and comments: what may stand between array items. */
static void
skip_space(struct cur *c)
{
	for (;;) {
		skip_blank(c);
		skip_comment(c);
		if (at(c, '\n') || at_str(c, "\r\n"))
			c->p += *c->p == '\r' ? 2 : 1;
		else
			return;
	}
}

/* After a key/value pair or a table header: the end of the line. */
static int
end_of_line(struct cur *c)
{
	skip_blank(c);
	skip_comment(c);
	if (c->p == c->end)
		return (0);
	if (at(c, '\n') || at_str(c, "\r\n")) {
		c->p += *c->p == '\r' ? 2 : 1;
		return (0);
	}
	return (fail(c, "unexpected %s after the value", show(c)));
}

/* Append byte ${b} to ${out} (NULL: a value being skipped). */
static int
put(struct cur *c, char *out, size_t *n, size_t cap, unsigned char b)
{
	if (out == NULL)
		return (0);
	if (*n + 1 >= cap)
		return (fail(c, "a string longer than %zu bytes", cap - 1));
	out[(*n)++] = (char)b;
	return (0);
}

/* The UTF-8 encoding of code point ${u}, appended to ${out}. */
static int
put_utf8(struct cur *c, char *out, size_t *n, size_t cap, unsigned long u)
{
	unsigned char b[4];
	int k;

	if (u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF))
		return (fail(c, "\\u escape for an invalid code point"));
	if (u < 0x80) {
		b[0] = (unsigned char)u;
		k = 1;
	} else if (u < 0x800) {
		b[0] = (unsigned char)(0xC0 | (u >> 6));
		b[1] = (unsigned char)(0x80 | (u & 0x3F));
		k = 2;
	} else if (u < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (u >> 12));
		b[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (u & 0x3F));
		k = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | (u >> 18));
		b[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3F));
		b[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
		b[3] = (unsigned char)(0x80 | (u & 0x3F));
		k = 4;
	}
	for (int i = 0; i < k; i++)
		if (put(c, out, n, cap, b[i]) != 0)
			return (-1);
	return (0);
}

/* One escape after a backslash inside a basic string. */
static int
escape(struct cur *c, char *out, size_t *n, size_t cap)
{
	static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
	const char *hit;
	unsigned long u = 0;
	int digits;

	if (c->p == c->end)
		return (fail(c, "the string is not closed"));
	if ((hit = strchr(from, *c->p)) != NULL && *c->p != '\0') {
		c->p++;
		return (put(c, out, n, cap, (unsigned char)to[hit - from]));
	}
	if (*c->p != 'u' && *c->p != 'U')
		return (fail(c, "unknown escape \\ before %s", show(c)));
	digits = *c->p++ == 'u' ? 4 : 8;
	for (int i = 0; i < digits; i++, c->p++) {
		char h = c->p < c->end ? *c->p : '\0';
		int v = h >= '0' && h <= '9'   ? h - '0'
		        : h >= 'a' && h <= 'f' ? h - 'a' + 10
		        : h >= 'A' && h <= 'F' ? h - 'A' + 10
		                               : -1;
		if (v < 0)
			return (fail(c, "\\%c needs %d hex digits",
			             digits == 4 ? 'u' : 'U', digits));
		u = u * 16 + (unsigned long)v;
	}
	return (put_utf8(c, out, n, cap, u));
}

/* A string at c->p: basic ("..."), literal ('...') or either of them
 * triple-quoted over several lines.  Its value goes to ${out} (${cap}
 * bytes, NUL-terminated) unless ${out} is NULL. */
static int
string(struct cur *c, char *out, size_t cap)
{
	char q = *c->p;
	int multi = at_str(c, q == '"' ? "\"\"\"" : "'''");
	size_t n = 0;

	c->p += multi ? 3 : 1;
	if (multi && (at(c, '\n') || at_str(c, "\r\n"))) /* trimmed */
		c->p += *c->p == '\r' ? 2 : 1;
	for (;;) {
		unsigned char ch;

		if (c->p == c->end)
			return (fail(c, "the string is not closed"));
		ch = (unsigned char)*c->p;
		if (multi ? at_str(c, q == '"' ? "\"\"\"" : "'''")
		          : ch == (unsigned char)q) {
			c->p += multi ? 3 : 1;
			break;
		}
		if (ch == '\n' && !multi)
			return (
			    fail(c, "the string is not closed on its line"));
		if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
			return (fail(c, "control character 0x%02x in a string",
			             ch));
		c->p++;
		if (ch == '\\' && q == '"') {
			if (escape(c, out, &n, cap) != 0)
				return (-1);
		} else if (put(c, out, &n, cap, ch) != 0) {
			return (-1);
		}
	}
	if (out != NULL)
		out[n] = '\0';
	return (0);
}

static int
bare_key_char(char ch)
{
	return ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	        (ch >= '0' && ch <= '9') || ch == '_' || ch == '-');
}

/* A key (bare, quoted, or dotted); ${is_servers} tells whether it is
 * exactly the one key "servers". */
static int
key(struct cur *c, int *is_servers)
{
	char seg[64];
	int parts = 0;

	*is_servers = 0;
	for (;;) {
		skip_blank(c);
		if (at(c, '"') || at(c, '\'')) {
			if (at_str(c, "\"\"\"") || at_str(c, "'''"))
				return (fail(c, "a key cannot be multi-line"));
			seg[0] = '\0';
			if (string(c, seg, sizeof(seg)) != 0)
				return (-1);
		} else if (c->p < c->end && bare_key_char(*c->p)) {
			size_t n = 0;
			while (c->p < c->end && bare_key_char(*c->p)) {
				if (n + 1 < sizeof(seg))
					seg[n++] = *c->p;
				c->p++;
			}
			seg[n] = '\0';
		} else {
			return (fail(c, "expected a key"));
		}
		parts++;
		if (parts == 1)
			*is_servers = strcmp(seg, "servers") == 0;
		else
			*is_servers = 0;
		skip_blank(c);
		if (!at(c, '.'))
			return (0);
		c->p++;
	}
}

static int skip_value(struct cur *c, int depth);

/* [a, b, ...] or {k = v, ...} being skipped. */
static int
skip_compound(struct cur *c, int depth)
{
	char close = *c->p == '[' ? ']' : '}';
	int table = close == '}';

	if (depth >= NEST_MAX)
		return (fail(c, "values nested more than %d deep", NEST_MAX));
	c->p++;
	for (;;) {
		int dummy;

		if (table)
			skip_blank(c);
		else
			skip_space(c);
		if (at(c, close)) {
			c->p++;
			return (0);
		}
		if (table && key(c, &dummy) != 0)
			return (-1);
		if (table) {
			skip_blank(c);
			if (!at(c, '='))
				return (fail(c, "expected '=' after a key"));
			c->p++;
			skip_blank(c);
		}
		if (skip_value(c, depth + 1) != 0)
			return (-1);
		if (table)
			skip_blank(c);
		else
			skip_space(c);
		if (at(c, ','))
			c->p++;
		else if (!at(c, close))
			return (fail(c, "expected ',' or '%c'", close));
	}
}

/* Any value of another key: strings, arrays and inline tables read as
 * TOML; numbers, booleans and dates as one bare word. */
static int
skip_value(struct cur *c, int depth)
{
	const char *from = c->p;

	if (c->p == c->end || *c->p == '\n' || *c->p == '\r' || *c->p == '#')
		return (fail(c, "a key without a value"));
	if (*c->p == '"' || *c->p == '\'')
		return (string(c, NULL, 0));
	if (*c->p == '[' || *c->p == '{')
		return (skip_compound(c, depth));
	while (c->p < c->end &&
	       (bare_key_char(*c->p) || strchr("+.:", *c->p) != NULL ||
	        (*c->p == ' ' && c->p + 1 < c->end && c->p[1] >= '0' &&
	         c->p[1] <= '9'))) /* date time */
		c->p++;
	if (c->p == from)
		return (
		    fail(c, "unexpected %s where a value belongs", show(c)));
	return (0);
}

/* The servers array itself, appended to ${out}/${n}. */
static int
servers(struct cur *c, struct pp_addr **out, size_t *n)
{
	char entry[ENTRY_MAX], why[160];

	if (!at(c, '['))
		return (fail(c, "servers must be a list of \"host:port\""));
	c->p++;
	for (;;) {
		struct pp_addr a, *nv;

		skip_space(c);
		if (at(c, ']')) {
			c->p++;
			return (0);
		}
		if (!at(c, '"') && !at(c, '\''))
			return (fail(c,
			             "servers: entries must be \"host:port\" "
			             "strings"));
		if (string(c, entry, sizeof(entry)) != 0)
			return (-1);
		if (pp_addr_parse(entry, &a, why, sizeof(why)) != 0)
			return (fail(c, "server \"%s\": %s", entry, why));
		if (a.kind != PP_ADDR_TCP)
			return (
			    fail(c, "server \"%s\": not a host:port", entry));
		/* Double at 0 and at powers of two: linear, no capacity
		 * field. */
		if (*n == 0 || (*n & (*n - 1)) == 0) {
			nv = realloc(*out, (*n ? 2 * *n : 1) * sizeof(*nv));
			if (nv == NULL)
				return (fail(c, "out of memory"));
			*out = nv;
		}
		(*out)[(*n)++] = a;
		skip_space(c);
		if (at(c, ','))
			c->p++;
		else if (!at(c, ']'))
			return (fail(c, "servers: expected ',' or ']'"));
	}
}

int
pp_stomp_servers_parse(const char *text, size_t len, const char *name,
                       struct pp_addr **out, size_t *n, char *err,
                       size_t errlen)
{
	struct cur c = {text, text, text + len, name, err, errlen, ""};
	const char *nul;
	int in_table = 0, seen = 0;

	*out = NULL;
	*n = 0;
	if ((nul = memchr(text, '\0', len)) != NULL) {
		c.p = nul;
		fail(&c, "a NUL byte (not a text file)");
		goto err1;
	}
	if (at_str(&c, "\xEF\xBB\xBF")) /* a byte order mark */
		c.p += 3;
	for (;;) {
		int is_servers;

		skip_space(&c);
		if (c.p == c.end)
			break;
		if (at(&c, '[')) { /* [table] or [[array of tables]] */
			int dbl = at_str(&c, "[[");
			c.p += dbl ? 2 : 1;
			if (key(&c, &is_servers) != 0)
				goto err1;
			if (!at_str(&c, dbl ? "]]" : "]")) {
				fail(&c, "the table header is not closed");
				goto err1;
			}
			c.p += dbl ? 2 : 1;
			in_table = 1;
		} else {
			if (key(&c, &is_servers) != 0)
				goto err1;
			skip_blank(&c);
			if (!at(&c, '=')) {
				fail(&c, "expected '=' after a key");
				goto err1;
			}
			c.p++;
			skip_blank(&c);
			if (is_servers && !in_table) {
				if (seen) {
					fail(&c, "servers is given twice");
					goto err1;
				}
				seen = 1;
				if (servers(&c, out, n) != 0)
					goto err1;
			} else if (skip_value(&c, 0) != 0) {
				goto err1;
			}
		}
		if (end_of_line(&c) != 0)
			goto err1;
	}
	if (!seen) {
		snprintf(err, errlen, "%s: no servers = [...] list", name);
		goto err1;
	}
	if (*n == 0) {
		snprintf(err, errlen, "%s: the servers list is empty", name);
		goto err1;
	}
	return (0);
err1:
	free(*out);
	*out = NULL;
	*n = 0;
	return (-1);
}

int
pp_stomp_servers(const char *path, struct pp_addr **out, size_t *n, char *err,
                 size_t errlen)
{
	char *text;
	size_t len;
	int rc;

	*out = NULL;
	*n = 0;
	if ((text = pp_file_read(path, PP_FILE_MAX_STOMP, &len, err, errlen)) ==
	    NULL)
		return (-1);
	rc = pp_stomp_servers_parse(text, len, path, out, n, err, errlen);
	free(text);
	return (rc);
}
