// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn_sink: count and drop, for bench/bench-fwdrate.sh. Attached (native
 * XDP) to the far end of a veth, it is both the receiver whose counters the
 * benchmark reads and the XDP program that a native redirect into that veth
 * needs on the peer. Counts every frame and its bytes, and of the IPv4 UDP
 * frames with a valid cpn REQUEST header, those a cpn hop steered (TAGGED,
 * hops >= 1). Slots: tools/cpn-pktgen/pktgen_sink.h; read by cpn-pktgen --sink-map.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>

#include "cpn/proto.h"
#include "pktgen_sink.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpn_sink_counts);
} cpn_sink_counts SEC(".maps");

SEC("xdp")
int cpn_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip4 = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip4 + 1);
	struct cpn_hdr *h = (struct cpn_hdr *)(udp + 1);
	struct cpn_sink_counts *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&cpn_sink_counts, &zero);
	if (!c)
		return XDP_DROP;
	c->slot[CPN_SINK_PKTS]++;
	c->slot[CPN_SINK_BYTES] += (__u64)(data_end - data);
	if ((void *)(h + 1) > data_end || eth->h_proto != cpn_htons(ETH_P_IP) || ip4->ihl != 5 ||
	    ip4->protocol != IPPROTO_UDP)
		return XDP_DROP;
	if (cpn_hdr_check(h, (__u32)(data_end - (void *)h)) != CPN_HDR_OK ||
	    h->type != CPN_T_REQUEST)
		return XDP_DROP;
	c->slot[CPN_SINK_REQ]++;
	if ((h->flags & cpn_htons(CPN_F_TAGGED)) && h->hops >= 1)
		c->slot[CPN_SINK_TAGGED]++;
	return XDP_DROP;
}
