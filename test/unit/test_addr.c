#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <criterion/criterion.h>

#include "net/addr.h"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

static struct pp_addr
parse_ok(const char *s)
{
	struct pp_addr a;
	char err[160] = "";

	cr_assert_eq(pp_addr_parse(s, &a, err, sizeof(err)), 0,
	             "\"%s\" must parse (got: %s)", s, err);
	return (a);
}

static void
parse_bad(const char *s)
{
	struct pp_addr a;
	char err[160] = "";

	cr_assert_eq(pp_addr_parse(s, &a, err, sizeof(err)), -1,
	             "\"%s\" must be refused", s);
	cr_assert_str_not_empty(err, "refusing \"%s\" must give a reason", s);
}

/* A unix: address whose path is ${n} bytes long. */
static void
unix_addr(char *buf, size_t n)
{
	memcpy(buf, "unix:/", 6);
	memset(buf + 6, 'p', n - 1);
	buf[5 + n] = '\0';
}

Test(addr, host_port)
{
	struct pp_addr a = parse_ok("example.com:8080");

	cr_assert_eq(a.kind, PP_ADDR_TCP);
	cr_assert_str_eq(a.host, "example.com");
	cr_assert_eq(a.port, 8080);

	a = parse_ok("127.0.0.1:1");
	cr_assert_str_eq(a.host, "127.0.0.1");
	cr_assert_eq(a.port, 1);

	a = parse_ok("svc_name-1.local:65535");
	cr_assert_str_eq(a.host, "svc_name-1.local");
	cr_assert_eq(a.port, 65535);
}

Test(addr, ipv6_in_brackets)
{
	struct pp_addr a = parse_ok("[::1]:443");

	cr_assert_eq(a.kind, PP_ADDR_TCP);
	cr_assert_str_eq(a.host, "::1", "brackets are not part of the host");
	cr_assert_eq(a.port, 443);

	a = parse_ok("[2001:db8::17]:8443");
	cr_assert_str_eq(a.host, "2001:db8::17");
	cr_assert_eq(a.port, 8443);
}

Test(addr, unix_path)
{
	struct pp_addr a = parse_ok("unix:/run/app.sock");
	char buf[256];

	cr_assert_eq(a.kind, PP_ADDR_UNIX);
	cr_assert_str_eq(a.path, "/run/app.sock");

	/* The longest path sun_path can hold with its NUL: 107 bytes. */
	unix_addr(buf, SUN_PATH_MAX - 1);
	a = parse_ok(buf);
	cr_assert_eq(strlen(a.path), SUN_PATH_MAX - 1);
}

Test(addr, rejects_missing_port)
{
	parse_bad("example.com");
	parse_bad("example.com:");
	parse_bad("127.0.0.1");
	parse_bad("[::1]");
	parse_bad("[::1]:");
	parse_bad("[::1]443");
}

Test(addr, rejects_bad_ports)
{
	parse_bad("host:0");
	parse_bad("host:65536");
	parse_bad("host:99999");
	parse_bad("host:123456");
	parse_bad("host:abc");
	parse_bad("host:-1");
	parse_bad("host:+80");
	parse_bad("host:80 ");
	parse_bad("host: 80");
	parse_bad("[::1]:0");
	parse_bad("[::1]:65536");
}

Test(addr, rejects_ipv6_without_brackets)
{
	parse_bad("::1:443");
	parse_bad("2001:db8::1:443");
	parse_bad("fe80::1:80");
}

Test(addr, rejects_bad_hosts)
{
	parse_bad(":443");
	parse_bad("[]:443");
	parse_bad("[not-v6]:443");
	parse_bad("[127.0.0.1]:443");
	parse_bad("bad host:80");
	parse_bad("a/b:80");
	parse_bad("");
}

Test(addr, rejects_bad_unix_paths)
{
	char buf[256];

	parse_bad("unix:");
	unix_addr(buf, SUN_PATH_MAX); /* 108 bytes: no room for the NUL */
	parse_bad(buf);
	unix_addr(buf, 200);
	parse_bad(buf);
}

Test(addr, format_round_trips)
{
	static const char *const cases[] = {
	    "example.com:8080",     "127.0.0.1:1",        "[::1]:443",
	    "[2001:db8::17]:65535", "unix:/run/app.sock", "localhost:80",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pp_addr a = parse_ok(cases[i]), b;
		char buf[512], err[160];

		pp_addr_format(&a, buf, sizeof(buf));
		cr_expect_str_eq(buf, cases[i], "format(parse(\"%s\"))",
		                 cases[i]);
		cr_assert_eq(pp_addr_parse(buf, &b, err, sizeof(err)), 0,
		             "\"%s\" does not parse again: %s", buf, err);
		cr_expect_eq(b.kind, a.kind);
		cr_expect_str_eq(b.host, a.host);
		cr_expect_eq(b.port, a.port);
		cr_expect_str_eq(b.path, a.path);
	}
}

Test(addr, format_truncates_safely)
{
	struct pp_addr a = parse_ok("example.com:8080");
	char buf[8];

	memset(buf, 'X', sizeof(buf));
	pp_addr_format(&a, buf, sizeof(buf));
	cr_assert_eq(buf[sizeof(buf) - 1], '\0', "output must stay terminated");
	cr_assert_str_eq(buf, "example");
}

Test(addr, literal_ipv4)
{
	struct pp_addr a = parse_ok("10.1.2.3:8080");
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

	cr_assert_eq(pp_addr_literal(&a, &ss, &len), 0);
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_eq(len, sizeof(struct sockaddr_in));
	cr_assert_eq(ntohs(sin->sin_port), 8080);
	cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0x0a010203u);
}

Test(addr, literal_ipv6)
{
	struct pp_addr a = parse_ok("[::1]:443");
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

	cr_assert_eq(pp_addr_literal(&a, &ss, &len), 0);
	cr_assert_eq(s6->sin6_family, AF_INET6);
	cr_assert_eq(len, sizeof(struct sockaddr_in6));
	cr_assert_eq(ntohs(s6->sin6_port), 443);
	cr_assert(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
}

Test(addr, literal_unix)
{
	struct pp_addr a = parse_ok("unix:/tmp/pp-test.sock");
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;

	cr_assert_eq(pp_addr_literal(&a, &ss, &len), 0);
	cr_assert_eq(sun->sun_family, AF_UNIX);
	cr_assert_str_eq(sun->sun_path, "/tmp/pp-test.sock");
	cr_assert_geq(len, offsetof(struct sockaddr_un, sun_path) +
	                       strlen("/tmp/pp-test.sock"));
	cr_assert_leq(len, sizeof(struct sockaddr_un));
}

Test(addr, literal_longest_unix_path)
{
	char buf[256];
	struct pp_addr a;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;

	unix_addr(buf, SUN_PATH_MAX - 1);
	a = parse_ok(buf);
	cr_assert_eq(pp_addr_literal(&a, &ss, &len), 0);
	cr_assert_str_eq(sun->sun_path, buf + 5);
}

Test(addr, literal_names_need_resolution)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	struct pp_addr a = parse_ok("localhost:80");

	cr_assert_eq(pp_addr_literal(&a, &ss, &len), 1);
	a = parse_ok("example.com:443");
	cr_assert_eq(pp_addr_literal(&a, &ss, &len), 1);
	/* Looks numeric, is not an address. */
	a = parse_ok("1.2.3.4.5:443");
	cr_assert_eq(pp_addr_literal(&a, &ss, &len), 1);
}

Test(addr, sockaddr_format_ipv4)
{
	struct sockaddr_in sin;
	char buf[128];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(8080);
	sin.sin_addr.s_addr = htonl(0x0a010203u);
	pp_sockaddr_format((const struct sockaddr *)&sin, sizeof(sin), buf,
	                   sizeof(buf));
	cr_assert_str_eq(buf, "10.1.2.3:8080");
}

Test(addr, sockaddr_format_ipv6)
{
	struct sockaddr_in6 s6;
	char buf[128];

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(443);
	s6.sin6_addr = in6addr_loopback;
	pp_sockaddr_format((const struct sockaddr *)&s6, sizeof(s6), buf,
	                   sizeof(buf));
	cr_assert_str_eq(buf, "[::1]:443");
}

Test(addr, sockaddr_format_unix)
{
	struct sockaddr_un sun;
	char buf[256];
	socklen_t len;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/run/app.sock");
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	                  strlen(sun.sun_path) + 1);
	pp_sockaddr_format((const struct sockaddr *)&sun, len, buf,
	                   sizeof(buf));
	cr_assert_str_eq(buf, "unix:/run/app.sock");

	/* Without the terminating NUL counted (as some kernels report). */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	                  strlen(sun.sun_path));
	pp_sockaddr_format((const struct sockaddr *)&sun, len, buf,
	                   sizeof(buf));
	cr_assert_str_eq(buf, "unix:/run/app.sock");

	/* An unnamed peer (socketpair, unbound client). */
	pp_sockaddr_format((const struct sockaddr *)&sun,
	                   (socklen_t)sizeof(sa_family_t), buf, sizeof(buf));
	cr_assert_str_eq(buf, "unix:");
}

Test(addr, sockaddr_format_matches_addr_format)
{
	static const char *const cases[] = {"192.0.2.7:9", "[2001:db8::1]:80",
	                                    "unix:/tmp/x.sock"};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pp_addr a = parse_ok(cases[i]);
		struct sockaddr_storage ss;
		socklen_t len;
		char buf[256];

		cr_assert_eq(pp_addr_literal(&a, &ss, &len), 0);
		pp_sockaddr_format((const struct sockaddr *)&ss, len, buf,
		                   sizeof(buf));
		cr_expect_str_eq(buf, cases[i]);
	}
}
