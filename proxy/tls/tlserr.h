#ifndef PP_TLSERR_H
#define PP_TLSERR_H

/*
 * What a failed BoringSSL call left behind: whether memory was short.
 * Every TLS module asks it, so it depends on none of them.
 */

/* pp_tls_lacked_memory(): after a BoringSSL call failed (a parse, say),
 * non-zero if it failed for lack of memory rather than for its input, as
 * far as can be told: an allocation failure in the thread's error queue,
 * or errno ENOMEM (the allocator's; the caller sets errno to 0 before the
 * call, as BoringSSL often reports such a failure as bad input).  The
 * error queue is cleared. */
int pp_tls_lacked_memory(void);

#endif
