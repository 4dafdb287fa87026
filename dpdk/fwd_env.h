/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn-fwd's environment for include/cpn/router.h (its contract is at the
 * top of that file), on plain memory: the snapshot's tables, the shared
 * node state, the lcore's counters, generator and clock. Include this,
 * not router.h: it defines CPN_CTX and cpn_node_at first, as sched.h asks.
 * No syscall and no lock but the per-tenant GCRA spinlock (XDP's
 * bpf_spin_lock) in any of them.
 */
#ifndef CPN_FWD_ENV_H
#define CPN_FWD_ENV_H

#include "fwd.h"

#define CPN_CTX struct cpn_env

/* A locked add only where another thread writes the node table too. */
#define CPN_NODE_INC(p)                                                                            \
	(fwd.state_private ? (*(p))++ : __atomic_fetch_add((p), 1, __ATOMIC_RELAXED))

static __rte_always_inline struct cpn_node *fwd_node_at(struct cpn_env *env, __u32 id)
{
	if (id == 0 || id >= CPN_MAX_NODES)
		return NULL;
	return &env->state[id];
}
#define cpn_node_at(env, id) fwd_node_at(env, id)

static __rte_always_inline struct cpn_tokens *fwd_tokens_at(struct cpn_env *env, __u32 svc_id)
{
	return env->tokens && svc_id < CPN_MAX_SERVICES ? &env->tokens[svc_id] : NULL;
}
#define cpn_tokens_at(env, svc_id) fwd_tokens_at(env, svc_id)

/* Never NULL: all zero (every default) where the snapshot has none. */
static inline struct cpn_config *cpn_env_config(struct cpn_env *env)
{
	return &env->snap->config;
}

static inline __u32 fwd_vip_slot(const struct cpn_vip_key *k)
{
	__u32 h = (k->addr[0] ^ k->addr[1] ^ k->addr[2] ^ k->addr[3]) * 0x9e3779b1U ^
		  ((__u32)k->port << 8 | k->family) * 0x85ebca6bU;

	/* Multiplicative hashing: the top bits are the mixed ones. */
	return (h ^ h >> 16) * 0x9e3779b1U >> (32 - FWD_VIP_CACHE_BITS);
}

static inline int fwd_vip_key_eq(const struct cpn_vip_key *a, const struct cpn_vip_key *b)
{
	return a->addr[0] == b->addr[0] && a->addr[1] == b->addr[1] && a->addr[2] == b->addr[2] &&
	       a->addr[3] == b->addr[3] && a->port == b->port && a->family == b->family &&
	       a->pad == b->pad;
}

static inline struct cpn_service *cpn_env_vip(struct cpn_env *env, const struct cpn_vip_key *k)
{
	struct fwd_vip_cache_ent *e = &env->vip_cache[fwd_vip_slot(k)];
	struct fwd_snap *s = env->snap;
	void *data;

	if (e->gen == s->gen && fwd_vip_key_eq(&e->key, k))
		return &s->vip_svc[e->idx];
	if (!s->vips || rte_hash_lookup_data(s->vips, k, &data) < 0)
		return NULL;
	e->key = *k;
	e->idx = (__u32)(uintptr_t)data;
	e->gen = s->gen;
	return &s->vip_svc[e->idx];
}

static inline struct cpn_service *cpn_env_service(struct cpn_env *env, __u32 id)
{
	if (id >= CPN_MAX_SERVICES || !env->snap->has_svc[id])
		return NULL;
	return &env->snap->svc[id];
}

static inline struct cpn_maglev *cpn_env_maglev(struct cpn_env *env, __u32 id)
{
	return id < CPN_MAX_SERVICES ? env->snap->maglev[id] : NULL;
}

/* cpn_nodes is an array: every id below CPN_MAX_NODES has an entry. */
static inline struct cpn_node_cfg *cpn_env_node_cfg(struct cpn_env *env, __u32 id)
{
	return id < CPN_MAX_NODES ? &env->snap->nodes[id] : NULL;
}

static inline struct cpn_tenant *cpn_env_tenant(struct cpn_env *env, __u32 id)
{
	struct fwd_tenant_cache_ent *e =
	    &env->tenant_cache[id * 0x9e3779b1U >> (32 - FWD_TENANT_CACHE_BITS)];
	struct fwd_snap *s = env->snap;
	void *data;

	if (e->gen == s->gen && e->id == id)
		return &s->tenant[e->idx].t;
	if (!s->tenants || rte_hash_lookup_data(s->tenants, &id, &data) < 0)
		return NULL;
	e->id = id;
	e->idx = (__u32)(uintptr_t)data;
	e->gen = s->gen;
	return &s->tenant[e->idx].t;
}

static inline int cpn_env_tenant_admit(struct cpn_env *env, struct cpn_tenant *t, __u64 now)
{
	struct fwd_tenant *ft = (struct fwd_tenant *)((char *)t - offsetof(struct fwd_tenant, t));
	int ok;

	(void)env;
	if (!t->interval_ns)
		return 1;
	rte_spinlock_lock(&ft->lock);
	ok = cpn_gcra(&t->tat, now, t->interval_ns, t->burst_ns);
	rte_spinlock_unlock(&ft->lock);
	return ok;
}

static inline __u32 fwd_aff_slot(const struct cpn_aff_key *k, __u32 mask)
{
	__u32 h = k->tenant_id * 0x9e3779b1U ^ k->session_key * 0x85ebca6bU ^
		  (__u32)k->service_id * 0xc2b2ae35U;

	h ^= h >> 15;
	return h & mask;
}

/* The session table of the tenant entry `tenant`, NULL if none. */
static inline struct fwd_aff_table *fwd_aff_table(struct cpn_env *env, __u32 tenant)
{
	struct cpn_tenant *t = cpn_env_tenant(env, tenant);

	if (!t)
		return NULL;
	return ((struct fwd_tenant *)((char *)t - offsetof(struct fwd_tenant, t)))->aff;
}

static inline int fwd_aff_key_eq(const struct cpn_aff_key *a, const struct cpn_aff_key *b)
{
	return a->tenant_id == b->tenant_id && a->session_key == b->session_key &&
	       a->service_id == b->service_id;
}

/* A direct-mapped table per tenant entry (struct fwd_aff_table). */
static inline struct cpn_aff *cpn_env_aff(struct cpn_env *env, __u32 tenant,
					  const struct cpn_aff_key *k)
{
	struct fwd_aff_table *tb = fwd_aff_table(env, tenant);
	struct fwd_aff_ent e;

	if (!tb)
		return NULL;
	e = tb->ent[fwd_aff_slot(k, tb->mask)];

	if (!e.aff.node_id || !fwd_aff_key_eq(&e.key, k))
		return NULL;
	env->aff_copy = e.aff;
	return &env->aff_copy;
}

/* cpn-fwd keeps no full-NAT flows: such services are DNATed (the reply
 * returns through the node's own route).
 */
static inline int cpn_env_flow_set(struct cpn_env *env, const struct cpn_flow_key *k,
				   const struct cpn_flow *f)
{
	(void)env;
	(void)k;
	(void)f;
	return -1;
}

static inline int cpn_env_flow_get(struct cpn_env *env, const struct cpn_flow_key *k,
				   struct cpn_flow *f, int take)
{
	(void)env;
	(void)k;
	(void)f;
	(void)take;
	return -1;
}

static inline void cpn_env_flow_del(struct cpn_env *env, const struct cpn_flow_key *k)
{
	(void)env;
	(void)k;
}

static inline void cpn_env_aff_set(struct cpn_env *env, __u32 tenant, const struct cpn_aff_key *k,
				   const struct cpn_aff *a)
{
	struct fwd_aff_table *tb = fwd_aff_table(env, tenant);
	struct fwd_aff_ent *e;

	if (!tb)
		return;
	e = &tb->ent[fwd_aff_slot(k, tb->mask)];
	e->key = *k;
	e->aff = *a;
}

static inline void cpn_env_count(struct cpn_env *env, __u32 stat)
{
	if (stat < CPN_STAT_MAX)
		env->cnt->stat[stat]++;
}

static inline struct cpn_node_stats *cpn_env_node_stats(struct cpn_env *env, __u32 id)
{
	return id < CPN_MAX_NODES ? &env->cnt->node[id] : NULL;
}

static inline struct cpn_svc_stats *cpn_env_svc_stats(struct cpn_env *env, __u32 id)
{
	return id < CPN_MAX_SERVICES ? &env->cnt->svc[id] : NULL;
}

/* The burst's clock: CLOCK_MONOTONIC (bpf_ktime_get_ns's), set once per
 * received burst by fwd_loop.c from one rte_rdtsc() against an anchor the
 * vDSO gives every 1 ms (no syscall).
 */
static inline __u64 cpn_env_now_ns(struct cpn_env *env)
{
	return env->now;
}

/* CLOCK_TAI, the clock of stamps, read with the burst's clock. */
static inline __u64 cpn_env_tai_ns(struct cpn_env *env)
{
	return env->tai;
}

static inline int cpn_env_seen(struct cpn_env *env, const struct cpn_seen_key *k, __u32 stamp)
{
	struct fwd_seen_ent *e;
	__u32 h;

	if (!env->seen)
		return 0;
	h = (__u32)(k->tag ^ k->tag >> 32) * 0x9e3779b1U ^ (k->sender * 0x85ebca6bU + k->kind);
	e = &env->seen[(h ^ h >> 16) & (FWD_SEEN_SIZE - 1)];
	if (e->key.tag == k->tag && e->key.sender == k->sender && e->key.kind == k->kind)
		return 1;
	e->key = *k;
	e->stamp = stamp;
	return 0;
}

/* xorshift64*, the XDP program's generator: an lcore seeded with S draws
 * what the XDP program draws with cpn_rng = S.
 */
static inline __u64 cpn_env_rand(struct cpn_env *env)
{
	__u64 x = env->rng ? env->rng : 1;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	env->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* cpn-fwd is where hand-offs arrive: it steers `dataplane: dpdk` services
 * itself (the flag is cleared in its snapshot too).
 */
static inline int cpn_env_xsk_ready(struct cpn_env *env)
{
	(void)env;
	return 0;
}

/* dispatch: late (fwd_late.c): the late lock and queues live there. */
#define CPN_ENV_LATE 1
struct cpn_hdr;
int fwd_late_admit(struct cpn_env *env, struct cpn_service *svc, const struct cpn_hdr *h, __u64 now,
		   __u8 *busy);
void fwd_late_sent(struct cpn_env *env, __u16 node);
void fwd_late_answered(struct cpn_env *env, __u16 node);

static inline int cpn_env_late(struct cpn_env *env, struct cpn_service *svc,
			       const struct cpn_hdr *h, __u64 now, __u8 *busy)
{
	return fwd_late_admit(env, svc, h, now, busy);
}

static inline void cpn_env_late_sent(struct cpn_env *env, __u16 node)
{
	fwd_late_sent(env, node);
}

static inline void cpn_env_late_answered(struct cpn_env *env, __u16 node)
{
	fwd_late_answered(env, node);
}

#include "cpn/router.h"

#endif /* CPN_FWD_ENV_H */
