/*
 * Reload planning (pp_reload_plan): which listeners carry over from the
 * configuration being served to the next, which are opened, which socket
 * files are unlinked, and which tunnels the reload reports as added,
 * removed or serving a new certificate.  No thread, socket or file is
 * involved: the descriptors are made-up numbers, and only the certificate
 * comparison builds its configurations (from the generated PKI).
 */

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "config/config.h"
#include "runtime/reloadplan.h"
#include "support.h"

TestSuite(reloadplan, .timeout = 60);

/* Add to ${c} a tunnel ${name} of ${kind} listening on ${addr} (NULL: no
 * listener, as a node data peer reached through CONNECT only). */
static struct pp_tunnel_conf *
add(struct pp_config *c, enum pp_tunnel_kind kind, const char *name,
    const char *addr)
{
	struct pp_tunnel_conf *t = pp_config_add_tunnel(c, kind, name);
	char err[128];

	cr_assert_not_null(t);
	if (addr != NULL)
		cr_assert_eq(pp_addr_parse(addr, &t->listen, err, sizeof(err)),
		             0, "%s: %s", addr, err);
	return (t);
}

static struct pp_config *
conf(void)
{
	struct pp_config *c = pp_config_new();

	cr_assert_not_null(c);
	return (c);
}

/* The ${n} strings ${v} joined by commas ("" for none). */
static const char *
joined(const char *const *v, size_t n)
{
	static char buf[4][1024];
	static int slot;
	char *b = buf[slot++ % 4];

	b[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(b, i ? "," : "");
		strcat(b, v[i]);
	}
	return (b);
}

/* The next snapshot's descriptors of worker ${w}, e.g. "10,-1,12". */
static const char *
fds_of(const struct pp_reload_plan *p, size_t w)
{
	static char buf[4][256];
	static int slot;
	char *b = buf[slot++ % 4];
	size_t used = 0;

	b[0] = '\0';
	for (size_t t = 0; t < p->ntunnels; t++)
		used +=
		    (size_t)snprintf(b + used, sizeof(buf[0]) - used, "%s%d",
		                     t ? "," : "", p->fds[w * p->ntunnels + t]);
	return (b);
}

/* The indices of the tunnels ${p} opens, e.g. "0,2". */
static const char *
opened(const struct pp_reload_plan *p)
{
	static char b[256];
	size_t used = 0;

	b[0] = '\0';
	for (size_t i = 0; i < p->nopen; i++)
		used += (size_t)snprintf(b + used, sizeof(b) - used, "%s%zu",
		                         i ? "," : "", p->open[i]);
	return (b);
}

Test(reloadplan, an_unchanged_configuration_carries_every_listener)
{
	struct pp_config *cur = conf(), *next = conf();
	/* Two workers, two tunnels: fds[w * 2 + t]. */
	const int fds[] = {10, 11, 20, 21};
	struct pp_reload_plan p;

	add(cur, PP_TUNNEL_OUTBOUND, "a", "127.0.0.1:7001");
	add(cur, PP_TUNNEL_OUTBOUND, "b", "unix:/run/pp/b.sock");
	add(next, PP_TUNNEL_OUTBOUND, "a", "127.0.0.1:7001");
	add(next, PP_TUNNEL_OUTBOUND, "b", "unix:/run/pp/b.sock");
	cr_assert_eq(pp_reload_plan(cur, fds, next, 2, &p), 0);
	cr_assert_eq(p.nworkers, 2);
	cr_assert_eq(p.ntunnels, 2);
	cr_assert_str_eq(fds_of(&p, 0), "10,11");
	cr_assert_str_eq(fds_of(&p, 1), "20,21");
	cr_assert_eq(p.nopen, 0, "opens %s", opened(&p));
	cr_assert_eq(p.nunlink, 0, "%s", joined(p.unlink, p.nunlink));
	cr_assert_eq(p.nadded + p.nremoved + p.nnew_certs, 0);
	pp_reload_plan_free(&p);
	pp_config_unref(cur);
	pp_config_unref(next);
}

Test(reloadplan, listeners_follow_their_address_across_order_and_names)
{
	struct pp_config *cur = conf(), *next = conf();
	const int fds[] = {10, 11, 20, 21};
	struct pp_reload_plan p;

	add(cur, PP_TUNNEL_OUTBOUND, "a", "127.0.0.1:7001");
	add(cur, PP_TUNNEL_INBOUND, "b", "[::1]:7002");
	/* A new address first, then b's, then a's address renamed. */
	add(next, PP_TUNNEL_OUTBOUND, "c", "127.0.0.1:7003");
	add(next, PP_TUNNEL_INBOUND, "b", "[::1]:7002");
	add(next, PP_TUNNEL_OUTBOUND, "renamed", "127.0.0.1:7001");
	cr_assert_eq(pp_reload_plan(cur, fds, next, 2, &p), 0);
	cr_assert_str_eq(fds_of(&p, 0), "-1,11,10");
	cr_assert_str_eq(fds_of(&p, 1), "-1,21,20");
	cr_assert_str_eq(opened(&p), "0");
	cr_assert_str_eq(joined(p.added, p.nadded), "c,renamed");
	cr_assert_str_eq(joined(p.removed, p.nremoved), "a");
	cr_assert_eq(p.nunlink, 0, "TCP listeners leave no file");
	pp_reload_plan_free(&p);
	pp_config_unref(cur);
	pp_config_unref(next);
}

Test(reloadplan, a_moved_tunnel_opens_its_new_address)
{
	struct pp_config *cur = conf(), *next = conf();
	const int fds[] = {10};
	struct pp_reload_plan p;

	add(cur, PP_TUNNEL_OUTBOUND, "a", "127.0.0.1:7001");
	add(next, PP_TUNNEL_OUTBOUND, "a", "127.0.0.1:7002");
	cr_assert_eq(pp_reload_plan(cur, fds, next, 1, &p), 0);
	cr_assert_str_eq(fds_of(&p, 0), "-1");
	cr_assert_str_eq(opened(&p), "0");
	cr_assert_eq(p.nadded + p.nremoved, 0, "the same name");
	pp_reload_plan_free(&p);
	pp_config_unref(cur);
	pp_config_unref(next);
}

Test(reloadplan, only_dropped_unix_sockets_are_unlinked)
{
	struct pp_config *cur = conf(), *next = conf();
	const int fds[] = {10, 11, 12, -1, 14};
	struct pp_reload_plan p;

	add(cur, PP_TUNNEL_OUTBOUND, "kept", "unix:/run/pp/kept.sock");
	add(cur, PP_TUNNEL_OUTBOUND, "dropped", "unix:/run/pp/dropped.sock");
	add(cur, PP_TUNNEL_OUTBOUND, "moved", "unix:/run/pp/old.sock");
	add(cur, PP_TUNNEL_OUTBOUND, "quiet", NULL);
	add(cur, PP_TUNNEL_OUTBOUND, "tcp", "127.0.0.1:7001");
	add(next, PP_TUNNEL_OUTBOUND, "moved", "unix:/run/pp/new.sock");
	add(next, PP_TUNNEL_OUTBOUND, "kept", "unix:/run/pp/kept.sock");
	add(next, PP_TUNNEL_OUTBOUND, "quiet", NULL);
	cr_assert_eq(pp_reload_plan(cur, fds, next, 1, &p), 0);
	cr_assert_str_eq(joined(p.unlink, p.nunlink),
	                 "/run/pp/dropped.sock,/run/pp/old.sock");
	cr_assert_str_eq(fds_of(&p, 0), "-1,10,-1");
	cr_assert_str_eq(opened(&p), "0",
	                 "a tunnel without a listener "
	                 "opens none");
	cr_assert_str_eq(joined(p.removed, p.nremoved), "dropped,tcp");
	cr_assert_eq(p.nadded, 0);
	pp_reload_plan_free(&p);
	pp_config_unref(cur);
	pp_config_unref(next);
}

Test(reloadplan, from_nothing_every_listener_is_new)
{
	struct pp_config *next = conf();
	struct pp_reload_plan p;

	add(next, PP_TUNNEL_OUTBOUND, "a", "127.0.0.1:7001");
	add(next, PP_TUNNEL_OUTBOUND, "peer", NULL);
	add(next, PP_TUNNEL_CONNECT, "connect", "unix:/run/pp/c.sock");
	cr_assert_eq(pp_reload_plan(NULL, NULL, next, 3, &p), 0);
	for (size_t w = 0; w < 3; w++)
		cr_assert_str_eq(fds_of(&p, w), "-1,-1,-1");
	cr_assert_str_eq(opened(&p), "0,2");
	cr_assert_str_eq(joined(p.added, p.nadded), "a,peer,connect");
	cr_assert_eq(p.nremoved + p.nunlink, 0);
	pp_reload_plan_free(&p);
	pp_config_unref(next);
}

Test(reloadplan, to_no_tunnel_at_all)
{
	struct pp_config *cur = conf(), *next = conf();
	const int fds[] = {10, 20};
	struct pp_reload_plan p;

	add(cur, PP_TUNNEL_OUTBOUND, "a", "unix:/run/pp/a.sock");
	cr_assert_eq(pp_reload_plan(cur, fds, next, 2, &p), 0);
	cr_assert_not_null(p.fds, "a table even without tunnels");
	cr_assert_eq(p.ntunnels, 0);
	cr_assert_eq(p.nopen, 0);
	cr_assert_str_eq(joined(p.unlink, p.nunlink), "/run/pp/a.sock");
	cr_assert_str_eq(joined(p.removed, p.nremoved), "a");
	pp_reload_plan_free(&p);
	pp_reload_plan_free(&p); /* an emptied plan frees again */
	pp_config_unref(cur);
	pp_config_unref(next);
}

/* An inbound tunnel ${name} on ${addr} serving the generic PKI's
 * ${leaf}.crt with ${leaf}.key. */
static void
add_served(struct pp_config *c, const char *name, const char *addr,
           const char *leaf)
{
	struct pp_tunnel_conf *t = add(c, PP_TUNNEL_INBOUND, name, addr);
	char path[1200];

	t->ca_file = strdup(t_pki_path(path, sizeof(path), "generic/ca.crt"));
	t->cert_file =
	    strdup(t_pki_path(path, sizeof(path), "generic/%s.crt", leaf));
	t->key_file =
	    strdup(t_pki_path(path, sizeof(path), "generic/%s.key", leaf));
	cr_assert(t->ca_file && t->cert_file && t->key_file);
}

static struct pp_config *
built(struct pp_config *c)
{
	struct pp_problems p = {0};

	cr_assert_eq(pp_config_build(c, &p), 0, "%s", p.n ? p.items[0] : "?");
	pp_problems_free(&p);
	return (c);
}

Test(reloadplan, a_tunnel_serving_another_certificate_is_reported)
{
	struct pp_config *cur = conf(), *next = conf(), *unbuilt = conf();
	const int fds[] = {10, 11, 12};
	struct pp_reload_plan p;

	add_served(cur, "same", "127.0.0.1:7001", "server");
	add_served(cur, "rotated", "127.0.0.1:7002", "server");
	add_served(cur, "gone", "127.0.0.1:7003", "server");
	add_served(next, "new", "127.0.0.1:7004", "client");
	add_served(next, "rotated", "127.0.0.1:7002", "client");
	add_served(next, "same", "127.0.0.1:7001", "server");
	built(cur);
	built(next);
	cr_assert_eq(pp_reload_plan(cur, fds, next, 1, &p), 0);
	cr_assert_str_eq(joined(p.new_certs, p.nnew_certs), "rotated",
	                 "a new tunnel has no certificate to change");
	cr_assert_str_eq(joined(p.added, p.nadded), "new");
	cr_assert_str_eq(joined(p.removed, p.nremoved), "gone");
	cr_assert_str_eq(fds_of(&p, 0), "-1,11,10");
	pp_reload_plan_free(&p);
	/* A snapshot not built has no certificates to compare. */
	add_served(unbuilt, "rotated", "127.0.0.1:7002", "client");
	cr_assert_eq(pp_reload_plan(cur, fds, unbuilt, 1, &p), 0);
	cr_assert_eq(p.nnew_certs, 0);
	pp_reload_plan_free(&p);
	pp_config_unref(cur);
	pp_config_unref(next);
	pp_config_unref(unbuilt);
}
