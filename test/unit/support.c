#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <openssl/ssl.h>

#include "tls/context.h"
#include "tls/pem.h"
#include "tls/trust.h"
#include "util/file.h"

void
t_tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");
	/* Tests bind unix sockets (names up to 48 bytes: a node data
	 * socket_dir with a 32-digit peer id) in this directory:
	 * a $TMPDIR too long for those to fit sun_path is passed over. */
	size_t most = sizeof(((struct sockaddr_un *)0)->sun_path) - 1 -
	              strlen("/pp-unit-XXXXXX/") - 48;

	if (base == NULL || base[0] == '\0' || strlen(base) > most)
		base = "/tmp";
	cr_assert_lt((size_t)snprintf(buf, len, "%s/pp-unit-XXXXXX", base), len,
	             "temporary directory name too long");
	cr_assert_not_null(mkdtemp(buf), "mkdtemp %s: %s", buf,
	                   strerror(errno));
}

void
t_rmtree(const char *dir)
{
	if (dir != NULL && dir[0] != '\0')
		(void)t_sh("rm -rf '%s'", dir);
}

char *
t_path(char *buf, size_t len, const char *dir, const char *name)
{
	cr_assert_lt((size_t)snprintf(buf, len, "%s/%s", dir, name), len,
	             "path too long: %s/%s", dir, name);
	return (buf);
}

void
t_write(const char *path, const char *data)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, strlen(data), f), strlen(data),
	             "cannot write %s", path);
	cr_assert_eq(fclose(f), 0, "cannot close %s", path);
}

char *
t_read(const char *path, size_t *out_len)
{
	char err[512];
	size_t len = 0;
	char *data =
	    pp_file_read(path, 64 * 1024 * 1024, &len, err, sizeof(err));

	cr_assert_not_null(data, "cannot read %s: %s", path, err);
	if (out_len != NULL)
		*out_len = len;
	return (data);
}

int
t_sh(const char *fmt, ...)
{
	char cmd[4096], full[4200];
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(cmd), "command too long");
	snprintf(full, sizeof(full), "exec >/dev/null 2>&1 </dev/null; %s",
	         cmd);
	st = system(full);
	if (st == -1 || !WIFEXITED(st))
		return (-1);
	return (WEXITSTATUS(st));
}

int
t_contains(const char *hay, const char *needle)
{
	return (hay != NULL && needle != NULL && strstr(hay, needle) != NULL);
}

void
t_capture_begin(struct t_capture *c)
{
	FILE *f = tmpfile();

	cr_assert_not_null(f, "tmpfile: %s", strerror(errno));
	c->file_fd = dup(fileno(f));
	fclose(f);
	cr_assert_geq(c->file_fd, 0, "dup: %s", strerror(errno));
	fflush(stderr);
	c->saved_fd = dup(STDERR_FILENO);
	cr_assert_geq(c->saved_fd, 0, "dup(2): %s", strerror(errno));
	cr_assert_geq(dup2(c->file_fd, STDERR_FILENO), 0, "dup2: %s",
	              strerror(errno));
}

char *
t_capture_end(struct t_capture *c)
{
	struct stat st;
	char *buf;
	size_t got = 0;

	fflush(stderr);
	cr_assert_geq(dup2(c->saved_fd, STDERR_FILENO), 0, "dup2: %s",
	              strerror(errno));
	close(c->saved_fd);
	cr_assert_eq(fstat(c->file_fd, &st), 0, "fstat");
	buf = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	while (got < (size_t)st.st_size) {
		ssize_t r = pread(c->file_fd, buf + got,
		                  (size_t)st.st_size - got, (off_t)got);
		cr_assert_gt(r, 0, "pread: %s", strerror(errno));
		got += (size_t)r;
	}
	buf[got] = '\0';
	close(c->file_fd);
	return (buf);
}

const char *
t_pki(void)
{
	const char *dir = getenv("PEERPROXY_TEST_PKI");

	cr_assert(dir != NULL && dir[0] != '\0',
	          "PEERPROXY_TEST_PKI is not set: run this suite through "
	          "ctest (the unit_pki_* fixtures generate the PKI)");
	return (dir);
}

char *
t_pki_path(char *buf, size_t len, const char *fmt, ...)
{
	char rel[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(rel), "path too long");
	return (t_path(buf, len, t_pki(), rel));
}

void
t_nodes(struct t_node *out, size_t n)
{
	char path[1024];
	struct tj *list =
	    t_json_file(t_pki_path(path, sizeof(path), "nodes/nodes.json"));

	cr_assert_eq(list->type, TJ_ARRAY);
	cr_assert_geq(list->n, n, "nodes.json lists %zu nodes, want %zu",
	              list->n, n);
	for (size_t i = 0; i < n; i++) {
		const char *id = tj_str(list->items[i], "id");
		char want[32];

		snprintf(want, sizeof(want), "node%zu", i);
		cr_assert_str_eq(tj_str(list->items[i], "name"), want);
		cr_assert(id != NULL && strlen(id) < sizeof(out[i].id),
		          "nodes.json: bad id for %s", want);
		strcpy(out[i].id, id);
		t_pki_path(out[i].dir, sizeof(out[i].dir), "nodes/node%zu", i);
	}
	tj_free(list);
}

/* The context of ${p} trusting ${ca} (requiring ${required_peer} if not
 * NULL) into ${out}. */
static void
tls_make(struct t_tls *out, struct pp_tls_params *p, const char *ca,
         const char *required_peer)
{
	struct pp_trust_params tp = {.ca_file = ca,
	                             .mode = PP_IDENTITY_AUTO,
	                             .verify_server = !p->server,
	                             .required_peer = required_peer};
	char err[512] = "";

	out->trust = pp_trust_new(&tp, err, sizeof(err));
	cr_assert_not_null(out->trust, "pp_trust_new: %s", err);
	p->trust = out->trust;
	p->min_version = TLS1_3_VERSION;
	out->ctx = pp_tls_ctx_new(p, err, sizeof(err));
	cr_assert_not_null(out->ctx, "pp_tls_ctx_new: %s", err);
}

void
t_tls_server(struct t_tls *out, const struct t_node *node)
{
	char crt[1100], key[1100], ca[1100];
	struct pp_tls_params p = {
	    .cert_file = t_path(crt, sizeof(crt), node->dir, "server.crt"),
	    .key_file = t_path(key, sizeof(key), node->dir, "server.key"),
	    .server = 1};

	tls_make(out, &p, t_path(ca, sizeof(ca), node->dir, "root-ca.crt"),
	         NULL);
}

void
t_tls_client(struct t_tls *out, const struct t_node *node,
             const struct t_node *peer)
{
	char crt[1100], key[1100], ca[1200], chain[1200];
	struct pp_tls_params p = {
	    .cert_file = t_path(crt, sizeof(crt), node->dir, "server.crt"),
	    .key_file = t_path(key, sizeof(key), node->dir, "server.key")};

	/* The cross certificate ${peer} signed for ${node} goes after the
	 * leaf; the peer's root is the anchor. */
	snprintf(chain, sizeof(chain), "%s/peers/%s/sub-ca.crt", node->dir,
	         peer->id);
	snprintf(ca, sizeof(ca), "%s/peers/%s/root-ca.crt", node->dir,
	         peer->id);
	p.chain_file = chain;
	tls_make(out, &p, ca, peer->id);
}

void
t_tls_free(struct t_tls *t)
{
	SSL_CTX_free(t->ctx);
	pp_trust_free(t->trust);
	t->ctx = NULL;
	t->trust = NULL;
}

STACK_OF(X509) * t_certs(const char *path)
{
	char err[512];
	STACK_OF(X509) *certs = pp_pem_load_certs(path, err, sizeof(err));

	cr_assert_not_null(certs, "cannot load %s: %s", path, err);
	return (certs);
}

X509 *
t_cert(const char *path)
{
	STACK_OF(X509) *certs = t_certs(path);
	X509 *x = sk_X509_shift(certs);

	sk_X509_pop_free(certs, X509_free);
	return (x);
}

/* ---- JSON ----------------------------------------------------------- */

struct jp {
	const char *start, *p, *end;
	char *err;
	size_t errlen;
	int depth;
};

static struct tj *jp_value(struct jp *j);

static int
jp_fail(struct jp *j, const char *what)
{
	if (j->err[0] == '\0')
		snprintf(j->err, j->errlen, "%s at offset %td", what,
		         j->p - j->start);
	return (-1);
}

static void
jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	                         *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static struct tj *
tj_new(enum tj_type type)
{
	struct tj *v = calloc(1, sizeof(*v));

	if (v != NULL)
		v->type = type;
	return (v);
}

static int
hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return (-1);
	}
	*out = v;
	return (0);
}

static size_t
utf8_put(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return (1);
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return (2);
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return (3);
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return (4);
}

/* Parse a string starting at the opening quote into a malloc'd buffer. */
static char *
jp_string(struct jp *j)
{
	size_t cap = (size_t)(j->end - j->p) + 1, n = 0;
	char *out;

	if (j->p >= j->end || *j->p != '"') {
		jp_fail(j, "expected a string");
		return (NULL);
	}
	j->p++;
	/* Decoding never makes a string longer than its source. */
	if ((out = malloc(cap)) == NULL)
		return (NULL);
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p;
		if (c < 0x20) {
			jp_fail(j, "raw control character in a string");
			goto err;
		}
		if (c != '\\') {
			out[n++] = (char)c;
			j->p++;
			continue;
		}
		if (j->end - j->p < 2) {
			jp_fail(j, "truncated escape");
			goto err;
		}
		switch (j->p[1]) {
		case '"':
		case '\\':
		case '/':
			out[n++] = j->p[1];
			break;
		case 'b':
			out[n++] = '\b';
			break;
		case 'f':
			out[n++] = '\f';
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'u': {
			unsigned cp, lo;
			if (j->end - j->p < 6 || hex4(j->p + 2, &cp) != 0) {
				jp_fail(j, "bad \\u escape");
				goto err;
			}
			if (cp >= 0xd800 && cp <= 0xdbff &&
			    j->end - j->p >= 12 && j->p[6] == '\\' &&
			    j->p[7] == 'u' && hex4(j->p + 8, &lo) == 0 &&
			    lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
				j->p += 6;
			}
			n += utf8_put(out + n, cp);
			j->p += 4;
			break;
		}
		default:
			jp_fail(j, "bad escape");
			goto err;
		}
		j->p += 2;
	}
	if (j->p >= j->end) {
		jp_fail(j, "unterminated string");
		goto err;
	}
	j->p++;
	out[n] = '\0';
	return (out);
err:
	free(out);
	return (NULL);
}

static int
jp_literal(struct jp *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return (jp_fail(j, "unexpected character"));
	j->p += n;
	return (0);
}

static int
jp_number(struct jp *j, double *out)
{
	const char *s = j->p;
	char buf[64];

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return (jp_fail(j, "bad number"));
	if (*j->p == '0')
		j->p++;
	else
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return (jp_fail(j, "bad fraction"));
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return (jp_fail(j, "bad exponent"));
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if ((size_t)(j->p - s) >= sizeof(buf))
		return (jp_fail(j, "number too long"));
	memcpy(buf, s, (size_t)(j->p - s));
	buf[j->p - s] = '\0';
	*out = strtod(buf, NULL);
	return (0);
}

static int
tj_push(struct tj *v, struct tj *item, char *key)
{
	struct tj **items = realloc(v->items, (v->n + 1) * sizeof(*items));

	if (items == NULL)
		return (-1);
	v->items = items;
	if (v->type == TJ_OBJECT) {
		char **keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));
		if (keys == NULL)
			return (-1);
		v->keys = keys;
		keys[v->n] = key;
	}
	items[v->n++] = item;
	return (0);
}

static struct tj *
jp_container(struct jp *j, int object)
{
	struct tj *v = tj_new(object ? TJ_OBJECT : TJ_ARRAY);
	char close = object ? '}' : ']';

	if (v == NULL)
		return (NULL);
	if (++j->depth > 64) {
		jp_fail(j, "nested too deeply");
		goto err;
	}
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return (v);
	}
	for (;;) {
		char *key = NULL;
		struct tj *item;

		jp_ws(j);
		if (object) {
			if ((key = jp_string(j)) == NULL)
				goto err;
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':') {
				free(key);
				jp_fail(j, "expected ':'");
				goto err;
			}
			j->p++;
		}
		if ((item = jp_value(j)) == NULL) {
			free(key);
			goto err;
		}
		if (tj_push(v, item, key) != 0) {
			free(key);
			tj_free(item);
			goto err;
		}
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return (v);
		}
		jp_fail(j,
		        object ? "expected ',' or '}'" : "expected ',' or ']'");
		goto err;
	}
err:
	tj_free(v);
	return (NULL);
}

static struct tj *
jp_value(struct jp *j)
{
	struct tj *v;

	jp_ws(j);
	if (j->p >= j->end) {
		jp_fail(j, "unexpected end");
		return (NULL);
	}
	switch (*j->p) {
	case '{':
		return (jp_container(j, 1));
	case '[':
		return (jp_container(j, 0));
	case '"':
		if ((v = tj_new(TJ_STRING)) == NULL)
			return (NULL);
		if ((v->string = jp_string(j)) == NULL) {
			free(v);
			return (NULL);
		}
		return (v);
	case 't':
	case 'f':
		if ((v = tj_new(TJ_BOOL)) == NULL)
			return (NULL);
		v->boolean = *j->p == 't';
		if (jp_literal(j, v->boolean ? "true" : "false") != 0) {
			free(v);
			return (NULL);
		}
		return (v);
	case 'n':
		if (jp_literal(j, "null") != 0)
			return (NULL);
		return (tj_new(TJ_NULL));
	default:
		if ((v = tj_new(TJ_NUMBER)) == NULL)
			return (NULL);
		if (jp_number(j, &v->number) != 0) {
			free(v);
			return (NULL);
		}
		return (v);
	}
}

struct tj *
tj_parse(const char *s, size_t len, char *err, size_t errlen)
{
	struct jp j = {s, s, s + len, err, errlen, 0};
	struct tj *v;

	err[0] = '\0';
	if ((v = jp_value(&j)) == NULL) {
		if (err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	jp_ws(&j);
	if (j.p != j.end) {
		snprintf(err, errlen, "trailing bytes after the value");
		tj_free(v);
		return (NULL);
	}
	return (v);
}

void
tj_free(struct tj *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		tj_free(v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->string);
	free(v);
}

const struct tj *
tj_get(const struct tj *obj, const char *key)
{
	if (obj == NULL || obj->type != TJ_OBJECT)
		return (NULL);
	for (size_t i = 0; i < obj->n; i++) {
		if (strcmp(obj->keys[i], key) == 0)
			return (obj->items[i]);
	}
	return (NULL);
}

const char *
tj_str(const struct tj *obj, const char *key)
{
	const struct tj *v = tj_get(obj, key);

	return (v != NULL && v->type == TJ_STRING ? v->string : NULL);
}

struct tj *
t_json_file(const char *path)
{
	char err[256];
	size_t len;
	char *data = t_read(path, &len);
	struct tj *v = tj_parse(data, len, err, sizeof(err));

	free(data);
	cr_assert_not_null(v, "%s: not JSON: %s", path, err);
	return (v);
}
