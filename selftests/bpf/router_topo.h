/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One router configuration, the valid frames of every message type for it,
 * foreign traffic, and the accounting rule of the packet path: shared by
 * the libFuzzer target selftests/fuzz/fuzz_router.c (include/cpn/router.h
 * over tables in memory) and selftests/bpf/test_router_random.c (the real
 * cpn_router.bpf.o under BPF_PROG_TEST_RUN), so that both send random and
 * mutated frames through the same router.
 *
 * Services of every policy (p2c, least, maglev, jiq, round-robin, random)
 * over IPv4 and IPv6, DNAT, full NAT and reply_check, one handed to cpn-fwd
 * and one inactive; nodes with and without keys (one rotating, some
 * requiring FRESH), one retired, one stale, one draining, one down, one of
 * the other family inside a service, a service with no node up; tenants with and without keys and
 * rate limits, and the `any` entry; flows of three requests in flight.
 */
#ifndef CPN_ROUTER_TOPO_H
#define CPN_ROUTER_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/types.h>

#include "cpn/maps.h"
#include "cpn/proto.h"
#include "cpn/siphash.h"
#include "cpn_addr.h"
#include "cpn_pkt.h"

#define RTP_SRC4  "10.1.0.254" /* the router's own address toward the nodes */
#define RTP_SRC6  "fd01::fe"
#define RTP_CPORT 40000 /* the clients' port */

static const __u64 rtp_hop_key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

/* ---- nodes ------------------------------------------------------------- */

struct rtp_node {
	__u16 id;
	__u8 family;
	__u8 flags; /* CPN_NODE_CFG_KEY, _KEY_NEXT, _FRESH, _RETIRED */
	__u32 admin;
	bool stale, draining;
};

static const struct rtp_node rtp_nodes[] = {
    {1, CPN_AF_INET, CPN_NODE_CFG_KEY, CPN_ADMIN_UP, false, false},
    {2, CPN_AF_INET, CPN_NODE_CFG_KEY | CPN_NODE_CFG_KEY_NEXT | CPN_NODE_CFG_FRESH, CPN_ADMIN_UP,
     false, false},
    {3, CPN_AF_INET, 0, CPN_ADMIN_UP, false, false},
    {4, CPN_AF_INET, 0, CPN_ADMIN_UP, true, false},
    {5, CPN_AF_INET, CPN_NODE_CFG_RETIRED, CPN_ADMIN_UP, false, false},
    {6, CPN_AF_INET, 0, 0, false, false},
    {7, CPN_AF_INET6, 0, CPN_ADMIN_UP, false, false},
    {11, CPN_AF_INET6, CPN_NODE_CFG_KEY | CPN_NODE_CFG_FRESH, CPN_ADMIN_UP, false, false},
    {12, CPN_AF_INET6, 0, CPN_ADMIN_UP, false, false},
    {13, CPN_AF_INET6, 0, CPN_ADMIN_UP, false, true},
    {14, CPN_AF_INET6, 0, CPN_ADMIN_UP, true, false},
    {15, CPN_AF_INET6, 0, 0, false, false},
};
#define RTP_NNODES ((int)(sizeof(rtp_nodes) / sizeof(rtp_nodes[0])))

/* A node's key (next = 0) or its next key (next = 1). */
static inline void rtp_node_key(__u16 id, int next, __u64 key[2])
{
	key[0] = 0x6e6f64656b657900ULL ^ ((__u64)id << 8) ^ (__u64)next;
	key[1] = ~key[0] * 0x9e3779b97f4a7c15ULL;
}

static inline const struct rtp_node *rtp_node(__u16 id)
{
	for (int i = 0; i < RTP_NNODES; i++)
		if (rtp_nodes[i].id == id)
			return &rtp_nodes[i];
	return NULL;
}

static inline int rtp_node_cfg(const struct rtp_node *n, struct cpn_node_cfg *c)
{
	char a[48];
	__u8 fam;

	memset(c, 0, sizeof(*c));
	cpn_pkt_node_addr(n->id, n->family, a, sizeof(a));
	if (cpn_addr_parse(a, c->addr, &c->family) ||
	    cpn_addr_parse(n->family == CPN_AF_INET ? RTP_SRC4 : RTP_SRC6, c->src, &fam))
		return -1;
	c->port = cpn_htons(CPN_PKT_PORT);
	c->flags = CPN_NODE_CFG_VALID | n->flags;
	if (n->flags & CPN_NODE_CFG_KEY)
		rtp_node_key(n->id, 0, c->key);
	if (n->flags & CPN_NODE_CFG_KEY_NEXT)
		rtp_node_key(n->id, 1, c->key_next);
	return 0;
}

/* ---- services ---------------------------------------------------------- */

struct rtp_service {
	__u16 id;
	__u8 family;
	__u8 policy;
	__u16 flags;
	const char *vip;
	__u16 port;
	__u32 max_wait_us, max_queue, stale_ms;
	__u16 nodes[4];
	__u32 n;
};

static const struct rtp_service rtp_services[] = {
    {1, CPN_AF_INET, CPN_POL_P2C, CPN_SVC_ACTIVE, "10.0.0.100", 7470, 0, 0, 500, {1, 2, 3}, 3},
    {2,
     CPN_AF_INET,
     CPN_POL_LEAST,
     CPN_SVC_ACTIVE | CPN_SVC_FULLNAT,
     "10.0.0.101",
     7470,
     0,
     0,
     500,
     {1, 3, 4},
     3},
    {3,
     CPN_AF_INET,
     CPN_POL_MAGLEV,
     CPN_SVC_ACTIVE | CPN_SVC_REPLY_CHECK,
     "10.0.0.102",
     7480,
     0,
     0,
     500,
     {2, 3, 4, 7},
     4},
    {4, CPN_AF_INET6, CPN_POL_JIQ, CPN_SVC_ACTIVE, "fd00::100", 7470, 0, 0, 500, {11, 12, 13}, 3},
    {5,
     CPN_AF_INET6,
     CPN_POL_P2C,
     CPN_SVC_ACTIVE | CPN_SVC_FULLNAT | CPN_SVC_REPLY_CHECK,
     "fd00::101",
     7470,
     2000,
     8,
     500,
     {11, 12},
     2},
    {6,
     CPN_AF_INET,
     CPN_POL_RR,
     CPN_SVC_ACTIVE | CPN_SVC_DPDK,
     "10.0.0.103",
     7470,
     0,
     0,
     100,
     {3, 4},
     2},
    {7, CPN_AF_INET, CPN_POL_RANDOM, 0, "10.0.0.104", 7470, 0, 0, 500, {3}, 1},
    {8, CPN_AF_INET6, CPN_POL_MAGLEV, CPN_SVC_ACTIVE, "fd00::102", 7470, 0, 0, 500, {14, 15}, 2},
    {9, CPN_AF_INET, CPN_POL_P2C, CPN_SVC_ACTIVE, "10.0.0.105", 7470, 0, 0, 500, {6}, 1},
};
#define RTP_NSVC    ((int)(sizeof(rtp_services) / sizeof(rtp_services[0])))
#define RTP_MAX_SVC 16 /* service ids below this */

static inline const struct rtp_service *rtp_service(__u16 id)
{
	for (int i = 0; i < RTP_NSVC; i++)
		if (rtp_services[i].id == id)
			return &rtp_services[i];
	return NULL;
}

static inline int rtp_service_val(const struct rtp_service *d, struct cpn_service *s)
{
	memset(s, 0, sizeof(*s));
	if (cpn_addr_parse(d->vip, s->vip, &s->family))
		return -1;
	s->flags = d->flags;
	s->id = d->id;
	s->policy = d->policy;
	s->port = cpn_htons(d->port);
	s->max_wait_us = d->max_wait_us;
	s->max_queue = d->max_queue;
	s->stale_ms = d->stale_ms;
	cpn_svc_set_nodes(s, d->nodes, d->n);
	return 0;
}

/* ---- tenants ----------------------------------------------------------- */

struct rtp_tenant {
	__u32 id;
	__u32 flags; /* CPN_TENANT_KEY, _KEY_NEXT, _FRESH */
	__u64 rate, burst;
	__u16 svcs[10];
	int n;
};

#define RTP_TENANT_UNKNOWN 99 /* no entry of its own: judged by `any` */

static const struct rtp_tenant rtp_tenants[] = {
    {42, 0, 0, 0, {1, 2, 3, 4, 5, 6, 7, 8, 9}, 9},
    {43, CPN_TENANT_KEY, 1000, 4, {1, 3, 4}, 3},
    {44, CPN_TENANT_KEY | CPN_TENANT_KEY_NEXT | CPN_TENANT_FRESH, 0, 0, {2, 5, 8}, 3},
    {45, CPN_TENANT_KEY, 0, 0, {6}, 1},
    {CPN_TENANT_ANY, 0, 100, 2, {1, 4}, 2},
};
#define RTP_NTEN ((int)(sizeof(rtp_tenants) / sizeof(rtp_tenants[0])))

static inline void rtp_tenant_key(__u32 id, int next, __u64 key[2])
{
	key[0] = 0x74656e616e740000ULL ^ ((__u64)id << 8) ^ (__u64)next;
	key[1] = ~key[0] * 0xc2b2ae3d27d4eb4fULL;
}

static inline void rtp_tenant_val(const struct rtp_tenant *d, struct cpn_tenant *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < d->n; i++)
		t->services[d->svcs[i] / 64] |= 1ULL << (d->svcs[i] % 64);
	cpn_tenant_set_rate(t, d->rate, d->burst);
	t->flags = d->flags;
	if (d->flags & CPN_TENANT_KEY)
		rtp_tenant_key(d->id, 0, t->key);
	if (d->flags & CPN_TENANT_KEY_NEXT)
		rtp_tenant_key(d->id, 1, t->key_next);
}

/* ---- configuration, flows, sessions ------------------------------------ */

static inline void rtp_config(struct cpn_config *c)
{
	memset(c, 0, sizeof(*c));
	c->control_port = cpn_htons(CPN_PKT_CTL);
	c->max_hops = 4;
	c->router_id = 1;
	c->flags = CPN_CFG_FLEET_KEY;
	c->hop_key[0] = rtp_hop_key[0];
	c->hop_key[1] = rtp_hop_key[1];
}

/* Requests in flight whose replies the frames below carry. */
struct rtp_flow {
	__u16 svc, node;
	__u32 tenant;
	__u64 request_id;
	int family;
};

static const struct rtp_flow rtp_flows[] = {
    {2, 1, 42, 0x1111, CPN_AF_INET},
    {3, 2, 42, 0x2222, CPN_AF_INET},
    {5, 11, 44, 0x5555, CPN_AF_INET6},
};
#define RTP_NFLOWS ((int)(sizeof(rtp_flows) / sizeof(rtp_flows[0])))

static inline int rtp_flow_val(const struct rtp_flow *d, struct cpn_flow_key *k, struct cpn_flow *f)
{
	__u8 fam;

	memset(k, 0, sizeof(*k));
	memset(f, 0, sizeof(*f));
	k->request_id = cpn_htonll(d->request_id);
	k->tenant_id = cpn_htonl(d->tenant);
	k->service_id = cpn_htons(d->svc);
	k->node_id = cpn_htons(d->node);
	k->cport = cpn_htons(RTP_CPORT);
	f->family = (__u8)d->family;
	return cpn_addr_parse(d->family == CPN_AF_INET ? CPN_PKT_CLIENT4 : CPN_PKT_CLIENT6,
			      f->client, &fam);
}

/* A session of tenant 42 on service 1, kept on node 2. */
#define RTP_SESSION	 7
#define RTP_SESSION_NODE 2

/* ---- the frames -------------------------------------------------------- */

/* The clocks a frame is made for: CLOCK_TAI in ms (stamps) and the
 * router's clock in µs (router_ts, PROBE cookies), both mod 2^32.
 */
struct rtp_clock {
	__u32 tai_ms;
	__u32 now_us;
};

static inline void rtp_to_vip(struct cpn_pkt *s, __u16 svc)
{
	const struct rtp_service *d = rtp_service(svc);

	cpn_pkt_default(s, d->family);
	s->dst = d->vip;
	s->dport = d->port;
	s->msg.service_id = svc;
}

static inline void rtp_sign_tenant(struct cpn_pkt *s, __u32 tenant, int next)
{
	s->msg.tenant_id = tenant;
	s->auth = true;
	rtp_tenant_key(tenant, next, s->key);
}

static inline void rtp_sign_node(struct cpn_pkt *s, __u16 id, int next)
{
	s->auth = true;
	rtp_node_key(id, next, s->key);
}

static inline void rtp_fresh(struct cpn_pkt *s, const struct rtp_clock *c)
{
	s->fresh = true;
	s->msg.stamp = c->tai_ms ? c->tai_ms : 1;
}

static inline void rtp_from_node(struct cpn_pkt *s, __u16 id, __u16 svc, __u8 type)
{
	const struct rtp_node *n = rtp_node(id);

	cpn_pkt_reply(s, n ? n->family : CPN_AF_INET, id);
	s->msg.type = type;
	s->msg.service_id = svc;
}

static inline void rtp_load(struct cpn_pkt *s, __u16 id, int family)
{
	cpn_pkt_load(s, family, id);
	s->msg.queue_depth = 1;
	s->msg.capacity = 4;
	s->msg.worker_us = 250;
}

static inline void rtp_frag(__u8 *buf, __u32 total, __u32 offset, size_t data)
{
	struct cpn_frag f = {.total = cpn_htonl(total), .offset = cpn_htonl(offset)};

	memcpy(buf, &f, sizeof(f));
	cpn_pkt_fill(buf + sizeof(f), data, total ^ offset);
}

/* Valid frame number `i` (0 ..) of every message type for this router at
 * clock `c`, with a name; 0 past the last one.
 */
static inline size_t rtp_frame(int i, const struct rtp_clock *c, __u8 *buf, size_t cap,
			       const char **name)
{
	static __u8 pay[1024];
	struct cpn_pkt s;
	const char *nm;

	cpn_pkt_fill(pay, sizeof(pay), (__u32)i + 1);
	memset(&s, 0, sizeof(s));
	switch (i) {
	case 0:
		nm = "req_p2c";
		rtp_to_vip(&s, 1);
		s.payload_len = 16;
		break;
	case 1:
		nm = "req_p2c_vlan";
		rtp_to_vip(&s, 1);
		s.vlan = 100;
		s.payload_len = 40;
		break;
	case 2:
		nm = "req_least_fullnat";
		rtp_to_vip(&s, 2);
		break;
	case 3:
		nm = "req_maglev_reply_check";
		rtp_to_vip(&s, 3);
		s.msg.request_id = 0x3333;
		break;
	case 4:
		nm = "req_jiq_v6";
		rtp_to_vip(&s, 4);
		s.payload_len = 8;
		break;
	case 5:
		nm = "req_v6_fullnat_signed_fresh";
		rtp_to_vip(&s, 5);
		rtp_sign_tenant(&s, 44, 0);
		rtp_fresh(&s, c);
		break;
	case 6:
		nm = "req_rr_dpdk_signed";
		rtp_to_vip(&s, 6);
		rtp_sign_tenant(&s, 45, 0);
		break;
	case 7:
		nm = "req_inactive_service";
		rtp_to_vip(&s, 7);
		break;
	case 8:
		nm = "req_maglev_fallback_v6_vlan";
		rtp_to_vip(&s, 8);
		s.vlan = 4000;
		break;
	case 9:
		nm = "req_signed";
		rtp_to_vip(&s, 1);
		rtp_sign_tenant(&s, 43, 0);
		break;
	case 10:
		nm = "req_signed_next_key_fresh";
		rtp_to_vip(&s, 2);
		rtp_sign_tenant(&s, 44, 1);
		rtp_fresh(&s, c);
		break;
	case 11:
		nm = "req_tenant_any";
		rtp_to_vip(&s, 1);
		s.msg.tenant_id = RTP_TENANT_UNKNOWN;
		break;
	case 12:
		nm = "req_sticky";
		rtp_to_vip(&s, 1);
		s.msg.flags = CPN_F_STICKY;
		s.msg.session_key = RTP_SESSION;
		break;
	case 13:
		nm = "req_tagged";
		rtp_to_vip(&s, 1);
		s.msg.flags = CPN_F_TAGGED;
		s.msg.node_id = 3;
		s.msg.hops = 1;
		s.msg.router_ts = c->now_us;
		s.hop_tag = true;
		memcpy(s.hop_key, rtp_hop_key, sizeof(s.hop_key));
		break;
	case 14:
		nm = "req_tag_forged";
		rtp_to_vip(&s, 1);
		s.msg.flags = CPN_F_TAGGED;
		s.msg.node_id = 3;
		s.msg.hops = 1;
		s.msg.worker_us = 0x12345678;
		break;
	case 15:
		nm = "req_hops_at_max";
		rtp_to_vip(&s, 1);
		s.msg.hops = 4;
		break;
	case 16:
		nm = "req_frag_first";
		rtp_to_vip(&s, 1);
		s.msg.flags = CPN_F_FRAG;
		rtp_frag(pay, 3000, 0, 100);
		s.payload_len = CPN_FRAG_LEN + 100;
		break;
	case 17:
		nm = "req_frag_cont";
		rtp_to_vip(&s, 1);
		s.msg.flags = CPN_F_FRAG | CPN_F_CONT | CPN_F_TAGGED;
		s.msg.node_id = 2;
		s.msg.hops = 1;
		s.msg.router_ts = c->now_us;
		s.hop_tag = true;
		memcpy(s.hop_key, rtp_hop_key, sizeof(s.hop_key));
		rtp_frag(pay, 3000, 1408, 100);
		s.payload_len = CPN_FRAG_LEN + 100;
		break;
	case 18:
		nm = "req_frag_ok_v6";
		rtp_to_vip(&s, 4);
		s.msg.flags = CPN_F_FRAG_OK;
		s.payload_len = 24;
		break;
	case 19:
		nm = "reply";
		rtp_from_node(&s, 3, 1, CPN_T_REPLY);
		s.msg.router_ts = c->now_us - 300;
		s.msg.worker_us = 100;
		s.payload_len = 16;
		break;
	case 20:
		nm = "reply_signed";
		rtp_from_node(&s, 1, 1, CPN_T_REPLY);
		rtp_sign_node(&s, 1, 0);
		s.msg.capacity = 2;
		s.msg.queue_depth = 3;
		break;
	case 21:
		nm = "reply_next_key_fresh_reply_check";
		rtp_from_node(&s, 2, 3, CPN_T_REPLY);
		s.dport = RTP_CPORT;
		s.msg.request_id = 0x2222;
		rtp_sign_node(&s, 2, 1);
		rtp_fresh(&s, c);
		break;
	case 22:
		nm = "reply_token_v6";
		rtp_from_node(&s, 12, 4, CPN_T_REPLY);
		s.msg.flags |= CPN_F_TOKEN;
		s.msg.worker_us = 80;
		break;
	case 23:
		nm = "reply_fullnat_signed";
		rtp_from_node(&s, 1, 2, CPN_T_REPLY);
		s.dst = RTP_SRC4;
		s.msg.request_id = 0x1111;
		rtp_sign_node(&s, 1, 0);
		break;
	case 24:
		nm = "reply_fullnat_v6_signed_fresh";
		rtp_from_node(&s, 11, 5, CPN_T_REPLY);
		s.dst = RTP_SRC6;
		s.msg.request_id = 0x5555;
		s.msg.tenant_id = 44;
		rtp_sign_node(&s, 11, 0);
		rtp_fresh(&s, c);
		break;
	case 25:
		nm = "reply_frag_cont";
		rtp_from_node(&s, 3, 1, CPN_T_REPLY);
		s.msg.flags |= CPN_F_FRAG | CPN_F_CONT;
		rtp_frag(pay, 5000, 0, 0);
		s.payload_len = CPN_FRAG_LEN;
		break;
	case 26:
		nm = "reply_large";
		rtp_from_node(&s, 3, 1, CPN_T_REPLY);
		s.payload_len = 900;
		break;
	case 27:
		nm = "busy_from_node";
		rtp_from_node(&s, 3, 1, CPN_T_BUSY);
		s.msg.status = CPN_BUSY_OVERLOAD;
		break;
	case 28:
		nm = "reply_retired_node";
		rtp_from_node(&s, 5, 1, CPN_T_REPLY);
		break;
	case 29:
		nm = "load";
		rtp_load(&s, 3, CPN_AF_INET);
		break;
	case 30:
		nm = "load_signed";
		rtp_load(&s, 1, CPN_AF_INET);
		rtp_sign_node(&s, 1, 0);
		break;
	case 31:
		nm = "load_next_key_fresh";
		rtp_load(&s, 2, CPN_AF_INET);
		rtp_sign_node(&s, 2, 1);
		rtp_fresh(&s, c);
		break;
	case 32:
		nm = "load_v6_signed_fresh";
		rtp_load(&s, 11, CPN_AF_INET6);
		rtp_sign_node(&s, 11, 0);
		rtp_fresh(&s, c);
		break;
	case 33:
		nm = "load_retired";
		rtp_load(&s, 5, CPN_AF_INET);
		break;
	case 34:
		nm = "load_unknown_node";
		rtp_load(&s, 9, CPN_AF_INET);
		break;
	case 35:
	case 36: {
		__u16 id = i == 35 ? 3 : 11;
		__u32 ts = c->now_us - 50;

		nm = i == 35 ? "probe_ack" : "probe_ack_v6_signed_fresh";
		rtp_load(&s, id, i == 35 ? CPN_AF_INET : CPN_AF_INET6);
		s.msg.type = CPN_T_PROBE_ACK;
		s.msg.router_ts = ts;
		s.msg.request_id =
		    cpn_ntohll(cpn_probe_cookie(rtp_hop_key, cpn_htons(id), cpn_htonl(ts)));
		if (i == 36) {
			rtp_sign_node(&s, id, 0);
			rtp_fresh(&s, c);
		}
		break;
	}
	case 37:
		nm = "probe_to_control_port";
		rtp_load(&s, 3, CPN_AF_INET);
		s.msg.type = CPN_T_PROBE;
		break;
	case 38:
		nm = "req_no_node_up";
		rtp_to_vip(&s, 9);
		break;
	default:
		return 0;
	}
	if (s.payload_len && !s.payload)
		s.payload = pay;
	if (name)
		*name = nm;
	return cpn_pkt_build(&s, buf, cap);
}

/* ---- foreign traffic --------------------------------------------------- */

enum rtp_foreign_kind {
	RTP_F_TCP4,
	RTP_F_TCP6,
	RTP_F_UDP4, /* another port, from and to addresses that are no node */
	RTP_F_UDP6,
	RTP_F_UDP_VIP_PORT, /* to a VIP, another port */
	RTP_F_TCP_VIP,	    /* TCP to a VIP's port */
	RTP_F_ARP,
	RTP_F_ICMP6,
	RTP_F_FRAG4_VIP, /* a cpn request as an IPv4 fragment */
	RTP_F_OPTS4_VIP, /* a cpn request with IPv4 options */
	RTP_F_FRAG6_VIP, /* a cpn request behind an IPv6 fragment header */
	RTP_F_VLAN_TCP,
	RTP_F_QINQ, /* two VLAN tags: one is parsed, the inner ethertype is no IP */
	RTP_F_LLDP,
	RTP_F_KINDS,
};

static const char *const rtp_foreign_names[RTP_F_KINDS] = {
    "tcp4",  "tcp6",	  "udp4",	  "udp6",      "udp_vip_other_port", "tcp_vip", "arp",
    "icmp6", "frag4_vip", "options4_vip", "frag6_vip", "vlan_tcp",	     "qinq",	"lldp",
};

static inline void rtp_be16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

/* A frame that is not cpn's: the router must pass it untouched. `r` drives
 * its addresses, ports, lengths and bytes.
 */
static inline size_t rtp_foreign(int kind, __u32 r, __u8 *buf, size_t cap)
{
	size_t len, l3, plen = 8 + (r >> 20) % 200;
	int v6, vlan = 0;
	__u8 proto = 6;

	if (cap < 512)
		return 0;
	memset(buf, 0, cap);
	cpn_pkt_fill(buf, 12, r | 1);
	buf[0] &= 0xfe; /* unicast */
	switch (kind) {
	case RTP_F_ARP:
		rtp_be16(buf + 12, 0x0806);
		cpn_pkt_fill(buf + 14, 28, r);
		rtp_be16(buf + 14, 1);
		rtp_be16(buf + 16, 0x0800);
		buf[18] = 6;
		buf[19] = 4;
		return 42 + (r & 15);
	case RTP_F_LLDP:
		rtp_be16(buf + 12, 0x88cc);
		cpn_pkt_fill(buf + 14, 50, r);
		return 64;
	case RTP_F_QINQ:
		rtp_be16(buf + 12, 0x88a8);
		rtp_be16(buf + 14, 10);
		rtp_be16(buf + 16, 0x8100);
		rtp_be16(buf + 18, 20);
		rtp_be16(buf + 20, 0x0800);
		cpn_pkt_fill(buf + 22, 60, r);
		return 82;
	case RTP_F_FRAG4_VIP:
	case RTP_F_OPTS4_VIP:
	case RTP_F_FRAG6_VIP: {
		/* A request the router would steer, then made foreign. */
		struct rtp_clock c = {1, 1};
		__u8 tmp[CPN_PKT_MAX];
		size_t n = rtp_frame(kind == RTP_F_FRAG6_VIP ? 4 : 0, &c, tmp, sizeof(tmp), NULL);

		if (!n || n + 8 > cap)
			return 0;
		memcpy(buf, tmp, n);
		if (kind == RTP_F_FRAG4_VIP) {
			/* MF, or a later fragment's offset */
			rtp_be16(buf + 20, (r & 1) ? 0x2000 : (__u16)(1 + (r >> 1) % 0x1fff));
			cpn_pkt_fix_csums(buf, n);
			return n;
		}
		if (kind == RTP_F_OPTS4_VIP) {
			/* Four bytes of options (NOPs) inserted after the header. */
			memmove(buf + 38, buf + 34, n - 34);
			memset(buf + 34, 1, 4);
			buf[14] = 0x46;
			rtp_be16(buf + 16, (__u16)(n + 4 - 14));
			cpn_pkt_fix_csums(buf, n + 4);
			return n + 4;
		}
		/* IPv6: a fragment header before UDP. */
		memmove(buf + 62, buf + 54, n - 54);
		buf[20] = 44;
		buf[54] = 17 /* UDP */;
		buf[55] = 0;
		cpn_pkt_fill(buf + 56, 6, r);
		rtp_be16(buf + 18, (__u16)(n + 8 - 54));
		return n + 8;
	}
	default:
		break;
	}
	v6 = kind == RTP_F_TCP6 || kind == RTP_F_UDP6 || kind == RTP_F_ICMP6 ||
	     (kind == RTP_F_VLAN_TCP && (r & 2));
	if (kind == RTP_F_VLAN_TCP) {
		vlan = 4;
		rtp_be16(buf + 12, 0x8100);
		rtp_be16(buf + 14, (__u16)(r & 0xfff));
	}
	if (kind == RTP_F_UDP4 || kind == RTP_F_UDP6 || kind == RTP_F_UDP_VIP_PORT)
		proto = 17 /* UDP */;
	if (kind == RTP_F_ICMP6)
		proto = 58;
	l3 = 14 + (size_t)vlan;
	rtp_be16(buf + l3 - 2, v6 ? 0x86dd : 0x0800);
	cpn_pkt_fill(buf + l3, (v6 ? 40 : 20) + plen, r ^ 0x5a5a);
	if (v6) {
		buf[l3] = 0x60;
		rtp_be16(buf + l3 + 4, (__u16)plen);
		buf[l3 + 6] = proto;
		buf[l3 + 7] = 64;
		buf[l3 + 8] = 0xfd;
		buf[l3 + 9] = 0x99; /* fd99::/16: no node, VIP or router */
		buf[l3 + 24] = 0xfd;
		buf[l3 + 25] = 0x99;
		len = l3 + 40 + plen;
	} else {
		buf[l3] = 0x45;
		buf[l3 + 1] = 0;
		rtp_be16(buf + l3 + 2, (__u16)(20 + plen));
		rtp_be16(buf + l3 + 6, 0x4000); /* DF */
		buf[l3 + 8] = 64;
		buf[l3 + 9] = proto;
		buf[l3 + 12] = 192;
		buf[l3 + 13] = 168; /* 192.168/16: no node, VIP or router */
		buf[l3 + 16] = 192;
		buf[l3 + 17] = 168;
		len = l3 + 20 + plen;
	}
	if (kind == RTP_F_UDP_VIP_PORT || kind == RTP_F_TCP_VIP) {
		__be32 a[4];
		__u8 fam;

		cpn_addr_parse("10.0.0.100", a, &fam);
		memcpy(buf + l3 + 16, a, 4);
		rtp_be16(buf + l3 + 22, kind == RTP_F_TCP_VIP ? 7470 : (__u16)(1 + r % 7000));
	}
	if (proto == 17 /* UDP */) {
		size_t l4 = l3 + (v6 ? 40 : 20);

		rtp_be16(buf + l4 + 4, (__u16)plen);
		if (kind != RTP_F_UDP_VIP_PORT && buf[l4 + 2] == 0x1d &&
		    (buf[l4 + 3] & 0xf0) == 0x20)
			buf[l4 + 2] = 0x1e; /* not the ports 7456..7471 */
	}
	cpn_pkt_fix_csums(buf, len);
	return len;
}

/* ---- reading frames ---------------------------------------------------- */

static inline __u16 rtp_get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

/* Ethernet (one tag), IPv4 without options or IPv6, UDP: as the router
 * parses it. The UDP length is not checked against the frame here.
 */
struct rtp_view {
	int family;
	size_t l3, l4, pay, alen, saddr, daddr;
	size_t udp_len;
};

static inline int rtp_locate(const __u8 *b, size_t len, struct rtp_view *v)
{
	size_t off = 12;
	__u16 proto;

	memset(v, 0, sizeof(*v));
	if (len < 14)
		return -1;
	proto = rtp_get16(b + 12);
	if (proto == 0x8100 || proto == 0x88a8) {
		if (len < 18)
			return -1;
		proto = rtp_get16(b + 16);
		off = 16;
	}
	v->l3 = off + 2;
	if (proto == 0x0800) {
		if (len < v->l3 + 20 || b[v->l3] != 0x45 || b[v->l3 + 9] != 17 /* UDP */)
			return -1;
		v->family = CPN_AF_INET;
		v->l4 = v->l3 + 20;
		v->alen = 4;
		v->saddr = v->l3 + 12;
		v->daddr = v->l3 + 16;
	} else if (proto == 0x86dd) {
		if (len < v->l3 + 40 || (b[v->l3] >> 4) != 6 || b[v->l3 + 6] != 17 /* UDP */)
			return -1;
		v->family = CPN_AF_INET6;
		v->l4 = v->l3 + 40;
		v->alen = 16;
		v->saddr = v->l3 + 8;
		v->daddr = v->l3 + 24;
	} else {
		return -1;
	}
	if (len < v->l4 + 8)
		return -1;
	v->pay = v->l4 + 8;
	v->udp_len = rtp_get16(b + v->l4 + 4);
	return 0;
}

static inline __u32 rtp_sum(const __u8 *p, size_t n, __u32 acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += (__u32)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		acc += (__u32)(p[n - 1] << 8);
	return acc;
}

static inline __u16 rtp_fold(__u32 acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)acc;
}

static inline int rtp_ip_ok(const __u8 *b, const struct rtp_view *v)
{
	return v->family != CPN_AF_INET || rtp_fold(rtp_sum(b + v->l3, 20, 0)) == 0xffff;
}

/* The UDP checksum over `n` datagram bytes (at most the frame's). IPv4's
 * 0 (none) counts as valid; IPv6's as invalid.
 */
static inline int rtp_udp_ok(const __u8 *b, const struct rtp_view *v, size_t n)
{
	__u32 acc;

	if (rtp_get16(b + v->l4 + 6) == 0)
		return v->family == CPN_AF_INET;
	acc = rtp_sum(b + v->saddr, 2 * v->alen, 0);
	acc += 17 /* UDP */ + (__u32)rtp_get16(b + v->l4 + 4);
	acc = rtp_sum(b + v->l4, n, acc);
	return rtp_fold(acc) == 0xffff;
}

/* ---- the accounting rule ----------------------------------------------- */

/* What a counter of cpn_stats says about a frame (include/cpn/router.h):
 * every frame counts RX once, then exactly one outcome, whose class is the
 * verdict; notes are extra facts about a request or a reply on the way to
 * its outcome; the data plane's own counters (XDP: how a rewritten frame
 * left) are not router.h's.
 */
enum rtp_class {
	RTP_C_RX,
	RTP_C_PASS,    /* CPN_ACT_PASS, untouched */
	RTP_C_DROP,    /* CPN_ACT_DROP, untouched */
	RTP_C_CONSUME, /* CPN_ACT_CONSUME (a report learned), untouched */
	RTP_C_FWD,     /* CPN_ACT_FWD, rewritten */
	RTP_C_TX,      /* CPN_ACT_TX: BUSY to the client */
	RTP_C_XSK,     /* CPN_ACT_XSK, untouched */
	RTP_C_NOTE,
	RTP_C_PLANE,
	RTP_C_UNKNOWN,
};

static inline enum rtp_class rtp_stat_class(int s)
{
	switch (s) {
	case CPN_STAT_RX:
		return RTP_C_RX;
	case CPN_STAT_LOAD_UNKNOWN:
		return RTP_C_PASS;
	case CPN_STAT_LOAD_LEARNED:
	case CPN_STAT_PROBE_ACK_LEARNED:
		return RTP_C_CONSUME;
	case CPN_STAT_REQ_STEERED:
	case CPN_STAT_REQ_FRAG:
	case CPN_STAT_REPLY_FWD:
	case CPN_STAT_REPLY_FRAG:
	case CPN_STAT_BUSY_FWD:
		return RTP_C_FWD;
	case CPN_STAT_BUSY_SENT:
		return RTP_C_TX;
	case CPN_STAT_REQ_DPDK:
		return RTP_C_XSK;
	case CPN_STAT_REQ_TAG_HONOURED:
	case CPN_STAT_REQ_RESTEERED:
	case CPN_STAT_REQ_AFFINITY:
	case CPN_STAT_REQ_FALLBACK:
	case CPN_STAT_REQ_TOKEN:
	case CPN_STAT_REQ_FULLNAT:
	case CPN_STAT_REQ_TAG_FORGED:
	case CPN_STAT_TOKEN_IN:
		return RTP_C_NOTE;
	case CPN_STAT_TX_REDIRECT:
	case CPN_STAT_TX_BOUNCE:
	case CPN_STAT_TX_KERNEL:
	case CPN_STAT_DROP_TX:
		return RTP_C_PLANE;
	default:
		break;
	}
	if (s >= 0 && s < CPN_STAT_MAX && !strncmp(cpn_stat_names[s], "pass_", 5))
		return RTP_C_PASS;
	if (s >= 0 && s < CPN_STAT_MAX && !strncmp(cpn_stat_names[s], "drop_", 5))
		return RTP_C_DROP;
	return RTP_C_UNKNOWN;
}

/* May note `note` come with the outcome `out`? */
static inline bool rtp_note_ok(int note, int out)
{
	switch (note) {
	case CPN_STAT_REQ_FULLNAT:
		return out == CPN_STAT_REQ_STEERED;
	case CPN_STAT_TOKEN_IN:
		return out == CPN_STAT_REPLY_FWD;
	default:
		/* Made while a node is chosen: it is then steered to, refused
		 * with a BUSY, or of the wrong family.
		 */
		return out == CPN_STAT_REQ_STEERED || out == CPN_STAT_BUSY_SENT ||
		       out == CPN_STAT_DROP_FAMILY;
	}
}

/* Check one frame's counter deltas against the rule (the data plane's
 * counters are the caller's). Returns the outcome counter, or -1 with
 * `why` filled.
 */
static inline int rtp_check_counts(const __u64 *delta, char *why, size_t len)
{
	int out = -1;

	if (delta[CPN_STAT_RX] != 1) {
		snprintf(why, len, "rx went up by %llu, not 1",
			 (unsigned long long)delta[CPN_STAT_RX]);
		return -1;
	}
	for (int s = 0; s < CPN_STAT_MAX; s++) {
		enum rtp_class c = rtp_stat_class(s);

		if (!delta[s] || c == RTP_C_RX || c == RTP_C_NOTE || c == RTP_C_PLANE)
			continue;
		if (c == RTP_C_UNKNOWN) {
			snprintf(why, len, "counter %s has no class in router_topo.h",
				 cpn_stat_names[s]);
			return -1;
		}
		if (delta[s] != 1 || out >= 0) {
			snprintf(why, len, "more than one outcome: %s and %s", cpn_stat_names[s],
				 out >= 0 ? cpn_stat_names[out] : "itself again");
			return -1;
		}
		out = s;
	}
	if (out < 0) {
		snprintf(why, len, "no outcome counted");
		return -1;
	}
	for (int s = 0; s < CPN_STAT_MAX; s++) {
		if (rtp_stat_class(s) != RTP_C_NOTE || !delta[s])
			continue;
		if (delta[s] != 1 || !rtp_note_ok(s, out)) {
			snprintf(why, len, "note %s (+%llu) with outcome %s", cpn_stat_names[s],
				 (unsigned long long)delta[s], cpn_stat_names[out]);
			return -1;
		}
	}
	return out;
}

#endif /* CPN_ROUTER_TOPO_H */
