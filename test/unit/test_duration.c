#include <stdint.h>

#include <criterion/criterion.h>

#include "util/duration.h"

#define DAY_MS (24ULL * 3600 * 1000)

static void
accepts(const char *s, uint64_t want)
{
	uint64_t ms = 0xdeadbeef;

	cr_assert_eq(pp_duration_parse(s, &ms), 0, "\"%s\" must parse", s);
	cr_assert_eq(ms, want, "\"%s\": got %llu ms, want %llu", s,
	             (unsigned long long)ms, (unsigned long long)want);
}

static void
rejects(const char *s)
{
	uint64_t ms = 0;

	cr_assert_eq(pp_duration_parse(s, &ms), -1, "\"%s\" must be refused",
	             s);
}

Test(duration, units)
{
	accepts("500ms", 500);
	accepts("10s", 10000);
	accepts("2m", 120000);
	accepts("1h", 3600000);
	accepts("1ms", 1);
	accepts("90s", 90000);
}

Test(duration, zero)
{
	accepts("0", 0);
	accepts("0s", 0);
	accepts("0ms", 0);
	accepts("0h", 0);
}

Test(duration, bare_number_only_when_zero)
{
	rejects("10");
	rejects("1");
	rejects("500");
}

Test(duration, malformed)
{
	rejects("");
	rejects("-1s");
	rejects("+1s");
	rejects("1.5s");
	rejects("10x");
	rejects(" 10s");
	rejects("10s ");
	rejects("10 s");
	rejects("s");
	rejects("ms");
	rejects("10sec");
	rejects("1h30m");
	rejects("0x10s");
}

Test(duration, thirty_days_is_the_limit)
{
	accepts("720h", 30 * DAY_MS);
	accepts("43200m", 30 * DAY_MS);
	accepts("2592000s", 30 * DAY_MS);
	accepts("2592000000ms", 30 * DAY_MS);
	rejects("721h");
	rejects("43201m");
	rejects("2592001s");
	rejects("2592000001ms");
}

Test(duration, overflow)
{
	/* Values whose product or digits would wrap 64 bits must be refused,
	 * not wrapped into something small. */
	rejects("18446744073709551616ms");
	rejects("18446744073709551617s");
	rejects("5124095576030431h"); /* * 3600000 wraps to a small value */
	rejects("99999999999999999999999999999999h");
}
