#ifndef PP_WATCH_H
#define PP_WATCH_H

/*
 * Watches the files a configuration names and says when any of them has
 * really changed.  The directories holding them are watched (inotify via
 * libuv), not the files: a Kubernetes secret or config map volume
 * replaces its files by swapping a "..data" symlink, and editors replace a
 * file by renaming a new one over it; both show up only in the directory.
 * Events are debounced, and a burst that leaves every file as it was
 * (same device, inode, size and times, symlinks followed) is ignored.
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct pp_watch;

/* Called on the loop thread once a change has settled. */
typedef void pp_watch_fn(void *arg);

/* pp_watch_new(loop, debounce_ms, fn, arg): a watcher calling ${fn}(${arg})
 * ${debounce_ms} after the last event of a burst that changed a watched
 * file.  It watches nothing until pp_watch_set.  NULL if memory is
 * short. */
struct pp_watch *pp_watch_new(uv_loop_t *loop, uint64_t debounce_ms,
                              pp_watch_fn *fn, void *arg);

/* pp_watch_set(w, paths, n): watch the ${n} files ${paths} (NULL entries
 * skipped) from now on, replacing the earlier set.  A file new to the set
 * is taken as unchanged in its current state; one watched already keeps
 * the state last seen, so a change made while the caller reloaded is not
 * lost.  Return the number of directories watched; those that cannot be
 * watched are skipped, and counted in one watch_failed line naming the
 * first (at debug level if the set before failed as many the same way; a
 * watch_restored line when none fails any more). */
size_t pp_watch_set(struct pp_watch *w, const char *const *paths, size_t n);

/* pp_watch_free(w): stop watching and free ${w} once its handles are
 * closed (the loop must run on).  NULL does nothing. */
void pp_watch_free(struct pp_watch *w);

#endif
