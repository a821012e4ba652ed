#include "util/duration.h"

#include <string.h>

#define MAX_MS (30ULL * 24 * 3600 * 1000)

int
pp_duration_parse(const char *s, uint64_t *out_ms)
{
	uint64_t n = 0, unit;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return (-1);
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > MAX_MS)
			return (-1);
	}
	if (strcmp(p, "ms") == 0 || (*p == '\0' && n == 0)) /* "0" too */
		unit = 1;
	else if (strcmp(p, "s") == 0)
		unit = 1000;
	else if (strcmp(p, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		unit = 3600 * 1000;
	else
		return (-1);
	if (n * unit > MAX_MS)
		return (-1);
	*out_ms = n * unit;
	return (0);
}
