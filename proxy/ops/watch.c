#include "ops/watch.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"
#include "util/strbuf.h"

struct file_sig {
	char *path;
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct dir_watch {
	uv_fs_event_t ev;
	char *dir;
	struct pp_watch *w;
};

struct pp_watch {
	uv_loop_t *loop;
	uv_timer_t debounce;
	uint64_t debounce_ms;
	pp_watch_fn *fn;
	void *arg;
	struct file_sig *files;
	size_t nfiles;
	struct dir_watch **dirs;
	size_t ndirs;
	int handles;
	/* Directories the last pp_watch_set could not watch, and the first
	 * one's error: a set that fails the same way again says so at debug
	 * level only. */
	size_t nfailed;
	int failed_err;
};

static void
sig_read(struct file_sig *f)
{
	struct stat st;

	f->exists = stat(f->path, &st) == 0;
	if (!f->exists)
		return;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
	f->ctime = st.st_ctim;
}

static int
sig_same(const struct file_sig *a, const struct file_sig *b)
{
	if (a->exists != b->exists)
		return (0);
	if (!a->exists)
		return (1);
	return (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	        a->mtime.tv_sec == b->mtime.tv_sec &&
	        a->mtime.tv_nsec == b->mtime.tv_nsec &&
	        a->ctime.tv_sec == b->ctime.tv_sec &&
	        a->ctime.tv_nsec == b->ctime.tv_nsec);
}

static void
release(struct pp_watch *w)
{
	if (--w->handles == 0)
		free(w);
}

static void
on_dir_closed(uv_handle_t *h)
{
	struct dir_watch *d = h->data;
	struct pp_watch *w = d->w;

	free(d->dir);
	free(d);
	release(w);
}

static void
on_settled(uv_timer_t *t)
{
	struct pp_watch *w = t->data;
	int changed = 0;

	for (size_t i = 0; i < w->nfiles; i++) {
		struct file_sig now = w->files[i];
		sig_read(&now);
		if (!sig_same(&now, &w->files[i]))
			changed = 1;
		w->files[i] = now;
	}
	if (changed)
		w->fn(w->arg);
}

static void
on_event(uv_fs_event_t *h, const char *name, int events, int status)
{
	struct dir_watch *d = h->data;

	(void)name;
	(void)events;
	if (status != 0)
		return;
	uv_timer_start(&d->w->debounce, on_settled, d->w->debounce_ms, 0);
}

struct pp_watch *
pp_watch_new(uv_loop_t *loop, uint64_t debounce_ms, pp_watch_fn *fn, void *arg)
{
	struct pp_watch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return (NULL);
	w->loop = loop;
	w->debounce_ms = debounce_ms;
	w->fn = fn;
	w->arg = arg;
	w->handles = 1;
	uv_timer_init(loop, &w->debounce);
	w->debounce.data = w;
	uv_unref((uv_handle_t *)&w->debounce);
	return (w);
}

static void
clear(struct pp_watch *w)
{
	for (size_t i = 0; i < w->nfiles; i++)
		free(w->files[i].path);
	free(w->files);
	w->files = NULL;
	w->nfiles = 0;
	for (size_t i = 0; i < w->ndirs; i++)
		uv_close((uv_handle_t *)&w->dirs[i]->ev, on_dir_closed);
	free(w->dirs);
	w->dirs = NULL;
	w->ndirs = 0;
}

static int
str_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Sort the ${n} strings ${v} and drop repeats (freed if ${owned}); return
 * how many are left.  Sorted, not compared pair by pair: a node with
 * thousands of peers names tens of thousands of files. */
static size_t
sort_unique(char **v, size_t n, int owned)
{
	size_t k = 0;

	qsort(v, n, sizeof(*v), str_cmp);
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && strcmp(v[k - 1], v[i]) == 0) {
			if (owned)
				free(v[i]);
			continue;
		}
		v[k++] = v[i];
	}
	return (k);
}

/* Add to ${v} the directory of ${path} and, if it leads elsewhere, the
 * directory of the file it leads to; ${n} counts them. */
static void
add_dirs_of(char **v, size_t *n, const char *path)
{
	char copy[PATH_MAX], real[PATH_MAX];

	/* A name over PATH_MAX names no file: its cut copy would watch
	 * another directory. */
	if (pp_fmt(copy, sizeof(copy), "%s", path) != 0)
		return;
	if ((v[*n] = strdup(dirname(copy))) != NULL)
		(*n)++;
	if (realpath(path, real) != NULL &&
	    (v[*n] = strdup(dirname(real))) != NULL)
		(*n)++;
}

/* A new watch on ${dir}, or NULL with the libuv error in ${err}. */
static struct dir_watch *
dir_watch_new(struct pp_watch *w, const char *dir, int *err)
{
	struct dir_watch *d;

	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->dir = strdup(dir)) == NULL) {
		free(d);
		*err = UV_ENOMEM;
		return (NULL);
	}
	d->w = w;
	uv_fs_event_init(w->loop, &d->ev);
	d->ev.data = d;
	uv_unref((uv_handle_t *)&d->ev);
	w->handles++;
	if ((*err = uv_fs_event_start(&d->ev, on_event, dir, 0)) != 0) {
		uv_close((uv_handle_t *)&d->ev, on_dir_closed);
		return (NULL);
	}
	return (d);
}

/* Say once, not once per directory, that ${nfailed} of the ${n}
 * directories could not be watched, naming ${first} and its error
 * ${err}: with thousands of node data peers and a low inotify limit,
 * every rescan would otherwise log thousands of lines. */
static void
log_failed(struct pp_watch *w, size_t nfailed, size_t n, const char *first,
           int err)
{
	int again = nfailed == w->nfailed && err == w->failed_err;

	if (nfailed > 0)
		pp_log_msg(again ? PP_LOG_DEBUG : PP_LOG_WARN, "watch_failed",
		           "cannot watch %zu of %zu directories for changes "
		           "(%s: %s%s); changes there are seen at the next "
		           "reload or rescan",
		           nfailed, n, first, uv_strerror(err),
		           err == UV_ENOSPC
		               ? ": raise fs.inotify.max_user_watches"
		               : "");
	else if (w->nfailed > 0)
		pp_log_msg(PP_LOG_INFO, "watch_restored",
		           "every directory is watched for changes again");
	w->nfailed = nfailed;
	w->failed_err = nfailed > 0 ? err : 0;
}

static int
file_cmp(const void *a, const void *b)
{
	return (strcmp(((const struct file_sig *)a)->path,
	               ((const struct file_sig *)b)->path));
}

/* Watch exactly the ${n} sorted directories ${names}: watches kept where
 * they carry over (so no event falls between a close and a new watch).
 * w->dirs stays sorted by name. */
static void
set_dirs(struct pp_watch *w, char **names, size_t n)
{
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers */
	struct dir_watch **next = calloc(n ? n : 1, sizeof(*next));
	size_t nnext = 0, j = 0, nfailed = 0;
	const char *first = NULL;
	int err, first_err = 0;

	if (next == NULL)
		return;
	/* Both lists are sorted: one merge pass. */
	for (size_t i = 0; i < n; i++) {
		struct dir_watch *d = NULL;
		int c = 1;

		while (j < w->ndirs &&
		       (c = strcmp(w->dirs[j]->dir, names[i])) < 0)
			j++;
		if (j < w->ndirs && c == 0) {
			d = w->dirs[j];
			w->dirs[j++] = NULL; /* carried over */
		}
		if (d == NULL &&
		    (d = dir_watch_new(w, names[i], &err)) == NULL &&
		    nfailed++ == 0) {
			first = names[i];
			first_err = err;
		}
		if (d != NULL)
			next[nnext++] = d;
	}
	log_failed(w, nfailed, n, first, first_err);
	for (size_t k = 0; k < w->ndirs; k++)
		if (w->dirs[k] != NULL)
			uv_close((uv_handle_t *)&w->dirs[k]->ev, on_dir_closed);
	free(w->dirs);
	w->dirs = next;
	w->ndirs = nnext;
}

size_t
pp_watch_set(struct pp_watch *w, const char *const *paths, size_t n)
{
	char **names = calloc(n ? n : 1, sizeof(*names));
	char **dirs = calloc(2 * n + 1, sizeof(*dirs));
	struct file_sig *files = NULL;
	size_t nnames = 0, ndirs = 0;

	if (names == NULL || dirs == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (paths[i] != NULL)
			names[nnames++] = (char *)paths[i]; /* borrowed */
	nnames = sort_unique(names, nnames, 0);
	if ((files = calloc(nnames ? nnames : 1, sizeof(*files))) == NULL)
		goto out;
	for (size_t i = 0; i < nnames; i++) {
		struct file_sig key = {.path = names[i]}, *old;

		if ((files[i].path = strdup(names[i])) == NULL) {
			while (i-- > 0)
				free(files[i].path);
			free(files);
			goto out;
		}
		/* A file watched already keeps the state last seen, so a
		 * change made while the caller was reloading still counts. */
		old = w->nfiles ? bsearch(&key, w->files, w->nfiles,
		                          sizeof(*w->files), file_cmp)
		                : NULL;
		if (old != NULL) {
			char *p = files[i].path;
			files[i] = *old;
			files[i].path = p;
		} else {
			sig_read(&files[i]);
		}
		add_dirs_of(dirs, &ndirs, names[i]);
	}
	for (size_t i = 0; i < w->nfiles; i++)
		free(w->files[i].path);
	free(w->files);
	w->files = files; /* sorted by path, as names were */
	w->nfiles = nnames;
	ndirs = sort_unique(dirs, ndirs, 1);
	set_dirs(w, dirs, ndirs);
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i]);
out:
	free(names);
	free(dirs);
	return (w->ndirs);
}

static void
on_timer_closed(uv_handle_t *h)
{
	release(h->data);
}

void
pp_watch_free(struct pp_watch *w)
{
	if (w == NULL)
		return;
	clear(w);
	uv_close((uv_handle_t *)&w->debounce, on_timer_closed);
}
