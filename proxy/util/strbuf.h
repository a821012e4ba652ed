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

#endif
