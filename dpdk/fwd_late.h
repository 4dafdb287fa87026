/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dispatch: late on cpn-fwd (fwd_late.c): the held requests of late
 * services, the slots taken at each node, and what the forwarding loop
 * calls. The rule itself is include/cpn/late.h's.
 */
#ifndef CPN_FWD_LATE_H
#define CPN_FWD_LATE_H

#include "fwd_env.h" /* first: CPN_CTX, cpn_node_at, router.h */

#include <stdatomic.h>

#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "cpn/late.h"

struct fwd_late {
	/* Read without the lock, each poll round: on a line of their own. */
	_Atomic __u32 total; /* held, every service */
	_Atomic __u32 dirty; /* an answer freed a slot since the last look */
	_Atomic __u64 tick;  /* the next look due anyway: expiry, max_wait_us */
	_Atomic __u64 gen;   /* the snapshot of the last look */
	rte_spinlock_t lock __rte_cache_aligned;
	__u32 cursor;	  /* the service fwd_late_next looks at first */
	__u64 expired_ns; /* the last cpn_late_expire pass */
	__u64 slots_expired;
	__u32 held[CPN_MAX_NODES];    /* slots taken at each node */
	__u64 sent_ns[CPN_MAX_NODES]; /* the last late request sent there */
	struct cpn_late_queue q[CPN_MAX_SERVICES];
	struct fwd_late_svc_stats svc[CPN_MAX_SERVICES];
};

/* After cpn_router_rx() said CPN_ACT_HOLD: queue the mbuf (with its ingress
 * port) and let the lock go. 0, or -1 when it could not be queued (the
 * caller frees it).
 */
int fwd_late_hold(struct cpn_env *env, struct rte_mbuf *m, __u16 port);
/* One held request to act on now, taken off its queue: out->verdict BIND
 * (out->node), BUSY (out->busy), or EARLY; out->ent.handle is its mbuf and
 * out->ent.aux its ingress port. 0 when there is none. With `flush`, every
 * held request is let go early (cpn-fwd stops).
 */
int fwd_late_next(struct cpn_env *env, int flush, struct cpn_late_result *out);

#endif /* CPN_FWD_LATE_H */
