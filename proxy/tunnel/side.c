#include "tunnel/side.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/context.h"

void
pp_side_init(struct pp_side *s, int fd, int tcp, const char *name)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->tcp = tcp != 0;
	s->name = name;
}

int
pp_side_watch(struct pp_side *s, uv_loop_t *loop, uv_poll_cb on_ready,
              void *data)
{
	if (uv_poll_init_socket(loop, &s->poll, s->fd) != 0)
		return (-1);
	s->poll.data = data;
	s->on_ready = on_ready;
	s->polled = 1;
	s->events = 0;
	return (0);
}

void
pp_side_update(struct pp_side *s)
{
	if (!s->polled || s->want == s->events)
		return;
	if (s->want == 0)
		uv_poll_stop(&s->poll);
	else
		uv_poll_start(&s->poll, s->want, s->on_ready);
	s->events = s->want;
}

/* The close reason the thread's TLS error queue proves, with the queue's
 * text in ${detail} (the queue is emptied). */
static const char *
tls_reason(char *detail, size_t len)
{
	uint32_t e = ERR_peek_error();
	int r = ERR_GET_REASON(e);

	pp_tls_error_text(detail, len);
	if (e == 0)
		return ("tls_error");
	if (ERR_GET_LIB(e) == ERR_LIB_SSL && r >= SSL_AD_REASON_OFFSET)
		return ("peer_alert");
	return ("tls_error");
}

/* A plain socket call ${op} on ${s} failed with errno: PP_IO_AGAIN (waiting
 * for ${event}) or PP_IO_ERROR with the failure in ${detail}. */
static ssize_t
plain_failed(struct pp_side *s, int event, const char *op, const char **reason,
             char *detail, size_t dlen)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		s->want |= event;
		return (PP_IO_AGAIN);
	}
	snprintf(detail, dlen, "%s %s: %s", s->name, op, strerror(errno));
	*reason = NULL;
	return (PP_IO_ERROR);
}

/* An SSL call ${op} on ${s} returned ${r} <= 0: PP_IO_AGAIN (with the want
 * mask grown) or PP_IO_ERROR with the failure in ${reason} and ${detail}. */
static ssize_t
tls_failed(struct pp_side *s, int r, const char *op, const char **reason,
           char *detail, size_t dlen)
{
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->want |= UV_READABLE;
		return (PP_IO_AGAIN);
	case SSL_ERROR_WANT_WRITE:
		s->want |= UV_WRITABLE;
		return (PP_IO_AGAIN);
	case SSL_ERROR_SYSCALL:
		snprintf(detail, dlen, "%s %s: %s", s->name, op,
		         strerror(errno));
		*reason = NULL;
		ERR_clear_error();
		return (PP_IO_ERROR);
	default:
		*reason = tls_reason(detail, dlen);
		return (PP_IO_ERROR);
	}
}

ssize_t
pp_side_read(struct pp_side *s, uint8_t *buf, size_t cap, const char **reason,
             char *detail, size_t dlen)
{
	ssize_t n;
	int r;

	if (s->ssl == NULL) {
		do {
			n = recv(s->fd, buf, cap, 0);
		} while (n < 0 && errno == EINTR);
		if (n >= 0)
			return (n);
		return (
		    plain_failed(s, UV_READABLE, "read", reason, detail, dlen));
	}
	if ((r = SSL_read(s->ssl, buf, (int)cap)) > 0) {
		/* SSL_read stops at a record's end: fill the buffer from
		 * what is already here, so one send carries several records.
		 * A failure or end of stream met on the way is sticky: the
		 * next call reports it. */
		size_t got = (size_t)r;
		while (got < cap &&
		       (r = SSL_read(s->ssl, buf + got, (int)(cap - got))) > 0)
			got += (size_t)r;
		ERR_clear_error();
		return ((ssize_t)got);
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_ZERO_RETURN: /* close_notify */
		return (0);
	case SSL_ERROR_SYSCALL:
		/* TCP FIN without close_notify: the peer is gone; pass the
		 * end of stream on. */
		if (ERR_peek_error() == 0 && (r == 0 || errno == 0))
			return (0);
		break;
	}
	return (tls_failed(s, r, "read", reason, detail, dlen));
}

ssize_t
pp_side_write(struct pp_side *s, const uint8_t *buf, size_t len,
              const char **reason, char *detail, size_t dlen)
{
	ssize_t n;
	int r;

	if (s->ssl == NULL) {
		do {
			n = send(s->fd, buf, len, MSG_NOSIGNAL);
		} while (n < 0 && errno == EINTR);
		if (n >= 0)
			return (n);
		return (plain_failed(s, UV_WRITABLE, "write", reason, detail,
		                     dlen));
	}
	if ((r = SSL_write(s->ssl, buf, (int)len)) > 0)
		return (r);
	return (tls_failed(s, r, "write", reason, detail, dlen));
}

int
pp_side_shutdown(struct pp_side *s, const char **reason, char *detail,
                 size_t dlen)
{
	int r;

	if (s->ssl == NULL) {
		if (shutdown(s->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
			snprintf(detail, dlen, "%s shutdown: %s", s->name,
			         strerror(errno));
			*reason = NULL;
			return (PP_IO_ERROR);
		}
		s->shut = 1;
		return (0);
	}
	/* BoringSSL: the first call queues close_notify, a repeat finishes
	 * sending it; a call after that would read, so stop at >= 0. */
	if ((r = SSL_shutdown(s->ssl)) >= 0) {
		s->shut = 1;
		return (0);
	}
	return ((int)tls_failed(s, r, "shutdown", reason, detail, dlen));
}

int
pp_side_handshake(struct pp_side *s, const char **reason, char *detail,
                  size_t dlen)
{
	uint32_t e;
	int r, err, lib, why;

	s->want = 0;
	ERR_clear_error();
	if ((r = SSL_do_handshake(s->ssl)) == 1)
		return (1);
	err = SSL_get_error(s->ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		s->want = UV_READABLE;
		return (PP_IO_AGAIN);
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		s->want = UV_WRITABLE;
		return (PP_IO_AGAIN);
	}
	e = ERR_peek_error();
	lib = ERR_GET_LIB(e);
	why = ERR_GET_REASON(e);
	*reason = "handshake_error";
	if (e != 0) {
		if (lib == ERR_LIB_SSL &&
		    (why == SSL_R_UNSUPPORTED_PROTOCOL ||
		     why == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION))
			*reason = "protocol_version";
		else if (lib == ERR_LIB_SSL &&
		         why == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
			*reason = "no_certificate";
		else if (lib == ERR_LIB_SSL && why >= SSL_AD_REASON_OFFSET)
			*reason = "peer_alert";
		pp_tls_error_text(detail, dlen);
	} else {
		snprintf(detail, dlen, "%s",
		         err == SSL_ERROR_SYSCALL && errno != 0
		             ? "connection error during handshake"
		             : "connection closed during handshake");
	}
	return (PP_IO_ERROR);
}

int
pp_side_discard(struct pp_side *s, int budget)
{
	uint8_t sink[4096];
	ssize_t n;

	while ((n = recv(s->fd, sink, sizeof(sink), 0)) > 0) {
		if (--budget == 0)
			return (
			    0); /* level-triggered: the rest comes next turn */
	}
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return (0);
	return (-1);
}

void
pp_side_close(struct pp_side *s, enum pp_close_mode mode, uv_close_cb on_closed)
{
	if (s->fd >= 0 && mode == PP_CLOSE_ABORT && s->tcp) {
		struct linger lg = {1, 0};
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (s->ssl != NULL && !s->shut && SSL_is_init_finished(s->ssl)) {
		/* Best effort: one non-blocking close_notify. */
		SSL_shutdown(s->ssl);
		ERR_clear_error();
	}
	if (s->polled) {
		uv_close((uv_handle_t *)&s->poll, on_closed);
		s->polled = 0;
	}
}

void
pp_side_release(struct pp_side *s)
{
	SSL_free(s->ssl);
	s->ssl = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}
