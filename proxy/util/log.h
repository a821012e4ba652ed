#ifndef PP_LOG_H
#define PP_LOG_H

/*
 * Structured logging to stderr, one line per event.
 *
 * A line is built field by field into a stack buffer and written with a
 * single write(2), so lines from different worker threads never interleave
 * and no lock is taken.  Text format is logfmt:
 *     time=2026-11-29T23:10:00.123Z level=info event=ready key=value ...
 * JSON format carries the same keys in one object per line.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum pp_log_level { PP_LOG_DEBUG, PP_LOG_INFO, PP_LOG_WARN, PP_LOG_ERROR };

#define PP_LOG_LINE_MAX 2048

/* Warnings and errors of one kind (event and reason) beyond this many a
 * second are not written; their count is reported once a second. */
#define PP_LOG_FLOOD_BURST 10

struct pp_logline {
	char buf[PP_LOG_LINE_MAX];
	size_t len;
	int enabled;
	int full;    /* out of room: later fields are dropped */
	int limited; /* subject to the flood limit */
	int json;    /* the format when the line began: it ends in it */
	const char *event;
	char reason[48]; /* the "reason" field, the flood limit's key */
};

/* pp_log_configure(level, json): log events at ${level} and above, as JSON
 * objects if ${json} is non-zero, else logfmt.  Safe from any thread while
 * others log (a reload calls it); a line already begun keeps its format. */
void pp_log_configure(enum pp_log_level level, int json);

/* pp_log_level_parse(s, out): parse debug|info|warn|error into ${out}.
 * Return 0, or -1 if ${s} names no level. */
int pp_log_level_parse(const char *s, enum pp_log_level *out);

/* pp_log_enabled(level): non-zero if events at ${level} are written. */
int pp_log_enabled(enum pp_log_level level);

/* pp_log_begin(l, level, event): start a line for ${event} in ${l}.  If
 * ${level} is filtered out, the field calls and pp_log_end do nothing. */
void pp_log_begin(struct pp_logline *l, enum pp_log_level level,
                  const char *event);

/* pp_log_begin_always(l, level, event): as pp_log_begin, but written at
 * every log level: for the few lifecycle events (listening, ready,
 * stopped) that scripts and probes wait for. */
void pp_log_begin_always(struct pp_logline *l, enum pp_log_level level,
                         const char *event);

/* pp_log_str(l, key, value): add a string field; NULL is written as "-". */
void pp_log_str(struct pp_logline *l, const char *key, const char *value);

/* pp_log_u64(l, key, value): add an unsigned integer field. */
void pp_log_u64(struct pp_logline *l, const char *key, uint64_t value);

/* pp_log_secs(l, key, ms): add a duration field in seconds ("1.234s"). */
void pp_log_secs(struct pp_logline *l, const char *key, uint64_t ms);

/* pp_log_fmt(l, key, fmt, ...): add a string field formatted by printf. */
void pp_log_fmt(struct pp_logline *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pp_log_end(l): terminate the line and write it to stderr. */
void pp_log_end(struct pp_logline *l);

/* pp_log_flush_suppressed(): write one "log_suppressed" line for each
 * kind of warning or error whose lines were dropped by the flood limit
 * since the last call, with their count.  Call about once a second. */
void pp_log_flush_suppressed(void);

/* pp_log_msg(level, event, fmt, ...): log ${event} with a single "msg"
 * field formatted by printf. */
void pp_log_msg(enum pp_log_level level, const char *event, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));

#endif
