#ifndef PP_STOMP_H
#define PP_STOMP_H

/*
 * The servers list of a Swaptacular nodeinfo/stomp.toml:
 *
 *     servers = ["host:port", "[2001:db8::1]:1234", ...]
 *
 * read as TOML: basic ("...") and literal ('...') strings, the list over
 * several lines with comments and a trailing comma, other keys and tables
 * skipped.  Only the top-level "servers" key counts.  Every entry must be
 * a TCP address as pp_addr_parse reads it (IPv6 literals in brackets).
 */

#include <stddef.h>

#include "net/addr.h"

/* pp_stomp_servers_parse(text, len, name, out, n, err, errlen): read the
 * servers list from the ${len} bytes at ${text} (NUL bytes included, which
 * are an error); ${name} (the file) starts every error message.  Return 0
 * with ${out} (malloc'd, the caller frees it) and ${n} > 0, or -1 with
 * ${out} NULL, ${n} 0 and the line and reason in ${err}. */
int pp_stomp_servers_parse(const char *text, size_t len, const char *name,
                           struct pp_addr **out, size_t *n, char *err,
                           size_t errlen);

/* pp_stomp_servers(path, out, n, err, errlen): as pp_stomp_servers_parse,
 * for the file at ${path} (at most 64 KiB). */
int pp_stomp_servers(const char *path, struct pp_addr **out, size_t *n,
                     char *err, size_t errlen);

#endif
