/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksum helpers (RFC 1071, incremental updates after RFC 1624).
 *
 * The one's complement sum does not depend on byte order, so every helper
 * takes the 16/32-bit words exactly as they lie in the packet. An update is
 * accumulated with cpn_csum_diff*() for every changed word and applied once
 * with cpn_csum_apply(). The accumulator of an update is 64 bits wide: a
 * changed 32-bit word adds its complement and its new value whole (the one's
 * complement sum of 32-bit words folds to that of their 16-bit halves), and
 * only the apply folds.
 */
#ifndef CPN_CSUM_H
#define CPN_CSUM_H

#include "cpn/compiler.h"

static __always_inline __u16 cpn_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* A 64-bit sum folded to 16 bits (end-around carries). */
static __always_inline __u16 cpn_csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return cpn_csum_fold((__u32)sum);
}

static __always_inline __u64 cpn_csum_diff16(__u64 acc, __u16 old, __u16 new_)
{
	return acc + (__u16)~old + new_;
}

static __always_inline __u64 cpn_csum_diff32(__u64 acc, __u32 old, __u32 new_)
{
	return acc + (__u32)~old + new_;
}

/* Diff of a 16-byte (IPv6) or 4-byte (IPv4) address given as 32-bit words. */
static __always_inline __u64 cpn_csum_diff_words(__u64 acc, const __u32 *old, const __u32 *new_,
						 int nwords)
{
	CPN_UNROLL
	for (int i = 0; i < 4; i++) {
		if (i >= nwords)
			break;
		acc = cpn_csum_diff32(acc, old[i], new_[i]);
	}
	return acc;
}

/* Apply an accumulated diff to a stored checksum (RFC 1624, eqn. 3). */
static __always_inline __u16 cpn_csum_apply(__u16 csum, __u64 acc)
{
	return (__u16)~cpn_csum_fold64((__u64)(__u16)~csum + acc);
}

/* A UDP checksum that computes to zero is sent as all ones (RFC 768). */
static __always_inline __u16 cpn_udp_csum_fixup(__u16 csum)
{
	return csum ? csum : 0xffff;
}

/* Sum of `nwords` (at most 32) 16-bit words at `p`, which the caller has
 * checked against the end of the buffer. Not unrolled: it serves cold paths
 * (BUSY), whose code should stay small.
 */
static __always_inline __u32 cpn_csum_add(__u32 acc, const void *p, int nwords)
{
	const __u16 *w = (const __u16 *)p;

	for (int i = 0; i < 32; i++) {
		if (i >= nwords)
			break;
		acc += w[i];
	}
	return acc;
}

#define CPN_CSUM_SPAN_MAX 520 /* bytes a received checksum is verified over, at most */

/* Loads of packet words that may sit at any address: XDP's verifier
 * allows them (the JIT's CPU does them), elsewhere memcpy compiles to the
 * same single load without C's alignment rule broken.
 */
typedef __u16 __attribute__((may_alias)) cpn_u16_alias;
typedef __u64 __attribute__((may_alias)) cpn_u64_alias;

static __always_inline __u64 cpn_load64(const void *p)
{
#ifdef __bpf__
	return *(const cpn_u64_alias *)p;
#else
	__u64 v;

	__builtin_memcpy(&v, p, 8);
	return v;
#endif
}

static __always_inline __u16 cpn_load16(const void *p)
{
#ifdef __bpf__
	return *(const cpn_u16_alias *)p;
#else
	__u16 v;

	__builtin_memcpy(&v, p, 2);
	return v;
#endif
}

/* Whether `n` bytes at `start` (at most CPN_CSUM_SPAN_MAX, all before
 * `end`), added to `acc` (a pseudo-header, say), sum to all ones: a
 * received checksum verifies. Eight bytes a step, as two 32-bit words
 * (their one's complement sum folds to that of their 16-bit halves), then
 * the last few; 0 where the span passes `end`.
 */
static __always_inline int cpn_csum_span_ok(const void *start, __u32 n, const void *end, __u64 acc)
{
	const __u8 *q = (const __u8 *)start;

	if (n > CPN_CSUM_SPAN_MAX)
		return 0;
	for (int i = 0; i < CPN_CSUM_SPAN_MAX / 8; i++) {
		const __u8 *next = q + 8;
		__u64 x;

		if (n < 8)
			break;
		cpn_barrier_var(next);
		if ((const void *)next > end)
			return 0;
		x = cpn_load64(q);
		acc += (x & 0xffffffff) + (x >> 32);
		q = next;
		n -= 8;
	}
	for (int i = 0; i < 3; i++) {
		const __u8 *next = q + 2;

		if (n < 2)
			break;
		cpn_barrier_var(next);
		if ((const void *)next > end)
			return 0;
		acc += cpn_load16(q);
		q = next;
		n -= 2;
	}
	if (n) {
		const __u8 *bend = q + 1;
		__u16 last = 0;

		cpn_barrier_var(bend);
		if ((const void *)bend > end)
			return 0;
		__builtin_memcpy(&last, q, 1);
		acc += last;
	}
	return cpn_csum_fold64(acc) == 0xffff;
}

/* Full checksum of a sum of words: the value to store in the packet. */
static __always_inline __u16 cpn_csum_finish(__u32 acc)
{
	return (__u16)~cpn_csum_fold(acc);
}

#endif /* CPN_CSUM_H */
