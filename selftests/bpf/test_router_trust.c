// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What the router trusts, through BPF_PROG_TEST_RUN of the real
 * cpn_router.bpf.o (docs/PROTOCOL.md, "Freshness, hop tags and cookies"):
 *   - checksums: a LOAD, PROBE_ACK, or small REPLY/BUSY with a wrong IPv4
 *     header or UDP checksum (IPv6: also none) is dropped unlearned;
 *   - hop tags: a steered request carries the hop tag; a TAGGED request
 *     is honoured only with a valid one (else chosen anew, counted), and
 *     admission (ACL, rate) applies to it as to any;
 *   - probe cookies: a PROBE_ACK is learned only with the cookie of its
 *     node and time, younger than CPN_PROBE_MAX_AGE_US;
 *   - freshness: a keyed tenant's or node's message without FRESH, with a
 *     stamp outside the window, or seen before, is refused; the next key
 *     is accepted while a key rotates; a large request's later fragments
 *     are not taken for replays;
 *   - reply binding (reply_check): a reply is relayed and learned from only
 *     from the node its request went to, to that request's client, once;
 *     the fragments before the last look the flow up without taking it;
 *   - affinity per tenant: one tenant flooding 200 000 session keys evicts
 *     only its own sessions, held to its max_sessions.
 * Without an ingress ifindex the FIB lookup fails: forwarded packets come
 * back as XDP_PASS with the rewrite done (TX_KERNEL).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <bpf/bpf.h>

#include "router_test.h"
#include "cpn/siphash.h"
#include "cpn_util.h"

static const __u64 key_a[2] = {0x1111111111111111ULL, 0x2222222222222222ULL};
static const __u64 key_b[2] = {0x3333333333333333ULL, 0x4444444444444444ULL};

static void node_flags(struct router *r, __u16 id, __u8 flags, const __u64 *key,
		       const __u64 *key_next)
{
	struct cpn_node_cfg c;

	assert_int_equal(cpn_maps_get_node(&r->maps, id, &c), 0);
	c.flags |= flags;
	if (key)
		memcpy(c.key, key, sizeof(c.key));
	if (key_next)
		memcpy(c.key_next, key_next, sizeof(c.key_next));
	assert_int_equal(cpn_maps_set_node(&r->maps, id, &c, 100, CPN_ADMIN_UP), 0);
}

static void tenant_flags(struct router *r, __u32 flags, const __u64 *key_next)
{
	struct cpn_tenant t;
	__u32 k = T_TENANT;

	assert_int_equal(bpf_map_lookup_elem(r->maps.tenants, &k, &t), 0);
	t.flags |= flags;
	if (key_next)
		memcpy(t.key_next, key_next, sizeof(t.key_next));
	assert_int_equal(cpn_maps_set_tenant(&r->maps, T_TENANT, &t), 0);
}

static void service_flags(struct router *r, __u16 flags)
{
	struct cpn_service s;
	__u32 k = T_SVC;

	assert_int_equal(bpf_map_lookup_elem(r->maps.services, &k, &s), 0);
	s.flags |= flags;
	assert_int_equal(cpn_maps_set_service(&r->maps, T_SVC, &s), 0);
}

static size_t build(const struct cpn_pkt *s, __u8 *in)
{
	size_t len = cpn_pkt_build(s, in, CPN_PKT_MAX);

	assert_true(len > 0);
	return len;
}

/* Run and check verdict and counters (RT_END-terminated). */
static void expect(struct router *r, const __u8 *in, size_t len, int act, const int *stats,
		   struct rt_out *o)
{
	rt_run(r, in, len, o);
	if (o->act != act)
		fail_msg("verdict %d, expected %d", o->act, act);
	rt_assert_counted(o, stats);
}

/* ---- checksums ---------------------------------------------------------- */

enum corruption { UDP_WRONG, IP_WRONG, UDP_NONE, CORRUPTIONS };

static void corrupt(__u8 *in, size_t len, enum corruption how)
{
	struct cpn_pkt_view v;

	assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
	switch (how) {
	case UDP_WRONG:
		in[v.l4 + 7] ^= 0x5a; /* non-zero and wrong */
		if (!in[v.l4 + 6] && !in[v.l4 + 7])
			in[v.l4 + 7] = 1;
		break;
	case IP_WRONG:
		in[v.l3 + 10] ^= 0x01;
		break;
	case UDP_NONE:
		in[v.l4 + 6] = 0;
		in[v.l4 + 7] = 0;
		break;
	default:
		break;
	}
}

static void test_reports_with_bad_checksums_are_dropped_unlearned(void **state)
{
	struct router *r = *state;
	static const __u8 types[] = {CPN_T_REPLY, CPN_T_BUSY, CPN_T_LOAD, CPN_T_PROBE_ACK};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		for (size_t k = 0; k < sizeof(types); k++) {
			for (int how = 0; how < CORRUPTIONS; how++) {
				struct cpn_node before;
				struct cpn_pkt s;
				__u8 in[CPN_PKT_MAX];
				size_t len;

				/* IPv4 without a UDP checksum is fine (below). */
				if (how == IP_WRONG && family != CPN_AF_INET)
					continue;
				if (how == UDP_NONE && family == CPN_AF_INET)
					continue;
				print_message("# type %u, corruption %d, %s vlan %d\n", types[k],
					      how, RT_FAMILY_STR(family), rt_framings[i].vlan);
				if (types[k] == CPN_T_REPLY || types[k] == CPN_T_BUSY)
					cpn_pkt_reply(&s, family, 2);
				else
					cpn_pkt_load(&s, family, 2);
				s.vlan = rt_framings[i].vlan;
				s.msg.type = types[k];
				s.msg.queue_depth = 900;
				s.msg.router_ts = t_now_us() - 100;
				if (types[k] == CPN_T_PROBE_ACK)
					s.msg.request_id = t_probe_cookie(2, s.msg.router_ts);
				len = build(&s, in);
				corrupt(in, len, (enum corruption)how);
				rt_node_snapshot(r, 2, &before);
				rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_BAD_CSUM);
				assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
			}
		}
	}
}

/* IPv4 without a UDP checksum: learned. A large REPLY's UDP checksum is
 * not the router's to check: relayed; its IPv4 header checksum is.
 */
static void test_reports_without_udp_checksum_or_large_are_accepted(void **state)
{
	struct router *r = *state;
	static __u8 big[600];
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 3), 0);
	cpn_pkt_load(&s, CPN_AF_INET, 2);
	s.udp_csum_zero = true;
	s.msg.queue_depth = 17;
	len = build(&s, in);
	expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_LOAD_LEARNED, RT_END}, &o);
	assert_int_equal(r->maps.state[2].queue_depth, 17);

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		cpn_pkt_reply(&s, family, 2);
		s.vlan = rt_framings[i].vlan;
		s.payload = big;
		s.payload_len = sizeof(big);
		len = build(&s, in);
		corrupt(in, len, UDP_WRONG);
		expect(r, in, len, XDP_PASS,
		       (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END}, &o);
		/* ... but its IPv4 header checksum is. */
		if (family == CPN_AF_INET) {
			len = build(&s, in);
			corrupt(in, len, IP_WRONG);
			rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_BAD_CSUM);
		}
	}
}

/* ---- hop tags ------------------------------------------------------------ */

static void test_steered_request_carries_a_valid_hop_tag(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		struct cpn_pkt s;
		struct cpn_pkt_view v;
		struct cpn_hdr h;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_LEAST, 2), 0);
		cpn_pkt_default(&s, rt_framings[i].family);
		s.vlan = rt_framings[i].vlan;
		s.msg.stamp = 0x01020304;
		s.msg.flags = CPN_F_FRESH;
		len = build(&s, in);
		expect(r, in, len, XDP_PASS,
		       (int[]){CPN_STAT_REQ_STEERED, CPN_STAT_TX_KERNEL, RT_END}, &o);
		assert_int_equal(cpn_pkt_locate(o.buf, o.len, &v), 0);
		cpn_pkt_hdr(o.buf, &v, &h);
		assert_true(h.worker_us == cpn_hop_tag(t_hop_key, &h));
		assert_false(h.worker_us == cpn_hop_tag(key_a, &h));
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));
	}
}

/* A client that names its node without a router's hop tag is chosen for. */
static void test_tagged_request_without_valid_hop_tag_is_chosen_anew(void **state)
{
	struct router *r = *state;
	enum { NONE, OTHER_KEY, OTHER_TS, OTHER_NODE, KINDS };

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		for (int k = 0; k < KINDS; k++) {
			struct cpn_pkt s;
			struct rt_out o;
			__u8 in[CPN_PKT_MAX];
			size_t len;

			assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_LEAST, 4), 0);
			for (__u16 id = 1; id <= 4; id++)
				t_report(r, id, id == 2 ? 0 : 9, 0, 1, 100, 0);
			cpn_pkt_default(&s, rt_framings[i].family);
			s.vlan = rt_framings[i].vlan;
			s.msg.flags = CPN_F_TAGGED;
			s.msg.node_id = 3;
			s.msg.hops = 1;
			s.msg.router_ts = 4242;
			t_hop_tag(&s);
			if (k == NONE)
				s.hop_tag = false;
			if (k == OTHER_KEY)
				s.hop_key[0] ^= 1;
			if (k == OTHER_TS || k == OTHER_NODE) {
				/* The hop tag of another time or node, copied. */
				struct cpn_pkt e = s;
				struct cpn_pkt_view v;
				struct cpn_hdr h;
				__u8 tmp[CPN_PKT_MAX];
				size_t l;

				if (k == OTHER_TS)
					e.msg.router_ts = 4243;
				else
					e.msg.node_id = 4;
				l = build(&e, tmp);
				assert_int_equal(cpn_pkt_locate(tmp, l, &v), 0);
				cpn_pkt_hdr(tmp, &v, &h);
				s.hop_tag = false;
				s.msg.worker_us = ntohl(h.worker_us);
			}
			len = build(&s, in);
			expect(r, in, len, XDP_PASS,
			       (int[]){CPN_STAT_REQ_TAG_FORGED, CPN_STAT_REQ_STEERED,
				       CPN_STAT_TX_KERNEL, RT_END},
			       &o);
			assert_int_equal(cpn_pkt_steered_node(o.buf, o.len), 2);
			assert_int_equal(r->maps.state[3].outstanding, 0);
		}
	}
}

/* Admission before the tag: ACL and rate hold for a validly tagged request. */
static void test_tagged_request_goes_through_admission(void **state)
{
	struct router *r = *state;
	const __u16 svc = T_SVC;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_LEAST, 3), 0);
		assert_int_equal(t_add_tenant(r, T_TENANT, &svc, 1, 1, 1, NULL), 0);
		cpn_pkt_default(&s, rt_framings[i].family);
		s.vlan = rt_framings[i].vlan;
		s.msg.flags = CPN_F_TAGGED;
		s.msg.node_id = 3;
		s.msg.hops = 1;
		s.msg.router_ts = 99;
		t_hop_tag(&s);
		len = build(&s, in);
		expect(r, in, len, XDP_PASS,
		       (int[]){CPN_STAT_REQ_TAG_HONOURED, CPN_STAT_REQ_STEERED, CPN_STAT_TX_KERNEL,
			       RT_END},
		       &o);
		expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_DROP_RATE, RT_END}, &o);

		s.msg.tenant_id = T_TENANT + 1; /* unknown, no `any` */
		len = build(&s, in);
		expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_DROP_ACL, RT_END}, &o);
	}
}

/* ---- probe cookies ------------------------------------------------------- */

static void test_probe_ack_needs_the_cookie_of_its_node_and_time(void **state)
{
	struct router *r = *state;
	enum { NO_COOKIE, OTHER_NODE, OTHER_TS, OTHER_KEY, TOO_OLD, GOOD, KINDS };

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		for (int k = 0; k < KINDS; k++) {
			struct cpn_node before;
			struct cpn_pkt s;
			struct rt_out o;
			__u8 in[CPN_PKT_MAX];
			size_t len;
			__u32 ts = t_now_us() - (k == TOO_OLD ? CPN_PROBE_MAX_AGE_US + 5000 : 300);

			assert_int_equal(t_topology(r, rt_framings[i].family, CPN_POL_LEAST, 3), 0);
			cpn_pkt_load(&s, rt_framings[i].family, 2);
			s.vlan = rt_framings[i].vlan;
			s.msg.type = CPN_T_PROBE_ACK;
			s.msg.queue_depth = 77;
			s.msg.router_ts = ts;
			s.msg.request_id = t_probe_cookie(2, ts);
			if (k == NO_COOKIE)
				s.msg.request_id = 0;
			if (k == OTHER_NODE)
				s.msg.request_id = t_probe_cookie(3, ts);
			if (k == OTHER_TS)
				s.msg.request_id = t_probe_cookie(2, ts + 1);
			if (k == OTHER_KEY)
				s.msg.request_id =
				    cpn_ntohll(cpn_probe_cookie(key_a, htons(2), htonl(ts)));
			len = build(&s, in);
			rt_node_snapshot(r, 2, &before);
			if (k == GOOD) {
				expect(r, in, len, XDP_DROP,
				       (int[]){CPN_STAT_PROBE_ACK_LEARNED, RT_END}, &o);
				assert_int_equal(r->maps.state[2].queue_depth, 77);
				continue;
			}
			rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_PROBE_COOKIE);
			assert_memory_equal(&r->maps.state[2], &before, sizeof(before));
		}
	}
}

/* ---- freshness and replay ------------------------------------------------ */

static void keyed_request(struct cpn_pkt *s, int family, int vlan, __u64 id, const __u64 *key)
{
	cpn_pkt_default(s, family);
	s->vlan = vlan;
	s->msg.request_id = id;
	s->auth = true;
	memcpy(s->key, key, sizeof(s->key));
}

static void test_keyed_tenant_requires_fresh_requests_once(void **state)
{
	struct router *r = *state;
	const __u16 svc = T_SVC;
	const int steered[] = {CPN_STAT_REQ_STEERED, CPN_STAT_TX_KERNEL, RT_END};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
		__u64 id = 0x1000 + (__u64)i * 0x100;
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 2), 0);
		assert_int_equal(t_add_tenant(r, T_TENANT, &svc, 1, 0, 0, key_a), 0);
		tenant_flags(r, CPN_TENANT_FRESH, NULL);

		/* Signed, not FRESH: refused. */
		keyed_request(&s, family, vlan, id++, key_a);
		len = build(&s, in);
		expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_DROP_STALE, RT_END}, &o);

		/* FRESH now: steered once, the copy a replay. */
		keyed_request(&s, family, vlan, id++, key_a);
		s.fresh = true;
		len = build(&s, in);
		expect(r, in, len, XDP_PASS, steered, &o);
		expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_DROP_REPLAY, RT_END}, &o);

		/* The stamp is signed: changed, the tag fails. */
		{
			struct cpn_pkt_view v;

			assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
			in[v.pay + 47] ^= 1;
			cpn_pkt_fix_csums(in, len);
			expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_DROP_AUTH, RT_END}, &o);
		}

		/* Out of the window, either way (wrapping around 2^32 too). */
		for (int w = 0; w < 3; w++) {
			__u32 now = cpn_tai_ms();

			keyed_request(&s, family, vlan, id++, key_a);
			s.fresh = true;
			s.msg.stamp = w == 0   ? now - CPN_FRESH_WINDOW_MS - 500
				      : w == 1 ? now + CPN_FRESH_WINDOW_MS + 500
					       : now + 0x80000000u;
			len = build(&s, in);
			expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_DROP_STALE, RT_END}, &o);
		}

		/* A window of the configuration's. */
		{
			struct cpn_config c;

			assert_int_equal(cpn_maps_get_config(&r->maps, &c), 0);
			c.fresh_ms = 10000;
			assert_int_equal(cpn_maps_set_config(&r->maps, &c), 0);
			keyed_request(&s, family, vlan, id++, key_a);
			s.fresh = true;
			s.msg.stamp = cpn_tai_ms() - 5000;
			len = build(&s, in);
			expect(r, in, len, XDP_PASS, steered, &o);
			c.fresh_ms = 0;
			assert_int_equal(cpn_maps_set_config(&r->maps, &c), 0);
		}

		/* key_next: refused until the tenant has it. */
		keyed_request(&s, family, vlan, id++, key_b);
		s.fresh = true;
		len = build(&s, in);
		expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_DROP_AUTH, RT_END}, &o);
		tenant_flags(r, CPN_TENANT_KEY_NEXT, key_b);
		expect(r, in, len, XDP_PASS, steered, &o);
		keyed_request(&s, family, vlan, id++, key_a);
		s.fresh = true;
		len = build(&s, in);
		expect(r, in, len, XDP_PASS, steered, &o);

		/* fresh: optional: without FRESH, accepted, and again. */
		assert_int_equal(t_add_tenant(r, T_TENANT, &svc, 1, 0, 0, key_a), 0);
		keyed_request(&s, family, vlan, id++, key_a);
		len = build(&s, in);
		expect(r, in, len, XDP_PASS, steered, &o);
		expect(r, in, len, XDP_PASS, steered, &o);
		/* ... but with FRESH, still once. */
		s.fresh = true;
		len = build(&s, in);
		expect(r, in, len, XDP_PASS, steered, &o);
		expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_DROP_REPLAY, RT_END}, &o);
	}
}

/* A large request's later fragments share their first's header, and so its
 * tag: the hop tag binds them, the seen-set does not take them for replays.
 */
static void test_fresh_request_fragments_are_not_replays(void **state)
{
	struct router *r = *state;
	const __u16 svc = T_SVC;
	static const __u8 body[32] = {9};
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 2), 0);
	assert_int_equal(t_add_tenant(r, T_TENANT, &svc, 1, 0, 0, key_a), 0);
	tenant_flags(r, CPN_TENANT_FRESH, NULL);
	keyed_request(&s, CPN_AF_INET, 0, 0x77, key_a);
	s.fresh = true;
	s.msg.flags = CPN_F_FRAG | CPN_F_CONT | CPN_F_TAGGED;
	s.msg.node_id = 1;
	s.msg.router_ts = 5;
	s.payload = body;
	s.payload_len = sizeof(body);
	t_hop_tag(&s);
	len = build(&s, in);
	for (int k = 0; k < 3; k++)
		expect(r, in, len, XDP_PASS, (int[]){CPN_STAT_REQ_FRAG, CPN_STAT_TX_KERNEL, RT_END},
		       &o);
}

static void test_keyed_node_requires_fresh_reports_once(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
		struct cpn_node before;
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 3), 0);
		node_flags(r, 2, CPN_NODE_CFG_KEY | CPN_NODE_CFG_FRESH, key_a, NULL);

		cpn_pkt_load(&s, family, 2);
		s.vlan = vlan;
		s.auth = true;
		memcpy(s.key, key_a, sizeof(s.key));
		s.msg.queue_depth = 5;
		len = build(&s, in);
		rt_node_snapshot(r, 2, &before);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_STALE);
		assert_memory_equal(&r->maps.state[2], &before, sizeof(before));

		s.fresh = true;
		len = build(&s, in);
		expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_LOAD_LEARNED, RT_END}, &o);
		assert_int_equal(r->maps.state[2].queue_depth, 5);
		/* The captured LOAD again, after the node said something else. */
		r->maps.state[2].queue_depth = 6;
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_REPLAY);
		assert_int_equal(r->maps.state[2].queue_depth, 6);

		s.msg.stamp = cpn_tai_ms() - CPN_FRESH_WINDOW_MS - 100;
		len = build(&s, in);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_STALE);
		s.msg.stamp = 0;

		/* A REPLY too. */
		cpn_pkt_reply(&s, family, 2);
		s.vlan = vlan;
		s.auth = true;
		memcpy(s.key, key_a, sizeof(s.key));
		len = build(&s, in);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_STALE);
		s.fresh = true;
		len = build(&s, in);
		expect(r, in, len, XDP_PASS,
		       (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END}, &o);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_REPLAY);

		/* Rotation: the next key accepted once the node has it. */
		cpn_pkt_load(&s, family, 2);
		s.vlan = vlan;
		s.auth = true;
		s.fresh = true;
		memcpy(s.key, key_b, sizeof(s.key));
		s.msg.queue_depth = 8;
		len = build(&s, in);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_NODE_AUTH);
		node_flags(r, 2, CPN_NODE_CFG_KEY_NEXT, NULL, key_b);
		expect(r, in, len, XDP_DROP, (int[]){CPN_STAT_LOAD_LEARNED, RT_END}, &o);
		assert_int_equal(r->maps.state[2].queue_depth, 8);
	}
}

/* ---- reply binding ------------------------------------------------------- */

/* Steer one request (DNAT, reply_check); returns the node. */
static __u16 steer_one(struct router *r, int family, int vlan, __u64 id)
{
	struct cpn_pkt s;

	cpn_pkt_default(&s, family);
	s.vlan = vlan;
	s.msg.request_id = id;
	return rt_steer(r, &s);
}

static void reply_of(struct cpn_pkt *s, int family, int vlan, __u16 node, __u64 id)
{
	cpn_pkt_reply(s, family, node);
	s->vlan = vlan;
	s->msg.request_id = id;
	s->msg.queue_depth = 3;
}

static void test_reply_check_binds_a_reply_to_its_request(void **state)
{
	struct router *r = *state;
	const int relayed[] = {CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END};
	const int no_flow[] = {CPN_STAT_DROP_NO_FLOW, RT_END};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
		struct cpn_node before;
		struct cpn_pkt s;
		struct rt_out o;
		__u8 in[CPN_PKT_MAX];
		__u16 node, other;
		size_t len;

		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 2), 0);
		service_flags(r, CPN_SVC_REPLY_CHECK);
		node = steer_one(r, family, vlan, 0x501);
		other = node == 1 ? 2 : 1;

		/* Another node answers first: relayed nowhere, not learned. */
		reply_of(&s, family, vlan, other, 0x501);
		len = build(&s, in);
		rt_node_snapshot(r, other, &before);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_NO_FLOW);
		assert_memory_equal(&r->maps.state[other], &before, sizeof(before));

		/* The right node, but to another destination. */
		reply_of(&s, family, vlan, node, 0x501);
		s.dst = family == CPN_AF_INET ? "10.9.9.9" : "fd09::9";
		len = build(&s, in);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_NO_FLOW);
		/* Another request id, or client port. */
		reply_of(&s, family, vlan, node, 0x502);
		len = build(&s, in);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_NO_FLOW);
		reply_of(&s, family, vlan, node, 0x501);
		s.dport = 40001;
		len = build(&s, in);
		rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_NO_FLOW);

		/* Fragments before the last: relayed, the flow kept. */
		reply_of(&s, family, vlan, node, 0x501);
		s.msg.flags |= CPN_F_FRAG | CPN_F_CONT;
		len = build(&s, in);
		expect(r, in, len, XDP_PASS,
		       (int[]){CPN_STAT_REPLY_FRAG, CPN_STAT_TX_KERNEL, RT_END}, &o);
		expect(r, in, len, XDP_PASS,
		       (int[]){CPN_STAT_REPLY_FRAG, CPN_STAT_TX_KERNEL, RT_END}, &o);

		/* The reply: relayed and learned, once. */
		reply_of(&s, family, vlan, node, 0x501);
		len = build(&s, in);
		expect(r, in, len, XDP_PASS, relayed, &o);
		assert_int_equal(r->maps.state[node].queue_depth, 3);
		assert_true(cpn_pkt_csum_ok(o.buf, o.len));
		expect(r, in, len, XDP_DROP, no_flow, &o);

		/* A BUSY from the node takes the flow as well. */
		node = steer_one(r, family, vlan, 0x601);
		reply_of(&s, family, vlan, node, 0x601);
		s.msg.type = CPN_T_BUSY;
		len = build(&s, in);
		expect(r, in, len, XDP_PASS, (int[]){CPN_STAT_BUSY_FWD, CPN_STAT_TX_KERNEL, RT_END},
		       &o);
		expect(r, in, len, XDP_DROP, no_flow, &o);
	}
}

/* Without reply_check (and without full NAT) a reply is relayed as before. */
static void test_reply_without_reply_check_is_relayed(void **state)
{
	struct router *r = *state;
	struct cpn_pkt s;
	struct rt_out o;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_LEAST, 2), 0);
	reply_of(&s, CPN_AF_INET, 0, 2, 0x999);
	len = build(&s, in);
	expect(r, in, len, XDP_PASS, (int[]){CPN_STAT_REPLY_FWD, CPN_STAT_TX_KERNEL, RT_END}, &o);
}

/* ---- affinity per tenant ------------------------------------------------ */

static __u32 count_keys(int map_fd)
{
	struct cpn_aff_key k, next, *prev = NULL;
	__u32 n = 0;

	while (!bpf_map_get_next_key(map_fd, prev, &next) && n < 1000000) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

static __u32 tenant_sessions(struct router *r, __u32 tenant)
{
	__u32 inner_id;
	int fd;
	__u32 n;

	assert_int_equal(bpf_map_lookup_elem(r->maps.affinity, &tenant, &inner_id), 0);
	fd = bpf_map_get_fd_by_id(inner_id);
	assert_true(fd >= 0);
	n = count_keys(fd);
	close(fd);
	return n;
}

#define FLOOD_KEYS  200000
#define VICTIM	    43
#define VICTIM_KEYS 100

static void test_one_tenants_sessions_cannot_evict_anothers(void **state)
{
	struct router *r = *state;
	const __u16 svc = T_SVC;
	__u16 node[VICTIM_KEYS + 1];
	struct cpn_tenant t;
	struct cpn_pkt s;
	struct cpn_pkt_view v;
	__u8 in[CPN_PKT_MAX], out[CPN_PKT_MAX];
	size_t len, out_len;
	__u64 aff0;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 4), 0);
	assert_int_equal(t_add_tenant(r, VICTIM, &svc, 1, 0, 0, NULL), 0);
	/* The flooding tenant holds at most 1000 sessions. */
	assert_int_equal(bpf_map_lookup_elem(r->maps.tenants, &(__u32){T_TENANT}, &t), 0);
	t.max_sessions = 1000;
	assert_int_equal(cpn_maps_set_tenant(&r->maps, T_TENANT, &t), 0);

	for (__u32 k = 1; k <= VICTIM_KEYS; k++) {
		cpn_pkt_default(&s, CPN_AF_INET);
		s.msg.tenant_id = VICTIM;
		s.msg.flags = CPN_F_STICKY;
		s.msg.session_key = k;
		node[k] = rt_steer(r, &s);
	}
	assert_int_equal(tenant_sessions(r, VICTIM), VICTIM_KEYS);

	/* 200 000 new sessions of the other tenant, one frame patched. */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.flags = CPN_F_STICKY;
	s.udp_csum_zero = true;
	len = build(&s, in);
	assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
	for (__u32 k = 1; k <= FLOOD_KEYS; k++) {
		__be32 key = htonl(0x100000 + k);

		memcpy(in + v.pay + 12, &key, 4);
		out_len = sizeof(out);
		assert_int_equal(router_run(r, in, len, out, &out_len), XDP_PASS);
		if (k % 50000 == 0)
			for (__u16 id = 1; id <= 4; id++)
				r->maps.state[id].outstanding = 0;
	}
	/* An LRU evicts a little before it is full (its free lists are per CPU). */
	assert_in_range(tenant_sessions(r, T_TENANT), 500, 1000);
	assert_int_equal(tenant_sessions(r, VICTIM), VICTIM_KEYS);

	/* Every session of the victim still on its node, by affinity. */
	aff0 = router_stat(r, CPN_STAT_REQ_AFFINITY);
	for (__u32 k = 1; k <= VICTIM_KEYS; k++) {
		for (__u16 id = 1; id <= 4; id++)
			t_report(r, id, id == node[k] ? 50 : 0, 0, 1, 100, 0);
		cpn_pkt_default(&s, CPN_AF_INET);
		s.msg.tenant_id = VICTIM;
		s.msg.flags = CPN_F_STICKY;
		s.msg.session_key = k;
		assert_int_equal(rt_steer(r, &s), node[k]);
	}
	assert_int_equal(router_stat(r, CPN_STAT_REQ_AFFINITY), aff0 + VICTIM_KEYS);

	/* A tenant deleted takes its sessions along. */
	assert_int_equal(cpn_maps_del_tenant(&r->maps, VICTIM), 0);
	assert_int_not_equal(bpf_map_lookup_elem(r->maps.affinity, &(__u32){VICTIM}, &(__u32){0}),
			     0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, t_router_setup, t_router_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_reports_with_bad_checksums_are_dropped_unlearned),
	    T(test_reports_without_udp_checksum_or_large_are_accepted),
	    T(test_steered_request_carries_a_valid_hop_tag),
	    T(test_tagged_request_without_valid_hop_tag_is_chosen_anew),
	    T(test_tagged_request_goes_through_admission),
	    T(test_probe_ack_needs_the_cookie_of_its_node_and_time),
	    T(test_keyed_tenant_requires_fresh_requests_once),
	    T(test_fresh_request_fragments_are_not_replays),
	    T(test_keyed_node_requires_fresh_reports_once),
	    T(test_reply_check_binds_a_reply_to_its_request),
	    T(test_reply_without_reply_check_is_relayed),
	    T(test_one_tenants_sessions_cannot_evict_anothers),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
