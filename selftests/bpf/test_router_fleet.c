// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What a router of a fleet does, through BPF_PROG_TEST_RUN of the real
 * cpn_router.bpf.o:
 *   - full NAT (`reply: router`): a request leaves from the router's own
 *     address toward the node, the client remembered in cpn_flows; the reply
 *     to that address goes back to the client from the VIP; a reply for an
 *     unknown request is dropped and counted;
 *   - policy jiq: an idle token carried by a REPLY steers the next request
 *     to its node, once; a token older than its time-to-live, or of a node
 *     outside the service, is not used; BUSY carries none;
 *   - a service of 1000 nodes (p2c, jiq): every node reachable, a tag on
 *     any of them honoured;
 *   - Maglev: two routers that know the same nodes, listed in different
 *     orders, send every flow to the same node;
 *   - large messages: a request's later fragments (FRAG|CONT, tagged) go
 *     to their node without a choice or a count, refused for a node
 *     outside the service; a reply's fragments before the last go back to
 *     the client without being learned from, the full-NAT flow kept until
 *     the last.
 * Without an ingress ifindex the FIB lookup fails: steered packets come
 * back as XDP_PASS with the rewrite done (TX_KERNEL).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <bpf/bpf.h>

#include "router_test.h"
#include "cpn_addr.h"
#include "cpn_util.h"

#define ROUTER_SRC4 "10.1.0.254" /* the router's address toward the nodes */
#define ROUTER_SRC6 "fd01::fe"

/* Give the service full NAT, and node `id` the router's address toward it. */
static void fullnat(struct router *r, int family, __u16 nodes)
{
	struct cpn_service s;
	__u32 k = T_SVC;

	for (__u16 id = 1; id <= nodes; id++) {
		struct cpn_node_cfg c;
		__u8 fam;

		assert_int_equal(bpf_map_lookup_elem(r->maps.nodes, &(__u32){id}, &c), 0);
		assert_int_equal(
		    cpn_addr_parse(family == CPN_AF_INET ? ROUTER_SRC4 : ROUTER_SRC6, c.src, &fam),
		    0);
		assert_int_equal(bpf_map_update_elem(r->maps.nodes, &(__u32){id}, &c, BPF_ANY), 0);
	}
	assert_int_equal(bpf_map_lookup_elem(r->maps.services, &k, &s), 0);
	s.flags |= CPN_SVC_FULLNAT;
	assert_int_equal(cpn_maps_set_service(&r->maps, T_SVC, &s), 0);
}

static __u32 flows(struct router *r)
{
	struct cpn_flow_key k, next, *prev = NULL;
	__u32 n = 0;

	while (!bpf_map_get_next_key(r->maps.flows, prev, &next)) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

static void check_fullnat_round_trip(struct router *r, int family)
{
	struct cpn_pkt s;
	struct cpn_pkt_view vo;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	__be32 want[4], got[4] = {0};
	__u8 fam;
	__u16 node;
	size_t len;

	print_message("# full NAT round trip: %s\n", RT_FAMILY_STR(family));
	assert_int_equal(t_topology(r, family, CPN_POL_P2C, 2), 0);
	fullnat(r, family, 2);

	/* The request: to the node, from the router's address, client port kept. */
	cpn_pkt_default(&s, family);
	s.msg.request_id = 0x1122334455667788ULL;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
	assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	node = cpn_pkt_steered_node(o.buf, o.len);
	assert_true(node == 1 || node == 2);
	assert_int_equal(
	    cpn_addr_parse(family == CPN_AF_INET ? ROUTER_SRC4 : ROUTER_SRC6, want, &fam), 0);
	memcpy(got, o.buf + rt_saddr_off(&vo), rt_addr_len(family));
	assert_memory_equal(got, want, rt_addr_len(family));
	assert_int_equal(rt_be16(o.buf + vo.l4), 40000);
	rt_assert_counted(
	    &o, (int[]){CPN_STAT_REQ_STEERED, CPN_STAT_REQ_FULLNAT, CPN_STAT_TX_KERNEL, RT_END});
	assert_int_equal(flows(r), 1);

	/* The node's reply, to the router's address and the client's port: back
	 * to the client, from the VIP.
	 */
	cpn_pkt_reply(&s, family, node);
	s.dst = family == CPN_AF_INET ? ROUTER_SRC4 : ROUTER_SRC6;
	s.msg.request_id = 0x1122334455667788ULL;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
	{
		struct cpn_pkt e = s;
		__u8 exp[CPN_PKT_MAX];

		/* Exactly the reply a direct node would have sent from the VIP. */
		e.src = family == CPN_AF_INET ? T_VIP4 : T_VIP6;
		e.dst = family == CPN_AF_INET ? T_CLIENT4 : T_CLIENT6;
		assert_int_equal(cpn_pkt_build(&e, exp, sizeof(exp)), len);
		assert_memory_equal(o.buf + vo.l3, exp + vo.l3, len - vo.l3);
	}
	rt_assert_counted(&o, (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END});
	assert_int_equal(flows(r), 0);

	/* The same reply again: its request is gone. */
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_DROP);
	rt_assert_counted(&o, (int[]){CPN_STAT_DROP_NO_FLOW, RT_END});
}

static void test_fullnat_request_and_reply_go_through_the_router(void **state)
{
	check_fullnat_round_trip(*state, CPN_AF_INET);
	check_fullnat_round_trip(*state, CPN_AF_INET6);
}

/* A reply whose request id, tenant or client port differs is not another
 * client's: dropped.
 */
static void test_fullnat_reply_must_match_its_request(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	__u16 node;
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 1), 0);
	fullnat(r, CPN_AF_INET, 1);
	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.request_id = 7;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	node = cpn_pkt_steered_node(o.buf, o.len);
	assert_int_equal(node, 1);

	for (int variant = 0; variant < 3; variant++) {
		cpn_pkt_reply(&s, CPN_AF_INET, node);
		s.dst = ROUTER_SRC4;
		s.msg.request_id = variant == 0 ? 8 : 7;
		s.msg.tenant_id = variant == 1 ? T_TENANT + 1 : T_TENANT;
		s.dport = variant == 2 ? 40001 : 40000;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_DROP);
		rt_assert_counted(&o, (int[]){CPN_STAT_DROP_NO_FLOW, RT_END});
	}
	assert_int_equal(flows(r), 1);
}

/* Without the router's address toward the node, full NAT cannot be done:
 * the request is DNATed as for `reply: direct`.
 */
static void test_fullnat_without_a_router_address_is_dnat(void **state)
{
	struct router *r = *state;
	struct cpn_service s;
	struct cpn_pkt p;
	struct cpn_pkt_view vi, vo;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	__u32 k = T_SVC;
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 1), 0);
	assert_int_equal(bpf_map_lookup_elem(r->maps.services, &k, &s), 0);
	s.flags |= CPN_SVC_FULLNAT;
	assert_int_equal(cpn_maps_set_service(&r->maps, T_SVC, &s), 0);
	cpn_pkt_default(&p, CPN_AF_INET);
	len = cpn_pkt_build(&p, in, sizeof(in));
	assert_int_equal(cpn_pkt_locate(in, len, &vi), 0);
	rt_run(r, in, len, &o);
	assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
	assert_memory_equal(o.buf + rt_saddr_off(&vo), in + rt_saddr_off(&vi), 4);
	rt_assert_counted(&o, (int[]){CPN_STAT_REQ_STEERED, CPN_STAT_TX_KERNEL, RT_END});
	assert_int_equal(flows(r), 0);
}

/* ---- jiq ------------------------------------------------------------- */

/* A REPLY from node `id`, with or without an idle token. */
static void reply_from(struct router *r, __u16 id, bool token, __u8 type, struct rt_out *o)
{
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	cpn_pkt_reply(&s, CPN_AF_INET, id);
	s.msg.type = type;
	if (token)
		s.msg.flags |= CPN_F_TOKEN;
	/* The load it reports: as busy as the others (p2c has no preference). */
	s.msg.queue_depth = 3;
	s.msg.capacity = 1;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, o);
}

static __u16 request(struct router *r, struct rt_out *o)
{
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	cpn_pkt_default(&s, CPN_AF_INET);
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, o);
	return cpn_pkt_steered_node(o->buf, o->len);
}

static void test_jiq_token_steers_the_next_request_once(void **state)
{
	struct router *r = *state;
	struct rt_out o;
	int to_token = 0;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_JIQ, 8), 0);
	for (__u16 id = 1; id <= 8; id++)
		t_report(r, id, 3, 0, 1, 1000, 0);
	for (int round = 0; round < 50; round++) {
		__u16 idle = (__u16)(1 + round % 8);

		reply_from(r, idle, true, CPN_T_REPLY, &o);
		assert_int_equal(rt_delta(&o, CPN_STAT_TOKEN_IN), 1);
		assert_int_equal(request(r, &o), idle);
		assert_int_equal(rt_delta(&o, CPN_STAT_REQ_TOKEN), 1);
		/* Consumed: the next request is p2c's, with no token counted. */
		request(r, &o);
		assert_int_equal(rt_delta(&o, CPN_STAT_REQ_TOKEN), 0);
		to_token++;
		/* p2c's view: reset the outstanding counts the requests made */
		for (__u16 id = 1; id <= 8; id++)
			t_report(r, id, 3, 0, 1, 1000, 0);
	}
	assert_int_equal(to_token, 50);
}

static void test_jiq_newest_token_first(void **state)
{
	struct router *r = *state;
	struct rt_out o;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_JIQ, 8), 0);
	for (__u16 id = 1; id <= 8; id++)
		t_report(r, id, 3, 0, 1, 1000, 0);
	reply_from(r, 2, true, CPN_T_REPLY, &o);
	reply_from(r, 5, true, CPN_T_REPLY, &o);
	reply_from(r, 7, true, CPN_T_REPLY, &o);
	assert_int_equal(request(r, &o), 7);
	assert_int_equal(request(r, &o), 5);
	assert_int_equal(request(r, &o), 2);
}

/* A token lives CPN_TOKEN_TTL_SVC service times of its node: older, the
 * request goes by p2c (and the store empties).
 */
static void test_jiq_token_expires(void **state)
{
	struct router *r = *state;
	struct rt_out o;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_JIQ, 4), 0);
	for (__u16 id = 1; id <= 4; id++)
		t_report(r, id, 0, 0, 1, 100, 0);
	reply_from(r, 3, true, CPN_T_REPLY, &o);
	r->maps.state[3].svc_us = 100; /* TTL 200 µs */
	usleep(5000);
	request(r, &o);
	assert_int_equal(rt_delta(&o, CPN_STAT_REQ_TOKEN), 0);
	assert_int_equal(rt_delta(&o, CPN_STAT_REQ_STEERED), 1);
}

/* Tokens only where they mean something: a BUSY is no token, nor is a
 * token of a service whose policy is not jiq kept.
 */
static void test_jiq_tokens_only_from_replies_of_jiq_services(void **state)
{
	struct router *r = *state;
	struct rt_out o;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_JIQ, 4), 0);
	reply_from(r, 2, true, CPN_T_BUSY, &o);
	assert_int_equal(rt_delta(&o, CPN_STAT_TOKEN_IN), 0);
	request(r, &o);
	assert_int_equal(rt_delta(&o, CPN_STAT_REQ_TOKEN), 0);

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 4), 0);
	reply_from(r, 2, true, CPN_T_REPLY, &o);
	assert_int_equal(rt_delta(&o, CPN_STAT_TOKEN_IN), 0);
}

/* A token of a node that left the service, or is not live, is skipped. */
static void test_jiq_token_of_a_node_outside_the_service_is_skipped(void **state)
{
	struct router *r = *state;
	struct rt_out o;
	__u16 three[] = {1, 2, 3};

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_JIQ, 4), 0);
	for (__u16 id = 1; id <= 4; id++)
		t_report(r, id, 3, 0, 1, 1000, 0);
	reply_from(r, 4, true, CPN_T_REPLY, &o);
	/* node 4 leaves the service */
	assert_int_equal(t_add_service(r, T_SVC, CPN_AF_INET, CPN_POL_JIQ, three, 3), 0);
	assert_int_not_equal(request(r, &o), 4);
	assert_int_equal(rt_delta(&o, CPN_STAT_REQ_TOKEN), 0);

	reply_from(r, 2, true, CPN_T_REPLY, &o);
	t_make_stale(r, 2);
	assert_int_not_equal(request(r, &o), 2);
	assert_int_equal(rt_delta(&o, CPN_STAT_REQ_TOKEN), 0);
}

/* ---- large services, Maglev agreement -------------------------------- */

static void test_service_of_1000_nodes(void **state)
{
	struct router *r = *state;
	static bool seen[1001];
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX], out[CPN_PKT_MAX];
	int distinct = 0;

	memset(seen, 0, sizeof(seen));
	for (int pol = 0; pol < 2; pol++) {
		assert_int_equal(t_topology(r, CPN_AF_INET, pol ? CPN_POL_JIQ : CPN_POL_P2C, 1000),
				 0);
		for (int i = 0; i < 4000; i++) {
			size_t len, out_len = sizeof(out);
			__u16 id;

			cpn_pkt_default(&s, CPN_AF_INET);
			len = cpn_pkt_build(&s, in, sizeof(in));
			assert_int_equal(router_run(r, in, len, out, &out_len), XDP_PASS);
			id = cpn_pkt_steered_node(out, out_len);
			assert_true(id >= 1 && id <= 1000);
			if (!seen[id]) {
				seen[id] = true;
				distinct++;
			}
			if (i % 64 == 63) /* outstanding counts back to zero */
				for (__u16 k = 1; k <= 1000; k++)
					r->maps.state[k].outstanding = 0;
		}
	}
	print_message("# 8000 requests reached %d of 1000 nodes\n", distinct);
	assert_true(distinct > 900);

	/* A tag on the last node: honoured (membership of a large service). */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.flags |= CPN_F_TAGGED;
	s.msg.node_id = 1000;
	t_hop_tag(&s);
	{
		struct rt_out o;
		size_t len = cpn_pkt_build(&s, in, sizeof(in));

		rt_run(r, in, len, &o);
		assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 1000);
		assert_int_equal(rt_delta(&o, CPN_STAT_REQ_TAG_HONOURED), 1);
	}
}

static void test_maglev_agrees_across_routers(void **state)
{
	struct router *a = *state, b;
	__u16 ids[16], rev[16];
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX], out[CPN_PKT_MAX];
	int same = 0;

	assert_int_equal(router_open(&b), 0);
	assert_int_equal(t_config(&b), 0);
	for (int i = 0; i < 16; i++) {
		ids[i] = (__u16)(i + 1);
		rev[15 - i] = (__u16)(i + 1);
	}
	assert_int_equal(t_topology(a, CPN_AF_INET, CPN_POL_MAGLEV, 16), 0);
	assert_int_equal(t_topology(&b, CPN_AF_INET, CPN_POL_MAGLEV, 16), 0);
	/* The same nodes, listed in the opposite order on router b. */
	assert_int_equal(t_add_service(a, T_SVC, CPN_AF_INET, CPN_POL_MAGLEV, ids, 16), 0);
	assert_int_equal(t_add_service(&b, T_SVC, CPN_AF_INET, CPN_POL_MAGLEV, rev, 16), 0);
	for (int i = 0; i < 500; i++) {
		size_t len, la = sizeof(out), lb;
		__u16 na, nb;

		cpn_pkt_default(&s, CPN_AF_INET);
		s.sport = (__u16)(1024 + i * 97);
		len = cpn_pkt_build(&s, in, sizeof(in));
		assert_int_equal(router_run(a, in, len, out, &la), XDP_PASS);
		na = cpn_pkt_steered_node(out, la);
		lb = sizeof(out);
		assert_int_equal(router_run(&b, in, len, out, &lb), XDP_PASS);
		nb = cpn_pkt_steered_node(out, lb);
		assert_true(na >= 1 && na <= 16);
		same += na == nb;
	}
	router_close(&b);
	assert_int_equal(same, 500);
}

/* ---- large messages ---------------------------------------------------- */

/* A later fragment of a request: FRAG|CONT, tagged with `node`, the hop
 * tag of the first fragment (as the node's ack echoed it) copied.
 */
static void cont_fragment(struct cpn_pkt *s, int family, __u16 node)
{
	static const __u8 body[64] = {1, 2, 3};

	cpn_pkt_default(s, family);
	s->msg.request_id = 0x99;
	s->msg.flags |= CPN_F_FRAG | CPN_F_CONT | CPN_F_TAGGED;
	s->msg.node_id = node;
	s->msg.router_ts = 777;
	t_hop_tag(s);
	s->payload = body;
	s->payload_len = sizeof(body);
}

static void check_cont_request(struct router *r, int family)
{
	struct cpn_node before[3], after;
	struct cpn_pkt s;
	struct cpn_pkt_view vo;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	__be32 want[4], got[4] = {0};
	size_t len;

	print_message("# request fragments: %s\n", RT_FAMILY_STR(family));
	assert_int_equal(t_topology(r, family, CPN_POL_P2C, 2), 0);
	for (__u16 id = 1; id <= 2; id++)
		rt_node_snapshot(r, id, &before[id]);

	for (__u16 node = 1; node <= 2; node++) {
		cont_fragment(&s, family, node);
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
		/* To the tagged node, from the client, the cpn header as sent. */
		rt_node_addr(family, node, want);
		memcpy(got, o.buf + rt_daddr_off(&vo), rt_addr_len(family));
		assert_memory_equal(got, want, rt_addr_len(family));
		assert_memory_equal(o.buf + vo.pay, in + vo.pay, len - vo.pay);
		rt_assert_counted(&o, (int[]){CPN_STAT_REQ_FRAG, CPN_STAT_TX_KERNEL, RT_END});
	}
	/* Nothing steered: no node owes more than before. */
	for (__u16 id = 1; id <= 2; id++) {
		rt_node_snapshot(r, id, &after);
		assert_int_equal(after.outstanding, before[id].outstanding);
	}

	/* Not tagged, tagged with no node, or with one outside the service. */
	for (int variant = 0; variant < 3; variant++) {
		cont_fragment(&s, family, variant == 2 ? 9 : 1);
		if (variant == 0)
			s.msg.flags &= ~CPN_F_TAGGED;
		if (variant == 1)
			s.msg.node_id = 0;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_DROP);
		rt_assert_counted(&o, (int[]){CPN_STAT_DROP_FRAG_NODE, RT_END});
	}

	/* Without the hop tag of a router of the fleet: no hop tag, one under
	 * another key, one of another node, one of another time.
	 */
	for (int variant = 0; variant < 4; variant++) {
		cont_fragment(&s, family, 1);
		if (variant == 0)
			s.hop_tag = false;
		if (variant == 1)
			s.hop_key[1] ^= 1;
		len = cpn_pkt_build(&s, in, sizeof(in));
		if (variant >= 2) {
			struct cpn_pkt_view vi;
			__u8 *p;

			assert_int_equal(cpn_pkt_locate(in, len, &vi), 0);
			p = in + vi.pay + (variant == 2 ? 25 : 31); /* node_id, router_ts */
			*p ^= 1;
			cpn_pkt_fix_csums(in, len);
		}
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_DROP);
		rt_assert_counted(&o, (int[]){CPN_STAT_DROP_HOP_TAG, RT_END});
	}

	/* The tenant is still checked: one that may not use the service. */
	cont_fragment(&s, family, 1);
	s.msg.tenant_id = T_TENANT + 7;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_DROP);
	rt_assert_counted(&o, (int[]){CPN_STAT_DROP_ACL, RT_END});
}

static void test_request_fragments_go_to_their_node_uncounted(void **state)
{
	check_cont_request(*state, CPN_AF_INET);
	check_cont_request(*state, CPN_AF_INET6);
}

/* Full NAT: the first fragment is steered and remembered; the later ones
 * leave from the router's address too; the node's ack and the reply's
 * fragments come back to the client and keep the flow; the last fragment
 * is the reply, learned from, and the flow is forgotten.
 */
static void test_fullnat_large_message_keeps_its_flow_until_the_last_fragment(void **state)
{
	struct router *r = *state;
	struct cpn_node n0, n1;
	struct cpn_pkt s;
	struct cpn_pkt_view vo;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	__be32 want[4], got[4] = {0};
	__u16 node;
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 2), 0);
	fullnat(r, CPN_AF_INET, 2);

	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.request_id = 0x99;
	s.msg.flags |= CPN_F_FRAG;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	node = cpn_pkt_steered_node(o.buf, o.len);
	assert_true(node == 1 || node == 2);
	rt_assert_counted(
	    &o, (int[]){CPN_STAT_REQ_STEERED, CPN_STAT_REQ_FULLNAT, CPN_STAT_TX_KERNEL, RT_END});
	assert_int_equal(flows(r), 1);

	cont_fragment(&s, CPN_AF_INET, node);
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
	rt_addr(ROUTER_SRC4, want);
	memcpy(got, o.buf + rt_saddr_off(&vo), 4);
	assert_memory_equal(got, want, 4);
	assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	rt_assert_counted(&o, (int[]){CPN_STAT_REQ_FRAG, CPN_STAT_TX_KERNEL, RT_END});

	/* Reply fragments before the last, and the ack: to the client, not
	 * learned from, the flow kept.
	 */
	rt_node_snapshot(r, node, &n0);
	for (int i = 0; i < 3; i++) {
		cpn_pkt_reply(&s, CPN_AF_INET, node);
		s.dst = ROUTER_SRC4;
		s.msg.request_id = 0x99;
		s.msg.flags |= CPN_F_FRAG | CPN_F_CONT;
		s.msg.queue_depth = 50;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
		rt_addr(T_CLIENT4, want);
		memcpy(got, o.buf + rt_daddr_off(&vo), 4);
		assert_memory_equal(got, want, 4);
		rt_addr(T_VIP4, want);
		memcpy(got, o.buf + rt_saddr_off(&vo), 4);
		assert_memory_equal(got, want, 4);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));
		rt_assert_counted(&o, (int[]){CPN_STAT_REPLY_FRAG, CPN_STAT_TX_KERNEL, RT_END});
		assert_int_equal(flows(r), 1);
	}
	rt_node_snapshot(r, node, &n1);
	assert_int_equal(n1.queue_depth, n0.queue_depth);
	assert_true(n1.last_report_ns == n0.last_report_ns);
	assert_int_equal(n1.outstanding, n0.outstanding);

	/* The last fragment: the reply. */
	s.msg.flags &= ~CPN_F_CONT;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	rt_assert_counted(&o, (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END});
	rt_node_snapshot(r, node, &n1);
	assert_int_equal(n1.queue_depth, 50);
	assert_int_equal(flows(r), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, t_router_setup, t_router_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_fullnat_request_and_reply_go_through_the_router),
	    T(test_fullnat_reply_must_match_its_request),
	    T(test_fullnat_without_a_router_address_is_dnat),
	    T(test_jiq_token_steers_the_next_request_once),
	    T(test_jiq_newest_token_first),
	    T(test_jiq_token_expires),
	    T(test_jiq_tokens_only_from_replies_of_jiq_services),
	    T(test_jiq_token_of_a_node_outside_the_service_is_skipped),
	    T(test_service_of_1000_nodes),
	    T(test_maglev_agrees_across_routers),
	    T(test_request_fragments_go_to_their_node_uncounted),
	    T(test_fullnat_large_message_keeps_its_flow_until_the_last_fragment),
	};
#undef T
	return cmocka_run_group_tests_name("bpf_router_fleet", tests, NULL, NULL);
}
