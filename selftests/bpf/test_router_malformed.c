// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Malformed input and foreign traffic, through BPF_PROG_TEST_RUN: every
 * defect of a request to the VIP is dropped under its own counter, frames
 * the router cannot judge are passed, traffic that is not cpn is passed, and
 * in every case the frame comes back byte for byte and no state changes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "router_test.h"

/* ---- helpers --------------------------------------------------------- */

/* Nothing was steered or learned: every node's state as in `before`. */
static void snapshot_nodes(struct router *r, struct cpn_node before[5])
{
	for (__u16 id = 1; id <= 4; id++)
		rt_node_snapshot(r, id, &before[id]);
}

static void assert_nodes_unchanged(struct router *r, const struct cpn_node before[5])
{
	for (__u16 id = 1; id <= 4; id++)
		assert_memory_equal(&r->maps.state[id], &before[id], sizeof(before[id]));
}

/* A request to the VIP with a payload, as a client sends it. */
static size_t good_request(int family, int vlan, __u8 *in)
{
	static __u8 payload[40];
	struct cpn_pkt s;

	cpn_pkt_default(&s, family);
	s.vlan = vlan;
	cpn_pkt_fill(payload, sizeof(payload), 5);
	s.payload = payload;
	s.payload_len = sizeof(payload);
	return cpn_pkt_build(&s, in, CPN_PKT_MAX);
}

static void set_be16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

/* RFC 1071 over a buffer, for the hand-made frames. */
static __u16 csum16(const __u8 *p, size_t len, __u32 acc)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		acc += (__u32)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		acc += (__u32)(p[len - 1] << 8);
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)~acc;
}

/* ---- short payloads -------------------------------------------------- */

/* Well-formed datagrams whose cpn payload is cut short, at every length:
 * DROP_SHORT below 48 bytes, and below 56 when AUTH promises a tag.
 * Also with the missing bytes present in the frame after the datagram
 * (trailing bytes that are not part of it must not count).
 */
static void test_short_payload_at_every_length_is_dropped_short(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 4), 0);
		for (int auth = 0; auth < 2; auth++) {
			size_t full = auth ? CPN_HDR_LEN + CPN_TAG_LEN : CPN_HDR_LEN;
			__u8 body[CPN_HDR_LEN + CPN_TAG_LEN] = {0};
			struct cpn_node before[5];
			struct cpn_pkt s;
			struct cpn_hdr h;

			cpn_pkt_default(&s, family);
			if (auth)
				s.msg.flags |= CPN_F_AUTH;
			cpn_hdr_encode(&s.msg, &h);
			memcpy(body, &h, sizeof(h));
			cpn_pkt_fill(body + CPN_HDR_LEN, CPN_TAG_LEN, 3);
			snapshot_nodes(r, before);
			for (size_t l = 0; l <= full; l++) {
				__u8 in[CPN_PKT_MAX];
				struct rt_out o;
				size_t len;

				cpn_pkt_default(&s, family);
				s.vlan = vlan;
				s.with_hdr = false;
				s.payload = body;
				s.payload_len = l;
				len = cpn_pkt_build(&s, in, sizeof(in));
				assert_true(len > 0);
				if (l == full) {
					/* Complete: steered (the tenant has no key). */
					assert_nodes_unchanged(r, before);
					assert_in_range(rt_steer(r, &s), 1, 4);
					continue;
				}
				rt_assert_untouched(r, in, len, XDP_DROP, CPN_STAT_DROP_SHORT);
				/* The rest of the payload after the datagram's end. */
				memcpy(in + len, body + l, full - l);
				rt_run(r, in, len + full - l, &o);
				assert_int_equal(o.act, XDP_DROP);
				rt_assert_frame_equal(in, len + full - l, &o);
				rt_assert_counted(&o, (int[]){CPN_STAT_DROP_SHORT, RT_END});
			}
		}
	}
}

/* ---- raw truncation -------------------------------------------------- */

/* The counter a frame cut at `cut` bytes must land on: frames whose
 * headers are cut are not ours to judge (passed); once the UDP header is
 * whole, the IP length lies: dropped when the datagram is addressed to a
 * VIP, passed to the host when it is not (a reply, a LOAD: the router does
 * not judge what it cannot prove is cpn's).
 */
static enum cpn_stat truncated_reason(const struct cpn_pkt_view *v, size_t cut, bool to_vip)
{
	if (cut < v->l3)
		return CPN_STAT_PASS_SHORT_L2;
	if (cut < v->l4)
		return CPN_STAT_PASS_SHORT_L3;
	if (cut < v->pay)
		return CPN_STAT_PASS_SHORT_L4;
	return to_vip ? CPN_STAT_DROP_BAD_IP_LEN : CPN_STAT_PASS_NOT_CPN;
}

static void check_truncations(struct router *r, const __u8 *in, size_t len, bool to_vip)
{
	struct cpn_node before[5];
	struct cpn_pkt_view v;

	assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
	snapshot_nodes(r, before);
	for (size_t cut = 0; cut < len; cut++) {
		enum cpn_stat why = truncated_reason(&v, cut, to_vip);
		struct rt_out o;

		rt_run(r, in, cut, &o);
		if (cut < 14) {
			/* Shorter than Ethernet: the kernel refuses to run it. */
			assert_int_equal(o.act, -1);
			continue;
		}
		if (o.act != (why == CPN_STAT_DROP_BAD_IP_LEN ? XDP_DROP : XDP_PASS))
			fail_msg("cut at %zu of %zu: verdict %d", cut, len, o.act);
		rt_assert_frame_equal(in, cut, &o);
		rt_assert_counted(&o, (int[]){(int)why, RT_END});
	}
	assert_nodes_unchanged(r, before);
}

static void test_frames_cut_at_every_offset_are_never_rewritten(void **state)
{
	struct router *r = *state;

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
		struct cpn_pkt s;
		__u8 in[CPN_PKT_MAX];
		size_t len;

		print_message("# truncations: %s vlan %d\n", RT_FAMILY_STR(family), vlan);
		assert_int_equal(t_topology(r, family, CPN_POL_LEAST, 4), 0);
		/* A request with a payload. */
		len = good_request(family, vlan, in);
		check_truncations(r, in, len, true);
		/* A signed request. */
		cpn_pkt_default(&s, family);
		s.vlan = vlan;
		s.auth = true;
		len = cpn_pkt_build(&s, in, sizeof(in));
		check_truncations(r, in, len, true);
		/* A reply from a node. */
		cpn_pkt_reply(&s, family, 2);
		s.vlan = vlan;
		s.msg.queue_depth = 500;
		len = cpn_pkt_build(&s, in, sizeof(in));
		check_truncations(r, in, len, false);
		/* A LOAD to the control port. */
		cpn_pkt_load(&s, family, 3);
		s.vlan = vlan;
		s.msg.queue_depth = 500;
		len = cpn_pkt_build(&s, in, sizeof(in));
		check_truncations(r, in, len, false);
		/* The whole request still goes through. */
		len = good_request(family, vlan, in);
		{
			struct rt_out o;

			rt_run(r, in, len, &o);
			assert_int_equal(o.act, XDP_PASS);
			assert_in_range(cpn_pkt_steered_node(o.buf, o.len), 1, 4);
		}
	}
}

/* ---- header defects -------------------------------------------------- */

/* The request of `framing`, with its cpn header changed by `mutate`, is
 * dropped or passed untouched under `stat`.
 */
static void check_request_defect(struct router *r, int family, int vlan,
				 void (*mutate)(__u8 *in, size_t *len, const struct cpn_pkt_view *v,
						int arg),
				 int arg, int act, enum cpn_stat stat)
{
	struct cpn_node before[5];
	struct cpn_pkt_view v;
	__u8 in[CPN_PKT_MAX];
	size_t len;

	len = good_request(family, vlan, in);
	assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
	mutate(in, &len, &v, arg);
	snapshot_nodes(r, before);
	rt_assert_untouched(r, in, len, act, stat);
	assert_nodes_unchanged(r, before);
}

static void mut_magic(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	set_be16(in + v->pay, (__u16)arg);
	cpn_pkt_fix_csums(in, *len);
}

static void mut_version(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	in[v->pay + 2] = (__u8)arg;
	cpn_pkt_fix_csums(in, *len);
}

static void mut_type(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	in[v->pay + 3] = (__u8)arg;
	cpn_pkt_fix_csums(in, *len);
}

static void mut_service(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	set_be16(in + v->pay + 6, (__u16)arg);
	cpn_pkt_fix_csums(in, *len);
}

static void mut_hops(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	in[v->pay + 26] = (__u8)arg;
	cpn_pkt_fix_csums(in, *len);
}

static void mut_udp_len(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	(void)len;
	set_be16(in + v->l4 + 4, (__u16)((int)v->udp_len + arg));
}

static void mut_udp_len_abs(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	(void)len;
	set_be16(in + v->l4 + 4, (__u16)arg);
}

/* IPv4 total length or IPv6 payload length, relative to the true one. */
static void mut_ip_len(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	if (v->family == CPN_AF_INET) {
		set_be16(in + v->l3 + 2, (__u16)((int)(*len - v->l3) + arg));
		set_be16(in + v->l3 + 10, 0);
		set_be16(in + v->l3 + 10, csum16(in + v->l3, 20, 0));
	} else {
		set_be16(in + v->l3 + 4, (__u16)((int)(*len - v->l4) + arg));
	}
}

static void mut_ip_len_abs(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	(void)len;
	set_be16(in + v->l3 + (v->family == CPN_AF_INET ? 2 : 4), (__u16)arg);
	if (v->family == CPN_AF_INET) {
		set_be16(in + v->l3 + 10, 0);
		set_be16(in + v->l3 + 10, csum16(in + v->l3, 20, 0));
	}
}

/* IPv4 frag_off (flags and offset) as given; checksums fixed. */
static void mut_frag(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	set_be16(in + v->l3 + 6, (__u16)arg);
	cpn_pkt_fix_csums(in, *len);
}

/* IPv4 header with `arg` 32-bit words of options (NOPs, then EOL). */
static void mut_ip_options(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	size_t opt = (size_t)arg * 4;

	memmove(in + v->l4 + opt, in + v->l4, *len - v->l4);
	memset(in + v->l4, 1, opt);
	in[v->l4 + opt - 1] = 0;
	*len += opt;
	in[v->l3] = (__u8)(0x40 | (5 + arg));
	set_be16(in + v->l3 + 2, (__u16)(*len - v->l3));
	set_be16(in + v->l3 + 10, 0);
	set_be16(in + v->l3 + 10, csum16(in + v->l3, 20 + opt, 0));
}

/* IPv4 header length field alone set to `arg` (no options present). */
static void mut_ihl(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	(void)len;
	in[v->l3] = (__u8)(0x40 | arg);
}

/* IPv6: a fragment header between the fixed header and UDP. */
static void mut_ip6_frag(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	__u8 fh[8] = {IPPROTO_UDP, 0, 0, 0, 0, 0, 0x12, 0x34};

	set_be16(fh + 2, (__u16)arg); /* offset and M */
	memmove(in + v->l4 + 8, in + v->l4, *len - v->l4);
	memcpy(in + v->l4, fh, 8);
	*len += 8;
	in[v->l3 + 6] = 44;
	set_be16(in + v->l3 + 4, (__u16)(*len - v->l4));
}

/* IPv6: a hop-by-hop options header before UDP (not parsed: passed). */
static void mut_ip6_hbh(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	__u8 hbh[8] = {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0}; /* PadN */

	(void)arg;
	memmove(in + v->l4 + 8, in + v->l4, *len - v->l4);
	memcpy(in + v->l4, hbh, 8);
	*len += 8;
	in[v->l3 + 6] = 0;
	set_be16(in + v->l3 + 4, (__u16)(*len - v->l4));
}

/* The IP version nibble lies about the Ethernet type. */
static void mut_ip_version(__u8 *in, size_t *len, const struct cpn_pkt_view *v, int arg)
{
	(void)len;
	in[v->l3] = (__u8)((in[v->l3] & 0x0f) | (arg << 4));
}

static void test_bad_magic_is_dropped(void **state)
{
	static const int magic[] = {0x4351, 0x5043, 0x0000, 0xffff};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		assert_int_equal(t_topology(*state, rt_framings[i].family, CPN_POL_P2C, 4), 0);
		for (size_t k = 0; k < sizeof(magic) / sizeof(magic[0]); k++)
			check_request_defect(*state, rt_framings[i].family, rt_framings[i].vlan,
					     mut_magic, magic[k], XDP_DROP,
					     CPN_STAT_DROP_BAD_MAGIC);
	}
}

static void test_bad_version_is_dropped(void **state)
{
	static const int version[] = {0, 2, 255};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		assert_int_equal(t_topology(*state, rt_framings[i].family, CPN_POL_P2C, 4), 0);
		for (size_t k = 0; k < sizeof(version) / sizeof(version[0]); k++)
			check_request_defect(*state, rt_framings[i].family, rt_framings[i].vlan,
					     mut_version, version[k], XDP_DROP,
					     CPN_STAT_DROP_BAD_VERSION);
	}
}

/* Unknown types, and every known type but REQUEST, sent to the VIP. */
static void test_unknown_type_or_non_request_to_vip_is_dropped(void **state)
{
	static const int type[] = {
	    0, 7, 255, CPN_T_REPLY, CPN_T_LOAD, CPN_T_PROBE, CPN_T_PROBE_ACK, CPN_T_BUSY};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		assert_int_equal(t_topology(*state, rt_framings[i].family, CPN_POL_P2C, 4), 0);
		for (size_t k = 0; k < sizeof(type) / sizeof(type[0]); k++)
			check_request_defect(*state, rt_framings[i].family, rt_framings[i].vlan,
					     mut_type, type[k], XDP_DROP, CPN_STAT_DROP_BAD_TYPE);
	}
}

static void test_wrong_service_id_is_dropped(void **state)
{
	static const int svc[] = {0, 2, 255, 256, 0x0101, 0xffff};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		assert_int_equal(t_topology(*state, rt_framings[i].family, CPN_POL_P2C, 4), 0);
		for (size_t k = 0; k < sizeof(svc) / sizeof(svc[0]); k++)
			check_request_defect(*state, rt_framings[i].family, rt_framings[i].vlan,
					     mut_service, svc[k], XDP_DROP,
					     CPN_STAT_DROP_BAD_SERVICE);
	}
}

/* hops at max_hops (4) or above: a steering loop. One below still goes. */
static void test_hops_at_max_is_dropped(void **state)
{
	struct router *r = *state;
	static const int hops[] = {4, 5, 255};

	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;
		struct cpn_pkt s;

		assert_int_equal(t_topology(r, family, CPN_POL_P2C, 4), 0);
		for (size_t k = 0; k < sizeof(hops) / sizeof(hops[0]); k++)
			check_request_defect(r, family, vlan, mut_hops, hops[k], XDP_DROP,
					     CPN_STAT_DROP_HOPS);
		cpn_pkt_default(&s, family);
		s.vlan = vlan;
		s.msg.hops = 3;
		assert_in_range(rt_steer(r, &s), 1, 4);
	}
}

static void test_bad_udp_length_is_dropped(void **state)
{
	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;

		assert_int_equal(t_topology(*state, family, CPN_POL_P2C, 4), 0);
		/* Larger than the datagram the IP header holds. */
		check_request_defect(*state, family, vlan, mut_udp_len, 1, XDP_DROP,
				     CPN_STAT_DROP_BAD_UDP_LEN);
		check_request_defect(*state, family, vlan, mut_udp_len, 1000, XDP_DROP,
				     CPN_STAT_DROP_BAD_UDP_LEN);
		check_request_defect(*state, family, vlan, mut_udp_len_abs, 0xffff, XDP_DROP,
				     CPN_STAT_DROP_BAD_UDP_LEN);
		/* Smaller than its own header. */
		for (int l = 0; l < 8; l++)
			check_request_defect(*state, family, vlan, mut_udp_len_abs, l, XDP_DROP,
					     CPN_STAT_DROP_BAD_UDP_LEN);
		/* Shorter than the IP payload but covering less than a header:
		 * a well-formed UDP length, a short cpn payload.
		 */
		check_request_defect(*state, family, vlan, mut_udp_len_abs, 8 + 47, XDP_DROP,
				     CPN_STAT_DROP_SHORT);
	}
}

static void test_bad_ip_length_is_dropped(void **state)
{
	for (int i = 0; i < RT_NFRAMINGS; i++) {
		int family = rt_framings[i].family, vlan = rt_framings[i].vlan;

		assert_int_equal(t_topology(*state, family, CPN_POL_P2C, 4), 0);
		/* Larger than the frame. */
		check_request_defect(*state, family, vlan, mut_ip_len, 1, XDP_DROP,
				     CPN_STAT_DROP_BAD_IP_LEN);
		check_request_defect(*state, family, vlan, mut_ip_len_abs, 0xffff, XDP_DROP,
				     CPN_STAT_DROP_BAD_IP_LEN);
		/* Too small to hold a UDP header. */
		check_request_defect(*state, family, vlan, mut_ip_len_abs,
				     family == CPN_AF_INET ? 27 : 7, XDP_DROP,
				     CPN_STAT_DROP_BAD_IP_LEN);
		check_request_defect(*state, family, vlan, mut_ip_len_abs, 0, XDP_DROP,
				     CPN_STAT_DROP_BAD_IP_LEN);
		/* Smaller than the UDP length says. */
		check_request_defect(*state, family, vlan, mut_ip_len, -1, XDP_DROP,
				     CPN_STAT_DROP_BAD_UDP_LEN);
	}
}

static void test_ipv4_with_options_passes_untouched(void **state)
{
	for (int vlan = 0; vlan <= 1; vlan++) {
		assert_int_equal(t_topology(*state, CPN_AF_INET, CPN_POL_P2C, 4), 0);
		for (int words = 1; words <= 10; words++)
			check_request_defect(*state, CPN_AF_INET, vlan * 5, mut_ip_options, words,
					     XDP_PASS, CPN_STAT_PASS_IP_OPTIONS);
		/* A header length field that lies (no options there). */
		check_request_defect(*state, CPN_AF_INET, vlan * 5, mut_ihl, 6, XDP_PASS,
				     CPN_STAT_PASS_IP_OPTIONS);
		check_request_defect(*state, CPN_AF_INET, vlan * 5, mut_ihl, 4, XDP_PASS,
				     CPN_STAT_PASS_IP_OPTIONS);
		check_request_defect(*state, CPN_AF_INET, vlan * 5, mut_ihl, 15, XDP_PASS,
				     CPN_STAT_PASS_IP_OPTIONS);
	}
}

static void test_fragments_pass_untouched(void **state)
{
	struct router *r = *state;

	for (int vlan = 0; vlan <= 1; vlan++) {
		assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 4), 0);
		check_request_defect(r, CPN_AF_INET, vlan * 5, mut_frag, 0x2000, XDP_PASS,
				     CPN_STAT_PASS_FRAGMENT); /* MF, offset 0 */
		check_request_defect(r, CPN_AF_INET, vlan * 5, mut_frag, 0x00b9, XDP_PASS,
				     CPN_STAT_PASS_FRAGMENT); /* last fragment */
		check_request_defect(r, CPN_AF_INET, vlan * 5, mut_frag, 0x2001, XDP_PASS,
				     CPN_STAT_PASS_FRAGMENT); /* middle */
		check_request_defect(r, CPN_AF_INET, vlan * 5, mut_frag, 0x4001, XDP_PASS,
				     CPN_STAT_PASS_FRAGMENT); /* DF and an offset */
		/* DF alone is no fragment: steered. */
		{
			struct cpn_pkt_view v;
			struct rt_out o;
			__u8 in[CPN_PKT_MAX];
			size_t len = good_request(CPN_AF_INET, vlan * 5, in);

			assert_int_equal(cpn_pkt_locate(in, len, &v), 0);
			mut_frag(in, &len, &v, 0x4000);
			rt_run(r, in, len, &o);
			assert_int_equal(o.act, XDP_PASS);
			assert_in_range(cpn_pkt_steered_node(o.buf, o.len), 1, 4);
			assert_true(cpn_pkt_csum_ok(o.buf, o.len));
		}

		assert_int_equal(t_topology(r, CPN_AF_INET6, CPN_POL_P2C, 4), 0);
		check_request_defect(r, CPN_AF_INET6, vlan * 5, mut_ip6_frag, 0x0001, XDP_PASS,
				     CPN_STAT_PASS_FRAGMENT); /* first, M set */
		check_request_defect(r, CPN_AF_INET6, vlan * 5, mut_ip6_frag, 0x0100, XDP_PASS,
				     CPN_STAT_PASS_FRAGMENT); /* last */
		check_request_defect(r, CPN_AF_INET6, vlan * 5, mut_ip6_frag, 0x0000, XDP_PASS,
				     CPN_STAT_PASS_FRAGMENT); /* atomic fragment */
	}
}

/* What the parser does not follow is not judged: passed untouched. */
static void test_unparsed_ip_variants_pass_untouched(void **state)
{
	for (int vlan = 0; vlan <= 1; vlan++) {
		assert_int_equal(t_topology(*state, CPN_AF_INET6, CPN_POL_P2C, 4), 0);
		check_request_defect(*state, CPN_AF_INET6, vlan * 9, mut_ip6_hbh, 0, XDP_PASS,
				     CPN_STAT_PASS_NOT_CPN);
		check_request_defect(*state, CPN_AF_INET6, vlan * 9, mut_ip_version, 4, XDP_PASS,
				     CPN_STAT_PASS_NOT_CPN);
		assert_int_equal(t_topology(*state, CPN_AF_INET, CPN_POL_P2C, 4), 0);
		check_request_defect(*state, CPN_AF_INET, vlan * 9, mut_ip_version, 6, XDP_PASS,
				     CPN_STAT_PASS_NOT_CPN);
	}
}

/* ---- traffic that is not cpn ----------------------------------------- */

static const __u8 mac_a[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
static const __u8 mac_b[6] = {0x02, 0x66, 0x77, 0x88, 0x99, 0xaa};

/* Ethernet (+ VLAN) header; returns the offset of the L3 header. */
static size_t eth(__u8 *f, int vlan, __u16 type)
{
	size_t off = 12;

	memcpy(f, mac_a, 6);
	memcpy(f + 6, mac_b, 6);
	if (vlan) {
		set_be16(f + off, 0x8100);
		set_be16(f + off + 2, (__u16)vlan);
		off += 4;
	}
	set_be16(f + off, type);
	return off + 2;
}

static size_t ip4(__u8 *f, size_t off, __u8 proto, const char *src, const char *dst, size_t l4_len)
{
	__be32 a[4];

	memset(f + off, 0, 20);
	f[off] = 0x45;
	set_be16(f + off + 2, (__u16)(20 + l4_len));
	set_be16(f + off + 4, 0x4242);
	f[off + 8] = 64;
	f[off + 9] = proto;
	rt_addr(src, a);
	memcpy(f + off + 12, a, 4);
	rt_addr(dst, a);
	memcpy(f + off + 16, a, 4);
	set_be16(f + off + 10, csum16(f + off, 20, 0));
	return off + 20;
}

static size_t ip6(__u8 *f, size_t off, __u8 nexthdr, const char *src, const char *dst,
		  size_t l4_len)
{
	__be32 a[4];

	memset(f + off, 0, 40);
	f[off] = 0x60;
	set_be16(f + off + 4, (__u16)l4_len);
	f[off + 6] = nexthdr;
	f[off + 7] = 64;
	rt_addr(src, a);
	memcpy(f + off + 8, a, 16);
	rt_addr(dst, a);
	memcpy(f + off + 24, a, 16);
	return off + 40;
}

/* Transport checksum with the pseudo-header of the IP header at `l3`. */
static __u16 l4_csum(const __u8 *f, size_t l3, size_t l4, size_t l4_len, __u8 proto)
{
	__u32 acc = proto + (__u32)l4_len;
	__u16 c;

	if ((f[l3] >> 4) == 4)
		c = csum16(f + l3 + 12, 8, 0);
	else
		c = csum16(f + l3 + 8, 32, 0);
	acc += (__u16)~c;
	return csum16(f + l4, l4_len, acc);
}

static void test_non_cpn_traffic_passes_untouched(void **state)
{
	struct router *r = *state;

	for (int vlan = 0; vlan <= 1; vlan++) {
		int vid = vlan ? 300 : 0;
		__u8 f[CPN_PKT_MAX];
		size_t off, l3, len;
		struct cpn_node before[5];

		assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 4), 0);
		/* Also an IPv6 service, so that v6 traffic meets a VIP too. */
		assert_int_equal(t_add_service(r, 2, CPN_AF_INET6, CPN_POL_P2C, (__u16[]){1}, 1),
				 0);
		snapshot_nodes(r, before);

		/* ARP who-has for the VIP. */
		memset(f, 0, sizeof(f));
		off = eth(f, vid, 0x0806);
		memset(f, 0xff, 6);
		set_be16(f + off, 1);
		set_be16(f + off + 2, 0x0800);
		f[off + 4] = 6;
		f[off + 5] = 4;
		set_be16(f + off + 6, 1);
		memcpy(f + off + 8, mac_b, 6);
		{
			__be32 a[4];

			rt_addr(T_CLIENT4, a);
			memcpy(f + off + 14, a, 4);
			rt_addr(T_VIP4, a);
			memcpy(f + off + 24, a, 4);
		}
		len = off + 28 < 60 ? 60 : off + 28;
		rt_assert_untouched(r, f, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);

		/* ICMP echo request to the VIP. */
		memset(f, 0, sizeof(f));
		l3 = eth(f, vid, 0x0800);
		off = ip4(f, l3, IPPROTO_ICMP, T_CLIENT4, T_VIP4, 8 + 56);
		f[off] = 8;
		set_be16(f + off + 4, 0x1234);
		set_be16(f + off + 6, 1);
		cpn_pkt_fill(f + off + 8, 56, 8);
		set_be16(f + off + 2, csum16(f + off, 64, 0));
		rt_assert_untouched(r, f, off + 64, XDP_PASS, CPN_STAT_PASS_NOT_CPN);

		/* ICMPv6 echo request to the v6 VIP. */
		memset(f, 0, sizeof(f));
		l3 = eth(f, vid, 0x86dd);
		off = ip6(f, l3, 58, T_CLIENT6, T_VIP6, 8 + 32);
		f[off] = 128;
		set_be16(f + off + 4, 0x1234);
		cpn_pkt_fill(f + off + 8, 32, 9);
		set_be16(f + off + 2, l4_csum(f, l3, off, 40, 58));
		rt_assert_untouched(r, f, off + 40, XDP_PASS, CPN_STAT_PASS_NOT_CPN);

		/* TCP SYN to the VIP's port. */
		memset(f, 0, sizeof(f));
		l3 = eth(f, vid, 0x0800);
		off = ip4(f, l3, IPPROTO_TCP, T_CLIENT4, T_VIP4, 20);
		set_be16(f + off, 40001);
		set_be16(f + off + 2, T_PORT);
		f[off + 4] = 0x12;
		f[off + 12] = 0x50;
		f[off + 13] = 0x02; /* SYN */
		set_be16(f + off + 14, 65535);
		set_be16(f + off + 16, l4_csum(f, l3, off, 20, IPPROTO_TCP));
		rt_assert_untouched(r, f, off + 20, XDP_PASS, CPN_STAT_PASS_NOT_CPN);

		/* UDP DNS, random payload: to the VIP's address, another port;
		 * and to another host. Also a payload that starts with cpn's
		 * magic to a port that is not cpn's.
		 */
		for (int k = 0; k < 3; k++) {
			struct cpn_pkt s;
			__u8 payload[80];

			cpn_pkt_fill(payload, sizeof(payload), 53 + (__u32)k);
			payload[0] = 0x12; /* not cpn's magic */
			cpn_pkt_default(&s, CPN_AF_INET);
			s.vlan = vid;
			s.with_hdr = false;
			s.dport = 53;
			s.dst = k == 1 ? "192.0.2.53" : T_VIP4;
			s.payload = payload;
			s.payload_len = sizeof(payload);
			if (k == 2) {
				struct cpn_hdr h;

				cpn_hdr_encode(&(struct cpn_msg){.magic = CPN_MAGIC,
								 .version = CPN_VERSION,
								 .type = CPN_T_REQUEST,
								 .service_id = T_SVC,
								 .tenant_id = T_TENANT},
					       &h);
				memcpy(payload, &h, sizeof(h));
			}
			len = cpn_pkt_build(&s, f, sizeof(f));
			rt_assert_untouched(r, f, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
		}

		/* UDP to the control port without cpn's magic (long and short). */
		for (int k = 0; k < 2; k++) {
			struct cpn_pkt s;
			__u8 payload[64];

			cpn_pkt_fill(payload, sizeof(payload), 71);
			payload[0] = 0x00;
			cpn_pkt_load(&s, CPN_AF_INET, 2);
			s.vlan = vid;
			s.with_hdr = false;
			s.payload = payload;
			s.payload_len = k ? 10 : sizeof(payload);
			len = cpn_pkt_build(&s, f, sizeof(f));
			rt_assert_untouched(r, f, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
		}

		/* IPv6 UDP: mDNS, and to the v6 VIP on another port. */
		for (int k = 0; k < 2; k++) {
			struct cpn_pkt s;
			__u8 payload[100];

			cpn_pkt_fill(payload, sizeof(payload), 6 + (__u32)k);
			payload[0] = 0;
			cpn_pkt_default(&s, CPN_AF_INET6);
			s.vlan = vid;
			s.with_hdr = false;
			s.sport = 5353;
			s.dport = 5353;
			s.dst = k ? T_VIP6 : "ff02::fb";
			s.payload = payload;
			s.payload_len = sizeof(payload);
			len = cpn_pkt_build(&s, f, sizeof(f));
			rt_assert_untouched(r, f, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
		}

		/* A cpn request already steered by another router, passing
		 * through on its way to the node: not for a VIP here.
		 */
		{
			struct cpn_pkt s;

			cpn_pkt_default(&s, CPN_AF_INET);
			s.vlan = vid;
			s.dst = "10.1.0.2";
			s.msg.flags = CPN_F_TAGGED;
			s.msg.node_id = 2;
			s.msg.hops = 1;
			len = cpn_pkt_build(&s, f, sizeof(f));
			rt_assert_untouched(r, f, len, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
		}

		/* Non-IP frames: LLDP, and an IPX-era 802.3 length field. */
		memset(f, 0, sizeof(f));
		off = eth(f, vid, 0x88cc);
		cpn_pkt_fill(f + off, 46, 11);
		rt_assert_untouched(r, f, off + 46, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
		memset(f, 0, sizeof(f));
		off = eth(f, vid, 46);
		cpn_pkt_fill(f + off, 46, 12);
		rt_assert_untouched(r, f, off + 46, XDP_PASS, CPN_STAT_PASS_NOT_CPN);

		assert_nodes_unchanged(r, before);
	}
}

/* Two VLAN tags (802.1ad outside 802.1Q): only one is parsed, so a
 * double-tagged request is not ours. A tag cut short is passed.
 */
static void test_double_tagged_and_cut_vlan_frames_pass_untouched(void **state)
{
	struct router *r = *state;
	__u8 in[CPN_PKT_MAX], f[CPN_PKT_MAX];
	size_t len;

	assert_int_equal(t_topology(r, CPN_AF_INET, CPN_POL_P2C, 4), 0);
	len = good_request(CPN_AF_INET, 10, in);
	memcpy(f, in, 12);
	set_be16(f + 12, 0x88a8);
	set_be16(f + 14, 20);
	memcpy(f + 16, in + 12, len - 12);
	rt_assert_untouched(r, f, len + 4, XDP_PASS, CPN_STAT_PASS_NOT_CPN);
	/* 802.1ad alone is parsed like 802.1Q. */
	memcpy(f, in, len);
	set_be16(f + 12, 0x88a8);
	{
		struct rt_out o;

		rt_run(r, f, len, &o);
		assert_int_equal(o.act, XDP_PASS);
		assert_in_range(cpn_pkt_steered_node(o.buf, o.len), 1, 4);
	}
	for (size_t cut = 14; cut < 18; cut++)
		rt_assert_untouched(r, in, cut, XDP_PASS, CPN_STAT_PASS_SHORT_L2);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, t_router_setup, t_router_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_short_payload_at_every_length_is_dropped_short),
	    T(test_frames_cut_at_every_offset_are_never_rewritten),
	    T(test_bad_magic_is_dropped),
	    T(test_bad_version_is_dropped),
	    T(test_unknown_type_or_non_request_to_vip_is_dropped),
	    T(test_wrong_service_id_is_dropped),
	    T(test_hops_at_max_is_dropped),
	    T(test_bad_udp_length_is_dropped),
	    T(test_bad_ip_length_is_dropped),
	    T(test_ipv4_with_options_passes_untouched),
	    T(test_fragments_pass_untouched),
	    T(test_unparsed_ip_variants_pass_untouched),
	    T(test_non_cpn_traffic_passes_untouched),
	    T(test_double_tagged_and_cut_vlan_frames_pass_untouched),
	};
#undef T
	return cmocka_run_group_tests_name("bpf_router_malformed", tests, NULL, NULL);
}
