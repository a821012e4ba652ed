/*
 * Building a configuration (pp_config_build): the checks of the tunnels
 * against each other and against the process's open file limit.  The
 * tunnels here are CONNECT listeners, which need no certificates.
 */

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <criterion/criterion.h>

#include "config/config.h"
#include "support.h"

/* A configuration of ${workers} workers and ${n} listening tunnels. */
static struct pp_config *
listeners(int workers, int n)
{
	struct pp_config *c = pp_config_new();
	char name[32], addr[64], err[128];

	cr_assert_not_null(c);
	c->workers = workers;
	for (int i = 0; i < n; i++) {
		struct pp_tunnel_conf *t;

		snprintf(name, sizeof(name), "t%d", i);
		snprintf(addr, sizeof(addr), "unix:/nonexistent/%d.sock", i);
		cr_assert_not_null(
		    t = pp_config_add_tunnel(c, PP_TUNNEL_CONNECT, name));
		cr_assert_eq(pp_addr_parse(addr, &t->listen, err, sizeof(err)),
		             0, "%s", err);
	}
	return (c);
}

static void
set_nofile(rlim_t n)
{
	struct rlimit rl = {n, n};

	/* Criterion runs each test in a process of its own. */
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

Test(config, listeners_beyond_the_open_file_limit_are_refused_naming_it)
{
	struct pp_config *c = listeners(2, 20);
	struct pp_problems p = {0};

	set_nofile(64);
	cr_assert_eq(pp_config_build(c, &p), -1);
	cr_assert_eq(p.n, 1);
	cr_assert(t_contains(p.items[0], "20 listeners x 2 workers need 80 "
	                                 "open files (with 40 for the process "
	                                 "itself), more than the open file "
	                                 "limit RLIMIT_NOFILE of 64"),
	          "%s", p.items[0]);
	pp_problems_free(&p);
	pp_config_unref(c);
}

Test(config, little_room_left_for_connections_is_a_warning)
{
	struct pp_config *c = listeners(1, 10);
	struct pp_problems p = {0};

	/* Lowering a hard limit cannot be undone: 2000 first. */
	set_nofile(2000);
	cr_assert_eq(pp_config_build(c, &p), 0, "%s", p.n ? p.items[0] : "");
	cr_assert_eq(p.nwarnings, 0, "%s", p.nwarnings ? p.warnings[0] : "");
	pp_problems_free(&p);
	set_nofile(1000);
	cr_assert_eq(pp_config_build(c, &p), 0, "%s", p.n ? p.items[0] : "");
	cr_assert_eq(p.nwarnings, 1);
	cr_assert(t_contains(p.warnings[0], "10 listeners x 1 workers leave "
	                                    "954 of the open file limit "
	                                    "RLIMIT_NOFILE (1000)"),
	          "%s", p.warnings[0]);
	pp_problems_free(&p);
	pp_config_unref(c);
}

Test(config, two_tunnels_on_one_address_are_named)
{
	struct pp_config *c = listeners(1, 3);
	struct pp_problems p = {0};
	char err[128];

	cr_assert_eq(pp_addr_parse("unix:/nonexistent/0.sock",
	                           &c->tunnels[2].listen, err, sizeof(err)),
	             0);
	cr_assert_eq(pp_config_build(c, &p), -1);
	cr_assert_eq(p.n, 1);
	cr_assert(t_contains(p.items[0], "tunnels t0 and t2 both listen on "
	                                 "unix:/nonexistent/0.sock"),
	          "%s", p.items[0]);
	pp_problems_free(&p);
	pp_config_unref(c);
}
