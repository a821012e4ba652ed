#ifndef PP_ADDR_H
#define PP_ADDR_H

/*
 * Addresses as users write them: "host:port", "[v6addr]:port" or
 * "unix:/path".  A host may be a name (resolved when used) or a literal.
 */

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

enum pp_addr_kind { PP_ADDR_TCP, PP_ADDR_UNIX };

#define PP_HOST_MAX 256

struct pp_addr {
	enum pp_addr_kind kind;
	char host[PP_HOST_MAX]; /* TCP: name or literal, without brackets */
	uint16_t port;          /* TCP */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* UNIX */
};

/* pp_addr_parse(s, out, err, errlen): parse ${s} into ${out}.  Return 0, or
 * -1 with a reason written to ${err}. */
int pp_addr_parse(const char *s, struct pp_addr *out, char *err, size_t errlen);

/* pp_addr_format(a, buf, len): write ${a} as the user would write it.  A
 * ${buf} of PP_HOST_MAX + 16 bytes holds any address whole (callers compare
 * the text: a cut one would match another address). */
void pp_addr_format(const struct pp_addr *a, char *buf, size_t len);

/* pp_addr_literal(a, ss, sslen): if ${a} is a unix path or an IP literal,
 * fill ${ss}/${sslen} and return 0; return 1 if it is a name needing
 * resolution. */
int pp_addr_literal(const struct pp_addr *a, struct sockaddr_storage *ss,
                    socklen_t *sslen);

/* pp_sockaddr_format(sa, buf, len): write ${sa} as "ip:port", "[ip6]:port"
 * or "unix:path" (or "unix:" for an unnamed peer); PP_HOST_MAX + 16 bytes
 * hold any of them whole. */
void pp_sockaddr_format(const struct sockaddr *sa, socklen_t salen, char *buf,
                        size_t len);

/* pp_addr_is_ip(s): non-zero if ${s} is an IPv4 or IPv6 literal (never
 * sent as a TLS server name). */
int pp_addr_is_ip(const char *s);

#endif
