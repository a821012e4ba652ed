/*
 * The file watch (ops/watch): directories that cannot be watched are
 * reported in one line, not one line each, and a set that fails the same
 * way again says so at debug level only.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <uv.h>

#include "ops/watch.h"
#include "support.h"
#include "util/log.h"

static char dir[512];
static uv_loop_t loop;
static struct pp_watch *w;

static void
on_change(void *arg)
{
	(void)arg;
}

static void
setup(void)
{
	t_tmpdir(dir, sizeof(dir));
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_not_null(w = pp_watch_new(&loop, 10, on_change, NULL));
	pp_log_configure(PP_LOG_DEBUG, 0);
}

static void
teardown(void)
{
	pp_watch_free(w);
	uv_run(&loop, UV_RUN_DEFAULT); /* the handles close */
	cr_assert_eq(uv_loop_close(&loop), 0);
	pp_log_configure(PP_LOG_INFO, 0);
	t_rmtree(dir);
}

TestSuite(watch, .init = setup, .fini = teardown);

/* Count the lines of ${log} holding both ${a} and ${b}. */
static int
lines_with(const char *log, const char *a, const char *b)
{
	int n = 0;

	for (const char *l = log; l != NULL && *l != '\0';) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);
		char *line = strndup(l, len);

		cr_assert_not_null(line);
		if (strstr(line, a) != NULL && strstr(line, b) != NULL)
			n++;
		free(line);
		l = end ? end + 1 : NULL;
	}
	return (n);
}

/* pp_watch_set of the files ${names} under ${dir}; what it logged. */
static char *
set(const char *const *names, size_t n, size_t want_watched)
{
	char paths[8][600];
	const char *v[8];
	struct t_capture c;

	cr_assert_leq(n, 8);
	for (size_t i = 0; i < n; i++)
		v[i] = t_path(paths[i], sizeof(paths[i]), dir, names[i]);
	t_capture_begin(&c);
	size_t got = pp_watch_set(w, v, n);
	char *log = t_capture_end(&c);
	cr_assert_eq(got, want_watched, "%zu watched, not %zu: %s", got,
	             want_watched, log);
	return (log);
}

Test(watch, directories_that_cannot_be_watched_are_one_line_then_debug)
{
	/* Three files in directories that do not exist (inotify refuses
	 * them, as it refuses every directory past its watch limit) and
	 * one in the directory that does. */
	static const char *const names[] = {"gone-a/x", "gone-b/x", "gone-c/x",
	                                    "here"};
	char *log;

	log = set(names, 4, 1);
	cr_assert_eq(lines_with(log, "event=watch_failed", ""), 1, "%s", log);
	cr_assert_eq(lines_with(log, "level=warn",
	                        "cannot watch 3 of 4 "
	                        "directories"),
	             1, "%s", log);
	cr_assert_eq(lines_with(log, "watch_failed", "/gone-a: "), 1, "%s",
	             log);
	free(log);

	/* The same again (a rescan): at debug only. */
	log = set(names, 4, 1);
	cr_assert_eq(lines_with(log, "event=watch_failed", ""), 1, "%s", log);
	cr_assert_eq(lines_with(log, "level=debug", "cannot watch 3 of 4"), 1,
	             "%s", log);
	free(log);

	/* Fewer failing is news. */
	log = set(names + 1, 3, 1);
	cr_assert_eq(lines_with(log, "level=warn", "cannot watch 2 of 3"), 1,
	             "%s", log);
	free(log);

	/* None failing: said once. */
	log = set(names + 3, 1, 1);
	cr_assert_eq(lines_with(log, "level=info", "event=watch_restored"), 1,
	             "%s", log);
	cr_assert_eq(lines_with(log, "watch_failed", ""), 0, "%s", log);
	free(log);
	log = set(names + 3, 1, 1);
	cr_assert_eq(lines_with(log, "watch_", ""), 0, "%s", log);
	free(log);
}
