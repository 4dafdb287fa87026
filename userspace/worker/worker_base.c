// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The node's addresses and its one UDP socket, and the failure record.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker_base.h"
#include "cpn_addr.h"

const uint32_t wk_lat_bounds_us[WK_LAT_BUCKETS] = {
    50,	   100,	  250,	  500,	  1000,	  2500,	   5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

void wk_lat_add(struct wk_stats *st, uint32_t us)
{
	int k = 0;

	while (k < WK_LAT_BUCKETS && us > wk_lat_bounds_us[k])
		k++;
	WK_ADD(st, lat_hist[k], 1);
	WK_ADD(st, lat_count, 1);
	WK_ADD(st, lat_sum_us, us);
}

void wk_fatal(struct wk_fatal *f, const char *fmt, ...)
{
	va_list ap;
	int zero = 0;

	if (!__atomic_compare_exchange_n(&f->set, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
}

int wk_sync_init(pthread_mutex_t *m, pthread_cond_t *c)
{
	pthread_condattr_t ca;
	int rc;

	if (pthread_condattr_init(&ca))
		return -1;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!rc && !(rc = pthread_mutex_init(m, NULL)) && (rc = pthread_cond_init(c, &ca)))
		pthread_mutex_destroy(m);
	pthread_condattr_destroy(&ca);
	return rc ? -1 : 0;
}

void wk_sync_fini(pthread_mutex_t *m, pthread_cond_t *c)
{
	pthread_cond_destroy(c);
	pthread_mutex_destroy(m);
}

int wk_thread_start(pthread_t *th, int *started, void *(*fn)(void *), void *arg, const char *what,
		    char *err, size_t errlen)
{
	int e = pthread_create(th, NULL, fn, arg);

	if (e) {
		snprintf(err, errlen, "%s: %s", what, strerror(e));
		return -e;
	}
	*started = 1;
	return 0;
}

void wk_thread_stop(pthread_t *th, int *started, int *stop, pthread_mutex_t *m, pthread_cond_t *c)
{
	if (!*started)
		return;
	pthread_mutex_lock(m);
	*stop = 1;
	pthread_cond_broadcast(c);
	pthread_mutex_unlock(m);
	pthread_join(*th, NULL);
	*started = 0;
}

int wk_addr_parse(const char *s, struct wk_addr *a)
{
	return cpn_sockaddr_parse(s, 1, &a->ss, &a->len);
}

void wk_addr_str(const struct wk_addr *a, char *buf, size_t len)
{
	char h[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, h, sizeof(h));
		snprintf(buf, len, "[%s]:%u", h, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;

		inet_ntop(AF_INET, &s4->sin_addr, h, sizeof(h));
		snprintf(buf, len, "%s:%u", h, ntohs(s4->sin_port));
	}
}

/* An IPv4 router seen from an IPv6 socket: ::ffff:A.B.C.D. */
static void addr_map_v4(struct wk_addr *a)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

	memcpy(&s4, &a->ss, sizeof(s4));
	memset(&a->ss, 0, sizeof(a->ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = s4.sin_port;
	s6->sin6_addr.s6_addr[10] = 0xff;
	s6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&s6->sin6_addr.s6_addr[12], &s4.sin_addr, 4);
	a->len = sizeof(*s6);
}

/* IPv6 to IPv4 only from :: or an IPv4-mapped address; IPv4 to IPv6 never. */
int wk_addr_reachable(const struct wk_addr *listen, const struct wk_addr *r)
{
	const struct in6_addr *l6 = &((const struct sockaddr_in6 *)&listen->ss)->sin6_addr;

	if (r->ss.ss_family == listen->ss.ss_family)
		return 1;
	return listen->ss.ss_family == AF_INET6 &&
	       (IN6_IS_ADDR_UNSPECIFIED(l6) || IN6_IS_ADDR_V4MAPPED(l6));
}

int wk_socket_open(const struct wk_addr *listen, struct wk_addr *routers, int n_routers, char *err,
		   size_t errlen)
{
	int fam = listen->ss.ss_family, one = 1, zero = 0, buf = 32 << 20, fd;
	char a[INET6_ADDRSTRLEN + 8];

	for (int i = 0; i < n_routers; i++)
		if (routers[i].ss.ss_family != fam)
			addr_map_v4(&routers[i]);
	fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	/* Best effort: bursts of whole batches arrive at once. Past the
	 * system's rmem_max where allowed (CAP_NET_ADMIN), else up to it.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fam == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (const struct sockaddr *)&listen->ss, listen->len)) {
		int e = errno;

		wk_addr_str(listen, a, sizeof(a));
		snprintf(err, errlen, "bind %s: %s", a, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}
