#ifndef PP_LOAD_H
#define PP_LOAD_H

/*
 * The YAML configuration file (peerproxy run/check --config FILE), read
 * with libyaml into the same model the command-line flags build.  Every
 * problem is reported with the file, line, column and key path, e.g.
 *     config.yaml:12:5: inbound[0].alow_peers: unknown key
 */

#include "config/config.h"

/* pp_config_load(path, p): parse the YAML file ${path} into a new
 * configuration (not yet built: see pp_config_build).  Relative file paths
 * in it resolve against the file's directory.  Return it, or NULL with
 * every problem found added to ${p}. */
struct pp_config *pp_config_load(const char *path, struct pp_problems *p);

#endif
