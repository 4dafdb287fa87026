// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn_xsk: the program cpn-fwd's net_af_xdp ports name in xdp_prog=.
 *
 * The PMD's custom-program mode loads the file it is given, attaches it to
 * the interface and puts its AF_XDP sockets into the file's map named
 * xsks_map. cpn-fwd (with --pin-dir) then moves those sockets into the
 * pinned router's own xsks_map and replaces this program with the pinned
 * cpn_xdp, atomically (XDP_FLAGS_REPLACE): from then on the router hands
 * the requests of `dataplane: dpdk` services to cpn-fwd and steers all
 * other traffic itself. Until then this placeholder passes every packet to
 * the host stack; it never redirects, so the copy of xsks_map is only the
 * PMD's hand-over point.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

SEC("xdp")
int cpn_xsk(struct xdp_md *ctx)
{
	return XDP_PASS;
}
