/*
 * Flags of the inbound/outbound subcommands -> the configuration model.
 * pp_cli_tunnel prints its complaints to stderr; the tests capture them
 * and check that the offending flag is named.
 */

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <openssl/ssl.h>

#include "cli.h"
#include "support.h"

#define ARGS(...) ((const char *[]){__VA_ARGS__, NULL})

/* The required flags of a valid inbound tunnel, after argv[0]. */
#define INBOUND_BASE                                                           \
	"inbound", "--listen", "0.0.0.0:8443", "--target", "127.0.0.1:8080",   \
	    "--ca", "ca.crt", "--cert", "server.crt", "--key", "server.key"
#define OUTBOUND_BASE                                                          \
	"outbound", "--listen", "127.0.0.1:9000", "--target",                  \
	    "peer.example:1234", "--ca", "peer-root.crt", "--cert",            \
	    "server.crt", "--key", "server.key"

struct cli_run {
	int rc;
	struct pp_config *c;
	char *err; /* what was printed on stderr */
};

static struct cli_run
cli(enum pp_tunnel_kind kind, const char *const *args)
{
	struct cli_run r = {0, NULL, NULL};
	struct t_capture cap;
	char **argv;
	int argc = 0;

	while (args[argc] != NULL)
		argc++;
	argv = calloc((size_t)argc + 1, sizeof(*argv));
	cr_assert_not_null(argv);
	for (int i = 0; i < argc; i++)
		cr_assert_not_null(argv[i] = strdup(args[i]));
	t_capture_begin(&cap);
	r.c = (struct pp_config *)0x1; /* must be overwritten */
	r.rc = pp_cli_tunnel(kind, argc, argv, &r.c);
	r.err = t_capture_end(&cap);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
	return (r);
}

static void
done(struct cli_run *r)
{
	pp_config_unref(r->c);
	free(r->err);
}

static struct cli_run
ok(enum pp_tunnel_kind kind, const char *const *args)
{
	struct cli_run r = cli(kind, args);

	cr_assert_eq(r.rc, PP_EXIT_OK, "want OK, got %d: %s", r.rc, r.err);
	cr_assert_not_null(r.c);
	cr_assert_eq(r.c->ntunnels, 1);
	cr_assert_eq(r.c->tunnels[0].kind, kind);
	return (r);
}

/* The command line must be refused as bad usage, with a message on stderr
 * that contains ${mention}. */
static void
usage(enum pp_tunnel_kind kind, const char *const *args, const char *mention)
{
	struct cli_run r = cli(kind, args);

	cr_assert_eq(r.rc, PP_EXIT_USAGE, "want PP_EXIT_USAGE, got %d (%s)",
	             r.rc, mention);
	cr_assert_null(r.c, "no configuration on error");
	cr_assert(t_contains(r.err, mention),
	          "the message must mention \"%s\": %s", mention, r.err);
	done(&r);
}

Test(cli, full_valid_inbound)
{
	struct cli_run r =
	    ok(PP_TUNNEL_INBOUND,
	       ARGS(INBOUND_BASE, "--allow-peer", "0123abcd", "--allow-peer",
	            "0123456789abcdef0123456789abcdef", "--allow-cn", "client1",
	            "--allow-dns", "client1.example.org", "--allow-uri",
	            "spiffe://example.org/client1", "--identity", "swaptacular",
	            "--tls-min", "1.2", "--handshake-timeout", "3s",
	            "--connect-timeout", "500ms", "--idle-timeout", "2m",
	            "--drain-timeout", "1h", "--workers", "4", "--log-level",
	            "debug", "--log-format", "json"));
	struct pp_tunnel_conf *t = &r.c->tunnels[0];

	cr_assert_eq(t->listen.kind, PP_ADDR_TCP);
	cr_assert_str_eq(t->listen.host, "0.0.0.0");
	cr_assert_eq(t->listen.port, 8443);
	cr_assert_eq(t->ntargets, 1);
	cr_assert_str_eq(t->targets[0].host, "127.0.0.1");
	cr_assert_eq(t->targets[0].port, 8080);
	cr_assert_str_eq(t->ca_file, "ca.crt");
	cr_assert_str_eq(t->cert_file, "server.crt");
	cr_assert_str_eq(t->key_file, "server.key");
	cr_assert_null(t->chain_file);
	cr_assert_null(t->peer);
	cr_assert_null(t->server_name);
	cr_assert_eq(t->allow.npeers, 2);
	cr_assert_str_eq(t->allow.peers[0], "0123abcd");
	cr_assert_str_eq(t->allow.peers[1], "0123456789abcdef0123456789abcdef");
	cr_assert_eq(t->allow.ncns, 1);
	cr_assert_str_eq(t->allow.cns[0], "client1");
	cr_assert_eq(t->allow.ndns, 1);
	cr_assert_str_eq(t->allow.dns[0], "client1.example.org");
	cr_assert_eq(t->allow.nuris, 1);
	cr_assert_str_eq(t->allow.uris[0], "spiffe://example.org/client1");
	cr_assert_eq(t->identity, PP_IDENTITY_SWAPTACULAR);
	cr_assert_eq(t->tls_min, TLS1_2_VERSION);
	cr_assert_eq(t->handshake_timeout_ms, 3000);
	cr_assert_eq(t->connect_timeout_ms, 500);
	cr_assert_eq(t->idle_timeout_ms, 120000);
	cr_assert_eq(r.c->drain_timeout_ms, 3600000);
	cr_assert_eq(r.c->workers, 4);
	cr_assert_eq(pp_config_workers(r.c), 4);
	cr_assert_eq(r.c->log_level, PP_LOG_DEBUG);
	cr_assert_eq(r.c->log_json, 1);
	cr_assert_null(t->ctx, "not built yet");
	cr_assert_null(t->trust, "not built yet");
	cr_assert_str_empty(r.err, "nothing printed on success");
	done(&r);
}

Test(cli, defaults)
{
	struct cli_run r = ok(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE));
	struct pp_tunnel_conf *t = &r.c->tunnels[0];

	cr_assert_eq(t->identity, PP_IDENTITY_AUTO);
	cr_assert_eq(t->tls_min, TLS1_3_VERSION);
	cr_assert_eq(t->handshake_timeout_ms, 10000);
	cr_assert_eq(t->connect_timeout_ms, 5000);
	cr_assert_eq(t->idle_timeout_ms, 0);
	cr_assert_eq(t->allow.npeers + t->allow.ncns + t->allow.ndns +
	                 t->allow.nuris,
	             0);
	cr_assert_eq(r.c->workers, 0, "auto");
	cr_assert_geq(pp_config_workers(r.c), 1);
	cr_assert_eq(r.c->drain_timeout_ms, 30000);
	cr_assert_eq(r.c->log_level, PP_LOG_INFO);
	cr_assert_eq(r.c->log_json, 0);
	done(&r);
}

Test(cli, unix_listen_and_target)
{
	struct cli_run r =
	    ok(PP_TUNNEL_INBOUND, ARGS("inbound", "--listen", "[::]:8443",
	                               "--target", "unix:/run/app.sock", "--ca",
	                               "a", "--cert", "b", "--key", "c"));
	struct pp_tunnel_conf *t = &r.c->tunnels[0];

	cr_assert_str_eq(t->listen.host, "::");
	cr_assert_eq(t->targets[0].kind, PP_ADDR_UNIX);
	cr_assert_str_eq(t->targets[0].path, "/run/app.sock");
	done(&r);
}

Test(cli, missing_required_flags)
{
	usage(PP_TUNNEL_INBOUND,
	      ARGS("inbound", "--target", "127.0.0.1:8080", "--ca", "a",
	           "--cert", "b", "--key", "c"),
	      "--listen");
	usage(PP_TUNNEL_INBOUND,
	      ARGS("inbound", "--listen", "0.0.0.0:1", "--ca", "a", "--cert",
	           "b", "--key", "c"),
	      "--target");
	usage(PP_TUNNEL_INBOUND,
	      ARGS("inbound", "--listen", "0.0.0.0:1", "--target", "h:2",
	           "--cert", "b", "--key", "c"),
	      "--ca");
	usage(PP_TUNNEL_INBOUND,
	      ARGS("inbound", "--listen", "0.0.0.0:1", "--target", "h:2",
	           "--ca", "a", "--key", "c"),
	      "--cert");
	usage(PP_TUNNEL_OUTBOUND,
	      ARGS("outbound", "--listen", "0.0.0.0:1", "--target", "h:2",
	           "--ca", "a", "--cert", "b"),
	      "--key");
	usage(PP_TUNNEL_INBOUND, ARGS("inbound"), "--listen");
}

Test(cli, unknown_flag)
{
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--no-such-flag"),
	      "--no-such-flag");
	usage(PP_TUNNEL_OUTBOUND, ARGS(OUTBOUND_BASE, "-x"), "-x");
}

Test(cli, flag_without_value)
{
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--idle-timeout"),
	      "--idle-timeout");
}

Test(cli, stray_argument)
{
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "extra"), "extra");
}

Test(cli, outbound_flags_refused_on_inbound)
{
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--peer", "0123abcd"),
	      "--peer");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--chain", "sub-ca.crt"),
	      "--chain");
	usage(PP_TUNNEL_INBOUND,
	      ARGS(INBOUND_BASE, "--server-name", "peer.example"),
	      "--server-name");
}

Test(cli, inbound_flags_refused_on_outbound)
{
	usage(PP_TUNNEL_OUTBOUND, ARGS(OUTBOUND_BASE, "--allow-peer", "x"),
	      "--allow-peer");
	usage(PP_TUNNEL_OUTBOUND, ARGS(OUTBOUND_BASE, "--allow-cn", "x"),
	      "--allow-cn");
	usage(PP_TUNNEL_OUTBOUND, ARGS(OUTBOUND_BASE, "--allow-dns", "x"),
	      "--allow-dns");
	usage(PP_TUNNEL_OUTBOUND, ARGS(OUTBOUND_BASE, "--allow-uri", "x"),
	      "--allow-uri");
}

Test(cli, bad_durations)
{
	usage(PP_TUNNEL_INBOUND,
	      ARGS(INBOUND_BASE, "--handshake-timeout", "10"),
	      "--handshake-timeout");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--idle-timeout", "1.5s"),
	      "--idle-timeout");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--connect-timeout", "-1s"),
	      "--connect-timeout");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--drain-timeout", "31d"),
	      "--drain-timeout");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--drain-timeout", "721h"),
	      "--drain-timeout");
}

Test(cli, bad_workers)
{
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", "0"),
	      "--workers");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", "65"),
	      "--workers");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", "abc"),
	      "--workers");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", "4x"),
	      "--workers");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", "-1"),
	      "--workers");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", ""),
	      "--workers");
}

Test(cli, workers_bounds_and_auto)
{
	struct cli_run r =
	    ok(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", "64"));

	cr_assert_eq(r.c->workers, 64);
	done(&r);
	r = ok(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", "1"));
	cr_assert_eq(r.c->workers, 1);
	done(&r);
	r = ok(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--workers", "auto"));
	cr_assert_eq(r.c->workers, 0);
	done(&r);
}

Test(cli, outbound_target_list)
{
	struct cli_run r = ok(
	    PP_TUNNEL_OUTBOUND,
	    ARGS("outbound", "--listen", "127.0.0.1:9000", "--target",
	         "peer-a.example:1234,[2001:db8::1]:4321", "--ca", "root.crt",
	         "--cert", "server.crt", "--key", "server.key", "--chain",
	         "sub-ca.crt", "--peer", "0123456789abcdef0123456789abcdef",
	         "--server-name", "peer-a.example"));
	struct pp_tunnel_conf *t = &r.c->tunnels[0];

	cr_assert_eq(t->ntargets, 2);
	cr_assert_eq(t->targets[0].kind, PP_ADDR_TCP);
	cr_assert_str_eq(t->targets[0].host, "peer-a.example");
	cr_assert_eq(t->targets[0].port, 1234);
	cr_assert_str_eq(t->targets[1].host, "2001:db8::1");
	cr_assert_eq(t->targets[1].port, 4321);
	cr_assert_str_eq(t->chain_file, "sub-ca.crt");
	cr_assert_str_eq(t->peer, "0123456789abcdef0123456789abcdef");
	cr_assert_str_eq(t->server_name, "peer-a.example");
	done(&r);
}

Test(cli, bad_target_lists)
{
	usage(PP_TUNNEL_INBOUND,
	      ARGS("inbound", "--listen", "0.0.0.0:1", "--target",
	           "127.0.0.1:80,127.0.0.1:81", "--ca", "a", "--cert", "b",
	           "--key", "c"),
	      "--target");
	usage(PP_TUNNEL_OUTBOUND,
	      ARGS("outbound", "--listen", "0.0.0.0:1", "--target",
	           "a.example:1,nope", "--ca", "a", "--cert", "b", "--key",
	           "c"),
	      "nope");
	usage(PP_TUNNEL_OUTBOUND,
	      ARGS("outbound", "--listen", "0.0.0.0:1", "--target", ",", "--ca",
	           "a", "--cert", "b", "--key", "c"),
	      "--target");
}

Test(cli, help)
{
	struct cli_run r = cli(PP_TUNNEL_INBOUND, ARGS("inbound", "--help"));

	cr_assert_eq(r.rc, -1);
	cr_assert_null(r.c);
	done(&r);
	r = cli(PP_TUNNEL_OUTBOUND, ARGS(OUTBOUND_BASE, "--help"));
	cr_assert_eq(r.rc, -1);
	cr_assert_null(r.c);
	done(&r);
}

Test(cli, bad_values)
{
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--tls-min", "1.1"),
	      "--tls-min");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--identity", "pkix"),
	      "--identity");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--log-level", "loud"),
	      "--log-level");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--log-format", "xml"),
	      "--log-format");
	usage(PP_TUNNEL_INBOUND,
	      ARGS("inbound", "--listen", "::1:443", "--target", "h:1", "--ca",
	           "a", "--cert", "b", "--key", "c"),
	      "--listen");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--ca", ""), "--ca");
}

Test(cli, flags_given_twice)
{
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--ca", "other.crt"),
	      "--ca");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--listen", "0.0.0.0:1"),
	      "--listen");
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--target", "h:1"),
	      "--target");
}

Test(cli, swaptacular_ids_are_checked)
{
	usage(PP_TUNNEL_INBOUND,
	      ARGS(INBOUND_BASE, "--identity", "swaptacular", "--allow-peer",
	           "0123ABCD"),
	      "--allow-peer");
	usage(PP_TUNNEL_OUTBOUND,
	      ARGS(OUTBOUND_BASE, "--identity", "swaptacular", "--peer",
	           "../../etc"),
	      "--peer");
}

Test(cli, x509_ids_are_free_form)
{
	struct cli_run r =
	    ok(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--identity", "x509",
	                               "--allow-peer", "Client-7"));

	cr_assert_eq(r.c->tunnels[0].identity, PP_IDENTITY_X509);
	cr_assert_str_eq(r.c->tunnels[0].allow.peers[0], "Client-7");
	done(&r);
}

Test(cli, telling_the_app_who_called)
{
	struct cli_run r = ok(PP_TUNNEL_INBOUND,
	                      ARGS(INBOUND_BASE, "--proxy-protocol", "v2",
	                           "--proxy-protocol-cert", "--http-identity"));
	struct pp_tunnel_conf *t = &r.c->tunnels[0];

	cr_assert_eq(t->proxy_protocol, PP_PROXY_PROTOCOL_V2);
	cr_assert_eq(t->proxy_protocol_cert, 1);
	cr_assert_eq(t->http_identity, 1);
	done(&r);
	r = ok(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--proxy-protocol", "v1"));
	cr_assert_eq(r.c->tunnels[0].proxy_protocol, PP_PROXY_PROTOCOL_V1);
	cr_assert_eq(r.c->tunnels[0].http_identity, 0, "off by default");
	done(&r);
	usage(PP_TUNNEL_INBOUND, ARGS(INBOUND_BASE, "--proxy-protocol", "V2"),
	      "--proxy-protocol: \"V2\" is not v1, v2 or off");
	usage(PP_TUNNEL_INBOUND,
	      ARGS(INBOUND_BASE, "--proxy-protocol", "v1",
	           "--proxy-protocol-cert"),
	      "--proxy-protocol-cert needs --proxy-protocol v2");
	usage(PP_TUNNEL_OUTBOUND, ARGS("outbound", "--http-identity"),
	      "--http-identity is not a flag of outbound");
	usage(PP_TUNNEL_OUTBOUND, ARGS("outbound", "--proxy-protocol", "v2"),
	      "--proxy-protocol is not a flag of outbound");
}
