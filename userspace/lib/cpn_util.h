/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Small things every cpn program needs once: numbers and keys from the
 * command line, the clock the data plane uses, a seedable generator.
 */
#ifndef CPN_USER_UTIL_H
#define CPN_USER_UTIL_H

#include <stdint.h>
#include <time.h>
#include <linux/types.h>

/* A whole number in lo..hi: decimal, or hexadecimal after "0x". No sign, no
 * space, nothing after it. 0, or -1 when malformed or out of range.
 */
int cpn_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int cpn_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out);
/* Bytes in lo..hi: a whole number, perhaps followed by K, M or G (powers of
 * 1024; either case). 0, or -1 when malformed or out of range.
 */
int cpn_parse_size(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* A finite number in lo..hi ("1.5", "2e3"). 0 or -1. */
int cpn_parse_double(const char *s, double lo, double hi, double *out);
/* 32 hex digits -> a SipHash key as cpn_siphash24() takes it: the bytes as
 * written, read as two little-endian words. 0 or -1.
 */
int cpn_key_parse(const char *hex, __u64 key[2]);

/* CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(), so a router_ts
 * stamped in userspace (probes) compares with the data plane's.
 */
static inline __u64 cpn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* CLOCK_TAI in ms, the clock of FRESH stamps and of the data plane's
 * bpf_ktime_get_tai_ns() (CLOCK_REALTIME should CLOCK_TAI be missing).
 */
static inline __u64 cpn_tai_ms64(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_TAI, &ts))
		clock_gettime(CLOCK_REALTIME, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

/* A FRESH stamp: CLOCK_TAI in ms, mod 2^32. */
static inline __u32 cpn_tai_ms(void)
{
	return (__u32)cpn_tai_ms64();
}

/* ns (a cpn_now_ns() time, or a span) as a timespec: for clock_nanosleep,
 * pthread_cond_timedwait on CLOCK_MONOTONIC, ppoll.
 */
static inline struct timespec cpn_ns_timespec(__u64 ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ULL),
				 .tv_nsec = (long)(ns % 1000000000ULL)};
}

/* splitmix64 (Steele, Lea, Flood 2014): a generator for seeds and test data,
 * the same sequence on every machine from the same state.
 */
static inline uint64_t cpn_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif /* CPN_USER_UTIL_H */
