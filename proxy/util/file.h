#ifndef PP_FILE_H
#define PP_FILE_H

/*
 * Reading the files a configuration names: the configuration itself,
 * certificates, keys, and node data.  Every such file goes through
 * pp_file_read, which reads regular files only (a FIFO would block, a
 * device like /dev/zero would never end) and never more than a limit, so
 * a hostile or mistaken path costs bounded time and memory.
 */

#include <stddef.h>

/* Limits for each kind of file (README, "Limits"). */
#define PP_FILE_MAX_CONFIG (1024 * 1024) /* the YAML configuration */
#define PP_FILE_MAX_PEM    (1024 * 1024) /* certificates and keys */
#define PP_FILE_MAX_STOMP  (64 * 1024)   /* nodeinfo/stomp.toml */
#define PP_FILE_MAX_NODEID 1024          /* db/nodeid */

/* pp_file_read(path, maxlen, out_len, err, errlen): read the whole file at
 * ${path} (symlinks followed) into a NUL-terminated malloc'd buffer and
 * set ${out_len} to its length.  Anything but a regular file is refused
 * without blocking (the file is opened non-blocking and judged by fstat on
 * the opened descriptor), and so is a file of more than ${maxlen} bytes,
 * whether its size says so or its content runs on past it.  Return the
 * buffer, or NULL with a reason naming ${path} in ${err}. */
char *pp_file_read(const char *path, size_t maxlen, size_t *out_len, char *err,
                   size_t errlen);

/* pp_file_kind(mode): what a file of st_mode ${mode} is, in words ("a
 * directory", "a FIFO", ...). */
const char *pp_file_kind(unsigned mode);

#endif
