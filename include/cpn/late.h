/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Late binding (`dispatch: late`): a request waits at the router, not in a
 * node's queue, and is bound to a node only when that node has room.
 *
 * JBSQ(n), "join the bounded shortest queue": this router sends a node at
 * most n x capacity requests of late services that it has not answered
 * yet (its slots); the rest wait in the service's queue here, one FIFO per
 * priority class (the header's `class`, 0 first), and the head of the most
 * urgent non-empty class is bound the moment a slot frees (a REPLY or BUSY
 * of the node, or a slot that timed out). With n = 1 and exact slots this
 * is one central FCFS queue feeding k servers: M/M/k, the optimum no early
 * binding reaches; n = 2 hides the round trip between a node's answer and
 * its next request.
 *
 * Used by cpn-fwd (dpdk/fwd_late.c, the packets) and cpn-sim (the model),
 * so that both bind by the same rule. Userspace only: the XDP plane has no
 * place to hold a packet and binds every request early (the service's
 * `policy`), which is also what it does for a late service's requests
 * while no cpn-fwd takes them.
 *
 * The caller keeps, per router:
 *   held[id]   requests of late services sent to node `id` and not yet
 *              answered (cpn_late_answered on their REPLY or BUSY);
 *   one struct cpn_late_queue per late service.
 * and serialises its calls (cpn-fwd: one lock).
 *
 * Include after sched.h's configuration (CPN_CTX, cpn_node_at): node state
 * is read with the same accessors as the early policies.
 */
#ifndef CPN_LATE_H
#define CPN_LATE_H

#include "cpn/sched.h"

#define CPN_LATE_CLASSES 4 /* classes 0, 1, 2 have a FIFO each; 3 and above share one */

/* What cpn_late_admit and cpn_late_next decide. */
enum cpn_late_verdict {
	CPN_LATE_BIND = 0,  /* send it to `node` now */
	CPN_LATE_HOLD = 1,  /* keep it: the caller pushes it (cpn_late_push) */
	CPN_LATE_BUSY = 2,  /* refuse it: BUSY with `busy` (enum cpn_busy_reason) */
	CPN_LATE_EARLY = 3, /* no candidate is live: bind it early (the policy's fallback) */
	CPN_LATE_NONE = 4,  /* cpn_late_next: nothing to do now */
};

/* A held request: what the caller needs to send it later. */
struct cpn_late_ent {
	__u64 handle; /* the caller's: an mbuf, a simulated request */
	__u64 t_ns;   /* when it arrived */
	__u32 aux;    /* the caller's: cpn-fwd's ingress port */
	__u32 pad;
};

/* One service's held requests: CPN_LATE_CLASSES rings of `cap` entries in
 * one array of cap x CPN_LATE_CLASSES (the caller's memory), `cap` a power
 * of two at or above the service's bound on `len`.
 */
struct cpn_late_queue {
	__u32 cap;
	__u32 len; /* every class */
	__u32 head[CPN_LATE_CLASSES];
	__u32 n[CPN_LATE_CLASSES];
	struct cpn_late_ent *ent;
};

struct cpn_late_result {
	__u8 verdict;		 /* enum cpn_late_verdict */
	__u8 busy;		 /* enum cpn_busy_reason, for CPN_LATE_BUSY */
	__u16 node;		 /* for CPN_LATE_BIND */
	__u32 est_us;		 /* cpn_late_admit: the predicted answer time of a held request */
	struct cpn_late_ent ent; /* cpn_late_next: the request it took off the queue */
};

/* Liveness for late binding. The early policies call a node suspect once
 * what it was sent goes unanswered for CPN_SUSPECT_SVC service times
 * (cpn_node_suspect): right for a queue they cannot see, but a node
 * holding one request of an exponential service time passes three means
 * one time in twenty. Here the router knows exactly what the node holds:
 * it is stuck only after CPN_LATE_STUCK_DEADLINES of its deadlines (and
 * CPN_GONE_MIN_NS) without an answer. Then its slots are given back
 * (cpn_late_expire, what it held counted lost) and it is not bound to,
 * but for one request every CPN_SUSPECT_RETRY_NS while it still reports
 * (cpn_node_answering), as the early policies try a suspect node again.
 */
#define CPN_LATE_STUCK_DEADLINES 4

static __always_inline int cpn_late_stuck(const struct cpn_node *n, __u64 now_ns)
{
	__u64 t = (__u64)n->deadline_us * (1000 * CPN_LATE_STUCK_DEADLINES);

	if (t < CPN_GONE_MIN_NS)
		t = CPN_GONE_MIN_NS;
	return n->unanswered && now_ns > n->since_ns && now_ns - n->since_ns > t;
}

/* May be bound to: up, not draining, reported within stale_ms, and not
 * stuck (or stuck, reporting, and due a retry).
 */
static __always_inline int cpn_late_live(const struct cpn_node *n, __u64 now_ns, __u32 stale_ms)
{
	if (!cpn_node_up(n) || (n->report_flags & CPN_REP_DRAINING) ||
	    !cpn_node_fresh(n, now_ns, stale_ms))
		return 0;
	return !cpn_late_stuck(n, now_ns) || cpn_node_answering(n, now_ns);
}

/* Still there: up, not draining, reported within stale_ms. A request
 * waits for such a node (stuck for now, or every slot taken) rather than
 * being bound early. Not the early policies' "gone" (silent for 20 ms
 * since it turned suspect): a router that was itself descheduled finds
 * its nodes' reports still in its receive rings, behind the requests it
 * reads first, and would bind early (or refuse, no node) what it should
 * hold for a moment; a node that died is out after stale_ms, and not
 * bound to meanwhile (stuck).
 */
static __always_inline int cpn_late_there(const struct cpn_node *n, __u64 now_ns, __u32 stale_ms)
{
	return cpn_node_up(n) && !(n->report_flags & CPN_REP_DRAINING) &&
	       cpn_node_fresh(n, now_ns, stale_ms);
}

static __always_inline __u32 cpn_late_class(__u8 cls)
{
	return cls < CPN_LATE_CLASSES ? cls : CPN_LATE_CLASSES - 1;
}

/* n of JBSQ(n). */
static __always_inline __u32 cpn_late_bound(const struct cpn_service *svc)
{
	__u32 b = svc->late_bound ? svc->late_bound : CPN_LATE_BOUND_DEFAULT;

	return b < CPN_LATE_BOUND_MAX ? b : CPN_LATE_BOUND_MAX;
}

/* How many requests the service may hold. */
static __always_inline __u32 cpn_late_limit(const struct cpn_service *svc)
{
	__u32 l = svc->max_queue ? svc->max_queue : CPN_LATE_QUEUE_DEFAULT;

	return l < CPN_LATE_QUEUE_MAX ? l : CPN_LATE_QUEUE_MAX;
}

/* The ring size for a service's queue: the power of two at or above its limit. */
static __always_inline __u32 cpn_late_cap(const struct cpn_service *svc)
{
	__u32 l = cpn_late_limit(svc), c = 1;

	while (c < l)
		c <<= 1;
	return c;
}

/* A node's slots: n x its capacity, the capacity scaled down where its
 * answers show less than it reports (as est_us does); at least n.
 */
static __always_inline __u32 cpn_late_slots(const struct cpn_node *nd, __u32 bound)
{
	__u64 cap = nd->capacity ? nd->capacity : 1;

	if (nd->overclaim > CPN_OVERCLAIM_OK)
		cap = cap * CPN_OVERCLAIM_OK / nd->overclaim;
	if (!cap)
		cap = 1;
	cap *= bound;
	return cap > 0xffffffULL ? 0xffffff : (__u32)cap;
}

/* Requests of class `cls` or more urgent that wait: those a new one of
 * class `cls` queues behind.
 */
static __always_inline __u32 cpn_late_ahead(const struct cpn_late_queue *q, __u32 cls)
{
	__u32 a = 0;

	for (__u32 c = 0; c <= cls && c < CPN_LATE_CLASSES; c++)
		a += q->n[c];
	return a;
}

/* The first live candidate with a free slot scanning from `start` (at most
 * CPN_SVC_SCAN_MAX scanned, as `least` does), other than `skip`. The
 * first, not the least loaded of many: that is too often a node whose load
 * this router last heard of long ago (cpn-sim, 100 routers over 100 nodes
 * of two speeds, p99 in mean service times: the first 37, the least loaded
 * of 4 70, of all 92, p2c 36); with one router over 100 nodes of one speed,
 * late2's p99 is 6.0 against 5.4 with 4 (the central queue: 4.6). Its
 * score in *num / *den: when a request sent there would be answered,
 * path_us + (load + 1) x svc_us / slots, load being what this router has
 * there unanswered (held) or, where the router's view shows more
 * (queue_depth + inflight + outstanding: other routers' requests), that.
 * *there (may be NULL) counts the candidates scanned that are still there
 * (cpn_late_there: live ones, and stuck ones that report).
 */
static __always_inline __u16 cpn_late_scan(CPN_CTX *ctx, const struct cpn_service *svc,
					   const __u32 *held, __u32 start, __u16 skip, __u64 now_ns,
					   __u64 *num, __u64 *den, __u32 *there)
{
	__u32 n = cpn_svc_n(svc), bound = cpn_late_bound(svc), nthere = 0;
	__u16 got = 0;

	start = n ? start % n : 0;
	for (__u32 i = 0; i < CPN_SVC_SCAN_MAX && i < n; i++) {
		__u16 id = svc->nodes[cpn_wrap(start + i, n) & (CPN_MAX_SVC_NODES - 1)];
		struct cpn_node *nd = cpn_node_at(ctx, id);
		__u64 load, view;
		__u32 slots, h;

		if (!nd || !cpn_late_there(nd, now_ns, svc->stale_ms))
			continue;
		nthere++;
		if (id == skip || !cpn_late_live(nd, now_ns, svc->stale_ms))
			continue;
		slots = cpn_late_slots(nd, bound);
		h = held[id & (CPN_MAX_NODES - 1)];
		if (h >= slots)
			continue;
		view = (__u64)nd->queue_depth + nd->inflight + nd->outstanding;
		load = view > h ? view : h;
		if (load > 0xffffff)
			load = 0xffffff;
		/* < 2^57: path_us < 2^32, slots < 2^24, load + 1 <= 2^24. */
		*num = (__u64)nd->path_us * slots + (load + 1) * (nd->svc_us ? nd->svc_us : 1);
		*den = slots;
		got = id;
		break;
	}
	if (there)
		*there = nthere;
	return got;
}

/* A live candidate with a free slot: one found from each of two random
 * places (`start`'s two halves, cpn_late_scan), and of those two the one
 * where a request would be answered first (cpn_late_scan's score, compared
 * by cross-multiplying: no divide). Two at random, and not the best of
 * all, because many routers that each took the one node that answers
 * first would all send to the same fast node before their views show it
 * full; and the speed in the comparison, because one router's slots never
 * run out when many share the nodes, and a free node alone would then
 * load slow nodes as much as fast ones (cpn-sim, 100 routers over nodes of
 * two speeds, p99 in mean service times: the best of all 105, the least
 * loaded 135, this 37, p2c 36). With n = 1, one router and nodes of one
 * speed every free node is idle: one central queue. 0 when no live
 * candidate scanned has a free slot; *there as cpn_late_scan's (at least 1
 * where a node is returned).
 */
static __always_inline __u16 cpn_late_pick(CPN_CTX *ctx, const struct cpn_service *svc,
					   const __u32 *held, __u32 start, __u64 now_ns,
					   __u32 *there)
{
	__u64 an = 0, ad = 1, bn = 0, bd = 1;
	__u16 a, b;

	a = cpn_late_scan(ctx, svc, held, start & 0xffff, 0, now_ns, &an, &ad, there);
	if (!a)
		return 0;
	b = cpn_late_scan(ctx, svc, held, start >> 16, a, now_ns, &bn, &bd, 0);
	if (b && (unsigned __int128)bn * ad < (unsigned __int128)an * bd)
		return b;
	return a;
}

/* The candidates' answers per second with every slot busy (the sum of
 * slots x 10^6 / svc_us over those still there, of CPN_SVC_SCAN_MAX
 * scanned from `start`, scaled to all), and *slots_out their slots
 * (likewise): the prediction of a held request's wait.
 */
static __always_inline __u64 cpn_late_rate(CPN_CTX *ctx, const struct cpn_service *svc, __u32 start,
					   __u64 now_ns, __u64 *slots_out)
{
	__u32 n = cpn_svc_n(svc), bound = cpn_late_bound(svc), scanned = 0;
	__u64 r = 0, slots = 0;

	start = n ? start % n : 0;
	for (__u32 i = 0; i < CPN_SVC_SCAN_MAX && i < n; i++) {
		struct cpn_node *nd =
		    cpn_node_at(ctx, svc->nodes[cpn_wrap(start + i, n) & (CPN_MAX_SVC_NODES - 1)]);
		__u32 sl;

		scanned++;
		if (!nd || !cpn_late_there(nd, now_ns, svc->stale_ms))
			continue;
		sl = cpn_late_slots(nd, bound);
		slots += sl;
		r += (__u64)sl * 1000000ULL / (nd->svc_us ? nd->svc_us : 1);
	}
	if (scanned && scanned < n) {
		r = r * n / scanned;
		slots = slots * n / scanned;
	}
	*slots_out = slots;
	return r;
}

/* A new request of class `cls`. Bound now if nothing of its class or a
 * more urgent one waits and a node has a free slot; else held, unless the
 * queue is full (BUSY, CPN_BUSY_QUEUE) or, with max_wait_us, its predicted
 * answer time (est_us) is above it (BUSY, CPN_BUSY_WAIT: at once, not
 * late): its wait is (ahead + 1) / rate, then a mean service time (slots /
 * rate). No candidate there any more (cpn_late_there): early (the policy's
 * own fallback, or BUSY no node).
 */
static __always_inline void cpn_late_admit(CPN_CTX *ctx, const struct cpn_service *svc,
					   const struct cpn_late_queue *q, const __u32 *held,
					   __u8 cls, __u32 start, __u64 now_ns,
					   struct cpn_late_result *out)
{
	__u32 c = cpn_late_class(cls), ahead = q ? cpn_late_ahead(q, c) : 0, there = 0;
	__u64 rate, slots = 0, est;
	__u16 node;

	out->busy = 0;
	out->node = 0;
	out->est_us = 0;
	node = cpn_late_pick(ctx, svc, held, start, now_ns, &there);
	if (!there) {
		out->verdict = CPN_LATE_EARLY;
		return;
	}
	if (!ahead && node) {
		out->verdict = CPN_LATE_BIND;
		out->node = node;
		return;
	}
	if (!q || q->len >= cpn_late_limit(svc) || q->len >= q->cap) {
		out->verdict = CPN_LATE_BUSY;
		out->busy = CPN_BUSY_QUEUE;
		return;
	}
	out->verdict = CPN_LATE_HOLD;
	if (!svc->max_wait_us)
		return;
	rate = cpn_late_rate(ctx, svc, start, now_ns, &slots);
	if (!rate)
		return;
	est = (((__u64)ahead + 1) * 1000000ULL + slots * 1000000ULL) / rate;
	out->est_us = est > 0xffffffffULL ? 0xffffffffU : (__u32)est;
	if (est > svc->max_wait_us) {
		out->verdict = CPN_LATE_BUSY;
		out->busy = CPN_BUSY_WAIT;
	}
}

static __always_inline int cpn_late_push(struct cpn_late_queue *q, __u8 cls,
					 const struct cpn_late_ent *e)
{
	__u32 c = cpn_late_class(cls);

	if (q->n[c] >= q->cap)
		return -1;
	q->ent[(size_t)c * q->cap + ((q->head[c] + q->n[c]) & (q->cap - 1))] = *e;
	q->n[c]++;
	q->len++;
	return 0;
}

/* The most urgent non-empty class, or -1. */
static __always_inline int cpn_late_first(const struct cpn_late_queue *q)
{
	for (int c = 0; c < CPN_LATE_CLASSES; c++)
		if (q->n[c])
			return c;
	return -1;
}

static __always_inline void cpn_late_pop(struct cpn_late_queue *q, int c, struct cpn_late_ent *e)
{
	*e = q->ent[(size_t)c * q->cap + q->head[c]];
	q->head[c] = (q->head[c] + 1) & (q->cap - 1);
	q->n[c]--;
	q->len--;
}

/* What to do next with the service's held requests: the head of the most
 * urgent class is refused (BUSY, CPN_BUSY_WAIT) once it has waited longer
 * than max_wait_us, bound where a node has a free slot (BIND), bound early
 * where no candidate is there any more (EARLY); either way it is taken off
 * the queue into out->ent. NONE: nothing waits, or every slot is taken.
 */
static __always_inline void cpn_late_next(CPN_CTX *ctx, const struct cpn_service *svc,
					  struct cpn_late_queue *q, const __u32 *held, __u32 start,
					  __u64 now_ns, struct cpn_late_result *out)
{
	int c = q ? cpn_late_first(q) : -1;
	__u32 there = 0;
	__u16 node;

	out->busy = 0;
	out->node = 0;
	out->est_us = 0;
	out->verdict = CPN_LATE_NONE;
	if (c < 0)
		return;
	/* Every class's head: a less urgent class may wait behind a busy
	 * one for longer than max_wait_us, and gets BUSY then too.
	 */
	for (int k = c; svc->max_wait_us && k < CPN_LATE_CLASSES; k++) {
		const struct cpn_late_ent *e = &q->ent[(size_t)k * q->cap + q->head[k]];

		if (q->n[k] && now_ns > e->t_ns &&
		    now_ns - e->t_ns > (__u64)svc->max_wait_us * 1000) {
			cpn_late_pop(q, k, &out->ent);
			out->verdict = CPN_LATE_BUSY;
			out->busy = CPN_BUSY_WAIT;
			return;
		}
	}
	node = cpn_late_pick(ctx, svc, held, start, now_ns, &there);
	if (node) {
		cpn_late_pop(q, c, &out->ent);
		out->verdict = CPN_LATE_BIND;
		out->node = node;
	} else if (!there) {
		cpn_late_pop(q, c, &out->ent);
		out->verdict = CPN_LATE_EARLY;
	}
}

/* A REPLY or BUSY of node `id` for a late service: one slot free. */
static __always_inline void cpn_late_answered(__u32 *held, __u16 id)
{
	if (held[id & (CPN_MAX_NODES - 1)])
		held[id & (CPN_MAX_NODES - 1)]--;
}

/* A request bound to node `id`. */
static __always_inline void cpn_late_sent(__u32 *held, __u16 id)
{
	held[id & (CPN_MAX_NODES - 1)]++;
}

/* Slots that time out, and slots that drift. A candidate stuck
 * (cpn_late_stuck) gets its slots back, counted lost, so that a node that
 * died holds nothing; it is not live meanwhile, so none is bound to it but
 * the retries cpn_late_live allows. An answer that still comes finds the
 * count at zero and leaves it there.
 * And where `sent_ns` (when this router last sent the node a late request;
 * NULL: not kept) shows that the node reported after that, by more than
 * its path and a millisecond (so the report counts what was sent), the
 * count is no more than the node's own queue_depth + inflight: answers
 * this router never saw as a late service's (the service changed or was
 * removed meanwhile, a lost reply, a node that restarted) do not keep
 * slots taken for ever. Returns the slots freed.
 */
static __always_inline __u32 cpn_late_expire(CPN_CTX *ctx, const struct cpn_service *svc,
					     __u32 *held, const __u64 *sent_ns, __u64 now_ns)
{
	__u32 n = cpn_svc_n(svc), freed = 0;

	for (__u32 i = 0; i < CPN_MAX_SVC_NODES && i < n; i++) {
		__u16 id = svc->nodes[i];
		struct cpn_node *nd = cpn_node_at(ctx, id);
		__u32 *h = &held[id & (CPN_MAX_NODES - 1)];

		if (!*h || !nd)
			continue;
		if (cpn_late_stuck(nd, now_ns)) {
			freed += *h;
			*h = 0;
		} else if (sent_ns && nd->last_report_ns > sent_ns[id & (CPN_MAX_NODES - 1)] +
							       ((__u64)nd->path_us + 1000) * 1000) {
			__u32 at = (__u32)nd->queue_depth + nd->inflight;

			if (*h > at) {
				freed += *h - at;
				*h = at;
			}
		}
	}
	return freed;
}

#endif /* CPN_LATE_H */
