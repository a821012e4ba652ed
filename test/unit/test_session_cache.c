/*
 * The outbound session cache: slots by (key, target), least recently used
 * eviction; and the keys pp_config_build gives outbound tunnels: equal
 * when a reload changes nothing the tunnel's trust rests on (a node data
 * rescan), different when the name or anything it trusts or presents
 * changes, a ca file rewritten in place included.
 */

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "support.h"
#include "tls/session_cache.h"

/* ---- the cache ---------------------------------------------------------- */

static SSL_CTX *sess_ctx;

static void
make_ctx(void)
{
	sess_ctx = SSL_CTX_new(TLS_method());
	cr_assert_not_null(sess_ctx);
}

static void
drop_ctx(void)
{
	SSL_CTX_free(sess_ctx);
}

TestSuite(session_cache, .init = make_ctx, .fini = drop_ctx);

static const uint8_t key_a[PP_SESSION_KEY_LEN] = {1};
static const uint8_t key_b[PP_SESSION_KEY_LEN] = {2};

/* Put a new session into ${slot}; return it (borrowed). */
static SSL_SESSION *
fill(SSL_SESSION **slot)
{
	cr_assert_not_null(slot);
	SSL_SESSION_free(*slot);
	*slot = SSL_SESSION_new(sess_ctx);
	cr_assert_not_null(*slot);
	return (*slot);
}

Test(session_cache, a_slot_is_found_again_by_key_and_target)
{
	struct pp_session_cache *c = pp_session_cache_new(8);
	SSL_SESSION *s;

	cr_assert_not_null(c);
	s = fill(pp_session_cache_slot(c, key_a, "10.0.0.1:443"));
	cr_assert_eq(*pp_session_cache_slot(c, key_a, "10.0.0.1:443"), s);
	/* Another key (other trust) or another target: an empty slot. */
	cr_assert_null(*pp_session_cache_slot(c, key_b, "10.0.0.1:443"));
	cr_assert_null(*pp_session_cache_slot(c, key_a, "10.0.0.2:443"));
	cr_assert_eq(*pp_session_cache_slot(c, key_a, "10.0.0.1:443"), s);
	pp_session_cache_free(c);
}

Test(session_cache, the_least_recently_used_slot_gives_way)
{
	struct pp_session_cache *c = pp_session_cache_new(2);
	SSL_SESSION *one, *two;

	cr_assert_not_null(c);
	one = fill(pp_session_cache_slot(c, key_a, "one:1"));
	two = fill(pp_session_cache_slot(c, key_a, "two:2"));
	/* "one" used last: "two" is evicted for a third target. */
	cr_assert_eq(*pp_session_cache_slot(c, key_a, "one:1"), one);
	fill(pp_session_cache_slot(c, key_b, "three:3"));
	cr_assert_eq(*pp_session_cache_slot(c, key_a, "one:1"), one);
	cr_assert_null(*pp_session_cache_slot(c, key_a, "two:2"));
	(void)two; /* freed with its slot */
	pp_session_cache_free(c);
}

Test(session_cache, a_target_too_long_to_keep_gets_no_slot)
{
	struct pp_session_cache *c = pp_session_cache_new(2);
	char target[PP_SESSION_TARGET_MAX + 8];

	cr_assert_not_null(c);
	memset(target, 'a', sizeof(target) - 1);
	target[sizeof(target) - 1] = '\0';
	cr_assert_null(pp_session_cache_slot(c, key_a, target));
	/* The longest that fits is kept whole. */
	target[PP_SESSION_TARGET_MAX - 1] = '\0';
	cr_assert_not_null(pp_session_cache_slot(c, key_a, target));
	pp_session_cache_free(c);
	pp_session_cache_free(NULL);
}

/* ---- the keys of outbound tunnels --------------------------------------- */

static struct t_node nodes[3];
static char tmp[512];

static void
load_nodes(void)
{
	t_nodes(nodes, 3);
	t_tmpdir(tmp, sizeof(tmp));
}

static void
drop_tmp(void)
{
	t_rmtree(tmp);
}

TestSuite(session_key, .init = load_nodes, .fini = drop_tmp);

/* What an outbound tunnel from node ${from} to node ${to} is made of. */
struct spec {
	const char *name;
	char ca[1400], cert[1200], chain[1400], key[1200];
	const char *peer, *server_name;
};

static void
spec_of(struct spec *s, int from, int to)
{
	memset(s, 0, sizeof(*s));
	s->name = "to-peer";
	snprintf(s->ca, sizeof(s->ca), "%s/peers/%s/root-ca.crt",
	         nodes[from].dir, nodes[to].id);
	snprintf(s->cert, sizeof(s->cert), "%s/server.crt", nodes[from].dir);
	snprintf(s->chain, sizeof(s->chain), "%s/peers/%s/sub-ca.crt",
	         nodes[from].dir, nodes[to].id);
	snprintf(s->key, sizeof(s->key), "%s/server.key", nodes[from].dir);
	s->peer = nodes[to].id;
}

/* Build a configuration of the one tunnel ${s} (as a reload does, from
 * scratch) and copy its session key to ${out}. */
static void
key_of(const struct spec *s, uint8_t *out)
{
	struct pp_config *c = pp_config_new();
	struct pp_problems p = {0};
	struct pp_tunnel_conf *t;

	cr_assert_not_null(c);
	t = pp_config_add_tunnel(c, PP_TUNNEL_OUTBOUND, s->name);
	cr_assert_not_null(t);
	t->ca_file = strdup(s->ca);
	t->cert_file = strdup(s->cert);
	t->chain_file = strdup(s->chain);
	t->key_file = strdup(s->key);
	t->peer = s->peer ? strdup(s->peer) : NULL;
	t->server_name = s->server_name ? strdup(s->server_name) : NULL;
	cr_assert_eq(pp_config_build(c, &p), 0, "build: %s",
	             p.n ? p.items[0] : "?");
	memcpy(out, c->tunnels[0].session_key, PP_SESSION_KEY_LEN);
	pp_problems_free(&p);
	pp_config_unref(c);
}

static int
same(const uint8_t *a, const uint8_t *b)
{
	return (memcmp(a, b, PP_SESSION_KEY_LEN) == 0);
}

Test(session_key, a_rebuild_of_the_same_files_keeps_the_key)
{
	uint8_t a[PP_SESSION_KEY_LEN], b[PP_SESSION_KEY_LEN];
	uint8_t zero[PP_SESSION_KEY_LEN] = {0};
	struct spec s;

	spec_of(&s, 0, 1);
	key_of(&s, a);
	key_of(&s, b);
	cr_assert(same(a, b), "two snapshots of one tunnel: one key");
	cr_assert(!same(a, zero), "a key was computed");
}

Test(session_key, the_name_and_every_trust_setting_change_the_key)
{
	uint8_t base[PP_SESSION_KEY_LEN], k[PP_SESSION_KEY_LEN];
	struct spec s;

	spec_of(&s, 0, 1);
	key_of(&s, base);

	s.name = "another-name";
	key_of(&s, k);
	cr_assert(!same(base, k), "name");

	spec_of(&s, 0, 1);
	s.server_name = "peer.example";
	key_of(&s, k);
	cr_assert(!same(base, k), "server_name");

	spec_of(&s, 0, 1);
	s.peer = NULL;
	key_of(&s, k);
	cr_assert(!same(base, k), "peer");

	/* The chain node 2 signed for node 0: other certificates presented. */
	spec_of(&s, 0, 1);
	snprintf(s.chain, sizeof(s.chain), "%s/peers/%s/sub-ca.crt",
	         nodes[0].dir, nodes[2].id);
	key_of(&s, k);
	cr_assert(!same(base, k), "chain");

	/* Node 2's own certificate and key, under the same name and ca. */
	spec_of(&s, 0, 1);
	snprintf(s.cert, sizeof(s.cert), "%s/server.crt", nodes[2].dir);
	snprintf(s.key, sizeof(s.key), "%s/server.key", nodes[2].dir);
	key_of(&s, k);
	cr_assert(!same(base, k), "cert");
}

Test(session_key, a_ca_file_rewritten_in_place_is_new_trust)
{
	uint8_t base[PP_SESSION_KEY_LEN], k[PP_SESSION_KEY_LEN];
	char node1_root[1400], node2_root[1400];
	char *one, *two, *both;
	struct spec s;

	spec_of(&s, 0, 1);
	snprintf(node1_root, sizeof(node1_root), "%s", s.ca);
	snprintf(node2_root, sizeof(node2_root), "%s/peers/%s/root-ca.crt",
	         nodes[0].dir, nodes[2].id);
	one = t_read(node1_root, NULL);
	two = t_read(node2_root, NULL);
	t_path(s.ca, sizeof(s.ca), tmp, "ca.crt");

	t_write(s.ca, one);
	key_of(&s, base);
	/* The same certificate written again (a Secret refreshed): same. */
	t_write(s.ca, one);
	key_of(&s, k);
	cr_assert(same(base, k), "the same certificates: the same trust");
	/* Another anchor beside it: still node 1 passes, but not the same
	 * trust. */
	both = malloc(strlen(one) + strlen(two) + 1);
	cr_assert_not_null(both);
	strcpy(both, one);
	strcat(both, two);
	t_write(s.ca, both);
	key_of(&s, k);
	cr_assert(!same(base, k), "ca contents");
	free(one);
	free(two);
	free(both);
}
