/*
 * Connection counters that survive reloads.
 */

#include <criterion/criterion.h>

#include <stdio.h>

#include "runtime/limits.h"

Test(limits, one_counter_set_per_tunnel_name)
{
	struct pp_limit *a = pp_limit_get("a"), *b = pp_limit_get("b");

	cr_assert_not_null(a);
	cr_assert_neq(a, b);
	cr_assert_eq(pp_limit_get("a"), a, "a reload finds the same counters");
}

Test(limits, max_connections)
{
	struct pp_limit *l = pp_limit_get("max");

	cr_assert_eq(pp_limit_enter(l, 2), 0);
	cr_assert_eq(pp_limit_enter(l, 2), 0);
	cr_assert_eq(pp_limit_enter(l, 2), -1, "the third is refused");
	cr_assert_eq(pp_limit_open(l), 2, "a refusal counts nothing");
	pp_limit_leave(l);
	cr_assert_eq(pp_limit_enter(l, 2), 0, "room again");
	cr_assert_eq(pp_limit_enter(l, 0), 0, "0 is no limit");
	cr_assert_eq(pp_limit_open(l), 3);
}

Test(limits, per_peer)
{
	struct pp_limit *l = pp_limit_get("peers");
	char id[16];

	cr_assert_eq(pp_limit_peer_enter(l, "aaaaaaaa", 1), 0);
	cr_assert_eq(pp_limit_peer_enter(l, "aaaaaaaa", 1), -1);
	cr_assert_eq(pp_limit_peer_enter(l, "bbbbbbbb", 1), 0, "per peer");
	pp_limit_peer_leave(l, "aaaaaaaa");
	cr_assert_eq(pp_limit_peer_enter(l, "aaaaaaaa", 1), 0);
	/* many peers come and go: slots are reused, counts stay exact */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 100; i++) {
			snprintf(id, sizeof(id), "%08x", i + 16);
			cr_assert_eq(pp_limit_peer_enter(l, id, 1), 0);
		}
		for (int i = 0; i < 100; i++) {
			snprintf(id, sizeof(id), "%08x", i + 16);
			pp_limit_peer_leave(l, id);
		}
	}
	cr_assert_eq(pp_limit_peer_enter(l, "aaaaaaaa", 1), -1,
	             "aaaaaaaa still holds its one tunnel");
}
