/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test fixtures for the router: the real cpn_router.bpf.o run through
 * BPF_PROG_TEST_RUN, configured through libcpn, fed frames from the packet
 * builder (cpn_pkt.h). Shared by selftests/bpf/test_*.c and the benchmark
 * bench/bench-xdp.c.
 */
#ifndef CPN_SELFTEST_H
#define CPN_SELFTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "cpn/proto.h"
#include "cpn/maps.h"
#include "cpn_maps.h"
#include "cpn_pkt.h"

/* ---- the router under test ------------------------------------------ */

struct router {
	struct cpn_router *skel;
	struct cpn_maps maps;
	int prog_fd;
	int chain_fd; /* cpn_xdp_chain, the build that chains a program */
	/* The fixture's nodes answer every request at once (router_run clears
	 * their unanswered count after each run) unless this is set: the
	 * tests of liveness from the traffic set it.
	 */
	int silent_nodes;
};

int router_open(struct router *r);
void router_close(struct router *r);
/* One BPF_PROG_TEST_RUN at repeat=1: returns the XDP action, or -1. */
int router_run(struct router *r, const __u8 *in, size_t in_len, __u8 *out, size_t *out_len);
/* Same, with ingress_ifindex set in the xdp_md context. */
int router_run_if(struct router *r, const __u8 *in, size_t in_len, __u8 *out, size_t *out_len,
		  int ifindex);
__u64 router_stat(struct router *r, enum cpn_stat s);

/* Configure: the packet builder's defaults (cpn_pkt.h). */
#define T_VIP4	  CPN_PKT_VIP4
#define T_VIP6	  CPN_PKT_VIP6
#define T_CLIENT4 CPN_PKT_CLIENT4
#define T_CLIENT6 CPN_PKT_CLIENT6
#define T_PORT	  CPN_PKT_PORT
#define T_CTL	  CPN_PKT_CTL
#define T_SVC	  CPN_PKT_SVC
#define T_TENANT  CPN_PKT_TENANT

int t_add_node(struct router *r, __u16 id, int family, __u32 weight);
/* A service on the default VIP of the family with the given policy and nodes. */
int t_add_service(struct router *r, __u16 id, int family, int policy, const __u16 *nodes, int n);
/* A tenant allowed on service ids[]; rate 0 = unlimited; key NULL = no AUTH. */
/* Service id's flags: `set` added, `clear` taken away. */
int t_service_flags(struct router *r, __u16 id, __u32 set, __u32 clear);
int t_add_tenant(struct router *r, __u32 id, const __u16 *svcs, int n, __u64 rate, __u64 burst,
		 const __u64 *key);
/* Mark a node as freshly reported with this load. */
void t_report(struct router *r, __u16 id, __u32 queue, __u32 inflight, __u32 capacity, __u32 svc_us,
	      __u32 path_us);
/* Config with control port T_CTL and hop key t_hop_key. */
int t_config(struct router *r);
extern const __u64 t_hop_key[2];
/* Sign a request's hop tag (worker_us) as a router of the fleet would. */
static inline void t_hop_tag(struct cpn_pkt *s)
{
	s->hop_tag = true;
	s->hop_key[0] = t_hop_key[0];
	s->hop_key[1] = t_hop_key[1];
}
/* The request_id (host order) of a PROBE to node `id` at router_ts `ts`:
 * the cookie a PROBE_ACK must echo.
 */
__u64 t_probe_cookie(__u16 id, __u32 ts);

/* ---- additions for the router suites (test_router*.c) ---------------- */

#define T_ROUTER4 CPN_PKT_ROUTER4 /* the router's own address: LOAD, PROBE_ACK go here */
#define T_ROUTER6 CPN_PKT_ROUTER6

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
#endif /* CPN_SELFTEST_H */
