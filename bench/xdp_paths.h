/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The router's paths as the benchmarks drive them: one frame per path, the
 * program it goes through, the action and rewrite it must give, the state it
 * needs before each run, and the topology they all run in (a private network
 * namespace with two veth pairs, forwarding on, permanent neighbours, the
 * router configured with two nodes and four services). Shared by bench-xdp
 * (time per packet) and bench-insns (instructions and helper calls per
 * packet), so that both measure the same packets in the same state.
 */
#ifndef CPN_BENCH_XDP_PATHS_H
#define CPN_BENCH_XDP_PATHS_H

#include <stddef.h>
#include <linux/types.h>

#include "cpn_test.h"

enum path {
	P_TRIVIAL,
	P_FLOOR,
	P_PASS,
	P_REQUEST,
	P_REPLY,
	P_LOAD,
	P_REQ_JIQ,
	P_REQ_FNAT,
	P_REPLY_FNAT,
	P_REQ_CHECK,
	P_REPLY_CHECK,
	P_REQ_OPEN,
	P_MAX
};
extern const char *const path_names[P_MAX];
extern const char *const path_desc[P_MAX];

struct path_run;
typedef int (*pre_fn)(struct path_run *);

struct path_run {
	int prog_fd;
	__u8 in[CPN_PKT_MAX];
	size_t in_len;
	int want;	  /* expected XDP action */
	size_t check_off; /* bytes of the output checked on every call */
	__u8 check[16];
	size_t check_len;
	int ifindex;
	__u64 kern_ns; /* sum of kernel durations */
	__u64 wall_ns;
	__u64 calls;
	double *round_ns; /* kernel ns/packet per round */
	pre_fn pre;	  /* before each run, not timed: the state the path needs */
	struct router *r;
};

/* The namespace's ports, their addresses, and the permanent neighbours: what
 * make_netns() sets up, for a program that must know the routes (bench-insns
 * answers the FIB lookups of its interpreter from them).
 */
struct xdp_port {
	const char *dev;  /* in0, out0 */
	const char *addr; /* the router's address on it, a /24 */
};
struct xdp_neigh {
	const char *dev;
	const char *ip;
	const char *mac;
};
extern const struct xdp_port xdp_ports[2];
extern const struct xdp_neigh xdp_neighs[3];

/* The program's name, the prefix of every message. */
extern const char *xdp_paths_prog;

int sh(const char *cmd);
/* unshare a network namespace and build the topology in it. */
int make_netns(int *if_in, int *if_out);
/* Two nodes, four services (p2c, jiq, full NAT, reply_check), a tenant,
 * the ports; nocache: the per-node next-hop cache off.
 */
int xdp_paths_config(struct router *r, int if_in, int if_out, int nocache);
/* Every path's frame, program, expected action and check, pre-step. */
void xdp_paths_build(struct path_run p[P_MAX], struct router *r, int pass_fd, int floor_fd,
		     int if_in, int if_out);
/* After each run of a path: the nodes answer every request (outside the
 * timed run), as a node that leaves them unanswered turns suspect.
 */
void xdp_paths_after(struct path_run *p);
#endif /* CPN_BENCH_XDP_PATHS_H */
