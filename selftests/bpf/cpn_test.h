/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test fixtures for the router: packets built byte by byte, checksums
 * recomputed from scratch (never with the router's incremental helpers),
 * and the real cpn_router.bpf.o run through BPF_PROG_TEST_RUN.
 * Shared by selftests/bpf/test_*.c and tools/bench-xdp.c.
 */
#ifndef CPN_SELFTEST_H
#define CPN_SELFTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "cpn/proto.h"
#include "cpn/maps.h"
#include "cpn_maps.h"

#define PKT_MAX 2048

/* What to put in a frame. Addresses are text ("10.0.0.1", "fd00::1"). */
struct pkt_spec {
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
};

/* Offsets into a frame, from pkt_locate(). */
struct pkt_view {
	int family;
	size_t l3, l4, pay; /* offsets of IP header, UDP header, UDP payload */
	size_t udp_len;
};

/* A spec with sane defaults: IPv4 client 10.0.0.1:40000 -> VIP 10.0.0.100:7470,
 * REQUEST of service 1, tenant 42, with the header.
 */
void pkt_spec_default(struct pkt_spec *s, int family);
/* Build the frame; returns its length (0 if it does not fit). */
size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap);
/* Find the headers of a frame pkt_build() made (or the router rewrote). */
int pkt_locate(const __u8 *buf, size_t len, struct pkt_view *v);
/* Verify the IPv4 header checksum and the UDP checksum from scratch. */
bool pkt_csum_ok(const __u8 *buf, size_t len);
/* The cpn header of a located frame. */
struct cpn_hdr *pkt_hdr(__u8 *buf, const struct pkt_view *v);
/* Recompute all checksums of a frame from scratch (for hand-corrupted frames). */
void pkt_fix_csums(__u8 *buf, size_t len);

/* ---- the router under test ------------------------------------------ */

struct router {
	struct cpn_router *skel;
	struct cpn_maps maps;
	int prog_fd;
};

int router_open(struct router *r);
void router_close(struct router *r);
/* One BPF_PROG_TEST_RUN at repeat=1: returns the XDP action, or -1. */
int router_run(struct router *r, const __u8 *in, size_t in_len, __u8 *out, size_t *out_len);
/* Same, with ingress_ifindex set in the xdp_md context. */
int router_run_if(struct router *r, const __u8 *in, size_t in_len, __u8 *out, size_t *out_len,
		  int ifindex);
__u64 router_stat(struct router *r, enum cpn_stat s);

/* Configure: defaults used across the tests. */
#define T_VIP4	  "10.0.0.100"
#define T_VIP6	  "fd00::100"
#define T_CLIENT4 "10.0.0.1"
#define T_CLIENT6 "fd00::1"
#define T_PORT	  7470
#define T_CTL	  7471
#define T_SVC	  1
#define T_TENANT  42

/* Node n (1..) lives at 10.1.0.n:7470 / fd01::n port 7470. */
void t_node_addr(int id, int family, char *buf, size_t len);
int t_add_node(struct router *r, __u16 id, int family, __u32 weight);
/* A service on the default VIP of the family with the given policy and nodes. */
int t_add_service(struct router *r, __u16 id, int family, int policy, const __u16 *nodes, int n);
/* A tenant allowed on service ids[]; rate 0 = unlimited; key NULL = no AUTH. */
int t_add_tenant(struct router *r, __u32 id, const __u16 *svcs, int n, __u64 rate, __u64 burst,
		 const __u64 *key);
/* Mark a node as freshly reported with this load. */
void t_report(struct router *r, __u16 id, __u32 queue, __u32 inflight, __u32 capacity, __u32 svc_us,
	      __u32 path_us);
/* Config with control port T_CTL. */
int t_config(struct router *r);

/* ---- additions for the router suites (test_router*.c) ---------------- */

#define T_ROUTER4 "10.0.0.254" /* the router's own address: LOAD, PROBE_ACK go here */
#define T_ROUTER6 "fd00::fe"

/* cmocka setup/teardown: a fresh router with t_config() in *state. */
int t_router_setup(void **state);
int t_router_teardown(void **state);
/* Nodes 1..n of `family` (weight 100, admin up), service T_SVC on the
 * family's VIP with `policy` over them, tenant T_TENANT allowed on T_SVC
 * without limit or key, every node reported fresh and idle (capacity 1,
 * 100 µs a request, no path latency). Called again, it reconfigures in place.
 */
int t_topology(struct router *r, int family, int policy, int n);
/* Every counter, summed over CPUs. */
int router_stats(struct router *r, __u64 out[CPN_STAT_MAX]);
/* A node's counters, summed over CPUs. */
int router_node_stats(struct router *r, __u16 id, struct cpn_node_stats *out);
/* CLOCK_MONOTONIC in µs mod 2^32: the clock of router_ts. */
__u32 t_now_us(void);
/* Make a node's last report older than any stale_ms the tests use. */
void t_make_stale(struct router *r, __u16 id);
/* A REPLY from node `id` (its address and T_PORT) to the default client. */
void pkt_spec_reply(struct pkt_spec *s, int family, __u16 id);
/* A LOAD from node `id` (its address, port T_PORT) to the router's control port. */
void pkt_spec_load(struct pkt_spec *s, int family, __u16 id);
/* The node a rewritten request was steered to: the header's node_id, when
 * the destination is that node's address and port T_PORT; 0 otherwise.
 */
__u16 pkt_steered_node(const __u8 *buf, size_t len);
/* Fill `buf` with `len` bytes of a fixed pseudo-random sequence. */
void t_fill(__u8 *buf, size_t len, __u32 seed);

#endif /* CPN_SELFTEST_H */
