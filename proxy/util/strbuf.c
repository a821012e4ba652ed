#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Make room for ${n} more bytes and the NUL; 0, or -1 (marked failed). */
static int
reserve(struct pp_sb *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->failed)
		return (-1);
	if (b->len + n + 1 <= b->cap)
		return (0);
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	if ((p = realloc(b->buf, cap)) == NULL) {
		b->failed = 1;
		return (-1);
	}
	b->buf = p;
	b->cap = cap;
	return (0);
}

void
pp_sb_append(struct pp_sb *b, const char *s, size_t n)
{
	if (reserve(b, n) != 0)
		return;
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

void
pp_sb_puts(struct pp_sb *b, const char *s)
{
	pp_sb_append(b, s, strlen(s));
}

void
pp_sb_printf(struct pp_sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int
pp_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return (n < 0 || (size_t)n >= len ? -1 : 0);
}

void
pp_sb_json_str(struct pp_sb *b, const char *s)
{
	if (s == NULL) {
		pp_sb_puts(b, "null");
		return;
	}
	pp_sb_puts(b, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			pp_sb_append(b, e, 2);
		} else if (c < 0x20) {
			pp_sb_printf(b, "\\u%04x", c);
		} else {
			pp_sb_append(b, s, 1);
		}
	}
	pp_sb_puts(b, "\"");
}

void
pp_sb_label(struct pp_sb *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			pp_sb_puts(b, "\\\\");
		else if (*s == '"')
			pp_sb_puts(b, "\\\"");
		else if (*s == '\n')
			pp_sb_puts(b, "\\n");
		else
			pp_sb_append(b, s, 1);
	}
}

void
pp_sb_free(struct pp_sb *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}
