/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Small portability layer so that include/cpn/ compiles unchanged with
 * `clang -target bpf` and for userspace (gcc or clang).
 */
#ifndef CPN_COMPILER_H
#define CPN_COMPILER_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Unroll a small fixed-bound loop (BPF: no back-edges on hot paths). */
#if defined(__clang__)
#define CPN_UNROLL _Pragma("unroll")
#else
#define CPN_UNROLL _Pragma("GCC unroll 64")
#endif

/* Hide a value from the optimiser so that a bounds check the verifier needs
 * is not folded away as redundant (libbpf's barrier_var()).
 */
#define cpn_barrier_var(var) __asm__ __volatile__("" : "+r"(var))

#define CPN_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)

#ifndef cpn_likely
#define cpn_likely(x)	__builtin_expect(!!(x), 1)
#define cpn_unlikely(x) __builtin_expect(!!(x), 0)
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define cpn_htons(x)  ((__u16)__builtin_bswap16((__u16)(x)))
#define cpn_htonl(x)  ((__u32)__builtin_bswap32((__u32)(x)))
#define cpn_htonll(x) ((__u64)__builtin_bswap64((__u64)(x)))
#define cpn_le64(x)   ((__u64)(x))
#elif __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define cpn_htons(x)  ((__u16)(x))
#define cpn_htonl(x)  ((__u32)(x))
#define cpn_htonll(x) ((__u64)(x))
#define cpn_le64(x)   ((__u64)__builtin_bswap64((__u64)(x)))
#else
#error "unknown byte order"
#endif
#define cpn_ntohs(x)  cpn_htons(x)
#define cpn_ntohl(x)  cpn_htonl(x)
#define cpn_ntohll(x) cpn_htonll(x)

#endif /* CPN_COMPILER_H */
