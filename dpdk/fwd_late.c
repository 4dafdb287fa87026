// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * dispatch: late on cpn-fwd: the requests a late service holds, and the
 * slots this cpn-fwd has taken at each node (include/cpn/late.h decides).
 *
 * One lock guards it all: the queues, `held` and the counters. It is taken
 * only for late services' requests and answers (an early service never
 * meets it) and is uncontended with one forwarding lcore. A request that
 * cpn_env_late decides to hold leaves the lock held: router.h returns
 * CPN_ACT_HOLD straight away and fwd_late_hold() queues the mbuf and lets
 * it go, so that no other lcore sees the queue between the decision and
 * the push.
 *
 * Slots are counted where a late service's request is sent (router.h's
 * cpn_env_late_sent, after every check) and given back by the node's REPLY
 * or BUSY, when the node is stuck (cpn_late_expire: what it was sent is
 * counted lost), or down to what the node's own report says it holds. With
 * several lcores, lcores that bind at the same moment may each take a
 * node's last free slot: up to (lcores - 1) over its bound for a moment.
 *
 * The queues' rings are allocated by the control thread
 * (fwd_late_prepare), before a snapshot with a new late service or a new
 * limit is published: nothing is allocated on the packet path.
 */
#include "fwd_late.h"

#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_spinlock.h>

/* cpn_late_expire at most this often: it reads every candidate. */
#define FWD_LATE_EXPIRE_NS 1000000ULL

struct fwd_late *fwd_late_new(void)
{
	struct fwd_late *l = calloc(1, sizeof(*l));

	if (l)
		rte_spinlock_init(&l->lock);
	return l;
}

void fwd_late_free(struct fwd_late *l)
{
	if (!l)
		return;
	for (int s = 0; s < CPN_MAX_SERVICES; s++)
		free(l->q[s].ent);
	free(l);
}

void fwd_late_prepare(const struct fwd_snap *snap)
{
	struct fwd_late *l = fwd.late;

	if (!l || !snap)
		return;
	for (int id = 0; id < CPN_MAX_SERVICES; id++) {
		const struct cpn_service *svc = &snap->svc[id];
		struct cpn_late_queue *q = &l->q[id];
		struct cpn_late_ent *ent, *old = NULL;
		__u32 cap;

		if (!snap->has_svc[id] || !(svc->flags & CPN_SVC_LATE))
			continue;
		cap = cpn_late_cap(svc);
		/* q->ent and q->cap change only here (this thread): read
		 * without the lock.
		 */
		if (q->ent && q->cap == cap)
			continue;
		ent = calloc((size_t)cap * CPN_LATE_CLASSES, sizeof(*ent));
		if (!ent)
			continue; /* the old ring, or early binding, until it can */
		rte_spinlock_lock(&l->lock);
		if (!q->len) {
			old = q->ent;
			memset(q, 0, sizeof(*q));
			q->ent = ent;
			q->cap = cap;
			ent = NULL;
		}
		rte_spinlock_unlock(&l->lock);
		free(old);
		free(ent); /* requests held: resized once they are gone */
	}
}

int fwd_late_admit(struct cpn_env *env, struct cpn_service *svc, const struct cpn_hdr *h, __u64 now,
		   __u8 *busy)
{
	struct fwd_late *l = fwd.late;
	struct cpn_late_result r;
	struct cpn_late_queue *q;

	if (!l || env->late_early)
		return -1;
	q = &l->q[svc->id & (CPN_MAX_SERVICES - 1)];
	rte_spinlock_lock(&l->lock);
	if (!q->ent) { /* not prepared yet (fwd_late_prepare): bound early */
		rte_spinlock_unlock(&l->lock);
		return -1;
	}
	cpn_late_admit(env, svc, q, l->held, h->class, (__u32)cpn_env_rand(env), now, &r);
	/* The mbuf pool holds FWD_LATE_HELD_MAX besides its rings. */
	if (r.verdict == CPN_LATE_HOLD &&
	    atomic_load_explicit(&l->total, memory_order_relaxed) >= FWD_LATE_HELD_MAX) {
		r.verdict = CPN_LATE_BUSY;
		r.busy = CPN_BUSY_QUEUE;
	}
	switch (r.verdict) {
	case CPN_LATE_BIND:
		rte_spinlock_unlock(&l->lock);
		return r.node;
	case CPN_LATE_HOLD:
		/* Kept locked until fwd_late_hold() has queued it. */
		env->late_locked = 1;
		env->late_cls = h->class;
		env->late_svc = svc->id;
		*busy = CPN_HELD;
		return 0;
	case CPN_LATE_BUSY:
		rte_spinlock_unlock(&l->lock);
		*busy = r.busy;
		return 0;
	default: /* EARLY */
		l->svc[svc->id & (CPN_MAX_SERVICES - 1)].early++;
		rte_spinlock_unlock(&l->lock);
		return -1;
	}
}

int fwd_late_hold(struct cpn_env *env, struct rte_mbuf *m, __u16 port)
{
	struct fwd_late *l = fwd.late;
	struct cpn_late_ent e = {.handle = (__u64)(uintptr_t)m, .t_ns = env->now, .aux = port};
	int rc;

	if (!env->late_locked)
		return -1;
	rc = cpn_late_push(&l->q[env->late_svc & (CPN_MAX_SERVICES - 1)], env->late_cls, &e);
	if (!rc)
		atomic_fetch_add_explicit(&l->total, 1, memory_order_relaxed);
	env->late_locked = 0;
	rte_spinlock_unlock(&l->lock);
	return rc;
}

void fwd_late_sent(struct cpn_env *env, __u16 node)
{
	struct fwd_late *l = fwd.late;

	if (!l)
		return;
	rte_spinlock_lock(&l->lock);
	cpn_late_sent(l->held, node);
	l->sent_ns[node & (CPN_MAX_NODES - 1)] = env->now;
	rte_spinlock_unlock(&l->lock);
}

void fwd_late_answered(struct cpn_env *env, __u16 node)
{
	struct fwd_late *l = fwd.late;

	(void)env;
	if (!l)
		return;
	rte_spinlock_lock(&l->lock);
	cpn_late_answered(l->held, node);
	rte_spinlock_unlock(&l->lock);
	atomic_store_explicit(&l->dirty, 1, memory_order_relaxed);
}

/* Take one request off its queue (the lock held). */
static void take_head(struct cpn_late_queue *q, struct cpn_late_result *out, __u8 verdict,
		      __u8 busy)
{
	int c = cpn_late_first(q);

	cpn_late_pop(q, c, &out->ent);
	out->verdict = verdict;
	out->busy = busy;
	out->node = 0;
}

int fwd_late_next(struct cpn_env *env, int flush, struct cpn_late_result *out)
{
	struct fwd_late *l = fwd.late;
	int found = 0, expire = 0;

	if (!l || !atomic_load_explicit(&l->total, memory_order_relaxed))
		return 0;
	/* Nothing can have changed: no slot freed, no new configuration,
	 * and no expiry or max_wait_us due (looked at every millisecond).
	 * Then no lock, no scan: this runs every poll round.
	 */
	if (!flush && !atomic_load_explicit(&l->dirty, memory_order_relaxed) &&
	    env->now < atomic_load_explicit(&l->tick, memory_order_relaxed) &&
	    env->snap->gen == atomic_load_explicit(&l->gen, memory_order_relaxed))
		return 0;
	if (flush)
		rte_spinlock_lock(&l->lock);
	else if (!rte_spinlock_trylock(&l->lock))
		return 0; /* another lcore is at it */
	atomic_store_explicit(&l->dirty, 0, memory_order_relaxed);
	atomic_store_explicit(&l->gen, env->snap->gen, memory_order_relaxed);
	if (env->now >= atomic_load_explicit(&l->tick, memory_order_relaxed))
		atomic_store_explicit(&l->tick, env->now + FWD_LATE_EXPIRE_NS,
				      memory_order_relaxed);
	if (env->now - l->expired_ns >= FWD_LATE_EXPIRE_NS) {
		l->expired_ns = env->now;
		expire = 1;
	}
	for (__u32 k = 0; k < CPN_MAX_SERVICES && !found; k++) {
		__u32 s = (l->cursor + k) & (CPN_MAX_SERVICES - 1);
		struct cpn_late_queue *q = &l->q[s];
		struct cpn_service *svc;

		if (!q->len)
			continue;
		svc = cpn_env_service(env, s);
		if (!svc || !(svc->flags & CPN_SVC_ACTIVE)) {
			/* The service is gone: its clients hear so. */
			take_head(q, out, CPN_LATE_BUSY, CPN_BUSY_NO_NODE);
			l->svc[s].gone++;
			found = 1;
		} else if (flush || !(svc->flags & CPN_SVC_LATE)) {
			/* Binding early from now on (no longer late, or
			 * cpn-fwd stops): the policy's choice, at once.
			 */
			take_head(q, out, CPN_LATE_EARLY, 0);
			l->svc[s].early++;
			found = 1;
		} else {
			if (expire)
				l->slots_expired +=
				    cpn_late_expire(env, svc, l->held, l->sent_ns, env->now);
			cpn_late_next(env, svc, q, l->held, (__u32)cpn_env_rand(env), env->now,
				      out);
			if (out->verdict != CPN_LATE_NONE) {
				found = 1;
				if (out->verdict == CPN_LATE_BIND)
					l->svc[s].bound++;
				else if (out->verdict == CPN_LATE_BUSY)
					l->svc[s].timed_out++;
				else
					l->svc[s].early++;
			}
		}
		if (found) {
			atomic_fetch_sub_explicit(&l->total, 1, memory_order_relaxed);
			/* More may go: look again next round. */
			atomic_store_explicit(&l->dirty, 1, memory_order_relaxed);
			/* The next call starts with the next service: each
			 * gets its turn.
			 */
			l->cursor = s + 1;
		}
	}
	rte_spinlock_unlock(&l->lock);
	return found;
}

void fwd_late_read(struct fwd_late_stats *out)
{
	struct fwd_late *l = fwd.late;

	memset(out, 0, sizeof(*out));
	if (!l)
		return;
	rte_spinlock_lock(&l->lock);
	for (int s = 0; s < CPN_MAX_SERVICES; s++) {
		out->svc[s] = l->svc[s];
		out->held[s] = l->q[s].len;
	}
	out->slots_expired = l->slots_expired;
	for (int n = 0; n < CPN_MAX_NODES; n++)
		out->slots[n] = l->held[n];
	rte_spinlock_unlock(&l->lock);
}
