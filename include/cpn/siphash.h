/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SipHash-2-4 (Aumasson & Bernstein, 2012) over whole 64-bit words, which is
 * all cpn needs: the signed spans of the header are 24 and 48 bytes long.
 * Bounded loops, no floating point, no helpers: usable from BPF and userspace.
 */
#ifndef CPN_SIPHASH_H
#define CPN_SIPHASH_H

#include "cpn/compiler.h"
#include "cpn/proto.h"

#define CPN_SIP_MAX_WORDS 6

#define CPN_ROTL64(x, b) (__u64)(((x) << (b)) | ((x) >> (64 - (b))))

#define CPN_SIPROUND(v0, v1, v2, v3)                                                               \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = CPN_ROTL64(v1, 13);                                                           \
		v1 ^= v0;                                                                          \
		v0 = CPN_ROTL64(v0, 32);                                                           \
		v2 += v3;                                                                          \
		v3 = CPN_ROTL64(v3, 16);                                                           \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = CPN_ROTL64(v3, 21);                                                           \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = CPN_ROTL64(v1, 17);                                                           \
		v1 ^= v2;                                                                          \
		v2 = CPN_ROTL64(v2, 32);                                                           \
	} while (0)

/* SipHash-2-4 of `nwords` 64-bit words as they lie in memory (the message
 * bytes, read little-endian as the algorithm specifies), nwords <= 6.
 * key[0] is the first 8 key bytes read little-endian, key[1] the next 8.
 */
static __always_inline __u64 cpn_siphash24(const __u64 key[2], const __u64 *words, int nwords)
{
	__u64 k0 = key[0], k1 = key[1];
	__u64 v0 = 0x736f6d6570736575ULL ^ k0;
	__u64 v1 = 0x646f72616e646f6dULL ^ k1;
	__u64 v2 = 0x6c7967656e657261ULL ^ k0;
	__u64 v3 = 0x7465646279746573ULL ^ k1;
	__u64 b = ((__u64)(nwords * 8)) << 56;

	CPN_UNROLL
	for (int i = 0; i < CPN_SIP_MAX_WORDS; i++) {
		if (i >= nwords)
			break;
		__u64 m = cpn_le64(words[i]);
		v3 ^= m;
		CPN_SIPROUND(v0, v1, v2, v3);
		CPN_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	v3 ^= b;
	CPN_SIPROUND(v0, v1, v2, v3);
	CPN_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	CPN_SIPROUND(v0, v1, v2, v3);
	CPN_SIPROUND(v0, v1, v2, v3);
	CPN_SIPROUND(v0, v1, v2, v3);
	CPN_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The tag as it is carried on the wire: the 8 output bytes in little-endian
 * order (the reference implementation's byte output), read as a u64 from
 * memory. Compare it with the 8 bytes after the header read the same way.
 */
static __always_inline __u64 cpn_tag_wire(__u64 h)
{
	return cpn_le64(h);
}

/* Tag of a REQUEST: tenant key over bytes 0..23 with hop-owned flags zeroed. */
static __always_inline __u64 cpn_tag_request(const __u64 key[2], const struct cpn_hdr *h)
{
	__u64 w[3];
	__be16 flags = h->flags & ~cpn_htons(CPN_F_HOP_OWNED);

	__builtin_memcpy(w, h, sizeof(w));
	__builtin_memcpy((char *)w + __builtin_offsetof(struct cpn_hdr, flags), &flags, 2);
	return cpn_tag_wire(cpn_siphash24(key, w, 3));
}

/* Tag of a REQUEST with FRESH: bytes 0..23 (hop-owned flags zeroed) and the
 * stamp, as a fourth word {stamp, 0}.
 */
static __always_inline __u64 cpn_tag_request_fresh(const __u64 key[2], const struct cpn_hdr *h)
{
	__u64 w[4];
	__be16 flags = h->flags & ~cpn_htons(CPN_F_HOP_OWNED);

	__builtin_memcpy(w, h, 24);
	__builtin_memcpy((char *)w + __builtin_offsetof(struct cpn_hdr, flags), &flags, 2);
	w[3] = 0;
	__builtin_memcpy(&w[3], &h->stamp, 4);
	return cpn_tag_wire(cpn_siphash24(key, w, 4));
}

/* The tag a REQUEST must carry under `key`: with FRESH, the stamp too. */
static __always_inline __u64 cpn_tag_request_any(const __u64 key[2], const struct cpn_hdr *h)
{
	if (h->flags & cpn_htons(CPN_F_FRESH))
		return cpn_tag_request_fresh(key, h);
	return cpn_tag_request(key, h);
}

/* The hop tag of a steered REQUEST (the 4 bytes of its worker_us): the hop
 * key over {request_id}, {tenant_id, service_id, node_id}, {router_ts,
 * stamp}, as they lie in the header; the first 4 of the 8 output bytes.
 * cpn_hop_tag_with: the same, with the node_id and router_ts about to be
 * written (network order).
 */
static __always_inline __be32 cpn_hop_tag_with(const __u64 key[2], const struct cpn_hdr *h,
					       __be16 node_id, __be32 router_ts)
{
	__u64 w[3];
	__be32 out;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* The words composed in registers: no load of 8 bytes that a 2- or
	 * 4-byte store just wrote, which would wait for it.
	 */
	__builtin_memcpy(&w[0], &h->request_id, 8);
	w[1] = (__u64)(__u32)h->tenant_id | (__u64)(__u16)h->service_id << 32 |
	       (__u64)(__u16)node_id << 48;
	w[2] = (__u64)(__u32)router_ts | (__u64)(__u32)h->stamp << 32;
#else
	__builtin_memcpy(&w[0], &h->request_id, 8);
	__builtin_memcpy((char *)&w[1], &h->tenant_id, 4);
	__builtin_memcpy((char *)&w[1] + 4, &h->service_id, 2);
	__builtin_memcpy((char *)&w[1] + 6, &node_id, 2);
	__builtin_memcpy((char *)&w[2], &router_ts, 4);
	__builtin_memcpy((char *)&w[2] + 4, &h->stamp, 4);
#endif
	w[0] = cpn_tag_wire(cpn_siphash24(key, w, 3));
	__builtin_memcpy(&out, &w[0], 4);
	return out;
}

/* The hop tag of header h as it stands. */
static __always_inline __be32 cpn_hop_tag(const __u64 key[2], const struct cpn_hdr *h)
{
	return cpn_hop_tag_with(key, h, h->node_id, h->router_ts);
}

/* A PROBE's cookie (its request_id, as it lies in the header): the hop key
 * over {node_id (network order), 0, router_ts (network order)}.
 */
static __always_inline __u64 cpn_probe_cookie(const __u64 key[2], __be16 node_id, __be32 router_ts)
{
	__u64 w = 0;

	__builtin_memcpy((char *)&w, &node_id, 2);
	__builtin_memcpy((char *)&w + 4, &router_ts, 4);
	return cpn_tag_wire(cpn_siphash24(key, &w, 1));
}

/* Tag of a REPLY, LOAD or PROBE_ACK: node key over the whole header. */
static __always_inline __u64 cpn_tag_node(const __u64 key[2], const struct cpn_hdr *h)
{
	__u64 w[6];

	__builtin_memcpy(w, h, sizeof(w));
	return cpn_tag_wire(cpn_siphash24(key, w, 6));
}

/* A join's tag (userspace only: the controller checks it): the join key over
 * the node's tag of the header under that key, the node's address as 16
 * bytes (IPv4 as ::ffff:a.b.c.d) and {port (network order), 0}: a LOAD
 * replayed from another address or port does not verify. Carried as the
 * LOAD's 8-byte payload (docs/PROTOCOL.md, "Joins").
 */
static __always_inline __u64 cpn_tag_join(const __u64 key[2], const struct cpn_hdr *h,
					  const __u8 addr16[16], __be16 port)
{
	__u64 w[4];

	w[0] = cpn_tag_node(key, h);
	__builtin_memcpy(&w[1], addr16, 16);
	w[3] = 0;
	__builtin_memcpy(&w[3], &port, 2);
	return cpn_tag_wire(cpn_siphash24(key, w, 4));
}

#endif /* CPN_SIPHASH_H */
