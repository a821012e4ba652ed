#ifndef PP_DURATION_H
#define PP_DURATION_H

#include <stdint.h>

/* pp_duration_parse(s, out_ms): parse a duration such as "500ms", "10s",
 * "2m", "1h" or "0" into milliseconds in ${out_ms}.  A bare number is only
 * accepted when it is 0.  Return 0, or -1 if ${s} is not a duration or
 * exceeds 30 days. */
int pp_duration_parse(const char *s, uint64_t *out_ms);

#endif
