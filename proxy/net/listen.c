#include "net/listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKLOG 4096

static int
resolve_bind(const struct pp_addr *a, struct sockaddr_storage *ss,
             socklen_t *len, char *err, size_t errlen)
{
	struct addrinfo hints, *res;
	char port[8];
	int r;

	if (pp_addr_literal(a, ss, len) == 0)
		return (0);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%u", a->port);
	if ((r = getaddrinfo(a->host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", a->host,
		         gai_strerror(r));
		return (-1);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return (0);
}

/* A unix socket file left by a dead process answers connect() with
 * ECONNREFUSED; anything else at the path is not ours to remove. */
static int
clear_stale_unix(const struct pp_addr *a, const struct sockaddr *sa,
                 socklen_t len, char *err, size_t errlen)
{
	struct stat st;
	int fd, r;

	if (lstat(a->path, &st) != 0)
		return (0);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", a->path);
		return (-1);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (0);
	r = connect(fd, sa, len);
	close(fd);
	if (r == 0) {
		snprintf(err, errlen, "another process listens on %s", a->path);
		return (-1);
	}
	unlink(a->path);
	return (0);
}

int
pp_listen_remove_stale(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	struct stat st;
	int fd, r, saved;

	if (len >= sizeof(sun.sun_path) || lstat(path, &st) != 0 ||
	    !S_ISSOCK(st.st_mode))
		return (0);
	memcpy(sun.sun_path, path, len + 1);
	/* Non-blocking: a live listener with a full backlog says EAGAIN
	 * rather than keep us waiting, and is left alone. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                 0)) < 0)
		return (0);
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	saved = errno;
	close(fd);
	if (r == 0 || saved != ECONNREFUSED)
		return (0);
	return (unlink(path) == 0);
}

static int
open_one(const struct sockaddr *sa, socklen_t len, int reuseport)
{
	int one = 1, fd, saved;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0)
		return (-1);
	if (sa->sa_family != AF_UNIX) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
		                            sizeof(one)) != 0)
			goto err;
	}
	if (bind(fd, sa, len) != 0 || listen(fd, BACKLOG) != 0)
		goto err;
	return (fd);
err:
	saved = errno;
	close(fd);
	errno = saved;
	return (-1);
}

int
pp_listen_open(const struct pp_addr *a, size_t n, int *fds, char *err,
               size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;
	int probe;

	if (resolve_bind(a, &ss, &len, err, errlen) != 0)
		return (-1);
	for (i = 0; i < n; i++)
		fds[i] = -1;
	if (a->kind == PP_ADDR_UNIX) {
		if (clear_stale_unix(a, (struct sockaddr *)&ss, len, err,
		                     errlen) != 0)
			return (-1);
		if ((fds[0] = open_one((struct sockaddr *)&ss, len, 0)) < 0)
			goto fail;
		for (i = 1; i < n; i++) {
			if ((fds[i] = dup(fds[0])) < 0)
				goto fail;
		}
		return (0);
	}
	/* SO_REUSEPORT would let us share a port with a stray process; a
	 * plain bind first proves nobody holds it. */
	if ((probe = open_one((struct sockaddr *)&ss, len, 0)) < 0)
		goto fail;
	close(probe);
	for (i = 0; i < n; i++) {
		if ((fds[i] = open_one((struct sockaddr *)&ss, len, 1)) < 0)
			goto fail;
	}
	return (0);

fail:
	snprintf(err, errlen, "%s", strerror(errno));
	for (i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	return (-1);
}
