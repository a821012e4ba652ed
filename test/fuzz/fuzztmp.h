#ifndef PP_FUZZ_TMP_H
#define PP_FUZZ_TMP_H

/*
 * A scratch directory for harnesses whose target reads files: in $TMPDIR,
 * else in /dev/shm (memory: a file written and read back per input costs
 * ten times more on a disk), else in /tmp.
 */

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* fuzz_tmpdir(name, dir, len): make a fresh directory for harness
 * ${name} and write its path to ${dir} (${len} bytes). */
static inline void
fuzz_tmpdir(const char *name, char *dir, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	if (tmp == NULL || tmp[0] != '/')
		tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)
		          ? "/dev/shm"
		          : "/tmp";
	if ((size_t)snprintf(dir, len, "%s/%s.XXXXXX", tmp, name) >= len ||
	    mkdtemp(dir) == NULL)
		abort();
}

#endif
