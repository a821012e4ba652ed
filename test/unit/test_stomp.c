/*
 * The nodeinfo/stomp.toml servers reader: every form Swaptacular writes,
 * IPv6 in brackets, and broken files named with their line.
 */

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/stomp.h"
#include "support.h"

/* Parse ${text}; return the count (or -1) and the entries in ${out}. */
static int
parse(const char *text, struct pp_addr **out, char *err, size_t errlen)
{
	size_t n;

	if (pp_stomp_servers_parse(text, strlen(text), "stomp.toml", out, &n,
	                           err, errlen) != 0) {
		cr_assert_null(*out, "no list on failure");
		cr_assert_eq(n, 0);
		return (-1);
	}
	cr_assert_gt(n, 0, "a parsed list is never empty");
	return ((int)n);
}

static void
assert_server(const struct pp_addr *a, const char *host, unsigned port)
{
	cr_assert_eq(a->kind, PP_ADDR_TCP);
	cr_assert_str_eq(a->host, host);
	cr_assert_eq(a->port, port, "%s: port %u, want %u", host, a->port,
	             port);
}

/* The file Swaptacular's tools write: one line, the other keys after it. */
Test(stomp, the_swaptacular_file)
{
	struct pp_addr *s = NULL;
	char err[256];

	cr_assert_eq(parse("servers = [\"node1.example.com:1234\", "
	                   "\"node2.example.com:1234\"]\n"
	                   "host = \"/\"\n"
	                   "login = \"guest\"\n"
	                   "passcode = \"guest\"\n",
	                   &s, err, sizeof(err)),
	             2, "%s", err);
	assert_server(&s[0], "node1.example.com", 1234);
	assert_server(&s[1], "node2.example.com", 1234);
	free(s);
}

/* The bug that lost servers: the first ']' inside an IPv6 literal ended
 * the list. */
Test(stomp, ipv6_only)
{
	struct pp_addr *s = NULL;
	char err[256];

	cr_assert_eq(
	    parse("servers = [\"[2001:db8::1]:1234\"]\n", &s, err, sizeof(err)),
	    1, "%s", err);
	assert_server(&s[0], "2001:db8::1", 1234);
	free(s);
}

Test(stomp, mixed_ipv4_ipv6_and_names_keep_every_server)
{
	struct pp_addr *s = NULL;
	char err[256];

	cr_assert_eq(parse("servers = [\"[2001:db8::1]:1234\", "
	                   "\"192.0.2.7:1235\", \"[::1]:7\", "
	                   "\"peer.example.org:443\"]\n",
	                   &s, err, sizeof(err)),
	             4, "%s", err);
	assert_server(&s[0], "2001:db8::1", 1234);
	assert_server(&s[1], "192.0.2.7", 1235);
	assert_server(&s[2], "::1", 7);
	assert_server(&s[3], "peer.example.org", 443);
	free(s);
}

/* TOML lets the list run over lines, with comments, a trailing comma,
 * literal strings, CRLF line ends and keys in any order. */
Test(stomp, multi_line_list_with_comments)
{
	struct pp_addr *s = NULL;
	char err[256];

	cr_assert_eq(
	    parse("# written by hand\r\n"
	          "host = \"/\"  # the vhost\r\n"
	          "servers = [\r\n"
	          "  \"[2001:db8::2]:1234\", # primary ] not the end\r\n"
	          "  '10.0.0.1:1234',\r\n"
	          "  # \"commented.out:1\",\r\n"
	          "]\r\n"
	          "passcode = 'a\"b]'\r\n",
	          &s, err, sizeof(err)),
	    2, "%s", err);
	assert_server(&s[0], "2001:db8::2", 1234);
	assert_server(&s[1], "10.0.0.1", 1234);
	free(s);
}

Test(stomp, escapes_and_other_values_are_read_as_toml)
{
	struct pp_addr *s = NULL;
	char err[256];

	cr_assert_eq(parse("\xEF\xBB\xBF"
	                   "note = \"\"\"\n"
	                   "servers = [\"fake:1\"]\n\"\"\"\n"
	                   "port = 1234\n"
	                   "enabled = true\n"
	                   "when = 1979-05-27 07:32:00Z\n"
	                   "nested = [[1, 2], {a = \"]\"}]\n"
	                   "servers = [\"h\\u0061st:1\"]\n",
	                   &s, err, sizeof(err)),
	             1, "%s", err);
	assert_server(&s[0], "hast", 1);
	free(s);
}

Test(stomp, servers_inside_a_table_do_not_count)
{
	struct pp_addr *s = NULL;
	char err[256];

	cr_assert_eq(
	    parse("[other]\nservers = [\"a:1\"]\n", &s, err, sizeof(err)), -1);
	cr_assert(t_contains(err, "stomp.toml: no servers = [...] list"), "%s",
	          err);
	cr_assert_eq(parse("servers = [\"a:1\"]\n[other]\nservers = 3\n", &s,
	                   err, sizeof(err)),
	             1, "%s", err);
	free(s);
}

/* parse_fails(text, want): the file is refused with ${want} in the error,
 * which names the file. */
static void
parse_fails(const char *text, const char *want)
{
	struct pp_addr *s = NULL;
	char err[256];

	cr_assert_eq(parse(text, &s, err, sizeof(err)), -1, "accepted: %s",
	             text);
	cr_assert(t_contains(err, "stomp.toml"), "no file name in: %s", err);
	cr_assert(t_contains(err, want), "want \"%s\" in: %s", want, err);
}

Test(stomp, broken_files_name_the_file_line_and_reason)
{
	parse_fails("", "no servers = [...] list");
	parse_fails("servers = []\n", "the servers list is empty");
	parse_fails("servers = [\"a:1\"\n", ":2: servers: expected ',' or ']'");
	parse_fails("host = \"/\"\nservers = [\"a:1\", \"b:2]\n",
	            ":2: the string is not closed on its line");
	parse_fails("servers = [\"[2001:db8::1:1234\"]\n", "2001:db8::1:1234");
	parse_fails("servers = [\"no-port\"]\n", "server \"no-port\"");
	parse_fails("servers = [\"unix:/run/x.sock\"]\n", "not a host:port");
	parse_fails("servers = [1234]\n", "entries must be \"host:port\"");
	parse_fails("servers = \"a:1\"\n", "servers must be a list");
	parse_fails("servers = [\"a:1\"]\nservers = [\"b:1\"]\n",
	            ":2: servers is given twice");
	parse_fails("servers = [\"a:1\"] junk\n", ":1: unexpected 'j'");
	parse_fails("servers = [\"a:1\"]\nhost = \n",
	            ":2: a key without a value");
	parse_fails("servers = [\"a:1\"]\n= 3\n", ":2: expected a key");
	parse_fails("servers = [\"a\\q:1\"]\n", "unknown escape \\ before 'q'");
	parse_fails("servers = [\"a:1\"]\nx = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	            "[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	            "nested more than");
}

Test(stomp, a_nul_byte_is_an_error)
{
	static const char text[] = "servers = [\"a:1\"]\n\0";
	struct pp_addr *s = NULL;
	char err[256];
	size_t n;

	cr_assert_eq(pp_stomp_servers_parse(text, sizeof(text) - 1, "f.toml",
	                                    &s, &n, err, sizeof(err)),
	             -1);
	cr_assert(t_contains(err, "f.toml:2: a NUL byte"), "%s", err);
}

Test(stomp, reads_the_file_and_names_a_missing_one)
{
	char dir[256], path[512], err[512];
	struct pp_addr *s = NULL;
	size_t n;

	t_tmpdir(dir, sizeof(dir));
	t_path(path, sizeof(path), dir, "stomp.toml");
	cr_assert_eq(pp_stomp_servers(path, &s, &n, err, sizeof(err)), -1);
	cr_assert(t_contains(err, path), "%s", err);
	t_write(path, "servers = [\"[::1]:1234\", \"127.0.0.1:1234\"]\n");
	cr_assert_eq(pp_stomp_servers(path, &s, &n, err, sizeof(err)), 0, "%s",
	             err);
	cr_assert_eq(n, 2);
	assert_server(&s[0], "::1", 1234);
	free(s);
	t_rmtree(dir);
}
