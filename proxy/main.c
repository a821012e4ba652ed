/*
 * peerproxy: subcommand dispatch.
 */

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "cli.h"
#include "config/load.h"
#include "config/nodedata.h"
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

/* The command line of a tunnel subcommand, parsed again on SIGHUP so that
 * rotated certificates and keys are read afresh. */
struct cli_args {
	enum pp_tunnel_kind kind;
	int argc;
	char **argv;
};

static struct pp_config *
reload_cli(void *arg, struct pp_problems *p)
{
	struct cli_args *a = arg;
	struct pp_config *c;

	if (pp_cli_tunnel(a->kind, a->argc, a->argv, &c) != PP_EXIT_OK) {
		pp_problems_add(p, "the command line no longer parses");
		return (NULL);
	}
	return (c);
}

/* run: the configuration file, and the --admin flag overriding it. */
struct run_args {
	const char *path;
	const char *admin; /* NULL: as the file says */
};

/* Load the file of ${a}, applying its --admin override. */
static struct pp_config *
load_run(const struct run_args *a, struct pp_problems *p)
{
	struct pp_config *c = pp_config_load(a->path, p);

	/* A bad --admin is reported by pp_cli_admin itself. */
	if (c != NULL && a->admin != NULL &&
	    pp_cli_admin(c, "run", a->admin) != PP_EXIT_OK) {
		pp_config_unref(c);
		return (NULL);
	}
	return (c);
}

static struct pp_config *
reload_file(void *arg, struct pp_problems *p)
{
	return (load_run(arg, p));
}

/* Build ${c} (consumed) and serve it, reloading with ${reload}; ${cmd}
 * prefixes error messages. */
static int
serve(struct pp_config *c, const char *cmd, pp_reload_fn *reload, void *arg)
{
	struct pp_problems p = {0};
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "peerproxy %s: ", cmd);
	pp_log_configure(c->log_level, c->log_json);
	if (pp_config_build(c, &p) != 0) {
		pp_problems_print(&p, prefix, stderr);
		pp_problems_free(&p);
		pp_config_unref(c);
		return (PP_EXIT_USAGE);
	}
	pp_config_log_warnings(c, &p, NULL);
	pp_problems_free(&p);
	/* Node data mode listens on <socket_dir>/<peer>.sock. */
	if (c->nodedata != NULL && c->nodedata->socket_dir != NULL &&
	    mkdir(c->nodedata->socket_dir, 0755) != 0 && errno != EEXIST)
		pp_log_msg(PP_LOG_ERROR, "socket_dir", "%s: %s",
		           c->nodedata->socket_dir, strerror(errno));
	return (pp_runtime_run(c, reload, arg)); /* takes our reference */
}

static int
cmd_tunnel(enum pp_tunnel_kind kind, int argc, char **argv)
{
	struct pp_config *c;
	int rc;

	rc = pp_cli_tunnel(kind, argc, argv, &c);
	if (rc == -1)
		return (PP_EXIT_OK);
	if (rc != PP_EXIT_OK)
		return (rc);
	struct cli_args a = {kind, argc, argv};
	return (serve(c, argv[0], reload_cli, &a));
}

/* run/check: the configuration file from --config FILE (or
 * PEERPROXY_CONFIG) and run's --admin ADDR into ${a}; NULL after printing
 * why not. */
static const char *
config_path(int argc, char **argv, struct run_args *a)
{
	const char *cmd = argv[0], *path = getenv("PEERPROXY_CONFIG");
	int run = strcmp(cmd, "run") == 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
		else if (run && strcmp(argv[i], "--admin") == 0 && i + 1 < argc)
			a->admin = argv[++i];
		else if (run && strncmp(argv[i], "--admin=", 8) == 0)
			a->admin = argv[i] + 8;
		else {
			fprintf(stderr,
			        "peerproxy %s: unexpected argument \"%s\"\n"
			        "usage: peerproxy %s --config FILE%s\n",
			        cmd, argv[i], cmd,
			        run ? " [--admin ADDR|off]" : "");
			return (NULL);
		}
	}
	if (path == NULL || *path == '\0')
		fprintf(stderr,
		        "peerproxy %s: --config FILE is required (or set "
		        "PEERPROXY_CONFIG)\n",
		        cmd);
	return (path && *path ? path : NULL);
}

/* peerproxy run|check --config FILE: load, validate completely; check
 * stops there, run serves. */
static int
cmd_config(int argc, char **argv, int serve_it)
{
	struct pp_problems p = {0};
	struct pp_config *c;
	static struct run_args a; /* outlives serve(): reloads read it */
	const char *path;
	char prefix[32];

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		printf("usage: peerproxy %s --config FILE%s\n"
		       "(or PEERPROXY_CONFIG=FILE peerproxy %s)\n",
		       argv[0], serve_it ? " [--admin ADDR|off]" : "", argv[0]);
		return (PP_EXIT_OK);
	}
	if ((path = config_path(argc, argv, &a)) == NULL)
		return (PP_EXIT_USAGE);
	a.path = path;
	snprintf(prefix, sizeof(prefix), "peerproxy %s: ", argv[0]);
	if ((c = load_run(&a, &p)) == NULL) {
		pp_problems_print(&p, prefix, stderr);
		pp_problems_free(&p);
		return (PP_EXIT_USAGE);
	}
	if (serve_it) {
		pp_log_configure(c->log_level, c->log_json);
		pp_config_log_warnings(c, &p, NULL);
		pp_problems_free(&p);
		return (serve(c, argv[0], reload_file, &a));
	}
	if (pp_config_build(c, &p) != 0) {
		pp_problems_print(&p, prefix, stderr);
		pp_problems_free(&p);
		pp_config_unref(c);
		return (PP_EXIT_USAGE);
	}
	pp_problems_print(&p, prefix, stderr); /* warnings only */
	printf("%s: configuration OK (%zu tunnel%s)\n", path, c->ntunnels,
	       c->ntunnels == 1 ? "" : "s");
	pp_problems_free(&p);
	pp_config_unref(c);
	return (PP_EXIT_OK);
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
	if (strcmp(cmd, "run") == 0)
		return (cmd_config(argc - 1, argv + 1, 1));
	if (strcmp(cmd, "check") == 0)
		return (cmd_config(argc - 1, argv + 1, 0));
	if (strcmp(cmd, "verify") == 0)
		return (pp_cli_verify(argc - 1, argv + 1));
	fprintf(stderr, "peerproxy: unknown subcommand \"%s\"\n\n", cmd);
	pp_cli_usage(stderr);
	return (PP_EXIT_USAGE);
}
