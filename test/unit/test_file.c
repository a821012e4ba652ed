/*
 * Reading the files a configuration names (util/file): regular files
 * only, bounded, never blocking.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "support.h"
#include "util/file.h"

static char dir[512];

static void
setup(void)
{
	t_tmpdir(dir, sizeof(dir));
	/* A read that blocks would hang the test: end it instead. */
	alarm(20);
}

static void
teardown(void)
{
	alarm(0);
	t_rmtree(dir);
}

TestSuite(file, .init = setup, .fini = teardown);

static const char *
p(int slot, const char *name)
{
	static char bufs[4][1024];

	return (t_path(bufs[slot], sizeof(bufs[slot]), dir, name));
}

/* pp_file_read(path) must fail with an error naming ${path} and saying
 * ${why}. */
static void
assert_refused(const char *path, size_t maxlen, const char *why)
{
	char err[512] = "";
	size_t len = 0;
	char *data = pp_file_read(path, maxlen, &len, err, sizeof(err));

	cr_assert_null(data, "%s must be refused", path);
	cr_assert(t_contains(err, path), "error must name the file: \"%s\"",
	          err);
	cr_assert(t_contains(err, why), "error \"%s\" lacks \"%s\"", err, why);
}

Test(file, read_whole_and_terminated)
{
	char err[256] = "";
	size_t len = 0;
	char *data;

	t_write(p(0, "f.txt"), "abc\ndef\n");
	data = pp_file_read(p(0, "f.txt"), 100, &len, err, sizeof(err));
	cr_assert_not_null(data, "%s", err);
	cr_assert_eq(len, 8);
	cr_assert_str_eq(data, "abc\ndef\n");
	free(data);
}

Test(file, empty_file_is_an_empty_string)
{
	char err[256] = "";
	size_t len = 99;
	char *data;

	t_write(p(0, "empty"), "");
	data = pp_file_read(p(0, "empty"), 100, &len, err, sizeof(err));
	cr_assert_not_null(data, "%s", err);
	cr_assert_eq(len, 0);
	cr_assert_str_eq(data, "");
	free(data);
}

Test(file, the_limit_is_exact_and_named)
{
	char err[256] = "";
	size_t len = 0;
	char *data;

	t_write(p(0, "f.txt"), "0123456789");
	assert_refused(p(0, "f.txt"), 9, "larger than the 9 bytes limit");
	data = pp_file_read(p(0, "f.txt"), 10, &len, err, sizeof(err));
	cr_assert_not_null(data, "exactly the limit is fine: %s", err);
	cr_assert_eq(len, 10);
	free(data);
	cr_assert_eq(truncate(p(0, "f.txt"), 2 * 1024 * 1024), 0);
	assert_refused(p(0, "f.txt"), PP_FILE_MAX_PEM,
	               "larger than the 1 MiB limit");
	cr_assert_eq(truncate(p(0, "f.txt"), 65 * 1024), 0);
	assert_refused(p(0, "f.txt"), PP_FILE_MAX_STOMP,
	               "larger than the 64 KiB limit");
}

Test(file, a_huge_sparse_file_is_refused_before_reading)
{
	/* 200 GB of holes: reading it would take minutes, the size alone
	 * decides. */
	t_write(p(0, "huge"), "");
	cr_assert_eq(truncate(p(0, "huge"), 200LL * 1000 * 1000 * 1000), 0);
	assert_refused(p(0, "huge"), PP_FILE_MAX_CONFIG, "1 MiB limit");
}

Test(file, content_past_the_limit_is_refused_when_the_size_says_zero)
{
	char err[256] = "";
	size_t len = 0;
	char *data;
	struct stat st;

	/* Files in /proc have size 0 and content: read to the end. */
	cr_assert_eq(stat("/proc/self/maps", &st), 0);
	cr_assert_eq(st.st_size, 0);
	assert_refused("/proc/self/maps", 16, "larger than");
	data = pp_file_read("/proc/self/status", 64 * 1024, &len, err,
	                    sizeof(err));
	cr_assert_not_null(data, "%s", err);
	cr_assert(len > 0 && strncmp(data, "Name:", 5) == 0, "%s", data);
	cr_assert_eq(strlen(data), len);
	free(data);
}

Test(file, a_directory_is_refused)
{
	assert_refused(dir, 100, "is a directory, not a regular file");
}

Test(file, a_fifo_is_refused_without_blocking)
{
	cr_assert_eq(mkfifo(p(0, "fifo"), 0600), 0);
	assert_refused(p(0, "fifo"), 100, "is a FIFO");
	cr_assert_eq(symlink(p(0, "fifo"), p(1, "link")), 0);
	assert_refused(p(1, "link"), 100, "is a FIFO");
}

Test(file, a_symlink_to_dev_zero_is_refused)
{
	cr_assert_eq(symlink("/dev/zero", p(0, "zero")), 0);
	assert_refused(p(0, "zero"), 100, "is a character device");
}

Test(file, a_socket_is_refused)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p(0, "sock"));
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_refused(p(0, "sock"), 100, "is a socket");
	close(fd);
}

Test(file, a_missing_file_is_named_with_the_reason)
{
	assert_refused(p(0, "nope"), 100, "No such file or directory");
	cr_assert_eq(symlink(p(0, "nope"), p(1, "dangling")), 0);
	assert_refused(p(1, "dangling"), 100, "No such file or directory");
}

Test(file, an_unreadable_file_is_named_with_the_reason)
{
	if (geteuid() == 0) {
		teardown(); /* criterion skips the .fini of a skipped test */
		cr_skip_test("root reads every file");
	}
	t_write(p(0, "secret"), "x");
	cr_assert_eq(chmod(p(0, "secret"), 0), 0);
	assert_refused(p(0, "secret"), 100, "Permission denied");
}
