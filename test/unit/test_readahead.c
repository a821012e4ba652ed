/*
 * The read-ahead socket BIO: BoringSSL's small exact reads are served from
 * one large recv, end of stream and "would block" come through as a socket
 * BIO reports them, and the pool buffer is held only while bytes wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <openssl/bio.h>

#include "tls/readahead.h"
#include "util/bufpool.h"

struct fixture {
	struct pp_bufpool pool;
	int fd[2]; /* fd[0] under the BIO, fd[1] the peer */
	BIO *bio;
};

static void
setup(struct fixture *f)
{
	cr_assert_eq(pp_bufpool_init(&f->pool, 2), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, f->fd), 0, "%s",
	             strerror(errno));
	cr_assert_eq(fcntl(f->fd[0], F_SETFL, O_NONBLOCK), 0);
	f->bio = pp_readahead_new(f->fd[0], &f->pool);
	cr_assert_not_null(f->bio);
}

static void
teardown(struct fixture *f)
{
	BIO_free(f->bio);
	cr_assert_eq(f->pool.in_use, 0, "the BIO kept a pool buffer");
	pp_bufpool_destroy(&f->pool);
	close(f->fd[0]);
	if (f->fd[1] >= 0)
		close(f->fd[1]);
}

Test(readahead, small_reads_are_served_from_one_recv)
{
	struct fixture f;
	char out[64];

	setup(&f);
	cr_assert_eq(write(f.fd[1], "headerbody-of-the-record", 24), 24);
	cr_assert_eq(BIO_read(f.bio, out, 6), 6);
	cr_assert_arr_eq(out, "header", 6);
	cr_assert_eq(f.pool.in_use, 1, "the rest waits in a pool buffer");
	cr_assert_eq(BIO_pending(f.bio), 18);
	/* The socket is empty now: the rest can only come from the buffer. */
	char probe;
	cr_assert_eq(recv(f.fd[0], &probe, 1, MSG_PEEK), -1);
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(BIO_read(f.bio, out, sizeof(out)), 18);
	cr_assert_arr_eq(out, "body-of-the-record", 18);
	cr_assert_eq(f.pool.in_use, 0, "an empty read-ahead holds no buffer");
	teardown(&f);
}

Test(readahead, would_block_sets_retry_and_holds_nothing)
{
	struct fixture f;
	char out[16];

	setup(&f);
	cr_assert_eq(BIO_read(f.bio, out, sizeof(out)), -1);
	cr_assert(BIO_should_retry(f.bio));
	cr_assert(BIO_should_read(f.bio));
	cr_assert_eq(f.pool.in_use, 0);
	/* Data after a would-block clears the retry state. */
	cr_assert_eq(write(f.fd[1], "x", 1), 1);
	cr_assert_eq(BIO_read(f.bio, out, sizeof(out)), 1);
	cr_assert_not(BIO_should_retry(f.bio));
	teardown(&f);
}

Test(readahead, end_of_stream_after_buffered_bytes)
{
	struct fixture f;
	char out[16];

	setup(&f);
	cr_assert_eq(write(f.fd[1], "last", 4), 4);
	close(f.fd[1]);
	f.fd[1] = -1;
	cr_assert_eq(BIO_read(f.bio, out, 2), 2);
	cr_assert_eq(BIO_read(f.bio, out, 2), 2);
	cr_assert_arr_eq(out, "st", 2);
	cr_assert_eq(BIO_read(f.bio, out, sizeof(out)), 0, "end of stream");
	cr_assert_not(BIO_should_retry(f.bio));
	teardown(&f);
}

Test(readahead, a_large_burst_fills_at_most_one_buffer)
{
	struct fixture f;
	static char big[PP_BUF_SIZE + 100], out[PP_BUF_SIZE + 100];
	size_t got = 0;
	int n;

	setup(&f);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	cr_assert_eq(write(f.fd[1], big, sizeof(big)), (ssize_t)sizeof(big));
	while (got < sizeof(big) && (n = BIO_read(f.bio, out + got, 5000)) > 0)
		got += (size_t)n;
	cr_assert_eq(got, sizeof(big));
	cr_assert_arr_eq(out, big, sizeof(big));
	cr_assert_eq(f.pool.in_use, 0);
	teardown(&f);
}

Test(readahead, writes_go_straight_to_the_socket)
{
	struct fixture f;
	char in[8];

	setup(&f);
	int fd = -1;
	cr_assert_eq(BIO_get_fd(f.bio, &fd), f.fd[0]);
	cr_assert_eq(fd, f.fd[0]);
	cr_assert_eq(BIO_write(f.bio, "hello", 5), 5);
	cr_assert_eq(BIO_flush(f.bio), 1);
	cr_assert_eq(read(f.fd[1], in, sizeof(in)), 5);
	cr_assert_arr_eq(in, "hello", 5);
	teardown(&f);
}

Test(readahead, freeing_with_bytes_waiting_returns_the_buffer)
{
	struct fixture f;
	char out[2];

	setup(&f);
	cr_assert_eq(write(f.fd[1], "abcdef", 6), 6);
	cr_assert_eq(BIO_read(f.bio, out, 2), 2);
	cr_assert_eq(f.pool.in_use, 1);
	teardown(&f); /* asserts in_use == 0 after BIO_free */
}
