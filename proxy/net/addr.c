#include "net/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return (-1);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return (-1);
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return (-1);
	*out = (uint16_t)v;
	return (0);
}

/* A host name: letters, digits, '-', '.', '_' (RFC 1123 plus underscores
 * seen in service names).  IP literals pass too. */
static int
valid_host(const char *h)
{
	if (*h == '\0')
		return (0);
	for (; *h; h++) {
		char c = *h;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_'))
			return (0);
	}
	return (1);
}

int
pp_addr_parse(const char *s, struct pp_addr *out, char *err, size_t errlen)
{
	const char *colon, *port;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "unix:", 5) == 0) {
		const char *path = s + 5;
		size_t plen = strlen(path);
		if (plen == 0) {
			snprintf(err, errlen, "empty unix socket path");
			return (-1);
		}
		if (plen >= sizeof(out->path)) {
			snprintf(err, errlen,
			         "unix socket path longer than %zu bytes",
			         sizeof(out->path) - 1);
			return (-1);
		}
		out->kind = PP_ADDR_UNIX;
		memcpy(out->path, path, plen + 1);
		return (0);
	}
	out->kind = PP_ADDR_TCP;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		struct in6_addr a6;
		if (close == NULL || close[1] != ':') {
			snprintf(
			    err, errlen,
			    "expected [v6addr]:port, host:port or unix:/path");
			return (-1);
		}
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(out->host)) {
			snprintf(err, errlen, "bad IPv6 address");
			return (-1);
		}
		memcpy(out->host, s + 1, hlen);
		if (inet_pton(AF_INET6, out->host, &a6) != 1) {
			snprintf(err, errlen, "bad IPv6 address \"%s\"",
			         out->host);
			return (-1);
		}
		port = close + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			snprintf(
			    err, errlen,
			    "missing port (expected host:port, [v6addr]:port "
			    "or unix:/path)");
			return (-1);
		}
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			snprintf(err, errlen,
			         "IPv6 addresses need brackets: [v6addr]:port");
			return (-1);
		}
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof(out->host)) {
			snprintf(err, errlen, "missing or overlong host");
			return (-1);
		}
		memcpy(out->host, s, hlen);
		if (!valid_host(out->host)) {
			snprintf(err, errlen, "bad host name \"%s\"",
			         out->host);
			return (-1);
		}
		port = colon + 1;
	}
	if (parse_port(port, &out->port) != 0) {
		snprintf(err, errlen, "bad port \"%s\" (expected 1-65535)",
		         port);
		return (-1);
	}
	return (0);
}

void
pp_addr_format(const struct pp_addr *a, char *buf, size_t len)
{
	if (a->kind == PP_ADDR_UNIX)
		snprintf(buf, len, "unix:%s", a->path);
	else if (strchr(a->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", a->host, a->port);
	else
		snprintf(buf, len, "%s:%u", a->host, a->port);
}

int
pp_addr_literal(const struct pp_addr *a, struct sockaddr_storage *ss,
                socklen_t *sslen)
{
	memset(ss, 0, sizeof(*ss));
	if (a->kind == PP_ADDR_UNIX) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		sun->sun_family = AF_UNIX;
		/* the same size: pp_addr_parse checked the path fits */
		memcpy(sun->sun_path, a->path, sizeof(sun->sun_path));
		*sslen = (socklen_t)sizeof(*sun);
		return (0);
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, a->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		*sslen = (socklen_t)sizeof(*sin);
		return (0);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET6, a->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		*sslen = (socklen_t)sizeof(*sin6);
		return (0);
	}
	return (1);
}

void
pp_sockaddr_format(const struct sockaddr *sa, socklen_t salen, char *buf,
                   size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		if (salen <= off || sun->sun_path[0] == '\0')
			snprintf(buf, len, "unix:");
		else
			snprintf(buf, len, "unix:%.*s", (int)(salen - off),
			         sun->sun_path);
		break;
	}
	default:
		snprintf(buf, len, "?");
	}
}

int
pp_addr_is_ip(const char *s)
{
	unsigned char buf[16];

	return (inet_pton(AF_INET, s, buf) == 1 ||
	        inet_pton(AF_INET6, s, buf) == 1);
}
