// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench-fwd-pcap: bench/bench-fwd.sh's input capture, frames built byte by
 * byte with selftests/bpf/cpn_test.c's cpn_pkt_build.
 *
 *   bench-fwd-pcap FILE N
 *
 * LOADs of nodes 1-4 (capacity 64, worker_us 100), then N distinct IPv4
 * REQUESTs of service 1 (VIP 10.0.0.100:7470, tenant 42) from 16 clients
 * 10.0.0.1-16, each on its own source port and request id. Replayed with
 * net_pcap's infinite_rx, the LOADs come round again every N + 4 frames and
 * keep the nodes live.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cpn/maps.h"
#include "cpn_pkt.h"

static FILE *out;

static void put(const struct cpn_pkt *s)
{
	__u8 buf[CPN_PKT_MAX];
	size_t n = cpn_pkt_build(s, buf, sizeof(buf));
	__u32 h[4] = {0, 0, (__u32)n, (__u32)n};

	if (!n) {
		fprintf(stderr, "bench-fwd-pcap: frame does not build\n");
		exit(1);
	}
	fwrite(h, sizeof(h), 1, out);
	fwrite(buf, 1, n, out);
}

int main(int argc, char **argv)
{
	static const __u32 hdr[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
	char client[16];
	long nreq;

	if (argc != 3 || (nreq = strtol(argv[2], NULL, 10)) < 1 || nreq > 45000) {
		fprintf(stderr, "usage: bench-fwd-pcap FILE N   (1 <= N <= 45000)\n");
		return 2;
	}
	out = fopen(argv[1], "wb");
	if (!out) {
		perror(argv[1]);
		return 1;
	}
	fwrite(hdr, sizeof(hdr), 1, out);
	for (__u16 id = 1; id <= 4; id++) {
		struct cpn_pkt s;

		cpn_pkt_load(&s, CPN_AF_INET, id);
		s.msg.capacity = 64;
		s.msg.worker_us = 100;
		put(&s);
	}
	for (long i = 0; i < nreq; i++) {
		struct cpn_pkt s;

		cpn_pkt_default(&s, CPN_AF_INET);
		snprintf(client, sizeof(client), "10.0.0.%ld", i % 16 + 1);
		s.src = client;
		s.sport = (__u16)(20000 + i);
		s.msg.service_id = 1;
		s.msg.request_id = (__u64)i + 1;
		put(&s);
	}
	return fclose(out) ? 1 : 0;
}
