// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The receiver: recvmmsg in batches, requests to the queue.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_rx.h"
#include "cpn_util.h"

#define RX_BUF 65536

struct rx_ctx {
	struct mmsghdr mm[WK_RX_BATCH];
	struct iovec iov[WK_RX_BATCH];
	struct wk_addr src[WK_RX_BATCH];
	uint8_t *buf; /* WK_RX_BATCH x 64 KiB */
	/* at most two answers a datagram: an ack and, for the request it
	 * completes, a BUSY when the queue refuses it
	 */
	struct wk_out out[2 * WK_RX_BATCH];
};

/* An answer to a fragment: its ack, or a refusal of its message. */
static void frag_answer(struct wk_rx *rx, struct rx_ctx *c, int i, const struct cpn_msg *in,
			enum wk_frag_verdict v, const struct wk_frag_res *res, uint64_t now,
			int *nout)
{
	struct wk_out *o = &c->out[(*nout)++];
	struct cpn_msg out;

	switch (v) {
	case WK_FV_ACK:
	case WK_FV_DONE:
		wk_msg_answer(&out, in, CPN_T_REPLY);
		out.flags = CPN_F_FRAG | CPN_F_CONT;
		/* router_ts (echoed) and the hop tag: the client copies both into
		 * the message's later fragments.
		 */
		out.worker_us = in->worker_us;
		wk_load_fill(rx->q, &out);
		wk_tx_seal(rx->tx, &out, o, &c->src[i]);
		wk_out_frag(o, res->total, res->held);
		break;
	case WK_FV_REPLY:
		wk_msg_answer(&out, in, CPN_T_REPLY);
		out.status = res->status;
		wk_load_fill(rx->q, &out);
		out.worker_us = (uint32_t)((cpn_now_ns() - now) / 1000);
		wk_tx_seal(rx->tx, &out, o, &c->src[i]);
		WK_ADD(rx->st, replies[res->status], 1);
		break;
	case WK_FV_BUSY: {
		struct wk_req tmp = {.t_rx = now, .src = c->src[i], .m = *in};

		tmp.m.flags &= (uint16_t) ~(CPN_F_FRAG | CPN_F_CONT);
		wk_queue_busy(rx->q, &tmp, res->status, o);
		o->dst = &c->src[i];
		break;
	}
	default:
		(*nout)--;
	}
}

/* One datagram: queue a request, or answer it at once (PROBE, malformed
 * payload, no memory). Returns the request to queue, or NULL.
 */
static struct wk_req *rx_one(struct wk_rx *rx, struct rx_ctx *c, int i, uint64_t now, int *nout)
{
	const uint8_t *data = c->buf + (size_t)i * RX_BUF;
	uint32_t len = c->mm[i].msg_len;
	const struct cpn_hdr *h = (const struct cpn_hdr *)data;
	uint32_t off, plen;
	struct cpn_msg in, out;
	struct wk_req *r;
	int sealed_short;

	c->src[i].len = c->mm[i].msg_hdr.msg_namelen;
	if ((c->mm[i].msg_hdr.msg_flags & MSG_TRUNC) || cpn_hdr_check(h, len) != CPN_HDR_OK) {
		WK_ADD(rx->st, ignored_malformed, 1);
		return NULL;
	}
	cpn_hdr_decode(h, &in);
	if (in.type == CPN_T_PROBE) {
		WK_ADD(rx->st, probes, 1);
		wk_msg_answer(&out, &in, CPN_T_PROBE_ACK);
		wk_load_fill(rx->q, &out);
		out.worker_us = WK_LOAD(&rx->q->svc_us);
		wk_tx_seal(rx->tx, &out, &c->out[(*nout)++], &c->src[i]);
		return NULL;
	}
	if (in.type != CPN_T_REQUEST) {
		WK_ADD(rx->st, ignored_type, 1);
		return NULL;
	}
	if (!wk_guard_request(rx->guard, h, now))
		return NULL;
	off = cpn_hdr_total_len(h);
	plen = len - off;
	if (in.flags & CPN_F_FRAG) {
		struct wk_frag_res res;
		enum wk_frag_verdict v;

		v = wk_reasm_frag(rx->ra, &c->src[i], &in, data + off, plen, now,
				  WK_LOAD(&rx->q->draining), rx->h->payload_ok, rx->h->ctx, &res);
		if (v == WK_FV_REPLY_ACK) {
			wk_fragtx_ack(rx->fragtx, &c->src[i], &in, res.held);
			return NULL;
		}
		frag_answer(rx, c, i, &in, v, &res, now, nout);
		return v == WK_FV_DONE ? res.req : NULL;
	}
	WK_ADD(rx->st, requests, 1);
	/* The handler judges the plaintext of a sealed payload; one too short
	 * to be sealed is refused here.
	 */
	sealed_short = (in.flags & CPN_F_SEALED) && plen < CPN_SEAL_OVERHEAD;
	if (sealed_short)
		WK_ADD(rx->st, sealed_refused, 1);
	if (sealed_short ||
	    (rx->h->payload_ok &&
	     !rx->h->payload_ok(rx->h->ctx,
				in.flags & CPN_F_SEALED ? plen - CPN_SEAL_OVERHEAD : plen))) {
		wk_msg_answer(&out, &in, CPN_T_REPLY);
		out.status = CPN_ST_BAD_REQUEST;
		wk_load_fill(rx->q, &out);
		out.worker_us = (uint32_t)((cpn_now_ns() - now) / 1000);
		wk_tx_seal(rx->tx, &out, &c->out[(*nout)++], &c->src[i]);
		WK_ADD(rx->st, replies[CPN_ST_BAD_REQUEST], 1);
		return NULL;
	}
	r = malloc(sizeof(*r) + plen);
	if (!r) {
		struct wk_req tmp = {.t_rx = now, .src = c->src[i], .m = in};

		/* No memory for it: as good as a full queue. The answer goes
		 * to c->src[i], which outlives the send, not to tmp's copy.
		 */
		wk_queue_busy(rx->q, &tmp, CPN_BUSY_OVERLOAD, &c->out[*nout]);
		c->out[(*nout)++].dst = &c->src[i];
		return NULL;
	}
	r->next = NULL;
	r->held = 0;
	r->t_rx = now;
	r->src = c->src[i];
	r->m = in;
	r->len = plen;
	memcpy(r->payload, data + off, plen);
	return r;
}

static void *rx_main(void *arg)
{
	struct wk_rx *rx = arg;
	struct rx_ctx *c = calloc(1, sizeof(*c));
	struct pollfd pfd = {.fd = rx->fd, .events = POLLIN};

	if (c)
		c->buf = malloc((size_t)WK_RX_BATCH * RX_BUF);
	if (!c || !c->buf) {
		wk_fatal(rx->fatal, "receiver: out of memory");
		goto out;
	}
	while (!WK_LOAD(&rx->stop)) {
		struct wk_req *list = NULL, **pp = &list, *refused = NULL, *r;
		int n, nout = 0, nref = 0;
		uint64_t now;

		/* Bounded wait: stop is looked at every 50 ms. */
		n = poll(&pfd, 1, 50);
		if (n < 0 && errno != EINTR) {
			wk_fatal(rx->fatal, "receiver: poll: %s", strerror(errno));
			break;
		}
		wk_reasm_expire(rx->ra, cpn_now_ns());
		if (n <= 0)
			continue;
		for (int i = 0; i < WK_RX_BATCH; i++) {
			c->iov[i].iov_base = c->buf + (size_t)i * RX_BUF;
			c->iov[i].iov_len = RX_BUF;
			memset(&c->mm[i].msg_hdr, 0, sizeof(c->mm[i].msg_hdr));
			c->mm[i].msg_hdr.msg_iov = &c->iov[i];
			c->mm[i].msg_hdr.msg_iovlen = 1;
			c->mm[i].msg_hdr.msg_name = &c->src[i].ss;
			c->mm[i].msg_hdr.msg_namelen = sizeof(c->src[i].ss);
		}
		n = recvmmsg(rx->fd, c->mm, WK_RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			wk_fatal(rx->fatal, "receiver: recvmmsg: %s", strerror(errno));
			break;
		}
		now = cpn_now_ns();
		for (int i = 0; i < n; i++) {
			r = rx_one(rx, c, i, now, &nout);
			if (r) {
				*pp = r;
				pp = &r->next;
			}
		}
		if (list)
			wk_queue_put(rx->q, list, &refused);
		/* Answers first (they do not wait for anything), then BUSY for
		 * what the queue refused; both at most one per datagram.
		 */
		for (r = refused; r; r = r->next)
			wk_queue_busy(rx->q, r, r->m.status, &c->out[nout + nref++]);
		wk_tx_send(rx->tx, c->out, nout + nref);
		while (refused) {
			r = refused->next;
			wk_req_free(rx->st, refused);
			refused = r;
		}
	}
out:
	if (c)
		free(c->buf);
	free(c);
	return NULL;
}

int wk_rx_start(struct wk_rx *rx, char *err, size_t errlen)
{
	return wk_thread_start(&rx->th, &rx->started, rx_main, rx, "receiver thread", err, errlen);
}

void wk_rx_stop(struct wk_rx *rx)
{
	if (!rx->started)
		return;
	WK_STORE(&rx->stop, 1);
	pthread_join(rx->th, NULL);
	rx->started = 0;
}
