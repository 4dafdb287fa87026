// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn_router: the router's XDP program.
 *
 * The packet path itself is include/cpn/router.h, shared with cpn-fwd; this
 * file holds what is XDP's own: the maps, the environment router.h asks for,
 * and how a verdict leaves (FIB lookup, devmap redirect, XDP_TX, AF_XDP).
 *
 *   bpftool prog loadall bpf/cpn_router.bpf.o /sys/fs/bpf/cpn/progs pinmaps /sys/fs/bpf/cpn
 *   bpftool net attach xdp pinned /sys/fs/bpf/cpn/progs/cpn_xdp dev eth0
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "cpn/csum.h"
#include "cpn/maps.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- maps (see include/cpn/maps.h) -----------------------------------
 *
 * Configuration that a packet must never see half-written (services, Maglev
 * tables) lives in hash maps, whose updates replace the whole value at once.
 * The learned node state is the mmapable array.
 */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpn_config);
} cpn_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CPN_MAX_SERVICES);
	__type(key, struct cpn_vip_key);
	__type(value, struct cpn_service);
} cpn_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CPN_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct cpn_service);
} cpn_services SEC(".maps");

/* 128 KiB a table: allocated for the services that exist, not preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CPN_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct cpn_maglev);
} cpn_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CPN_MAX_NODES);
	__type(key, __u32);
	__type(value, struct cpn_node_cfg);
} cpn_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CPN_MAX_NODES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct cpn_node);
} cpn_node_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CPN_MAX_TENANTS);
	__type(key, __u32);
	__type(value, struct cpn_tenant);
} cpn_tenants SEC(".maps");

/* Session affinity: an LRU per tenant entry (maps.h), created by cpnctl
 * with the tenant's max_sessions; this one is the template.
 */
struct cpn_aff_inner {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CPN_DEFAULT_MAX_SESSIONS);
	/* Sizes, not types: the structs reach BTF only as declarations. */
	__uint(key_size, sizeof(struct cpn_aff_key));
	__uint(value_size, sizeof(struct cpn_aff));
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, CPN_MAX_TENANTS);
	__type(key, __u32);
	__array(values, struct cpn_aff_inner);
} cpn_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpn_cpu);
} cpn_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CPN_MAX_NODES);
	__type(key, __u32);
	__type(value, struct cpn_node_stats);
} cpn_node_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CPN_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct cpn_svc_stats);
} cpn_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, CPN_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} cpn_tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CPN_MAX_NODES);
	__type(key, __u32);
	__type(value, struct cpn_nexthop);
} cpn_nh_cache SEC(".maps");

/* AF_XDP sockets of cpn-fwd (the net_af_xdp PMD's map name), by slot; the
 * slot of an (interface, RX queue) is in cpn_xsk_slots. An interface's
 * sockets all sit on queue 0.. of their own device, so the queue alone
 * cannot be the key when cpn-fwd has several ports.
 */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, CPN_XSK_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CPN_XSK_SLOTS);
	__type(key, struct cpn_xsk_key);
	__type(value, __u32);
} cpn_xsk_slots SEC(".maps");

/* The program each interface had before cpn (maps.h, CPN_CHAIN_SLOTS). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, CPN_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} cpn_chain SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CPN_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} cpn_chain_slots SEC(".maps");

/* Full-NAT requests in flight (maps.h, CPN_SVC_FULLNAT). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CPN_FLOWS);
	__type(key, struct cpn_flow_key);
	__type(value, struct cpn_flow);
} cpn_flows SEC(".maps");

/* Signed messages seen within the freshness window (maps.h, CPN_SEEN). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CPN_SEEN);
	__type(key, struct cpn_seen_key);
	__type(value, __u32);
} cpn_seen SEC(".maps");

/* Idle tokens by service (policy jiq, maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CPN_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct cpn_tokens);
} cpn_tokens SEC(".maps");

/* ---- the environment of include/cpn/router.h ------------------------- */

/* What the policies' global functions are handed as their context: only
 * this, never the environment, whose pointers the verifier would forget
 * once a global function had been given the memory that holds them.
 */
struct cpn_sched_env {
	__u32 unused;
};

/* What one packet looks up once, at its start: this CPU's record
 * (counters, generator, scratch) and the configuration; never NULL (arrays
 * of one entry: key 0 is always there).
 */
struct cpn_env {
	struct xdp_md *ctx;
	struct cpn_cpu *cpu;
	struct cpn_config *cfg;
	__u32 xsk_slot; /* set by cpn_env_xsk_ready() */
	struct cpn_sched_env sched;
};

/* The policy loops of sched.h become global functions, each verified once. */
#define CPN_CTX		   struct cpn_sched_env
#define CPN_SCHED_FN	   __attribute__((noinline))
#define cpn_sched_ctx(env) (&(env)->sched)

static __always_inline struct cpn_node *cpn_bpf_node(__u32 id)
{
	if (!id)
		return 0;
	return bpf_map_lookup_elem(&cpn_node_state, &id);
}
#define cpn_node_at(env, id) cpn_bpf_node(id)

static __always_inline struct cpn_tokens *cpn_bpf_tokens(__u32 svc_id)
{
	return bpf_map_lookup_elem(&cpn_tokens, &svc_id);
}
#define cpn_tokens_at(env, svc_id) cpn_bpf_tokens(svc_id)

static __always_inline struct cpn_config *cpn_env_config(struct cpn_env *env)
{
	return env->cfg;
}

static __always_inline struct cpn_service *cpn_env_vip(struct cpn_env *env,
						       const struct cpn_vip_key *k)
{
	return bpf_map_lookup_elem(&cpn_vips, k);
}

static __always_inline struct cpn_service *cpn_env_service(struct cpn_env *env, __u32 id)
{
	return bpf_map_lookup_elem(&cpn_services, &id);
}

static __always_inline struct cpn_maglev *cpn_env_maglev(struct cpn_env *env, __u32 id)
{
	return bpf_map_lookup_elem(&cpn_maglev, &id);
}

static __always_inline struct cpn_node_cfg *cpn_env_node_cfg(struct cpn_env *env, __u32 id)
{
	return bpf_map_lookup_elem(&cpn_nodes, &id);
}

static __always_inline struct cpn_tenant *cpn_env_tenant(struct cpn_env *env, __u32 id)
{
	return bpf_map_lookup_elem(&cpn_tenants, &id);
}

static __always_inline int cpn_env_tenant_admit(struct cpn_env *env, struct cpn_tenant *t,
						__u64 now)
{
	int ok;

	if (!t->interval_ns)
		return 1;
	bpf_spin_lock(&t->lock);
	ok = cpn_gcra(&t->tat, now, t->interval_ns, t->burst_ns);
	bpf_spin_unlock(&t->lock);
	return ok;
}

static __always_inline struct cpn_aff *cpn_env_aff(struct cpn_env *env, __u32 tenant,
						   const struct cpn_aff_key *k)
{
	void *inner = bpf_map_lookup_elem(&cpn_affinity, &tenant);

	return inner ? bpf_map_lookup_elem(inner, k) : 0;
}

static __always_inline void cpn_env_aff_set(struct cpn_env *env, __u32 tenant,
					    const struct cpn_aff_key *k, const struct cpn_aff *a)
{
	void *inner = bpf_map_lookup_elem(&cpn_affinity, &tenant);

	if (inner)
		bpf_map_update_elem(inner, k, a, BPF_ANY);
}

static __always_inline int cpn_env_flow_set(struct cpn_env *env, const struct cpn_flow_key *k,
					    const struct cpn_flow *f)
{
	return bpf_map_update_elem(&cpn_flows, k, f, BPF_ANY);
}

static __always_inline int cpn_env_flow_get(struct cpn_env *env, const struct cpn_flow_key *k,
					    struct cpn_flow *f, int take)
{
	struct cpn_flow *v = bpf_map_lookup_elem(&cpn_flows, k);

	if (!v)
		return -1;
	*f = *v;
	if (take)
		bpf_map_delete_elem(&cpn_flows, k);
	return 0;
}

static __always_inline void cpn_env_flow_del(struct cpn_env *env, const struct cpn_flow_key *k)
{
	bpf_map_delete_elem(&cpn_flows, k);
}

static __always_inline void cpn_env_count(struct cpn_env *env, __u32 stat)
{
	if (stat < CPN_STAT_MAX)
		env->cpu->stat[stat]++;
}

static __always_inline struct cpn_node_stats *cpn_env_node_stats(struct cpn_env *env, __u32 id)
{
	return bpf_map_lookup_elem(&cpn_node_stats, &id);
}

static __always_inline struct cpn_svc_stats *cpn_env_svc_stats(struct cpn_env *env, __u32 id)
{
	return bpf_map_lookup_elem(&cpn_svc_stats, &id);
}

static __always_inline __u64 cpn_env_now_ns(struct cpn_env *env)
{
	return bpf_ktime_get_ns();
}

static __always_inline __u64 cpn_env_tai_ns(struct cpn_env *env)
{
	return bpf_ktime_get_tai_ns();
}

/* One helper call: the insert fails where the key is already there. */
static __always_inline int cpn_env_seen(struct cpn_env *env, const struct cpn_seen_key *k,
					__u32 stamp)
{
	return bpf_map_update_elem(&cpn_seen, k, &stamp, BPF_NOEXIST) == -17 /* EEXIST */;
}

/* xorshift64* per CPU, seeded from the kernel's PRNG: p2c needs two cheap
 * random draws per request, not cryptographic ones.
 */
static __always_inline __u64 cpn_env_rand(struct cpn_env *env)
{
	__u64 x;

	x = env->cpu->rng;
	if (!x)
		x = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32() | 1;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	env->cpu->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A cpn-fwd AF_XDP socket is bound to this interface and RX queue (XSKMAP
 * lookups from XDP return the socket or NULL).
 */
static __always_inline int cpn_env_xsk_ready(struct cpn_env *env)
{
	struct cpn_xsk_key k = {.ifindex = env->ctx->ingress_ifindex,
				.queue = env->ctx->rx_queue_index};
	__u32 *slot = bpf_map_lookup_elem(&cpn_xsk_slots, &k);

	if (!slot)
		return 0;
	env->xsk_slot = *slot;
	return bpf_map_lookup_elem(&xsks_map, &env->xsk_slot) != NULL;
}

/* A received checksum's long loop, as a global function: verified once,
 * not again in every path that checks a checksum. The span is handed over
 * as its offset in the frame.
 */
__attribute__((noinline)) int cpn_xdp_csum_span_ok(struct xdp_md *ctx, __u32 off, __u32 n,
						   __u64 acc)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (off > 128)
		return 0;
	return cpn_csum_span_ok(data + off, n, data_end, acc);
}
#define cpn_env_csum_span_ok(env, start, n, end, acc)                                              \
	cpn_xdp_csum_span_ok((env)->ctx,                                                           \
			     (__u32)((void *)(start) - (void *)(long)(env)->ctx->data), n, acc)

#include "cpn/router.h"

/* ---- how verdicts leave ---------------------------------------------- */

/* Out of port `ifindex`: XDP_TX when it is the ingress port, else a
 * devmap redirect, counted; -1 when the port is not in cpn_tx_ports (the
 * kernel forwards the packet).
 */
static __always_inline int cpn_xdp_leave(struct xdp_md *ctx, struct cpn_env *env, __u32 ifindex)
{
	int act;

	if (ifindex == ctx->ingress_ifindex) {
		cpn_env_count(env, CPN_STAT_TX_BOUNCE);
		return XDP_TX;
	}
	act = bpf_redirect_map(&cpn_tx_ports, ifindex, XDP_PASS);
	if (act != XDP_REDIRECT)
		return -1;
	cpn_env_count(env, CPN_STAT_TX_REDIRECT);
	return act;
}

/* Route a rewritten packet by its destination: FIB lookup, then XDP_TX
 * when the next hop is behind the ingress port, a devmap redirect when the
 * egress port is in cpn_tx_ports, and the kernel's own forwarding (the
 * packet already rewritten) when the neighbour is not resolved or the port
 * is not ours.
 *
 * A request's next hop is that of its node: the FIB result is cached per CPU
 * and node for nh_ttl_ms (cpn_config), so a route or neighbour change is
 * followed within that time. Replies go to many clients: looked up each time.
 *
 * The FIB request is this CPU's scratch (struct cpn_cpu), not the stack:
 * the packet path's deepest call chain must stay within the 512 bytes of
 * stack BPF allows.
 */
static __always_inline int cpn_xdp_forward(struct xdp_md *ctx, struct cpn_env *env,
					   const struct cpn_verdict *v)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup *fib = (struct bpf_fib_lookup *)env->cpu->scratch;
	struct cpn_config *cfg = env->cfg;
	struct ethhdr *eth = data;
	struct iphdr *ip4 = 0;
	struct ipv6hdr *ip6 = 0;
	struct cpn_nexthop *nh = 0;
	__u32 off = v->l3_off, node = v->node_id;
	int rc, act;

	if (off != sizeof(struct ethhdr) && off != sizeof(struct ethhdr) + 4)
		return XDP_PASS;
	if (v->family == CPN_AF_INET) {
		ip4 = data + off;
		if ((void *)(ip4 + 1) > data_end)
			return XDP_PASS;
		if (ip4->ttl <= 1)
			goto kernel;
	} else {
		ip6 = data + off;
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		if (ip6->hop_limit <= 1)
			goto kernel;
	}

	/* A cached next hop: the frame leaves at once, no FIB request built. */
	if (node && v->now_ns && !(cfg->flags & CPN_CFG_NO_NH_CACHE)) {
		nh = bpf_map_lookup_elem(&cpn_nh_cache, &node);
		if (nh && nh->expires_ns > v->now_ns && nh->in_ifindex == ctx->ingress_ifindex) {
			act = cpn_xdp_leave(ctx, env, nh->ifindex);
			if (act < 0)
				goto kernel;
			cpn_hop(eth, ip4, ip6, nh->dmac, nh->smac);
			return act;
		}
	}

	__builtin_memset(fib, 0, sizeof(*fib));
	if (ip4) {
		fib->family = AF_INET;
		fib->tos = ip4->tos;
		fib->l4_protocol = ip4->protocol;
		fib->tot_len = cpn_ntohs(ip4->tot_len);
		fib->ipv4_src = ip4->saddr;
		fib->ipv4_dst = ip4->daddr;
	} else if (ip6) {
		fib->family = AF_INET6;
		fib->flowinfo = *(__be32 *)ip6 & cpn_htonl(0x0FFFFFFF);
		fib->l4_protocol = ip6->nexthdr;
		fib->tot_len = cpn_ntohs(ip6->payload_len);
		__builtin_memcpy(fib->ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib->ipv6_dst, &ip6->daddr, 16);
	} else {
		return XDP_PASS;
	}
	fib->ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		goto kernel;
	if (nh) {
		nh->expires_ns =
		    v->now_ns +
		    (__u64)(cfg->nh_ttl_ms ? cfg->nh_ttl_ms : CPN_DEFAULT_NH_TTL_MS) * 1000000ULL;
		nh->ifindex = fib->ifindex;
		nh->in_ifindex = ctx->ingress_ifindex;
		cpn_mac_copy(nh->smac, fib->smac);
		cpn_mac_copy(nh->dmac, fib->dmac);
	}
	act = cpn_xdp_leave(ctx, env, fib->ifindex);
	if (act < 0)
		goto kernel;
	cpn_hop(eth, ip4, ip6, fib->dmac, fib->smac);
	return act;
kernel:
	cpn_env_count(env, CPN_STAT_TX_KERNEL);
	return XDP_PASS;
}

_Static_assert(sizeof(struct bpf_fib_lookup) <= sizeof(((struct cpn_cpu *)0)->scratch),
	       "the FIB request fits the per-CPU scratch");

/* The router's program, in two builds of one body: cpn_xdp, and
 * cpn_xdp_chain for an interface where cpnctl chained the program that was
 * there before cpn (maps.h, CPN_CHAIN_SLOTS): what is not cpn's goes to it
 * by a tail call, which does not come back. Two programs, so that where
 * nothing is chained no packet pays for the chain: a program that makes tail
 * calls costs a few ns more on every call between its functions.
 */
static __always_inline int cpn_xdp_run(struct xdp_md *ctx, int chained)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cpn_env env = {.ctx = ctx};
	struct cpn_verdict v;
	__u32 ifindex, *slot, k = 0;

	/* Arrays of one entry: never NULL, but the verifier must see it. */
	env.cpu = bpf_map_lookup_elem(&cpn_stats, &k);
	env.cfg = bpf_map_lookup_elem(&cpn_config, &k);
	if (!env.cpu || !env.cfg)
		return XDP_PASS;

	switch (cpn_router_rx(&env, data, data_end, &v)) {
	case CPN_ACT_FWD:
		return cpn_xdp_forward(ctx, &env, &v);
	case CPN_ACT_TX:
		if (v.trim && bpf_xdp_adjust_tail(ctx, -(int)v.trim)) {
			cpn_env_count(&env, CPN_STAT_DROP_TX);
			return XDP_DROP;
		}
		return XDP_TX;
	case CPN_ACT_XSK:
		return bpf_redirect_map(&xsks_map, env.xsk_slot, XDP_PASS);
	case CPN_ACT_DROP:
	case CPN_ACT_CONSUME:
		return XDP_DROP;
	default:
		if (!chained)
			return XDP_PASS;
		ifindex = ctx->ingress_ifindex;
		slot = bpf_map_lookup_elem(&cpn_chain_slots, &ifindex);
		if (slot)
			bpf_tail_call(ctx, &cpn_chain, *slot);
		return XDP_PASS;
	}
}

SEC("xdp")
int cpn_xdp(struct xdp_md *ctx)
{
	return cpn_xdp_run(ctx, 0);
}

SEC("xdp")
int cpn_xdp_chain(struct xdp_md *ctx)
{
	return cpn_xdp_run(ctx, 1);
}
