#include "tls/readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "util/bufpool.h"

struct readahead {
	int fd;
	struct pp_bufpool *pool;
	uint8_t *buf; /* NULL while empty */
	size_t off, len;
};

static BIO_METHOD *ra_method;
static pthread_once_t ra_once = PTHREAD_ONCE_INIT;

static void
ra_drop_buffer(struct readahead *ra)
{
	pp_bufpool_put(ra->pool, ra->buf);
	ra->buf = NULL;
	ra->off = ra->len = 0;
}

static int
ra_read(BIO *b, char *out, int outl)
{
	struct readahead *ra = BIO_get_data(b);
	ssize_t n;
	size_t k;

	BIO_clear_retry_flags(b);
	if (outl <= 0)
		return (0);
	if (ra->len == 0) {
		if (ra->buf == NULL &&
		    (ra->buf = pp_bufpool_get(ra->pool)) == NULL) {
			errno = ENOMEM;
			return (-1);
		}
		do {
			n = recv(ra->fd, ra->buf, PP_BUF_SIZE, 0);
		} while (n < 0 && errno == EINTR);
		if (n <= 0) {
			int saved = errno;

			ra_drop_buffer(ra);
			errno = saved;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				BIO_set_retry_read(b);
			return ((int)n);
		}
		ra->off = 0;
		ra->len = (size_t)n;
	}
	k = ra->len < (size_t)outl ? ra->len : (size_t)outl;
	memcpy(out, ra->buf + ra->off, k);
	ra->off += k;
	ra->len -= k;
	if (ra->len == 0)
		ra_drop_buffer(ra);
	return ((int)k);
}

static int
ra_write(BIO *b, const char *in, int inl)
{
	struct readahead *ra = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do {
		n = send(ra->fd, in, (size_t)inl, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return ((int)n);
}

static long
ra_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct readahead *ra = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return (1);
	case BIO_CTRL_PENDING: /* bytes read ahead, not yet handed out */
		return ((long)ra->len);
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = ra->fd;
		return (ra->fd);
	default:
		return (0);
	}
}

static int
ra_destroy(BIO *b)
{
	struct readahead *ra = BIO_get_data(b);

	if (ra != NULL) {
		ra_drop_buffer(ra);
		free(ra);
		BIO_set_data(b, NULL);
	}
	return (1);
}

static void
ra_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "peerproxy read-ahead");

	if (m == NULL || !BIO_meth_set_read(m, ra_read) ||
	    !BIO_meth_set_write(m, ra_write) ||
	    !BIO_meth_set_ctrl(m, ra_ctrl) ||
	    !BIO_meth_set_destroy(m, ra_destroy)) {
		BIO_meth_free(m);
		return;
	}
	ra_method = m;
}

BIO *
pp_readahead_new(int fd, struct pp_bufpool *pool)
{
	struct readahead *ra;
	BIO *b;

	pthread_once(&ra_once, ra_method_init);
	if (ra_method == NULL || (ra = calloc(1, sizeof(*ra))) == NULL)
		return (NULL);
	if ((b = BIO_new(ra_method)) == NULL) {
		free(ra);
		return (NULL);
	}
	ra->fd = fd;
	ra->pool = pool;
	BIO_set_data(b, ra);
	BIO_set_init(b, 1);
	return (b);
}
