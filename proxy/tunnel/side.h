#ifndef PP_SIDE_H
#define PP_SIDE_H

/*
 * One side of a tunnel: a non-blocking socket watched by a uv_poll handle,
 * speaking TLS (BoringSSL reading and writing the socket itself) or plain
 * bytes.  The tunnel's state machine calls the same few operations on
 * either kind and never asks which it is, except to start a handshake.
 *
 * The contract of every operation below:
 *
 * - Again.  PP_IO_AGAIN means the operation would block.  The event it
 *   waits for (UV_READABLE or UV_WRITABLE) is OR-ed into ${want}: a TLS
 *   read can wait for the socket to take bytes, a TLS write for bytes to
 *   arrive.  Nothing is lost: the same call with the same bytes later
 *   carries on.
 * - The want mask.  The owner clears ${want} before a round of operations
 *   and calls pp_side_update after it, so the loop watches exactly what
 *   the round's blocked operations wait for, and nothing once they no
 *   longer wait (a side whose reads are stopped by a full pipe is not
 *   polled for reading).
 * - Errors.  PP_IO_ERROR means the side is broken: ${reason} is set to a
 *   close reason the failure proves ("peer_alert", "tls_error"), or to
 *   NULL for a socket failure, which the owner names (it knows whether the
 *   side is the client or the target); ${detail} says what failed, naming
 *   the side.  The thread's TLS error queue is left empty.
 * - Sticky errors.  A TLS read that got bytes and then met the end of the
 *   stream or a failure returns the bytes; the next read reports the end
 *   or the failure, and so does every read after it (BoringSSL keeps a
 *   read failure).  A plain read has no such state: the kernel reports a
 *   socket error once.
 */

#include <sys/types.h>

#include <openssl/base.h>
#include <uv.h>

/* pp_side_read and pp_side_write: the operation would block. */
#define PP_IO_AGAIN (-1)
/* pp_side_read and pp_side_write: the side is broken. */
#define PP_IO_ERROR (-2)

/* How a side ends: orderly (FIN or close_notify, nothing lost) or abortive
 * (RST, so that the peer does not mistake a failure for a complete
 * stream). */
enum pp_close_mode { PP_CLOSE_GRACEFUL, PP_CLOSE_ABORT };

struct pp_side {
	uv_poll_t poll;
	int fd;           /* owned; -1 until there is one */
	SSL *ssl;         /* owned; NULL on the plain side */
	const char *name; /* "client" (accepted) or "target": in details */
	uv_poll_cb on_ready;
	int polled;        /* poll handle initialised and not closing */
	int events;        /* what the loop watches for */
	int want;          /* what the blocked operations wait for */
	unsigned tcp : 1;  /* a TCP socket (else unix): an abort sends RST */
	unsigned eof : 1;  /* the owner read the end of the stream */
	unsigned shut : 1; /* our end of the stream is sent */
};

/* pp_side_init(s, fd, tcp, name): a side of socket ${fd} (-1 for none yet;
 * owned by the side from now on), a TCP socket if ${tcp}, called ${name}
 * in details; plain until the owner sets s->ssl. */
void pp_side_init(struct pp_side *s, int fd, int tcp, const char *name);

/* pp_side_watch(s, loop, on_ready, data): let ${loop} watch the socket of
 * ${s}, calling ${on_ready} (with poll.data ${data}) when an event of the
 * want mask happens; nothing is watched until pp_side_update.  Return 0,
 * or -1 (then there is no handle to close). */
int pp_side_watch(struct pp_side *s, uv_loop_t *loop, uv_poll_cb on_ready,
                  void *data);

/* pp_side_update(s): make the loop watch the events of s->want, and only
 * them.  Nothing for a side not watched. */
void pp_side_update(struct pp_side *s);

/* pp_side_read(s, buf, cap, reason, detail, dlen): read at most ${cap}
 * bytes from ${s} into ${buf}.  Return their count (a TLS side fills
 * ${buf} from every record already at hand, not just one), 0 at the end of
 * the stream (close_notify, or a TCP FIN without it: the peer is gone
 * either way, so the end is passed on), PP_IO_AGAIN or PP_IO_ERROR with
 * ${reason} and the ${dlen} bytes of ${detail} set. */
ssize_t pp_side_read(struct pp_side *s, uint8_t *buf, size_t cap,
                     const char **reason, char *detail, size_t dlen);

/* pp_side_write(s, buf, len, reason, detail, dlen): write up to ${len}
 * bytes of ${buf} to ${s}.  Return how many were taken (at least 1),
 * PP_IO_AGAIN or PP_IO_ERROR as for pp_side_read.  After PP_IO_AGAIN on a
 * TLS side the next write must offer the same bytes again. */
ssize_t pp_side_write(struct pp_side *s, const uint8_t *buf, size_t len,
                      const char **reason, char *detail, size_t dlen);

/* pp_side_shutdown(s, reason, detail, dlen): end what we send on ${s} (TCP
 * FIN or TLS close_notify) while what it sends keeps flowing.  Return 0
 * once done (s->shut is set), PP_IO_AGAIN (call again when the want mask
 * says) or PP_IO_ERROR as for pp_side_read. */
int pp_side_shutdown(struct pp_side *s, const char **reason, char *detail,
                     size_t dlen);

/* pp_side_handshake(s, reason, detail, dlen): take the TLS handshake of
 * ${s} one step further.  The want mask is replaced (a handshake is the
 * only operation of its round).  Return 1 once it is finished, PP_IO_AGAIN,
 * or PP_IO_ERROR with the failure the TLS library saw: ${reason}
 * "protocol_version", "no_certificate", "peer_alert" or "handshake_error",
 * and ${detail} (the owner may know better: a refusal of our trust policy
 * fails the handshake too). */
int pp_side_handshake(struct pp_side *s, const char **reason, char *detail,
                      size_t dlen);

/* pp_side_discard(s, budget): read and drop what the socket of ${s} holds,
 * below any TLS (a refused client's last records), at most ${budget}
 * reads.  Return 0 if more may come (or the budget is spent: the loop
 * calls again), or -1 at the end of the stream or a socket error. */
int pp_side_discard(struct pp_side *s, int budget);

/* pp_side_close(s, mode, on_closed): begin closing ${s} in ${mode}: an
 * abortive close of a TCP side resets the connection when its socket is
 * closed; an orderly close of an established TLS side that did not end
 * its stream sends one close_notify, as far as the socket takes it.  If
 * the side is watched its handle is closed, calling ${on_closed}.  The
 * socket and the TLS connection stay until pp_side_release. */
void pp_side_close(struct pp_side *s, enum pp_close_mode mode,
                   uv_close_cb on_closed);

/* pp_side_release(s): free the TLS connection of ${s} and close its
 * socket; its handle, if it had one, must be closed. */
void pp_side_release(struct pp_side *s);

#endif
