#ifndef PP_TEST_SUPPORT_H
#define PP_TEST_SUPPORT_H

/*
 * Helpers shared by the criterion suites: temporary directories, files,
 * shell commands, stderr capture, the test PKI, and a small strict JSON
 * reader (for the PKI generator's listings and for checking log lines).
 *
 * Functions named t_* may fail the running test with a criterion
 * assertion; they are meant to be called from a test or its fixtures.
 */

#include <stddef.h>

#include <openssl/base.h>
#include <openssl/x509.h>

/* t_tmpdir(buf, len): create a fresh private directory under $TMPDIR (or
 * /tmp, also when $TMPDIR is too long for a unix socket named up to 48
 * bytes to be bound inside the new directory) and write its path to
 * ${buf}. */
void t_tmpdir(char *buf, size_t len);

/* t_rmtree(dir): remove ${dir} and everything below it. */
void t_rmtree(const char *dir);

/* t_path(buf, len, dir, name): write "dir/name" to ${buf}; return ${buf}. */
char *t_path(char *buf, size_t len, const char *dir, const char *name);

/* t_write(path, data): create or replace the file ${path} with ${data}. */
void t_write(const char *path, const char *data);

/* t_read(path, out_len): the whole file at ${path}, NUL-terminated and
 * malloc'd (the caller frees it). */
char *t_read(const char *path, size_t *out_len);

/* t_sh(fmt, ...): run a command with /bin/sh (stdout and stderr of the
 * command go to /dev/null unless it redirects them); return its exit
 * status, or -1 if it did not exit normally. */
int t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* t_contains(hay, needle): non-zero if ${needle} occurs in ${hay}. */
int t_contains(const char *hay, const char *needle);

/* Capture what is written to file descriptor 2 between t_capture_begin
 * and t_capture_end (into a temporary file, so nothing blocks). */
struct t_capture {
	int saved_fd;
	int file_fd;
};
void t_capture_begin(struct t_capture *c);
/* t_capture_end(c): restore fd 2; return the captured bytes, malloc'd and
 * NUL-terminated. */
char *t_capture_end(struct t_capture *c);

/* t_pki(): the test PKI directory from $PEERPROXY_TEST_PKI (set by ctest;
 * nodes/ and generic/ below it).  Fails the test if it is unset. */
const char *t_pki(void);

/* t_pki_path(buf, len, fmt, ...): a path below t_pki(). */
char *t_pki_path(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A node of the generated Swaptacular PKI (nodes/nodes.json). */
struct t_node {
	char id[72];
	char dir[1024]; /* $PEERPROXY_TEST_PKI/nodes/node<i> */
};

/* t_nodes(out, n): read the first ${n} nodes of nodes/nodes.json (node0,
 * node1, ...) into ${out}. */
void t_nodes(struct t_node *out, size_t n);

struct pp_trust;

/* A TLS context of a node of the test PKI with the trust policy it uses
 * (which must outlive it). */
struct t_tls {
	SSL_CTX *ctx;
	struct pp_trust *trust;
};

/* t_tls_server(out, node): ${node} accepting TLS 1.3 from callers its root
 * vouches for (what an inbound tunnel of node data mode does). */
void t_tls_server(struct t_tls *out, const struct t_node *node);

/* t_tls_client(out, node, peer): ${node} connecting with TLS 1.3 to
 * ${peer} and nobody else (what its outbound tunnel to ${peer} does). */
void t_tls_client(struct t_tls *out, const struct t_node *node,
                  const struct t_node *peer);

/* t_tls_free(t): free the context and the policy of ${t}. */
void t_tls_free(struct t_tls *t);

/* t_certs(path): every certificate of a PEM file (must load). */
STACK_OF(X509) * t_certs(const char *path);

/* t_cert(path): the first certificate of a PEM file (must load). */
X509 *t_cert(const char *path);

/* ---- JSON ----------------------------------------------------------- */

enum tj_type { TJ_NULL, TJ_BOOL, TJ_NUMBER, TJ_STRING, TJ_ARRAY, TJ_OBJECT };

struct tj {
	enum tj_type type;
	int boolean;
	double number;
	char *string; /* TJ_STRING: decoded, NUL-terminated */
	size_t n;     /* TJ_ARRAY / TJ_OBJECT: number of items */
	struct tj **items;
	char **keys; /* TJ_OBJECT */
};

/* tj_parse(s, len, err, errlen): parse exactly one JSON value filling the
 * ${len} bytes at ${s} (surrounding whitespace allowed).  Strict: no
 * trailing commas, no raw control characters in strings.  Return the tree,
 * or NULL with the reason in ${err}. */
struct tj *tj_parse(const char *s, size_t len, char *err, size_t errlen);

/* tj_free(v): free the tree ${v}; NULL does nothing. */
void tj_free(struct tj *v);

/* tj_get(obj, key): the member ${key} of the object ${obj}, or NULL. */
const struct tj *tj_get(const struct tj *obj, const char *key);

/* tj_str(obj, key): the string member ${key} of ${obj}, or NULL if it is
 * absent or not a string. */
const char *tj_str(const struct tj *obj, const char *key);

/* t_json_file(path): parse the JSON file at ${path} (must parse). */
struct tj *t_json_file(const char *path);

#endif
