/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The cpn policy core: estimated completion time, liveness, node choice,
 * admission, Maglev, and learning from load reports.
 *
 * Used unchanged by the XDP router, cpn-fwd, cpn-sim and the unit tests.
 * Pure C: no BPF helpers; randomness and time are passed in. How a node's
 * state is found is the includer's business: define
 *
 *     #define cpn_node_at(ctx, id)  <expression giving struct cpn_node * or NULL>
 *
 * before including this file. Without it, `ctx` is a flat
 * struct cpn_node[CPN_MAX_NODES] array, which is exactly how the mmaped
 * cpn_node_state map looks from userspace.
 *
 * Policy jiq keeps idle tokens per service: define
 *
 *     #define cpn_tokens_at(ctx, svc_id)  <struct cpn_tokens * or NULL>
 *
 * where there is a token store (without it, jiq is p2c).
 *
 * CPN_CTX names the type `ctx` points to (default void). The loops below are
 * declared CPN_SCHED_FN: inline by default; the XDP program makes them
 * global BPF functions (CPN_SCHED_FN = noinline, non-static) so that the
 * verifier checks each once and callers see their result as one unknown
 * scalar rather than one state per loop exit. Hence at most five arguments
 * each, and pointer arguments that are checked for NULL.
 */
#ifndef CPN_SCHED_H
#define CPN_SCHED_H

#include "cpn/compiler.h"
#include "cpn/maps.h"
#include "cpn/proto.h"

#ifndef CPN_CTX
#define CPN_CTX void
#endif
#ifndef CPN_SCHED_FN
#define CPN_SCHED_FN static __always_inline
#endif
/* A global BPF function must receive a valid ctx even where its accessor
 * ignores it: keep the argument alive at every call site.
 */
#define CPN_CTX_USE(ctx) cpn_barrier_var(ctx)

#ifndef cpn_node_at
static __always_inline struct cpn_node *cpn_node_at_flat(void *tbl, __u32 id)
{
	if (id == 0 || id >= CPN_MAX_NODES)
		return (struct cpn_node *)0;
	return &((struct cpn_node *)tbl)[id];
}
#define cpn_node_at(ctx, id) cpn_node_at_flat(ctx, id)
#endif
#ifndef cpn_tokens_at
#define cpn_tokens_at(ctx, svc_id) ((struct cpn_tokens *)0)
#endif

#define CPN_EWMA_SHIFT 3 /* EWMA weight of a new sample: 1/8 */
/* Liveness from the traffic: a node that leaves the requests steered to it
 * unanswered for longer than its answers should take (CPN_SUSPECT_SVC times
 * the time between its answers, plus its path and CPN_SUSPECT_MIN_US) is
 * suspect and not chosen; while it still reports, one is tried again every
 * CPN_SUSPECT_RETRY_NS. Only a REPLY or BUSY of it clears this, or starts
 * the clock again (cpn_node_answered): a heartbeat does not.
 */
#define CPN_SUSPECT_SVC	     2
#define CPN_SUSPECT_MIN_US   2000
#define CPN_SUSPECT_RETRY_NS 200000000ULL
/* Gone: suspect for CPN_GONE_DEADLINES deadlines (CPN_GONE_MIN_NS at
 * least) with no report since: the fallback no longer sends it any.
 */
#define CPN_GONE_DEADLINES 4
#define CPN_GONE_MIN_NS	   20000000ULL /* and never before 20 ms: a host's stall */
/* Reported capacity against measured answers (cpn_node.overclaim). */
#define CPN_OVERCLAIM_ONE 16
#define CPN_OVERCLAIM_OK  20 /* 1.25: what batching and variance leave */
/* A stale mean decays no lower than the reported mean / CPN_DECAY_FLOOR:
 * low enough that a node that was 4x slower is tried again, not so low
 * that idle nodes look far faster than they are when load returns.
 */
#define CPN_DECAY_FLOOR	  4
#define CPN_SLOT_SHIFT	  8	   /* cpn_node.slot_cost is in 1/256 µs */
#define CPN_MAGLEV_PROBES 8	   /* entries tried past a dead Maglev entry */
#define CPN_PATH_MAX_US	  10000000 /* a path sample above 10 s is discarded */

enum cpn_pick_verdict {
	CPN_PICK_OK = 0,       /* steer to node_id */
	CPN_PICK_FALLBACK = 1, /* no live node: Maglev over up nodes chose node_id */
	CPN_PICK_BUSY = 2,     /* refuse: BUSY with busy_reason */
};

struct cpn_pick {
	__u16 node_id;
	__u8 verdict;
	__u8 busy_reason;
	__u32 est_us;
	union {
		__u32 min_queue; /* least queue among the candidates considered */
		__u32 flow_hash; /* in, for cpn_fallback (cpn_fallback_at sets it) */
	};
	__u8 token; /* jiq: the node came from an idle token */
	__u8 pad[3];
};

/* ---- mixing and hashing --------------------------------------------- */

static __always_inline __u32 cpn_mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 cpn_hash3(__u32 a, __u32 b, __u32 c)
{
	return cpn_mix32(a ^ cpn_mix32(b ^ cpn_mix32(c ^ 0x9e3779b9U)));
}

/* Flow hash for Maglev: the session when there is one, else the client's
 * address and port (the destination is the service's VIP, the same for all).
 */
static __always_inline __u32 cpn_flow_hash(const __be32 saddr[4], __be16 sport, __u32 tenant_id,
					   __u32 session_key)
{
	if (session_key)
		return cpn_hash3(tenant_id, session_key, 0x5e551011U);
	return cpn_hash3(saddr[0] ^ saddr[1], saddr[2] ^ saddr[3], sport);
}

/* ---- node state ------------------------------------------------------ */

static __always_inline int cpn_node_up(const struct cpn_node *n)
{
	return (n->admin & CPN_ADMIN_UP) && !(n->admin & CPN_ADMIN_DRAIN);
}

/* How long the node may take to answer anything, µs, while it holds
 * `held`: CPN_SUSPECT_SVC times the time between its answers, plus its
 * path and CPN_SUSPECT_MIN_US. Any answer counts, so a queue does not
 * lengthen this: a node that has work answers one request each service
 * time, or one batch, when it holds more than its slots
 * (held x svc_us / capacity).
 */
static __always_inline __u32 cpn_deadline_us(const struct cpn_node *n, __u32 held)
{
	__u64 gap = n->svc_us, dl;
	__u32 cap = n->capacity ? n->capacity : 1;

	if (held > cap)
		gap = (__u64)held * n->svc_us / cap;
	dl = (__u64)n->path_us + CPN_SUSPECT_MIN_US + CPN_SUSPECT_SVC * gap;
	return dl > 0xffffffffULL ? 0xffffffffU : (__u32)dl;
}

/* The deadline of a request steered now: from what the node last said it
 * has in flight (a batch).
 */
static __always_inline __u32 cpn_answer_deadline_us(const struct cpn_node *n)
{
	return cpn_deadline_us(n, n->inflight);
}

/* Suspect: requests steered here have gone unanswered for longer than the
 * deadline set when the first of them was steered, or by the answer that
 * left them waiting (cpn_node_answered).
 */
static __always_inline int cpn_node_suspect(const struct cpn_node *n, __u64 now_ns)
{
	return n->unanswered && now_ns > n->since_ns &&
	       now_ns - n->since_ns > (__u64)n->deadline_us * 1000;
}

/* A LOAD or PROBE_ACK came after the node turned suspect: it runs. (One
 * sent before it died may still arrive after its first unanswered request,
 * but not a deadline later.)
 */
static __always_inline int cpn_node_reported_since(const struct cpn_node *n)
{
	return n->last_report_ns > n->since_ns + (__u64)n->deadline_us * 1000;
}

/* Gone: suspect for CPN_GONE_DEADLINES of its deadlines (and at least
 * CPN_GONE_MIN_NS), silent since it turned suspect. One long request, or a
 * stall of its host, makes a node suspect now and then (an exponential
 * service time passes twice its mean one time in seven); that it has died
 * takes longer and no report.
 */
static __always_inline int cpn_node_gone(const struct cpn_node *n, __u64 now_ns)
{
	__u64 dl = (__u64)n->deadline_us * (1000 * CPN_GONE_DEADLINES);

	if (dl < CPN_GONE_MIN_NS)
		dl = CPN_GONE_MIN_NS;
	return n->unanswered && now_ns > n->since_ns && !cpn_node_reported_since(n) &&
	       now_ns - n->since_ns > dl;
}

/* Not suspect, or suspect but reporting still and last tried
 * CPN_SUSPECT_RETRY_NS ago: then one request tries it again (see
 * cpn_node_steered). A node that died sends nothing more and is never tried
 * again by the traffic; it comes back with its next report and answer.
 */
static __always_inline int cpn_node_answering(const struct cpn_node *n, __u64 now_ns)
{
	if (!cpn_node_suspect(n, now_ns))
		return 1;
	return cpn_node_reported_since(n) && now_ns - n->since_ns > CPN_SUSPECT_RETRY_NS;
}

/* Reported within stale_ms (a report stamped after now, by another CPU's
 * clock read, counts as fresh).
 */
static __always_inline int cpn_node_fresh(const struct cpn_node *n, __u64 now_ns, __u32 stale_ms)
{
	return n->last_report_ns && (n->last_report_ns >= now_ns ||
				     now_ns - n->last_report_ns <= (__u64)stale_ms * 1000000ULL);
}

/* May serve, for the fallback: up, not draining, not gone, and with
 * stale_ms, reported within it (a node suspect for a moment); with
 * stale_ms 0, however old its reports (the all-stale fallback).
 */
static __always_inline int cpn_node_may_serve(const struct cpn_node *n, __u64 now_ns,
					      __u32 stale_ms)
{
	if (!cpn_node_up(n) || (n->report_flags & CPN_REP_DRAINING) || cpn_node_gone(n, now_ns))
		return 0;
	return !stale_ms || cpn_node_fresh(n, now_ns, stale_ms);
}

/* Live: administratively up, not draining, reported within stale_ms, and
 * answering the requests it is sent.
 */
static __always_inline int cpn_node_live(const struct cpn_node *n, __u64 now_ns, __u32 stale_ms)
{
	if (!cpn_node_up(n) || (n->report_flags & CPN_REP_DRAINING) ||
	    !cpn_node_fresh(n, now_ns, stale_ms))
		return 0;
	return cpn_node_answering(n, now_ns);
}

/* Requests waiting at the node as far as this router knows. */
static __always_inline __u32 cpn_node_queue(const struct cpn_node *n)
{
	return n->queue_depth + n->outstanding;
}

/* The capacity a node serves at, over 100 µs: capacity x weight / 100,
 * scaled down by overclaim / CPN_OVERCLAIM_OK where the node's answers
 * show less than it reports. Never 0.
 */
static __always_inline __u64 cpn_node_den(const struct cpn_node *n)
{
	__u64 cap = n->capacity ? n->capacity : 1;
	__u64 w = n->weight ? n->weight : 100;
	__u64 den = cap * w;

	if (n->overclaim > CPN_OVERCLAIM_OK) {
		den = den * CPN_OVERCLAIM_OK / n->overclaim;
		if (!den)
			den = 1;
	}
	return den;
}

/* cpn_node.slot_cost as the node's state gives it: svc_us x 100 / den in
 * 1/2^CPN_SLOT_SHIFT µs; 0 (est_us divides) where that is 0 or 2^31 or
 * more, so that a queue of up to 2^33 times it stays within 64 bits.
 */
static __always_inline __u32 cpn_slot_cost(const struct cpn_node *n)
{
	__u64 svc = n->svc_us ? n->svc_us : 1;
	__u64 q = ((svc * 100) << CPN_SLOT_SHIFT) / cpn_node_den(n);

	return q >> 31 ? 0 : (__u32)q;
}

/* Called by every writer of svc_us, capacity, weight or overclaim, after
 * the write: the one divide that est_us no longer takes. The learning
 * paths call it only when one of them changed, so a REPLY whose load
 * leaves them as they were takes no divide either.
 */
static __always_inline void cpn_node_cost(struct cpn_node *n)
{
	n->slot_cost = cpn_slot_cost(n);
}

#ifndef __bpf__
/* The controller's weight for a node whose state the data path is
 * writing: the weight, then its slot_cost from the state as read. A
 * report that lands in between is corrected by the next one.
 */
static inline void cpn_node_set_weight(struct cpn_node *n, __u16 weight)
{
	__atomic_store_n(&n->weight, weight, __ATOMIC_RELEASE);
	__atomic_store_n(&n->slot_cost, cpn_slot_cost(n), __ATOMIC_RELEASE);
}
#endif

/* est_us(n) = path_us + (queue_depth + inflight + outstanding + 1) * svc_us
 *                       / (capacity * weight / 100)
 * with the capacity scaled down by overclaim / CPN_OVERCLAIM_OK where the
 * node's answers show less than it reports. A multiply and a shift by the
 * node's slot_cost (within queue / 256 µs of the quotient); the quotient
 * itself only where slot_cost is not known.
 */
static __always_inline __u64 cpn_est_us(const struct cpn_node *n)
{
	__u64 depth = (__u64)n->queue_depth + n->inflight + n->outstanding + 1;
	__u32 sc = n->slot_cost; /* read once: another CPU may write it */
	__u64 num, den, svc100;

	if (sc)
		return (__u64)n->path_us + ((depth * sc) >> CPN_SLOT_SHIFT);
	/* within 64 bits while depth < 2^25: queue_depth and inflight are
	 * 16-bit, and every report sets outstanding back to 0
	 */
	svc100 = (__u64)(n->svc_us ? n->svc_us : 1) * 100;
	num = depth * svc100;
	den = cpn_node_den(n);
	/* a 32-bit divide where both fit (nearly always), several times
	 * cheaper than a 64-bit one on many CPUs
	 */
	if (!((num | den) >> 32))
		return (__u64)n->path_us + (__u32)num / (__u32)den;
	return (__u64)n->path_us + num / den;
}

static __always_inline __u32 cpn_sat32(__u64 v)
{
	return v > 0xffffffffULL ? 0xffffffffU : (__u32)v;
}

/* ---- choice ---------------------------------------------------------- */

/* A uniform 32-bit x onto 0..n-1 by multiply and shift: no divide, and
 * the bias (at most n / 2^32) is far below anything a test can see.
 */
static __always_inline __u32 cpn_range32(__u32 x, __u32 n)
{
	return (__u32)(((__u64)x * n) >> 32);
}

/* x mod n for x < 2n: the loops recompute their index from `start + i`
 * rather than carry a wrapped one, which keeps the verifier's states few.
 */
static __always_inline __u32 cpn_wrap(__u32 x, __u32 n)
{
	return x >= n ? x - n : x;
}

static __always_inline __u32 cpn_svc_n(const struct cpn_service *svc)
{
	return svc->n_nodes > CPN_MAX_SVC_NODES ? CPN_MAX_SVC_NODES : svc->n_nodes;
}

/* Index of the first live candidate at or after `start` (wrapping), other
 * than `skip`; -1 when there is none.
 */
CPN_SCHED_FN int cpn_scan_live(CPN_CTX *ctx, const struct cpn_service *svc, __u32 start, int skip,
			       __u64 now_ns)
{
	CPN_CTX_USE(ctx);
	__u32 n, idx = start;

	if (!svc)
		return -1;
	n = cpn_svc_n(svc);
	if (idx >= n)
		return -1;

	for (__u32 i = 0; i < CPN_SVC_SCAN_MAX; i++) {
		if (i >= n)
			break;
		idx = cpn_wrap(start + i, n);
		if ((int)idx != skip) {
			struct cpn_node *nd =
			    cpn_node_at(ctx, svc->nodes[idx & (CPN_MAX_SVC_NODES - 1)]);

			if (nd && cpn_node_live(nd, now_ns, svc->stale_ms))
				return (int)idx;
		}
	}
	return -1;
}

/* Maglev lookup: the entry for `hash`, or the next live one within
 * CPN_MAGLEV_PROBES entries. With stale_ms = 0 a node that may serve
 * however old its reports suffices (the all-stale fallback). 0 when none
 * qualifies.
 */
CPN_SCHED_FN int cpn_maglev_pick(CPN_CTX *ctx, const struct cpn_maglev *mg, __u32 hash,
				 __u64 now_ns, __u32 stale_ms)
{
	CPN_CTX_USE(ctx);
	__u32 idx = hash % CPN_MAGLEV_M;

	if (!mg)
		return 0;
	for (int i = 0; i < CPN_MAGLEV_PROBES; i++) {
		__u16 id;

		idx = cpn_wrap(hash % CPN_MAGLEV_M + i, CPN_MAGLEV_M);
		cpn_barrier_var(idx);
		id = mg->entry[idx < CPN_MAGLEV_M ? idx : 0];
		struct cpn_node *nd = cpn_node_at(ctx, id);

		if (nd && (stale_ms ? cpn_node_live(nd, now_ns, stale_ms)
				    : cpn_node_may_serve(nd, now_ns, 0)))
			return id;
	}
	return 0;
}

/* The first candidate from `start` that may serve; else -1 when one of
 * them has reports within stale_ms (it is gone, or draining), 0 when none
 * has (all stale).
 */
CPN_SCHED_FN int cpn_scan_may_serve(CPN_CTX *ctx, const struct cpn_service *svc, __u32 start,
				    __u64 now_ns, __u32 stale_ms)
{
	CPN_CTX_USE(ctx);
	int fresh = 0;
	__u32 n;

	if (!svc)
		return 0;
	n = cpn_svc_n(svc);
	if (start >= n)
		return 0;
	for (__u32 i = 0; i < CPN_SVC_SCAN_MAX; i++) {
		if (i >= n)
			break;
		__u32 idx = cpn_wrap(start + i, n);
		__u16 cand = svc->nodes[idx & (CPN_MAX_SVC_NODES - 1)];
		struct cpn_node *nd = cpn_node_at(ctx, cand);

		if (!nd)
			continue;
		if (cpn_node_may_serve(nd, now_ns, stale_ms))
			return cand;
		if (stale_ms && cpn_node_fresh(nd, now_ns, stale_ms))
			fresh = 1;
	}
	return fresh ? -1 : 0;
}

/* No live candidate: a node that reports but is suspect, not gone (one
 * long request of it made it so), from a hashed start; none, but some
 * report: BUSY. All stale: Maglev over the nodes that may serve however
 * old their reports (a node whose reports are lost may be alive); without
 * a table, the first such candidate from a hashed start.
 * None: BUSY, reason no_node. The flow hash comes in out->flow_hash (five
 * arguments at most: see the top of this file); call cpn_fallback_at.
 */
CPN_SCHED_FN int cpn_fallback(CPN_CTX *ctx, const struct cpn_service *svc,
			      const struct cpn_maglev *mg, __u64 now_ns, struct cpn_pick *out)
{
	CPN_CTX_USE(ctx);
	__u32 n, flow_hash;
	__u16 id = 0;

	if (!svc || !out)
		return CPN_PICK_BUSY;
	flow_hash = out->flow_hash;
	n = cpn_svc_n(svc);
	/* First a node that reports and is suspect for a moment only (not
	 * gone): one late answer must not send the flow to a node silent for
	 * long. Only when every candidate is stale, Maglev over the nodes
	 * that may serve: while some report, those that do not are not tried.
	 */
	if (n) {
		int r = cpn_scan_may_serve(ctx, svc, flow_hash % n, now_ns, svc->stale_ms);

		if (r > 0)
			id = (__u16)r;
		else if (r < 0)
			n = 0; /* some report, none may serve: BUSY */
	}
	if (!id && n)
		id = (__u16)cpn_maglev_pick(ctx, mg, flow_hash, now_ns, 0);
	if (!id && n)
		id = (__u16)cpn_scan_may_serve(ctx, svc, flow_hash % n, now_ns, 0);
	out->node_id = id;
	out->est_us = 0;
	if (!id) {
		out->verdict = CPN_PICK_BUSY;
		out->busy_reason = CPN_BUSY_NO_NODE;
		return CPN_PICK_BUSY;
	}
	out->verdict = CPN_PICK_FALLBACK;
	out->busy_reason = 0;
	return CPN_PICK_FALLBACK;
}

static __always_inline int cpn_fallback_at(CPN_CTX *ctx, const struct cpn_service *svc,
					   const struct cpn_maglev *mg, __u32 flow_hash,
					   __u64 now_ns, struct cpn_pick *out)
{
	out->flow_hash = flow_hash;
	return cpn_fallback(ctx, svc, mg, now_ns, out);
}

/* Admission of the chosen node: est above max_wait_us, or every candidate
 * considered (min_queue is the least queue among them) at max_queue.
 */
static __always_inline int cpn_admit(const struct cpn_service *svc, __u64 est, __u32 min_queue,
				     struct cpn_pick *out)
{
	out->est_us = cpn_sat32(est);
	out->min_queue = min_queue;
	if (svc->max_queue && min_queue >= svc->max_queue) {
		out->verdict = CPN_PICK_BUSY;
		out->busy_reason = CPN_BUSY_QUEUE;
		return CPN_PICK_BUSY;
	}
	if (svc->max_wait_us && est > svc->max_wait_us) {
		out->verdict = CPN_PICK_BUSY;
		out->busy_reason = CPN_BUSY_WAIT;
		return CPN_PICK_BUSY;
	}
	out->verdict = CPN_PICK_OK;
	out->busy_reason = 0;
	return CPN_PICK_OK;
}

/* p2c between two candidates, at positions ia and ib with states a and
 * b: the one of the lower est_us (a on a tie), admitted against the lesser
 * of their queues. Fills `out`; returns the chosen one's state.
 */
static __always_inline struct cpn_node *cpn_p2c_decide(const struct cpn_service *svc, __u32 ia,
						       struct cpn_node *a, __u32 ib,
						       struct cpn_node *b, struct cpn_pick *out)
{
	__u64 ea = cpn_est_us(a), eb = cpn_est_us(b);
	__u32 qa = cpn_node_queue(a), qb = cpn_node_queue(b), q = qa < qb ? qa : qb;

	if (eb < ea) {
		out->node_id = svc->nodes[ib & (CPN_MAX_SVC_NODES - 1)];
		cpn_admit(svc, eb, q, out);
		return b;
	}
	out->node_id = svc->nodes[ia & (CPN_MAX_SVC_NODES - 1)];
	cpn_admit(svc, ea, q, out);
	return a;
}

/* p2c's common case, without a loop or a call: two distinct candidates
 * drawn uniformly by one 64-bit draw, both live: the one of the lower
 * est_us (the first drawn on a tie), admitted. Returns 1 with `out` and
 * *np (the chosen node's state) filled; 0 where there are fewer than two
 * candidates or a drawn one is not live, and cpn_choose draws among the
 * live ones. When both are live the pair is uniform over the pairs of live
 * candidates, as that draw makes it.
 */
static __always_inline int cpn_p2c_pair(CPN_CTX *ctx __attribute__((unused)),
					const struct cpn_service *svc, __u64 rnd, __u64 now_ns,
					struct cpn_pick *out, struct cpn_node **np)
{
	__u32 n = cpn_svc_n(svc), ia, ib;
	struct cpn_node *a, *b;

	if (n < 2)
		return 0;
	ia = cpn_range32((__u32)rnd, n);
	ib = cpn_range32((__u32)(rnd >> 32), n - 1);
	ib += ib >= ia;
	a = cpn_node_at(ctx, svc->nodes[ia & (CPN_MAX_SVC_NODES - 1)]);
	b = cpn_node_at(ctx, svc->nodes[ib & (CPN_MAX_SVC_NODES - 1)]);
	if (!a || !b || !cpn_node_live(a, now_ns, svc->stale_ms) ||
	    !cpn_node_live(b, now_ns, svc->stale_ms))
		return 0;
	out->token = 0;
	*np = cpn_p2c_decide(svc, ia, a, ib, b, out);
	return 1;
}

/* `least`: the live candidate with the lowest est_us, scanning from
 * `start` so that ties go to a random one. Fills node_id, est_us and
 * min_queue; returns 0 when no candidate is live.
 */
CPN_SCHED_FN int cpn_least(CPN_CTX *ctx, const struct cpn_service *svc, __u32 start, __u64 now_ns,
			   struct cpn_pick *out)
{
	CPN_CTX_USE(ctx);
	__u32 n, idx = start, minq = 0xffffffffU;
	__u64 best = ~0ULL;
	int found = 0;
	__u16 best_id = 0;

	if (!svc || !out)
		return 0;
	n = cpn_svc_n(svc);
	if (idx >= n)
		return 0;
	for (__u32 i = 0; i < CPN_SVC_SCAN_MAX; i++) {
		if (i >= n)
			break;
		idx = cpn_wrap(start + i, n);
		__u16 id = svc->nodes[idx & (CPN_MAX_SVC_NODES - 1)];
		struct cpn_node *nd = cpn_node_at(ctx, id);

		if (nd && cpn_node_live(nd, now_ns, svc->stale_ms)) {
			__u64 e = cpn_est_us(nd);
			__u32 q = cpn_node_queue(nd);

			if (!found || e < best) {
				best = e;
				best_id = id;
				found = 1;
			}
			if (q < minq)
				minq = q;
		}
	}
	out->node_id = best_id;
	out->est_us = cpn_sat32(best);
	out->min_queue = minq;
	return found;
}

#define CPN_RANDOM_TRIES 8

/* `random`: uniform over the live candidates by rejection sampling: up to
 * CPN_RANDOM_TRIES independent uniform draws over all candidates, the first
 * live one wins, which makes the winner uniform over the live ones (a scan
 * from one random start would hand a dead node's share to its successor).
 * When every draw misses, the first live one after the last draw. `skip`
 * (or -1) is an index not to return: p2c's first draw. Index of the
 * candidate; -1 when none is live. No state is carried between rounds,
 * which keeps the verifier's work linear.
 */
CPN_SCHED_FN int cpn_random_live(CPN_CTX *ctx, const struct cpn_service *svc, __u64 rnd, int skip,
				 __u64 now_ns)
{
	__u64 x = rnd;
	__u32 n, idx = 0;

	CPN_CTX_USE(ctx);
	if (!svc)
		return -1;
	n = cpn_svc_n(svc);
	if (!n)
		return -1;
	for (int i = 0; i < CPN_RANDOM_TRIES; i++) {
		struct cpn_node *nd;

		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		idx = cpn_range32((__u32)(x >> 32), n);
		if ((int)idx == skip)
			continue;
		nd = cpn_node_at(ctx, svc->nodes[idx & (CPN_MAX_SVC_NODES - 1)]);
		if (nd && cpn_node_live(nd, now_ns, svc->stale_ms))
			return (int)idx;
	}
	return cpn_scan_live(ctx, svc, idx, skip, now_ns);
}

/* `round-robin`: each request takes ticks of the service's cursor until one
 * lands on a live candidate, so the live nodes are visited in turn and
 * evenly; a dead node's ticks are skipped, not given to its successor.
 */
CPN_SCHED_FN int cpn_rr_live(CPN_CTX *ctx, struct cpn_service *svc, __u64 now_ns)
{
	__u32 n;

	CPN_CTX_USE(ctx);
	if (!svc)
		return -1;
	n = cpn_svc_n(svc);
	for (__u32 i = 0; i < CPN_SVC_SCAN_MAX; i++) {
		__u32 idx;
		struct cpn_node *nd;

		if (i >= n)
			break;
		idx = __sync_fetch_and_add(&svc->rr, 1) % n;
		nd = cpn_node_at(ctx, svc->nodes[idx & (CPN_MAX_SVC_NODES - 1)]);
		if (nd && cpn_node_live(nd, now_ns, svc->stale_ms))
			return (int)idx;
	}
	return -1;
}

/* Whether node `id` is one of the service's candidates: a tag or a
 * session may only keep a request on a node of its own service. One bit of
 * the service's membership bitmap: any size of service.
 */
static __always_inline int cpn_svc_has_node(const struct cpn_service *svc, __u32 id)
{
	if (!svc || !id || id >= CPN_MAX_NODES)
		return 0;
	return (svc->member[(id / 64) & (CPN_MAX_NODES / 64 - 1)] >> (id % 64)) & 1;
}

/* ---- idle tokens (policy jiq) ------------------------------------------ */

_Static_assert((CPN_TOKENS & (CPN_TOKENS - 1)) == 0, "CPN_TOKENS: a power of two");
_Static_assert((CPN_TOKEN_TRIES & (CPN_TOKEN_TRIES - 1)) == 0, "CPN_TOKEN_TRIES: a power of two");

/* Put a token on top of the store: node, and the router's clock (µs, mod
 * 2^32) when it came.
 */
static __always_inline void cpn_token_put(struct cpn_tokens *t, __u16 node, __u32 t_us)
{
	__u32 i;

	if (!t || !node)
		return;
	i = __sync_fetch_and_add(&t->top, 1) & (CPN_TOKENS - 1);
	t->slot[i].t_us = t_us;
	t->slot[i].node = node;
}

/* A node's token came with a REPLY of the service. */
static __always_inline void cpn_token_push(struct cpn_tokens *t, __u16 node, __u64 now_ns)
{
	cpn_token_put(t, node, (__u32)(now_ns / 1000));
}

/* How long node n's token is trusted, µs. */
static __always_inline __u32 cpn_token_ttl_us(const struct cpn_node *n)
{
	__u64 ttl = (__u64)n->svc_us * CPN_TOKEN_TTL_SVC;

	if (ttl < CPN_TOKEN_TTL_MIN_US)
		return CPN_TOKEN_TTL_MIN_US;
	return cpn_sat32(ttl);
}

/* Take the newest token: its node, with *age_us; 0 when the store is empty
 * or another CPU took the top at the same moment (a token is a hint: the
 * caller falls back to its own choice).
 */
static __always_inline __u16 cpn_token_pop(struct cpn_tokens *t, __u64 now_ns, __u32 *age_us)
{
	__u32 top, i;
	__u16 node;

	if (!t)
		return 0;
	top = *(volatile __u32 *)&t->top;
	if (!top || __sync_val_compare_and_swap(&t->top, top, top - 1) != top)
		return 0;
	i = (top - 1) & (CPN_TOKENS - 1);
	node = t->slot[i].node;
	*age_us = (__u32)(now_ns / 1000) - t->slot[i].t_us;
	t->slot[i].node = 0;
	if (!node) /* consumed already: the ring wrapped under the top */
		t->top = 0;
	return node;
}

/* This router's view of n shows a free batch slot: nothing queued, reported
 * or steered there since.
 */
static __always_inline int cpn_node_has_slot(const struct cpn_node *n)
{
	__u64 cap = n->capacity ? n->capacity : 1;

	return (__u64)n->queue_depth + n->inflight + n->outstanding < cap;
}

/* jiq: tokens are popped, newest first, until one whose node has a free
 * slot in this router's view (at most CPN_TOKEN_TRIES); of those that are
 * fresh and of live candidates, the one of least est_us is taken and the
 * others go back on top as they were (order and age). The node id; 0 when
 * none qualifies. A stale token means every older one is staler: the store
 * is emptied, but for the fresher ones popped before it.
 */
CPN_SCHED_FN int cpn_jiq_token(CPN_CTX *ctx, const struct cpn_service *svc, __u64 now_ns)
{
	CPN_CTX_USE(ctx);
	struct cpn_token kept[CPN_TOKEN_TRIES];
	__u32 now_us = (__u32)(now_ns / 1000);
	__u64 best_est = ~0ULL;
	int n = 0, best = -1;
	struct cpn_tokens *t;

	if (!svc)
		return 0;
	t = cpn_tokens_at(ctx, svc->id);
	if (!t)
		return 0;
	for (int i = 0; i < CPN_TOKEN_TRIES; i++) {
		__u32 age = 0;
		__u16 id = cpn_token_pop(t, now_ns, &age);
		struct cpn_node *nd;
		__u64 e;

		if (!id)
			break;
		nd = cpn_node_at(ctx, id);
		if (!nd)
			continue;
		if (age > cpn_token_ttl_us(nd)) {
			t->top = 0;
			break;
		}
		if (!cpn_svc_has_node(svc, id) || !cpn_node_live(nd, now_ns, svc->stale_ms))
			continue;
		e = cpn_est_us(nd);
		kept[n & (CPN_TOKEN_TRIES - 1)].node = id;
		kept[n & (CPN_TOKEN_TRIES - 1)].t_us = now_us - age;
		if (e < best_est) {
			best_est = e;
			best = n;
		}
		n++;
		if (cpn_node_has_slot(nd))
			break;
	}
	for (int k = CPN_TOKEN_TRIES - 1; k >= 0; k--)
		if (k < n && k != best)
			cpn_token_put(t, kept[k].node, kept[k].t_us);
	return best >= 0 ? kept[best & (CPN_TOKEN_TRIES - 1)].node : 0;
}

/* Choose the node for one request of service `svc`.
 *   ctx        node-state context for cpn_node_at()
 *   mg         the service's Maglev table (may be NULL)
 *   flow_hash  cpn_flow_hash() of the request
 *   rnd        64 random bits
 *   now_ns     monotonic time
 * Returns out->verdict. Does not touch `outstanding`: the caller accounts
 * for a request it actually sends (cpn_node_steered()).
 */
static __always_inline int cpn_choose(CPN_CTX *ctx, struct cpn_service *svc,
				      const struct cpn_maglev *mg, __u32 flow_hash, __u64 rnd,
				      __u64 now_ns, struct cpn_pick *out)
{
	__u32 n = cpn_svc_n(svc);
	struct cpn_node *a, *b;
	int ia, ib;

	out->token = 0;
	if (!n)
		return cpn_fallback_at(ctx, svc, mg, flow_hash, now_ns, out);

	switch (svc->policy) {
	case CPN_POL_LEAST:
		if (!cpn_least(ctx, svc, cpn_range32((__u32)rnd, n), now_ns, out))
			return cpn_fallback_at(ctx, svc, mg, flow_hash, now_ns, out);
		return cpn_admit(svc, out->est_us, out->min_queue, out);
	case CPN_POL_MAGLEV: {
		__u16 id = (__u16)cpn_maglev_pick(ctx, mg, flow_hash, now_ns, svc->stale_ms);

		if (!id) {
			/* No table or no live entry near the hash: keep the
			 * flow consistent among live candidates if any.
			 */
			ia = cpn_scan_live(ctx, svc, flow_hash % n, -1, now_ns);
			if (ia < 0)
				return cpn_fallback_at(ctx, svc, mg, flow_hash, now_ns, out);
			id = svc->nodes[ia & (CPN_MAX_SVC_NODES - 1)];
		}
		a = cpn_node_at(ctx, id);
		if (!a)
			return cpn_fallback_at(ctx, svc, mg, flow_hash, now_ns, out);
		out->node_id = id;
		return cpn_admit(svc, cpn_est_us(a), cpn_node_queue(a), out);
	}
	case CPN_POL_RANDOM:
	case CPN_POL_RR: {
		ia = svc->policy == CPN_POL_RR ? cpn_rr_live(ctx, svc, now_ns)
					       : cpn_random_live(ctx, svc, rnd, -1, now_ns);
		if (ia < 0)
			return cpn_fallback_at(ctx, svc, mg, flow_hash, now_ns, out);
		out->node_id = svc->nodes[ia & (CPN_MAX_SVC_NODES - 1)];
		a = cpn_node_at(ctx, out->node_id);
		if (!a)
			return cpn_fallback_at(ctx, svc, mg, flow_hash, now_ns, out);
		return cpn_admit(svc, cpn_est_us(a), cpn_node_queue(a), out);
	}
	case CPN_POL_JIQ: {
		__u16 id = (__u16)cpn_jiq_token(ctx, svc, now_ns);

		a = id ? cpn_node_at(ctx, id) : 0;
		if (a) {
			out->node_id = id;
			out->token = 1;
			return cpn_admit(svc, cpn_est_us(a), cpn_node_queue(a), out);
		}
	}
		/* no token: p2c on this router's own view */
		/* fallthrough */
	case CPN_POL_P2C:
	default: {
		__u32 r1, r2;

		if (cpn_p2c_pair(ctx, svc, rnd, now_ns, out, &a))
			return out->verdict;
		/* A drawn one is not live: draw among the live ones, with
		 * bits of their own (an LCG step of the draw).
		 */
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		r1 = (__u32)rnd;
		r2 = (__u32)(rnd >> 32);
		ia = cpn_random_live(ctx, svc, r1, -1, now_ns);
		if (ia < 0)
			return cpn_fallback_at(ctx, svc, mg, flow_hash, now_ns, out);
		a = cpn_node_at(ctx, svc->nodes[ia & (CPN_MAX_SVC_NODES - 1)]);
		if (!a)
			return cpn_fallback_at(ctx, svc, mg, flow_hash, now_ns, out);
		ib = n > 1 ? cpn_random_live(ctx, svc, r2, ia, now_ns) : -1;
		b = ib >= 0 ? cpn_node_at(ctx, svc->nodes[ib & (CPN_MAX_SVC_NODES - 1)]) : 0;
		if (!b) {
			out->node_id = svc->nodes[ia & (CPN_MAX_SVC_NODES - 1)];
			return cpn_admit(svc, cpn_est_us(a), cpn_node_queue(a), out);
		}
		cpn_p2c_decide(svc, (__u32)ia, a, (__u32)ib, b, out);
		return out->verdict;
	}
	}
}

/* A request was sent to the node: count it until the next report, and
 * until the node's next answer; the first unanswered one starts the clock
 * of cpn_node_suspect. One that tries a suspect node again (it reported
 * since) sets the clock a deadline back: the node stays suspect, the next
 * try waits CPN_SUSPECT_RETRY_NS and a report after this one, and only an
 * answer clears it. One the fallback sends to a silent suspect node leaves
 * the clock alone, so that the node is gone in time. Other
 * CPUs (and other data planes) count into the same node: atomically,
 * unless the includer knows the node table is its thread's alone
 * (CPN_NODE_INC: add one, give the value before).
 */
#ifndef CPN_NODE_INC
#define CPN_NODE_INC(p) __sync_fetch_and_add(p, 1)
#endif
/* Steered for a service whose answers this router does not see
 * (`liveness: reports`): load until the next report, nothing more.
 */
static __always_inline void cpn_node_steered_unwatched(struct cpn_node *n)
{
	CPN_NODE_INC(&n->outstanding);
}

static __always_inline void cpn_node_steered(struct cpn_node *n, __u64 now_ns)
{
	CPN_NODE_INC(&n->outstanding);
	if (!CPN_NODE_INC(&n->unanswered)) {
		n->deadline_us = cpn_answer_deadline_us(n);
		n->since_ns = now_ns;
	} else if (cpn_node_suspect(n, now_ns) && cpn_node_reported_since(n)) {
		n->deadline_us = cpn_answer_deadline_us(n);
		n->since_ns = now_ns - (__u64)n->deadline_us * 1000 - 1;
	}
}

/* ---- learning -------------------------------------------------------- */

static __always_inline __u32 cpn_ewma(__u32 old, __u32 sample, int valid)
{
	if (!valid)
		return sample;
	return (
	    __u32)((((__u64)old << CPN_EWMA_SHIFT) - old + sample + (1u << (CPN_EWMA_SHIFT - 1))) >>
		   CPN_EWMA_SHIFT);
}

/* The load fields of a REPLY, LOAD or PROBE_ACK (already authenticated). */
static __always_inline void cpn_learn_load(struct cpn_node *n, const struct cpn_hdr *h,
					   __u64 now_ns)
{
	__u16 cap = cpn_ntohs(h->capacity);

	n->queue_depth = cpn_ntohs(h->queue_depth);
	n->inflight = cpn_ntohs(h->inflight);
	if (n->capacity != cap) {
		n->capacity = cap;
		cpn_node_cost(n);
	}
	n->util = h->util;
	if (h->flags & cpn_htons(CPN_F_DRAINING))
		n->report_flags |= CPN_REP_DRAINING;
	else
		n->report_flags &= ~CPN_REP_DRAINING;
	n->outstanding = 0;
	n->last_report_ns = now_ns;
}

/* A mean service time (LOAD, PROBE_ACK worker_us; or a REPLY's worker_us
 * while the node has not yet sent a mean).
 */
static __always_inline void cpn_learn_svc(struct cpn_node *n, __u32 svc_us)
{
	n->svc_us = cpn_ewma(n->svc_us, svc_us, n->report_flags & CPN_REP_SVC_VALID);
	n->report_flags |= CPN_REP_SVC_VALID;
	cpn_node_cost(n);
}

/* A LOAD or PROBE_ACK (already authenticated): its load, and its mean
 * service time unless the mean is stale. A node found idle by two reports
 * in a row, sent nothing in between, that reports the very mean it
 * reported before has completed nothing since: its mean cannot have been
 * re-measured (a node that was slow and is starved would keep its old
 * figure). Its estimate then decays by 1/8 a report instead, as does the
 * overclaim, so that a node that recovered is sent work again and
 * measured anew.
 */
static __always_inline void cpn_learn_report(struct cpn_node *n, const struct cpn_hdr *h,
					     __u64 now_ns)
{
	__u32 mean = cpn_ntohl(h->worker_us), step, floor;
	int idle = !h->queue_depth && !h->inflight && !(h->flags & cpn_htons(CPN_F_DRAINING)) &&
		   !n->outstanding && !n->unanswered;
	int stale = idle && (n->report_flags & CPN_REP_IDLE) && mean == n->reported_us &&
		    (n->report_flags & CPN_REP_SVC_VALID);

	cpn_learn_load(n, h, now_ns);
	n->reported_us = mean;
	if (idle)
		n->report_flags |= CPN_REP_IDLE;
	else
		n->report_flags &= ~CPN_REP_IDLE;
	if (!stale) {
		cpn_learn_svc(n, mean);
		return;
	}
	/* a step of 1/8 (rounded up, so that it ends), stopping at the floor */
	step = (n->svc_us + (1u << CPN_EWMA_SHIFT) - 1) >> CPN_EWMA_SHIFT;
	floor = mean / CPN_DECAY_FLOOR;
	if (n->svc_us > floor)
		n->svc_us = n->svc_us - step > floor ? n->svc_us - step : floor;
	n->overclaim -= n->overclaim >> CPN_EWMA_SHIFT;
	cpn_node_cost(n);
}

/* A REPLY or BUSY of the node (already authenticated, and the answer to a
 * request of this router where it keeps flows): it answers. `held` is what
 * the answer says the node still holds (its queue_depth + inflight, which
 * leave out the requests it answers); `ago_us` how long ago this router
 * steered the request answered (its router_ts echoed), ~0 if not known.
 *
 * - Holding nothing, the node has answered everything steered to it before
 *   (or it is on its way); this was the router's only request; or the
 *   answered request was steered after the clock started, so that all the
 *   router counted then is answered or lost (a node serves in order):
 *   `unanswered` is 0, and the next request steered starts the clock.
 * - Else the router's others wait behind it, and the node owes its next
 *   answer within a deadline from this one, for all it holds:
 *   `unanswered` counts them (one less, and no more than it holds), the
 *   clock starts again now. A node killed with a queue is then suspect a
 *   deadline after its last answer, not once a request steered after its
 *   death has waited a deadline.
 *
 * Not atomic against the CPUs that count steered requests in: a count
 * one too high (or a request lost on its way to the node) lasts until an
 * answer to a request steered after the clock started, or one that
 * leaves the node empty; one too low is the old rule's blind spot.
 */
static __always_inline void cpn_node_answered(struct cpn_node *n, __u32 held, __u32 ago_us,
					      __u64 now_ns)
{
	__u32 u = n->unanswered;
	__u64 age = now_ns > n->since_ns ? now_ns - n->since_ns : 0;

	/* steered at least 1 µs after the clock started (router_ts is in
	 * whole µs of the same clock)
	 */
	if (ago_us <= CPN_PATH_MAX_US && ((__u64)ago_us + 1) * 1000 < age)
		u = 0;
	if (u > 1 && held) {
		u--;
		n->unanswered = u < held ? u : held;
		n->deadline_us = cpn_deadline_us(n, held);
		n->since_ns = now_ns;
	} else {
		n->unanswered = 0;
	}
}

/* With its load (after cpn_learn_load), a REPLY that left requests waiting
 * also measures the node against its report: the time it spent inside,
 * over what its queue, in flight and capacity predict. The node that
 * reports more capacity than it serves answers slower than its reports
 * say.
 */
static __always_inline void cpn_learn_answer(struct cpn_node *n, __u32 inside_us, int reply,
					     __u32 held, __u32 ago_us, __u64 now_ns)
{
	__u64 depth, pred, r;
	__u32 old, prev;

	cpn_node_answered(n, held, ago_us, now_ns);
	n->report_flags &= ~CPN_REP_IDLE;
	if (!reply || !n->queue_depth || !n->svc_us || inside_us > CPN_PATH_MAX_US)
		return;
	depth = (__u64)n->queue_depth + n->inflight + 1;
	/* the node's own claims: its mean as reported, not this router's
	 * estimate (which may have decayed while it was idle)
	 */
	pred = depth * (n->reported_us ? n->reported_us : n->svc_us);
	r = (__u64)inside_us * CPN_OVERCLAIM_ONE * (n->capacity ? n->capacity : 1);
	r = pred ? r / pred : 0;
	if (r > 0xffff)
		r = 0xffff;
	prev = n->overclaim;
	old = prev ? prev : CPN_OVERCLAIM_ONE;
	old = cpn_ewma(old, (__u32)r, 1);
	n->overclaim = (__u16)(old > 0xffff ? 0xffff : old);
	/* est_us reads overclaim only above CPN_OVERCLAIM_OK */
	if (n->overclaim != prev && (n->overclaim > CPN_OVERCLAIM_OK || prev > CPN_OVERCLAIM_OK))
		cpn_node_cost(n);
}

/* One path sample from a router_ts echo: reply time minus time spent inside
 * the node, in µs (clock mod 2^32). -1 when implausible.
 */
static __always_inline long long cpn_path_sample(__u32 now_us, __u32 router_ts, __u32 inside_us)
{
	__u32 rtt = now_us - router_ts;

	if (rtt > CPN_PATH_MAX_US)
		return -1;
	return rtt > inside_us ? (long long)(rtt - inside_us) : 0;
}

static __always_inline void cpn_learn_path(struct cpn_node *n, __u32 sample_us)
{
	n->path_us = cpn_ewma(n->path_us, sample_us, n->report_flags & CPN_REP_PATH_VALID);
	n->report_flags |= CPN_REP_PATH_VALID;
}

/* log2 histogram bucket of a latency in µs: 0 for [0,2), k for [2^k, 2^(k+1)). */
static __always_inline __u32 cpn_hist_bucket(__u32 us)
{
	__u32 b = 0;

	CPN_UNROLL
	for (int i = 0; i < 5; i++) {
		__u32 s = 16u >> i;

		if (us >> s) {
			us >>= s;
			b += s;
		}
	}
	return b >= CPN_HIST_BUCKETS ? CPN_HIST_BUCKETS - 1 : b;
}

/* ---- Maglev table population (control plane) ------------------------ */
#ifndef __bpf__

/* Fill `mg` for the given nodes (ids >= 1) and weights (> 0), as in the
 * Maglev paper (Eisenbud et al., NSDI 2016, section 3.4), each node taking
 * turns in proportion to its weight. The nodes take their turns in order of
 * id, whatever order they are given in: every router that knows the same
 * nodes and weights builds the same table, so their fallbacks send a flow
 * to the same node. n = 0 empties the table. Returns 0, or -1 on bad input
 * (n > CPN_MAX_SVC_NODES, a zero id or weight).
 */
static inline int cpn_maglev_build(struct cpn_maglev *mg, const __u16 *ids_in,
				   const __u32 *weights_in, int n)
{
	__u32 offset[CPN_MAX_SVC_NODES], skip[CPN_MAX_SVC_NODES], next[CPN_MAX_SVC_NODES];
	__u32 weights[CPN_MAX_SVC_NODES];
	__u16 ids[CPN_MAX_SVC_NODES];
	__u64 credit[CPN_MAX_SVC_NODES];
	__u32 wmax = 0, filled = 0;

	__builtin_memset(mg, 0, sizeof(*mg));
	if (n < 0 || n > CPN_MAX_SVC_NODES)
		return -1;
	for (int i = 0; i < n; i++) { /* insertion sort by id */
		int j = i;

		while (j > 0 && ids[j - 1] > ids_in[i]) {
			ids[j] = ids[j - 1];
			weights[j] = weights[j - 1];
			j--;
		}
		ids[j] = ids_in[i];
		weights[j] = weights_in[i];
	}
	for (int i = 0; i < n; i++) {
		if (!ids[i] || !weights[i])
			return -1;
		offset[i] = cpn_hash3(ids[i], 0x0ff5e7U, 0x6d61676cU) % CPN_MAGLEV_M;
		skip[i] = cpn_hash3(ids[i], 0x5c1b0dU, 0x736b6970U) % (CPN_MAGLEV_M - 1) + 1;
		next[i] = 0;
		credit[i] = 0;
		if (weights[i] > wmax)
			wmax = weights[i];
	}
	if (!n)
		return 0;
	while (filled < CPN_MAGLEV_M) {
		for (int i = 0; i < n && filled < CPN_MAGLEV_M; i++) {
			__u32 c;

			credit[i] += weights[i];
			if (credit[i] < wmax)
				continue;
			credit[i] -= wmax;
			do {
				c = (__u32)(((__u64)offset[i] + (__u64)next[i] * skip[i]) %
					    CPN_MAGLEV_M);
				next[i]++;
			} while (mg->entry[c]);
			mg->entry[c] = ids[i];
			filled++;
		}
	}
	return 0;
}
#endif /* !__bpf__ */

#endif /* CPN_SCHED_H */
