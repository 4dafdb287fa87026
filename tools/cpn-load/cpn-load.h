/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cpn-load: what the load generator (cpn-load.c) and its reflector
 * (reflect.c) share. Numbers, keys and the clock come from libcpn
 * (cpn_util.h).
 */
#ifndef CPN_LOAD_H
#define CPN_LOAD_H

#include <stdint.h>
#include <linux/types.h>
#include <time.h>
#include <sys/socket.h>

#include "cpn_util.h"

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

/* `cpn-load reflect …`: argv[0] is "reflect". Returns the exit status. */
int load_reflect_main(int argc, char **argv);

#endif /* CPN_LOAD_H */
