// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn_floor: the least a steering XDP program can do, for benchmarks only.
 * Parse Ethernet, IPv4 and UDP; rewrite the destination address (checksums
 * updated incrementally); swap the MACs; XDP_TX. No maps, no choice, no
 * clock: what the router's REQUEST path costs above this is the price of
 * deciding.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>

#include "cpn/csum.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int cpn_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip4 = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip4 + 1);
	unsigned char mac[ETH_ALEN];
	__be32 dst = cpn_htonl(0x0a010001); /* 10.1.0.1 */
	__u32 acc;

	if ((void *)(udp + 1) > data_end || eth->h_proto != cpn_htons(ETH_P_IP) || ip4->ihl != 5 ||
	    ip4->protocol != IPPROTO_UDP)
		return XDP_PASS;
	acc = cpn_csum_diff32(0, ip4->daddr, dst);
	ip4->check = cpn_csum_apply(ip4->check, acc);
	if (udp->check)
		udp->check = cpn_udp_csum_fixup(cpn_csum_apply(udp->check, acc));
	ip4->daddr = dst;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	return XDP_TX;
}
