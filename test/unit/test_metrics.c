/*
 * Per-tunnel metrics and their Prometheus rendering; the text buffer they
 * are written into.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ops/metrics.h"
#include "util/strbuf.h"

static struct pp_tstats s;

static void
setup(void)
{
	pp_tstats_init(&s);
}

TestSuite(metrics, .init = setup);

/* Render one family of tunnel "t" into a fresh string (to be freed). */
static char *
render(enum pp_family f, uint32_t open)
{
	struct pp_sb b = {0};

	pp_tstats_render(&b, f, "t", &s, open);
	cr_assert(!b.failed);
	return (b.buf != NULL ? b.buf : strdup(""));
}

Test(metrics, results_are_counted_under_their_label)
{
	pp_tstats_result(&s, PP_RESULT_ESTABLISHED);
	pp_tstats_result(&s, PP_RESULT_ESTABLISHED);
	pp_tstats_result(&s, PP_RESULT_UPSTREAM_ERROR);
	char *out = render(PP_FAMILY_CONNECTIONS, 0);
	cr_assert(strstr(out, "peerproxy_connections_total{tunnel=\"t\","
	                      "result=\"established\"} 2\n") != NULL,
	          "%s", out);
	cr_assert(strstr(out, "result=\"upstream_error\"} 1\n") != NULL, "%s",
	          out);
	cr_assert(strstr(out, "result=\"refused\"} 0\n") != NULL, "%s", out);
	free(out);
}

Test(metrics, refusal_reasons_map_to_results)
{
	cr_assert_eq(pp_result_of_reason("max_connections_per_peer"),
	             PP_RESULT_LIMITED);
	cr_assert_eq(pp_result_of_reason("handshake_timeout"),
	             PP_RESULT_FAILED);
	cr_assert_eq(pp_result_of_reason("peer_alert"), PP_RESULT_FAILED);
	cr_assert_eq(pp_result_of_reason("untrusted"), PP_RESULT_REFUSED);
	cr_assert_eq(pp_result_of_reason("name_constraints"),
	             PP_RESULT_REFUSED);
}

Test(metrics, failure_table_overflows_into_other)
{
	char reason[32];

	for (int i = 0; i < PP_FAIL_REASONS + 10; i++) {
		snprintf(reason, sizeof(reason), "reason_%d", i);
		pp_tstats_failure(&s, reason);
	}
	pp_tstats_failure(&s, "reason_0");
	cr_assert_eq(s.nfailures, PP_FAIL_REASONS);
	cr_assert_eq(s.failures[0].n, 2);
	cr_assert_str_eq(s.failures[PP_FAIL_REASONS - 1].reason, "other");
	/* reasons 31..41 all went to "other" */
	cr_assert_eq(s.failures[PP_FAIL_REASONS - 1].n, 11);
	char *out = render(PP_FAMILY_FAILURES, 0);
	cr_assert(strstr(out, "{tunnel=\"t\",reason=\"other\"} 11\n") != NULL,
	          "%s", out);
	free(out);
}

/* Assert that ${out} holds the line ${fmt}... (with its newline). */
static void assert_line(const char *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
assert_line(const char *out, const char *fmt, ...)
{
	char want[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(want), "line too long: %s",
	          want);
	cr_assert(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want, out);
}

Test(metrics, histogram_buckets_are_cumulative)
{
	const char *f = "peerproxy_handshake_duration_seconds";

	pp_tstats_handshake(&s, 500);      /* <= 1ms */
	pp_tstats_handshake(&s, 1000);     /* on the bound: <= 1ms */
	pp_tstats_handshake(&s, 30000);    /* <= 50ms */
	pp_tstats_handshake(&s, 99000000); /* above every bound */
	char *out = render(PP_FAMILY_HANDSHAKE, 0);
	assert_line(out, "%s_bucket{tunnel=\"t\",le=\"0.001\"} 2\n", f);
	assert_line(out, "%s_bucket{tunnel=\"t\",le=\"0.025\"} 2\n", f);
	assert_line(out, "%s_bucket{tunnel=\"t\",le=\"0.05\"} 3\n", f);
	assert_line(out, "%s_bucket{tunnel=\"t\",le=\"10\"} 3\n", f);
	assert_line(out, "%s_bucket{tunnel=\"t\",le=\"+Inf\"} 4\n", f);
	assert_line(out, "%s_count{tunnel=\"t\"} 4\n", f);
	assert_line(out, "%s_sum{tunnel=\"t\"} 99.031500\n", f);
	free(out);
}

Test(metrics, label_values_are_escaped)
{
	struct pp_sb b = {0};

	pp_tstats_render(&b, PP_FAMILY_ACTIVE, "a\"b\\c\nd", &s, 7);
	cr_assert_str_eq(b.buf, "peerproxy_active_connections{tunnel="
	                        "\"a\\\"b\\\\c\\nd\"} 7\n");
	pp_sb_free(&b);
}

Test(metrics, headers_name_the_type)
{
	struct pp_sb b = {0};

	pp_family_header(&b, PP_FAMILY_HANDSHAKE);
	cr_assert(strstr(b.buf, "# TYPE peerproxy_handshake_duration_seconds "
	                        "histogram\n") != NULL,
	          "%s", b.buf);
	pp_sb_free(&b);
}

Test(strbuf, json_strings_are_escaped)
{
	struct pp_sb b = {0};

	pp_sb_json_str(&b, "q\"b\\\x01\xc3\xa9");
	pp_sb_puts(&b, " ");
	pp_sb_json_str(&b, NULL);
	cr_assert_str_eq(b.buf, "\"q\\\"b\\\\\\u0001\xc3\xa9\" null");
	pp_sb_free(&b);
	cr_assert_null(b.buf);
	cr_assert_eq(b.len, 0);
}

Test(strbuf, grows_past_its_first_allocation)
{
	struct pp_sb b = {0};

	for (int i = 0; i < 10000; i++)
		pp_sb_printf(&b, "%04d", i % 10000);
	cr_assert_eq(b.len, 40000);
	cr_assert(!b.failed);
	cr_assert_eq(strncmp(b.buf + 39996, "9999", 4), 0);
	cr_assert_eq(b.buf[b.len], '\0');
	pp_sb_free(&b);
}
