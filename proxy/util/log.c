#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Written by a reload on the main thread while workers log: atomics.
 * Each is read once per line (the format in pp_log_begin, into the line),
 * so a line begun in one format is finished in it. */
static atomic_int log_min = PP_LOG_INFO;
static atomic_int log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
pp_log_configure(enum pp_log_level level, int json)
{
	atomic_store_explicit(&log_min, (int)level, memory_order_relaxed);
	atomic_store_explicit(&log_json, json != 0, memory_order_relaxed);
}

int
pp_log_level_parse(const char *s, enum pp_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum pp_log_level)i;
			return (0);
		}
	}
	return (-1);
}

int
pp_log_enabled(enum pp_log_level level)
{
	return ((int)level >=
	        atomic_load_explicit(&log_min, memory_order_relaxed));
}

/* Room kept at the end of every line for closing a quoted value, the JSON
 * object and the newline, so a truncated line stays well-formed. */
#define LINE_RESERVE 4

/* Append ${n} bytes whole, or nothing if they do not fit: a log line must
 * never fail, and must never end inside an escape. */
static int
put(struct pp_logline *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - LINE_RESERVE - l->len) {
		l->full = 1;
		return (-1);
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return (0);
}

static void
puts_(struct pp_logline *l, const char *s)
{
	put(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at ${p}, or 0 if it is not one. */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n;

	if (p[0] < 0x80)
		return (1);
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return (0);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return (0);
	}
	return (n);
}

/* logfmt values need quotes when they hold spaces, quotes, '=' or bytes
 * outside printable ASCII. */
static int
needs_quotes(const char *v)
{
	if (*v == '\0')
		return (1);
	for (; *v; v++) {
		if (*v == ' ' || *v == '"' || *v == '=' || *v == '\\' ||
		    (unsigned char)*v < 0x20 || (unsigned char)*v >= 0x7f)
			return (1);
	}
	return (0);
}

/* Append ${v} escaped for a quoted value: valid UTF-8 passes, control
 * characters and invalid bytes become \u00XX, so the line is valid JSON
 * and unambiguous logfmt whatever a peer put in its certificate. */
static void
put_escaped(struct pp_logline *l, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	char esc[8];
	size_t n;

	while (*p != '\0' && !l->full) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(l, esc, 2);
			p++;
		} else if (*p < 0x20 || *p == 0x7f || (n = utf8_len(p)) == 0) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			put(l, esc, 6);
			p++;
		} else {
			put(l, (const char *)p, n);
			p += n;
		}
	}
}

static void
put_key(struct pp_logline *l, const char *key)
{
	/* Keys and values go in whole or not at all once the line is full. */
	if (l->full ||
	    sizeof(l->buf) - LINE_RESERVE - l->len < strlen(key) + 8) {
		l->full = 1;
		return;
	}
	if (l->json) {
		puts_(l, ",\"");
		puts_(l, key);
		puts_(l, "\":");
	} else {
		puts_(l, " ");
		puts_(l, key);
		puts_(l, "=");
	}
}

static void begin(struct pp_logline *l, enum pp_log_level level,
                  const char *event, int force);

void
pp_log_begin(struct pp_logline *l, enum pp_log_level level, const char *event)
{
	begin(l, level, event, 0);
}

void
pp_log_begin_always(struct pp_logline *l, enum pp_log_level level,
                    const char *event)
{
	begin(l, level, event, 1);
}

static void
begin(struct pp_logline *l, enum pp_log_level level, const char *event,
      int force)
{
	struct timeval tv;
	struct tm tm;
	char ts[96]; /* whatever ints gmtime_r gives, the text fits */

	l->len = 0;
	l->full = 0;
	l->event = event;
	l->reason[0] = '\0';
	l->limited = !force && level >= PP_LOG_WARN;
	l->json = atomic_load_explicit(&log_json, memory_order_relaxed);
	l->enabled = force || pp_log_enabled(level);
	if (!l->enabled)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
	if (l->json) {
		puts_(l, "{\"time\":\"");
		puts_(l, ts);
		puts_(l, "\",\"level\":\"");
		puts_(l, level_names[level]);
		puts_(l, "\",\"event\":\"");
		puts_(l, event);
		puts_(l, "\"");
	} else {
		puts_(l, "time=");
		puts_(l, ts);
		puts_(l, " level=");
		puts_(l, level_names[level]);
		puts_(l, " event=");
		puts_(l, event);
	}
}

void
pp_log_str(struct pp_logline *l, const char *key, const char *value)
{
	if (!l->enabled)
		return;
	if (value == NULL)
		value = "-";
	if (l->limited && strcmp(key, "reason") == 0)
		snprintf(l->reason, sizeof(l->reason), "%s", value);
	put_key(l, key);
	if (l->full)
		return;
	if (l->json || needs_quotes(value)) {
		puts_(l, "\"");
		put_escaped(l, value);
		/* The reserve guarantees room for the closing quote. */
		l->buf[l->len++] = '"';
	} else {
		puts_(l, value);
	}
}

void
pp_log_u64(struct pp_logline *l, const char *key, uint64_t value)
{
	char num[24];

	if (!l->enabled)
		return;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
	put_key(l, key);
	if (l->full)
		return;
	puts_(l, num);
}

void
pp_log_secs(struct pp_logline *l, const char *key, uint64_t ms)
{
	char num[32];

	if (!l->enabled)
		return;
	if (l->json)
		snprintf(num, sizeof(num), "%llu.%03llu",
		         (unsigned long long)(ms / 1000),
		         (unsigned long long)(ms % 1000));
	else
		snprintf(num, sizeof(num), "%llu.%03llus",
		         (unsigned long long)(ms / 1000),
		         (unsigned long long)(ms % 1000));
	put_key(l, key);
	if (l->full)
		return;
	puts_(l, num);
}

void
pp_log_fmt(struct pp_logline *l, const char *key, const char *fmt, ...)
{
	char val[PP_LOG_LINE_MAX];
	va_list ap;

	if (!l->enabled)
		return;
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	pp_log_str(l, key, val);
}

/* ---- the flood limit ---- */

#define FLOOD_KINDS 64

struct flood {
	char event[40], reason[48];
	time_t second;         /* the second the burst count is for */
	unsigned in_second;    /* lines of this kind in it */
	unsigned long dropped; /* not written since the last report */
};

static pthread_mutex_t flood_lock = PTHREAD_MUTEX_INITIALIZER;
static struct flood floods[FLOOD_KINDS];
static size_t nfloods;

/* Count a line of ${l}'s kind; 1 if it may be written. */
static int
flood_admit(const struct pp_logline *l)
{
	struct timespec now;
	struct flood *f = NULL;
	int ok = 1;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	pthread_mutex_lock(&flood_lock);
	for (size_t i = 0; i < nfloods && f == NULL; i++) {
		if (strcmp(floods[i].event, l->event) == 0 &&
		    strcmp(floods[i].reason, l->reason) == 0)
			f = &floods[i];
	}
	if (f == NULL && nfloods < FLOOD_KINDS) {
		f = &floods[nfloods++];
		snprintf(f->event, sizeof(f->event), "%s", l->event);
		snprintf(f->reason, sizeof(f->reason), "%s", l->reason);
	}
	if (f != NULL) {
		if (f->second != now.tv_sec) {
			f->second = now.tv_sec;
			f->in_second = 0;
		}
		if (++f->in_second > PP_LOG_FLOOD_BURST) {
			f->dropped++;
			ok = 0;
		}
	}
	pthread_mutex_unlock(&flood_lock);
	return (ok);
}

void
pp_log_flush_suppressed(void)
{
	struct flood report[FLOOD_KINDS];
	size_t n = 0;

	pthread_mutex_lock(&flood_lock);
	for (size_t i = 0; i < nfloods; i++) {
		if (floods[i].dropped > 0) {
			report[n++] = floods[i];
			floods[i].dropped = 0;
		}
	}
	pthread_mutex_unlock(&flood_lock);
	for (size_t i = 0; i < n; i++) {
		struct pp_logline l;
		pp_log_begin(&l, PP_LOG_WARN, "log_suppressed");
		l.limited = 0;
		pp_log_str(&l, "suppressed_event", report[i].event);
		if (report[i].reason[0] != '\0')
			pp_log_str(&l, "reason", report[i].reason);
		pp_log_u64(&l, "count", report[i].dropped);
		pp_log_end(&l);
	}
}

void
pp_log_end(struct pp_logline *l)
{
	ssize_t r;

	if (!l->enabled)
		return;
	if (l->limited && !flood_admit(l))
		return;
	if (l->json)
		l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
	/* One write per line: atomic for lines under PIPE_BUF. */
	do {
		r = write(STDERR_FILENO, l->buf, l->len);
	} while (r < 0 && errno == EINTR);
}

void
pp_log_msg(enum pp_log_level level, const char *event, const char *fmt, ...)
{
	struct pp_logline l;
	char val[PP_LOG_LINE_MAX];
	va_list ap;

	pp_log_begin(&l, level, event);
	if (!l.enabled)
		return;
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	pp_log_str(&l, "msg", val);
	pp_log_end(&l);
}
