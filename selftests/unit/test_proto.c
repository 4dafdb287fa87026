// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of the wire format (include/cpn/proto.h), SipHash-2-4 and the
 * request/report tags (siphash.h), the incremental Internet checksum
 * (csum.h), and the tenant rate limiter and ACL bitmap (maps.h).
 *
 * The references here are written from the specifications, byte by byte,
 * independently of the headers under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "cpn/proto.h"
#include "cpn/siphash.h"
#include "cpn/csum.h"
#include "cpn/maps.h"
#include "cpn_util.h"

/* ---- helpers ---------------------------------------------------------- */

static uint64_t sm_state = 0x243f6a8885a308d3ULL;

static uint64_t rng(void)
{
	return cpn_splitmix64(&sm_state);
}

static void rng_bytes(void *p, size_t len)
{
	__u8 *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = (__u8)rng();
}

static __u64 get_le64(const __u8 *p)
{
	__u64 v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le64(__u8 *p, __u64 v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (__u8)(v >> (8 * i));
}

/* A header with a distinct value in every field. */
static void sample_msg(struct cpn_msg *m)
{
	cpn_msg_init(m, CPN_T_REPLY);
	m->flags = CPN_F_AUTH | CPN_F_STICKY;
	m->service_id = 0x0a0b;
	m->tenant_id = 0x01020304;
	m->session_key = 0xc0ffee01;
	m->request_id = 0x1122334455667788ULL;
	m->node_id = 0x0d0e;
	m->hops = 3;
	m->class = 5;
	m->router_ts = 0xdeadbeef;
	m->queue_depth = 0x1a1b;
	m->inflight = 0x2a2b;
	m->capacity = 0x3a3b;
	m->util = 0xc8;
	m->status = 0x07;
	m->worker_us = 0x4a4b4c4d;
	m->stamp = 0x5a5b5c5d;
}

/* ---- layout and byte order --------------------------------------------- */

static void test_hdr_layout_matches_wire_format(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct cpn_hdr), 48);
	assert_int_equal(CPN_HDR_LEN, 48);
	assert_int_equal(CPN_TAG_LEN, 8);
	assert_int_equal(CPN_AUTH_REQ_LEN, 24);
	assert_int_equal(CPN_AUTH_NODE_LEN, 48);
	assert_int_equal(offsetof(struct cpn_hdr, magic), 0);
	assert_int_equal(offsetof(struct cpn_hdr, version), 2);
	assert_int_equal(offsetof(struct cpn_hdr, type), 3);
	assert_int_equal(offsetof(struct cpn_hdr, flags), 4);
	assert_int_equal(offsetof(struct cpn_hdr, service_id), 6);
	assert_int_equal(offsetof(struct cpn_hdr, tenant_id), 8);
	assert_int_equal(offsetof(struct cpn_hdr, session_key), 12);
	assert_int_equal(offsetof(struct cpn_hdr, request_id), 16);
	assert_int_equal(offsetof(struct cpn_hdr, node_id), 24);
	assert_int_equal(offsetof(struct cpn_hdr, hops), 26);
	assert_int_equal(offsetof(struct cpn_hdr, class), 27);
	assert_int_equal(offsetof(struct cpn_hdr, router_ts), 28);
	assert_int_equal(offsetof(struct cpn_hdr, queue_depth), 32);
	assert_int_equal(offsetof(struct cpn_hdr, inflight), 34);
	assert_int_equal(offsetof(struct cpn_hdr, capacity), 36);
	assert_int_equal(offsetof(struct cpn_hdr, util), 38);
	assert_int_equal(offsetof(struct cpn_hdr, status), 39);
	assert_int_equal(offsetof(struct cpn_hdr, worker_us), 40);
	assert_int_equal(offsetof(struct cpn_hdr, stamp), 44);
	/* the constants of the spec */
	assert_int_equal(CPN_MAGIC, 0x4350);
	assert_int_equal(CPN_VERSION, 1);
	assert_int_equal(CPN_T_REQUEST, 1);
	assert_int_equal(CPN_T_REPLY, 2);
	assert_int_equal(CPN_T_LOAD, 3);
	assert_int_equal(CPN_T_PROBE, 4);
	assert_int_equal(CPN_T_PROBE_ACK, 5);
	assert_int_equal(CPN_T_BUSY, 6);
	assert_int_equal(CPN_F_TAGGED, 0x0001);
	assert_int_equal(CPN_F_AUTH, 0x0002);
	assert_int_equal(CPN_F_DRAINING, 0x0004);
	assert_int_equal(CPN_F_STICKY, 0x0008);
}

static void test_hdr_round_trip_preserves_every_field(void **state)
{
	struct cpn_msg m, back;
	struct cpn_hdr h;

	(void)state;
	sample_msg(&m);
	memset(&h, 0xee, sizeof(h));
	cpn_hdr_encode(&m, &h);
	memset(&back, 0xee, sizeof(back));
	cpn_hdr_decode(&h, &back);
	assert_int_equal(back.magic, CPN_MAGIC);
	assert_int_equal(back.version, CPN_VERSION);
	assert_int_equal(back.type, CPN_T_REPLY);
	assert_int_equal(back.flags, CPN_F_AUTH | CPN_F_STICKY);
	assert_int_equal(back.service_id, 0x0a0b);
	assert_int_equal(back.tenant_id, 0x01020304);
	assert_int_equal(back.session_key, 0xc0ffee01);
	assert_true(back.request_id == 0x1122334455667788ULL);
	assert_int_equal(back.node_id, 0x0d0e);
	assert_int_equal(back.hops, 3);
	assert_int_equal(back.class, 5);
	assert_int_equal(back.router_ts, 0xdeadbeef);
	assert_int_equal(back.queue_depth, 0x1a1b);
	assert_int_equal(back.inflight, 0x2a2b);
	assert_int_equal(back.capacity, 0x3a3b);
	assert_int_equal(back.util, 0xc8);
	assert_int_equal(back.status, 0x07);
	assert_int_equal(back.worker_us, 0x4a4b4c4d);
	assert_int_equal(back.stamp, 0x5a5b5c5d);

	/* and random headers both ways: msg -> hdr -> msg, hdr -> msg -> hdr */
	for (int i = 0; i < 1000; i++) {
		struct cpn_hdr h2;

		rng_bytes(&h, sizeof(h));
		cpn_hdr_decode(&h, &m);
		cpn_hdr_encode(&m, &h2);
		assert_memory_equal(&h, &h2, sizeof(h));
		cpn_hdr_decode(&h2, &back);
		assert_memory_equal(&m, &back, sizeof(m));
	}
}

static void test_hdr_encode_writes_network_byte_order(void **state)
{
	static const __u8 want[48] = {
	    0x43, 0x50,					    /* magic */
	    0x01,					    /* version */
	    0x02,					    /* type REPLY */
	    0x00, 0x0a,					    /* flags AUTH|STICKY */
	    0x0a, 0x0b,					    /* service_id */
	    0x01, 0x02, 0x03, 0x04,			    /* tenant_id */
	    0xc0, 0xff, 0xee, 0x01,			    /* session_key */
	    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* request_id */
	    0x0d, 0x0e,					    /* node_id */
	    0x03,					    /* hops */
	    0x05,					    /* class */
	    0xde, 0xad, 0xbe, 0xef,			    /* router_ts */
	    0x1a, 0x1b,					    /* queue_depth */
	    0x2a, 0x2b,					    /* inflight */
	    0x3a, 0x3b,					    /* capacity */
	    0xc8,					    /* util */
	    0x07,					    /* status */
	    0x4a, 0x4b, 0x4c, 0x4d,			    /* worker_us */
	    0x5a, 0x5b, 0x5c, 0x5d,			    /* stamp */
	};
	struct cpn_msg m;
	struct cpn_hdr h;

	(void)state;
	sample_msg(&m);
	cpn_hdr_encode(&m, &h);
	assert_memory_equal(&h, want, sizeof(want));
}

static void test_hdr_decode_reads_network_byte_order(void **state)
{
	__u8 raw[48] = {0};
	struct cpn_hdr h;
	struct cpn_msg m;

	(void)state;
	raw[0] = 0x43;
	raw[1] = 0x50;
	raw[2] = 1;
	raw[3] = 3;
	raw[5] = 0x04; /* DRAINING */
	raw[8] = 0x80; /* tenant_id 0x80000001 */
	raw[11] = 0x01;
	raw[16] = 0x01; /* request_id 1 << 56 */
	raw[25] = 0x2a; /* node_id 42 */
	raw[32] = 0x01; /* queue_depth 256 */
	raw[40] = 0x00; /* worker_us 0x00010000 */
	raw[41] = 0x01;
	memcpy(&h, raw, sizeof(h));
	cpn_hdr_decode(&h, &m);
	assert_int_equal(m.magic, CPN_MAGIC);
	assert_int_equal(m.type, CPN_T_LOAD);
	assert_int_equal(m.flags, CPN_F_DRAINING);
	assert_int_equal(m.tenant_id, 0x80000001U);
	assert_true(m.request_id == 1ULL << 56);
	assert_int_equal(m.node_id, 42);
	assert_int_equal(m.queue_depth, 256);
	assert_int_equal(m.worker_us, 0x10000);
}

static void test_msg_init_sets_magic_version_type_and_clears_rest(void **state)
{
	struct cpn_msg m, zero;

	(void)state;
	memset(&m, 0xff, sizeof(m));
	cpn_msg_init(&m, CPN_T_PROBE);
	assert_int_equal(m.magic, CPN_MAGIC);
	assert_int_equal(m.version, CPN_VERSION);
	assert_int_equal(m.type, CPN_T_PROBE);
	memset(&zero, 0, sizeof(zero));
	zero.magic = CPN_MAGIC;
	zero.version = CPN_VERSION;
	zero.type = CPN_T_PROBE;
	assert_memory_equal(&m, &zero, sizeof(m));
}

/* ---- cpn_hdr_check ------------------------------------------------------ */

static void valid_hdr(struct cpn_hdr *h, __u8 type, __u16 flags)
{
	struct cpn_msg m;

	cpn_msg_init(&m, type);
	m.flags = flags;
	cpn_hdr_encode(&m, h);
}

static void test_hdr_check_accepts_every_type(void **state)
{
	struct cpn_hdr h;

	(void)state;
	for (int t = 1; t <= CPN_T_MAX; t++) {
		valid_hdr(&h, t, 0);
		assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_OK);
		assert_int_equal(cpn_hdr_check(&h, 1500), CPN_HDR_OK);
		/* non-AUTH flags need no tag */
		valid_hdr(&h, t, CPN_F_TAGGED | CPN_F_DRAINING | CPN_F_STICKY);
		assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_OK);
	}
}

static void test_hdr_check_rejects_short(void **state)
{
	struct cpn_hdr h;

	(void)state;
	valid_hdr(&h, CPN_T_REQUEST, 0);
	assert_int_equal(cpn_hdr_check(&h, 47), CPN_HDR_SHORT);
	assert_int_equal(cpn_hdr_check(&h, 0), CPN_HDR_SHORT);
	/* shortness is decided before anything is read */
	memset(&h, 0, sizeof(h));
	assert_int_equal(cpn_hdr_check(&h, 20), CPN_HDR_SHORT);
}

static void test_hdr_check_rejects_bad_magic(void **state)
{
	struct cpn_hdr h;

	(void)state;
	valid_hdr(&h, CPN_T_REQUEST, 0);
	h.magic = cpn_htons(0x5043); /* byte-swapped */
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_MAGIC);
	h.magic = 0;
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_MAGIC);
	h.magic = cpn_htons(0x4351);
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_MAGIC);
}

static void test_hdr_check_rejects_bad_version(void **state)
{
	struct cpn_hdr h;

	(void)state;
	valid_hdr(&h, CPN_T_REQUEST, 0);
	h.version = 0;
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_VERSION);
	h.version = 2;
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_VERSION);
	h.version = 0xff;
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_VERSION);
}

static void test_hdr_check_rejects_type_0_and_above_max(void **state)
{
	struct cpn_hdr h;

	(void)state;
	valid_hdr(&h, 0, 0);
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_TYPE);
	valid_hdr(&h, 7, 0);
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_TYPE);
	valid_hdr(&h, 0xff, 0);
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_BAD_TYPE);
}

static void test_hdr_check_auth_needs_tag(void **state)
{
	struct cpn_hdr h;

	(void)state;
	valid_hdr(&h, CPN_T_REQUEST, CPN_F_AUTH);
	assert_int_equal(cpn_hdr_check(&h, 48), CPN_HDR_SHORT);
	assert_int_equal(cpn_hdr_check(&h, 55), CPN_HDR_SHORT);
	assert_int_equal(cpn_hdr_check(&h, 56), CPN_HDR_OK);
	assert_int_equal(cpn_hdr_check(&h, 100), CPN_HDR_OK);
	valid_hdr(&h, CPN_T_LOAD, CPN_F_AUTH | CPN_F_DRAINING);
	assert_int_equal(cpn_hdr_check(&h, 50), CPN_HDR_SHORT);
	assert_int_equal(cpn_hdr_check(&h, 56), CPN_HDR_OK);
}

static void test_hdr_total_len_counts_tag_only_with_auth(void **state)
{
	struct cpn_hdr h;

	(void)state;
	valid_hdr(&h, CPN_T_REQUEST, 0);
	assert_int_equal(cpn_hdr_total_len(&h), 48);
	valid_hdr(&h, CPN_T_REQUEST, CPN_F_TAGGED | CPN_F_STICKY | CPN_F_DRAINING);
	assert_int_equal(cpn_hdr_total_len(&h), 48);
	valid_hdr(&h, CPN_T_REQUEST, CPN_F_AUTH);
	assert_int_equal(cpn_hdr_total_len(&h), 56);
}

/* ---- SipHash-2-4 -------------------------------------------------------- */

static __u64 rotl(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void sipround(__u64 v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl(v[2], 32);
}

/* SipHash-2-4 as in the paper (Aumasson & Bernstein, 2012, section 2):
 * any length, bytes in, little-endian words, host-independent.
 */
static __u64 ref_siphash24(const __u8 key[16], const __u8 *m, size_t len)
{
	__u64 k0 = get_le64(key), k1 = get_le64(key + 8);
	__u64 v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
		      k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
	size_t end = len - len % 8;
	__u64 b = (__u64)(len & 0xff) << 56;

	for (size_t i = 0; i < end; i += 8) {
		__u64 mi = get_le64(m + i);

		v[3] ^= mi;
		sipround(v);
		sipround(v);
		v[0] ^= mi;
	}
	for (size_t j = 0; j < len % 8; j++)
		b |= (__u64)m[end + j] << (8 * j);
	v[3] ^= b;
	sipround(v);
	sipround(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* key = 00 01 .. 0f, message = 00 01 .. (n-1) */
static const struct {
	int n;
	__u64 out;
} sip_vectors[] = {
    {0, 0x726fdb47dd0e0e31ULL},	 {1, 0x74f839c593dc67fdULL},  {7, 0xab0200f58b01d137ULL},
    {8, 0x93f5f5799a932462ULL},	 {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL},
    {19, 0xbb6dc91da77961bdULL}, {24, 0xb8ad50c6f649af94ULL}, {32, 0x7127512f72f27cceULL},
    {40, 0x0e3ea96b5304a7d0ULL}, {48, 0xe612a3cb9ecba951ULL}, {63, 0x958a324ceb064572ULL},
};

/* The same entries as vectors.h of the reference code prints them: the
 * output bytes in order (little-endian).
 */
static const __u8 vec_bytes_8[8] = {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93};
static const __u8 vec_bytes_16[8] = {0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f};

static __u8 vec_key[16], vec_msg[64];

static int init_vectors(void **state)
{
	(void)state;
	for (int i = 0; i < 16; i++)
		vec_key[i] = (__u8)i;
	for (int i = 0; i < 64; i++)
		vec_msg[i] = (__u8)i;
	return 0;
}

static void test_siphash_reference_matches_published_vectors(void **state)
{
	__u8 out[8];

	(void)state;
	for (unsigned i = 0; i < sizeof(sip_vectors) / sizeof(sip_vectors[0]); i++)
		assert_true(ref_siphash24(vec_key, vec_msg, sip_vectors[i].n) ==
			    sip_vectors[i].out);
	put_le64(out, ref_siphash24(vec_key, vec_msg, 8));
	assert_memory_equal(out, vec_bytes_8, 8);
	put_le64(out, ref_siphash24(vec_key, vec_msg, 16));
	assert_memory_equal(out, vec_bytes_16, 8);
}

static void test_siphash24_matches_published_vectors(void **state)
{
	const __u64 key[2] = {get_le64(vec_key), get_le64(vec_key + 8)};
	__u64 words[CPN_SIP_MAX_WORDS];

	(void)state;
	assert_true(key[0] == 0x0706050403020100ULL && key[1] == 0x0f0e0d0c0b0a0908ULL);
	memcpy(words, vec_msg, sizeof(words)); /* the bytes as they lie in memory */
	for (int nw = 0; nw <= CPN_SIP_MAX_WORDS; nw++) {
		__u64 want = ref_siphash24(vec_key, vec_msg, 8 * nw);

		assert_true(cpn_siphash24(key, words, nw) == want);
		for (unsigned i = 0; i < sizeof(sip_vectors) / sizeof(sip_vectors[0]); i++)
			if (sip_vectors[i].n == 8 * nw)
				assert_true(cpn_siphash24(key, words, nw) == sip_vectors[i].out);
	}
}

static void test_siphash24_matches_reference_on_random_input(void **state)
{
	(void)state;
	for (int i = 0; i < 5000; i++) {
		__u8 kb[16], mb[48];
		__u64 key[2], words[6];
		int nw = i % 7;

		rng_bytes(kb, sizeof(kb));
		rng_bytes(mb, sizeof(mb));
		key[0] = get_le64(kb);
		key[1] = get_le64(kb + 8);
		memcpy(words, mb, sizeof(words));
		assert_true(cpn_siphash24(key, words, nw) == ref_siphash24(kb, mb, 8 * nw));
	}
}

/* The tag on the wire is the 8 output bytes in the reference's order. */
static void test_tag_wire_is_reference_output_bytes(void **state)
{
	const __u64 key[2] = {get_le64(vec_key), get_le64(vec_key + 8)};
	__u64 words[2], tag;

	(void)state;
	memcpy(words, vec_msg, sizeof(words));
	tag = cpn_tag_wire(cpn_siphash24(key, words, 1));
	assert_memory_equal(&tag, vec_bytes_8, 8);
	tag = cpn_tag_wire(cpn_siphash24(key, words, 2));
	assert_memory_equal(&tag, vec_bytes_16, 8);
}

static void random_request(struct cpn_hdr *h, __u8 kb[16], __u64 key[2])
{
	rng_bytes(h, sizeof(*h));
	rng_bytes(kb, 16);
	key[0] = get_le64(kb);
	key[1] = get_le64(kb + 8);
}

static void test_tag_request_signs_bytes_0_to_23_with_tagged_cleared(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct cpn_hdr h;
		__u8 kb[16], span[24], want[8];
		__u64 key[2], tag;

		random_request(&h, kb, key);
		memcpy(span, &h, 24);
		span[5] &= ~0x01; /* flags are big-endian: TAGGED is bit 0 of byte 5 */
		put_le64(want, ref_siphash24(kb, span, 24));
		tag = cpn_tag_request(key, &h);
		assert_memory_equal(&tag, want, 8);
	}
}

static void test_tag_request_ignores_tagged_flag(void **state)
{
	struct cpn_hdr h;
	__u8 kb[16];
	__u64 key[2], t0;

	(void)state;
	random_request(&h, kb, key);
	h.flags = cpn_htons(CPN_F_AUTH);
	t0 = cpn_tag_request(key, &h);
	h.flags = cpn_htons(CPN_F_AUTH | CPN_F_TAGGED);
	assert_true(cpn_tag_request(key, &h) == t0);
	/* nor does a steering hop's node_id and hops */
	h.node_id = cpn_htons(77);
	h.hops = 2;
	assert_true(cpn_tag_request(key, &h) == t0);
}

static void test_tag_request_covers_other_flags(void **state)
{
	struct cpn_hdr h;
	__u8 kb[16];
	__u64 key[2], t0;

	(void)state;
	random_request(&h, kb, key);
	h.flags = cpn_htons(CPN_F_AUTH);
	t0 = cpn_tag_request(key, &h);
	for (int bit = 0; bit < 16; bit++) {
		__u16 f = CPN_F_AUTH ^ (1u << bit);
		__u64 t1;

		if ((1u << bit) == CPN_F_TAGGED)
			continue;
		h.flags = cpn_htons(f);
		t1 = cpn_tag_request(key, &h);
		assert_true(t1 != t0);
		/* with TAGGED also set: the same as without */
		h.flags = cpn_htons(f | CPN_F_TAGGED);
		assert_true(cpn_tag_request(key, &h) == t1);
	}
}

static void test_tag_request_changes_with_any_bit_of_bytes_0_to_23(void **state)
{
	struct cpn_hdr h;
	__u8 kb[16];
	__u64 key[2], t0;

	(void)state;
	random_request(&h, kb, key);
	h.flags &= ~cpn_htons(CPN_F_TAGGED);
	t0 = cpn_tag_request(key, &h);
	for (int byte = 0; byte < 24; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			struct cpn_hdr x = h;

			if (byte == 5 && bit == 0)
				continue; /* TAGGED */
			((__u8 *)&x)[byte] ^= 1u << bit;
			assert_true(cpn_tag_request(key, &x) != t0);
		}
	}
	/* bytes 24..47 are not signed: hops rewrite them */
	for (int byte = 24; byte < 48; byte++) {
		struct cpn_hdr x = h;

		((__u8 *)&x)[byte] ^= 0xff;
		assert_true(cpn_tag_request(key, &x) == t0);
	}
}

static void test_tag_request_leaves_header_unchanged(void **state)
{
	struct cpn_hdr h, copy;
	__u8 kb[16];
	__u64 key[2];

	(void)state;
	random_request(&h, kb, key);
	h.flags |= cpn_htons(CPN_F_TAGGED);
	copy = h;
	(void)cpn_tag_request(key, &h);
	(void)cpn_tag_node(key, &h);
	assert_memory_equal(&h, &copy, sizeof(h));
}

/* FRESH: the reference SipHash over bytes 0..23 (TAGGED cleared), then the
 * stamp's 4 bytes as they lie and 4 zero bytes.
 */
static void test_tag_request_fresh_signs_the_stamp_too(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct cpn_hdr h;
		__u8 kb[16], span[32], want[8];
		__u64 key[2], tag, t1;

		random_request(&h, kb, key);
		h.flags |= cpn_htons(CPN_F_FRESH);
		memcpy(span, &h, 24);
		span[5] &= ~0x01;
		memcpy(span + 24, &h.stamp, 4);
		memset(span + 28, 0, 4);
		put_le64(want, ref_siphash24(kb, span, 32));
		tag = cpn_tag_request_fresh(key, &h);
		assert_memory_equal(&tag, want, 8);
		assert_true(cpn_tag_request_any(key, &h) == tag);
		h.stamp ^= cpn_htonl(1u << (i % 32));
		t1 = cpn_tag_request_fresh(key, &h);
		assert_true(t1 != tag);
		h.flags &= ~cpn_htons(CPN_F_FRESH);
		assert_true(cpn_tag_request_any(key, &h) == cpn_tag_request(key, &h));
	}
}

/* The hop tag: the reference over {request_id}, {tenant, service, node},
 * {router_ts, stamp} as they lie, low 32 bits in memory order; every other
 * byte of the header may change without changing it.
 */
static void test_hop_tag_covers_identity_node_time_and_stamp_only(void **state)
{
	(void)state;
	for (int i = 0; i < 500; i++) {
		struct cpn_hdr h, g;
		__u8 kb[16], span[24];
		__u64 key[2], ref;
		__be32 tag, want;

		random_request(&h, kb, key);
		memcpy(span, &h.request_id, 8);
		memcpy(span + 8, &h.tenant_id, 4);
		memcpy(span + 12, &h.service_id, 2);
		memcpy(span + 14, &h.node_id, 2);
		memcpy(span + 16, &h.router_ts, 4);
		memcpy(span + 20, &h.stamp, 4);
		ref = ref_siphash24(kb, span, 24);
		{
			__u8 ob[8];

			put_le64(ob, ref);
			memcpy(&want, ob, 4); /* the first 4 output bytes */
		}
		tag = cpn_hop_tag(key, &h);
		assert_int_equal(tag, want);
		/* outside the span: flags, hops, class, the load fields */
		g = h;
		g.flags ^= cpn_htons(CPN_F_TAGGED);
		g.hops++;
		g.class ^= 3;
		g.queue_depth ^= 0xffff;
		g.worker_us ^= 0xffffffff;
		assert_int_equal(cpn_hop_tag(key, &g), tag);
		/* inside: each field */
		g = h;
		g.node_id ^= cpn_htons(1);
		assert_true(cpn_hop_tag(key, &g) != tag);
		g = h;
		g.router_ts ^= cpn_htonl(1);
		assert_true(cpn_hop_tag(key, &g) != tag);
		g = h;
		g.request_id ^= 1;
		assert_true(cpn_hop_tag(key, &g) != tag);
		g = h;
		g.tenant_id ^= 1;
		assert_true(cpn_hop_tag(key, &g) != tag);
	}
}

static void test_probe_cookie_and_join_tag_match_the_reference(void **state)
{
	(void)state;
	for (int i = 0; i < 500; i++) {
		struct cpn_hdr h;
		__u8 kb[16], span[32], want[8], addr[16], inner[8];
		__u64 key[2], c, j, in;
		__be16 node, port;
		__be32 ts;

		random_request(&h, kb, key);
		rng_bytes(&node, 2);
		rng_bytes(&ts, 4);
		memset(span, 0, 8);
		memcpy(span, &node, 2);
		memcpy(span + 4, &ts, 4);
		put_le64(want, ref_siphash24(kb, span, 8));
		c = cpn_probe_cookie(key, node, ts);
		assert_memory_equal(&c, want, 8);
		assert_true(cpn_probe_cookie(key, node, ts ^ cpn_htonl(1)) != c);

		rng_bytes(addr, 16);
		rng_bytes(&port, 2);
		in = cpn_tag_node(key, &h);
		put_le64(inner, ref_siphash24(kb, (const __u8 *)&h, 48));
		assert_memory_equal(&in, inner, 8);
		memcpy(span, &in, 8);
		memcpy(span + 8, addr, 16);
		memset(span + 24, 0, 8);
		memcpy(span + 24, &port, 2);
		put_le64(want, ref_siphash24(kb, span, 32));
		j = cpn_tag_join(key, &h, addr, port);
		assert_memory_equal(&j, want, 8);
		addr[i % 16] ^= 1;
		assert_true(cpn_tag_join(key, &h, addr, port) != j);
		addr[i % 16] ^= 1;
		assert_true(cpn_tag_join(key, &h, addr, port ^ cpn_htons(1)) != j);
	}
}

static void test_tag_node_signs_all_48_bytes(void **state)
{
	struct cpn_hdr h;
	__u8 kb[16], want[8];
	__u64 key[2], t0;

	(void)state;
	random_request(&h, kb, key);
	put_le64(want, ref_siphash24(kb, (const __u8 *)&h, 48));
	t0 = cpn_tag_node(key, &h);
	assert_memory_equal(&t0, want, 8);
	for (int byte = 0; byte < 48; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			struct cpn_hdr x = h;

			((__u8 *)&x)[byte] ^= 1u << bit; /* TAGGED included */
			assert_true(cpn_tag_node(key, &x) != t0);
		}
	}
}

static void test_tags_depend_on_every_key_bit(void **state)
{
	struct cpn_hdr h;
	__u8 kb[16];
	__u64 key[2], tr, tn;

	(void)state;
	random_request(&h, kb, key);
	tr = cpn_tag_request(key, &h);
	tn = cpn_tag_node(key, &h);
	for (int bit = 0; bit < 128; bit++) {
		__u64 k2[2] = {key[0], key[1]};

		k2[bit / 64] ^= 1ULL << (bit % 64);
		assert_true(cpn_tag_request(k2, &h) != tr);
		assert_true(cpn_tag_node(k2, &h) != tn);
	}
}

/* ---- Internet checksum ------------------------------------------------- */

/* RFC 1071 from scratch over big-endian 16-bit words, the checksum field
 * taken as zero: the value to store, in host order.
 */
static __u16 ref_csum(const __u8 *p, int len, int csum_off)
{
	__u32 sum = 0;

	for (int i = 0; i < len; i += 2) {
		__u16 w = (__u16)(p[i] << 8 | p[i + 1]);

		if (i == csum_off)
			w = 0;
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static void put_be16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

static __u16 ld16(const __u8 *p)
{
	__u16 v;

	memcpy(&v, p, 2);
	return v;
}

static __u32 ld32(const __u8 *p)
{
	__u32 v;

	memcpy(&v, p, 4);
	return v;
}

/* Random 20-byte IPv4-like header with its checksum at offset 10. */
#define IP_LEN	    20
#define IP_CSUM_OFF 10

static void random_ip(__u8 *p)
{
	rng_bytes(p, IP_LEN);
	put_be16(p + IP_CSUM_OFF, ref_csum(p, IP_LEN, IP_CSUM_OFF));
}

static void test_csum_full_matches_rfc1071_reference(void **state)
{
	(void)state;
	for (int i = 0; i < 5000; i++) {
		__u32 buf[IP_LEN / 4];
		__u8 *p = (__u8 *)buf;
		__u16 c;

		rng_bytes(p, IP_LEN);
		p[IP_CSUM_OFF] = p[IP_CSUM_OFF + 1] = 0;
		c = cpn_csum_finish(cpn_csum_add(0, p, IP_LEN / 2));
		memcpy(p + IP_CSUM_OFF, &c, 2);
		assert_int_equal(p[IP_CSUM_OFF] << 8 | p[IP_CSUM_OFF + 1],
				 ref_csum(p, IP_LEN, IP_CSUM_OFF));
		/* a correct header sums to all ones: verifies to zero */
		assert_int_equal(cpn_csum_finish(cpn_csum_add(0, p, IP_LEN / 2)), 0);
	}
	/* RFC 1071 section 3 example: 0001 f203 f4f5 f6f7 sums to ddf2 */
	{
		const __u8 ex[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
		__u16 c = cpn_csum_finish(cpn_csum_add(0, ex, 4)), be;

		put_be16((__u8 *)&be, (__u16)~0xddf2);
		assert_int_equal(c, be);
	}
}

static void check_csum(const __u8 *p)
{
	assert_int_equal(p[IP_CSUM_OFF] << 8 | p[IP_CSUM_OFF + 1],
			 ref_csum(p, IP_LEN, IP_CSUM_OFF));
}

static void test_csum_diff16_update_equals_recompute(void **state)
{
	(void)state;
	for (int i = 0; i < 10000; i++) {
		__u32 buf[IP_LEN / 4];
		__u8 *p = (__u8 *)buf;
		__u64 acc = 0;
		__u16 c;
		int changes = 1 + i % 4;

		random_ip(p);
		for (int k = 0; k < changes; k++) {
			int off = 2 * (int)(rng() % (IP_LEN / 2));
			__u16 old, nw = (__u16)rng();

			if (off == IP_CSUM_OFF)
				off = 0;
			if (i % 5 == 0)
				nw = k ? 0xffff : 0x0000; /* the one's complement zeros */
			old = ld16(p + off);
			memcpy(p + off, &nw, 2);
			acc = cpn_csum_diff16(acc, old, nw);
		}
		c = cpn_csum_apply(ld16(p + IP_CSUM_OFF), acc);
		memcpy(p + IP_CSUM_OFF, &c, 2);
		check_csum(p);
	}
}

static void test_csum_diff32_update_equals_recompute(void **state)
{
	static const int offs[] = {0, 4, 12, 16}; /* 8..11 holds the checksum */

	(void)state;
	for (int i = 0; i < 10000; i++) {
		__u32 buf[IP_LEN / 4];
		__u8 *p = (__u8 *)buf;
		__u64 acc = 0;
		__u16 c;

		random_ip(p);
		for (int k = 0; k < 1 + i % 3; k++) {
			int off = offs[rng() % 4];
			__u32 old = ld32(p + off), nw = (__u32)rng();

			memcpy(p + off, &nw, 4);
			acc = cpn_csum_diff32(acc, old, nw);
		}
		c = cpn_csum_apply(ld16(p + IP_CSUM_OFF), acc);
		memcpy(p + IP_CSUM_OFF, &c, 2);
		check_csum(p);
	}
}

/* UDP over IPv6: the destination address (16 bytes, in the pseudo-header)
 * and port change, the UDP checksum follows. Buffer: 16 src, 16 dst,
 * 2 sport, 2 dport, 2 len, 2 csum, 24 payload.
 */
static void test_csum_diff_words_ipv6_update_equals_recompute(void **state)
{
	enum { LEN = 64, CSUM = 38, DST = 16, DPORT = 34 };

	(void)state;
	for (int i = 0; i < 5000; i++) {
		__u32 buf[LEN / 4], olda[4], newa[4];
		__u8 *p = (__u8 *)buf;
		__u16 c, oldp, newp = (__u16)rng();
		int nw = i % 2 ? 4 : 1; /* IPv6 or IPv4 address */
		__u64 acc;

		rng_bytes(p, LEN);
		put_be16(p + CSUM, ref_csum(p, LEN, CSUM));
		memcpy(olda, p + DST, sizeof(olda));
		memcpy(newa, olda, sizeof(newa));
		for (int w = 0; w < nw; w++)
			newa[w] = (__u32)rng();
		memcpy(p + DST, newa, sizeof(newa));
		oldp = ld16(p + DPORT);
		memcpy(p + DPORT, &newp, 2);
		acc = cpn_csum_diff_words(0, olda, newa, nw);
		acc = cpn_csum_diff16(acc, oldp, newp);
		c = cpn_csum_apply(ld16(p + CSUM), acc);
		memcpy(p + CSUM, &c, 2);
		assert_int_equal(p[CSUM] << 8 | p[CSUM + 1], ref_csum(p, LEN, CSUM));
	}
}

static void test_csum_apply_zero_diff_keeps_checksum(void **state)
{
	(void)state;
	for (__u32 c = 0; c <= 0xffff; c++)
		assert_int_equal(cpn_csum_apply((__u16)c, 0), c);
	/* a word replaced by itself is no change either */
	assert_int_equal(cpn_csum_apply(0x1234, cpn_csum_diff16(0, 0xabcd, 0xabcd)), 0x1234);
	assert_int_equal(cpn_csum_apply(0x1234, cpn_csum_diff32(0, 0xdeadbeef, 0xdeadbeef)),
			 0x1234);
}

/* cpn_csum_span_ok against a byte-wise reference: every length up to the
 * most, even and odd, from even and odd start offsets; a stored checksum
 * that verifies, one byte changed that does not, and a span past the end of
 * the buffer refused.
 */
static __u16 ref_sum_bytes(const __u8 *p, __u32 n)
{
	__u32 sum = 0;

	/* 16-bit words as the host loads them, the last byte alone. */
	for (__u32 i = 0; i + 1 < n; i += 2) {
		__u16 w;

		memcpy(&w, p + i, 2);
		sum += w;
	}
	if (n & 1) {
		__u16 w = 0;

		memcpy(&w, p + n - 1, 1);
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

static void test_csum_span_ok_matches_bytewise_sum(void **state)
{
	static __u8 buf[CPN_CSUM_SPAN_MAX + 16];

	(void)state;
	for (__u32 n = 2; n <= CPN_CSUM_SPAN_MAX; n++) {
		for (__u32 off = 0; off < 2; off++) {
			__u8 *p = buf + off;
			__u64 pseudo = rng() & 0xffffffffff;
			__u32 fold = (__u32)((pseudo & 0xffffffff) + (pseudo >> 32));
			__u16 rest, c;

			rng_bytes(buf, sizeof(buf));
			p[0] = p[1] = 0; /* the checksum's place */
			fold = (fold & 0xffff) + (fold >> 16);
			fold = (fold & 0xffff) + (fold >> 16);
			rest = ref_sum_bytes(p, n);
			fold += rest;
			fold = (fold & 0xffff) + (fold >> 16);
			c = (__u16)~fold;
			memcpy(p, &c, 2);
			assert_true(cpn_csum_span_ok(p, n, p + n, pseudo));
			assert_true(cpn_csum_span_ok(p, n, buf + sizeof(buf), pseudo));
			p[n - 1] ^= 0x40; /* any byte, the last included */
			assert_false(cpn_csum_span_ok(p, n, p + n, pseudo));
			p[n - 1] ^= 0x40;
			assert_false(cpn_csum_span_ok(p, n, p + n - 1, pseudo));
		}
	}
	assert_false(cpn_csum_span_ok(buf, CPN_CSUM_SPAN_MAX + 2, buf + sizeof(buf), 0));
}

static void test_csum_fold_carries_twice(void **state)
{
	(void)state;
	assert_int_equal(cpn_csum_fold(0x0001ffff), 0x0001);
	assert_int_equal(cpn_csum_fold(0xffffffff), 0xffff);
	assert_int_equal(cpn_csum_fold(0x1234), 0x1234);
	assert_int_equal(cpn_csum_fold(0x0002fffe), 0x0001);
}

static void test_udp_csum_fixup_sends_zero_as_all_ones(void **state)
{
	(void)state;
	assert_int_equal(cpn_udp_csum_fixup(0), 0xffff);
	assert_int_equal(cpn_udp_csum_fixup(0xffff), 0xffff);
	assert_int_equal(cpn_udp_csum_fixup(1), 1);
	assert_int_equal(cpn_udp_csum_fixup(0x8000), 0x8000);
	/* an update whose result is zero goes on the wire as 0xffff, which
	 * the receiver's sum accepts like 0 */
	{
		__u8 p[4] = {0x12, 0x34, 0, 0};
		__u16 c = ref_csum(p, 4, 2);

		assert_int_equal(c, (__u16)~0x1234);
		p[0] = 0xff;
		p[1] = 0xff; /* data now sums to ffff: checksum 0 */
		assert_int_equal(ref_csum(p, 4, 2), 0);
		put_be16(p + 2, cpn_udp_csum_fixup(ref_csum(p, 4, 2)));
		assert_int_equal(cpn_csum_finish(cpn_csum_add(0, p, 2)), 0);
	}
}

/* ---- GCRA and tenants -------------------------------------------------- */

#define SEC 1000000000ULL

static void test_tenant_set_rate_computes_interval_and_burst(void **state)
{
	struct cpn_tenant t;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.tat = 12345;
	cpn_tenant_set_rate(&t, 1000, 5);
	assert_true(t.interval_ns == 1000000);
	assert_true(t.burst_ns == 5000000);
	assert_true(t.tat == 0);
	cpn_tenant_set_rate(&t, 3, 0); /* burst 0 means 1 */
	assert_true(t.interval_ns == SEC / 3);
	assert_true(t.burst_ns == SEC / 3);
	cpn_tenant_set_rate(&t, 4 * SEC, 10); /* above 1/ns: one ns */
	assert_true(t.interval_ns == 1);
	assert_true(t.burst_ns == 10);
	cpn_tenant_set_rate(&t, 0, 10);
	assert_true(t.interval_ns == 0);
}

static void test_gcra_burst_then_refuse_then_one_per_interval(void **state)
{
	static const __u64 bursts[] = {1, 2, 5, 100};
	struct cpn_tenant t;

	(void)state;
	for (unsigned b = 0; b < sizeof(bursts) / sizeof(bursts[0]); b++) {
		__u64 B = bursts[b], t0 = 5 * SEC, iv;

		memset(&t, 0, sizeof(t));
		cpn_tenant_set_rate(&t, 1000, B);
		iv = t.interval_ns;
		for (__u64 i = 0; i < B; i++)
			assert_true(cpn_gcra(&t.tat, t0, t.interval_ns, t.burst_ns));
		assert_false(cpn_gcra(&t.tat, t0, t.interval_ns, t.burst_ns));
		/* just before 1/rate: still refused */
		assert_false(cpn_gcra(&t.tat, t0 + iv - 1, t.interval_ns, t.burst_ns));
		/* after 1/rate: exactly one more */
		assert_true(cpn_gcra(&t.tat, t0 + iv, t.interval_ns, t.burst_ns));
		assert_false(cpn_gcra(&t.tat, t0 + iv, t.interval_ns, t.burst_ns));
		/* after a long idle time the full burst is back, no more */
		for (__u64 i = 0; i < B; i++)
			assert_true(cpn_gcra(&t.tat, t0 + 10 * SEC, t.interval_ns, t.burst_ns));
		assert_false(cpn_gcra(&t.tat, t0 + 10 * SEC, t.interval_ns, t.burst_ns));
	}
}

static void test_gcra_refusal_does_not_consume(void **state)
{
	struct cpn_tenant t;
	__u64 t0 = 7 * SEC, tat;

	(void)state;
	memset(&t, 0, sizeof(t));
	cpn_tenant_set_rate(&t, 100, 3);
	for (int i = 0; i < 3; i++)
		assert_true(cpn_gcra(&t.tat, t0, t.interval_ns, t.burst_ns));
	tat = t.tat;
	for (int i = 0; i < 1000; i++)
		assert_false(cpn_gcra(&t.tat, t0 + i, t.interval_ns, t.burst_ns));
	assert_true(t.tat == tat);
	assert_true(cpn_gcra(&t.tat, t0 + t.interval_ns, t.interval_ns, t.burst_ns));
}

static void test_gcra_sustained_rate_matches_configured_rate(void **state)
{
	struct cpn_tenant t;
	__u64 t0 = 3 * SEC, passed = 0;

	(void)state;
	memset(&t, 0, sizeof(t));
	cpn_tenant_set_rate(&t, 250, 10);
	/* offered: 1 per 100 µs for 4 s (10000/s) */
	for (__u64 now = t0; now < t0 + 4 * SEC; now += 100000)
		passed += cpn_gcra(&t.tat, now, t.interval_ns, t.burst_ns);
	/* burst + rate x time */
	assert_true(passed >= 10 + 1000 - 1 && passed <= 10 + 1000 + 1);
}

static void test_gcra_rate_zero_is_unlimited(void **state)
{
	struct cpn_tenant t;

	(void)state;
	memset(&t, 0, sizeof(t));
	cpn_tenant_set_rate(&t, 0, 0);
	for (int i = 0; i < 100000; i++)
		assert_true(cpn_gcra(&t.tat, SEC, t.interval_ns, t.burst_ns));
	assert_true(t.tat == 0);
}

static void test_tenant_allows_only_services_in_bitmap(void **state)
{
	static const __u16 allowed[] = {0, 1, 63, 64, 130, CPN_MAX_SERVICES - 1};
	struct cpn_tenant t;
	int want[CPN_MAX_SERVICES] = {0};

	(void)state;
	memset(&t, 0, sizeof(t));
	for (int s = 0; s < CPN_MAX_SERVICES; s++)
		assert_false(cpn_tenant_allows(&t, s));
	for (unsigned i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		t.services[allowed[i] / 64] |= 1ULL << (allowed[i] % 64);
		want[allowed[i]] = 1;
	}
	for (int s = 0; s < CPN_MAX_SERVICES; s++)
		assert_int_equal(cpn_tenant_allows(&t, s), want[s]);
	/* ids past the bitmap are refused, not wrapped onto ids 0, 1 .. */
	assert_false(cpn_tenant_allows(&t, CPN_MAX_SERVICES));
	assert_false(cpn_tenant_allows(&t, CPN_MAX_SERVICES + 1));
	assert_false(cpn_tenant_allows(&t, 0xffff));
	memset(t.services, 0xff, sizeof(t.services));
	assert_false(cpn_tenant_allows(&t, CPN_MAX_SERVICES + 64));
	assert_true(cpn_tenant_allows(&t, CPN_MAX_SERVICES - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hdr_layout_matches_wire_format),
	    cmocka_unit_test(test_hdr_round_trip_preserves_every_field),
	    cmocka_unit_test(test_hdr_encode_writes_network_byte_order),
	    cmocka_unit_test(test_hdr_decode_reads_network_byte_order),
	    cmocka_unit_test(test_msg_init_sets_magic_version_type_and_clears_rest),
	    cmocka_unit_test(test_hdr_check_accepts_every_type),
	    cmocka_unit_test(test_hdr_check_rejects_short),
	    cmocka_unit_test(test_hdr_check_rejects_bad_magic),
	    cmocka_unit_test(test_hdr_check_rejects_bad_version),
	    cmocka_unit_test(test_hdr_check_rejects_type_0_and_above_max),
	    cmocka_unit_test(test_hdr_check_auth_needs_tag),
	    cmocka_unit_test(test_hdr_total_len_counts_tag_only_with_auth),
	    cmocka_unit_test(test_siphash_reference_matches_published_vectors),
	    cmocka_unit_test(test_siphash24_matches_published_vectors),
	    cmocka_unit_test(test_siphash24_matches_reference_on_random_input),
	    cmocka_unit_test(test_tag_wire_is_reference_output_bytes),
	    cmocka_unit_test(test_tag_request_signs_bytes_0_to_23_with_tagged_cleared),
	    cmocka_unit_test(test_tag_request_ignores_tagged_flag),
	    cmocka_unit_test(test_tag_request_covers_other_flags),
	    cmocka_unit_test(test_tag_request_changes_with_any_bit_of_bytes_0_to_23),
	    cmocka_unit_test(test_tag_request_leaves_header_unchanged),
	    cmocka_unit_test(test_tag_node_signs_all_48_bytes),
	    cmocka_unit_test(test_tag_request_fresh_signs_the_stamp_too),
	    cmocka_unit_test(test_hop_tag_covers_identity_node_time_and_stamp_only),
	    cmocka_unit_test(test_probe_cookie_and_join_tag_match_the_reference),
	    cmocka_unit_test(test_tags_depend_on_every_key_bit),
	    cmocka_unit_test(test_csum_full_matches_rfc1071_reference),
	    cmocka_unit_test(test_csum_diff16_update_equals_recompute),
	    cmocka_unit_test(test_csum_diff32_update_equals_recompute),
	    cmocka_unit_test(test_csum_diff_words_ipv6_update_equals_recompute),
	    cmocka_unit_test(test_csum_apply_zero_diff_keeps_checksum),
	    cmocka_unit_test(test_csum_fold_carries_twice),
	    cmocka_unit_test(test_csum_span_ok_matches_bytewise_sum),
	    cmocka_unit_test(test_udp_csum_fixup_sends_zero_as_all_ones),
	    cmocka_unit_test(test_tenant_set_rate_computes_interval_and_burst),
	    cmocka_unit_test(test_gcra_burst_then_refuse_then_one_per_interval),
	    cmocka_unit_test(test_gcra_refusal_does_not_consume),
	    cmocka_unit_test(test_gcra_sustained_rate_matches_configured_rate),
	    cmocka_unit_test(test_gcra_rate_zero_is_unlimited),
	    cmocka_unit_test(test_tenant_allows_only_services_in_bitmap),
	};

	return cmocka_run_group_tests_name("proto", tests, init_vectors, NULL);
}
