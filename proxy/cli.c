#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "tls/context.h"
#include "tls/pem.h"
#include "util/duration.h"

enum {
	OPT_LISTEN = 256,
	OPT_TARGET,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_CHAIN,
	OPT_ALLOW_PEER,
	OPT_ALLOW_CN,
	OPT_ALLOW_DNS,
	OPT_ALLOW_URI,
	OPT_IDENTITY,
	OPT_PEER,
	OPT_SERVER_NAME,
	OPT_TLS_MIN,
	OPT_HANDSHAKE_TIMEOUT,
	OPT_CONNECT_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_DRAIN_TIMEOUT,
	OPT_WORKERS,
	OPT_SESSION_RESUMPTION,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_PER_PEER,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
	OPT_ADMIN,
	OPT_PROXY_PROTOCOL,
	OPT_PROXY_PROTOCOL_CERT,
	OPT_HTTP_IDENTITY,
	OPT_HELP,
};

static const char inbound_usage[] =
    "usage: peerproxy inbound --listen ADDR --target ADDR --ca FILE "
    "--cert FILE --key FILE\n"
    "                         [--allow-peer ID]... [--identity "
    "auto|swaptacular|x509]\n"
    "                         [--allow-cn CN]... [--allow-dns NAME]... "
    "[--allow-uri URI]...\n"
    "                         [--tls-min 1.2|1.3] [--handshake-timeout DUR]\n"
    "                         [--connect-timeout DUR] [--idle-timeout DUR]\n"
    "                         [--max-connections N] "
    "[--max-connections-per-peer N]\n"
    "                         [--drain-timeout DUR] [--workers N|auto]\n"
    "                         [--log-level LEVEL] [--log-format text|json]\n"
    "                         [--admin ADDR]\n"
    "                         [--proxy-protocol v1|v2|off] "
    "[--proxy-protocol-cert]\n"
    "                         [--http-identity]\n"
    "\n"
    "Accept mutual TLS on --listen, verify the client's chain against --ca\n"
    "alone, and forward the plaintext to --target.\n"
    "\n"
    "  --listen ADDR          where callers connect: host:port, [v6]:port or "
    "unix:/path\n"
    "  --target ADDR          the local app (plain TCP or unix socket)\n"
    "  --ca FILE              the only trust anchors (nothing from the "
    "system store)\n"
    "  --cert FILE            our leaf, optionally followed by more "
    "certificates\n"
    "  --key FILE             our unencrypted private key\n"
    "  --identity MODE        swaptacular: Swaptacular peer-PKI rules; x509: "
    "plain path\n"
    "                         validation; auto (default): swaptacular if the "
    "--ca\n"
    "                         subject has O=Swaptacular Nodes Registry\n"
    "  --allow-peer ID        admit only these peer ids (subject "
    "serialNumber)\n"
    "  --allow-cn CN          admit subjects with this CN\n"
    "  --allow-dns NAME       admit leaves with this SAN dNSName\n"
    "  --allow-uri URI        admit leaves with this SAN URI\n"
    "                         (a peer passes if any allow entry matches; "
    "none: all pass)\n"
    "  --tls-min VERSION      1.3 (default) or 1.2\n"
    "  --handshake-timeout    default 10s;  --connect-timeout: default 5s\n"
    "  --idle-timeout DUR     close tunnels quiet this long (default: "
    "never)\n"
    "  --max-connections N    open tunnels at most (default 10000; 0: no "
    "limit)\n"
    "  --max-connections-per-peer N  open tunnels per verified peer id\n"
    "                         (default 0: no limit)\n"
    "  --drain-timeout DUR    on SIGTERM, wait this long for open tunnels "
    "(30s)\n"
    "  --workers N|auto       worker threads (default auto: one per CPU)\n"
    "  --session-resumption on|off  issue TLS session tickets (default on;\n"
    "                         resumed sessions are verified again)\n"
    "  --admin ADDR           serve /healthz, /readyz, /metrics, /status on\n"
    "                         host:port (default: off; e.g. "
    "127.0.0.1:9901)\n"
    "  --proxy-protocol v1|v2|off  send the app a PROXY protocol header "
    "first\n"
    "                         (v2 carries the peer id in TLV 0xE0)\n"
    "  --proxy-protocol-cert  v2: also the caller's DER leaf in TLV 0xE1\n"
    "  --http-identity        rewrite HTTP/1.x requests: add X-Peer-Id and\n"
    "                         X-Forwarded-Client-Cert, drop client copies\n";

static const char outbound_usage[] =
    "usage: peerproxy outbound --listen ADDR --target HOST:PORT[,HOST:PORT...] "
    "--ca FILE\n"
    "                          --cert FILE --key FILE [--chain FILE] [--peer "
    "ID]\n"
    "                          [--server-name NAME] [--identity "
    "auto|swaptacular|x509]\n"
    "                          [--tls-min 1.2|1.3] [--handshake-timeout DUR]\n"
    "                          [--connect-timeout DUR] [--idle-timeout DUR]\n"
    "                          [--max-connections N] [--drain-timeout DUR]\n"
    "                          [--workers N|auto]\n"
    "                          [--log-level LEVEL] [--log-format text|json]\n"
    "                          [--admin ADDR]\n"
    "\n"
    "Accept plain connections on --listen and carry each over mutual TLS to\n"
    "one of --target (random order, failover, names resolved per "
    "connection).\n"
    "\n"
    "  --ca FILE              the only trust anchors for the server's chain\n"
    "  --cert FILE            our leaf (and optionally more certificates)\n"
    "  --chain FILE           certificates sent after --cert's (Swaptacular: "
    "the\n"
    "                         cross certificate the peer signed for us, "
    "sub-ca.crt)\n"
    "  --peer ID              the server leaf's serialNumber must be ID\n"
    "  --session-resumption on|off  resume TLS sessions per target (default "
    "on;\n"
    "                         resumed sessions are verified again)\n"
    "  --server-name NAME     send SNI NAME and require it in the server's "
    "certificate\n"
    "  (other flags as for inbound)\n";

static const char verify_usage[] =
    "usage: peerproxy verify --ca FILE --cert FILE [--chain FILE] [--peer ID]\n"
    "                        [--identity auto|swaptacular|x509] "
    "[--allow-peer ID]...\n"
    "\n"
    "Explain offline whether a chain (--cert: leaf first, then --chain) would "
    "be\n"
    "accepted by a peerproxy trusting --ca.  Prints the verified path and the "
    "peer\n"
    "id and exits 0, or exits 1 naming the failure.\n";

void
pp_cli_usage(void *fp)
{
	FILE *f = fp;

	fprintf(
	    f,
	    "peerproxy: a mutual-TLS sidecar proxy\n"
	    "\n"
	    "usage: peerproxy inbound  --listen ADDR --target ADDR --ca FILE "
	    "--cert FILE --key FILE [...]\n"
	    "       peerproxy outbound --listen ADDR --target "
	    "HOST:PORT[,HOST:PORT...] --ca FILE\n"
	    "                          --cert FILE --key FILE [--chain FILE] "
	    "[--peer ID] [...]\n"
	    "       peerproxy run      --config FILE   (many tunnels from a "
	    "YAML "
	    "file)\n"
	    "       peerproxy check    --config FILE   (validate it, serve "
	    "nothing)\n"
	    "       peerproxy verify   --ca FILE --cert FILE [--chain FILE] "
	    "[--peer ID]\n"
	    "       peerproxy version\n"
	    "       peerproxy <subcommand> --help\n"
	    "\n"
	    "ADDR: host:port, [v6addr]:port or unix:/path.  DUR: 500ms, 10s, "
	    "2m.\n"
	    "Exit codes: 0 success, 1 runtime failure, 2 bad usage or "
	    "configuration.\n");
}

static const struct option tunnel_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"target", required_argument, NULL, OPT_TARGET},
    {"ca", required_argument, NULL, OPT_CA},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"chain", required_argument, NULL, OPT_CHAIN},
    {"allow-peer", required_argument, NULL, OPT_ALLOW_PEER},
    {"allow-cn", required_argument, NULL, OPT_ALLOW_CN},
    {"allow-dns", required_argument, NULL, OPT_ALLOW_DNS},
    {"allow-uri", required_argument, NULL, OPT_ALLOW_URI},
    {"identity", required_argument, NULL, OPT_IDENTITY},
    {"peer", required_argument, NULL, OPT_PEER},
    {"server-name", required_argument, NULL, OPT_SERVER_NAME},
    {"tls-min", required_argument, NULL, OPT_TLS_MIN},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"session-resumption", required_argument, NULL, OPT_SESSION_RESUMPTION},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"max-connections-per-peer", required_argument, NULL, OPT_MAX_PER_PEER},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"proxy-protocol", required_argument, NULL, OPT_PROXY_PROTOCOL},
    {"proxy-protocol-cert", no_argument, NULL, OPT_PROXY_PROTOCOL_CERT},
    {"http-identity", no_argument, NULL, OPT_HTTP_IDENTITY},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Which flags each subcommand takes (the table above is shared). */
static int
flag_allowed(const char *cmd, int opt)
{
	if (strcmp(cmd, "verify") == 0)
		return (opt == OPT_CA || opt == OPT_CERT || opt == OPT_CHAIN ||
		        opt == OPT_PEER || opt == OPT_IDENTITY ||
		        opt == OPT_ALLOW_PEER || opt == OPT_ALLOW_CN ||
		        opt == OPT_ALLOW_DNS || opt == OPT_ALLOW_URI ||
		        opt == OPT_SERVER_NAME || opt == OPT_HELP);
	if (strcmp(cmd, "inbound") == 0)
		return (opt != OPT_CHAIN && opt != OPT_PEER &&
		        opt != OPT_SERVER_NAME);
	/* Outbound: no verified caller to tell the target about. */
	return (opt != OPT_ALLOW_PEER && opt != OPT_ALLOW_CN &&
	        opt != OPT_MAX_PER_PEER && opt != OPT_ALLOW_DNS &&
	        opt != OPT_ALLOW_URI && opt != OPT_PROXY_PROTOCOL &&
	        opt != OPT_PROXY_PROTOCOL_CERT && opt != OPT_HTTP_IDENTITY);
}

static const char *
opt_name(int opt)
{
	for (const struct option *o = tunnel_opts; o->name != NULL; o++) {
		if (o->val == opt)
			return (o->name);
	}
	return ("?");
}

static int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print what is wrong with the command line; return PP_EXIT_USAGE. */
static int
usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "peerproxy %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see: peerproxy %s --help)\n", cmd);
	return (PP_EXIT_USAGE);
}

static int
set_string(char **dst, const char *cmd, int opt, const char *val)
{
	if (*dst != NULL)
		return (usage_error(cmd, "--%s given twice", opt_name(opt)));
	if (val[0] == '\0')
		return (
		    usage_error(cmd, "--%s must not be empty", opt_name(opt)));
	if ((*dst = strdup(val)) == NULL)
		return (PP_EXIT_RUNTIME);
	return (0);
}

/* Append a repeatable flag's value to its list. */
static int
push(char ***v, size_t *n, const char *cmd, int opt, const char *val)
{
	if (val[0] == '\0')
		return (
		    usage_error(cmd, "--%s must not be empty", opt_name(opt)));
	return (pp_strv_push(v, n, val) == 0 ? 0 : PP_EXIT_RUNTIME);
}

static int
set_duration(uint64_t *dst, const char *cmd, int opt, const char *val)
{
	if (pp_duration_parse(val, dst) != 0)
		return (usage_error(
		    cmd, "--%s: \"%s\" is not a duration (like 500ms, 10s, 2m)",
		    opt_name(opt), val));
	return (0);
}

static int
parse_targets(struct pp_tunnel_conf *t, const char *cmd, const char *val)
{
	const char *p = val;
	char tok[PP_HOST_MAX + 16], err[160];

	if (t->ntargets > 0)
		return (usage_error(cmd, "--target given twice"));
	for (;;) {
		size_t len = strcspn(p, ",");
		struct pp_addr *n;

		if (len == 0)
			return (usage_error(
			    cmd, "--target \"%s\": empty entry in the list",
			    val));
		if (len >= sizeof(tok))
			return (usage_error(cmd, "--target: entry too long"));
		memcpy(tok, p, len);
		tok[len] = '\0';
		if ((n = realloc(t->targets, (t->ntargets + 1) * sizeof(*n))) ==
		    NULL)
			return (PP_EXIT_RUNTIME);
		t->targets = n;
		if (pp_addr_parse(tok, &t->targets[t->ntargets], err,
		                  sizeof(err)) != 0)
			return (
			    usage_error(cmd, "--target \"%s\": %s", tok, err));
		t->ntargets++;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	if (t->kind == PP_TUNNEL_INBOUND && t->ntargets > 1)
		return (
		    usage_error(cmd, "--target takes one ADDR for inbound"));
	return (0);
}

static int
parse_identity(enum pp_identity_mode *m, const char *cmd, const char *val)
{
	if (pp_identity_mode_parse(val, m) != 0)
		return (usage_error(
		    cmd,
		    "--identity: \"%s\" is not one of auto, swaptacular, x509",
		    val));
	return (0);
}

int
pp_cli_admin(struct pp_config *c, const char *cmd, const char *val)
{
	char err[160];

	if (strcmp(val, "off") == 0) {
		c->admin_enabled = 0;
		return (0);
	}
	if (pp_addr_parse(val, &c->admin_listen, err, sizeof(err)) != 0)
		return (usage_error(cmd, "--admin \"%s\": %s", val, err));
	if (c->admin_listen.kind == PP_ADDR_UNIX)
		return (usage_error(cmd,
		                    "--admin \"%s\": the admin endpoint takes "
		                    "host:port, not a unix socket",
		                    val));
	c->admin_enabled = 1;
	return (0);
}

static int
parse_workers(struct pp_config *c, const char *cmd, const char *val)
{
	char *end;
	long n;

	if (strcmp(val, "auto") == 0) {
		c->workers = 0;
		return (0);
	}
	n = strtol(val, &end, 10);
	if (*val == '\0' || *end != '\0' || n < 1 || n > 64)
		return (usage_error(
		    cmd,
		    "--workers: \"%s\" is not auto or a number from 1 to 64",
		    val));
	c->workers = (int)n;
	return (0);
}

/* A connection count: 0 (no limit) to PP_CLI_COUNT_MAX, as the YAML
 * loader's limits accept. */
#define PP_CLI_COUNT_MAX 10000000

static int
set_count(uint32_t *out, const char *cmd, int opt, const char *val)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(val, &end, 10);
	if (*val < '0' || *val > '9' || *end != '\0' || errno != 0 ||
	    n > PP_CLI_COUNT_MAX)
		return (usage_error(cmd,
		                    "--%s: \"%s\" is not a number from 0 to %d",
		                    opt_name(opt), val, PP_CLI_COUNT_MAX));
	*out = (uint32_t)n;
	return (0);
}

/* Apply one flag to the tunnel ${t} of configuration ${c}. */
static int
apply_flag(struct pp_config *c, struct pp_tunnel_conf *t, const char *cmd,
           int opt, const char *val)
{
	char err[160];

	switch (opt) {
	case OPT_LISTEN:
		if (t->listen.port != 0 || t->listen.path[0] != '\0')
			return (usage_error(cmd, "--listen given twice"
			                         ""));
		if (pp_addr_parse(val, &t->listen, err, sizeof(err)) != 0)
			return (
			    usage_error(cmd, "--listen \"%s\": %s", val, err));
		return (0);
	case OPT_TARGET:
		return (parse_targets(t, cmd, val));
	case OPT_CA:
		return (set_string(&t->ca_file, cmd, opt, val));
	case OPT_CERT:
		return (set_string(&t->cert_file, cmd, opt, val));
	case OPT_KEY:
		return (set_string(&t->key_file, cmd, opt, val));
	case OPT_CHAIN:
		return (set_string(&t->chain_file, cmd, opt, val));
	case OPT_PEER:
		return (set_string(&t->peer, cmd, opt, val));
	case OPT_SERVER_NAME:
		return (set_string(&t->server_name, cmd, opt, val));
	case OPT_ALLOW_PEER:
		return (push(&t->allow.peers, &t->allow.npeers, cmd, opt, val));
	case OPT_ALLOW_CN:
		return (push(&t->allow.cns, &t->allow.ncns, cmd, opt, val));
	case OPT_ALLOW_DNS:
		return (push(&t->allow.dns, &t->allow.ndns, cmd, opt, val));
	case OPT_ALLOW_URI:
		return (push(&t->allow.uris, &t->allow.nuris, cmd, opt, val));
	case OPT_IDENTITY:
		return (parse_identity(&t->identity, cmd, val));
	case OPT_TLS_MIN:
		if (pp_tls_version_parse(val, &t->tls_min) != 0)
			return (usage_error(
			    cmd, "--tls-min: \"%s\" is not 1.2 or 1.3", val));
		return (0);
	case OPT_HANDSHAKE_TIMEOUT:
		return (set_duration(&t->handshake_timeout_ms, cmd, opt, val));
	case OPT_CONNECT_TIMEOUT:
		return (set_duration(&t->connect_timeout_ms, cmd, opt, val));
	case OPT_IDLE_TIMEOUT:
		return (set_duration(&t->idle_timeout_ms, cmd, opt, val));
	case OPT_DRAIN_TIMEOUT:
		return (set_duration(&c->drain_timeout_ms, cmd, opt, val));
	case OPT_MAX_CONNECTIONS:
		return (set_count(&t->max_connections, cmd, opt, val));
	case OPT_MAX_PER_PEER:
		return (set_count(&t->max_connections_per_peer, cmd, opt, val));
	case OPT_WORKERS:
		return (parse_workers(c, cmd, val));
	case OPT_ADMIN:
		return (pp_cli_admin(c, cmd, val));
	case OPT_SESSION_RESUMPTION:
		if (strcmp(val, "on") == 0 || strcmp(val, "off") == 0) {
			t->session_resumption = strcmp(val, "on") == 0;
			return (0);
		}
		return (usage_error(
		    cmd, "--session-resumption: \"%s\" is not on or off", val));
	case OPT_PROXY_PROTOCOL:
		if (pp_proxy_protocol_parse(val, &t->proxy_protocol) != 0)
			return (usage_error(
			    cmd,
			    "--proxy-protocol: \"%s\" is not v1, v2 or off",
			    val));
		return (0);
	case OPT_PROXY_PROTOCOL_CERT:
		t->proxy_protocol_cert = 1;
		return (0);
	case OPT_HTTP_IDENTITY:
		t->http_identity = 1;
		return (0);
	case OPT_LOG_LEVEL:
		if (pp_log_level_parse(val, &c->log_level) != 0)
			return (usage_error(
			    cmd,
			    "--log-level: \"%s\" is not debug, info, warn or "
			    "error",
			    val));
		return (0);
	case OPT_LOG_FORMAT:
		if (strcmp(val, "text") == 0)
			c->log_json = 0;
		else if (strcmp(val, "json") == 0)
			c->log_json = 1;
		else
			return (usage_error(
			    cmd, "--log-format: \"%s\" is not text or json%s",
			    val, ""));
		return (0);
	default:
		return (PP_EXIT_USAGE);
	}
}

/* Parse argv into ${c}/${t}.  Return 0, -1 for --help, or an exit code. */
static int
parse_flags(struct pp_config *c, struct pp_tunnel_conf *t, int argc,
            char **argv)
{
	const char *cmd = argv[0];
	int opt, rc;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", tunnel_opts, NULL)) != -1) {
		if (opt == ':')
			return (usage_error(cmd, "%s needs a value",
			                    argv[optind - 1]));
		if (opt < OPT_LISTEN) /* getopt's '?', or a short flag */
			return (usage_error(cmd, "unknown flag %s",
			                    argv[optind - 1]));
		if (!flag_allowed(cmd, opt))
			return (usage_error(cmd, "--%s is not a flag of %s",
			                    opt_name(opt), cmd));
		if (opt == OPT_HELP)
			return (-1);
		if ((rc = apply_flag(c, t, cmd, opt, optarg)) != 0)
			return (rc);
	}
	if (optind < argc)
		return (usage_error(cmd, "unexpected argument \"%s\"",
		                    argv[optind]));
	return (0);
}

static int
require(const char *cmd, const void *val, const char *flag)
{
	if (val == NULL)
		return (usage_error(cmd, "--%s is required", flag));
	return (0);
}

static int
check_ids(const char *cmd, struct pp_tunnel_conf *t)
{
	for (size_t i = 0; i < t->allow.npeers; i++) {
		if (t->allow.peers[i][0] == '\0' ||
		    strlen(t->allow.peers[i]) > PP_PEER_ID_MAX)
			return (usage_error(
			    cmd, "--allow-peer \"%s\": not a peer id",
			    t->allow.peers[i]));
		if (t->identity == PP_IDENTITY_SWAPTACULAR &&
		    !pp_identity_node_id_valid(t->allow.peers[i]))
			return (usage_error(
			    cmd,
			    "--allow-peer \"%s\": a node id is 8 or 32 "
			    "lowercase hex digits",
			    t->allow.peers[i]));
	}
	if (t->peer != NULL && t->identity == PP_IDENTITY_SWAPTACULAR &&
	    !pp_identity_node_id_valid(t->peer))
		return (usage_error(
		    cmd,
		    "--peer \"%s\": a node id is 8 or 32 lowercase hex "
		    "digits",
		    t->peer));
	return (0);
}

int
pp_cli_tunnel(enum pp_tunnel_kind kind, int argc, char **argv,
              struct pp_config **out)
{
	const char *cmd = argv[0];
	struct pp_config *c;
	struct pp_tunnel_conf *t;
	int rc;

	*out = NULL;
	if ((c = pp_config_new()) == NULL ||
	    (t = pp_config_add_tunnel(c, kind, cmd)) == NULL) {
		pp_config_unref(c);
		return (PP_EXIT_RUNTIME);
	}
	rc = parse_flags(c, t, argc, argv);
	if (rc == -1) {
		fputs(kind == PP_TUNNEL_INBOUND ? inbound_usage
		                                : outbound_usage,
		      stdout);
		goto out;
	}
	if (rc != 0)
		goto out;
	if ((rc = require(cmd, t->listen.port || t->listen.path[0] ? t : NULL,
	                  "listen")) ||
	    (rc = require(cmd, t->ntargets ? t : NULL, "target")) ||
	    (rc = require(cmd, t->ca_file, "ca")) ||
	    (rc = require(cmd, t->cert_file, "cert")) ||
	    (rc = require(cmd, t->key_file, "key")) || (rc = check_ids(cmd, t)))
		goto out;
	if (t->proxy_protocol_cert &&
	    t->proxy_protocol != PP_PROXY_PROTOCOL_V2) {
		rc = usage_error(cmd, "--proxy-protocol-cert needs "
		                      "--proxy-protocol v2");
		goto out;
	}
	*out = c;
	return (PP_EXIT_OK);
out:
	pp_config_unref(c);
	return (rc);
}

int
pp_cli_verify(int argc, char **argv)
{
	struct pp_config *c;
	struct pp_tunnel_conf *t;
	struct pp_trust_params tp;
	struct pp_trust *trust = NULL;
	struct pp_verdict v;
	STACK_OF(X509) *certs = NULL, *chain = NULL;
	char err[512];
	int rc;

	if ((c = pp_config_new()) == NULL ||
	    (t = pp_config_add_tunnel(c, PP_TUNNEL_INBOUND, "verify")) ==
	        NULL) {
		pp_config_unref(c);
		return (PP_EXIT_RUNTIME);
	}
	rc = parse_flags(c, t, argc, argv);
	if (rc == -1) {
		fputs(verify_usage, stdout);
		rc = PP_EXIT_OK;
		goto out;
	}
	if (rc != 0 || (rc = require("verify", t->ca_file, "ca")) ||
	    (rc = require("verify", t->cert_file, "cert")) ||
	    (rc = check_ids("verify", t)))
		goto out;
	memset(&tp, 0, sizeof(tp));
	tp.ca_file = t->ca_file;
	tp.mode = t->identity;
	tp.allow = &t->allow;
	tp.required_peer = t->peer;
	tp.hostname = t->server_name;
	rc = PP_EXIT_USAGE;
	if ((trust = pp_trust_new(&tp, err, sizeof(err))) == NULL ||
	    (certs = pp_pem_load_certs(t->cert_file, err, sizeof(err))) ==
	        NULL ||
	    (t->chain_file != NULL &&
	     (chain = pp_pem_load_certs(t->chain_file, err, sizeof(err))) ==
	         NULL)) {
		fprintf(stderr, "peerproxy verify: %s\n", err);
		goto out;
	}
	X509 *leaf = sk_X509_shift(certs);
	for (size_t i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		X509_up_ref(x);
		sk_X509_push(certs, x);
	}
	if (pp_trust_check_print(trust, leaf, certs, &v, stdout) == 0) {
		printf("identity: %s\npeer id: %s\n",
		       pp_trust_mode(trust) == PP_IDENTITY_SWAPTACULAR
		           ? "swaptacular"
		           : "x509",
		       v.peer_id[0] ? v.peer_id : "(none)");
		rc = PP_EXIT_OK;
	} else {
		fprintf(stderr, "peerproxy verify: refused: %s: %s\n",
		        pp_refusal_name(v.reason), v.detail);
		rc = PP_EXIT_RUNTIME;
	}
	X509_free(leaf);
out:
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
	pp_trust_free(trust);
	pp_config_unref(c);
	return (rc);
}
