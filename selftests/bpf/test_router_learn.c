// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What the router learns, through BPF_PROG_TEST_RUN: load and path latency
 * from REPLYs, LOAD heartbeats and PROBE_ACKs to the control port, DRAINING,
 * reports from unknown sources, and node keys (a spoofed report teaches
 * nothing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "router_test.h"

#define MS_NS 1000000ULL

static const __u64 node_key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
static const __u64 bad_key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0909ULL};

/* The EWMA the router keeps, written out: 7/8 old + 1/8 new, rounded. */
static __u32 ewma(__u32 old, __u32 sample)
{
	return (__u32)(((__u64)old * 7 + sample + 4) / 8);
}

/* floor(log2(us)), 0 for 0 and 1, capped to the last bucket. */
static int bucket_of(__u32 us)
{
	int b = 0;

	while (us > 1) {
		us >>= 1;
		b++;
	}
	return b < CPN_HIST_BUCKETS ? b : CPN_HIST_BUCKETS - 1;
}

/* Node 2 of three, alive but with nothing learned yet: no service time or
 * path sample, 5 requests outstanding, last report 100 ms ago.
 */
static void unlearned_node2(struct router *r, int family)
{
	struct cpn_node *n = &r->maps.state[2];

	assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
	n->queue_depth = 1;
	n->inflight = 1;
	n->capacity = 1;
	n->util = 0;
	n->svc_us = 0;
	n->path_us = 0;
	n->outstanding = 5;
	n->overclaim = 0;
	n->slot_cost = 0;
	n->report_flags = 0;
	n->last_report_ns = cpn_now_ns() - 100 * MS_NS;
}

static void set_node_key(struct router *r, __u16 id, const __u64 key[2])
{
	struct cpn_node_cfg c;

	assert_int_equal(cpn_maps_get_node(&r->maps, id, &c), 0);
	c.flags |= CPN_NODE_CFG_KEY;
	c.key[0] = key[0];
	c.key[1] = key[1];
	assert_int_equal(cpn_maps_set_node(&r->maps, id, &c, 100, CPN_ADMIN_UP), 0);
}

/* Run a report and return the clock around it: [*t0, *t1] in ns. */
static void run_timed(struct router *r, const __u8 *in, size_t len, struct rt_out *o, __u64 *t0,
		      __u64 *t1)
{
	*t0 = cpn_now_ns();
	rt_run(r, in, len, o);
	*t1 = cpn_now_ns();
}

static __u64 hist_total(const struct cpn_node_stats *ns)
{
	__u64 t = 0;

	for (int b = 0; b < CPN_HIST_BUCKETS; b++)
		t += ns->lat_hist[b];
	return t;
}

/* ---- REPLY ----------------------------------------------------------- */

/* The node's answer `s`, saying it holds `queue`, to a request steered
 * `ago_us` ago, while the router counts `unanswered` on a clock started
 * `since_ms` ago: what the router counts after it.
 */
static __u32 answer_leaves(struct router *r, struct cpn_pkt *s, __u16 queue, __u32 ago_us,
			   __u32 unanswered, __u64 since_ms)
{
	struct cpn_node *n = &r->maps.state[2];
	__u8 in[CPN_PKT_MAX];
	struct rt_out o;
	size_t len;

	s->msg.queue_depth = queue;
	s->msg.router_ts = t_now_us() - ago_us;
	n->unanswered = unanswered;
	n->since_ns = cpn_now_ns() - since_ms * MS_NS;
	len = cpn_pkt_build(s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	return n->unanswered;
}

static void check_reply_learning(struct router *r, int family, int vlan)
{
	struct cpn_node *n = &r->maps.state[2];
	struct cpn_node_stats ns0, ns1;
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	__u64 t0, t1;
	__u32 ts, lo, hi, old_path;
	size_t len;

	print_message("# reply learning: %s vlan %d\n", RT_FAMILY_STR(family), vlan);
	unlearned_node2(r, family);
	r->silent_nodes = 1;		    /* the harness leaves unanswered as the run did */
	n->unanswered = 3;		    /* steered here, not yet answered */
	n->since_ns = cpn_now_ns() - MS_NS; /* the first of them: after the one answered */
	cpn_pkt_reply(&s, family, 2);
	s.vlan = vlan;
	s.msg.queue_depth = 7;
	s.msg.inflight = 3;
	s.msg.capacity = 8;
	s.msg.util = 200;
	s.msg.worker_us = 300;
	ts = t_now_us() - 1500;
	s.msg.router_ts = ts;
	len = cpn_pkt_build(&s, in, sizeof(in));
	assert_int_equal(router_node_stats(r, 2, &ns0), 0);
	run_timed(r, in, len, &o, &t0, &t1);
	assert_int_equal(o.act, XDP_PASS);
	rt_assert_counted(&o, (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END});

	assert_int_equal(n->queue_depth, 7);
	assert_int_equal(n->inflight, 3);
	assert_int_equal(n->capacity, 8);
	assert_int_equal(n->util, 200);
	assert_int_equal(n->outstanding, 0);
	assert_in_range(n->last_report_ns, t0, t1);
	/* One of the three answered; the node still holds 10 (7 + 3): the two
	 * others wait, their clock from this answer on.
	 */
	assert_int_equal(n->unanswered, 2);
	assert_in_range(n->since_ns, t0, t1);
	/* 2 ms, the path known before this reply (none), and twice what the
	 * 10 it holds take on its 8 slots at 300 µs
	 */
	assert_int_equal(n->deadline_us, 2000 + 2 * (10 * 300 / 8));
	assert_int_equal(n->admin, CPN_ADMIN_UP);
	assert_int_equal(n->weight, 100);
	/* No mean service time yet: the reply's worker_us stands in. */
	assert_int_equal(n->svc_us, 300);
	assert_true(n->report_flags & CPN_REP_SVC_VALID);
	assert_false(n->report_flags & CPN_REP_DRAINING);
	/* est_us's cost of a queue slot: 300 µs over capacity 8, in 1/256 µs */
	assert_int_equal(n->slot_cost, 300 * 256 / 8);
	/* First path sample: (reply time - router_ts) - worker_us. */
	assert_true(n->report_flags & CPN_REP_PATH_VALID);
	lo = 1500 - 300;
	hi = (__u32)(t1 / 1000) - ts - 300;
	assert_in_range(n->path_us, lo, hi);

	assert_int_equal(router_node_stats(r, 2, &ns1), 0);
	assert_int_equal(ns1.replies, ns0.replies + 1);
	assert_int_equal(ns1.reports, ns0.reports);
	assert_int_equal(hist_total(&ns1), hist_total(&ns0) + 1);
	assert_int_equal(ns1.lat_hist[bucket_of(n->path_us)],
			 ns0.lat_hist[bucket_of(n->path_us)] + 1);

	/* A second reply: the path EWMA blends; the mean service time stays
	 * (a reply's worker_us only stands in until a mean is known).
	 */
	old_path = n->path_us;
	n->outstanding = 2;
	s.msg.queue_depth = 1;
	s.msg.worker_us = 900;
	ts = t_now_us() - 20000;
	s.msg.router_ts = ts;
	len = cpn_pkt_build(&s, in, sizeof(in));
	run_timed(r, in, len, &o, &t0, &t1);
	assert_int_equal(o.act, XDP_PASS);
	assert_int_equal(n->queue_depth, 1);
	assert_int_equal(n->outstanding, 0);
	assert_int_equal(n->unanswered, 1); /* it holds 4 (1 + 3) */
	assert_int_equal(n->svc_us, 300);
	lo = 20000 - 900;
	hi = (__u32)(t1 / 1000) - ts - 900;
	assert_in_range(n->path_us, ewma(old_path, lo), ewma(old_path, hi));
	assert_int_equal(router_node_stats(r, 2, &ns0), 0);
	assert_int_equal(hist_total(&ns0), hist_total(&ns1) + 1);
	{
		__u64 in_range = 0;

		for (int b = bucket_of(lo); b <= bucket_of(hi); b++)
			in_range += ns0.lat_hist[b] - ns1.lat_hist[b];
		assert_int_equal(in_range, 1);
	}

	/* A BUSY that leaves the node holding requests does likewise; one
	 * that leaves it holding none, as a REPLY, clears the count.
	 */
	n->unanswered = 3;
	s.msg.type = CPN_T_BUSY;
	s.msg.status = CPN_BUSY_OVERLOAD;
	s.msg.queue_depth = 1;
	s.msg.inflight = 0;
	len = cpn_pkt_build(&s, in, sizeof(in));
	run_timed(r, in, len, &o, &t0, &t1);
	assert_int_equal(o.act, XDP_PASS);
	assert_int_equal(n->unanswered, 1);
	assert_in_range(n->since_ns, t0, t1);
	s.msg.type = CPN_T_REPLY;
	s.msg.status = 0;
	s.msg.inflight = 0;
	assert_int_equal(answer_leaves(r, &s, 0, 1000, 3, 2), 0);
	/* The node holds 5, but the request answered was steered (its
	 * router_ts) 1 ms ago, after the clock started 5 ms ago: what was
	 * counted then is answered or lost, the count cleared. One steered
	 * before the clock started leaves the rest counted.
	 */
	assert_int_equal(answer_leaves(r, &s, 5, 1000, 2, 5), 0);
	assert_int_equal(answer_leaves(r, &s, 5, 8000, 2, 5), 1);
	r->silent_nodes = 0;
}

static void test_reply_updates_node_load_and_path_latency(void **state)
{
	for (int i = 0; i < RT_NFRAMINGS; i++)
		check_reply_learning(*state, rt_framings[i].family, rt_framings[i].vlan);
}

/* A router_ts from the future or from long ago is no path sample: the load
 * is still learned, the path and the histogram are left alone.
 */
static void test_reply_with_implausible_router_ts_learns_load_not_path(void **state)
{
	struct router *r = *state;
	struct cpn_node *n = &r->maps.state[2];
	static const __u32 back[] = {0xfffff000u /* 4 ms ahead */, 20000000 /* 20 s ago */};

	for (int i = 0; i < 2; i++) {
		struct cpn_node_stats ns0, ns1;
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 3), 0);
		t_report(r, 2, 1, 1, 1, 100, 321);
		cpn_pkt_reply(&s, CPN_AF_INET, 2);
		s.msg.queue_depth = 6;
		s.msg.router_ts = t_now_us() - back[i];
		len = cpn_pkt_build(&s, in, sizeof(in));
		assert_int_equal(router_node_stats(r, 2, &ns0), 0);
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_int_equal(n->queue_depth, 6);
		assert_int_equal(n->path_us, 321);
		assert_int_equal(router_node_stats(r, 2, &ns1), 0);
		assert_int_equal(hist_total(&ns1), hist_total(&ns0));
	}
}

/* A REPLY from a node's address but another port, or from an address that
 * is no node's, is not ours: passed untouched, nothing learned.
 */
static void test_reply_from_unknown_source_passes_untouched(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family;
		struct cpn_node before;
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		rt_node_snapshot(r, 2, &before);
		cpn_pkt_reply(&s, family, 2);
		s.vlan = rt_framings[i].vlan;
		s.msg.queue_depth = 99;
		s.sport = 9999;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);

		s.sport = T_PORT;
		s.src = family == CPN_AF_INET ? "10.1.0.200" : "fd01::200";
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);

		/* Node 2 claimed by node 3's address. */
		cpn_pkt_reply(&s, family, 2);
		s.vlan = rt_framings[i].vlan;
		s.src = family == CPN_AF_INET ? "10.1.0.3" : "fd01::3";
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
		assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
	}
}

/* A REPLY naming a service the router does not know is dropped unlearned. */
static void test_reply_for_unknown_service_is_dropped_unlearned(void **state)
{
	struct router *r = *state;
	struct cpn_node before;
	struct cpn_pkt s;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET6, CPN_POL_LEAST, 3), 0);
	rt_node_snapshot(r, 2, &before);
	cpn_pkt_reply(&s, CPN_AF_INET6, 2);
	s.msg.service_id = 9;
	s.msg.queue_depth = 50;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_BAD_SERVICE);
	assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
}

/* ---- LOAD and PROBE_ACK to the control port ------------------------- */

static void check_load_learning(struct router *r, int family, int vlan)
{
	struct cpn_node *n = &r->maps.state[2];
	struct cpn_node_stats ns0, ns1;
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	__u64 t0, t1;
	size_t len;

	print_message("# LOAD learning: %s vlan %d\n", RT_FAMILY_STR(family), vlan);
	/* A node that has sent nothing yet: its first mean is taken whole. */
	unlearned_node2(r, family);
	n->unanswered = 2;
	r->silent_nodes = 1;
	cpn_pkt_load(&s, family, 2);
	s.vlan = vlan;
	s.sport = 50123; /* heartbeats may come from any port of the node */
	s.msg.queue_depth = 4;
	s.msg.inflight = 1;
	s.msg.capacity = 4;
	s.msg.util = 128;
	s.msg.worker_us = 800;
	len = cpn_pkt_build(&s, in, sizeof(in));
	assert_int_equal(router_node_stats(r, 2, &ns0), 0);
	run_timed(r, in, len, &o, &t0, &t1);
	assert_int_equal(o.act, XDP_DROP);
	rt_assert_counted(&o, (int[]){CPN_STAT_LOAD_LEARNED, RT_END});
	assert_int_equal(n->queue_depth, 4);
	assert_int_equal(n->inflight, 1);
	assert_int_equal(n->capacity, 4);
	assert_int_equal(n->util, 128);
	assert_int_equal(n->outstanding, 0);
	assert_in_range(n->last_report_ns, t0, t1);
	assert_int_equal(n->unanswered, 2); /* a heartbeat is no answer */
	r->silent_nodes = 0;
	assert_int_equal(n->reported_us, 800);
	assert_int_equal(n->svc_us, 800);
	assert_true(n->report_flags & CPN_REP_SVC_VALID);
	assert_false(n->report_flags & CPN_REP_PATH_VALID); /* a LOAD has no echo */
	assert_int_equal(router_node_stats(r, 2, &ns1), 0);
	assert_int_equal(ns1.reports, ns0.reports + 1);
	assert_int_equal(ns1.replies, ns0.replies);
	assert_int_equal(hist_total(&ns1), hist_total(&ns0));

	/* The next mean is blended into the EWMA. */
	s.msg.worker_us = 1600;
	s.msg.queue_depth = 0;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_DROP);
	assert_int_equal(n->svc_us, ewma(800, 1600));
	assert_int_equal(n->queue_depth, 0);
	assert_int_equal(n->slot_cost, ewma(800, 1600) * 256 / 4);

	/* A new capacity alone is a new cost per slot. */
	s.msg.capacity = 2;
	s.msg.queue_depth = 3;
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(n->slot_cost, n->svc_us * 256 / 2);
}

static void test_load_to_control_port_is_learned_and_consumed(void **state)
{
	for (int i = 0; i < RT_NFRAMINGS; i++)
		check_load_learning(*state, rt_framings[i].family, rt_framings[i].vlan);
}

/* A LOAD that no configured node could have sent goes up to cpnctl
 * (elastic join) untouched, and changes no node's state.
 */
static void test_load_from_unknown_address_passes_untouched(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family,
		    other = family == CPN_AF_INET ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_node before;
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		rt_node_snapshot(r, 2, &before);
		/* Node 2's id from an address that is not node 2's. */
		cpn_pkt_load(&s, family, 2);
		s.vlan = rt_framings[i].vlan;
		s.msg.queue_depth = 1234;
		s.src = family == CPN_AF_INET ? "10.1.0.99" : "fd01::99";
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_LOAD_UNKNOWN);
		/* An id no node has (a worker asking to join). */
		cpn_pkt_load(&s, family, 99);
		s.vlan = rt_framings[i].vlan;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_LOAD_UNKNOWN);
		/* Node id 0. */
		cpn_pkt_load(&s, family, 2);
		s.vlan = rt_framings[i].vlan;
		s.msg.node_id = 0;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_LOAD_UNKNOWN);
		/* Node 2's address in the other family. */
		cpn_pkt_load(&s, other, 2);
		s.vlan = rt_framings[i].vlan;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_LOAD_UNKNOWN);
		assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
	}
}

/* A node that says DRAINING is not chosen until it says otherwise. */
static void test_load_with_draining_flag_keeps_node_from_being_chosen(void **state)
{
	struct router *r = *state;

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_pkt s, req;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		cpn_pkt_default(&req, family);
		/* Node 2 idle, the others busy: 2 is the choice... */
		t_report(r, 1, 5, 0, 1, 100, 0);
		t_report(r, 3, 5, 0, 1, 100, 0);
		assert_int_equal(rt_steer(r, &req), 2);
		/* ...until it reports DRAINING (still idle). */
		cpn_pkt_load(&s, family, 2);
		s.msg.flags = CPN_F_DRAINING;
		s.msg.capacity = 1;
		s.msg.worker_us = 100;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_DROP);
		rt_assert_counted(&o, (int[]){CPN_STAT_LOAD_LEARNED, RT_END});
		assert_true(r->maps.state[2].report_flags & CPN_REP_DRAINING);
		for (int i = 0; i < 50; i++) {
			t_report(r, 1, 5, 0, 1, 100, 0);
			t_report(r, 3, 5, 0, 1, 100, 0);
			req.sport = (__u16)(41000 + i);
			assert_int_not_equal(rt_steer(r, &req), 2);
		}
		/* Undrained by its next report. */
		s.msg.flags = 0;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_DROP);
		assert_false(r->maps.state[2].report_flags & CPN_REP_DRAINING);
		t_report(r, 1, 5, 0, 1, 100, 0);
		t_report(r, 3, 5, 0, 1, 100, 0);
		assert_int_equal(rt_steer(r, &req), 2);
	}
}

/* A REPLY with DRAINING has the same effect as a LOAD with it. */
static void test_reply_with_draining_flag_keeps_node_from_being_chosen(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s, req;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 2), 0);
	t_report(r, 1, 5, 0, 1, 100, 0);
	cpn_pkt_reply(&s, CPN_AF_INET, 2);
	s.msg.flags |= CPN_F_DRAINING;
	s.msg.capacity = 1;
	s.msg.router_ts = t_now_us();
	len = cpn_pkt_build(&s, in, sizeof(in));
	rt_run(r, in, len, &o);
	assert_int_equal(o.act, XDP_PASS);
	cpn_pkt_default(&req, CPN_AF_INET);
	for (int i = 0; i < 20; i++) {
		t_report(r, 1, 5, 0, 1, 100, 0);
		assert_int_equal(rt_steer(r, &req), 1);
	}
}

/* A PROBE_ACK is answered at once: the whole round trip is path. */
static void test_probe_ack_learns_path_latency_and_is_consumed(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family;
		struct cpn_node *n = &r->maps.state[2];
		struct cpn_node_stats ns0, ns1;
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		__u64 t0, t1;
		__u32 ts;
		size_t len;

		unlearned_node2(r, family);
		cpn_pkt_load(&s, family, 2);
		s.vlan = rt_framings[i].vlan;
		s.msg.type = CPN_T_PROBE_ACK;
		s.msg.queue_depth = 2;
		s.msg.capacity = 2;
		s.msg.worker_us = 400;
		ts = t_now_us() - 800;
		s.msg.router_ts = ts;
		s.msg.request_id = t_probe_cookie(2, ts);
		len = cpn_pkt_build(&s, in, sizeof(in));
		assert_int_equal(router_node_stats(r, 2, &ns0), 0);
		run_timed(r, in, len, &o, &t0, &t1);
		assert_int_equal(o.act, XDP_DROP);
		rt_assert_counted(&o, (int[]){CPN_STAT_PROBE_ACK_LEARNED, RT_END});
		assert_int_equal(n->queue_depth, 2);
		assert_int_equal(n->svc_us, 400);
		assert_int_equal(n->outstanding, 0);
		assert_true(n->report_flags & CPN_REP_PATH_VALID);
		assert_in_range(n->path_us, 800, (__u32)(t1 / 1000) - ts);
		assert_int_equal(router_node_stats(r, 2, &ns1), 0);
		assert_int_equal(ns1.reports, ns0.reports + 1);
		assert_int_equal(ns1.lat_hist[bucket_of(n->path_us)],
				 ns0.lat_hist[bucket_of(n->path_us)] + 1);
	}
}

/* Not LOAD or PROBE_ACK, or from no node: the control port hands it up. */
static void test_other_cpn_messages_to_control_port_pass_untouched(void **state)
{
	struct router *r = *state;
	static const __u8 types[] = {CPN_T_REQUEST, CPN_T_REPLY, CPN_T_PROBE, CPN_T_BUSY};

	for (int f = 0; f < 2; f++) {
		int family = f ? CPN_AF_INET6 : CPN_AF_INET;
		struct cpn_node before;
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		rt_node_snapshot(r, 2, &before);
		for (size_t k = 0; k < sizeof(types); k++) {
			cpn_pkt_load(&s, family, 2);
			s.msg.type = types[k];
			len = cpn_pkt_build(&s, in, sizeof(in));
			rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
		}
		cpn_pkt_load(&s, family, 2);
		s.msg.type = CPN_T_PROBE_ACK;
		s.src = family == CPN_AF_INET ? "10.1.0.99" : "fd01::99";
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_assert_untouched(r, in, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
		assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
	}
}

/* ---- node keys ------------------------------------------------------- */

enum forgery { UNSIGNED, WRONG_KEY, TAMPERED, FORGERIES };

static const char *const forgery_name[FORGERIES] = {"unsigned", "wrong key", "tampered"};

/* A report of `type` from node 2, forged as told. */
static size_t forged_report(int family, int vlan, __u8 type, enum forgery how, __u8 *in)
{
	struct cpn_pkt s;
	struct cpn_pkt_view v;
	size_t len;

	if (type == CPN_T_REPLY || type == CPN_T_BUSY)
		cpn_pkt_reply(&s, family, 2);
	else
		cpn_pkt_load(&s, family, 2);
	s.vlan = vlan;
	s.msg.type = type;
	s.msg.queue_depth = 1000; /* what a spoofer would like the router to believe */
	s.msg.router_ts = t_now_us() - 100;
	s.auth = how != UNSIGNED;
	memcpy(s.key, how == WRONG_KEY ? bad_key : node_key, sizeof(s.key));
	len = cpn_pkt_build(&s, in, CPN_PKT_MAX);
	assert_true(len > 0);
	if (how == TAMPERED) {
		/* Signed with the right key, then the load rewritten. */
		assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
		in[v.pay + 32] ^= 0x40;
		cpn_pkt_fix_csums(in, len);
	}
	return len;
}

static void test_node_key_rejects_forged_reports_without_learning(void **state)
{
	struct router *r = *state;
	static const __u8 types[] = {CPN_T_REPLY, CPN_T_BUSY, CPN_T_LOAD, CPN_T_PROBE_ACK};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		set_node_key(r, 2, node_key);
		t_report(r, 2, 3, 0, 1, 100, 50);
		for (size_t k = 0; k < sizeof(types); k++) {
			for (int how = 0; how < FORGERIES; how++) {
				struct cpn_node_stats ns0, ns1;
				struct cpn_node before;
				__u8 in[CPN_PKT_MAX];
				size_t len;

				print_message("# %s type %u from keyed node, %s vlan %d\n",
					      forgery_name[how], types[k], RT_FAMILY_STR(family),
					      rt_framings[i].vlan);
				len = forged_report(family, rt_framings[i].vlan, types[k],
						    (enum forgery)how, in);
				rt_node_snapshot(r, 2, &before);
				assert_int_equal(router_node_stats(r, 2, &ns0), 0);
				rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_NODE_AUTH);
				assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
				assert_int_equal(router_node_stats(r, 2, &ns1), 0);
				assert_memory_equal(&ns1, &ns0, sizeof(ns0));
			}
		}
	}
}

static void test_node_key_accepts_correctly_signed_reports(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
		struct cpn_pkt s;
		struct cpn_pkt_view v;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		set_node_key(r, 2, node_key);
		t_report(r, 2, 3, 0, 1, 100, 50);

		/* REPLY: learned and forwarded, the tag left in place. */
		cpn_pkt_reply(&s, family, 2);
		s.vlan = vlan;
		s.auth = true;
		memcpy(s.key, node_key, sizeof(s.key));
		s.msg.queue_depth = 11;
		s.msg.router_ts = t_now_us() - 100;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		rt_assert_counted(&o, (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END});
		assert_int_equal(r->maps.state[2].queue_depth, 11);
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &v), 0);
		assert_memory_equal(o.buf + v.pay, in + v.pay, CPN_HDR_LEN + CPN_TAG_LEN);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));

		/* LOAD: learned and consumed. */
		cpn_pkt_load(&s, family, 2);
		s.vlan = vlan;
		s.auth = true;
		memcpy(s.key, node_key, sizeof(s.key));
		s.msg.queue_depth = 12;
		s.msg.worker_us = 100;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_DROP);
		rt_assert_counted(&o, (int[]){CPN_STAT_LOAD_LEARNED, RT_END});
		assert_int_equal(r->maps.state[2].queue_depth, 12);

		/* A node without a key may still sign: accepted too. */
		cpn_pkt_load(&s, family, 3);
		s.vlan = vlan;
		s.auth = true;
		memcpy(s.key, bad_key, sizeof(s.key));
		s.msg.queue_depth = 13;
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(r, in, len, &o);
		assert_int_equal(o.act, XDP_DROP);
		assert_int_equal(r->maps.state[3].queue_depth, 13);
	}
}

/* The tag belongs to the datagram: a report whose UDP length ends at the
 * header, with the right tag in the bytes that trail it in the frame
 * (Ethernet padding, say), carries no tag and is refused.
 */
static void test_node_key_rejects_tag_outside_the_datagram(void **state)
{
	struct router *r = *state;
	static const __u8 types[] = {CPN_T_REPLY, CPN_T_LOAD, CPN_T_PROBE_ACK};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		set_node_key(r, 2, node_key);
		t_report(r, 2, 3, 0, 1, 100, 50);
		for (size_t k = 0; k < sizeof(types); k++) {
			struct cpn_node before;
			struct cpn_pkt s;
			struct cpn_pkt_view v;
			__u8 in[CPN_PKT_MAX];
			size_t len, dlen;

			if (types[k] == CPN_T_REPLY)
				cpn_pkt_reply(&s, family, 2);
			else
				cpn_pkt_load(&s, family, 2);
			s.vlan = rt_framings[i].vlan;
			s.msg.type = types[k];
			s.msg.queue_depth = 1000;
			s.msg.router_ts = t_now_us() - 100;
			s.auth = true;
			memcpy(s.key, node_key, sizeof(s.key));
			len = cpn_pkt_build(&s, in, sizeof(in));
			assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
			/* Shrink the datagram to the header; the tag stays behind it. */
			dlen = 8 + CPN_HDR_LEN;
			in[v.l4 + 4] = (__u8)(dlen >> 8);
			in[v.l4 + 5] = (__u8)dlen;
			if (family == CPN_AF_INET) {
				in[v.l3 + 2] = (__u8)((20 + dlen) >> 8);
				in[v.l3 + 3] = (__u8)(20 + dlen);
			} else {
				in[v.l3 + 4] = (__u8)(dlen >> 8);
				in[v.l3 + 5] = (__u8)dlen;
			}
			cpn_pkt_fix_csums(in, len);
			rt_node_snapshot(r, 2, &before);
			rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_NODE_AUTH);
			assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
		}
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, t_router_setup, t_router_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_reply_updates_node_load_and_path_latency),
	    T(test_reply_with_implausible_router_ts_learns_load_not_path),
	    T(test_reply_from_unknown_source_passes_untouched),
	    T(test_reply_for_unknown_service_is_dropped_unlearned),
	    T(test_load_to_control_port_is_learned_and_consumed),
	    T(test_load_from_unknown_address_passes_untouched),
	    T(test_load_with_draining_flag_keeps_node_from_being_chosen),
	    T(test_reply_with_draining_flag_keeps_node_from_being_chosen),
	    T(test_probe_ack_learns_path_latency_and_is_consumed),
	    T(test_other_cpn_messages_to_control_port_pass_untouched),
	    T(test_node_key_rejects_forged_reports_without_learning),
	    T(test_node_key_accepts_correctly_signed_reports),
	    T(test_node_key_rejects_tag_outside_the_datagram),
	};
#undef T
	return cmocka_run_group_tests_name("bpf_router_learn", tests, NULL, NULL);
}
