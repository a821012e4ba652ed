#ifndef PP_SESSION_CACHE_H
#define PP_SESSION_CACHE_H

/*
 * A worker's client-side TLS session cache: one slot per (tunnel
 * configuration, target address), holding the latest session the server
 * gave us.  Owned by one worker thread, so it takes no lock.  When full, the
 * least recently used slot is reused.
 */

#include <stddef.h>

#include <openssl/base.h>

struct pp_session_cache;

/* pp_session_cache_new(max): a cache of at most ${max} slots, or NULL. */
struct pp_session_cache *pp_session_cache_new(size_t max);

/* pp_session_cache_slot(c, owner, target): the slot for ${target} of the
 * tunnel configuration ${owner} (compared by address, never dereferenced),
 * created empty if missing.  The slot stays valid until the next call. */
SSL_SESSION **pp_session_cache_slot(struct pp_session_cache *c,
                                    const void *owner, const char *target);

/* pp_session_cache_free(c): free ${c} and its sessions; NULL does nothing. */
void pp_session_cache_free(struct pp_session_cache *c);

#endif
