// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Random frames through the real cpn_router.bpf.o (BPF_PROG_TEST_RUN, one
 * run each), configured as selftests/bpf/router_topo.h says: random bytes,
 * valid frames of every message type mutated at random (bits flipped, cut,
 * lengthened, length fields and header fields changed, addresses moved,
 * VLAN tags added and removed, checksums fixed or not, tags re-signed or
 * not), and traffic that is not cpn's.
 *
 * For every frame: RX counted once and exactly one outcome, whose class is
 * the verdict (rtp_check_counts); a frame passed, dropped or learned comes
 * back byte for byte; a rewritten one left exactly one way (tx_kernel:
 * XDP_PASS, tx_bounce: XDP_TX, tx_redirect: XDP_REDIRECT) and is a
 * well-formed cpn frame after, with its IPv4 header and UDP checksums valid
 * where they were before (a relayed report's were verified: valid before
 * and after), a request at a node of its service and family with a hop tag
 * that verifies, a reply from its service's VIP; a BUSY is trimmed to the
 * header, back to the client, every checksum valid. Foreign traffic comes
 * back XDP_PASS byte for byte under a pass_* counter. A violation fails
 * with the frame in hex.
 *
 * CPN_RANDOM_SEED=N changes the seed (printed at the start).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <bpf/bpf.h>

#include "router_test.h"
#include "router_topo.h"
#include "cpn_util.h"

#define N_RANDOM  20000
#define N_MUTATED 70000
#define N_FOREIGN 20000
#define REFRESH	  2000 /* frames between rebuilds of the valid frames (stamps, cookies) */
#define MAX_FRAME 1600
#define N_FRAMES  64

struct campaign {
	struct router r;
	__u64 seed, rng;
	__u64 stats[CPN_STAT_MAX];
	__u64 frames, by_act[XDP_REDIRECT + 1], by_outcome[CPN_STAT_MAX];
	/* The valid frames, rebuilt every REFRESH frames. */
	__u8 tpl[N_FRAMES][CPN_PKT_MAX];
	size_t tpl_len[N_FRAMES];
	int n_tpl;
	const char *phase;
};

static __u64 rnd(struct campaign *c)
{
	__u64 x = c->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static __u32 below(struct campaign *c, __u32 n)
{
	return (__u32)(rnd(c) >> 32) % n;
}

/* ---- the router ------------------------------------------------------------ */

static void fresh_nodes(struct campaign *c)
{
	for (int i = 0; i < RTP_NNODES; i++) {
		const struct rtp_node *d = &rtp_nodes[i];

		t_report(&c->r, d->id, d->id % 3, 0, 4, 100 + 50u * d->id, 20 + d->id);
		if (d->draining)
			c->r.maps.state[d->id].report_flags |= CPN_REP_DRAINING;
		if (d->stale)
			t_make_stale(&c->r, d->id);
	}
}

static void rebuild_frames(struct campaign *c)
{
	struct rtp_clock k = {.tai_ms = cpn_tai_ms(), .now_us = t_now_us()};

	c->n_tpl = 0;
	for (int i = 0; i < N_FRAMES; i++) {
		size_t len = rtp_frame(i, &k, c->tpl[c->n_tpl], CPN_PKT_MAX, NULL);

		if (!len)
			break;
		c->tpl_len[c->n_tpl++] = len;
	}
	fresh_nodes(c);
}

static int configure(struct campaign *c)
{
	struct cpn_config cfg;

	if (router_open(&c->r))
		return -1;
	rtp_config(&cfg);
	if (cpn_maps_set_config(&c->r.maps, &cfg))
		return -1;
	for (int i = 0; i < RTP_NNODES; i++) {
		struct cpn_node_cfg nc;

		if (rtp_node_cfg(&rtp_nodes[i], &nc) ||
		    cpn_maps_set_node(&c->r.maps, rtp_nodes[i].id, &nc, 100, rtp_nodes[i].admin))
			return -1;
	}
	for (int i = 0; i < RTP_NSVC; i++) {
		struct cpn_service s;

		if (rtp_service_val(&rtp_services[i], &s) ||
		    cpn_maps_set_service(&c->r.maps, rtp_services[i].id, &s))
			return -1;
	}
	for (int i = 0; i < RTP_NTEN; i++) {
		struct cpn_tenant t;

		rtp_tenant_val(&rtp_tenants[i], &t);
		if (cpn_maps_set_tenant(&c->r.maps, rtp_tenants[i].id, &t))
			return -1;
	}
	for (int i = 0; i < RTP_NFLOWS; i++) {
		struct cpn_flow_key k;
		struct cpn_flow f;

		if (rtp_flow_val(&rtp_flows[i], &k, &f) ||
		    bpf_map_update_elem(c->r.maps.flows, &k, &f, BPF_ANY))
			return -1;
	}
	rebuild_frames(c);
	return router_stats(&c->r, c->stats);
}

/* Every counter, summed over CPUs: one batch lookup where the kernel has
 * it, else one lookup per counter.
 */
static int read_stats(struct campaign *c, __u64 out[CPN_STAT_MAX])
{
	static __u64 vals[CPN_STAT_MAX * 512];
	__u32 keys[CPN_STAT_MAX], n = CPN_STAT_MAX, out_batch;
	int ncpu = c->r.maps.ncpus, err;

	if (ncpu > 512)
		return router_stats(&c->r, out);
	err = bpf_map_lookup_batch(c->r.maps.stats, NULL, &out_batch, keys, vals, &n, NULL);
	if ((err && errno != ENOENT) || n != CPN_STAT_MAX)
		return router_stats(&c->r, out);
	for (__u32 i = 0; i < n; i++) {
		if (keys[i] >= CPN_STAT_MAX)
			return -1;
		out[keys[i]] = 0;
		for (int k = 0; k < ncpu; k++)
			out[keys[i]] += vals[i * (__u32)ncpu + (__u32)k];
	}
	return 0;
}

/* ---- one frame --------------------------------------------------------------- */

static void hex(const char *what, const __u8 *b, size_t n)
{
	print_error("# %s (%zu bytes):", what, n);
	for (size_t i = 0; i < n; i++)
		print_error("%s%02x", i % 16 ? " " : "\n#   ", b[i]);
	print_error("\n");
}

struct frame {
	const __u8 *in;
	size_t len;
	__u8 out[CPN_PKT_MAX + 64];
	size_t out_len;
	int act;
};

static void violation(struct campaign *c, const struct frame *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void violation(struct campaign *c, const struct frame *f, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("# %s frame %llu (seed 0x%llx): %s; verdict %d\n", c->phase,
		    (unsigned long long)c->frames, (unsigned long long)c->seed, msg, f->act);
	hex("frame in", f->in, f->len);
	hex("frame out", f->out, f->out_len);
	fail_msg("%s frame %llu: %s", c->phase, (unsigned long long)c->frames, msg);
}

static void same(struct campaign *c, const struct frame *f, size_t from, size_t to,
		 const char *what)
{
	for (size_t i = from; i < to; i++)
		if (f->in[i] != f->out[i])
			violation(c, f, "%s: byte %zu changed 0x%02x -> 0x%02x", what, i, f->in[i],
				  f->out[i]);
}

/* A request steered, or a later fragment forwarded: at a node of the
 * service, tagged with a hop tag that verifies.
 */
static void check_request(struct campaign *c, const struct frame *f, const struct rtp_view *v)
{
	const struct rtp_service *s;
	const struct rtp_node *n;
	struct cpn_node_cfg nc;
	struct cpn_hdr h;
	__u16 id;

	memcpy(&h, f->out + v->pay, sizeof(h));
	id = ntohs(h.node_id);
	s = rtp_service(ntohs(h.service_id));
	n = rtp_node(id);
	if (!s || !n || n->family != v->family || rtp_node_cfg(n, &nc))
		violation(c, f, "steered to node %u of family %d", id, n ? n->family : 0);
	{
		bool member = false;

		for (__u32 i = 0; i < s->n; i++)
			member |= s->nodes[i] == id;
		if (!member)
			violation(c, f, "node %u is not one of service %u's", id, s->id);
	}
	if (!(h.flags & htons(CPN_F_TAGGED)) || h.worker_us != cpn_hop_tag(rtp_hop_key, &h))
		violation(c, f, "not TAGGED, or a hop tag that does not verify");
	if (memcmp(f->out + v->daddr, nc.addr, v->alen) || memcmp(f->out + v->l4 + 2, &nc.port, 2))
		violation(c, f, "the destination is not node %u", id);
	same(c, f, v->pay + CPN_HDR_LEN, f->len, "the request's payload");
}

static void check_reply(struct campaign *c, const struct frame *f, const struct rtp_view *v)
{
	struct cpn_service s;
	struct cpn_hdr h;

	memcpy(&h, f->in + v->pay, sizeof(h));
	if (!rtp_service(ntohs(h.service_id)) ||
	    rtp_service_val(rtp_service(ntohs(h.service_id)), &s) || s.family != v->family)
		violation(c, f, "relayed a reply of service %u", ntohs(h.service_id));
	if (!rtp_ip_ok(f->in, v))
		violation(c, f, "relayed a reply whose IPv4 header checksum is wrong");
	if (v->udp_len <= 8 + 512 && !rtp_udp_ok(f->in, v, v->udp_len))
		violation(c, f, "relayed a reply whose UDP checksum is wrong");
	if (memcmp(f->out + v->saddr, s.vip, v->alen) || memcmp(f->out + v->l4, &s.port, 2))
		violation(c, f, "the reply does not come from service %u's VIP", s.id);
	same(c, f, v->pay, f->len, "the reply's header and payload");
}

static void check_busy(struct campaign *c, const struct frame *f, const struct rtp_view *v)
{
	size_t end = v->pay + CPN_HDR_LEN;
	struct rtp_view vo;
	struct cpn_hdr h;

	if (f->out_len != end || rtp_locate(f->out, end, &vo) || vo.l4 != v->l4 ||
	    vo.udp_len != 8 + CPN_HDR_LEN)
		violation(c, f, "a BUSY not trimmed to its header (%zu bytes, want %zu)",
			  f->out_len, end);
	if (!rtp_ip_ok(f->out, &vo) || (rtp_get16(f->in + v->l4 + 6) || v->family == CPN_AF_INET6
					    ? !rtp_udp_ok(f->out, &vo, vo.udp_len)
					    : rtp_get16(f->out + v->l4 + 6) != 0))
		violation(c, f, "a BUSY with a wrong checksum");
	if (memcmp(f->out + v->daddr, f->in + v->saddr, v->alen) ||
	    memcmp(f->out + v->saddr, f->in + v->daddr, v->alen) ||
	    memcmp(f->out + v->l4, f->in + v->l4 + 2, 2) ||
	    memcmp(f->out + v->l4 + 2, f->in + v->l4, 2))
		violation(c, f, "a BUSY not sent back to the client");
	memcpy(&h, f->out + v->pay, sizeof(h));
	if (h.type != CPN_T_BUSY || h.status < CPN_BUSY_WAIT || h.status > CPN_BUSY_NO_NODE)
		violation(c, f, "a BUSY of type %u status %u", h.type, h.status);
}

/* A rewritten frame that left by XDP_TX or a redirect had its hop: the TTL
 * one down and new MACs. Undo that for the comparisons.
 */
static void unhop(struct frame *f, const struct rtp_view *v)
{
	memcpy(f->out, f->in, 12);
	if (v->family == CPN_AF_INET) {
		__u16 old = rtp_get16(f->out + v->l3 + 8), cs = rtp_get16(f->out + v->l3 + 10);
		__u32 acc = (__u32)(__u16)~cs + (__u16)~old + (__u16)(old + 0x100);

		f->out[v->l3 + 8]++;
		cs = (__u16)~rtp_fold(acc);
		rtp_be16(f->out + v->l3 + 10, cs);
	} else {
		f->out[v->l3 + 7]++;
	}
}

static void run(struct campaign *c, const __u8 *in, size_t len, bool foreign)
{
	static struct frame f;
	__u64 after[CPN_STAT_MAX], delta[CPN_STAT_MAX];
	char why[160];
	struct rtp_view v;
	int outcome, plane = -1, n_plane = 0, want;

	f.in = in;
	f.len = len;
	f.out_len = sizeof(f.out);
	f.act = router_run(&c->r, in, len, f.out, &f.out_len);
	c->frames++;
	if (f.act < 0)
		violation(c, &f, "BPF_PROG_TEST_RUN failed: %s", strerror(errno));
	if (read_stats(c, after))
		violation(c, &f, "cannot read cpn_stats");
	for (int s = 0; s < CPN_STAT_MAX; s++) {
		delta[s] = after[s] - c->stats[s];
		c->stats[s] = after[s];
	}
	if (f.act > XDP_REDIRECT || f.act == XDP_ABORTED)
		violation(c, &f, "verdict %d", f.act);
	c->by_act[f.act]++;
	outcome = rtp_check_counts(delta, why, sizeof(why));
	if (outcome < 0)
		violation(c, &f, "%s", why);
	c->by_outcome[outcome]++;
	for (int s = 0; s < CPN_STAT_MAX; s++) {
		if (rtp_stat_class(s) != RTP_C_PLANE || !delta[s])
			continue;
		n_plane += (int)delta[s];
		plane = s;
	}
	if (delta[CPN_STAT_DROP_TX])
		violation(c, &f, "drop_tx: a BUSY could not be trimmed");
	if (foreign && (rtp_stat_class(outcome) != RTP_C_PASS || f.act != XDP_PASS))
		violation(c, &f, "foreign traffic got %s", cpn_stat_names[outcome]);

	switch (rtp_stat_class(outcome)) {
	case RTP_C_FWD:
		if (n_plane != 1)
			violation(c, &f, "a rewritten frame left %d ways", n_plane);
		want = plane == CPN_STAT_TX_KERNEL   ? XDP_PASS
		       : plane == CPN_STAT_TX_BOUNCE ? XDP_TX
						     : XDP_REDIRECT;
		if (f.act != want || f.out_len != len)
			violation(c, &f, "%s with verdict %d, %zu bytes out", cpn_stat_names[plane],
				  f.act, f.out_len);
		if (rtp_locate(in, len, &v) || v.udp_len < 8 + CPN_HDR_LEN ||
		    v.l4 + v.udp_len > len)
			violation(c, &f, "rewrote a frame that is no whole cpn datagram");
		if (plane != CPN_STAT_TX_KERNEL)
			unhop(&f, &v);
		same(c, &f, 0, v.l3, "the Ethernet header");
		if (rtp_ip_ok(in, &v) && !rtp_ip_ok(f.out, &v))
			violation(c, &f, "the IPv4 header checksum was valid, and is not after");
		if (rtp_udp_ok(in, &v, v.udp_len) && !rtp_udp_ok(f.out, &v, v.udp_len))
			violation(c, &f, "the UDP checksum was valid, and is not after");
		if (v.family == CPN_AF_INET && !rtp_get16(in + v.l4 + 6) &&
		    rtp_get16(f.out + v.l4 + 6))
			violation(c, &f, "an IPv4 datagram without UDP checksum got one");
		if (outcome == CPN_STAT_REQ_STEERED || outcome == CPN_STAT_REQ_FRAG)
			check_request(c, &f, &v);
		else
			check_reply(c, &f, &v);
		break;
	case RTP_C_TX:
		if (n_plane || f.act != XDP_TX)
			violation(c, &f, "busy_sent with verdict %d", f.act);
		if (rtp_locate(in, len, &v))
			violation(c, &f, "a BUSY made of a frame that is no cpn datagram");
		check_busy(c, &f, &v);
		break;
	default:
		want = rtp_stat_class(outcome) == RTP_C_PASS ? XDP_PASS : XDP_DROP;
		if (rtp_stat_class(outcome) == RTP_C_XSK)
			want = XDP_REDIRECT;
		if (n_plane || f.act != want)
			violation(c, &f, "%s with verdict %d", cpn_stat_names[outcome], f.act);
		if (f.out_len != len)
			violation(c, &f, "%zu bytes in, %zu out", len, f.out_len);
		same(c, &f, 0, len, "a frame neither rewritten nor answered");
		break;
	}
	if (c->frames % REFRESH == 0)
		rebuild_frames(c);
}

/* ---- the three kinds of frames --------------------------------------------- */

static void fill(struct campaign *c, __u8 *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (__u8)(rnd(c) >> 56);
}

/* (a) random bytes: some wholly random, some after a valid frame's first
 * bytes, some with an IP ethertype.
 */
static void test_random_bytes(void **state)
{
	struct campaign *c = *state;
	__u8 in[MAX_FRAME];

	c->phase = "random";
	for (int i = 0; i < N_RANDOM; i++) {
		size_t len = 14 + below(c, (i & 1) ? 120 : MAX_FRAME - 14);

		fill(c, in, len);
		if (below(c, 2)) {
			int t = (int)below(c, (__u32)c->n_tpl);
			size_t keep = below(c, (__u32)c->tpl_len[t]);

			memcpy(in, c->tpl[t], keep < len ? keep : len);
		} else if (below(c, 2)) {
			static const __u16 types[] = {0x0800, 0x86dd, 0x8100, 0x88a8};

			rtp_be16(in + 12, types[below(c, 4)]);
		}
		run(c, in, len, false);
	}
}

static void set_be16_at(__u8 *b, size_t len, size_t off, __u16 v)
{
	if (off + 2 <= len)
		rtp_be16(b + off, v);
}

/* One mutation of a valid frame; the length may change. */
static void mutate(struct campaign *c, __u8 *b, size_t *len)
{
	struct rtp_view v;
	bool located = !rtp_locate(b, *len, &v);
	size_t pay = located ? v.pay : 42;

	switch (below(c, 9)) {
	case 0: /* bits */
		for (int n = 1 + (int)below(c, 8); n; n--) {
			size_t at = below(c, (__u32)*len);

			b[at] ^= (__u8)(1u << below(c, 8));
		}
		break;
	case 1: /* cut */
		*len = 14 + below(c, (__u32)(*len - 13));
		break;
	case 2: /* bytes after the datagram */
		if (*len + 64 <= MAX_FRAME) {
			size_t n = 1 + below(c, 64);

			fill(c, b + *len, n);
			*len += n;
		}
		break;
	case 3: /* a length field */
		if (located) {
			size_t off =
			    below(c, 2) ? v.l4 + 4 : v.l3 + (v.family == CPN_AF_INET ? 2 : 4);
			__u16 old = rtp_get16(b + off), nv;

			switch (below(c, 3)) {
			case 0:
				nv = (__u16)(old + below(c, 17) - 8);
				break;
			case 1:
				nv = (__u16)below(c, 80);
				break;
			default:
				nv = (__u16)rnd(c);
			}
			rtp_be16(b + off, nv);
		}
		break;
	case 4: { /* a field of the cpn header */
		static const __u32 tenants[] = {42, 43, 44, 45, RTP_TENANT_UNKNOWN, CPN_TENANT_ANY,
						0};
		static const __u64 reqs[] = {0x1111, 0x2222, 0x5555, 0x3333};
		__u8 *h = b + pay;

		if (pay + CPN_HDR_LEN > *len)
			break;
		switch (below(c, 10)) {
		case 0:
			h[3] = (__u8)below(c, 8); /* type */
			break;
		case 1:
			set_be16_at(h, CPN_HDR_LEN, 4, (__u16)rnd(c)); /* flags */
			break;
		case 2:
			h[4] ^= (__u8)(1u << below(c, 8));
			h[5] ^= (__u8)(1u << below(c, 8));
			break;
		case 3:
			set_be16_at(h, CPN_HDR_LEN, 6, (__u16)below(c, 12)); /* service */
			break;
		case 4: {
			__u32 t = htonl(tenants[below(c, 7)]);

			memcpy(h + 8, &t, 4);
			break;
		}
		case 5:
			set_be16_at(h, CPN_HDR_LEN, 24, (__u16)below(c, 17)); /* node */
			break;
		case 6:
			h[26] = (__u8)below(c, 6); /* hops */
			break;
		case 7: {
			__u64 r = cpn_htonll(reqs[below(c, 4)]);

			memcpy(h + 16, &r, 8);
			break;
		}
		case 8:
			h[below(c, 2) ? 0 : 2] ^= (__u8)(1u << below(c, 8)); /* magic, version */
			break;
		default:
			fill(c, h + 28, 4 * (1 + below(c, 5))); /* router_ts .. stamp */
		}
		break;
	}
	case 5: /* an address or a port of the topology */
		if (located) {
			static const char *const addr[2][4] = {
			    {"10.0.0.100", "10.0.0.102", CPN_PKT_ROUTER4, RTP_SRC4},
			    {"fd00::100", "fd00::101", CPN_PKT_ROUTER6, RTP_SRC6}};
			static const __u16 ports[] = {7470, 7471, 7480, RTP_CPORT};
			__be32 a[4];
			__u8 fam;
			char na[48];

			if (below(c, 2)) {
				cpn_pkt_node_addr((int)below(c, 16), v.family, na, sizeof(na));
				cpn_addr_parse(na, a, &fam);
			} else {
				cpn_addr_parse(addr[v.family == CPN_AF_INET6][below(c, 4)], a,
					       &fam);
			}
			memcpy(b + (below(c, 2) ? v.saddr : v.daddr), a, v.alen);
			rtp_be16(b + v.l4 + 2 * below(c, 2), ports[below(c, 4)]);
		}
		break;
	case 6: /* random bytes somewhere */
	{
		size_t at = below(c, (__u32)*len), n = 1 + below(c, 16);

		fill(c, b + at, at + n <= *len ? n : *len - at);
		break;
	}
	case 7: /* a VLAN tag in or out */
		if (rtp_get16(b + 12) == 0x8100 && *len > 18) {
			memmove(b + 12, b + 16, *len - 16);
			*len -= 4;
		} else if (*len + 4 <= MAX_FRAME) {
			memmove(b + 16, b + 12, *len - 12);
			rtp_be16(b + 12, below(c, 4) ? 0x8100 : 0x88a8);
			rtp_be16(b + 14, (__u16)below(c, 4096));
			*len += 4;
		}
		break;
	default: /* the IP header */
		if (located)
			fill(c, b + v.l3 + below(c, 12), 1 + below(c, 3));
	}
}

/* Sign again what was mutated, as its sender would (where AUTH is set and
 * the tag fits): the deeper checks then see it.
 */
static void resign(struct campaign *c, __u8 *b, size_t len)
{
	struct rtp_view v;
	struct cpn_hdr h;
	__u64 key[2], tag;

	if (rtp_locate(b, len, &v) || v.pay + CPN_HDR_LEN + CPN_TAG_LEN > len)
		return;
	memcpy(&h, b + v.pay, sizeof(h));
	if (below(c, 2)) {
		h.flags |= htons(CPN_F_FRESH);
		h.stamp = htonl(cpn_tai_ms());
	}
	if (h.type == CPN_T_REQUEST && (h.flags & htons(CPN_F_TAGGED)))
		h.worker_us = cpn_hop_tag(rtp_hop_key, &h);
	h.flags |= htons(CPN_F_AUTH);
	if (h.type == CPN_T_REQUEST) {
		rtp_tenant_key(ntohl(h.tenant_id), (int)below(c, 2), key);
		tag = cpn_tag_request_any(key, &h);
	} else {
		rtp_node_key(ntohs(h.node_id), (int)below(c, 2), key);
		tag = cpn_tag_node(key, &h);
	}
	memcpy(b + v.pay, &h, sizeof(h));
	memcpy(b + v.pay + CPN_HDR_LEN, &tag, sizeof(tag));
}

/* (b) valid frames of every type, mutated (one in ten left whole). */
static void test_mutated_cpn_frames(void **state)
{
	struct campaign *c = *state;
	__u8 in[MAX_FRAME + 64];

	c->phase = "mutated";
	for (int i = 0; i < N_MUTATED; i++) {
		int t = (int)below(c, (__u32)c->n_tpl);
		size_t len = c->tpl_len[t];

		memcpy(in, c->tpl[t], len);
		if (below(c, 10)) {
			for (int n = 1 + (int)below(c, 3); n; n--)
				mutate(c, in, &len);
			if (!below(c, 4))
				resign(c, in, len);
			if (below(c, 2))
				cpn_pkt_fix_csums(in, len);
		}
		run(c, in, len, false);
	}
	/* The campaign went deep: every kind of outcome was reached. */
	assert_true(c->by_outcome[CPN_STAT_REQ_STEERED] > 1000);
	assert_true(c->by_outcome[CPN_STAT_REQ_FRAG] > 10);
	assert_true(c->by_outcome[CPN_STAT_REPLY_FWD] > 100);
	assert_true(c->by_outcome[CPN_STAT_BUSY_FWD] > 10);
	assert_true(c->by_outcome[CPN_STAT_BUSY_SENT] > 10);
	assert_true(c->by_outcome[CPN_STAT_LOAD_LEARNED] > 100);
	assert_true(c->by_outcome[CPN_STAT_PROBE_ACK_LEARNED] > 10);
	assert_true(c->by_outcome[CPN_STAT_DROP_BAD_CSUM] > 10);
	assert_true(c->by_outcome[CPN_STAT_DROP_NODE_AUTH] > 10);
	assert_true(c->by_outcome[CPN_STAT_DROP_AUTH] > 10);
}

/* (c) traffic that is not cpn's: passed untouched, every frame. */
static void test_foreign_traffic_passes_untouched(void **state)
{
	struct campaign *c = *state;
	__u8 in[CPN_PKT_MAX];

	c->phase = "foreign";
	for (int i = 0; i < N_FOREIGN; i++) {
		size_t len = rtp_foreign((int)below(c, RTP_F_KINDS), (__u32)rnd(c), in, sizeof(in));

		assert_true(len >= 14);
		run(c, in, len, true);
	}
}

/* A later fragment of a full-NAT request leaves as its first did: from the
 * router's own address where the first's flow is kept, else (no flow, as
 * in cpn-fwd) from the client's: the node reassembles by source.
 */
static void test_fullnat_later_fragment_goes_as_its_first(void **state)
{
	struct campaign *c = *state;
	__be32 client[4], router[4];
	__u8 in[CPN_PKT_MAX], fam;
	struct cpn_pkt s;
	struct rt_out o;
	struct rtp_view v;
	size_t len;
	__u16 node;

	assert_int_equal(cpn_addr_parse(CPN_PKT_CLIENT4, client, &fam), 0);
	assert_int_equal(cpn_addr_parse(RTP_SRC4, router, &fam), 0);
	fresh_nodes(c);
	for (int with_first = 0; with_first < 2; with_first++) {
		rtp_to_vip(&s, 2);
		s.msg.request_id = 0x7770 + (__u64)with_first;
		node = 1;
		if (with_first) {
			s.msg.flags = CPN_F_FRAG;
			len = cpn_pkt_build(&s, in, sizeof(in));
			rt_run(&c->r, in, len, &o);
			node = cpn_pkt_steered_node(o.buf, o.len);
			assert_true(node == 1 || node == 3);
		}
		s.msg.flags = CPN_F_FRAG | CPN_F_CONT | CPN_F_TAGGED;
		s.msg.node_id = node;
		s.msg.hops = 1;
		s.msg.router_ts = t_now_us();
		s.hop_tag = true;
		memcpy(s.hop_key, rtp_hop_key, sizeof(s.hop_key));
		len = cpn_pkt_build(&s, in, sizeof(in));
		rt_run(&c->r, in, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_int_equal(rt_delta(&o, CPN_STAT_REQ_FRAG), 1);
		assert_int_equal(rtp_locate(o.buf, o.len, &v), 0);
		assert_memory_equal(o.buf + v.saddr, with_first ? router : client, 4);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	}
	read_stats(c, c->stats);
}

/* ---- setup, figures ------------------------------------------------------ */

static int setup(void **state)
{
	struct campaign *c = calloc(1, sizeof(*c));
	const char *env = getenv("CPN_RANDOM_SEED");

	if (!c)
		return -1;
	c->seed = env && *env ? strtoull(env, NULL, 0) : 0x5eed2026cafeULL;
	c->rng = c->seed ? c->seed : 1;
	print_message("# seed 0x%llx (CPN_RANDOM_SEED to change)\n", (unsigned long long)c->seed);
	if (configure(c)) {
		router_close(&c->r);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct campaign *c = *state;
	static const char *const acts[] = {"aborted", "drop", "pass", "tx", "redirect"};

	if (!c)
		return 0;
	print_message("# %llu frames:", (unsigned long long)c->frames);
	for (int a = 0; a <= XDP_REDIRECT; a++)
		print_message(" %s %llu", acts[a], (unsigned long long)c->by_act[a]);
	print_message("\n# by outcome:");
	for (int s = 0; s < CPN_STAT_MAX; s++)
		if (c->by_outcome[s])
			print_message(" %s %llu", cpn_stat_names[s],
				      (unsigned long long)c->by_outcome[s]);
	print_message("\n");
	router_close(&c->r);
	free(c);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_bytes),
	    cmocka_unit_test(test_mutated_cpn_frames),
	    cmocka_unit_test(test_foreign_traffic_passes_untouched),
	    cmocka_unit_test(test_fullnat_later_fragment_goes_as_its_first),
	};

	return cmocka_run_group_tests_name("bpf_router_random", tests, setup, teardown);
}
