// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Addresses: see cpn_addr.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cpn/maps.h"
#include "cpn_addr.h"

int cpn_sockaddr_parse(const char *s, unsigned min_port, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_s;
	unsigned long port;
	char *end;
	size_t hl;
	int v6;

	memset(ss, 0, sizeof(*ss));
	if (!s || !*s)
		return -1;
	v6 = s[0] == '[';
	if (v6) {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		s++;
		port_s = rb + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
		port_s = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host) || *port_s < '0' || *port_s > '9')
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (errno || *end || port < min_port || port > 65535)
		return -1;
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		*len = sizeof(*s4);
	}
	return 0;
}

int cpn_mac_parse(const char *s, unsigned char mac[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -1;
		mac[i] = (unsigned char)b[i];
	}
	return 0;
}

int cpn_addr_parse(const char *s, __be32 addr[4], __u8 *family)
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = CPN_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = CPN_AF_INET6;
		return 0;
	}
	return -1;
}

int cpn_addr_port_parse(const char *s, __be32 addr[4], __be16 *port, __u8 *family)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(addr, 0, 16);
	if (cpn_sockaddr_parse(s, 1, &ss, &len))
		return -1;
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

		memcpy(addr, &s6->sin6_addr, 16);
		*port = s6->sin6_port;
		*family = CPN_AF_INET6;
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		memcpy(addr, &s4->sin_addr, 4);
		*port = s4->sin_port;
		*family = CPN_AF_INET;
	}
	return 0;
}

const char *cpn_addr_str(const __be32 addr[4], __u8 family, char *buf, size_t len)
{
	if (!inet_ntop(family == CPN_AF_INET6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

int cpn_route_src(const __be32 addr[4], __u8 family, __be32 src[4])
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int fd, rc = -1;

	memset(src, 0, 4 * sizeof(__be32));
	if (family == CPN_AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(9);
		s4->sin_addr.s_addr = addr[0];
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(9);
		memcpy(&s6->sin6_addr, addr, 16);
		len = sizeof(*s6);
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* connect() on UDP sends nothing: it only picks the route. */
	if (!connect(fd, (struct sockaddr *)&ss, len) &&
	    !getsockname(fd, (struct sockaddr *)&ss, &len)) {
		if (family == CPN_AF_INET)
			src[0] = ((struct sockaddr_in *)&ss)->sin_addr.s_addr;
		else
			memcpy(src, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		rc = 0;
	}
	close(fd);
	return rc;
}
