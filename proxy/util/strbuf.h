#ifndef PP_STRBUF_H
#define PP_STRBUF_H

/*
 * A growable text buffer for replies built off the data path (admin
 * endpoint bodies).  Appends never fail visibly: on allocation failure the
 * buffer is marked failed, later appends do nothing, and the owner checks
 * ${failed} once at the end.
 */

#include <stddef.h>

struct pp_sb {
	char *buf; /* NUL-terminated while len > 0; owned */
	size_t len, cap;
	int failed;
};

/* pp_sb_append(b, s, n): append ${n} bytes of ${s}. */
void pp_sb_append(struct pp_sb *b, const char *s, size_t n);

/* pp_sb_puts(b, s): append the string ${s}. */
void pp_sb_puts(struct pp_sb *b, const char *s);

/* pp_sb_printf(b, fmt, ...): append text formatted by printf. */
void pp_sb_printf(struct pp_sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* pp_sb_json_str(b, s): append ${s} as a quoted JSON string (NULL: null). */
void pp_sb_json_str(struct pp_sb *b, const char *s);

/* pp_sb_label(b, s): append ${s} escaped as a Prometheus label value
 * (backslash, double quote and newline escaped; no quotes added). */
void pp_sb_label(struct pp_sb *b, const char *s);

/* pp_sb_free(b): release the memory of ${b} and empty it. */
void pp_sb_free(struct pp_sb *b);

/*
 * pp_fmt(buf, len, fmt, ...): format into the ${len}-byte ${buf} as snprintf
 * does.  Return 0, or -1 if the text did not fit (${buf} then holds a cut,
 * NUL-terminated prefix) or could not be formatted.  For text whose length
 * the caller cannot bound: a path, a socket name, a name made of a user's
 * value.  The result must be used: a cut path names another file.
 */
int pp_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), warn_unused_result));

#endif
