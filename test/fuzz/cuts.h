#ifndef PP_FUZZ_CUTS_H
#define PP_FUZZ_CUTS_H

/*
 * How a harness cuts its input into reads: whole, byte by byte, or in
 * pieces whose sizes a seed decides (the input's first byte), so that a
 * crash input replays the same cuts.
 */

#include <stddef.h>
#include <stdint.h>

struct cuts {
	int plan;       /* CUTS_WHOLE, CUTS_BYTES or CUTS_SEEDED */
	uint32_t state; /* CUTS_SEEDED: the generator */
};

enum { CUTS_WHOLE, CUTS_BYTES, CUTS_SEEDED };

/* cuts_init(c, plan, seed): cut by ${plan}; ${seed} chooses the pieces. */
static inline void
cuts_init(struct cuts *c, int plan, uint32_t seed)
{
	c->plan = plan;
	c->state = seed * 2654435761u + 0x9E3779B9u;
}

/* cuts_next(c, left): the size of the next read, 1 to ${left} (> 0).
 * Seeded pieces are mostly small (1 to 16 bytes), sometimes up to 4 KiB,
 * and sometimes all that is left. */
static inline size_t
cuts_next(struct cuts *c, size_t left)
{
	size_t n;

	if (c->plan == CUTS_WHOLE)
		return (left);
	if (c->plan == CUTS_BYTES)
		return (1);
	/* xorshift32 */
	c->state ^= c->state << 13;
	c->state ^= c->state >> 17;
	c->state ^= c->state << 5;
	switch (c->state % 8) {
	case 0:
		n = left;
		break;
	case 1:
		n = 1 + (c->state >> 8) % 4096;
		break;
	default:
		n = 1 + (c->state >> 8) % 16;
		break;
	}
	return (n < left ? n : left);
}

#endif
