#ifndef PP_SESSION_CACHE_H
#define PP_SESSION_CACHE_H

/*
 * A worker's client-side TLS session cache: one slot per (tunnel key,
 * target address), holding the latest session the server gave us.  Owned
 * by one worker thread, so it takes no lock.  When full, the least
 * recently used slot is reused.
 *
 * The key is a digest of what a session was made under: the tunnel's name
 * and its trust (pp_config_build computes it; config.h says what goes in).
 * Not the address of the tunnel configuration: every reload, even one that
 * changes nothing, makes new configurations (so sessions would be lost at
 * each node data rescan), and a freed configuration's address may be
 * reused by another one (whose connections would then be offered sessions
 * made under different trust).
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

/* Bytes in a key (a SHA-256 digest). */
#define PP_SESSION_KEY_LEN 32

/* Longest target address (with its NUL) a slot holds: a tunnel's
 * "host:port" or "unix:/path" of a dialed peer. */
#define PP_SESSION_TARGET_MAX 280

struct pp_session_cache;

/* pp_session_cache_new(max): a cache of at most ${max} slots, or NULL. */
struct pp_session_cache *pp_session_cache_new(size_t max);

/* pp_session_cache_slot(c, key, target): the slot for ${target} under the
 * PP_SESSION_KEY_LEN bytes of ${key}, created empty if missing (evicting
 * the least recently used slot when the cache is full).  The slot stays
 * valid until the next call.  NULL if ${target} is too long to keep (no
 * session is then offered or kept for it). */
SSL_SESSION **pp_session_cache_slot(struct pp_session_cache *c,
                                    const uint8_t *key, const char *target);

/* pp_session_cache_free(c): free ${c} and its sessions; NULL does nothing. */
void pp_session_cache_free(struct pp_session_cache *c);

#endif
