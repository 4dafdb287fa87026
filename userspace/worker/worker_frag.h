/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Large messages at the node (docs/PROTOCOL.md, "Large messages"), in two
 * halves that sit beside the line of stages:
 *
 *   wk_reasm   the receiver's reassembly of fragmented requests (on the
 *              receive thread only, no locks): a first fragment reserves
 *              the whole message under the node's limits and is acked at
 *              once; CONT fragments fill it and are acked every
 *              CPN_FRAG_ACK_EVERY bytes and at the end; the complete
 *              message goes to the queue as one request. A message without
 *              new bytes for the timeout is dropped.
 *   wk_fragtx  large replies: a handler's reply larger than a datagram is
 *              copied and sent by one sender thread as fragments under
 *              CPN_FRAG_WINDOW, paced by the client's acks (which the
 *              receiver hands over); each reply has its own state, so a
 *              client that stops acking fails only its reply, after the
 *              timeout.
 *
 * Memory: every large message the node holds (being reassembled, queued or
 * executing, being sent) is charged to one total budget (the gauge
 * cpn_worker_frag_held_bytes); messages being reassembled are also charged
 * to their client's (source address and port) budget.
 */
#ifndef CPN_WORKER_FRAG_H
#define CPN_WORKER_FRAG_H

#include <pthread.h>

#include "worker_queue.h"

struct wk_frag_cfg {
	uint32_t max_message;	/* bytes; above: REPLY TOO_LARGE */
	unsigned timeout_ms;	/* without progress: dropped / failed */
	uint64_t client_budget; /* bytes being reassembled per client */
	uint64_t budget;	/* bytes of large messages held */
};

#define WK_FRAG_DATA CPN_FRAG_DATA_DEFAULT /* message bytes per reply fragment */

struct wk_rmsg;
struct wk_rclient;

struct wk_reasm {
	struct wk_frag_cfg c;
	struct wk_stats *st;
	__u64 hkey[2]; /* SipHash key of the tables: random */
	struct wk_rmsg **msgs;
	struct wk_rclient **clients;
	struct wk_rmsg *lru_head, *lru_tail; /* by last progress, oldest first */
	uint32_t n_msgs;
};

/* What a fragment asks of the receiver. */
enum wk_frag_verdict {
	WK_FV_NONE,	/* counted, nothing to answer */
	WK_FV_ACK,	/* answer an ack: REPLY FRAG|CONT, offset res->held */
	WK_FV_DONE,	/* the ack, and res->req is complete: queue it */
	WK_FV_REPLY,	/* answer REPLY with status res->status (too large, bad request) */
	WK_FV_BUSY,	/* answer BUSY with reason res->status */
	WK_FV_REPLY_ACK /* a client's ack of a large reply: for wk_fragtx_ack */
};

struct wk_frag_res {
	uint32_t total, held; /* for the ack; REPLY_ACK: held is the ack's offset */
	uint8_t status;
	struct wk_req *req; /* DONE */
};

int wk_reasm_init(struct wk_reasm *ra, const struct wk_frag_cfg *c, struct wk_stats *st, char *err,
		  size_t errlen);
/* Frees every message still held. */
void wk_reasm_fini(struct wk_reasm *ra);
/* A REQUEST with FRAG from src, its header in `in`, `pl` the `len` bytes
 * after the header and tag. payload_ok (may be NULL) is the handler's.
 */
enum wk_frag_verdict wk_reasm_frag(struct wk_reasm *ra, const struct wk_addr *src,
				   const struct cpn_msg *in, const uint8_t *pl, uint32_t len,
				   uint64_t now, int draining, int (*payload_ok)(void *, uint32_t),
				   void *ctx, struct wk_frag_res *res);
/* Drop the messages without new bytes for the timeout. */
void wk_reasm_expire(struct wk_reasm *ra, uint64_t now);

/* ---- large replies --------------------------------------------------------- */

struct wk_oreply;

struct wk_fragtx {
	struct wk_tx *tx;
	struct wk_queue *q;
	struct wk_stats *st;
	unsigned timeout_ms;
	uint64_t budget;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct wk_oreply *head;
	pthread_t th;
	int started, stop, sync_ok;
};

int wk_fragtx_init(struct wk_fragtx *f, struct wk_tx *tx, struct wk_queue *q, struct wk_stats *st,
		   const struct wk_frag_cfg *c);
int wk_fragtx_start(struct wk_fragtx *f, char *err, size_t errlen);
/* Waits until every reply was sent or failed, then stops the thread. */
void wk_fragtx_stop(struct wk_fragtx *f);
void wk_fragtx_fini(struct wk_fragtx *f);
/* Send `len` bytes of pl as the reply m (identity, status, flags) to r's
 * source, as fragments; pl is copied. 0, or -ENOMEM: over the budget or
 * out of memory (nothing sent).
 */
int wk_fragtx_put(struct wk_fragtx *f, const struct wk_req *r, const struct cpn_msg *m,
		  const void *pl, uint32_t len);
/* A client's ack (REQUEST FRAG|CONT, no data) of held bytes of a reply.
 * 0, or -ENOENT when no reply matches it.
 */
int wk_fragtx_ack(struct wk_fragtx *f, const struct wk_addr *src, const struct cpn_msg *in,
		  uint32_t held);

#endif /* CPN_WORKER_FRAG_H */
