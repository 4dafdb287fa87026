/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn-load: what the load generator (cpn-load.c) and its reflector
 * (cpn-load-reflect.c) share.
 */
#ifndef CPN_LOAD_H
#define CPN_LOAD_H

#include <stdint.h>
#include <linux/types.h>
#include <time.h>
#include <sys/socket.h>

/* Datagrams per sendmmsg / recvmmsg call. */
#define LOAD_BATCH 64

struct load_addr {
	struct sockaddr_storage sa;
	socklen_t len;
};

/* "10.0.0.1:7470" or "[fd00::1]:7470" (literal addresses only). 0 or -1. */
int load_addr_parse(const char *s, struct load_addr *a);
/* "IP:PORT" / "[IP]:PORT" of a socket address. */
const char *load_addr_str(const struct sockaddr *sa, char *buf, size_t len);
/* 32 hex digits -> SipHash key as cpn_siphash24() takes it (docs/PROTOCOL.md). */
int load_key_parse(const char *hex, __u64 key[2]);

/* Strict number parsing: the whole string, within [lo, hi]. 0 or -1. */
int load_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int load_parse_double(const char *s, double lo, double hi, double *out);

static inline uint64_t load_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* `cpn-load reflect …`: argv[0] is "reflect". Returns the exit status. */
int load_reflect_main(int argc, char **argv);

#endif /* CPN_LOAD_H */
