// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-fwd's forwarding lcores: receive a burst on every port, run
 * include/cpn/router.h on each packet, carry out its verdict, send.
 *
 * Verdicts, as the XDP glue (bpf/cpn_router.bpf.c) carries them out:
 *   FWD      route by destination: the neighbour table gives MAC and port
 *            (XDP: bpf_fib_lookup); MACs rewritten, TTL / hop limit
 *            decremented with the IPv4 checksum updated; counted tx_bounce
 *            (out of the ingress port) or tx_redirect. TTL <= 1 or no
 *            neighbour: counted tx_kernel and handled as PASS (XDP hands
 *            the rewritten packet to the kernel).
 *   TX       BUSY back out of the ingress port, trimmed by v.trim.
 *   DROP, CONSUME   freed.
 *   HOLD     dispatch: late — queued (fwd_late.c) until a node has a free
 *            slot, then bound and sent as FWD; or refused (BUSY out of the
 *            port it came in by) when it waits past max_wait_us.
 *   PASS     no kernel sits behind a DPDK port: sent unchanged out of
 *            --default-port when given, else freed and counted (pass_drop).
 *            ARP replies and neighbour advertisements are learned first.
 *
 * No lock (but the per-tenant GCRA spinlock, as XDP's bpf_spin_lock) and no
 * syscall. Once per received burst: the snapshot pointer, and the clock,
 * one rte_rdtsc() converted to CLOCK_MONOTONIC and CLOCK_TAI ns against an
 * anchor that clock_gettime (the vDSO) gives every 1 ms. Learning a
 * neighbour writes the lock-free neighbour hash (its writers serialise
 * among themselves: rare, and never on the request path).
 * Only the first segment of a multi-segment mbuf is parsed.
 */
#include "fwd_late.h" /* first: router.h wants the kernel's network headers */

#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#define FWD_PREFETCH	 3
#define FWD_DRAIN_ROUNDS 64

/* ---- neighbours ------------------------------------------------------ */

static uintptr_t neigh_val(const __u8 mac[6], __u16 port)
{
	uintptr_t v = (uintptr_t)(port + 1) << 48;

	for (int i = 0; i < 6; i++)
		v |= (uintptr_t)mac[i] << (8 * (5 - i));
	return v;
}

int fwd_neigh_set(const struct neigh_key *k, const __u8 mac[6], __u16 port)
{
	int ret = rte_hash_add_key_data(fwd.neigh, k, (void *)neigh_val(mac, port));

	/* After the write: every lcore's neighbour cache is stale. */
	atomic_fetch_add_explicit(&fwd.neigh_gen, 1, memory_order_release);
	return ret;
}

int fwd_neigh_get(const struct neigh_key *k, __u8 mac[6], __u16 *port)
{
	void *data;
	uintptr_t v;

	if (rte_hash_lookup_data(fwd.neigh, k, &data) < 0)
		return -1;
	v = (uintptr_t)data;
	for (int i = 0; i < 6; i++)
		mac[i] = (__u8)(v >> (8 * (5 - i)));
	*port = (__u16)((v >> 48) - 1);
	return 0;
}

static inline int neigh_key_eq(const struct neigh_key *a, const struct neigh_key *b)
{
	return a->addr[0] == b->addr[0] && a->addr[1] == b->addr[1] && a->addr[2] == b->addr[2] &&
	       a->addr[3] == b->addr[3] && a->family == b->family;
}

static inline __u32 neigh_hash(const struct neigh_key *k)
{
	return (k->addr[0] ^ k->addr[1] ^ k->addr[2] ^ k->addr[3] ^ k->family) * 0x9e3779b1U;
}

/* The lcore's cache entry for `k`, filled from the neighbour table on a miss
 * (only hits are cached); NULL if the table has none. Valid for the burst,
 * against the neighbour generation read at its start. `h`: neigh_hash(k).
 */
static inline const struct fwd_neigh_cache_ent *neigh_lookup(struct fwd_lcore *lc,
							     const struct neigh_key *k, __u32 h)
{
	struct fwd_neigh_cache_ent *e = &lc->neigh_cache[h >> (32 - FWD_NEIGH_CACHE_BITS)];

	if (e->gen == lc->neigh_gen && neigh_key_eq(&e->key, k))
		return e;
	if (fwd_neigh_get(k, e->mac, &e->port)) {
		e->gen = 0; /* never a valid generation */
		return NULL;
	}
	e->key = *k;
	e->gen = lc->neigh_gen;
	return e;
}

/* The same for an IPv4 next hop: an IPv4 key's other words are zero, so
 * its hash and its comparison need only the address.
 */
static inline const struct fwd_neigh_cache_ent *neigh_lookup4(struct fwd_lcore *lc, __be32 addr)
{
	__u32 h = (addr ^ CPN_AF_INET) * 0x9e3779b1U;
	const struct fwd_neigh_cache_ent *e = &lc->neigh_cache[h >> (32 - FWD_NEIGH_CACHE_BITS)];
	struct neigh_key k = {.family = CPN_AF_INET};

	if (e->gen == lc->neigh_gen && e->key.addr[0] == addr && e->key.family == CPN_AF_INET)
		return e;
	k.addr[0] = addr;
	return neigh_lookup(lc, &k, h);
}

/* ARP reply: sender -> MAC; IPv6 neighbour advertisement: target -> the
 * target link-layer address option. Learned on the ingress port.
 */
static void neigh_learn(struct fwd_lcore *lc, const __u8 *d, __u32 len, __u16 port)
{
	struct neigh_key k = {0};
	__u32 off = 14;
	__u16 proto;

	if (len < 14)
		return;
	proto = (__u16)(d[12] << 8 | d[13]);
	if (proto == CPN_ETH_P_8021Q || proto == CPN_ETH_P_8021AD) {
		if (len < 18)
			return;
		proto = (__u16)(d[16] << 8 | d[17]);
		off = 18;
	}
	if (proto == 0x0806) {
		const __u8 *a = d + off;

		/* Ethernet/IPv4, reply */
		if (len < off + 28 || a[0] != 0 || a[1] != 1 || a[2] != 8 || a[3] != 0 ||
		    a[4] != 6 || a[5] != 4 || a[6] != 0 || a[7] != 2)
			return;
		k.family = CPN_AF_INET;
		memcpy(k.addr, a + 14, 4);
		if (!fwd_neigh_set(&k, a + 8, port))
			lc->cnt->port[port].neigh_learn++;
		return;
	}
	if (proto == 0x86dd) {
		const __u8 *ip6 = d + off, *icmp = ip6 + 40, *opt;
		__u32 plen;

		if (len < off + 40 + 24 || ip6[6] != 58 || icmp[0] != 136)
			return;
		plen = (__u32)(ip6[4] << 8 | ip6[5]);
		if (off + 40 + plen > len || plen < 24)
			return;
		for (opt = icmp + 24; opt + 8 <= icmp + plen && opt[1]; opt += (size_t)opt[1] * 8) {
			if (opt[0] != 2 || opt[1] != 1)
				continue;
			k.family = CPN_AF_INET6;
			memcpy(k.addr, icmp + 8, 16);
			if (!fwd_neigh_set(&k, opt + 2, port))
				lc->cnt->port[port].neigh_learn++;
			return;
		}
	}
}

/* ---- carrying out verdicts ------------------------------------------- */

static inline void tx_flush(struct fwd_lcore *lc, __u16 port)
{
	__u16 n = lc->ntx[port], sent;

	if (!n)
		return;
	sent = fwd_tx_burst(port, lc->queue, lc->txb[port], n);
	lc->cnt->port[port].tx += sent;
	if (sent < n) {
		lc->cnt->port[port].tx_drop += n - sent;
		lc->cnt->stat[CPN_STAT_DROP_TX] += n - sent;
		rte_pktmbuf_free_bulk(&lc->txb[port][sent], n - sent);
	}
	lc->ntx[port] = 0;
}

static inline void tx_queue(struct fwd_lcore *lc, __u16 port, struct rte_mbuf *m)
{
	if (lc->ntx[port] == FWD_MAX_BURST)
		tx_flush(lc, port);
	lc->txb[port][lc->ntx[port]++] = m;
}

static inline void do_pass(struct fwd_lcore *lc, struct rte_mbuf *m, __u16 in_port)
{
	if (fwd.default_port >= 0) {
		lc->cnt->port[in_port].pass_fwd++;
		tx_queue(lc, (__u16)fwd.default_port, m);
		return;
	}
	lc->cnt->port[in_port].pass_drop++;
	rte_pktmbuf_free(m);
}

/* FWD: the XDP glue's cpn_xdp_forward with the neighbour table for the FIB. */
static __rte_always_inline void do_forward(struct fwd_lcore *lc, struct rte_mbuf *m, __u8 *data,
					   __u32 len, __u16 in_port, const struct cpn_verdict *v)
{
	const struct fwd_neigh_cache_ent *e;
	struct iphdr *ip4 = NULL;
	struct ipv6hdr *ip6 = NULL;
	__u32 off = v->l3_off;

	if (off != sizeof(struct ethhdr) && off != sizeof(struct ethhdr) + 4)
		goto pass;
	if (v->family == CPN_AF_INET) {
		if (off + sizeof(*ip4) > len)
			goto pass;
		ip4 = (struct iphdr *)(data + off);
		if (ip4->ttl <= 1)
			goto kernel;
		e = neigh_lookup4(lc, ip4->daddr);
	} else {
		struct neigh_key k = {.family = CPN_AF_INET6};

		if (off + sizeof(*ip6) > len)
			goto pass;
		ip6 = (struct ipv6hdr *)(data + off);
		if (ip6->hop_limit <= 1)
			goto kernel;
		memcpy(k.addr, &ip6->daddr, 16);
		e = neigh_lookup(lc, &k, neigh_hash(&k));
	}
	if (!e || e->port >= fwd.nb_ports) {
		lc->cnt->port[in_port].neigh_miss++;
		goto kernel;
	}
	lc->cnt->stat[e->port == in_port ? CPN_STAT_TX_BOUNCE : CPN_STAT_TX_REDIRECT]++;
	cpn_hop((struct ethhdr *)data, ip4, ip6, e->mac, fwd.mac[e->port].addr_bytes);
	tx_queue(lc, e->port, m);
	return;
kernel:
	lc->cnt->stat[CPN_STAT_TX_KERNEL]++;
pass:
	do_pass(lc, m, in_port);
}

/* One packet to its verdict. Inlined into fwd_burst's loop, with the router
 * and do_forward: no call, prologue and epilogue per packet.
 */
static __rte_always_inline void handle(struct fwd_lcore *lc, struct rte_mbuf *m, __u16 in_port)
{
	__u8 *data = rte_pktmbuf_mtod(m, __u8 *);
	__u32 len = rte_pktmbuf_data_len(m);
	struct cpn_verdict v;

	switch (cpn_router_rx(&lc->env, data, data + len, &v)) {
	case CPN_ACT_FWD:
		do_forward(lc, m, data, len, in_port, &v);
		return;
	case CPN_ACT_TX:
		if (v.trim && rte_pktmbuf_trim(m, (uint16_t)v.trim)) {
			lc->cnt->stat[CPN_STAT_DROP_TX]++;
			rte_pktmbuf_free(m);
			return;
		}
		tx_queue(lc, in_port, m);
		return;
	case CPN_ACT_HOLD:
		if (fwd_late_hold(&lc->env, m, in_port)) {
			lc->cnt->stat[CPN_STAT_DROP_TX]++;
			rte_pktmbuf_free(m);
		}
		return;
	case CPN_ACT_DROP:
	case CPN_ACT_CONSUME:
		rte_pktmbuf_free(m);
		return;
	default: /* PASS (XSK cannot happen: cpn-fwd owns its dpdk services) */
		neigh_learn(lc, data, len, in_port);
		do_pass(lc, m, in_port);
		return;
	}
}

/* ---- the burst's clock ------------------------------------------------ */

static __u64 ts_ns(const struct timespec *ts)
{
	return (__u64)ts->tv_sec * 1000000000ULL + (__u64)ts->tv_nsec;
}

/* A new anchor: CLOCK_MONOTONIC (bpf_ktime_get_ns's) and CLOCK_TAI (the
 * clock of stamps) through the vDSO, no syscall, next to the TSC.
 */
static __rte_noinline void clock_anchor(struct fwd_clock *c)
{
	struct timespec mono, tai;

	if (!c->mult) {
		__u64 hz = rte_get_tsc_hz();

		hz = hz ? hz : 1000000000ULL;
		c->mult = (__u64)(((unsigned __int128)1000000000ULL << 32) / hz);
		c->span = (__u64)((unsigned __int128)FWD_CLOCK_ANCHOR_NS * hz / 1000000000ULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &mono);
	c->tsc0 = rte_rdtsc();
	clock_gettime(CLOCK_TAI, &tai);
	c->mono0 = ts_ns(&mono);
	c->tai_off = ts_ns(&tai) - c->mono0;
	c->tsc_end = c->tsc0 + c->span;
}

/* The burst's clock: one rte_rdtsc(), converted once. */
static inline void clock_tick(struct fwd_clock *c, struct cpn_env *env)
{
	__u64 tsc = rte_rdtsc(), now;

	if (unlikely(tsc >= c->tsc_end || tsc < c->tsc0)) {
		clock_anchor(c);
		tsc = c->tsc0;
	}
	now = c->mono0 + (__u64)(((unsigned __int128)(tsc - c->tsc0) * c->mult) >> 32);
	if (unlikely(now < c->last))
		now = c->last;
	c->last = now;
	env->now = now;
	env->tai = now + c->tai_off;
}

/* One received burst of `port`, every packet to its verdict (sends are
 * queued, flushed by the caller). Never inlined: bench/bench-fwd.sh --ir
 * counts its instructions per request with callgrind.
 */
__attribute__((noinline)) void fwd_burst(struct fwd_lcore *lc, struct rte_mbuf **pkts, __u16 n,
					 __u16 port)
{
	/* What holds for the whole burst: the snapshot, the neighbour
	 * generation and the clock.
	 */
	lc->env.snap = atomic_load_explicit(&fwd.snap, memory_order_acquire);
	lc->neigh_gen = atomic_load_explicit(&fwd.neigh_gen, memory_order_acquire);
	clock_tick(&lc->clock, &lc->env);
	lc->cnt->port[port].rx += n;
	for (__u16 i = 0; i < n && i < FWD_PREFETCH; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (__u16 i = 0; i < n; i++) {
		if (i + FWD_PREFETCH < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + FWD_PREFETCH], void *));
		handle(lc, pkts[i], port);
	}
}

/* ---- dispatch: late ---------------------------------------------------- */

#define FWD_LATE_PER_ROUND 256 /* held requests let go per round, at most */

/* A held request, as fwd_late_next() decided: bound to `node`, refused
 * with `busy`, or (neither) bound early by the policy.
 */
static void late_send(struct fwd_lcore *lc, const struct cpn_late_result *r)
{
	struct rte_mbuf *m = (struct rte_mbuf *)(uintptr_t)r->ent.handle;
	__u8 *data = rte_pktmbuf_mtod(m, __u8 *);
	__u32 len = rte_pktmbuf_data_len(m);
	__u16 port = (__u16)r->ent.aux;
	struct cpn_verdict v;
	int act;

	/* Never held again: with no node (EARLY, or the node no longer a
	 * candidate) the policy's own choice.
	 */
	lc->env.late_early = 1;
	act = cpn_router_held(&lc->env, data, data + len, r->verdict == CPN_LATE_BIND ? r->node : 0,
			      r->verdict == CPN_LATE_BUSY ? r->busy : 0, &v);
	lc->env.late_early = 0;
	if (act == CPN_ACT_FWD) {
		do_forward(lc, m, data, len, port, &v);
	} else if (act == CPN_ACT_TX && (!v.trim || !rte_pktmbuf_trim(m, (uint16_t)v.trim))) {
		tx_queue(lc, port, m);
	} else {
		if (act == CPN_ACT_TX)
			lc->cnt->stat[CPN_STAT_DROP_TX]++;
		rte_pktmbuf_free(m);
	}
}

/* Let go what may go now: bound where slots freed, refused where it waited
 * too long; with `flush`, all of it, bound early. Returns how many.
 */
static unsigned int late_round(struct fwd_lcore *lc, int flush)
{
	struct cpn_late_result r;
	unsigned int k = 0;

	if (!fwd.late || !atomic_load_explicit(&fwd.late->total, memory_order_relaxed))
		return 0;
	lc->env.snap = atomic_load_explicit(&fwd.snap, memory_order_acquire);
	lc->neigh_gen = atomic_load_explicit(&fwd.neigh_gen, memory_order_acquire);
	clock_tick(&lc->clock, &lc->env);
	while ((flush || k < FWD_LATE_PER_ROUND) && fwd_late_next(&lc->env, flush, &r)) {
		late_send(lc, &r);
		k++;
	}
	return k;
}

/* One round over every port; returns the packets received. */
static unsigned int fwd_round(struct fwd_lcore *lc)
{
	struct rte_mbuf *pkts[FWD_MAX_BURST];
	unsigned int total = 0;
	__u64 t0 = rte_rdtsc();

	for (__u16 p = 0; p < fwd.nb_ports; p++) {
		__u16 n = fwd_rx_burst(p, lc->queue, pkts, (__u16)fwd.burst);

		if (!n)
			continue;
		total += n;
		fwd_burst(lc, pkts, n, p);
	}
	if (late_round(lc, 0) || total) {
		for (__u16 p = 0; p < fwd.nb_ports; p++)
			tx_flush(lc, p);
		lc->cnt->busy_tsc += rte_rdtsc() - t0;
	}
	lc->cnt->bursts++;
	return total;
}

int fwd_lcore_main(void *arg)
{
	struct fwd_lcore *lc = arg;

	rte_rcu_qsbr_thread_register(fwd.qsv, lc->lcore_id);
	rte_rcu_qsbr_thread_online(fwd.qsv, lc->lcore_id);
	while (!fwd_stop) {
		fwd_round(lc);
		/* Between bursts this lcore holds no snapshot. */
		rte_rcu_qsbr_quiescent(fwd.qsv, lc->lcore_id);
		lc->cnt->quiescent++;
	}
	/* Drain: what is already in the RX rings, then the TX buffers; what
	 * late services hold is bound early (the policy's choice) rather than
	 * lost: the XDP plane takes over their new requests.
	 */
	for (int i = 0; i < FWD_DRAIN_ROUNDS && fwd_round(lc); i++)
		;
	if (late_round(lc, 1))
		for (__u16 p = 0; p < fwd.nb_ports; p++)
			tx_flush(lc, p);
	rte_rcu_qsbr_thread_offline(fwd.qsv, lc->lcore_id);
	rte_rcu_qsbr_thread_unregister(fwd.qsv, lc->lcore_id);
	return 0;
}
