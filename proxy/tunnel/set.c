/*
 * The set of tunnels of one loop: it makes and frees the tunnels, keeps
 * the list of the open ones (for a reload's checks and for an abort) and
 * of the ones to pump again soon, and counts them for the host.
 */

#include <stdlib.h>
#include <unistd.h>

#include "net/addr.h"
#include "ops/metrics.h"
#include "tunnel/internal.h"
#include "util/log.h"

struct pp_tunnels *
pp_tunnels_new(const struct pp_tunnel_host *host)
{
	struct pp_tunnels *ts;

	if ((ts = calloc(1, sizeof(*ts))) == NULL)
		return (NULL);
	ts->host = *host;
	return (ts);
}

void
pp_tunnels_free(struct pp_tunnels *ts)
{
	free(ts);
}

size_t
pp_tunnels_count(const struct pp_tunnels *ts)
{
	return (ts->nopen);
}

/* Over max_connections: close at once, before any TLS work, and say so. */
static void
refuse_over_limit(const struct pp_tunnel_conf *tc, int fd,
                  const struct sockaddr *sa, socklen_t salen)
{
	struct pp_logline l;
	char remote[PP_HOST_MAX + 16]; /* unix:<sun_path> fits */

	close(fd);
	pp_tstats_failure(pp_limit_stats(tc->limit), "max_connections");
	pp_tstats_result(pp_limit_stats(tc->limit), PP_RESULT_LIMITED);
	pp_sockaddr_format(sa, salen, remote, sizeof(remote));
	pp_log_begin(&l, PP_LOG_WARN, "connection_refused");
	pp_log_str(&l, "tunnel", tc->name);
	pp_log_str(&l, "remote", remote);
	pp_log_str(&l, "reason", "max_connections");
	pp_log_u64(&l, "limit", tc->max_connections);
	pp_log_end(&l);
}

void
pp_tunnels_start(struct pp_tunnels *ts, struct pp_config *conf,
                 const struct pp_tunnel_conf *tc, int fd,
                 const struct sockaddr *sa, socklen_t salen)
{
	struct pp_tunnel_stats *st = ts->host.stats;
	struct pp_tunnel *t;
	unsigned long long open;

	if (pp_limit_enter(tc->limit, tc->max_connections) != 0) {
		refuse_over_limit(tc, fd, sa, salen);
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		pp_limit_leave(tc->limit);
		close(fd);
		pp_log_msg(PP_LOG_ERROR, "accept_failed", "out of memory");
		return;
	}
	t->set = ts;
	t->host = &ts->host;
	t->tc = tc;
	t->limit = tc->limit;
	t->conf = pp_config_ref(conf);
	t->id = ts->host.next_id(ts->host.arg);

	t->next = ts->open;
	if (t->next != NULL)
		t->next->prev = t;
	ts->open = t;
	ts->nopen++;
	open =
	    1 + atomic_fetch_add_explicit(&st->active, 1, memory_order_relaxed);
	if (open > atomic_load_explicit(&st->peak, memory_order_relaxed))
		atomic_store_explicit(&st->peak, open, memory_order_relaxed);

	pp_tunnel_open(t, fd, sa, salen);
}

void
pp_tunnels_forget(struct pp_tunnel *t)
{
	struct pp_tunnels *ts = t->set;

	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		ts->open = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	ts->nopen--;
	atomic_fetch_sub_explicit(&ts->host.stats->active, 1,
	                          memory_order_relaxed);
	free(t);
	ts->host.on_freed(ts->host.arg);
}

void
pp_tunnels_defer(struct pp_tunnel *t)
{
	struct pp_tunnels *ts = t->set;

	if (t->deferred)
		return;
	t->deferred = 1;
	t->dprev = NULL;
	t->dnext = ts->deferred;
	if (t->dnext != NULL)
		t->dnext->dprev = t;
	ts->deferred = t;
	ts->host.resume_soon(ts->host.arg);
}

void
pp_tunnels_undefer(struct pp_tunnel *t)
{
	if (!t->deferred)
		return;
	if (t->dprev != NULL)
		t->dprev->dnext = t->dnext;
	else
		t->set->deferred = t->dnext;
	if (t->dnext != NULL)
		t->dnext->dprev = t->dprev;
	t->dprev = t->dnext = NULL;
	t->deferred = 0;
}

int
pp_tunnels_run_deferred(struct pp_tunnels *ts)
{
	struct pp_tunnel *t = ts->deferred, *next;

	/* A tunnel that uses up its share again is deferred anew, on the
	 * fresh list. */
	ts->deferred = NULL;
	for (; t != NULL; t = next) {
		next = t->dnext;
		t->dprev = t->dnext = NULL;
		t->deferred = 0;
		pp_tunnel_resume(t);
	}
	/* pp_tunnel_resume may have deferred some anew: cppcheck cannot see
	 * it reach ts->deferred through the tunnel. */
	/* cppcheck-suppress knownConditionTrueFalse */
	return (ts->deferred != NULL);
}

void
pp_tunnels_recheck_all(struct pp_tunnels *ts, const struct pp_config *conf)
{
	/* Closing unlinks nothing yet (that happens as the handles close),
	 * so the list is stable while we walk it. */
	for (struct pp_tunnel *t = ts->open; t != NULL; t = t->next)
		pp_tunnel_recheck(t, conf);
}

void
pp_tunnels_abort_all(struct pp_tunnels *ts)
{
	for (struct pp_tunnel *t = ts->open; t != NULL; t = t->next)
		pp_tunnel_close(t, "shutdown", "drain deadline reached",
		                PP_CLOSE_ABORT);
}
