#include "runtime/listeners.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/nodedata.h"
#include "net/listen.h"
#include "tls/identity.h"
#include "util/log.h"
#include "util/strbuf.h"

/* Close the sockets opened for the first ${upto} tunnels ${plan} opens. */
static void
close_opened(const struct pp_reload_plan *plan, size_t upto)
{
	for (size_t i = 0; i < upto; i++)
		for (size_t w = 0; w < plan->nworkers; w++)
			close(plan->fds[w * plan->ntunnels + plan->open[i]]);
}

int
pp_listeners_open(struct pp_reload_plan *plan, const struct pp_config *next,
                  size_t *bad, char *why, size_t len)
{
	size_t nw = plan->nworkers, nt = plan->ntunnels;
	int *one = malloc(nw * sizeof(int));

	*bad = nt;
	if (one == NULL) {
		snprintf(why, len, "out of memory");
		return (-1);
	}
	for (size_t i = 0; i < plan->nopen; i++) {
		size_t t = plan->open[i];

		if (pp_listen_open(&next->tunnels[t].listen, nw, one, why,
		                   len) != 0) {
			*bad = t;
			close_opened(plan, i);
			free(one);
			return (-1);
		}
		for (size_t w = 0; w < nw; w++)
			plan->fds[w * nt + t] = one[w];
	}
	free(one);
	return (0);
}

void
pp_listeners_close_new(const struct pp_reload_plan *plan)
{
	close_opened(plan, plan->nopen);
}

int
pp_listeners_start(const struct pp_config *c, size_t nworkers, int **fds)
{
	struct pp_reload_plan plan;
	char err[PP_HOST_MAX + 128], addr[PP_HOST_MAX + 16];
	struct pp_logline l;
	size_t bad;

	/* From no configuration: every listener is new. */
	if (pp_reload_plan(NULL, NULL, c, nworkers, &plan) != 0)
		return (-1);
	if (pp_listeners_open(&plan, c, &bad, err, sizeof(err)) != 0) {
		if (bad < c->ntunnels) {
			pp_addr_format(&c->tunnels[bad].listen, addr,
			               sizeof(addr));
			pp_log_begin(&l, PP_LOG_ERROR, "listen_failed");
			pp_log_str(&l, "tunnel", c->tunnels[bad].name);
			pp_log_str(&l, "addr", addr);
			pp_log_str(&l, "error", err);
			pp_log_end(&l);
		}
		pp_reload_plan_free(&plan);
		return (-1);
	}
	*fds = plan.fds;
	plan.fds = NULL;
	pp_reload_plan_free(&plan);
	return (0);
}

void
pp_listeners_log(const struct pp_config *c)
{
	static const char *const kinds[] = {"inbound", "outbound", "connect"};
	char addr[PP_HOST_MAX + 16];
	struct pp_logline l;

	for (size_t t = 0; t < c->ntunnels; t++) {
		const struct pp_tunnel_conf *tc = &c->tunnels[t];

		if (!pp_tunnel_listens(tc))
			continue;
		pp_addr_format(&tc->listen, addr, sizeof(addr));
		pp_log_begin_always(&l, PP_LOG_INFO, "listening");
		pp_log_str(&l, "tunnel", tc->name);
		pp_log_str(&l, "kind", kinds[tc->kind]);
		pp_log_str(&l, "addr", addr);
		if (tc->trust != NULL)
			pp_log_str(&l, "identity",
			           pp_trust_mode(tc->trust) ==
			                   PP_IDENTITY_SWAPTACULAR
			               ? "swaptacular"
			               : "x509");
		pp_log_end(&l);
	}
}

void
pp_listeners_unlink(const struct pp_config *c)
{
	for (size_t t = 0; t < c->ntunnels; t++)
		if (c->tunnels[t].listen.kind == PP_ADDR_UNIX)
			unlink(c->tunnels[t].listen.path);
}

/* 1 if one of ${c}'s tunnels listens on the unix socket ${path}. */
static int
listens_on(const struct pp_config *c, const char *path)
{
	for (size_t t = 0; t < c->ntunnels; t++)
		if (c->tunnels[t].listen.kind == PP_ADDR_UNIX &&
		    strcmp(c->tunnels[t].listen.path, path) == 0)
			return (1);
	return (0);
}

void
pp_listeners_sweep(const struct pp_config *c)
{
	char id[PP_PEER_ID_MAX + 1], path[PATH_MAX];
	const char *dir;
	struct dirent *e;
	DIR *d;

	if (c->nodedata == NULL || (dir = c->nodedata->socket_dir) == NULL ||
	    (d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		/* Only names we give our sockets: "<node id>.sock". */
		if (len <= 5 || len - 5 >= sizeof(id) ||
		    strcmp(e->d_name + len - 5, ".sock") != 0)
			continue;
		memcpy(id, e->d_name, len - 5);
		id[len - 5] = '\0';
		if (!pp_identity_node_id_valid(id) ||
		    pp_fmt(path, sizeof(path), "%s/%s", dir, e->d_name) != 0 ||
		    listens_on(c, path) || !pp_listen_remove_stale(path))
			continue;
		pp_log_msg(PP_LOG_INFO, "stale_socket_removed",
		           "%s: no peer %s here, and nothing listened on it",
		           path, id);
	}
	closedir(d);
}
