#ifndef PP_WBUF_H
#define PP_WBUF_H

/*
 * A bounded writer over a caller's byte buffer, for building wire formats
 * in one pass: bytes past the capacity are counted, not written, so the
 * caller learns the size it would have needed (len > cap) and checks once
 * at the end.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pp_wbuf {
	uint8_t *p;
	size_t len, cap;
};

/* pp_wbuf_put(w, data, n): append ${n} bytes of ${data} if they fit; count
 * them either way. */
static inline void
pp_wbuf_put(struct pp_wbuf *w, const void *data, size_t n)
{
	if (w->len + n <= w->cap)
		memcpy(w->p + w->len, data, n);
	w->len += n;
}

#endif
