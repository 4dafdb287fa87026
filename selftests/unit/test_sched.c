// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of the policy core, include/cpn/sched.h: estimated completion
 * time, liveness, every policy of cpn_choose(), jiq's idle tokens, the
 * all-stale fallback, admission, Maglev table population, and learning from
 * reports.
 *
 * The node table is the header's default accessor: a flat
 * struct cpn_node[CPN_MAX_NODES] indexed by node id. Idle tokens: one store
 * per service id below N_TOKSTORES.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <cmocka.h>

#include "cpn/maps.h"

#define N_TOKSTORES 4
static struct cpn_tokens toks[N_TOKSTORES];
#define cpn_tokens_at(ctx, svc_id)                                                                 \
	((svc_id) < N_TOKSTORES ? &toks[(svc_id)] : (struct cpn_tokens *)0)

#include "cpn/sched.h"
#include "cpn_util.h"

#define NOW_NS	 1000000000000ULL /* 1000 s of monotonic time */
#define STALE_MS 100
#define MS	 1000000ULL

static struct cpn_node tbl[CPN_MAX_NODES];
static struct cpn_maglev mg, mg2;

/* ---- helpers ---------------------------------------------------------- */

static uint64_t sm_state;

static void rng_seed(__u64 seed)
{
	sm_state = seed;
}

static uint64_t rng(void)
{
	return cpn_splitmix64(&sm_state);
}

static int reset_tables(void **state)
{
	(void)state;
	memset(tbl, 0, sizeof(tbl));
	memset(&mg, 0, sizeof(mg));
	memset(&mg2, 0, sizeof(mg2));
	memset(toks, 0, sizeof(toks));
	rng_seed(0x5eed);
	return 0;
}

/* A live, idle node: up, weight 100, capacity 1, 100 µs per request. */
/* cpn_learn_answer: how long ago the answered request was steered, not known */
#define NO_AGO (~0u)

static struct cpn_node *live_node(__u16 id)
{
	struct cpn_node *n = &tbl[id];

	memset(n, 0, sizeof(*n));
	n->admin = CPN_ADMIN_UP;
	n->weight = 100;
	n->capacity = 1;
	n->svc_us = 100;
	n->last_report_ns = NOW_NS;
	n->report_flags = CPN_REP_SVC_VALID;
	return n;
}

/* The ways a node can be not live. */
enum dead_kind {
	DEAD_ADMIN_DOWN,
	DEAD_ADMIN_DRAIN,
	DEAD_REPORTED_DRAINING,
	DEAD_STALE,
	DEAD_NEVER_REPORTED,
	DEAD_KINDS,
};

static void kill_node(__u16 id, enum dead_kind how)
{
	struct cpn_node *n = &tbl[id];

	switch (how) {
	case DEAD_ADMIN_DOWN:
		n->admin = 0;
		break;
	case DEAD_ADMIN_DRAIN:
		n->admin = CPN_ADMIN_UP | CPN_ADMIN_DRAIN;
		break;
	case DEAD_REPORTED_DRAINING:
		n->report_flags |= CPN_REP_DRAINING;
		break;
	case DEAD_STALE:
		n->last_report_ns = NOW_NS - STALE_MS * MS - 1;
		break;
	default:
		n->last_report_ns = 0;
		break;
	}
}

static void svc_init(struct cpn_service *s, __u8 policy, const __u16 *ids, int n)
{
	memset(s, 0, sizeof(*s));
	s->flags = CPN_SVC_ACTIVE;
	s->policy = policy;
	s->stale_ms = STALE_MS;
	cpn_svc_set_nodes(s, ids, (__u32)n);
}

static struct cpn_pick choose(struct cpn_service *s, const struct cpn_maglev *m, __u32 flow_hash,
			      __u64 rnd)
{
	struct cpn_pick p;
	int v;

	memset(&p, 0xa5, sizeof(p));
	v = cpn_choose(tbl, s, m, flow_hash, rnd, NOW_NS, &p);
	assert_int_equal(v, p.verdict);
	return p;
}

static int is_live(__u16 id)
{
	return cpn_node_live(&tbl[id], NOW_NS, STALE_MS);
}

/* ---- cpn_est_us -------------------------------------------------------- */

static void test_est_us_follows_formula(void **state)
{
	struct cpn_node n = {0};

	(void)state;
	/* 250 + (3 + 2 + 1 + 1) * 1000 * 100 / (4 * 150) = 250 + 1166 */
	n.queue_depth = 3;
	n.inflight = 2;
	n.outstanding = 1;
	n.capacity = 4;
	n.weight = 150;
	n.svc_us = 1000;
	n.path_us = 250;
	assert_int_equal(cpn_est_us(&n), 1416);

	/* An idle node: one service time plus the path. */
	memset(&n, 0, sizeof(n));
	n.capacity = 1;
	n.weight = 100;
	n.svc_us = 800;
	n.path_us = 40;
	assert_int_equal(cpn_est_us(&n), 840);

	/* Capacity divides, weight in percent scales capacity. */
	n.queue_depth = 7; /* depth 8 */
	n.capacity = 8;
	assert_int_equal(cpn_est_us(&n), 40 + 800);
	n.weight = 200;
	assert_int_equal(cpn_est_us(&n), 40 + 400);
	n.weight = 50;
	assert_int_equal(cpn_est_us(&n), 40 + 1600);
}

/* Past 32 bits (deep queue, slow node, big capacity x weight): the 64-bit
 * quotient, on both sides of the 32-bit fast path's edge.
 */
static void test_est_us_is_exact_past_32_bits(void **state)
{
	struct cpn_node n = {0};
	__u64 num;

	(void)state;
	n.queue_depth = 60000;
	n.inflight = 3;
	n.svc_us = 1000000; /* 1 s per request */
	n.capacity = 7;
	n.weight = 130;
	n.path_us = 9;
	num = (60000ULL + 3 + 1) * 1000000 * 100;
	assert_true(num >> 32);
	assert_true(cpn_est_us(&n) == 9 + num / (7 * 130));

	/* num just below 2^32 (fast path), then just above it. */
	memset(&n, 0, sizeof(n));
	n.capacity = 3;
	n.weight = 100;
	n.svc_us = 42949672; /* x 100 = 4294967200 < 2^32 */
	assert_true(cpn_est_us(&n) == 4294967200ULL / 300);
	n.outstanding = 1; /* depth 2: 8589934400 > 2^32 */
	assert_true(cpn_est_us(&n) == 8589934400ULL / 300);
	/* The largest denominator capacity and weight can make. */
	n.capacity = 0xffff;
	n.weight = 0xffff;
	assert_true(cpn_est_us(&n) == 8589934400ULL / (0xffffULL * 0xffffULL));
}

/* est_us by the node's slot_cost (a multiply and a shift) is the quotient
 * to within depth / 256 µs, never above it, over random nodes and queues,
 * with and without an overclaim past CPN_OVERCLAIM_OK.
 */
static void test_est_us_by_slot_cost_matches_quotient(void **state)
{
	struct cpn_node n;
	__u64 exact, fast, depth;
	int fastpaths = 0;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		memset(&n, 0, sizeof(n));
		n.capacity = (__u16)(1 + rng() % 64);
		n.weight = (__u16)(1 + rng() % 1000);
		n.svc_us = 1 + rng() % (i & 1 ? 5000 : 2000000);
		n.path_us = rng() % 1000;
		n.queue_depth = (__u16)(rng() % 300);
		n.inflight = (__u16)(rng() % 64);
		n.outstanding = rng() % 100;
		if (i % 3 == 0)
			n.overclaim = (__u16)(CPN_OVERCLAIM_ONE + rng() % 200);
		exact = cpn_est_us(&n);
		cpn_node_cost(&n);
		fast = cpn_est_us(&n);
		depth = (__u64)n.queue_depth + n.inflight + n.outstanding + 1;
		if (n.slot_cost)
			fastpaths++;
		assert_true(fast <= exact);
		assert_true(exact - fast <= depth / 256 + 1);
	}
	/* nearly every one of those takes the fast path */
	assert_true(fastpaths > 190000);
}

/* Where svc_us x 100 / den is 2^31 / 256 µs or more, slot_cost is 0 and
 * est_us divides: a queue of 2^33 times it would not fit in 64 bits.
 */
static void test_slot_cost_falls_back_where_too_large(void **state)
{
	struct cpn_node n = {0};

	(void)state;
	n.capacity = 1;
	n.weight = 100;
	n.svc_us = (1u << 23) - 1; /* x 256 just below 2^31 */
	cpn_node_cost(&n);
	assert_int_equal(n.slot_cost, ((1u << 23) - 1) << 8);
	n.svc_us = 1u << 23;
	cpn_node_cost(&n);
	assert_int_equal(n.slot_cost, 0);
	/* the slowest node a report can describe, with a queue of 2^24 - 1 */
	n.queue_depth = 65535;
	n.inflight = 65535;
	n.outstanding = (1u << 24) - 2 * 65535 - 2;
	n.svc_us = 0xffffffffU;
	n.weight = 1;
	cpn_node_cost(&n);
	assert_int_equal(n.slot_cost, 0);
	assert_true(cpn_est_us(&n) == ((1ULL << 24) - 1) * 0xffffffffULL * 100);
	assert_int_equal(cpn_sat32(cpn_est_us(&n)), 0xffffffffU);
}

/* Every writer of svc_us, capacity, weight or overclaim leaves slot_cost as
 * the state gives it: reports (fresh and stale means, capacity changes),
 * REPLYs (load, first mean, overclaim up and back down) and the
 * controller's weight, in random order.
 */
static void test_slot_cost_kept_by_every_writer(void **state)
{
	struct cpn_node n = {0};
	struct cpn_hdr h;
	int changed = 0;
	__u32 prev = 0;

	(void)state;
	n.admin = 1;
	cpn_node_set_weight(&n, 100);
	for (int i = 0; i < 20000; i++) {
		memset(&h, 0, sizeof(h));
		h.queue_depth = cpn_htons((__u16)(rng() % 4 ? rng() % 40 : 0));
		h.inflight = cpn_htons((__u16)(rng() % 4));
		h.capacity = cpn_htons((__u16)(rng() % 8 ? 4 : 1 + rng() % 8));
		h.worker_us = cpn_htonl(rng() % 4 ? 2000 : 500 + rng() % 8000);
		switch (rng() % 5) {
		case 0:
			cpn_learn_report(&n, &h, NOW_NS);
			break;
		case 1:
			cpn_learn_load(&n, &h, NOW_NS);
			if (!(n.report_flags & CPN_REP_SVC_VALID))
				cpn_learn_svc(&n, cpn_ntohl(h.worker_us));
			/* answers far slower than the load predicts: overclaim climbs */
			cpn_learn_answer(&n, (rng() % 2 ? 40 : 1) * cpn_ntohl(h.worker_us), 1, 0,
					 NO_AGO, NOW_NS);
			break;
		case 2:
			cpn_learn_answer(&n, 0, 0, 0, NO_AGO, NOW_NS);
			break;
		case 3:
			if (rng() % 8 == 0)
				cpn_node_set_weight(&n, (__u16)(1 + rng() % 1000));
			break;
		default:
			/* the same report again, idle: the stale-mean decay */
			h.queue_depth = h.inflight = 0;
			n.outstanding = n.unanswered = 0;
			cpn_learn_report(&n, &h, NOW_NS);
			cpn_learn_report(&n, &h, NOW_NS);
			break;
		}
		assert_int_equal(n.slot_cost, cpn_slot_cost(&n));
		changed += n.slot_cost != prev;
		prev = n.slot_cost;
	}
	assert_true(n.overclaim || changed);
	assert_true(changed > 100);
}

static void test_est_us_each_queue_term_counts_once(void **state)
{
	struct cpn_node n = {0};
	__u64 base;

	(void)state;
	n.capacity = 1;
	n.weight = 100;
	n.svc_us = 10;
	base = cpn_est_us(&n);
	assert_int_equal(base, 10);
	n.queue_depth = 1;
	assert_int_equal(cpn_est_us(&n), base + 10);
	n.queue_depth = 0;
	n.inflight = 1;
	assert_int_equal(cpn_est_us(&n), base + 10);
	n.inflight = 0;
	n.outstanding = 1;
	assert_int_equal(cpn_est_us(&n), base + 10);
	/* util is reported but not part of the estimate */
	n.util = 255;
	assert_int_equal(cpn_est_us(&n), base + 10);
}

static void test_est_us_zero_capacity_weight_svc_use_defaults(void **state)
{
	struct cpn_node n = {0}, ref;

	(void)state;
	/* All three zero: capacity 1, weight 100, svc 1 µs. */
	n.queue_depth = 4;
	n.path_us = 7;
	assert_int_equal(cpn_est_us(&n), 7 + 5);

	n.svc_us = 50;
	n.weight = 100;
	ref = n;
	ref.capacity = 1;
	n.capacity = 0;
	assert_int_equal(cpn_est_us(&n), cpn_est_us(&ref));
	assert_int_equal(cpn_est_us(&n), 7 + 5 * 50);

	n.capacity = 2;
	ref = n;
	ref.weight = 100;
	n.weight = 0;
	assert_int_equal(cpn_est_us(&n), cpn_est_us(&ref));
	assert_int_equal(cpn_est_us(&n), 7 + 5 * 50 / 2);

	n.weight = 100;
	n.svc_us = 0;
	n.capacity = 1;
	assert_int_equal(cpn_est_us(&n), 7 + 5);
}

static void test_est_us_large_values_do_not_overflow(void **state)
{
	struct cpn_node n = {0};
	unsigned __int128 want;

	(void)state;
	n.queue_depth = 65535;
	n.inflight = 65535;
	n.outstanding = 100000;
	n.capacity = 1;
	n.weight = 1;
	n.svc_us = 0xffffffffU;
	n.path_us = 0xffffffffU;
	want =
	    (unsigned __int128)(65535 + 65535 + 100000 + 1) * 0xffffffffU * 100 / 1 + 0xffffffffU;
	assert_true(cpn_est_us(&n) == (__u64)want);
	cpn_node_cost(&n); /* too large for a slot_cost: still the quotient */
	assert_true(cpn_est_us(&n) == (__u64)want);
	assert_int_equal(cpn_sat32(cpn_est_us(&n)), 0xffffffffU);
	assert_int_equal(cpn_sat32(12345), 12345);
}

/* ---- liveness ---------------------------------------------------------- */

static void test_live_requires_admin_up(void **state)
{
	struct cpn_node *n = live_node(5);

	(void)state;
	assert_true(cpn_node_up(n));
	assert_true(is_live(5));
	n->admin = 0;
	assert_false(cpn_node_up(n));
	assert_false(is_live(5));
	n->admin = CPN_ADMIN_DRAIN; /* drain without up is not up either */
	assert_false(is_live(5));
	n->admin = CPN_ADMIN_UP;
	assert_true(is_live(5));
}

static void test_live_false_when_admin_drain(void **state)
{
	struct cpn_node *n = live_node(5);

	(void)state;
	n->admin = CPN_ADMIN_UP | CPN_ADMIN_DRAIN;
	assert_false(cpn_node_up(n));
	assert_false(is_live(5));
}

static void test_live_false_when_node_reports_draining(void **state)
{
	struct cpn_node *n = live_node(5);

	(void)state;
	n->report_flags |= CPN_REP_DRAINING;
	assert_true(cpn_node_up(n)); /* still administratively up */
	assert_false(is_live(5));
	n->report_flags &= ~CPN_REP_DRAINING;
	assert_true(is_live(5));
	/* the other report flags do not matter */
	n->report_flags = CPN_REP_PATH_VALID | CPN_REP_SVC_VALID;
	assert_true(is_live(5));
}

static void test_live_false_when_never_reported(void **state)
{
	struct cpn_node *n = live_node(5);

	(void)state;
	n->last_report_ns = 0;
	assert_false(cpn_node_live(n, NOW_NS, STALE_MS));
	assert_false(cpn_node_live(n, 1, 0xffffffffU));
}

static void test_live_stale_boundary_is_inclusive(void **state)
{
	struct cpn_node *n = live_node(5);
	__u64 t = n->last_report_ns;

	(void)state;
	assert_true(cpn_node_live(n, t, STALE_MS));
	assert_true(cpn_node_live(n, t + 1, STALE_MS));
	assert_true(cpn_node_live(n, t + STALE_MS * MS - 1, STALE_MS));
	assert_true(cpn_node_live(n, t + STALE_MS * MS, STALE_MS));
	assert_false(cpn_node_live(n, t + STALE_MS * MS + 1, STALE_MS));
	assert_false(cpn_node_live(n, t + 3600 * 1000 * MS, STALE_MS));
	/* stale_ms in ms, not truncated to 32 bits when scaled */
	assert_true(cpn_node_live(n, t + 5000 * MS, 5000));
	assert_false(cpn_node_live(n, t + 5000 * MS + 1, 5000));
}

static void test_live_report_newer_than_now_is_fresh(void **state)
{
	struct cpn_node *n = live_node(5);

	(void)state;
	/* Another CPU may learn a report after this one read its clock. */
	assert_true(cpn_node_live(n, n->last_report_ns - 1000, STALE_MS));
}

/* ---- p2c --------------------------------------------------------------- */

static void test_p2c_less_loaded_of_two_always_wins(void **state)
{
	const __u16 ids[2] = {11, 22};
	struct cpn_service s;

	(void)state;
	for (int order = 0; order < 2; order++) {
		__u16 light = order ? 11 : 22, heavy = order ? 22 : 11;

		live_node(light)->queue_depth = 1;
		live_node(heavy)->queue_depth = 5;
		svc_init(&s, CPN_POL_P2C, ids, 2);
		for (int i = 0; i < 10000; i++) {
			struct cpn_pick p = choose(&s, NULL, 0, rng());

			assert_int_equal(p.verdict, CPN_PICK_OK);
			assert_int_equal(p.node_id, light);
			assert_int_equal(p.est_us, cpn_est_us(&tbl[light]));
		}
	}
}

/* Candidates are two distinct live nodes drawn uniformly, and the lower
 * est_us wins: the node of load rank k (0 = least loaded) of n wins the
 * pairs it forms with the n-1-k more loaded nodes, a share of
 * 2 (n-1-k) / (n (n-1)).
 */
static void test_p2c_pick_shares_match_uniform_distinct_pairs(void **state)
{
	enum { N = 6, DRAWS = 60000 };
	const __u16 ids[N] = {40, 12, 33, 7, 58, 21}; /* rank = position */
	int count[N] = {0};
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++)
		live_node(ids[i])->queue_depth = 2 * i;
	svc_init(&s, CPN_POL_P2C, ids, N);
	for (int d = 0; d < DRAWS; d++) {
		struct cpn_pick p = choose(&s, NULL, 0, rng());
		int hit = -1;

		assert_int_equal(p.verdict, CPN_PICK_OK);
		for (int i = 0; i < N; i++)
			if (ids[i] == p.node_id)
				hit = i;
		assert_true(hit >= 0);
		count[hit]++;
	}
	for (int k = 0; k < N; k++) {
		double want = 2.0 * (N - 1 - k) / (N * (N - 1)) * DRAWS;

		assert_true(fabs(count[k] - want) < 0.02 * DRAWS);
		if (k)
			assert_true(count[k] < count[k - 1]); /* least loaded most */
	}
	assert_int_equal(count[N - 1], 0);
}

/* p2c's common case (cpn_p2c_pair): with every candidate live it decides
 * alone, and as cpn_choose does for the same draw; its pointer is the
 * chosen node's state; fewer than two candidates, or a drawn one not live,
 * and it leaves the choice to cpn_choose.
 */
static void test_p2c_pair_decides_as_choose_and_defers_on_dead(void **state)
{
	enum { N = 7 };
	const __u16 ids[N] = {3, 9, 14, 22, 5, 61, 30};
	struct cpn_service s;
	int deferred = 0;

	(void)state;
	for (int i = 0; i < N; i++)
		live_node(ids[i])->queue_depth = (__u16)(i * 3 % 5);
	svc_init(&s, CPN_POL_P2C, ids, N);
	for (int d = 0; d < 2000; d++) {
		__u64 r = rng();
		struct cpn_node *np = NULL;
		struct cpn_pick a, b = choose(&s, NULL, 0, r);

		memset(&a, 0, sizeof(a));
		assert_int_equal(cpn_p2c_pair(tbl, &s, r, NOW_NS, &a, &np), 1);
		assert_int_equal(a.node_id, b.node_id);
		assert_int_equal(a.verdict, b.verdict);
		assert_int_equal(a.est_us, b.est_us);
		assert_int_equal(a.min_queue, b.min_queue);
		assert_ptr_equal(np, &tbl[a.node_id]);
	}
	/* One dead: the draws that hit it defer; never a dead node. */
	kill_node(ids[2], DEAD_STALE);
	for (int d = 0; d < 2000; d++) {
		__u64 r = rng();
		struct cpn_node *np = NULL;
		struct cpn_pick a;

		memset(&a, 0, sizeof(a));
		if (!cpn_p2c_pair(tbl, &s, r, NOW_NS, &a, &np)) {
			deferred++;
			continue;
		}
		assert_int_not_equal(a.node_id, ids[2]);
		assert_true(is_live(a.node_id));
	}
	/* it is one of the two drawn 2/N of the time */
	assert_true(deferred > 2000 * 2 / N / 2 && deferred < 2000 * 2 / N * 2);
	/* One candidate: always cpn_choose's. */
	svc_init(&s, CPN_POL_P2C, ids, 1);
	for (int d = 0; d < 100; d++) {
		struct cpn_node *np = NULL;
		struct cpn_pick a;

		assert_int_equal(cpn_p2c_pair(tbl, &s, rng(), NOW_NS, &a, &np), 0);
		assert_null(np);
	}
}

/* Every candidate is sampled equally often, wherever it sits in the list:
 * a lone idle node among equally busy ones wins exactly when it is one of
 * the two candidates, 2/n of the time.
 */
static void test_p2c_samples_every_position_equally(void **state)
{
	enum { N = 7, DRAWS = 14000 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++)
		ids[i] = 30 + i;
	svc_init(&s, CPN_POL_P2C, ids, N);
	for (int light = 0; light < N; light++) {
		int won = 0;

		for (int i = 0; i < N; i++)
			live_node(ids[i])->queue_depth = i == light ? 0 : 5;
		for (int d = 0; d < DRAWS; d++)
			won += choose(&s, NULL, 0, rng()).node_id == ids[light];
		assert_true(fabs((double)won / DRAWS - 2.0 / N) < 0.02);
	}
}

/* Service sizes worth testing: every size a scanning policy may have, then
 * a few up to the largest service the node ids allow (ids 1 .. 1023).
 */
static const int big_sizes[] = {100, 500, CPN_MAX_NODES - 101};

static int next_size(int n)
{
	if (n < CPN_SVC_SCAN_MAX)
		return n + 1;
	for (unsigned i = 0; i < sizeof(big_sizes) / sizeof(big_sizes[0]); i++)
		if (big_sizes[i] > n)
			return big_sizes[i];
	return 0;
}

/* With two distinct candidates the most loaded node always meets a less
 * loaded one and never wins, for every service size.
 */
static void test_p2c_candidates_are_distinct(void **state)
{
	struct cpn_service s;
	__u16 ids[CPN_MAX_SVC_NODES];

	(void)state;
	for (int n = 2; n; n = next_size(n)) {
		memset(tbl, 0, sizeof(tbl));
		for (int i = 0; i < n; i++) {
			ids[i] = 100 + i;
			live_node(ids[i])->queue_depth = i == n / 2 ? 50 : 1 + i % 3;
		}
		svc_init(&s, CPN_POL_P2C, ids, n);
		for (int d = 0; d < 2000; d++) {
			struct cpn_pick p = choose(&s, NULL, 0, rng());

			assert_int_equal(p.verdict, CPN_PICK_OK);
			assert_int_not_equal(p.node_id, ids[n / 2]);
		}
	}
}

static void test_p2c_never_picks_dead_node(void **state)
{
	enum { N = 10 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int kind = 0; kind < DEAD_KINDS; kind++) {
		memset(tbl, 0, sizeof(tbl));
		for (int i = 0; i < N; i++) {
			ids[i] = 200 + i;
			live_node(ids[i])->queue_depth = 10;
		}
		/* the dead nodes look idle: they would win if considered */
		for (int i = 0; i < N; i += 2) {
			tbl[ids[i]].queue_depth = 0;
			kill_node(ids[i], kind);
		}
		svc_init(&s, CPN_POL_P2C, ids, N);
		for (int d = 0; d < 5000; d++) {
			struct cpn_pick p = choose(&s, NULL, 0, rng());

			assert_int_equal(p.verdict, CPN_PICK_OK);
			assert_true(is_live(p.node_id));
			assert_int_equal((p.node_id - 200) % 2, 1);
		}
	}
}

static void test_p2c_single_live_node_is_picked(void **state)
{
	enum { N = 7 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 300 + i;
		live_node(ids[i]);
		if (i != 4)
			kill_node(ids[i], i % DEAD_KINDS);
	}
	tbl[ids[4]].queue_depth = 1000; /* heavily loaded, but the only one */
	svc_init(&s, CPN_POL_P2C, ids, N);
	for (int d = 0; d < 5000; d++) {
		struct cpn_pick p = choose(&s, NULL, 0, rng());

		assert_int_equal(p.verdict, CPN_PICK_OK);
		assert_int_equal(p.node_id, ids[4]);
	}

	/* and a service of one candidate */
	svc_init(&s, CPN_POL_P2C, &ids[4], 1);
	for (int d = 0; d < 100; d++)
		assert_int_equal(choose(&s, NULL, 0, rng()).node_id, ids[4]);
}

static void test_p2c_does_not_touch_outstanding(void **state)
{
	const __u16 ids[2] = {1, 2};
	struct cpn_service s;
	struct cpn_pick p;

	(void)state;
	live_node(1);
	live_node(2)->queue_depth = 3;
	svc_init(&s, CPN_POL_P2C, ids, 2);
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.node_id, 1);
	assert_int_equal(tbl[1].outstanding, 0);
	assert_int_equal(tbl[2].outstanding, 0);
	cpn_node_steered(&tbl[1], NOW_NS);
	cpn_node_steered(&tbl[1], NOW_NS);
	assert_int_equal(tbl[1].outstanding, 2);
	assert_int_equal(tbl[1].unanswered, 2);
}

/* Outstanding requests count as load: after enough steering to a node its
 * sibling wins.
 */
static void test_p2c_outstanding_shifts_choice(void **state)
{
	const __u16 ids[2] = {1, 2};
	struct cpn_service s;
	int to1 = 0, to2 = 0;

	(void)state;
	live_node(1);
	live_node(2)->queue_depth = 4;
	svc_init(&s, CPN_POL_P2C, ids, 2);
	for (int i = 0; i < 10; i++) {
		struct cpn_pick p = choose(&s, NULL, 0, rng());

		cpn_node_steered(&tbl[p.node_id], NOW_NS);
		if (p.node_id == 1)
			to1++;
		else
			to2++;
	}
	/* node 1 takes the first 4; from then on the two are level after
	 * every second request: 7 + 0 = 3 + 4 */
	assert_int_equal(to1, 7);
	assert_int_equal(to2, 3);
	assert_int_equal(tbl[1].outstanding, 7);
	assert_int_equal(tbl[2].outstanding, 3);
}

/* ---- least ------------------------------------------------------------- */

static void test_least_picks_minimum_est(void **state)
{
	enum { N = 16 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int trial = 0; trial < 2000; trial++) {
		__u64 best = ~0ULL;

		memset(tbl, 0, sizeof(tbl));
		for (int i = 0; i < N; i++) {
			struct cpn_node *n;

			ids[i] = 1 + i * 3;
			n = live_node(ids[i]);
			n->queue_depth = rng() % 20;
			n->inflight = rng() % 8;
			n->outstanding = rng() % 4;
			n->capacity = 1 + rng() % 8;
			n->weight = 50 + rng() % 300;
			n->svc_us = 50 + rng() % 2000;
			n->path_us = rng() % 500;
			if (rng() % 4 == 0)
				kill_node(ids[i], rng() % DEAD_KINDS);
		}
		if (!is_live(ids[trial % N]))
			live_node(ids[trial % N]); /* at least one */
		for (int i = 0; i < N; i++)
			if (is_live(ids[i]) && cpn_est_us(&tbl[ids[i]]) < best)
				best = cpn_est_us(&tbl[ids[i]]);
		svc_init(&s, CPN_POL_LEAST, ids, N);
		struct cpn_pick p = choose(&s, NULL, 0, rng());

		assert_int_equal(p.verdict, CPN_PICK_OK);
		assert_true(is_live(p.node_id));
		assert_int_equal(cpn_est_us(&tbl[p.node_id]), best);
		assert_int_equal(p.est_us, best);
	}
}

static void test_least_spreads_ties_across_equal_nodes(void **state)
{
	enum { N = 8 };
	__u16 ids[N];
	int count[N] = {0}, distinct = 0;
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 50 + i;
		live_node(ids[i])->queue_depth = 3;
	}
	svc_init(&s, CPN_POL_LEAST, ids, N);
	for (int d = 0; d < 8000; d++) {
		struct cpn_pick p = choose(&s, NULL, 0, rng());

		assert_int_equal(p.verdict, CPN_PICK_OK);
		count[p.node_id - 50]++;
	}
	for (int i = 0; i < N; i++) {
		if (count[i])
			distinct++;
		assert_true(count[i] > 500); /* ~1000 each */
	}
	assert_int_equal(distinct, N);

	/* only the tied minima share, never a worse node */
	tbl[ids[0]].queue_depth = 2;
	tbl[ids[5]].queue_depth = 2;
	memset(count, 0, sizeof(count));
	for (int d = 0; d < 2000; d++)
		count[choose(&s, NULL, 0, rng()).node_id - 50]++;
	assert_true(count[0] > 0 && count[5] > 0);
	assert_int_equal(count[0] + count[5], 2000);
}

static void test_least_path_latency_counts(void **state)
{
	const __u16 ids[2] = {1, 2};
	struct cpn_service s;

	(void)state;
	live_node(1)->path_us = 900; /* far */
	live_node(2)->path_us = 30;  /* near */
	tbl[1].queue_depth = tbl[2].queue_depth = 2;
	svc_init(&s, CPN_POL_LEAST, ids, 2);
	for (int d = 0; d < 100; d++) {
		struct cpn_pick p = choose(&s, NULL, 0, rng());

		assert_int_equal(p.node_id, 2);
		assert_int_equal(p.est_us, 30 + 3 * 100);
	}
	/* but a far idle node beats a near busy one */
	tbl[2].queue_depth = 20;
	assert_int_equal(choose(&s, NULL, 0, rng()).node_id, 1);
}

static void test_least_weight_counts(void **state)
{
	const __u16 ids[2] = {1, 2};
	struct cpn_service s;

	(void)state;
	live_node(1)->weight = 100;
	live_node(2)->weight = 200;
	tbl[1].queue_depth = tbl[2].queue_depth = 5;
	svc_init(&s, CPN_POL_LEAST, ids, 2);
	for (int d = 0; d < 100; d++) {
		struct cpn_pick p = choose(&s, NULL, 0, rng());

		assert_int_equal(p.node_id, 2);
		assert_int_equal(p.est_us, 6 * 100 * 100 / 200);
	}
}

static void test_least_never_picks_dead_node(void **state)
{
	enum { N = 6 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int kind = 0; kind < DEAD_KINDS; kind++) {
		for (int i = 0; i < N; i++) {
			ids[i] = 70 + i;
			live_node(ids[i])->queue_depth = 10 + i;
		}
		tbl[ids[0]].queue_depth = 0;
		kill_node(ids[0], kind);
		svc_init(&s, CPN_POL_LEAST, ids, N);
		for (int d = 0; d < 200; d++)
			assert_int_equal(choose(&s, NULL, 0, rng()).node_id, ids[1]);
	}
}

/* ---- random and round-robin ------------------------------------------- */

static void test_rr_cycles_evenly_through_live_nodes(void **state)
{
	enum { N = 5, ROUNDS = 1000 };
	__u16 ids[N];
	int count[N] = {0};
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 90 + i;
		live_node(ids[i])->queue_depth = i * 7; /* load-unaware */
	}
	svc_init(&s, CPN_POL_RR, ids, N);
	for (int r = 0; r < ROUNDS; r++) {
		int seen[N] = {0};

		for (int i = 0; i < N; i++) {
			struct cpn_pick p = choose(&s, NULL, 0, rng());

			assert_int_equal(p.verdict, CPN_PICK_OK);
			assert_int_equal(p.est_us, cpn_est_us(&tbl[p.node_id]));
			seen[p.node_id - 90]++;
			count[p.node_id - 90]++;
		}
		for (int i = 0; i < N; i++)
			assert_int_equal(seen[i], 1); /* each once per round */
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(count[i], ROUNDS);
}

static void test_rr_skips_dead_nodes_evenly(void **state)
{
	enum { N = 7, ROUNDS = 1000 };
	__u16 ids[N];
	int count[N] = {0}, live = 0;
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 120 + i;
		live_node(ids[i]);
	}
	/* two adjacent dead nodes and one at the end */
	kill_node(ids[2], DEAD_STALE);
	kill_node(ids[3], DEAD_ADMIN_DOWN);
	kill_node(ids[6], DEAD_REPORTED_DRAINING);
	for (int i = 0; i < N; i++)
		live += is_live(ids[i]);
	assert_int_equal(live, 4);
	svc_init(&s, CPN_POL_RR, ids, N);
	for (int r = 0; r < ROUNDS; r++) {
		int seen[N] = {0};

		for (int i = 0; i < live; i++) {
			struct cpn_pick p = choose(&s, NULL, 0, 0);

			assert_int_equal(p.verdict, CPN_PICK_OK);
			assert_true(is_live(p.node_id));
			seen[p.node_id - 120]++;
			count[p.node_id - 120]++;
		}
		for (int i = 0; i < N; i++)
			assert_int_equal(seen[i], is_live(ids[i]) ? 1 : 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(count[i], is_live(ids[i]) ? ROUNDS : 0);
}

/* Pearson's chi-square of the counts against a uniform spread over the
 * `k` cells that should be hit; the others must be empty.
 */
static double chi2_uniform(const int *count, const int *want_hit, int cells, int draws)
{
	int k = 0;
	double chi2 = 0;

	for (int i = 0; i < cells; i++)
		k += want_hit[i];
	for (int i = 0; i < cells; i++) {
		double e = (double)draws / k;

		if (!want_hit[i]) {
			assert_int_equal(count[i], 0);
			continue;
		}
		chi2 += (count[i] - e) * (count[i] - e) / e;
	}
	return chi2;
}

static void test_random_is_roughly_uniform(void **state)
{
	enum { N = 8, DRAWS = 80000 };
	__u16 ids[N];
	int count[N] = {0}, hit[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 140 + i;
		live_node(ids[i])->queue_depth = i; /* load-unaware */
		hit[i] = 1;
	}
	svc_init(&s, CPN_POL_RANDOM, ids, N);
	for (int d = 0; d < DRAWS; d++) {
		struct cpn_pick p = choose(&s, NULL, 0, rng());

		assert_int_equal(p.verdict, CPN_PICK_OK);
		count[p.node_id - 140]++;
	}
	/* df = 7: p = 0.001 at 24.3; loose */
	assert_true(chi2_uniform(count, hit, N, DRAWS) < 40.0);
}

static void test_random_is_uniform_over_live_nodes(void **state)
{
	enum { N = 8, DRAWS = 60000 };
	__u16 ids[N];
	int count[N] = {0}, hit[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 160 + i;
		live_node(ids[i]);
	}
	kill_node(ids[1], DEAD_STALE);
	kill_node(ids[2], DEAD_ADMIN_DRAIN);
	for (int i = 0; i < N; i++)
		hit[i] = is_live(ids[i]);
	svc_init(&s, CPN_POL_RANDOM, ids, N);
	for (int d = 0; d < DRAWS; d++) {
		struct cpn_pick p = choose(&s, NULL, 0, rng());

		assert_int_equal(p.verdict, CPN_PICK_OK);
		count[p.node_id - 160]++;
	}
	/* df = 5: p = 0.001 at 20.5; a dead node's share falling to its
	 * successor gives thousands */
	assert_true(chi2_uniform(count, hit, N, DRAWS) < 40.0);
}

/* ---- maglev ------------------------------------------------------------ */

static void build_equal(struct cpn_maglev *m, const __u16 *ids, int n)
{
	__u32 w[CPN_MAX_SVC_NODES];

	for (int i = 0; i < n; i++)
		w[i] = 100;
	assert_int_equal(cpn_maglev_build(m, ids, w, n), 0);
}

static void count_entries(const struct cpn_maglev *m, int *count /* [CPN_MAX_NODES] */)
{
	memset(count, 0, CPN_MAX_NODES * sizeof(*count));
	for (int e = 0; e < CPN_MAGLEV_M; e++)
		count[m->entry[e]]++;
}

static void test_maglev_same_flow_same_node(void **state)
{
	enum { N = 16 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 500 + 3 * i;
		live_node(ids[i])->queue_depth = i; /* load-unaware */
	}
	build_equal(&mg, ids, N);
	svc_init(&s, CPN_POL_MAGLEV, ids, N);
	for (int f = 0; f < 5000; f++) {
		__u32 h = (__u32)rng();
		struct cpn_pick p = choose(&s, &mg, h, rng());
		struct cpn_pick q = choose(&s, &mg, h, rng());

		assert_int_equal(p.verdict, CPN_PICK_OK);
		assert_int_equal(p.node_id, q.node_id);
		assert_int_equal(p.node_id, mg.entry[h % CPN_MAGLEV_M]);
		assert_int_equal(p.est_us, cpn_est_us(&tbl[p.node_id]));
	}
}

/* A dead node's flows move to the next live entry of the table; every
 * other flow stays where it was.
 */
static void test_maglev_dead_node_moves_only_its_flows(void **state)
{
	enum { N = 16 };
	__u16 ids[N], dead;
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 600 + i;
		live_node(ids[i]);
	}
	build_equal(&mg, ids, N);
	dead = ids[5];
	kill_node(dead, DEAD_STALE);
	svc_init(&s, CPN_POL_MAGLEV, ids, N);
	for (__u32 h = 0; h < 3 * CPN_MAGLEV_M; h += 3) {
		struct cpn_pick p = choose(&s, &mg, h, 0);
		__u32 e = h % CPN_MAGLEV_M;

		assert_int_equal(p.verdict, CPN_PICK_OK);
		assert_int_not_equal(p.node_id, dead);
		if (mg.entry[e] != dead) {
			assert_int_equal(p.node_id, mg.entry[e]);
		} else {
			while (mg.entry[e] == dead)
				e = (e + 1) % CPN_MAGLEV_M;
			assert_int_equal(p.node_id, mg.entry[e]);
		}
	}
}

static void test_maglev_without_table_stays_consistent_among_live(void **state)
{
	enum { N = 8 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 700 + i;
		live_node(ids[i]);
	}
	kill_node(ids[3], DEAD_ADMIN_DOWN);
	svc_init(&s, CPN_POL_MAGLEV, ids, N);
	for (int f = 0; f < 2000; f++) {
		__u32 h = (__u32)rng();
		struct cpn_pick p = choose(&s, NULL, h, rng());

		assert_int_equal(p.verdict, CPN_PICK_OK);
		assert_true(is_live(p.node_id));
		assert_int_equal(choose(&s, NULL, h, rng()).node_id, p.node_id);
	}
}

static void test_maglev_table_balanced_for_1_to_923_nodes(void **state)
{
	static int count[CPN_MAX_NODES];
	__u16 ids[CPN_MAX_SVC_NODES];

	(void)state;
	for (int n = 1; n; n = next_size(n)) {
		double mean = (double)CPN_MAGLEV_M / n;
		int max = 0, total = 0;

		for (int i = 0; i < n; i++)
			ids[i] = 1 + (i * 37) % (CPN_MAX_NODES - 1);
		build_equal(&mg, ids, n);
		count_entries(&mg, count);
		assert_int_equal(count[0], 0); /* the table is full */
		for (int i = 0; i < n; i++) {
			total += count[ids[i]];
			if (count[ids[i]] > max)
				max = count[ids[i]];
		}
		assert_int_equal(total, CPN_MAGLEV_M); /* nothing but our ids */
		assert_true(max / mean <= 1.05);
	}
}

static void test_maglev_honours_weights(void **state)
{
	static int count[CPN_MAX_NODES];
	const __u16 ids[8] = {3, 9, 27, 81, 243, 729, 100, 200};
	const __u32 w[8] = {100, 200, 100, 100, 100, 100, 100, 100};
	const __u32 w2[6] = {100, 200, 50, 300, 150, 130};
	double per100;
	int sum = 0;

	(void)state;
	assert_int_equal(cpn_maglev_build(&mg, ids, w, 8), 0);
	count_entries(&mg, count);
	for (int i = 0; i < 8; i++)
		if (w[i] == 100)
			sum += count[ids[i]];
	per100 = sum / 7.0;
	assert_true(fabs(count[9] / per100 - 2.0) <= 0.05 * 2.0);
	assert_true(fabs(count[9] - CPN_MAGLEV_M * 200.0 / 900) <=
		    0.05 * CPN_MAGLEV_M * 200.0 / 900);

	/* any mix: entries proportional to weight within 5% */
	assert_int_equal(cpn_maglev_build(&mg, ids, w2, 6), 0);
	count_entries(&mg, count);
	for (int i = 0; i < 6; i++) {
		double want = CPN_MAGLEV_M * w2[i] / 930.0;

		assert_true(fabs(count[ids[i]] - want) <= 0.05 * want);
	}
}

/* Removing one of N nodes moves all of its entries and few others: about
 * 1/N of the table, as the Maglev paper shows for M >> N (M = 65537 here).
 * The bounds are in units of 1/N, over every possible removal. A population
 * that ignored the previous layout would move about (N-1)/N.
 */
static void test_maglev_removal_moves_about_one_nth(void **state)
{
	static const struct {
		int n;
		double worst, mean; /* changed entries x N / M */
	} cases[] = {{8, 1.6, 1.2}, {16, 1.6, 1.3}, {32, 1.6, 1.3}, {64, 1.6, 1.4}};
	__u16 ids[CPN_MAX_SVC_NODES], rest[CPN_MAX_SVC_NODES];

	(void)state;
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int n = cases[c].n;
		double sum = 0;

		for (int i = 0; i < n; i++)
			ids[i] = 10 + i * 5;
		build_equal(&mg, ids, n);
		for (int r = 0; r < n; r++) {
			int changed = 0, m = 0, was_r = 0;
			double f;

			for (int i = 0; i < n; i++)
				if (i != r)
					rest[m++] = ids[i];
			build_equal(&mg2, rest, m);
			for (int e = 0; e < CPN_MAGLEV_M; e++) {
				assert_int_not_equal(mg2.entry[e], 0);
				assert_int_not_equal(mg2.entry[e], ids[r]);
				if (mg.entry[e] == ids[r])
					was_r++;
				if (mg.entry[e] != mg2.entry[e])
					changed++;
				else /* every entry of the removed node moved */
					assert_int_not_equal(mg.entry[e], ids[r]);
			}
			assert_true(was_r >= CPN_MAGLEV_M / n);
			assert_true(changed >= was_r);
			f = (double)changed * n / CPN_MAGLEV_M;
			sum += f;
			assert_true(f <= cases[c].worst);
		}
		assert_true(sum / n <= cases[c].mean);
	}
}

static void test_maglev_build_is_deterministic(void **state)
{
	const __u16 ids[4] = {5, 6, 7, 8}, rev[4] = {8, 7, 6, 5};
	static int count[CPN_MAX_NODES];

	(void)state;
	build_equal(&mg, ids, 4);
	build_equal(&mg2, ids, 4);
	assert_memory_equal(&mg, &mg2, sizeof(mg));
	/* a permuted list: the same ids, as evenly spread */
	build_equal(&mg2, rev, 4);
	count_entries(&mg2, count);
	for (int id = 5; id <= 8; id++)
		assert_true(count[id] == CPN_MAGLEV_M / 4 || count[id] == CPN_MAGLEV_M / 4 + 1);
}

static void test_maglev_build_rejects_bad_input(void **state)
{
	__u16 ids[CPN_MAX_SVC_NODES + 1];
	__u32 w[CPN_MAX_SVC_NODES + 1];
	static int count[CPN_MAX_NODES];

	(void)state;
	for (int i = 0; i <= CPN_MAX_SVC_NODES; i++) {
		ids[i] = 1 + i % (CPN_MAX_NODES - 1); /* valid ids, the last one twice */
		w[i] = 100;
	}
	assert_int_equal(cpn_maglev_build(&mg, ids, w, CPN_MAX_SVC_NODES + 1), -1);
	assert_int_equal(cpn_maglev_build(&mg, ids, w, -1), -1);
	ids[3] = 0;
	assert_int_equal(cpn_maglev_build(&mg, ids, w, 8), -1);
	ids[3] = 4;
	w[7] = 0;
	assert_int_equal(cpn_maglev_build(&mg, ids, w, 8), -1);
	w[7] = 100;
	/* a rejected build leaves no half-built table behind */
	count_entries(&mg, count);
	assert_int_equal(count[0], CPN_MAGLEV_M);

	assert_int_equal(cpn_maglev_build(&mg, ids, w, CPN_MAX_SVC_NODES), 0);
	count_entries(&mg, count);
	assert_int_equal(count[0], 0);
	/* n = 0 empties the table */
	assert_int_equal(cpn_maglev_build(&mg, ids, w, 0), 0);
	count_entries(&mg, count);
	assert_int_equal(count[0], CPN_MAGLEV_M);
}

/* ---- idle tokens (jiq) -------------------------------------------------- */

#define US 1000ULL

/* A jiq service (id 0, toks[0]) of the given nodes, all live and idle. */
static struct cpn_tokens *jiq_init(struct cpn_service *s, const __u16 *ids, int n)
{
	for (int i = 0; i < n; i++)
		live_node(ids[i]);
	svc_init(s, CPN_POL_JIQ, ids, n);
	return &toks[0];
}

/* Newest first; each pop gives the token's age; an empty store gives 0. */
static void test_token_push_pop_newest_first(void **state)
{
	struct cpn_tokens *t = &toks[0];
	__u32 age = 0;

	(void)state;
	cpn_token_push(t, 7, NOW_NS);
	cpn_token_push(t, 8, NOW_NS + 10 * US);
	cpn_token_push(t, 9, NOW_NS + 25 * US);
	assert_int_equal(t->top, 3);
	assert_int_equal(cpn_token_pop(t, NOW_NS + 100 * US, &age), 9);
	assert_int_equal(age, 75);
	assert_int_equal(cpn_token_pop(t, NOW_NS + 100 * US, &age), 8);
	assert_int_equal(age, 90);
	assert_int_equal(cpn_token_pop(t, NOW_NS + 100 * US, &age), 7);
	assert_int_equal(age, 100);
	assert_int_equal(cpn_token_pop(t, NOW_NS + 100 * US, &age), 0);
	assert_int_equal(t->top, 0);
	/* pushed again after emptying: the new one, once */
	cpn_token_push(t, 5, NOW_NS + 200 * US);
	assert_int_equal(cpn_token_pop(t, NOW_NS + 200 * US, &age), 5);
	assert_int_equal(age, 0);
	assert_int_equal(cpn_token_pop(t, NOW_NS + 200 * US, &age), 0);
}

/* No store, node 0: nothing happens. */
static void test_token_null_store_and_node_zero_are_ignored(void **state)
{
	__u32 age = 123;

	(void)state;
	cpn_token_push(NULL, 7, NOW_NS);
	assert_int_equal(cpn_token_pop(NULL, NOW_NS, &age), 0);
	assert_int_equal(age, 123);
	cpn_token_push(&toks[0], 0, NOW_NS);
	assert_int_equal(toks[0].top, 0);
}

/* The age is taken on the router's µs clock mod 2^32: a token across the
 * wrap is as young as it is.
 */
static void test_token_age_across_clock_wrap(void **state)
{
	const __u64 wrap_ns = (1ULL << 32) * US;
	__u32 age = 0;

	(void)state;
	cpn_token_push(&toks[0], 3, wrap_ns - 10 * US);
	assert_int_equal(cpn_token_pop(&toks[0], wrap_ns + 20 * US, &age), 3);
	assert_int_equal(age, 30);
}

/* More pushes than slots: the newest CPN_TOKENS come back, newest first;
 * below them the slots were consumed already, so the next pop reads an
 * empty slot, gives 0 and empties the store.
 */
static void test_token_ring_wraps_and_consumed_slot_reads_empty(void **state)
{
	struct cpn_tokens *t = &toks[0];
	const int extra = 5, pushes = CPN_TOKENS + extra;
	__u32 age;

	(void)state;
	for (int k = 1; k <= pushes; k++)
		cpn_token_push(t, (__u16)(k % 1000 + 1), NOW_NS + (__u64)k * US);
	assert_int_equal(t->top, pushes);
	for (int k = pushes; k > extra; k--) {
		assert_int_equal(cpn_token_pop(t, NOW_NS + (__u64)pushes * US, &age),
				 (__u16)(k % 1000 + 1));
		assert_int_equal(age, pushes - k);
	}
	assert_int_equal(t->top, extra);
	assert_int_equal(cpn_token_pop(t, NOW_NS + (__u64)pushes * US, &age), 0);
	assert_int_equal(t->top, 0);
	assert_int_equal(cpn_token_pop(t, NOW_NS + (__u64)pushes * US, &age), 0);
}

/* A token is trusted for CPN_TOKEN_TTL_SVC of the node's service times, at
 * least CPN_TOKEN_TTL_MIN_US, and without overflow for slow nodes.
 */
static void test_token_ttl_scales_with_service_time(void **state)
{
	struct cpn_node n = {0};

	(void)state;
	n.svc_us = 100;
	assert_int_equal(cpn_token_ttl_us(&n), 100 * CPN_TOKEN_TTL_SVC);
	n.svc_us = 2000;
	assert_int_equal(cpn_token_ttl_us(&n), 2000 * CPN_TOKEN_TTL_SVC);
	n.svc_us = 1;
	assert_int_equal(cpn_token_ttl_us(&n), CPN_TOKEN_TTL_MIN_US);
	n.svc_us = 0xffffffffU;
	assert_int_equal(cpn_token_ttl_us(&n), 0xffffffffU);
}

/* jiq takes the newest token: its node, pick.token set, est and queue of
 * that node; the store loses just that token.
 */
static void test_jiq_takes_newest_token(void **state)
{
	const __u16 ids[4] = {11, 12, 13, 14};
	struct cpn_service s;
	struct cpn_tokens *t = jiq_init(&s, ids, 4);
	struct cpn_pick p;

	(void)state;
	tbl[11].queue_depth = 3; /* busy, but the store holds idle nodes */
	cpn_token_push(t, 12, NOW_NS - 30 * US);
	cpn_token_push(t, 14, NOW_NS - 20 * US);
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.verdict, CPN_PICK_OK);
	assert_int_equal(p.token, 1);
	assert_int_equal(p.node_id, 14);
	assert_int_equal(p.est_us, cpn_est_us(&tbl[14]));
	assert_int_equal(t->top, 1);
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.token, 1);
	assert_int_equal(p.node_id, 12);
	assert_int_equal(t->top, 0);
}

/* Expiry by age: a token older than its TTL is not used; as it is the
 * newest, every token under it is older still and the store is emptied.
 * The boundary is inclusive.
 */
static void test_jiq_stale_top_empties_store(void **state)
{
	const __u16 ids[3] = {21, 22, 23};
	struct cpn_service s;
	struct cpn_tokens *t = jiq_init(&s, ids, 3);
	__u64 ttl_ns = (__u64)cpn_token_ttl_us(&tbl[21]) * US;
	struct cpn_pick p;

	(void)state;
	cpn_token_push(t, 21, NOW_NS - ttl_ns - 5 * US);
	cpn_token_push(t, 22, NOW_NS - ttl_ns - 1 * US);
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.token, 0);
	assert_int_equal(p.verdict, CPN_PICK_OK); /* p2c instead */
	assert_int_equal(t->top, 0);

	cpn_token_push(t, 23, NOW_NS - ttl_ns); /* exactly the TTL: still trusted */
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.token, 1);
	assert_int_equal(p.node_id, 23);
}

/* Fresher tokens popped before a stale one are kept: only what lies under
 * the stale one goes.
 */
static void test_jiq_stale_token_keeps_fresher_ones_above(void **state)
{
	const __u16 ids[4] = {31, 32, 33, 34};
	struct cpn_service s;
	struct cpn_tokens *t = jiq_init(&s, ids, 4);
	__u64 ttl_ns = (__u64)cpn_token_ttl_us(&tbl[31]) * US;
	struct cpn_pick p;
	__u32 age = 0;

	(void)state;
	tbl[33].queue_depth = 2; /* fresh but busy: popped, then kept */
	cpn_token_push(t, 31, NOW_NS - ttl_ns - 9 * US);
	cpn_token_push(t, 32, NOW_NS - ttl_ns - 2 * US);
	cpn_token_push(t, 33, NOW_NS - 40 * US);
	p = choose(&s, NULL, 0, rng());
	/* 33 is the only fresh candidate: taken, though busy */
	assert_int_equal(p.token, 1);
	assert_int_equal(p.node_id, 33);
	assert_int_equal(t->top, 0);

	cpn_token_push(t, 31, NOW_NS - ttl_ns - 9 * US);
	cpn_token_push(t, 34, NOW_NS - 50 * US);
	cpn_token_push(t, 33, NOW_NS - 40 * US);
	tbl[34].queue_depth = 1;
	tbl[33].queue_depth = 2;
	p = choose(&s, NULL, 0, rng());
	/* 33 and 34 busy, 31 stale: the lesser of 33 and 34; the other kept */
	assert_int_equal(p.node_id, 34);
	assert_int_equal(t->top, 1);
	assert_int_equal(cpn_token_pop(t, NOW_NS, &age), 33);
	assert_int_equal(age, 40);
}

/* Membership: a token of a node that is not (or no longer) one of the
 * service's candidates is dropped, and so is one of a node that is not
 * live; the next token is used.
 */
static void test_jiq_skips_non_member_and_dead_nodes(void **state)
{
	const __u16 ids[3] = {41, 42, 43};
	struct cpn_service s;
	struct cpn_tokens *t = jiq_init(&s, ids, 3);
	struct cpn_pick p;

	(void)state;
	live_node(99);	 /* live, idle, but of no service here */
	live_node(1023); /* the last id of the bitmap */
	kill_node(43, DEAD_STALE);
	cpn_token_push(t, 42, NOW_NS - 50 * US);
	cpn_token_push(t, 43, NOW_NS - 40 * US);
	cpn_token_push(t, 99, NOW_NS - 30 * US);
	cpn_token_push(t, 1023, NOW_NS - 20 * US);
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.token, 1);
	assert_int_equal(p.node_id, 42);
	assert_int_equal(t->top, 0); /* the others are gone, not put back */
	assert_false(cpn_svc_has_node(&s, 99));
	assert_false(cpn_svc_has_node(&s, 1023));
	assert_true(cpn_svc_has_node(&s, 41));
}

/* A node with a free slot in the router's view is preferred to newer
 * tokens of busy nodes, which go back on top in their order, with their
 * age. Outstanding requests count as busy.
 */
static void test_jiq_prefers_free_slot_and_keeps_the_others(void **state)
{
	const __u16 ids[4] = {51, 52, 53, 54};
	struct cpn_service s;
	struct cpn_tokens *t = jiq_init(&s, ids, 4);
	struct cpn_pick p;
	__u32 age = 0;

	(void)state;
	tbl[52].inflight = 1;
	tbl[53].outstanding = 1;
	cpn_token_push(t, 51, NOW_NS - 30 * US); /* idle */
	cpn_token_push(t, 52, NOW_NS - 20 * US);
	cpn_token_push(t, 53, NOW_NS - 10 * US);
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.token, 1);
	assert_int_equal(p.node_id, 51);
	assert_int_equal(t->top, 2);
	assert_int_equal(cpn_token_pop(t, NOW_NS, &age), 53);
	assert_int_equal(age, 10);
	assert_int_equal(cpn_token_pop(t, NOW_NS, &age), 52);
	assert_int_equal(age, 20);
	assert_int_equal(cpn_token_pop(t, NOW_NS, &age), 0);
}

/* With no free slot among them, the least est_us of the CPN_TOKEN_TRIES
 * newest tokens wins; tokens below those are not looked at. A node of
 * capacity 2 with one request has a free slot.
 */
static void test_jiq_least_est_among_tries_newest(void **state)
{
	__u16 ids[CPN_TOKEN_TRIES + 2];
	struct cpn_service s;
	struct cpn_tokens *t;
	struct cpn_pick p;

	(void)state;
	for (int i = 0; i < CPN_TOKEN_TRIES + 2; i++)
		ids[i] = (__u16)(60 + i);
	t = jiq_init(&s, ids, CPN_TOKEN_TRIES + 2);
	for (int i = 0; i < CPN_TOKEN_TRIES + 2; i++) {
		tbl[ids[i]].queue_depth = (__u16)(10 - i % 5);
		cpn_token_push(t, ids[i], NOW_NS - (__u64)(100 - i) * US);
	}
	tbl[ids[0]].queue_depth = 0; /* the oldest two: least loaded, out of reach */
	tbl[ids[1]].queue_depth = 1;
	tbl[ids[2]].queue_depth = 4; /* the least of the reachable ones (i % 5 = 4 is 6) */
	tbl[ids[2]].inflight = 1;
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.node_id, ids[2]);
	assert_int_equal(p.est_us, cpn_est_us(&tbl[ids[2]]));
	assert_int_equal(t->top, CPN_TOKEN_TRIES + 1);

	/* capacity 2, one in service: a free slot, taken at once */
	memset(toks, 0, sizeof(toks));
	tbl[ids[1]].queue_depth = 0;
	tbl[ids[1]].inflight = 1;
	tbl[ids[1]].capacity = 2;
	cpn_token_push(t, ids[1], NOW_NS - 20 * US);
	cpn_token_push(t, ids[5], NOW_NS - 10 * US);
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.node_id, ids[1]);
	assert_int_equal(t->top, 1);
}

/* No token: jiq is p2c on the router's own view, draw for draw. Another
 * service's store does not count, and without a store (no cpn_tokens_at
 * for the id) jiq is p2c too.
 */
static void test_jiq_without_token_is_p2c(void **state)
{
	enum { N = 12 };
	__u16 ids[N];
	struct cpn_service j, p2c;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = (__u16)(200 + i);
		live_node(ids[i])->queue_depth = (__u16)((i * 7) % 5);
	}
	svc_init(&j, CPN_POL_JIQ, ids, N);
	svc_init(&p2c, CPN_POL_P2C, ids, N);
	cpn_token_push(&toks[1], ids[3], NOW_NS); /* service 1's */
	for (int round = 0; round < 2; round++) {
		if (round)
			j.id = N_TOKSTORES; /* no store */
		for (int d = 0; d < 5000; d++) {
			__u64 r = rng();
			struct cpn_pick a = choose(&j, NULL, 0, r), b = choose(&p2c, NULL, 0, r);

			assert_int_equal(a.token, 0);
			assert_int_equal(a.verdict, b.verdict);
			assert_int_equal(a.node_id, b.node_id);
			assert_int_equal(a.est_us, b.est_us);
		}
	}
	assert_int_equal(toks[1].top, 1);
}

/* A token's request is admitted like any other: BUSY when the node's
 * estimate is above max_wait_us.
 */
static void test_jiq_token_is_admitted(void **state)
{
	const __u16 ids[2] = {71, 72};
	struct cpn_service s;
	struct cpn_tokens *t = jiq_init(&s, ids, 2);
	struct cpn_pick p;

	(void)state;
	s.max_wait_us = 50; /* below one service time of 100 µs */
	cpn_token_push(t, 71, NOW_NS);
	p = choose(&s, NULL, 0, rng());
	assert_int_equal(p.verdict, CPN_PICK_BUSY);
	assert_int_equal(p.busy_reason, CPN_BUSY_WAIT);
	assert_int_equal(p.token, 1);
}

/* Concurrency sanity: CPUs pushing and popping one store at once never
 * get a node that was not pushed, nor more pops than pushes.
 */
struct tok_worker {
	int id, popped, bad;
};

static void *tok_worker_run(void *arg)
{
	struct tok_worker *w = arg;

	for (int i = 0; i < 200000; i++) {
		__u32 age;
		__u16 id;

		cpn_token_push(&toks[2], (__u16)(1 + (w->id * 7 + i) % 16), NOW_NS + (__u64)i * US);
		if (i % 3) {
			id = cpn_token_pop(&toks[2], NOW_NS + (__u64)i * US, &age);
			if (id) {
				w->popped++;
				if (id > 16)
					w->bad++;
			}
		}
	}
	return NULL;
}

static void test_token_concurrent_push_pop_sanity(void **state)
{
	struct tok_worker w[4];
	pthread_t th[4];
	int popped = 0;

	(void)state;
	for (int i = 0; i < 4; i++) {
		w[i] = (struct tok_worker){.id = i};
		assert_int_equal(pthread_create(&th[i], NULL, tok_worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
		popped += w[i].popped;
	}
	assert_true(popped > 0 && popped <= 4 * 200000);
	assert_true(toks[2].top <= 4 * 200000);
}

/* ---- all-stale fallback ------------------------------------------------ */

static const __u8 all_policies[] = {CPN_POL_P2C, CPN_POL_LEAST, CPN_POL_MAGLEV, CPN_POL_RANDOM,
				    CPN_POL_RR};

static void test_fallback_all_stale_uses_maglev_over_up_nodes(void **state)
{
	enum { N = 8 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 800 + i;
		live_node(ids[i]);
		kill_node(ids[i], i % 2 ? DEAD_STALE : DEAD_NEVER_REPORTED);
	}
	build_equal(&mg, ids, N);
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		svc_init(&s, all_policies[p], ids, N);
		for (int f = 0; f < 2000; f++) {
			__u32 h = (__u32)rng();
			struct cpn_pick pk = choose(&s, &mg, h, rng());

			assert_int_equal(pk.verdict, CPN_PICK_FALLBACK);
			assert_int_equal(pk.busy_reason, 0);
			assert_int_equal(pk.node_id, mg.entry[h % CPN_MAGLEV_M]);
			assert_int_equal(pk.est_us, 0);
		}
	}
}

static void test_fallback_skips_nodes_not_admin_up(void **state)
{
	enum { N = 8 };
	__u16 ids[N];
	struct cpn_service s;
	int seen_up[N] = {0};

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 820 + i;
		live_node(ids[i]);
		kill_node(ids[i], DEAD_STALE);
	}
	/* half of them also administratively down or drained */
	for (int i = 0; i < N; i += 2)
		kill_node(ids[i], i % 4 ? DEAD_ADMIN_DRAIN : DEAD_ADMIN_DOWN);
	build_equal(&mg, ids, N);
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		svc_init(&s, all_policies[p], ids, N);
		for (int f = 0; f < 3000; f++) {
			__u32 h = (__u32)rng();
			struct cpn_pick pk = choose(&s, &mg, h, rng());

			assert_int_equal(pk.verdict, CPN_PICK_FALLBACK);
			assert_true(cpn_node_up(&tbl[pk.node_id]));
			seen_up[pk.node_id - 820]++;
			/* the flow's own entry when that node is up */
			if (cpn_node_up(&tbl[mg.entry[h % CPN_MAGLEV_M]]))
				assert_int_equal(pk.node_id, mg.entry[h % CPN_MAGLEV_M]);
		}
	}
	for (int i = 1; i < N; i += 2)
		assert_true(seen_up[i] > 0);
}

static void test_fallback_without_table_picks_up_candidate(void **state)
{
	enum { N = 6 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 840 + i;
		live_node(ids[i]);
		kill_node(ids[i], DEAD_STALE);
		if (i != 2 && i != 4)
			kill_node(ids[i], DEAD_ADMIN_DOWN);
	}
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		svc_init(&s, all_policies[p], ids, N);
		for (int f = 0; f < 500; f++) {
			__u32 h = (__u32)rng();
			struct cpn_pick pk = choose(&s, NULL, h, rng());

			assert_int_equal(pk.verdict, CPN_PICK_FALLBACK);
			assert_true(pk.node_id == ids[2] || pk.node_id == ids[4]);
			/* consistent per flow */
			assert_int_equal(choose(&s, NULL, h, rng()).node_id, pk.node_id);
		}
	}
}

static void test_busy_no_node_when_nothing_admin_up(void **state)
{
	enum { N = 6 };
	__u16 ids[N];
	struct cpn_service s;

	(void)state;
	for (int i = 0; i < N; i++) {
		ids[i] = 860 + i;
		live_node(ids[i]);
		kill_node(ids[i], i % 2 ? DEAD_ADMIN_DOWN : DEAD_ADMIN_DRAIN);
	}
	build_equal(&mg, ids, N);
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		svc_init(&s, all_policies[p], ids, N);
		for (int f = 0; f < 200; f++) {
			struct cpn_pick pk = choose(&s, f % 2 ? &mg : NULL, (__u32)rng(), rng());

			assert_int_equal(pk.verdict, CPN_PICK_BUSY);
			assert_int_equal(pk.busy_reason, CPN_BUSY_NO_NODE);
			assert_int_equal(pk.node_id, 0);
		}
	}
}

static void test_busy_no_node_for_service_without_candidates(void **state)
{
	struct cpn_service s;

	(void)state;
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		svc_init(&s, all_policies[p], NULL, 0);
		for (int f = 0; f < 50; f++) {
			struct cpn_pick pk = choose(&s, f % 2 ? &mg : NULL, (__u32)rng(), rng());

			assert_int_equal(pk.verdict, CPN_PICK_BUSY);
			assert_int_equal(pk.busy_reason, CPN_BUSY_NO_NODE);
			assert_int_equal(pk.node_id, 0);
		}
	}
}

/* A candidate id that is out of the table's range is never dereferenced. */
static void test_invalid_candidate_ids_are_ignored(void **state)
{
	const __u16 ids[3] = {0, CPN_MAX_NODES, 9};
	struct cpn_service s;

	(void)state;
	live_node(9);
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		svc_init(&s, all_policies[p], ids, 3);
		for (int f = 0; f < 100; f++) {
			struct cpn_pick pk = choose(&s, NULL, (__u32)rng(), rng());

			assert_int_equal(pk.verdict, CPN_PICK_OK);
			assert_int_equal(pk.node_id, 9);
		}
	}
}

/* ---- admission --------------------------------------------------------- */

static void test_admission_busy_wait_when_est_exceeds_max_wait(void **state)
{
	const __u16 ids[2] = {1, 2};
	struct cpn_service s;

	(void)state;
	live_node(1)->queue_depth = 10; /* est 1100 */
	live_node(2)->queue_depth = 12; /* est 1300 */
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		if (all_policies[p] == CPN_POL_MAGLEV)
			build_equal(&mg, ids, 2);
		svc_init(&s, all_policies[p], ids, 2);
		s.max_wait_us = 1000;
		for (int f = 0; f < 200; f++) {
			struct cpn_pick pk = choose(&s, &mg, (__u32)rng(), rng());

			assert_int_equal(pk.verdict, CPN_PICK_BUSY);
			assert_int_equal(pk.busy_reason, CPN_BUSY_WAIT);
			assert_int_equal(pk.est_us, cpn_est_us(&tbl[pk.node_id]));
		}
		/* est exactly max_wait_us still passes */
		s.max_wait_us = 1300;
		for (int f = 0; f < 200; f++) {
			struct cpn_pick pk = choose(&s, &mg, (__u32)rng(), rng());

			assert_int_equal(pk.verdict, CPN_PICK_OK);
			assert_int_equal(pk.busy_reason, 0);
		}
	}
	/* least and p2c compare the best node: 1100 <= 1100 passes */
	svc_init(&s, CPN_POL_LEAST, ids, 2);
	s.max_wait_us = 1100;
	assert_int_equal(choose(&s, NULL, 0, rng()).verdict, CPN_PICK_OK);
	s.max_wait_us = 1099;
	assert_int_equal(choose(&s, NULL, 0, rng()).busy_reason, CPN_BUSY_WAIT);
}

static void test_admission_busy_queue_when_every_candidate_full(void **state)
{
	const __u16 ids[3] = {1, 2, 3};
	struct cpn_service s;

	(void)state;
	/* queue = queue_depth + outstanding; inflight does not count */
	live_node(1)->queue_depth = 4;
	live_node(2)->queue_depth = 1;
	tbl[2].outstanding = 3;
	live_node(3)->queue_depth = 9;
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		if (all_policies[p] == CPN_POL_MAGLEV)
			build_equal(&mg, ids, 3);
		svc_init(&s, all_policies[p], ids, 3);
		s.max_queue = 4;
		for (int f = 0; f < 200; f++) {
			struct cpn_pick pk = choose(&s, &mg, (__u32)rng(), rng());

			assert_int_equal(pk.verdict, CPN_PICK_BUSY);
			assert_int_equal(pk.busy_reason, CPN_BUSY_QUEUE);
		}
		s.max_queue = 5; /* node 1 and 2 have room */
		for (int f = 0; f < 200; f++) {
			struct cpn_pick pk = choose(&s, &mg, (__u32)rng(), rng());

			if (all_policies[p] == CPN_POL_P2C || all_policies[p] == CPN_POL_LEAST)
				assert_int_equal(pk.verdict, CPN_PICK_OK);
			else if (pk.node_id == 3) /* load-unaware policies */
				assert_int_equal(pk.busy_reason, CPN_BUSY_QUEUE);
			else
				assert_int_equal(pk.verdict, CPN_PICK_OK);
		}
	}
}

/* One candidate with room keeps least admitting even when it is not the
 * best by est_us: only a full house is refused.
 */
static void test_admission_queue_needs_all_candidates_full(void **state)
{
	const __u16 ids[2] = {1, 2};
	struct cpn_service s;
	struct cpn_pick pk;

	(void)state;
	live_node(1)->queue_depth = 8; /* near and full: best est */
	live_node(2)->queue_depth = 2; /* far with room */
	tbl[2].path_us = 5000;
	svc_init(&s, CPN_POL_LEAST, ids, 2);
	s.max_queue = 8;
	pk = choose(&s, NULL, 0, rng());
	assert_int_equal(pk.verdict, CPN_PICK_OK);
	assert_int_equal(pk.node_id, 1);
	tbl[2].outstanding = 6;
	pk = choose(&s, NULL, 0, rng());
	assert_int_equal(pk.verdict, CPN_PICK_BUSY);
	assert_int_equal(pk.busy_reason, CPN_BUSY_QUEUE);
	/* inflight alone is not a queue */
	tbl[1].queue_depth = 0;
	tbl[1].inflight = 1000;
	assert_int_equal(choose(&s, NULL, 0, rng()).verdict, CPN_PICK_OK);
}

static void test_admission_zero_limits_mean_unlimited(void **state)
{
	const __u16 ids[2] = {1, 2};
	struct cpn_service s;

	(void)state;
	live_node(1)->queue_depth = 60000;
	live_node(2)->queue_depth = 60000;
	tbl[1].svc_us = tbl[2].svc_us = 0xffffffffU;
	tbl[1].outstanding = tbl[2].outstanding = 60000;
	build_equal(&mg, ids, 2);
	for (unsigned p = 0; p < sizeof(all_policies); p++) {
		svc_init(&s, all_policies[p], ids, 2);
		s.max_wait_us = 0;
		s.max_queue = 0;
		for (int f = 0; f < 50; f++) {
			struct cpn_pick pk = choose(&s, &mg, (__u32)rng(), rng());

			assert_int_equal(pk.verdict, CPN_PICK_OK);
			assert_int_equal(pk.est_us, 0xffffffffU); /* saturated */
		}
	}
}

/* ---- learning ---------------------------------------------------------- */

static void load_hdr(struct cpn_hdr *h, __u16 q, __u16 infl, __u16 cap, __u8 util, __u16 flags)
{
	struct cpn_msg m;

	cpn_msg_init(&m, CPN_T_LOAD);
	m.queue_depth = q;
	m.inflight = infl;
	m.capacity = cap;
	m.util = util;
	m.flags = flags;
	m.worker_us = 1234;
	cpn_hdr_encode(&m, h);
}

/* ---- liveness from the traffic ------------------------------------------ */

/* Steered requests left unanswered: suspect past 2 expected waits + path +
 * CPN_SUSPECT_MIN_US after the first of them, not before; not chosen then.
 */
static void test_unanswered_node_becomes_suspect(void **state)
{
	const __u16 ids[2] = {1, 2};
	struct cpn_node *n = live_node(1);
	struct cpn_service s;
	__u64 dl_us = CPN_SUSPECT_MIN_US + CPN_SUSPECT_SVC * 100 + 40; /* path 40 */

	(void)state;
	live_node(2)->queue_depth = 50;
	n->path_us = 40;
	svc_init(&s, CPN_POL_P2C, ids, 2);
	cpn_node_steered(n, NOW_NS - dl_us * 1000);
	cpn_node_steered(n, NOW_NS - 10 * 1000); /* a later one keeps the first's clock */
	assert_int_equal(n->unanswered, 2);
	assert_true(n->since_ns == NOW_NS - dl_us * 1000);
	assert_false(cpn_node_suspect(n, NOW_NS));
	assert_true(is_live(1));
	assert_true(cpn_node_suspect(n, NOW_NS + 1000));
	assert_false(cpn_node_live(n, NOW_NS + 1000, STALE_MS));
	/* a queue does not lengthen it (any answer counts); a batch in flight,
	 * more than the slots, does: 3 in flight at 100 µs each, capacity 1
	 */
	{
		struct cpn_node *q = live_node(3);

		q->path_us = 40;
		q->queue_depth = 30;
		cpn_node_steered(q, NOW_NS - dl_us * 1000);
		assert_int_equal(q->deadline_us, dl_us);
		q = live_node(4);
		q->path_us = 40;
		q->inflight = 3;
		cpn_node_steered(q, NOW_NS - dl_us * 1000);
		assert_int_equal(q->deadline_us, dl_us + CPN_SUSPECT_SVC * 200);
		assert_false(cpn_node_suspect(q, NOW_NS + 1000));
		assert_false(cpn_node_suspect(q, NOW_NS + CPN_SUSPECT_SVC * 200 * 1000));
		assert_true(cpn_node_suspect(q, NOW_NS + (CPN_SUSPECT_SVC * 200 + 1) * 1000));
	}
	/* p2c avoids it although node 2 is far busier */
	for (int i = 0; i < 64; i++) {
		struct cpn_pick p;

		memset(&p, 0, sizeof(p));
		cpn_choose(tbl, &s, NULL, 0, rng(), NOW_NS + 1000, &p);
		assert_int_equal(p.verdict, CPN_PICK_OK);
		assert_int_equal(p.node_id, 2);
	}
}

/* A heartbeat does not clear unanswered requests; a REPLY or BUSY does. */
static void test_only_answers_clear_suspicion(void **state)
{
	struct cpn_node *n = live_node(1);
	__u64 t = NOW_NS + 100 * MS;
	struct cpn_hdr h;

	(void)state;
	cpn_node_steered(n, NOW_NS);
	assert_true(cpn_node_suspect(n, t));
	load_hdr(&h, 0, 0, 1, 0, 0);
	cpn_learn_report(n, &h, t);
	assert_true(cpn_node_suspect(n, t + 1));
	assert_int_equal(n->unanswered, 1);
	cpn_learn_answer(n, 0, 0, 0, NO_AGO, t); /* a BUSY */
	assert_int_equal(n->unanswered, 0);
	assert_false(cpn_node_suspect(n, t + 1));
	cpn_node_steered(n, t);
	assert_true(cpn_node_suspect(n, t + 100 * MS));
	cpn_learn_answer(n, 90, 1, 0, NO_AGO, t + 100 * MS); /* a REPLY */
	assert_false(cpn_node_suspect(n, t + 100 * MS));
}

/* An answer that leaves the node holding requests (its queue_depth +
 * inflight, which leave out what it answers) starts the clock again for
 * those of this router, with a deadline for all the node holds: a node
 * killed with a queue, after answering the head of it, is suspect a
 * deadline after that answer. The count is cleared by an answer that
 * leaves the node empty, by one to the router's only request, and by one
 * to a request steered after the clock started (what was counted before
 * it is answered or lost): a count one too high heals.
 */
static void test_answer_leaving_a_queue_restarts_the_clock(void **state)
{
	struct cpn_node *n = live_node(1); /* capacity 1, svc_us 100, no path */
	__u64 t0 = NOW_NS, t1 = NOW_NS + 3 * MS;
	struct cpn_hdr h;

	(void)state;
	cpn_node_steered(n, t0);
	cpn_node_steered(n, t0 + MS);
	cpn_node_steered(n, t0 + 2 * MS);
	assert_int_equal(n->unanswered, 3);
	/* the first answered (steered 3 ms ago, when the clock started): the
	 * two behind it still held
	 */
	load_hdr(&h, 2, 0, 1, 0, 0);
	cpn_learn_load(n, &h, t1);
	cpn_learn_answer(n, 100, 1, (__u32)n->queue_depth + n->inflight, 3000, t1);
	assert_int_equal(n->unanswered, 2);
	assert_true(n->since_ns == t1);
	/* 2 ms + twice the 2 x 100 µs its queue of two takes */
	assert_int_equal(n->deadline_us, 2000 + 2 * 200);
	assert_false(cpn_node_suspect(n, t1 + 2400 * 1000ULL));
	assert_true(cpn_node_suspect(n, t1 + 2400 * 1000ULL + 1)); /* it died after that answer */

	/* the count is never above what the node says it holds: a BUSY to a
	 * request steered before the clock started (2 ms before t0 + 3 ms)
	 */
	cpn_node_steered(n, t1 + MS);
	cpn_node_steered(n, t1 + MS);
	assert_int_equal(n->unanswered, 4);
	cpn_learn_answer(n, 0, 0, 1, 4000, t1 + 2 * MS);
	assert_int_equal(n->unanswered, 1);
	assert_true(n->since_ns == t1 + 2 * MS);
	assert_int_equal(n->deadline_us, 2000 + 2 * 100);

	/* this router's last one answered: what the node holds is another's */
	cpn_learn_answer(n, 100, 1, 7, 4000, t1 + 3 * MS);
	assert_int_equal(n->unanswered, 0);
	assert_false(cpn_node_suspect(n, t1 + 100 * MS));

	/* holding nothing: every one answered (or on its way) */
	cpn_node_steered(n, t1 + 4 * MS);
	cpn_node_steered(n, t1 + 4 * MS);
	cpn_learn_answer(n, 100, 1, 0, 1000, t1 + 5 * MS);
	assert_int_equal(n->unanswered, 0);

	/* one too many (a request lost on its way): an answer to a request
	 * steered after the clock started clears it although the node still
	 * holds other routers' requests; one to the request that started the
	 * clock does not
	 */
	t0 = t1 + 10 * MS;
	cpn_node_steered(n, t0);	  /* lost */
	cpn_node_steered(n, t0 + 2 * MS); /* answered below */
	assert_int_equal(n->unanswered, 2);
	cpn_learn_answer(n, 100, 1, 5, 2000, t0 + 4 * MS); /* steered at t0 + 2 ms: ago 2000 */
	assert_int_equal(n->unanswered, 0);
	cpn_node_steered(n, t0 + 10 * MS);
	cpn_node_steered(n, t0 + 10 * MS);
	/* steered at the clock's start, to the µs (router_ts whole µs) */
	cpn_learn_answer(n, 100, 1, 5, 1000, t0 + 11 * MS - 999);
	assert_int_equal(n->unanswered, 1);
	/* an age not known, or implausible: no clearing by it */
	cpn_node_steered(n, t0 + 12 * MS);
	cpn_learn_answer(n, 100, 1, 5, ~0u, t0 + 20 * MS);
	assert_int_equal(n->unanswered, 1);

	/* a batch: held 8 on one slot, svc_us 100 a request: the next answer
	 * comes after the whole batch, 800 µs
	 */
	cpn_node_steered(n, t0 + 21 * MS);
	cpn_node_steered(n, t0 + 21 * MS);
	cpn_learn_answer(n, 100, 1, 8, ~0u, t0 + 22 * MS);
	assert_int_equal(n->unanswered, 2);
	assert_int_equal(n->deadline_us, 2000 + 2 * 800);
}

/* A suspect node that still reports is tried again once every
 * CPN_SUSPECT_RETRY_NS: the try leaves it suspect, and the next one waits
 * for a report after it. One that reports nothing after it turned suspect
 * (it died; a report it sent before may arrive late) is never tried.
 */
static void test_suspect_node_tried_again_only_while_reporting(void **state)
{
	struct cpn_node *n = live_node(1);
	__u64 t0 = NOW_NS, t;
	struct cpn_hdr h;

	(void)state;
	n->last_report_ns = t0 - MS;
	cpn_node_steered(n, t0);
	t = t0 + CPN_SUSPECT_RETRY_NS + MS;
	assert_true(cpn_node_suspect(n, t));
	assert_false(cpn_node_answering(n, t)); /* dead: no report since */
	n->last_report_ns = t0 + 1000;		/* sent before it died, arrived late */
	assert_false(cpn_node_answering(n, t));
	load_hdr(&h, 0, 0, 1, 0, 0);
	cpn_learn_report(n, &h, t0 + 150 * MS); /* alive, its replies lost */
	assert_false(cpn_node_answering(n, t0 + 160 * MS));
	assert_true(cpn_node_answering(n, t));
	assert_true(cpn_node_live(n, t, STALE_MS));
	cpn_node_steered(n, t); /* the try */
	assert_true(n->since_ns == t - (__u64)n->deadline_us * 1000 - 1);
	assert_int_equal(n->unanswered, 2);
	assert_true(cpn_node_suspect(n, t + 1)); /* still suspect */
	assert_false(cpn_node_answering(n, t + 1));
	/* the next try: CPN_SUSPECT_RETRY_NS on, and only after a new report */
	assert_false(cpn_node_answering(n, t + CPN_SUSPECT_RETRY_NS));
	cpn_learn_report(n, &h, t + MS);
	assert_false(cpn_node_answering(n, t + CPN_SUSPECT_RETRY_NS - 3 * MS));
	assert_true(cpn_node_answering(n, t + CPN_SUSPECT_RETRY_NS));
	/* an answer clears it */
	cpn_learn_answer(n, 100, 1, 0, NO_AGO, t + MS);
	assert_true(cpn_node_answering(n, t + 2 * MS));
}

/* A suspect node is gone, for the fallback, after CPN_GONE_DEADLINES of
 * its deadlines with no report since its unanswered requests.
 */
static void test_gone_takes_deadlines_and_silence(void **state)
{
	struct cpn_node *n = live_node(1);
	__u64 dl;

	(void)state;
	n->last_report_ns = NOW_NS - MS;
	cpn_node_steered(n, NOW_NS);
	dl = (__u64)n->deadline_us * 1000;
	assert_true(cpn_node_suspect(n, NOW_NS + dl + 1));
	assert_false(cpn_node_gone(n, NOW_NS + dl + 1));
	/* 4 deadlines, and 20 ms at least (this node's 4 deadlines are less) */
	assert_true(CPN_GONE_DEADLINES * dl < CPN_GONE_MIN_NS);
	assert_false(cpn_node_gone(n, NOW_NS + CPN_GONE_DEADLINES * dl + 1));
	assert_false(cpn_node_gone(n, NOW_NS + CPN_GONE_MIN_NS));
	assert_true(cpn_node_gone(n, NOW_NS + CPN_GONE_MIN_NS + 1));
	n->svc_us = 5000; /* a slow node: its 4 deadlines are more than 20 ms */
	cpn_learn_answer(n, 0, 0, 0, NO_AGO, NOW_NS);
	cpn_node_steered(n, NOW_NS);
	dl = (__u64)n->deadline_us * 1000;
	assert_false(cpn_node_gone(n, NOW_NS + CPN_GONE_DEADLINES * dl));
	assert_true(cpn_node_gone(n, NOW_NS + CPN_GONE_DEADLINES * dl + 1));
	n->last_report_ns = NOW_NS + dl; /* sent before, arrived late: no sign */
	assert_true(cpn_node_gone(n, NOW_NS + 100 * dl));
	n->last_report_ns = NOW_NS + dl + 1; /* reported after it turned suspect */
	assert_false(cpn_node_gone(n, NOW_NS + 100 * dl));
	/* the fallback sending to it does not restart its clock */
	n->last_report_ns = NOW_NS - MS;
	cpn_node_steered(n, NOW_NS + 100 * dl);
	assert_true(n->since_ns == NOW_NS);
	assert_true(cpn_node_gone(n, NOW_NS + 100 * dl));
	cpn_learn_answer(n, 0, 0, 0, NO_AGO, NOW_NS + 100 * dl);
	assert_false(cpn_node_gone(n, NOW_NS + 100 * dl));
}

/* No live candidate: a reporting node suspect for a moment (not gone)
 * comes before a node silent for long; a node that reported DRAINING is
 * never the fallback's.
 */
static void test_fallback_prefers_reporting_suspect_over_stale(void **state)
{
	const __u16 ids[2] = {1, 2};
	__u32 w[2] = {1, 1};
	struct cpn_service s;
	struct cpn_node *a = live_node(1), *b = live_node(2);

	(void)state;
	kill_node(2, DEAD_STALE);
	svc_init(&s, CPN_POL_P2C, ids, 2);
	assert_int_equal(cpn_maglev_build(&mg, ids, w, 2), 0);
	a->last_report_ns = NOW_NS - 4 * MS;
	cpn_node_steered(a, NOW_NS - 3 * MS); /* suspect at NOW_NS, not gone */
	assert_true(cpn_node_suspect(a, NOW_NS));
	assert_false(cpn_node_gone(a, NOW_NS));
	for (__u32 h = 0; h < 100; h++) {
		struct cpn_pick p;

		memset(&p, 0, sizeof(p));
		cpn_choose(tbl, &s, &mg, h * 7919u, rng(), NOW_NS, &p);
		assert_int_equal(p.verdict, CPN_PICK_FALLBACK);
		assert_int_equal(p.node_id, 1);
	}
	/* node 1 gone (silent since): the stale node 2 may still serve */
	for (__u32 h = 0; h < 100; h++) {
		struct cpn_pick p;

		memset(&p, 0, sizeof(p));
		cpn_choose(tbl, &s, &mg, h * 7919u, rng(), NOW_NS + 100 * MS, &p);
		assert_int_equal(p.node_id, 2);
	}
	/* ...unless it said DRAINING */
	b->report_flags |= CPN_REP_DRAINING;
	{
		struct cpn_pick p;

		memset(&p, 0, sizeof(p));
		cpn_choose(tbl, &s, &mg, 7, rng(), NOW_NS + 100 * MS, &p);
		assert_int_equal(p.verdict, CPN_PICK_BUSY);
		assert_int_equal(p.busy_reason, CPN_BUSY_NO_NODE);
	}
}

/* All candidates stale: the fallback skips nodes that are gone; none left:
 * BUSY no_node, not silence.
 */
static void test_fallback_skips_suspect_nodes_then_busy(void **state)
{
	const __u16 ids[3] = {1, 2, 3};
	__u32 w[3] = {1, 1, 1};
	struct cpn_service s;
	__u64 t = NOW_NS + 50 * MS;

	(void)state;
	for (__u16 id = 1; id <= 3; id++) {
		live_node(id);
		kill_node(id, DEAD_STALE);
	}
	svc_init(&s, CPN_POL_P2C, ids, 3);
	assert_int_equal(cpn_maglev_build(&mg, ids, w, 3), 0);
	cpn_node_steered(&tbl[1], NOW_NS);
	cpn_node_steered(&tbl[2], NOW_NS);
	for (__u32 h = 0; h < 200; h++) {
		struct cpn_pick p;

		memset(&p, 0, sizeof(p));
		cpn_choose(tbl, &s, &mg, h * 7919u, rng(), t, &p);
		assert_int_equal(p.verdict, CPN_PICK_FALLBACK);
		assert_int_equal(p.node_id, 3);
		memset(&p, 0, sizeof(p));
		cpn_choose(tbl, &s, NULL, h * 7919u, rng(), t, &p);
		assert_int_equal(p.node_id, 3);
	}
	cpn_node_steered(&tbl[3], NOW_NS);
	for (__u32 h = 0; h < 50; h++) {
		struct cpn_pick p;

		memset(&p, 0, sizeof(p));
		cpn_choose(tbl, &s, &mg, h * 7919u, rng(), t, &p);
		assert_int_equal(p.verdict, CPN_PICK_BUSY);
		assert_int_equal(p.busy_reason, CPN_BUSY_NO_NODE);
	}
}

/* ---- estimates that heal ------------------------------------------------ */

/* A node idle, sent nothing, reporting the same mean as last time has not
 * re-measured it: its estimate decays by 1/8 a report; a mean that moved,
 * or a busy node, is learned as usual.
 */
static void test_stale_mean_decays_while_idle(void **state)
{
	struct cpn_node *n = live_node(1);
	struct cpn_hdr h;
	__u32 prev;

	(void)state;
	load_hdr(&h, 0, 0, 1, 0, 0);
	h.worker_us = cpn_htonl(8000);
	n->svc_us = 8000;
	cpn_learn_report(n, &h, NOW_NS); /* first: learned, remembered */
	assert_int_equal(n->svc_us, 8000);
	assert_int_equal(n->reported_us, 8000);
	assert_true(n->report_flags & CPN_REP_IDLE);
	n->report_flags &= ~CPN_REP_IDLE; /* the report before was busy */
	cpn_learn_report(n, &h, NOW_NS);  /* idle once: no more than that */
	assert_int_equal(n->svc_us, 8000);
	assert_true(n->report_flags & CPN_REP_IDLE);
	prev = n->svc_us;
	for (int i = 0; i < 8; i++) {
		cpn_learn_report(n, &h, NOW_NS);
		assert_true(n->svc_us < prev);
		assert_true(n->svc_us >= prev - prev / 8 - 1);
		prev = n->svc_us;
	}
	assert_true(n->svc_us < 8000 * 35 / 100); /* (7/8)^8 = 0.34 */
	/* on and on: down to a quarter of the reported mean, never below,
	 * whatever the rounding of the last step (from 200: 52 would be 45)
	 */
	for (int i = 0; i < 64; i++) {
		cpn_learn_report(n, &h, NOW_NS);
		assert_true(n->svc_us >= 8000 / CPN_DECAY_FLOOR);
	}
	assert_int_equal(n->svc_us, 8000 / CPN_DECAY_FLOOR);
	load_hdr(&h, 0, 0, 1, 0, 0);
	h.worker_us = cpn_htonl(200);
	n->svc_us = 52;
	n->reported_us = 200;
	n->report_flags |= CPN_REP_IDLE;
	cpn_learn_report(n, &h, NOW_NS);
	assert_int_equal(n->svc_us, 50);
	h.worker_us = cpn_htonl(8000);
	n->reported_us = 8000;
	n->svc_us = prev;
	/* sent work since: learned from the report, not decayed */
	n->outstanding = 1;
	cpn_learn_report(n, &h, NOW_NS);
	assert_true(n->svc_us > prev);
	assert_false(n->report_flags & CPN_REP_IDLE);
	/* a new mean: learned */
	prev = n->svc_us;
	h.worker_us = cpn_htonl(2000);
	cpn_learn_report(n, &h, NOW_NS);
	assert_int_equal(n->svc_us, cpn_ewma(prev, 2000, 1));
}

/* A node that reports 64 slots but answers as one: the overclaim grows
 * toward 64 and its estimate with it; an honest node's stays near one.
 */
static void test_overclaim_scales_reported_capacity(void **state)
{
	struct cpn_node *liar = live_node(1), *honest = live_node(2);
	__u64 e0, e1;

	(void)state;
	liar->capacity = 64;
	liar->svc_us = 2000;
	liar->queue_depth = 30;
	liar->inflight = 1;
	e0 = cpn_est_us(liar);
	for (int i = 0; i < 64; i++)
		cpn_learn_answer(liar, 32 * 2000, 1, 0, NO_AGO,
				 NOW_NS); /* 31 ahead of it, one at a time */
	assert_true(liar->overclaim > 40 * CPN_OVERCLAIM_ONE);
	e1 = cpn_est_us(liar);
	assert_true(e1 > e0 * 30);
	honest->capacity = 4;
	honest->svc_us = 2000;
	honest->queue_depth = 8;
	honest->inflight = 4;
	for (int i = 0; i < 64; i++)
		cpn_learn_answer(honest, (8 / 4 + 1) * 2000, 1, 0, NO_AGO,
				 NOW_NS); /* 2 batches ahead + its own */
	assert_true(honest->overclaim <= CPN_OVERCLAIM_OK);
	/* no queue: no sample */
	honest->queue_depth = 0;
	honest->overclaim = 0;
	cpn_learn_answer(honest, 1000000, 1, 0, NO_AGO, NOW_NS);
	assert_int_equal(honest->overclaim, 0);
}

static void test_learn_load_sets_fields_and_resets_outstanding(void **state)
{
	struct cpn_node *n = live_node(3);
	struct cpn_hdr h;

	(void)state;
	n->outstanding = 17;
	n->unanswered = 5;
	n->svc_us = 77;
	n->path_us = 55;
	n->report_flags = CPN_REP_SVC_VALID | CPN_REP_PATH_VALID;
	load_hdr(&h, 0x0102, 0x0304, 0x0506, 200, 0);
	cpn_learn_load(n, &h, NOW_NS + 42);
	assert_int_equal(n->queue_depth, 0x0102);
	assert_int_equal(n->inflight, 0x0304);
	assert_int_equal(n->capacity, 0x0506);
	assert_int_equal(n->util, 200);
	assert_int_equal(n->outstanding, 0);
	assert_int_equal(n->last_report_ns, NOW_NS + 42);
	/* a report is not an answer: the unanswered stay */
	assert_int_equal(n->unanswered, 5);
	/* the controller's fields and the other estimates are left alone */
	assert_int_equal(n->admin, CPN_ADMIN_UP);
	assert_int_equal(n->weight, 100);
	assert_int_equal(n->svc_us, 77);
	assert_int_equal(n->path_us, 55);
	assert_int_equal(n->report_flags, CPN_REP_SVC_VALID | CPN_REP_PATH_VALID);
}

static void test_learn_load_sets_and_clears_draining(void **state)
{
	struct cpn_node *n = live_node(3);
	struct cpn_hdr h;

	(void)state;
	load_hdr(&h, 1, 1, 1, 0, CPN_F_DRAINING | CPN_F_AUTH);
	cpn_learn_load(n, &h, NOW_NS);
	assert_true(n->report_flags & CPN_REP_DRAINING);
	assert_true(n->report_flags & CPN_REP_SVC_VALID);
	assert_false(is_live(3));
	/* other flags do not mean draining */
	load_hdr(&h, 1, 1, 1, 0, CPN_F_AUTH | CPN_F_TAGGED | CPN_F_STICKY);
	cpn_learn_load(n, &h, NOW_NS);
	assert_false(n->report_flags & CPN_REP_DRAINING);
	assert_true(n->report_flags & CPN_REP_SVC_VALID);
	assert_true(is_live(3));
}

static void test_learn_load_revives_stale_node(void **state)
{
	struct cpn_node *n = live_node(3);
	struct cpn_hdr h;

	(void)state;
	kill_node(3, DEAD_NEVER_REPORTED);
	assert_false(is_live(3));
	load_hdr(&h, 0, 0, 4, 0, 0);
	cpn_learn_load(n, &h, NOW_NS - MS);
	assert_true(is_live(3));
}

static void test_learn_svc_first_sample_direct_then_ewma(void **state)
{
	struct cpn_node n = {0};

	(void)state;
	n.svc_us = 99999; /* garbage before the first sample */
	cpn_learn_svc(&n, 800);
	assert_int_equal(n.svc_us, 800);
	assert_true(n.report_flags & CPN_REP_SVC_VALID);
	assert_false(n.report_flags & CPN_REP_PATH_VALID);
	/* new = (7 old + sample + 4) / 8 */
	cpn_learn_svc(&n, 1600);
	assert_int_equal(n.svc_us, (7 * 800 + 1600 + 4) / 8); /* 900 */
	cpn_learn_svc(&n, 1600);
	assert_int_equal(n.svc_us, (7 * 900 + 1600 + 4) / 8); /* 988 */
	cpn_learn_svc(&n, 0);
	assert_int_equal(n.svc_us, (7 * 988 + 0 + 4) / 8); /* 865 */
}

static void test_learn_path_first_sample_direct_then_ewma(void **state)
{
	struct cpn_node n = {0};

	(void)state;
	n.path_us = 12345;
	n.report_flags = CPN_REP_SVC_VALID;
	cpn_learn_path(&n, 40);
	assert_int_equal(n.path_us, 40);
	assert_true(n.report_flags & CPN_REP_PATH_VALID);
	cpn_learn_path(&n, 120);
	assert_int_equal(n.path_us, (7 * 40 + 120 + 4) / 8); /* 50 */
	cpn_learn_path(&n, 120);
	assert_int_equal(n.path_us, (7 * 50 + 120 + 4) / 8); /* 59 */
	/* svc and path are separate estimates */
	n.svc_us = 5;
	cpn_learn_svc(&n, 700);
	assert_int_equal(n.svc_us, (7 * 5 + 700 + 4) / 8);
	assert_int_equal(n.path_us, 59);
}

static void test_ewma_settles_near_constant_input_without_overflow(void **state)
{
	struct cpn_node n = {0};

	(void)state;
	cpn_learn_path(&n, 1000000);
	for (int i = 0; i < 200; i++)
		cpn_learn_path(&n, 300);
	/* integer EWMA with rounding: a dead band of 2^shift / 2 */
	assert_true(n.path_us >= 300 - 4 && n.path_us <= 300 + 4);
	for (int i = 0; i < 200; i++)
		cpn_learn_path(&n, 0xffffffffU);
	assert_true(n.path_us >= 0xffffffffU - 4);
}

static void test_path_sample_is_rtt_minus_time_inside(void **state)
{
	(void)state;
	assert_int_equal(cpn_path_sample(1000, 400, 100), 500);
	assert_int_equal(cpn_path_sample(1000, 400, 0), 600);
	assert_int_equal(cpn_path_sample(1000, 1000, 0), 0);
}

static void test_path_sample_handles_clock_wraparound(void **state)
{
	(void)state;
	assert_int_equal(cpn_path_sample(0x00000100U, 0xffffff00U, 12), 0x200 - 12);
	assert_int_equal(cpn_path_sample(0, 0xffffffffU, 0), 1);
	assert_int_equal(cpn_path_sample(4000000, 0xffffffffU - 5999999, 1000), 9999000);
}

static void test_path_sample_rejects_implausible(void **state)
{
	(void)state;
	assert_int_equal(cpn_path_sample(CPN_PATH_MAX_US, 0, 0), CPN_PATH_MAX_US);
	assert_int_equal(cpn_path_sample(CPN_PATH_MAX_US + 1, 0, 0), -1);
	/* an echo from the future (router_ts ahead of now) is a huge rtt */
	assert_int_equal(cpn_path_sample(1000, 1001, 0), -1);
	assert_int_equal(cpn_path_sample(5, 0x80000000U, 0), -1);
}

static void test_path_sample_worker_time_above_rtt_is_zero(void **state)
{
	(void)state;
	assert_int_equal(cpn_path_sample(1000, 900, 101), 0);
	assert_int_equal(cpn_path_sample(1000, 900, 100), 0);
	assert_int_equal(cpn_path_sample(1000, 900, 99), 1);
	assert_int_equal(cpn_path_sample(1000, 900, 0xffffffffU), 0);
}

static void test_hist_bucket_boundaries(void **state)
{
	(void)state;
	assert_int_equal(cpn_hist_bucket(0), 0);
	assert_int_equal(cpn_hist_bucket(1), 0);
	assert_int_equal(cpn_hist_bucket(2), 1);
	assert_int_equal(cpn_hist_bucket(3), 1);
	assert_int_equal(cpn_hist_bucket(4), 2);
	assert_int_equal(cpn_hist_bucket(7), 2);
	assert_int_equal(cpn_hist_bucket(8), 3);
	for (int k = 1; k < CPN_HIST_BUCKETS; k++) {
		assert_int_equal(cpn_hist_bucket(1u << k), k);
		assert_int_equal(cpn_hist_bucket((1u << k) - 1), k - 1);
		assert_int_equal(cpn_hist_bucket((1u << k) + 1), k);
	}
	assert_int_equal(cpn_hist_bucket(1u << (CPN_HIST_BUCKETS - 1)), CPN_HIST_BUCKETS - 1);
	assert_int_equal(cpn_hist_bucket(1u << CPN_HIST_BUCKETS), CPN_HIST_BUCKETS - 1);
	assert_int_equal(cpn_hist_bucket(1u << 31), CPN_HIST_BUCKETS - 1);
	assert_int_equal(cpn_hist_bucket(0xffffffffU), CPN_HIST_BUCKETS - 1);
}

/* ---- flow hash --------------------------------------------------------- */

static void test_flow_hash_uses_session_key_when_present(void **state)
{
	const __be32 a[4] = {cpn_htonl(0x0a000001), 0, 0, 0};
	const __be32 b[4] = {cpn_htonl(0x0a000002), 0, 0, 0};

	(void)state;
	/* one session from two addresses and ports: one flow */
	assert_int_equal(cpn_flow_hash(a, cpn_htons(1000), 7, 99),
			 cpn_flow_hash(b, cpn_htons(2000), 7, 99));
	/* the session belongs to its tenant */
	assert_int_not_equal(cpn_flow_hash(a, cpn_htons(1000), 7, 99),
			     cpn_flow_hash(a, cpn_htons(1000), 8, 99));
	assert_int_not_equal(cpn_flow_hash(a, cpn_htons(1000), 7, 99),
			     cpn_flow_hash(a, cpn_htons(1000), 7, 98));
}

static void test_flow_hash_without_session_uses_client_address_and_port(void **state)
{
	const __be32 a[4] = {cpn_htonl(0x20010db8), 0, 0, cpn_htonl(1)};
	__be32 b[4];
	__u32 h = cpn_flow_hash(a, cpn_htons(1000), 7, 0);

	(void)state;
	assert_int_equal(cpn_flow_hash(a, cpn_htons(1000), 8, 0), h); /* tenant not part of it */
	assert_int_not_equal(cpn_flow_hash(a, cpn_htons(1001), 7, 0), h);
	for (int w = 0; w < 4; w++) {
		memcpy(b, a, sizeof(b));
		b[w] ^= cpn_htonl(0x100);
		assert_int_not_equal(cpn_flow_hash(b, cpn_htons(1000), 7, 0), h);
	}
}

#define T(f) cmocka_unit_test_setup(f, reset_tables)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_est_us_follows_formula),
	    T(test_est_us_is_exact_past_32_bits),
	    T(test_est_us_by_slot_cost_matches_quotient),
	    T(test_slot_cost_falls_back_where_too_large),
	    T(test_slot_cost_kept_by_every_writer),
	    T(test_est_us_each_queue_term_counts_once),
	    T(test_est_us_zero_capacity_weight_svc_use_defaults),
	    T(test_est_us_large_values_do_not_overflow),
	    T(test_live_requires_admin_up),
	    T(test_live_false_when_admin_drain),
	    T(test_live_false_when_node_reports_draining),
	    T(test_live_false_when_never_reported),
	    T(test_live_stale_boundary_is_inclusive),
	    T(test_live_report_newer_than_now_is_fresh),
	    T(test_p2c_less_loaded_of_two_always_wins),
	    T(test_p2c_pick_shares_match_uniform_distinct_pairs),
	    T(test_p2c_samples_every_position_equally),
	    T(test_p2c_pair_decides_as_choose_and_defers_on_dead),
	    T(test_p2c_candidates_are_distinct),
	    T(test_p2c_never_picks_dead_node),
	    T(test_p2c_single_live_node_is_picked),
	    T(test_p2c_does_not_touch_outstanding),
	    T(test_p2c_outstanding_shifts_choice),
	    T(test_least_picks_minimum_est),
	    T(test_least_spreads_ties_across_equal_nodes),
	    T(test_least_path_latency_counts),
	    T(test_least_weight_counts),
	    T(test_least_never_picks_dead_node),
	    T(test_rr_cycles_evenly_through_live_nodes),
	    T(test_rr_skips_dead_nodes_evenly),
	    T(test_random_is_roughly_uniform),
	    T(test_random_is_uniform_over_live_nodes),
	    T(test_maglev_same_flow_same_node),
	    T(test_maglev_dead_node_moves_only_its_flows),
	    T(test_maglev_without_table_stays_consistent_among_live),
	    T(test_maglev_table_balanced_for_1_to_923_nodes),
	    T(test_maglev_honours_weights),
	    T(test_maglev_removal_moves_about_one_nth),
	    T(test_maglev_build_is_deterministic),
	    T(test_maglev_build_rejects_bad_input),
	    T(test_token_push_pop_newest_first),
	    T(test_token_null_store_and_node_zero_are_ignored),
	    T(test_token_age_across_clock_wrap),
	    T(test_token_ring_wraps_and_consumed_slot_reads_empty),
	    T(test_token_ttl_scales_with_service_time),
	    T(test_jiq_takes_newest_token),
	    T(test_jiq_stale_top_empties_store),
	    T(test_jiq_stale_token_keeps_fresher_ones_above),
	    T(test_jiq_skips_non_member_and_dead_nodes),
	    T(test_jiq_prefers_free_slot_and_keeps_the_others),
	    T(test_jiq_least_est_among_tries_newest),
	    T(test_jiq_without_token_is_p2c),
	    T(test_jiq_token_is_admitted),
	    T(test_token_concurrent_push_pop_sanity),
	    T(test_fallback_all_stale_uses_maglev_over_up_nodes),
	    T(test_fallback_skips_nodes_not_admin_up),
	    T(test_fallback_without_table_picks_up_candidate),
	    T(test_busy_no_node_when_nothing_admin_up),
	    T(test_busy_no_node_for_service_without_candidates),
	    T(test_invalid_candidate_ids_are_ignored),
	    T(test_admission_busy_wait_when_est_exceeds_max_wait),
	    T(test_admission_busy_queue_when_every_candidate_full),
	    T(test_admission_queue_needs_all_candidates_full),
	    T(test_admission_zero_limits_mean_unlimited),
	    T(test_learn_load_sets_fields_and_resets_outstanding),
	    T(test_unanswered_node_becomes_suspect),
	    T(test_only_answers_clear_suspicion),
	    T(test_answer_leaving_a_queue_restarts_the_clock),
	    T(test_suspect_node_tried_again_only_while_reporting),
	    T(test_gone_takes_deadlines_and_silence),
	    T(test_fallback_prefers_reporting_suspect_over_stale),
	    T(test_fallback_skips_suspect_nodes_then_busy),
	    T(test_stale_mean_decays_while_idle),
	    T(test_overclaim_scales_reported_capacity),
	    T(test_learn_load_sets_and_clears_draining),
	    T(test_learn_load_revives_stale_node),
	    T(test_learn_svc_first_sample_direct_then_ewma),
	    T(test_learn_path_first_sample_direct_then_ewma),
	    T(test_ewma_settles_near_constant_input_without_overflow),
	    T(test_path_sample_is_rtt_minus_time_inside),
	    T(test_path_sample_handles_clock_wraparound),
	    T(test_path_sample_rejects_implausible),
	    T(test_path_sample_worker_time_above_rtt_is_zero),
	    T(test_hist_bucket_boundaries),
	    T(test_flow_hash_uses_session_key_when_present),
	    T(test_flow_hash_without_session_uses_client_address_and_port),
	};

	return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
