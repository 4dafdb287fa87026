// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Node choice as the XDP router makes it, through BPF_PROG_TEST_RUN: `least`
 * and `p2c` against the loads in cpn_node_state, path latency, session
 * affinity and its failover, and the all-stale fallback. Loads are set in
 * the mmaped node table with t_report(), which also clears `outstanding`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "router_test.h"

/* ---- least ----------------------------------------------------------- */

/* 200 requests, the least-loaded node moving from one to the next: each
 * goes to the least loaded. Loads are re-reported before each so that the
 * previous steer's `outstanding` does not count.
 */
static void test_least_always_picks_least_loaded_node(void **state)
{
	struct router *r = *state;
	static const __u32 load[4] = {6, 2, 9, 4};

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 4), 0);
		cpn_pkt_default(&s, family);
		for (int i = 0; i < 200; i++) {
			__u16 best = (__u16)(i % 4 + 1);

			for (__u16 id = 1; id <= 4; id++)
				t_report(r, id, id == best ? 1 : load[id - 1] + 1, 0, 1, 100, 0);
			s.msg.request_id = (__u64)i;
			s.sport = (__u16)(40000 + i);
			assert_int_equal(rt_steer(r, &s), best);
		}
	}
}

/* est_us counts inflight and capacity too: 4 queued on a node of capacity 8
 * wait less than 1 queued on a node of capacity 1.
 */
static void test_least_weighs_queue_by_capacity_and_inflight(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 3), 0);
	cpn_pkt_default(&s, CPN_AF_INET);
	for (int i = 0; i < 50; i++) {
		t_report(r, 1, 1, 0, 1, 100, 0); /* (1+0+1) x 100 / 1 = 200 */
		t_report(r, 2, 4, 3, 8, 100, 0); /* (4+3+1) x 100 / 8 = 100 */
		t_report(r, 3, 0, 2, 1, 100, 0); /* (0+2+1) x 100 / 1 = 300 */
		assert_int_equal(rt_steer(r, &s), 2);
	}
}

/* Equal load, different path: the near node wins, whichever it is. */
static void test_least_prefers_near_node_over_far_node_of_equal_load(void **state)
{
	struct router *r = *state;

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 2), 0);
		cpn_pkt_default(&s, family);
		for (int i = 0; i < 100; i++) {
			__u16 near = (__u16)(i % 2 + 1), far = (__u16)(3 - near);

			t_report(r, near, 3, 1, 2, 200, 150);
			t_report(r, far, 3, 1, 2, 200, 5000);
			assert_int_equal(rt_steer(r, &s), near);
		}
	}
}

/* Without re-reports each steer counts as outstanding on its node: equal
 * nodes are filled in turn, never one twice before all once.
 */
static void test_outstanding_spreads_requests_until_next_report(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	int seen[5] = {0};

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 4), 0);
	cpn_pkt_default(&s, CPN_AF_INET);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 4; i++) {
			__u16 id = rt_steer(r, &s);

			assert_in_range(id, 1, 4);
			seen[id]++;
			assert_int_equal(seen[id], round + 1);
		}
	}
	for (__u16 id = 1; id <= 4; id++)
		assert_int_equal(r->maps.state[id].outstanding, 3);
}

/* ---- p2c ------------------------------------------------------------- */

/* Six nodes: four live with different queues, one stale, one admin down.
 * Over 2000 requests (loads re-reported before each) the shares are ordered
 * by load and the dead nodes get none. Two distinct candidates of four,
 * lower est wins: 1/2, 1/3, 1/6 and 0 in expectation.
 */
static void test_p2c_share_follows_load_and_skips_dead_nodes(void **state)
{
	struct router *r = *state;
	static const __u32 queue[4] = {0, 4, 8, 16};
	enum { RUNS = 2000 };

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s;
		int count[7] = {0};

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 6), 0);
		assert_int_equal(cpn_maps_node_admin(&r->maps, 6, 0, CPN_ADMIN_UP), 0);
		cpn_pkt_default(&s, family);
		for (int i = 0; i < RUNS; i++) {
			/* Nodes listed in a shuffled order of load: 3, 1, 4, 2. */
			t_report(r, 3, queue[0], 0, 1, 100, 0);
			t_report(r, 1, queue[1], 0, 1, 100, 0);
			t_report(r, 4, queue[2], 0, 1, 100, 0);
			t_report(r, 2, queue[3], 0, 1, 100, 0);
			t_report(r, 5, 0, 0, 1, 100, 0);
			t_make_stale(r, 5);
			t_report(r, 6, 0, 0, 1, 100, 0);
			s.sport = (__u16)(1024 + i);
			count[rt_steer(r, &s)]++;
		}
		print_message("# p2c %s shares: q0 %d q4 %d q8 %d q16 %d stale %d down %d\n",
			      RT_FAMILY_STR(family), count[3], count[1], count[4], count[2],
			      count[5], count[6]);
		assert_int_equal(count[5], 0);
		assert_int_equal(count[6], 0);
		assert_true(count[3] > count[1]);
		assert_true(count[1] > count[4]);
		assert_true(count[4] > count[2]);
		/* Loose bounds around 1000, 667 and 333 (many sigma wide). */
		assert_in_range(count[3], 850, 1150);
		assert_in_range(count[1], 520, 810);
		assert_in_range(count[4], 220, 450);
	}
}

/* p2c with one live node of several: always that one. */
static void test_p2c_with_one_live_node_always_picks_it(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 4), 0);
	t_make_stale(r, 1);
	assert_int_equal(cpn_maps_node_admin(&r->maps, 2, 0, CPN_ADMIN_UP), 0);
	assert_int_equal(cpn_maps_node_admin(&r->maps, 4, CPN_ADMIN_DRAIN, 0), 0);
	cpn_pkt_default(&s, CPN_AF_INET);
	for (int i = 0; i < 100; i++) {
		t_report(r, 3, 50, 0, 1, 100, 0);
		s.sport = (__u16)(2000 + i);
		assert_int_equal(rt_steer(r, &s), 3);
	}
}

/* ---- affinity -------------------------------------------------------- */

static void sticky_spec(struct cpn_pkt *s, int family, __u32 session)
{
	cpn_pkt_default(s, family);
	s->msg.flags = CPN_F_STICKY;
	s->msg.session_key = session;
}

/* Make `best` the least loaded of nodes 1..n. */
static void favour(struct router *r, int n, __u16 best)
{
	for (__u16 id = 1; id <= n; id++)
		t_report(r, id, id == best ? 0 : 10, 0, 1, 100, 0);
}

static void test_sticky_session_stays_on_its_node_when_loads_change(void **state)
{
	struct router *r = *state;

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s, other;
		__u64 aff0;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 4), 0);
		/* Sessions are per service, not per family: fresh keys each round. */
		sticky_spec(&s, family, 0xabc001 + (__u32)f * 16);
		favour(r, 4, 2);
		assert_int_equal(rt_steer(r, &s), 2);
		aff0 = router_stat(r, CPN_STAT_REQ_AFFINITY);
		for (int i = 0; i < 50; i++) {
			favour(r, 4, (__u16)(i % 3 == 0 ? 1 : i % 3 == 1 ? 3 : 4));
			s.msg.request_id = (__u64)i;
			s.sport = (__u16)(30000 + i); /* the client may move: the session counts */
			assert_int_equal(rt_steer(r, &s), 2);
		}
		assert_int_equal(router_stat(r, CPN_STAT_REQ_AFFINITY), aff0 + 50);
		/* Another session follows the load. */
		sticky_spec(&other, family, 0xabc002 + (__u32)f * 16);
		favour(r, 4, 4);
		assert_int_equal(rt_steer(r, &other), 4);
		/* The same session key of another tenant is another session. */
		assert_int_equal(t_add_tenant(r, 77, (__u16[]){T_SVC}, 1, 0, 0, NULL), 0);
		other = s;
		other.msg.tenant_id = 77;
		favour(r, 4, 3);
		assert_int_equal(rt_steer(r, &other), 3);
	}
}

enum death { DIE_STALE, DIE_ADMIN_DOWN, DIE_REPORTED_DRAINING };

static void kill_node(struct router *r, __u16 id, enum death how)
{
	switch (how) {
	case DIE_STALE:
		t_make_stale(r, id);
		break;
	case DIE_ADMIN_DOWN:
		assert_int_equal(cpn_maps_node_admin(&r->maps, id, 0, CPN_ADMIN_UP), 0);
		break;
	case DIE_REPORTED_DRAINING:
		r->maps.state[id].report_flags |= CPN_REP_DRAINING;
		break;
	}
}

/* A session whose node dies moves to a live node and sticks there, also
 * when loads then favour another; and moves again when that one dies.
 */
static void check_session_failover(struct router *r, int family, enum death how)
{
	struct cpn_pkt s;

	assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 4), 0);
	/* A session per family: sessions are per service, whatever the family. */
	sticky_spec(&s, family, 0x5e55 + (__u32)family);
	favour(r, 4, 1);
	assert_int_equal(rt_steer(r, &s), 1);
	favour(r, 4, 3);
	assert_int_equal(rt_steer(r, &s), 1);

	/* Node 1 dies: the session goes to the best live node, 3... */
	favour(r, 4, 3);
	kill_node(r, 1, how);
	assert_int_equal(rt_steer(r, &s), 3);
	/* ...and stays there while loads favour 4, even once 1 is back. */
	for (int i = 0; i < 20; i++) {
		favour(r, 4, 4);
		kill_node(r, 1, how);
		assert_int_equal(rt_steer(r, &s), 3);
	}
	if (how == DIE_ADMIN_DOWN)
		assert_int_equal(cpn_maps_node_admin(&r->maps, 1, CPN_ADMIN_UP, 0), 0);
	favour(r, 4, 1);
	assert_int_equal(rt_steer(r, &s), 3);

	/* Node 3 dies too: on to the best live one, 2, and sticks. */
	favour(r, 4, 2);
	kill_node(r, 3, how);
	assert_int_equal(rt_steer(r, &s), 2);
	favour(r, 4, 4);
	assert_int_equal(rt_steer(r, &s), 2);
}

static void test_sticky_session_moves_when_node_goes_stale_and_sticks(void **state)
{
	check_session_failover(*state, CPN_AF_INET, DIE_STALE);
	check_session_failover(*state, CPN_AF_INET6, DIE_STALE);
}

static void test_sticky_session_moves_when_node_admin_down_and_sticks(void **state)
{
	check_session_failover(*state, CPN_AF_INET, DIE_ADMIN_DOWN);
	check_session_failover(*state, CPN_AF_INET6, DIE_ADMIN_DOWN);
}

static void test_sticky_session_moves_when_node_reports_draining(void **state)
{
	check_session_failover(*state, CPN_AF_INET, DIE_REPORTED_DRAINING);
	check_session_failover(*state, CPN_AF_INET6, DIE_REPORTED_DRAINING);
}

/* A session key without STICKY is only a hash input: requests follow load. */
static void test_session_key_without_sticky_flag_follows_load(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 4), 0);
	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.session_key = 0x5e55;
	for (int i = 0; i < 20; i++) {
		__u16 best = (__u16)(i % 4 + 1);

		favour(r, 4, best);
		assert_int_equal(rt_steer(r, &s), best);
	}
	assert_int_equal(router_stat(r, CPN_STAT_REQ_AFFINITY), 0);
}

/* STICKY with session 0 has no session: requests follow load. */
static void test_sticky_flag_with_session_zero_follows_load(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;

	assert_int_equal(t_topology(r, CPN_AF_INET6, CPN_POL_LEAST, 3), 0);
	sticky_spec(&s, CPN_AF_INET6, 0);
	for (int i = 0; i < 12; i++) {
		__u16 best = (__u16)(i % 3 + 1);

		favour(r, 3, best);
		assert_int_equal(rt_steer(r, &s), best);
	}
	assert_int_equal(router_stat(r, CPN_STAT_REQ_AFFINITY), 0);
}

/* ---- all stale: the Maglev fallback ---------------------------------- */

/* No live node but nodes administratively up: requests still go out, over
 * Maglev of the up nodes, the same flow to the same node, never to a node
 * that is down.
 */
static void test_all_stale_nodes_fall_back_to_maglev_over_up_nodes(void **state)
{
	struct router *r = *state;

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		int used[5] = {0};

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 4), 0);
		for (__u16 id = 1; id <= 4; id++)
			t_make_stale(r, id);
		assert_int_equal(cpn_maps_node_admin(&r->maps, 4, 0, CPN_ADMIN_UP), 0);
		for (int flow = 0; flow < 64; flow++) {
			struct cpn_pkt s;
			struct rt_out o;
			__u8 in[CPN_PKT_MAX];
			size_t len;
			__u16 first = 0;

			cpn_pkt_default(&s, family);
			s.sport = (__u16)(5000 + flow * 7);
			len = cpn_pkt_build(&s, in, sizeof(in));
			for (int rep = 0; rep < 3; rep++) {
				__u16 id;

				rt_run(r, in, len, &o);
				assert_int_equal(o.act, XDP_PASS);
				id = cpn_pkt_steered_node(o.buf, o.len);
				assert_in_range(id, 1, 3);
				if (!first)
					first = id;
				assert_int_equal(id, first);
				rt_assert_counted(&o, (int[]){CPN_STAT_REQ_FALLBACK,
							      CPN_STAT_REQ_STEERED,
							      CPN_STAT_TX_KERNEL, RT_END});
			}
			used[first]++;
		}
		/* 64 flows over three nodes: each gets some. */
		for (__u16 id = 1; id <= 3; id++)
			assert_true(used[id] > 0);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, t_router_setup, t_router_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_least_always_picks_least_loaded_node),
	    T(test_least_weighs_queue_by_capacity_and_inflight),
	    T(test_least_prefers_near_node_over_far_node_of_equal_load),
	    T(test_outstanding_spreads_requests_until_next_report),
	    T(test_p2c_share_follows_load_and_skips_dead_nodes),
	    T(test_p2c_with_one_live_node_always_picks_it),
	    T(test_sticky_session_stays_on_its_node_when_loads_change),
	    T(test_sticky_session_moves_when_node_goes_stale_and_sticks),
	    T(test_sticky_session_moves_when_node_admin_down_and_sticks),
	    T(test_sticky_session_moves_when_node_reports_draining),
	    T(test_session_key_without_sticky_flag_follows_load),
	    T(test_sticky_flag_with_session_zero_follows_load),
	    T(test_all_stale_nodes_fall_back_to_maglev_over_up_nodes),
	};
#undef T
	return cmocka_run_group_tests_name("bpf_router_sched", tests, NULL, NULL);
}
