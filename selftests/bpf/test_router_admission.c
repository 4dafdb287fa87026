// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Admission, through BPF_PROG_TEST_RUN: BUSY answered at once (XDP_TX, the
 * request turned around and trimmed) for max_wait_us, max_queue and no node;
 * the tenant ACL, rate limit and request authentication.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "cpn/sched.h"
#include "cpn/siphash.h"
#include "router_test.h"

static const __u64 tenant_key[2] = {0x1122334455667788ULL, 0x99aabbccddeeff00ULL};
static const __u64 other_key[2] = {0x1122334455667788ULL, 0x99aabbccddeeff01ULL};

static void set_limits(struct router *r, __u32 max_wait_us, __u32 max_queue)
{
	struct cpn_service svc;

	assert_int_equal(cpn_maps_get_service(&r->maps, T_SVC, &svc), 0);
	svc.max_wait_us = max_wait_us;
	svc.max_queue = max_queue;
	assert_int_equal(cpn_maps_set_service(&r->maps, T_SVC, &svc), 0);
}

/* ---- BUSY ------------------------------------------------------------ */

/* Run `in` and check the BUSY that comes back, byte by byte. */
static void check_busy(struct router *r, const __u8 *in, size_t len, __u8 reason, bool csum_zero)
{
	struct cpn_pkt_view vi, vo;
	struct cpn_msg mi, mo;
	struct cpn_node_stats ns0[4], ns1[4];
	__u32 out0[4];
	struct rt_out o;
	size_t alen, sa, da;

	assert_int_equal(cpn_pkt_locate(in, len, &vi), 0);
	for (__u16 id = 1; id <= 3; id++) {
		assert_int_equal(router_node_stats(r, id, &ns0[id]), 0);
		out0[id] = r->maps.state[id].outstanding;
	}
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_TX);
	rt_assert_counted(&o, (int[]){CPN_STAT_BUSY_SENT, RT_END});
	/* Headers and the 48-byte cpn header: no tag, no payload. */
	assert_int_equal(o.len, vi.pay + CPN_HDR_LEN);
	assert_int_equal(cpn_pkt_locate(o.buf, o.len, &vo), 0);
	assert_int_equal(vo.l3, vi.l3);
	assert_int_equal(vo.udp_len, 8 + CPN_HDR_LEN);

	/* Ethernet: MACs swapped, the rest (VLAN tag, type) as it was. */
	assert_memory_equal(o.buf, in + 6, 6);
	assert_memory_equal(o.buf + 6, in, 6);
	assert_memory_equal(o.buf + 12, in + 12, vi.l3 - 12);

	/* IP: addresses swapped, length, TTL and checksum new. */
	alen = rt_addr_len(vi.family);
	sa = rt_saddr_off(&vi);
	da = rt_daddr_off(&vi);
	assert_memory_equal(o.buf + sa, in + da, alen);
	assert_memory_equal(o.buf + da, in + sa, alen);
	if (vi.family == CPN_AF_INET) {
		const __u8 *ip = o.buf + vo.l3, *ipi = in + vi.l3;

		assert_memory_equal(ip, ipi, 2); /* version, ihl, tos */
		assert_int_equal(rt_be16(ip + 2), 20 + 8 + CPN_HDR_LEN);
		assert_memory_equal(ip + 4, ipi + 4, 4); /* id, frag_off */
		assert_int_equal(ip[8], 64);
		assert_int_equal(ip[9], IPPROTO_UDP);
	} else {
		const __u8 *ip = o.buf + vo.l3, *ipi = in + vi.l3;

		assert_memory_equal(ip, ipi, 4); /* version, class, flow label */
		assert_int_equal(rt_be16(ip + 4), 8 + CPN_HDR_LEN);
		assert_int_equal(ip[6], IPPROTO_UDP);
		assert_int_equal(ip[7], 64);
	}

	/* UDP: ports swapped, length 56, checksum valid from scratch. */
	assert_int_equal(rt_be16(o.buf + vo.l4), rt_be16(in + vi.l4 + 2));
	assert_int_equal(rt_be16(o.buf + vo.l4 + 2), rt_be16(in + vi.l4));
	assert_int_equal(rt_be16(o.buf + vo.l4 + 4), 8 + CPN_HDR_LEN);
	assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	if (csum_zero)
		assert_int_equal(rt_be16(o.buf + vo.l4 + 6), 0);
	else
		assert_int_not_equal(rt_be16(o.buf + vo.l4 + 6), 0);

	/* cpn: the request's own fields, type BUSY, its status, no AUTH. */
	rt_decode(in, &vi, &mi);
	rt_decode(o.buf, &vo, &mo);
	assert_int_equal(mo.type, CPN_T_BUSY);
	assert_int_equal(mo.status, reason);
	assert_int_equal(mo.flags, mi.flags & ~CPN_F_AUTH);
	mi.type = mo.type;
	mi.status = mo.status;
	mi.flags = mo.flags;
	assert_memory_equal(&mo, &mi, sizeof(mi));

	/* Nothing steered, nothing counted against a node. */
	for (__u16 id = 1; id <= 3; id++) {
		assert_int_equal(router_node_stats(r, id, &ns1[id]), 0);
		assert_int_equal(ns1[id].requests, ns0[id].requests);
		assert_int_equal(r->maps.state[id].outstanding, out0[id]);
	}
}

/* A request as a real client would send it: signed, with a payload, some
 * header fields set, a TTL that the BUSY must not inherit.
 */
static size_t busy_request(int family, int vlan, bool csum_zero, __u8 *in)
{
	struct cpn_pkt s;
	__u8 payload[200];

	cpn_pkt_default(&s, family);
	s.vlan = vlan;
	s.udp_csum_zero = csum_zero;
	s.ttl = 9;
	s.auth = true;
	memcpy(s.key, tenant_key, sizeof(s.key));
	s.msg.flags = CPN_F_STICKY;
	s.msg.session_key = 0x00c0ffee;
	s.msg.class = 5;
	s.msg.request_id = 0xfedcba9876543210ULL;
	cpn_pkt_fill(payload, sizeof(payload), 99);
	s.payload = payload;
	s.payload_len = sizeof(payload);
	return cpn_pkt_build(&s, in, CPN_PKT_MAX);
}

static void test_busy_wait_turns_request_around_trimmed(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		for (int pol = 0; pol < 2; pol++) {
			int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
			__u8 in[CPN_PKT_MAX];
			size_t len;

			print_message("# BUSY wait: %s vlan %d %s\n", RT_FAMILY_STR(family), vlan,
				      pol ? "least" : "p2c");
			assert_int_equal(
			    t_topology(r, family, pol ? CPN_POL_LEAST : CPN_POL_P2C, 3), 0);
			assert_int_equal(
			    t_add_tenant(r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, tenant_key), 0);
			set_limits(r, 1000, 0);
			/* (50 + 1) x 100 µs = 5100 µs > 1000 µs on every node. */
			for (__u16 id = 1; id <= 3; id++)
				t_report(r, id, 50, 0, 1, 100, 0);
			len = busy_request(family, vlan, false, in);
			check_busy(r, in, len, CPN_BUSY_WAIT, false);
			if (family == CPN_AF_INET) {
				len = busy_request(family, vlan, true, in);
				check_busy(r, in, len, CPN_BUSY_WAIT, true);
			}
		}
	}
}

/* est_us at max_wait_us is admitted; one queued request more is not. */
static void test_busy_wait_threshold_is_inclusive(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 1), 0);
	set_limits(r, 1000, 0);
	cpn_pkt_default(&s, CPN_AF_INET);
	len = cpn_pkt_build(&s, in, sizeof(in));
	t_report(r, 1, 8, 1, 1, 100, 0); /* (8 + 1 + 1) x 100 = 1000 */
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 1);
	t_report(r, 1, 5, 0, 1, 100, 500); /* 500 + 600 = 1100: path counts */
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_TX);
	t_report(r, 1, 9, 1, 1, 100, 0); /* 1100 */
	check_busy(r, in, len, CPN_BUSY_WAIT, false);
}

static void test_busy_queue_when_every_candidate_queue_is_full(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		for (int pol = 0; pol < 2; pol++) {
			int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
			__u8 in[CPN_PKT_MAX];
			size_t len;

			assert_int_equal(
			    t_topology(r, family, pol ? CPN_POL_LEAST : CPN_POL_P2C, 3), 0);
			assert_int_equal(
			    t_add_tenant(r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, tenant_key), 0);
			set_limits(r, 0, 10);
			t_report(r, 1, 10, 0, 8, 1, 0);
			t_report(r, 2, 12, 0, 8, 1, 0);
			t_report(r, 3, 30, 0, 8, 1, 0);
			len = busy_request(family, vlan, false, in);
			check_busy(r, in, len, CPN_BUSY_QUEUE, false);
		}
	}
}

/* The queue the router sees counts what it steered since the last report. */
static void test_busy_queue_counts_requests_steered_since_last_report(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET6, CPN_POL_LEAST, 2), 0);
	set_limits(r, 0, 3);
	cpn_pkt_default(&s, CPN_AF_INET6);
	for (int i = 0; i < 6; i++)
		assert_in_range(rt_steer(r, &s), 1, 2);
	len = cpn_pkt_build(&s, in, sizeof(in));
	check_busy(r, in, len, CPN_BUSY_QUEUE, false);
	/* A report clears the count. */
	t_report(r, 2, 0, 0, 1, 100, 0);
	assert_int_equal(rt_steer(r, &s), 2);
}

enum no_node { ALL_ADMIN_DOWN, ALL_ADMIN_DRAIN, NO_NODES, NO_NODE_KINDS };

static void test_busy_no_node_when_no_node_is_admin_up(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		for (int k = 0; k < NO_NODE_KINDS; k++) {
			int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
			__u8 in[CPN_PKT_MAX];
			size_t len;

			assert_int_equal(t_topology(r, family, CPN_POL_P2C, 3), 0);
			assert_int_equal(
			    t_add_tenant(r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, tenant_key), 0);
			for (__u16 id = 1; id <= 3; id++) {
				if (k == ALL_ADMIN_DOWN)
					assert_int_equal(
					    cpn_maps_node_admin(&r->maps, id, 0, CPN_ADMIN_UP), 0);
				else if (k == ALL_ADMIN_DRAIN)
					assert_int_equal(
					    cpn_maps_node_admin(&r->maps, id, CPN_ADMIN_DRAIN, 0),
					    0);
			}
			if (k == NO_NODES)
				assert_int_equal(
				    t_add_service(r, T_SVC, family, CPN_POL_P2C, NULL, 0), 0);
			len = busy_request(family, vlan, false, in);
			check_busy(r, in, len, CPN_BUSY_NO_NODE, false);
		}
	}
}

/* Liveness from the traffic, in the real program: a node that leaves the
 * requests steered to it unanswered past its deadline is avoided although
 * the other is busier, until a REPLY of it comes; a LOAD is no answer.
 */
static void test_unanswered_node_is_avoided_until_it_answers(void **state)
{
	struct router *r = *state;

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX], rep[CPN_PKT_MAX];
		size_t len, rlen;
		int to1 = 0;

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 2), 0);
		t_report(r, 2, 6, 0, 1, 100, 0); /* node 2 busier: p2c prefers node 1 */
		r->maps.state[1].unanswered = r->maps.state[2].unanswered = 0;
		r->silent_nodes = 1;
		cpn_pkt_default(&s, family);
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 1);
		assert_int_equal(r->maps.state[1].unanswered, 1);
		/* past its deadline (path 0 + 2 ms + 2 x 100 µs) */
		usleep(5000);
		t_report(r, 1, 0, 0, 1, 100, 0); /* a heartbeat: still suspect */
		assert_int_equal(r->maps.state[1].unanswered, 1);
		for (int i = 0; i < 32; i++) {
			r->maps.state[2].unanswered = 0; /* node 2 answers */
			rt_run(r, in, len, &o);
			assert_int_equal(o.act, XDP_PASS);
			assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 2);
		}
		/* node 1's REPLY: it answers, and is chosen again */
		cpn_pkt_reply(&s, family, 1);
		rlen = cpn_pkt_build(&s, rep, sizeof(rep));
		rt_run(r, rep, rlen, &o);
		rt_assert_counted(&o, (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END});
		assert_int_equal(r->maps.state[1].unanswered, 0);
		for (int i = 0; i < 32; i++) {
			r->maps.state[1].unanswered = 0;
			r->maps.state[2].unanswered = 0;
			rt_run(r, in, len, &o);
			assert_int_equal(o.act, XDP_PASS);
			to1 += cpn_pkt_steered_node(o.buf, o.len) == 1;
		}
		assert_true(to1 > 16);
		r->silent_nodes = 0;
	}
}

/* `liveness: reports`: this router does not see the service's answers; its
 * requests count as load (outstanding), not as unanswered, and no node of
 * it turns suspect however long they go unanswered.
 */
static void test_liveness_reports_service_counts_no_unanswered(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 2), 0);
	assert_int_equal(t_service_flags(r, T_SVC, CPN_SVC_LIVENESS_REPORTS, 0), 0);
	r->maps.state[1].unanswered = r->maps.state[2].unanswered = 0;
	r->silent_nodes = 1;
	cpn_pkt_default(&s, CPN_AF_INET);
	len = cpn_pkt_build(&s, in, sizeof(in));
	for (int i = 0; i < 40; i++) {
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		if (i == 20)
			usleep(3000); /* past any deadline */
	}
	assert_int_equal(r->maps.state[1].unanswered, 0);
	assert_int_equal(r->maps.state[2].unanswered, 0);
	assert_true(r->maps.state[1].outstanding + r->maps.state[2].outstanding == 40);
	r->silent_nodes = 0;
}

/* Every node stale and known to leave requests unanswered (they died): the
 * fallback has no node that may be alive, and the client gets BUSY
 * no_node at once rather than silence.
 */
static void test_busy_no_node_when_every_node_is_gone(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 3), 0);
		assert_int_equal(t_add_tenant(r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, tenant_key),
				 0);
		for (__u16 id = 1; id <= 3; id++) {
			struct cpn_node *n = &r->maps.state[id];

			t_make_stale(r, id);
			n->unanswered = 4;
			n->deadline_us = 1000;
			n->since_ns = n->last_report_ns + 1000000; /* after its last report */
		}
		r->silent_nodes = 1;
		len = busy_request(family, vlan, false, in);
		check_busy(r, in, len, CPN_BUSY_NO_NODE, false);
		/* one of them reports again: it may be alive, and is tried */
		{
			struct rt_out o;

			r->maps.state[2].last_report_ns = cpn_now_ns();
			r->maps.state[2].since_ns = cpn_now_ns() - CPN_SUSPECT_RETRY_NS - 1000000;
			rt_run(r, in, len, &o);
			assert_int_equal(o.act, XDP_PASS);
			assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 2);
		}
		r->silent_nodes = 0;
	}
}

/* ---- tenants: ACL and rate ------------------------------------------- */

static void test_unknown_tenant_is_dropped_by_acl(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_P2C, 2), 0);
		cpn_pkt_default(&s, rt_framings[i].family);
		s.vlan = rt_framings[i].vlan;
		s.msg.tenant_id = 4242;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_ACL);
		/* A tenant removed is unknown from then on. */
		s.msg.tenant_id = T_TENANT;
		len = cpn_pkt_build(&s, in, sizeof(in));
		assert_in_range(rt_steer(r, &s), 1, 2);
		assert_int_equal(cpn_maps_del_tenant(&r->maps, T_TENANT), 0);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_ACL);
	}
}

static void test_tenant_not_allowed_on_service_is_dropped_by_acl(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_P2C, 2), 0);
		/* Allowed on services 0, 2 and 255: the neighbours of 1. */
		assert_int_equal(t_add_tenant(r, 43, (__u16[]){0, 2, 255}, 3, 0, 0, NULL), 0);
		cpn_pkt_default(&s, rt_framings[i].family);
		s.vlan = rt_framings[i].vlan;
		s.msg.tenant_id = 43;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_ACL);
		/* Allowed on 1 too: passes. */
		assert_int_equal(t_add_tenant(r, 43, (__u16[]){0, 1, 2, 255}, 4, 0, 0, NULL), 0);
		assert_in_range(rt_steer(r, &s), 1, 2);
	}
}

/* A service open to every tenant (CPN_SVC_OPEN, set by the configuration
 * where only `any` names it, with no key and no rate) is admitted without
 * looking a tenant up: with no tenant entry at all, requests of any tenant
 * id are steered. The same service without the flag is refused by the ACL.
 */
static void test_open_service_skips_the_tenant_lookups(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_P2C, 2), 0);
		assert_int_equal(t_service_flags(r, T_SVC, CPN_SVC_OPEN, 0), 0);
		assert_int_equal(cpn_maps_del_tenant(&r->maps, T_TENANT), 0);
		cpn_pkt_default(&s, rt_framings[i].family);
		s.vlan = rt_framings[i].vlan;
		for (int k = 0; k < 2; k++) {
			s.msg.tenant_id = k ? T_TENANT : 4242;
			assert_in_range(rt_steer(r, &s), 1, 2);
		}
		assert_int_equal(t_service_flags(r, T_SVC, 0, CPN_SVC_OPEN), 0);
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_ACL);
	}
}

/* The `any` tenant: a request whose tenant is unknown, or not allowed the
 * service, is judged by it; a tenant allowed the service keeps its own
 * terms. Its key is one key for all it admits, its rate one shared budget.
 */
static void test_any_tenant_opens_a_service_to_every_tenant(void **state)
{
	struct router *r = *state;
	enum { BURST = 3 };

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 2), 0);
		assert_int_equal(t_add_tenant(r, 43, (__u16[]){2}, 1, 0, 0, NULL), 0);
		cpn_pkt_default(&s, family);
		for (int k = 0; k < 2; k++) {
			s.msg.tenant_id = k ? 43 : 4242;
			len = cpn_pkt_build(&s, in, sizeof(in));
			rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_ACL);
		}
		/* `any` on another service only: still refused. */
		assert_int_equal(t_add_tenant(r, CPN_TENANT_ANY, (__u16[]){2}, 1, 0, 0, NULL), 0);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_ACL);
		/* `any` on this service: the unknown tenant and 43 both pass. */
		assert_int_equal(t_add_tenant(r, CPN_TENANT_ANY, (__u16[]){T_SVC}, 1, 0, 0, NULL),
				 0);
		for (int k = 0; k < 2; k++) {
			s.msg.tenant_id = k ? 43 : 4242;
			assert_in_range(rt_steer(r, &s), 1, 2);
		}
		/* With a key and a rate: unsigned is refused, signed with the
		 * `any` key passes, and all it admits share one budget.
		 */
		assert_int_equal(
		    t_add_tenant(r, CPN_TENANT_ANY, (__u16[]){T_SVC}, 1, 1, BURST, tenant_key), 0);
		s.msg.tenant_id = 4242;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_AUTH);
		s.auth = true;
		memcpy(s.key, tenant_key, sizeof(s.key));
		for (int i = 0; i < BURST; i++) {
			s.msg.tenant_id = 5000 + (__u32)i;
			assert_in_range(rt_steer(r, &s), 1, 2);
		}
		s.msg.tenant_id = 6000;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_RATE);
		/* The tenant allowed the service keeps its own terms: no key, no
		 * limit.
		 */
		s.auth = false;
		s.msg.tenant_id = T_TENANT;
		for (int i = 0; i < 2 * BURST; i++)
			assert_in_range(rt_steer(r, &s), 1, 2);
		assert_int_equal(cpn_maps_del_tenant(&r->maps, CPN_TENANT_ANY), 0);
		assert_int_equal(cpn_maps_del_tenant(&r->maps, 43), 0);
	}
}

/* Rate 1/s, burst B: B requests pass at once, the next ones are dropped,
 * and another tenant is not affected.
 */
static void test_tenant_rate_limit_passes_burst_then_drops(void **state)
{
	struct router *r = *state;
	enum { BURST = 10 };

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 2), 0);
		assert_int_equal(t_add_tenant(r, 7, (__u16[]){T_SVC}, 1, 1, BURST, NULL), 0);
		cpn_pkt_default(&s, family);
		s.msg.tenant_id = 7;
		for (int i = 0; i < BURST; i++) {
			s.msg.request_id = (__u64)i;
			assert_in_range(rt_steer(r, &s), 1, 2);
		}
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_RATE);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_RATE);
		/* The default tenant has no limit. */
		s.msg.tenant_id = T_TENANT;
		for (int i = 0; i < 3 * BURST; i++)
			assert_in_range(rt_steer(r, &s), 1, 2);
	}
}

/* The bucket refills at the tenant's rate: after one interval, one more. */
static void test_tenant_rate_limit_refills_at_its_rate(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 2), 0);
	/* 2/s: 500 ms between tokens, far more than the runs below take. */
	assert_int_equal(t_add_tenant(r, 7, (__u16[]){T_SVC}, 1, 2, 3, NULL), 0);
	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.tenant_id = 7;
	for (int i = 0; i < 3; i++)
		assert_in_range(rt_steer(r, &s), 1, 2);
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_RATE);
	usleep(600 * 1000); /* 1.2 intervals */
	assert_in_range(rt_steer(r, &s), 1, 2);
}

/* ---- tenant authentication ------------------------------------------ */

static void keyed_tenant(struct router *r, int family)
{
	assert_int_equal(t_topology(r, family, CPN_POL_P2C, 2), 0);
	assert_int_equal(t_add_tenant(r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, tenant_key), 0);
}

static void signed_spec(struct cpn_pkt *s, int family, int vlan, const __u64 key[2])
{
	cpn_pkt_default(s, family);
	s->vlan = vlan;
	s->auth = true;
	memcpy(s->key, key, sizeof(s->key));
	s->msg.session_key = 77;
}

/* The correct tag passes, and the forwarded request still carries a tag
 * that the next hop can check (TAGGED is not signed).
 */
static void test_tenant_key_accepts_correct_tag(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		struct cpn_pkt s;
		struct cpn_pkt_view v;
		struct cpn_hdr h;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		__u64 tag;
		size_t len;

		keyed_tenant(r, rt_framings[i].family);
		signed_spec(&s, rt_framings[i].family, rt_framings[i].vlan, tenant_key);
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		rt_assert_counted(&o, (int[]){CPN_STAT_REQ_STEERED, CPN_STAT_TX_KERNEL, RT_END});
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &v), 0);
		memcpy(&h, o.buf + v.pay, sizeof(h));
		memcpy(&tag, o.buf + v.pay + CPN_HDR_LEN, sizeof(tag));
		assert_true(h.flags & htons(CPN_F_AUTH));
		assert_true(h.flags & htons(CPN_F_TAGGED));
		assert_true(tag == cpn_tag_request(tenant_key, &h));
		assert_memory_equal(o.buf + v.pay + CPN_HDR_LEN, in + v.pay + CPN_HDR_LEN,
				    CPN_TAG_LEN);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));

		/* A hop downstream gets it TAGGED: the signature still holds. */
		s.msg.flags = CPN_F_TAGGED;
		s.msg.node_id = ntohs(h.node_id);
		s.msg.hops = 1;
		s.msg.router_ts = ntohl(h.router_ts);
		t_hop_tag(&s);
		len = cpn_pkt_build(&s, in, sizeof(in));
		assert_memory_equal(in + v.pay + CPN_HOP_TAG_OFF, o.buf + v.pay + CPN_HOP_TAG_OFF,
				    4);
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), ntohs(h.node_id));
		rt_assert_counted(&o, (int[]){CPN_STAT_REQ_TAG_HONOURED, CPN_STAT_REQ_STEERED,
					      CPN_STAT_TX_KERNEL, RT_END});
	}
}

enum bad_auth { NO_AUTH, WRONG_KEY, TAMPERED_ID, TAMPERED_TENANT_FIELDS, BAD_AUTH_KINDS };

static void test_tenant_key_rejects_wrong_or_missing_tag(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		for (int k = 0; k < BAD_AUTH_KINDS; k++) {
			struct cpn_pkt s;
			struct cpn_pkt_view v;
			__u8 in[CPN_PKT_MAX];
			size_t len;

			keyed_tenant(r, rt_framings[i].family);
			signed_spec(&s, rt_framings[i].family, rt_framings[i].vlan,
				    k == WRONG_KEY ? other_key : tenant_key);
			if (k == NO_AUTH) {
				/* No AUTH flag, no tag: a payload where the tag would be. */
				s.auth = false;
				s.payload = "12345678";
				s.payload_len = 8;
			}
			len = cpn_pkt_build(&s, in, sizeof(in));
			assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
			if (k == TAMPERED_ID)
				in[v.pay + 23] ^= 1; /* request_id, signed */
			if (k == TAMPERED_TENANT_FIELDS)
				in[v.pay + 15] ^= 1; /* session_key, signed */
			cpn_pkt_fix_csums(in, len);
			rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_AUTH);
		}
	}
}

/* Fields outside the signed 24 bytes (hop-owned) may change: still valid. */
static void test_tenant_tag_covers_only_request_identity(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	struct cpn_pkt_view v;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	keyed_tenant(r, CPN_AF_INET);
	signed_spec(&s, CPN_AF_INET, 0, tenant_key);
	len = cpn_pkt_build(&s, in, sizeof(in));
	assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
	in[v.pay + 26] = 2;	/* hops */
	in[v.pay + 27] = 7;	/* class */
	in[v.pay + 31] ^= 0xff; /* router_ts */
	cpn_pkt_fix_csums(in, len);
	{
		struct rt_out o;

		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_in_range(cpn_pkt_steered_node(o.buf, o.len), 1, 2);
	}
}

/* ---- other refusals -------------------------------------------------- */

/* A node whose address is of the other family than the VIP's cannot take
 * the request: dropped, counted, not rewritten.
 */
static void test_node_of_other_family_than_vip_is_dropped(void **state)
{
	struct router *r = *state;

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 1), 0);
		assert_int_equal(t_add_node(r, 1, f ? CPN_AF_INET : CPN_AF_INET6, 100), 0);
		cpn_pkt_default(&s, family);
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_FAMILY);
		assert_int_equal(r->maps.state[1].outstanding, 0);
	}
}

/* A service served by cpn-fwd goes to cpn-fwd's AF_XDP socket on the RX
 * queue; with no socket bound there (cpn-fwd stopped, as in this test) the
 * XDP router steers the request itself instead of losing it: it is tagged
 * and rewritten to a node like any other, and no hand-off is counted.
 */
static void test_dpdk_service_without_socket_is_steered_by_xdp(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		struct cpn_pkt s;
		struct cpn_pkt_view v;
		struct cpn_hdr h;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_P2C, 2), 0);
		assert_int_equal(t_service_flags(r, T_SVC, CPN_SVC_DPDK, 0), 0);
		cpn_pkt_default(&s, rt_framings[i].family);
		s.vlan = rt_framings[i].vlan;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		rt_assert_counted(&o, (int[]){CPN_STAT_REQ_STEERED, CPN_STAT_TX_KERNEL, RT_END});
		assert_int_equal(rt_delta(&o, CPN_STAT_REQ_DPDK), 0);
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &v), 0);
		memcpy(&h, o.buf + v.pay, sizeof(h));
		assert_true(h.flags & htons(CPN_F_TAGGED));
		assert_true(h.node_id == htons(1) || h.node_id == htons(2));
	}
}

/* An inactive service takes no requests. */
static void test_inactive_service_drops_requests(void **state)
{
	struct router *r = *state;
	struct cpn_service svc;
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 2), 0);
	assert_int_equal(cpn_maps_get_service(&r->maps, T_SVC, &svc), 0);
	svc.flags &= (__u16)~CPN_SVC_ACTIVE;
	assert_int_equal(cpn_maps_set_service(&r->maps, T_SVC, &svc), 0);
	cpn_pkt_default(&s, CPN_AF_INET);
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_BAD_SERVICE);
}

/* ---- per-service counters -------------------------------------------- */

static void svc_delta(struct router *r, const struct cpn_svc_stats *a, __u64 requests, __u64 busy,
		      __u64 refused, __u64 replies, __u64 node_busy)
{
	struct cpn_svc_stats b;

	assert_int_equal(cpn_maps_svc_stats(&r->maps, T_SVC, &b), 0);
	assert_int_equal(b.requests - a->requests, requests);
	assert_int_equal(cpn_svc_busy_total(&b) - cpn_svc_busy_total(a), busy);
	assert_int_equal(cpn_svc_refused_total(&b) - cpn_svc_refused_total(a), refused);
	assert_int_equal(b.replies - a->replies, replies);
	assert_int_equal(b.node_busy - a->node_busy, node_busy);
}

/* Each outcome of a request or reply of a known service is counted once
 * for it; defects found before the service is known are not.
 */
static void test_service_counters_follow_each_outcome(void **state)
{
	struct router *r = *state;

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_svc_stats a;
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 2), 0);
		assert_int_equal(t_add_tenant(r, 7, (__u16[]){T_SVC}, 1, 1, 1, NULL), 0);

		assert_int_equal(cpn_maps_svc_stats(&r->maps, T_SVC, &a), 0);
		cpn_pkt_default(&s, family);
		assert_in_range(rt_steer(r, &s), 1, 2);
		svc_delta(r, &a, 1, 0, 0, 0, 0);

		/* Refusals: ACL, rate, hops. */
		assert_int_equal(cpn_maps_svc_stats(&r->maps, T_SVC, &a), 0);
		s.msg.tenant_id = 4242;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_ACL);
		s.msg.tenant_id = 7;
		assert_in_range(rt_steer(r, &s), 1, 2);
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_RATE);
		s.msg.tenant_id = T_TENANT;
		s.msg.hops = 4;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_HOPS);
		svc_delta(r, &a, 1, 0, 3, 0, 0);
		/* ... each under its own reason. */
		{
			struct cpn_svc_stats b;

			assert_int_equal(cpn_maps_svc_stats(&r->maps, T_SVC, &b), 0);
			for (int k = 0; k < CPN_REFUSE_MAX; k++)
				assert_int_equal(b.refused[k] - a.refused[k],
						 k == CPN_REFUSE_ACL || k == CPN_REFUSE_RATE ||
							 k == CPN_REFUSE_HOPS
						     ? 1
						     : 0);
		}

		/* Not counted: the request never named the service right. */
		assert_int_equal(cpn_maps_svc_stats(&r->maps, T_SVC, &a), 0);
		s.msg.hops = 0;
		s.msg.service_id = 2;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_BAD_SERVICE);
		svc_delta(r, &a, 0, 0, 0, 0, 0);

		/* BUSY sent. */
		s.msg.service_id = T_SVC;
		set_limits(r, 10, 0);
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_TX);
		svc_delta(r, &a, 0, 1, 0, 0, 0);
		{
			struct cpn_svc_stats b;

			assert_int_equal(cpn_maps_svc_stats(&r->maps, T_SVC, &b), 0);
			assert_int_equal(b.busy[CPN_BUSY_WAIT - 1] - a.busy[CPN_BUSY_WAIT - 1], 1);
		}

		/* A reply and a node's BUSY forwarded. */
		assert_int_equal(cpn_maps_svc_stats(&r->maps, T_SVC, &a), 0);
		cpn_pkt_reply(&s, family, 1);
		s.msg.router_ts = t_now_us();
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		s.msg.type = CPN_T_BUSY;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		svc_delta(r, &a, 0, 0, 0, 1, 1);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, t_router_setup, t_router_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_busy_wait_turns_request_around_trimmed),
	    T(test_busy_wait_threshold_is_inclusive),
	    T(test_busy_queue_when_every_candidate_queue_is_full),
	    T(test_busy_queue_counts_requests_steered_since_last_report),
	    T(test_busy_no_node_when_no_node_is_admin_up),
	    T(test_unanswered_node_is_avoided_until_it_answers),
	    T(test_busy_no_node_when_every_node_is_gone),
	    T(test_liveness_reports_service_counts_no_unanswered),
	    T(test_unknown_tenant_is_dropped_by_acl),
	    T(test_tenant_not_allowed_on_service_is_dropped_by_acl),
	    T(test_any_tenant_opens_a_service_to_every_tenant),
	    T(test_open_service_skips_the_tenant_lookups),
	    T(test_tenant_rate_limit_passes_burst_then_drops),
	    T(test_tenant_rate_limit_refills_at_its_rate),
	    T(test_tenant_key_accepts_correct_tag),
	    T(test_tenant_key_rejects_wrong_or_missing_tag),
	    T(test_tenant_tag_covers_only_request_identity),
	    T(test_node_of_other_family_than_vip_is_dropped),
	    T(test_dpdk_service_without_socket_is_steered_by_xdp),
	    T(test_inactive_service_drops_requests),
	    T(test_service_counters_follow_each_outcome),
	};
#undef T
	return cmocka_run_group_tests_name("bpf_router_admission", tests, NULL, NULL);
}
