#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "util/bufpool.h"

Test(bufpool, init_is_empty)
{
	struct pp_bufpool p;

	cr_assert_eq(pp_bufpool_init(&p, 4), 0);
	cr_assert_eq(p.nfree, 0);
	cr_assert_eq(p.in_use, 0);
	cr_assert_eq(p.cap, 4);
	pp_bufpool_destroy(&p);
}

Test(bufpool, buffers_are_whole_and_writable)
{
	struct pp_bufpool p;
	uint8_t *a, *b;

	cr_assert_eq(pp_bufpool_init(&p, 2), 0);
	a = pp_bufpool_get(&p);
	b = pp_bufpool_get(&p);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_neq(a, b, "two buffers in flight must be distinct");
	/* Every byte is usable (ASan would catch an undersized buffer). */
	memset(a, 0xa5, PP_BUF_SIZE);
	memset(b, 0x5a, PP_BUF_SIZE);
	cr_assert_eq(a[PP_BUF_SIZE - 1], 0xa5);
	cr_assert_eq(b[0], 0x5a);
	pp_bufpool_put(&p, a);
	pp_bufpool_put(&p, b);
	pp_bufpool_destroy(&p);
}

Test(bufpool, put_then_get_reuses)
{
	struct pp_bufpool p;
	uint8_t *a, *b, *c, *d;

	cr_assert_eq(pp_bufpool_init(&p, 2), 0);
	a = pp_bufpool_get(&p);
	b = pp_bufpool_get(&p);
	pp_bufpool_put(&p, a);
	pp_bufpool_put(&p, b);
	cr_assert_eq(p.nfree, 2);
	c = pp_bufpool_get(&p);
	d = pp_bufpool_get(&p);
	cr_assert(c == a || c == b, "a spare buffer must be handed out again");
	cr_assert(d == a || d == b, "a spare buffer must be handed out again");
	cr_assert_neq(c, d);
	cr_assert_eq(p.nfree, 0);
	pp_bufpool_put(&p, c);
	pp_bufpool_put(&p, d);
	pp_bufpool_destroy(&p);
}

Test(bufpool, cap_bounds_the_spares)
{
	struct pp_bufpool p;
	uint8_t *b[5];

	cr_assert_eq(pp_bufpool_init(&p, 2), 0);
	for (int i = 0; i < 5; i++) {
		b[i] = pp_bufpool_get(&p);
		cr_assert_not_null(b[i]);
	}
	cr_assert_eq(p.in_use, 5);
	for (int i = 0; i < 5; i++) {
		pp_bufpool_put(&p, b[i]);
		cr_assert_leq(p.nfree, 2, "never more than cap spares");
	}
	cr_assert_eq(p.nfree, 2);
	cr_assert_eq(p.in_use, 0);
	pp_bufpool_destroy(&p);
}

Test(bufpool, cap_zero_keeps_nothing)
{
	struct pp_bufpool p;
	uint8_t *a;

	cr_assert_eq(pp_bufpool_init(&p, 0), 0);
	a = pp_bufpool_get(&p);
	cr_assert_not_null(a);
	cr_assert_eq(p.in_use, 1);
	pp_bufpool_put(&p, a);
	cr_assert_eq(p.nfree, 0);
	cr_assert_eq(p.in_use, 0);
	pp_bufpool_destroy(&p);
}

Test(bufpool, in_use_accounting)
{
	struct pp_bufpool p;
	uint8_t *a, *b, *c;

	cr_assert_eq(pp_bufpool_init(&p, 8), 0);
	a = pp_bufpool_get(&p);
	cr_assert_eq(p.in_use, 1);
	b = pp_bufpool_get(&p);
	cr_assert_eq(p.in_use, 2);
	pp_bufpool_put(&p, a);
	cr_assert_eq(p.in_use, 1);
	cr_assert_eq(p.nfree, 1);
	c = pp_bufpool_get(&p); /* from the spares */
	cr_assert_eq(p.in_use, 2);
	cr_assert_eq(p.nfree, 0);
	pp_bufpool_put(&p, b);
	pp_bufpool_put(&p, c);
	cr_assert_eq(p.in_use, 0);
	cr_assert_eq(p.nfree, 2);
	pp_bufpool_destroy(&p);
}

Test(bufpool, put_null_does_nothing)
{
	struct pp_bufpool p;
	uint8_t *a;

	cr_assert_eq(pp_bufpool_init(&p, 2), 0);
	a = pp_bufpool_get(&p);
	pp_bufpool_put(&p, NULL);
	cr_assert_eq(p.in_use, 1);
	cr_assert_eq(p.nfree, 0);
	pp_bufpool_put(&p, a);
	pp_bufpool_destroy(&p);
}

Test(bufpool, steady_state_allocates_nothing_new)
{
	struct pp_bufpool p;
	uint8_t *first[3], *again[3];

	cr_assert_eq(pp_bufpool_init(&p, 3), 0);
	for (int i = 0; i < 3; i++)
		first[i] = pp_bufpool_get(&p);
	for (int i = 0; i < 3; i++)
		pp_bufpool_put(&p, first[i]);
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 3; i++) {
			again[i] = pp_bufpool_get(&p);
			cr_assert(
			    again[i] == first[0] || again[i] == first[1] ||
			        again[i] == first[2],
			    "round %d: a new buffer was allocated", round);
		}
		for (int i = 0; i < 3; i++)
			pp_bufpool_put(&p, again[i]);
	}
	pp_bufpool_destroy(&p);
}
