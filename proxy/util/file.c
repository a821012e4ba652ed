#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
pp_file_kind(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return ("a regular file");
	case S_IFDIR:
		return ("a directory");
	case S_IFIFO:
		return ("a FIFO");
	case S_IFCHR:
		return ("a character device");
	case S_IFBLK:
		return ("a block device");
	case S_IFSOCK:
		return ("a socket");
	default:
		return ("not a regular file");
	}
}

/* The limit ${n} in words: "1 MiB", "64 KiB" or "1000 bytes". */
static void
limit_text(size_t n, char *buf, size_t len)
{
	if (n >= 1024 * 1024 && n % (1024 * 1024) == 0)
		snprintf(buf, len, "%zu MiB", n / (1024 * 1024));
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%zu KiB", n / 1024);
	else
		snprintf(buf, len, "%zu bytes", n);
}

static int
too_large(const char *path, size_t maxlen, char *err, size_t errlen)
{
	char lim[32];

	limit_text(maxlen, lim, sizeof(lim));
	snprintf(err, errlen, "%s: larger than the %s limit for this file",
	         path, lim);
	return (-1);
}

/* Refuse what is not a regular file, naming what it is. */
static int
not_regular(const char *path, unsigned mode, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: is %s, not a regular file", path,
	         pp_file_kind(mode));
	return (-1);
}

char *
pp_file_read(const char *path, size_t maxlen, size_t *out_len, char *err,
             size_t errlen)
{
	struct stat st;
	size_t cap, n = 0;
	char *buf = NULL, *nb;
	ssize_t r;
	int fd;

	/* Judge the path before opening it: opening some devices does
	 * something (a tape rewinds, a watchdog starts).  The verdict that
	 * counts is fstat's below, on what was really opened. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		not_regular(path, st.st_mode, err, errlen);
		return (NULL);
	}
	/* O_NONBLOCK: a FIFO swapped in meanwhile opens at once instead of
	 * waiting for a writer. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto err1;
	}
	if (!S_ISREG(st.st_mode)) {
		not_regular(path, st.st_mode, err, errlen);
		goto err1;
	}
	if (st.st_size < 0 || (size_t)st.st_size > maxlen) {
		too_large(path, maxlen, err, errlen);
		goto err1;
	}
	/* Read to the end, not st_size bytes: files in /proc say 0, and a
	 * file may grow meanwhile.  One byte more than the limit shows that
	 * it is over. */
	cap = (size_t)st.st_size + 1;
	if ((buf = malloc(cap + 1)) == NULL)
		goto oom;
	for (;;) {
		if (n == cap) {
			if (cap > maxlen) {
				too_large(path, maxlen, err, errlen);
				goto err1;
			}
			cap = cap * 2 > maxlen + 1 ? maxlen + 1 : cap * 2;
			if ((nb = realloc(buf, cap + 1)) == NULL)
				goto oom;
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto err1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > maxlen) {
		too_large(path, maxlen, err, errlen);
		goto err1;
	}
	buf[n] = '\0';
	close(fd);
	*out_len = n;
	return (buf);

oom:
	snprintf(err, errlen, "%s: out of memory", path);
err1:
	free(buf);
	close(fd);
	return (NULL);
}
