/*
 * Structured logging: what reaches file descriptor 2.  Each test redirects
 * fd 2 into a temporary file (criterion runs every test in its own
 * process, so the logger's global configuration does not leak between
 * tests).
 */

#include <pthread.h>
#include <regex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "support.h"
#include "util/log.h"

/* Log one event with awkward values; return what was written. */
static char *
log_sample(enum pp_log_level level)
{
	struct t_capture c;
	struct pp_logline l;

	t_capture_begin(&c);
	pp_log_begin(&l, level, "sample");
	pp_log_str(&l, "plain", "abc");
	pp_log_str(&l, "space", "a b");
	pp_log_str(&l, "quote", "say \"hi\"");
	pp_log_str(&l, "newline", "line1\nline2");
	pp_log_str(&l, "backslash", "C:\\dir");
	pp_log_str(&l, "equals", "k=v");
	pp_log_str(&l, "empty", "");
	pp_log_str(&l, "null", NULL);
	pp_log_u64(&l, "bytes", 18446744073709551615ULL);
	pp_log_secs(&l, "elapsed", 1234);
	pp_log_fmt(&l, "fmt", "%d-%s", 7, "x y");
	pp_log_end(&l);
	return (t_capture_end(&c));
}

static size_t
count_char(const char *s, char ch)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == ch;
	return (n);
}

static void
assert_one_line(const char *out)
{
	size_t len = strlen(out);

	cr_assert_gt(len, 0, "nothing was written");
	cr_assert_eq(out[len - 1], '\n', "a line ends with a newline: %s", out);
	cr_assert_eq(count_char(out, '\n'), 1, "exactly one line: %s", out);
}

static void
has(const char *out, const char *field)
{
	cr_assert(t_contains(out, field), "missing %s in: %s", field, out);
}

Test(log, logfmt_fields_and_quoting)
{
	char *out;
	regex_t re;

	pp_log_configure(PP_LOG_DEBUG, 0);
	out = log_sample(PP_LOG_INFO);
	assert_one_line(out);

	cr_assert_eq(
	    regcomp(&re,
	            "^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}"
	            ":[0-9]{2}\\.[0-9]{3}Z level=info event=sample ",
	            REG_EXTENDED | REG_NOSUB),
	    0);
	cr_assert_eq(regexec(&re, out, 0, NULL, 0), 0, "bad line head: %s",
	             out);
	regfree(&re);

	has(out, " plain=abc ");
	has(out, " space=\"a b\" ");
	has(out, " quote=\"say \\\"hi\\\"\" ");
	/* A newline is escaped inside quotes (\n or \u000a), never raw. */
	cr_assert(t_contains(out, " newline=\"line1\\nline2\" ") ||
	              t_contains(out, " newline=\"line1\\u000aline2\" "),
	          "newline not quoted and escaped: %s", out);
	has(out, " backslash=\"C:\\\\dir\" ");
	has(out, " equals=\"k=v\" ");
	has(out, " empty=\"\" ");
	has(out, " null=- ");
	has(out, " bytes=18446744073709551615 ");
	has(out, " elapsed=1.234s ");
	has(out, " fmt=\"7-x y\"\n");
	free(out);
}

Test(log, json_is_one_valid_object_per_line)
{
	char err[256];
	struct tj *v;
	const struct tj *f;
	char *out;

	pp_log_configure(PP_LOG_DEBUG, 1);
	out = log_sample(PP_LOG_WARN);
	assert_one_line(out);
	cr_assert(strncmp(out, "{\"time\":", 8) == 0,
	          "starts with {\"time\": %s", out);
	cr_assert(strcmp(out + strlen(out) - 2, "}\n") == 0, "ends with }\\n");

	v = tj_parse(out, strlen(out), err, sizeof(err));
	cr_assert_not_null(v, "not JSON (%s): %s", err, out);
	cr_assert_eq(v->type, TJ_OBJECT);
	cr_assert_str_eq(v->keys[0], "time");
	cr_assert_str_eq(tj_str(v, "level"), "warn");
	cr_assert_str_eq(tj_str(v, "event"), "sample");
	cr_assert_str_eq(tj_str(v, "plain"), "abc");
	cr_assert_str_eq(tj_str(v, "space"), "a b");
	cr_assert_str_eq(tj_str(v, "quote"), "say \"hi\"");
	cr_assert_str_eq(tj_str(v, "newline"), "line1\nline2");
	cr_assert_str_eq(tj_str(v, "backslash"), "C:\\dir");
	cr_assert_str_eq(tj_str(v, "equals"), "k=v");
	cr_assert_str_eq(tj_str(v, "empty"), "");
	cr_assert_str_eq(tj_str(v, "null"), "-");
	cr_assert_str_eq(tj_str(v, "fmt"), "7-x y");
	f = tj_get(v, "bytes");
	cr_assert(f != NULL && f->type == TJ_NUMBER, "bytes is a number");
	cr_assert_float_eq(f->number, 18446744073709551615.0, 1e4);
	f = tj_get(v, "elapsed");
	cr_assert(f != NULL && f->type == TJ_NUMBER, "elapsed is a number");
	cr_assert_float_eq(f->number, 1.234, 1e-9);
	tj_free(v);
	free(out);
}

Test(log, json_control_characters_are_escaped)
{
	struct t_capture c;
	char err[256], *out;
	struct tj *v;

	pp_log_configure(PP_LOG_DEBUG, 1);
	t_capture_begin(&c);
	pp_log_msg(PP_LOG_ERROR, "ctl",
	           "a\tb\rc\x01"
	           "d\x1f");
	out = t_capture_end(&c);
	assert_one_line(out);
	v = tj_parse(out, strlen(out), err, sizeof(err));
	cr_assert_not_null(v, "not JSON (%s): %s", err, out);
	cr_assert_str_eq(tj_str(v, "msg"), "a\tb\rc\x01"
	                                   "d\x1f");
	cr_assert_str_eq(tj_str(v, "level"), "error");
	tj_free(v);
	free(out);
}

Test(log, level_filtering)
{
	struct t_capture c;
	struct pp_logline l;
	char *out;

	pp_log_configure(PP_LOG_WARN, 0);
	cr_assert_not(pp_log_enabled(PP_LOG_DEBUG));
	cr_assert_not(pp_log_enabled(PP_LOG_INFO));
	cr_assert(pp_log_enabled(PP_LOG_WARN));
	cr_assert(pp_log_enabled(PP_LOG_ERROR));

	t_capture_begin(&c);
	pp_log_msg(PP_LOG_DEBUG, "dropped_debug", "x");
	pp_log_msg(PP_LOG_INFO, "dropped_info", "x");
	pp_log_begin(&l, PP_LOG_INFO, "dropped_line");
	pp_log_str(&l, "k", "v");
	pp_log_u64(&l, "n", 1);
	pp_log_secs(&l, "s", 1);
	pp_log_fmt(&l, "f", "%s", "v");
	pp_log_end(&l);
	pp_log_msg(PP_LOG_WARN, "kept_warn", "w");
	pp_log_msg(PP_LOG_ERROR, "kept_error", "e");
	out = t_capture_end(&c);

	cr_assert_not(t_contains(out, "dropped"), "filtered events leaked: %s",
	              out);
	cr_assert_eq(count_char(out, '\n'), 2, "two lines expected: %s", out);
	has(out, " level=warn event=kept_warn msg=w\n");
	has(out, " level=error event=kept_error msg=e\n");
	free(out);
}

Test(log, debug_level_writes_everything)
{
	struct t_capture c;
	char *out;

	pp_log_configure(PP_LOG_DEBUG, 0);
	t_capture_begin(&c);
	pp_log_msg(PP_LOG_DEBUG, "d", "1");
	pp_log_msg(PP_LOG_INFO, "i", "2");
	out = t_capture_end(&c);
	cr_assert_eq(count_char(out, '\n'), 2, "%s", out);
	has(out, "level=debug event=d msg=1\n");
	has(out, "level=info event=i msg=2\n");
	free(out);
}

Test(log, level_names_parse)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	static const enum pp_log_level levels[] = {PP_LOG_DEBUG, PP_LOG_INFO,
	                                           PP_LOG_WARN, PP_LOG_ERROR};
	enum pp_log_level lv;

	for (size_t i = 0; i < 4; i++) {
		lv = (enum pp_log_level)99;
		cr_assert_eq(pp_log_level_parse(names[i], &lv), 0, "%s",
		             names[i]);
		cr_assert_eq(lv, levels[i], "%s", names[i]);
	}
	cr_assert_eq(pp_log_level_parse("", &lv), -1);
	cr_assert_eq(pp_log_level_parse("verbose", &lv), -1);
	cr_assert_eq(pp_log_level_parse("warning", &lv), -1);
	cr_assert_eq(pp_log_level_parse("err", &lv), -1);
}

/* A value far longer than a line is truncated ("a log line must never
 * fail"), but the line must stay one line, bounded, and still parse: the
 * quoted value closed in logfmt, one whole object in JSON.
 *
 * Known proxy bug (util/log.c, put()/pp_log_str): truncation happens byte
 * by byte, so the closing quote of the value that hits the limit is
 * dropped (and an escape sequence may be cut in half); pp_log_end then
 * appends "}\n" to an unterminated string.  These two tests fail until
 * that is fixed. */
Test(log, overlong_value_stays_one_bounded_line)
{
	struct t_capture c;
	struct pp_logline l;
	char *big = malloc(3 * PP_LOG_LINE_MAX);
	char *out;

	cr_assert_not_null(big);
	memset(big, 'a', 3 * PP_LOG_LINE_MAX - 1);
	big[3 * PP_LOG_LINE_MAX - 1] = '\0';
	big[1] = ' '; /* needs quotes */
	pp_log_configure(PP_LOG_DEBUG, 0);
	t_capture_begin(&c);
	pp_log_begin(&l, PP_LOG_INFO, "big");
	pp_log_str(&l, "v", big);
	pp_log_end(&l);
	out = t_capture_end(&c);
	assert_one_line(out);
	cr_assert_leq(strlen(out), PP_LOG_LINE_MAX);
	/* The quoted value must be closed, or a logfmt reader takes the
	 * rest of the stream for the value. */
	cr_expect_eq(count_char(out, '"') % 2, 0,
	             "unbalanced quotes in a truncated line: ...%s",
	             out + strlen(out) - 40);
	free(out);
	free(big);
}

Test(log, overlong_value_keeps_json_valid)
{
	struct t_capture c;
	struct pp_logline l;
	char err[256], *out;
	char *big = malloc(3 * PP_LOG_LINE_MAX);
	struct tj *v;

	cr_assert_not_null(big);
	memset(big, 'a', 3 * PP_LOG_LINE_MAX - 1);
	big[3 * PP_LOG_LINE_MAX - 1] = '\0';
	pp_log_configure(PP_LOG_DEBUG, 1);
	t_capture_begin(&c);
	pp_log_begin(&l, PP_LOG_INFO, "big");
	pp_log_str(&l, "v", big);
	pp_log_u64(&l, "after", 1);
	pp_log_end(&l);
	out = t_capture_end(&c);
	assert_one_line(out);
	cr_assert_leq(strlen(out), PP_LOG_LINE_MAX);
	v = tj_parse(out, strlen(out), err, sizeof(err));
	cr_expect_not_null(v,
	                   "a truncated JSON line must still parse (%s): "
	                   "...%s",
	                   err, out + strlen(out) - 40);
	tj_free(v);
	free(out);
	free(big);
}

static size_t
count_substr(const char *s, const char *sub)
{
	size_t n = 0;

	while ((s = strstr(s, sub)) != NULL) {
		n++;
		s += strlen(sub);
	}
	return (n);
}

/* Warnings of one kind past the burst are dropped and reported once with
 * their count; another kind, and info lines, are not held back. */
Test(log, flood_of_identical_warnings_is_limited_and_counted)
{
	struct t_capture c;
	struct pp_logline l;
	char want[128]; /* the whole line: 80 bytes cut the count off */

	t_capture_begin(&c);
	for (int i = 0; i < 100; i++) {
		pp_log_begin(&l, PP_LOG_WARN, "handshake_refused");
		pp_log_str(&l, "reason", "untrusted");
		pp_log_u64(&l, "i", (uint64_t)i);
		pp_log_end(&l);
	}
	pp_log_begin(&l, PP_LOG_WARN, "handshake_refused");
	pp_log_str(&l, "reason", "expired");
	pp_log_end(&l);
	for (int i = 0; i < 30; i++) {
		pp_log_begin(&l, PP_LOG_INFO, "tunnel_closed");
		pp_log_end(&l);
	}
	pp_log_flush_suppressed();
	pp_log_flush_suppressed(); /* nothing new: no second report */
	char *out = t_capture_end(&c);
	size_t written = count_substr(out, "reason=untrusted i=");
	/* the burst may straddle a second boundary: then two bursts pass */
	cr_assert(written == PP_LOG_FLOOD_BURST ||
	              written == 2 * PP_LOG_FLOOD_BURST,
	          "%zu written:\n%s", written, out);
	snprintf(want, sizeof(want),
	         "event=log_suppressed suppressed_event=handshake_refused "
	         "reason=untrusted count=%zu\n",
	         100 - written);
	cr_assert(strstr(out, want) != NULL, "%s", out);
	cr_assert_eq(count_substr(out, "event=log_suppressed"), 1, "%s", out);
	cr_assert_eq(count_substr(out, "reason=expired"), 1, "%s", out);
	cr_assert_eq(count_substr(out, "event=tunnel_closed"), 30, "%s", out);
	free(out);
}

/* A reload sets the format while workers log. */
static atomic_int toggling;
static atomic_ulong toggles;

static void *
toggle_format(void *arg)
{
	int json = 0;

	(void)arg;
	while (atomic_load(&toggling)) {
		pp_log_configure(PP_LOG_INFO, json);
		json = !json;
		atomic_fetch_add(&toggles, 1);
	}
	return (NULL);
}

/* The format may change at any moment (a reload on the main thread while
 * workers log): every line is written wholly in one format or the other,
 * never begun in JSON and finished in logfmt. */
Test(log, a_format_change_never_splits_a_line)
{
	struct t_capture c;
	struct pp_logline l;
	size_t lines = 0, n = 0, njson = 0;
	unsigned long first;
	pthread_t th;
	char *out, *line, *save = NULL;

	atomic_store(&toggling, 1);
	t_capture_begin(&c);
	cr_assert_eq(pthread_create(&th, NULL, toggle_format, NULL), 0);
	while ((first = atomic_load(&toggles)) < 2)
		sched_yield();
	/* Lines until the format has changed many times meanwhile. */
	while (lines < 20000 || atomic_load(&toggles) - first < 2000) {
		pp_log_begin(&l, PP_LOG_INFO, "mixed");
		pp_log_str(&l, "a", "one");
		pp_log_u64(&l, "b", (uint64_t)lines);
		pp_log_secs(&l, "c", 1500);
		pp_log_str(&l, "d", "two words");
		pp_log_end(&l);
		lines++;
	}
	atomic_store(&toggling, 0);
	pthread_join(th, NULL);
	out = t_capture_end(&c);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++) {
		size_t len = strlen(line);
		if (line[0] == '{') {
			njson++;
			cr_assert(line[len - 1] == '}' &&
			              strstr(line, ",\"a\":\"one\",\"b\":") &&
			              strstr(line, ",\"c\":1.500,\"d\":\"two "
			                           "words\"}"),
			          "a JSON line in two formats: %s", line);
		} else {
			cr_assert(
			    strncmp(line, "time=", 5) == 0 &&
			        strstr(line, " a=one b=") &&
			        strstr(line, " c=1.500s d=\"two words\"") &&
			        line[len - 1] == '"',
			    "a logfmt line in two formats: %s", line);
		}
	}
	cr_assert_eq(n, lines);
	free(out);
}
