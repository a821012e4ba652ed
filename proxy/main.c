/*
 * peerproxy: subcommand dispatch.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "cli.h"
#include "runtime/runtime.h"
#include "util/log.h"

#ifndef PEERPROXY_VERSION
#define PEERPROXY_VERSION "0.0.0"
#endif
#ifndef PEERPROXY_BORINGSSL_DESC
#define PEERPROXY_BORINGSSL_DESC "BoringSSL"
#endif
#ifndef PEERPROXY_BORINGSSL_FLAVOR
#define PEERPROXY_BORINGSSL_FLAVOR "custom"
#endif

static int
cmd_version(void)
{
	printf("peerproxy %s\n", PEERPROXY_VERSION);
	/* "source", "system" or "custom": scripts and tests read this. */
	printf("boringssl: %s (%s; %s)\n", PEERPROXY_BORINGSSL_FLAVOR,
	       PEERPROXY_BORINGSSL_DESC, OpenSSL_version(OPENSSL_VERSION));
	printf("libuv: %s\n", uv_version_string());
	return (PP_EXIT_OK);
}

static int
cmd_tunnel(enum pp_tunnel_kind kind, int argc, char **argv)
{
	struct pp_config *c;
	char err[768];
	int rc;

	rc = pp_cli_tunnel(kind, argc, argv, &c);
	if (rc == -1)
		return (PP_EXIT_OK);
	if (rc != PP_EXIT_OK)
		return (rc);
	pp_log_configure(c->log_level, c->log_json);
	if (pp_config_build(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "peerproxy %s: %s\n", argv[0], err);
		pp_config_unref(c);
		return (PP_EXIT_USAGE);
	}
	rc = pp_runtime_run(c);
	pp_config_unref(c);
	return (rc);
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (cmd == NULL) {
		pp_cli_usage(stderr);
		return (PP_EXIT_USAGE);
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		pp_cli_usage(stdout);
		return (PP_EXIT_OK);
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
		return (cmd_version());
	if (strcmp(cmd, "inbound") == 0)
		return (cmd_tunnel(PP_TUNNEL_INBOUND, argc - 1, argv + 1));
	if (strcmp(cmd, "outbound") == 0)
		return (cmd_tunnel(PP_TUNNEL_OUTBOUND, argc - 1, argv + 1));
	if (strcmp(cmd, "verify") == 0)
		return (pp_cli_verify(argc - 1, argv + 1));
	fprintf(stderr, "peerproxy: unknown subcommand \"%s\"\n\n", cmd);
	pp_cli_usage(stderr);
	return (PP_EXIT_USAGE);
}
