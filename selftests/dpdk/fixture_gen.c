// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fixture_gen: the XDP half of the planes-agree fixture.
 *
 *   fixture_gen --config selftests/dpdk/fixture.yaml --out DIR [--pass-out] [--xdp-rng SEED]
 *
 * Builds ~90 frames byte by byte (cpn_pkt_build): LOAD reports, requests (IPv4,
 * IPv6, VLAN, sticky, tagged, signed), replies and BUSY from nodes,
 * admission-refused requests, malformed and non-cpn packets. Runs each, in
 * order, through the real cpn_router.bpf.o under BPF_PROG_TEST_RUN with the
 * maps configured from the same YAML that cpn-fwd reads (cfgmap.c, the
 * conversion cpnctl uses), and writes:
 *
 *   DIR/IN.pcap        every frame, the input of both planes
 *   DIR/EXPECTED.pcap  what the router transmits, in order (see below)
 *   DIR/MANIFEST.tsv   one line per input frame: its verdict, the index of
 *                      its output in EXPECTED.pcap, how to compare it
 *   DIR/NEIGH.args     the --neigh arguments for cpn-fwd
 *
 * No node state is set out of band: both planes learn it from the LOAD
 * reports at the head of IN.pcap.
 *
 * Verdict -> EXPECTED.pcap (cpn-fwd's transmit policy, dpdk/fwd_env.h):
 *   FWD  (request steered, reply/BUSY reverse-NATed): the rewritten frame as
 *        a forwarding hop sends it: TTL/hop limit one less (IPv4 header
 *        checksum recomputed), destination MAC the neighbour's (NEIGH.args).
 *        Under BPF_PROG_TEST_RUN the FIB lookup fails, so XDP returns
 *        XDP_PASS with the packet rewritten and the TTL untouched; the
 *        generator then does the hop's decrement itself, as the XDP program
 *        does when the FIB lookup succeeds. Compared from the Ethernet type
 *        on (VLAN tag included), destination MAC checked, source MAC (the
 *        port's own) not.
 *   TX   (BUSY answered by the router): the trimmed frame as XDP_TX sends
 *        it, compared whole, MACs included (router.h swaps them).
 *   DROP, CONSUME: nothing.
 *   PASS: nothing (cpn-fwd drops PASS without --default-port); with
 *        --pass-out the untouched frame, compared whole.
 * router_ts of a steered request is each plane's own clock (µs): the
 * comparison (pcap_cmp.py) masks it and the UDP checksum, checks both
 * checksums from scratch, and checks that the two clocks differ by one
 * offset across the whole capture.
 *
 * Determinism: the XDP program's RNG is not the test's to seed in general,
 * so no verdict may depend on it: `resnet` is `least` and the generator
 * checks before every fresh choice that the lowest estimated wait is unique
 * (ties are the only place `least` draws); `vsearch` is `maglev`. Replies
 * carry worker_us >= 10 s so that a path sample, whichever clock measures
 * it, is 0 (cpn_path_sample), and PROBE_ACKs come only from `vsearch`
 * nodes, whose path latency no choice reads. --xdp-rng SEED seeds the XDP
 * program's generator (cpn_stats): the test runs two seeds and requires the same output.
 *
 * Every frame carries the verdict (and node) the fixture intends; any
 * disagreement of the XDP program is an error (exit 1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cpn/siphash.h"
#include "cpn_router.skel.h"
#include "cpn_addr.h"
#include "cpn_test.h"
#include "cpn_cfg.h"

enum kind { K_PASS, K_DROP, K_CONSUME, K_FWD, K_TX };
static const char *const kind_names[] = {"pass", "drop", "consume", "fwd", "tx"};

#define SVC_LEAST      1
#define SVC_MAGLEV     2
#define CLIENT4_B      "10.0.0.2"
#define CLIENT6_B      "fd00::2"
#define ROUTER_MAC_SRC "02:00:00:00:00:fe"

struct gen {
	struct router r;
	struct cpn_cfg cfg;
	FILE *in, *exp, *man;
	int n_in, n_exp, errors;
	bool pass_out;
	__u32 ts_usec;
};

/* ---- pcap, by hand ---------------------------------------------------- */

static void pcap_header(FILE *f)
{
	struct {
		__u32 magic;
		__u16 major, minor;
		__s32 thiszone;
		__u32 sigfigs, snaplen, linktype;
	} h = {0xa1b2c3d4, 2, 4, 0, 0, 65535, 1 /* LINKTYPE_ETHERNET */};

	fwrite(&h, sizeof(h), 1, f);
}

static void pcap_record(FILE *f, __u32 usec_total, const __u8 *buf, size_t len)
{
	__u32 rec[4] = {1700000000u + usec_total / 1000000u, usec_total % 1000000u, (__u32)len,
			(__u32)len};

	fwrite(rec, sizeof(rec), 1, f);
	fwrite(buf, 1, len, f);
}

/* ---- frames ------------------------------------------------------------ */

static void neigh_mac(const char *ip, char *out, size_t len)
{
	__be32 a[4];
	__u8 fam;
	int last;

	/* Nodes 10.1.0.N / fd01::N: 02:00:00:00:01:N; clients: 02:00:00:00:00:N. */
	if (cpn_addr_parse(ip, a, &fam)) {
		snprintf(out, len, "-");
		return;
	}
	last = fam == CPN_AF_INET ? (int)(ntohl(a[0]) & 0xff) : (int)(ntohl(a[3]) & 0xff);
	if (fam == CPN_AF_INET ? (ntohl(a[0]) >> 8) == 0x0a0100 : ntohl(a[0]) == 0xfd010000)
		snprintf(out, len, "02:00:00:00:01:%02x", last);
	else
		snprintf(out, len, "02:00:00:00:00:%02x", last);
}

static void parse_mac(const char *s, __u8 mac[6])
{
	if (cpn_mac_parse(s, mac)) {
		fprintf(stderr, "fixture_gen: bad MAC %s\n", s);
		exit(1);
	}
}

/* The destination address of a located frame, as text. */
static void dst_text(const __u8 *buf, const struct cpn_pkt_view *v, char *out, size_t len)
{
	if (v->family == CPN_AF_INET)
		inet_ntop(AF_INET, buf + v->l3 + 16, out, (socklen_t)len);
	else
		inet_ntop(AF_INET6, buf + v->l3 + 24, out, (socklen_t)len);
}

/* The forwarding hop's TTL / hop-limit decrement, checksum from scratch. */
static void hop_decrement(__u8 *buf, const struct cpn_pkt_view *v)
{
	if (v->family == CPN_AF_INET) {
		__u32 acc = 0;

		buf[v->l3 + 8]--;
		buf[v->l3 + 10] = buf[v->l3 + 11] = 0;
		for (int i = 0; i < 20; i += 2)
			acc += (__u32)(buf[v->l3 + i] << 8 | buf[v->l3 + i + 1]);
		while (acc >> 16)
			acc = (acc & 0xffff) + (acc >> 16);
		acc = ~acc & 0xffff;
		buf[v->l3 + 10] = (__u8)(acc >> 8);
		buf[v->l3 + 11] = (__u8)acc;
	} else {
		buf[v->l3 + 7]--;
	}
}

/* est_us of sched.h, restated (the policy's input read from cpn_node_state). */
static __u64 est_us(const struct cpn_node *n)
{
	__u64 cap = n->capacity ? n->capacity : 1, w = n->weight ? n->weight : 100;
	__u64 svc = n->svc_us ? n->svc_us : 1;

	return n->path_us +
	       ((__u64)n->queue_depth + n->inflight + n->outstanding + 1) * svc * 100 / (cap * w);
}

/* Before a fresh `least` choice: the minimum must be unique, else the
 * choice would depend on the RNG (cpn_least scans from a random start).
 */
static int check_no_tie(struct gen *g, const char *label)
{
	const struct cfg_service *s = cpn_cfg_service(&g->cfg, SVC_LEAST);
	__u64 best = ~0ULL;
	int at_best = 0;

	for (int i = 0; s && i < s->n_nodes; i++) {
		const struct cpn_node *n = &g->r.maps.state[s->nodes[i]];
		__u64 e;

		if (!(n->admin & CPN_ADMIN_UP) || (n->admin & CPN_ADMIN_DRAIN) ||
		    (n->report_flags & CPN_REP_DRAINING) || !n->last_report_ns)
			continue;
		e = est_us(n);
		if (e < best) {
			best = e;
			at_best = 1;
		} else if (e == best) {
			at_best++;
		}
	}
	if (at_best > 1) {
		fprintf(stderr, "fixture_gen: %s: %d nodes tie at est_us %llu: RNG-dependent\n",
			label, at_best, (unsigned long long)best);
		g->errors++;
		return -1;
	}
	return 0;
}

/* Run one frame through XDP, check the intended verdict, record it. */
static void emit(struct gen *g, const char *label, const __u8 *frame, size_t len, enum kind want,
		 __u16 want_node, bool fresh_least)
{
	__u64 before[CPN_STAT_MAX], after[CPN_STAT_MAX];
	__u8 out[CPN_PKT_MAX];
	size_t out_len = sizeof(out);
	struct cpn_pkt_view v;
	enum kind got;
	__u16 node = 0;
	char dmac[32] = "-", dst[64];
	const char *l2 = "full";
	int act, exp_idx = -1;

	if (fresh_least)
		check_no_tie(g, label);
	g->n_in++;
	g->ts_usec += 1000;
	pcap_record(g->in, g->ts_usec, frame, len);

	router_stats(&g->r, before);
	act = router_run(&g->r, frame, len, out, &out_len);
	router_stats(&g->r, after);
#define D(s) (after[CPN_STAT_##s] - before[CPN_STAT_##s])
	if (act < 0) {
		fprintf(stderr, "fixture_gen: %s: BPF_PROG_TEST_RUN: %s\n", label, strerror(errno));
		g->errors++;
		return;
	}
	if (D(REQ_STEERED) || D(REPLY_FWD) || D(BUSY_FWD))
		got = K_FWD;
	else if (D(BUSY_SENT) && act == XDP_TX)
		got = K_TX;
	else if (act == XDP_DROP && (D(LOAD_LEARNED) || D(PROBE_ACK_LEARNED)))
		got = K_CONSUME;
	else if (act == XDP_DROP)
		got = K_DROP;
	else if (act == XDP_PASS)
		got = K_PASS;
	else
		got = K_DROP; /* XDP_TX/REDIRECT of anything else: reported below */

	if (got == K_FWD) {
		if (cpn_pkt_locate(out, out_len, &v)) {
			fprintf(stderr, "fixture_gen: %s: forwarded frame unparsable\n", label);
			g->errors++;
			return;
		}
		if (D(REQ_STEERED))
			node = cpn_pkt_steered_node(out, out_len);
		/* XDP_PASS: FIB lookup failed (no ingress device under test run),
		 * the kernel would forward: do the hop's decrement. XDP_TX /
		 * REDIRECT (a route here): the program did it.
		 */
		if (D(TX_KERNEL))
			hop_decrement(out, &v);
		dst_text(out, &v, dst, sizeof(dst));
		neigh_mac(dst, dmac, sizeof(dmac));
		parse_mac(dmac, out);
		parse_mac(ROUTER_MAC_SRC, out + 6);
		l2 = "l3";
		if (!cpn_pkt_csum_ok(out, out_len)) {
			fprintf(stderr, "fixture_gen: %s: forwarded frame has bad checksums\n",
				label);
			g->errors++;
		}
	}
	if (got == K_TX && !cpn_pkt_csum_ok(out, out_len)) {
		fprintf(stderr, "fixture_gen: %s: BUSY frame has bad checksums\n", label);
		g->errors++;
	}
	if (got != want || (want == K_FWD && want_node && node != want_node)) {
		fprintf(stderr,
			"fixture_gen: frame %d (%s): XDP verdict %s (action %d) node %u, fixture "
			"intends %s node %u\n",
			g->n_in, label, kind_names[got], act, node, kind_names[want], want_node);
		g->errors++;
	}
	if (got == K_FWD || got == K_TX || (got == K_PASS && g->pass_out)) {
		exp_idx = ++g->n_exp;
		pcap_record(g->exp, g->ts_usec, out, out_len);
	}
	fprintf(g->man, "%d\t%d\t%s\t%u\t%s\t%s\t%s\n", g->n_in, exp_idx, kind_names[got], node, l2,
		dmac, label);
#undef D
}

static void emit_spec(struct gen *g, const char *label, const struct cpn_pkt *s, enum kind want,
		      __u16 want_node, bool fresh_least)
{
	__u8 buf[CPN_PKT_MAX];
	size_t len = cpn_pkt_build(s, buf, sizeof(buf));

	if (!len) {
		fprintf(stderr, "fixture_gen: %s: cpn_pkt_build failed\n", label);
		g->errors++;
		return;
	}
	emit(g, label, buf, len, want, want_node, fresh_least);
}

/* ---- the fixture's specs ------------------------------------------------ */

static const __u64 *node_key(struct gen *g, __u16 id)
{
	const struct cfg_node *n = cpn_cfg_node(&g->cfg, id);

	return n && n->has_key ? n->key : NULL;
}

static void load_spec(struct gen *g, struct cpn_pkt *s, __u16 id, __u16 queue, __u16 inflight,
		      __u16 cap, __u32 svc_us)
{
	const __u64 *k = node_key(g, id);

	cpn_pkt_load(s, id >= 4 ? CPN_AF_INET6 : CPN_AF_INET, id);
	s->msg.queue_depth = queue;
	s->msg.inflight = inflight;
	s->msg.capacity = cap;
	s->msg.util = (__u8)(queue * 3);
	s->msg.worker_us = svc_us;
	if (k) {
		s->auth = true;
		s->key[0] = k[0];
		s->key[1] = k[1];
	}
}

static void load(struct gen *g, const char *label, __u16 id, __u16 queue, __u16 inflight, __u16 cap,
		 __u32 svc_us)
{
	struct cpn_pkt s;

	load_spec(g, &s, id, queue, inflight, cap, svc_us);
	emit_spec(g, label, &s, K_CONSUME, 0, false);
}

static __u8 payload[1024];

/* A TAGGED request as a router of the fleet left it: its hop tag under the
 * fixture's hop key.
 */
static void hop_tag(const struct gen *g, struct cpn_pkt *s)
{
	s->hop_tag = true;
	s->hop_key[0] = g->cfg.hop_key[0];
	s->hop_key[1] = g->cfg.hop_key[1];
}

static void req_spec(struct cpn_pkt *s, int family, __u16 sport, __u64 rid, size_t plen)
{
	cpn_pkt_default(s, family);
	s->msg.service_id = family == CPN_AF_INET ? SVC_LEAST : SVC_MAGLEV;
	s->sport = sport;
	s->msg.request_id = rid;
	s->msg.class = (__u8)(rid & 7);
	s->payload = payload;
	s->payload_len = plen;
}

static void reply_spec(struct gen *g, struct cpn_pkt *s, __u16 id, __u64 rid, __u16 queue,
		       size_t plen)
{
	const __u64 *k = node_key(g, id);

	cpn_pkt_reply(s, id >= 4 ? CPN_AF_INET6 : CPN_AF_INET, id);
	s->msg.service_id = id >= 4 ? SVC_MAGLEV : SVC_LEAST;
	s->msg.request_id = rid;
	s->msg.router_ts = 0x12345678;
	s->msg.queue_depth = queue;
	s->msg.inflight = 1;
	s->msg.capacity = 1;
	/* >= CPN_PATH_MAX_US: any path sample, on any clock, is 0. */
	s->msg.worker_us = 0xffffffffu;
	s->payload = payload + 7;
	s->payload_len = plen;
	if (k) {
		s->auth = true;
		s->key[0] = k[0];
		s->key[1] = k[1];
	}
}

/* A frame from raw bytes: Ethernet header + what follows. */
static size_t raw_frame(__u8 *buf, __u16 ethertype, const __u8 *l3, size_t l3_len)
{
	static const __u8 hdr[12] = {2, 0, 0, 0, 0, 0xfe, 2, 0, 0, 0, 0, 1};

	memcpy(buf, hdr, 12);
	buf[12] = (__u8)(ethertype >> 8);
	buf[13] = (__u8)ethertype;
	memcpy(buf + 14, l3, l3_len);
	return 14 + l3_len;
}

static void gen_all(struct gen *g)
{
	struct cpn_pkt s;
	struct cpn_pkt_view v;
	__u8 buf[CPN_PKT_MAX];
	size_t len;
	const __u64 *tkey = cpn_cfg_tenant(&g->cfg, 43)->key;

	cpn_pkt_fill(payload, sizeof(payload), 5);

	/* 1. The fleet reports in: both planes learn the same state. Service
	 * times are distinct primes: no two estimated waits tie.
	 */
	load(g, "load n1 q2", 1, 2, 0, 1, 1009);
	load(g, "load n2 q0", 2, 0, 0, 1, 1013);
	load(g, "load n3 q1 signed", 3, 1, 0, 1, 1019);
	load(g, "load n4 v6", 4, 0, 1, 2, 500);
	load(g, "load n5 v6", 5, 3, 0, 4, 700);
	load_spec(g, &s, 3, 0, 0, 1, 1);
	s.auth = false;
	emit_spec(g, "load n3 unsigned (spoofed)", &s, K_DROP, 0, false);
	load_spec(g, &s, 9, 0, 0, 1, 100);
	emit_spec(g, "load from unknown node 9 (join)", &s, K_PASS, 0, false);
	load_spec(g, &s, 1, 5, 0, 1, 1009);
	s.msg.type = CPN_T_REPLY;
	emit_spec(g, "reply-typed report to control port", &s, K_PASS, 0, false);

	/* 2. Requests to `least` (IPv4). est: n1 3*1009, n2 1013, n3 2*1019. */
	req_spec(&s, CPN_AF_INET, 40000, 1, 0);
	emit_spec(g, "v4 request", &s, K_FWD, 2, true);
	req_spec(&s, CPN_AF_INET, 40001, 2, 64);
	emit_spec(g, "v4 request 64B payload", &s, K_FWD, 2, true);
	req_spec(&s, CPN_AF_INET, 40002, 3, 300);
	s.vlan = 100;
	emit_spec(g, "v4 request vlan 100", &s, K_FWD, 3, true);
	req_spec(&s, CPN_AF_INET, 40003, 4, 17);
	s.udp_csum_zero = true;
	emit_spec(g, "v4 request no udp csum", &s, K_FWD, 1, true);
	req_spec(&s, CPN_AF_INET, 40004, 5, 0);
	s.src = CLIENT4_B;
	s.msg.session_key = 77;
	s.msg.flags = CPN_F_STICKY;
	emit_spec(g, "v4 sticky session 77 first", &s, K_FWD, 2, true);
	req_spec(&s, CPN_AF_INET, 40004, 6, 0);
	s.src = CLIENT4_B;
	s.msg.session_key = 77;
	s.msg.flags = CPN_F_STICKY;
	emit_spec(g, "v4 sticky session 77 again", &s, K_FWD, 2, false);
	req_spec(&s, CPN_AF_INET, 40005, 7, 8);
	s.msg.session_key = 78; /* a session key without STICKY: no affinity */
	emit_spec(g, "v4 session key, not sticky", &s, K_FWD, 3, true);
	req_spec(&s, CPN_AF_INET, 40006, 8, 0);
	s.msg.flags = CPN_F_TAGGED;
	hop_tag(g, &s);
	s.msg.node_id = 1;
	s.msg.hops = 1;
	emit_spec(g, "v4 tagged for live n1 (honoured)", &s, K_FWD, 1, false);
	req_spec(&s, CPN_AF_INET, 40007, 9, 0);
	s.msg.flags = CPN_F_TAGGED;
	hop_tag(g, &s);
	s.msg.node_id = 4; /* a node of the other service */
	s.msg.hops = 2;
	emit_spec(g, "v4 tagged for n4 of vsearch (resteered)", &s, K_FWD, 3, true);
	req_spec(&s, CPN_AF_INET, 40008, 10, 0);
	s.msg.flags = CPN_F_TAGGED;
	hop_tag(g, &s);
	s.msg.node_id = 9;
	s.msg.hops = 3;
	emit_spec(g, "v4 tagged for unknown n9 (resteered)", &s, K_FWD, 1, true);
	req_spec(&s, CPN_AF_INET, 40009, 11, 40);
	s.msg.tenant_id = 43;
	s.auth = true;
	s.key[0] = tkey[0];
	s.key[1] = tkey[1];
	emit_spec(g, "v4 signed request tenant 43", &s, K_FWD, 2, true);
	req_spec(&s, CPN_AF_INET, 40010, 12, 0);
	s.msg.tenant_id = 43;
	emit_spec(g, "v4 unsigned request tenant 43", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40011, 13, 0);
	s.msg.tenant_id = 43;
	s.auth = true;
	s.key[0] = tkey[0] ^ 1;
	s.key[1] = tkey[1];
	emit_spec(g, "v4 request tenant 43 bad tag", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40012, 14, 0);
	s.msg.tenant_id = 44;
	emit_spec(g, "v4 request tenant 44 not allowed", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40013, 15, 0);
	s.msg.tenant_id = 999;
	emit_spec(g, "v4 request unknown tenant", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40014, 16, 0);
	s.msg.hops = 4;
	emit_spec(g, "v4 request hops at max", &s, K_DROP, 0, false);

	/* 3. Requests to `maglev` (IPv6). */
	for (int i = 0; i < 5; i++) {
		static const __u16 want[5] = {5, 4, 4, 4, 5}; /* the flows' Maglev entries */
		char label[64];

		req_spec(&s, CPN_AF_INET6, (__u16)(41000 + i * 7), (__u64)(100 + i),
			 (size_t)(i * 50));
		s.vlan = i == 2 ? 200 : 0;
		s.msg.tenant_id = i == 4 ? 44 : 42;
		snprintf(label, sizeof(label), "v6 request maglev %d%s", i,
			 i == 2 ? " vlan 200" : "");
		emit_spec(g, label, &s, K_FWD, want[i], false);
	}
	req_spec(&s, CPN_AF_INET6, 41100, 110, 0);
	s.msg.session_key = 5;
	s.msg.flags = CPN_F_STICKY;
	emit_spec(g, "v6 sticky session 5", &s, K_FWD, 5, false);
	req_spec(&s, CPN_AF_INET6, 41100, 111, 0);
	s.msg.tenant_id = 43;
	emit_spec(g, "v6 request tenant 43 not allowed", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET6, 41101, 112, 0);
	s.msg.service_id = SVC_LEAST;
	emit_spec(g, "v6 request with resnet's service id", &s, K_DROP, 0, false);

	/* 4. Replies and node BUSY: learned, reverse-NATed to the VIP. */
	reply_spec(g, &s, 2, 1, 1, 32);
	emit_spec(g, "reply n2", &s, K_FWD, 0, false);
	reply_spec(g, &s, 3, 3, 0, 100);
	s.vlan = 100;
	emit_spec(g, "reply n3 signed vlan 100", &s, K_FWD, 0, false);
	reply_spec(g, &s, 3, 7, 0, 0);
	s.auth = false;
	emit_spec(g, "reply n3 unsigned", &s, K_DROP, 0, false);
	reply_spec(g, &s, 1, 4, 0, 0);
	s.dst = CLIENT4_B;
	s.dport = 40004;
	emit_spec(g, "reply n1 to client b", &s, K_FWD, 0, false);
	reply_spec(g, &s, 4, 100, 2, 250);
	emit_spec(g, "reply n4 v6", &s, K_FWD, 0, false);
	reply_spec(g, &s, 2, 2, 1, 0);
	s.msg.type = CPN_T_BUSY;
	s.msg.status = CPN_BUSY_OVERLOAD;
	emit_spec(g, "busy from n2", &s, K_FWD, 0, false);
	reply_spec(g, &s, 1, 5, 0, 0);
	s.sport = 7999;
	emit_spec(g, "reply n1 from wrong port", &s, K_PASS, 0, false);
	reply_spec(g, &s, 1, 5, 0, 0);
	s.src = "10.1.0.77";
	emit_spec(g, "reply from unknown address", &s, K_PASS, 0, false);
	cpn_pkt_load(&s, CPN_AF_INET6, 5);
	s.msg.type = CPN_T_PROBE_ACK;
	s.msg.queue_depth = 3;
	s.msg.capacity = 4;
	s.msg.worker_us = 700;
	s.msg.router_ts = 0x01020304;
	/* A PROBE_ACK is learned only within a second of its PROBE, a time
	 * that differs for the two planes: this one is of neither's.
	 */
	emit_spec(g, "probe_ack n5 v6 (no PROBE of ours)", &s, K_DROP, 0, false);

	/* After the replies: n1 q0 o0 -> 1009, n2 q1 -> 2026, n3 q0 -> 1019. */
	req_spec(&s, CPN_AF_INET, 40020, 20, 0);
	emit_spec(g, "v4 request after replies", &s, K_FWD, 1, true);
	req_spec(&s, CPN_AF_INET, 40021, 21, 0);
	emit_spec(g, "v4 request after replies 2", &s, K_FWD, 3, true);
	req_spec(&s, CPN_AF_INET, 40004, 22, 0);
	s.src = CLIENT4_B;
	s.msg.session_key = 77;
	s.msg.flags = CPN_F_STICKY;
	emit_spec(g, "v4 sticky session 77 later", &s, K_FWD, 2, false);

	/* 5. Admission: loaded fleet -> BUSY (wait), full queues -> BUSY (queue). */
	load(g, "load n1 q40", 1, 40, 0, 1, 1009);
	load(g, "load n2 q40", 2, 40, 1, 1, 1013);
	load(g, "load n3 q41", 3, 41, 0, 1, 1019);
	req_spec(&s, CPN_AF_INET, 40030, 30, 200);
	emit_spec(g, "v4 request: fleet too slow (busy wait)", &s, K_TX, 0, true);
	req_spec(&s, CPN_AF_INET, 40031, 31, 0);
	s.vlan = 100;
	s.msg.tenant_id = 43;
	s.auth = true;
	s.key[0] = tkey[0];
	s.key[1] = tkey[1];
	emit_spec(g, "v4 signed request vlan: busy wait", &s, K_TX, 0, true);
	load(g, "load n1 q70", 1, 70, 0, 1, 1009);
	load(g, "load n2 q64", 2, 64, 0, 1, 1013);
	load(g, "load n3 q65", 3, 65, 0, 1, 1019);
	req_spec(&s, CPN_AF_INET, 40032, 32, 10);
	s.udp_csum_zero = true;
	emit_spec(g, "v4 request: queues full (busy queue)", &s, K_TX, 0, true);
	load(g, "load n1 q0", 1, 0, 0, 1, 1009);
	load(g, "load n2 q0", 2, 0, 0, 1, 1013);
	/* node 3 says DRAINING in its report: not live until it says otherwise */
	load_spec(g, &s, 3, 0, 0, 1, 1019);
	s.msg.flags = CPN_F_DRAINING;
	emit_spec(g, "load n3 draining", &s, K_CONSUME, 0, false);
	req_spec(&s, CPN_AF_INET, 40040, 40, 0);
	emit_spec(g, "v4 request, n3 draining", &s, K_FWD, 1, true);
	req_spec(&s, CPN_AF_INET, 40041, 41, 0);
	emit_spec(g, "v4 request, n3 draining 2", &s, K_FWD, 2, true);
	req_spec(&s, CPN_AF_INET, 40042, 42, 0);
	s.msg.flags = CPN_F_TAGGED;
	hop_tag(g, &s);
	s.msg.node_id = 3;
	s.msg.hops = 1;
	emit_spec(g, "v4 tagged for draining n3 (resteered)", &s, K_FWD, 1, true);

	/* 6. Malformed requests to the VIP: dropped. */
	req_spec(&s, CPN_AF_INET, 40050, 50, 0);
	s.with_hdr = false;
	s.payload_len = 20;
	emit_spec(g, "v4 to VIP: short cpn header", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40051, 51, 0);
	s.msg.magic = 0x4351;
	emit_spec(g, "v4 to VIP: bad magic", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET6, 40052, 52, 0);
	s.msg.version = 2;
	emit_spec(g, "v6 to VIP: bad version", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40053, 53, 0);
	s.msg.type = CPN_T_REPLY;
	emit_spec(g, "v4 to VIP: reply type", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40054, 54, 0);
	s.msg.type = 9;
	emit_spec(g, "v4 to VIP: unknown type", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40055, 55, 0);
	s.msg.service_id = SVC_MAGLEV;
	emit_spec(g, "v4 to VIP: service id of another VIP", &s, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40056, 56, 0);
	s.auth = true; /* AUTH flag, tag cut off below */
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	buf[v.l4 + 4] = 0;
	buf[v.l4 + 5] = 8 + CPN_HDR_LEN;
	buf[v.l3 + 2] = 0;
	buf[v.l3 + 3] = 20 + 8 + CPN_HDR_LEN;
	len = v.pay + CPN_HDR_LEN;
	cpn_pkt_fix_csums(buf, len);
	emit(g, "v4 to VIP: AUTH flag without tag", buf, len, K_DROP, 0, false);
	/* Lengths that lie. */
	req_spec(&s, CPN_AF_INET, 40057, 57, 16);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	buf[v.l3 + 3] += 40; /* IP total length beyond the frame */
	cpn_pkt_fix_csums(buf, len);
	emit(g, "v4 to VIP: ip tot_len beyond frame", buf, len, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET, 40058, 58, 16);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	buf[v.l4 + 5] += 30; /* UDP length beyond the IP datagram */
	emit(g, "v4 to VIP: udp len beyond ip", buf, len, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET6, 40059, 59, 16);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	buf[v.l3 + 5] += 100; /* payload length beyond the frame */
	emit(g, "v6 to VIP: payload_len beyond frame", buf, len, K_DROP, 0, false);
	req_spec(&s, CPN_AF_INET6, 40060, 60, 16);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	buf[v.l4 + 4] = 0;
	buf[v.l4 + 5] = 4; /* UDP length below its header */
	emit(g, "v6 to VIP: udp len 4", buf, len, K_DROP, 0, false);
	/* Not ours to judge: passed. */
	req_spec(&s, CPN_AF_INET, 40061, 61, 0);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	memmove(buf + v.l4 + 4, buf + v.l4, len - v.l4); /* IPv4 option: 4 x NOP */
	memset(buf + v.l4, 1, 4);
	len += 4;
	buf[v.l3] = 0x46;
	buf[v.l3 + 3] += 4;
	cpn_pkt_fix_csums(buf, len);
	emit(g, "v4 to VIP with IP options", buf, len, K_PASS, 0, false);
	req_spec(&s, CPN_AF_INET, 40062, 62, 0);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	buf[v.l3 + 6] = 0x20; /* MF */
	cpn_pkt_fix_csums(buf, len);
	emit(g, "v4 to VIP first fragment", buf, len, K_PASS, 0, false);
	req_spec(&s, CPN_AF_INET, 40063, 63, 0);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	buf[v.l3 + 7] = 0x10; /* offset 128 bytes */
	cpn_pkt_fix_csums(buf, len);
	emit(g, "v4 to VIP later fragment", buf, len, K_PASS, 0, false);
	req_spec(&s, CPN_AF_INET6, 40064, 64, 0);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	memmove(buf + v.l4 + 8, buf + v.l4, len - v.l4); /* fragment header */
	memset(buf + v.l4, 0, 8);
	buf[v.l4] = 17;	      /* next header UDP */
	buf[v.l4 + 3] = 1;    /* M flag */
	buf[v.l4 + 7] = 0x2a; /* identification */
	len += 8;
	buf[v.l3 + 6] = 44;
	buf[v.l3 + 5] += 8;
	emit(g, "v6 to VIP fragment header", buf, len, K_PASS, 0, false);
	req_spec(&s, CPN_AF_INET, 40065, 65, 0);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	emit(g, "v4 truncated in the IP header", buf, 14 + 12, K_PASS, 0, false);
	emit(g, "v4 truncated in the UDP header", buf, 14 + 20 + 4, K_PASS, 0, false);
	{
		static const __u8 tci[2] = {0, 100}; /* the inner type is missing */

		len = raw_frame(buf, 0x8100, tci, sizeof(tci));
		emit(g, "vlan tag cut short", buf, len, K_PASS, 0, false);
	}
	/* IP tot_len beyond the frame, not to a VIP: the host's business. */
	reply_spec(g, &s, 9, 70, 0, 0);
	len = cpn_pkt_build(&s, buf, sizeof(buf));
	cpn_pkt_locate(buf, len, &v);
	buf[v.l3 + 3] += 40;
	cpn_pkt_fix_csums(buf, len);
	emit(g, "v4 lying length not to a VIP", buf, len, K_PASS, 0, false);

	/* 7. Not cpn at all. */
	{
		static const __u8 arp[28] = {0,	 1, 8, 0, 6, 4, 0, 1, 2, 0, 0,	0, 0, 1,
					     10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 254};
		__u8 icmp[28] = {0x45, 0, 0,  28, 0, 1,	  0, 0, 64, 1, 0, 0, 10, 0,
				 0,    1, 10, 0,  0, 100, 8, 0, 0,  0, 0, 7, 0,	 1};
		__u8 tcp[40] = {0x45, 0, 0,  40, 0,    2,    0x40, 0,	 64,   6,    0, 0, 10, 0,
				0,    1, 10, 0,	 0,    100,  0x9c, 0x40, 0x1d, 0x2e, 0, 0, 0,  1,
				0,    0, 0,  0,	 0x50, 0x02, 0xff, 0xff, 0,    0,    0, 0};

		len = raw_frame(buf, 0x0806, arp, sizeof(arp));
		memset(buf, 0xff, 6);
		emit(g, "arp who-has", buf, len, K_PASS, 0, false);
		len = raw_frame(buf, 0x0800, icmp, sizeof(icmp));
		cpn_pkt_fix_csums(buf, len); /* not UDP: left as is */
		emit(g, "icmp echo to VIP", buf, len, K_PASS, 0, false);
		len = raw_frame(buf, 0x0800, tcp, sizeof(tcp));
		emit(g, "tcp syn to VIP:7470", buf, len, K_PASS, 0, false);
	}
	cpn_pkt_default(&s, CPN_AF_INET);
	s.with_hdr = false;
	s.dst = "10.0.0.53";
	s.dport = 53;
	s.payload = (const __u8 *)"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07"
				  "example\x03org\x00\x00\x01\x00\x01";
	s.payload_len = 33;
	emit_spec(g, "dns query", &s, K_PASS, 0, false);
	cpn_pkt_default(&s, CPN_AF_INET6);
	s.with_hdr = false;
	s.dport = 7470; /* VIP port of the other family's VIP address: not a VIP */
	s.dst = "fd00::101";
	s.payload = payload;
	s.payload_len = 60;
	emit_spec(g, "v6 udp to a non-VIP", &s, K_PASS, 0, false);
	req_spec(&s, CPN_AF_INET, 40070, 70, 0);
	s.dport = 7472;
	emit_spec(g, "cpn request to VIP address, wrong port", &s, K_PASS, 0, false);

	/* 8. The fleet recovers: steering resumes where the state says. */
	load(g, "load n3 q0 back", 3, 0, 0, 1, 1019);
	for (int i = 0; i < 6; i++) {
		static const __u16 want[6] = {3, 2, 3, 1, 2, 3};
		char label[64];

		req_spec(&s, CPN_AF_INET, (__u16)(42000 + i), (__u64)(200 + i), (size_t)(i * 33));
		s.vlan = i == 3 ? 300 : 0;
		snprintf(label, sizeof(label), "v4 request tail %d", i);
		emit_spec(g, label, &s, K_FWD, want[i], true);
	}
	req_spec(&s, CPN_AF_INET6, 41100, 120, 0);
	s.msg.session_key = 5;
	s.msg.flags = CPN_F_STICKY;
	emit_spec(g, "v6 sticky session 5 again", &s, K_FWD, 5, false);
}

/* The same seed for the XDP program's per-CPU generator on every CPU. */
static int seed_xdp_rng(struct gen *g, __u64 seed)
{
	return cpn_maps_seed_rng(&g->r.maps, seed);
}

static int configure(struct gen *g)
{
	struct cpn_config c = {0};
	int rc;

	c.control_port = htons(g->cfg.control_port);
	c.max_hops = g->cfg.max_hops;
	c.nh_ttl_ms = g->cfg.nh_ttl_ms;
	c.fresh_ms = g->cfg.freshness_ms;
	c.hop_key[0] = g->cfg.hop_key[0];
	c.hop_key[1] = g->cfg.hop_key[1];
	if ((rc = cpn_maps_set_config(&g->r.maps, &c)))
		return rc;
	for (int i = 0; i < g->cfg.n_nodes; i++) {
		struct cpn_node_cfg nc;
		__u32 admin;

		cpn_cfg_to_node(&g->cfg.nodes[i], &nc, &admin);
		if ((rc = cpn_maps_set_node(&g->r.maps, g->cfg.nodes[i].id, &nc,
					    g->cfg.nodes[i].weight, admin)))
			return rc;
	}
	for (int i = 0; i < g->cfg.n_services; i++) {
		struct cpn_service s;

		cpn_cfg_to_service(&g->cfg, &g->cfg.services[i], &s);
		if ((rc = cpn_maps_set_service(&g->r.maps, g->cfg.services[i].id, &s)))
			return rc;
	}
	for (int i = 0; i < g->cfg.n_tenants; i++) {
		struct cpn_tenant t;

		cpn_cfg_to_tenant(&g->cfg.tenants[i], &t);
		if ((rc = cpn_maps_set_tenant(&g->r.maps, g->cfg.tenants[i].id, &t)))
			return rc;
	}
	return 0;
}

static FILE *open_out(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "fixture_gen: %s: %s\n", path, strerror(errno));
	return f;
}

static void write_neigh(const char *dir)
{
	static const char *const ips[] = {"10.1.0.1", "10.1.0.2", "10.1.0.3", "fd01::4",
					  "fd01::5",  T_CLIENT4,  CLIENT4_B,  T_CLIENT6};
	FILE *f = open_out(dir, "NEIGH.args");
	char mac[32];

	if (!f)
		return;
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		neigh_mac(ips[i], mac, sizeof(mac));
		fprintf(f, "--neigh %s=%s\n", ips[i], mac);
	}
	fclose(f);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fixture_gen --config FILE --out DIR [--pass-out] [--xdp-rng SEED]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, 0, 'c'},
					     {"out", required_argument, 0, 'o'},
					     {"pass-out", no_argument, 0, 'p'},
					     {"xdp-rng", required_argument, 0, 'r'},
					     {0, 0, 0, 0}};
	const char *config = NULL, *dir = NULL;
	struct gen g = {0};
	struct cpn_err err;
	bool rng = false;
	__u64 seed = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'o':
			dir = optarg;
			break;
		case 'p':
			g.pass_out = true;
			break;
		case 'r':
			rng = true;
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (!config || !dir)
		usage();
	if (cpn_cfg_load(config, &g.cfg, &err)) {
		fprintf(stderr, "fixture_gen: %s\n", err.msg);
		return 1;
	}
	if (!cpn_cfg_tenant(&g.cfg, 43) || !cpn_cfg_service(&g.cfg, SVC_LEAST) ||
	    !cpn_cfg_service(&g.cfg, SVC_MAGLEV)) {
		fprintf(stderr, "fixture_gen: %s lacks tenant 43 or services 1, 2\n", config);
		return 1;
	}
	mkdir(dir, 0755);
	if (router_open(&g.r))
		return 1;
	if (configure(&g) || (rng && seed_xdp_rng(&g, seed))) {
		fprintf(stderr, "fixture_gen: cannot configure the maps: %s\n", strerror(errno));
		return 1;
	}
	g.in = open_out(dir, "IN.pcap");
	g.exp = open_out(dir, "EXPECTED.pcap");
	g.man = open_out(dir, "MANIFEST.tsv");
	if (!g.in || !g.exp || !g.man)
		return 1;
	pcap_header(g.in);
	pcap_header(g.exp);
	fprintf(g.man, "# in\texpected\tverdict\tnode\tcompare\tdmac\tlabel\n");
	gen_all(&g);
	write_neigh(dir);
	fclose(g.in);
	fclose(g.exp);
	fclose(g.man);
	router_close(&g.r);
	cpn_cfg_free(&g.cfg);
	printf("fixture_gen: %d frames in, %d expected out, %d errors\n", g.n_in, g.n_exp,
	       g.errors);
	return g.errors ? 1 : 0;
}
