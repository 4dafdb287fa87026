// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The router's rewrites, byte by byte, through BPF_PROG_TEST_RUN of the real
 * cpn_router.bpf.o: a request steered to its node (destination NAT and the
 * cpn tag), a reply sent back from the VIP (reverse NAT), and tagged
 * requests from an upstream hop. IPv4 and IPv6, with and without a VLAN tag.
 *
 * Without an ingress ifindex the FIB lookup cannot succeed: a steered
 * request or a forwarded reply comes back as XDP_PASS with the rewrite done,
 * counted as TX_KERNEL (the kernel would forward it). Last, the program
 * cpnctl chains after cpn on an interface gets what cpn passes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>
#include <bpf/bpf.h>

#include "router_test.h"

#define NODE_PORT_OTHER 9000

/* ---- request rewrite ------------------------------------------------- */

/* Steer one request of the given framing to node `want` (made the least
 * loaded of four under `least`) and check every byte of the result.
 */
static void check_request_rewrite(struct router *r, int family, int vlan, bool csum_zero,
				  __u16 want)
{
	struct cpn_pkt s;
	struct cpn_pkt_view vi, vo;
	struct cpn_msg mi, mo;
	struct cpn_node_stats ns0, ns1;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX], payload[100];
	__be32 node[4];
	__u32 t0, t1, out0;
	size_t len;

	print_message("# request rewrite: %s vlan %d udp csum %s -> node %u\n",
		      RT_FAMILY_STR(family), vlan, csum_zero ? "zero" : "set", want);
	assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 4), 0);
	for (__u16 id = 1; id <= 4; id++)
		t_report(r, id, id == want ? 0 : 5, 0, 1, 100, 0);

	cpn_pkt_default(&s, family);
	s.vlan = vlan;
	s.udp_csum_zero = csum_zero;
	cpn_pkt_fill(payload, sizeof(payload), 0xc0ffee + (__u32)vlan);
	s.payload = payload;
	s.payload_len = sizeof(payload);
	/* Fields the router must leave alone, set to something. */
	s.msg.hops = 1;
	s.msg.class = 3;
	s.msg.session_key = 0x11223344;
	s.msg.router_ts = 0xdeadbeef;
	s.msg.queue_depth = 0x0506;
	s.msg.inflight = 0x0708;
	s.msg.capacity = 0x090a;
	s.msg.util = 0x0b;
	s.msg.status = 0x0c;
	s.msg.worker_us = 0x0d0e0f10;
	s.msg.stamp = 0x11121314;
	len = cpn_pkt_build(&s, in, sizeof(in));
	assert_true(len > 0);
	assert_int_equal(cpn_pkt_locate(in, len, &vi), 0);
	rt_decode(in, &vi, &mi);

	assert_int_equal(router_node_stats(r, want, &ns0), 0);
	out0 = r->maps.state[want].outstanding;
	t0 = t_now_us();
	rt_run(r, in, len, &o);
	t1 = t_now_us();

	assert_int_equal(o.act, XDP_PASS);
	assert_int_equal(o.len, len);
	assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
	assert_int_equal(vo.l3, vi.l3);
	assert_int_equal(vo.pay, vi.pay);

	/* Only the destination, the checksums and the tag fields change. */
	{
		struct rt_range rw[] = {
		    {rt_daddr_off(&vi), rt_addr_len(family)},
		    {vi.l4 + 2, 2},				 /* UDP destination port */
		    {vi.l4 + 6, 2},				 /* UDP checksum */
		    {vi.pay + 4, 2},				 /* flags */
		    {vi.pay + 24, 3},				 /* node_id, hops */
		    {vi.pay + 28, 4},				 /* router_ts */
		    {vi.pay + 40, 4},				 /* hop tag (worker_us) */
		    {vi.l3 + 10, family == CPN_AF_INET ? 2 : 0}, /* IPv4 header checksum */
		};

		rt_assert_same_except(in, o.buf, len, rw, (int)(sizeof(rw) / sizeof(rw[0])));
	}
	rt_node_addr(family, want, node);
	assert_memory_equal(o.buf + rt_daddr_off(&vo), node, rt_addr_len(family));
	assert_memory_equal(o.buf + rt_saddr_off(&vo), in + rt_saddr_off(&vi), rt_addr_len(family));
	assert_int_equal(rt_be16(o.buf + vo.l4), 40000);
	assert_int_equal(rt_be16(o.buf + vo.l4 + 2), T_PORT);
	assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	if (csum_zero)
		assert_int_equal(rt_be16(o.buf + vo.l4 + 6), 0);
	else
		assert_int_not_equal(rt_be16(o.buf + vo.l4 + 6), 0);

	rt_decode(o.buf, &vo, &mo);
	assert_int_equal(mo.node_id, want);
	assert_int_equal(mo.hops, mi.hops + 1);
	assert_int_equal(mo.flags, mi.flags | CPN_F_TAGGED);
	/* router_ts: the router's clock in µs, read between t0 and t1. */
	if ((__u32)(mo.router_ts - t0) > (__u32)(t1 - t0))
		fail_msg("router_ts %u outside [%u, %u]", mo.router_ts, t0, t1);

	/* Exactly the frame a client would have built for the node: the
	 * incremental checksums equal the ones computed from scratch.
	 */
	{
		struct cpn_pkt e = s;
		__u8 exp[CPN_PKT_MAX];
		char a[48];

		cpn_pkt_node_addr(want, family, a, sizeof(a));
		e.dst = a;
		e.dport = T_PORT;
		e.msg.node_id = want;
		e.msg.hops = (__u8)(s.msg.hops + 1);
		e.msg.flags = (__u16)(s.msg.flags | CPN_F_TAGGED);
		e.msg.router_ts = mo.router_ts;
		t_hop_tag(&e);
		assert_int_equal(cpn_pkt_build(&e, exp, sizeof(exp)), len);
		assert_memory_equal(o.buf, exp, len);
	}

	assert_int_equal(router_node_stats(r, want, &ns1), 0);
	assert_int_equal(ns1.requests, ns0.requests + 1);
	assert_int_equal(r->maps.state[want].outstanding, out0 + 1);
	rt_assert_counted(&o, (int[]){CPN_STAT_REQ_STEERED, CPN_STAT_TX_KERNEL, RT_END});
}

static void test_request_rewrite_changes_only_destination_and_tag(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++)
		check_request_rewrite(r, rt_framings[i].family, rt_framings[i].vlan, false,
				      (__u16)(i + 1));
}

static void test_request_rewrite_keeps_ipv4_udp_checksum_zero(void **state)
{
	struct router *r = *state;

	check_request_rewrite(r, CPN_AF_INET, 0, true, 2);
	check_request_rewrite(r, CPN_AF_INET, 7, true, 3);
}

/* A node listening on another port than the VIP's: the port is rewritten
 * too, and the checksum follows it.
 */
static void test_request_to_node_on_other_port_rewrites_port(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family;
		struct cpn_node_cfg c;
		struct cpn_pkt s;
		struct cpn_pkt_view v;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 1), 0);
		assert_int_equal(cpn_maps_get_node(&r->maps, 1, &c), 0);
		c.port = htons(NODE_PORT_OTHER);
		assert_int_equal(cpn_maps_set_node(&r->maps, 1, &c, 100, CPN_ADMIN_UP), 0);
		cpn_pkt_default(&s, family);
		s.vlan = rt_framings[i].vlan;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &v), 0);
		assert_int_equal(rt_be16(o.buf + v.l4), 40000);
		assert_int_equal(rt_be16(o.buf + v.l4 + 2), NODE_PORT_OTHER);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	}
}

/* ---- reverse NAT of replies ------------------------------------------ */

static void check_reply_reverse_nat(struct router *r, int family, int vlan, bool csum_zero,
				    __u16 node_port)
{
	struct cpn_pkt s;
	struct cpn_pkt_view vi, vo;
	struct cpn_node_stats ns0, ns1;
	struct cpn_node_cfg c;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX], payload[77];
	__be32 vip[4];
	size_t len;

	print_message("# reverse NAT: %s vlan %d udp csum %s node port %u\n", RT_FAMILY_STR(family),
		      vlan, csum_zero ? "zero" : "set", node_port);
	assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
	assert_int_equal(cpn_maps_get_node(&r->maps, 2, &c), 0);
	c.port = htons(node_port);
	assert_int_equal(cpn_maps_set_node(&r->maps, 2, &c, 100, CPN_ADMIN_UP), 0);

	cpn_pkt_reply(&s, family, 2);
	s.sport = node_port;
	s.vlan = vlan;
	s.udp_csum_zero = csum_zero;
	s.msg.queue_depth = 3;
	s.msg.capacity = 4;
	s.msg.worker_us = 250;
	s.msg.router_ts = t_now_us() - 1000;
	cpn_pkt_fill(payload, sizeof(payload), 77 + (__u32)vlan);
	s.payload = payload;
	s.payload_len = sizeof(payload);
	len = cpn_pkt_build(&s, in, sizeof(in));
	assert_true(len > 0);
	assert_int_equal(cpn_pkt_locate(in, len, &vi), 0);

	assert_int_equal(router_node_stats(r, 2, &ns0), 0);
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	assert_int_equal(o.len, len);
	assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
	{
		struct rt_range rw[] = {
		    {rt_saddr_off(&vi), rt_addr_len(family)},
		    {vi.l4, 2},	    /* UDP source port */
		    {vi.l4 + 6, 2}, /* UDP checksum */
		    {vi.l3 + 10, family == CPN_AF_INET ? 2 : 0},
		};

		rt_assert_same_except(in, o.buf, len, rw, (int)(sizeof(rw) / sizeof(rw[0])));
	}
	rt_addr(family == CPN_AF_INET ? T_VIP4 : T_VIP6, vip);
	assert_memory_equal(o.buf + rt_saddr_off(&vo), vip, rt_addr_len(family));
	assert_memory_equal(o.buf + rt_daddr_off(&vo), in + rt_daddr_off(&vi), rt_addr_len(family));
	assert_int_equal(rt_be16(o.buf + vo.l4), T_PORT);
	assert_int_equal(rt_be16(o.buf + vo.l4 + 2), 40000);
	assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	if (csum_zero)
		assert_int_equal(rt_be16(o.buf + vo.l4 + 6), 0);

	/* Exactly the frame the VIP would have sent, checksums included. */
	{
		struct cpn_pkt e = s;
		__u8 exp[CPN_PKT_MAX];

		e.src = family == CPN_AF_INET ? T_VIP4 : T_VIP6;
		e.sport = T_PORT;
		assert_int_equal(cpn_pkt_build(&e, exp, sizeof(exp)), len);
		assert_memory_equal(o.buf, exp, len);
	}

	assert_int_equal(router_node_stats(r, 2, &ns1), 0);
	assert_int_equal(ns1.replies, ns0.replies + 1);
	rt_assert_counted(&o, (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END});
}

static void test_reply_source_becomes_vip_and_nothing_else_changes(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++)
		check_reply_reverse_nat(r, rt_framings[i].family, rt_framings[i].vlan, false,
					T_PORT);
	check_reply_reverse_nat(r, CPN_AF_INET, 0, true, T_PORT);
	check_reply_reverse_nat(r, CPN_AF_INET, 100, true, T_PORT);
}

static void test_reply_from_node_on_other_port_gets_vip_port(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++)
		check_reply_reverse_nat(r, rt_framings[i].family, rt_framings[i].vlan, false,
					NODE_PORT_OTHER);
	check_reply_reverse_nat(r, CPN_AF_INET, 0, true, NODE_PORT_OTHER);
}

/* A BUSY that a node sends is reverse-NATed like a reply, counted as the
 * node's, and teaches nothing about its load.
 */
static void test_busy_from_node_is_reverse_natted_without_learning(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family;
		struct cpn_node_stats ns0, ns1;
		struct cpn_node before;
		struct cpn_pkt s;
		struct cpn_pkt_view v;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		__be32 vip[4];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 2), 0);
		t_report(r, 2, 9, 1, 2, 300, 40);
		rt_node_snapshot(r, 2, &before);
		cpn_pkt_reply(&s, family, 2);
		s.vlan = rt_framings[i].vlan;
		s.msg.type = CPN_T_BUSY;
		s.msg.status = CPN_BUSY_OVERLOAD;
		s.msg.queue_depth = 100;
		len = cpn_pkt_build(&s, in, sizeof(in));
		assert_int_equal(router_node_stats(r, 2, &ns0), 0);
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &v), 0);
		rt_addr(family == CPN_AF_INET ? T_VIP4 : T_VIP6, vip);
		assert_memory_equal(o.buf + rt_saddr_off(&v), vip, rt_addr_len(family));
		assert_memory_equal(o.buf + v.pay, in + v.pay, len - v.pay);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));
		assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
		assert_int_equal(router_node_stats(r, 2, &ns1), 0);
		assert_int_equal(ns1.busy, ns0.busy + 1);
		assert_int_equal(ns1.replies, ns0.replies);
		rt_assert_counted(&o, (int[]){CPN_STAT_BUSY_FWD, CPN_STAT_TX_KERNEL, RT_END});
	}
}

/* ---- tagged requests ------------------------------------------------- */

static void tagged_spec(struct cpn_pkt *s, int family, int vlan, __u16 node)
{
	cpn_pkt_default(s, family);
	s->vlan = vlan;
	s->msg.flags = CPN_F_TAGGED;
	s->msg.node_id = node;
	s->msg.hops = 1;
	s->msg.router_ts = 12345;
	t_hop_tag(s);
}

/* A live tag is kept even when another node is less loaded. */
static void test_tagged_request_to_live_node_is_forwarded_there(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		struct cpn_pkt s;
		struct cpn_pkt_view v;
		struct cpn_msg m;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_LEAST, 4), 0);
		t_report(r, 1, 0, 0, 1, 100, 0);
		t_report(r, 2, 0, 0, 1, 100, 0);
		t_report(r, 3, 50, 10, 1, 100, 500); /* the worst by far */
		t_report(r, 4, 0, 0, 1, 100, 0);
		tagged_spec(&s, rt_framings[i].family, rt_framings[i].vlan, 3);
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 3);
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &v), 0);
		rt_decode(o.buf, &v, &m);
		assert_int_equal(m.hops, 2);
		assert_int_equal(m.flags, CPN_F_TAGGED);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));
		assert_int_equal(r->maps.state[3].outstanding, 1);
		rt_assert_counted(&o, (int[]){CPN_STAT_REQ_TAG_HONOURED, CPN_STAT_REQ_STEERED,
					      CPN_STAT_TX_KERNEL, RT_END});
	}
}

/* The ways a tagged node can be gone: the request is steered anew. */
static void test_tagged_request_to_dead_node_is_resteered_to_live_one(void **state)
{
	struct router *r = *state;
	enum { STALE, ADMIN_DOWN, ADMIN_DRAIN, REPORTED_DRAINING, NOT_IN_SERVICE, UNKNOWN, KINDS };
	static const char *const kind_name[KINDS] = {
	    "stale",	      "admin down", "admin drain", "reported draining",
	    "not in service", "unknown id",
	};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		for (int k = 0; k < KINDS; k++) {
			int family = rt_framings[i].family;
			struct cpn_pkt s;
			struct rt_out o;
			__u8 in[CPN_PKT_MAX];
			__u16 tag = 3;
			size_t len;

			print_message("# tagged node %s, %s vlan %d\n", kind_name[k],
				      RT_FAMILY_STR(family), rt_framings[i].vlan);
			assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 4), 0);
			for (__u16 id = 1; id <= 4; id++)
				t_report(r, id, id == 2 ? 0 : 7, 0, 1, 100, 0);
			switch (k) {
			case STALE:
				t_make_stale(r, 3);
				break;
			case ADMIN_DOWN:
				assert_int_equal(cpn_maps_node_admin(&r->maps, 3, 0, CPN_ADMIN_UP),
						 0);
				break;
			case ADMIN_DRAIN:
				assert_int_equal(
				    cpn_maps_node_admin(&r->maps, 3, CPN_ADMIN_DRAIN, 0), 0);
				break;
			case REPORTED_DRAINING:
				r->maps.state[3].report_flags |= CPN_REP_DRAINING;
				break;
			case NOT_IN_SERVICE:
				/* Live and configured, but not one of the service's. */
				assert_int_equal(t_add_node(r, 9, family, 100), 0);
				t_report(r, 9, 0, 0, 1, 100, 0);
				tag = 9;
				break;
			case UNKNOWN:
				tag = 700;
				break;
			}
			tagged_spec(&s, family, rt_framings[i].vlan, tag);
			len = cpn_pkt_build(&s, in, sizeof(in));
			rt_run(r, in, len, &o);
			assert_int_equal(o.act, XDP_PASS);
			assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 2);
			assert_true(cpn_pkt_csum_ok(o.buf, o.len));
			rt_assert_counted(&o, (int[]){CPN_STAT_REQ_RESTEERED, CPN_STAT_REQ_STEERED,
						      CPN_STAT_TX_KERNEL, RT_END});
			if (k == NOT_IN_SERVICE)
				assert_int_equal(cpn_maps_del_node(&r->maps, 9), 0);
		}
	}
}

/* TAGGED with node 0 is no tag at all: a plain choice, nothing counted as
 * honoured or re-steered.
 */
static void test_tagged_flag_with_node_zero_is_a_fresh_choice(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 3), 0);
	t_report(r, 1, 4, 0, 1, 100, 0);
	t_report(r, 2, 4, 0, 1, 100, 0);
	t_report(r, 3, 0, 0, 1, 100, 0);
	tagged_spec(&s, CPN_AF_INET, 0, 0);
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 3);
	rt_assert_counted(&o, (int[]){CPN_STAT_REQ_STEERED, CPN_STAT_TX_KERNEL, RT_END});
}

/* The UDP checksum whose sum folds to zero is sent as 0xffff (RFC 768):
 * a reply whose reverse-NATed checksum lands there, and one whose own
 * checksum is 0xffff, both come out exactly as built from scratch.
 */
static void test_reverse_nat_handles_checksum_that_folds_to_zero(void **state)
{
	struct router *r = *state;

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 2), 0);
		for (int side = 0; side < 2; side++) {
			struct cpn_pkt in_s, out_s;
			struct cpn_pkt_view v;
			struct rt_out o;
			__u8 in[CPN_PKT_MAX], exp[CPN_PKT_MAX];
			size_t len = 0;
			__u64 id;

			/* side 0: the output's checksum is 0xffff; 1: the input's. */
			cpn_pkt_reply(&in_s, family, 2);
			in_s.msg.router_ts = 1; /* what it learns leaves the frame alone */
			out_s = in_s;
			out_s.src = family == CPN_AF_INET ? T_VIP4 : T_VIP6;
			for (id = 0; id < 4000000; id++) {
				in_s.msg.request_id = id;
				out_s.msg.request_id = id;
				len = cpn_pkt_build(side ? &in_s : &out_s, side ? in : exp,
						    CPN_PKT_MAX);
				assert_int_equal(cpn_pkt_locate(side ? in : exp, len, &v), 0);
				if (rt_be16((side ? in : exp) + v.l4 + 6) == 0xffff)
					break;
			}
			assert_true(id < 4000000);
			assert_int_equal(cpn_pkt_build(&in_s, in, sizeof(in)), len);
			assert_int_equal(cpn_pkt_build(&out_s, exp, sizeof(exp)), len);
			rt_run(r, in, len, &o);
			assert_int_equal(o.act, XDP_PASS);
			assert_int_equal(o.len, len);
			assert_memory_equal(o.buf, exp, len);
			assert_true(cpn_pkt_csum_ok(o.buf, o.len));
		}
	}
}

/* ---- checksums over many random frames ------------------------------ */

static __u32 rnd_state = 0x2545f491;

static __u32 rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* Incremental updates have corner cases (sums that fold to 0 or 0xffff):
 * 1000 requests and replies with random ports, fields, payloads and
 * lengths must all come out with checksums that verify from scratch.
 */
static void test_rewrites_keep_checksums_valid_for_random_frames(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < 1000; i++) {
		int family = rnd() & 1 ? CPN_AF_INET6 : CPN_AF_INET;
		bool reply = rnd() & 1;
		struct cpn_node_cfg c;
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX], payload[300];
		__u16 node = (__u16)(rnd() % 4 + 1), node_port = (__u16)(rnd() | 1);
		size_t len;

		/* Every 50 frames, the service (and its nodes) in a random family. */
		if (i % 50 == 0)
			assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 4), 0);
		assert_int_equal(cpn_maps_get_node(&r->maps, node, &c), 0);
		family = c.family;
		c.port = htons(node_port);
		assert_int_equal(cpn_maps_set_node(&r->maps, node, &c, 100, CPN_ADMIN_UP), 0);
		for (__u16 id = 1; id <= 4; id++)
			t_report(r, id, id == node ? 0 : 3, 0, 1, 100, 0);

		cpn_pkt_fill(payload, sizeof(payload), rnd());
		if (reply) {
			cpn_pkt_reply(&s, family, node);
			s.sport = node_port;
			s.dport = (__u16)rnd();
		} else {
			cpn_pkt_default(&s, family);
			s.sport = (__u16)rnd();
			s.msg.flags = (__u16)(rnd() & ~(CPN_F_TAGGED | CPN_F_AUTH | CPN_F_STICKY |
							CPN_F_CONT));
			s.msg.router_ts = rnd();
			s.msg.hops = (__u8)(rnd() % 4);
		}
		s.vlan = rnd() & 1 ? (int)(rnd() % 4095 + 1) : 0;
		s.udp_csum_zero = family == CPN_AF_INET && rnd() % 4 == 0;
		s.msg.request_id = ((__u64)rnd() << 32) | rnd();
		s.msg.session_key = rnd();
		s.msg.class = (__u8)(rnd() % 8);
		s.msg.queue_depth = (__u16)rnd();
		s.msg.worker_us = rnd() % 1000;
		s.payload = payload;
		s.payload_len = rnd() % sizeof(payload);
		s.ttl = (__u8)(rnd() % 255 + 1);
		len = cpn_pkt_build(&s, in, sizeof(in));
		assert_true(len > 0);
		rt_run(r, in, len, &o);
		if (o.act != XDP_PASS || !cpn_pkt_csum_ok(o.buf, o.len))
			fail_msg("frame %d (%s %s): verdict %d, checksum %s", i,
				 RT_FAMILY_STR(family), reply ? "reply" : "request", o.act,
				 cpn_pkt_csum_ok(o.buf, o.len) ? "ok" : "bad");
		assert_int_equal(rt_delta(&o, reply ? CPN_STAT_REPLY_FWD : CPN_STAT_REQ_STEERED),
				 1);
	}
}

/* ---- the chained program ----------------------------------------------- */

/* A foreign XDP program: returns XDP_ABORTED, which cpn_xdp never does. */
static int foreign_prog(void)
{
	const struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_ABORTED},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_XDP);

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "foreign", "GPL", insns, 2, &o);
}

/* cpn_xdp_chain, where cpnctl chained a program on the ingress interface
 * (cpn_chain_slots names its slot in cpn_chain), hands it every frame cpn
 * passes; cpn's own requests not, other interfaces pass to the stack, and
 * cpn_xdp itself never chains. Under BPF_PROG_TEST_RUN the ingress interface
 * is the loopback (ifindex 1).
 */
static void test_passed_frames_go_to_the_chained_program(void **state)
{
	struct router *r = *state;
	__u32 lo = 1, other = 77, slot = 5;
	int fd = foreign_prog();
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX], payload[32] = {0};
	struct rt_out o;
	size_t len;

	assert_true(fd >= 0);
	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 2), 0);
	/* Not cpn's: UDP to an address that is no VIP. */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.dst = "192.0.2.77";
	s.with_hdr = false;
	s.payload = payload;
	s.payload_len = sizeof(payload);
	len = cpn_pkt_build(&s, in, sizeof(in));
	assert_true(len > 0);

	assert_int_equal(bpf_map_update_elem(r->maps.chain, &slot, &fd, 0), 0);
	assert_int_equal(bpf_map_update_elem(r->maps.chain_slots, &lo, &slot, 0), 0);
	/* cpn_xdp: the stack, whatever is chained. */
	rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
	assert_int_equal(bpf_map_delete_elem(r->maps.chain_slots, &lo), 0);

	r->prog_fd = r->chain_fd;
	rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
	assert_int_equal(bpf_map_update_elem(r->maps.chain_slots, &other, &slot, 0), 0);
	/* Chained on another interface only: still the stack. */
	rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);

	assert_int_equal(bpf_map_update_elem(r->maps.chain_slots, &lo, &slot, 0), 0);
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_ABORTED);
	rt_assert_frame_equal(in, len, &o);
	rt_assert_counted(&o, (int[]){CPN_STAT_PASS_NOT_CPN, RT_END});

	/* A request: cpn's, steered, never handed on. */
	cpn_pkt_default(&s, CPN_AF_INET);
	assert_true(rt_steer(r, &s) >= 1);

	/* The slot emptied (the program gone): the stack again. */
	assert_int_equal(bpf_map_delete_elem(r->maps.chain, &slot), 0);
	rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
	bpf_map_delete_elem(r->maps.chain_slots, &lo);
	bpf_map_delete_elem(r->maps.chain_slots, &other);
	close(fd);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, t_router_setup, t_router_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_request_rewrite_changes_only_destination_and_tag),
	    T(test_request_rewrite_keeps_ipv4_udp_checksum_zero),
	    T(test_request_to_node_on_other_port_rewrites_port),
	    T(test_reply_source_becomes_vip_and_nothing_else_changes),
	    T(test_reply_from_node_on_other_port_gets_vip_port),
	    T(test_busy_from_node_is_reverse_natted_without_learning),
	    T(test_tagged_request_to_live_node_is_forwarded_there),
	    T(test_tagged_request_to_dead_node_is_resteered_to_live_one),
	    T(test_tagged_flag_with_node_zero_is_a_fresh_choice),
	    T(test_reverse_nat_handles_checksum_that_folds_to_zero),
	    T(test_rewrites_keep_checksums_valid_for_random_frames),
	    T(test_passed_frames_go_to_the_chained_program),
	};
#undef T
	return cmocka_run_group_tests_name("bpf_router", tests, NULL, NULL);
}
