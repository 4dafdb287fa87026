/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The node's queue: one FIFO of requests bounded by --queue, between the
 * receiver that fills it and the batch slots that empty it, and the load
 * report measured there.
 *
 * Load report (every REPLY, LOAD, PROBE_ACK and BUSY):
 *   queue_depth  requests waiting in the queue, not yet in a batch
 *   inflight     requests in batches that are executing
 *   capacity     the number of batch slots (--capacity), NOT slots x
 *                --max-batch: worker_us of LOAD/PROBE_ACK is the mean
 *                service time per request (batch time / batch size), so one
 *                slot drains 1/svc requests per µs and the node C/svc; the
 *                router's est_us = depth x svc / capacity is right only with
 *                capacity = C. --advertise-capacity reports another number
 *                (an over-committed node), the slots staying C.
 *   util         busy fraction of the slots over the last heartbeat interval
 *   worker_us    REPLY: receive to send inside the node (queue, batching and
 *                execution), without --delay-us; LOAD/PROBE_ACK: EWMA (1/8)
 *                of batch execution time / batch size
 */
#ifndef CPN_WORKER_QUEUE_H
#define CPN_WORKER_QUEUE_H

#include <pthread.h>

#include "worker_tx.h"

/* A queued request: its header, where it came from, its payload. */
struct wk_req {
	struct wk_req *next;
	uint64_t t_rx; /* CLOCK_MONOTONIC ns at receipt */
	struct wk_addr src;
	struct cpn_msg m;
	uint32_t held; /* bytes charged to the large messages' budget (0: none) */
	uint32_t len;  /* payload bytes */
	uint8_t payload[];
};

struct wk_queue {
	pthread_mutex_t lock;
	pthread_cond_t work; /* CLOCK_MONOTONIC */
	struct wk_req *head, *tail;
	uint32_t queued;   /* written under lock, read atomically */
	uint32_t inflight; /* likewise */
	uint32_t limit;
	uint32_t max_batch;
	unsigned max_delay_us;
	int draining;	 /* set under lock; read atomically */
	int abandon;	 /* stop after the running batches */
	uint32_t waited; /* share of arrivals that found no free slot, Q16 EWMA over 64; atomic */

	/* the load report; slots' busy time under lock */
	uint16_t capacity;
	uint16_t advertised;  /* capacity in the load report: capacity unless over-committed */
	uint8_t util;	      /* 0..255, from wk_queue_util() */
	uint32_t svc_us;      /* the mean reported, read atomically */
	uint64_t svc_ewma_ns; /* under lock */
	uint64_t *since;      /* each slot's batch start, ns; 0 while idle */
	uint64_t busy_ns;     /* finished batches' execution time */

	/* the handler's requests waiting elsewhere, added to queue_depth */
	uint32_t (*extra)(void *ctx);
	void *extra_ctx;

	struct wk_tx *tx; /* BUSY answers */
	struct wk_stats *st;
	int sync_ok;
};

/* Free a request, and give back what it held of the large messages' budget. */
void wk_req_free(struct wk_stats *st, struct wk_req *r);

int wk_queue_init(struct wk_queue *q, uint32_t limit, uint32_t max_batch, unsigned max_delay_us,
		  int capacity, struct wk_tx *tx, struct wk_stats *st, char *err, size_t errlen);
void wk_queue_fini(struct wk_queue *q);

/* Queue the receiver's accepted requests; those that do not fit (queue
 * full, or draining) come back in *refused, the BUSY reason in each one's
 * m.status (CPN_BUSY_OVERLOAD or CPN_BUSY_DRAINING).
 */
void wk_queue_put(struct wk_queue *q, struct wk_req *list, struct wk_req **refused);
/* Slot `slot` waits for a batch to close and takes it into batch[]: up to
 * max_batch requests, when max_batch wait, when the oldest waited
 * max_delay_us, or at once while draining. 0: nothing more, the slot ends.
 */
int wk_queue_take(struct wk_queue *q, int slot, struct wk_req **batch);
/* Slot `slot` executed its batch of n: inflight, busy time, service time. */
void wk_queue_done(struct wk_queue *q, int slot, int n);
/* The mean service time per request until batches measure it. */
void wk_queue_seed_svc(struct wk_queue *q, uint64_t ns);

/* Draining: new requests are refused, what is queued is still served. */
void wk_queue_drain(struct wk_queue *q);
/* Abandon: the slots stop after their running batches. */
void wk_queue_abandon(struct wk_queue *q);
/* Answer everything still queued BUSY/DRAINING (the slots have stopped). */
void wk_queue_refuse_rest(struct wk_queue *q);

/* Total slot busy time up to now, ns (running batches included). */
uint64_t wk_queue_busy_ns(struct wk_queue *q, uint64_t now);
void wk_queue_set_util(struct wk_queue *q, uint8_t util);
/* m's load report: queue, inflight, capacity, util, DRAINING. */
void wk_load_fill(struct wk_queue *q, struct cpn_msg *m);
/* The BUSY answer to r into o (sealed, to r's source), and counted. */
void wk_queue_busy(struct wk_queue *q, const struct wk_req *r, uint8_t reason, struct wk_out *o);

#endif /* CPN_WORKER_QUEUE_H */
