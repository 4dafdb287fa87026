/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * "ADDR:PORT" and MAC address parsing for every cpn program: IPv4
 * "10.1.0.2:7470" or IPv6 "[fd00::2]:7470", literal addresses only. No
 * libbpf: the worker and the load generator link it alone.
 */
#ifndef CPN_USER_ADDR_H
#define CPN_USER_ADDR_H

#include <sys/socket.h>

/* Parse into a socket address; the port must be min_port..65535 (1, or 0
 * where "any port" makes sense). 0, or -1 on anything malformed.
 */
int cpn_sockaddr_parse(const char *s, unsigned min_port, struct sockaddr_storage *ss,
		       socklen_t *len);

/* "02:00:00:00:01:0a" -> 6 bytes: six hex octets, nothing after them.
 * 0, or -1 on anything malformed.
 */
int cpn_mac_parse(const char *s, unsigned char mac[6]);

#endif /* CPN_USER_ADDR_H */
