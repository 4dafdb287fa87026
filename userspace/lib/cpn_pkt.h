/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn frames built byte by byte, for the tests, the packet generator and the
 * benchmarks: Ethernet (one optional 802.1Q tag), IPv4 or IPv6, UDP, the cpn
 * header with an optional tag, a payload. Checksums are computed from
 * scratch (RFC 1071, the plain way), never with the router's incremental
 * helpers, so that a frame the router rewrote can be checked independently.
 */
#ifndef CPN_USER_PKT_H
#define CPN_USER_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "cpn/proto.h"

#define CPN_PKT_MAX 2048 /* the largest frame cpn_pkt_build() writes */

/* The defaults of cpn_pkt_default() and the other builders: a client, a
 * service's VIP, its port, and the router's own address (its control port
 * takes LOADs).
 */
#define CPN_PKT_CLIENT4 "10.0.0.1"
#define CPN_PKT_CLIENT6 "fd00::1"
#define CPN_PKT_VIP4	"10.0.0.100"
#define CPN_PKT_VIP6	"fd00::100"
#define CPN_PKT_ROUTER4 "10.0.0.254"
#define CPN_PKT_ROUTER6 "fd00::fe"
#define CPN_PKT_PORT	7470
#define CPN_PKT_CTL	7471
#define CPN_PKT_SVC	1
#define CPN_PKT_TENANT	42

/* What to put in a frame. Addresses are text ("10.0.0.1", "fd00::1"). */
struct cpn_pkt {
	int family; /* CPN_AF_INET or CPN_AF_INET6 */
	int vlan;   /* 0 none, else the VLAN id (802.1Q) */
	const char *src, *dst;
	__u16 sport, dport;
	struct cpn_msg msg; /* the cpn header, host order */
	bool with_hdr;	    /* false: UDP payload is only `payload` */
	bool auth;	    /* set CPN_F_AUTH and append the tag */
	__u64 key[2];	    /* tenant key (REQUEST) or node key (others) */
	const void *payload;
	size_t payload_len;
	__u8 ttl;	    /* 0 = 64 */
	bool udp_csum_zero; /* IPv4: send without UDP checksum */
	bool fresh;	    /* set CPN_F_FRESH; stamp msg.stamp, or CLOCK_TAI now if 0 */
	bool hop_tag;	    /* REQUEST: worker_us = cpn_hop_tag() under hop_key */
	__u64 hop_key[2];
};

/* Offsets into a frame, from cpn_pkt_locate(). */
struct cpn_pkt_view {
	int family;
	size_t l3, l4, pay; /* offsets of IP header, UDP header, UDP payload */
	size_t udp_len;
};

/* A REQUEST of service CPN_PKT_SVC, tenant CPN_PKT_TENANT, from the client
 * port 40000 to the VIP, with the header.
 */
void cpn_pkt_default(struct cpn_pkt *s, int family);
/* A REPLY from node `id` (its address, port CPN_PKT_PORT) to the client. */
void cpn_pkt_reply(struct cpn_pkt *s, int family, __u16 id);
/* A LOAD from node `id` to the router's control port. */
void cpn_pkt_load(struct cpn_pkt *s, int family, __u16 id);
/* Node n (1..) lives at 10.1.(n / 256).(n % 256) / fd01::n, port CPN_PKT_PORT. */
void cpn_pkt_node_addr(int id, int family, char *buf, size_t len);

/* Build the frame; returns its length (0 if it does not fit in cap). */
size_t cpn_pkt_build(const struct cpn_pkt *s, __u8 *buf, size_t cap);
/* Find the headers of a frame: 0, or -1 when it is not Ethernet/IP/UDP. */
int cpn_pkt_locate(const __u8 *buf, size_t len, struct cpn_pkt_view *v);
/* Verify the IPv4 header checksum and the UDP checksum from scratch. */
bool cpn_pkt_csum_ok(const __u8 *buf, size_t len);
/* A copy of the cpn header of a located frame (the frame's own bytes need
 * not be aligned for struct cpn_hdr).
 */
void cpn_pkt_hdr(const __u8 *buf, const struct cpn_pkt_view *v, struct cpn_hdr *out);
/* Recompute all checksums of a frame from scratch (for hand-corrupted frames). */
void cpn_pkt_fix_csums(__u8 *buf, size_t len);
/* The node a rewritten request was steered to: the header's node_id, when
 * the destination is that node's address and port CPN_PKT_PORT; 0 otherwise.
 */
__u16 cpn_pkt_steered_node(const __u8 *buf, size_t len);
/* Fill `buf` with `len` bytes of a fixed pseudo-random sequence. */
void cpn_pkt_fill(__u8 *buf, size_t len, __u32 seed);

#endif /* CPN_USER_PKT_H */
