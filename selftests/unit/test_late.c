// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of late binding's decision, include/cpn/late.h (JBSQ(n)):
 * slots per node, binding while a slot is free, holding after, the bound
 * on the queue, BUSY for a predicted or an actual wait above max_wait_us,
 * class order, slots that time out for a stuck node and its retry, early
 * binding with no live candidate, and a central-queue model: with n = 1 a
 * late service keeps every node busy while requests wait, and never lets
 * a node hold more than its slots.
 *
 * The node table is sched.h's default accessor: a flat
 * struct cpn_node[CPN_MAX_NODES] indexed by node id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cpn/maps.h"
#include "cpn/late.h"

#define NOW_NS 1000000000000ULL /* 1000 s of monotonic time */
#define MS     1000000ULL

static struct cpn_node tbl[CPN_MAX_NODES];
static __u32 held[CPN_MAX_NODES];
static struct cpn_service svc;
static struct cpn_late_queue q;
static struct cpn_late_ent ents[64 * CPN_LATE_CLASSES];

/* A live idle node: up, capacity 1, 2 ms per request, reported now. */
static struct cpn_node *node(__u16 id, __u32 svc_us)
{
	struct cpn_node *n = &tbl[id];

	memset(n, 0, sizeof(*n));
	n->admin = CPN_ADMIN_UP;
	n->weight = 100;
	n->capacity = 1;
	n->svc_us = svc_us;
	n->last_report_ns = NOW_NS;
	n->report_flags = CPN_REP_SVC_VALID;
	return n;
}

static int setup(void **state)
{
	(void)state;
	memset(tbl, 0, sizeof(tbl));
	memset(held, 0, sizeof(held));
	memset(&svc, 0, sizeof(svc));
	memset(&q, 0, sizeof(q));
	svc.flags = CPN_SVC_ACTIVE | CPN_SVC_LATE;
	svc.id = 1;
	svc.stale_ms = 500;
	svc.max_queue = 8;
	svc.late_bound = 1;
	svc.n_nodes = 2;
	svc.nodes[0] = 1;
	svc.nodes[1] = 2;
	node(1, 2000);
	node(2, 2000);
	q.cap = cpn_late_cap(&svc);
	assert_true(q.cap <= 64);
	q.ent = ents;
	return 0;
}

/* Admit one request of class `cls` at `now`; HOLD pushes it (handle `h`). */
static struct cpn_late_result admit(__u8 cls, __u64 h, __u64 now)
{
	struct cpn_late_result r;

	cpn_late_admit(tbl, &svc, &q, held, cls, 0, now, &r);
	if (r.verdict == CPN_LATE_BIND) {
		cpn_late_sent(held, r.node);
		cpn_node_steered(&tbl[r.node], now);
	} else if (r.verdict == CPN_LATE_HOLD) {
		struct cpn_late_ent e = {.handle = h, .t_ns = now};

		assert_int_equal(cpn_late_push(&q, cls, &e), 0);
	}
	return r;
}

/* A node's answer: its slot back, its state as router.h learns it. */
static void answer(__u16 id)
{
	cpn_late_answered(held, id);
	tbl[id].unanswered = 0;
}

static void test_slots_and_bound(void **state)
{
	struct cpn_node *n = node(3, 1000);

	(void)state;
	assert_int_equal(cpn_late_slots(n, 1), 1);
	assert_int_equal(cpn_late_slots(n, 2), 2);
	n->capacity = 8;
	assert_int_equal(cpn_late_slots(n, 2), 16);
	/* Answers show half the reported capacity: half the slots. */
	n->overclaim = CPN_OVERCLAIM_OK * 2;
	assert_int_equal(cpn_late_slots(n, 2), 8);
	svc.late_bound = 0;
	assert_int_equal(cpn_late_bound(&svc), CPN_LATE_BOUND_DEFAULT);
	svc.late_bound = 500;
	assert_int_equal(cpn_late_bound(&svc), CPN_LATE_BOUND_MAX);
	svc.max_queue = 0;
	assert_int_equal(cpn_late_limit(&svc), CPN_LATE_QUEUE_DEFAULT);
	assert_int_equal(cpn_late_cap(&svc), 1024);
	svc.max_queue = 1000000;
	assert_int_equal(cpn_late_limit(&svc), CPN_LATE_QUEUE_MAX);
	svc.max_queue = 5;
	assert_int_equal(cpn_late_cap(&svc), 8);
}

static void test_bind_while_free_then_hold(void **state)
{
	struct cpn_late_result r1, r2, r3;

	(void)state;
	r1 = admit(0, 1, NOW_NS);
	r2 = admit(0, 2, NOW_NS);
	assert_int_equal(r1.verdict, CPN_LATE_BIND);
	assert_int_equal(r2.verdict, CPN_LATE_BIND);
	/* One each: JBSQ(1) never doubles up while another node is free. */
	assert_int_not_equal(r1.node, r2.node);
	assert_int_equal(held[1], 1);
	assert_int_equal(held[2], 1);
	svc.max_wait_us = 1000000; /* a prediction is made where there is a limit */
	r3 = admit(0, 3, NOW_NS);
	assert_int_equal(r3.verdict, CPN_LATE_HOLD);
	/* Its prediction: one slot freeing (2 slots at 2 ms: 1 ms) and a
	 * service time.
	 */
	assert_int_equal(r3.est_us, 1000 + 2000);
	assert_int_equal(q.len, 1);

	/* Nothing moves until a slot frees. */
	cpn_late_next(tbl, &svc, &q, held, 0, NOW_NS + MS, &r1);
	assert_int_equal(r1.verdict, CPN_LATE_NONE);
	answer(2);
	cpn_late_next(tbl, &svc, &q, held, 0, NOW_NS + MS, &r1);
	assert_int_equal(r1.verdict, CPN_LATE_BIND);
	assert_int_equal(r1.node, 2);
	assert_int_equal(r1.ent.handle, 3);
	assert_int_equal(q.len, 0);
}

static void test_bound_two_and_faster_node(void **state)
{
	struct cpn_late_result r;
	int on1 = 0, on2 = 0;

	(void)state;
	svc.late_bound = 2;
	tbl[2].svc_us = 500; /* four times as fast */
	for (int i = 0; i < 4; i++) {
		r = admit(0, (__u64)i, NOW_NS);
		assert_int_equal(r.verdict, CPN_LATE_BIND);
		on1 += r.node == 1;
		on2 += r.node == 2;
	}
	/* Two slots each; the faster node's filled first. */
	assert_int_equal(on1, 2);
	assert_int_equal(on2, 2);
	r = admit(0, 9, NOW_NS);
	assert_int_equal(r.verdict, CPN_LATE_HOLD);
	assert_int_equal(held[1], 2);
	assert_int_equal(held[2], 2);
	/* Free one slot on each: the head goes to the faster node. */
	cpn_late_answered(held, 1);
	cpn_late_answered(held, 2);
	cpn_late_next(tbl, &svc, &q, held, 0, NOW_NS, &r);
	assert_int_equal(r.verdict, CPN_LATE_BIND);
	assert_int_equal(r.node, 2);
}

static void test_queue_bound(void **state)
{
	struct cpn_late_result r;

	(void)state;
	svc.max_queue = 3;
	admit(0, 100, NOW_NS);
	admit(0, 101, NOW_NS);
	for (int i = 0; i < 3; i++)
		assert_int_equal(admit((__u8)(i % 3), (__u64)i, NOW_NS).verdict, CPN_LATE_HOLD);
	r = admit(0, 7, NOW_NS);
	assert_int_equal(r.verdict, CPN_LATE_BUSY);
	assert_int_equal(r.busy, CPN_BUSY_QUEUE);
	assert_int_equal(q.len, 3);
}

static void test_max_wait_predicted(void **state)
{
	struct cpn_late_result r;
	int held_n = 0;

	(void)state;
	/* Each held request waits 1 ms more (2 slots at 2 ms), then 2 ms of
	 * service: with max_wait_us 6000 the fourth held one (4 + 2 ms) is
	 * in, the fifth (5 + 2 ms) is refused.
	 */
	svc.max_wait_us = 6000;
	admit(0, 100, NOW_NS);
	admit(0, 101, NOW_NS);
	for (int i = 0; i < 8; i++) {
		r = admit(0, (__u64)i, NOW_NS);
		if (r.verdict != CPN_LATE_HOLD)
			break;
		assert_true(r.est_us <= 6000);
		held_n++;
	}
	assert_int_equal(held_n, 4);
	assert_int_equal(r.verdict, CPN_LATE_BUSY);
	assert_int_equal(r.busy, CPN_BUSY_WAIT);
	/* A more urgent class waits only behind its own and more urgent:
	 * it is still taken.
	 */
	assert_int_equal(admit(0, 50, NOW_NS).verdict, CPN_LATE_BUSY);
	svc.max_wait_us = 4000;
	assert_int_equal(admit(2, 51, NOW_NS).verdict, CPN_LATE_BUSY);
	q.n[0] = 0; /* as though those were class 1 */
	q.n[1] = 4;
	assert_int_equal(admit(0, 52, NOW_NS).verdict, CPN_LATE_HOLD);
}

static void test_max_wait_at_the_queue(void **state)
{
	struct cpn_late_result r;

	(void)state;
	svc.max_wait_us = 10000;
	admit(0, 100, NOW_NS);
	admit(0, 101, NOW_NS);
	assert_int_equal(admit(0, 1, NOW_NS).verdict, CPN_LATE_HOLD);
	assert_int_equal(admit(0, 2, NOW_NS + 5 * MS).verdict, CPN_LATE_HOLD);
	/* 11 ms on: the first waited too long, the second not yet; no slot. */
	cpn_late_next(tbl, &svc, &q, held, 0, NOW_NS + 11 * MS, &r);
	assert_int_equal(r.verdict, CPN_LATE_BUSY);
	assert_int_equal(r.busy, CPN_BUSY_WAIT);
	assert_int_equal(r.ent.handle, 1);
	cpn_late_next(tbl, &svc, &q, held, 0, NOW_NS + 11 * MS, &r);
	assert_int_equal(r.verdict, CPN_LATE_NONE);
	assert_int_equal(q.len, 1);
}

static void test_class_order(void **state)
{
	struct cpn_late_result r;
	__u64 order[6];

	(void)state;
	admit(0, 100, NOW_NS);
	admit(0, 101, NOW_NS);
	assert_int_equal(admit(2, 20, NOW_NS).verdict, CPN_LATE_HOLD);
	assert_int_equal(admit(7, 30, NOW_NS).verdict, CPN_LATE_HOLD); /* shares class 3 */
	assert_int_equal(admit(1, 10, NOW_NS).verdict, CPN_LATE_HOLD);
	assert_int_equal(admit(2, 21, NOW_NS).verdict, CPN_LATE_HOLD);
	assert_int_equal(admit(0, 0, NOW_NS).verdict, CPN_LATE_HOLD);
	assert_int_equal(admit(3, 31, NOW_NS).verdict, CPN_LATE_HOLD);
	for (int i = 0; i < 6; i++) {
		answer(1);
		cpn_late_next(tbl, &svc, &q, held, 0, NOW_NS, &r);
		assert_int_equal(r.verdict, CPN_LATE_BIND);
		assert_int_equal(r.node, 1);
		cpn_late_sent(held, r.node);
		order[i] = r.ent.handle;
	}
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 10);
	assert_int_equal(order[2], 20);
	assert_int_equal(order[3], 21);
	assert_int_equal(order[4], 30);
	assert_int_equal(order[5], 31);
	/* With class 2 waiting and a slot free, a class 0 request is
	 * bound at once: nothing as urgent waits before it.
	 */
	assert_int_equal(admit(2, 22, NOW_NS).verdict, CPN_LATE_HOLD);
	answer(1);
	r = admit(0, 1, NOW_NS);
	assert_int_equal(r.verdict, CPN_LATE_BIND);
	assert_int_equal(q.len, 1);
}

static void test_stuck_node_slots_expire(void **state)
{
	struct cpn_late_result r;
	__u64 t;

	(void)state;
	admit(0, 100, NOW_NS);
	admit(0, 101, NOW_NS);
	assert_int_equal(admit(0, 1, NOW_NS).verdict, CPN_LATE_HOLD);
	/* Node 2 answers on; node 1 never does. A few service times later
	 * node 1 is slow, not stuck: it keeps its slot.
	 */
	t = NOW_NS + 8 * MS;
	tbl[1].last_report_ns = t;
	tbl[2].last_report_ns = t;
	tbl[2].unanswered = 0; /* answering, and busy with the next */
	assert_true(cpn_node_suspect(&tbl[1], t));
	assert_false(cpn_late_stuck(&tbl[1], t));
	assert_int_equal(cpn_late_expire(tbl, &svc, held, NULL, t), 0);
	assert_int_equal(held[1], 1);
	/* Past its deadlines: stuck. Its slot is given back, and nothing is
	 * bound to it; node 2 takes the queue.
	 */
	t = NOW_NS + 60 * MS;
	tbl[1].last_report_ns = NOW_NS + 55 * MS;
	tbl[2].last_report_ns = t;
	tbl[2].unanswered = 0;
	assert_true(cpn_late_stuck(&tbl[1], t));
	assert_false(cpn_late_live(&tbl[1], t, svc.stale_ms));
	assert_int_equal(cpn_late_expire(tbl, &svc, held, NULL, t), 1);
	assert_int_equal(held[1], 0);
	cpn_late_next(tbl, &svc, &q, held, 0, t, &r);
	assert_int_equal(r.verdict, CPN_LATE_NONE); /* node 2 still busy */
	answer(2);
	cpn_late_next(tbl, &svc, &q, held, 0, t, &r);
	assert_int_equal(r.verdict, CPN_LATE_BIND);
	assert_int_equal(r.node, 2);
	/* Still reporting: after CPN_SUSPECT_RETRY_NS, one retry. */
	t = NOW_NS + CPN_SUSPECT_RETRY_NS + 10 * MS;
	tbl[1].last_report_ns = t;
	assert_true(cpn_late_live(&tbl[1], t, svc.stale_ms));
	/* A late answer leaves the count at zero. */
	cpn_late_answered(held, 1);
	assert_int_equal(held[1], 0);
}

static void test_early_with_no_live_candidate(void **state)
{
	struct cpn_late_result r;

	(void)state;
	admit(0, 100, NOW_NS);
	admit(0, 101, NOW_NS);
	assert_int_equal(admit(0, 1, NOW_NS).verdict, CPN_LATE_HOLD);
	/* Both stop reporting: stale. */
	cpn_late_next(tbl, &svc, &q, held, 0, NOW_NS + 600 * MS, &r);
	assert_int_equal(r.verdict, CPN_LATE_EARLY);
	assert_int_equal(r.ent.handle, 1);
	r = admit(0, 2, NOW_NS + 600 * MS);
	assert_int_equal(r.verdict, CPN_LATE_EARLY);
	/* Draining nodes are not bound to either. */
	tbl[1].last_report_ns = tbl[2].last_report_ns = NOW_NS + 600 * MS;
	tbl[1].report_flags |= CPN_REP_DRAINING;
	tbl[2].admin |= CPN_ADMIN_DRAIN;
	assert_int_equal(admit(0, 3, NOW_NS + 600 * MS).verdict, CPN_LATE_EARLY);
}

/* A central queue: 4 nodes of fixed 1 ms, requests arriving every 0.3 ms
 * (rho 0.83) in bursts. With JBSQ(1) a request waits only while every node
 * is busy, no node ever holds two, and the order of binding is the order
 * of arrival.
 */
static void test_central_queue_model(void **state)
{
	__u64 busy_until[5] = {0}, next_bind = 0, now, arrivals = 0, t_arr = NOW_NS;
	struct cpn_late_result r;

	(void)state;
	svc.n_nodes = 4;
	svc.max_queue = 64;
	for (__u16 id = 1; id <= 4; id++) {
		svc.nodes[id - 1] = id;
		node(id, 1000);
	}
	q.cap = cpn_late_cap(&svc);
	for (now = NOW_NS; now < NOW_NS + 200 * MS; now += 50000) {
		/* Completions first, as a REPLY frees its slot. */
		for (__u16 id = 1; id <= 4; id++) {
			if (busy_until[id] && busy_until[id] <= now) {
				busy_until[id] = 0;
				answer(id);
				tbl[id].last_report_ns = now;
				cpn_late_next(tbl, &svc, &q, held, id, now, &r);
				if (r.verdict == CPN_LATE_BIND) {
					assert_int_equal(r.ent.handle, next_bind);
					next_bind++;
					assert_int_equal(held[r.node], 0);
					cpn_late_sent(held, r.node);
					cpn_node_steered(&tbl[r.node], now);
					busy_until[r.node] = now + MS;
				} else {
					assert_int_equal(r.verdict, CPN_LATE_NONE);
				}
			}
		}
		/* Arrivals: three at once every 0.9 ms. */
		if (now >= t_arr) {
			for (int k = 0; k < 3; k++) {
				for (__u16 id = 1; id <= 4; id++)
					tbl[id].last_report_ns = now;
				r = admit(0, arrivals, now);
				if (r.verdict == CPN_LATE_BIND) {
					/* Only when nothing waits. */
					assert_int_equal(q.len, 0);
					assert_int_equal(arrivals, next_bind);
					next_bind++;
					busy_until[r.node] = now + MS;
				} else {
					assert_int_equal(r.verdict, CPN_LATE_HOLD);
				}
				arrivals++;
			}
			t_arr += 900000;
		}
		/* Work-conserving: nobody waits while a node is idle. */
		if (q.len)
			for (__u16 id = 1; id <= 4; id++)
				assert_true(busy_until[id] != 0);
		for (__u16 id = 1; id <= 4; id++)
			assert_true(held[id] <= 1);
	}
	assert_true(arrivals > 600);
	assert_true(next_bind + q.len == arrivals);
}

/* Every candidate stuck for a moment (a host's stall) but reporting:
 * requests wait for them rather than being bound early; silent too, they
 * still wait (the reports may be in the router's rings) until the nodes
 * are stale.
 */
static void test_stuck_but_there_holds(void **state)
{
	struct cpn_late_result r;
	__u64 t = NOW_NS + 60 * MS;

	(void)state;
	admit(0, 100, NOW_NS);
	admit(0, 101, NOW_NS);
	tbl[1].last_report_ns = tbl[2].last_report_ns = t;
	assert_true(cpn_late_stuck(&tbl[1], t) && cpn_late_stuck(&tbl[2], t));
	r = admit(0, 1, t);
	assert_int_equal(r.verdict, CPN_LATE_HOLD);
	cpn_late_next(tbl, &svc, &q, held, 0, t, &r);
	assert_int_equal(r.verdict, CPN_LATE_NONE);
	/* Silent since: "gone" for the early policies, still waited for. */
	tbl[1].last_report_ns = tbl[2].last_report_ns = NOW_NS;
	assert_true(cpn_node_gone(&tbl[1], t));
	cpn_late_next(tbl, &svc, &q, held, 0, t, &r);
	assert_int_equal(r.verdict, CPN_LATE_NONE);
	/* Stale: bound early. */
	cpn_late_next(tbl, &svc, &q, held, 0, NOW_NS + 600 * MS, &r);
	assert_int_equal(r.verdict, CPN_LATE_EARLY);
	assert_int_equal(r.ent.handle, 1);
}

/* Slots that drift: an answer this router never counted (the service was
 * early for a while, a reply lost) leaves a slot taken at an idle node. A
 * report that came after the last late request sent there, by more than
 * the node's path and a millisecond, bounds the count by what the node
 * says it holds; an earlier one does not (it may not count that request).
 */
static void test_drifted_slots_follow_reports(void **state)
{
	__u64 sent[CPN_MAX_NODES] = {0};
	__u64 t = NOW_NS + 10 * MS;

	(void)state;
	held[1] = 1; /* its answer went uncounted */
	held[2] = 1; /* in service, and the node says so */
	sent[1] = sent[2] = NOW_NS;
	tbl[1].path_us = tbl[2].path_us = 200;
	tbl[2].inflight = 1;
	tbl[1].last_report_ns = tbl[2].last_report_ns = NOW_NS + 1 * MS; /* too soon */
	assert_int_equal(cpn_late_expire(tbl, &svc, held, sent, t), 0);
	assert_int_equal(held[1], 1);
	tbl[1].last_report_ns = tbl[2].last_report_ns = NOW_NS + 2 * MS;
	assert_int_equal(cpn_late_expire(tbl, &svc, held, sent, t), 1);
	assert_int_equal(held[1], 0);
	assert_int_equal(held[2], 1);
	/* Without sent times (not kept), nothing but stuck nodes. */
	held[1] = 1;
	assert_int_equal(cpn_late_expire(tbl, &svc, held, NULL, t), 0);
	assert_int_equal(held[1], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_slots_and_bound, setup),
	    cmocka_unit_test_setup(test_bind_while_free_then_hold, setup),
	    cmocka_unit_test_setup(test_bound_two_and_faster_node, setup),
	    cmocka_unit_test_setup(test_queue_bound, setup),
	    cmocka_unit_test_setup(test_max_wait_predicted, setup),
	    cmocka_unit_test_setup(test_max_wait_at_the_queue, setup),
	    cmocka_unit_test_setup(test_class_order, setup),
	    cmocka_unit_test_setup(test_stuck_node_slots_expire, setup),
	    cmocka_unit_test_setup(test_early_with_no_live_candidate, setup),
	    cmocka_unit_test_setup(test_stuck_but_there_holds, setup),
	    cmocka_unit_test_setup(test_drifted_slots_follow_reports, setup),
	    cmocka_unit_test_setup(test_central_queue_model, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
