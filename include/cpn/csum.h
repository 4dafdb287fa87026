/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksum helpers (RFC 1071, incremental updates after RFC 1624).
 *
 * The one's complement sum does not depend on byte order, so every helper
 * takes the 16/32-bit words exactly as they lie in the packet. An update is
 * accumulated with cpn_csum_diff*() for every changed word and applied once
 * with cpn_csum_apply().
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

static __always_inline __u32 cpn_csum_diff16(__u32 acc, __u16 old, __u16 new_)
{
	return acc + (__u16)~old + new_;
}

static __always_inline __u32 cpn_csum_diff32(__u32 acc, __u32 old, __u32 new_)
{
	acc += (__u16) ~(__u16)(old & 0xffff) + (__u16) ~(__u16)(old >> 16);
	return acc + (new_ & 0xffff) + (new_ >> 16);
}

/* Diff of a 16-byte (IPv6) or 4-byte (IPv4) address given as 32-bit words. */
static __always_inline __u32 cpn_csum_diff_words(__u32 acc, const __u32 *old, const __u32 *new_,
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
static __always_inline __u16 cpn_csum_apply(__u16 csum, __u32 acc)
{
	return (__u16)~cpn_csum_fold((__u32)(__u16)~csum + cpn_csum_fold(acc));
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

/* Full checksum of a sum of words: the value to store in the packet. */
static __always_inline __u16 cpn_csum_finish(__u32 acc)
{
	return (__u16)~cpn_csum_fold(acc);
}

#endif /* CPN_CSUM_H */
