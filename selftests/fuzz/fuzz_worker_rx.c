// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fuzz target: the node's receive path for large messages
 * (userspace/worker/worker_frag.c, wk_reasm_frag(), as worker_rx.c calls
 * it). The input is a sequence of datagrams, each
 *
 *   u8 ctl | u16 length (big endian) | length bytes of datagram
 *
 * where ctl's low 2 bits pick one of four source ports and its high 6 bits
 * advance the clock by that many times 100 ms (expiring stalled messages).
 * Each datagram is checked as cpn_worker's receive thread does; a REQUEST
 * with FRAG goes to the reassembly. Complete messages are freed; at the end
 * every byte the reassembly charged must be given back.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "worker_frag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int payload_ok(void *ctx, uint32_t len)
{
	(void)ctx;
	return len != 777; /* a handler that refuses one size */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct wk_frag_cfg c = {
	    .max_message = 256 << 10,
	    .timeout_ms = 1000,
	    .client_budget = 384 << 10,
	    .budget = 1 << 20,
	};
	struct wk_stats st;
	struct wk_reasm ra;
	struct wk_addr src[4];
	char err[128];
	uint64_t now = 1000000000ull;
	size_t at = 0;
	int i;

	memset(&st, 0, sizeof(st));
	for (i = 0; i < 4; i++) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&src[i].ss;

		memset(&src[i], 0, sizeof(src[i]));
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(40000 + i);
		src[i].len = sizeof(*sin);
	}
	if (wk_reasm_init(&ra, &c, &st, err, sizeof(err)))
		abort();
	while (size - at >= 3) {
		uint8_t ctl = data[at];
		size_t len = (size_t)data[at + 1] << 8 | data[at + 2];
		const uint8_t *d = data + at + 3;
		struct wk_frag_res res;
		struct cpn_hdr h;
		struct cpn_msg m;
		uint32_t hl;

		at += 3;
		if (len > size - at)
			len = size - at;
		at += len;
		now += (uint64_t)(ctl >> 2) * 100000000ull;
		wk_reasm_expire(&ra, now);
		if (len < sizeof(h))
			continue;
		memcpy(&h, d, sizeof(h));
		if (cpn_hdr_check(&h, (uint32_t)len) != CPN_HDR_OK)
			continue;
		cpn_hdr_decode(&h, &m);
		if (m.type != CPN_T_REQUEST || !(m.flags & CPN_F_FRAG))
			continue;
		hl = cpn_hdr_total_len(&h);
		switch (wk_reasm_frag(&ra, &src[ctl & 3], &m, d + hl, (uint32_t)len - hl, now,
				      ctl == 0xff, payload_ok, NULL, &res)) {
		case WK_FV_DONE:
			if (!res.req || res.req->len != res.total || res.held != res.total)
				abort();
			wk_req_free(&st, res.req);
			break;
		case WK_FV_ACK:
		case WK_FV_REPLY_ACK:
			if (res.held > res.total)
				abort();
			break;
		default:
			if (res.req)
				abort();
			break;
		}
	}
	wk_reasm_fini(&ra);
	if (st.frag_held != 0)
		abort(); /* bytes charged and never given back */
	return 0;
}
