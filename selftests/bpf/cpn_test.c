// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test fixtures for the router: see cpn_test.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cpn/siphash.h"
#include "cpn_router.skel.h"
#include "cpn_test.h"

static const __u8 mac_client[6] = {0x02, 0, 0, 0, 0, 0x01};
static const __u8 mac_router[6] = {0x02, 0, 0, 0, 0, 0xfe};

void pkt_spec_default(struct pkt_spec *s, int family)
{
	memset(s, 0, sizeof(*s));
	s->family = family;
	s->src = family == CPN_AF_INET ? T_CLIENT4 : T_CLIENT6;
	s->dst = family == CPN_AF_INET ? T_VIP4 : T_VIP6;
	s->sport = 40000;
	s->dport = T_PORT;
	cpn_msg_init(&s->msg, CPN_T_REQUEST);
	s->msg.service_id = T_SVC;
	s->msg.tenant_id = T_TENANT;
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

static __u16 udp_csum(const struct pkt_view *v, const __u8 *buf)
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

size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap)
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
		cpn_hdr_encode(&m, &h);
		if (pay + sizeof(h) + 8 > cap)
			return 0;
		memcpy(buf + pay, &h, sizeof(h));
		plen = sizeof(h);
		if (s->auth) {
			__u64 tag = m.type == CPN_T_REQUEST ? cpn_tag_request(s->key, &h)
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
	pkt_fix_csums(buf, pay + plen);
	if (s->family == CPN_AF_INET && s->udp_csum_zero) {
		buf[l4 + 6] = 0;
		buf[l4 + 7] = 0;
	}
	return pay + plen;
}

int pkt_locate(const __u8 *buf, size_t len, struct pkt_view *v)
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

bool pkt_csum_ok(const __u8 *buf, size_t len)
{
	struct pkt_view v;
	__u16 stored;

	if (pkt_locate(buf, len, &v))
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

struct cpn_hdr *pkt_hdr(__u8 *buf, const struct pkt_view *v)
{
	return (struct cpn_hdr *)(buf + v->pay);
}

void pkt_fix_csums(__u8 *buf, size_t len)
{
	struct pkt_view v;
	__u16 c;

	if (pkt_locate(buf, len, &v))
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

/* ---- router ---------------------------------------------------------- */

int router_open(struct router *r)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->skel = cpn_router__open_and_load();
	if (!r->skel) {
		fprintf(stderr, "router_open: cannot load cpn_router.bpf.o: %s\n", strerror(errno));
		return -1;
	}
	err = cpn_maps_from_object(&r->maps, r->skel->obj);
	if (err) {
		fprintf(stderr, "router_open: maps: %s\n", strerror(-err));
		cpn_router__destroy(r->skel);
		return -1;
	}
	r->prog_fd = bpf_program__fd(r->skel->progs.cpn_xdp);
	return 0;
}

void router_close(struct router *r)
{
	cpn_maps_close(&r->maps);
	if (r->skel)
		cpn_router__destroy(r->skel);
	memset(r, 0, sizeof(*r));
}

int router_run_if(struct router *r, const __u8 *in, size_t in_len, __u8 *out, size_t *out_len,
		  int ifindex)
{
	struct xdp_md ctx = {.data_end = (__u32)in_len, .ingress_ifindex = (__u32)ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = (__u32)in_len,
		    .data_out = out, .data_size_out = (__u32)*out_len, .repeat = 1);

	if (ifindex) {
		opts.ctx_in = &ctx;
		opts.ctx_size_in = sizeof(ctx);
	}
	if (bpf_prog_test_run_opts(r->prog_fd, &opts))
		return -1;
	*out_len = opts.data_size_out;
	return (int)opts.retval;
}

int router_run(struct router *r, const __u8 *in, size_t in_len, __u8 *out, size_t *out_len)
{
	return router_run_if(r, in, in_len, out, out_len, 0);
}

__u64 router_stat(struct router *r, enum cpn_stat s)
{
	__u64 all[CPN_STAT_MAX];

	if (cpn_maps_stats(&r->maps, all))
		return ~0ULL;
	return all[s];
}

void t_node_addr(int id, int family, char *buf, size_t len)
{
	if (family == CPN_AF_INET)
		snprintf(buf, len, "10.1.0.%d", id);
	else
		snprintf(buf, len, "fd01::%x", id);
}

int t_add_node(struct router *r, __u16 id, int family, __u32 weight)
{
	struct cpn_node_cfg c = {0};
	char a[64];

	t_node_addr(id, family, a, sizeof(a));
	if (cpn_addr_parse(a, c.addr, &c.family))
		return -1;
	c.port = htons(T_PORT);
	return cpn_maps_set_node(&r->maps, id, &c, weight, CPN_ADMIN_UP);
}

int t_add_service(struct router *r, __u16 id, int family, int policy, const __u16 *nodes, int n)
{
	struct cpn_service s = {0};

	s.flags = CPN_SVC_ACTIVE;
	s.policy = (__u8)policy;
	if (cpn_addr_parse(family == CPN_AF_INET ? T_VIP4 : T_VIP6, s.vip, &s.family))
		return -1;
	s.port = htons(T_PORT);
	s.max_wait_us = 0;
	s.max_queue = 0;
	s.stale_ms = 500;
	s.n_nodes = (__u32)n;
	for (int i = 0; i < n; i++)
		s.nodes[i] = nodes[i];
	return cpn_maps_set_service(&r->maps, id, &s);
}

int t_add_tenant(struct router *r, __u32 id, const __u16 *svcs, int n, __u64 rate, __u64 burst,
		 const __u64 *key)
{
	struct cpn_tenant t;

	memset(&t, 0, sizeof(t));
	for (int i = 0; i < n; i++)
		t.services[svcs[i] / 64] |= 1ULL << (svcs[i] % 64);
	cpn_tenant_set_rate(&t, rate, burst);
	if (key) {
		t.flags |= CPN_TENANT_KEY;
		t.key[0] = key[0];
		t.key[1] = key[1];
	}
	return cpn_maps_set_tenant(&r->maps, id, &t);
}

void t_report(struct router *r, __u16 id, __u32 queue, __u32 inflight, __u32 capacity, __u32 svc_us,
	      __u32 path_us)
{
	struct cpn_node *n = &r->maps.state[id];

	n->queue_depth = queue;
	n->inflight = inflight;
	n->capacity = capacity;
	n->svc_us = svc_us;
	n->path_us = path_us;
	n->outstanding = 0;
	n->report_flags = CPN_REP_SVC_VALID | CPN_REP_PATH_VALID;
	n->last_report_ns = cpn_now_ns();
}

int t_config(struct router *r)
{
	struct cpn_config c = {.control_port = htons(T_CTL), .max_hops = 4, .router_id = 1};

	return cpn_maps_set_config(&r->maps, &c);
}

/* ---- additions for the router suites --------------------------------- */

int t_router_setup(void **state)
{
	struct router *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	if (router_open(r)) {
		free(r);
		return -1;
	}
	if (t_config(r)) {
		router_close(r);
		free(r);
		return -1;
	}
	*state = r;
	return 0;
}

int t_router_teardown(void **state)
{
	struct router *r = *state;

	if (r) {
		router_close(r);
		free(r);
	}
	*state = NULL;
	return 0;
}

int t_topology(struct router *r, int family, int policy, int n)
{
	__u16 ids[CPN_MAX_SVC_NODES];

	if (n < 0 || n > CPN_MAX_SVC_NODES)
		return -1;
	for (int i = 0; i < n; i++) {
		ids[i] = (__u16)(i + 1);
		if (t_add_node(r, ids[i], family, 100))
			return -1;
		t_report(r, ids[i], 0, 0, 1, 100, 0);
	}
	if (t_add_service(r, T_SVC, family, policy, ids, n))
		return -1;
	return t_add_tenant(r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, NULL);
}

int router_stats(struct router *r, __u64 out[CPN_STAT_MAX])
{
	return cpn_maps_stats(&r->maps, out);
}

int router_node_stats(struct router *r, __u16 id, struct cpn_node_stats *out)
{
	return cpn_maps_node_stats(&r->maps, id, out);
}

__u32 t_now_us(void)
{
	return (__u32)(cpn_now_ns() / 1000);
}

void t_make_stale(struct router *r, __u16 id)
{
	/* 10 s ago: past every stale_ms of the tests, and never 0 ("never"). */
	r->maps.state[id].last_report_ns = cpn_now_ns() - 10000000000ULL;
}

void pkt_spec_reply(struct pkt_spec *s, int family, __u16 id)
{
	static char addr[2][CPN_MAX_NODES][48];
	char *a = addr[family == CPN_AF_INET6][id & (CPN_MAX_NODES - 1)];

	pkt_spec_default(s, family);
	t_node_addr(id, family, a, sizeof(addr[0][0]));
	s->src = a;
	s->dst = family == CPN_AF_INET ? T_CLIENT4 : T_CLIENT6;
	s->sport = T_PORT;
	s->dport = 40000;
	s->msg.type = CPN_T_REPLY;
	s->msg.flags = CPN_F_TAGGED;
	s->msg.node_id = id;
	s->msg.hops = 1;
}

void pkt_spec_load(struct pkt_spec *s, int family, __u16 id)
{
	pkt_spec_reply(s, family, id);
	s->dst = family == CPN_AF_INET ? T_ROUTER4 : T_ROUTER6;
	s->dport = T_CTL;
	s->msg.type = CPN_T_LOAD;
	s->msg.flags = 0;
	s->msg.tenant_id = 0;
	s->msg.request_id = 0;
	s->msg.hops = 0;
}

__u16 pkt_steered_node(const __u8 *buf, size_t len)
{
	struct pkt_view v;
	__be32 want[4];
	__u8 fam;
	char a[48];
	__u16 id;

	if (pkt_locate(buf, len, &v) || v.udp_len < 8 + CPN_HDR_LEN)
		return 0;
	id = (__u16)(buf[v.pay + 24] << 8 | buf[v.pay + 25]);
	if (!id || id >= CPN_MAX_NODES)
		return 0;
	t_node_addr(id, v.family, a, sizeof(a));
	if (cpn_addr_parse(a, want, &fam))
		return 0;
	if (v.family == CPN_AF_INET ? memcmp(buf + v.l3 + 16, want, 4)
				    : memcmp(buf + v.l3 + 24, want, 16))
		return 0;
	if ((buf[v.l4 + 2] << 8 | buf[v.l4 + 3]) != T_PORT)
		return 0;
	return id;
}

void t_fill(__u8 *buf, size_t len, __u32 seed)
{
	__u32 x = seed ? seed : 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (__u8)(x >> 24);
	}
}
