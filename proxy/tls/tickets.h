#ifndef PP_TICKETS_H
#define PP_TICKETS_H

/*
 * Session ticket keys of inbound tunnels, kept across reloads.  BoringSSL
 * gives every TLS context keys of its own, so each reload (and every node
 * data rescan is one) would make every ticket issued so far worthless:
 * two node data proxies rescanning each minute would resume nothing.
 * Instead every inbound context of one tunnel name shares one key ring,
 * created on first use and kept for the life of the process.
 *
 * A ring holds the current key, which seals new tickets, and the one
 * before it, which still opens the tickets it sealed (they are renewed).
 * The current key is replaced every PP_TICKETS_ROTATE_S, so a ticket
 * opens for at least that long and no key lives longer than twice that:
 * the forward secrecy a ticket's lifetime allows.  Rings of different
 * names never open each other's tickets.  A resumed session's chain is
 * verified again under the policy of the moment, so a ticket sealed
 * before a reload grants nothing the new policy refuses.
 */

#include <stdint.h>

#include <openssl/base.h>

/* Rotation period; the tickets' lifetime (tls/context.c) is the same. */
#define PP_TICKETS_ROTATE_S 3600

struct pp_tickets;

/* pp_tickets_get(name): the key ring of inbound tunnel ${name}, created
 * if needed; NULL if memory is short.  Thread-safe. */
struct pp_tickets *pp_tickets_get(const char *name);

/* pp_tickets_attach(ctx, k): seal and open ${ctx}'s session tickets with
 * ring ${k} (which outlives every context: rings are never freed).
 * Return 0, or -1 if memory is short. */
int pp_tickets_attach(SSL_CTX *ctx, struct pp_tickets *k);

/* pp_tickets_set_clock(now): read the time (seconds, monotonic) from
 * ${now} instead of the system clock; NULL restores it.  For tests. */
void pp_tickets_set_clock(uint64_t (*now)(void));

#endif
