// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Frames built byte by byte: see cpn_pkt.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <linux/in.h>

#include "cpn/maps.h"
#include "cpn/siphash.h"
#include "cpn_addr.h"
#include "cpn_pkt.h"
#include "cpn_util.h"

static const __u8 mac_client[6] = {0x02, 0, 0, 0, 0, 0x01};
static const __u8 mac_router[6] = {0x02, 0, 0, 0, 0, 0xfe};

void cpn_pkt_default(struct cpn_pkt *s, int family)
{
	memset(s, 0, sizeof(*s));
	s->family = family;
	s->src = family == CPN_AF_INET ? CPN_PKT_CLIENT4 : CPN_PKT_CLIENT6;
	s->dst = family == CPN_AF_INET ? CPN_PKT_VIP4 : CPN_PKT_VIP6;
	s->sport = 40000;
	s->dport = CPN_PKT_PORT;
	cpn_msg_init(&s->msg, CPN_T_REQUEST);
	s->msg.service_id = CPN_PKT_SVC;
	s->msg.tenant_id = CPN_PKT_TENANT;
	s->msg.request_id = 0x0102030405060708ULL;
	s->with_hdr = true;
}

/* RFC 1071, the plain way: a byte-pair sum over a buffer. */
static __u32 sum16(const __u8 *p, size_t len, __u32 acc)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		acc += (__u32)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		acc += (__u32)(p[len - 1] << 8);
	return acc;
}

static __u16 fold(__u32 acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)~acc;
}

static __u16 udp_csum(const struct cpn_pkt_view *v, const __u8 *buf)
{
	__u32 acc = 0;

	if (v->family == CPN_AF_INET) {
		acc = sum16(buf + v->l3 + 12, 8, acc);
	} else {
		acc = sum16(buf + v->l3 + 8, 32, acc);
	}
	acc += IPPROTO_UDP + (__u32)v->udp_len;
	acc = sum16(buf + v->l4, v->udp_len, acc);
	return fold(acc);
}

size_t cpn_pkt_build(const struct cpn_pkt *s, __u8 *buf, size_t cap)
{
	size_t off = 0, l3, l4, pay, plen = 0;
	__be32 sa[4], da[4];
	__u8 fam;

	memset(buf, 0, cap);
	if (cap < 128)
		return 0;
	memcpy(buf, mac_router, 6);
	memcpy(buf + 6, mac_client, 6);
	off = 12;
	if (s->vlan) {
		buf[off] = 0x81;
		buf[off + 1] = 0x00;
		buf[off + 2] = (__u8)((s->vlan >> 8) & 0x0f);
		buf[off + 3] = (__u8)(s->vlan & 0xff);
		off += 4;
	}
	buf[off] = s->family == CPN_AF_INET ? 0x08 : 0x86;
	buf[off + 1] = s->family == CPN_AF_INET ? 0x00 : 0xdd;
	off += 2;
	l3 = off;
	l4 = l3 + (s->family == CPN_AF_INET ? 20 : 40);
	pay = l4 + 8;

	/* UDP payload */
	if (s->with_hdr) {
		struct cpn_msg m = s->msg;
		struct cpn_hdr h;

		if (s->auth)
			m.flags |= CPN_F_AUTH;
		if (s->fresh) {
			m.flags |= CPN_F_FRESH;
			if (!m.stamp)
				m.stamp = cpn_tai_ms();
		}
		cpn_hdr_encode(&m, &h);
		if (s->hop_tag)
			h.worker_us = cpn_hop_tag(s->hop_key, &h);
		if (pay + sizeof(h) + 8 > cap)
			return 0;
		memcpy(buf + pay, &h, sizeof(h));
		plen = sizeof(h);
		if (s->auth) {
			__u64 tag = m.type == CPN_T_REQUEST ? cpn_tag_request_any(s->key, &h)
							    : cpn_tag_node(s->key, &h);
			memcpy(buf + pay + plen, &tag, 8);
			plen += 8;
		}
	}
	if (pay + plen + s->payload_len > cap)
		return 0;
	if (s->payload_len)
		memcpy(buf + pay + plen, s->payload, s->payload_len);
	plen += s->payload_len;

	if (cpn_addr_parse(s->src, sa, &fam) || cpn_addr_parse(s->dst, da, &fam))
		return 0;
	/* UDP header */
	buf[l4] = (__u8)(s->sport >> 8);
	buf[l4 + 1] = (__u8)s->sport;
	buf[l4 + 2] = (__u8)(s->dport >> 8);
	buf[l4 + 3] = (__u8)s->dport;
	buf[l4 + 4] = (__u8)((plen + 8) >> 8);
	buf[l4 + 5] = (__u8)(plen + 8);
	/* IP header */
	if (s->family == CPN_AF_INET) {
		size_t tot = 20 + 8 + plen;

		buf[l3] = 0x45;
		buf[l3 + 2] = (__u8)(tot >> 8);
		buf[l3 + 3] = (__u8)tot;
		buf[l3 + 4] = 0x12;
		buf[l3 + 5] = 0x34;
		buf[l3 + 8] = s->ttl ? s->ttl : 64;
		buf[l3 + 9] = IPPROTO_UDP;
		memcpy(buf + l3 + 12, sa, 4);
		memcpy(buf + l3 + 16, da, 4);
	} else {
		buf[l3] = 0x60;
		buf[l3 + 4] = (__u8)((plen + 8) >> 8);
		buf[l3 + 5] = (__u8)(plen + 8);
		buf[l3 + 6] = IPPROTO_UDP;
		buf[l3 + 7] = s->ttl ? s->ttl : 64;
		memcpy(buf + l3 + 8, sa, 16);
		memcpy(buf + l3 + 24, da, 16);
	}
	cpn_pkt_fix_csums(buf, pay + plen);
	if (s->family == CPN_AF_INET && s->udp_csum_zero) {
		buf[l4 + 6] = 0;
		buf[l4 + 7] = 0;
	}
	return pay + plen;
}

int cpn_pkt_locate(const __u8 *buf, size_t len, struct cpn_pkt_view *v)
{
	size_t off = 12;
	__u16 proto;

	memset(v, 0, sizeof(*v));
	if (len < 14)
		return -1;
	proto = (__u16)(buf[off] << 8 | buf[off + 1]);
	if (proto == 0x8100 || proto == 0x88a8) {
		off += 4;
		if (len < off + 2)
			return -1;
		proto = (__u16)(buf[off] << 8 | buf[off + 1]);
	}
	off += 2;
	v->l3 = off;
	if (proto == 0x0800) {
		if (len < off + 20)
			return -1;
		v->family = CPN_AF_INET;
		v->l4 = off + (size_t)(buf[off] & 0xf) * 4;
		if (buf[off + 9] != IPPROTO_UDP)
			return -1;
	} else if (proto == 0x86dd) {
		if (len < off + 40)
			return -1;
		v->family = CPN_AF_INET6;
		v->l4 = off + 40;
		if (buf[off + 6] != IPPROTO_UDP)
			return -1;
	} else {
		return -1;
	}
	if (len < v->l4 + 8)
		return -1;
	v->pay = v->l4 + 8;
	v->udp_len = (size_t)(buf[v->l4 + 4] << 8 | buf[v->l4 + 5]);
	if (v->udp_len < 8 || v->l4 + v->udp_len > len)
		return -1;
	return 0;
}

bool cpn_pkt_csum_ok(const __u8 *buf, size_t len)
{
	struct cpn_pkt_view v;
	__u16 stored;

	if (cpn_pkt_locate(buf, len, &v))
		return false;
	if (v.family == CPN_AF_INET && fold(sum16(buf + v.l3, 20, 0)) != 0)
		return false;
	stored = (__u16)(buf[v.l4 + 6] << 8 | buf[v.l4 + 7]);
	if (v.family == CPN_AF_INET && stored == 0)
		return true; /* no UDP checksum */
	/* Summing a correct datagram including its checksum gives 0 (or ~0). */
	{
		__u32 acc = 0;

		if (v.family == CPN_AF_INET)
			acc = sum16(buf + v.l3 + 12, 8, acc);
		else
			acc = sum16(buf + v.l3 + 8, 32, acc);
		acc += IPPROTO_UDP + (__u32)v.udp_len;
		acc = sum16(buf + v.l4, v.udp_len, acc);
		return fold(acc) == 0;
	}
}

void cpn_pkt_hdr(const __u8 *buf, const struct cpn_pkt_view *v, struct cpn_hdr *out)
{
	memcpy(out, buf + v->pay, sizeof(*out));
}

void cpn_pkt_fix_csums(__u8 *buf, size_t len)
{
	struct cpn_pkt_view v;
	__u16 c;

	if (cpn_pkt_locate(buf, len, &v))
		return;
	if (v.family == CPN_AF_INET) {
		buf[v.l3 + 10] = 0;
		buf[v.l3 + 11] = 0;
		c = fold(sum16(buf + v.l3, (size_t)(buf[v.l3] & 0xf) * 4, 0));
		buf[v.l3 + 10] = (__u8)(c >> 8);
		buf[v.l3 + 11] = (__u8)c;
	}
	buf[v.l4 + 6] = 0;
	buf[v.l4 + 7] = 0;
	c = udp_csum(&v, buf);
	if (!c)
		c = 0xffff;
	buf[v.l4 + 6] = (__u8)(c >> 8);
	buf[v.l4 + 7] = (__u8)c;
}

void cpn_pkt_node_addr(int id, int family, char *buf, size_t len)
{
	if (family == CPN_AF_INET)
		snprintf(buf, len, "10.1.%d.%d", (id >> 8) & 0xff, id & 0xff);
	else
		snprintf(buf, len, "fd01::%x", id);
}

void cpn_pkt_reply(struct cpn_pkt *s, int family, __u16 id)
{
	static char addr[2][CPN_MAX_NODES][48];
	char *a = addr[family == CPN_AF_INET6][id & (CPN_MAX_NODES - 1)];

	cpn_pkt_default(s, family);
	cpn_pkt_node_addr(id, family, a, sizeof(addr[0][0]));
	s->src = a;
	s->dst = family == CPN_AF_INET ? CPN_PKT_CLIENT4 : CPN_PKT_CLIENT6;
	s->sport = CPN_PKT_PORT;
	s->dport = 40000;
	s->msg.type = CPN_T_REPLY;
	s->msg.flags = CPN_F_TAGGED;
	s->msg.node_id = id;
	s->msg.hops = 1;
}

void cpn_pkt_load(struct cpn_pkt *s, int family, __u16 id)
{
	cpn_pkt_reply(s, family, id);
	s->dst = family == CPN_AF_INET ? CPN_PKT_ROUTER4 : CPN_PKT_ROUTER6;
	s->dport = CPN_PKT_CTL;
	s->msg.type = CPN_T_LOAD;
	s->msg.flags = 0;
	s->msg.tenant_id = 0;
	s->msg.request_id = 0;
	s->msg.hops = 0;
}

__u16 cpn_pkt_steered_node(const __u8 *buf, size_t len)
{
	struct cpn_pkt_view v;
	__be32 want[4];
	__u8 fam;
	char a[48];
	__u16 id;

	if (cpn_pkt_locate(buf, len, &v) || v.udp_len < 8 + CPN_HDR_LEN)
		return 0;
	id = (__u16)(buf[v.pay + 24] << 8 | buf[v.pay + 25]);
	if (!id || id >= CPN_MAX_NODES)
		return 0;
	cpn_pkt_node_addr(id, v.family, a, sizeof(a));
	if (cpn_addr_parse(a, want, &fam))
		return 0;
	if (v.family == CPN_AF_INET ? memcmp(buf + v.l3 + 16, want, 4)
				    : memcmp(buf + v.l3 + 24, want, 16))
		return 0;
	if ((buf[v.l4 + 2] << 8 | buf[v.l4 + 3]) != CPN_PKT_PORT)
		return 0;
	return id;
}

void cpn_pkt_fill(__u8 *buf, size_t len, __u32 seed)
{
	__u32 x = seed ? seed : 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (__u8)(x >> 24);
	}
}
