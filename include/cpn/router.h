/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The router's packet path, written once for every data plane: the XDP
 * program (bpf/cpn_router.bpf.c) and cpn-fwd include this file and differ
 * only in how packets come and go. Read top to bottom in the order a packet
 * meets it: parse, classify, then the REQUEST, REPLY and control paths.
 *
 * The includer defines, before including this file, `struct cpn_env` and:
 *
 *   struct cpn_config      *cpn_env_config(struct cpn_env *);
 *   struct cpn_service     *cpn_env_vip(struct cpn_env *, const struct cpn_vip_key *);
 *   struct cpn_service     *cpn_env_service(struct cpn_env *, __u32 id);
 *   struct cpn_maglev      *cpn_env_maglev(struct cpn_env *, __u32 id);
 *   struct cpn_node_cfg    *cpn_env_node_cfg(struct cpn_env *, __u32 id);
 *   struct cpn_tenant      *cpn_env_tenant(struct cpn_env *, __u32 id);
 *   int                     cpn_env_tenant_admit(struct cpn_env *, struct cpn_tenant *, __u64 now);
 *   struct cpn_aff         *cpn_env_aff(struct cpn_env *, __u32 tenant,
 *                                       const struct cpn_aff_key *);  the sessions of
 *                           the tenant entry `tenant` (its own id or CPN_TENANT_ANY)
 *   void                    cpn_env_aff_set(struct cpn_env *, __u32 tenant,
 *                                           const struct cpn_aff_key *, const struct cpn_aff *);
 *   void                    cpn_env_count(struct cpn_env *, __u32 stat);
 *   struct cpn_node_stats  *cpn_env_node_stats(struct cpn_env *, __u32 id);
 *   struct cpn_svc_stats   *cpn_env_svc_stats(struct cpn_env *, __u32 id);
 *   __u64                   cpn_env_now_ns(struct cpn_env *);
 *   __u64                   cpn_env_rand(struct cpn_env *);
 *   int                     cpn_env_xsk_ready(struct cpn_env *);  a cpn-fwd socket
 *                           takes this packet's hand-off (`dataplane: dpdk`)
 *   int                     cpn_env_flow_set(struct cpn_env *, const struct cpn_flow_key *,
 *                                            const struct cpn_flow *);  0, or < 0 where
 *                           the plane keeps no flows (full NAT then falls back to DNAT)
 *   int                     cpn_env_flow_get(struct cpn_env *, const struct cpn_flow_key *,
 *                                            struct cpn_flow *, int take);  found (copied,
 *                           and forgotten when take): 0, else < 0
 *   void                    cpn_env_flow_del(struct cpn_env *, const struct cpn_flow_key *);
 *   __u64                   cpn_env_tai_ns(struct cpn_env *);  CLOCK_TAI, the clock of
 *                           stamps (FRESH)
 *   int                     cpn_env_seen(struct cpn_env *, const struct cpn_seen_key *,
 *                                        __u32 stamp);  1 if the key was seen already
 *                           (a replay), else 0 and it is remembered
 *   cpn_node_at(env, id)    as sched.h describes;
 *   cpn_tokens_at(env, svc) likewise, where the plane keeps idle tokens;
 *   cpn_sched_ctx(env)      optional: the CPN_CTX pointer handed to sched.h's
 *                           policies (default: env itself);
 *   cpn_env_csum_span_ok(env, start, n, end, acc)  optional: csum.h's
 *                           cpn_csum_span_ok (the default) or the same
 *                           done elsewhere (XDP: a function verified once).
 *
 * A data plane that holds requests (`dispatch: late`, include/cpn/late.h:
 * cpn-fwd) defines CPN_ENV_LATE and:
 *
 *   int   cpn_env_late(struct cpn_env *, struct cpn_service *, struct cpn_hdr *,
 *                      __u64 now, __u8 *busy)  a late service's fresh choice:
 *         the node to bind to now (> 0); 0 with *busy = CPN_HELD to hold it
 *         (the verdict is CPN_ACT_HOLD), or with a busy reason to refuse it;
 *         < 0 to bind it early (the policy's choice)
 *   void  cpn_env_late_sent(struct cpn_env *, __u16 node)  a late service's
 *         request was sent to the node
 *   void  cpn_env_late_answered(struct cpn_env *, __u16 node)  a REPLY or BUSY
 *         of the node for a late service
 *
 * and calls cpn_router_held() for a request it held.
 *
 * All of them may return NULL where a pointer is returned.
 */
#ifndef CPN_ROUTER_H
#define CPN_ROUTER_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>

#include "cpn/compiler.h"
#include "cpn/csum.h"
#include "cpn/maps.h"
#include "cpn/proto.h"
#include "cpn/sched.h"
#include "cpn/siphash.h"

#ifndef cpn_sched_ctx
#define cpn_sched_ctx(env) (env)
#endif
#ifndef cpn_env_csum_span_ok
#define cpn_env_csum_span_ok(env, start, n, end, acc)                                              \
	((void)(env), cpn_csum_span_ok(start, n, end, acc))
#endif

#define CPN_ETH_P_8021Q	 0x8100
#define CPN_ETH_P_8021AD 0x88A8
#define CPN_IP_MF	 0x2000
#define CPN_IP_OFFSET	 0x1FFF
#define CPN_NEXTHDR_FRAG 44
#define CPN_TTL_BUSY	 64

/* What the data plane does with the packet after cpn_router_rx(). */
enum cpn_action {
	CPN_ACT_PASS = 0, /* hand to the host stack untouched (or rewritten: FWD failed) */
	CPN_ACT_DROP,	  /* malformed or refused: counted and dropped */
	CPN_ACT_CONSUME,  /* a report learned: nothing left to deliver */
	CPN_ACT_FWD,	  /* rewritten: route by destination address */
	CPN_ACT_TX,	  /* BUSY: send back out of the ingress port after trimming */
	CPN_ACT_XSK,	  /* the service is served by cpn-fwd: hand off */
	CPN_ACT_HOLD,	  /* dispatch: late — the plane holds the request, unchanged */
};

/* cpn_env_late's *busy for a request to hold (not a reason on the wire). */
#define CPN_HELD 0xff

struct cpn_verdict {
	__u8 action;
	__u8 family; /* CPN_AF_INET / CPN_AF_INET6 for FWD and TX */
	__u16 l3_off;
	__u32 trim;    /* TX: bytes to cut from the end of the frame */
	__u16 node_id; /* FWD of a request: the node it goes to */
	__u16 pad[3];
	__u64 now_ns; /* the clock read for this packet, 0 if none */
};

/* ---- small helpers --------------------------------------------------- */

/* A MAC address copied as three 16-bit words, not six bytes: Ethernet
 * headers and every MAC the data planes keep are 2-byte aligned.
 */
static __always_inline void cpn_mac_copy(unsigned char *dst, const unsigned char *src)
{
#ifdef __bpf__
	cpn_u16_alias *d = (cpn_u16_alias *)(void *)dst;
	const cpn_u16_alias *s = (const cpn_u16_alias *)(const void *)src;

	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
#else
	__builtin_memcpy(dst, src, ETH_ALEN);
#endif
}

static __always_inline int cpn_verdict_set(struct cpn_env *env, struct cpn_verdict *v, int action,
					   __u32 stat)
{
	cpn_env_count(env, stat);
	v->action = action;
	return action;
}

/* A request of a known service refused: counted for the service too, by
 * reason (enum cpn_refusal).
 */
static __always_inline int cpn_refuse(struct cpn_env *env, struct cpn_svc_stats *ss,
				      struct cpn_verdict *v, __u32 stat, __u32 why)
{
	if (ss && why < CPN_REFUSE_MAX)
		ss->refused[why]++;
	return cpn_verdict_set(env, v, CPN_ACT_DROP, stat);
}

static __always_inline int cpn_addr_eq(const __be32 *a, const __be32 *b, int family)
{
	if (family == CPN_AF_INET)
		return a[0] == b[0];
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* Parsed view of an IPv4/IPv6 + UDP datagram. */
struct cpn_l34 {
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
	struct udphdr *udp;
	__be32 *saddr;
	__be32 *daddr;
	__u32 udp_len; /* from the UDP header, validated against the frame */
	__u8 family;
	__u8 nwords;  /* address length in 32-bit words */
	__u8 len_err; /* lengths disagree: the drop reason if the datagram is ours */
};

/* Add to *acc the checksum change of replacing an address and a port. */
static __always_inline __u64 cpn_csum_addr_port(__u64 acc, const __be32 *old_a, const __be32 *new_a,
						int nwords, __be16 old_p, __be16 new_p)
{
	acc = cpn_csum_diff_words(acc, old_a, new_a, nwords);
	return cpn_csum_diff16(acc, old_p, new_p);
}

/* Rewrite the destination (dir = 0) or the source (dir = 1) address and
 * port, updating the IPv4 header and UDP checksums incrementally. `acc_udp`
 * carries payload changes already made (cpn header fields).
 */
static __always_inline void cpn_nat(struct cpn_l34 *p, int dir, const __be32 *addr, __be16 port,
				    __u64 acc_udp)
{
	__be32 *a = dir ? p->saddr : p->daddr;
	__be16 *pp = dir ? &p->udp->source : &p->udp->dest;
	__be32 old[4] = {a[0], 0, 0, 0};

	if (p->nwords == 4) {
		old[1] = a[1];
		old[2] = a[2];
		old[3] = a[3];
	}
	acc_udp = cpn_csum_addr_port(acc_udp, old, addr, p->nwords, *pp, port);
	if (p->family == CPN_AF_INET)
		p->ip4->check = cpn_csum_apply(p->ip4->check, cpn_csum_diff32(0, old[0], addr[0]));
	a[0] = addr[0];
	if (p->nwords == 4) {
		a[1] = addr[1];
		a[2] = addr[2];
		a[3] = addr[3];
	}
	*pp = port;
	/* IPv4 UDP checksum 0 means "none": it stays so. */
	if (p->family == CPN_AF_INET6 || p->udp->check)
		p->udp->check = cpn_udp_csum_fixup(cpn_csum_apply(p->udp->check, acc_udp));
}

/* Rewrite the source address alone (full NAT of a request: the port, the
 * client's, is kept), after cpn_nat() put the node as the destination.
 */
static __always_inline void cpn_snat_addr(struct cpn_l34 *p, const __be32 *addr)
{
	__be32 old[4] = {p->saddr[0], 0, 0, 0};
	__u64 acc;

	if (p->nwords == 4) {
		old[1] = p->saddr[1];
		old[2] = p->saddr[2];
		old[3] = p->saddr[3];
	}
	acc = cpn_csum_diff_words(0, old, addr, p->nwords);
	if (p->family == CPN_AF_INET)
		p->ip4->check = cpn_csum_apply(p->ip4->check, cpn_csum_diff32(0, old[0], addr[0]));
	p->saddr[0] = addr[0];
	if (p->nwords == 4) {
		p->saddr[1] = addr[1];
		p->saddr[2] = addr[2];
		p->saddr[3] = addr[3];
	}
	if (p->family == CPN_AF_INET6 || p->udp->check)
		p->udp->check = cpn_udp_csum_fixup(cpn_csum_apply(p->udp->check, acc));
}

static __always_inline int cpn_addr_zero(const __be32 *a)
{
	return !(a[0] | a[1] | a[2] | a[3]);
}

/* ---- trust: checksums, freshness, hop tags ----------------------------- */

/* UDP payload bytes up to which a report's checksum is verified: every
 * LOAD and PROBE_ACK (a longer one is no report), a REPLY or BUSY up to this
 * size (a larger reply is relayed, its UDP checksum left to the client; its
 * IPv4 header checksum is verified still).
 */
#define CPN_CSUM_CHECK_MAX 512

/* The IPv4 header checksum and, with `udp`, the UDP checksum (over the
 * pseudo-header and the whole datagram, at most CPN_CSUM_CHECK_MAX payload
 * bytes) verify. An IPv4 UDP checksum of 0 means none; IPv6 must have one.
 * A bounded loop: it serves the report paths only.
 */
static __always_inline int cpn_csum_ok(struct cpn_env *env, struct cpn_l34 *p, void *data_end,
				       int udp)
{
	__u32 n = p->udp_len;
	__u64 acc;

	if (p->family == CPN_AF_INET) {
		if (cpn_csum_fold(cpn_csum_add(0, p->ip4, sizeof(struct iphdr) / 2)) != 0xffff)
			return 0;
		if (!udp || !p->udp->check)
			return 1;
	} else if (!udp) {
		return 1;
	} else if (!p->udp->check) {
		return 0;
	}
	if (n > sizeof(struct udphdr) + CPN_CSUM_CHECK_MAX)
		return 0;
	acc = cpn_csum_add(0, p->saddr, p->nwords * 2);
	acc = cpn_csum_add((__u32)acc, p->daddr, p->nwords * 2);
	acc += cpn_htons(IPPROTO_UDP) + p->udp->len;
	return cpn_env_csum_span_ok(env, p->udp, n, data_end, acc);
}

static __always_inline __u32 cpn_fresh_window(struct cpn_config *cfg)
{
	return cfg && cfg->fresh_ms ? cfg->fresh_ms : CPN_FRESH_WINDOW_MS;
}

/* Freshness of a message whose signature verified: 0, or the drop reason.
 * Without FRESH it is refused where freshness is required; with FRESH its
 * stamp must be within the window of this router's CLOCK_TAI and its tag
 * not seen before (but for a large message's later fragments, which share
 * their first's header and so its tag: the hop tag or the flow binds them).
 */
static __always_inline __u32 cpn_fresh(struct cpn_env *env, struct cpn_config *cfg,
				       const struct cpn_hdr *h, int required, __u32 kind,
				       __u32 sender, __u64 tag, int cont)
{
	struct cpn_seen_key k = {.kind = kind, .sender = sender, .tag = tag};
	__u32 now_ms, stamp;

	if (!(h->flags & cpn_htons(CPN_F_FRESH)))
		return required ? CPN_STAT_DROP_STALE : 0;
	now_ms = (__u32)(cpn_env_tai_ns(env) / 1000000);
	stamp = cpn_ntohl(h->stamp);
	if (!cpn_stamp_ok(stamp, now_ms, cpn_fresh_window(cfg)))
		return CPN_STAT_DROP_STALE;
	if (!cont && cpn_env_seen(env, &k, stamp))
		return CPN_STAT_DROP_REPLAY;
	return 0;
}

/* ---- BUSY ------------------------------------------------------------ */

/* Turn a refused REQUEST into a BUSY to its client: swap the addresses,
 * keep the request's header fields, set type and status, drop the tag and
 * the payload (trimmed by the data plane), recompute the checksums.
 */
static __always_inline int cpn_make_busy(struct cpn_env *env, void *data, void *data_end,
					 struct cpn_l34 *p, struct cpn_hdr *h, __u8 reason,
					 struct cpn_verdict *v)
{
	struct ethhdr *eth = data;
	unsigned char mac[ETH_ALEN];
	__u16 new_udp_len = sizeof(struct udphdr) + CPN_HDR_LEN;
	__be32 tmp;
	__be16 port;
	__u32 acc;

	if ((void *)(eth + 1) > data_end || (void *)(h + 1) > data_end)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_SHORT);

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	CPN_UNROLL
	for (int i = 0; i < 4; i++) {
		if (i >= p->nwords)
			break;
		tmp = p->saddr[i];
		p->saddr[i] = p->daddr[i];
		p->daddr[i] = tmp;
	}
	port = p->udp->source;
	p->udp->source = p->udp->dest;
	p->udp->dest = port;

	h->type = CPN_T_BUSY;
	h->status = reason;
	h->flags &= ~cpn_htons(CPN_F_AUTH);

	p->udp->len = cpn_htons(new_udp_len);
	if (p->family == CPN_AF_INET) {
		p->ip4->tot_len = cpn_htons(sizeof(struct iphdr) + new_udp_len);
		p->ip4->ttl = CPN_TTL_BUSY;
		p->ip4->check = 0;
		p->ip4->check = cpn_csum_finish(cpn_csum_add(0, p->ip4, sizeof(struct iphdr) / 2));
	} else {
		p->ip6->payload_len = cpn_htons(new_udp_len);
		p->ip6->hop_limit = CPN_TTL_BUSY;
	}
	if (p->family == CPN_AF_INET6 || p->udp->check) {
		p->udp->check = 0;
		acc = cpn_csum_add(0, p->saddr, p->nwords * 2);
		acc = cpn_csum_add(acc, p->daddr, p->nwords * 2);
		acc += cpn_htons(IPPROTO_UDP) + p->udp->len;
		acc = cpn_csum_add(acc, p->udp, sizeof(struct udphdr) / 2);
		acc = cpn_csum_add(acc, h, CPN_HDR_LEN / 2);
		p->udp->check = cpn_udp_csum_fixup(cpn_csum_finish(acc));
	}
	v->trim = (__u32)((long)data_end - (long)(h + 1));
	v->family = p->family;
	return cpn_verdict_set(env, v, CPN_ACT_TX, CPN_STAT_BUSY_SENT);
}

/* ---- REQUEST --------------------------------------------------------- */

/* The node for a request: an honoured live tag, a live session, or a fresh
 * choice. Returns the node id, 0 with *busy set when refused; *np is its
 * state where the choice looked it up already (else left NULL).
 */
static __always_inline __u16 cpn_request_node(struct cpn_env *env, struct cpn_service *svc,
					      struct cpn_hdr *h, struct cpn_l34 *p, __u64 now,
					      const __u64 *hop_key, __u32 aff_tenant, __u8 *busy,
					      struct cpn_node **np)
{
	__u16 tagged = cpn_ntohs(h->node_id);
	__u32 key = cpn_ntohl(h->session_key);
	struct cpn_aff_key ak = {};
	struct cpn_aff *aff = 0, na = {};
	struct cpn_pick pick = {};
	const struct cpn_maglev *mg = 0;
	struct cpn_node *n;
	__u32 hash;

	/* A tag is honoured only if a router of the fleet wrote it: its hop
	 * tag verifies under the hop key.
	 */
	if ((h->flags & cpn_htons(CPN_F_TAGGED)) && tagged) {
		if (h->worker_us != cpn_hop_tag(hop_key, h)) {
			cpn_env_count(env, CPN_STAT_REQ_TAG_FORGED);
		} else {
			n = cpn_node_at(env, tagged);
			if (n && cpn_node_live(n, now, svc->stale_ms) &&
			    cpn_svc_has_node(svc, tagged)) {
				cpn_env_count(env, CPN_STAT_REQ_TAG_HONOURED);
				*np = n;
				return tagged;
			}
			cpn_env_count(env, CPN_STAT_REQ_RESTEERED);
		}
	}

	if (key && (h->flags & cpn_htons(CPN_F_STICKY))) {
		ak.tenant_id = h->tenant_id;
		ak.session_key = key;
		ak.service_id = cpn_ntohs(h->service_id);
		aff = cpn_env_aff(env, aff_tenant, &ak);
		if (aff) {
			n = cpn_node_at(env, aff->node_id);
			if (n && cpn_node_live(n, now, svc->stale_ms) &&
			    cpn_svc_has_node(svc, aff->node_id)) {
				aff->last_ns = now;
				cpn_env_count(env, CPN_STAT_REQ_AFFINITY);
				*np = n;
				return aff->node_id;
			}
		}
	}

#ifdef CPN_ENV_LATE
	/* dispatch: late — bound now where a node has a free slot and nothing
	 * waits before it, else held (or refused); early where no candidate is
	 * there any more (the policy's fallback below).
	 */
	if (svc->flags & CPN_SVC_LATE) {
		int r = cpn_env_late(env, svc, h, now, busy);

		if (r > 0) {
			pick.node_id = (__u16)r;
			pick.verdict = CPN_PICK_OK;
			goto chosen;
		}
		if (r == 0)
			return 0;
	}
#endif
	/* p2c's common case first: two live candidates drawn, no flow hash
	 * (what Maglev and the fallback need) and no loop. Else the choice
	 * of the policy. The Maglev table is a lookup of its own: fetched
	 * only for the maglev policy, or when no candidate is live and the
	 * fallback needs it.
	 */
	if (svc->policy != CPN_POL_P2C ||
	    !cpn_p2c_pair(cpn_sched_ctx(env), svc, cpn_env_rand(env), now, &pick, np)) {
		hash = cpn_flow_hash(p->saddr, p->udp->source, cpn_ntohl(h->tenant_id), key);
		if (svc->policy == CPN_POL_MAGLEV)
			mg = cpn_env_maglev(env, svc->id);
		cpn_choose(cpn_sched_ctx(env), svc, mg, hash, cpn_env_rand(env), now, &pick);
		if (!mg &&
		    (pick.verdict == CPN_PICK_FALLBACK ||
		     (pick.verdict == CPN_PICK_BUSY && pick.busy_reason == CPN_BUSY_NO_NODE)))
			cpn_fallback_at(cpn_sched_ctx(env), svc, cpn_env_maglev(env, svc->id), hash,
					now, &pick);
	}
	if (pick.verdict == CPN_PICK_BUSY) {
		*busy = pick.busy_reason;
		return 0;
	}
#ifdef CPN_ENV_LATE
chosen:
#endif
	if (pick.verdict == CPN_PICK_FALLBACK)
		cpn_env_count(env, CPN_STAT_REQ_FALLBACK);
	else if (pick.token)
		cpn_env_count(env, CPN_STAT_REQ_TOKEN);
	if (key && (h->flags & cpn_htons(CPN_F_STICKY))) {
		na.node_id = pick.node_id;
		na.last_ns = now;
		cpn_env_aff_set(env, aff_tenant, &ak, &na);
	}
	return pick.node_id;
}

/* A later fragment of a large request (FRAG|CONT): to the node that took the
 * first, named in its tag, if that node is still configured and a member of
 * the service, and the hop tag (the first fragment's, echoed by the node)
 * verifies; no choice, no count of a new request (docs/PROTOCOL.md).
 */
static __always_inline int cpn_request_cont(struct cpn_env *env, struct cpn_l34 *p,
					    struct cpn_service *svc, struct cpn_hdr *h, __u64 now,
					    const __u64 *hop_key, struct cpn_verdict *v)
{
	__u16 id = cpn_ntohs(h->node_id);
	struct cpn_node_cfg *nc = 0;

	if (h->worker_us != cpn_hop_tag(hop_key, h))
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_HOP_TAG);

	if ((h->flags & cpn_htons(CPN_F_TAGGED)) && id && cpn_svc_has_node(svc, id))
		nc = cpn_env_node_cfg(env, id);
	if (!nc || !(nc->flags & CPN_NODE_CFG_VALID) || nc->family != p->family)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_FRAG_NODE);
	cpn_nat(p, 0, nc->addr, nc->port, 0);
	/* Full NAT as the first fragment went: from this router's address where
	 * its flow was kept (cpn-fwd keeps none: from the client's), for the
	 * node reassembles by source.
	 */
	if ((svc->flags & CPN_SVC_FULLNAT) && !cpn_addr_zero(nc->src)) {
		struct cpn_flow_key fk = {.request_id = h->request_id,
					  .tenant_id = h->tenant_id,
					  .service_id = h->service_id,
					  .node_id = h->node_id,
					  .cport = p->udp->source};
		struct cpn_flow fl;

		if (!cpn_env_flow_get(env, &fk, &fl, 0))
			cpn_snat_addr(p, nc->src);
	}
	cpn_env_count(env, CPN_STAT_REQ_FRAG);
	v->family = p->family;
	v->node_id = id;
	v->now_ns = now;
	v->action = CPN_ACT_FWD;
	return CPN_ACT_FWD;
}

/* The request to node_id (n: its state where the choice has it), or, with
 * none, BUSY for `busy` (or held, CPN_HELD): tag, NAT, count.
 */
static __always_inline int cpn_request_send(struct cpn_env *env, void *data, void *data_end,
					    struct cpn_l34 *p, struct cpn_service *svc,
					    struct cpn_hdr *h, struct cpn_config *cfg,
					    struct cpn_svc_stats *ss, __u16 node_id,
					    struct cpn_node *n, __u8 busy, __u64 now,
					    struct cpn_verdict *v)
{
	struct cpn_node_cfg *nc;
	struct cpn_node_stats *ns;
	__u64 acc;

#ifdef CPN_ENV_LATE
	if (!node_id && busy == CPN_HELD)
		return cpn_verdict_set(env, v, CPN_ACT_HOLD, CPN_STAT_REQ_HELD);
#endif
	nc = node_id ? cpn_env_node_cfg(env, node_id) : 0;
	if (node_id && !n)
		n = cpn_node_at(env, node_id);
	if (!nc || !n || !(nc->flags & CPN_NODE_CFG_VALID)) {
		__u32 bi;

		busy = busy ? busy : CPN_BUSY_NO_NODE;
		/* The index checked in the register it is used from. */
		bi = (__u32)busy - 1;
		cpn_barrier_var(bi);
		if (ss && bi < CPN_SVC_BUSY_REASONS)
			ss->busy[bi]++;
		return cpn_make_busy(env, data, data_end, p, h, busy, v);
	}
	if (nc->family != p->family)
		return cpn_refuse(env, ss, v, CPN_STAT_DROP_FAMILY, CPN_REFUSE_FAMILY);
	/* Sent from here on: count it (before the rewrite's stores, which an
	 * atomic would otherwise wait for).
	 */
	if (svc->flags & CPN_SVC_LIVENESS_REPORTS)
		cpn_node_steered_unwatched(n);
	else
		cpn_node_steered(n, now);
#ifdef CPN_ENV_LATE
	if (svc->flags & CPN_SVC_LATE)
		cpn_env_late_sent(env, node_id);
#endif

	/* Tag: node, hop count, our clock, TAGGED, then the hop tag over them.
	 * The UDP checksum follows every changed 16-bit word of the header.
	 */
	{
		__be16 old_flags = h->flags, new_flags = old_flags | cpn_htons(CPN_F_TAGGED);
		__be16 old_node = h->node_id, new_node = cpn_htons(node_id);
		__be32 old_ts = h->router_ts, new_ts = cpn_htonl((__u32)(now / 1000));
		__be32 old_ht = h->worker_us, new_ht;
		__u8 hc[2];
		__u16 old_hc, new_hc;

		/* hops and class, one 16-bit word of the checksum, changed in a
		 * register: a load of the word right after a store of its byte
		 * would wait for the store.
		 */
		__builtin_memcpy(hc, &h->hops, 2);
		__builtin_memcpy(&old_hc, hc, 2);
		hc[0]++;
		__builtin_memcpy(&new_hc, hc, 2);
		new_ht = cpn_hop_tag_with(cfg->hop_key, h, new_node, new_ts);
		h->hops = hc[0];
		h->flags = new_flags;
		h->node_id = new_node;
		h->router_ts = new_ts;
		h->worker_us = new_ht;
		acc = cpn_csum_diff16(0, old_flags, new_flags);
		acc = cpn_csum_diff16(acc, old_node, new_node);
		acc = cpn_csum_diff16(acc, old_hc, new_hc);
		acc = cpn_csum_diff32(acc, old_ts, new_ts);
		acc = cpn_csum_diff32(acc, old_ht, new_ht);
	}
	/* Full NAT: remember the client, then send from this router's own
	 * address toward the node, so that the reply comes back here. With
	 * reply_check, a DNAT service remembers the request too: its reply is
	 * relayed only from that node, to that client.
	 */
	if ((svc->flags & CPN_SVC_REPLY_CHECK) ||
	    ((svc->flags & CPN_SVC_FULLNAT) && !cpn_addr_zero(nc->src))) {
		struct cpn_flow_key fk = {.request_id = h->request_id,
					  .tenant_id = h->tenant_id,
					  .service_id = h->service_id,
					  .node_id = cpn_htons(node_id),
					  .cport = p->udp->source};
		struct cpn_flow fl = {.family = p->family};

		fl.client[0] = p->saddr[0];
		if (p->nwords == 4) {
			fl.client[1] = p->saddr[1];
			fl.client[2] = p->saddr[2];
			fl.client[3] = p->saddr[3];
		}
		if (!cpn_env_flow_set(env, &fk, &fl) && (svc->flags & CPN_SVC_FULLNAT) &&
		    !cpn_addr_zero(nc->src)) {
			cpn_nat(p, 0, nc->addr, nc->port, acc);
			cpn_snat_addr(p, nc->src);
			cpn_env_count(env, CPN_STAT_REQ_FULLNAT);
			goto sent;
		}
	}
	cpn_nat(p, 0, nc->addr, nc->port, acc);
sent:
	ns = cpn_env_node_stats(env, node_id);
	if (ns)
		ns->requests++;
	if (ss)
		ss->requests++;
	cpn_env_count(env, CPN_STAT_REQ_STEERED);
	v->family = p->family;
	v->node_id = node_id;
	v->now_ns = now;
	v->action = CPN_ACT_FWD;
	return CPN_ACT_FWD;
}

/* The tenant entry that judges a request for svc: the request's own
 * tenant where it is allowed the service, else `any` where that is; NULL
 * when neither is (the ACL refuses it). *aff: the entry's id, whose
 * affinity map keeps the request's session.
 */
static __always_inline struct cpn_tenant *cpn_request_tenant(struct cpn_env *env,
							     const struct cpn_service *svc,
							     const struct cpn_hdr *h, __u32 *aff)
{
	struct cpn_tenant *t;

	*aff = cpn_ntohl(h->tenant_id);
	t = cpn_env_tenant(env, *aff);
	if (t && cpn_tenant_allows(t, svc->id))
		return t;
	*aff = CPN_TENANT_ANY;
	t = cpn_env_tenant(env, CPN_TENANT_ANY);
	return t && cpn_tenant_allows(t, svc->id) ? t : 0;
}

static __always_inline int cpn_request(struct cpn_env *env, void *data, void *data_end,
				       struct cpn_l34 *p, struct cpn_service *svc,
				       struct cpn_verdict *v)
{
	struct cpn_hdr *h = (struct cpn_hdr *)(p->udp + 1);
	struct cpn_config *cfg = cpn_env_config(env);
	struct cpn_tenant *t;
	struct cpn_svc_stats *ss;
	struct cpn_node *n;
	__u32 len = p->udp_len - sizeof(struct udphdr);
	__u64 now = cpn_env_now_ns(env);
	__u16 node_id, max_hops;
	__u8 busy = 0;
	__u32 why, aff_tenant;
	int err, cont;

	if ((void *)(h + 1) > data_end)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_SHORT);
	err = cpn_hdr_check(h, len);
	if (err == CPN_HDR_SHORT)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_SHORT);
	if (err == CPN_HDR_BAD_MAGIC)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_BAD_MAGIC);
	if (err == CPN_HDR_BAD_VERSION)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_BAD_VERSION);
	if (err != CPN_HDR_OK || h->type != CPN_T_REQUEST)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_BAD_TYPE);
	if (cpn_ntohs(h->service_id) != svc->id || !(svc->flags & CPN_SVC_ACTIVE))
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_BAD_SERVICE);
	/* The data planes always have a configuration (zero where unset): the
	 * hop key is in it.
	 */
	if (!cfg)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_BAD_SERVICE);
	ss = cpn_env_svc_stats(env, svc->id);
	max_hops = cfg->max_hops ? cfg->max_hops : CPN_DEFAULT_MAX_HOPS;
	if (h->hops >= max_hops)
		return cpn_refuse(env, ss, v, CPN_STAT_DROP_HOPS, CPN_REFUSE_HOPS);

	cont =
	    (h->flags & cpn_htons(CPN_F_FRAG | CPN_F_CONT)) == cpn_htons(CPN_F_FRAG | CPN_F_CONT);
	/* A service open to every tenant admits the request as `any`, with
	 * no key and no rate to check.
	 */
	aff_tenant = CPN_TENANT_ANY;
	if (svc->flags & CPN_SVC_OPEN)
		goto admitted;
	/* Tenant: ACL, authentication, rate. */
	t = cpn_request_tenant(env, svc, h, &aff_tenant);
	if (!t)
		return cpn_refuse(env, ss, v, CPN_STAT_DROP_ACL, CPN_REFUSE_ACL);
	/* With a key: signed (with FRESH, the stamp too) under the key or,
	 * while it rotates, the next one; fresh, and not a replay.
	 */
	if (t->flags & CPN_TENANT_KEY) {
		__u64 *tag = (__u64 *)(h + 1);

		if (!(h->flags & cpn_htons(CPN_F_AUTH)) || (void *)(tag + 1) > data_end)
			return cpn_refuse(env, ss, v, CPN_STAT_DROP_AUTH, CPN_REFUSE_AUTH);
		if (*tag != cpn_tag_request_any(t->key, h) &&
		    (!(t->flags & CPN_TENANT_KEY_NEXT) ||
		     *tag != cpn_tag_request_any(t->key_next, h)))
			return cpn_refuse(env, ss, v, CPN_STAT_DROP_AUTH, CPN_REFUSE_AUTH);
		why = cpn_fresh(env, cfg, h, t->flags & CPN_TENANT_FRESH, CPN_SEEN_REQUEST,
				cpn_ntohl(h->tenant_id), *tag, cont);
		if (why)
			return cpn_refuse(env, ss, v, why, CPN_REFUSE_AUTH);
	}
	/* A large message's later fragments were admitted with its first. */
	if (!cont && !cpn_env_tenant_admit(env, t, now))
		return cpn_refuse(env, ss, v, CPN_STAT_DROP_RATE, CPN_REFUSE_RATE);

admitted:
	/* A `dataplane: dpdk` service goes to cpn-fwd while it has a socket on
	 * this queue; without one (cpn-fwd stopped or not yet started) this
	 * data plane steers the request itself rather than lose it.
	 */
	if ((svc->flags & CPN_SVC_DPDK) && cpn_env_xsk_ready(env))
		return cpn_verdict_set(env, v, CPN_ACT_XSK, CPN_STAT_REQ_DPDK);
	if (cont)
		return cpn_request_cont(env, p, svc, h, now, cfg->hop_key, v);

	n = 0;
	node_id = cpn_request_node(env, svc, h, p, now, cfg->hop_key, aff_tenant, &busy, &n);
	return cpn_request_send(env, data, data_end, p, svc, h, cfg, ss, node_id, n, busy, now, v);
}

/* ---- reports: REPLY, BUSY from a node, LOAD, PROBE_ACK --------------- */

/* The node that sent this report, if the source is a configured node:
 * address and port for REPLY/BUSY, address alone for the control port.
 */
static __always_inline struct cpn_node_cfg *cpn_report_node(struct cpn_env *env, struct cpn_l34 *p,
							    struct cpn_hdr *h, int match_port)
{
	__u16 id = cpn_ntohs(h->node_id);
	struct cpn_node_cfg *nc = cpn_env_node_cfg(env, id);

	if (!nc || !(nc->flags & CPN_NODE_CFG_VALID) || nc->family != p->family)
		return 0;
	if (!cpn_addr_eq(nc->addr, p->saddr, p->family))
		return 0;
	if (match_port && nc->port != p->udp->source)
		return 0;
	return nc;
}

/* A node with a key must sign its reports: spoofed load is rejected. The
 * tag must lie inside the datagram (`len` UDP payload bytes), not merely
 * inside the frame; under the key or, while it rotates, the next one. A
 * signed report must then be fresh and no replay. 0, or the drop reason.
 */
static __always_inline __u32 cpn_report_check(struct cpn_env *env, struct cpn_node_cfg *nc,
					      struct cpn_hdr *h, __u32 len, void *data_end,
					      int cont)
{
	__u64 *tag = (__u64 *)(h + 1);

	if (!(nc->flags & CPN_NODE_CFG_KEY))
		return 0;
	if (!(h->flags & cpn_htons(CPN_F_AUTH)) || len < CPN_HDR_LEN + CPN_TAG_LEN ||
	    (void *)(tag + 1) > data_end)
		return CPN_STAT_DROP_NODE_AUTH;
	if (*tag != cpn_tag_node(nc->key, h) &&
	    (!(nc->flags & CPN_NODE_CFG_KEY_NEXT) || *tag != cpn_tag_node(nc->key_next, h)))
		return CPN_STAT_DROP_NODE_AUTH;
	return cpn_fresh(env, cpn_env_config(env), h, nc->flags & CPN_NODE_CFG_FRESH, CPN_SEEN_NODE,
			 cpn_ntohs(h->node_id), *tag, cont);
}

static __always_inline void cpn_learn_path_sample(struct cpn_node *n, struct cpn_node_stats *ns,
						  __u32 now_us, __u32 router_ts, __u32 inside_us)
{
	long long s = cpn_path_sample(now_us, router_ts, inside_us);

	if (s < 0)
		return;
	cpn_learn_path(n, (__u32)s);
	if (ns) {
		__u32 b = cpn_hist_bucket((__u32)s);

		if (b < CPN_HIST_BUCKETS)
			ns->lat_hist[b]++;
	}
}

/* REPLY or BUSY from a node: learn (REPLY), reverse NAT to the VIP, forward. */
static __always_inline int cpn_reply(struct cpn_env *env, void *data_end, struct cpn_l34 *p,
				     struct cpn_hdr *h, struct cpn_node_cfg *nc,
				     struct cpn_verdict *v)
{
	__u16 id = cpn_ntohs(h->node_id);
	struct cpn_service *svc = cpn_env_service(env, cpn_ntohs(h->service_id));
	struct cpn_node_stats *ns = cpn_env_node_stats(env, id);
	struct cpn_node *n = cpn_node_at(env, id);
	struct cpn_svc_stats *ss;
	struct cpn_flow fl = {};
	__u64 now;
	__u32 why;
	int fullnat;
	/* A fragment of a large reply, or an ack, but for the last one sent:
	 * forwarded, not learned from (docs/PROTOCOL.md).
	 */
	int cont = h->type == CPN_T_REPLY && (h->flags & cpn_htons(CPN_F_FRAG | CPN_F_CONT)) ==
						 cpn_htons(CPN_F_FRAG | CPN_F_CONT);

	/* A late service of cpn-fwd (`dispatch: late`, `dataplane: dpdk`):
	 * its answers free the slots that cpn-fwd counts, so they go to
	 * cpn-fwd as its requests do, which checks them and relays them. Not
	 * those to this router's own address: full NAT of requests this
	 * plane steered while cpn-fwd was away, whose flows are here.
	 */
	if (svc && (svc->flags & (CPN_SVC_DPDK | CPN_SVC_LATE)) == (CPN_SVC_DPDK | CPN_SVC_LATE) &&
	    !((svc->flags & CPN_SVC_FULLNAT) && cpn_addr_eq(p->daddr, nc->src, p->family)) &&
	    cpn_env_xsk_ready(env))
		return cpn_verdict_set(env, v, CPN_ACT_XSK, CPN_STAT_REPLY_DPDK);
	if (!cpn_csum_ok(env, p, data_end,
			 p->udp_len <= sizeof(struct udphdr) + CPN_CSUM_CHECK_MAX))
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_BAD_CSUM);
	why = cpn_report_check(env, nc, h, p->udp_len - sizeof(struct udphdr), data_end, cont);
	if (why)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, why);
	if (!svc || !(svc->flags & CPN_SVC_ACTIVE) || svc->family != p->family)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_BAD_SERVICE);
	/* Full NAT: the reply came to this router's own address; back to the
	 * client it was for. reply_check: only the node the request went to
	 * answers it, to its client. The flow is taken by the reply, looked up
	 * only by the fragments before the last. A reply for an unknown
	 * request is neither learned from nor forwarded.
	 */
	fullnat = (svc->flags & CPN_SVC_FULLNAT) && !cpn_addr_zero(nc->src) &&
		  cpn_addr_eq(p->daddr, nc->src, p->family);
	if (fullnat || (svc->flags & CPN_SVC_REPLY_CHECK)) {
		struct cpn_flow_key fk = {.request_id = h->request_id,
					  .tenant_id = h->tenant_id,
					  .service_id = h->service_id,
					  .node_id = h->node_id,
					  .cport = p->udp->dest};

		if (cpn_env_flow_get(env, &fk, &fl, 0) || fl.family != p->family ||
		    (!fullnat && !cpn_addr_eq(fl.client, p->daddr, p->family)))
			return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_NO_FLOW);
		if (!cont)
			cpn_env_flow_del(env, &fk);
	}
	if (cont)
		goto forward;

	if (h->type == CPN_T_REPLY && n) {
		now = cpn_env_now_ns(env);
		cpn_learn_load(n, h, now);
		if (!(n->report_flags & CPN_REP_SVC_VALID))
			cpn_learn_svc(n, cpn_ntohl(h->worker_us));
		cpn_learn_answer(n, cpn_ntohl(h->worker_us), 1, (__u32)n->queue_depth + n->inflight,
				 (__u32)(now / 1000) - cpn_ntohl(h->router_ts), now);
		cpn_learn_path_sample(n, ns, (__u32)(now / 1000), cpn_ntohl(h->router_ts),
				      cpn_ntohl(h->worker_us));
		/* jiq: the node is idle and asks this router for work. */
		if ((h->flags & cpn_htons(CPN_F_TOKEN)) && svc->policy == CPN_POL_JIQ) {
			cpn_token_push(cpn_tokens_at(env, svc->id), id, now);
			cpn_env_count(env, CPN_STAT_TOKEN_IN);
		}
	} else if (n) { /* a BUSY: the node is there, and says so */
		now = cpn_env_now_ns(env);
		cpn_learn_answer(n, 0, 0, (__u32)cpn_ntohs(h->queue_depth) + cpn_ntohs(h->inflight),
				 (__u32)(now / 1000) - cpn_ntohl(h->router_ts), now);
	}
#ifdef CPN_ENV_LATE
	if (svc->flags & CPN_SVC_LATE)
		cpn_env_late_answered(env, id);
#endif
	if (ns) {
		if (h->type == CPN_T_REPLY)
			ns->replies++;
		else
			ns->busy++;
	}
	ss = cpn_env_svc_stats(env, svc->id);
	if (ss) {
		if (h->type == CPN_T_REPLY)
			ss->replies++;
		else
			ss->node_busy++;
	}
forward:
	if (fullnat)
		cpn_nat(p, 0, fl.client, p->udp->dest, 0);
	cpn_nat(p, 1, svc->vip, svc->port, 0);
	cpn_env_count(env, cont			    ? CPN_STAT_REPLY_FRAG
			   : h->type == CPN_T_REPLY ? CPN_STAT_REPLY_FWD
						    : CPN_STAT_BUSY_FWD);
	v->family = p->family;
	v->action = CPN_ACT_FWD;
	return CPN_ACT_FWD;
}

/* LOAD or PROBE_ACK to the control port. */
static __always_inline int cpn_control(struct cpn_env *env, void *data_end, struct cpn_l34 *p,
				       struct cpn_hdr *h, struct cpn_config *cfg,
				       struct cpn_verdict *v)
{
	struct cpn_node_cfg *nc;
	struct cpn_node_stats *ns;
	struct cpn_node *n;
	__u64 now;
	__u32 why;

	if (h->type != CPN_T_LOAD && h->type != CPN_T_PROBE_ACK)
		return cpn_verdict_set(env, v, CPN_ACT_PASS, CPN_STAT_PASS_NOT_CPN);
	nc = cpn_report_node(env, p, h, 0);
	n = cpn_node_at(env, cpn_ntohs(h->node_id));
	/* A retired node's heartbeats go up to the controller, which may admit
	 * it again; its replies in flight are still forwarded (cpn_reply).
	 */
	if (!nc || !n || (nc->flags & CPN_NODE_CFG_RETIRED))
		return cpn_verdict_set(env, v, CPN_ACT_PASS,
				       h->type == CPN_T_LOAD ? CPN_STAT_LOAD_UNKNOWN
							     : CPN_STAT_PASS_NOT_CPN);
	if (!cpn_csum_ok(env, p, data_end, 1))
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_BAD_CSUM);
	why = cpn_report_check(env, nc, h, p->udp_len - sizeof(struct udphdr), data_end, 0);
	if (why)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, why);

	now = cpn_env_now_ns(env);
	/* A PROBE_ACK answers one of this router's PROBEs, recently: its
	 * request_id is the cookie of that node and time (probe cookies).
	 */
	if (h->type == CPN_T_PROBE_ACK &&
	    (!cfg || h->request_id != cpn_probe_cookie(cfg->hop_key, h->node_id, h->router_ts) ||
	     (__u32)(now / 1000) - cpn_ntohl(h->router_ts) > CPN_PROBE_MAX_AGE_US))
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_PROBE_COOKIE);
	ns = cpn_env_node_stats(env, cpn_ntohs(h->node_id));
	cpn_learn_report(n, h, now);
	if (ns)
		ns->reports++;
	if (h->type == CPN_T_PROBE_ACK) {
		/* A probe is answered at once: the whole round trip is path. */
		cpn_learn_path_sample(n, ns, (__u32)(now / 1000), cpn_ntohl(h->router_ts), 0);
		return cpn_verdict_set(env, v, CPN_ACT_CONSUME, CPN_STAT_PROBE_ACK_LEARNED);
	}
	return cpn_verdict_set(env, v, CPN_ACT_CONSUME, CPN_STAT_LOAD_LEARNED);
}

/* ---- forwarding: the hop ---------------------------------------------- */

/* What a data plane does to a rewritten packet it forwards itself, once it
 * has the next hop: TTL or hop limit down by one (the IPv4 header checksum
 * follows), the next hop's MAC as destination, the egress port's as source.
 * The caller has checked that the TTL is above 1 (else the kernel forwards
 * it, and answers with ICMP).
 */
static __always_inline void cpn_hop(struct ethhdr *eth, struct iphdr *ip4, struct ipv6hdr *ip6,
				    const unsigned char *dmac, const unsigned char *smac)
{
	if (ip4) {
		/* The TTL is the high byte of its 16-bit word: that word drops
		 * by 0x100, the checksum rises by as much, end-around carry
		 * included (RFC 1624).
		 */
		__u32 check = ip4->check;

		check += cpn_htons(0x0100);
		ip4->check = (__u16)(check + (check >= 0xffff));
		ip4->ttl--;
	} else if (ip6) {
		ip6->hop_limit--;
	}
	cpn_mac_copy(eth->h_dest, dmac);
	cpn_mac_copy(eth->h_source, smac);
}

/* ---- entry ----------------------------------------------------------- */

/* End parsing with a counted verdict. */
static __always_inline int cpn_parse_stop(struct cpn_env *env, struct cpn_verdict *v, int action,
					  __u32 stat)
{
	cpn_verdict_set(env, v, action, stat);
	return -1;
}

/* Parse Ethernet (one VLAN tag), IPv4/IPv6 and UDP. Returns 0 and fills
 * `p` for a UDP datagram (p->len_err says whether its lengths disagree with
 * the frame: dropped if it is ours, passed if not); otherwise -1 with a
 * counted verdict in `v` (PASS for what is not ours to judge).
 */
static __always_inline int cpn_parse(struct cpn_env *env, void *data, void *data_end,
				     struct cpn_l34 *p, struct cpn_verdict *v)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_SHORT_L2);
	proto = eth->h_proto;
	if (proto == cpn_htons(CPN_ETH_P_8021Q) || proto == cpn_htons(CPN_ETH_P_8021AD)) {
		__be16 *inner = (__be16 *)((char *)data + off + 2);

		if ((void *)(inner + 1) > data_end)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_SHORT_L2);
		proto = *inner;
		off += 4;
	}
	v->l3_off = off;

	if (proto == cpn_htons(ETH_P_IP)) {
		struct iphdr *ip4 = (struct iphdr *)((char *)data + off);
		__u32 tot;

		if ((void *)(ip4 + 1) > data_end)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_SHORT_L3);
		if (ip4->version != 4 || ip4->protocol != IPPROTO_UDP)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_NOT_CPN);
		if (ip4->ihl != 5)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_IP_OPTIONS);
		if (ip4->frag_off & cpn_htons(CPN_IP_MF | CPN_IP_OFFSET))
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_FRAGMENT);
		p->udp = (struct udphdr *)(ip4 + 1);
		if ((void *)(p->udp + 1) > data_end)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_SHORT_L4);
		tot = cpn_ntohs(ip4->tot_len);
		p->udp_len = cpn_ntohs(p->udp->len);
		if (tot < sizeof(*ip4) + sizeof(struct udphdr) ||
		    (char *)ip4 + tot > (char *)data_end)
			p->len_err = CPN_STAT_DROP_BAD_IP_LEN;
		else if (p->udp_len < sizeof(struct udphdr) || p->udp_len > tot - sizeof(*ip4))
			p->len_err = CPN_STAT_DROP_BAD_UDP_LEN;
		p->ip4 = ip4;
		p->ip6 = 0;
		p->saddr = &ip4->saddr;
		p->daddr = &ip4->daddr;
		p->family = CPN_AF_INET;
		p->nwords = 1;
		return 0;
	}
	if (proto == cpn_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)((char *)data + off);
		__u32 plen;

		if ((void *)(ip6 + 1) > data_end)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_SHORT_L3);
		if (ip6->nexthdr == CPN_NEXTHDR_FRAG)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_FRAGMENT);
		if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_NOT_CPN);
		p->udp = (struct udphdr *)(ip6 + 1);
		if ((void *)(p->udp + 1) > data_end)
			return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_SHORT_L4);
		plen = cpn_ntohs(ip6->payload_len);
		p->udp_len = cpn_ntohs(p->udp->len);
		if (plen < sizeof(struct udphdr) || (char *)(ip6 + 1) + plen > (char *)data_end)
			p->len_err = CPN_STAT_DROP_BAD_IP_LEN;
		else if (p->udp_len < sizeof(struct udphdr) || p->udp_len > plen)
			p->len_err = CPN_STAT_DROP_BAD_UDP_LEN;
		p->ip4 = 0;
		p->ip6 = ip6;
		p->saddr = ip6->saddr.in6_u.u6_addr32;
		p->daddr = ip6->daddr.in6_u.u6_addr32;
		p->family = CPN_AF_INET6;
		p->nwords = 4;
		return 0;
	}
	return cpn_parse_stop(env, v, CPN_ACT_PASS, CPN_STAT_PASS_NOT_CPN);
}

/* A verdict before anything is decided: PASS. */
static __always_inline void cpn_verdict_reset(struct cpn_verdict *v)
{
	v->action = CPN_ACT_PASS;
	v->family = 0;
	v->l3_off = 0;
	v->trim = 0;
	v->node_id = 0;
	v->now_ns = 0;
}

/* The VIP key a datagram is sent to (vk zeroed by the caller). */
static __always_inline void cpn_vip_key_of(const struct cpn_l34 *p, struct cpn_vip_key *vk)
{
	vk->addr[0] = p->daddr[0];
	if (p->nwords == 4) {
		vk->addr[1] = p->daddr[1];
		vk->addr[2] = p->daddr[2];
		vk->addr[3] = p->daddr[3];
	}
	{
		/* port, family and pad in one 32-bit store: a lookup that reads
		 * them as one word then forwards from a single store instead of
		 * stalling on three narrow ones.
		 */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		__u32 tail = (__u32)p->udp->dest | (__u32)p->family << 16;
#else
		__u32 tail = (__u32)p->udp->dest << 16 | (__u32)p->family << 8;
#endif
		__builtin_memcpy(&vk->port, &tail, sizeof(tail));
	}
}

/* One frame in, one verdict out. The frame may have been rewritten. */
static __always_inline int cpn_router_rx(struct cpn_env *env, void *data, void *data_end,
					 struct cpn_verdict *v)
{
	struct cpn_l34 p = {};
	struct cpn_vip_key vk = {};
	struct cpn_config *cfg;
	struct cpn_service *svc;
	struct cpn_hdr *h;
	struct cpn_node_cfg *nc;

	cpn_verdict_reset(v);
	cpn_env_count(env, CPN_STAT_RX);
	if (cpn_parse(env, data, data_end, &p, v))
		return v->action;

	/* A request to a service VIP? */
	cpn_vip_key_of(&p, &vk);
	svc = cpn_env_vip(env, &vk);
	if (p.len_err) /* lengths that lie: dropped if ours, the host's business if not */
		return cpn_verdict_set(env, v, svc ? CPN_ACT_DROP : CPN_ACT_PASS,
				       svc ? p.len_err : CPN_STAT_PASS_NOT_CPN);
	if (svc)
		return cpn_request(env, data, data_end, &p, svc, v);

	/* Anything else is ours only if it carries a valid cpn header. */
	h = (struct cpn_hdr *)(p.udp + 1);
	if ((void *)(h + 1) > data_end || p.udp_len < sizeof(struct udphdr) + CPN_HDR_LEN ||
	    h->magic != cpn_htons(CPN_MAGIC) || h->version != CPN_VERSION)
		return cpn_verdict_set(env, v, CPN_ACT_PASS, CPN_STAT_PASS_NOT_CPN);

	cfg = cpn_env_config(env);
	if (p.udp->dest ==
	    (cfg && cfg->control_port ? cfg->control_port : cpn_htons(CPN_DEFAULT_CONTROL_PORT)))
		return cpn_control(env, data_end, &p, h, cfg, v);

	if (h->type == CPN_T_REPLY || h->type == CPN_T_BUSY) {
		nc = cpn_report_node(env, &p, h, 1);
		if (nc)
			return cpn_reply(env, data_end, &p, h, nc, v);
	}
	return cpn_verdict_set(env, v, CPN_ACT_PASS, CPN_STAT_PASS_NOT_CPN);
}

#ifdef CPN_ENV_LATE
/* A request held since cpn_router_rx() said CPN_ACT_HOLD (the frame as it
 * came): refused with BUSY for busy_reason, or sent to node_id, or with
 * node_id 0 to the policy's early choice (cpn_env_late must then answer
 * < 0). Judged against the configuration of now: a service that is gone
 * is refused (BUSY, no node), a node no longer its candidate is not used.
 * Its admission (tenant, signature, rate) was done on arrival.
 */
static __always_inline int cpn_router_held(struct cpn_env *env, void *data, void *data_end,
					   __u16 node_id, __u8 busy_reason, struct cpn_verdict *v)
{
	struct cpn_l34 p = {};
	struct cpn_vip_key vk = {};
	struct cpn_service *svc;
	struct cpn_config *cfg = cpn_env_config(env);
	struct cpn_svc_stats *ss;
	struct cpn_node *n = 0;
	struct cpn_hdr *h;
	__u64 now = cpn_env_now_ns(env);
	__u8 busy = 0;

	cpn_verdict_reset(v);
	if (cpn_parse(env, data, data_end, &p, v))
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_SHORT);
	cpn_vip_key_of(&p, &vk);
	svc = cpn_env_vip(env, &vk);
	h = (struct cpn_hdr *)(p.udp + 1);
	if (p.len_err || (void *)(h + 1) > data_end)
		return cpn_verdict_set(env, v, CPN_ACT_DROP, CPN_STAT_DROP_SHORT);
	if (svc && (cpn_ntohs(h->service_id) != svc->id || !(svc->flags & CPN_SVC_ACTIVE)))
		svc = 0;
	/* Refused: the client hears so, whether or not its service is still
	 * there (removed: BUSY no node).
	 */
	if (busy_reason || !svc || !cfg) {
		__u32 bi;

		busy_reason = busy_reason ? busy_reason : CPN_BUSY_NO_NODE;
		bi = (__u32)busy_reason - 1;
		ss = svc ? cpn_env_svc_stats(env, svc->id) : 0;
		if (ss && bi < CPN_SVC_BUSY_REASONS)
			ss->busy[bi]++;
		return cpn_make_busy(env, data, data_end, &p, h, busy_reason, v);
	}
	ss = cpn_env_svc_stats(env, svc->id);
	if (node_id && !cpn_svc_has_node(svc, node_id))
		node_id = 0;
	{
		__u32 aff_tenant = CPN_TENANT_ANY, key = cpn_ntohl(h->session_key);

		/* admitted on arrival: only the session's tenant entry is wanted */
		if (!(svc->flags & CPN_SVC_OPEN))
			cpn_request_tenant(env, svc, h, &aff_tenant);
		if (!node_id) {
			node_id = cpn_request_node(env, svc, h, &p, now, cfg->hop_key, aff_tenant,
						   &busy, &n);
		} else if (key && (h->flags & cpn_htons(CPN_F_STICKY))) {
			/* The session's first request, bound late: its node
			 * from now on, as a choice on arrival would be.
			 */
			struct cpn_aff_key ak = {.tenant_id = h->tenant_id,
						 .session_key = key,
						 .service_id = cpn_ntohs(h->service_id)};
			struct cpn_aff na = {.node_id = node_id, .last_ns = now};

			cpn_env_aff_set(env, aff_tenant, &ak, &na);
		}
	}
	return cpn_request_send(env, data, data_end, &p, svc, h, cfg, ss, node_id, n, busy, now, v);
}
#endif

#endif /* CPN_ROUTER_H */
