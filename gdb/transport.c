// SPDX-License-Identifier: MIT
/*
 * Transports of libkvmdbg-gdb: a listening TCP socket, a serial line or a
 * virtio-serial port. kvmdbg_gdb_serve() takes any connected fd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "gdb-int.h"

GDB_EXPORT int kvmdbg_gdb_listen(const char *spec, char *errbuf, size_t errlen)
{
	char host[64] = "127.0.0.1";
	const char *colon = strrchr(spec, ':'), *port = spec;
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} addr;
	socklen_t alen;
	char *end;
	long pn;
	int fd, one = 1;

	if (colon) {
		size_t hl = (size_t)(colon - spec);

		if (hl >= sizeof(host)) {
			snprintf(errbuf, errlen, "'%s': address too long", spec);
			return -1;
		}
		if (hl) {
			memcpy(host, spec, hl);
			host[hl] = '\0';
			if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
				memmove(host, host + 1, hl - 2);
				host[hl - 2] = '\0';
			}
		}
		port = colon + 1;
	}
	errno = 0;
	pn = strtol(port, &end, 10);
	if (!*port || *end || errno || pn < 0 || pn > 65535) {
		snprintf(errbuf, errlen, "'%s': expected HOST:PORT or PORT (0-65535)", spec);
		return -1;
	}
	/* Numeric addresses only (and "localhost"): no resolver, so the static
	 * build for the VM test beds needs no NSS at run time. */
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	memset(&addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, host, &addr.in4.sin_addr) == 1) {
		addr.in4.sin_family = AF_INET;
		addr.in4.sin_port = htons((uint16_t)pn);
		alen = sizeof(addr.in4);
	} else if (inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
		addr.in6.sin6_family = AF_INET6;
		addr.in6.sin6_port = htons((uint16_t)pn);
		alen = sizeof(addr.in6);
	} else {
		snprintf(errbuf, errlen, "'%s': not a numeric IPv4 or IPv6 address (or localhost)",
			 host);
		return -1;
	}
	fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(errbuf, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, &addr.sa, alen) || listen(fd, 1)) {
		snprintf(errbuf, errlen, "cannot listen on %s:%s: %s", host, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

GDB_EXPORT int kvmdbg_gdb_device_open(const char *path)
{
	struct termios t;
	int fd;

	if (!path)
		return -EINVAL;
	fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (isatty(fd) && tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

GDB_EXPORT int kvmdbg_gdb_device_wait(int fd, int timeout_ms)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int waited, r;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (int)((now.tv_sec - start.tv_sec) * 1000 +
			       (now.tv_nsec - start.tv_nsec) / 1000000);
		if (timeout_ms >= 0 && waited >= timeout_ms)
			return 0;
		r = poll(&p, 1, timeout_ms >= 0 && timeout_ms - waited < 1000 ? timeout_ms - waited
									      : 1000);

		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && (p.revents & POLLNVAL))
			return -EBADF;
		if (r > 0 && !(p.revents & POLLHUP))
			return 1; /* data, or a connected port */
		if (r > 0)
			usleep(20000); /* no host side yet */
	}
}
