/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What tools/cpn-pktgen/cpn_sink.bpf.c counts and cpn-pktgen reads: its per-CPU array
 * `cpn_sink_counts` has one element, CPN_SINK_SLOTS __u64 counters per CPU,
 * so that one lookup reads them all at once. Plain C for `clang -target bpf`
 * and for userspace.
 */
#ifndef CPN_PKTGEN_SINK_H
#define CPN_PKTGEN_SINK_H

#include <linux/types.h>

enum cpn_sink_slot {
	CPN_SINK_PKTS = 0,   /* every frame that reached the sink */
	CPN_SINK_BYTES = 1,  /* their bytes, Ethernet header included */
	CPN_SINK_REQ = 2,    /* IPv4 UDP frames carrying a valid cpn REQUEST header */
	CPN_SINK_TAGGED = 3, /* of those, steered by a cpn hop: TAGGED, hops >= 1 */
	CPN_SINK_SLOTS = 4,
};

struct cpn_sink_counts {
	__u64 slot[CPN_SINK_SLOTS];
};

#endif /* CPN_PKTGEN_SINK_H */
