// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fuzz target: the client library's handling of received datagrams
 * (userspace/lib/cpn_client.c). A real client talks to a UDP socket of this
 * program on 127.0.0.1; it submits four requests (two of them large, sent
 * as fragments), the socket takes what the client sent, then answers with
 * the input, a sequence of datagrams, each
 *
 *   u8 ctl | u16 length (big endian) | length bytes of datagram
 *
 * where ctl bit 2 set copies the identity (service, tenant, session,
 * request id: header bytes 6..23) of the request numbered by bits 0-1 into
 * the datagram, so that the input reaches the paths of known requests.
 * The client is polled after each datagram and closed at the end: nothing
 * may crash or leak.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cpn/client.h>
#include <cpn/proto.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int srv = -1;
static char target[64];

static void srv_open(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(srv, (struct sockaddr *)&a, &alen)) {
		perror("fuzz_client_rx: socket on 127.0.0.1");
		abort();
	}
	snprintf(target, sizeof(target), "127.0.0.1:%u", ntohs(a.sin_port));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t big[6000];
	static const size_t lens[4] = {16, 3000, 100, 6000};
	uint8_t ids[4][18], buf[2048];
	struct cpn_completion out[8];
	struct sockaddr_storage from;
	socklen_t flen;
	struct cpn_client *cl;
	size_t at = 0;
	int e, i, n_ids = 0;
	ssize_t r;

	if (srv < 0)
		srv_open();
	cl = cpn_client_open(target, 1, 1, &e);
	if (!cl) {
		fprintf(stderr, "fuzz_client_rx: cpn_client_open %s: %s\n", target,
			cpn_strerror(e));
		abort();
	}
	flen = sizeof(from);
	if (getsockname(cpn_client_fd(cl), (struct sockaddr *)&from, &flen))
		abort();
	cpn_client_setopt(cl, CPN_OPT_TIMEOUT_MS, 60000);
	cpn_client_setopt(cl, CPN_OPT_MAX_MESSAGE, 1 << 20);
	cpn_client_setopt(cl, CPN_OPT_REASM_BUDGET, 1 << 20);
	for (i = 0; i < 4; i++) {
		struct cpn_req q = {
		    .data = big, .len = lens[i], .flags = i == 2 ? CPN_REQ_IDEMPOTENT : 0};

		if (cpn_client_submit(cl, &q, NULL))
			abort();
	}
	/* What the client sent: the first datagram of each request. */
	memset(ids, 0, sizeof(ids));
	while (n_ids < 4) {
		r = recv(srv, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0)
			break;
		if (r >= CPN_HDR_LEN)
			memcpy(ids[n_ids++], buf + 6, sizeof(ids[0]));
	}
	while (size - at >= 3) {
		uint8_t ctl = data[at];
		size_t len = (size_t)data[at + 1] << 8 | data[at + 2];
		uint8_t d[65536];

		at += 3;
		if (len > size - at)
			len = size - at;
		memcpy(d, data + at, len);
		at += len;
		if ((ctl & 4) && len >= 24)
			memcpy(d + 6, ids[ctl & 3], sizeof(ids[0]));
		sendto(srv, d, len, 0, (struct sockaddr *)&from, flen);
		cpn_client_poll(cl, out, 8, 0);
	}
	cpn_client_poll(cl, out, 8, 0);
	/* Drain what the client sent back (acks), for the next input. */
	while (recv(srv, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
	cpn_client_close(cl);
	return 0;
}
