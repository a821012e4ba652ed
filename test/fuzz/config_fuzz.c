/*
 * libFuzzer harness for the YAML configuration loader
 * (proxy/config/load.c, on libyaml).
 *
 * Input: a whole configuration file (any bytes: aliases, deep nesting,
 * huge scalars, NUL bytes, invalid UTF-8, UTF-16 all reach the loader as
 * they would from disk).  Checked:
 * - loading the same file twice gives the same model and the same
 *   problems;
 * - a refused file has problems and each names the file ("FILE: ...") and,
 *   when it has a position, a line and column that exist in it
 *   ("FILE:LINE:COL: ..."); node data problems name the node data instead;
 * - an accepted file has no problems, and every tunnel is whole: a name,
 *   a listen address, ca, cert and key, and somewhere to send callers
 *   (an inbound tunnel: one target or at least one route; an outbound
 *   tunnel: at least one target);
 * - round trip: an accepted model (node data aside: its tunnels come from
 *   the disk) written out again as YAML by a writer here loads to the
 *   same model;
 * - no leak (LeakSanitizer), and bounded time and memory per file
 *   (libFuzzer's -timeout and -rss_limit_mb; test/run sets both).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "fuzztmp.h"
#include "config/load.h"
#include "config/nodedata.h"
#include "util/strbuf.h"

static char dir[256], file[300], file2[300];

static void
cleanup(void)
{
	unlink(file);
	unlink(file2);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmpdir("config_fuzz", dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s/peerproxy.yaml", dir);
	snprintf(file2, sizeof(file2), "%s/again.yaml", dir);
	atexit(cleanup);
	return (0);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
}

/* ---- the model as text, to compare two loads ------------------------ */

static void
dump_str(struct pp_sb *b, const char *key, const char *s)
{
	pp_sb_printf(b, "%s=", key);
	pp_sb_json_str(b, s);
	pp_sb_puts(b, "\n");
}

static void
dump_addr(struct pp_sb *b, const char *key, const struct pp_addr *a)
{
	char text[PP_HOST_MAX + 16];

	pp_addr_format(a, text, sizeof(text));
	dump_str(b, key, text);
}

static void
dump_list(struct pp_sb *b, const char *key, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dump_str(b, key, v[i]);
}

static void
dump_tunnel(struct pp_sb *b, const struct pp_tunnel_conf *t)
{
	dump_str(b, "name", t->name);
	pp_sb_printf(b, "kind=%d identity=%d tls_min=%d resumption=%d\n",
	             (int)t->kind, (int)t->identity, t->tls_min,
	             t->session_resumption);
	pp_sb_printf(b, "timeouts=%llu,%llu,%llu max=%u,%u\n",
	             (unsigned long long)t->handshake_timeout_ms,
	             (unsigned long long)t->connect_timeout_ms,
	             (unsigned long long)t->idle_timeout_ms, t->max_connections,
	             t->max_connections_per_peer);
	dump_addr(b, "listen", &t->listen);
	for (size_t i = 0; i < t->ntargets; i++)
		dump_addr(b, "target", &t->targets[i]);
	dump_str(b, "ca", t->ca_file);
	dump_str(b, "cert", t->cert_file);
	dump_str(b, "chain", t->chain_file);
	dump_str(b, "key", t->key_file);
	dump_list(b, "allow_peer", t->allow.peers, t->allow.npeers);
	dump_list(b, "allow_cn", t->allow.cns, t->allow.ncns);
	dump_list(b, "allow_dns", t->allow.dns, t->allow.ndns);
	dump_list(b, "allow_uri", t->allow.uris, t->allow.nuris);
	dump_str(b, "peer", t->peer);
	dump_str(b, "server_name", t->server_name);
	dump_str(b, "gate_dir", t->gate_dir);
	pp_sb_printf(b, "optional=%d own_chain=%d pp=%d pp_cert=%d http=%d\n",
	             t->optional, t->check_own_chain, (int)t->proxy_protocol,
	             t->proxy_protocol_cert, t->http_identity);
	for (size_t i = 0; i < t->nroutes; i++) {
		pp_sb_printf(b, "route any=%d\n", t->routes[i].any);
		dump_list(b, "route_peer", t->routes[i].peers,
		          t->routes[i].npeers);
		dump_addr(b, "route_target", &t->routes[i].target);
	}
}

static void
dump(struct pp_sb *b, const struct pp_config *c)
{
	const struct pp_nodedata *nd = c->nodedata;
	const struct pp_tunnel_defaults *d = &c->defaults;

	pp_sb_printf(b, "workers=%d drain=%llu level=%d json=%d admin=%d\n",
	             c->workers, (unsigned long long)c->drain_timeout_ms,
	             (int)c->log_level, c->log_json, c->admin_enabled);
	dump_addr(b, "admin", &c->admin_listen);
	pp_sb_printf(b, "defaults=%llu,%llu,%llu,%u,%u,%d,%d\n",
	             (unsigned long long)d->handshake_timeout_ms,
	             (unsigned long long)d->connect_timeout_ms,
	             (unsigned long long)d->idle_timeout_ms, d->max_connections,
	             d->max_connections_per_peer, d->tls_min,
	             d->session_resumption);
	if (nd != NULL) {
		dump_str(b, "nd_path", nd->path);
		dump_str(b, "nd_cert", nd->cert);
		dump_str(b, "nd_key", nd->key);
		dump_str(b, "nd_socket_dir", nd->socket_dir);
		dump_addr(b, "nd_in_listen", &nd->inbound_listen);
		dump_addr(b, "nd_in_target", &nd->inbound_target);
		dump_addr(b, "nd_connect", &nd->connect_listen);
		pp_sb_printf(b, "nd=%d,%d,%d,%d,%d,%llu\n", nd->has_inbound,
		             (int)nd->in_proxy_protocol,
		             nd->in_proxy_protocol_cert, nd->in_http_identity,
		             nd->has_connect,
		             (unsigned long long)nd->rescan_ms);
	}
	for (size_t i = 0; i < c->ntunnels; i++)
		dump_tunnel(b, &c->tunnels[i]);
	if (b->failed)
		abort();
}

/* ---- the model written out as YAML ----------------------------------- */

/* ${s} as a double-quoted YAML scalar: every byte outside printable
 * ASCII escaped by code point.  0 if ${s} is not UTF-8 (libyaml hands out
 * only UTF-8, so that would be a finding of its own). */
static int
yaml_str(struct pp_sb *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	pp_sb_puts(b, "\"");
	while (*p) {
		unsigned long cp;
		int k;

		if (*p >= 0x20 && *p < 0x7f) {
			if (*p == '"' || *p == '\\')
				pp_sb_puts(b, "\\");
			pp_sb_append(b, (const char *)p++, 1);
			continue;
		}
		if (*p < 0x80) {
			cp = *p;
			k = 0;
		} else if ((*p & 0xe0) == 0xc0) {
			cp = *p & 0x1f;
			k = 1;
		} else if ((*p & 0xf0) == 0xe0) {
			cp = *p & 0x0f;
			k = 2;
		} else if ((*p & 0xf8) == 0xf0) {
			cp = *p & 0x07;
			k = 3;
		} else {
			return (0);
		}
		p++;
		for (int i = 0; i < k; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return (0);
			cp = cp << 6 | (*p & 0x3f);
		}
		pp_sb_printf(b, "\\U%08lx", cp);
	}
	pp_sb_puts(b, "\"");
	return (1);
}

static int
yaml_kv(struct pp_sb *b, const char *indent, const char *key, const char *s)
{
	if (s == NULL)
		return (1);
	pp_sb_printf(b, "%s%s: ", indent, key);
	if (!yaml_str(b, s))
		return (0);
	pp_sb_puts(b, "\n");
	return (1);
}

static void
yaml_addr(struct pp_sb *b, const char *indent, const char *key,
          const struct pp_addr *a)
{
	char text[PP_HOST_MAX + 16];

	pp_addr_format(a, text, sizeof(text));
	yaml_kv(b, indent, key, text);
}

static int
yaml_list(struct pp_sb *b, const char *indent, const char *key, char *const *v,
          size_t n)
{
	pp_sb_printf(b, "%s%s: [", indent, key);
	for (size_t i = 0; i < n; i++) {
		pp_sb_puts(b, i ? ", " : "");
		if (!yaml_str(b, v[i]))
			return (0);
	}
	pp_sb_puts(b, "]\n");
	return (1);
}

static const char *
tls_version(int v)
{
	return (v == TLS1_2_VERSION ? "1.2" : "1.3");
}

static const char *const identities[] = {"auto", "swaptacular", "x509"};
static const char *const levels[] = {"debug", "info", "warn", "error"};
static const char *const pp_versions[] = {"off", "v1", "v2"};

static int
yaml_tunnel(struct pp_sb *b, const struct pp_tunnel_conf *t)
{
	const char *in = "    ";
	int ok = 1;

	pp_sb_puts(b, "  - ");
	ok &= yaml_kv(b, "", "name", t->name);
	yaml_addr(b, in, "listen", &t->listen);
	ok &= yaml_kv(b, in, "ca", t->ca_file);
	ok &= yaml_kv(b, in, "cert", t->cert_file);
	ok &= yaml_kv(b, in, "key", t->key_file);
	ok &= yaml_kv(b, in, "chain", t->chain_file);
	ok &= yaml_kv(b, in, "peer", t->peer);
	ok &= yaml_kv(b, in, "server_name", t->server_name);
	pp_sb_printf(b, "%sidentity: %s\n", in, identities[t->identity]);
	pp_sb_printf(b,
	             "%slimits: {handshake_timeout: %llums, connect_timeout: "
	             "%llums, idle_timeout: %llums, max_connections: %u, "
	             "max_connections_per_peer: %u}\n",
	             in, (unsigned long long)t->handshake_timeout_ms,
	             (unsigned long long)t->connect_timeout_ms,
	             (unsigned long long)t->idle_timeout_ms, t->max_connections,
	             t->max_connections_per_peer);
	pp_sb_printf(
	    b, "%stls: {min_version: \"%s\", session_resumption: %s}\n", in,
	    tls_version(t->tls_min), t->session_resumption ? "true" : "false");
	if (t->kind == PP_TUNNEL_OUTBOUND) {
		pp_sb_printf(b, "%stargets: [", in);
		for (size_t i = 0; i < t->ntargets; i++) {
			char text[PP_HOST_MAX + 16];
			pp_addr_format(&t->targets[i], text, sizeof(text));
			pp_sb_puts(b, i ? ", " : "");
			yaml_str(b, text);
		}
		pp_sb_puts(b, "]\n");
		return (ok);
	}
	ok &= yaml_list(b, in, "allow_peers", t->allow.peers, t->allow.npeers);
	ok &= yaml_list(b, in, "allow_cn", t->allow.cns, t->allow.ncns);
	ok &= yaml_list(b, in, "allow_dns", t->allow.dns, t->allow.ndns);
	ok &= yaml_list(b, in, "allow_uri", t->allow.uris, t->allow.nuris);
	pp_sb_printf(b,
	             "%sproxy_protocol: %s\n%sproxy_protocol_cert: %s\n"
	             "%shttp_identity: %s\n",
	             in, pp_versions[t->proxy_protocol], in,
	             t->proxy_protocol_cert ? "true" : "false", in,
	             t->http_identity ? "true" : "false");
	if (t->nroutes == 0) {
		if (t->ntargets == 1)
			yaml_addr(b, in, "target", &t->targets[0]);
		return (ok);
	}
	pp_sb_printf(b, "%sroutes:\n", in);
	for (size_t i = 0; i < t->nroutes; i++) {
		pp_sb_printf(b, "%s  - ", in);
		ok &= yaml_list(b, "", "peers", t->routes[i].peers,
		                t->routes[i].npeers);
		yaml_addr(b, "        ", "target", &t->routes[i].target);
	}
	return (ok);
}

/* Write ${c} (no node data) as a configuration file; 0 if a string in it
 * cannot be written. */
static int
yaml(struct pp_sb *b, const struct pp_config *c)
{
	const struct pp_tunnel_defaults *d = &c->defaults;
	int ok = 1;

	if (c->workers > 0)
		pp_sb_printf(b, "workers: %d\n", c->workers);
	else
		pp_sb_puts(b, "workers: auto\n");
	pp_sb_printf(b, "log: {level: %s, format: %s}\n", levels[c->log_level],
	             c->log_json ? "json" : "text");
	if (c->admin_enabled) {
		pp_sb_puts(b, "admin:\n");
		yaml_addr(b, "  ", "listen", &c->admin_listen);
	} else {
		pp_sb_puts(b, "admin: off\n");
	}
	pp_sb_printf(b,
	             "limits: {handshake_timeout: %llums, connect_timeout: "
	             "%llums, idle_timeout: %llums, max_connections: %u, "
	             "max_connections_per_peer: %u, drain_timeout: %llums}\n",
	             (unsigned long long)d->handshake_timeout_ms,
	             (unsigned long long)d->connect_timeout_ms,
	             (unsigned long long)d->idle_timeout_ms, d->max_connections,
	             d->max_connections_per_peer,
	             (unsigned long long)c->drain_timeout_ms);
	pp_sb_printf(b, "tls: {min_version: \"%s\", session_resumption: %s}\n",
	             tls_version(d->tls_min),
	             d->session_resumption ? "true" : "false");
	for (int kind = PP_TUNNEL_INBOUND; kind <= PP_TUNNEL_OUTBOUND; kind++) {
		pp_sb_puts(b, kind == PP_TUNNEL_INBOUND ? "inbound:\n"
		                                        : "outbound:\n");
		for (size_t i = 0; i < c->ntunnels; i++)
			if ((int)c->tunnels[i].kind == kind)
				ok &= yaml_tunnel(b, &c->tunnels[i]);
	}
	if (b->failed)
		abort();
	return (ok);
}

/* ---- the checks ------------------------------------------------------ */

struct load {
	struct pp_config *c;
	struct pp_problems p;
	struct pp_sb text; /* the model, or every problem */
};

static void
load(const char *path, struct load *l)
{
	memset(l, 0, sizeof(*l));
	l->c = pp_config_load(path, &l->p);
	if (l->c != NULL) {
		if (l->p.n != 0)
			abort(); /* accepted with problems */
		dump(&l->text, l->c);
	} else {
		if (l->p.n == 0)
			abort(); /* refused without saying why */
		for (size_t i = 0; i < l->p.n; i++)
			pp_sb_printf(&l->text, "%s\n", l->p.items[i]);
	}
	for (size_t i = 0; i < l->p.nwarnings; i++)
		pp_sb_printf(&l->text, "warning: %s\n", l->p.warnings[i]);
}

static void
unload(struct load *l)
{
	pp_config_unref(l->c);
	pp_problems_free(&l->p);
	pp_sb_free(&l->text);
}

/* A generous count of the lines libyaml can see in ${data}: it breaks
 * lines at \n, \r\n, \r, NEL, LS and PS, in UTF-8 or UTF-16. */
static unsigned long
lines_in(const uint8_t *data, size_t size)
{
	unsigned long n = 1;

	if (size >= 2 && ((data[0] == 0xff && data[1] == 0xfe) ||
	                  (data[0] == 0xfe && data[1] == 0xff)))
		return (size / 2 + 1);
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n')
			n++;
		else if (data[i] == '\r' &&
		         (i + 1 == size || data[i + 1] != '\n'))
			n++;
		else if (data[i] == 0x85 || data[i] == 0xa8 || data[i] == 0xa9)
			n++; /* the last byte of NEL, LS, PS */
	}
	return (n);
}

static void
check_problem(const char *msg, unsigned long lines)
{
	size_t fl = strlen(file);
	unsigned long line, col;
	char *end;

	if (strncmp(msg, "nodedata", 8) == 0)
		return; /* about the node data directory and its files */
	if (strncmp(msg, file, fl) != 0 || msg[fl] != ':')
		abort(); /* does not name the file */
	if (msg[fl + 1] == ' ')
		return; /* about the whole file */
	line = strtoul(msg + fl + 1, &end, 10);
	if (end == msg + fl + 1 || *end != ':')
		abort();
	col = strtoul(end + 1, &end, 10);
	/* libyaml ends a file that lacks its last line break with one: the
	 * end of the file is then line lines + 1, column 1. */
	if (*end != ':' || line < 1 || col < 1 ||
	    (line > lines && !(line == lines + 1 && col == 1)))
		abort(); /* a position that is not in the file */
}

static void
check_whole(const struct pp_config *c)
{
	for (size_t i = 0; i < c->ntunnels; i++) {
		const struct pp_tunnel_conf *t = &c->tunnels[i];

		if (c->nodedata != NULL)
			return; /* node data tunnels are checked by its reader
			         */
		if (t->name == NULL || !pp_tunnel_listens(t) ||
		    t->ca_file == NULL || t->cert_file == NULL ||
		    t->key_file == NULL)
			abort();
		if (t->kind == PP_TUNNEL_INBOUND
		        ? !(t->nroutes > 0 ? t->ntargets == 0
		                           : t->ntargets == 1)
		        : t->ntargets == 0 || t->nroutes != 0)
			abort(); /* nowhere (or too many places) to send callers
			          */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct load a, b, again;
	struct pp_sb out = {0};

	write_file(file, data, size);
	load(file, &a);
	load(file, &b);
	if ((a.c == NULL) != (b.c == NULL) || a.text.len != b.text.len ||
	    (a.text.len && memcmp(a.text.buf, b.text.buf, a.text.len) != 0))
		abort(); /* two loads of one file differ */
	if (a.c == NULL) {
		unsigned long lines = lines_in(data, size);
		for (size_t i = 0; i < a.p.n; i++)
			check_problem(a.p.items[i], lines);
	} else {
		check_whole(a.c);
	}
	if (a.c != NULL && a.c->nodedata == NULL && yaml(&out, a.c)) {
		write_file(file2, out.buf, out.len);
		load(file2, &again);
		if (again.c == NULL || again.text.len != a.text.len ||
		    memcmp(again.text.buf, a.text.buf, a.text.len) != 0)
			abort(); /* the model written out reads back otherwise
			          */
		unload(&again);
	}
	pp_sb_free(&out);
	unload(&a);
	unload(&b);
	return (0);
}
