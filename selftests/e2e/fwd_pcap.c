// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fwd_pcap: the pcap files of test_cpn_fwd.sh, frames built byte by byte
 * with selftests/bpf/cpn_test.c's cpn_pkt_build.
 *
 *   fwd_pcap gen FILE    write the input: LOADs, requests, a reply,
 *                        malformed and non-cpn frames (the list below)
 *   fwd_pcap mk FILE ITEM...
 *                        write a pcap of the ITEMs, in order:
 *                        load:ID:QUEUE  a LOAD of IPv4 node ID reporting QUEUE
 *                                       queued (capacity 4, 1000 us a request)
 *                        req:N          N requests to service 1's IPv4 VIP
 *   fwd_pcap frame FILE load:ID:QUEUE
 *                        the same LOAD as one bare frame, no pcap headers
 *                        (bpftool prog run ... data_in FILE)
 *   fwd_pcap dump FILE   one line per frame of a pcap (what cpn-fwd sent):
 *                        "ip4|ip6 SRC SPORT DST DPORT type=T node=N hops=H
 *                         ttl=L csum=ok|bad len=LEN dmac=MAC", or "other len=LEN"
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpn_addr.h"
#include "cpn/maps.h"
#include "cpn_pkt.h"

static FILE *out;

static void rec(const __u8 *buf, size_t len)
{
	__u32 h[4] = {0, 0, (__u32)len, (__u32)len};

	fwrite(h, sizeof(h), 1, out);
	fwrite(buf, 1, len, out);
}

static void put(const struct cpn_pkt *s)
{
	__u8 buf[CPN_PKT_MAX];
	size_t n = cpn_pkt_build(s, buf, sizeof(buf));

	if (!n) {
		fprintf(stderr, "fwd_pcap: frame does not build\n");
		exit(1);
	}
	rec(buf, n);
}

static void load(int family, __u16 id)
{
	struct cpn_pkt s;

	cpn_pkt_load(&s, family, id);
	s.msg.capacity = 4;
	s.msg.worker_us = 100;
	put(&s);
}

static void request(int family, __u16 svc, __u16 sport)
{
	struct cpn_pkt s;

	cpn_pkt_default(&s, family);
	s.msg.service_id = svc;
	s.sport = sport;
	put(&s);
}

/* An ARP reply: IP is at MAC, to the router. */
static int arp_reply(const char *ip, const char *m)
{
	__u8 buf[60] = {0}, mac[6];
	struct in_addr a;

	if (inet_pton(AF_INET, ip, &a) != 1 || cpn_mac_parse(m, mac))
		return -1;
	memset(buf, 0xff, 6);
	memcpy(buf + 6, mac, 6);
	buf[12] = 0x08;
	buf[13] = 0x06;
	memcpy(buf + 14, (const __u8[]){0, 1, 8, 0, 6, 4, 0, 2}, 8);
	memcpy(buf + 22, mac, 6);
	memcpy(buf + 28, &a, 4);
	rec(buf, 60);
	return 0;
}

/* A neighbour advertisement for IP6 with the target link-layer address MAC. */
static int neigh_advert(const char *ip6, const char *m)
{
	__u8 buf[14 + 40 + 32] = {0}, mac[6], *ip = buf + 14, *icmp = ip + 40;
	struct in6_addr a;

	if (inet_pton(AF_INET6, ip6, &a) != 1 || cpn_mac_parse(m, mac))
		return -1;
	memcpy(buf, (const __u8[]){0x33, 0x33, 0, 0, 0, 1}, 6);
	memcpy(buf + 6, mac, 6);
	buf[12] = 0x86;
	buf[13] = 0xdd;
	ip[0] = 0x60;
	ip[5] = 32; /* payload: NA 24 + option 8 */
	ip[6] = 58;
	ip[7] = 255;
	memcpy(ip + 8, &a, 16);
	ip[24] = 0xff;
	ip[25] = 0x02;
	ip[39] = 1;
	icmp[0] = 136;
	icmp[4] = 0x60; /* solicited, override */
	memcpy(icmp + 8, &a, 16);
	icmp[24] = 2; /* target link-layer address */
	icmp[25] = 1;
	memcpy(icmp + 26, mac, 6);
	rec(buf, sizeof(buf));
	return 0;
}

static const __u32 pcap_hdr[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};

/* One ITEM of `mk`/`frame`; -1 when it does not parse. */
static int item(const char *it, bool bare)
{
	unsigned int id, queue, n;
	struct cpn_pkt s;
	char end;

	if (sscanf(it, "load:%u:%u%c", &id, &queue, &end) == 2 && id && id < CPN_MAX_NODES &&
	    queue <= 0xffff) {
		__u8 buf[CPN_PKT_MAX];
		size_t len;

		cpn_pkt_load(&s, CPN_AF_INET, (__u16)id);
		s.msg.queue_depth = (__u16)queue;
		s.msg.capacity = 4;
		s.msg.worker_us = 1000;
		if (!bare) {
			put(&s);
			return 0;
		}
		len = cpn_pkt_build(&s, buf, sizeof(buf));
		return len && fwrite(buf, 1, len, out) == len ? 0 : -1;
	}
	if (!bare && (!strncmp(it, "arp:", 4) || !strncmp(it, "na:", 3))) {
		char ip[64], mac[32];

		if (sscanf(strchr(it, ':') + 1, "%63[^=]=%31s", ip, mac) == 2 &&
		    !(it[0] == 'a' ? arp_reply(ip, mac) : neigh_advert(ip, mac)))
			return 0;
	}
	if (!bare && sscanf(it, "load6:%u%c", &id, &end) == 1 && id && id < CPN_MAX_NODES) {
		load(CPN_AF_INET6, (__u16)id);
		return 0;
	}
	if (!bare && sscanf(it, "req6:%u%c", &n, &end) == 1 && n <= 1000) {
		for (unsigned int i = 0; i < n; i++)
			request(CPN_AF_INET6, 2, (__u16)(42000 + i));
		return 0;
	}
	if (!bare && sscanf(it, "req:%u%c", &n, &end) == 1 && n <= 1000) {
		for (unsigned int i = 0; i < n; i++)
			request(CPN_AF_INET, 1, (__u16)(41000 + i));
		return 0;
	}
	fprintf(stderr, "fwd_pcap: bad item %s\n", it);
	return -1;
}

static int mk(const char *path, int n, char **items, bool bare)
{
	int rc = 0;

	out = fopen(path, "wb");
	if (!out)
		return 1;
	if (!bare)
		fwrite(pcap_hdr, sizeof(pcap_hdr), 1, out);
	for (int i = 0; i < n && !rc; i++)
		rc = item(items[i], bare);
	if (fclose(out))
		rc = -1;
	return rc ? 1 : 0;
}

static int gen(const char *path)
{
	__u8 buf[CPN_PKT_MAX];
	struct cpn_pkt s;
	size_t n;

	out = fopen(path, "wb");
	if (!out)
		return 1;
	fwrite(pcap_hdr, sizeof(pcap_hdr), 1, out);
	/* 1-3: LOADs of the nodes: learned, consumed */
	load(CPN_AF_INET, 1);
	load(CPN_AF_INET, 2);
	load(CPN_AF_INET6, 3);
	/* 4-7: requests to the IPv4 VIP: DNAT to node 1 or 2 */
	for (__u16 i = 0; i < 4; i++)
		request(CPN_AF_INET, 1, (__u16)(40000 + i));
	/* 8: a request to the IPv6 VIP: DNAT to node 3 */
	request(CPN_AF_INET6, 2, 40100);
	/* 9: a REPLY of node 1: reverse NAT to the VIP */
	cpn_pkt_reply(&s, CPN_AF_INET, 1);
	s.msg.service_id = 1;
	put(&s);
	/* 10: a request with a bad magic: drop_bad_magic */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.magic = 0x1234;
	put(&s);
	/* 11: a request whose UDP length lies: drop_bad_udp_len */
	cpn_pkt_default(&s, CPN_AF_INET);
	n = cpn_pkt_build(&s, buf, sizeof(buf));
	buf[14 + 20 + 4] = 0x7f;
	cpn_pkt_fix_csums(buf, n);
	rec(buf, n);
	/* 12: DNS, not cpn: pass_not_cpn */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.dst = "10.0.0.53";
	s.dport = 53;
	s.with_hdr = false;
	s.payload = "not cpn at all";
	s.payload_len = 14;
	put(&s);
	/* 13: an ARP request, not IP: pass_not_cpn */
	memset(buf, 0, 60);
	memset(buf, 0xff, 6);
	buf[6] = 0x02;
	buf[11] = 0x01;
	buf[12] = 0x08;
	buf[13] = 0x06;
	rec(buf, 60);
	fclose(out);
	return 0;
}

static int dump(const char *path)
{
	__u32 gh[6], h[4];
	__u8 buf[65536];
	FILE *f = fopen(path, "rb");

	if (!f || fread(gh, sizeof(gh), 1, f) != 1)
		return 1;
	while (fread(h, sizeof(h), 1, f) == 1) {
		struct cpn_pkt_view v;
		char sa[64], da[64];
		__u8 *ip;

		if (h[2] > sizeof(buf) || fread(buf, 1, h[2], f) != h[2])
			return 1;
		if (cpn_pkt_locate(buf, h[2], &v)) {
			printf("other len=%u\n", h[2]);
			continue;
		}
		ip = buf + v.l3;
		if (v.family == CPN_AF_INET) {
			inet_ntop(AF_INET, ip + 12, sa, sizeof(sa));
			inet_ntop(AF_INET, ip + 16, da, sizeof(da));
		} else {
			inet_ntop(AF_INET6, ip + 8, sa, sizeof(sa));
			inet_ntop(AF_INET6, ip + 24, da, sizeof(da));
		}
		printf("ip%d %s %u %s %u", v.family, sa, buf[v.l4] << 8 | buf[v.l4 + 1], da,
		       buf[v.l4 + 2] << 8 | buf[v.l4 + 3]);
		if (v.udp_len >= 8 + CPN_HDR_LEN) {
			struct cpn_hdr c;

			cpn_pkt_hdr(buf, &v, &c);
			printf(" type=%u node=%u hops=%u", c.type, ntohs(c.node_id), c.hops);
		} else {
			printf(" type=0 node=0 hops=0");
		}
		printf(" ttl=%u csum=%s len=%u dmac=%02x:%02x:%02x:%02x:%02x:%02x\n",
		       v.family == CPN_AF_INET ? ip[8] : ip[7],
		       cpn_pkt_csum_ok(buf, h[2]) ? "ok" : "bad", h[2], buf[0], buf[1], buf[2],
		       buf[3], buf[4], buf[5]);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "gen"))
		return gen(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "dump"))
		return dump(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "mk"))
		return mk(argv[2], argc - 3, argv + 3, false);
	if (argc == 4 && !strcmp(argv[1], "frame"))
		return mk(argv[2], 1, argv + 3, true);
	fprintf(stderr, "usage: fwd_pcap gen|dump FILE | mk FILE ITEM... | frame FILE ITEM\n"
			"  ITEM: load:ID:QUEUE load6:ID req:N req6:N arp:IP=MAC na:IP6=MAC\n");
	return 2;
}
