// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fuzz target: the router's packet path (include/cpn/router.h), the code the
 * XDP program and cpn-fwd share, over an environment of its own: tables in
 * memory for the configuration of selftests/bpf/router_topo.h (services of
 * every policy, IPv4 and IPv6, DNAT, full NAT, reply_check; nodes and
 * tenants with and without keys), a clock and a generator taken from the
 * input. Every input starts from the same learned state.
 *
 * Input: 4 bytes of options, then the frame (Ethernet onward), run on a
 * buffer of exactly its length:
 *
 *   opt[0]  bits 0-2: how far the clock is from the configuration's time
 *           (0, 1 µs, 250 µs, 20 ms, 300 ms, 700 ms, 2.5 s, 30 s: nodes go
 *           stale, stamps leave their window); bits 3-7 seed the generator
 *   opt[1]  bit 0: a cpn-fwd socket takes hand-offs; bit 1: the plane keeps
 *           no flows (cpn-fwd); bit 2: no configuration; bits 4-7: generator
 *   opt[2]  low nibble: the destination becomes 1-9 service n's VIP and
 *           port, 10 the control port, 11 the router's own address, 12 the
 *           client, 13 a VIP on port 53; high nibble: the source becomes
 *           1-12 the n-th node of router_topo.h, 13 the client, 14 the
 *           router's own address (where the family allows)
 *   opt[3]  fix-ups, in this order: bit 0 the IP and UDP lengths to the
 *           frame; 1 FRESH and a stamp of now; 2 router_ts of now (and a
 *           PROBE_ACK's cookie); 3 the hop tag; 4 AUTH and the tag (the
 *           tenant's or the node's key, bit 5: the next key); 6 every
 *           checksum; 7 no UDP checksum (IPv4)
 *
 * Checked for every frame (abort on violation): the verdict is an action of
 * enum cpn_action; RX counted once and exactly one outcome whose class is
 * the verdict (router_topo.h, rtp_check_counts); PASS, DROP, CONSUME and XSK
 * leave the frame byte for byte; a FWD is a well-formed frame after, with
 * its IPv4 header and UDP checksums valid where they were before (a
 * forwarded report's were verified, so they are valid after), a request
 * steered to a valid node of its service and family, tagged with a hop tag
 * that verifies, a reply from its service's VIP; a BUSY is the request's
 * header turned back to the client, trimmed, all its checksums valid; the
 * per-node and per-service counters agree with cpn_stats.
 *
 * CPN_FUZZ_ROUTER_SEEDS=DIR build/fuzz/fuzz_router -runs=0 writes the seed
 * corpus (every frame of router_topo.h, with options 0) into DIR;
 * CPN_FUZZ_ROUTER_VERBOSE=1 prints each input's verdict and outcome.
 */
/* First: router.h wants the kernel's network headers, not the C library's. */
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpn/maps.h"
#include "../bpf/router_topo.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the environment of router.h --------------------------------------- */

struct cpn_env {
	__u64 now, tai, rng;
	int xsk, no_flows, no_cfg;
};

#define CPN_CTX struct cpn_env

#define FZ_T0	   1000000000000ULL /* the configuration's time: 1000 s */
#define FZ_TAI_OFF 1700000000000000000ULL
#define FZ_AFF	   16 /* sessions per tenant entry, direct-mapped */
#define FZ_FLOWS   32
#define FZ_SEEN	   64

static struct cpn_node fz_state[CPN_MAX_NODES], fz_state0[CPN_MAX_NODES];
static struct cpn_tokens fz_tokens[RTP_MAX_SVC], fz_tokens0[RTP_MAX_SVC];

static struct cpn_node *fz_node_at(__u32 id)
{
	return id && id < CPN_MAX_NODES ? &fz_state[id] : NULL;
}
#define cpn_node_at(env, id) fz_node_at(id)

static struct cpn_tokens *fz_tokens_at(__u32 svc)
{
	return svc < RTP_MAX_SVC ? &fz_tokens[svc] : NULL;
}
#define cpn_tokens_at(env, svc) fz_tokens_at(svc)

static struct cpn_config fz_cfg;
static struct cpn_service fz_svc[RTP_MAX_SVC], fz_svc0[RTP_MAX_SVC];
static int fz_has_svc[RTP_MAX_SVC];
/* The VIPs' copies, as cpn_vips holds its own (the round-robin cursor
 * moves in the copy a request found).
 */
static struct cpn_service fz_vip[RTP_NSVC], fz_vip0[RTP_NSVC];
static struct cpn_vip_key fz_vipk[RTP_NSVC];
static struct cpn_maglev *fz_mg[RTP_MAX_SVC];
static struct cpn_node_cfg fz_nc[CPN_MAX_NODES];
static struct cpn_tenant fz_ten[RTP_NTEN], fz_ten0[RTP_NTEN];

struct fz_aff {
	struct cpn_aff_key k;
	struct cpn_aff a;
};
static struct fz_aff fz_aff[RTP_NTEN][FZ_AFF], fz_aff0[RTP_NTEN][FZ_AFF];

struct fz_flow {
	struct cpn_flow_key k;
	struct cpn_flow f;
	int used;
};
static struct fz_flow fz_flows[FZ_FLOWS], fz_flows0[FZ_FLOWS];

static struct cpn_seen_key fz_seen[FZ_SEEN];
static int fz_seen_n;

static __u64 fz_stats[CPN_STAT_MAX];
static struct cpn_node_stats fz_nstats[CPN_MAX_NODES];
static struct cpn_svc_stats fz_sstats[CPN_MAX_SERVICES];

static void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static struct cpn_config *cpn_env_config(struct cpn_env *env)
{
	return env->no_cfg ? NULL : &fz_cfg;
}

static struct cpn_service *cpn_env_vip(struct cpn_env *env, const struct cpn_vip_key *k)
{
	(void)env;
	for (int i = 0; i < RTP_NSVC; i++)
		if (!memcmp(k, &fz_vipk[i], sizeof(*k)))
			return &fz_vip[i];
	return NULL;
}

static struct cpn_service *cpn_env_service(struct cpn_env *env, __u32 id)
{
	(void)env;
	return id < RTP_MAX_SVC && fz_has_svc[id] ? &fz_svc[id] : NULL;
}

static struct cpn_maglev *cpn_env_maglev(struct cpn_env *env, __u32 id)
{
	(void)env;
	return id < RTP_MAX_SVC ? fz_mg[id] : NULL;
}

static struct cpn_node_cfg *cpn_env_node_cfg(struct cpn_env *env, __u32 id)
{
	(void)env;
	return id < CPN_MAX_NODES ? &fz_nc[id] : NULL;
}

static int fz_tenant_idx(__u32 id)
{
	for (int i = 0; i < RTP_NTEN; i++)
		if (rtp_tenants[i].id == id)
			return i;
	return -1;
}

static struct cpn_tenant *cpn_env_tenant(struct cpn_env *env, __u32 id)
{
	int i = fz_tenant_idx(id);

	(void)env;
	return i < 0 ? NULL : &fz_ten[i];
}

static int cpn_env_tenant_admit(struct cpn_env *env, struct cpn_tenant *t, __u64 now)
{
	(void)env;
	if (!t->interval_ns)
		return 1;
	return cpn_gcra(&t->tat, now, t->interval_ns, t->burst_ns);
}

static struct fz_aff *fz_aff_slot(__u32 tenant, const struct cpn_aff_key *k)
{
	int i = fz_tenant_idx(tenant);
	__u32 h = k->tenant_id * 0x9e3779b1U ^ k->session_key * 0x85ebca6bU ^ k->service_id;

	return i < 0 ? NULL : &fz_aff[i][(h ^ h >> 15) & (FZ_AFF - 1)];
}

static struct cpn_aff *cpn_env_aff(struct cpn_env *env, __u32 tenant, const struct cpn_aff_key *k)
{
	struct fz_aff *e = fz_aff_slot(tenant, k);

	(void)env;
	if (!e || !e->a.node_id || memcmp(&e->k, k, sizeof(*k)))
		return NULL;
	return &e->a;
}

static void cpn_env_aff_set(struct cpn_env *env, __u32 tenant, const struct cpn_aff_key *k,
			    const struct cpn_aff *a)
{
	struct fz_aff *e = fz_aff_slot(tenant, k);

	(void)env;
	if (e) {
		e->k = *k;
		e->a = *a;
	}
}

static void cpn_env_count(struct cpn_env *env, __u32 stat)
{
	(void)env;
	if (stat >= CPN_STAT_MAX)
		fz_fail("counted stat %u, past CPN_STAT_MAX", stat);
	fz_stats[stat]++;
}

static struct cpn_node_stats *cpn_env_node_stats(struct cpn_env *env, __u32 id)
{
	(void)env;
	return id < CPN_MAX_NODES ? &fz_nstats[id] : NULL;
}

static struct cpn_svc_stats *cpn_env_svc_stats(struct cpn_env *env, __u32 id)
{
	(void)env;
	return id < CPN_MAX_SERVICES ? &fz_sstats[id] : NULL;
}

static __u64 cpn_env_now_ns(struct cpn_env *env)
{
	return env->now;
}

static __u64 cpn_env_tai_ns(struct cpn_env *env)
{
	return env->tai;
}

/* xorshift64*, as the data planes draw. */
static __u64 cpn_env_rand(struct cpn_env *env)
{
	__u64 x = env->rng ? env->rng : 1;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	env->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int cpn_env_xsk_ready(struct cpn_env *env)
{
	return env->xsk;
}

static struct fz_flow *fz_flow_find(const struct cpn_flow_key *k)
{
	for (int i = 0; i < FZ_FLOWS; i++)
		if (fz_flows[i].used && !memcmp(&fz_flows[i].k, k, sizeof(*k)))
			return &fz_flows[i];
	return NULL;
}

static int cpn_env_flow_set(struct cpn_env *env, const struct cpn_flow_key *k,
			    const struct cpn_flow *f)
{
	struct fz_flow *e;

	if (env->no_flows)
		return -1;
	e = fz_flow_find(k);
	for (int i = 0; !e && i < FZ_FLOWS; i++)
		if (!fz_flows[i].used)
			e = &fz_flows[i];
	if (!e) /* full: one goes, as in an LRU */
		e = &fz_flows[(k->request_id ^ k->cport) % FZ_FLOWS];
	e->k = *k;
	e->f = *f;
	e->used = 1;
	return 0;
}

static int cpn_env_flow_get(struct cpn_env *env, const struct cpn_flow_key *k, struct cpn_flow *f,
			    int take)
{
	struct fz_flow *e = env->no_flows ? NULL : fz_flow_find(k);

	if (!e)
		return -1;
	*f = e->f;
	if (take)
		e->used = 0;
	return 0;
}

static void cpn_env_flow_del(struct cpn_env *env, const struct cpn_flow_key *k)
{
	struct fz_flow *e = env->no_flows ? NULL : fz_flow_find(k);

	if (e)
		e->used = 0;
}

static int cpn_env_seen(struct cpn_env *env, const struct cpn_seen_key *k, __u32 stamp)
{
	(void)env;
	(void)stamp;
	for (int i = 0; i < fz_seen_n && i < FZ_SEEN; i++)
		if (!memcmp(&fz_seen[i], k, sizeof(*k)))
			return 1;
	fz_seen[fz_seen_n++ % FZ_SEEN] = *k;
	return 0;
}

#include "cpn/router.h"

/* ---- the configuration, once ------------------------------------------- */

/* Where option byte 2 points a frame: per target and family (0 v4, 1 v6). */
struct fz_target {
	int ok;
	__be32 addr[4];
	__be16 port;
};
static struct fz_target fz_dst[16][2], fz_src[16][2];

static void fz_target_set(struct fz_target *t, const char *addr, __u16 port)
{
	__u8 fam;

	if (cpn_addr_parse(addr, t->addr, &fam)) {
		fprintf(stderr, "fuzz_router: bad address %s\n", addr);
		abort();
	}
	t->port = cpn_htons(port);
	t->ok = 1;
}

static void fz_targets(void)
{
	for (int i = 0; i < RTP_NSVC && i < 9; i++) {
		const struct rtp_service *d = &rtp_services[i];

		fz_target_set(&fz_dst[i + 1][d->family == CPN_AF_INET6], d->vip, d->port);
	}
	for (int f = 0; f < 2; f++) {
		fz_target_set(&fz_dst[10][f], f ? CPN_PKT_ROUTER6 : CPN_PKT_ROUTER4, CPN_PKT_CTL);
		fz_target_set(&fz_dst[11][f], f ? RTP_SRC6 : RTP_SRC4, RTP_CPORT);
		fz_target_set(&fz_dst[12][f], f ? CPN_PKT_CLIENT6 : CPN_PKT_CLIENT4, RTP_CPORT);
		fz_target_set(&fz_dst[13][f], f ? "fd00::100" : "10.0.0.100", 53);
		fz_target_set(&fz_src[13][f], f ? CPN_PKT_CLIENT6 : CPN_PKT_CLIENT4, RTP_CPORT);
		fz_target_set(&fz_src[14][f], f ? RTP_SRC6 : RTP_SRC4, CPN_PKT_PORT);
	}
	for (int i = 0; i < RTP_NNODES && i < 12; i++) {
		char a[48];

		cpn_pkt_node_addr(rtp_nodes[i].id, rtp_nodes[i].family, a, sizeof(a));
		fz_target_set(&fz_src[i + 1][rtp_nodes[i].family == CPN_AF_INET6], a, CPN_PKT_PORT);
	}
}

static void fz_configure(void)
{
	__u64 now_us = FZ_T0 / 1000;

	rtp_config(&fz_cfg);
	for (int i = 0; i < RTP_NNODES; i++) {
		const struct rtp_node *d = &rtp_nodes[i];
		struct cpn_node *n = &fz_state0[d->id];

		if (rtp_node_cfg(d, &fz_nc[d->id]))
			abort();
		n->admin = d->admin;
		n->weight = 100;
		n->capacity = 4;
		n->svc_us = 100 + 50u * d->id;
		n->path_us = 20 + d->id;
		n->queue_depth = d->id == 11 ? 10 : d->id % 3;
		n->report_flags = CPN_REP_SVC_VALID | CPN_REP_PATH_VALID;
		if (d->draining)
			n->report_flags |= CPN_REP_DRAINING;
		n->last_report_ns = d->stale ? FZ_T0 - 10000000000ULL : FZ_T0 - 50000000ULL;
	}
	for (int i = 0; i < RTP_NSVC; i++) {
		const struct rtp_service *d = &rtp_services[i];
		__u32 w[4] = {100, 100, 100, 100};
		struct cpn_service *s = &fz_svc0[d->id];

		if (d->id >= RTP_MAX_SVC || rtp_service_val(d, s))
			abort();
		fz_has_svc[d->id] = 1;
		fz_vip0[i] = *s;
		memset(&fz_vipk[i], 0, sizeof(fz_vipk[i]));
		memcpy(fz_vipk[i].addr, s->vip, sizeof(s->vip));
		fz_vipk[i].port = s->port;
		fz_vipk[i].family = s->family;
		fz_mg[d->id] = calloc(1, sizeof(struct cpn_maglev));
		if (!fz_mg[d->id] || cpn_maglev_build(fz_mg[d->id], d->nodes, w, (int)d->n))
			abort();
	}
	for (int i = 0; i < RTP_NTEN; i++)
		rtp_tenant_val(&rtp_tenants[i], &fz_ten0[i]);
	for (int i = 0; i < RTP_NFLOWS; i++) {
		if (rtp_flow_val(&rtp_flows[i], &fz_flows0[i].k, &fz_flows0[i].f))
			abort();
		fz_flows0[i].used = 1;
	}
	{
		struct cpn_aff_key k = {
		    .tenant_id = cpn_htonl(42), .session_key = RTP_SESSION, .service_id = 1};
		struct fz_aff *e;

		memcpy(fz_aff, fz_aff0, sizeof(fz_aff));
		e = fz_aff_slot(42, &k);
		e->k = k;
		e->a.node_id = RTP_SESSION_NODE;
		e->a.last_ns = FZ_T0 - 1000000;
		memcpy(fz_aff0, fz_aff, sizeof(fz_aff));
	}
	/* An idle token of node 12 for the jiq service. */
	fz_tokens0[4].top = 1;
	fz_tokens0[4].slot[0].node = 12;
	fz_tokens0[4].slot[0].t_us = (__u32)now_us - 10;
	fz_targets();
}

static struct rtp_clock fz_clock(__u64 now)
{
	struct rtp_clock c = {.tai_ms = (__u32)((now + FZ_TAI_OFF) / 1000000),
			      .now_us = (__u32)(now / 1000)};

	return c;
}

static void fz_write_seeds(const char *dir)
{
	struct rtp_clock c = fz_clock(FZ_T0);
	__u8 buf[4 + CPN_PKT_MAX];
	char path[512];
	int n = 0;

	for (int i = 0;; i++) {
		const char *name = NULL;
		size_t len = rtp_frame(i, &c, buf + 4, CPN_PKT_MAX, &name);
		FILE *f;

		if (!len)
			break;
		memset(buf, 0, 4);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, len + 4, f) != len + 4 || fclose(f)) {
			perror(path);
			exit(1);
		}
		n++;
	}
	for (int k = 0; k < RTP_F_KINDS; k++) {
		size_t len = rtp_foreign(k, 0x1234567u * (__u32)(k + 1), buf + 4, CPN_PKT_MAX);
		FILE *f;

		memset(buf, 0, 4);
		snprintf(path, sizeof(path), "%s/foreign_%s", dir, rtp_foreign_names[k]);
		f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, len + 4, f) != len + 4 || fclose(f)) {
			perror(path);
			exit(1);
		}
		n++;
	}
	fprintf(stderr, "fuzz_router: %d seeds written to %s\n", n, dir);
}

static int fz_verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("CPN_FUZZ_ROUTER_SEEDS");

	fz_verbose = getenv("CPN_FUZZ_ROUTER_VERBOSE") != NULL;
	(void)argc;
	(void)argv;
	fz_configure();
	if (seeds)
		fz_write_seeds(seeds);
	return 0;
}

/* ---- the frame: locating, fixing up, checksums -------------------------- */

static void fz_fix_csums(__u8 *b, size_t len, const struct rtp_view *v)
{
	size_t n = v->udp_len < len - v->l4 ? v->udp_len : len - v->l4;
	__u32 acc;
	__u16 c;

	if (v->family == CPN_AF_INET) {
		rtp_be16(b + v->l3 + 10, 0);
		rtp_be16(b + v->l3 + 10, (__u16)~rtp_fold(rtp_sum(b + v->l3, 20, 0)));
	}
	rtp_be16(b + v->l4 + 6, 0);
	acc = rtp_sum(b + v->saddr, 2 * v->alen, 0);
	acc += IPPROTO_UDP + (__u32)rtp_get16(b + v->l4 + 4);
	acc = rtp_sum(b + v->l4, n, acc);
	c = (__u16)~rtp_fold(acc);
	rtp_be16(b + v->l4 + 6, c ? c : 0xffff);
}

static void fz_fixup(__u8 *b, size_t len, const __u8 *opt, __u64 now)
{
	const struct fz_target *dst = &fz_dst[opt[2] & 15][0], *src = &fz_src[opt[2] >> 4][0];
	struct rtp_clock c = fz_clock(now);
	struct rtp_view v;
	struct cpn_hdr h;
	int f;

	if (rtp_locate(b, len, &v))
		return;
	f = v.family == CPN_AF_INET6;
	if (dst[f].ok) {
		memcpy(b + v.daddr, dst[f].addr, v.alen);
		memcpy(b + v.l4 + 2, &dst[f].port, 2);
	}
	if (src[f].ok) {
		memcpy(b + v.saddr, src[f].addr, v.alen);
		memcpy(b + v.l4, &src[f].port, 2);
	}
	if (opt[3] & 1) {
		size_t l3 = len - v.l3 > 0xffff ? 0xffff : len - v.l3;
		size_t l4 = len - v.l4 > 0xffff ? 0xffff : len - v.l4;

		rtp_be16(b + v.l3 + (f ? 4 : 2), (__u16)(f ? l4 : l3));
		rtp_be16(b + v.l4 + 4, (__u16)l4);
		v.udp_len = l4;
	}
	if (len >= v.pay + CPN_HDR_LEN && (opt[3] & 0x3e)) {
		memcpy(&h, b + v.pay, sizeof(h));
		if (opt[3] & 2) {
			h.flags |= cpn_htons(CPN_F_FRESH);
			h.stamp = cpn_htonl(c.tai_ms);
		}
		if (opt[3] & 4) {
			h.router_ts = cpn_htonl(c.now_us - 40);
			if (h.type == CPN_T_PROBE_ACK)
				h.request_id =
				    cpn_probe_cookie(rtp_hop_key, h.node_id, h.router_ts);
		}
		if (opt[3] & 8)
			h.worker_us = cpn_hop_tag(rtp_hop_key, &h);
		if ((opt[3] & 16) && len >= v.pay + CPN_HDR_LEN + CPN_TAG_LEN) {
			int next = !!(opt[3] & 32);
			__u64 key[2], tag;

			h.flags |= cpn_htons(CPN_F_AUTH);
			if (h.type == CPN_T_REQUEST) {
				int t = fz_tenant_idx(cpn_ntohl(h.tenant_id));

				rtp_tenant_key(t >= 0 ? rtp_tenants[t].id : 43, next, key);
				tag = cpn_tag_request_any(key, &h);
			} else {
				rtp_node_key(cpn_ntohs(h.node_id), next, key);
				tag = cpn_tag_node(key, &h);
			}
			memcpy(b + v.pay + CPN_HDR_LEN, &tag, sizeof(tag));
		}
		memcpy(b + v.pay, &h, sizeof(h));
	}
	if (opt[3] & 64)
		fz_fix_csums(b, len, &v);
	if ((opt[3] & 128) && !f)
		rtp_be16(b + v.l4 + 6, 0);
}

/* ---- the checks ---------------------------------------------------------- */

static const __u8 *fz_in, *fz_out;
static size_t fz_len;

static void fz_hex(const char *what, const __u8 *b, size_t n)
{
	fprintf(stderr, "%s (%zu bytes):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 16 ? " " : "\n  ", b[i]);
	fprintf(stderr, "\n");
}

static void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_router: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (fz_in)
		fz_hex("frame in", fz_in, fz_len);
	if (fz_out)
		fz_hex("frame out", fz_out, fz_len);
	abort();
}

static void fz_same(const __u8 *a, const __u8 *b, size_t from, size_t to, const char *what)
{
	for (size_t i = from; i < to; i++)
		if (a[i] != b[i])
			fz_fail("%s: byte %zu changed 0x%02x -> 0x%02x", what, i, a[i], b[i]);
}

static void fz_check_addr(const __u8 *b, size_t off, const __be32 *want, size_t alen,
			  const char *what)
{
	if (memcmp(b + off, want, alen))
		fz_fail("%s is not the expected address", what);
}

/* A request steered (REQ_STEERED) or a later fragment forwarded (REQ_FRAG). */
static void fz_check_request(const __u8 *in, const __u8 *out, const struct rtp_view *v,
			     const struct cpn_verdict *vd, int outcome, __u64 d_fullnat,
			     const struct cpn_env *env)
{
	struct cpn_hdr hi, ho;
	struct cpn_node_cfg *nc;
	struct cpn_service *svc;

	memcpy(&hi, in + v->pay, sizeof(hi));
	memcpy(&ho, out + v->pay, sizeof(ho));
	svc = cpn_env_service(NULL, cpn_ntohs(hi.service_id));
	if (!vd->node_id || vd->node_id >= CPN_MAX_NODES)
		fz_fail("steered to node %u", vd->node_id);
	nc = &fz_nc[vd->node_id];
	if (!(nc->flags & CPN_NODE_CFG_VALID) || nc->family != v->family)
		fz_fail("steered to node %u: not valid, or of another family", vd->node_id);
	if (!svc || !cpn_svc_has_node(svc, vd->node_id))
		fz_fail("node %u is not one of service %u's", vd->node_id,
			cpn_ntohs(hi.service_id));
	if (cpn_ntohs(ho.node_id) != vd->node_id || !(ho.flags & cpn_htons(CPN_F_TAGGED)))
		fz_fail("the header names node %u (TAGGED %d), the verdict %u",
			cpn_ntohs(ho.node_id), !!(ho.flags & cpn_htons(CPN_F_TAGGED)), vd->node_id);
	if (ho.worker_us != cpn_hop_tag(rtp_hop_key, &ho))
		fz_fail("the hop tag does not verify");
	fz_check_addr(out, v->daddr, nc->addr, v->alen, "the destination");
	if (memcmp(out + v->l4 + 2, &nc->port, 2))
		fz_fail("the destination port is not the node's");
	/* Full NAT: from the router's own address where the plane keeps the
	 * flow (a later fragment as its first went: where that one's flow is
	 * kept), else from the client.
	 */
	if (outcome == CPN_STAT_REQ_FRAG) {
		struct cpn_flow_key fk = {.request_id = hi.request_id,
					  .tenant_id = hi.tenant_id,
					  .service_id = hi.service_id,
					  .node_id = hi.node_id};

		memcpy(&fk.cport, in + v->l4, 2);
		d_fullnat = (svc->flags & CPN_SVC_FULLNAT) && !cpn_addr_zero(nc->src) &&
			    !env->no_flows && fz_flow_find(&fk);
	}
	if (d_fullnat)
		fz_check_addr(out, v->saddr, nc->src, v->alen, "the full-NAT source");
	else
		fz_same(in, out, v->saddr, v->saddr + v->alen, "the source address");
	fz_same(in, out, v->l4, v->l4 + 2, "the source port");
	if (outcome == CPN_STAT_REQ_FRAG) {
		fz_same(in, out, v->pay, fz_len, "a later fragment's header and payload");
		return;
	}
	if (ho.hops != (__u8)(hi.hops + 1) || cpn_ntohl(ho.router_ts) != (__u32)(env->now / 1000))
		fz_fail("hops %u -> %u, router_ts %u at %llu ns", hi.hops, ho.hops,
			cpn_ntohl(ho.router_ts), (unsigned long long)env->now);
	/* The rest of the header is the client's. */
	hi.flags |= cpn_htons(CPN_F_TAGGED);
	hi.node_id = ho.node_id;
	hi.hops = ho.hops;
	hi.router_ts = ho.router_ts;
	hi.worker_us = ho.worker_us;
	if (memcmp(&hi, &ho, sizeof(hi)))
		fz_fail("the request header changed beyond the hop's fields");
	fz_same(in, out, v->pay + CPN_HDR_LEN, fz_len, "the request's payload");
}

/* A REPLY, a later fragment of one, or a node's BUSY, relayed. */
static void fz_check_reply(const __u8 *in, const __u8 *out, const struct rtp_view *v)
{
	struct cpn_hdr h;
	struct cpn_service *svc;

	memcpy(&h, in + v->pay, sizeof(h));
	svc = cpn_env_service(NULL, cpn_ntohs(h.service_id));
	if (!svc || svc->family != v->family)
		fz_fail("relayed a reply of service %u", cpn_ntohs(h.service_id));
	if (!rtp_ip_ok(in, v))
		fz_fail("relayed a reply whose IPv4 header checksum is wrong");
	if (v->udp_len <= 8 + CPN_CSUM_CHECK_MAX && !rtp_udp_ok(in, v, v->udp_len))
		fz_fail("relayed a reply whose UDP checksum is wrong");
	fz_check_addr(out, v->saddr, svc->vip, v->alen, "the reply's source");
	if (memcmp(out + v->l4, &svc->port, 2))
		fz_fail("the reply's source port is not the VIP's");
	fz_same(in, out, v->l4 + 2, v->l4 + 4, "the client's port");
	fz_same(in, out, v->pay, fz_len, "the reply's header and payload");
}

/* A BUSY made of the request: back to the client, trimmed to the header. */
static void fz_check_busy(const __u8 *in, const __u8 *out, const struct rtp_view *v,
			  const struct cpn_verdict *vd)
{
	size_t end = v->pay + CPN_HDR_LEN;
	struct cpn_hdr hi, ho;
	struct rtp_view vo;

	if (vd->trim != fz_len - end)
		fz_fail("BUSY trims %u bytes, the frame has %zu after the header", vd->trim,
			fz_len - end);
	if (rtp_locate(out, end, &vo) || vo.l4 != v->l4)
		fz_fail("BUSY is not an IP/UDP frame");
	if (vo.udp_len != 8 + CPN_HDR_LEN ||
	    rtp_get16(out + v->l3 + (v->family == CPN_AF_INET ? 2 : 4)) !=
		(v->family == CPN_AF_INET ? 20 : 0) + 8 + CPN_HDR_LEN)
		fz_fail("BUSY lengths do not match its %zu bytes", end);
	if (!rtp_ip_ok(out, &vo))
		fz_fail("BUSY IPv4 header checksum is wrong");
	if (rtp_get16(in + v->l4 + 6) == 0 && v->family == CPN_AF_INET
		? rtp_get16(out + v->l4 + 6) != 0
		: !rtp_udp_ok(out, &vo, vo.udp_len))
		fz_fail("BUSY UDP checksum is wrong");
	fz_same(in, out + 6, 0, 6, "BUSY destination MAC (the source's)");
	fz_same(in + 6, out, 0, 6, "BUSY source MAC (the destination's)");
	fz_same(in + v->saddr, out + v->daddr, 0, v->alen, "BUSY destination address");
	fz_same(in + v->daddr, out + v->saddr, 0, v->alen, "BUSY source address");
	fz_same(in + v->l4, out + v->l4 + 2, 0, 2, "BUSY destination port");
	fz_same(in + v->l4 + 2, out + v->l4, 0, 2, "BUSY source port");
	memcpy(&hi, in + v->pay, sizeof(hi));
	memcpy(&ho, out + v->pay, sizeof(ho));
	if (ho.type != CPN_T_BUSY || ho.status < CPN_BUSY_WAIT || ho.status > CPN_BUSY_NO_NODE ||
	    (ho.flags & cpn_htons(CPN_F_AUTH)))
		fz_fail("BUSY type %u status %u flags 0x%x", ho.type, ho.status,
			cpn_ntohs(ho.flags));
	hi.type = ho.type;
	hi.status = ho.status;
	hi.flags &= ~cpn_htons(CPN_F_AUTH);
	if (memcmp(&hi, &ho, sizeof(hi)))
		fz_fail("BUSY does not carry the request's header");
}

/* The per-node and per-service counters agree with cpn_stats. */
static void fz_check_tallies(void)
{
	__u64 nreq = 0, nrep = 0, nbusy = 0, sreq = 0, srep = 0, sbusy = 0, ssent = 0;

	for (int i = 0; i < CPN_MAX_NODES; i++) {
		nreq += fz_nstats[i].requests;
		nrep += fz_nstats[i].replies;
		nbusy += fz_nstats[i].busy;
	}
	for (int i = 0; i < CPN_MAX_SERVICES; i++) {
		sreq += fz_sstats[i].requests;
		srep += fz_sstats[i].replies;
		sbusy += fz_sstats[i].node_busy;
		ssent += cpn_svc_busy_total(&fz_sstats[i]);
	}
	if (nreq != fz_stats[CPN_STAT_REQ_STEERED] || sreq != nreq ||
	    nrep != fz_stats[CPN_STAT_REPLY_FWD] || srep != nrep ||
	    nbusy != fz_stats[CPN_STAT_BUSY_FWD] || sbusy != nbusy ||
	    ssent != fz_stats[CPN_STAT_BUSY_SENT])
		fz_fail("node/service tallies (requests %llu/%llu, replies %llu/%llu, busy "
			"%llu/%llu, busy sent %llu) disagree with cpn_stats",
			(unsigned long long)nreq, (unsigned long long)sreq,
			(unsigned long long)nrep, (unsigned long long)srep,
			(unsigned long long)nbusy, (unsigned long long)sbusy,
			(unsigned long long)ssent);
}

static const __u64 fz_steps[8] = {0,	     1000,	   250000,	  20000000,
				  300000000, 700000000ULL, 2500000000ULL, 30000000000ULL};

static const int fz_outcome_action[] = {
    [RTP_C_PASS] = CPN_ACT_PASS, [RTP_C_DROP] = CPN_ACT_DROP, [RTP_C_CONSUME] = CPN_ACT_CONSUME,
    [RTP_C_FWD] = CPN_ACT_FWD,	 [RTP_C_TX] = CPN_ACT_TX,     [RTP_C_XSK] = CPN_ACT_XSK,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpn_env env = {0};
	struct cpn_verdict vd;
	__u64 before[CPN_STAT_MAX], delta[CPN_STAT_MAX];
	struct rtp_view v;
	__u8 *buf, *in;
	size_t len;
	char why[160];
	int act, outcome, located;
	enum rtp_class cls;

	if (size < 4)
		return 0;
	len = size - 4;
	env.now = FZ_T0 + fz_steps[data[0] & 7];
	env.tai = env.now + FZ_TAI_OFF;
	env.rng = 0x9e3779b97f4a7c15ULL ^ ((__u64)data[0] << 8 | (__u64)(data[1] >> 4) << 32);
	env.xsk = data[1] & 1;
	env.no_flows = !!(data[1] & 2);
	env.no_cfg = !!(data[1] & 4);

	/* Every input meets the same router. */
	memcpy(fz_state, fz_state0, sizeof(fz_state));
	memcpy(fz_svc, fz_svc0, sizeof(fz_svc));
	memcpy(fz_vip, fz_vip0, sizeof(fz_vip));
	memcpy(fz_ten, fz_ten0, sizeof(fz_ten));
	memcpy(fz_aff, fz_aff0, sizeof(fz_aff));
	memcpy(fz_flows, fz_flows0, sizeof(fz_flows));
	memcpy(fz_tokens, fz_tokens0, sizeof(fz_tokens));
	fz_seen_n = 0;

	/* Exactly the frame's length, so that ASan sees any read past it. */
	buf = malloc(len ? len : 1);
	in = malloc(len ? len : 1);
	if (!buf || !in)
		abort();
	memcpy(buf, data + 4, len);
	fz_fixup(buf, len, data, env.now);
	memcpy(in, buf, len);
	fz_in = in;
	fz_out = buf;
	fz_len = len;

	memcpy(before, fz_stats, sizeof(before));
	act = cpn_router_rx(&env, buf, buf + len, &vd);
	for (int s = 0; s < CPN_STAT_MAX; s++)
		delta[s] = fz_stats[s] - before[s];

	if (act != vd.action || act < CPN_ACT_PASS || act > CPN_ACT_XSK)
		fz_fail("returned %d, verdict action %u", act, vd.action);
	outcome = rtp_check_counts(delta, why, sizeof(why));
	if (outcome < 0)
		fz_fail("%s", why);
	cls = rtp_stat_class(outcome);
	if (fz_outcome_action[cls] != act)
		fz_fail("outcome %s with action %d", cpn_stat_names[outcome], act);
	for (int s = 0; s < CPN_STAT_MAX; s++)
		if (delta[s] && rtp_stat_class(s) == RTP_C_PLANE)
			fz_fail("router.h counted the data plane's %s", cpn_stat_names[s]);
	fz_check_tallies();

	if (fz_verbose)
		fprintf(stderr, "fuzz_router: %zu bytes: action %d, %s\n", len, act,
			cpn_stat_names[outcome]);
	located = !rtp_locate(in, len, &v);
	switch (act) {
	case CPN_ACT_FWD:
	case CPN_ACT_TX:
		if (!located || vd.l3_off != v.l3 || vd.family != v.family)
			fz_fail("rewrote a frame it did not parse as IP/UDP (l3 %u family %u)",
				vd.l3_off, vd.family);
		if (v.udp_len < 8 + CPN_HDR_LEN || v.l4 + v.udp_len > len)
			fz_fail("rewrote a datagram of %zu bytes in a frame of %zu", v.udp_len,
				len);
		if (act == CPN_ACT_TX) {
			fz_check_busy(in, buf, &v, &vd);
			break;
		}
		if (!rtp_ip_ok(buf, &v) && rtp_ip_ok(in, &v))
			fz_fail("the IPv4 header checksum was valid, and is not after the rewrite");
		if (rtp_udp_ok(in, &v, v.udp_len) && !rtp_udp_ok(buf, &v, v.udp_len))
			fz_fail("the UDP checksum was valid, and is not after the rewrite");
		if (v.family == CPN_AF_INET && !rtp_get16(in + v.l4 + 6) &&
		    rtp_get16(buf + v.l4 + 6))
			fz_fail("an IPv4 datagram without UDP checksum got one");
		fz_same(in, buf, 0, v.l3, "the Ethernet header");
		if (outcome == CPN_STAT_REQ_STEERED || outcome == CPN_STAT_REQ_FRAG)
			fz_check_request(in, buf, &v, &vd, outcome, delta[CPN_STAT_REQ_FULLNAT],
					 &env);
		else
			fz_check_reply(in, buf, &v);
		break;
	default:
		fz_same(in, buf, 0, len, "a frame neither forwarded nor answered");
		break;
	}
	fz_in = fz_out = NULL;
	free(in);
	free(buf);
	return 0;
}
