/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Assertions shared by the router suites (selftests/bpf/test_router*.c):
 * run a frame with the counters read before and after, and check verdicts,
 * counters and bytes. Include after <cmocka.h>.
 */
#ifndef CPN_ROUTER_TEST_H
#define CPN_ROUTER_TEST_H

#include <stdio.h>
#include <string.h>
#include <linux/bpf.h>

#include "cpn_test.h"

/* One run of the router: verdict, output frame, counters around it. */
struct rt_out {
	int act;
	size_t len;
	__u8 buf[CPN_PKT_MAX];
	__u64 before[CPN_STAT_MAX];
	__u64 after[CPN_STAT_MAX];
};

/* A byte range of a frame: [off, off + len). */
struct rt_range {
	size_t off, len;
};

#define RT_END (-1)

static inline void rt_run(struct router *r, const __u8 *in, size_t len, struct rt_out *o)
{
	o->len = sizeof(o->buf);
	assert_int_equal(router_stats(r, o->before), 0);
	o->act = router_run(r, in, len, o->buf, &o->len);
	assert_int_equal(router_stats(r, o->after), 0);
}

static inline __u64 rt_delta(const struct rt_out *o, enum cpn_stat s)
{
	return o->after[s] - o->before[s];
}

/* The run counted RX once, each stat of `stats` (ended by RT_END) once and
 * nothing else.
 */
static inline void rt_assert_counted(const struct rt_out *o, const int *stats)
{
	for (int s = 0; s < CPN_STAT_MAX; s++) {
		__u64 want = s == CPN_STAT_RX ? 1 : 0;

		for (const int *p = stats; *p != RT_END; p++)
			if (*p == s)
				want = 1;
		if (rt_delta(o, (enum cpn_stat)s) != want)
			fail_msg("counter %s went up by %llu, expected %llu", cpn_stat_names[s],
				 (unsigned long long)rt_delta(o, (enum cpn_stat)s),
				 (unsigned long long)want);
	}
}

/* a and b are the same except inside the ranges. */
static inline void rt_assert_same_except(const __u8 *a, const __u8 *b, size_t len,
					 const struct rt_range *skip, int n)
{
	for (size_t i = 0; i < len; i++) {
		bool skipped = false;

		for (int k = 0; k < n; k++)
			if (i >= skip[k].off && i < skip[k].off + skip[k].len)
				skipped = true;
		if (!skipped && a[i] != b[i])
			fail_msg("byte %zu changed: 0x%02x -> 0x%02x", i, a[i], b[i]);
	}
}

static inline void rt_assert_frame_equal(const __u8 *in, size_t in_len, const struct rt_out *o)
{
	assert_int_equal(o->len, in_len);
	rt_assert_same_except(in, o->buf, in_len, NULL, 0);
}

/* The frame comes back byte for byte with verdict `act`, and the only
 * counter besides RX that moved is `stat`, by exactly one.
 */
static inline void rt_assert_untouched(struct router *r, const __u8 *in, size_t len, int act,
				       enum cpn_stat stat)
{
	struct rt_out o;

	rt_run(r, in, len, &o);
	if (o.act != act)
		fail_msg("verdict %d, expected %d (frame of %zu bytes)", o.act, act, len);
	rt_assert_frame_equal(in, len, &o);
	rt_assert_counted(&o, (int[]){(int)stat, RT_END});
}

/* Build and run a request that must be steered; returns the node. */
static inline __u16 rt_steer(struct router *r, const struct cpn_pkt *s)
{
	__u8 in[CPN_PKT_MAX], out[CPN_PKT_MAX];
	size_t len, out_len = sizeof(out);
	__u16 id;

	len = cpn_pkt_build(s, in, sizeof(in));
	assert_true(len > 0);
	assert_int_equal(router_run(r, in, len, out, &out_len), XDP_PASS);
	assert_int_equal(out_len, len);
	id = cpn_pkt_steered_node(out, out_len);
	if (!id)
		fail_msg("request was not steered to a node");
	return id;
}

/* Node state as the router left it, for a before/after comparison. */
static inline void rt_node_snapshot(struct router *r, __u16 id, struct cpn_node *n)
{
	memcpy(n, &r->maps.state[id], sizeof(*n));
}

/* Address of node `id` as it lies in a packet. */
static inline void rt_node_addr(int family, __u16 id, __be32 addr[4])
{
	char a[48];
	__u8 fam;

	cpn_pkt_node_addr(id, family, a, sizeof(a));
	assert_int_equal(cpn_addr_parse(a, addr, &fam), 0);
}

static inline void rt_addr(const char *s, __be32 addr[4])
{
	__u8 fam;

	assert_int_equal(cpn_addr_parse(s, addr, &fam), 0);
}

static inline size_t rt_addr_len(int family)
{
	return family == CPN_AF_INET ? 4 : 16;
}

/* Offsets of the source and destination addresses of a located frame. */
static inline size_t rt_saddr_off(const struct cpn_pkt_view *v)
{
	return v->l3 + (v->family == CPN_AF_INET ? 12 : 8);
}

static inline size_t rt_daddr_off(const struct cpn_pkt_view *v)
{
	return v->l3 + (v->family == CPN_AF_INET ? 16 : 24);
}

static inline __u16 rt_be16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static inline void rt_decode(const __u8 *buf, const struct cpn_pkt_view *v, struct cpn_msg *m)
{
	struct cpn_hdr h;

	memcpy(&h, buf + v->pay, sizeof(h));
	cpn_hdr_decode(&h, m);
}

#define RT_FAMILY_STR(f) ((f) == CPN_AF_INET ? "IPv4" : "IPv6")

/* The four framings of the rewrite tests. */
static const struct {
	int family, vlan;
} rt_framings[] = {
    {CPN_AF_INET, 0},
    {CPN_AF_INET, 100},
    {CPN_AF_INET6, 0},
    {CPN_AF_INET6, 4000},
};
#define RT_NFRAMINGS ((int)(sizeof(rt_framings) / sizeof(rt_framings[0])))

#endif /* CPN_ROUTER_TEST_H */
