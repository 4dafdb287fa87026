/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Addresses for every cpn program: "ADDR:PORT" (IPv4 "10.1.0.2:7470" or
 * IPv6 "[fd00::2]:7470", literal addresses only), a bare address into the
 * maps' form (four 32-bit words, IPv4 in the first), and MAC addresses.
 */
#ifndef CPN_USER_ADDR_H
#define CPN_USER_ADDR_H

#include <stddef.h>
#include <sys/socket.h>
#include <linux/types.h>

/* Parse into a socket address; the port must be min_port..65535 (1, or 0
 * where "any port" makes sense). 0, or -1 on anything malformed.
 */
int cpn_sockaddr_parse(const char *s, unsigned min_port, struct sockaddr_storage *ss,
		       socklen_t *len);

/* "02:00:00:00:01:0a" -> 6 bytes: six hex octets, nothing after them.
 * 0, or -1 on anything malformed.
 */
int cpn_mac_parse(const char *s, unsigned char mac[6]);

/* "10.0.0.1", "fd00::1" -> addr (an IPv4 address in addr[0], the rest
 * zero), family (CPN_AF_INET or CPN_AF_INET6). 0 or -1.
 */
int cpn_addr_parse(const char *s, __be32 addr[4], __u8 *family);
/* "10.1.0.2:7470", "[fd00::2]:7470" -> addr, port (network order), family. */
int cpn_addr_port_parse(const char *s, __be32 addr[4], __be16 *port, __u8 *family);
/* Format an address; returns buf. */
const char *cpn_addr_str(const __be32 addr[4], __u8 family, char *buf, size_t len);
/* The source address this host's routing gives a datagram to addr (what a
 * UDP socket connected there would send from): 0 and src filled, or -1
 * (no route) with src zeroed.
 */
int cpn_route_src(const __be32 addr[4], __u8 family, __be32 src[4]);

#endif /* CPN_USER_ADDR_H */
