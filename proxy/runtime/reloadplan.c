#include "runtime/reloadplan.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "tls/context.h"

/* A tunnel by one of its keys: its name, or its listen address. */
struct tref {
	const char *key; /* a name is borrowed; an address is owned */
	size_t i;        /* the tunnel's index */
};

/* A configuration's tunnels sorted by name and by listen address. */
struct tindex {
	struct tref *names, *addrs;
	size_t nnames, naddrs;
};

static int
tref_cmp(const void *a, const void *b)
{
	return (strcmp(((const struct tref *)a)->key,
	               ((const struct tref *)b)->key));
}

static void
tindex_free(struct tindex *x)
{
	for (size_t i = 0; i < x->naddrs; i++)
		free((char *)x->addrs[i].key);
	free(x->names);
	free(x->addrs);
	memset(x, 0, sizeof(*x));
}

/* Index ${c} (NULL: no tunnels) into ${x}.  Return 0, or -1 if memory is
 * short (nothing left to free). */
static int
tindex_build(struct tindex *x, const struct pp_config *c)
{
	size_t n = c != NULL && c->ntunnels ? c->ntunnels : 1;
	char a[PP_HOST_MAX + 16];
	char *key;

	memset(x, 0, sizeof(*x));
	if ((x->names = calloc(n, sizeof(*x->names))) == NULL ||
	    (x->addrs = calloc(n, sizeof(*x->addrs))) == NULL) {
		free(x->names);
		x->names = NULL;
		return (-1);
	}
	for (size_t i = 0; c != NULL && i < c->ntunnels; i++) {
		x->names[x->nnames].key = c->tunnels[i].name;
		x->names[x->nnames++].i = i;
		if (!pp_tunnel_listens(&c->tunnels[i]))
			continue;
		pp_addr_format(&c->tunnels[i].listen, a, sizeof(a));
		if ((key = strdup(a)) == NULL) {
			tindex_free(x);
			return (-1);
		}
		x->addrs[x->naddrs].key = key;
		x->addrs[x->naddrs++].i = i;
	}
	qsort(x->names, x->nnames, sizeof(*x->names), tref_cmp);
	qsort(x->addrs, x->naddrs, sizeof(*x->addrs), tref_cmp);
	return (0);
}

/* The index of the tunnel whose ${key} (a name, or a listen address) it
 * is among the ${n} sorted ${v}, or -1. */
static long
tindex_find(const struct tref *v, size_t n, const char *key)
{
	struct tref want = {.key = key};
	const struct tref *hit = bsearch(&want, v, n, sizeof(*v), tref_cmp);

	return (hit != NULL ? (long)hit->i : -1);
}

/* The tunnel of ${x} listening on ${t}'s address, or -1 (also if ${t}
 * has no listener). */
static long
find_listener(const struct tindex *x, const struct pp_tunnel_conf *t)
{
	char a[PP_HOST_MAX + 16];

	if (!pp_tunnel_listens(t))
		return (-1);
	pp_addr_format(&t->listen, a, sizeof(a));
	return (tindex_find(x->addrs, x->naddrs, a));
}

static long
find_name(const struct tindex *x, const char *name)
{
	return (tindex_find(x->names, x->nnames, name));
}

/* 1 if ${a} and ${b} (tunnels of one name) serve different certificates;
 * 0 if the same, or if either is not built. */
static int
cert_changed(const struct pp_tunnel_conf *a, const struct pp_tunnel_conf *b)
{
	X509 *x, *y;

	if (a->ctx == NULL || b->ctx == NULL)
		return (0);
	x = pp_tls_ctx_leaf(a->ctx);
	y = pp_tls_ctx_leaf(b->ctx);
	return (x != NULL && y != NULL && X509_cmp(x, y) != 0);
}

/* Room in ${p} for every list of a move from ${ncur} tunnels to ${nnext},
 * and its descriptor table, all -1.  Return 0, or -1 if memory is short
 * (what was allocated is left for pp_reload_plan_free). */
static int
plan_alloc(struct pp_reload_plan *p, size_t ncur, size_t nnext)
{
	size_t nfds = p->nworkers * (nnext ? nnext : 1);

	/* NOLINTBEGIN(bugprone-sizeof-expression): pointers */
	p->fds = malloc(nfds * sizeof(*p->fds));
	p->open = calloc(nnext ? nnext : 1, sizeof(*p->open));
	p->unlink = calloc(ncur ? ncur : 1, sizeof(*p->unlink));
	p->added = calloc(nnext ? nnext : 1, sizeof(*p->added));
	p->removed = calloc(ncur ? ncur : 1, sizeof(*p->removed));
	p->new_certs = calloc(nnext ? nnext : 1, sizeof(*p->new_certs));
	/* NOLINTEND(bugprone-sizeof-expression) */
	if (p->fds == NULL || p->open == NULL || p->unlink == NULL ||
	    p->added == NULL || p->removed == NULL || p->new_certs == NULL)
		return (-1);
	for (size_t i = 0; i < nfds; i++)
		p->fds[i] = -1;
	return (0);
}

int
pp_reload_plan(const struct pp_config *cur, const int *cur_fds,
               const struct pp_config *next, size_t nworkers,
               struct pp_reload_plan *plan)
{
	struct tindex ci, ni;
	size_t ct = cur != NULL ? cur->ntunnels : 0, nt = next->ntunnels;

	memset(plan, 0, sizeof(*plan));
	plan->nworkers = nworkers;
	plan->ntunnels = nt;
	if (tindex_build(&ci, cur) != 0)
		return (-1);
	if (tindex_build(&ni, next) != 0 || plan_alloc(plan, ct, nt) != 0) {
		tindex_free(&ci);
		tindex_free(&ni);
		pp_reload_plan_free(plan);
		return (-1);
	}
	for (size_t t = 0; t < nt; t++) {
		const struct pp_tunnel_conf *tc = &next->tunnels[t];
		long o = find_listener(&ci, tc), j = find_name(&ci, tc->name);

		if (o >= 0)
			for (size_t w = 0; w < nworkers; w++)
				plan->fds[w * nt + t] =
				    cur_fds[w * ct + (size_t)o];
		else if (pp_tunnel_listens(tc))
			plan->open[plan->nopen++] = t;
		if (j < 0)
			plan->added[plan->nadded++] = tc->name;
		/* j >= 0 only if cur has that tunnel: the test of cur says so
		 * to readers and analysers alike. */
		else if (cur != NULL && cert_changed(&cur->tunnels[j], tc))
			plan->new_certs[plan->nnew_certs++] = tc->name;
	}
	for (size_t t = 0; t < ct; t++) {
		const struct pp_tunnel_conf *tc = &cur->tunnels[t];

		if (find_name(&ni, tc->name) < 0)
			plan->removed[plan->nremoved++] = tc->name;
		if (tc->listen.kind == PP_ADDR_UNIX && pp_tunnel_listens(tc) &&
		    find_listener(&ni, tc) < 0)
			plan->unlink[plan->nunlink++] = tc->listen.path;
	}
	tindex_free(&ci);
	tindex_free(&ni);
	return (0);
}

void
pp_reload_plan_free(struct pp_reload_plan *plan)
{
	free(plan->fds);
	free(plan->open);
	free(plan->unlink);
	free(plan->added);
	free(plan->removed);
	free(plan->new_certs);
	memset(plan, 0, sizeof(*plan));
}
