#ifndef PP_CLI_H
#define PP_CLI_H

/*
 * Command-line flags of the tunnel subcommands, turned into the same
 * configuration model the YAML loader builds.
 */

#include "config/config.h"

/* Exit codes shared by every subcommand. */
#define PP_EXIT_OK      0
#define PP_EXIT_RUNTIME 1
#define PP_EXIT_USAGE   2

/* pp_cli_tunnel(kind, argc, argv, out): parse the flags of the "inbound" or
 * "outbound" subcommand (argv[0] is the subcommand) into a new
 * configuration in ${out}, not yet built.  Return PP_EXIT_OK, or
 * PP_EXIT_USAGE after printing what is wrong (naming the flag), or -1
 * after printing help (the caller exits 0). */
int pp_cli_tunnel(enum pp_tunnel_kind kind, int argc, char **argv,
                  struct pp_config **out);

/* pp_cli_verify(argc, argv): run the "verify" subcommand; return its exit
 * code. */
int pp_cli_verify(int argc, char **argv);

/* pp_cli_admin(c, cmd, val): apply "--admin ${val}" (host:port or off)
 * to ${c}.  Return 0, or PP_EXIT_USAGE after printing what is wrong. */
int pp_cli_admin(struct pp_config *c, const char *cmd, const char *val);

/* pp_cli_usage(f): print the overview of every subcommand to ${f}. */
void pp_cli_usage(void *f);

#endif
