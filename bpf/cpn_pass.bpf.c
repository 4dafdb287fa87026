// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn_pass: XDP_PASS and nothing else. Attached to the peer end of a veth
 * so that native XDP redirects into it are accepted, and the baseline that
 * the router's per-packet cost is measured against.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int cpn_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
